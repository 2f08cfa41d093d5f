/// \file
/// \brief Umbrella of one module: the mask builders: causal, window, sink window, chunk, prefix,
/// bidirectional groups, padding, flags, document, dense, interval unions (row and FlashMask
/// column form), grammar bitmasks, speculative-decoding trees and their packed layouts, top-k
/// block selection, block-sparse lists, per-layer schedules. Include it instead of
/// <emask/emask.hpp> to parse only this module (and what it needs).
#pragma once

#include "emask/masks/block_bidirectional.hpp"
#include "emask/masks/block_sparse_mask.hpp"
#include "emask/masks/block_topk.hpp"
#include "emask/masks/causal.hpp"
#include "emask/masks/chunk.hpp"
#include "emask/masks/dense.hpp"
#include "emask/masks/document.hpp"
#include "emask/masks/flags.hpp"
#include "emask/masks/interval_union.hpp"
#include "emask/masks/keep_all.hpp"
#include "emask/masks/layer_schedule.hpp"
#include "emask/masks/padding.hpp"
#include "emask/masks/prefix.hpp"
#include "emask/masks/sink_window.hpp"
#include "emask/masks/token_bitmask.hpp"
#include "emask/masks/tree.hpp"
#include "emask/masks/tree_packing.hpp"
#include "emask/masks/window.hpp"
