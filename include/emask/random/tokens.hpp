/// \file
/// \brief Token inputs of the random maskers: the token matrix (token_id, int32), the vocabulary
/// with its special ids, and per-row lengths.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "emask/core/index_list.hpp"
#include "emask/core/types.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/error.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief A vocabulary [0, vocab_size) and which of its ids are special (never selected for
/// masking, and by default never drawn as random replacements). Build it once and reuse it: the
/// constructor is O(vocab_size).
class special_tokens {
 public:
  special_tokens() = default;
  /// \brief Vocabulary of \p vocab_size ids whose special ids are \p ids.
  special_tokens(std::int32_t vocab_size, const std::vector<token_id>& ids)
      : special_tokens(empty{}, "special_tokens", vocab_size) {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= vocab_size)
        detail::fail_element("special_tokens", "ids", i, ids[i], "an id in [0, ", vocab_size, ")");
      flags_[static_cast<std::size_t>(ids[i])] = 1;
    }
    finish();
  }
  /// \brief Vocabulary of \p vocab_size ids where \p is_special(id) marks the special ones.
  template <class Predicate>
  static special_tokens from_predicate(std::int32_t vocab_size, Predicate&& is_special) {
    special_tokens s(empty{}, "special_tokens::from_predicate", vocab_size);
    for (token_id id = 0; id < vocab_size; ++id)
      s.flags_[static_cast<std::size_t>(id)] = is_special(id) ? 1 : 0;
    s.finish();
    return s;
  }

  /// \brief Number of ids in the vocabulary.
  std::int32_t vocab_size() const noexcept { return vocab_size_; }
  /// \brief True if \p id is special. Ids outside [0, vocab_size) count as special.
  bool is_special(token_id id) const noexcept {
    return id < 0 || id >= vocab_size_ || flags_[static_cast<std::size_t>(id)] != 0;
  }
  /// \brief The ids that are not special, ascending: the pool random replacements are drawn from.
  const std::vector<token_id>& regular_ids() const noexcept { return regular_; }
  /// \brief One flag per id, 1 = special, followed by 4 padding zeros (vocab_size() + 4 bytes).
  const std::vector<unsigned char>& flags() const noexcept { return flags_; }

 private:
  struct empty {};
  // A vocabulary of vocab_size ids with no special id yet; where names the public caller.
  special_tokens(empty, const char* where, std::int32_t vocab_size) : vocab_size_(vocab_size) {
    if (vocab_size < 1) detail::fail_argument(where, "vocab_size", vocab_size, ">= 1");
    // 4 zero bytes of padding after the flags, so SIMD code may load 4 bytes at any id
    flags_.assign(static_cast<std::size_t>(vocab_size) + 4, 0);
  }
  void finish() {
    regular_.clear();
    for (token_id id = 0; id < vocab_size_; ++id)
      if (!flags_[static_cast<std::size_t>(id)]) regular_.push_back(id);
  }
  std::int32_t vocab_size_ = 0;
  std::vector<unsigned char> flags_;
  std::vector<token_id> regular_;
};

namespace detail {
/// Checks a per-row list of lengths (\p arg names it in messages: "lengths", "prompt_lengths"):
/// one entry per row, each in [0, width].
inline void check_lengths(const char* where, const index_list* lengths, Index batch, Index width,
                          const char* arg = "lengths") {
  if (!lengths) return;
  if (static_cast<Index>(lengths->size()) != batch)
    fail_argument(where, arg, concat(lengths->size(), " entries"), batch,
                  " entries (one per row of ids)");
  for (std::size_t i = 0; i < lengths->size(); ++i)
    if ((*lengths)[i] < 0 || (*lengths)[i] > width)
      fail_element(where, arg, i, (*lengths)[i], "a length in [0, ", width, "]");
}
/// Valid length of row b: lengths[b] when given, else the full width.
inline Index row_length(const index_list* lengths, Index b, Index width) noexcept {
  return lengths ? (*lengths)[static_cast<std::size_t>(b)] : width;
}
inline void check_probability(const char* where, const char* arg, double p) {
  if (is_nan(p) || !(p >= 0.0 && p <= 1.0)) fail_argument(where, arg, p, "a probability in [0, 1]");
}
}  // namespace detail

EMASK_NAMESPACE_END
