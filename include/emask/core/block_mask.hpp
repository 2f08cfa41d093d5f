/// \file
/// \brief Block masks: the state of every (query tile, key tile) pair and, per query tile,
/// the list of key tiles that are not empty (FlexAttention's BlockMask, on the CPU).
#pragma once

#include <vector>

#include "emask/core/materialize.hpp"

EMASK_NAMESPACE_BEGIN

class block_mask;
template <class Mask>
block_mask materialize_block_mask(const Mask& mask, Index q_len, Index k_len, Index tile_q,
                                  Index tile_k, Index b = 0, Index h = 0);

/// \brief Per-tile states of one (batch, head) slice cut into tile_q x tile_k tiles (the last
/// row and column of tiles may be smaller), with the non-empty key tiles of each query tile.
class block_mask {
 public:
  /// \brief An empty block mask; materialize_block_mask() builds real ones.
  block_mask() = default;

  /// \brief Query positions covered.
  Index q_len() const noexcept { return q_len_; }
  /// \brief Key positions covered.
  Index k_len() const noexcept { return k_len_; }
  /// \brief Query positions per tile.
  Index tile_q() const noexcept { return tile_q_; }
  /// \brief Key positions per tile.
  Index tile_k() const noexcept { return tile_k_; }
  /// \brief Number of query tiles, ceil(q_len / tile_q).
  Index q_tiles() const noexcept { return nq_; }
  /// \brief Number of key tiles, ceil(k_len / tile_k).
  Index k_tiles() const noexcept { return nk_; }

  /// \brief State of the tile in query-tile row \p qt and key-tile column \p kt.
  tile_state state(Index qt, Index kt) const {
    EMASK_ASSERT(qt >= 0 && qt < nq_ && kt >= 0 && kt < nk_);
    return states_[static_cast<std::size_t>(qt * nk_ + kt)];
  }
  /// \brief Number of non-empty key tiles of query tile \p qt.
  Index nonempty_count(Index qt) const {
    return row_start_[static_cast<std::size_t>(qt + 1)] - row_start_[static_cast<std::size_t>(qt)];
  }
  /// \brief The i-th non-empty key tile of query tile \p qt, in increasing order.
  Index nonempty_tile(Index qt, Index i) const {
    EMASK_ASSERT(i >= 0 && i < nonempty_count(qt));
    return cols_[static_cast<std::size_t>(row_start_[static_cast<std::size_t>(qt)] + i)];
  }
  /// \brief Pointer to the non-empty key tiles of \p qt (nonempty_count(qt) entries).
  const Index* nonempty_tiles(Index qt) const {
    return cols_.data() + row_start_[static_cast<std::size_t>(qt)];
  }
  /// \brief Number of tiles in state \p s.
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

  template <class Mask>
  friend block_mask materialize_block_mask(const Mask& mask, Index q_len, Index k_len, Index tile_q,
                                           Index tile_k, Index b, Index h);

 private:
  Index q_len_ = 0, k_len_ = 0, tile_q_ = 1, tile_k_ = 1, nq_ = 0, nk_ = 0;
  std::vector<tile_state> states_;
  std::vector<Index> row_start_{0};
  std::vector<Index> cols_;
};

/// \brief Tile states of slice (b, h) of \p mask, with tiles of tile_q x tile_k positions.
/// The states are the mask's own tile answers (exact for the builders, conservative for
/// compositions).
template <class Mask>
block_mask materialize_block_mask(const Mask& mask, Index q_len, Index k_len, Index tile_q,
                                  Index tile_k, Index b, Index h) {
  static_assert(is_mask_v<Mask>, "emask::materialize_block_mask: pass an emask mask expression");
  detail::check_slice("materialize_block_mask", q_len, k_len, b, h);
  if (tile_q < 1) detail::fail_argument("materialize_block_mask", "tile_q", tile_q, ">= 1");
  if (tile_k < 1) detail::fail_argument("materialize_block_mask", "tile_k", tile_k, ">= 1");
  mask.check(detail::slice_region(q_len, k_len, b, h), "materialize_block_mask");
  block_mask bm;
  bm.q_len_ = q_len;
  bm.k_len_ = k_len;
  bm.tile_q_ = tile_q;
  bm.tile_k_ = tile_k;
  bm.nq_ = (q_len + tile_q - 1) / tile_q;
  bm.nk_ = (k_len + tile_k - 1) / tile_k;
  bm.states_.resize(static_cast<std::size_t>(bm.nq_ * bm.nk_));
  bm.row_start_.assign(1, 0);
  for (Index qt = 0; qt < bm.nq_; ++qt) {
    const Index q0 = qt * tile_q, q1 = std::min(q0 + tile_q, q_len);
    for (Index kt = 0; kt < bm.nk_; ++kt) {
      const Index k0 = kt * tile_k, k1 = std::min(k0 + tile_k, k_len);
      const tile_state s = mask.tile(b, h, q0, q1, k0, k1);
      bm.states_[static_cast<std::size_t>(qt * bm.nk_ + kt)] = s;
      if (s != tile_state::empty) bm.cols_.push_back(kt);
    }
    bm.row_start_.push_back(static_cast<Index>(bm.cols_.size()));
  }
  return bm;
}

EMASK_NAMESPACE_END
