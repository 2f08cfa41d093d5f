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

#include "emask/core/tile_grid.hpp"
#include "emask/detail/attn_common.hpp"
#include "emask/detail/gemm_microkernel.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/detail/mask_tiles.hpp"
#include "emask/detail/simd.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

/// Tile geometry of one tiled call.
struct attn_tiles {
  Index br;   // query rows per tile (multiple of gemm_cols: queries are the vector dimension)
  Index bc;   // keys per tile (multiple of gemm_rows)
  Index dp;   // max(D, 1)
  Index dvp;  // Dv padded to gemm_cols
  Index per_thread;  // scalars of workspace per thread

  /// Tiles are clamped to the problem (tile_grid::clamp) before they are rounded up, so huge
  /// options mean one tile and no size overflows.
  template <class S>
  static attn_tiles make(Index tile_q, Index tile_k, Index lq, Index lk, Index d, Index dv) {
    attn_tiles t{};
    t.br = round_up(tile_grid::clamp(tile_q, lq), gemm_cols<S>);
    t.bc = round_up(tile_grid::clamp(tile_k, lk), gemm_rows);
    t.dp = std::max<Index>(d, 1);
    t.dvp = round_up(std::max<Index>(dv, 1), gemm_cols<S>);
    const auto r = [](Index n) { return round_up(n, 16); };
    t.per_thread = r(t.dp * t.br)     // packed, scaled Q^T
                   + r(t.bc * t.dp)   // K rows of a ragged last tile, zero padded
                   + r(t.bc * t.br)   // scores / probabilities, transposed
                   + r(t.bc * t.br)   // keep flags of a partial tile
                   + r(t.bc * t.dvp)  // packed V
                   + r(t.br * t.dvp)  // output accumulator
                   + 7 * r(t.br)      // m, l, alpha, tile max, tile any, span lo, hi
                   + r((t.br + t.bc + static_cast<Index>(sizeof(S)) - 1) /
                       static_cast<Index>(sizeof(S)));  // bytes: has (per query), col (per key)
    return t;
  }
  /// The grid of one head's problem in these tiles.
  tile_grid grid(Index lq, Index lk) const { return tile_grid(lq, lk, br, bc); }
};

/// One thread's workspace, in slices of their own types. Lane state that the vectorized loops
/// blend (tile any, span bounds) stays in S lanes; per-row and per-key flags are bytes.
template <class S>
struct attn_tile_ws {
  S *qt, *kp, *st, *fl, *vp, *o;  // packed Q^T, ragged K, scores^T, keep flags, packed V, O
  S *m, *l, *alpha;               // online softmax state per query
  S *tmax, *tany, *lo, *hi;       // this tile: max and any kept per query, key span per query
  unsigned char* has;             // per query: some key kept so far
  unsigned char* col;             // per key of the tile: kept by some query
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
    tmax = take(t.br);
    tany = take(t.br);
    lo = take(t.br);
    hi = take(t.br);
    has = reinterpret_cast<unsigned char*>(p);
    col = has + t.br;
  }
};

/// One query tile of one head in flight: where it is and what the current key tile is.
template <class S>
struct attn_tile_task {
  const attn_problem<S>& p;
  const attn_tiles& t;
  attn_tile_ws<S> w;
  Index b, h;    // head in the problem
  Index mb, mh;  // the same head in mask coordinates
  Index q0, nq;  // query rows [q0, q0 + nq) of the tile
  Index qa;      // absolute position of query q0
  // The key tile.
  Index k0 = 0, nk = 0, ka = 0;
  bool full = false;      // no mask test: every pair kept
  bool intervals = true;  // partial: kept keys of query i are [lo[i], hi[i]); else flags fl
};

/// Stage 1. Packs Q^T (scaled): qt[c, i] = scale * Q[q0 + i, c], padding queries zero; resets
/// the accumulators.
template <class S>
void tile_pack_q(attn_tile_task<S>& a) {
  const auto& p = a.p;
  const attn_tile_ws<S> w = a.w;  // a copy: the pointers stay in registers
  const Index br = a.t.br;
  const S* Q = p.q_ptr(a.b, a.h);
  std::fill(w.qt, w.qt + a.t.dp * br, S(0));
  for (Index i = 0; i < a.nq; ++i) {
    const S* src = Q + (a.q0 + i) * p.q_sl;
    for (Index c = 0; c < p.d; ++c) w.qt[c * br + i] = src[c] * p.scale;
  }
  std::fill(w.o, w.o + br * a.t.dvp, S(0));
  std::fill(w.m, w.m + br, std::numeric_limits<S>::lowest());
  std::fill(w.l, w.l + br, S(0));
  std::fill(w.has, w.has + br, static_cast<unsigned char>(0));
}

template <class S>
void tile_transform_scores(attn_tile_task<S>& a);

/// Stage 2. Scores of the key tile, S^T = K_tile (scaled Q)^T, then tile_transform_scores. K rows
/// are read in place unless the tile is ragged.
template <class S>
void tile_scores(attn_tile_task<S>& a) {
  const auto& p = a.p;
  const auto& t = a.t;
  const attn_tile_ws<S> w = a.w;  // a copy: the pointers stay in registers
  const Index br = t.br, nk = a.nk;
  const Index nkp = round_up(nk, gemm_rows);
  const S* kptr = p.k_ptr(a.b, a.h) + a.k0 * p.k_sl;
  Index ldk = p.k_sl;
  if (nkp != nk || p.d == 0) {
    std::fill(w.kp, w.kp + nkp * t.dp, S(0));
    for (Index j = 0; j < nk; ++j)
      std::copy(kptr + j * p.k_sl, kptr + j * p.k_sl + p.d, w.kp + j * t.dp);
    kptr = w.kp;
    ldk = t.dp;
  }
  gemm_abt(kptr, ldk, w.qt, br, t.dp, w.st, br, nkp, br);
  tile_transform_scores(a);
}

/// Stage 2, second half: softcap, ALiBi and the score modifier on every score of the tile's
/// S^T (masked ones are discarded by stage 3). Shared by every way of computing the products.
template <class S>
void tile_transform_scores(attn_tile_task<S>& a) {
  using ArrMap = Eigen::Map<Eigen::Array<S, Eigen::Dynamic, 1>>;
  const auto& p = a.p;
  const attn_tile_ws<S> w = a.w;  // a copy: the pointers stay in registers
  const Index br = a.t.br, nk = a.nk, nq = a.nq;
  if (p.has_softcap) {
    for (Index j = 0; j < nk; ++j) {
      ArrMap row(w.st + j * br, nq);
      row = p.softcap * row.tanh();
    }
  }
  const S slope = p.slope(a.h);
  if (slope != S(0)) {
    for (Index j = 0; j < nk; ++j) {
      S* row = w.st + j * br;
      const Index rel0 = a.ka + j - a.qa;
      for (Index i = 0; i < nq; ++i) row[i] += slope * static_cast<S>(rel0 - i);
    }
  }
  if (p.mod) p.mod->apply(w.st, br, Index(1), nq, nk, a.mb, a.mh, a.qa, a.ka);
}

/// One key row j of a partial tile, kept keys given as spans: masked scores become lowest(),
/// then the tile max and "any kept" per query. Restrict-qualified so that it vectorizes (blends).
template <class S>
inline void tile_mask_row_spans(S* EMASK_RESTRICT row, S* EMASK_RESTRICT tm, S* EMASK_RESTRICT ta,
                                const S* EMASK_RESTRICT lo, const S* EMASK_RESTRICT hi, S jf,
                                Index nq) {
  const S lowest = std::numeric_limits<S>::lowest();
  for (Index i = 0; i < nq; ++i) {
    const bool k = (lo[i] <= jf) & (jf < hi[i]);  // no short circuit: a blend
    row[i] = k ? row[i] : lowest;
    tm[i] = row[i] > tm[i] ? row[i] : tm[i];
    ta[i] = k ? S(1) : ta[i];
  }
}
/// The same with keep flags (1 / 0) for the row.
template <class S>
inline void tile_mask_row_flags(S* EMASK_RESTRICT row, S* EMASK_RESTRICT tm, S* EMASK_RESTRICT ta,
                                const S* EMASK_RESTRICT f, Index nq) {
  const S lowest = std::numeric_limits<S>::lowest();
  for (Index i = 0; i < nq; ++i) {
    const bool k = f[i] != S(0);
    row[i] = k ? row[i] : lowest;
    tm[i] = row[i] > tm[i] ? row[i] : tm[i];
    ta[i] = k ? S(1) : ta[i];
  }
}

/// Stage 3, the only step that asks the mask. A partial tile gets the kept keys of each query:
/// exact spans [lo, hi) from interval masks, otherwise keep flags (one column per query). Then
/// the tile max and "any kept" per query, with masked scores overwritten (never read again).
template <class S>
void tile_mask(attn_tile_task<S>& a, const mask_tiles<S>& mask) {
  using ArrMap = Eigen::Map<Eigen::Array<S, Eigen::Dynamic, 1>>;
  const attn_tile_ws<S> w = a.w;  // a copy: the pointers stay in registers
  const Index br = a.t.br, nk = a.nk, nq = a.nq;
  const S lowest = std::numeric_limits<S>::lowest();
  ArrMap tmax(w.tmax, nq), tany(w.tany, nq);
  tmax.setConstant(lowest);
  if (a.full) {
    tany.setConstant(S(1));
    for (Index j = 0; j < nk; ++j) tmax = tmax.cwiseMax(ArrMap(w.st + j * br, nq));
    return;
  }
  const bool intervals = mask.spans(a.mb, a.mh, a.qa, nq, a.ka, a.ka + nk, w.lo, w.hi);
  a.intervals = intervals;
  if (!intervals) {
    std::fill(w.fl, w.fl + nk * br, S(0));
    for (Index i = 0; i < nq; ++i) {
      const Index lo_i = static_cast<Index>(w.lo[i]), hi_i = static_cast<Index>(w.hi[i]);
      if (lo_i < hi_i)
        mask.flags(a.mb, a.mh, a.qa + i, a.ka + lo_i, a.ka + hi_i, w.fl + lo_i * br + i, br);
    }
  }
  tany.setZero();
  for (Index j = 0; j < nk; ++j) {
    if (intervals)
      tile_mask_row_spans(w.st + j * br, w.tmax, w.tany, w.lo, w.hi, static_cast<S>(j), nq);
    else
      tile_mask_row_flags(w.st + j * br, w.tmax, w.tany, w.fl + j * br, nq);
  }
}

/// Stage 4. Online-softmax update of (m, alpha), explicit about rows without any kept key so
/// far or in this tile. Returns whether some row of the tile keeps a key.
template <class S>
bool tile_online_update(attn_tile_task<S>& a) {
  // Locals, not the workspace struct: byte stores may alias any object in memory.
  S* const m = a.w.m;
  S* const alpha = a.w.alpha;
  const S* const tmax = a.w.tmax;
  const S* const tany = a.w.tany;
  unsigned char* const has = a.w.has;
  const Index nq = a.nq;
  bool any_row = false;
  for (Index i = 0; i < nq; ++i) {
    if (tany[i] == S(0)) {
      alpha[i] = S(1);
      continue;
    }
    any_row = true;
    if (has[i]) {
      const S mn = (std::max)(m[i], tmax[i]);
      alpha[i] = std::exp(m[i] - mn);
      m[i] = mn;
    } else {
      alpha[i] = S(0);
      m[i] = tmax[i];
      has[i] = 1;
    }
  }
  return any_row;
}

/// row[i] = exp(row[i] - m[i]) for i < nq, flushed: a weight below the smallest normal number
/// is exactly 0 on every build (Eigen's packet exp clamps its argument near -88 for float on
/// SSE and AVX builds, which gave a kept -inf score the weight 2.9e-39).
template <class S>
inline void tile_exp_row(S* row, const S* m, Index nq) {
  simd::for_each_packet<S>(nq, [&](Index k, auto c) {
    simd::store<S>(row + k,
                   simd::exp_flushed<S>(
                       Eigen::internal::psub(simd::load<S>(row + k, c), simd::load<S>(m + k, c))),
                   c);
  });
}

/// Stage 5, first half: P = exp(S - m) (masked entries exactly 0), l = alpha l + rowsum P, and
/// per key whether some query keeps it (col). The second half (tile_pv) adds P V: V is read in
/// place when its rows are whole SIMD blocks and every key of the tile is kept by some query;
/// otherwise packed, with the rows of keys no query keeps set to zero (so that non-finite values
/// there cannot reach the output through 0 * inf).
template <class S>
void tile_probabilities(attn_tile_task<S>& a) {
  using ArrMap = Eigen::Map<Eigen::Array<S, Eigen::Dynamic, 1>>;
  const auto& t = a.t;
  const attn_tile_ws<S> w = a.w;  // a copy: byte stores below may alias any object in memory
  const Index br = t.br, nk = a.nk, nq = a.nq;
  const bool full = a.full, intervals = a.intervals;
  ArrMap m(w.m, nq), l(w.l, nq), alpha(w.alpha, nq);
  l *= alpha;
  for (Index j = 0; j < nk; ++j) {
    ArrMap row(w.st + j * br, nq);
    tile_exp_row(w.st + j * br, w.m, nq);
    if (!full) {
      // Masked entries get exactly 0 (their exp above is of a clamped, finite argument).
      S* r = w.st + j * br;
      S any = S(0);
      if (intervals) {
        const S jf = static_cast<S>(j);
        for (Index i = 0; i < nq; ++i) {
          const bool k = (w.lo[i] <= jf) & (jf < w.hi[i]);
          r[i] = k ? r[i] : S(0);
          any = k ? S(1) : any;
        }
      } else {
        const S* f = w.fl + j * br;
        for (Index i = 0; i < nq; ++i) {
          const bool k = f[i] != S(0);
          r[i] = k ? r[i] : S(0);
          any = k ? S(1) : any;
        }
      }
      w.col[j] = any != S(0);
    }
    l += row;
  }
  // Padding queries keep probability 0.
  if (nq < br)
    for (Index j = 0; j < nk; ++j) std::fill(w.st + j * br + nq, w.st + (j + 1) * br, S(0));
  if (nq < br) std::fill(w.alpha + nq, w.alpha + br, S(1));
}

/// Stage 5, second half: O = alpha O + P V over the tile's keys.
template <class S>
void tile_pv(attn_tile_task<S>& a) {
  const auto& p = a.p;
  const auto& t = a.t;
  const attn_tile_ws<S> w = a.w;  // a copy: the pointers stay in registers
  const Index br = t.br, nk = a.nk;
  const bool full = a.full;
  const S* V = p.v_ptr(a.b, a.h);
  const S* vptr = V + a.k0 * p.v_sl;
  Index ldv = p.v_sl;
  bool all_cols = full;
  if (!full) {
    all_cols = true;
    for (Index j = 0; j < nk && all_cols; ++j) all_cols = w.col[j] != 0;
  }
  if (!(p.dv == t.dvp && all_cols)) {
    for (Index j = 0; j < nk; ++j) {
      S* dst = w.vp + j * t.dvp;
      if (full || w.col[j]) {
        const S* src = V + (a.k0 + j) * p.v_sl;
        std::copy(src, src + p.dv, dst);
        std::fill(dst + p.dv, dst + t.dvp, S(0));
      } else {
        std::fill(dst, dst + t.dvp, S(0));
      }
    }
    vptr = w.vp;
    ldv = t.dvp;
  }
  gemm_scale_add_ab(w.o, t.dvp, w.alpha, w.st, Index(1), br, vptr, ldv, nk, br, t.dvp);
}

/// Stage 5: probabilities, then P V.
template <class S>
void tile_accumulate_pv(attn_tile_task<S>& a) {
  tile_probabilities(a);
  tile_pv(a);
}

/// Stage 6. Normalizes O into out and writes the log-sum-exp; a row that kept no key gets
/// zeros and -infinity.
template <class S>
void tile_epilogue(attn_tile_task<S>& a) {
  const auto& p = a.p;
  const attn_tile_ws<S> w = a.w;  // a copy: the pointers stay in registers
  S* out = p.out_ptr(a.b, a.h);
  S* lse = p.lse_ptr(a.b, a.h);
  for (Index i = 0; i < a.nq; ++i) {
    S* orow = out + (a.q0 + i) * p.o_sl;
    // A row whose kept weights are all 0 (every kept score -inf) is written like an empty
    // one; l is compared by its bits so that a NaN row stays NaN under -ffast-math.
    if (w.has[i] && magnitude_bits(w.l[i]) != 0) {
      const S inv = S(1) / w.l[i];
      for (Index c = 0; c < p.dv; ++c) orow[c] = w.o[i * a.t.dvp + c] * inv;
      if (lse) lse[a.q0 + i] = w.m[i] + std::log(w.l[i]);
    } else {
      std::fill(orow, orow + p.dv, S(0));
      if (lse) lse[a.q0 + i] = -std::numeric_limits<S>::infinity();
    }
  }
}

/// Computes one query tile [q0, q0 + br) of head (b, h): the stages above over the key tiles
/// the mask does not rule out.
template <class S>
void attn_tiled_query_tile(const attn_problem<S>& p, const mask_tiles<S>& mask, const attn_tiles& t,
                           S* wsbase, Index b, Index h, Index q0) {
  attn_tile_task<S> a{p,        t,  attn_tile_ws<S>(wsbase, t),  b,           h, p.b0 + b,
                      p.h0 + h, q0, (std::min)(t.br, p.lq - q0), p.q_off + q0};
  tile_pack_q(a);
  const tile_grid grid = t.grid(p.lq, p.lk);
  for (Index kt = 0; kt < grid.k_tiles(); ++kt) {
    a.k0 = grid.k_begin(kt);
    a.nk = grid.k_end(kt) - a.k0;
    a.ka = p.k_off + a.k0;
    const tile_state ts = mask.tile(a.mb, a.mh, a.qa, a.qa + a.nq, a.ka, a.ka + a.nk);
    if (ts == tile_state::empty) continue;
    a.full = ts == tile_state::full;
    a.intervals = true;
    tile_scores(a);
    tile_mask(a, mask);
    if (!tile_online_update(a)) continue;
    tile_accumulate_pv(a);
  }
  tile_epilogue(a);
}

/// Runs the tiled kernel over every (batch, head, query tile), in parallel with OpenMP.
/// \p ws holds at least threads * t.per_thread scalars.
template <class S>
void attn_tiled_run(const attn_problem<S>& p, const mask_tiles<S>& mask, const attn_tiles& t,
                    S* ws) {
  const Index nqt = t.grid(p.lq, p.lk).q_tiles();
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
