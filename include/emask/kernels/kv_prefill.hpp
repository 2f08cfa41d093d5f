/// \file
/// \brief masked_attention_prefill: the tiled (FlashAttention-2) kernel over a KV cache of
/// float, bfloat16 or half rows, contiguous (kv_cache_view) or paged (paged_kv_view): Lq new
/// queries per sequence attend to the sequence's cached keys, new ones included, with the mask
/// asked at logical positions (bottom-right: query i of sequence b sits at length_b - Lq + i).
///
/// Keys and values are converted to float a tile at a time (exact; 1 / tile_q of the work), so a
/// paged or reduced-precision cache costs about what a float one does and its results equal
/// masked_attention's on the converted values bit for bit. A bfloat16 cache on a build with
/// AVX512-BF16 (-march=native on Zen 4 / 5, Sapphire Rapids) instead multiplies in bfloat16 with
/// vdpbf16ps (two multiply-adds per float lane): Q and the probabilities are rounded to bfloat16
/// for the products, as in FlashAttention's bfloat16 mode, and accumulated in float; see
/// docs/kernels.md for the bound this adds.
#pragma once

#include "emask/config.hpp"
#include "emask/detail/attn_prefill.hpp"
#include "emask/kernels/kv_cache.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Whether masked_attention_prefill multiplies in bfloat16 (vdpbf16ps) for bfloat16
/// caches in this build (AVX512-BF16 and AVX-512 BW / VL enabled at compile time); otherwise the
/// cache is converted to float a tile at a time.
inline constexpr bool kv_prefill_bf16_products = detail::prefill_uses_bf16_dot_v<Eigen::bfloat16>;

namespace detail {

template <class Cache, class Mask>
void kv_prefill_expr(const tensor_view<const float>& q, const Cache& cache, const Mask& mask,
                     const tensor_view<float>& out, float* lse, Index lse_rows, Index lse_cols,
                     Index lse_stride, const attention_options& opt) {
  static_assert(is_mask_v<Mask>,
                "emask::masked_attention_prefill: pass an emask mask expression (a builder such "
                "as emask::causal), a bool_matrix, a drop_mask or an additive_mask");
  const char* where = "masked_attention_prefill";
  kv_check_cache(cache, q.length(), where);
  if (lse && (lse_rows != q.batch() * q.heads() || lse_cols != q.length()))
    fail_argument(where, "lse", concat(lse_rows, "x", lse_cols), q.batch() * q.heads(), "x",
                  q.length(), " (B*H rows, Lq columns)");
  std::vector<Index> lengths(static_cast<std::size_t>(cache.batch()));
  for (Index b = 0; b < cache.batch(); ++b) lengths[static_cast<std::size_t>(b)] = cache.length(b);
  prefill_attention(where, q, cache.source(), cache.kv_heads(), cache.dim(), cache.dim(), lengths,
                    mask, opt, out, lse, lse_stride, true);
}

template <class Cache, class Mask>
void kv_prefill(const tensor_view<const float>& q, const Cache& cache, const Mask& mask,
                const tensor_view<float>& out, float* lse, Index lse_rows, Index lse_cols,
                Index lse_stride, const attention_options& opt) {
  static_assert(is_kv_cache<Cache>::value,
                "emask::masked_attention_prefill: pass an emask::kv_cache_view or "
                "emask::paged_kv_view as the cache");
  if constexpr (is_materialized_mask_v<Mask>) {
    with_mask_expression(mask, opt, [&](const auto& m, const attention_options& o) {
      kv_prefill_expr(q, cache, m, out, lse, lse_rows, lse_cols, lse_stride, o);
    });
  } else {
    kv_prefill_expr(q, cache, mask, out, lse, lse_rows, lse_cols, lse_stride, opt);
  }
}

}  // namespace detail

/// \brief Prefill with a KV cache: for each sequence b and query head h,
/// out[b, h, i] = softmax_j(mask(transform(scale q_i . k_j))) v_j over the cache's keys
/// j < n_b, with query row i at position n_b - Lq + i (its own key already in the cache).
/// \param q float queries [B, H, Lq, D] (any strides); H a multiple of the cache's KV heads.
/// \param cache an emask::kv_cache_view<T> or emask::paged_kv_view<T> (T float, bfloat16, half)
///          with B sequences; each length 0 (zero rows) or >= Lq.
/// \param mask a mask expression, a bool_matrix, a drop_mask or an additive_mask, asked at
///          (b, h, n_b - Lq + i, j).
/// \param out float [B, H, Lq, D].
/// \param options scale, softcap, ALiBi, score_mod, sink_logit, tile_q, tile_k, threads
///          (q_offset and k_offset must be 0).
template <class Cache, class Mask>
void masked_attention_prefill(const tensor_view<const float>& q, const Cache& cache,
                              const Mask& mask, const tensor_view<float>& out,
                              const attention_options& options = {}) {
  detail::kv_prefill(q, cache, mask, out, nullptr, 0, 0, 0, options);
}

/// \brief The same, also writing the natural log-sum-exp of each row's kept scores into \p lse
/// ((B*H) x Lq, row b*H + h; -infinity for a row that keeps nothing).
/// \param q queries \param cache the cache \param mask the mask \param out the output
/// \param lse log-sum-exp \param options options
template <class Cache, class Mask>
void masked_attention_prefill(const tensor_view<const float>& q, const Cache& cache,
                              const Mask& mask, const tensor_view<float>& out,
                              Eigen::Ref<row_matrix<float>> lse,
                              const attention_options& options = {}) {
  detail::kv_prefill(q, cache, mask, out, lse.data(), lse.rows(), lse.cols(), lse.outerStride(),
                     options);
}

EMASK_NAMESPACE_END
