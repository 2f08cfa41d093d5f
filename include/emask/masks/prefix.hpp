/// \file
/// \brief Prefix-LM: bidirectional attention among the first P positions, causal after.
#pragma once

#include <vector>

#include "emask/core/index_list.hpp"
#include "emask/detail/interval_mask.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Query q keeps key k when k < P or k <= q: the prefix (inputs) is seen by every query
/// in both directions, the rest (targets) is causal. P is one value, or one per batch entry.
class prefix_lm : public detail::interval_mask<prefix_lm> {
 public:
  /// \pre prefix_length >= 0.
  explicit prefix_lm(Index prefix_length) : prefix_{prefix_length} {
    if (prefix_length < 0)
      detail::fail_argument("prefix_lm", "prefix_length", prefix_length, ">= 0");
  }
  /// \brief One prefix length per batch entry. \pre every entry >= 0, at least one entry.
  explicit prefix_lm(const index_list& prefix_lengths) : prefix_(prefix_lengths.values()) {
    if (prefix_.empty())
      detail::fail_argument("prefix_lm", "prefix_lengths", "an empty list",
                            "one entry per batch entry");
    for (std::size_t i = 0; i < prefix_.size(); ++i)
      if (prefix_[i] < 0)
        detail::fail_element("prefix_lm", "prefix_lengths", i, prefix_[i], ">= 0");
  }
  /// \brief Prefix length of batch entry \p b.
  Index prefix_length(Index b = 0) const { return detail::per_batch_value(prefix_, b); }

  /// \brief Kept keys [lo, hi) of row q of batch entry b (detail::interval_mask contract).
  detail::row_bounds bounds(Index b, Index q) const {
    return detail::make_bounds(0, (std::max)(prefix_length(b), q + 1));
  }
  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where) const {
    detail::check_batch(where, "prefix_lengths", prefix_.size(), r);
    detail::check_positions(where, r);
  }

 private:
  std::vector<Index> prefix_;
};

EMASK_NAMESPACE_END
