/// \file
/// \brief KV caches as inference engines store them: K and V in float, bfloat16 or half,
/// contiguous ([B, Hkv, capacity, D] with any strides) or paged (a pool of pages of P tokens and
/// a block table per sequence, as vLLM's PagedAttention), and masked_attention_decode: a few
/// float query rows per sequence over such a cache, many sequences of different lengths in one
/// call.
///
/// Semantics are those of masked_attention (attention_options: scale, softcap, ALiBi,
/// score_mod, sink logits, the mask), with positions taken from the cache: sequence b of length
/// n_b has keys at positions 0 .. n_b - 1 and its Lq query rows at n_b - Lq .. n_b - 1 (the new
/// tokens are the last ones of the cache, bottom-right alignment). So emask::causal() is the
/// decoding causal mask, sliding_window(...) a sliding window, and the mask is asked at
/// (b, h, n_b - Lq + i, j) with the query head h. A row that keeps no key, and every row of an
/// empty sequence, gives zeros and lse = -infinity (lse = s_h with a sink logit). The scores
/// accumulate in float from K and V converted exactly to float in registers; the cache is never
/// copied. The algorithm is the decode variant's (detail/attn_kv.hpp): key chunks merged by
/// log-sum-exp in chunk order, so results do not depend on the thread count, and a paged cache
/// gives the same bits as a contiguous one with the same keys.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "emask/config.hpp"
#include "emask/detail/attn_kv.hpp"
#include "emask/kernels/attention.hpp"

EMASK_NAMESPACE_BEGIN

namespace detail {
template <class T>
void kv_check_storage() {
  static_assert(kv_decode_storage_v<std::remove_const_t<T>>,
                "emask KV caches: store K and V as float, Eigen::bfloat16 or Eigen::half");
}
}  // namespace detail

/// \brief Converts \p n floats to the storage type \p T (round to nearest even; bfloat16 keeps
/// subnormals, NaN stays NaN): how a cache is filled. Native (AVX-512 / F16C) when the build
/// targets it, same bits as the portable path.
template <class T>
void kv_convert(const float* src, Index n, T* dst) {
  detail::kv_check_storage<T>();
  if (n < 0) detail::fail_argument("kv_convert", "n", n, ">= 0");
  detail::kv_narrow_n(src, n, dst);
}

/// \brief Converts \p n values of the storage type \p T to float (exact).
template <class T>
void kv_convert(const T* src, Index n, float* dst) {
  detail::kv_check_storage<T>();
  if (n < 0) detail::fail_argument("kv_convert", "n", n, ">= 0");
  detail::kv_widen_n(src, n, dst);
}

/// \brief float to float: a copy (so generic code can fill a float cache the same way).
inline void kv_convert(const float* src, Index n, float* dst) {
  if (n < 0) detail::fail_argument("kv_convert", "n", n, ">= 0");
  detail::kv_widen_n(src, n, dst);
}

/// \brief A contiguous (strided) KV cache: K and V [batch, kv_heads, capacity, dim] in \p T with
/// the same strides, and the number of valid tokens of each sequence (lengths[b] <= capacity).
/// A view: the buffers and the lengths must outlive it.
/// \tparam T float, Eigen::bfloat16 or Eigen::half.
template <class T>
class kv_cache_view {
 public:
  /// \brief Contiguous [batch, kv_heads, capacity, dim] K and V buffers.
  kv_cache_view(const T* k, const T* v, Index batch, Index kv_heads, Index capacity, Index dim,
                const std::int32_t* lengths)
      : kv_cache_view(k, v, batch, kv_heads, capacity, dim, kv_heads * capacity * dim,
                      capacity * dim, dim, lengths) {}
  /// \brief Any strides (elements of T) for batch, head and token; unit stride along dim.
  kv_cache_view(const T* k, const T* v, Index batch, Index kv_heads, Index capacity, Index dim,
                Index stride_b, Index stride_h, Index stride_l, const std::int32_t* lengths) {
    detail::kv_check_storage<T>();
    const char* where = "kv_cache_view";
    if (batch < 0) detail::fail_argument(where, "batch", batch, ">= 0");
    if (kv_heads < 1) detail::fail_argument(where, "kv_heads", kv_heads, ">= 1");
    if (capacity < 0) detail::fail_argument(where, "capacity", capacity, ">= 0");
    if (dim < 0) detail::fail_argument(where, "dim", dim, ">= 0");
    if (stride_b < 0 || stride_h < 0 || stride_l < 0)
      detail::fail_argument(where, "strides",
                            detail::concat(stride_b, ", ", stride_h, ", ", stride_l),
                            "non-negative strides");
    if (capacity > 1 && stride_l < dim)
      detail::fail_argument(where, "stride_l", stride_l, ">= dim = ", dim,
                            " (rows must not overlap)");
    if ((k == nullptr || v == nullptr) && batch * capacity * dim > 0)
      detail::fail_argument(where, k == nullptr ? "k" : "v", "nullptr", "a buffer");
    if (lengths == nullptr && batch > 0)
      detail::fail_argument(where, "lengths", "nullptr", "one length per sequence");
    s_.k = k;
    s_.v = v;
    s_.batch = batch;
    s_.kv_heads = kv_heads;
    s_.dim = dim;
    s_.sb = stride_b;
    s_.sh = stride_h;
    s_.sl = stride_l;
    s_.lengths = lengths;
    capacity_ = capacity;
  }
  /// \brief Sequences.
  Index batch() const noexcept { return s_.batch; }
  /// \brief KV heads.
  Index kv_heads() const noexcept { return s_.kv_heads; }
  /// \brief Features per token (D).
  Index dim() const noexcept { return s_.dim; }
  /// \brief Tokens each sequence has room for.
  Index capacity() const noexcept { return capacity_; }
  /// \brief Valid tokens of sequence \p b.
  Index length(Index b) const { return s_.lengths[b]; }
  /// \brief The kernel's description (detail).
  const detail::kv_source<T>& source() const noexcept { return s_; }

 private:
  detail::kv_source<T> s_;
  Index capacity_ = 0;
};

/// \brief Page layouts of paged_kv_view.
enum class kv_page_layout {
  /// [num_pages, kv_heads, page_size, dim] (FlashInfer's HND): the tokens of one head are one
  /// contiguous run of P * D per page, which the decode kernel streams. The default.
  hnd,
  /// [num_pages, page_size, kv_heads, dim] (vLLM's FlashAttention backend, FlashInfer's NHD):
  /// one token's heads are contiguous, so appending a token writes one run; decode reads
  /// D-element rows with stride Hkv * D.
  nhd
};

/// \brief A paged KV cache (vLLM's PagedAttention): K and V pools of num_pages pages of
/// page_size tokens x kv_heads x dim in \p T (layout \p layout, the same for K and V), a block
/// table [batch, max_pages] of int32 (row-major: entry (b, p) is the physical page of the
/// logical page p of sequence b, holding its tokens [p P, (p + 1) P)) and the length of each
/// sequence. Pages may be shared and in any order; entries past a sequence's last page are not
/// read. A view: the buffers, the table and the lengths must outlive it.
/// \tparam T float, Eigen::bfloat16 or Eigen::half.
template <class T>
class paged_kv_view {
 public:
  /// \brief The pools, page geometry, block table and lengths.
  /// \param k_pages, v_pages the K and V pools, num_pages x page_size x kv_heads x dim each.
  /// \param num_pages pages in each pool. \param page_size tokens per page, 1 <= P <= 256.
  /// \param kv_heads KV heads. \param dim features per token (D).
  /// \param layout page layout (kv_page_layout::hnd or nhd).
  /// \param block_table batch x max_pages physical page ids, row-major.
  /// \param batch sequences. \param max_pages columns of the block table.
  /// \param lengths tokens of each sequence (<= max_pages * page_size).
  paged_kv_view(const T* k_pages, const T* v_pages, Index num_pages, Index page_size,
                Index kv_heads, Index dim, kv_page_layout layout, const std::int32_t* block_table,
                Index batch, Index max_pages, const std::int32_t* lengths) {
    detail::kv_check_storage<T>();
    const char* where = "paged_kv_view";
    if (num_pages < 0) detail::fail_argument(where, "num_pages", num_pages, ">= 0");
    if (page_size < 1 || page_size > 256)
      detail::fail_argument(where, "page_size", page_size, "1 <= page_size <= 256");
    if (kv_heads < 1) detail::fail_argument(where, "kv_heads", kv_heads, ">= 1");
    if (dim < 0) detail::fail_argument(where, "dim", dim, ">= 0");
    if (batch < 0) detail::fail_argument(where, "batch", batch, ">= 0");
    if (max_pages < 0) detail::fail_argument(where, "max_pages", max_pages, ">= 0");
    if ((k_pages == nullptr || v_pages == nullptr) && num_pages * dim > 0)
      detail::fail_argument(where, k_pages == nullptr ? "k_pages" : "v_pages", "nullptr",
                            "a buffer");
    if (block_table == nullptr && batch * max_pages > 0)
      detail::fail_argument(where, "block_table", "nullptr", "batch x max_pages page ids");
    if (lengths == nullptr && batch > 0)
      detail::fail_argument(where, "lengths", "nullptr", "one length per sequence");
    s_.k = k_pages;
    s_.v = v_pages;
    s_.batch = batch;
    s_.kv_heads = kv_heads;
    s_.dim = dim;
    s_.sb = page_size * kv_heads * dim;
    s_.sh = layout == kv_page_layout::hnd ? page_size * dim : dim;
    s_.sl = layout == kv_page_layout::hnd ? dim : kv_heads * dim;
    s_.page = page_size;
    s_.table = block_table;
    s_.table_stride = max_pages;
    s_.lengths = lengths;
    num_pages_ = num_pages;
    layout_ = layout;
  }
  /// \brief Sequences.
  Index batch() const noexcept { return s_.batch; }
  /// \brief KV heads.
  Index kv_heads() const noexcept { return s_.kv_heads; }
  /// \brief Features per token (D).
  Index dim() const noexcept { return s_.dim; }
  /// \brief Tokens per page (P).
  Index page_size() const noexcept { return s_.page; }
  /// \brief Pages in each pool.
  Index num_pages() const noexcept { return num_pages_; }
  /// \brief Columns of the block table.
  Index max_pages() const noexcept { return s_.table_stride; }
  /// \brief The page layout.
  kv_page_layout layout() const noexcept { return layout_; }
  /// \brief Valid tokens of sequence \p b.
  Index length(Index b) const { return s_.lengths[b]; }
  /// \brief Offset (elements of T) of token \p t of KV head \p g in page \p page of a pool.
  Index offset(Index page, Index g, Index t) const noexcept {
    return page * s_.sb + g * s_.sh + t * s_.sl;
  }
  /// \brief The kernel's description (detail).
  const detail::kv_source<T>& source() const noexcept { return s_; }

 private:
  detail::kv_source<T> s_;
  Index num_pages_ = 0;
  kv_page_layout layout_ = kv_page_layout::hnd;
};

/// \brief Reusable scratch memory of masked_attention_decode: after the first call with the
/// same shapes (or a larger one) a call allocates nothing.
class kv_decode_workspace {
 public:
  /// \brief Floats held.
  Index size() const noexcept { return static_cast<Index>(f_.size()); }
  /// \brief Bytes held.
  Index bytes() const noexcept {
    return static_cast<Index>(f_.size() * sizeof(float) +
                              (i_.size() + items_.size()) * sizeof(Index));
  }
  /// \cond detail
  std::vector<float> f_;
  std::vector<Index> i_;
  std::vector<Index> items_;
  /// \endcond
};

namespace detail {

/// Checks the lengths (and for a paged cache the block table entries they use). O(pages read).
template <class T>
void kv_check_cache(const kv_cache_view<T>& c, Index lq, const char* where) {
  for (Index b = 0; b < c.batch(); ++b) {
    const Index n = c.length(b);
    if (n < 0 || n > c.capacity())
      fail_element(where, "lengths", b, n, "0 <= length <= the cache capacity ", c.capacity(),
                   " (sequence ", b, ")");
    if (n > 0 && n < lq)
      fail_element(where, "lengths", b, n, "0 or >= Lq = ", lq,
                   " (the query rows are the last tokens of the sequence)");
  }
}

template <class T>
void kv_check_cache(const paged_kv_view<T>& c, Index lq, const char* where) {
  const Index P = c.page_size();
  const std::int32_t* table = c.source().table;
  for (Index b = 0; b < c.batch(); ++b) {
    const Index n = c.length(b);
    if (n < 0) fail_element(where, "lengths", b, n, ">= 0 (sequence ", b, ")");
    if (n > 0 && n < lq)
      fail_element(where, "lengths", b, n, "0 or >= Lq = ", lq,
                   " (the query rows are the last tokens of the sequence)");
    const Index pages = kv_chunks(n, P);
    if (pages > c.max_pages())
      fail_element(where, "lengths", b, n, "at most max_pages * page_size = ", c.max_pages() * P,
                   " tokens (sequence ", b, " needs ", pages, " pages, the block table has ",
                   c.max_pages(), ")");
    for (Index p = 0; p < pages; ++p) {
      const std::int32_t id = table[b * c.max_pages() + p];
      if (id < 0 || id >= c.num_pages())
        fail_argument(where, concat("block_table[", b, "][", p, "]").c_str(), id,
                      "a physical page in [0, ", c.num_pages(), ") (sequence ", b,
                      ", logical page ", p, ")");
    }
  }
}

template <class Cache>
using kv_storage_t =
    std::remove_const_t<std::remove_pointer_t<decltype(std::declval<const Cache&>().source().k)>>;

template <class Cache>
struct is_kv_cache : std::false_type {};
template <class T>
struct is_kv_cache<kv_cache_view<T>> : std::true_type {};
template <class T>
struct is_kv_cache<paged_kv_view<T>> : std::true_type {};

/// Geometry of one call (items, partials, scratch) from the lengths.
inline kv_plan kv_make_plan(Index batch, const std::int32_t* lengths, Index kv_heads, Index rows,
                            Index d, Index chunk, int threads, Index* first_item) {
  kv_plan pl{};
  pl.chunk_pad = (chunk + 15) / 16 * 16;
  pl.part_stride = (d + 3 + 15) / 16 * 16;
  Index items = 0;
  for (Index b = 0; b < batch; ++b) {
    if (first_item) first_item[b] = items;
    items += kv_heads * kv_chunks(lengths[b], chunk);
  }
  if (first_item) first_item[batch] = items;
  pl.items = items;
  pl.parts = items * rows * pl.part_stride;
  pl.per_thread = rows * pl.chunk_pad + 2 * pl.chunk_pad + 4 * rows;
  pl.per_thread_idx = pl.chunk_pad;
  (void)threads;
  return pl;
}

template <class Cache, class Mask>
void kv_decode_expr(const tensor_view<const float>& q, const Cache& cache, const Mask& mask,
                    const tensor_view<float>& out, float* lse, Index lse_rows, Index lse_cols,
                    Index lse_stride, const attention_options& opt, kv_decode_workspace* user_ws) {
  static_assert(is_mask_v<Mask>,
                "emask::masked_attention_decode: pass an emask mask expression (a builder such "
                "as emask::causal), a bool_matrix, a drop_mask or an additive_mask");
  using T = kv_storage_t<Cache>;
  const char* where = "masked_attention_decode";
  const auto shape = [](const auto& t) { return view_shape(t); };
  const Index B = q.batch(), H = q.heads(), lq = q.length(), D = q.dim();
  if (cache.batch() != B)
    fail_argument(where, "cache", concat(cache.batch(), " sequences"), B,
                  " sequences (the batch of q)");
  if (cache.dim() != D)
    fail_argument(where, "cache", concat("D = ", cache.dim()), "D = ", D, " (the D of q)");
  if (H % cache.kv_heads() != 0)
    fail_argument(where, "cache", concat(cache.kv_heads(), " KV heads"),
                  "a number of KV heads that divides the ", H, " query heads");
  if (out.batch() != B || out.heads() != H || out.length() != lq || out.dim() != D)
    fail_argument(where, "out", shape(out), "[B=", B, ", H=", H, ", L=", lq, ", D=", D, "]");
  if (lse && (lse_rows != B * H || lse_cols != lq))
    fail_argument(where, "lse", concat(lse_rows, "x", lse_cols), B * H, "x", lq,
                  " (B*H rows, Lq columns)");
  if (opt.q_offset != 0)
    fail_argument(where, "options.q_offset", opt.q_offset,
                  "0 (query positions come from the cache lengths)");
  if (opt.k_offset != 0)
    fail_argument(where, "options.k_offset", opt.k_offset,
                  "0 (key positions come from the cache lengths)");
  Index max_len = 0;
  kv_check_cache(cache, lq, where);
  for (Index b = 0; b < B; ++b) max_len = (std::max)(max_len, cache.length(b));
  attn_problem<float> p{};
  p.lq = lq;
  p.lk = max_len;
  p.d = D;
  attn_set_options(p, opt, where, opt.alibi.empty() ? 0 : H, 0);
  p.sinks = sink_logits<float>(where, opt, 0, H);
  for (Index b = 0; b < B; ++b) {
    const Index n = cache.length(b);
    if (n == 0) continue;
    region r;
    r.b_begin = b;
    r.b_end = b + 1;
    r.h_begin = 0;
    r.h_end = H;
    r.q_begin = n - lq;
    r.q_end = n;
    r.k_begin = 0;
    r.k_end = n;
    mask.check(r, where);
    if (p.mod) p.mod->check(r, where);
  }
  // Every argument is checked: from here on nothing fails.
  if (B == 0 || H == 0 || lq == 0) return;
  kv_decode_workspace own;
  kv_decode_workspace& ws = user_ws ? *user_ws : own;
  const Index group = H / cache.kv_heads();
  kv_call c{};
  c.q = q.data();
  c.q_sb = q.stride_b();
  c.q_sh = q.stride_h();
  c.q_sl = q.stride_l();
  c.out = out.data();
  c.o_sb = out.stride_b();
  c.o_sh = out.stride_h();
  c.o_sl = out.stride_l();
  c.lse = lse;
  c.lse_row = lse_stride;
  c.batch = B;
  c.heads = H;
  c.kv_heads = cache.kv_heads();
  c.group = group;
  c.lq = lq;
  c.d = D;
  c.chunk =
      (std::max<Index>)(1, (std::min<Index>)(opt.decode_chunk, (std::max<Index>)(max_len, 1)));
  c.rows = group * lq;
  c.opt = &p;
  ws.items_.resize(static_cast<std::size_t>(B + 1));
  const kv_plan plan = kv_make_plan(B, cache.source().lengths, c.kv_heads, c.rows, D, c.chunk,
                                    p.threads, ws.items_.data());
  const std::size_t nf = static_cast<std::size_t>(plan.parts + p.threads * plan.per_thread);
  const std::size_t ni = static_cast<std::size_t>(p.threads * plan.per_thread_idx);
  if (ws.f_.size() < nf) ws.f_.resize(nf);
  if (ws.i_.size() < ni) ws.i_.resize(ni);
  const mask_tiles<float> tiles(mask);
  kv_run<T>(c, cache.source(), tiles, plan, ws.items_.data(), ws.f_.data(), ws.i_.data());
}

template <class Cache, class Mask>
void kv_decode(const tensor_view<const float>& q, const Cache& cache, const Mask& mask,
               const tensor_view<float>& out, float* lse, Index lse_rows, Index lse_cols,
               Index lse_stride, const attention_options& opt, kv_decode_workspace* ws) {
  static_assert(is_kv_cache<Cache>::value,
                "emask::masked_attention_decode: pass an emask::kv_cache_view or "
                "emask::paged_kv_view as the cache");
  if constexpr (is_materialized_mask_v<Mask>) {
    with_mask_expression(mask, opt, [&](const auto& m, const attention_options& o) {
      kv_decode_expr(q, cache, m, out, lse, lse_rows, lse_cols, lse_stride, o, ws);
    });
  } else {
    kv_decode_expr(q, cache, mask, out, lse, lse_rows, lse_cols, lse_stride, opt, ws);
  }
}

}  // namespace detail

/// \brief Floats of workspace masked_attention_decode uses for \p heads query heads of \p lq
/// rows over \p cache with \p options (decode_chunk, threads): per (sequence, KV head, chunk)
/// item (H / Hkv) Lq partial rows of D + 3 floats, plus per thread (H / Hkv) Lq + 2 chunks of
/// scores.
template <class Cache>
Index kv_decode_workspace_size(const Cache& cache, Index heads, Index lq,
                               const attention_options& options = {}) {
  static_assert(detail::is_kv_cache<Cache>::value,
                "emask::kv_decode_workspace_size: pass an emask::kv_cache_view or "
                "emask::paged_kv_view");
  Index max_len = 0;
  for (Index b = 0; b < cache.batch(); ++b) max_len = (std::max)(max_len, cache.length(b));
  const Index chunk =
      (std::max<Index>)(1, (std::min<Index>)(options.decode_chunk, (std::max<Index>)(max_len, 1)));
  const int threads = detail::thread_count(options.threads);
  const detail::kv_plan pl =
      detail::kv_make_plan(cache.batch(), cache.source().lengths, cache.kv_heads(),
                           (heads / cache.kv_heads()) * lq, cache.dim(), chunk, threads, nullptr);
  return pl.parts + threads * pl.per_thread;
}

/// \brief Decode attention over a KV cache: for each sequence b and query head h,
/// out[b, h, i] = softmax_j(mask(transform(scale q_i . k_j))) v_j over the cache's keys
/// j < n_b, with query row i at position n_b - Lq + i.
/// \param q float queries [B, H, Lq, D] (any strides); H a multiple of the cache's KV heads
///          (query head h reads KV head h / (H / Hkv)).
/// \param cache an emask::kv_cache_view<T> or emask::paged_kv_view<T> (T float, bfloat16, half)
///          with B sequences of D features; each length 0 or >= Lq.
/// \param mask a mask expression (emask::causal(), sliding_window, ...), a bool_matrix, a
///          drop_mask or an additive_mask, asked at (b, h, n_b - Lq + i, j).
/// \param out float [B, H, Lq, D]; rows of empty sequences are zeros.
/// \param options scale, softcap, ALiBi, score_mod, sink_logit, decode_chunk, threads
///          (q_offset and k_offset must be 0).
/// \param workspace optional reusable scratch.
template <class Cache, class Mask>
void masked_attention_decode(const tensor_view<const float>& q, const Cache& cache,
                             const Mask& mask, const tensor_view<float>& out,
                             const attention_options& options = {},
                             kv_decode_workspace* workspace = nullptr) {
  detail::kv_decode(q, cache, mask, out, nullptr, 0, 0, 0, options, workspace);
}

/// \brief The same, also writing the natural log-sum-exp of each row's kept scores into \p lse
/// ((B*H) x Lq, row b*H + h; -infinity for a row that keeps nothing).
/// \param q queries \param cache the cache \param mask the mask \param out the output
/// \param lse log-sum-exp \param options options \param workspace optional scratch
template <class Cache, class Mask>
void masked_attention_decode(const tensor_view<const float>& q, const Cache& cache,
                             const Mask& mask, const tensor_view<float>& out,
                             Eigen::Ref<row_matrix<float>> lse,
                             const attention_options& options = {},
                             kv_decode_workspace* workspace = nullptr) {
  detail::kv_decode(q, cache, mask, out, lse.data(), lse.rows(), lse.cols(), lse.outerStride(),
                    options, workspace);
}

EMASK_NAMESPACE_END
