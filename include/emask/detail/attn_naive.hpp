/// \file
/// \brief The naive attention variant: the reference that materializes Lq x Lk scores.
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/attn_naive.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif

#include <algorithm>

#include "emask/core/materialize.hpp"
#include "emask/detail/attn_common.hpp"
#include "emask/detail/mask_tiles.hpp"
#include "emask/detail/softmax_row.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

/// Scalars of workspace per thread of the naive variant (scores, then one row of values and
/// one of keep flags).
inline Index attn_naive_per_thread(Index lq, Index lk) { return lq * lk + 2 * lk + 16; }

/// One head: S = scale Q K^T, softcap, ALiBi, masked entries replaced (never read), row softmax
/// over kept entries, out = P V. \p sbuf holds attn_naive_per_thread(lq, lk) scalars.
template <class S, class Mask>
void attn_naive_head(const attn_problem<S>& p, const Mask& mask, Index b, Index h, S* sbuf) {
  using Mat = row_matrix<S>;
  using CMap = Eigen::Map<const Mat, Eigen::Unaligned, Eigen::OuterStride<>>;
  using MMap = Eigen::Map<Mat, Eigen::Unaligned, Eigen::OuterStride<>>;
  const Index lq = p.lq, lk = p.lk;
  CMap q(p.q_ptr(b, h), lq, p.d, Eigen::OuterStride<>(std::max<Index>(p.q_sl, 1)));
  CMap k(p.k_ptr(b, h), lk, p.d, Eigen::OuterStride<>(std::max<Index>(p.k_sl, 1)));
  CMap v(p.v_ptr(b, h), lk, p.dv, Eigen::OuterStride<>(std::max<Index>(p.v_sl, 1)));
  MMap out(p.out_ptr(b, h), lq, p.dv, Eigen::OuterStride<>(std::max<Index>(p.o_sl, 1)));
  Eigen::Map<Mat> s(sbuf, lq, lk);
  if (p.d > 0) {
    s.noalias() = q * k.transpose();
  } else {
    s.setZero();
  }
  s *= p.scale;
  const Index mb = p.b0 + b, mh = p.h0 + h;
  S* lse = p.lse_ptr(b, h);
  // Each row through the one row-softmax core; masked scores are never read.
  const mask_tiles<S> tiles(mask);
  S* vbuf = sbuf + lq * lk;
  S* fbuf = vbuf + lk;
  row_plan<S> plan;
  for (Index i = 0; i < lq; ++i) {
    S* row = sbuf + i * lk;
    attn_transform(p, b, h, i, 0, row, lk);
    plan_masked_row(plan, tiles, mb, mh, p.q_off + i, row, lk, S(1), vbuf, fbuf, p.k_off);
    finish_row<false>(row, row, lk, plan, vbuf, fbuf, S(1), lse ? lse + i : nullptr, false);
  }
  if (p.dv > 0) {
    if (lk > 0) {
      out.noalias() = s * v;
    } else {
      out.setZero();
    }
  }
}

}  // namespace detail
EMASK_NAMESPACE_END
