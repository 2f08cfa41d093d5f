/// \file
/// \brief Document masks for packed sequences: a query keeps only keys of its own document.
///
/// Built from segment ids per position (one row per batch entry; queries and keys may have
/// their own ids, as in cross-attention or a KV cache) or from cumulative lengths (cu_seqlens,
/// FlashAttention's varlen layout). Compose with causal for packed causal training:
/// `document::from_cu_seqlens(cu) & causal()`.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "emask/core/index_list.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Keeps (q, k) when segment id of query q equals segment id of key k. Ids with a
/// single row serve every batch entry.
class document : public mask_base<document> {
 public:
  /// tile() never answers partial for an empty or full tile
  static constexpr bool exact_tiles = true;

  /// \brief Self-attention over packed sequences: \p segment_ids is [batch, length] (or one row).
  static document from_segment_ids(const id_table& segment_ids) {
    return document(segment_ids, segment_ids, true);
  }
  /// \brief Queries and keys with their own ids ([batch, q_len] and [batch, k_len]).
  static document from_segment_ids(const id_table& q_segment_ids, const id_table& k_segment_ids) {
    if (q_segment_ids.rows() != k_segment_ids.rows())
      detail::fail_argument("document::from_segment_ids", "k_segment_ids",
                            detail::concat(k_segment_ids.rows(), " rows"), q_segment_ids.rows(),
                            " rows (one per row of q_segment_ids)");
    return document(q_segment_ids, k_segment_ids, false);
  }
  /// \brief From cumulative lengths [0, n_0, n_0 + n_1, ...]: document i covers positions
  /// [cu_seqlens[i], cu_seqlens[i+1]). One packed row of length cu_seqlens.back().
  /// \pre cu_seqlens[0] == 0, non-decreasing (an empty document is allowed), size >= 2.
  static document from_cu_seqlens(const index_list& cu_seqlens) {
    const char* where = "document::from_cu_seqlens";
    if (cu_seqlens.size() < 2)
      detail::fail_argument(where, "cu_seqlens", detail::concat(cu_seqlens.size(), " entries"),
                            "at least 2 entries ([0, n_0, ...])");
    if (cu_seqlens[0] != 0) detail::fail_element(where, "cu_seqlens", 0, cu_seqlens[0], "0");
    for (std::size_t i = 1; i < cu_seqlens.size(); ++i)
      if (cu_seqlens[i] < cu_seqlens[i - 1])
        detail::fail_element(where, "cu_seqlens", i, cu_seqlens[i],
                             "a non-decreasing sequence (>= cu_seqlens[", i - 1,
                             "] = ", cu_seqlens[i - 1], ")");
    std::vector<std::int64_t> ids;
    const std::size_t total = static_cast<std::size_t>(cu_seqlens[cu_seqlens.size() - 1]);
    if (total > ids.max_size())
      detail::fail_element(where, "cu_seqlens", cu_seqlens.size() - 1, total,
                           "a total length of at most ", ids.max_size(),
                           " (one segment id per position)");
    ids.reserve(total);
    for (std::size_t d = 0; d + 1 < cu_seqlens.size(); ++d)
      for (Index p = cu_seqlens[d]; p < cu_seqlens[d + 1]; ++p)
        ids.push_back(static_cast<std::int64_t>(d));
    const id_table table(ids);
    return document(table, table, true);
  }

  /// \brief Whether pair (q, k) of batch entry b and head h is kept.
  bool keep(Index b, Index, Index q, Index k) const { return q_.id(b, q) == k_.id(b, k); }

  /// \brief State of the tile [q0, q1) x [k0, k1): never full or empty when it is not.
  tile_state tile(Index b, Index, Index q0, Index q1, Index k0, Index k1) const {
    // Walk the runs of equal ids on both sides: exact, O(runs in q range * runs in k range).
    bool any = false, all = true;
    for (Index q = q0; q < q1; q = (std::min)(q_.run_end(b, q), q1)) {
      const std::int64_t id = q_.id(b, q);
      for (Index k = k0; k < k1; k = (std::min)(k_.run_end(b, k), k1)) {
        const bool same = k_.id(b, k) == id;
        any = any || same;
        all = all && same;
        if (any && !all) return tile_state::partial;
      }
    }
    return any ? tile_state::full : tile_state::empty;
  }

  /// \brief Keys of row q that can be kept, inside [k0, k1).
  key_span keys(Index b, Index h, Index q, Index k0, Index k1) const {
    if (self_ && unique_runs_) {
      // The only run of q's id among the keys is the run containing q itself.
      const Index begin = (std::max)(q_.run_start(b, q), k0),
                  end = (std::min)(q_.run_end(b, q), k1);
      return begin < end ? key_span{begin, end, true} : detail::empty_span(k0);
    }
    return detail::scan_keys(*this, b, h, q, k0, k1);
  }

  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where) const {
    if (q_.rows() != 1 && (r.b_begin < 0 || r.b_end > q_.rows()))
      detail::fail_argument(where, "segment ids", detail::concat(q_.rows(), " rows"), "at least ",
                            r.b_end, " (one row per sequence of the batch)");
    detail::check_range(where, "query positions", r.q_begin, r.q_end, q_.cols());
    detail::check_range(where, "key positions", r.k_begin, r.k_end, k_.cols());
  }

 private:
  /// Ids of one side with, per position, where its run of equal ids starts and ends.
  class runs {
   public:
    runs() = default;
    explicit runs(const id_table& ids)
        : ids_(ids), start_(ids.data().size()), end_(ids.data().size()) {
      const Index n = ids.cols();
      for (Index b = 0; b < ids.rows(); ++b) {
        for (Index p = 0; p < n; ++p)
          start_[at(b, p)] = (p > 0 && ids(b, p) == ids(b, p - 1)) ? start_[at(b, p - 1)] : p;
        for (Index p = n - 1; p >= 0; --p)
          end_[at(b, p)] = (p + 1 < n && ids(b, p) == ids(b, p + 1)) ? end_[at(b, p + 1)] : p + 1;
      }
    }
    std::int64_t id(Index b, Index p) const { return ids_(row(b), p); }
    Index run_start(Index b, Index p) const { return start_[at(row(b), p)]; }
    Index run_end(Index b, Index p) const { return end_[at(row(b), p)]; }
    Index rows() const noexcept { return ids_.rows(); }
    Index cols() const noexcept { return ids_.cols(); }
    /// True when no id appears in two separate runs of one row.
    bool unique_runs() const {
      for (Index b = 0; b < ids_.rows(); ++b) {
        std::vector<std::int64_t> seen;
        for (Index p = 0; p < ids_.cols(); p = run_end(b, p)) seen.push_back(ids_(b, p));
        std::sort(seen.begin(), seen.end());
        if (std::adjacent_find(seen.begin(), seen.end()) != seen.end()) return false;
      }
      return true;
    }

   private:
    // A single row of ids serves every batch entry.
    Index row(Index b) const noexcept { return ids_.rows() == 1 ? 0 : b; }
    std::size_t at(Index b, Index p) const { return static_cast<std::size_t>(b * ids_.cols() + p); }
    id_table ids_;
    std::vector<Index> start_, end_;
  };

  document(const id_table& q_ids, const id_table& k_ids, bool self)
      : q_(q_ids), k_(k_ids), self_(self), unique_runs_(self && q_.unique_runs()) {}

  runs q_, k_;
  bool self_ = false;
  bool unique_runs_ = false;
};

EMASK_NAMESPACE_END
