/// \file
/// \brief Block masks: a mask expression evaluated once into its tile map (FlexAttention's
/// BlockMask, on the CPU). It stores the state of every (query tile, key tile) pair of every
/// (batch, head) slice, the list of non-empty key tiles of each query tile, and the keep bits of
/// the partial tiles, so it is itself a mask expression that every kernel accepts: build it once
/// and reuse it across heads, layers and calls.
#pragma once

#include <cstdint>
#include <vector>

#include "emask/core/bits.hpp"
#include "emask/core/tile_grid.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief The (batch, heads) extents a block mask covers; an extent of 1 is broadcast to every
/// batch entry or head, as PyTorch broadcasts attn_mask.
struct slice_extents {
  Index batch = 1;  ///< batch entries (1 broadcasts)
  Index heads = 1;  ///< heads (1 broadcasts)
};

namespace detail {
/// Slice (b, h) of a mask, asked whatever batch entry and head the caller names.
template <class Mask>
class slice_view : public mask_base<slice_view<Mask>> {
 public:
  static constexpr bool exact_tiles = Mask::exact_tiles;
  slice_view(const Mask& m, Index b, Index h) noexcept : m_(m), b_(b), h_(h) {}
  bool keep(Index, Index, Index q, Index k) const { return m_.keep(b_, h_, q, k); }
  tile_state tile(Index, Index, Index q0, Index q1, Index k0, Index k1) const {
    return m_.tile(b_, h_, q0, q1, k0, k1);
  }
  key_span keys(Index, Index, Index q, Index k0, Index k1) const {
    return m_.keys(b_, h_, q, k0, k1);
  }
  void check(const region& r, const char* where) const {
    region at = r;
    at.b_begin = b_;
    at.b_end = b_ + 1;
    at.h_begin = h_;
    at.h_end = h_ + 1;
    m_.check(at, where);
  }

 private:
  const Mask& m_;
  Index b_, h_;
};
}  // namespace detail

class block_mask;
template <class Mask>
block_mask materialize_block_mask(const Mask& mask, Index q_len, Index k_len, Index tile_q,
                                  Index tile_k, slice_extents extents);

/// \brief The tile map of a mask over q_len x k_len positions cut by a tile_grid, for every
/// (batch, head) slice of its extents. Its tile states are exact (a partial tile of a
/// conservative composition that is in fact empty or full is stored as such), and as a mask
/// expression it answers a tile of its own grid with one lookup, any other rectangle and any
/// key span from the stored bits (a word per 64 keys).
///
/// Give a kernel a block mask built with the kernel's own tile sizes (attention: tile_q and
/// tile_k of attention_options, rounded up to the SIMD block, 64 x 64 by default) and every
/// tile question the kernel asks is one lookup.
class block_mask : public mask_base<block_mask> {
 public:
  /// tile() never answers partial for an empty or full tile
  static constexpr bool exact_tiles = true;

  /// \brief An empty block mask (0 x 0 positions); materialize_block_mask() builds real ones.
  block_mask() = default;

  /// \brief The grid the positions are cut by.
  const tile_grid& grid() const noexcept { return grid_; }
  /// \brief The batch and head extents (1 = shared by every batch entry or head).
  slice_extents extents() const noexcept { return {batch_, heads_}; }
  /// \brief Query positions covered.
  Index q_len() const noexcept { return grid_.q_len(); }
  /// \brief Key positions covered.
  Index k_len() const noexcept { return grid_.k_len(); }
  /// \brief Query positions per tile.
  Index tile_q() const noexcept { return grid_.tile_q(); }
  /// \brief Key positions per tile.
  Index tile_k() const noexcept { return grid_.tile_k(); }
  /// \brief Number of query tiles, ceil(q_len / tile_q).
  Index q_tiles() const noexcept { return grid_.q_tiles(); }
  /// \brief Number of key tiles, ceil(k_len / tile_k).
  Index k_tiles() const noexcept { return grid_.k_tiles(); }

  /// \brief State of the tile in query-tile row \p qt and key-tile column \p kt of slice
  /// (b, h).
  tile_state state(Index qt, Index kt, Index b = 0, Index h = 0) const {
    EMASK_ASSERT(qt >= 0 && qt < q_tiles() && kt >= 0 && kt < k_tiles());
    return states_[static_cast<std::size_t>(tile_index(slice(b, h), qt, kt))];
  }
  /// \brief Number of non-empty key tiles of query tile \p qt of slice (b, h).
  Index nonempty_count(Index qt, Index b = 0, Index h = 0) const {
    const std::size_t r = static_cast<std::size_t>(slice(b, h) * q_tiles() + qt);
    return row_start_[r + 1] - row_start_[r];
  }
  /// \brief The i-th non-empty key tile of query tile \p qt of slice (b, h), in increasing
  /// order.
  Index nonempty_tile(Index qt, Index i, Index b = 0, Index h = 0) const {
    EMASK_ASSERT(i >= 0 && i < nonempty_count(qt, b, h));
    return nonempty_tiles(qt, b, h)[i];
  }
  /// \brief Pointer to the non-empty key tiles of \p qt of slice (b, h)
  /// (nonempty_count(qt, b, h) entries).
  const Index* nonempty_tiles(Index qt, Index b = 0, Index h = 0) const {
    return cols_.data() + row_start_[static_cast<std::size_t>(slice(b, h) * q_tiles() + qt)];
  }
  /// \brief Number of tiles in state \p s, over every slice.
  Index count(tile_state s) const {
    Index n = 0;
    for (tile_state t : states_) n += (t == s) ? 1 : 0;
    return n;
  }
  /// \brief Fraction of tiles that are not empty (the work a tiled kernel does).
  double tile_density() const {
    return states_.empty()
               ? 0.0
               : static_cast<double>(cols_.size()) / static_cast<double>(states_.size());
  }
  /// \brief Bytes held (states, tile lists and the bits of the partial tiles).
  std::size_t memory_bytes() const noexcept {
    return states_.size() * sizeof(tile_state) + row_start_.size() * sizeof(Index) +
           cols_.size() * sizeof(Index) + slot_.size() * sizeof(std::int64_t) +
           bits_.size() * sizeof(std::uint64_t);
  }

  // Mask-expression interface.
  /// \brief Whether pair (q, k) of batch entry b and head h is kept.
  bool keep(Index b, Index h, Index q, Index k) const {
    const Index qt = grid_.q_tile_of(q), kt = grid_.k_tile_of(k);
    const Index t = tile_index(slice(b, h), qt, kt);
    switch (states_[static_cast<std::size_t>(t)]) {
      case tile_state::empty: return false;
      case tile_state::full: return true;
      default: return bits(t, q - grid_.q_begin(qt)).test(k - grid_.k_begin(kt));
    }
  }
  /// \brief State of the tile [q0, q1) x [k0, k1): one lookup for a tile of the grid, exact
  /// for any other rectangle.
  tile_state tile(Index b, Index h, Index q0, Index q1, Index k0, Index k1) const {
    if (q0 >= q1 || k0 >= k1) return tile_state::empty;
    const Index s = slice(b, h);
    const Index qt0 = grid_.q_tile_of(q0), kt0 = grid_.k_tile_of(k0);
    if (q0 == grid_.q_begin(qt0) && q1 == grid_.q_end(qt0) && k0 == grid_.k_begin(kt0) &&
        k1 == grid_.k_end(kt0))
      return states_[static_cast<std::size_t>(tile_index(s, qt0, kt0))];
    bool any = false, all = true;
    for (Index qt = qt0; qt <= grid_.q_tile_of(q1 - 1); ++qt) {
      const Index a0 = (std::max)(q0, grid_.q_begin(qt)), a1 = (std::min)(q1, grid_.q_end(qt));
      for (Index kt = kt0; kt <= grid_.k_tile_of(k1 - 1); ++kt) {
        const Index t = tile_index(s, qt, kt);
        const tile_state st = states_[static_cast<std::size_t>(t)];
        if (st == tile_state::partial) {
          const Index c0 = (std::max)(k0, grid_.k_begin(kt)) - grid_.k_begin(kt);
          const Index c1 = (std::min)(k1, grid_.k_end(kt)) - grid_.k_begin(kt);
          for (Index q = a0; q < a1; ++q) {
            const Index n = bits(t, q - grid_.q_begin(qt)).count(c0, c1);
            any = any || n > 0;
            all = all && n == c1 - c0;
          }
        } else {
          any = any || st == tile_state::full;
          all = all && st == tile_state::full;
        }
        if (any && !all) return tile_state::partial;
      }
    }
    return any ? tile_state::full : tile_state::empty;
  }
  /// \brief Keys of row q that can be kept, inside [k0, k1): exact, a lookup per key tile and a
  /// word per 64 keys of a partial tile.
  key_span keys(Index b, Index h, Index q, Index k0, Index k1) const {
    if (k0 >= k1) return detail::empty_span(k0);
    const Index s = slice(b, h);
    const Index qt = grid_.q_tile_of(q), row = q - grid_.q_begin(qt);
    Index first = k1, end = k0, kept = 0;
    for (Index kt = grid_.k_tile_of(k0); kt <= grid_.k_tile_of(k1 - 1); ++kt) {
      const Index t = tile_index(s, qt, kt);
      const tile_state st = states_[static_cast<std::size_t>(t)];
      if (st == tile_state::empty) continue;
      const Index base = grid_.k_begin(kt);
      const Index c0 = (std::max)(k0, base), c1 = (std::min)(k1, grid_.k_end(kt));
      if (st == tile_state::full) {
        first = (std::min)(first, c0);
        end = c1;
        kept += c1 - c0;
        continue;
      }
      const bit_row r = bits(t, row);
      const Index f = r.first(c0 - base, c1 - base);
      if (f == c1 - base) continue;
      first = (std::min)(first, base + f);
      end = base + r.last_end(f, c1 - base);
      kept += r.count(f, c1 - base);
    }
    if (kept == 0) return detail::empty_span(k0);
    return {first, end, kept == end - first};
  }
  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where) const {
    if (batch_ != 1 && (r.b_begin < 0 || r.b_end > batch_))
      detail::fail_argument(where, "block mask batch", batch_, "1 or at least ", r.b_end);
    if (heads_ != 1 && (r.h_begin < 0 || r.h_end > heads_))
      detail::fail_argument(where, "block mask heads", heads_, "1 or at least ", r.h_end);
    detail::check_range(where, "query positions", r.q_begin, r.q_end, q_len());
    detail::check_range(where, "key positions", r.k_begin, r.k_end, k_len());
  }

  template <class Mask>
  friend block_mask materialize_block_mask(const Mask& mask, Index q_len, Index k_len, Index tile_q,
                                           Index tile_k, slice_extents extents);

 private:
  static constexpr std::int64_t no_bits = -1;

  Index slice(Index b, Index h) const noexcept {
    return (batch_ == 1 ? 0 : b) * heads_ + (heads_ == 1 ? 0 : h);
  }
  Index tile_index(Index s, Index qt, Index kt) const noexcept {
    return (s * grid_.q_tiles() + qt) * grid_.k_tiles() + kt;
  }
  /// Row \p row of the bits of partial tile \p t.
  bit_row bits(Index t, Index row) const {
    const std::int64_t slot = slot_[static_cast<std::size_t>(t)];
    EMASK_ASSERT(slot != no_bits);
    return bit_row(bits_.data() + (slot * grid_.tile_q() + row) * words_per_row_, grid_.tile_k());
  }

  tile_grid grid_;
  Index batch_ = 1, heads_ = 1, words_per_row_ = 0;
  std::vector<tile_state> states_;   // [slice][q tile][k tile]
  std::vector<Index> row_start_{0};  // [slice * q_tiles + q tile] -> first entry of cols_
  std::vector<Index> cols_;          // non-empty key tiles, row after row
  std::vector<std::int64_t> slot_;   // per tile: its block of bits_, or no_bits
  std::vector<std::uint64_t> bits_;  // partial tiles: tile_q rows of words_per_row_ words
};

/// \brief The block mask of \p mask over q_len x k_len positions in tiles of
/// tile_q x tile_k, for every (batch, head) slice of \p extents (an extent of 1 asks the mask
/// at batch entry or head 0 and is shared by all). Cost: a tile question per tile and the keep
/// test of the partial tiles' pairs.
template <class Mask>
block_mask materialize_block_mask(const Mask& mask, Index q_len, Index k_len, Index tile_q,
                                  Index tile_k, slice_extents extents) {
  static_assert(is_mask_v<Mask>, "emask::materialize_block_mask: pass an emask mask expression");
  const char* where = "materialize_block_mask";
  detail::check_slice(where, q_len, k_len, 0, 0);
  if (tile_q < 1) detail::fail_argument(where, "tile_q", tile_q, ">= 1");
  if (tile_k < 1) detail::fail_argument(where, "tile_k", tile_k, ">= 1");
  if (extents.batch < 1)
    detail::fail_argument(where, "extents.batch", extents.batch, ">= 1 (1 broadcasts)");
  if (extents.heads < 1)
    detail::fail_argument(where, "extents.heads", extents.heads, ">= 1 (1 broadcasts)");
  mask.check(region{0, extents.batch, 0, extents.heads, 0, q_len, 0, k_len}, where);
  block_mask bm;
  bm.grid_ = tile_grid(q_len, k_len, tile_q, tile_k);
  const tile_grid& g = bm.grid_;
  bm.batch_ = extents.batch;
  bm.heads_ = extents.heads;
  bm.words_per_row_ = (g.tile_k() + 63) / 64;
  const Index slices = extents.batch * extents.heads;
  bm.states_.resize(static_cast<std::size_t>(slices * g.tiles()));
  bm.slot_.assign(bm.states_.size(), block_mask::no_bits);
  bm.row_start_.assign(1, 0);
  const Index tile_words = g.tile_q() * bm.words_per_row_;
  std::int64_t slots = 0;
  for (Index b = 0; b < extents.batch; ++b) {
    for (Index h = 0; h < extents.heads; ++h) {
      const Index s = bm.slice(b, h);
      for (Index qt = 0; qt < g.q_tiles(); ++qt) {
        const Index q0 = g.q_begin(qt), q1 = g.q_end(qt);
        for (Index kt = 0; kt < g.k_tiles(); ++kt) {
          const Index k0 = g.k_begin(kt), k1 = g.k_end(kt);
          const Index t = bm.tile_index(s, qt, kt);
          tile_state st = mask.tile(b, h, q0, q1, k0, k1);
          if (st == tile_state::partial) {
            // Store the bits, then the exact state: a conservative partial may be all or none.
            const std::size_t at = bm.bits_.size();
            bm.bits_.resize(at + static_cast<std::size_t>(tile_words), 0);
            std::uint64_t* words = bm.bits_.data() + at;
            Index kept = 0;
            for (Index q = q0; q < q1; ++q) {
              std::uint64_t* row = words + (q - q0) * bm.words_per_row_;
              detail::for_each_kept_run_in(mask, b, h, q, k0, k1, [&](Index begin, Index end) {
                detail::set_bits(row, begin - k0, end - k0);
                kept += end - begin;
              });
            }
            if (kept == 0 || kept == (q1 - q0) * (k1 - k0)) {
              bm.bits_.resize(at);
              st = kept == 0 ? tile_state::empty : tile_state::full;
            } else {
              bm.slot_[static_cast<std::size_t>(t)] = slots++;
            }
          }
          bm.states_[static_cast<std::size_t>(t)] = st;
          if (st != tile_state::empty) bm.cols_.push_back(kt);
        }
        bm.row_start_.push_back(static_cast<Index>(bm.cols_.size()));
      }
    }
  }
  return bm;
}

/// \brief The block mask of slice (b, h) of \p mask, shared by every batch entry and head.
template <class Mask>
block_mask materialize_block_mask(const Mask& mask, Index q_len, Index k_len, Index tile_q,
                                  Index tile_k, Index b = 0, Index h = 0) {
  detail::check_slice("materialize_block_mask", q_len, k_len, b, h);
  // Ask the mask at (b, h) and store that one slice: an offset view of the slice.
  return materialize_block_mask(detail::slice_view<Mask>(mask, b, h), q_len, k_len, tile_q, tile_k,
                                slice_extents{1, 1});
}

EMASK_NAMESPACE_END
