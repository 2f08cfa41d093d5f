/// \file
/// \brief A mask read from block-sparse lists (FlexAttention's BlockMask tensors, FA4's
/// block-sparse tensors, BSR indptr / indices): its tile answers come from the lists, and the
/// pairs of a partial block from an optional mask_mod expression, as in FlexAttention.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "emask/core/block_sparse.hpp"
#include "emask/core/mask.hpp"
#include "emask/masks/keep_all.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief The mask of a block map: a full block keeps every pair, an empty one none, and a
/// partial block the pairs \p Mod keeps there (FlexAttention's mask_mod). The lists alone
/// cannot say which pairs of a partial block are kept: without a mask_mod (Mod = keep_all) a
/// partial block is kept whole, as FlexAttention does with `mask_mod=None` (noop_mask).
///
/// Made by from_flex_block_mask(), from_fa4_block_sparse() and from_bsr_block_sparse(). Slices
/// follow the layout's extents (an extent of 1 is broadcast); the mask_mod is asked with the
/// caller's batch entry and head. tile() answers a block of the layout with one lookup (and a
/// tile question to the mask_mod for a partial block), any other rectangle block by block.
///
/// \tparam Mod the mask expression applied inside partial blocks
template <class Mod = keep_all>
class block_sparse_mask : public mask_base<block_sparse_mask<Mod>> {
  static_assert(is_mask_v<Mod>,
                "emask::block_sparse_mask: the mask_mod must be an emask mask "
                "expression (e.g. emask::causal()); use keep_all for none");

 public:
  /// tile() answers are exact when the mask_mod's are
  static constexpr bool exact_tiles = Mod::exact_tiles;

  /// \brief The mask of \p states ([batch][heads][q block][kv block], row-major) over
  /// \p shape, with \p mask_mod inside the partial blocks. Raises emask::error for a bad shape
  /// or a wrong number of states.
  block_sparse_mask(const block_sparse_shape& shape, std::vector<tile_state> states,
                    const Mod& mask_mod = Mod())
      : shape_(shape), states_(std::move(states)), mod_(mask_mod) {
    const char* where = "block_sparse_mask";
    detail::check_block_sparse_shape(where, shape);
    if (static_cast<Index>(states_.size()) != shape.blocks())
      detail::fail_argument(where, "states", detail::concat(states_.size(), " entries"),
                            shape.blocks(), " = batch x heads x q blocks x kv blocks");
    for (std::size_t i = 0; i < states_.size(); ++i)
      if (static_cast<unsigned>(states_[i]) > static_cast<unsigned>(tile_state::full))
        detail::fail_element(where, "states", i, static_cast<unsigned>(states_[i]),
                             "empty (0), partial (1) or full (2)");
    grid_ = tile_grid(shape.q_len, shape.k_len, shape.q_block, shape.kv_block);
  }

  /// \brief The extents, lengths and block sizes of the layout it was read from.
  const block_sparse_shape& shape() const noexcept { return shape_; }
  /// \brief The blocks as a tile grid (block sizes clamped to the lengths).
  const tile_grid& grid() const noexcept { return grid_; }
  /// \brief The mask applied inside partial blocks.
  const Mod& mask_mod() const noexcept { return mod_; }
  /// \brief State of block (qt, kt) of slice (b, h), as the lists give it.
  tile_state state(Index qt, Index kt, Index b = 0, Index h = 0) const {
    EMASK_ASSERT(qt >= 0 && qt < grid_.q_tiles() && kt >= 0 && kt < grid_.k_tiles());
    return states_[static_cast<std::size_t>(block_index(slice(b, h), qt, kt))];
  }
  /// \brief Number of blocks in state \p s, over every slice.
  Index count(tile_state s) const {
    Index n = 0;
    for (tile_state t : states_) n += t == s ? 1 : 0;
    return n;
  }
  /// \brief Fraction of the blocks that are computed (partial or full).
  double density() const {
    return states_.empty() ? 0.0
                           : static_cast<double>(static_cast<Index>(states_.size()) -
                                                 count(tile_state::empty)) /
                                 static_cast<double>(states_.size());
  }

  // Mask-expression interface.
  /// \brief Whether pair (q, k) of batch entry b and head h is kept.
  bool keep(Index b, Index h, Index q, Index k) const {
    switch (states_[static_cast<std::size_t>(
        block_index(slice(b, h), grid_.q_tile_of(q), grid_.k_tile_of(k)))]) {
      case tile_state::empty: return false;
      case tile_state::full: return true;
      default: return mod_.keep(b, h, q, k);
    }
  }
  /// \brief State of the tile [q0, q1) x [k0, k1), block by block: a partial block asks the
  /// mask_mod about its part of the tile.
  tile_state tile(Index b, Index h, Index q0, Index q1, Index k0, Index k1) const {
    if (q0 >= q1 || k0 >= k1) return tile_state::empty;
    const Index s = slice(b, h);
    bool any = false, all = true;
    for (Index qt = grid_.q_tile_of(q0); qt <= grid_.q_tile_of(q1 - 1); ++qt) {
      const Index a0 = (std::max)(q0, grid_.q_begin(qt)), a1 = (std::min)(q1, grid_.q_end(qt));
      for (Index kt = grid_.k_tile_of(k0); kt <= grid_.k_tile_of(k1 - 1); ++kt) {
        tile_state st = states_[static_cast<std::size_t>(block_index(s, qt, kt))];
        if (st == tile_state::partial)
          st = mod_.tile(b, h, a0, a1, (std::max)(k0, grid_.k_begin(kt)),
                         (std::min)(k1, grid_.k_end(kt)));
        any = any || st != tile_state::empty;
        all = all && st == tile_state::full;
        if (any && !all) return tile_state::partial;
      }
    }
    return any ? tile_state::full : tile_state::empty;
  }
  /// \brief Keys of row q that can be kept, inside [k0, k1): the union of each block's span
  /// (the whole block part for a full block, the mask_mod's span for a partial one), exact when
  /// every part is exact and they touch.
  key_span keys(Index b, Index h, Index q, Index k0, Index k1) const {
    if (k0 >= k1) return detail::empty_span(k0);
    const Index s = slice(b, h), qt = grid_.q_tile_of(q);
    Index first = k1, end = k0;
    bool exact = true;
    for (Index kt = grid_.k_tile_of(k0); kt <= grid_.k_tile_of(k1 - 1); ++kt) {
      const tile_state st = states_[static_cast<std::size_t>(block_index(s, qt, kt))];
      if (st == tile_state::empty) continue;
      const Index c0 = (std::max)(k0, grid_.k_begin(kt)), c1 = (std::min)(k1, grid_.k_end(kt));
      const key_span part =
          st == tile_state::full ? key_span{c0, c1, true} : mod_.keys(b, h, q, c0, c1);
      if (part.empty()) continue;
      if (first < end && part.begin != end) exact = false;  // a gap before this part
      exact = exact && part.exact;
      first = (std::min)(first, part.begin);
      end = part.end;
    }
    if (first >= end) return detail::empty_span(k0);
    return {first, end, exact};
  }
  /// \brief Raises emask::error when region r lies outside the layout (batch entries, heads,
  /// positions) or the mask_mod cannot answer for it.
  void check(const region& r, const char* where) const {
    if (shape_.batch != 1 && (r.b_begin < 0 || r.b_end > shape_.batch))
      detail::fail_argument(where, "block-sparse batch", shape_.batch, "1 or at least ", r.b_end);
    if (shape_.heads != 1 && (r.h_begin < 0 || r.h_end > shape_.heads))
      detail::fail_argument(where, "block-sparse heads", shape_.heads, "1 or at least ", r.h_end);
    detail::check_range(where, "query positions", r.q_begin, r.q_end, shape_.q_len);
    detail::check_range(where, "key positions", r.k_begin, r.k_end, shape_.k_len);
    mod_.check(r, where);
  }

 private:
  Index slice(Index b, Index h) const noexcept {
    return (shape_.batch == 1 ? 0 : b) * shape_.heads + (shape_.heads == 1 ? 0 : h);
  }
  Index block_index(Index s, Index qt, Index kt) const noexcept {
    return (s * grid_.q_tiles() + qt) * grid_.k_tiles() + kt;
  }

  block_sparse_shape shape_;
  std::vector<tile_state> states_;  // [slice][q block][kv block]
  Mod mod_;
  tile_grid grid_;
};

/// \brief The mask of FlexAttention BlockMask lists, \p mask_mod applied inside the partial
/// blocks (kv_*). Validates the lists: sizes from the shape, counts in [0, kv blocks], ids in
/// range, no id twice in a row, no block both partial and full; empty full_kv_* lists mean no
/// full block. q_* (derived by FlexAttention) are not read.
template <class Mod, std::enable_if_t<is_mask_v<Mod>, int> = 0>
block_sparse_mask<Mod> from_flex_block_mask(const flex_block_mask& m, const Mod& mask_mod) {
  return block_sparse_mask<Mod>(
      m.shape,
      detail::states_from_lists("from_flex_block_mask", m.shape, "kv_num_blocks", m.kv_num_blocks,
                                "kv_indices", m.kv_indices, "full_kv_num_blocks",
                                m.full_kv_num_blocks, "full_kv_indices", m.full_kv_indices, false),
      mask_mod);
}
/// \brief The mask of FlexAttention BlockMask lists, partial blocks kept whole (no mask_mod).
inline block_sparse_mask<keep_all> from_flex_block_mask(const flex_block_mask& m) {
  return from_flex_block_mask(m, keep_all());
}

/// \brief The mask of FA4 block-sparse tensors, \p mask_mod applied inside the mask_block_*
/// blocks. Validates as from_flex_block_mask(); index rows may be narrower than the number of
/// key blocks (FA4's compact form).
template <class Mod, std::enable_if_t<is_mask_v<Mod>, int> = 0>
block_sparse_mask<Mod> from_fa4_block_sparse(const fa4_block_sparse& m, const Mod& mask_mod) {
  return block_sparse_mask<Mod>(
      m.shape,
      detail::states_from_lists("from_fa4_block_sparse", m.shape, "mask_block_cnt",
                                m.mask_block_cnt, "mask_block_idx", m.mask_block_idx,
                                "full_block_cnt", m.full_block_cnt, "full_block_idx",
                                m.full_block_idx, true),
      mask_mod);
}
/// \brief The mask of FA4 block-sparse tensors, partial blocks kept whole (no mask_mod).
inline block_sparse_mask<keep_all> from_fa4_block_sparse(const fa4_block_sparse& m) {
  return from_fa4_block_sparse(m, keep_all());
}

/// \brief The mask of BSR lists, \p mask_mod applied inside the listed blocks not flagged full
/// (every listed block when block_full is empty). Validates: indptr has one entry per block row
/// plus one, starts at 0 and does not decrease, indices has indptr.back() ids in range, none
/// twice in a row (any order), block_full is empty or one 0/1 flag per index.
template <class Mod, std::enable_if_t<is_mask_v<Mod>, int> = 0>
block_sparse_mask<Mod> from_bsr_block_sparse(const bsr_block_sparse& m, const Mod& mask_mod) {
  return block_sparse_mask<Mod>(m.shape, detail::states_from_bsr("from_bsr_block_sparse", m),
                                mask_mod);
}
/// \brief The mask of BSR lists, partial blocks kept whole (no mask_mod).
inline block_sparse_mask<keep_all> from_bsr_block_sparse(const bsr_block_sparse& m) {
  return from_bsr_block_sparse(m, keep_all());
}

EMASK_NAMESPACE_END
