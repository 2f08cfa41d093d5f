/// \file
/// \brief The mask that keeps every (query, key) pair: full, bidirectional attention, by name.
#pragma once

#include "emask/config.hpp"
#include "emask/core/mask.hpp"
#include "emask/detail/interval_mask.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Keeps every (query, key) pair: an encoder's full attention, and the neutral element
/// of `&` (`keep_all() & m` keeps what `m` keeps). Every tile is full, so a kernel never asks it
/// per element. Use it where a mask argument is required and nothing is masked, instead of a
/// window of `emask::unbounded` on both sides.
class keep_all : public detail::interval_mask<keep_all> {
 public:
  keep_all() = default;

  /// \brief Kept keys [0, emask::unbounded) of every row (detail::interval_mask contract).
  detail::row_bounds bounds(Index, Index) const noexcept { return {0, unbounded}; }
  /// \brief Raises emask::error for positions beyond emask::unbounded; any batch and head.
  void check(const region& r, const char* where) const { detail::check_positions(where, r); }
};

EMASK_NAMESPACE_END
