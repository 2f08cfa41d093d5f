/// \file
/// \brief Padding from per-position flags: pad ids anywhere, a dense true-means-pad array, or a
/// keep array. Tile answers stay exact and O(1) through prefix counts.
#pragma once

#include <cstdint>
#include <vector>

#include "emask/core/index_list.hpp"
#include "emask/core/polarity.hpp"

EMASK_NAMESPACE_BEGIN

namespace detail {
/// Keep flags per (batch, position) with prefix counts and next/previous kept positions.
class position_flags {
 public:
  position_flags() = default;
  position_flags(Index batch, Index length) : batch_(batch), length_(length) {
    const auto n = static_cast<std::size_t>(batch * (length + 1));
    count_.assign(n, 0);
    next_.assign(n, 0);
    prev_.assign(n, 0);
    keep_.assign(static_cast<std::size_t>(batch * length), 0);
  }
  void set(Index b, Index p, bool kept) { keep_[idx(b, p)] = kept ? 1 : 0; }
  /// Builds the prefix counts and neighbour tables once all flags are set.
  void finish() {
    for (Index b = 0; b < batch_; ++b) {
      Index* c = &count_[row(b)];
      Index* prev = &prev_[row(b)];
      Index* next = &next_[row(b)];
      c[0] = 0;
      prev[0] = -1;
      for (Index p = 0; p < length_; ++p) {
        const bool kept = keep_[idx(b, p)] != 0;
        c[p + 1] = c[p] + (kept ? 1 : 0);
        prev[p + 1] = kept ? p : prev[p];
      }
      next[length_] = length_;
      for (Index p = length_ - 1; p >= 0; --p) next[p] = keep_[idx(b, p)] ? p : next[p + 1];
    }
  }
  bool kept(Index b, Index p) const {
    EMASK_ASSERT(b >= 0 && b < batch_ && p >= 0 && p < length_);
    return keep_[idx(b, p)] != 0;
  }
  Index count(Index b, Index p0, Index p1) const {
    return count_[row(b) + static_cast<std::size_t>(p1)] -
           count_[row(b) + static_cast<std::size_t>(p0)];
  }
  tile_state state(Index b, Index p0, Index p1) const {
    const Index c = count(b, p0, p1);
    return c == 0 ? tile_state::empty : (c == p1 - p0 ? tile_state::full : tile_state::partial);
  }
  key_span span(Index b, Index p0, Index p1) const {
    const Index first = next_[row(b) + static_cast<std::size_t>(p0)];
    if (first >= p1) return empty_span(p0);
    const Index last = prev_[row(b) + static_cast<std::size_t>(p1)];
    return {first, last + 1, count(b, first, last + 1) == last + 1 - first};
  }
  Index batch() const noexcept { return batch_; }
  Index length() const noexcept { return length_; }

 private:
  std::size_t row(Index b) const { return static_cast<std::size_t>(b * (length_ + 1)); }
  std::size_t idx(Index b, Index p) const { return static_cast<std::size_t>(b * length_ + p); }
  Index batch_ = 0, length_ = 0;
  std::vector<unsigned char> keep_;
  std::vector<Index> count_, next_, prev_;
};

template <class Derived>
position_flags flags_from_keep(const Eigen::DenseBase<Derived>& keep) {
  position_flags f(keep.rows(), keep.cols());
  for (Index b = 0; b < keep.rows(); ++b)
    for (Index p = 0; p < keep.cols(); ++p) f.set(b, p, static_cast<bool>(keep(b, p)));
  f.finish();
  return f;
}

inline position_flags flags_from_tokens(const id_table& ids, std::int64_t pad_id) {
  position_flags f(ids.rows(), ids.cols());
  for (Index b = 0; b < ids.rows(); ++b)
    for (Index p = 0; p < ids.cols(); ++p) f.set(b, p, ids(b, p) != pad_id);
  f.finish();
  return f;
}

inline void check_flags(const position_flags& f, const region& r, const char* where, bool keys) {
  if (r.b_begin < 0 || r.b_end > f.batch())
    fail_argument(where, keys ? "key flags" : "query flags", concat(f.batch(), " rows"),
                  "at least ", r.b_end, " (one row per sequence of the batch)");
  if (keys) {
    check_range(where, "key positions", r.k_begin, r.k_end, f.length());
  } else {
    check_range(where, "query positions", r.q_begin, r.q_end, f.length());
  }
}
}  // namespace detail

/// \brief Key padding from one keep flag per (sequence, key): every query of sequence b keeps
/// the keys flagged for b. Built from token ids and a pad id, a keep array, or a drop-mask.
class key_flags : public mask_base<key_flags> {
 public:
  /// tile() never answers partial for an empty or full tile
  static constexpr bool exact_tiles = true;

  /// \brief Keys whose token id differs from \p pad_id are kept (Hugging Face's
  /// `attention_mask = input_ids != pad_token_id`). \p ids is [batch, k_len].
  static key_flags from_tokens(const id_table& ids, std::int64_t pad_id) {
    return key_flags(detail::flags_from_tokens(ids, pad_id));
  }
  /// \brief From a [batch, k_len] keep array (true = real token).
  template <class Derived>
  static key_flags from_keep(const Eigen::DenseBase<Derived>& keep) {
    return key_flags(detail::flags_from_keep(keep.derived()));
  }
  /// \brief From PyTorch's `key_padding_mask` convention, true = padding, [batch, k_len].
  static key_flags from_drop(const drop_mask& pad) { return from_keep(to_keep(pad)); }

  /// \brief Whether pair (q, k) of batch entry b and head h is kept.
  bool keep(Index b, Index, Index, Index k) const { return f_.kept(b, k); }
  /// \brief State of the tile [q0, q1) x [k0, k1): never full or empty when it is not.
  tile_state tile(Index b, Index, Index, Index, Index k0, Index k1) const {
    return f_.state(b, k0, k1);
  }
  /// \brief Keys of row q that can be kept, inside [k0, k1).
  key_span keys(Index b, Index, Index, Index k0, Index k1) const { return f_.span(b, k0, k1); }
  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where) const { detail::check_flags(f_, r, where, true); }
  /// \brief Number of sequences.
  Index batch_size() const noexcept { return f_.batch(); }
  /// \brief Key positions the mask was built for.
  Index k_len() const noexcept { return f_.length(); }

 private:
  explicit key_flags(detail::position_flags f) : f_(std::move(f)) {}
  detail::position_flags f_;
};

/// \brief Query padding from one flag per (sequence, query): an unflagged query keeps nothing.
class query_flags : public mask_base<query_flags> {
 public:
  /// tile() never answers partial for an empty or full tile
  static constexpr bool exact_tiles = true;

  /// \brief Queries whose token id differs from \p pad_id are valid. \p ids is [batch, q_len].
  static query_flags from_tokens(const id_table& ids, std::int64_t pad_id) {
    return query_flags(detail::flags_from_tokens(ids, pad_id));
  }
  /// \brief From a [batch, q_len] keep array (true = real token).
  template <class Derived>
  static query_flags from_keep(const Eigen::DenseBase<Derived>& keep) {
    return query_flags(detail::flags_from_keep(keep.derived()));
  }
  /// \brief From a true-means-padding array, [batch, q_len].
  static query_flags from_drop(const drop_mask& pad) { return from_keep(to_keep(pad)); }

  /// \brief Whether pair (q, k) of batch entry b and head h is kept.
  bool keep(Index b, Index, Index q, Index) const { return f_.kept(b, q); }
  /// \brief State of the tile [q0, q1) x [k0, k1): never full or empty when it is not.
  tile_state tile(Index b, Index, Index q0, Index q1, Index, Index) const {
    return f_.state(b, q0, q1);
  }
  /// \brief Keys of row q that can be kept, inside [k0, k1).
  key_span keys(Index b, Index, Index q, Index k0, Index k1) const {
    return f_.kept(b, q) ? key_span{k0, k1, true} : detail::empty_span(k0);
  }
  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where) const { detail::check_flags(f_, r, where, false); }
  /// \brief Number of sequences.
  Index batch_size() const noexcept { return f_.batch(); }
  /// \brief Query positions the mask was built for.
  Index q_len() const noexcept { return f_.length(); }

 private:
  explicit query_flags(detail::position_flags f) : f_(std::move(f)) {}
  detail::position_flags f_;
};

EMASK_NAMESPACE_END
