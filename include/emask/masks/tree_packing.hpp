/// \file
/// \brief The packed mask layouts speculative-decoding engines exchange, written and read:
/// FlashInfer's custom masks (numpy packbits of each request's flattened q_len x k_len keep
/// array, big or little bit order, one byte-aligned segment per request) and TensorRT-LLM's
/// spec_decoding_packed_mask (int32 words, one row of ceil(T / 32) words per draft token,
/// least significant bit first).
///
/// Writers set the bits past the mask to zero. Readers never read them as keep: by default
/// they raise emask::error when one is set (a set padding bit means the buffer was written
/// with another shape or bit order), or skip them with tail_bits::ignore.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "emask/config.hpp"
#include "emask/core/index_list.hpp"
#include "emask/core/mask.hpp"
#include "emask/core/materialize.hpp"
#include "emask/core/types.hpp"
#include "emask/error.hpp"
#include "emask/masks/tree.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Where element n of a flattened keep array goes inside byte n / 8, as numpy.packbits'
/// `bitorder`.
enum class bit_order {
  big,    ///< element n at bit 7 - n % 8 (the most significant bit first; numpy's default)
  little  ///< element n at bit n % 8 (the least significant bit first; what FlashInfer's
          ///< attention kernels read)
};

/// \brief What a reader does with set bits past the mask (the padding of the last byte or
/// word of a segment or row).
enum class tail_bits {
  reject,  ///< raise emask::error naming the byte or word (the default)
  ignore   ///< skip them: they are never read as keep
};

/// \brief FlashInfer's batch layout: the packed bytes of every request and the byte offset of
/// each request's segment (`indptr`, size requests + 1, the `mask_indptr` FlashInfer's kernels
/// take after segment_packbits).
struct packed_segments {
  std::vector<std::uint8_t> bytes;  ///< the segments, one after the other
  std::vector<Index> indptr;        ///< segment i is bytes [indptr[i], indptr[i + 1])
};

namespace detail {
/// The bit of element \p n inside its byte.
inline unsigned packed_bit(bit_order order, Index n) noexcept {
  return order == bit_order::little ? 1u << (n & 7) : 0x80u >> (n & 7);
}
/// ceil(bits / 8).
inline Index packed_byte_count(Index bits) noexcept { return bits / 8 + (bits % 8 != 0 ? 1 : 0); }
/// q_len * k_len, after checking both and that the product stays <= emask::unbounded.
inline Index checked_mask_bits(const char* where, const char* q_arg, Index q_len, const char* k_arg,
                               Index k_len) {
  if (q_len < 0) fail_argument(where, q_arg, q_len, ">= 0");
  if (k_len < 0) fail_argument(where, k_arg, k_len, ">= 0");
  if (k_len != 0 && q_len > unbounded / k_len)
    fail_argument(where, q_arg, q_len, "at most ", unbounded / k_len, " rows of ", k_len,
                  " keys (q_len * k_len <= emask::unbounded)");
  return q_len * k_len;
}
inline void check_bit_order(const char* where, bit_order order) {
  if (order != bit_order::big && order != bit_order::little)
    fail_argument(where, "order", static_cast<int>(order), "bit_order::big or bit_order::little");
}
inline std::string hex_text(std::uint32_t v, int digits) {
  static const char* const hex = "0123456789abcdef";
  std::string s = "0x";
  for (int d = digits - 1; d >= 0; --d) s += hex[(v >> (4 * d)) & 15u];
  return s;
}
/// Packs keep (row-major, flattened) into out[0, ceil(rows * cols / 8)), which is zeroed.
template <class Derived>
void pack_keep_bits(const Eigen::DenseBase<Derived>& keep, bit_order order, std::uint8_t* out) {
  const Index cols = keep.cols();
  for (Index q = 0; q < keep.rows(); ++q)
    for (Index k = 0; k < cols; ++k)
      if (keep(q, k)) {
        const Index n = q * cols + k;
        out[n >> 3] = static_cast<std::uint8_t>(out[n >> 3] | packed_bit(order, n));
      }
}
/// Unpacks a q_len x k_len keep array from \p bytes (ceil(q_len * k_len / 8) of them, checked
/// by the caller); the tail bits are checked per \p tail, an error names `arg[base + i]`.
inline bool_matrix unpack_keep_bits(const char* where, const char* arg, const std::uint8_t* bytes,
                                    Index base, Index q_len, Index k_len, bit_order order,
                                    tail_bits tail) {
  const Index bits = q_len * k_len, n_bytes = packed_byte_count(bits);
  if (tail == tail_bits::reject && bits % 8 != 0) {
    unsigned padding = 0;
    for (Index n = bits; n < 8 * n_bytes; ++n) padding |= packed_bit(order, n);
    const unsigned last = bytes[n_bytes - 1];
    if ((last & padding) != 0)
      fail_element(where, arg, base + n_bytes - 1, hex_text(last, 2), "zero bits past the ", q_len,
                   " x ", k_len, " = ", bits,
                   " mask bits (packbits writes zeros there; a set padding bit means another "
                   "shape or bit order: pass tail_bits::ignore to skip them)");
  }
  bool_matrix out(q_len, k_len);
  for (Index q = 0; q < q_len; ++q)
    for (Index k = 0; k < k_len; ++k) {
      const Index n = q * k_len + k;
      out(q, k) = (bytes[n >> 3] & packed_bit(order, n)) != 0;
    }
  return out;
}
/// Appends the TensorRT-LLM words of one ancestor-or-self (or keep) row.
template <class Test>
void append_spec_row(std::vector<std::int32_t>& out, Index cols, Index words_per_row, Test&& test) {
  for (Index w = 0; w < words_per_row; ++w) {
    std::uint32_t word = 0;
    for (Index j = 32 * w; j < 32 * w + 32 && j < cols; ++j)
      if (test(j)) word |= std::uint32_t{1} << (j & 31);
    out.push_back(static_cast<std::int32_t>(word));
  }
}
inline Index spec_words(Index cols) noexcept { return cols / 32 + (cols % 32 != 0 ? 1 : 0); }
inline void check_spec_words(const char* where, Index cols, Index words_per_row) {
  if (words_per_row < spec_words(cols) || words_per_row > unbounded / 32)
    fail_argument(where, "words_per_row", words_per_row, ">= ceil(", cols,
                  " / 32) = ", spec_words(cols), " (one bit per draft token)");
}
/// FlashInfer's segment layout for \p n requests: request i takes ceil(bits(i) / 8) bytes from
/// byte indptr[i] on; pack(i, first byte) writes its bits into the zeroed segment.
template <class Bits, class Pack>
packed_segments pack_segments(std::size_t n, Bits bits, Pack pack) {
  packed_segments out;
  out.indptr.reserve(n + 1);
  out.indptr.push_back(0);
  for (std::size_t i = 0; i < n; ++i)
    out.indptr.push_back(out.indptr.back() + packed_byte_count(bits(i)));
  out.bytes.assign(static_cast<std::size_t>(out.indptr.back()), 0);
  for (std::size_t i = 0; i < n; ++i) pack(i, out.bytes.data() + out.indptr[i]);
  return out;
}
}  // namespace detail

/// \brief FlashInfer's / numpy's packbits of one request: the keep array flattened row by row
/// (element n = q * k_len + k), 8 elements per byte in \p order, ceil(q_len * k_len / 8)
/// bytes, the padding bits of the last byte zero.
template <class Derived>
std::vector<std::uint8_t> packbits(const Eigen::DenseBase<Derived>& keep, bit_order order) {
  static_assert(std::is_same<typename Derived::Scalar, bool>::value,
                "packbits takes a bool keep array (true = keep): compare a numeric array with 0 "
                "first (keep != 0)");
  detail::check_bit_order("packbits", order);
  std::vector<std::uint8_t> out(
      static_cast<std::size_t>(detail::packed_byte_count(keep.rows() * keep.cols())), 0);
  detail::pack_keep_bits(keep, order, out.data());
  return out;
}

/// \brief packbits() of slice (b, h) of a mask expression over q_len x k_len positions (a
/// tree_mask: q_len = T draft tokens, k_len = P + T keys), written run by run.
template <class Mask, std::enable_if_t<is_mask_v<Mask>, int> = 0>
std::vector<std::uint8_t> packbits(const Mask& mask, Index q_len, Index k_len, bit_order order,
                                   Index b = 0, Index h = 0) {
  const char* where = "packbits";
  detail::check_bit_order(where, order);
  const Index bits = detail::checked_mask_bits(where, "q_len", q_len, "k_len", k_len);
  detail::check_slice(where, q_len, k_len, b, h);
  mask.check(detail::slice_region(q_len, k_len, b, h), where);
  std::vector<std::uint8_t> out(static_cast<std::size_t>(detail::packed_byte_count(bits)), 0);
  detail::for_each_kept_run(mask, q_len, k_len, b, h, [&](Index q, Index begin, Index end) {
    for (Index n = q * k_len + begin; n < q * k_len + end; ++n)
      out[static_cast<std::size_t>(n >> 3)] = static_cast<std::uint8_t>(
          out[static_cast<std::size_t>(n >> 3)] | detail::packed_bit(order, n));
  });
  return out;
}

/// \brief FlashInfer's segment_packbits over a batch: request i's keep array packed as
/// packbits(), starting at byte indptr[i]; indptr[i + 1] - indptr[i] = ceil(q_i * k_i / 8).
inline packed_segments segment_packbits(const std::vector<bool_matrix>& requests, bit_order order) {
  detail::check_bit_order("segment_packbits", order);
  return detail::pack_segments(
      requests.size(), [&](std::size_t i) { return requests[i].rows() * requests[i].cols(); },
      [&](std::size_t i, std::uint8_t* seg) { detail::pack_keep_bits(requests[i], order, seg); });
}

/// \brief segment_packbits() of one tree per request: request i is tree i's T_i x (P_i + T_i)
/// mask (its draft tokens over its prefix and draft), as FlashInfer's
/// BatchPrefillWithPagedKVCacheWrapper.plan(custom_mask=...) takes it.
inline packed_segments segment_packbits(const std::vector<tree_mask>& trees, bit_order order) {
  detail::check_bit_order("segment_packbits", order);
  return detail::pack_segments(
      trees.size(), [&](std::size_t i) { return trees[i].draft_length() * trees[i].key_length(); },
      [&](std::size_t i, std::uint8_t* seg) {
        const tree_mask& t = trees[i];
        const Index k_len = t.key_length(), p = t.prefix_length();
        for (Index q = 0; q < t.draft_length(); ++q) {
          for (Index n = q * k_len; n < q * k_len + p; ++n)
            seg[n >> 3] = static_cast<std::uint8_t>(seg[n >> 3] | detail::packed_bit(order, n));
          const bit_row row = t.ancestors(q);
          for (Index j = row.first(0, row.size()); j < row.size();
               j = row.first(j + 1, row.size())) {
            const Index n = q * k_len + p + j;
            seg[n >> 3] = static_cast<std::uint8_t>(seg[n >> 3] | detail::packed_bit(order, n));
          }
        }
      });
}

/// \brief The inverse of packbits(): the q_len x k_len keep array in the \p n_bytes bytes at
/// \p bytes. \p n_bytes must be ceil(q_len * k_len / 8); set padding bits of the last byte
/// raise emask::error unless \p tail is tail_bits::ignore.
inline bool_matrix unpackbits(const std::uint8_t* bytes, Index n_bytes, Index q_len, Index k_len,
                              bit_order order, tail_bits tail = tail_bits::reject) {
  const char* where = "unpackbits";
  detail::check_bit_order(where, order);
  const Index bits = detail::checked_mask_bits(where, "q_len", q_len, "k_len", k_len);
  if (n_bytes != detail::packed_byte_count(bits))
    detail::fail_argument(where, "n_bytes", n_bytes, "ceil(q_len * k_len / 8) = ceil(", q_len,
                          " * ", k_len, " / 8) = ", detail::packed_byte_count(bits));
  if (bytes == nullptr && n_bytes > 0)
    detail::fail_argument(where, "bytes", "nullptr", "a buffer of ", n_bytes, " bytes");
  return detail::unpack_keep_bits(where, "bytes", bytes, 0, q_len, k_len, order, tail);
}

/// \brief The inverse of segment_packbits(): request i's q_lens[i] x k_lens[i] keep array in
/// bytes [indptr[i], indptr[i + 1]) of the \p n_bytes bytes at \p bytes (FlashInfer's packed
/// custom mask and its mask_indptr).
/// \pre indptr has q_lens.size() + 1 entries, indptr[i + 1] - indptr[i] = ceil(q_i * k_i / 8),
/// 0 <= indptr[0], indptr.back() <= n_bytes.
inline std::vector<bool_matrix> segment_unpackbits(const std::uint8_t* bytes, Index n_bytes,
                                                   const index_list& indptr,
                                                   const index_list& q_lens,
                                                   const index_list& k_lens, bit_order order,
                                                   tail_bits tail = tail_bits::reject) {
  const char* where = "segment_unpackbits";
  detail::check_bit_order(where, order);
  if (n_bytes < 0) detail::fail_argument(where, "n_bytes", n_bytes, ">= 0");
  if (k_lens.size() != q_lens.size())
    detail::fail_argument(where, "k_lens", detail::concat(k_lens.size(), " entries"), q_lens.size(),
                          " (one per request, as q_lens)");
  if (indptr.size() != q_lens.size() + 1)
    detail::fail_argument(where, "indptr", detail::concat(indptr.size(), " entries"),
                          q_lens.size() + 1, " (requests + 1)");
  if (indptr[0] < 0 || indptr[0] > n_bytes)
    detail::fail_element(where, "indptr", 0, indptr[0], "a byte offset in [0, n_bytes = ", n_bytes,
                         "]");
  for (std::size_t i = 0; i < q_lens.size(); ++i) {
    if (q_lens[i] < 0) detail::fail_element(where, "q_lens", i, q_lens[i], ">= 0");
    if (k_lens[i] < 0) detail::fail_element(where, "k_lens", i, k_lens[i], ">= 0");
    if (k_lens[i] != 0 && q_lens[i] > unbounded / k_lens[i])
      detail::fail_element(where, "q_lens", i, q_lens[i], "at most ", unbounded / k_lens[i],
                           " (q_len * k_len <= emask::unbounded)");
    const Index size = detail::packed_byte_count(q_lens[i] * k_lens[i]);
    // 0 <= indptr[i] <= n_bytes here, so the subtraction cannot overflow.
    if (indptr[i + 1] < indptr[i] || indptr[i + 1] > n_bytes || indptr[i + 1] - indptr[i] != size)
      detail::fail_element(where, "indptr", i + 1, indptr[i + 1], "indptr[", i, "] + ceil(",
                           q_lens[i], " * ", k_lens[i], " / 8) = ", indptr[i] + size,
                           ", at most n_bytes = ", n_bytes);
  }
  if (bytes == nullptr && indptr[q_lens.size()] > indptr[0])
    detail::fail_argument(where, "bytes", "nullptr", "a buffer of ", n_bytes, " bytes");
  std::vector<bool_matrix> out;
  out.reserve(q_lens.size());
  for (std::size_t i = 0; i < q_lens.size(); ++i)
    out.push_back(detail::unpack_keep_bits(where, "bytes", bytes + indptr[i], indptr[i], q_lens[i],
                                           k_lens[i], order, tail));
  return out;
}

/// \brief TensorRT-LLM's spec_decoding_packed_mask of a keep array [rows x tokens] (the
/// generation tokens' draft block, row i keeping token j): row i is \p words_per_row int32
/// words, token j at bit j % 32 of word j / 32 (least significant bit first), unused bits zero.
/// \pre words_per_row >= ceil(tokens / 32) (TensorRT-LLM pads rows to
/// divUp(max_draft_tokens + 1, 32) words).
template <class Derived>
std::vector<std::int32_t> pack_spec_decoding_mask(const Eigen::DenseBase<Derived>& keep,
                                                  Index words_per_row) {
  static_assert(std::is_same<typename Derived::Scalar, bool>::value,
                "pack_spec_decoding_mask takes a bool keep array (true = keep)");
  detail::check_spec_words("pack_spec_decoding_mask", keep.cols(), words_per_row);
  std::vector<std::int32_t> out;
  out.reserve(static_cast<std::size_t>(keep.rows() * words_per_row));
  for (Index i = 0; i < keep.rows(); ++i)
    detail::append_spec_row(out, keep.cols(), words_per_row,
                            [&](Index j) { return static_cast<bool>(keep(i, j)); });
  return out;
}

/// \brief pack_spec_decoding_mask() with ceil(tokens / 32) words per row.
template <class Derived>
std::vector<std::int32_t> pack_spec_decoding_mask(const Eigen::DenseBase<Derived>& keep) {
  return pack_spec_decoding_mask(keep, detail::spec_words(keep.cols()));
}

/// \brief pack_spec_decoding_mask() of a tree's draft block (T x T: row i keeps i and its
/// ancestors), \p words_per_row words per row.
inline std::vector<std::int32_t> pack_spec_decoding_mask(const tree_mask& tree,
                                                         Index words_per_row) {
  const Index t = tree.draft_length();
  detail::check_spec_words("pack_spec_decoding_mask", t, words_per_row);
  std::vector<std::int32_t> out;
  out.reserve(static_cast<std::size_t>(t * words_per_row));
  for (Index i = 0; i < t; ++i) {
    const bit_row row = tree.ancestors(i);
    detail::append_spec_row(out, t, words_per_row, [&](Index j) { return row.test(j); });
  }
  return out;
}

/// \brief pack_spec_decoding_mask() of a tree with ceil(T / 32) words per row.
inline std::vector<std::int32_t> pack_spec_decoding_mask(const tree_mask& tree) {
  return pack_spec_decoding_mask(tree, detail::spec_words(tree.draft_length()));
}

/// \brief A batch of trees in TensorRT-LLM's flattened layout: the rows of tree 0, then those
/// of tree 1, ..., \p words_per_row words each (the engine's packed_mask_dim; row r of request
/// i is row cum_generation_lengths[i] + r).
/// \pre words_per_row >= ceil(T_i / 32) for every tree.
inline std::vector<std::int32_t> pack_spec_decoding_mask(const std::vector<tree_mask>& trees,
                                                         Index words_per_row) {
  std::vector<std::int32_t> out;
  for (const tree_mask& t : trees)
    detail::check_spec_words("pack_spec_decoding_mask", t.draft_length(), words_per_row);
  for (const tree_mask& t : trees) {
    const std::vector<std::int32_t> one = pack_spec_decoding_mask(t, words_per_row);
    out.insert(out.end(), one.begin(), one.end());
  }
  return out;
}

/// \brief The inverse of pack_spec_decoding_mask(): the rows x tokens keep array in \p rows
/// rows of \p words_per_row int32 words at \p words. Set bits at or past \p tokens in a row
/// raise emask::error unless \p tail is tail_bits::ignore. For a tree, pass the result to
/// tree_mask::from_ancestor_matrix().
/// \pre rows, tokens >= 0; ceil(tokens / 32) <= words_per_row.
inline bool_matrix unpack_spec_decoding_mask(const std::int32_t* words, Index rows,
                                             Index words_per_row, Index tokens,
                                             tail_bits tail = tail_bits::reject) {
  const char* where = "unpack_spec_decoding_mask";
  if (rows < 0) detail::fail_argument(where, "rows", rows, ">= 0");
  if (tokens < 0) detail::fail_argument(where, "tokens", tokens, ">= 0");
  if (words_per_row < 0 || words_per_row > unbounded / 32)
    detail::fail_argument(where, "words_per_row", words_per_row, ">= 0 and <= ", unbounded / 32);
  if (tokens > 32 * words_per_row)
    detail::fail_argument(where, "tokens", tokens, "<= 32 * words_per_row = ", 32 * words_per_row,
                          " (one bit per token)");
  if (words_per_row != 0 && rows > unbounded / words_per_row)
    detail::fail_argument(where, "rows", rows, "at most ", unbounded / words_per_row);
  if (words == nullptr && rows * words_per_row > 0)
    detail::fail_argument(where, "words", "nullptr",
                          "a buffer of rows * words_per_row = ", rows * words_per_row, " words");
  if (tail == tail_bits::reject)
    for (Index i = 0; i < rows; ++i)
      for (Index w = tokens / 32; w < words_per_row; ++w) {
        const auto word = static_cast<std::uint32_t>(words[i * words_per_row + w]);
        const Index lo = tokens - 32 * w;  // first padding bit of this word, may be <= 0
        const std::uint32_t padding =
            lo <= 0 ? ~std::uint32_t{0} : ~((std::uint32_t{1} << lo) - 1u);
        if ((word & padding) != 0)
          detail::fail_element(where, "words", i * words_per_row + w, detail::hex_text(word, 8),
                               "no bit set at or past token ", tokens, " (row ", i, ", word ", w,
                               "; a set padding bit means another token count: pass "
                               "tail_bits::ignore to skip them)");
      }
  bool_matrix out(rows, tokens);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < tokens; ++j)
      out(i, j) =
          ((static_cast<std::uint32_t>(words[i * words_per_row + (j >> 5)]) >> (j & 31)) & 1u) != 0;
  return out;
}

EMASK_NAMESPACE_END
