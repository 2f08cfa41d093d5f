/// \file
/// \brief Umbrella of one module: the mask-expression vocabulary: types, the mask concept,
/// composition, materialization, block masks, pictures. Include it instead of <emask/emask.hpp> to
/// parse only this module (and what it needs).
#pragma once

#include "emask/core/bits.hpp"
#include "emask/core/block_mask.hpp"
#include "emask/core/block_sparse.hpp"
#include "emask/core/compose.hpp"
#include "emask/core/image.hpp"
#include "emask/core/index_list.hpp"
#include "emask/core/mask.hpp"
#include "emask/core/materialize.hpp"
#include "emask/core/per_head.hpp"
#include "emask/core/polarity.hpp"
#include "emask/core/render.hpp"
#include "emask/core/score_mod.hpp"
#include "emask/core/tile_grid.hpp"
#include "emask/core/types.hpp"
