/// \file
/// \brief The mask-expression concept: tile answers, key spans, regions, the CRTP base.
///
/// A mask answers, for batch b, head h, query position q and key position k, whether the
/// pair takes part (true means keep). It also answers for a rectangle of positions whether
/// the rectangle is empty, full or partial, and for one query row which span of keys can be
/// kept. Kernels use those answers to skip empty tiles and drop the mask test on full ones.
#pragma once

#include <algorithm>
#if defined(__cpp_concepts) && __cpp_concepts >= 201907L
#include <concepts>
#endif
#include <limits>
#include <type_traits>

#include "emask/config.hpp"
#include "emask/core/types.hpp"
#include "emask/error.hpp"
#include "emask/fwd.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief The keys a query row can keep inside a key range [k0, k1).
///
/// Every kept key lies in [begin, end). When \c exact is true every key of [begin, end) is
/// kept, so the row is one contiguous run. An empty row has begin == end.
struct key_span {
  Index begin;  ///< first key that may be kept
  Index end;    ///< one past the last key that may be kept
  bool exact;   ///< every key of [begin, end) is kept
  /// \brief True when no key is kept.
  constexpr bool empty() const noexcept { return begin >= end; }
  /// \brief Number of keys in [begin, end).
  constexpr Index size() const noexcept { return end > begin ? end - begin : 0; }
};

/// \brief The part of a problem a mask will be asked about: batches [b_begin, b_end), heads
/// [h_begin, h_end), query positions [q_begin, q_end), key positions [k_begin, k_end).
/// Masks check it once (O(1) or O(batch)) before a kernel or a materialization starts.
struct region {
  Index b_begin = 0;  ///< first batch entry
  Index b_end = 1;    ///< one past the last batch entry
  Index h_begin = 0;  ///< first head
  Index h_end = 1;    ///< one past the last head
  Index q_begin = 0;  ///< first query position
  Index q_end = 0;    ///< one past the last query position
  Index k_begin = 0;  ///< first key position
  Index k_end = 0;    ///< one past the last key position
};

/// \brief True for every emask mask expression type.
template <class T>
struct is_mask : std::is_base_of<mask_base<std::decay_t<T>>, std::decay_t<T>> {};
/// \brief Shorthand of is_mask<T>::value.
template <class T>
inline constexpr bool is_mask_v = is_mask<T>::value;

#if EMASK_HAS_CONCEPTS
/// \brief C++20 form of the mask-expression requirements (see mask_base).
template <class T>
concept mask_expression = is_mask_v<T> && requires(const T& m, Index i, const region& r) {
  { m.keep(i, i, i, i) } -> std::convertible_to<bool>;
  { m.tile(i, i, i, i, i, i) } -> std::same_as<tile_state>;
  { m.keys(i, i, i, i, i) } -> std::same_as<key_span>;
  m.check(r, "");
  { T::exact_tiles } -> std::convertible_to<bool>;
};
#endif

/// \brief CRTP base of every mask expression.
///
/// A Derived type provides:
/// - `bool keep(Index b, Index h, Index q, Index k) const`
/// - `tile_state tile(Index b, Index h, Index q0, Index q1, Index k0, Index k1) const` for the
///   half-open rectangle [q0, q1) x [k0, k1), q0 < q1, k0 < k1, never calling a tile full or
///   empty when it is not;
/// - `key_span keys(Index b, Index h, Index q, Index k0, Index k1) const`;
/// - `void check(const region& r, const char* where) const`, raising emask::error when the mask
///   cannot answer for \p r (batch or length out of the range it was built for);
/// - `static constexpr bool exact_tiles`: true when tile() never answers partial for a tile
///   that is empty or full.
template <class Derived>
class mask_base {
 public:
  /// \brief The mask as its own type.
  const Derived& derived() const noexcept { return static_cast<const Derived&>(*this); }

  /// \brief Same as keep(b, h, q, k).
  bool operator()(Index b, Index h, Index q, Index k) const { return derived().keep(b, h, q, k); }

  /// \brief The same mask seen from a tile, shard or cache step whose first query has absolute
  /// position \p q_offset and whose first key has absolute position \p k_offset.
  /// \pre 0 <= q_offset, k_offset <= emask::unbounded (absolute positions stay <= unbounded).
  offset_mask<Derived> offset(Index q_offset, Index k_offset) const;

 protected:
  /// \cond INTERNAL
  mask_base() = default;
  ~mask_base() = default;
  mask_base(const mask_base&) = default;
  mask_base& operator=(const mask_base&) = default;
  /// \endcond
};

namespace detail {
/// Brute-force tile answer from keep(): exact, O(tile).
template <class M>
tile_state scan_tile(const M& m, Index b, Index h, Index q0, Index q1, Index k0, Index k1) {
  bool any = false, all = true;
  for (Index q = q0; q < q1; ++q) {
    for (Index k = k0; k < k1; ++k) {
      const bool kept = m.keep(b, h, q, k);
      any = any || kept;
      all = all && kept;
      if (any && !all) return tile_state::partial;
    }
  }
  return any ? tile_state::full : tile_state::empty;
}

/// Brute-force key span from keep(): exact, O(k1 - k0).
template <class M>
key_span scan_keys(const M& m, Index b, Index h, Index q, Index k0, Index k1) {
  Index first = k1, last = k0 - 1, count = 0;
  for (Index k = k0; k < k1; ++k) {
    if (m.keep(b, h, q, k)) {
      if (first == k1) first = k;
      last = k;
      ++count;
    }
  }
  if (count == 0) return {k0, k0, true};
  return {first, last + 1, count == last + 1 - first};
}

inline constexpr key_span empty_span(Index k0) noexcept { return {k0, k0, true}; }

/// Checks the offsets of an offset_mask for the public function \p where.
inline void check_offsets(const char* where, Index q_offset, Index k_offset) {
  if (q_offset < 0) fail_argument(where, "q_offset", q_offset, ">= 0");
  if (k_offset < 0) fail_argument(where, "k_offset", k_offset, ">= 0");
  if (q_offset > unbounded)
    fail_argument(where, "q_offset", q_offset, "<= emask::unbounded = ", unbounded);
  if (k_offset > unbounded)
    fail_argument(where, "k_offset", k_offset, "<= emask::unbounded = ", unbounded);
}

/// Checks that [begin, end) lies inside [0, limit) of a dimension named \p what.
inline void check_range(const char* where, const char* what, Index begin, Index end, Index limit) {
  if (begin < 0 || end > limit) {
    fail_argument(where, what, concat("[", begin, ", ", end, ")"), "a range inside [0, ", limit,
                  ") the mask was built for");
  }
}
}  // namespace detail

/// \brief A mask shifted to absolute positions: keep(b, h, i, j) of the offset mask is
/// keep(b, h, q_offset + i, k_offset + j) of the underlying one.
template <class Mask>
class offset_mask : public mask_base<offset_mask<Mask>> {
 public:
  static constexpr bool exact_tiles = Mask::exact_tiles;  ///< whether tile() answers are exact

  /// \brief \p m seen with its query row 0 at \p q_offset and key column 0 at \p k_offset.
  /// \pre 0 <= q_offset, k_offset <= emask::unbounded.
  offset_mask(const Mask& m, Index q_offset, Index k_offset) : m_(m), dq_(q_offset), dk_(k_offset) {
    detail::check_offsets("offset_mask", q_offset, k_offset);
  }

  /// \brief Whether pair (q, k) of batch entry b and head h is kept.
  bool keep(Index b, Index h, Index q, Index k) const { return m_.keep(b, h, q + dq_, k + dk_); }
  /// \brief State of the tile [q0, q1) x [k0, k1): never full or empty when it is not.
  tile_state tile(Index b, Index h, Index q0, Index q1, Index k0, Index k1) const {
    return m_.tile(b, h, q0 + dq_, q1 + dq_, k0 + dk_, k1 + dk_);
  }
  /// \brief Keys of row q that can be kept, inside [k0, k1).
  key_span keys(Index b, Index h, Index q, Index k0, Index k1) const {
    const key_span s = m_.keys(b, h, q + dq_, k0 + dk_, k1 + dk_);
    return {s.begin - dk_, s.end - dk_, s.exact};
  }
  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where) const {
    // Absolute positions stay <= unbounded (dq_, dk_ <= unbounded: no overflow here).
    if (r.q_end > unbounded - dq_)
      detail::fail_argument(where, "query positions",
                            detail::concat("[", r.q_begin, ", ", r.q_end, ") + q_offset ", dq_),
                            "absolute positions <= emask::unbounded = ", unbounded);
    if (r.k_end > unbounded - dk_)
      detail::fail_argument(where, "key positions",
                            detail::concat("[", r.k_begin, ", ", r.k_end, ") + k_offset ", dk_),
                            "absolute positions <= emask::unbounded = ", unbounded);
    region shifted = r;
    shifted.q_begin += dq_;
    shifted.q_end += dq_;
    shifted.k_begin += dk_;
    shifted.k_end += dk_;
    m_.check(shifted, where);
  }
  /// Offsets compose by addition instead of nesting; the sums stay <= emask::unbounded.
  offset_mask offset(Index q_offset, Index k_offset) const {
    if (q_offset > unbounded - dq_)
      detail::fail_argument("offset", "q_offset", q_offset, "<= ", unbounded - dq_,
                            " (the sum with the mask's q_offset ", dq_,
                            " must stay <= emask::unbounded)");
    if (k_offset > unbounded - dk_)
      detail::fail_argument("offset", "k_offset", k_offset, "<= ", unbounded - dk_,
                            " (the sum with the mask's k_offset ", dk_,
                            " must stay <= emask::unbounded)");
    detail::check_offsets("offset", dq_ + q_offset, dk_ + k_offset);
    return offset_mask(m_, dq_ + q_offset, dk_ + k_offset);
  }

  /// \brief The unshifted mask.
  const Mask& base() const noexcept { return m_; }
  /// \brief Absolute position of query row 0.
  Index q_offset() const noexcept { return dq_; }
  /// \brief Absolute position of key column 0.
  Index k_offset() const noexcept { return dk_; }

 private:
  Mask m_;
  Index dq_;
  Index dk_;
};

template <class Derived>
offset_mask<Derived> mask_base<Derived>::offset(Index q_offset, Index k_offset) const {
  detail::check_offsets("offset", q_offset, k_offset);
  return offset_mask<Derived>(derived(), q_offset, k_offset);
}

EMASK_NAMESPACE_END

// Every mask composes: make &, |, ! available wherever a mask type is.
#include "emask/core/compose.hpp"  // IWYU pragma: export
