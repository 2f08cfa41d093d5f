/// \file
/// \brief Bit-packed keep-masks: one bit per entry in 64-bit words, rows padded to whole words.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "emask/core/materialize.hpp"

EMASK_NAMESPACE_BEGIN

namespace detail {
inline int popcount64(std::uint64_t x) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_popcountll(x);
#else
  int n = 0;
  for (; x; x &= x - 1) ++n;
  return n;
#endif
}
/// Index of the lowest set bit of x != 0.
inline int lowest_bit64(std::uint64_t x) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_ctzll(x);
#else
  int n = 0;
  for (; !(x & 1u); x >>= 1) ++n;
  return n;
#endif
}
/// Index of the highest set bit of x != 0.
inline int highest_bit64(std::uint64_t x) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  return 63 - __builtin_clzll(x);
#else
  int n = 0;
  for (; x >>= 1;) ++n;
  return n;
#endif
}
/// Bits [lo, hi) of a word set, 0 <= lo < hi <= 64.
inline std::uint64_t bit_range(int lo, int hi) noexcept {
  const std::uint64_t upper = hi == 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << hi) - 1);
  return upper & ~((std::uint64_t{1} << lo) - 1);
}
/// Sets bits [k0, k1) of the bit row starting at \p words.
inline void set_bits(std::uint64_t* words, Index k0, Index k1) noexcept {
  while (k0 < k1) {
    const Index w = k0 >> 6;
    const int lo = static_cast<int>(k0 & 63);
    const int hi = static_cast<int>(std::min<Index>(k1 - (w << 6), 64));
    words[w] |= bit_range(lo, hi);
    k0 = (w << 6) + hi;
  }
}
}  // namespace detail

/// \brief One row of a bit_mask: bit k of word k / 64 at position k % 64 (LSB first).
class bit_row {
 public:
  /// \brief A view of \p cols bits starting at \p words.
  bit_row(const std::uint64_t* words, Index cols) noexcept : words_(words), cols_(cols) {}
  /// \brief Whether entry \p k is kept.
  bool test(Index k) const {
    EMASK_ASSERT(k >= 0 && k < cols_);
    return (words_[k >> 6] >> (k & 63)) & 1u;
  }
  /// \brief Number of kept entries in [k0, k1).
  Index count(Index k0, Index k1) const {
    Index n = 0;
    while (k0 < k1) {
      const Index w = k0 >> 6;
      const int lo = static_cast<int>(k0 & 63);
      const int hi = static_cast<int>(std::min<Index>(k1 - (w << 6), 64));
      n += detail::popcount64(words_[w] & detail::bit_range(lo, hi));
      k0 = (w << 6) + hi;
    }
    return n;
  }
  /// \brief Number of kept entries in the row.
  Index count() const { return count(0, cols_); }
  /// \brief The first kept entry in [k0, k1), or k1 when there is none (one word per step).
  Index first(Index k0, Index k1) const {
    while (k0 < k1) {
      const Index w = k0 >> 6;
      const int lo = static_cast<int>(k0 & 63);
      const int hi = static_cast<int>(std::min<Index>(k1 - (w << 6), 64));
      const std::uint64_t bits = words_[w] & detail::bit_range(lo, hi);
      if (bits) return (w << 6) + detail::lowest_bit64(bits);
      k0 = (w << 6) + hi;
    }
    return k1;
  }
  /// \brief One past the last kept entry in [k0, k1), or k0 when there is none.
  Index last_end(Index k0, Index k1) const {
    while (k1 > k0) {
      const Index w = (k1 - 1) >> 6;
      const int lo = static_cast<int>(std::max<Index>(k0 - (w << 6), 0));
      const int hi = static_cast<int>(k1 - (w << 6));
      const std::uint64_t bits = words_[w] & detail::bit_range(lo, hi);
      if (bits) return (w << 6) + detail::highest_bit64(bits) + 1;
      k1 = (w << 6) + lo;
    }
    return k0;
  }
  /// \brief The kept keys of [k0, k1) as a key span (exact when they are one run).
  key_span span(Index k0, Index k1) const {
    const Index first_kept = first(k0, k1);
    if (first_kept == k1) return detail::empty_span(k0);
    const Index end = last_end(first_kept, k1);
    return {first_kept, end, count(first_kept, end) == end - first_kept};
  }
  /// \brief The row's words.
  const std::uint64_t* words() const noexcept { return words_; }
  /// \brief Number of entries.
  Index size() const noexcept { return cols_; }

 private:
  const std::uint64_t* words_;
  Index cols_;
};

/// \brief A bit-packed keep-mask of [rows, cols]: 64 entries per word, 1/8 of a bool array.
/// It is a mask expression too (shared by every batch entry and head), with exact tile answers
/// from popcounts.
class bit_mask : public mask_base<bit_mask> {
 public:
  /// tile() never answers partial for an empty or full tile
  static constexpr bool exact_tiles = true;

  /// \brief An empty matrix.
  bit_mask() = default;
  /// \brief A \p rows x \p cols matrix with every entry masked.
  /// \pre rows, cols >= 0 and rows x ceil(cols / 64) words no more than a vector can hold.
  bit_mask(Index rows, Index cols)
      : rows_(rows),
        cols_(cols),
        words_per_row_(cols / 64 + (cols % 64 != 0 ? 1 : 0)),
        words_(checked_words(rows, cols), 0) {}
  /// \brief Packs a keep array.
  template <class Derived>
  static bit_mask from_bool(const Eigen::DenseBase<Derived>& keep) {
    bit_mask m(keep.rows(), keep.cols());
    for (Index q = 0; q < keep.rows(); ++q)
      for (Index k = 0; k < keep.cols(); ++k)
        if (keep(q, k)) m.set(q, k, true);
    return m;
  }

  /// \brief Number of rows.
  Index rows() const noexcept { return rows_; }
  /// \brief Number of columns.
  Index cols() const noexcept { return cols_; }
  /// \brief 64-bit words per row, (cols + 63) / 64.
  Index words_per_row() const noexcept { return words_per_row_; }
  /// \brief Row \p q.
  bit_row row(Index q) const {
    EMASK_ASSERT(q >= 0 && q < rows_);
    return bit_row(words_.data() + q * words_per_row_, cols_);
  }
  /// \brief Sets entry (\p q, \p k).
  void set(Index q, Index k, bool value) {
    EMASK_ASSERT(q >= 0 && q < rows_ && k >= 0 && k < cols_);
    std::uint64_t& w = words_[static_cast<std::size_t>(q * words_per_row_ + (k >> 6))];
    const std::uint64_t bit = std::uint64_t{1} << (k & 63);
    w = value ? (w | bit) : (w & ~bit);
  }
  /// Sets bits [k0, k1) of row q.
  void set_range(Index q, Index k0, Index k1) {
    detail::set_bits(words_.data() + q * words_per_row_, k0, k1);
  }
  /// \brief Unpacks to a keep array.
  bool_matrix to_bool() const {
    bool_matrix out(rows_, cols_);
    for (Index q = 0; q < rows_; ++q)
      for (Index k = 0; k < cols_; ++k) out(q, k) = row(q).test(k);
    return out;
  }
  /// \brief All words, row after row.
  const std::vector<std::uint64_t>& words() const noexcept { return words_; }

 private:
  // The checks of the constructor, before the words are allocated.
  static std::size_t checked_words(Index rows, Index cols) {
    if (rows < 0) detail::fail_argument("bit_mask", "rows", rows, ">= 0");
    if (cols < 0) detail::fail_argument("bit_mask", "cols", cols, ">= 0");
    const auto per_row = static_cast<std::size_t>(cols / 64 + (cols % 64 != 0 ? 1 : 0));
    const std::size_t limit = std::vector<std::uint64_t>().max_size();
    if (per_row != 0 && static_cast<std::size_t>(rows) > limit / per_row)
      detail::fail_argument("bit_mask", "rows", rows, "at most ", limit / per_row, " rows of ",
                            cols, " columns (", limit, " 64-bit words, the most a vector holds)");
    return static_cast<std::size_t>(rows) * per_row;
  }

 public:
  // Mask-expression interface.
  /// \brief Whether pair (q, k) of batch entry b and head h is kept.
  bool keep(Index, Index, Index q, Index k) const { return row(q).test(k); }
  /// \brief State of the tile [q0, q1) x [k0, k1): never full or empty when it is not.
  tile_state tile(Index, Index, Index q0, Index q1, Index k0, Index k1) const {
    bool any = false, all = true;
    for (Index q = q0; q < q1; ++q) {
      const Index n = row(q).count(k0, k1);
      any = any || n > 0;
      all = all && n == k1 - k0;
      if (any && !all) return tile_state::partial;
    }
    return any ? tile_state::full : tile_state::empty;
  }
  /// \brief Keys of row q that can be kept, inside [k0, k1).
  key_span keys(Index, Index, Index q, Index k0, Index k1) const { return row(q).span(k0, k1); }
  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where) const {
    detail::check_range(where, "query positions", r.q_begin, r.q_end, rows_);
    detail::check_range(where, "key positions", r.k_begin, r.k_end, cols_);
  }

 private:
  // Checked before the words are allocated: a negative size must be an emask::error.
  Index rows_ = 0, cols_ = 0, words_per_row_ = 0;
  std::vector<std::uint64_t> words_;
};

/// \brief The bit-packed keep-mask of slice (b, h) of \p mask.
template <class Mask, std::enable_if_t<is_mask_v<Mask>, int> = 0>
bit_mask materialize_bits(const Mask& mask, Index q_len, Index k_len, Index b = 0, Index h = 0) {
  detail::check_slice("materialize_bits", q_len, k_len, b, h);
  mask.check(detail::slice_region(q_len, k_len, b, h), "materialize_bits");
  bit_mask out(q_len, k_len);
  detail::for_each_kept_run(mask, q_len, k_len, b, h,
                            [&](Index q, Index begin, Index end) { out.set_range(q, begin, end); });
  return out;
}

EMASK_NAMESPACE_END
