/// \file
/// \brief A different mask per attention head (e.g. one window size per head).
#pragma once

#include <vector>

#include "emask/core/mask.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Head h uses masks[h]; all masks share one type.
template <class Mask>
class per_head_mask : public mask_base<per_head_mask<Mask>> {
 public:
  static constexpr bool exact_tiles = Mask::exact_tiles;  ///< whether tile() answers are exact
  /// \brief Head h uses masks[h]; at least one mask.
  explicit per_head_mask(std::vector<Mask> masks) : masks_(std::move(masks)) {
    if (masks_.empty())
      detail::fail_argument("per_head_mask", "masks", "an empty list", "one mask per head");
  }
  /// \brief Whether pair (q, k) of batch entry b and head h is kept.
  bool keep(Index b, Index h, Index q, Index k) const { return at(h).keep(b, h, q, k); }
  /// \brief State of the tile [q0, q1) x [k0, k1): never full or empty when it is not.
  tile_state tile(Index b, Index h, Index q0, Index q1, Index k0, Index k1) const {
    return at(h).tile(b, h, q0, q1, k0, k1);
  }
  /// \brief Keys of row q that can be kept, inside [k0, k1).
  key_span keys(Index b, Index h, Index q, Index k0, Index k1) const {
    return at(h).keys(b, h, q, k0, k1);
  }
  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where) const {
    if (r.h_begin < 0 || r.h_end > static_cast<Index>(masks_.size()))
      detail::fail_argument(where, "per_head masks", masks_.size(), "at least ", r.h_end,
                            " (one per head)");
    for (const Mask& m : masks_) m.check(r, where);
  }
  /// \brief Number of heads covered.
  Index heads() const noexcept { return static_cast<Index>(masks_.size()); }

 private:
  const Mask& at(Index h) const {
    EMASK_ASSERT(h >= 0 && h < heads());
    return masks_[static_cast<std::size_t>(h)];
  }
  std::vector<Mask> masks_;
};

/// \brief Head h of the result uses masks[h].
template <class Mask, std::enable_if_t<is_mask_v<Mask>, int> = 0>
per_head_mask<Mask> per_head(std::vector<Mask> masks) {
  if (masks.empty())
    detail::fail_argument("per_head", "masks", "an empty list", "one mask per head");
  return per_head_mask<Mask>(std::move(masks));
}

EMASK_NAMESPACE_END
