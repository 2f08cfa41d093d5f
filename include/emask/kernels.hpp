/// \file
/// \brief Umbrella of one module: masked softmax, masked attention (tiled, decode), the log-sum-exp
/// merge, tensor views. Include it instead of <emask/emask.hpp> to parse only this module (and what
/// it needs).
#pragma once

#include "emask/kernels/attention.hpp"
#include "emask/kernels/attention_backward.hpp"
#include "emask/kernels/attention_options.hpp"
#include "emask/kernels/kv_cache.hpp"
#include "emask/kernels/kv_prefill.hpp"
#include "emask/kernels/merge.hpp"
#include "emask/kernels/softmax.hpp"
#include "emask/kernels/softmax_backward.hpp"
#include "emask/kernels/tensor_view.hpp"
#include "emask/kernels/variant.hpp"
