/// \file
/// \brief masked_attention_backward: the gradients dq, dk, dv (and of the learned sink logits)
/// of masked_attention, from the saved forward output and log-sum-exp. Variants by tag: tiled
/// FlashAttention-2 backward (the default, emask/detail/attn_backward.hpp) and reference::naive
/// (emask/reference/attention_backward.hpp).
///
/// With s = transform(scale q k^T) as in the forward (softcap, ALiBi, an additive mask),
/// P = softmax over kept keys, out = P v and lse saved by the forward:
///   D_i = sum_c dout_ic out_ic,   P_ij = exp(s_ij - lse_i) (0 for masked pairs),
///   dv = P^T dout,  dP = dout v^T,  dS = P * (dP - D)  (times 1 - (s_capped / softcap)^2),
///   dq = scale dS k,  dk = scale dS^T q;  with sinks, dL/ds_h = -sum_{b,i} exp(s_h - lse_bhi)
///   D_bhi.
/// A row with lse = -infinity (it kept nothing) contributes nothing and gets dq = 0; a key no
/// query keeps gets dk = dv = 0. A NaN in a kept score, in out, lse or dout of a kept row makes
/// the gradients it reaches NaN. The tiled variant never reads q and dout of a row that kept
/// nothing, nor k and v of a key no query of a tile keeps, so non-finite values there do not
/// matter; the naive variant multiplies densely, so there they must be finite. Results are
/// bit-identical whatever the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "emask/config.hpp"
#include "emask/detail/attn_backward.hpp"
#include "emask/kernels/attention.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

/// What one backward variant runs. Specialized per tag; a call instantiates only its own.
template <class Variant>
struct attn_bwd_kernel {
  static_assert(!std::is_same<Variant, reference::naive_t>::value,
                "emask::masked_attention_backward: include "
                "<emask/reference/attention_backward.hpp> for reference::naive");
  static_assert(std::is_same<Variant, tiled_t>::value,
                "emask::masked_attention_backward: the variant is emask::tiled or "
                "emask::reference::naive");
};

template <>
struct attn_bwd_kernel<tiled_t> {
  template <class S, class Mask>
  static void run(const attn_bwd_problem<S>& p, const Mask& mask, const attention_options& opt) {
    const attn_bwd_tiles t = attn_bwd_tiles::make<S>(opt.tile_q, opt.tile_k, p.lq, p.lk, p.d, p.dv);
    attention_workspace<S> ws;
    const Index rows = p.batch * p.heads * p.lq;
    ws.reserve(round_up(rows, 16) + static_cast<Index>(p.threads) * t.per_thread);
    attn_bwd_problem<S> pd = p;
    attn_bwd_delta(p, ws.data());
    pd.delta = ws.data();
    attn_bwd_tiled_run(pd, mask_tiles<S>(mask), t, ws.data() + round_up(rows, 16));
  }
};

/// Zeroes a [n, heads, rows, cols] gradient.
template <class S>
void attn_bwd_zero(S* base, Index n, Index heads, Index rows, Index cols, Index sb, Index sh,
                   Index sl) {
  for (Index b = 0; b < n; ++b)
    for (Index h = 0; h < heads; ++h)
      for (Index i = 0; i < rows; ++i) {
        S* r = base + b * sb + h * sh + i * sl;
        std::fill(r, r + cols, S(0));
      }
}

/// Everything checked: runs the variant, then the sink gradients.
template <class V, class S, class Mask>
void attn_bwd_dispatch(attn_bwd_problem<S>& p, const Mask& mask, const attention_options& opt,
                       S* dsink, const char* where) {
  attn_check_mask(p, mask, where);
  // From here on nothing fails: outputs are written.
  if (p.lq == 0 || p.lk == 0 || p.heads == 0) {
    attn_bwd_zero(p.gq, p.batch, p.heads, p.lq, p.d, p.gq_sb, p.gq_sh, p.gq_sl);
    attn_bwd_zero(p.gk, p.batch, p.kv_heads, p.lk, p.d, p.gk_sb, p.gk_sh, p.gk_sl);
    attn_bwd_zero(p.gv, p.batch, p.kv_heads, p.lk, p.dv, p.gv_sb, p.gv_sh, p.gv_sl);
  } else if (p.batch > 0) {
    attn_bwd_kernel<V>::run(p, mask, opt);
  }
  if (dsink) {
    // dL/ds_h = sum over rows of P_sink (0 - D_i), P_sink = exp(s_h - lse_i); fixed order.
    for (Index h = 0; h < p.heads; ++h) {
      const S s = p.sinks[static_cast<std::size_t>(h)];
      S acc = S(0);
      for (Index b = 0; b < p.batch; ++b) {
        const S* L = p.lse_in_ptr(b, h);
        const S* O = p.oi_ptr(b, h);
        const S* dO = p.do_ptr(b, h);
        for (Index i = 0; i < p.lq; ++i) {
          if (is_neg_inf(L[i])) continue;
          S d = S(0);
          for (Index c = 0; c < p.dv; ++c) d += dO[i * p.do_sl + c] * O[i * p.oi_sl + c];
          acc -= std::exp(s - L[i]) * d;
        }
      }
      dsink[h] = acc;
    }
  }
}

inline void attn_bwd_check_mod(const attention_options& opt, const char* where) {
  if (!opt.score_mod.empty())
    fail_argument(where, "options.score_mod", "set",
                  "none (a score modifier has no derivative here)");
}

inline void attn_bwd_check_dsink(const attention_options& opt, Index size, Index heads,
                                 const char* where) {
  if (opt.sink_logit.empty())
    fail_argument(where, "dsink", concat(size, " entries"),
                  "no dsink argument unless options.sink_logit is set");
  if (size != heads)
    fail_argument(where, "dsink", concat(size, " entries"), heads, " (one per query head)");
}

template <class V, class S, class Mask>
void attn_bwd_single_expr(const Eigen::Ref<const row_matrix<S>>& q,
                          const Eigen::Ref<const row_matrix<S>>& k,
                          const Eigen::Ref<const row_matrix<S>>& v, const Mask& mask,
                          const attention_options& opt, const Eigen::Ref<const row_matrix<S>>& out,
                          const Eigen::Ref<const lse_vector<S>>& lse,
                          const Eigen::Ref<const row_matrix<S>>& dout, Eigen::Ref<row_matrix<S>> dq,
                          Eigen::Ref<row_matrix<S>> dk, Eigen::Ref<row_matrix<S>> dv, S* dsink,
                          Index dsink_size) {
  static_assert(is_mask_v<Mask>,
                "emask::masked_attention_backward: pass an emask mask expression (a builder such "
                "as emask::causal), a bool_matrix, a drop_mask or an additive_mask");
  const char* where = "masked_attention_backward";
  const auto dims = [](const auto& m) { return concat(m.rows(), "x", m.cols()); };
  if (k.cols() != q.cols())
    fail_argument(where, "k", dims(k), "D = ", q.cols(), " columns (the columns of q)");
  if (v.rows() != k.rows())
    fail_argument(where, "v", dims(v), k.rows(), " rows (one per key of k)");
  if (out.rows() != q.rows() || out.cols() != v.cols())
    fail_argument(where, "out", dims(out), q.rows(), "x", v.cols(), " (rows of q x columns of v)");
  if (lse.size() != q.rows())
    fail_argument(where, "lse", concat(lse.size(), " rows"), q.rows(), " (one per row of q)");
  if (dout.rows() != out.rows() || dout.cols() != out.cols())
    fail_argument(where, "dout", dims(dout), out.rows(), "x", out.cols(), " (the shape of out)");
  if (dq.rows() != q.rows() || dq.cols() != q.cols())
    fail_argument(where, "dq", dims(dq), q.rows(), "x", q.cols(), " (the shape of q)");
  if (dk.rows() != k.rows() || dk.cols() != k.cols())
    fail_argument(where, "dk", dims(dk), k.rows(), "x", k.cols(), " (the shape of k)");
  if (dv.rows() != v.rows() || dv.cols() != v.cols())
    fail_argument(where, "dv", dims(dv), v.rows(), "x", v.cols(), " (the shape of v)");
  if (dsink) attn_bwd_check_dsink(opt, dsink_size, 1, where);
  attn_bwd_problem<S> p{};
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.out = nullptr;
  p.q_sl = q.outerStride();
  p.k_sl = k.outerStride();
  p.v_sl = v.outerStride();
  p.o_in = out.data();
  p.oi_sl = out.outerStride();
  p.dout = dout.data();
  p.do_sl = dout.outerStride();
  p.lse_in = lse.data();
  p.lse_in_row = q.rows();
  p.gq = dq.data();
  p.gq_sl = dq.outerStride();
  p.gk = dk.data();
  p.gk_sl = dk.outerStride();
  p.gv = dv.data();
  p.gv_sl = dv.outerStride();
  p.batch = 1;
  p.heads = 1;
  p.kv_heads = 1;
  p.lq = q.rows();
  p.lk = k.rows();
  p.d = q.cols();
  p.dv = v.cols();
  p.b0 = opt.slice.b;
  p.h0 = opt.slice.h;
  attn_set_options(p, opt, where, opt.alibi.empty() ? 0 : 1, opt.slice.h);
  p.sinks = sink_logits<S>(where, opt, opt.slice.h, 1);
  attn_bwd_dispatch<V>(p, mask, opt, dsink, where);
}

template <class V, class S, class Mask>
void attn_bwd_batched_expr(const tensor_view<const S>& q, const tensor_view<const S>& k,
                           const tensor_view<const S>& v, const Mask& mask,
                           const attention_options& opt, const tensor_view<const S>& out,
                           const Eigen::Ref<const row_matrix<S>>& lse,
                           const tensor_view<const S>& dout, const tensor_view<S>& dq,
                           const tensor_view<S>& dk, const tensor_view<S>& dv, S* dsink,
                           Index dsink_size) {
  static_assert(is_mask_v<Mask>,
                "emask::masked_attention_backward: pass an emask mask expression (a builder such "
                "as emask::causal), a bool_matrix, a drop_mask or an additive_mask");
  const char* where = "masked_attention_backward";
  const auto shape = [](const auto& t) { return view_shape(t); };
  auto same = [](const auto& a, const auto& b) {
    return a.batch() == b.batch() && a.heads() == b.heads() && a.length() == b.length() &&
           a.dim() == b.dim();
  };
  attn_check_batched_views(where, q, k, v, out, true, lse.rows(), lse.cols());
  if (!same(dout, out))
    fail_argument(where, "dout", shape(dout), shape(out), " (the shape of out)");
  if (!same(dq, q)) fail_argument(where, "dq", shape(dq), shape(q), " (the shape of q)");
  if (!same(dk, k)) fail_argument(where, "dk", shape(dk), shape(k), " (the shape of k)");
  if (!same(dv, v)) fail_argument(where, "dv", shape(dv), shape(v), " (the shape of v)");
  if (dsink) attn_bwd_check_dsink(opt, dsink_size, q.heads(), where);
  attn_bwd_problem<S> p{};
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.out = nullptr;
  p.q_sb = q.stride_b();
  p.q_sh = q.stride_h();
  p.q_sl = q.stride_l();
  p.k_sb = k.stride_b();
  p.k_sh = k.stride_h();
  p.k_sl = k.stride_l();
  p.v_sb = v.stride_b();
  p.v_sh = v.stride_h();
  p.v_sl = v.stride_l();
  p.o_in = out.data();
  p.oi_sb = out.stride_b();
  p.oi_sh = out.stride_h();
  p.oi_sl = out.stride_l();
  p.dout = dout.data();
  p.do_sb = dout.stride_b();
  p.do_sh = dout.stride_h();
  p.do_sl = dout.stride_l();
  p.lse_in = lse.data();
  p.lse_in_row = lse.outerStride();
  p.gq = dq.data();
  p.gq_sb = dq.stride_b();
  p.gq_sh = dq.stride_h();
  p.gq_sl = dq.stride_l();
  p.gk = dk.data();
  p.gk_sb = dk.stride_b();
  p.gk_sh = dk.stride_h();
  p.gk_sl = dk.stride_l();
  p.gv = dv.data();
  p.gv_sb = dv.stride_b();
  p.gv_sh = dv.stride_h();
  p.gv_sl = dv.stride_l();
  p.batch = q.batch();
  p.heads = q.heads();
  p.kv_heads = k.heads();
  p.lq = q.length();
  p.lk = k.length();
  p.d = q.dim();
  p.dv = v.dim();
  attn_set_options(p, opt, where, opt.alibi.empty() ? 0 : q.heads(), 0);
  p.sinks = sink_logits<S>(where, opt, 0, q.heads());
  attn_bwd_dispatch<V>(p, mask, opt, dsink, where);
}

// The entry points behind the public overloads: a user score modifier is refused first, then a
// materialized mask becomes an expression (an additive_mask becomes the bias score modifier,
// whose derivative is 1, so the gradients stay exact).
template <class V, class S, class Mask>
void attn_bwd_single(const Eigen::Ref<const row_matrix<S>>& q,
                     const Eigen::Ref<const row_matrix<S>>& k,
                     const Eigen::Ref<const row_matrix<S>>& v, const Mask& mask,
                     const attention_options& opt, const Eigen::Ref<const row_matrix<S>>& out,
                     const Eigen::Ref<const lse_vector<S>>& lse,
                     const Eigen::Ref<const row_matrix<S>>& dout, Eigen::Ref<row_matrix<S>> dq,
                     Eigen::Ref<row_matrix<S>> dk, Eigen::Ref<row_matrix<S>> dv, S* dsink,
                     Index dsink_size) {
  attn_bwd_check_mod(opt, "masked_attention_backward");
  if constexpr (is_materialized_mask_v<Mask>) {
    with_mask_expression(mask, opt, [&](const auto& m, const attention_options& o) {
      attn_bwd_single_expr<V, S>(q, k, v, m, o, out, lse, dout, dq, dk, dv, dsink, dsink_size);
    });
  } else {
    attn_bwd_single_expr<V, S>(q, k, v, mask, opt, out, lse, dout, dq, dk, dv, dsink, dsink_size);
  }
}

template <class V, class S, class Mask>
void attn_bwd_batched(const tensor_view<const S>& q, const tensor_view<const S>& k,
                      const tensor_view<const S>& v, const Mask& mask, const attention_options& opt,
                      const tensor_view<const S>& out, const Eigen::Ref<const row_matrix<S>>& lse,
                      const tensor_view<const S>& dout, const tensor_view<S>& dq,
                      const tensor_view<S>& dk, const tensor_view<S>& dv, S* dsink,
                      Index dsink_size) {
  attn_bwd_check_mod(opt, "masked_attention_backward");
  if constexpr (is_materialized_mask_v<Mask>) {
    with_mask_expression(mask, opt, [&](const auto& m, const attention_options& o) {
      attn_bwd_batched_expr<V, S>(q, k, v, m, o, out, lse, dout, dq, dk, dv, dsink, dsink_size);
    });
  } else {
    attn_bwd_batched_expr<V, S>(q, k, v, mask, opt, out, lse, dout, dq, dk, dv, dsink, dsink_size);
  }
}

/// One-line errors for outputs that are not row-major or scalars that differ.
template <class DG, class... DIn>
struct attn_bwd_dense_args {
  static constexpr bool row_major = static_cast<bool>(DG::IsRowMajor) || DG::ColsAtCompileTime == 1;
  static constexpr bool same_scalar =
      (std::is_same<typename DG::Scalar, typename DIn::Scalar>::value && ...);
  static_assert(row_major,
                "emask::masked_attention_backward: dq, dk and dv must be row-major (an "
                "emask::row_matrix<S>, or a block or Map of one)");
  static_assert(same_scalar,
                "emask::masked_attention_backward: every argument must have the same scalar type "
                "(all float or all double)");
  static constexpr bool ok = row_major && same_scalar;
};

template <class SQ, class SK, class SV, class SO, class SD, class S>
constexpr void attn_bwd_check_views() {
  static_assert(!std::is_const<S>::value,
                "emask::masked_attention_backward: dq, dk and dv must be mutable views");
  static_assert(std::is_same<std::remove_const_t<SQ>, S>::value &&
                    std::is_same<std::remove_const_t<SK>, S>::value &&
                    std::is_same<std::remove_const_t<SV>, S>::value &&
                    std::is_same<std::remove_const_t<SO>, S>::value &&
                    std::is_same<std::remove_const_t<SD>, S>::value,
                "emask::masked_attention_backward: every view must have the same scalar type");
}

template <class D>
Eigen::Ref<row_matrix<typename D::Scalar>> attn_bwd_out(const Eigen::MatrixBase<D>& x) {
  return Eigen::Ref<row_matrix<typename D::Scalar>>(const_cast<Eigen::MatrixBase<D>&>(x).derived());
}

}  // namespace detail

/// \brief Gradients of one head of masked_attention: given q (Lq x D), k (Lk x D), v (Lk x Dv),
/// the mask and options of the forward call, its output \p out (Lq x Dv) and log-sum-exp \p lse
/// (Lq entries, from the masked_attention overload that writes it) and the incoming gradient
/// \p dout (Lq x Dv), overwrites \p dq (Lq x D), \p dk (Lk x D) and \p dv (Lk x Dv).
///
/// \param variant emask::tiled (FlashAttention-2 backward) or reference::naive (include
///                emask/reference/attention_backward.hpp).
/// \param q       queries, any dense expression.
/// \param k       keys.
/// \param v       values.
/// \param mask    the forward's mask (expression, bool_matrix, drop_mask or additive_mask).
/// \param options the forward's options; options.score_mod must be empty.
/// \param out     the forward's output.
/// \param lse     the forward's log-sum-exp (with sinks: including the sink).
/// \param dout    dL/d(out).
/// \param dq      dL/dq, row-major, overwritten.
/// \param dk      dL/dk, row-major, overwritten.
/// \param dv      dL/dv, row-major, overwritten.
template <class Variant, class DQ, class DK, class DV, class Mask, class DO, class DL, class DD,
          class GQ, class GK, class GV, std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
void masked_attention_backward(Variant variant, const Eigen::MatrixBase<DQ>& q,
                               const Eigen::MatrixBase<DK>& k, const Eigen::MatrixBase<DV>& v,
                               const Mask& mask, const attention_options& options,
                               const Eigen::MatrixBase<DO>& out, const Eigen::MatrixBase<DL>& lse,
                               const Eigen::MatrixBase<DD>& dout, const Eigen::MatrixBase<GQ>& dq,
                               const Eigen::MatrixBase<GK>& dk, const Eigen::MatrixBase<GV>& dv) {
  (void)variant;
  using S = typename GQ::Scalar;
  static_assert(std::is_floating_point<S>::value,
                "emask::masked_attention_backward: use float or double");
  if constexpr (detail::attn_bwd_dense_args<GQ, DQ, DK, DV, DO, DL, DD>::ok &&
                detail::attn_bwd_dense_args<GK, GQ>::ok &&
                detail::attn_bwd_dense_args<GV, GQ>::ok) {
    detail::attn_bwd_single<Variant, S>(q.derived(), k.derived(), v.derived(), mask, options,
                                        out.derived(), lse.derived(), dout.derived(),
                                        detail::attn_bwd_out(dq), detail::attn_bwd_out(dk),
                                        detail::attn_bwd_out(dv), nullptr, 0);
  }
}

/// \brief One head with a learned sink logit (options.sink_logit, entry slice.h): also writes
/// dL/d(sink logit) into \p dsink (a vector of 1 entry).
template <class Variant, class DQ, class DK, class DV, class Mask, class DO, class DL, class DD,
          class GQ, class GK, class GV, class GS,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
void masked_attention_backward(Variant variant, const Eigen::MatrixBase<DQ>& q,
                               const Eigen::MatrixBase<DK>& k, const Eigen::MatrixBase<DV>& v,
                               const Mask& mask, const attention_options& options,
                               const Eigen::MatrixBase<DO>& out, const Eigen::MatrixBase<DL>& lse,
                               const Eigen::MatrixBase<DD>& dout, const Eigen::MatrixBase<GQ>& dq,
                               const Eigen::MatrixBase<GK>& dk, const Eigen::MatrixBase<GV>& dv,
                               const Eigen::MatrixBase<GS>& dsink) {
  (void)variant;
  using S = typename GQ::Scalar;
  static_assert(std::is_floating_point<S>::value,
                "emask::masked_attention_backward: use float or double");
  if constexpr (detail::attn_bwd_dense_args<GQ, DQ, DK, DV, DO, DL, DD, GS>::ok &&
                detail::attn_bwd_dense_args<GK, GQ>::ok &&
                detail::attn_bwd_dense_args<GV, GQ>::ok) {
    Eigen::Ref<lse_vector<S>> ds(const_cast<Eigen::MatrixBase<GS>&>(dsink).derived());
    detail::attn_bwd_single<Variant, S>(q.derived(), k.derived(), v.derived(), mask, options,
                                        out.derived(), lse.derived(), dout.derived(),
                                        detail::attn_bwd_out(dq), detail::attn_bwd_out(dk),
                                        detail::attn_bwd_out(dv), ds.data(), ds.size());
  }
}

/// \brief Batched gradients as views: q [B, H, Lq, D], k [B, Hkv, Lk, D], v [B, Hkv, Lk, Dv],
/// out and dout [B, H, Lq, Dv], lse (B*H) x Lq (row b*H + h, as the forward's batched lse
/// overload writes it); overwrites dq [B, H, Lq, D], dk [B, Hkv, Lk, D], dv [B, Hkv, Lk, Dv].
/// With grouped-query heads dk and dv of a KV head sum over the query heads that read it.
template <class Variant, class SQ, class SK, class SV, class SO, class SD, class S, class Mask,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
void masked_attention_backward(Variant variant, const tensor_view<SQ>& q, const tensor_view<SK>& k,
                               const tensor_view<SV>& v, const Mask& mask,
                               const attention_options& options, const tensor_view<SO>& out,
                               Eigen::Ref<const row_matrix<std::remove_const_t<S>>> lse,
                               const tensor_view<SD>& dout, const tensor_view<S>& dq,
                               const tensor_view<S>& dk, const tensor_view<S>& dv) {
  (void)variant;
  detail::attn_bwd_check_views<SQ, SK, SV, SO, SD, S>();
  detail::attn_bwd_batched<Variant, S>(q, k, v, mask, options, out, lse, dout, dq, dk, dv, nullptr,
                                       0);
}

/// \brief Batched gradients with learned sink logits: also writes dL/d(sink logit of head h)
/// (summed over the batch) into \p dsink (H entries).
template <class Variant, class SQ, class SK, class SV, class SO, class SD, class S, class Mask,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
void masked_attention_backward(Variant variant, const tensor_view<SQ>& q, const tensor_view<SK>& k,
                               const tensor_view<SV>& v, const Mask& mask,
                               const attention_options& options, const tensor_view<SO>& out,
                               Eigen::Ref<const row_matrix<std::remove_const_t<S>>> lse,
                               const tensor_view<SD>& dout, const tensor_view<S>& dq,
                               const tensor_view<S>& dk, const tensor_view<S>& dv,
                               Eigen::Ref<lse_vector<std::remove_const_t<S>>> dsink) {
  (void)variant;
  detail::attn_bwd_check_views<SQ, SK, SV, SO, SD, S>();
  detail::attn_bwd_batched<Variant, S>(q, k, v, mask, options, out, lse, dout, dq, dk, dv,
                                       dsink.data(), dsink.size());
}

/// \brief One head, default variant (emask::tiled).
template <class DQ, class DK, class DV, class Mask, class DO, class DL, class DD, class GQ,
          class GK, class GV>
void masked_attention_backward(const Eigen::MatrixBase<DQ>& q, const Eigen::MatrixBase<DK>& k,
                               const Eigen::MatrixBase<DV>& v, const Mask& mask,
                               const attention_options& options, const Eigen::MatrixBase<DO>& out,
                               const Eigen::MatrixBase<DL>& lse, const Eigen::MatrixBase<DD>& dout,
                               const Eigen::MatrixBase<GQ>& dq, const Eigen::MatrixBase<GK>& dk,
                               const Eigen::MatrixBase<GV>& dv) {
  masked_attention_backward(tiled, q, k, v, mask, options, out, lse, dout, dq, dk, dv);
}

/// \brief One head with the sink gradient, default variant (emask::tiled).
template <class DQ, class DK, class DV, class Mask, class DO, class DL, class DD, class GQ,
          class GK, class GV, class GS>
void masked_attention_backward(const Eigen::MatrixBase<DQ>& q, const Eigen::MatrixBase<DK>& k,
                               const Eigen::MatrixBase<DV>& v, const Mask& mask,
                               const attention_options& options, const Eigen::MatrixBase<DO>& out,
                               const Eigen::MatrixBase<DL>& lse, const Eigen::MatrixBase<DD>& dout,
                               const Eigen::MatrixBase<GQ>& dq, const Eigen::MatrixBase<GK>& dk,
                               const Eigen::MatrixBase<GV>& dv,
                               const Eigen::MatrixBase<GS>& dsink) {
  masked_attention_backward(tiled, q, k, v, mask, options, out, lse, dout, dq, dk, dv, dsink);
}

/// \brief Batched gradients, default variant (emask::tiled).
template <class SQ, class SK, class SV, class SO, class SD, class S, class Mask>
void masked_attention_backward(const tensor_view<SQ>& q, const tensor_view<SK>& k,
                               const tensor_view<SV>& v, const Mask& mask,
                               const attention_options& options, const tensor_view<SO>& out,
                               Eigen::Ref<const row_matrix<std::remove_const_t<S>>> lse,
                               const tensor_view<SD>& dout, const tensor_view<S>& dq,
                               const tensor_view<S>& dk, const tensor_view<S>& dv) {
  masked_attention_backward(tiled, q, k, v, mask, options, out, lse, dout, dq, dk, dv);
}

/// \brief Batched gradients with the sink gradients, default variant (emask::tiled).
template <class SQ, class SK, class SV, class SO, class SD, class S, class Mask>
void masked_attention_backward(const tensor_view<SQ>& q, const tensor_view<SK>& k,
                               const tensor_view<SV>& v, const Mask& mask,
                               const attention_options& options, const tensor_view<SO>& out,
                               Eigen::Ref<const row_matrix<std::remove_const_t<S>>> lse,
                               const tensor_view<SD>& dout, const tensor_view<S>& dq,
                               const tensor_view<S>& dk, const tensor_view<S>& dv,
                               Eigen::Ref<lse_vector<std::remove_const_t<S>>> dsink) {
  masked_attention_backward(tiled, q, k, v, mask, options, out, lse, dout, dq, dk, dv, dsink);
}

EMASK_NAMESPACE_END
