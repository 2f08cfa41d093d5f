/// \file
/// \brief The options of masked_attention (every variant) and the ALiBi slopes.
#pragma once

#include <cmath>
#include <vector>

#include "emask/config.hpp"
#include "emask/core/types.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/error.hpp"
#include "emask/kernels/kernel_options.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Options of masked_attention. The defaults give softmax(Q K^T / sqrt(D)) V.
///
/// Score of query i and key j, in this order:
///   s = scale * dot(q_i, k_j);
///   if softcap > 0:  s = softcap * tanh(s / softcap);
///   if ALiBi:        s = s + slope_h * ((k_offset + j) - (q_offset + i));
///   if score_mod:    s = score_mod(s, b, h, q_offset + i, k_offset + j);
///   then the mask: a pair the mask does not keep takes no part, whatever its score.
///
/// scale (unset: 1 / sqrt(D)), softcap, score_mod, slice, q_offset / k_offset and threads come
/// from kernel_options.
struct attention_options : kernel_options {
  /// Query rows per tile (tiled) and per work item of the thread pool.
  Index tile_q = 64;
  /// Keys per tile (tiled); rounded up to the SIMD block (32 floats with AVX-512).
  Index tile_k = 64;
  /// Keys per chunk of the decode variant. Fixed by the caller, never by the thread count,
  /// so results do not depend on threads.
  Index decode_chunk = 512;
  /// ALiBi slope per query head (see alibi_slopes()); empty turns ALiBi off. For the single
  /// head entry point the slope of head `slice.h` is used.
  std::vector<double> alibi;
};

/// \brief ALiBi slopes of \p n_head heads with ggml's max_bias schedule (llama.cpp, the ALiBi
/// paper for max_bias = 8): with n = 2^floor(log2(n_head)), m0 = 2^(-max_bias / n),
/// m1 = 2^(-max_bias / 2 / n), head h < n gets m0^(h + 1), head h >= n gets
/// m1^(2 (h - n) + 1).
/// \pre 1 <= n_head <= the size of the largest vector; max_bias finite and > 0.
inline std::vector<double> alibi_slopes(Index n_head, double max_bias = 8.0) {
  if (n_head < 1 || static_cast<std::size_t>(n_head) > std::vector<double>().max_size())
    detail::fail_argument("alibi_slopes", "n_head", n_head, ">= 1 and at most ",
                          std::vector<double>().max_size(), " (one slope per head)");
  if (!detail::is_finite(max_bias) || !(max_bias > 0))
    detail::fail_argument("alibi_slopes", "max_bias", max_bias, "a finite value > 0");
  Index n = 1;
  while (n <= n_head / 2) n *= 2;
  const double m0 = std::pow(2.0, -max_bias / static_cast<double>(n));
  const double m1 = std::pow(2.0, -max_bias / 2.0 / static_cast<double>(n));
  std::vector<double> s(static_cast<std::size_t>(n_head));
  for (Index h = 0; h < n_head; ++h) {
    s[static_cast<std::size_t>(h)] = h < n ? std::pow(m0, static_cast<double>(h + 1))
                                           : std::pow(m1, static_cast<double>(2 * (h - n) + 1));
  }
  return s;
}

EMASK_NAMESPACE_END
