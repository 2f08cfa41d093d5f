/// \file
/// \brief Umbrella of one module: sequence masks, masked pooling, masked losses, reversal.
/// Include it instead of <emask/emask.hpp> to parse only this module (and what it needs).
#pragma once

#include "emask/seq/loss.hpp"
#include "emask/seq/loss_grad.hpp"
#include "emask/seq/pooling.hpp"
#include "emask/seq/pooling_grad.hpp"
#include "emask/seq/reverse.hpp"
#include "emask/seq/sequence_mask.hpp"
