/// \file
/// \brief Interval masks in O(rows) memory: the row form (each query row keeps a union of up to
/// `per_row` key intervals, as cuDNN's interval masks) and the column form (each key column
/// masks up to two row intervals, PaddlePaddle FlashMask's startend_row_indices), with exact
/// tile answers from block summaries, and converters from any mask expression.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "emask/config.hpp"
#include "emask/core/block_mask.hpp"
#include "emask/core/index_list.hpp"
#include "emask/core/mask.hpp"
#include "emask/core/materialize.hpp"
#include "emask/error.hpp"

EMASK_NAMESPACE_BEGIN

namespace detail {
/// Rows (row form) or columns (column form) summarized together: a tile question decides a whole
/// block from its summary when it can, else it reads the block's rows or columns one by one.
inline constexpr Index interval_block = 32;

/// Checks the extents and lengths shared by both interval forms; returns the number of slices.
inline Index check_interval_shape(const char* where, Index q_len, Index k_len,
                                  slice_extents extents) {
  if (q_len < 0 || q_len > unbounded)
    fail_argument(where, "q_len", q_len, ">= 0 and <= emask::unbounded");
  if (k_len < 0 || k_len > unbounded)
    fail_argument(where, "k_len", k_len, ">= 0 and <= emask::unbounded");
  if (extents.batch < 1)
    fail_argument(where, "extents.batch", extents.batch, ">= 1 (1 broadcasts)");
  if (extents.heads < 1)
    fail_argument(where, "extents.heads", extents.heads, ">= 1 (1 broadcasts)");
  if (extents.heads > unbounded / extents.batch)
    fail_argument(where, "extents.heads", extents.heads, "a batch * heads product <= ", unbounded);
  return extents.batch * extents.heads;
}

/// Checks that a list holds \p per_item values for each of \p items items of each of \p slices
/// slices (all in [0, emask::unbounded]), without overflowing.
inline void check_list_size(const char* where, const char* what, std::size_t size, Index slices,
                            Index items, Index per_item, const char* layout) {
  Index expected = 0;
  if (items > 0 && per_item > 0) {
    if (slices > unbounded / items || slices * items > unbounded / per_item)
      fail_argument(where, what, concat(size, " entries"), "a shape [", layout,
                    "] of at most emask::unbounded entries");
    expected = slices * items * per_item;
  }
  if (size != static_cast<std::size_t>(expected))
    fail_argument(where, what, concat(size, " entries"), expected, " entries (", layout, ")");
}

/// Raises emask::error when region r lies outside the batch, heads and lengths of an interval
/// mask.
inline void check_interval_region(const char* where, const region& r, slice_extents extents,
                                  Index q_len, Index k_len, const char* name) {
  if (extents.batch != 1 && (r.b_begin < 0 || r.b_end > extents.batch))
    fail_argument(where, "mask", concat(name, " with batch ", extents.batch), "1 or at least ",
                  r.b_end, " (the batch the mask is used with)");
  if (extents.heads != 1 && (r.h_begin < 0 || r.h_end > extents.heads))
    fail_argument(where, "mask", concat(name, " with heads ", extents.heads), "1 or at least ",
                  r.h_end, " (the heads the mask is used with)");
  check_range(where, "query positions", r.q_begin, r.q_end, q_len);
  check_range(where, "key positions", r.k_begin, r.k_end, k_len);
}
}  // namespace detail

/// \brief Row form: query row q of slice (b, h) keeps the keys of a union of up to `per_row`
/// intervals [start, end) (cuDNN's interval masks; any mask whose rows are a few runs: documents,
/// windows with sinks, prefix plus window). O(rows x per_row) memory, exact tile answers.
///
/// Built from flat arrays `starts` and `ends` of `slices x q_len x per_row` values (row-major
/// [batch, heads, q_len, per_row]; a batch or head extent of 1 serves every batch entry or head).
/// In each row, an empty slot has start == end; the non-empty intervals are sorted and disjoint
/// (an interval may start where the previous one ends: the two are merged). Every value lies in
/// [0, k_len].
///
/// Costs: keep() and keys() O(log per_row). tile() reads a block summary (hull and interval
/// count of 32 rows) per 32 rows of the tile and decides most blocks from it (blocks that keep
/// nothing of the tile, blocks of one-interval rows that cover it); an undecided block costs
/// O(log per_row) per row, so a tile costs O(tile rows / 32) to O(tile rows x log per_row),
/// exact in every case.
class interval_union_mask : public mask_base<interval_union_mask> {
 public:
  static constexpr bool exact_tiles = true;  ///< whether tile() answers are exact

  /// \brief An empty mask over 0 x 0 positions.
  interval_union_mask() = default;

  /// \brief Row q of slice (b, h) keeps [starts[i], ends[i]) for the `per_row` slots i of the
  /// row, the slots of row q of slice s being (s * q_len + q) * per_row + 0 .. per_row - 1.
  /// \pre q_len, k_len in [0, emask::unbounded]; per_row >= 1; extents >= 1; starts and ends
  /// of batch * heads * q_len * per_row entries, 0 <= start <= end <= k_len, the non-empty
  /// intervals of a row sorted and disjoint.
  interval_union_mask(const index_list& starts, const index_list& ends, Index q_len, Index k_len,
                      Index per_row = 1, slice_extents extents = {})
      : q_len_(q_len), k_len_(k_len), per_row_(per_row), extents_(extents) {
    const char* where = "interval_union_mask";
    const Index slices = detail::check_interval_shape(where, q_len, k_len, extents);
    if (per_row < 1) detail::fail_argument(where, "per_row", per_row, ">= 1");
    const char* layout = "batch, heads, q_len, per_row";
    detail::check_list_size(where, "starts", starts.size(), slices, q_len, per_row, layout);
    detail::check_list_size(where, "ends", ends.size(), slices, q_len, per_row, layout);
    const auto rows = static_cast<std::size_t>(slices * q_len);
    lo_.assign(rows * static_cast<std::size_t>(per_row), k_len);
    hi_.assign(lo_.size(), k_len);
    count_.assign(rows, 0);
    for (std::size_t row = 0; row < rows; ++row) {
      Index n = 0, prev_end = -1;
      const std::size_t base = row * static_cast<std::size_t>(per_row);
      for (std::size_t i = base; i < base + static_cast<std::size_t>(per_row); ++i) {
        const Index s = starts[i], e = ends[i];
        if (s < 0 || s > k_len)
          detail::fail_element(where, "starts", i, s, "a key position in [0, k_len = ", k_len, "]");
        if (e < s || e > k_len)
          detail::fail_element(where, "ends", i, e, "a key position in [starts[", i, "] = ", s,
                               ", k_len = ", k_len, "]");
        if (s == e) continue;  // an empty slot
        if (s < prev_end)
          detail::fail_element(where, "starts", i, s, ">= ", prev_end,
                               " (the end of the row's previous interval: the intervals of a row "
                               "are sorted and disjoint)");
        if (s == prev_end) {  // touching: one run
          hi_[base + static_cast<std::size_t>(n - 1)] = e;
        } else {
          lo_[base + static_cast<std::size_t>(n)] = s;
          hi_[base + static_cast<std::size_t>(n)] = e;
          ++n;
        }
        prev_end = e;
      }
      count_[row] = n;
    }
    build_blocks();
  }

  /// \brief Query positions covered.
  Index q_len() const noexcept { return q_len_; }
  /// \brief Key positions covered.
  Index k_len() const noexcept { return k_len_; }
  /// \brief Interval slots per row.
  Index per_row() const noexcept { return per_row_; }
  /// \brief Batch and head extents (1 = shared).
  slice_extents extents() const noexcept { return extents_; }
  /// \brief Number of separate runs of kept keys of row q of slice (b, h) (touching intervals
  /// merged, empty slots dropped).
  Index runs(Index q, Index b = 0, Index h = 0) const { return count_[row(slice(b, h), q)]; }
  /// \brief Run \p i (< runs(q, b, h)) of row q of slice (b, h), as an exact key_span.
  key_span run(Index q, Index i, Index b = 0, Index h = 0) const {
    EMASK_ASSERT(i >= 0 && i < runs(q, b, h));
    const std::size_t at =
        row(slice(b, h), q) * static_cast<std::size_t>(per_row_) + static_cast<std::size_t>(i);
    return {lo_[at], hi_[at], true};
  }
  /// \brief Bytes held (intervals, counts and block summaries).
  std::size_t memory_bytes() const noexcept {
    return (lo_.size() + hi_.size() + count_.size()) * sizeof(Index) +
           blocks_.size() * sizeof(summary);
  }

  /// \brief Whether query q keeps key k in slice (b, h).
  bool keep(Index b, Index h, Index q, Index k) const {
    const std::size_t r = row(slice(b, h), q);
    const Index* lo = lo_.data() + r * static_cast<std::size_t>(per_row_);
    const Index* hi = hi_.data() + r * static_cast<std::size_t>(per_row_);
    const Index n = count_[r];
    const Index i = static_cast<Index>(std::upper_bound(hi, hi + n, k) - hi);  // first hi > k
    return i < n && lo[i] <= k;
  }

  /// \brief Keys of row q kept inside [k0, k1): exact when they are one run, else the hull.
  key_span keys(Index b, Index h, Index q, Index k0, Index k1) const {
    if (k0 >= k1) return detail::empty_span(k0);
    const std::size_t r = row(slice(b, h), q);
    const Index* lo = lo_.data() + r * static_cast<std::size_t>(per_row_);
    const Index* hi = hi_.data() + r * static_cast<std::size_t>(per_row_);
    const Index n = count_[r];
    const Index i = static_cast<Index>(std::upper_bound(hi, hi + n, k0) - hi);  // first hi > k0
    if (i == n || lo[i] >= k1) return detail::empty_span(k0);
    const Index j = static_cast<Index>(std::lower_bound(lo, lo + n, k1) - lo) - 1;  // last lo < k1
    return {(std::max)(lo[i], k0), (std::min)(hi[j], k1), i == j};
  }

  /// \brief State of the tile [q0, q1) x [k0, k1), exact (see the class for the cost).
  tile_state tile(Index b, Index h, Index q0, Index q1, Index k0, Index k1) const {
    if (q0 >= q1 || k0 >= k1) return tile_state::empty;
    const Index s = slice(b, h);
    bool any = false, all = true;
    for (Index q = q0; q < q1;) {
      const Index blk = q / detail::interval_block;
      if (q == blk * detail::interval_block && q + detail::interval_block <= q1) {
        const summary& z = blocks_[block(s, blk)];
        if (z.min_lo >= k1 || z.max_hi <= k0) {
          all = false;  // every row's hull misses [k0, k1)
        } else if (z.max_runs == 1 && z.max_lo <= k0 && z.min_hi >= k1) {
          any = true;  // every row is one interval covering [k0, k1)
        } else {
          if (z.max_lo > k0 || z.min_hi < k1) all = false;  // some hull does not cover
          for (Index r = q; r < q + detail::interval_block && !(any && !all); ++r)
            row_state(s, r, k0, k1, any, all);
        }
        q += detail::interval_block;
      } else {
        row_state(s, q, k0, k1, any, all);
        ++q;
      }
      if (any && !all) return tile_state::partial;
    }
    return any ? tile_state::full : tile_state::empty;
  }

  /// \brief Raises emask::error when region r lies outside the mask's batch, heads or lengths.
  void check(const region& r, const char* where) const {
    detail::check_interval_region(where, r, extents_, q_len_, k_len_, "interval_union_mask");
  }

 private:
  /// Hulls of a block of rows: an empty row has hull [k_len, 0), which never covers and never
  /// meets a tile.
  struct summary {
    Index min_lo, max_lo, min_hi, max_hi, max_runs;
  };

  Index slice(Index b, Index h) const noexcept {
    return (extents_.batch == 1 ? 0 : b) * extents_.heads + (extents_.heads == 1 ? 0 : h);
  }
  std::size_t row(Index s, Index q) const noexcept {
    EMASK_ASSERT(q >= 0 && q < q_len_);
    return static_cast<std::size_t>(s * q_len_ + q);
  }
  Index blocks_per_slice() const noexcept {
    return (q_len_ + detail::interval_block - 1) / detail::interval_block;
  }
  std::size_t block(Index s, Index blk) const noexcept {
    return static_cast<std::size_t>(s * blocks_per_slice() + blk);
  }
  Index hull_lo(std::size_t r) const {
    return count_[r] ? lo_[r * static_cast<std::size_t>(per_row_)] : k_len_;
  }
  Index hull_hi(std::size_t r) const {
    return count_[r] ? hi_[r * static_cast<std::size_t>(per_row_) +
                           static_cast<std::size_t>(count_[r] - 1)]
                     : 0;
  }

  void build_blocks() {
    const Index slices = extents_.batch * extents_.heads;
    blocks_.assign(static_cast<std::size_t>(slices * blocks_per_slice()), summary{});
    for (Index s = 0; s < slices; ++s)
      for (Index blk = 0; blk < blocks_per_slice(); ++blk) {
        const Index top = (std::numeric_limits<Index>::max)();
        summary z{top, 0, top, 0, 0};
        const Index q_end = (std::min)(q_len_, (blk + 1) * detail::interval_block);
        for (Index q = blk * detail::interval_block; q < q_end; ++q) {
          const std::size_t r = row(s, q);
          z.min_lo = (std::min)(z.min_lo, hull_lo(r));
          z.max_lo = (std::max)(z.max_lo, hull_lo(r));
          z.min_hi = (std::min)(z.min_hi, hull_hi(r));
          z.max_hi = (std::max)(z.max_hi, hull_hi(r));
          z.max_runs = (std::max)(z.max_runs, count_[r]);
        }
        blocks_[block(s, blk)] = z;
      }
  }

  /// Folds row q's answer for [k0, k1) into any (some key kept) and all (every key kept).
  void row_state(Index s, Index q, Index k0, Index k1, bool& any, bool& all) const {
    const std::size_t r = row(s, q);
    const Index* lo = lo_.data() + r * static_cast<std::size_t>(per_row_);
    const Index* hi = hi_.data() + r * static_cast<std::size_t>(per_row_);
    const Index n = count_[r];
    const Index i = static_cast<Index>(std::upper_bound(hi, hi + n, k0) - hi);
    if (i == n || lo[i] >= k1) {
      all = false;
      return;
    }
    any = true;
    // Runs are merged, so [k0, k1) is all kept only inside the one run that holds k0.
    if (lo[i] > k0 || hi[i] < k1) all = false;
  }

  Index q_len_ = 0, k_len_ = 0, per_row_ = 1;
  slice_extents extents_{};
  std::vector<Index> lo_, hi_;   // [slice][q][slot]: merged runs first, unused slots after
  std::vector<Index> count_;     // [slice][q]: runs in the row
  std::vector<summary> blocks_;  // [slice][row block]
};

/// \brief Column form (FlashMask, Wang et al. 2024; PaddlePaddle's
/// `flashmask_attention(startend_row_indices)`): key column k of slice (b, h) is masked for the
/// query rows of [lts, lte) and of [uts, ute), its lower and upper intervals; every other row
/// keeps it. with_causal(d) also masks the keys k > q + d, with exact tiles.
///
/// Costs: keep() O(1); keys() O(keys / 32) to O(keys); tile() reads a block summary (minima and
/// maxima of the four bounds over 32 columns, as FlashMask's kernel) per 32 columns of the tile
/// and decides most blocks from it; an undecided block costs O(1) per column, so a tile costs
/// O(tile columns / 32) to O(tile columns), exact in every case. Memory O(k_len) per slice.
class column_interval_mask : public mask_base<column_interval_mask> {
 public:
  static constexpr bool exact_tiles = true;  ///< whether tile() answers are exact

  /// \brief An empty mask over 0 x 0 positions.
  column_interval_mask() = default;

  /// \brief Column k of slice s is masked for rows [lts[i], lte[i]) and [uts[i], ute[i]),
  /// i = s * k_len + k (row-major [batch, heads, k_len]; an extent of 1 is shared).
  /// \pre q_len, k_len in [0, emask::unbounded]; extents >= 1; four lists of
  /// batch * heads * k_len entries; 0 <= lts <= lte <= q_len and 0 <= uts <= ute <= q_len.
  column_interval_mask(const index_list& lts, const index_list& lte, const index_list& uts,
                       const index_list& ute, Index q_len, Index k_len, slice_extents extents = {})
      : q_len_(q_len), k_len_(k_len), extents_(extents) {
    const char* where = "column_interval_mask";
    const Index slices = detail::check_interval_shape(where, q_len, k_len, extents);
    const char* layout = "batch, heads, k_len";
    detail::check_list_size(where, "lts", lts.size(), slices, k_len, 1, layout);
    detail::check_list_size(where, "lte", lte.size(), slices, k_len, 1, layout);
    detail::check_list_size(where, "uts", uts.size(), slices, k_len, 1, layout);
    detail::check_list_size(where, "ute", ute.size(), slices, k_len, 1, layout);
    const std::size_t n = lts.size();
    bounds_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      check_pair(where, "lts", i, "lte", i, lts[i], lte[i], q_len);
      check_pair(where, "uts", i, "ute", i, uts[i], ute[i], q_len);
      bounds_[i] = make_column(lts[i], lte[i], uts[i], ute[i]);
    }
    build_blocks();
  }

  /// \brief PaddlePaddle's `startend_row_indices` read from its int32 buffer of shape
  /// [batch, heads, k_len, columns] (contiguous, row-major), for \p q_len query rows:
  /// - causal, 1 column (LTS): key k is masked for rows >= LTS[k];
  /// - causal, 2 columns (LTS, LTE): masked for rows in [LTS[k], LTE[k]);
  /// - not causal, 2 columns (LTS, UTE): masked for rows >= LTS[k] and rows < UTE[k];
  /// - not causal, 4 columns (LTS, LTE, UTS, UTE): masked for rows in [LTS, LTE) and [UTS, UTE).
  ///
  /// With \p causal the keys k > q + (k_len - q_len) are masked too (bottom-right alignment, as
  /// FlashAttention 2; top-left when q_len == k_len, the only case Paddle's documentation
  /// shows); with_causal(d) on the result picks another diagonal. The values are copied.
  /// \pre batch, heads >= 1; columns 1 or 2 when causal, 2 or 4 when not; every value in
  /// [0, q_len], each interval's start <= its end.
  static column_interval_mask from_flashmask(const std::int32_t* startend_row_indices, Index batch,
                                             Index heads, Index k_len, Index columns, Index q_len,
                                             bool causal) {
    const char* where = "column_interval_mask::from_flashmask";
    if (batch < 1) detail::fail_argument(where, "batch", batch, ">= 1");
    if (heads < 1) detail::fail_argument(where, "heads", heads, ">= 1 (1 broadcasts)");
    const Index slices = detail::check_interval_shape(where, q_len, k_len, {batch, heads});
    if (causal && columns != 1 && columns != 2)
      detail::fail_argument(where, "columns", columns, "1 (LTS) or 2 (LTS, LTE) when causal");
    if (!causal && columns != 2 && columns != 4)
      detail::fail_argument(where, "columns", columns,
                            "2 (LTS, UTE) or 4 (LTS, LTE, UTS, UTE) when not causal");
    if (startend_row_indices == nullptr && slices * k_len > 0)
      detail::fail_argument(where, "startend_row_indices", "null",
                            "a pointer to batch * heads * k_len * columns values");
    column_interval_mask m;
    m.q_len_ = q_len;
    m.k_len_ = k_len;
    m.extents_ = {batch, heads};
    m.bounds_.resize(static_cast<std::size_t>(slices * k_len));
    for (std::size_t i = 0; i < m.bounds_.size(); ++i) {
      const std::int32_t* v = startend_row_indices + i * static_cast<std::size_t>(columns);
      for (Index c = 0; c < columns; ++c)
        if (v[c] < 0 || v[c] > q_len)
          detail::fail_element(where, "startend_row_indices",
                               i * static_cast<std::size_t>(columns) + static_cast<std::size_t>(c),
                               v[c], "a row index in [0, q_len = ", q_len, "]");
      Index lts = v[0], lte = q_len, uts = 0, ute = 0;
      if (causal && columns == 2) lte = v[1];
      if (!causal && columns == 2) ute = v[1];
      if (columns == 4) {
        lte = v[1];
        uts = v[2];
        ute = v[3];
      }
      const std::size_t at = i * static_cast<std::size_t>(columns);
      const char* name = "startend_row_indices";
      if (causal && columns == 2) check_pair(where, name, at, name, at + 1, lts, lte, q_len);
      if (columns == 4) {
        check_pair(where, name, at, name, at + 1, lts, lte, q_len);
        check_pair(where, name, at + 2, name, at + 3, uts, ute, q_len);
      }
      m.bounds_[i] = m.make_column(lts, lte, uts, ute);
    }
    m.build_blocks();
    if (causal) return m.with_causal(k_len - q_len);
    return m;
  }

  /// \brief The same columns and'ed with causal::with_diagonal(diagonal): key k is also masked
  /// for rows q < k - diagonal. Tiles stay exact.
  column_interval_mask with_causal(Index diagonal = 0) const {
    column_interval_mask m = *this;
    m.causal_ = true;
    m.diagonal_ = (std::max)(-unbounded, (std::min)(diagonal, unbounded));
    return m;
  }
  /// \brief The same columns without the causal part.
  column_interval_mask without_causal() const {
    column_interval_mask m = *this;
    m.causal_ = false;
    m.diagonal_ = 0;
    return m;
  }

  /// \brief Query positions covered.
  Index q_len() const noexcept { return q_len_; }
  /// \brief Key positions covered.
  Index k_len() const noexcept { return k_len_; }
  /// \brief Batch and head extents (1 = shared).
  slice_extents extents() const noexcept { return extents_; }
  /// \brief True when the keys after the diagonal are masked too.
  bool is_causal() const noexcept { return causal_; }
  /// \brief The causal diagonal (meaningful when is_causal()).
  Index diagonal() const noexcept { return diagonal_; }
  /// \brief The masked rows of column k of slice (b, h): the lower interval [lts, lte) when
  /// \p upper is false, the upper one [uts, ute) when true (an empty interval is [q_len, q_len)).
  key_span masked_rows(Index k, bool upper, Index b = 0, Index h = 0) const {
    const column& c = bounds_[col(slice(b, h), k)];
    return upper ? key_span{c.uts, c.ute, true} : key_span{c.lts, c.lte, true};
  }
  /// \brief Bytes held (bounds and block summaries).
  std::size_t memory_bytes() const noexcept {
    return bounds_.size() * sizeof(column) + blocks_.size() * sizeof(summary);
  }

  /// \brief Whether query q keeps key k in slice (b, h).
  bool keep(Index b, Index h, Index q, Index k) const {
    if (causal_ && k > q + diagonal_) return false;
    const column& c = bounds_[col(slice(b, h), k)];
    return !(c.lts <= q && q < c.lte) && !(c.uts <= q && q < c.ute);
  }

  /// \brief Keys of row q kept inside [k0, k1): exact when they are one run, else the hull.
  key_span keys(Index b, Index h, Index q, Index k0, Index k1) const {
    if (causal_) k1 = (std::min)(k1, q + diagonal_ + 1);
    if (k0 >= k1) return detail::empty_span(k0);
    const Index s = slice(b, h);
    Index first = -1, last = -1, kept = 0;
    const auto take = [&](Index from, Index to) {  // [from, to) all kept
      if (first < 0) first = from;
      last = to - 1;
      kept += to - from;
    };
    for (Index k = k0; k < k1;) {
      const Index blk = k / detail::interval_block;
      if (k == blk * detail::interval_block && k + detail::interval_block <= k1) {
        const summary& z = blocks_[block(s, blk)];
        if ((z.max_lts <= q && q < z.min_lte) || (z.max_uts <= q && q < z.min_ute)) {
          k += detail::interval_block;  // every column masks row q
          continue;
        }
        if ((q < z.min_lts || q >= z.max_lte) && (q < z.min_uts || q >= z.max_ute)) {
          take(k, k + detail::interval_block);  // no column masks row q
          k += detail::interval_block;
          continue;
        }
        for (const Index end = k + detail::interval_block; k < end; ++k)
          if (column_keeps(s, q, k)) take(k, k + 1);
        continue;
      }
      if (column_keeps(s, q, k)) take(k, k + 1);
      ++k;
    }
    if (first < 0) return detail::empty_span(k0);
    return {first, last + 1, kept == last + 1 - first};
  }

  /// \brief State of the tile [q0, q1) x [k0, k1), exact (see the class for the cost).
  tile_state tile(Index b, Index h, Index q0, Index q1, Index k0, Index k1) const {
    if (q0 >= q1 || k0 >= k1) return tile_state::empty;
    const Index s = slice(b, h);
    bool any = false, all = true;
    for (Index k = k0; k < k1;) {
      const Index blk = k / detail::interval_block;
      if (k == blk * detail::interval_block && k + detail::interval_block <= k1) {
        const summary& z = blocks_[block(s, blk)];
        const Index last = k + detail::interval_block - 1;
        if ((causal_ && k - diagonal_ >= q1) ||      // past the diagonal of every row
            (z.max_lts <= q0 && z.min_lte >= q1) ||  // lower intervals cover the rows
            (z.max_uts <= q0 && z.min_ute >= q1)) {  // upper intervals cover the rows
          all = false;
        } else if ((!causal_ || last - diagonal_ <= q0) && (q1 <= z.min_lts || q0 >= z.max_lte) &&
                   (q1 <= z.min_uts || q0 >= z.max_ute)) {
          any = true;  // no column masks a row of the tile
        } else {
          for (Index c = k; c <= last && !(any && !all); ++c) column_state(s, c, q0, q1, any, all);
        }
        k += detail::interval_block;
      } else {
        column_state(s, k, q0, q1, any, all);
        ++k;
      }
      if (any && !all) return tile_state::partial;
    }
    return any ? tile_state::full : tile_state::empty;
  }

  /// \brief Raises emask::error when region r lies outside the mask's batch, heads or lengths.
  void check(const region& r, const char* where) const {
    detail::check_interval_region(where, r, extents_, q_len_, k_len_, "column_interval_mask");
  }

 private:
  struct column {
    Index lts, lte, uts, ute;
  };
  struct summary {
    Index min_lts, max_lts, min_lte, max_lte, min_uts, max_uts, min_ute, max_ute;
  };

  /// Checks one masked interval [start, end) of element \p i (start) and \p j (end).
  static void check_pair(const char* where, const char* start_name, std::size_t i,
                         const char* end_name, std::size_t j, Index start, Index end, Index q_len) {
    if (start < 0 || start > q_len)
      detail::fail_element(where, start_name, i, start, "a row in [0, q_len = ", q_len, "]");
    if (end < start || end > q_len)
      detail::fail_element(where, end_name, j, end, "a row in [", start_name, "[", i, "] = ", start,
                           ", q_len = ", q_len, "] (masked rows [start, end))");
  }
  /// An empty interval is stored as [q_len, q_len): it never covers a tile and never meets one.
  column make_column(Index lts, Index lte, Index uts, Index ute) const {
    if (lts >= lte) lts = lte = q_len_;
    if (uts >= ute) uts = ute = q_len_;
    return {lts, lte, uts, ute};
  }

  Index slice(Index b, Index h) const noexcept {
    return (extents_.batch == 1 ? 0 : b) * extents_.heads + (extents_.heads == 1 ? 0 : h);
  }
  std::size_t col(Index s, Index k) const noexcept {
    EMASK_ASSERT(k >= 0 && k < k_len_);
    return static_cast<std::size_t>(s * k_len_ + k);
  }
  Index blocks_per_slice() const noexcept {
    return (k_len_ + detail::interval_block - 1) / detail::interval_block;
  }
  std::size_t block(Index s, Index blk) const noexcept {
    return static_cast<std::size_t>(s * blocks_per_slice() + blk);
  }

  void build_blocks() {
    const Index slices = extents_.batch * extents_.heads;
    blocks_.assign(static_cast<std::size_t>(slices * blocks_per_slice()), summary{});
    const Index top = (std::numeric_limits<Index>::max)();
    for (Index s = 0; s < slices; ++s)
      for (Index blk = 0; blk < blocks_per_slice(); ++blk) {
        summary z{top, 0, top, 0, top, 0, top, 0};
        const Index k_end = (std::min)(k_len_, (blk + 1) * detail::interval_block);
        for (Index k = blk * detail::interval_block; k < k_end; ++k) {
          const column& c = bounds_[col(s, k)];
          z.min_lts = (std::min)(z.min_lts, c.lts);
          z.max_lts = (std::max)(z.max_lts, c.lts);
          z.min_lte = (std::min)(z.min_lte, c.lte);
          z.max_lte = (std::max)(z.max_lte, c.lte);
          z.min_uts = (std::min)(z.min_uts, c.uts);
          z.max_uts = (std::max)(z.max_uts, c.uts);
          z.min_ute = (std::min)(z.min_ute, c.ute);
          z.max_ute = (std::max)(z.max_ute, c.ute);
        }
        blocks_[block(s, blk)] = z;
      }
  }

  bool column_keeps(Index s, Index q, Index k) const {
    const column& c = bounds_[col(s, k)];
    return !(c.lts <= q && q < c.lte) && !(c.uts <= q && q < c.ute);
  }

  /// Folds column k's answer for rows [q0, q1) into any (some row kept) and all (every row).
  void column_state(Index s, Index k, Index q0, Index q1, bool& any, bool& all) const {
    const column& c = bounds_[col(s, k)];
    // Rows the causal part leaves: [a, q1).
    const Index a = causal_ ? (std::max)(q0, k - diagonal_) : q0;
    if (a >= q1) {
      all = false;
      return;
    }
    if (a > q0 || (c.lts < q1 && c.lte > q0) || (c.uts < q1 && c.ute > q0)) all = false;
    // Is [a, q1) inside [lts, lte) u [uts, ute)? (empty intervals are [q_len, q_len))
    Index s1 = c.lts, e1 = c.lte, s2 = c.uts, e2 = c.ute;
    if (s2 < s1) {
      std::swap(s1, s2);
      std::swap(e1, e2);
    }
    const bool first_covers = s1 <= a && e1 >= q1;
    const bool second_covers = s2 <= a && e2 >= q1;
    const bool joined = s1 < e1 && s2 < e2 && s2 <= e1 && s1 <= a && (std::max)(e1, e2) >= q1;
    if (!(first_covers || second_covers || joined)) any = true;
  }

  Index q_len_ = 0, k_len_ = 0;
  slice_extents extents_{};
  bool causal_ = false;
  Index diagonal_ = 0;
  std::vector<column> bounds_;   // [slice][key]
  std::vector<summary> blocks_;  // [slice][column block]
};

/// \brief The row form of any mask expression over q_len x k_len positions: each row's maximal
/// runs of kept keys, for every (batch, head) slice of \p extents (an extent of 1 asks the mask
/// at batch entry or head 0). \p per_row = 0 sizes the rows for the row with the most runs;
/// a positive \p per_row that some row needs more runs than is an emask::error. Exact: the
/// result keeps what \p mask keeps. Cost: a keys() call per row for masks whose rows are one
/// exact span (causal, sliding_window, prefix_lm, chunked, document from cu_seqlens), plus a
/// keep() per key of the hull of the other rows.
template <class Mask>
interval_union_mask to_interval_union(const Mask& mask, Index q_len, Index k_len, Index per_row = 0,
                                      slice_extents extents = {}) {
  static_assert(is_mask_v<Mask>, "emask::to_interval_union: pass an emask mask expression");
  const char* where = "to_interval_union";
  const Index slices = detail::check_interval_shape(where, q_len, k_len, extents);
  if (per_row < 0) detail::fail_argument(where, "per_row", per_row, ">= 0 (0: as many as needed)");
  mask.check(region{0, extents.batch, 0, extents.heads, 0, q_len, 0, k_len}, where);
  std::vector<std::vector<std::pair<Index, Index>>> rows(static_cast<std::size_t>(slices * q_len));
  Index widest = 1;
  for (Index b = 0; b < extents.batch; ++b)
    for (Index h = 0; h < extents.heads; ++h)
      for (Index q = 0; q < q_len; ++q) {
        auto& runs = rows[static_cast<std::size_t>((b * extents.heads + h) * q_len + q)];
        detail::for_each_kept_run_in(mask, b, h, q, 0, k_len, [&](Index begin, Index end) {
          if (!runs.empty() && runs.back().second == begin) {
            runs.back().second = end;
          } else {
            runs.emplace_back(begin, end);
          }
        });
        const auto n = static_cast<Index>(runs.size());
        if (per_row > 0 && n > per_row)
          detail::fail_argument(where, "per_row", per_row, ">= ", n, " (row ", q, " of slice (", b,
                                ", ", h, ") keeps ", n, " separate runs of keys)");
        widest = (std::max)(widest, n);
      }
  const Index slots = per_row > 0 ? per_row : widest;
  std::vector<Index> starts(rows.size() * static_cast<std::size_t>(slots), 0),
      ends(starts.size(), 0);
  for (std::size_t r = 0; r < rows.size(); ++r)
    for (std::size_t i = 0; i < rows[r].size(); ++i) {
      starts[r * static_cast<std::size_t>(slots) + i] = rows[r][i].first;
      ends[r * static_cast<std::size_t>(slots) + i] = rows[r][i].second;
    }
  return interval_union_mask(starts, ends, q_len, k_len, slots, extents);
}

/// \brief The column form of any mask expression over q_len x k_len positions, for every
/// (batch, head) slice of \p extents: each key column's masked rows as at most two runs (the
/// first run starting at row 0 becomes the upper interval [uts, ute), the other the lower
/// interval [lts, lte)). Causal, sliding windows, documents (bidirectional or causal), prefix-LM
/// and chunks all fit. A column with three or more masked runs is an emask::error. Exact; the
/// result has no causal part (it is in the intervals). Cost: O(q_len x k_len) per slice.
template <class Mask>
column_interval_mask to_column_intervals(const Mask& mask, Index q_len, Index k_len,
                                         slice_extents extents = {}) {
  static_assert(is_mask_v<Mask>, "emask::to_column_intervals: pass an emask mask expression");
  const char* where = "to_column_intervals";
  const Index slices = detail::check_interval_shape(where, q_len, k_len, extents);
  mask.check(region{0, extents.batch, 0, extents.heads, 0, q_len, 0, k_len}, where);
  const auto n = static_cast<std::size_t>(slices * k_len);
  std::vector<Index> lts(n, q_len), lte(n, q_len), uts(n, q_len), ute(n, q_len);
  std::vector<char> kept(static_cast<std::size_t>(k_len));
  std::vector<Index> run_start(static_cast<std::size_t>(k_len)), runs(kept.size());
  for (Index b = 0; b < extents.batch; ++b)
    for (Index h = 0; h < extents.heads; ++h) {
      const std::size_t base = static_cast<std::size_t>((b * extents.heads + h) * k_len);
      std::fill(runs.begin(), runs.end(), 0);
      // Sweep rows top to bottom; each column's masked run closes on its first kept row below it.
      const auto close_run = [&](Index k, Index end) {
        const std::size_t j = static_cast<std::size_t>(k);
        const Index start = run_start[j];
        if (++runs[j] > 2)
          detail::fail_argument(
              where, "mask",
              detail::concat("column ", k, " of slice (", b, ", ", h,
                             ") with a third masked run of rows [", start, ", ", end, ")"),
              "at most 2 masked runs per key column (FlashMask's [lts, lte) "
              "and [uts, ute))");
        if (start == 0) {
          uts[base + j] = start;
          ute[base + j] = end;
        } else if (lts[base + j] >= lte[base + j]) {  // the lower interval is free
          lts[base + j] = start;
          lte[base + j] = end;
        } else {  // a second run below a first one that did not start at row 0
          uts[base + j] = lts[base + j];
          ute[base + j] = lte[base + j];
          lts[base + j] = start;
          lte[base + j] = end;
        }
      };
      std::fill(kept.begin(), kept.end(), char(1));  // row -1: everything kept
      for (Index q = 0; q < q_len; ++q) {
        std::vector<char> now(kept.size(), char(0));
        detail::for_each_kept_run_in(mask, b, h, q, 0, k_len, [&](Index begin, Index end) {
          std::fill(now.begin() + begin, now.begin() + end, char(1));
        });
        for (Index k = 0; k < k_len; ++k) {
          const std::size_t j = static_cast<std::size_t>(k);
          if (kept[j] && !now[j]) run_start[j] = q;  // a masked run opens
          if (!kept[j] && now[j]) close_run(k, q);
        }
        kept.swap(now);
      }
      for (Index k = 0; k < k_len; ++k)
        if (!kept[static_cast<std::size_t>(k)]) close_run(k, q_len);
    }
  return column_interval_mask(lts, lte, uts, ute, q_len, k_len, extents);
}

EMASK_NAMESPACE_END
