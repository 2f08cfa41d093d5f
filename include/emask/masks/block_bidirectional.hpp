/// \file
/// \brief Causal attention with bidirectional groups on top (Hugging Face's block_sequence_ids
/// overlay, Gemma 3's image tokens, PaliGemma's prefix): the tokens of one group see each other
/// both ways, everything else is causal. It generalizes prefix-LM (one group at the start).
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "emask/config.hpp"
#include "emask/core/index_list.hpp"
#include "emask/core/mask.hpp"
#include "emask/detail/interval_mask.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Query q keeps key k when k <= q, or when q and k carry the same group id >= 0.
///
/// `group_ids` holds one id per position (a row per batch entry; a single row serves every
/// batch entry); -1 means "no group: plain causal". The positions of one group must be one
/// contiguous run (then every row keeps one interval [0, hi(q)) and tiles are exact in
/// O(log rows)); a group id that comes back after another id is an emask::error naming the
/// position. Positions are absolute (a shard or cache step uses the options' offsets) and must
/// lie inside the table.
class block_bidirectional : public detail::interval_mask<block_bidirectional> {
 public:
  /// \brief From the group id of every position, [batch x positions] or one row.
  /// \pre ids >= -1; each id >= 0 one contiguous run per row; at least one row.
  explicit block_bidirectional(const id_table& group_ids)
      : rows_(group_ids.rows()), len_(group_ids.cols()) {
    const char* where = "block_bidirectional";
    if (rows_ < 1) detail::fail_argument(where, "group_ids", "an empty table", "at least one row");
    hi_.resize(static_cast<std::size_t>(rows_ * len_));
    for (Index b = 0; b < rows_; ++b) {
      const std::int64_t* ids = group_ids.data().data() + b * len_;
      Index* hi = hi_.data() + b * len_;
      // Runs from the back: hi(q) is the end of q's run, or q + 1 without a group.
      for (Index q = len_ - 1; q >= 0; --q) {
        const std::int64_t g = ids[q];
        if (g < -1) detail::fail_element(where, "group_ids", q, g, ">= -1 (-1: no group)");
        const bool same_as_next = g >= 0 && q + 1 < len_ && ids[q + 1] == g;
        hi[q] = same_as_next ? hi[q + 1] : q + 1;
      }
      // A group id seen again after its run ended cannot be one run: sort the runs by id.
      std::vector<std::pair<std::int64_t, Index>> runs;  // (id, first position)
      for (Index q = 0; q < len_; q = hi[q])             // hi[q] >= q + 1: next run
        if (ids[q] >= 0) runs.emplace_back(ids[q], q);
      std::sort(runs.begin(), runs.end());
      for (std::size_t i = 1; i < runs.size(); ++i)
        if (runs[i].first == runs[i - 1].first)
          detail::fail_element(where, "group_ids", runs[i].second, runs[i].first,
                               "each group one contiguous run of positions (group ", runs[i].first,
                               " already ran from position ", runs[i - 1].second, ")");
    }
  }

  /// \brief Prefix-LM as a special case: group 0 over the first \p prefix_length of \p length
  /// positions, plain causal after.
  static block_bidirectional prefix(Index prefix_length, Index length) {
    if (length < 0) detail::fail_argument("block_bidirectional::prefix", "length", length, ">= 0");
    if (prefix_length < 0 || prefix_length > length)
      detail::fail_argument("block_bidirectional::prefix", "prefix_length", prefix_length,
                            ">= 0 and <= length = ", length);
    std::vector<std::int64_t> ids(static_cast<std::size_t>(length), -1);
    for (Index i = 0; i < prefix_length; ++i) ids[static_cast<std::size_t>(i)] = 0;
    return block_bidirectional(id_table(ids));
  }

  /// \brief Positions covered by the table.
  Index length() const noexcept { return len_; }

  /// \brief Kept keys [lo, hi) of row q of batch entry b (detail::interval_mask contract).
  detail::row_bounds bounds(Index b, Index q) const {
    EMASK_ASSERT(q >= 0 && q < len_);
    const Index row = rows_ == 1 ? 0 : b;
    return {0, hi_[static_cast<std::size_t>(row * len_ + q)]};
  }

  /// \brief Raises emask::error when the call's batch or positions exceed the table.
  void check(const region& r, const char* where) const {
    detail::check_batch(where, "group_ids", static_cast<std::size_t>(rows_), r);
    detail::check_positions(where, r);
    if (r.q_begin < 0 || r.q_end > len_)
      detail::fail_argument(where, "query positions",
                            detail::concat("[", r.q_begin, ", ", r.q_end, ")"),
                            "inside the group table's ", len_, " positions");
    if (r.k_begin < 0 || r.k_end > len_)
      detail::fail_argument(where, "key positions",
                            detail::concat("[", r.k_begin, ", ", r.k_end, ")"),
                            "inside the group table's ", len_, " positions");
  }

 private:
  Index rows_, len_;
  std::vector<Index> hi_;  // [rows x len]: end of each row's kept interval
};

EMASK_NAMESPACE_END
