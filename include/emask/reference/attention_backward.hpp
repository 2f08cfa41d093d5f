/// \file
/// \brief reference::naive for masked_attention_backward: per query head the Lq x Lk
/// probabilities are materialized from the saved log-sum-exp and the plain equations are
/// evaluated with Eigen's GEMM in the scalar type:
///   P = exp(S - lse) on kept pairs (0 elsewhere and on rows with lse = -inf),
///   dv += P^T dout, dP = dout v^T, dS = P * (dP - rowsum(dout * out)) (* (1 - tanh^2)),
///   dq = scale dS k, dk += scale dS^T q.
/// O(Lq * Lk) memory per thread; one work item per (batch, KV head), its query heads in order.
/// Use masked_attention_backward(reference::naive, ...); the tests and benchmarks compare the
/// tiled variant with it.
#pragma once

#include "emask/config.hpp"
#include "emask/kernels/attention_backward.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

/// Scalars of workspace per thread of the naive backward (P, dS, tanh, keep flags).
inline Index attn_bwd_naive_per_thread(Index lq, Index lk) { return 3 * lq * lk + lk + 16; }

/// Work item (b, KV head g): dk, dv of g and dq of its query heads.
template <class S, class Mask>
void attn_bwd_naive_group(const attn_bwd_problem<S>& p, const Mask& mask, Index b, Index g,
                          S* buf) {
  using Mat = row_matrix<S>;
  using CMap = Eigen::Map<const Mat, Eigen::Unaligned, Eigen::OuterStride<>>;
  using MMap = Eigen::Map<Mat, Eigen::Unaligned, Eigen::OuterStride<>>;
  const Index lq = p.lq, lk = p.lk, group = p.heads / p.kv_heads;
  const auto st = [](Index s) { return Eigen::OuterStride<>((std::max)(s, Index(1))); };
  CMap k(p.k_ptr(b, g * group), lk, p.d, st(p.k_sl));
  CMap v(p.v_ptr(b, g * group), lk, p.dv, st(p.v_sl));
  MMap dk(p.gk_ptr(b, g), lk, p.d, st(p.gk_sl));
  MMap dv(p.gv_ptr(b, g), lk, p.dv, st(p.gv_sl));
  dk.setZero();
  dv.setZero();
  Eigen::Map<Mat> P(buf, lq, lk), dS(buf + lq * lk, lq, lk), T(buf + 2 * lq * lk, lq, lk);
  S* flags = buf + 3 * lq * lk;
  const mask_tiles<S> tiles(mask);
  const S g_scale = p.grad_scale();
  for (Index h = g * group; h < (g + 1) * group; ++h) {
    CMap q(p.q_ptr(b, h), lq, p.d, st(p.q_sl));
    CMap out(p.oi_ptr(b, h), lq, p.dv, st(p.oi_sl));
    CMap dout(p.do_ptr(b, h), lq, p.dv, st(p.do_sl));
    MMap dq(p.gq_ptr(b, h), lq, p.d, st(p.gq_sl));
    const S* lse = p.lse_in_ptr(b, h);
    const Index mb = p.b0 + b, mh = p.h0 + h;
    // Scores in the forward's order: scale, softcap, ALiBi, the additive bias.
    if (p.d > 0) {
      P.noalias() = q * k.transpose();
    } else {
      P.setZero();
    }
    P *= p.scale;
    if (p.has_softcap) {
      T = P.array().tanh();
      P = p.softcap * T;
    }
    const S slope = p.slope(h);
    for (Index i = 0; i < lq; ++i) {
      S* row = P.data() + i * lk;
      if (slope != S(0))
        for (Index j = 0; j < lk; ++j)
          row[j] += slope * static_cast<S>((p.k_off + j) - (p.q_off + i));
      if (p.mod) p.mod->apply(row, 1, lk, 1, lk, mb, mh, p.q_off + i, p.k_off);
      // P = exp(S - lse) on kept pairs; 0 on masked pairs and rows that kept nothing.
      tiles.flags(mb, mh, p.q_off + i, p.k_off, p.k_off + lk, flags, 1);
      const bool empty = is_neg_inf(lse[i]);
      for (Index j = 0; j < lk; ++j)
        row[j] = (!empty && flags[j] != S(0)) ? std::exp(row[j] - lse[i]) : S(0);
    }
    const lse_vector<S> D = (dout.array() * out.array()).rowwise().sum();
    if (p.dv > 0) dv.noalias() += P.transpose() * dout;
    if (p.dv > 0) {
      dS.noalias() = dout * v.transpose();
    } else {
      dS.setZero();
    }
    dS = (P.array() == S(0))  // exact: masked weights are exactly 0
             .select(S(0), P.array() * (dS.array().colwise() - D.array()) * g_scale);
    if (p.has_softcap) dS.array() *= (S(1) - T.array().square());
    if (p.d > 0) {
      dq.noalias() = dS * k;
      dk.noalias() += dS.transpose() * q;
    }
  }
}

template <>
struct attn_bwd_kernel<reference::naive_t> {
  template <class S, class Mask>
  static void run(const attn_bwd_problem<S>& p, const Mask& mask, const attention_options&) {
    const Index items = p.batch * p.kv_heads;
    const Index per = attn_bwd_naive_per_thread(p.lq, p.lk);
    attention_workspace<S> ws;
    ws.reserve(static_cast<Index>(p.threads) * per);
    S* base = ws.data();
#if EMASK_HAS_OPENMP
#pragma omp parallel num_threads(p.threads)
    {
      // Eigen's GEMM would nest its own OpenMP threads: one per task here.
      omp_set_num_threads(1);
#pragma omp for schedule(dynamic, 1)
      for (Index w = 0; w < items; ++w)
        attn_bwd_naive_group(p, mask, w / p.kv_heads, w % p.kv_heads,
                             base + static_cast<Index>(thread_id()) * per);
    }
#else
    for (Index w = 0; w < items; ++w)
      attn_bwd_naive_group(p, mask, w / p.kv_heads, w % p.kv_heads, base);
#endif
  }
};

}  // namespace detail
EMASK_NAMESPACE_END
