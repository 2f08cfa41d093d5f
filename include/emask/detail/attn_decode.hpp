/// \file
/// \brief The decode variant of masked attention: few query rows over a long KV cache. The keys
/// are cut into chunks of a fixed size (attention_options::decode_chunk); the chunks of every
/// (batch, head) are computed in parallel and merged by log-sum-exp in chunk order, so the
/// result does not depend on the thread count. Use it as masked_attention(emask::decode, ...).
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/attn_decode.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif

#include <algorithm>

#include "emask/core/tile_grid.hpp"
#include "emask/detail/attn_common.hpp"
#include "emask/detail/mask_tiles.hpp"
#include "emask/detail/simd.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

struct attn_decode_plan {
  Index chunk;
  Index nchunks;
  Index part_stride;  // scalars per (item, query row) partial: dv + 3 (m, l, has), rounded
  Index per_thread;   // scores + flags of one chunk
  Index parts;        // scalars of all partials
};

inline attn_decode_plan attn_decode_make(Index batch, Index heads, Index lq, Index lk, Index dv,
                                         Index chunk) {
  attn_decode_plan d{};
  d.chunk = tile_grid::clamp(chunk, lk);  // huge chunks are one chunk, and nothing overflows
  d.nchunks = tile_grid::count(lk, chunk);
  d.part_stride = (dv + 3 + 15) / 16 * 16;
  d.per_thread = 2 * ((d.chunk + 15) / 16 * 16);
  d.parts = batch * heads * d.nchunks * lq * d.part_stride;
  return d;
}

/// Partial result of query row i over keys [c0, c0 + n) of head (b, h): writes o (dv), m, l,
/// has into \p part.
template <class S>
void attn_decode_chunk(const attn_problem<S>& p, const mask_tiles<S>& mask, Index b, Index h,
                       Index i, Index c0, Index n, S* scores, S* flags, S* part) {
  using Vec = Eigen::Matrix<S, Eigen::Dynamic, 1>;
  using CMap = Eigen::Map<const row_matrix<S>, Eigen::Unaligned, Eigen::OuterStride<>>;
  const Index d = p.d, dv = p.dv;
  S* o = part;
  S& m = part[dv];  // the chunk's maximum, then its log-sum-exp
  S& l = part[dv + 1];
  S& has = part[dv + 2];
  has = S(0);
  const Index mb = p.b0 + b, mh = p.h0 + h;
  const Index qa = p.q_off + i, ka = p.k_off + c0;
  const key_span span = mask.keys(mb, mh, qa, ka, ka + n);
  if (span.empty()) return;
  const Index lo = span.begin - ka, hi = span.end - ka, len = hi - lo;
  const S* K = p.k_ptr(b, h) + (c0 + lo) * p.k_sl;
  const S* V = p.v_ptr(b, h) + (c0 + lo) * p.v_sl;
  Eigen::Map<Vec> s(scores, len);
  if (d > 0) {
    CMap kc(K, len, d, Eigen::OuterStride<>(std::max<Index>(p.k_sl, 1)));
    Eigen::Map<const Vec> q(p.q_ptr(b, h) + i * p.q_sl, d);
    s.noalias() = kc * q;
    s *= p.scale;
  } else {
    s.setZero();
  }
  attn_transform(p, b, h, i, c0 + lo, scores, len);
  Eigen::Map<Vec> ov(o, dv);
  if (span.exact) {
    const S mx = s.maxCoeff();
    // Every kept score -inf: no weight anywhere, the chunk takes no part (not 0 / 0). A NaN
    // that maxCoeff skipped still makes the row NaN (NaN policy, rule 2).
    if (is_neg_inf(mx) && !any_nan(scores, len)) return;
    // Flushed exp: a weight below the smallest normal number is exactly 0 on every build.
    l = simd::exp_sum(scores, len, S(1), mx, scores);
    if (magnitude_bits(l) == 0) return;  // no weight (the maximum was not a kept -inf's)
    m = mx;
    if (dv > 0) {
      CMap vc(V, len, dv, Eigen::OuterStride<>(std::max<Index>(p.v_sl, 1)));
      ov.noalias() = vc.transpose() * s;
    }
  } else {
    bool any = false;
    S mx = std::numeric_limits<S>::lowest();
    mask.flags(mb, mh, qa, ka + lo, ka + hi, flags, 1);
    for (Index j = 0; j < len; ++j) {
      if (flags[j] != S(0)) {
        mx = any ? (std::max)(mx, scores[j]) : scores[j];
        any = true;
      }
    }
    if (!any || is_neg_inf(mx)) return;
    S sum = 0;
    ov.setZero();
    for (Index j = 0; j < len; ++j) {
      if (flags[j] == S(0)) continue;  // masked keys are never read
      S e = std::exp(scores[j] - mx);
      e = e < (std::numeric_limits<S>::min)() ? S(0) : e;  // as the packet exp: flushed
      sum += e;
      ov += e * Eigen::Map<const Vec>(V + j * p.v_sl, dv);
    }
    if (magnitude_bits(sum) == 0) return;
    m = mx;
    l = sum;
  }
  // Normalized, with its log-sum-exp: the form merge_lse_row folds.
  const S inv = S(1) / l;
  for (Index x = 0; x < dv; ++x) o[x] *= inv;
  m = m + std::log(l);
  has = S(1);
}

/// Merges the partials of row i of head (b, h), chunk by chunk in order (so the result does not
/// depend on the thread count), into out and lse with the one log-sum-exp merge.
template <class S>
void attn_decode_merge(const attn_problem<S>& p, const attn_decode_plan& plan, const S* parts,
                       Index b, Index h, Index i) {
  const Index dv = p.dv;
  S* orow = p.out_ptr(b, h) + i * p.o_sl;
  S* lse = p.lse_ptr(b, h);
  const Index base = ((b * p.heads + h) * plan.nchunks) * p.lq;
  std::fill(orow, orow + dv, S(0));
  S acc = negative_infinity<S>();  // empty
  for (Index c = 0; c < plan.nchunks; ++c) {
    const S* part = parts + (base + c * p.lq + i) * plan.part_stride;
    if (part[dv + 2] != S(0)) merge_lse_row(orow, acc, part, part[dv], dv);
  }
  if (lse) lse[i] = acc;
}

/// Runs the decode variant. \p ws holds plan.parts + threads * plan.per_thread scalars.
template <class S>
void attn_decode_run(const attn_problem<S>& p, const mask_tiles<S>& mask,
                     const attn_decode_plan& plan, S* ws) {
  S* parts = ws;
  S* scratch = ws + plan.parts;
  const Index items = p.batch * p.heads * plan.nchunks;
  auto run_item = [&](Index w, int tid) {
    const Index c = w % plan.nchunks;
    const Index bh = w / plan.nchunks;
    const Index b = bh / p.heads, h = bh % p.heads;
    const Index c0 = c * plan.chunk, n = (std::min)(plan.chunk, p.lk - c0);
    S* sc = scratch + static_cast<Index>(tid) * plan.per_thread;
    for (Index i = 0; i < p.lq; ++i) {
      attn_decode_chunk(p, mask, b, h, i, c0, n, sc, sc + plan.per_thread / 2,
                        parts + ((bh * plan.nchunks + c) * p.lq + i) * plan.part_stride);
    }
  };
  const Index rows = p.batch * p.heads * p.lq;
  auto merge_row = [&](Index r) {
    const Index bh = r / p.lq;
    attn_decode_merge(p, plan, parts, bh / p.heads, bh % p.heads, r % p.lq);
  };
#if EMASK_HAS_OPENMP
  if (p.threads > 1) {
#pragma omp parallel num_threads(p.threads)
    {
#pragma omp for schedule(dynamic, 1)
      for (Index w = 0; w < items; ++w) run_item(w, thread_id());
#pragma omp for schedule(static)
      for (Index r = 0; r < rows; ++r) merge_row(r);
    }
    return;
  }
#endif
  for (Index w = 0; w < items; ++w) run_item(w, 0);
  for (Index r = 0; r < rows; ++r) merge_row(r);
}

}  // namespace detail
EMASK_NAMESPACE_END
