/// \file
/// \brief The tile grid: how a q_len x k_len problem is cut into tiles. Every tiled piece of
/// emask (the attention and softmax kernels, decode's key chunks, block masks) cuts its
/// problem with this one type.
#pragma once

#include <algorithm>

#include "emask/core/types.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief A q_len x k_len rectangle of positions cut into tiles of tile_q x tile_k (the last
/// row and column of tiles may be smaller).
///
/// Tile sizes are clamped to [1, max(length, 1)] on construction, before any arithmetic, so a
/// huge tile (`emask::unbounded`, the largest Index) means "one tile" and no count or bound
/// overflows. Callers that reject a tile < 1 do so before building the grid.
class tile_grid {
 public:
  /// \brief Number of tiles of \p tile positions that cover \p length positions:
  /// ceil(length / tile) with the tile clamped as above, 0 for an empty length.
  static constexpr Index count(Index length, Index tile) noexcept {
    return length <= 0 ? 0 : (length - 1) / clamp(tile, length) + 1;
  }
  /// \brief \p tile clamped to [1, max(length, 1)].
  static constexpr Index clamp(Index tile, Index length) noexcept {
    return std::max<Index>(1, (std::min)(tile, std::max<Index>(length, 1)));
  }

  /// \brief An empty grid (0 x 0 positions).
  constexpr tile_grid() noexcept = default;
  /// \brief \p q_len x \p k_len positions in tiles of \p tile_q x \p tile_k.
  constexpr tile_grid(Index q_len, Index k_len, Index tile_q, Index tile_k) noexcept
      : q_len_(std::max<Index>(q_len, 0)),
        k_len_(std::max<Index>(k_len, 0)),
        tile_q_(clamp(tile_q, q_len)),
        tile_k_(clamp(tile_k, k_len)),
        q_tiles_(count(q_len, tile_q)),
        k_tiles_(count(k_len, tile_k)) {}

  /// \brief Query positions covered.
  constexpr Index q_len() const noexcept { return q_len_; }
  /// \brief Key positions covered.
  constexpr Index k_len() const noexcept { return k_len_; }
  /// \brief Query positions per tile (after clamping).
  constexpr Index tile_q() const noexcept { return tile_q_; }
  /// \brief Key positions per tile (after clamping).
  constexpr Index tile_k() const noexcept { return tile_k_; }
  /// \brief Rows of tiles, ceil(q_len / tile_q).
  constexpr Index q_tiles() const noexcept { return q_tiles_; }
  /// \brief Columns of tiles, ceil(k_len / tile_k).
  constexpr Index k_tiles() const noexcept { return k_tiles_; }
  /// \brief Number of tiles.
  constexpr Index tiles() const noexcept { return q_tiles_ * k_tiles_; }

  /// \brief First query position of tile row \p qt.
  constexpr Index q_begin(Index qt) const noexcept { return qt * tile_q_; }
  /// \brief One past the last query position of tile row \p qt.
  constexpr Index q_end(Index qt) const noexcept {
    return (std::min)(q_len_, qt * tile_q_ + tile_q_);
  }
  /// \brief First key position of tile column \p kt.
  constexpr Index k_begin(Index kt) const noexcept { return kt * tile_k_; }
  /// \brief One past the last key position of tile column \p kt.
  constexpr Index k_end(Index kt) const noexcept {
    return (std::min)(k_len_, kt * tile_k_ + tile_k_);
  }
  /// \brief The tile row that holds query position \p q.
  constexpr Index q_tile_of(Index q) const noexcept { return q / tile_q_; }
  /// \brief The tile column that holds key position \p k.
  constexpr Index k_tile_of(Index k) const noexcept { return k / tile_k_; }

  /// \brief Same positions and tile sizes.
  friend constexpr bool operator==(const tile_grid& a, const tile_grid& b) noexcept {
    return a.q_len_ == b.q_len_ && a.k_len_ == b.k_len_ && a.tile_q_ == b.tile_q_ &&
           a.tile_k_ == b.tile_k_;
  }
  /// \brief Different positions or tile sizes.
  friend constexpr bool operator!=(const tile_grid& a, const tile_grid& b) noexcept {
    return !(a == b);
  }

 private:
  Index q_len_ = 0, k_len_ = 0, tile_q_ = 1, tile_k_ = 1, q_tiles_ = 0, k_tiles_ = 0;
};

EMASK_NAMESPACE_END
