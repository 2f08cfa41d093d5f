/// \file
/// \brief The tiled backward pass of masked attention: FlashAttention-2's backward (Dao 2023,
/// "FlashAttention-2: Faster Attention with Better Parallelism and Work Partitioning",
/// Algorithm 2), with the forward's tile answers: empty tiles skipped, no mask test on full
/// tiles, key spans or keep flags on partial tiles (mask_tiles, exactly as the forward).
///
/// For one (query tile, key tile) pair the scores are recomputed from Q and K with the forward's
/// transform (scale, softcap, ALiBi, an additive bias), then
///   P = exp(S - lse)  (masked pairs and rows with lse = -inf exactly 0),
///   dV += P^T dO,  dP = dO V^T,  dS = P * (dP - D) * (1 - tanh^2 if softcap) * scale,
///   dK += dS^T Q,  dQ += dS K,  with D_i = rowsum(dO_i * O_i) computed once before (as FA2).
/// Workspace: O(tile) per thread (never Lq x Lk) plus D (B*H*Lq scalars, the size of lse).
/// Scores are kept as [query, key]: scale K^T, V^T and K are packed once per key tile, and the
/// Q and dO rows of whole query tiles are read in place (no per-pair packing); the five tile
/// products run on the register-blocked kernels of attn_backward_gemm.hpp, which read P, dS
/// (or their transposes) by scalars in place.
///
/// Work and determinism (no float atomics, bit-identical for any thread count):
/// - fused scheme, used when batch x KV heads >= threads: a work item is one (batch, KV head);
///   it zeroes the dq rows of its query heads, then for each key tile (ascending) accumulates
///   dK, dV of the tile over its query heads (ascending) and query tiles (ascending) in the
///   workspace and writes them once, and adds the dQ contribution of each pair to the dq rows.
/// - two-pass scheme, used when fewer (batch, KV head) items than threads: pass 1 has one work
///   item per (batch, KV head, key tile) and computes dK, dV exactly as above; pass 2 has one
///   item per (batch, query head, query tile), zeroes its dq rows and adds the dQ contribution
///   of every key tile in ascending order. It recomputes S and dP once more (about 7 tile
///   products instead of 5) to keep both cores busy.
/// Both schemes run the same pair code and add every contribution in the same order (dK, dV:
/// heads then query tiles; dq rows: key tiles ascending), so they give the same bits.
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/attn_backward.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif

#include <algorithm>

#include "emask/core/tile_grid.hpp"
#include "emask/detail/attn_backward_gemm.hpp"
#include "emask/detail/attn_common.hpp"
#include "emask/detail/attn_tiled.hpp"
#include "emask/detail/gemm_microkernel.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/detail/mask_tiles.hpp"
#include "emask/detail/simd.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

/// The backward problem: the forward's (q, k, v, options) plus the saved out and lse, the
/// incoming gradient dout and the three gradients.
template <class S>
struct attn_bwd_problem : attn_problem<S> {
  const S* o_in = nullptr;  // forward output [B, H, Lq, Dv]
  Index oi_sb = 0, oi_sh = 0, oi_sl = 0;
  const S* dout = nullptr;  // [B, H, Lq, Dv]
  Index do_sb = 0, do_sh = 0, do_sl = 0;
  const S* lse_in = nullptr;  // (B*H rows, stride lse_in_row) x Lq
  Index lse_in_row = 0;
  S* gq = nullptr;  // [B, H, Lq, D]
  Index gq_sb = 0, gq_sh = 0, gq_sl = 0;
  S* gk = nullptr;  // [B, Hkv, Lk, D]
  Index gk_sb = 0, gk_sh = 0, gk_sl = 0;
  S* gv = nullptr;  // [B, Hkv, Lk, Dv]
  Index gv_sb = 0, gv_sh = 0, gv_sl = 0;
  const S* delta = nullptr;  // tiled: D = rowsum(dout * out), (B*H) x Lq contiguous

  const S* oi_ptr(Index b, Index h) const { return o_in + b * oi_sb + h * oi_sh; }
  const S* do_ptr(Index b, Index h) const { return dout + b * do_sb + h * do_sh; }
  const S* lse_in_ptr(Index b, Index h) const {
    return lse_in + (b * this->heads + h) * lse_in_row;
  }
  S* gq_ptr(Index b, Index h) const { return gq + b * gq_sb + h * gq_sh; }
  S* gk_ptr(Index b, Index g) const { return gk + b * gk_sb + g * gk_sh; }
  S* gv_ptr(Index b, Index g) const { return gv + b * gv_sb + g * gv_sh; }
  /// d(score)/d(q . k): the scale, times (1 - tanh^2) per pair when softcap is on.
  S grad_scale() const { return this->has_softcap ? this->scale * this->softcap : this->scale; }
};

/// Tile geometry of one backward call.
struct attn_bwd_tiles {
  Index br;   // query rows per tile (multiple of gemm_rows)
  Index bc;   // keys per tile (multiple of gemm_cols: the columns of S)
  Index dp;   // max(D, 1)
  Index dpp;  // D padded to gemm_cols
  Index dvd;  // max(Dv, 1)
  Index dvp;  // Dv padded to gemm_cols
  Index per_thread;

  template <class S>
  static attn_bwd_tiles make(Index tile_q, Index tile_k, Index lq, Index lk, Index d, Index dv) {
    attn_bwd_tiles t{};
    t.br = round_up(tile_grid::clamp(tile_q, lq), gemm_rows);
    t.bc = round_up(tile_grid::clamp(tile_k, lk), gemm_cols<S>);
    t.dp = (std::max)(d, Index(1));
    t.dpp = round_up(t.dp, gemm_cols<S>);
    t.dvd = (std::max)(dv, Index(1));
    t.dvp = round_up(t.dvd, gemm_cols<S>);
    const auto r = [](Index n) { return round_up(n, 16); };
    t.per_thread = r(t.dp * t.bc)         // scaled K^T
                   + r(t.dvd * t.bc)      // V^T
                   + 2 * r(t.bc * t.dpp)  // K rows, K rows of kept keys
                   + r(t.br * t.dpp)      // Q rows (packed when not read in place)
                   + r(t.br * t.dvp)      // dO rows (packed when not read in place)
                   + 4 * r(t.br * t.bc)   // S / P, tanh, dP / dS, keep flags
                   + r(t.bc * t.dpp)      // dK accumulator
                   + r(t.bc * t.dvp)      // dV accumulator
                   + r(t.br * t.dpp)      // dQ of one pair (when not added in place)
                   + 5 * r(t.br)          // lse, valid, D, span lo, hi
                   + r((t.bc + static_cast<Index>(sizeof(S)) - 1) /
                       static_cast<Index>(sizeof(S)));  // bytes: kept by some query, per key
    return t;
  }
  tile_grid grid(Index lq, Index lk) const { return tile_grid(lq, lk, br, bc); }
};

/// One thread's workspace.
template <class S>
struct attn_bwd_ws {
  S *kst, *vt, *kp, *kz, *qr, *dor, *st, *tb, *dpt, *fl, *dka, *dva, *dqa;
  S *lv, *vl, *dd, *lo, *hi;
  unsigned char* col;
  attn_bwd_ws(S* base, const attn_bwd_tiles& t) {
    S* p = base;
    auto take = [&p](Index n) {
      S* r = p;
      p += round_up(n, 16);
      return r;
    };
    kst = take(t.dp * t.bc);
    vt = take(t.dvd * t.bc);
    kp = take(t.bc * t.dpp);
    kz = take(t.bc * t.dpp);
    qr = take(t.br * t.dpp);
    dor = take(t.br * t.dvp);
    st = take(t.br * t.bc);
    tb = take(t.br * t.bc);
    dpt = take(t.br * t.bc);
    fl = take(t.br * t.bc);
    dka = take(t.bc * t.dpp);
    dva = take(t.bc * t.dvp);
    dqa = take(t.br * t.dpp);
    lv = take(t.br);
    vl = take(t.br);
    dd = take(t.br);
    lo = take(t.br);
    hi = take(t.br);
    col = reinterpret_cast<unsigned char*>(p);
  }
};

/// Packs key tile [k0, k0 + nk) of the KV head of query head h once: scale K^T and V^T (depth x
/// keys, the right operands of S = Q (scale K)^T and dP = dO V^T) and the K rows (of dQ = dS K),
/// all zero padded.
template <class S>
void bwd_pack_kv(const attn_bwd_problem<S>& p, const attn_bwd_tiles& t, const attn_bwd_ws<S>& w,
                 Index b, Index h, Index k0, Index nk) {
  const Index bc = t.bc;
  std::fill(w.kst, w.kst + t.dp * bc, S(0));
  std::fill(w.vt, w.vt + t.dvd * bc, S(0));
  std::fill(w.kp, w.kp + bc * t.dpp, S(0));
  const S* K = p.k_ptr(b, h) + k0 * p.k_sl;
  const S* V = p.v_ptr(b, h) + k0 * p.v_sl;
  for (Index j = 0; j < nk; ++j) {
    const S* kr = K + j * p.k_sl;
    const S* vr = V + j * p.v_sl;
    for (Index c = 0; c < p.d; ++c) w.kst[c * bc + j] = kr[c] * p.scale;
    for (Index c = 0; c < p.dv; ++c) w.vt[c * bc + j] = vr[c];
    std::copy(kr, kr + p.d, w.kp + j * t.dpp);
  }
}

/// exp(row - l) over n entries, results below the smallest normal flushed to 0 (as the forward).
template <class S>
inline void bwd_exp_row(S* row, S l, Index n) {
  const simd::packet<S> m = Eigen::internal::pset1<simd::packet<S>>(l);
  simd::for_each_packet<S>(n, [&](Index k, auto c) {
    simd::store<S>(row + k,
                   simd::exp_flushed<S>(Eigen::internal::psub(simd::load<S>(row + k, c), m)), c);
  });
}

/// dS of one query row (in place over dP): P (dP - D), times (1 - t^2) with softcap, times the
/// scale; exactly 0 where P is 0 (masked pairs and padding: a non-finite dP there must not leak
/// in through 0 * inf).
template <class S>
inline void bwd_ds_row(S* dp, const S* pr, const S* tr, S d, S g, bool softcap, Index n) {
  namespace ei = Eigen::internal;
  using P = simd::packet<S>;
  const P dv = ei::pset1<P>(d), gv = ei::pset1<P>(g), one = ei::pset1<P>(S(1));
  const P zero = ei::pset1<P>(S(0));
  simd::for_each_packet<S>(n, [&](Index k, auto c) {
    const P pv = simd::load<S>(pr + k, c);
    P f = gv;
    if (softcap) {
      const P tv = simd::load<S>(tr + k, c);
      f = ei::pmul(ei::psub(one, ei::pmul(tv, tv)), gv);
    }
    const P x = ei::pmul(ei::pmul(pv, ei::psub(simd::load<S>(dp + k, c), dv)), f);
    // exact: masked weights are exactly 0
    simd::store<S>(dp + k, simd::select<S>(ei::pcmp_eq(pv, zero), zero, x), c);
  });
}

/// One (query tile, key tile) pair of head (b, h); the key tile is packed in w (bwd_pack_kv).
/// Scores are kept as [query, key]: Q and dO are read in place when the tile is whole (every
/// row real and kept) and D, Dv are multiples of gemm_cols, else packed here. Adds dK, dV of the
/// pair to w.dka, w.dva when \p want_kv, and the pair's dQ to the dq rows when \p want_q.
template <class S>
void bwd_pair(const attn_bwd_problem<S>& p, const attn_bwd_tiles& t, const attn_bwd_ws<S>& w,
              const mask_tiles<S>& mask, Index b, Index h, Index q0, Index nq, Index k0, Index nk,
              bool want_kv, bool want_q) {
  const Index mb = p.b0 + b, mh = p.h0 + h, qa = p.q_off + q0, ka = p.k_off + k0;
  const tile_state ts = mask.tile(mb, mh, qa, qa + nq, ka, ka + nk);
  if (ts == tile_state::empty) return;
  const bool full = ts == tile_state::full;
  const Index br = t.br, bc = t.bc;

  // Stage 1: lse and D per query; Q and dO in place or packed. A row with lse = -inf kept
  // nothing: it stays zero everywhere (its q and dO are not even read).
  const S* Q = p.q_ptr(b, h) + q0 * p.q_sl;
  const S* dO = p.do_ptr(b, h) + q0 * p.do_sl;
  const S* L = p.lse_in_ptr(b, h) + q0;
  const S* Dl = p.delta + (b * p.heads + h) * p.lq + q0;
  bool whole = nq == br;
  bool any_row = false;
  for (Index i = 0; i < nq; ++i) {
    const bool kept = !is_neg_inf(L[i]);
    whole = whole && kept;
    any_row = any_row || kept;
    w.lv[i] = kept ? L[i] : S(0);
    w.vl[i] = kept ? S(1) : S(0);
    w.dd[i] = kept ? Dl[i] : S(0);
  }
  if (!any_row) return;
  const S* qm = Q;
  Index ldq = p.q_sl;
  if (!whole || p.d % gemm_cols<S> != 0) {
    std::fill(w.qr, w.qr + br * t.dpp, S(0));
    for (Index i = 0; i < nq; ++i)
      if (w.vl[i] != S(0)) std::copy(Q + i * p.q_sl, Q + i * p.q_sl + p.d, w.qr + i * t.dpp);
    qm = w.qr;
    ldq = t.dpp;
  }
  const S* dom = dO;
  Index lddo = p.do_sl;
  if (!whole || p.dv % gemm_cols<S> != 0) {
    std::fill(w.dor, w.dor + br * t.dvp, S(0));
    for (Index i = 0; i < nq; ++i)
      if (w.vl[i] != S(0)) std::copy(dO + i * p.do_sl, dO + i * p.do_sl + p.dv, w.dor + i * t.dvp);
    dom = w.dor;
    lddo = t.dvp;
  }

  // Stage 2: scores S = Q (scale K)^T and the forward's transform, keeping tanh for softcap.
  bwd_gemm<S, false>(w.st, bc, qm, ldq, Index(1), w.kst, bc, p.d, br, bc);
  const S slope = p.slope(h);
  for (Index i = 0; i < nq; ++i) {
    if (w.vl[i] == S(0)) continue;
    S* row = w.st + i * bc;
    if (p.has_softcap) {
      Eigen::Map<Eigen::Array<S, Eigen::Dynamic, 1>> a(row, bc), tr(w.tb + i * bc, bc);
      tr = a.tanh();
      a = p.softcap * tr;
    }
    if (slope != S(0)) {
      const Index rel0 = ka - qa - i;
      for (Index j = 0; j < nk; ++j) row[j] += slope * static_cast<S>(rel0 + j);
    }
  }
  if (p.mod) p.mod->apply(w.st, Index(1), bc, nq, nk, mb, mh, qa, ka);

  // Stage 3: P = exp(S - lse), exactly 0 for masked pairs (as the forward: spans, else keep
  // flags, on partial tiles), empty rows and padding; per key whether some query keeps it.
  bool intervals = true;
  if (!full) intervals = mask.spans(mb, mh, qa, nq, ka, ka + nk, w.lo, w.hi);
  if (!full) std::fill(w.col, w.col + bc, static_cast<unsigned char>(0));
  for (Index i = 0; i < br; ++i) {
    S* r = w.st + i * bc;
    if (i >= nq || w.vl[i] == S(0)) {
      std::fill(r, r + bc, S(0));
      continue;
    }
    bwd_exp_row(r, w.lv[i], nk);
    std::fill(r + nk, r + bc, S(0));
    if (full) continue;
    if (intervals) {
      const Index lo_i = (std::min)(static_cast<Index>(w.lo[i]), nk);
      const Index hi_i = (std::max)((std::min)(static_cast<Index>(w.hi[i]), nk), lo_i);
      std::fill(r, r + lo_i, S(0));
      std::fill(r + hi_i, r + nk, S(0));
      std::fill(w.col + lo_i, w.col + hi_i, static_cast<unsigned char>(1));
    } else {
      S* f = w.fl + i * bc;
      std::fill(f, f + nk, S(0));
      const Index lo_i = static_cast<Index>(w.lo[i]), hi_i = static_cast<Index>(w.hi[i]);
      if (lo_i < hi_i) mask.flags(mb, mh, qa + i, ka + lo_i, ka + hi_i, f + lo_i, Index(1));
      for (Index j = 0; j < nk; ++j) {
        const bool k = f[j] != S(0);
        r[j] = k ? r[j] : S(0);
        w.col[j] = static_cast<unsigned char>(w.col[j] | static_cast<unsigned char>(k));
      }
    }
  }
  bool all_cols = full;
  if (!full) {
    all_cols = true;
    for (Index j = 0; j < nk; ++j) all_cols = all_cols && w.col[j] != 0;
  }

  // Stage 4: dV += P^T dO; dP = dO V^T; dS in place; dK += dS^T Q.
  if (want_kv && p.dv > 0)
    bwd_gemm<S, true>(w.dva, t.dvp, w.st, Index(1), bc, dom, lddo, nq, bc, t.dvp);
  bwd_gemm<S, false>(w.dpt, bc, dom, lddo, Index(1), w.vt, bc, p.dv, br, bc);
  const S g = p.grad_scale();
  for (Index i = 0; i < br; ++i) {
    S* dp = w.dpt + i * bc;
    if (i >= nq || w.vl[i] == S(0))
      std::fill(dp, dp + bc, S(0));
    else
      bwd_ds_row(dp, w.st + i * bc, w.tb + i * bc, w.dd[i], g, p.has_softcap, bc);
  }
  if (want_kv && p.d > 0)
    bwd_gemm<S, true>(w.dka, t.dpp, w.dpt, Index(1), bc, qm, ldq, nq, bc, t.dpp);

  // Stage 5: dQ of the pair = dS K, added to the dq rows (in place when the rows are whole
  // register blocks). Keys no query of the tile keeps are read as zero rows (a non-finite k
  // there must not reach dq through 0 * inf).
  if (want_q && p.d > 0) {
    const S* kz = w.kp;
    if (!all_cols) {
      for (Index j = 0; j < nk; ++j) {
        S* dst = w.kz + j * t.dpp;
        if (w.col[j])
          std::copy(w.kp + j * t.dpp, w.kp + (j + 1) * t.dpp, dst);
        else
          std::fill(dst, dst + t.dpp, S(0));
      }
      kz = w.kz;
    }
    S* dq = p.gq_ptr(b, h) + q0 * p.gq_sl;
    if (nq == br && p.d % gemm_cols<S> == 0) {
      bwd_gemm<S, true>(dq, p.gq_sl, w.dpt, bc, Index(1), kz, t.dpp, nk, br, t.dpp);
    } else {
      bwd_gemm<S, false>(w.dqa, t.dpp, w.dpt, bc, Index(1), kz, t.dpp, nk, br, t.dpp);
      for (Index i = 0; i < nq; ++i) {
        S* dst = dq + i * p.gq_sl;
        const S* src = w.dqa + i * t.dpp;
        for (Index c = 0; c < p.d; ++c) dst[c] += src[c];
      }
    }
  }
}

/// dK, dV of key tile kt of KV head g of batch b: over the group's query heads (ascending) and
/// the query tiles (ascending); written once. With \p want_q also adds the pairs' dQ.
template <class S>
void bwd_key_tile(const attn_bwd_problem<S>& p, const attn_bwd_tiles& t, const attn_bwd_ws<S>& w,
                  const mask_tiles<S>& mask, Index b, Index g, Index kt, bool want_q) {
  const tile_grid grid = t.grid(p.lq, p.lk);
  const Index group = p.heads / p.kv_heads;
  const Index k0 = grid.k_begin(kt), nk = grid.k_end(kt) - k0;
  bwd_pack_kv(p, t, w, b, g * group, k0, nk);
  std::fill(w.dka, w.dka + t.bc * t.dpp, S(0));
  std::fill(w.dva, w.dva + t.bc * t.dvp, S(0));
  for (Index h = g * group; h < (g + 1) * group; ++h)
    for (Index qt = 0; qt < grid.q_tiles(); ++qt) {
      const Index q0 = grid.q_begin(qt);
      bwd_pair(p, t, w, mask, b, h, q0, grid.q_end(qt) - q0, k0, nk, true, want_q);
    }
  S* dk = p.gk_ptr(b, g);
  S* dv = p.gv_ptr(b, g);
  for (Index j = 0; j < nk; ++j) {
    std::copy(w.dka + j * t.dpp, w.dka + j * t.dpp + p.d, dk + (k0 + j) * p.gk_sl);
    std::copy(w.dva + j * t.dvp, w.dva + j * t.dvp + p.dv, dv + (k0 + j) * p.gv_sl);
  }
}

/// dq rows [q0, q0 + nq) of head (b, h), zeroed first, then every key tile (ascending).
template <class S>
void bwd_query_tile(const attn_bwd_problem<S>& p, const attn_bwd_tiles& t, const attn_bwd_ws<S>& w,
                    const mask_tiles<S>& mask, Index b, Index h, Index qt) {
  const tile_grid grid = t.grid(p.lq, p.lk);
  const Index q0 = grid.q_begin(qt), nq = grid.q_end(qt) - q0;
  S* dq = p.gq_ptr(b, h);
  for (Index i = q0; i < q0 + nq; ++i) std::fill(dq + i * p.gq_sl, dq + i * p.gq_sl + p.d, S(0));
  for (Index kt = 0; kt < grid.k_tiles(); ++kt) {
    const Index k0 = grid.k_begin(kt), nk = grid.k_end(kt) - k0;
    const tile_state ts = mask.tile(p.b0 + b, p.h0 + h, p.q_off + q0, p.q_off + q0 + nq,
                                    p.k_off + k0, p.k_off + k0 + nk);
    if (ts == tile_state::empty) continue;
    bwd_pack_kv(p, t, w, b, h, k0, nk);
    bwd_pair(p, t, w, mask, b, h, q0, nq, k0, nk, false, true);
  }
}

/// D = rowsum(dout * out) of every row, (B*H) x Lq into \p delta (FlashAttention-2 computes it
/// once too, before the main loop).
template <class S>
void attn_bwd_delta(const attn_bwd_problem<S>& p, S* delta) {
  for (Index b = 0; b < p.batch; ++b)
    for (Index h = 0; h < p.heads; ++h) {
      const S* O = p.oi_ptr(b, h);
      const S* dO = p.do_ptr(b, h);
      S* dst = delta + (b * p.heads + h) * p.lq;
      for (Index i = 0; i < p.lq; ++i) {
        S d = S(0);
        for (Index c = 0; c < p.dv; ++c) d += dO[i * p.do_sl + c] * O[i * p.oi_sl + c];
        dst[i] = d;
      }
    }
}

/// Runs the tiled backward over the whole problem (Lq >= 1, Lk >= 1, batch >= 1). \p ws holds
/// at least threads * t.per_thread scalars; p.delta is set (attn_bwd_delta).
template <class S>
void attn_bwd_tiled_run(const attn_bwd_problem<S>& p, const mask_tiles<S>& mask,
                        const attn_bwd_tiles& t, S* ws) {
  const tile_grid grid = t.grid(p.lq, p.lk);
  const Index nkt = grid.k_tiles();
  const Index groups = p.batch * p.kv_heads;
  const Index group = p.heads / p.kv_heads;
  auto fused_item = [&](Index w, int tid) {
    const attn_bwd_ws<S> ww(ws + static_cast<Index>(tid) * t.per_thread, t);
    const Index b = w / p.kv_heads, g = w % p.kv_heads;
    for (Index h = g * group; h < (g + 1) * group; ++h) {
      S* dq = p.gq_ptr(b, h);
      for (Index i = 0; i < p.lq; ++i) std::fill(dq + i * p.gq_sl, dq + i * p.gq_sl + p.d, S(0));
    }
    for (Index kt = 0; kt < nkt; ++kt) bwd_key_tile(p, t, ww, mask, b, g, kt, true);
  };
#if EMASK_HAS_OPENMP
  if (p.threads > 1 && groups < p.threads) {
    // Two passes: dK, dV per (batch, KV head, key tile); dQ per (batch, head, query tile).
    const Index items1 = groups * nkt;
#pragma omp parallel for schedule(dynamic, 1) num_threads(p.threads)
    for (Index w = 0; w < items1; ++w) {
      const attn_bwd_ws<S> ww(ws + static_cast<Index>(thread_id()) * t.per_thread, t);
      bwd_key_tile(p, t, ww, mask, (w / nkt) / p.kv_heads, (w / nkt) % p.kv_heads, w % nkt, false);
    }
    const Index nqt = grid.q_tiles();
    const Index items2 = p.batch * p.heads * nqt;
    // Later query tiles of a causal mask carry more work: hand them out first.
#pragma omp parallel for schedule(dynamic, 1) num_threads(p.threads)
    for (Index w = 0; w < items2; ++w) {
      const attn_bwd_ws<S> ww(ws + static_cast<Index>(thread_id()) * t.per_thread, t);
      const Index bh = w / nqt;
      bwd_query_tile(p, t, ww, mask, bh / p.heads, bh % p.heads, nqt - 1 - w % nqt);
    }
    return;
  }
  if (p.threads > 1 && groups > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(p.threads)
    for (Index w = 0; w < groups; ++w) fused_item(w, thread_id());
    return;
  }
#endif
  for (Index w = 0; w < groups; ++w) fused_item(w, 0);
}

}  // namespace detail
EMASK_NAMESPACE_END
