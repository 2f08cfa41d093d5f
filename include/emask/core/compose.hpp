/// \file
/// \brief Composition of masks: intersection (&), union (|) and complement (!).
///
/// Tile answers combine conservatively: for `a & b` any empty side makes the tile empty and
/// two full sides make it full; for `a | b` any full side makes it full and two empty sides
/// make it empty. Anything else is partial, so compositions are never wrong, but can answer
/// partial for a tile that is in fact empty or full (exact_tiles is false).
#pragma once

#include "emask/core/mask.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Pairs kept by both masks.
template <class A, class B>
class and_mask : public mask_base<and_mask<A, B>> {
 public:
  static constexpr bool exact_tiles = false;  ///< whether tile() answers are exact
  /// \brief Stores copies of both operands.
  and_mask(const A& a, const B& b) : a_(a), b_(b) {}

  /// \brief Whether pair (q, k) of batch entry b and head h is kept.
  bool keep(Index b, Index h, Index q, Index k) const {
    return a_.keep(b, h, q, k) && b_.keep(b, h, q, k);
  }
  /// \brief State of the tile [q0, q1) x [k0, k1): never full or empty when it is not.
  tile_state tile(Index b, Index h, Index q0, Index q1, Index k0, Index k1) const {
    const tile_state ta = a_.tile(b, h, q0, q1, k0, k1);
    if (ta == tile_state::empty) return tile_state::empty;
    const tile_state tb = b_.tile(b, h, q0, q1, k0, k1);
    if (tb == tile_state::empty) return tile_state::empty;
    return (ta == tile_state::full && tb == tile_state::full) ? tile_state::full
                                                              : tile_state::partial;
  }
  /// \brief Keys of row q that can be kept, inside [k0, k1).
  key_span keys(Index b, Index h, Index q, Index k0, Index k1) const {
    const key_span sa = a_.keys(b, h, q, k0, k1);
    if (sa.empty()) return detail::empty_span(k0);
    const key_span sb = b_.keys(b, h, q, sa.begin, sa.end);
    if (sb.empty()) return detail::empty_span(k0);
    return {sb.begin, sb.end, sa.exact && sb.exact};
  }
  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where) const {
    a_.check(r, where);
    b_.check(r, where);
  }
  /// \brief Left operand.
  const A& lhs() const noexcept { return a_; }
  /// \brief Right operand.
  const B& rhs() const noexcept { return b_; }

 private:
  A a_;
  B b_;
};

/// \brief Pairs kept by either mask.
template <class A, class B>
class or_mask : public mask_base<or_mask<A, B>> {
 public:
  static constexpr bool exact_tiles = false;  ///< whether tile() answers are exact
  /// \brief Stores copies of both operands.
  or_mask(const A& a, const B& b) : a_(a), b_(b) {}

  /// \brief Whether pair (q, k) of batch entry b and head h is kept.
  bool keep(Index b, Index h, Index q, Index k) const {
    return a_.keep(b, h, q, k) || b_.keep(b, h, q, k);
  }
  /// \brief State of the tile [q0, q1) x [k0, k1): never full or empty when it is not.
  tile_state tile(Index b, Index h, Index q0, Index q1, Index k0, Index k1) const {
    const tile_state ta = a_.tile(b, h, q0, q1, k0, k1);
    if (ta == tile_state::full) return tile_state::full;
    const tile_state tb = b_.tile(b, h, q0, q1, k0, k1);
    if (tb == tile_state::full) return tile_state::full;
    return (ta == tile_state::empty && tb == tile_state::empty) ? tile_state::empty
                                                                : tile_state::partial;
  }
  /// \brief Keys of row q that can be kept, inside [k0, k1).
  key_span keys(Index b, Index h, Index q, Index k0, Index k1) const {
    const key_span sa = a_.keys(b, h, q, k0, k1);
    const key_span sb = b_.keys(b, h, q, k0, k1);
    if (sa.empty()) return sb;
    if (sb.empty()) return sa;
    const bool touching = sa.end >= sb.begin && sb.end >= sa.begin;
    return {(std::min)(sa.begin, sb.begin), (std::max)(sa.end, sb.end),
            sa.exact && sb.exact && touching};
  }
  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where) const {
    a_.check(r, where);
    b_.check(r, where);
  }
  /// \brief Left operand.
  const A& lhs() const noexcept { return a_; }
  /// \brief Right operand.
  const B& rhs() const noexcept { return b_; }

 private:
  A a_;
  B b_;
};

/// \brief Pairs the mask does not keep.
template <class A>
class not_mask : public mask_base<not_mask<A>> {
 public:
  static constexpr bool exact_tiles = A::exact_tiles;  ///< whether tile() answers are exact
  /// \brief Stores a copy of the operand.
  explicit not_mask(const A& a) : a_(a) {}

  /// \brief Whether pair (q, k) of batch entry b and head h is kept.
  bool keep(Index b, Index h, Index q, Index k) const { return !a_.keep(b, h, q, k); }
  /// \brief State of the tile [q0, q1) x [k0, k1): never full or empty when it is not.
  tile_state tile(Index b, Index h, Index q0, Index q1, Index k0, Index k1) const {
    switch (a_.tile(b, h, q0, q1, k0, k1)) {
      case tile_state::empty: return tile_state::full;
      case tile_state::full: return tile_state::empty;
      default: return tile_state::partial;
    }
  }
  /// \brief Keys of row q that can be kept, inside [k0, k1).
  key_span keys(Index b, Index h, Index q, Index k0, Index k1) const {
    const key_span s = a_.keys(b, h, q, k0, k1);
    if (s.empty()) return {k0, k1, true};
    if (!s.exact) return {k0, k1, false};
    if (s.begin == k0 && s.end == k1) return detail::empty_span(k0);
    if (s.begin == k0) return {s.end, k1, true};
    if (s.end == k1) return {k0, s.begin, true};
    return {k0, k1, false};
  }
  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where) const { a_.check(r, where); }
  /// \brief The complemented mask.
  const A& operand() const noexcept { return a_; }

 private:
  A a_;
};

/// \brief Intersection: pairs kept by both \p a and \p b. Same as `a & b`.
template <class A, class B, std::enable_if_t<is_mask_v<A> && is_mask_v<B>, int> = 0>
and_mask<A, B> intersect(const A& a, const B& b) {
  return and_mask<A, B>(a, b);
}
/// \brief Union: pairs kept by \p a or \p b. Same as `a | b`.
template <class A, class B, std::enable_if_t<is_mask_v<A> && is_mask_v<B>, int> = 0>
or_mask<A, B> unite(const A& a, const B& b) {
  return or_mask<A, B>(a, b);
}
/// \brief Complement: pairs \p a does not keep. Same as `!a`.
template <class A, std::enable_if_t<is_mask_v<A>, int> = 0>
not_mask<A> complement(const A& a) {
  return not_mask<A>(a);
}

// Operators are constrained to mask types, so ADL never picks them for anything else.
/// \brief Intersection of two masks (see intersect).
template <class A, class B, std::enable_if_t<is_mask_v<A> && is_mask_v<B>, int> = 0>
and_mask<A, B> operator&(const A& a, const B& b) {
  return and_mask<A, B>(a, b);
}
/// \brief Union of two masks (see unite).
template <class A, class B, std::enable_if_t<is_mask_v<A> && is_mask_v<B>, int> = 0>
or_mask<A, B> operator|(const A& a, const B& b) {
  return or_mask<A, B>(a, b);
}
/// \brief Complement of a mask (see complement).
template <class A, std::enable_if_t<is_mask_v<A>, int> = 0>
not_mask<A> operator!(const A& a) {
  return not_mask<A>(a);
}
/// Double complement folds back to the mask itself.
template <class A>
A operator!(const not_mask<A>& a) {
  return a.operand();
}

EMASK_NAMESPACE_END
