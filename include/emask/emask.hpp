/// \file
/// \brief Umbrella header: includes all of emask, one module umbrella each. The reference
/// kernels (emask/reference.hpp) are not included.
#pragma once

#include "emask/config.hpp"
#include "emask/core.hpp"
#include "emask/error.hpp"
#include "emask/kernels.hpp"
#include "emask/masks.hpp"
#include "emask/random.hpp"
#include "emask/rl.hpp"
#include "emask/seq.hpp"
#include "emask/version.hpp"
