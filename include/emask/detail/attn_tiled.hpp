/// \file
/// \brief The tiled (FlashAttention-2) attention kernel: online softmax over key tiles, empty
/// tiles skipped, no mask test on full tiles, O(tile) workspace per thread.
// IWYU pragma: private
#pragma once

#include <algorithm>
#include <cstring>

#include "emask/detail/attn_common.hpp"
#include "emask/detail/gemm_microkernel.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

/// Tile geometry of one tiled call.
struct attn_tiles {
  Index br;   // query rows per tile
  Index brp;  // padded to gemm_rows
  Index bc;   // keys per tile (multiple of gemm_cols)
  Index dp;   // D (depth of Q K^T; not padded)
  Index dvp;  // Dv padded to gemm_cols
  Index per_thread;  // scalars of workspace per thread

  template <class S>
  static attn_tiles make(Index tile_q, Index tile_k, Index d, Index dv) {
    attn_tiles t{};
    t.br = tile_q;
    t.brp = round_up(tile_q, gemm_rows);
    t.bc = round_up(tile_k, gemm_cols<S>);
    t.dp = std::max<Index>(d, 1);
    t.dvp = round_up(std::max<Index>(dv, 1), gemm_cols<S>);
    const auto r = [](Index n) { return round_up(n, 16); };
    t.per_thread = r(t.brp * t.dp)     // packed, scaled Q
                   + r(t.dp * t.bc)    // packed K^T
                   + r(t.bc * t.dvp)   // packed V
                   + r(t.brp * t.bc)   // scores / probabilities
                   + r(t.brp * t.dvp)  // output accumulator
                   + 4 * r(t.brp)      // m, l, alpha, has
                   + 2 * r(t.bc);      // keep flags, column-kept flags
    return t;
  }
};

/// Slices of one thread's workspace.
template <class S>
struct attn_tile_ws {
  S* q; S* kt; S* vp; S* s; S* o; S* m; S* l; S* alpha; S* has; S* flag; S* col;
  attn_tile_ws(S* base, const attn_tiles& t) {
    S* p = base;
    auto take = [&p](Index n) { S* r = p; p += round_up(n, 16); return r; };
    q = take(t.brp * t.dp); kt = take(t.dp * t.bc); vp = take(t.bc * t.dvp);
    s = take(t.brp * t.bc); o = take(t.brp * t.dvp);
    m = take(t.brp); l = take(t.brp); alpha = take(t.brp); has = take(t.brp);
    flag = take(t.bc); col = take(t.bc);
  }
};

/// Computes one query tile [q0, q0 + nq) of head (b, h).
template <class S, class Mask>
void attn_tiled_query_tile(const attn_problem<S>& p, const Mask& mask, const attn_tiles& t,
                           S* wsbase, Index b, Index h, Index q0) {
  using Arr = Eigen::Array<S, Eigen::Dynamic, 1>;
  using ArrMap = Eigen::Map<Arr>;
  attn_tile_ws<S> w(wsbase, t);
  const Index nq = std::min(t.br, p.lq - q0);
  const Index d = p.d, dv = p.dv;
  const Index mb = p.b0 + b, mh = p.h0 + h;  // mask coordinates
  const S* Q = p.q_ptr(b, h);
  const S* K = p.k_ptr(b, h);
  const S* V = p.v_ptr(b, h);
  const S lowest = std::numeric_limits<S>::lowest();

  // Pack Q (scaled), zero the padding rows.
  for (Index i = 0; i < nq; ++i) {
    const S* src = Q + (q0 + i) * p.q_sl;
    S* dst = w.q + i * t.dp;
    for (Index c = 0; c < d; ++c) dst[c] = src[c] * p.scale;
    if (d == 0) dst[0] = S(0);
  }
  if (t.brp > nq) std::fill(w.q + nq * t.dp, w.q + t.brp * t.dp, S(0));
  std::fill(w.o, w.o + t.brp * t.dvp, S(0));
  std::fill(w.m, w.m + t.brp, lowest);
  std::fill(w.l, w.l + t.brp, S(0));
  std::fill(w.has, w.has + t.brp, S(0));
  std::fill(w.alpha, w.alpha + t.brp, S(1));
  // Rows of P past nq stay zero for the whole tile.
  std::fill(w.s + nq * t.bc, w.s + t.brp * t.bc, S(0));

  const Index qa = p.q_off + q0;  // absolute position of row 0 of the tile
  const Index depth = std::max<Index>(d, 1);
  for (Index k0 = 0; k0 < p.lk; k0 += t.bc) {
    const Index nk = std::min(t.bc, p.lk - k0);
    const Index ka = p.k_off + k0;
    const tile_state ts = mask.tile(mb, mh, qa, qa + nq, ka, ka + nk);
    if (ts == tile_state::empty) continue;
    const bool full = ts == tile_state::full;

    // Pack K^T: kt[c, j] = K[k0 + j, c], zero past nk.
    for (Index j = 0; j < nk; ++j) {
      const S* src = K + (k0 + j) * p.k_sl;
      for (Index c = 0; c < d; ++c) w.kt[c * t.bc + j] = src[c];
      if (d == 0) w.kt[j] = S(0);
    }
    if (nk < t.bc)
      for (Index c = 0; c < depth; ++c) std::fill(w.kt + c * t.bc + nk, w.kt + (c + 1) * t.bc, S(0));

    gemm_abt(w.q, t.dp, w.kt, t.bc, depth, w.s, t.bc, t.brp, t.bc);

    if (!full) std::fill(w.col, w.col + t.bc, S(0));
    bool any_row = false;
    for (Index i = 0; i < nq; ++i) {
      S* srow = w.s + i * t.bc;
      Index lo = 0, hi = nk;
      bool exact = true;
      if (!full) {
        const key_span span = mask.keys(mb, mh, qa + i, ka, ka + nk);
        lo = span.begin - ka;
        hi = span.end - ka;
        exact = span.exact;
        if (span.empty()) {
          std::fill(srow, srow + t.bc, S(0));
          w.alpha[i] = S(1);
          continue;
        }
      }
      attn_transform(p, h, q0 + i, k0 + lo, srow + lo, hi - lo);
      ArrMap seg(srow + lo, hi - lo);
      S tmax;
      if (exact) {
        tmax = seg.maxCoeff();
      } else {
        // Inexact span: keep flags from the mask; masked scores are never read.
        ArrMap fl(w.flag, hi - lo);
        bool any = false;
        tmax = lowest;
        for (Index j = lo; j < hi; ++j) {
          const bool kp = mask.keep(mb, mh, qa + i, ka + j);
          fl[j - lo] = kp ? S(1) : S(0);
          if (kp) {
            tmax = any ? std::max(tmax, srow[j]) : srow[j];
            any = true;
          }
        }
        if (!any) {
          std::fill(srow, srow + t.bc, S(0));
          w.alpha[i] = S(1);
          continue;
        }
        seg = (fl > S(0)).select(seg, tmax);
      }
      S m_new, alpha;
      if (w.has[i] != S(0)) {
        m_new = std::max(w.m[i], tmax);
        alpha = std::exp(w.m[i] - m_new);
      } else {
        m_new = tmax;
        alpha = S(0);
        w.has[i] = S(1);
      }
      seg = (seg - m_new).exp();
      if (!exact) seg *= ArrMap(w.flag, hi - lo);
      if (lo > 0) std::fill(srow, srow + lo, S(0));
      if (hi < t.bc) std::fill(srow + hi, srow + t.bc, S(0));
      w.l[i] = w.l[i] * alpha + seg.sum();
      w.m[i] = m_new;
      w.alpha[i] = alpha;
      any_row = true;
      if (!full) {
        if (exact) {
          std::fill(w.col + lo, w.col + hi, S(1));
        } else {
          ArrMap cseg(w.col + lo, hi - lo);
          cseg = cseg.max(ArrMap(w.flag, hi - lo));
        }
      }
    }
    if (!any_row) continue;

    // Pack V: rows of keys that no row of the tile keeps are zeroed, so that non-finite values
    // in masked keys cannot reach the output through 0 * inf.
    for (Index j = 0; j < nk; ++j) {
      S* dst = w.vp + j * t.dvp;
      if (full || w.col[j] != S(0)) {
        const S* src = V + (k0 + j) * p.v_sl;
        std::copy(src, src + dv, dst);
        std::fill(dst + dv, dst + t.dvp, S(0));
      } else {
        std::fill(dst, dst + t.dvp, S(0));
      }
    }
    if (nk < t.bc) std::fill(w.vp + nk * t.dvp, w.vp + t.bc * t.dvp, S(0));

    gemm_scale_add_ab(w.o, t.dvp, w.alpha, w.s, t.bc, w.vp, t.dvp, t.bc, t.brp, t.dvp);
    std::fill(w.alpha, w.alpha + t.brp, S(1));
  }

  S* out = p.out_ptr(b, h);
  S* lse = p.lse_ptr(b, h);
  for (Index i = 0; i < nq; ++i) {
    S* orow = out + (q0 + i) * p.o_sl;
    if (w.has[i] != S(0)) {
      const S inv = S(1) / w.l[i];
      for (Index c = 0; c < dv; ++c) orow[c] = w.o[i * t.dvp + c] * inv;
      if (lse) lse[q0 + i] = w.m[i] + std::log(w.l[i]);
    } else {
      std::fill(orow, orow + dv, S(0));
      if (lse) lse[q0 + i] = -std::numeric_limits<S>::infinity();
    }
  }
}

/// Runs the tiled kernel over every (batch, head, query tile), in parallel with OpenMP.
/// \p ws holds at least threads * t.per_thread scalars.
template <class S, class Mask>
void attn_tiled_run(const attn_problem<S>& p, const Mask& mask, const attn_tiles& t, S* ws) {
  const Index nqt = (p.lq + t.br - 1) / t.br;
  const Index items = p.batch * p.heads * nqt;
  if (items == 0) return;
  // Later query tiles of a causal mask carry more work: hand them out first.
  auto run_item = [&](Index w, int tid) {
    const Index qt = nqt - 1 - (w % nqt);
    const Index bh = w / nqt;
    attn_tiled_query_tile(p, mask, t, ws + static_cast<Index>(tid) * t.per_thread,
                          bh / p.heads, bh % p.heads, qt * t.br);
  };
#if EMASK_HAS_OPENMP
  if (p.threads > 1 && items > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(p.threads)
    for (Index w = 0; w < items; ++w) run_item(w, attn_thread_id());
    return;
  }
#endif
  for (Index w = 0; w < items; ++w) run_item(w, 0);
}

}  // namespace detail
EMASK_NAMESPACE_END
