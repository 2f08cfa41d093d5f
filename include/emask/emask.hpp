/// \file
/// \brief Umbrella header: includes all of emask.
#pragma once

#include "emask/config.hpp"
#include "emask/error.hpp"
#include "emask/version.hpp"

#include "emask/core/bits.hpp"
#include "emask/core/block_mask.hpp"
#include "emask/core/compose.hpp"
#include "emask/core/index_list.hpp"
#include "emask/core/mask.hpp"
#include "emask/core/materialize.hpp"
#include "emask/core/per_head.hpp"
#include "emask/core/polarity.hpp"
#include "emask/core/render.hpp"

#include "emask/masks/causal.hpp"
#include "emask/masks/chunk.hpp"
#include "emask/masks/dense.hpp"
#include "emask/masks/document.hpp"
#include "emask/masks/flags.hpp"
#include "emask/masks/padding.hpp"
#include "emask/masks/prefix.hpp"
#include "emask/masks/window.hpp"
