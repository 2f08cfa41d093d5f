/// \file
/// \brief masked_attention: out = softmax(mask(softcap(scale Q K^T) + ALiBi)) V for one head or
/// for batched [B, H, L, D] / [B, L, H, D] views, with grouped-query heads, optional log-sum-exp
/// output and OpenMP. Variants by tag (emask/kernels/variant.hpp): tiled FlashAttention-2 (the
/// default), emask::decode, and reference::naive (emask/reference/attention.hpp).
///
/// Semantics (every variant): see attention_options for the order of scale, softcap, ALiBi and
/// mask. A query row that keeps no key gives a zero output row and lse = -infinity, never NaN.
/// A NaN in a kept score makes that row NaN; a masked pair is never read, so NaN or inf in its
/// score has no effect. In the tiled and decode variants a key that no query of a tile keeps is
/// not read from V either; the naive variant multiplies P V densely, so there V rows of masked
/// keys must be finite. With finite inputs and finite kept scores every output is finite and
/// bounded by max |v_j| over the kept keys (the tiled and decode variants recompute, with
/// normalized weights, a row whose unnormalized accumulation overflowed). Results are
/// bit-identical whatever the thread count.
#pragma once

#include <algorithm>
#include <type_traits>

#include "emask/config.hpp"
#include "emask/core/polarity.hpp"
#include "emask/core/score_mod.hpp"
#include "emask/detail/attn_common.hpp"
#include "emask/detail/attn_decode.hpp"
#include "emask/detail/attn_rescue.hpp"
#include "emask/detail/attn_tiled.hpp"
#include "emask/kernels/attention_options.hpp"
#include "emask/kernels/merge.hpp"
#include "emask/kernels/tensor_view.hpp"
#include "emask/kernels/variant.hpp"
#include "emask/masks/dense.hpp"
#include "emask/masks/keep_all.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Reusable scratch memory of masked_attention. Reserve it once (reserve_for) and pass it
/// to the overloads that take it: the kernel then allocates nothing.
template <class Scalar>
class attention_workspace {
  static_assert(std::is_floating_point<Scalar>::value,
                "emask::attention_workspace: use float or double");

 public:
  /// \brief Grows the buffer to at least \p scalars entries (never shrinks).
  void reserve(Index scalars) {
    if (scalars > buf_.size()) buf_.resize(scalars);
  }
  /// \brief Scalars held.
  Index size() const noexcept { return buf_.size(); }
  /// \brief Bytes held.
  Index bytes() const noexcept { return buf_.size() * static_cast<Index>(sizeof(Scalar)); }
  /// \brief The buffer.
  Scalar* data() noexcept { return buf_.data(); }

 private:
  lse_vector<Scalar> buf_;
};

namespace detail {

/// Fills the scalar options of \p p from \p opt and checks them. \p n_slope_heads is the number
/// of heads the alibi vector must cover.
template <class S>
void attn_set_options(attn_problem<S>& p, const attention_options& opt, const char* where,
                      Index n_slope_heads, Index slope_head0) {
  check_kernel_options(where, opt, "1/sqrt(D)", p.lq, p.lk);
  if (opt.tile_q < 1) fail_argument(where, "options.tile_q", opt.tile_q, ">= 1");
  if (opt.tile_k < 1) fail_argument(where, "options.tile_k", opt.tile_k, ">= 1");
  if (opt.decode_chunk < 1) fail_argument(where, "options.decode_chunk", opt.decode_chunk, ">= 1");
  const double scale =
      opt.scale ? *opt.scale : (p.d > 0 ? 1.0 / std::sqrt(static_cast<double>(p.d)) : 1.0);
  p.has_softcap = opt.softcap > 0;
  p.softcap = static_cast<S>(opt.softcap);
  p.scale = static_cast<S>(p.has_softcap ? scale / opt.softcap : scale);
  // Checked again in the kernel's scalar: finite as double is not finite as float (1e39), and
  // a softcap that rounds to 0 or a scale / softcap that overflows would turn every score NaN.
  if (p.has_softcap && !(is_finite(p.softcap) && p.softcap > S(0)))
    fail_argument(where, "options.softcap", opt.softcap,
                  "a value >= 0 that is finite and nonzero in the kernel's scalar type");
  if (!is_finite(p.scale))
    fail_argument(where, p.has_softcap ? "options.scale / options.softcap" : "options.scale",
                  p.has_softcap ? scale / opt.softcap : scale,
                  "a value finite in the kernel's scalar type");
  p.q_off = opt.q_offset;
  p.k_off = opt.k_offset;
  p.threads = thread_count(opt.threads);
  p.mod = opt.score_mod.empty() ? nullptr : &opt.score_mod;
  p.slopes.clear();
  if (!opt.alibi.empty()) {
    if (static_cast<Index>(opt.alibi.size()) < slope_head0 + n_slope_heads)
      fail_argument(where, "options.alibi", concat(opt.alibi.size(), " slopes"),
                    "one slope per head (", slope_head0 + n_slope_heads, ")");
    for (Index h = 0; h < n_slope_heads; ++h) {
      const double slope = opt.alibi[static_cast<std::size_t>(slope_head0 + h)];
      if (!is_finite(static_cast<S>(slope)))
        fail_argument(where, concat("options.alibi[", slope_head0 + h, "]").c_str(), slope,
                      "a slope finite in the kernel's scalar type");
      p.slopes.push_back(static_cast<S>(slope));
    }
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
  if (p.mod) p.mod->check(r, where);
}

/// What one attention variant runs. Specialized per tag; a call instantiates only its own.
template <class Variant>
struct attn_kernel {
  static_assert(!std::is_same<Variant, reference::naive_t>::value,
                "emask::masked_attention: include <emask/reference/attention.hpp> for "
                "reference::naive");
  static_assert(std::is_same<Variant, tiled_t>::value || std::is_same<Variant, decode_t>::value,
                "emask::masked_attention: the variant is emask::tiled, emask::decode or "
                "emask::reference::naive");
};

template <>
struct attn_kernel<tiled_t> {
  template <class S>
  static Index workspace(Index, Index lq, Index lk, Index d, Index dv,
                         const attention_options& opt) {
    return thread_count(opt.threads) *
           attn_tiles::make<S>(opt.tile_q, opt.tile_k, lq, lk, d, dv).per_thread;
  }
  template <class S, class Mask>
  static void run(attn_problem<S>& p, const Mask& mask, const attention_options& opt, S* ws) {
    const mask_tiles<S> tiles(mask);
    attn_tiled_run(p, tiles, attn_tiles::make<S>(opt.tile_q, opt.tile_k, p.lq, p.lk, p.d, p.dv),
                   ws);
    attn_rescue_overflow(p, tiles);
  }
};

template <>
struct attn_kernel<decode_t> {
  template <class S>
  static Index workspace(Index batch_heads, Index lq, Index lk, Index, Index dv,
                         const attention_options& opt) {
    const attn_decode_plan plan =
        attn_decode_make(batch_heads, 1, lq, lk, dv, std::max<Index>(opt.decode_chunk, 1));
    return plan.parts + thread_count(opt.threads) * plan.per_thread;
  }
  template <class S, class Mask>
  static void run(attn_problem<S>& p, const Mask& mask, const attention_options& opt, S* ws) {
    const mask_tiles<S> tiles(mask);
    attn_decode_run(p, tiles,
                    attn_decode_make(p.batch, p.heads, p.lq, p.lk, p.dv, opt.decode_chunk), ws);
    attn_rescue_overflow(p, tiles);
  }
};

}  // namespace detail

/// \brief Scalars of workspace masked_attention(variant, ...) needs for \p batch_heads heads of
/// Lq x D queries over Lk keys with Dv values, with the tiles and threads of \p opt.
/// Tiled: threads x O(tile_q D + tile_k (D + Dv) + tile_q tile_k), tiles clamped to Lq and Lk.
/// Decode: batch_heads x ceil(Lk / chunk) x Lq x (Dv + 3) + threads x 2 chunk.
/// reference::naive: threads x (Lq + 2) x Lk.
template <class Scalar, class Variant, std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
Index attention_workspace_size(Variant, Index batch_heads, Index lq, Index lk, Index d, Index dv,
                               const attention_options& opt = {}) {
  return detail::attn_kernel<Variant>::template workspace<Scalar>(batch_heads, lq, lk, d, dv, opt);
}

/// \brief Scalars of workspace of the default (tiled) variant.
template <class Scalar>
Index attention_workspace_size(Index batch_heads, Index lq, Index lk, Index d, Index dv,
                               const attention_options& opt = {}) {
  return attention_workspace_size<Scalar>(tiled, batch_heads, lq, lk, d, dv, opt);
}

namespace detail {

template <class V, class S, class Mask>
void attn_dispatch(attn_problem<S>& p, const Mask& mask, const attention_options& opt,
                   attention_workspace<S>* user_ws, const char* where) {
  attn_check_mask(p, mask, where);
  if (p.lq == 0 || p.batch == 0 || p.heads == 0) return;
  attention_workspace<S> own;
  attention_workspace<S>& ws = user_ws ? *user_ws : own;
  attention_options o = opt;
  o.threads = p.threads;
  ws.reserve(attn_kernel<V>::template workspace<S>(p.batch * p.heads, p.lq, p.lk, p.d, p.dv, o));
  // A sink logit is folded into each finished row, which needs its log-sum-exp.
  lse_vector<S> own_lse;
  if (!p.sinks.empty() && !p.lse) {
    own_lse.resize(p.batch * p.heads * p.lq);
    p.lse = own_lse.data();
    p.lse_row = p.lq;
  }
  attn_kernel<V>::run(p, mask, opt, ws.data());
  if (!p.sinks.empty())
    for (Index b = 0; b < p.batch; ++b)
      for (Index h = 0; h < p.heads; ++h) {
        S* out = p.out_ptr(b, h);
        S* lse = p.lse_ptr(b, h);
        for (Index i = 0; i < p.lq; ++i)
          fold_sink_row(out + i * p.o_sl, lse[i], p.sinks[static_cast<std::size_t>(h)], p.dv);
      }
}

/// The materialized masks as the kernels take them: a bool_matrix keep-mask (a view, tile
/// answers by word), a drop_mask (true = ignore, converted once), an additive_mask (its bias
/// added as the last score stage; entries <= lowest() drop their pair). Calls
/// f(mask expression, options).
template <class Mask>
inline constexpr bool is_materialized_mask_v =
    std::is_same<Mask, bool_matrix>::value || std::is_same<Mask, drop_mask>::value ||
    is_additive_mask<Mask>::value;

template <class Mask, class F>
void with_mask_expression(const Mask& mask, const attention_options& opt, F&& f) {
  if constexpr (std::is_same<Mask, bool_matrix>::value) {
    f(as_mask(mask), opt);
  } else if constexpr (std::is_same<Mask, drop_mask>::value) {
    f(to_mask(to_keep(mask)), opt);
  } else {
    attention_options o = opt;
    o.score_mod = opt.score_mod.then(additive_bias(mask.matrix()));
    f(keep_all(), o);
  }
}

template <class V, class S, class Mask>
void attn_single_expr(const Eigen::Ref<const row_matrix<S>>& q,
                      const Eigen::Ref<const row_matrix<S>>& k,
                      const Eigen::Ref<const row_matrix<S>>& v, const Mask& mask,
                      Eigen::Ref<row_matrix<S>> out, S* lse, Index lse_size,
                      const attention_options& opt, attention_workspace<S>* ws) {
  static_assert(is_mask_v<Mask>,
                "emask::masked_attention: pass an emask mask expression (a builder such as "
                "emask::causal), a bool_matrix, a drop_mask or an additive_mask");
  const char* where = "masked_attention";
  if (k.cols() != q.cols())
    fail_argument(where, "k", concat(k.rows(), "x", k.cols()), "D = ", q.cols(),
                  " columns (the columns of q)");
  if (v.rows() != k.rows())
    fail_argument(where, "v", concat(v.rows(), "x", v.cols()), k.rows(),
                  " rows (one per key of k)");
  if (out.rows() != q.rows() || out.cols() != v.cols())
    fail_argument(where, "out", concat(out.rows(), "x", out.cols()), q.rows(), "x", v.cols(),
                  " (rows of q x columns of v)");
  if (lse && lse_size != q.rows())
    fail_argument(where, "lse", concat(lse_size, " rows"), q.rows(), " (one per row of q)");
  attn_problem<S> p{};
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.out = out.data();
  p.q_sl = q.outerStride();
  p.k_sl = k.outerStride();
  p.v_sl = v.outerStride();
  p.o_sl = out.outerStride();
  p.lse = lse;
  p.lse_row = q.rows();
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
  attn_dispatch<V>(p, mask, opt, ws, where);
}

/// The shape checks of batched attention views (forward and backward): k and v against q
/// (batch, D, KV heads dividing H, one value per key), out [B, H, Lq, Dv], and, when \p has_lse,
/// lse (B*H) x Lq.
template <class VQ, class VK, class VV, class VO>
void attn_check_batched_views(const char* where, const VQ& q, const VK& k, const VV& v,
                              const VO& out, bool has_lse, Index lse_rows, Index lse_cols) {
  const auto shape = [](const auto& t) { return view_shape(t); };
  if (k.batch() != q.batch())
    fail_argument(where, "k", shape(k), "batch ", q.batch(), " (the batch of q)");
  if (v.batch() != q.batch())
    fail_argument(where, "v", shape(v), "batch ", q.batch(), " (the batch of q)");
  if (k.dim() != q.dim()) fail_argument(where, "k", shape(k), "D = ", q.dim(), " (the D of q)");
  if (k.heads() < 1 || q.heads() % k.heads() != 0)
    fail_argument(where, "k", shape(k), "a number of KV heads that divides the ", q.heads(),
                  " query heads");
  if (v.heads() != k.heads())
    fail_argument(where, "v", shape(v), k.heads(), " heads (the heads of k)");
  if (v.length() != k.length())
    fail_argument(where, "v", shape(v), "L = ", k.length(), " (one value per key of k)");
  if (out.batch() != q.batch() || out.heads() != q.heads() || out.length() != q.length() ||
      out.dim() != v.dim())
    fail_argument(where, "out", shape(out), "[B=", q.batch(), ", H=", q.heads(), ", L=", q.length(),
                  ", D=", v.dim(), "]");
  if (has_lse && (lse_rows != q.batch() * q.heads() || lse_cols != q.length()))
    fail_argument(where, "lse", concat(lse_rows, "x", lse_cols), q.batch() * q.heads(), "x",
                  q.length(), " (B*H rows, Lq columns)");
}

template <class V, class S, class SQ, class SK, class SV, class Mask>
void attn_batched_expr(const tensor_view<SQ>& q, const tensor_view<SK>& k, const tensor_view<SV>& v,
                       const Mask& mask, const tensor_view<S>& out, S* lse, Index lse_rows,
                       Index lse_cols, Index lse_stride, const attention_options& opt,
                       attention_workspace<S>* ws) {
  static_assert(!std::is_const<S>::value, "emask::masked_attention: out must be a mutable view");
  static_assert(std::is_same<std::remove_const_t<SQ>, S>::value &&
                    std::is_same<std::remove_const_t<SK>, S>::value &&
                    std::is_same<std::remove_const_t<SV>, S>::value,
                "emask::masked_attention: q, k, v and out must have the same scalar type");
  static_assert(is_mask_v<Mask>,
                "emask::masked_attention: pass an emask mask expression (a builder such as "
                "emask::causal), a bool_matrix, a drop_mask or an additive_mask");
  const char* where = "masked_attention";
  attn_check_batched_views(where, q, k, v, out, lse != nullptr, lse_rows, lse_cols);
  attn_problem<S> p{};
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.out = out.data();
  p.q_sb = q.stride_b();
  p.q_sh = q.stride_h();
  p.q_sl = q.stride_l();
  p.k_sb = k.stride_b();
  p.k_sh = k.stride_h();
  p.k_sl = k.stride_l();
  p.v_sb = v.stride_b();
  p.v_sh = v.stride_h();
  p.v_sl = v.stride_l();
  p.o_sb = out.stride_b();
  p.o_sh = out.stride_h();
  p.o_sl = out.stride_l();
  p.lse = lse;
  p.lse_row = lse_stride;
  p.batch = q.batch();
  p.heads = q.heads();
  p.kv_heads = k.heads();
  p.lq = q.length();
  p.lk = k.length();
  p.d = q.dim();
  p.dv = v.dim();
  attn_set_options(p, opt, where, opt.alibi.empty() ? 0 : q.heads(), 0);
  p.sinks = sink_logits<S>(where, opt, 0, q.heads());
  attn_dispatch<V>(p, mask, opt, ws, where);
}

// The entry points behind the public overloads: a materialized mask becomes an expression.
template <class V, class S, class Mask>
void attn_single(const Eigen::Ref<const row_matrix<S>>& q, const Eigen::Ref<const row_matrix<S>>& k,
                 const Eigen::Ref<const row_matrix<S>>& v, const Mask& mask,
                 Eigen::Ref<row_matrix<S>> out, S* lse, Index lse_size,
                 const attention_options& opt, attention_workspace<S>* ws) {
  if constexpr (is_materialized_mask_v<Mask>) {
    with_mask_expression(mask, opt, [&](const auto& m, const attention_options& o) {
      attn_single_expr<V, S>(q, k, v, m, out, lse, lse_size, o, ws);
    });
  } else {
    attn_single_expr<V, S>(q, k, v, mask, out, lse, lse_size, opt, ws);
  }
}

template <class V, class S, class SQ, class SK, class SV, class Mask>
void attn_batched(const tensor_view<SQ>& q, const tensor_view<SK>& k, const tensor_view<SV>& v,
                  const Mask& mask, const tensor_view<S>& out, S* lse, Index lse_rows,
                  Index lse_cols, Index lse_stride, const attention_options& opt,
                  attention_workspace<S>* ws) {
  if constexpr (is_materialized_mask_v<Mask>) {
    with_mask_expression(mask, opt, [&](const auto& m, const attention_options& o) {
      attn_batched_expr<V, S>(q, k, v, m, out, lse, lse_rows, lse_cols, lse_stride, o, ws);
    });
  } else {
    attn_batched_expr<V, S>(q, k, v, mask, out, lse, lse_rows, lse_cols, lse_stride, opt, ws);
  }
}

template <class D>
using attn_scalar_t = typename D::Scalar;

// One-line errors for the two misuses that otherwise end in pages of Eigen diagnostics; the
// callers compile their body only when ok, so the assertion is the only error.
template <class DO, class... DIn>
struct attn_dense_args {
  static constexpr bool row_major = static_cast<bool>(DO::IsRowMajor) || DO::ColsAtCompileTime == 1;
  static constexpr bool same_scalar =
      (std::is_same<typename DO::Scalar, typename DIn::Scalar>::value && ...);
  static_assert(row_major,
                "emask::masked_attention: out must be row-major (an emask::row_matrix<S>, or a "
                "block or Map of one)");
  static_assert(same_scalar,
                "emask::masked_attention: q, k, v and out must have the same scalar type (all "
                "float or all double)");
  static constexpr bool ok = row_major && same_scalar;
};

}  // namespace detail

/// \brief One head: out = softmax(mask(softcap(scale q k^T) + ALiBi)) v, with the variant
/// \p variant (emask::tiled, emask::decode, or reference::naive from
/// emask/reference/attention.hpp).
///
/// \param q     Lq x D queries, \param k Lk x D keys, \param v Lk x Dv values: any dense
///              expression (row-major blocks and Maps bind without a copy).
/// \param mask  a mask expression, asked at (options.slice.b, options.slice.h,
///              options.q_offset + i, options.k_offset + j).
/// \param options scale, tiles, softcap, ALiBi, offsets, threads (attention_options).
/// \param out   Lq x Dv, row-major (a block or Map of a row-major matrix).
template <class Variant, class DQ, class DK, class DV, class Mask, class DO,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
void masked_attention(Variant, const Eigen::MatrixBase<DQ>& q, const Eigen::MatrixBase<DK>& k,
                      const Eigen::MatrixBase<DV>& v, const Mask& mask,
                      const Eigen::MatrixBase<DO>& out, const attention_options& options = {}) {
  using S = detail::attn_scalar_t<DO>;
  static_assert(std::is_floating_point<S>::value, "emask::masked_attention: use float or double");
  if constexpr (detail::attn_dense_args<DO, DQ, DK, DV>::ok) {
    Eigen::Ref<row_matrix<S>> o(const_cast<Eigen::MatrixBase<DO>&>(out).derived());
    detail::attn_single<Variant, S>(q.derived(), k.derived(), v.derived(), mask, o, nullptr, 0,
                                    options, nullptr);
  }
}

/// \brief One head, also writing the natural log-sum-exp of each row's kept scores into \p lse
/// (Lq entries; -infinity for a row that keeps nothing). Pass \p workspace to reuse memory.
template <class Variant, class DQ, class DK, class DV, class Mask, class DO, class DL,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
void masked_attention(Variant, const Eigen::MatrixBase<DQ>& q, const Eigen::MatrixBase<DK>& k,
                      const Eigen::MatrixBase<DV>& v, const Mask& mask,
                      const Eigen::MatrixBase<DO>& out, const Eigen::MatrixBase<DL>& lse,
                      const attention_options& options = {},
                      attention_workspace<detail::attn_scalar_t<DO>>* workspace = nullptr) {
  using S = detail::attn_scalar_t<DO>;
  static_assert(std::is_floating_point<S>::value, "emask::masked_attention: use float or double");
  if constexpr (detail::attn_dense_args<DO, DQ, DK, DV>::ok) {
    Eigen::Ref<row_matrix<S>> o(const_cast<Eigen::MatrixBase<DO>&>(out).derived());
    Eigen::Ref<lse_vector<S>> l(const_cast<Eigen::MatrixBase<DL>&>(lse).derived());
    detail::attn_single<Variant, S>(q.derived(), k.derived(), v.derived(), mask, o, l.data(),
                                    l.size(), options, workspace);
  }
}

/// \brief Batched heads as views: q [B, H, Lq, D], k [B, Hkv, Lk, D], v [B, Hkv, Lk, Dv],
/// out [B, H, Lq, Dv], any strides (view_bhld, view_blhd). Hkv must divide H (grouped-query /
/// multi-query attention: query head h reads KV head h / (H / Hkv)). The mask is asked at
/// (b, h, q_offset + i, k_offset + j) with the query head h.
template <class Variant, class SQ, class SK, class SV, class S, class Mask,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
void masked_attention(Variant, const tensor_view<SQ>& q, const tensor_view<SK>& k,
                      const tensor_view<SV>& v, const Mask& mask, const tensor_view<S>& out,
                      const attention_options& options = {},
                      attention_workspace<std::remove_const_t<S>>* workspace = nullptr) {
  detail::attn_batched<Variant, S>(q, k, v, mask, out, nullptr, 0, 0, 0, options, workspace);
}

/// \brief Batched heads with the log-sum-exp: \p lse is (B*H) x Lq, row b*H + h.
template <class Variant, class SQ, class SK, class SV, class S, class Mask,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
void masked_attention(Variant, const tensor_view<SQ>& q, const tensor_view<SK>& k,
                      const tensor_view<SV>& v, const Mask& mask, const tensor_view<S>& out,
                      Eigen::Ref<row_matrix<std::remove_const_t<S>>> lse,
                      const attention_options& options = {},
                      attention_workspace<std::remove_const_t<S>>* workspace = nullptr) {
  detail::attn_batched<Variant, S>(q, k, v, mask, out, lse.data(), lse.rows(), lse.cols(),
                                   lse.outerStride(), options, workspace);
}

// The default variant, emask::tiled: the same four argument lists without the tag.

/// \brief One head with the default variant (emask::tiled).
template <class DQ, class DK, class DV, class Mask, class DO>
void masked_attention(const Eigen::MatrixBase<DQ>& q, const Eigen::MatrixBase<DK>& k,
                      const Eigen::MatrixBase<DV>& v, const Mask& mask,
                      const Eigen::MatrixBase<DO>& out, const attention_options& options = {}) {
  masked_attention(tiled, q, k, v, mask, out, options);
}

/// \brief One head with the log-sum-exp, default variant (emask::tiled).
template <class DQ, class DK, class DV, class Mask, class DO, class DL>
void masked_attention(const Eigen::MatrixBase<DQ>& q, const Eigen::MatrixBase<DK>& k,
                      const Eigen::MatrixBase<DV>& v, const Mask& mask,
                      const Eigen::MatrixBase<DO>& out, const Eigen::MatrixBase<DL>& lse,
                      const attention_options& options = {},
                      attention_workspace<detail::attn_scalar_t<DO>>* workspace = nullptr) {
  masked_attention(tiled, q, k, v, mask, out, lse, options, workspace);
}

/// \brief Batched heads, default variant (emask::tiled).
template <class SQ, class SK, class SV, class S, class Mask>
void masked_attention(const tensor_view<SQ>& q, const tensor_view<SK>& k, const tensor_view<SV>& v,
                      const Mask& mask, const tensor_view<S>& out,
                      const attention_options& options = {},
                      attention_workspace<std::remove_const_t<S>>* workspace = nullptr) {
  masked_attention(tiled, q, k, v, mask, out, options, workspace);
}

/// \brief Batched heads with the log-sum-exp, default variant (emask::tiled).
template <class SQ, class SK, class SV, class S, class Mask>
void masked_attention(const tensor_view<SQ>& q, const tensor_view<SK>& k, const tensor_view<SV>& v,
                      const Mask& mask, const tensor_view<S>& out,
                      Eigen::Ref<row_matrix<std::remove_const_t<S>>> lse,
                      const attention_options& options = {},
                      attention_workspace<std::remove_const_t<S>>* workspace = nullptr) {
  masked_attention(tiled, q, k, v, mask, out, lse, options, workspace);
}

EMASK_NAMESPACE_END
