/// \file
/// \brief Options, problem description and checks shared by the attention variants.
// IWYU pragma: private
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "emask/detail/ieee.hpp"
#include "emask/kernels/tensor_view.hpp"

#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

EMASK_NAMESPACE_BEGIN

/// \brief A column vector of per-row values (log-sum-exp of one head).
template <class Scalar>
using lse_vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

/// \brief Options of masked_attention. The defaults give softmax(Q K^T / sqrt(D)) V.
///
/// Score of query i and key j, in this order:
///   s = scale * dot(q_i, k_j);
///   if softcap > 0:  s = softcap * tanh(s / softcap);
///   if ALiBi:        s = s + slope_h * ((k_offset + j) - (q_offset + i));
///   then the mask: a pair the mask does not keep takes no part, whatever its score.
struct attention_options {
  /// Multiplies Q K^T; 0 means 1 / sqrt(D).
  double scale = 0;
  /// Query rows per tile (tiled) and per work item of the thread pool.
  Index tile_q = 64;
  /// Keys per tile (tiled); rounded up to the SIMD block (32 floats with AVX-512).
  Index tile_k = 64;
  /// Keys per chunk of the decode variant. Fixed by the caller, never by the thread count,
  /// so results do not depend on threads.
  Index decode_chunk = 512;
  /// Logit soft-capping (Gemma 2, Grok): s -> softcap * tanh(s / softcap); 0 turns it off.
  double softcap = 0;
  /// ALiBi slope per query head (see alibi_slopes()); empty turns ALiBi off. For the single
  /// head entry point the slope of head `head` is used.
  std::vector<double> alibi;
  /// Absolute position of query row 0 and key row 0: the mask is asked about
  /// (q_offset + i, k_offset + j), and ALiBi uses the same positions (shards, KV-cache steps).
  Index q_offset = 0;
  Index k_offset = 0;
  /// Batch entry and head that the single-head entry point evaluates the mask at.
  Index batch = 0;
  Index head = 0;
  /// OpenMP threads; 0 means omp_get_max_threads(). Ignored without OpenMP.
  int threads = 0;
};

/// \brief ALiBi slopes of \p n_head heads with ggml's max_bias schedule (llama.cpp, the ALiBi
/// paper for max_bias = 8): with n = 2^floor(log2(n_head)), m0 = 2^(-max_bias / n),
/// m1 = 2^(-max_bias / 2 / n), head h < n gets m0^(h + 1), head h >= n gets
/// m1^(2 (h - n) + 1).
inline std::vector<double> alibi_slopes(Index n_head, double max_bias = 8.0) {
  if (n_head < 1) detail::fail_argument("alibi_slopes", "n_head", n_head, ">= 1");
  if (detail::is_nan(max_bias) || !(max_bias > 0))
    detail::fail_argument("alibi_slopes", "max_bias", max_bias, "> 0");
  Index n = 1;
  while (n * 2 <= n_head) n *= 2;
  const double m0 = std::pow(2.0, -max_bias / static_cast<double>(n));
  const double m1 = std::pow(2.0, -max_bias / 2.0 / static_cast<double>(n));
  std::vector<double> s(static_cast<std::size_t>(n_head));
  for (Index h = 0; h < n_head; ++h) {
    s[static_cast<std::size_t>(h)] = h < n ? std::pow(m0, static_cast<double>(h + 1))
                                           : std::pow(m1, static_cast<double>(2 * (h - n) + 1));
  }
  return s;
}

namespace detail {

/// One attention problem: B x H query heads over B x Hkv key/value heads, pointers and strides.
template <class S>
struct attn_problem {
  const S* q;
  const S* k;
  const S* v;
  S* out;
  Index q_sb, q_sh, q_sl;
  Index k_sb, k_sh, k_sl;
  Index v_sb, v_sh, v_sl;
  Index o_sb, o_sh, o_sl;
  S* lse = nullptr;  // [B*H rows, stride lse_row] x Lq, or null
  Index lse_row = 0;
  Index batch, heads, kv_heads, lq, lk, d, dv;
  Index b0 = 0, h0 = 0;  // mask coordinates of batch 0 / head 0 (single-head entry point)
  Index q_off, k_off;
  S scale;  // scale / softcap when softcap is on
  S softcap;
  bool has_softcap;
  std::vector<S> slopes;  // one per head, empty = no ALiBi
  int threads;

  const S* q_ptr(Index b, Index h) const { return q + b * q_sb + h * q_sh; }
  Index kv_head(Index h) const { return h / (heads / kv_heads); }
  const S* k_ptr(Index b, Index h) const { return k + b * k_sb + kv_head(h) * k_sh; }
  const S* v_ptr(Index b, Index h) const { return v + b * v_sb + kv_head(h) * v_sh; }
  S* out_ptr(Index b, Index h) const { return out + b * o_sb + h * o_sh; }
  S* lse_ptr(Index b, Index h) const { return lse ? lse + (b * heads + h) * lse_row : nullptr; }
  S slope(Index h) const { return slopes.empty() ? S(0) : slopes[static_cast<std::size_t>(h)]; }
};

inline int attn_thread_count(int requested) {
#if EMASK_HAS_OPENMP
  return requested > 0 ? requested : omp_get_max_threads();
#else
  (void)requested;
  return 1;
#endif
}

inline int attn_thread_id() {
#if EMASK_HAS_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/// Fills the scalar options of \p p from \p opt and checks them. \p n_slope_heads is the number
/// of heads the alibi vector must cover.
template <class S>
void attn_set_options(attn_problem<S>& p, const attention_options& opt, const char* where,
                      Index n_slope_heads, Index slope_head0) {
  if (!is_finite(opt.scale) || opt.scale < 0)
    fail_argument(where, "options.scale", opt.scale, "a finite value >= 0 (0: 1/sqrt(D))");
  if (!is_finite(opt.softcap) || opt.softcap < 0)
    fail_argument(where, "options.softcap", opt.softcap, "a finite value >= 0 (0: off)");
  if (opt.tile_q < 1) fail_argument(where, "options.tile_q", opt.tile_q, ">= 1");
  if (opt.tile_k < 1) fail_argument(where, "options.tile_k", opt.tile_k, ">= 1");
  if (opt.decode_chunk < 1) fail_argument(where, "options.decode_chunk", opt.decode_chunk, ">= 1");
  if (opt.q_offset < 0) fail_argument(where, "options.q_offset", opt.q_offset, ">= 0");
  if (opt.k_offset < 0) fail_argument(where, "options.k_offset", opt.k_offset, ">= 0");
  if (opt.threads < 0) fail_argument(where, "options.threads", opt.threads, ">= 0 (0: all)");
  const double scale =
      opt.scale > 0 ? opt.scale : (p.d > 0 ? 1.0 / std::sqrt(static_cast<double>(p.d)) : 1.0);
  p.has_softcap = opt.softcap > 0;
  p.softcap = static_cast<S>(opt.softcap);
  p.scale = static_cast<S>(p.has_softcap ? scale / opt.softcap : scale);
  p.q_off = opt.q_offset;
  p.k_off = opt.k_offset;
  p.threads = attn_thread_count(opt.threads);
  p.slopes.clear();
  if (!opt.alibi.empty()) {
    if (static_cast<Index>(opt.alibi.size()) < slope_head0 + n_slope_heads)
      fail_argument(where, "options.alibi", concat(opt.alibi.size(), " slopes"),
                    "one slope per head (", slope_head0 + n_slope_heads, ")");
    for (Index h = 0; h < n_slope_heads; ++h)
      p.slopes.push_back(static_cast<S>(opt.alibi[static_cast<std::size_t>(slope_head0 + h)]));
  }
}

template <class S, class Mask>
void attn_check_mask(const attn_problem<S>& p, const Mask& mask, const char* where) {
  region r;
  r.b_begin = p.b0;
  r.b_end = p.b0 + p.batch;
  r.h_begin = p.h0;
  r.h_end = p.h0 + p.heads;
  r.q_begin = p.q_off;
  r.q_end = p.q_off + p.lq;
  r.k_begin = p.k_off;
  r.k_end = p.k_off + p.lk;
  mask.check(r, where);
}

/// Score transform of one row segment s[0, n) whose first key has index j0 (in the problem):
/// softcap then ALiBi, for query index i of head h.
template <class S>
inline void attn_transform(const attn_problem<S>& p, Index h, Index i, Index j0, S* s, Index n) {
  Eigen::Map<Eigen::Array<S, Eigen::Dynamic, 1>> a(s, n);
  if (p.has_softcap) a = p.softcap * a.tanh();
  const S slope = p.slope(h);
  if (slope != S(0)) {
    const Index rel0 = j0 - i + p.k_off - p.q_off;
    for (Index j = 0; j < n; ++j) s[j] += slope * static_cast<S>(rel0 + j);
  }
}

/// Value meaning "no row" for merging: lse below it (including -infinity) is an empty row.
template <class S>
constexpr S attn_empty_lse_threshold() noexcept {
  return std::numeric_limits<S>::lowest() / 2;
}

}  // namespace detail
EMASK_NAMESPACE_END
