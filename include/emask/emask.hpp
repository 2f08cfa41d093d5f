/// \file
/// \brief Umbrella header: includes all of emask.
///
/// \mainpage emask API reference
///
/// Header-only C++17 tensor masking over Eigen 3.4 for deep learning and reinforcement learning.
/// Start with emask::mask_base (the mask-expression concept), the builders (emask::causal,
/// emask::sliding_window, emask::chunked, emask::prefix_lm, emask::key_padding,
/// emask::document_mask, ...), emask::materialize, the kernels (emask::masked_softmax,
/// emask::masked_attention), the random maskers (emask::mlm_mask, emask::t5_span_corruption,
/// emask::mae_random_masking), the RL helpers (emask::masked_sample, emask::masked_q_argmax) and
/// the sequence utilities (emask::sequence_mask, emask::masked_cross_entropy). The guides live
/// in the repository's docs/ folder: conventions, masks, kernels, random, rl, seq, errors.
#pragma once

#include "emask/config.hpp"
#include "emask/error.hpp"
#include "emask/version.hpp"

#include "emask/core/bits.hpp"
#include "emask/core/block_mask.hpp"
#include "emask/core/compose.hpp"
#include "emask/core/image.hpp"
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

#include "emask/kernels/attention.hpp"
#include "emask/kernels/merge.hpp"
#include "emask/kernels/softmax.hpp"
#include "emask/kernels/tensor_view.hpp"
#include "emask/kernels/variant.hpp"

#include "emask/random/distributions.hpp"
#include "emask/random/feature.hpp"
#include "emask/random/mlm.hpp"
#include "emask/random/patch.hpp"
#include "emask/random/philox.hpp"
#include "emask/random/span.hpp"
#include "emask/random/t5.hpp"
#include "emask/random/tokens.hpp"
#include "emask/random/whole_word.hpp"

#include "emask/rl/action_mask.hpp"
#include "emask/rl/dqn.hpp"
#include "emask/rl/dtqn.hpp"
#include "emask/rl/policy.hpp"

#include "emask/seq/loss.hpp"
#include "emask/seq/pooling.hpp"
#include "emask/seq/reverse.hpp"
#include "emask/seq/sequence_mask.hpp"
