/// \file
/// \brief Recomputes the output rows of the tiled and decode variants that overflowed.
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/attn_rescue.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "emask/detail/attn_common.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/detail/mask_tiles.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

/// Whether s[0, n) holds only finite values (bit test, so also under -ffast-math).
template <class S>
bool attn_row_finite(const S* s, Index n) noexcept {
  using L = ieee_layout<S>;
  typename L::bits worst = 0;
  for (Index j = 0; j < n; ++j) worst = (std::max)(worst, magnitude_bits(s[j]));
  return worst < L::exponent;
}

/// Row i of head (b, h) with softmax weights normalized before they multiply V, so every
/// partial sum stays within max |v_j| over the kept keys. A plain scalar loop, not the shared
/// row core (detail/softmax_row.hpp): this rare path would otherwise add the core's packet code
/// to every translation unit that calls masked_attention (measured +0.4 s of g++ time).
template <class S>
void attn_exact_row(const attn_problem<S>& p, const mask_tiles<S>& mask, Index b, Index h, Index i,
                    std::vector<S>& s, std::vector<S>& keep) {
  const S* q = p.q_ptr(b, h) + i * p.q_sl;
  const S* k = p.k_ptr(b, h);
  const S* v = p.v_ptr(b, h);
  S* out = p.out_ptr(b, h) + i * p.o_sl;
  s.assign(static_cast<std::size_t>(p.lk), S(0));
  for (Index j = 0; j < p.lk; ++j) {
    S dot = 0;
    for (Index c = 0; c < p.d; ++c) dot += q[c] * k[j * p.k_sl + c];
    s[static_cast<std::size_t>(j)] = dot * p.scale;
  }
  attn_transform(p, b, h, i, 0, s.data(), p.lk);
  keep.assign(static_cast<std::size_t>(p.lk), S(0));
  mask.flags(p.b0 + b, p.h0 + h, p.q_off + i, p.k_off, p.k_off + p.lk, keep.data(), 1);
  S mx = -std::numeric_limits<S>::infinity();
  bool any = false;
  for (Index j = 0; j < p.lk; ++j) {
    const S x = s[static_cast<std::size_t>(j)];
    if (keep[static_cast<std::size_t>(j)] == S(0)) {
      s[static_cast<std::size_t>(j)] = S(0);  // weight 0 below; the score is never read
      continue;
    }
    // A NaN or +infinity kept score makes the row NaN (the NaN policy): leave it as computed.
    if (!is_finite(x) && !(x < 0)) return;
    mx = any ? (std::max)(mx, x) : x;
    any = true;
    s[static_cast<std::size_t>(j)] = x;
  }
  if (!any) return;  // a fully masked row is zero already
  S sum = 0;
  for (Index j = 0; j < p.lk; ++j) {
    if (keep[static_cast<std::size_t>(j)] == S(0)) continue;
    const S e = std::exp(s[static_cast<std::size_t>(j)] - mx);
    s[static_cast<std::size_t>(j)] = e;
    sum += e;
  }
  std::fill(out, out + p.dv, S(0));
  for (Index j = 0; j < p.lk; ++j) {
    const S w = s[static_cast<std::size_t>(j)] / sum;
    if (w == S(0)) continue;  // masked, or underflowed: contributes nothing (and 0 * inf = NaN)
    for (Index c = 0; c < p.dv; ++c) out[c] += w * v[j * p.v_sl + c];
  }
}

/// The tiled and decode variants accumulate sum_j e^(s_j - m) v_j and divide by the sum of the
/// weights at the end (online softmax). That sum can exceed the largest finite S when |v| is
/// within a factor of (kept keys) of it, while the exact output is bounded by max |v|. A row
/// whose output is not finite is recomputed with normalized weights; a row that is not finite
/// because of a NaN or +infinity kept score, or a non-finite V row, stays as it is. The scan
/// costs O(B H Lq Dv) reads, next to the O(B H Lq Lk D) of the attention itself.
template <class S>
void attn_rescue_overflow(const attn_problem<S>& p, const mask_tiles<S>& mask) {
  std::vector<S> scratch, keep;
  for (Index b = 0; b < p.batch; ++b)
    for (Index h = 0; h < p.heads; ++h) {
      const S* out = p.out_ptr(b, h);
      for (Index i = 0; i < p.lq; ++i)
        if (!attn_row_finite(out + i * p.o_sl, p.dv))
          attn_exact_row(p, mask, b, h, i, scratch, keep);
    }
}

}  // namespace detail
EMASK_NAMESPACE_END
