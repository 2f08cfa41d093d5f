/// \file
/// \brief Shared machinery of the masks whose kept keys form one interval per query row.
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/interval_mask.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif

#include <vector>

#include "emask/core/mask.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

/// \brief A row interval [lo, hi) of kept keys.
struct row_bounds {
  Index lo;
  Index hi;
};

/// CRTP helper for masks whose row q of batch b keeps exactly the keys [lo(b,q), hi(b,q)).
/// Derived provides `row_bounds bounds(Index b, Index q) const` with, for positions q >= 0:
///   0 <= lo <= hi, lo < hi unless the row is empty and then lo == hi == 0,
///   lo and hi non-decreasing in q.
/// From that contract keep, keys and exact tile answers follow (tile costs O(log tile rows)).
template <class Derived>
class interval_mask : public mask_base<Derived> {
 public:
  static constexpr bool exact_tiles = true;

  bool keep(Index b, Index, Index q, Index k) const {
    const row_bounds r = self().bounds(b, q);
    return r.lo <= k && k < r.hi;
  }

  key_span keys(Index b, Index, Index q, Index k0, Index k1) const {
    const row_bounds r = self().bounds(b, q);
    const Index begin = (std::max)(r.lo, k0), end = (std::min)(r.hi, k1);
    if (begin >= end) return empty_span(k0);
    return {begin, end, true};
  }

  tile_state tile(Index b, Index, Index q0, Index q1, Index k0, Index k1) const {
    EMASK_ASSERT(q0 < q1 && k0 < k1 && q0 >= 0 && k0 >= 0);
    // Full: the largest lo (last row) and the smallest hi (first row) both cover [k0, k1).
    if (self().bounds(b, q1 - 1).lo <= k0 && self().bounds(b, q0).hi >= k1) {
      return tile_state::full;
    }
    // Rows with hi > k0 form a suffix [qa, q1); among them lo is smallest at qa.
    Index lo_q = q0, hi_q = q1;  // first q with hi(q) > k0, or q1
    while (lo_q < hi_q) {
      const Index mid = lo_q + (hi_q - lo_q) / 2;
      if (self().bounds(b, mid).hi > k0) {
        hi_q = mid;
      } else {
        lo_q = mid + 1;
      }
    }
    if (lo_q == q1 || self().bounds(b, lo_q).lo >= k1) return tile_state::empty;
    return tile_state::partial;
  }

 private:
  const Derived& self() const noexcept { return static_cast<const Derived&>(*this); }
};

/// Clamps an interval to the canonical form of the contract above.
constexpr row_bounds make_bounds(Index lo, Index hi) noexcept {
  lo = lo < 0 ? 0 : lo;
  return hi > lo ? row_bounds{lo, hi} : row_bounds{0, 0};
}

/// One value per batch entry, or one value for every batch entry when built from a scalar.
inline Index per_batch_value(const std::vector<Index>& v, Index b) {
  EMASK_ASSERT(!v.empty());
  return v.size() == 1 ? v[0] : v[static_cast<std::size_t>(b)];
}

/// Clamps a diagonal (a shift of positions) to [-2 unbounded, 2 unbounded]. For positions in
/// [0, unbounded] and window sides <= unbounded the kept keys are the same as with the exact
/// value, and position + diagonal + side + 1 cannot overflow.
constexpr Index clamp_diagonal(Index d) noexcept {
  return d > 2 * unbounded ? 2 * unbounded : (d < -2 * unbounded ? -2 * unbounded : d);
}

/// Raises emask::error when region r asks about positions past emask::unbounded, where the
/// builders' arithmetic (position + diagonal + side) would overflow.
inline void check_positions(const char* where, const region& r) {
  if (r.q_end > unbounded)
    fail_argument(where, "query positions", concat("[", r.q_begin, ", ", r.q_end, ")"),
                  "positions <= emask::unbounded = ", unbounded);
  if (r.k_end > unbounded)
    fail_argument(where, "key positions", concat("[", r.k_begin, ", ", r.k_end, ")"),
                  "positions <= emask::unbounded = ", unbounded);
}

inline void check_batch(const char* where, const char* what, std::size_t size, const region& r) {
  if (size != 1 && (r.b_begin < 0 || r.b_end > static_cast<Index>(size))) {
    fail_argument(where, what, concat(size, " batch entries"), "at least ", r.b_end,
                  " (the batch the mask is used with)");
  }
}

}  // namespace detail
EMASK_NAMESPACE_END
