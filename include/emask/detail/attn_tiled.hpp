/// \file
/// \brief The tiled (FlashAttention-2) attention kernel: online softmax over key tiles, empty
/// tiles skipped, no mask test on full tiles, O(tile) workspace per thread.
///
/// Layout: scores are kept transposed, S^T[j, i] (key j of the tile, query i), so that
/// - Q^T is packed once per query tile and K rows are read in place (no per-tile transpose);
/// - the softmax statistics of all queries of the tile (max, sum, rescale) are vectors along i,
///   updated one key row at a time;
/// - P V reads the probabilities of 8 queries for one key from one contiguous run.
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/attn_tiled.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif

#include <algorithm>
#include <cstring>

#include "emask/detail/attn_common.hpp"
#include "emask/detail/gemm_microkernel.hpp"
#include "emask/detail/mask_tiles.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

/// Tile geometry of one tiled call.
struct attn_tiles {
  Index br;   // query rows per tile (multiple of gemm_cols: queries are the vector dimension)
  Index bc;   // keys per tile (multiple of gemm_rows)
  Index dp;   // max(D, 1)
  Index dvp;  // Dv padded to gemm_cols
  Index per_thread;  // scalars of workspace per thread

  template <class S>
  static attn_tiles make(Index tile_q, Index tile_k, Index d, Index dv) {
    attn_tiles t{};
    t.br = round_up(std::max<Index>(tile_q, 1), gemm_cols<S>);
    t.bc = round_up(std::max<Index>(tile_k, 1), gemm_rows);
    t.dp = std::max<Index>(d, 1);
    t.dvp = round_up(std::max<Index>(dv, 1), gemm_cols<S>);
    const auto r = [](Index n) { return round_up(n, 16); };
    t.per_thread = r(t.dp * t.br)     // packed, scaled Q^T
                   + r(t.bc * t.dp)   // K rows of a ragged last tile, zero padded
                   + r(t.bc * t.br)   // scores / probabilities, transposed
                   + r(t.bc * t.br)   // keep flags of a partial tile
                   + r(t.bc * t.dvp)  // packed V
                   + r(t.br * t.dvp)  // output accumulator
                   + 8 * r(t.br)      // m, l, alpha, has, tile max, tile any, span lo, hi
                   + r(t.bc);         // keys kept by some query of the tile
    return t;
  }
};

/// Slices of one thread's workspace.
template <class S>
struct attn_tile_ws {
  S *qt, *kp, *st, *fl, *vp, *o, *m, *l, *alpha, *has, *tmax, *tany, *lo, *hi, *col;
  attn_tile_ws(S* base, const attn_tiles& t) {
    S* p = base;
    auto take = [&p](Index n) {
      S* r = p;
      p += round_up(n, 16);
      return r;
    };
    qt = take(t.dp * t.br);
    kp = take(t.bc * t.dp);
    st = take(t.bc * t.br);
    fl = take(t.bc * t.br);
    vp = take(t.bc * t.dvp);
    o = take(t.br * t.dvp);
    m = take(t.br);
    l = take(t.br);
    alpha = take(t.br);
    has = take(t.br);
    tmax = take(t.br);
    tany = take(t.br);
    lo = take(t.br);
    hi = take(t.br);
    col = take(t.bc);
  }
};

/// Computes one query tile [q0, q0 + nq) of head (b, h).
template <class S>
void attn_tiled_query_tile(const attn_problem<S>& p, const mask_tiles<S>& mask, const attn_tiles& t,
                           S* wsbase, Index b, Index h, Index q0) {
  using Arr = Eigen::Array<S, Eigen::Dynamic, 1>;
  using ArrMap = Eigen::Map<Arr>;
  attn_tile_ws<S> w(wsbase, t);
  const Index br = t.br;
  const Index nq = std::min(br, p.lq - q0);
  const Index d = p.d, dv = p.dv;
  const Index mb = p.b0 + b, mh = p.h0 + h;  // mask coordinates
  const S* Q = p.q_ptr(b, h);
  const S* K = p.k_ptr(b, h);
  const S* V = p.v_ptr(b, h);
  const S lowest = std::numeric_limits<S>::lowest();
  const S slope = p.slope(h);

  // Pack Q^T (scaled): qt[c, i] = scale * Q[q0 + i, c]; padding queries are zero.
  std::fill(w.qt, w.qt + t.dp * br, S(0));
  for (Index i = 0; i < nq; ++i) {
    const S* src = Q + (q0 + i) * p.q_sl;
    for (Index c = 0; c < d; ++c) w.qt[c * br + i] = src[c] * p.scale;
  }
  std::fill(w.o, w.o + br * t.dvp, S(0));
  std::fill(w.m, w.m + br, lowest);
  std::fill(w.l, w.l + br, S(0));
  std::fill(w.has, w.has + br, S(0));

  ArrMap m(w.m, nq), l(w.l, nq), alpha(w.alpha, nq), has(w.has, nq), tmax(w.tmax, nq),
      tany(w.tany, nq);
  const Index qa = p.q_off + q0;  // absolute position of query 0 of the tile
  const bool direct_v = dv == t.dvp;
  for (Index k0 = 0; k0 < p.lk; k0 += t.bc) {
    const Index nk = std::min(t.bc, p.lk - k0);
    const Index ka = p.k_off + k0;
    const tile_state ts = mask.tile(mb, mh, qa, qa + nq, ka, ka + nk);
    if (ts == tile_state::empty) continue;
    const bool full = ts == tile_state::full;

    // S^T = K_tile (scaled Q)^T. K rows are read in place unless the tile is ragged.
    const Index nkp = round_up(nk, gemm_rows);
    const S* kptr = K + k0 * p.k_sl;
    Index ldk = p.k_sl;
    if (nkp != nk || d == 0) {
      std::fill(w.kp, w.kp + nkp * t.dp, S(0));
      for (Index j = 0; j < nk; ++j)
        std::copy(kptr + j * p.k_sl, kptr + j * p.k_sl + d, w.kp + j * t.dp);
      kptr = w.kp;
      ldk = t.dp;
    }
    gemm_abt(kptr, ldk, w.qt, br, t.dp, w.st, br, nkp, br);

    // Softcap and ALiBi on every score of the tile (masked ones are discarded below).
    if (p.has_softcap) {
      for (Index j = 0; j < nk; ++j) {
        ArrMap row(w.st + j * br, nq);
        row = p.softcap * row.tanh();
      }
    }
    if (slope != S(0)) {
      for (Index j = 0; j < nk; ++j) {
        S* row = w.st + j * br;
        const Index rel0 = ka + j - qa;
        for (Index i = 0; i < nq; ++i) row[i] += slope * static_cast<S>(rel0 - i);
      }
    }

    // Partial tile: the kept keys of each query. Interval masks give exact spans [lo, hi);
    // otherwise keep flags, one column per query, refined with keep().
    bool intervals = true;
    if (!full) {
      intervals = mask.spans(mb, mh, qa, nq, ka, ka + nk, w.lo, w.hi);
      if (!intervals) {
        std::fill(w.fl, w.fl + nk * br, S(0));
        for (Index i = 0; i < nq; ++i) {
          const Index lo_i = static_cast<Index>(w.lo[i]), hi_i = static_cast<Index>(w.hi[i]);
          if (lo_i < hi_i)
            mask.flags(mb, mh, qa + i, ka + lo_i, ka + hi_i, w.fl + lo_i * br + i, br);
        }
      }
    }
    const S* lo = w.lo;
    const S* hi = w.hi;
    // kept(j, i) for a partial tile; plain loops so that the compiler turns them into blends.
    auto kept = [&](Index j, Index i) {
      return intervals ? (lo[i] <= static_cast<S>(j) && static_cast<S>(j) < hi[i])
                       : w.fl[j * br + i] != S(0);
    };

    // Tile max over kept keys, per query. Masked scores are overwritten: never read again.
    tmax.setConstant(lowest);
    if (full) {
      tany.setConstant(S(1));
      for (Index j = 0; j < nk; ++j) tmax = tmax.max(ArrMap(w.st + j * br, nq));
    } else {
      tany.setZero();
      S* tm = w.tmax;
      S* ta = w.tany;
      for (Index j = 0; j < nk; ++j) {
        S* row = w.st + j * br;
        if (intervals) {
          const S jf = static_cast<S>(j);
          for (Index i = 0; i < nq; ++i) {
            const bool k = lo[i] <= jf && jf < hi[i];
            row[i] = k ? row[i] : lowest;
            tm[i] = row[i] > tm[i] ? row[i] : tm[i];
            ta[i] = k ? S(1) : ta[i];
          }
        } else {
          const S* f = w.fl + j * br;
          for (Index i = 0; i < nq; ++i) {
            const bool k = f[i] != S(0);
            row[i] = k ? row[i] : lowest;
            tm[i] = row[i] > tm[i] ? row[i] : tm[i];
            ta[i] = k ? S(1) : ta[i];
          }
        }
      }
    }
    // Online-softmax update, explicit about rows without any kept key so far or in this tile.
    bool any_row = false;
    for (Index i = 0; i < nq; ++i) {
      if (tany[i] == S(0)) {
        alpha[i] = S(1);
        continue;
      }
      any_row = true;
      if (has[i] != S(0)) {
        const S mn = std::max(m[i], tmax[i]);
        alpha[i] = std::exp(m[i] - mn);
        m[i] = mn;
      } else {
        alpha[i] = S(0);
        m[i] = tmax[i];
        has[i] = S(1);
      }
    }
    if (!any_row) continue;
    l *= alpha;
    for (Index j = 0; j < nk; ++j) {
      ArrMap row(w.st + j * br, nq);
      row = (row - m).exp();
      if (!full) {
        // Masked entries get exactly 0 (their exp above is of a clamped, finite argument).
        S* r = w.st + j * br;
        S any = S(0);
        for (Index i = 0; i < nq; ++i) {
          const bool k = kept(j, i);
          r[i] = k ? r[i] : S(0);
          any = k ? S(1) : any;
        }
        w.col[j] = any;
      }
      l += row;
    }
    // Padding queries keep probability 0.
    if (nq < br)
      for (Index j = 0; j < nk; ++j) std::fill(w.st + j * br + nq, w.st + (j + 1) * br, S(0));

    // V: read in place when its rows are whole SIMD blocks and every key of the tile is kept
    // by some query; otherwise packed, with rows of keys no query keeps set to zero (so that
    // non-finite values there cannot reach the output through 0 * inf).
    const S* vptr = V + k0 * p.v_sl;
    Index ldv = p.v_sl;
    bool all_cols = full;
    if (!full) {
      all_cols = true;
      for (Index j = 0; j < nk && all_cols; ++j) all_cols = w.col[j] != S(0);
    }
    if (!(direct_v && all_cols)) {
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
      vptr = w.vp;
      ldv = t.dvp;
    }
    if (nq < br) std::fill(w.alpha + nq, w.alpha + br, S(1));
    gemm_scale_add_ab(w.o, t.dvp, w.alpha, w.st, Index(1), br, vptr, ldv, nk, br, t.dvp);
  }

  S* out = p.out_ptr(b, h);
  S* lse = p.lse_ptr(b, h);
  for (Index i = 0; i < nq; ++i) {
    S* orow = out + (q0 + i) * p.o_sl;
    if (has[i] != S(0)) {
      const S inv = S(1) / l[i];
      for (Index c = 0; c < dv; ++c) orow[c] = w.o[i * t.dvp + c] * inv;
      if (lse) lse[q0 + i] = m[i] + std::log(l[i]);
    } else {
      std::fill(orow, orow + dv, S(0));
      if (lse) lse[q0 + i] = -std::numeric_limits<S>::infinity();
    }
  }
}

/// Runs the tiled kernel over every (batch, head, query tile), in parallel with OpenMP.
/// \p ws holds at least threads * t.per_thread scalars.
template <class S>
void attn_tiled_run(const attn_problem<S>& p, const mask_tiles<S>& mask, const attn_tiles& t,
                    S* ws) {
  const Index nqt = (p.lq + t.br - 1) / t.br;
  const Index items = p.batch * p.heads * nqt;
  if (items == 0) return;
  // Later query tiles of a causal mask carry more work: hand them out first.
  auto run_item = [&](Index w, int tid) {
    const Index qt = nqt - 1 - (w % nqt);
    const Index bh = w / nqt;
    attn_tiled_query_tile(p, mask, t, ws + static_cast<Index>(tid) * t.per_thread, bh / p.heads,
                          bh % p.heads, qt * t.br);
  };
#if EMASK_HAS_OPENMP
  if (p.threads > 1 && items > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(p.threads)
    for (Index w = 0; w < items; ++w) run_item(w, thread_id());
    return;
  }
#endif
  for (Index w = 0; w < items; ++w) run_item(w, 0);
}

}  // namespace detail
EMASK_NAMESPACE_END
