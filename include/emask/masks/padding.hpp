/// \file
/// \brief Padding masks from lengths or [start, end) ranges: key padding and query padding.
///
/// Right padding keeps positions [0, length); left padding keeps [L - length, L); a general
/// range keeps [start, end). Query padding masks whole rows: a padded query keeps nothing, so
/// its softmax and attention rows are zeros (DESIGN.md). For padding that is not one range per
/// sequence (pad ids anywhere, a dense true-means-pad array) see flags.hpp.
#pragma once

#include <vector>

#include "emask/core/index_list.hpp"
#include "emask/detail/interval_mask.hpp"

EMASK_NAMESPACE_BEGIN

namespace detail {
/// Validated [start, end) ranges, one per batch entry, inside [0, length).
struct padding_ranges {
  std::vector<Index> start, end;
  Index length = 0;

  static padding_ranges right(const char* where, const index_list& lengths, Index length) {
    check_length(where, length);
    padding_ranges r;
    r.length = length;
    for (std::size_t i = 0; i < lengths.size(); ++i) {
      if (lengths[i] < 0 || lengths[i] > length)
        fail_element(where, "lengths", i, lengths[i], "a length in [0, ", length, "]");
      r.start.push_back(0);
      r.end.push_back(lengths[i]);
    }
    r.require_entries(where, "lengths");
    return r;
  }
  static padding_ranges left(const char* where, const index_list& lengths, Index length) {
    padding_ranges r = right(where, lengths, length);
    for (std::size_t i = 0; i < r.end.size(); ++i) {
      r.start[i] = length - r.end[i];
      r.end[i] = length;
    }
    return r;
  }
  static padding_ranges ranges(const char* where, const index_list& starts, const index_list& ends,
                               Index length) {
    check_length(where, length);
    if (starts.size() != ends.size())
      fail_argument(where, "ends", concat(ends.size(), " entries"), starts.size(),
                    " entries (one per entry of starts)");
    padding_ranges r;
    r.length = length;
    for (std::size_t i = 0; i < starts.size(); ++i) {
      if (starts[i] < 0 || starts[i] > length)
        fail_element(where, "starts", i, starts[i], "a position in [0, ", length, "]");
      if (ends[i] < starts[i] || ends[i] > length)
        fail_element(where, "ends", i, ends[i], "a position in [starts[", i, "] = ", starts[i],
                     ", ", length, "]");
      r.start.push_back(starts[i]);
      r.end.push_back(ends[i]);
    }
    r.require_entries(where, "starts");
    return r;
  }

  row_bounds bounds(Index b) const {
    const std::size_t i = static_cast<std::size_t>(b);
    EMASK_ASSERT(b >= 0 && i < start.size());
    return make_bounds(start[i], end[i]);
  }
  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where, bool keys) const {
    if (r.b_begin < 0 || r.b_end > static_cast<Index>(start.size()))
      fail_argument(where, keys ? "key padding" : "query padding",
                    concat(start.size(), " sequences"), "at least ", r.b_end,
                    " (the batch the mask is used with)");
    if (keys) {
      check_range(where, "key positions", r.k_begin, r.k_end, length);
    } else {
      check_range(where, "query positions", r.q_begin, r.q_end, length);
    }
  }

 private:
  static void check_length(const char* where, Index length) {
    if (length < 0) fail_argument(where, "length", length, ">= 0");
  }
  void require_entries(const char* where, const char* what) const {
    if (start.empty()) fail_argument(where, what, "an empty list", "one entry per sequence");
  }
};
}  // namespace detail

/// \brief Key padding: sequence b keeps the keys of one range [start_b, end_b), every query.
class key_padding : public detail::interval_mask<key_padding> {
 public:
  /// \brief Right padding: sequence b keeps keys [0, lengths[b]) of \p k_len.
  static key_padding from_lengths(const index_list& lengths, Index k_len) {
    return key_padding(detail::padding_ranges::right("key_padding::from_lengths", lengths, k_len));
  }
  /// \brief Left padding: sequence b keeps the last lengths[b] keys, [k_len - lengths[b], k_len).
  static key_padding from_lengths_left(const index_list& lengths, Index k_len) {
    return key_padding(
        detail::padding_ranges::left("key_padding::from_lengths_left", lengths, k_len));
  }
  /// \brief Sequence b keeps keys [starts[b], ends[b]) of \p k_len (left, right or both).
  static key_padding from_ranges(const index_list& starts, const index_list& ends, Index k_len) {
    return key_padding(
        detail::padding_ranges::ranges("key_padding::from_ranges", starts, ends, k_len));
  }

  /// \brief Number of sequences.
  Index batch_size() const noexcept { return static_cast<Index>(r_.start.size()); }
  /// \brief Key positions the mask was built for.
  Index k_len() const noexcept { return r_.length; }
  /// \brief First kept key of sequence \p b.
  Index start(Index b) const { return r_.start[static_cast<std::size_t>(b)]; }
  /// \brief One past the last kept key of sequence \p b.
  Index end(Index b) const { return r_.end[static_cast<std::size_t>(b)]; }

  /// \brief Kept keys [lo, hi) of row q of batch entry b (detail::interval_mask contract).
  detail::row_bounds bounds(Index b, Index) const { return r_.bounds(b); }
  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where) const { r_.check(r, where, true); }

 private:
  explicit key_padding(detail::padding_ranges r) : r_(std::move(r)) {}
  detail::padding_ranges r_;
};

/// \brief Query padding: sequence b keeps the query rows [start_b, end_b); every other row
/// keeps nothing (a fully masked row: zeros in softmax and attention).
class query_padding : public mask_base<query_padding> {
 public:
  /// tile() never answers partial for an empty or full tile
  static constexpr bool exact_tiles = true;

  /// \brief Right padding: sequence b has valid queries [0, lengths[b]) of \p q_len.
  static query_padding from_lengths(const index_list& lengths, Index q_len) {
    return query_padding(
        detail::padding_ranges::right("query_padding::from_lengths", lengths, q_len));
  }
  /// \brief Left padding: sequence b has valid queries [q_len - lengths[b], q_len).
  static query_padding from_lengths_left(const index_list& lengths, Index q_len) {
    return query_padding(
        detail::padding_ranges::left("query_padding::from_lengths_left", lengths, q_len));
  }
  /// \brief Sequence b has valid queries [starts[b], ends[b]) of \p q_len.
  static query_padding from_ranges(const index_list& starts, const index_list& ends, Index q_len) {
    return query_padding(
        detail::padding_ranges::ranges("query_padding::from_ranges", starts, ends, q_len));
  }

  /// \brief Number of sequences.
  Index batch_size() const noexcept { return static_cast<Index>(r_.start.size()); }
  /// \brief Query positions the mask was built for.
  Index q_len() const noexcept { return r_.length; }

  /// \brief Whether pair (q, k) of batch entry b and head h is kept.
  bool keep(Index b, Index, Index q, Index) const { return valid(b, q); }
  /// \brief State of the tile [q0, q1) x [k0, k1): never full or empty when it is not.
  tile_state tile(Index b, Index, Index q0, Index q1, Index, Index) const {
    const detail::row_bounds v = r_.bounds(b);
    const Index lo = (std::max)(v.lo, q0), hi = (std::min)(v.hi, q1);
    if (lo >= hi) return tile_state::empty;
    return (lo == q0 && hi == q1) ? tile_state::full : tile_state::partial;
  }
  /// \brief Keys of row q that can be kept, inside [k0, k1).
  key_span keys(Index b, Index, Index q, Index k0, Index k1) const {
    return valid(b, q) ? key_span{k0, k1, true} : detail::empty_span(k0);
  }
  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where) const { r_.check(r, where, false); }

 private:
  explicit query_padding(detail::padding_ranges r) : r_(std::move(r)) {}
  bool valid(Index b, Index q) const {
    const detail::row_bounds v = r_.bounds(b);
    return v.lo <= q && q < v.hi;
  }
  detail::padding_ranges r_;
};

EMASK_NAMESPACE_END
