/// \file
/// \brief Grammar token bitmasks (xgrammar, outlines, vLLM structured output) read in place: rows
/// of ceil(V / 32) 32-bit words, token v allowed when bit (v mod 32) of word v / 32 is set (least
/// significant bit first).
#pragma once

#include <cstdint>

#include "emask/config.hpp"
#include "emask/core/bits.hpp"
#include "emask/core/mask.hpp"
#include "emask/core/types.hpp"
#include "emask/error.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief What a token_bitmask does with a vocabulary wider than its bits.
enum class vocab_tail {
  error,  ///< raise emask::error at construction (the default)
  mask    ///< the tokens beyond the bits are disallowed
};

/// \brief A view of a grammar bitmask as a keep-mask: row q (one sequence of the batch, the
/// query axis of masked_softmax) keeps token k (the key axis) when bit (k mod 32) of word
/// k / 32 of the row is set. No copy: keep the words alive while the mask is used.
///
/// Bits at or beyond the vocabulary (the padding of the last word) are never read as allowed,
/// whatever they hold. A row with no allowed token follows the fully-masked-row rule (zeros,
/// lse -infinity). Exact tile answers by counting bits a word at a time.
class token_bitmask : public mask_base<token_bitmask> {
 public:
  static constexpr bool exact_tiles = true;  ///< whether tile() answers are exact

  /// \brief \p rows rows of \p words_per_row words at \p words (row-major, contiguous), for a
  /// vocabulary of \p vocab tokens (the logits' width).
  /// \pre rows >= 0, words_per_row >= 0, vocab >= 0, words non-null when rows * words_per_row
  /// > 0; vocab <= 32 * words_per_row unless tail is vocab_tail::mask.
  token_bitmask(const std::int32_t* words, Index rows, Index words_per_row, Index vocab,
                vocab_tail tail = vocab_tail::error)
      : words_(words), rows_(rows), wpr_(words_per_row), vocab_(vocab) {
    const char* where = "token_bitmask";
    if (rows < 0) detail::fail_argument(where, "rows", rows, ">= 0");
    if (words_per_row < 0 || words_per_row > unbounded / 32)
      detail::fail_argument(where, "words_per_row", words_per_row, ">= 0 and <= ", unbounded / 32);
    if (vocab < 0 || vocab > unbounded) detail::fail_argument(where, "vocab", vocab, ">= 0");
    if (words == nullptr && rows * words_per_row > 0)
      detail::fail_argument(where, "words", "null", "a pointer to rows * words_per_row words");
    if (vocab > 32 * words_per_row && tail == vocab_tail::error)
      detail::fail_argument(where, "vocab", vocab, "<= 32 * words_per_row = ", 32 * words_per_row,
                            " (the bits cover fewer tokens than the vocabulary: pass "
                            "vocab_tail::mask to disallow the rest)");
    limit_ = vocab < 32 * words_per_row ? vocab : 32 * words_per_row;
  }

  /// \brief Rows (sequences).
  Index rows() const noexcept { return rows_; }
  /// \brief Vocabulary size.
  Index vocab() const noexcept { return vocab_; }

  /// \brief Whether row q allows token k.
  bool keep(Index, Index, Index q, Index k) const {
    if (k < 0 || k >= limit_) return false;
    return bit(q, k);
  }

  /// \brief Allowed tokens of row q inside [k0, k1): first to last, exact when contiguous.
  key_span keys(Index, Index, Index q, Index k0, Index k1) const {
    const Index hi = k1 < limit_ ? k1 : limit_;
    Index first = -1, last = -1, count = 0;
    for (Index k = k0; k < hi;) {
      const std::uint32_t w = word_bits(q, k, hi);
      const Index base = k & ~Index(31);
      if (w != 0) {
        const Index lo_bit = base + lowest(w), hi_bit = base + highest(w);
        if (first < 0) first = lo_bit;
        last = hi_bit;
        count += popcount(w);
      }
      k = base + 32;
    }
    if (first < 0) return detail::empty_span(k0);
    return {first, last + 1, count == last + 1 - first};
  }

  /// \brief State of the tile [q0, q1) x [k0, k1), exact.
  tile_state tile(Index, Index, Index q0, Index q1, Index k0, Index k1) const {
    if (q1 <= q0 || k1 <= k0) return tile_state::empty;
    const Index hi = k1 < limit_ ? k1 : limit_;
    const Index per_row = k1 - k0;
    Index total = 0;
    for (Index q = q0; q < q1; ++q)
      for (Index k = k0; k < hi; k = (k & ~Index(31)) + 32) total += popcount(word_bits(q, k, hi));
    if (total == 0) return tile_state::empty;
    return total == per_row * (q1 - q0) ? tile_state::full : tile_state::partial;
  }

  /// \brief Raises emask::error unless the call's rows are < rows() and its keys <= vocab().
  void check(const region& r, const char* where) const {
    if (r.q_begin < 0 || r.q_end > rows_)
      detail::fail_argument(where, "mask", detail::concat("token_bitmask of ", rows_, " rows"),
                            "a row per query: ", r.q_end, " (the rows of the logits)");
    if (r.k_begin < 0 || r.k_end > vocab_)
      detail::fail_argument(where, "mask", detail::concat("token_bitmask of vocab ", vocab_),
                            "a vocabulary covering the logits' ", r.k_end, " columns");
  }

  /// \brief The allowed tokens as a bool keep-matrix (rows x vocab), e.g. for
  /// `action_mask::discrete(...)` and masked_sample.
  bool_matrix to_bool() const {
    bool_matrix out(rows_, vocab_);
    for (Index q = 0; q < rows_; ++q)
      for (Index k = 0; k < vocab_; ++k) out(q, k) = keep(0, 0, q, k);
    return out;
  }

 private:
  bool bit(Index q, Index k) const {
    const auto w = static_cast<std::uint32_t>(words_[q * wpr_ + (k >> 5)]);
    return ((w >> (k & 31)) & 1u) != 0;
  }
  /// The bits of the word holding token k, restricted to [k, hi).
  std::uint32_t word_bits(Index q, Index k, Index hi) const {
    const Index base = k & ~Index(31);
    auto w = static_cast<std::uint32_t>(words_[q * wpr_ + (base >> 5)]);
    w &= ~std::uint32_t{0} << (k - base);
    if (hi < base + 32) w &= (std::uint32_t{1} << (hi - base)) - 1u;
    return w;
  }
  static Index popcount(std::uint32_t x) noexcept { return detail::popcount64(x); }
  static Index lowest(std::uint32_t x) noexcept { return detail::lowest_bit64(x); }
  static Index highest(std::uint32_t x) noexcept { return detail::highest_bit64(x); }

  const std::int32_t* words_;
  Index rows_, wpr_, vocab_, limit_ = 0;
};

EMASK_NAMESPACE_END
