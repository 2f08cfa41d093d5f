/// \file
/// \brief Packet loops over rows: the vectorized building blocks of every row softmax
/// (max, exp with a flush to exactly 0, sum, scale, select on keep flags).
///
/// Why not Eigen expressions: Eigen 3.4's `select()` has no packet path, so one select around
/// an `exp()` turns the whole expression into a scalar libm call per element (the 8x masked
/// softmax regression of 9c449c8). Eigen's assignment and reduction loops also peel unaligned
/// heads with scalar code, so a row's result would depend on its buffer's alignment. These
/// loops call Eigen's packet primitives (`pexp`, `pcmp_lt`, `pselect`, ...) directly over whole
/// packets from element 0, and send the tail through the same packet code via a padded local
/// buffer: every element is computed by the same instructions whatever its address, and a
/// select costs one compare and one blend. With EMASK_NO_SIMD (or an Eigen build without
/// vectorization) the packet is the scalar itself.
// IWYU pragma: private
#pragma once

#include <cstring>
#include <limits>
#include <type_traits>

#include "emask/config.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {
namespace simd {

namespace ei = Eigen::internal;

#if defined(EMASK_NO_SIMD)
template <class S>
using packet = S;
#else
/// The widest packet Eigen has for S on this build.
template <class S>
using packet = typename ei::packet_traits<S>::type;
#endif

/// Lanes of one packet of S.
template <class S>
inline constexpr Index lanes = static_cast<Index>(ei::unpacket_traits<packet<S>>::size);

/// A count known to be a whole packet (the main loop), as a type: loads and stores pick the
/// unaligned full-width instruction at compile time.
template <class S>
using whole = std::integral_constant<Index, lanes<S>>;

/// Calls body(k, count) over [0, n): count is whole<S> for full packets and an Index < lanes
/// for the tail.
template <class S, class Body>
inline void for_each_packet(Index n, Body&& body) {
  constexpr Index L = lanes<S>;
  Index k = 0;
  for (; k + L <= n; k += L) body(k, whole<S>{});
  if (k < n) body(k, n - k);
}

template <class S>
inline packet<S> load(const S* p, whole<S>) {
  return ei::ploadu<packet<S>>(p);
}
/// A partial packet: lanes [count, L) hold \p pad.
template <class S>
inline packet<S> load(const S* p, Index count, S pad = S(0)) {
  alignas(64) S buf[lanes<S>];
  for (Index i = 0; i < lanes<S>; ++i) buf[i] = i < count ? p[i] : pad;
  return ei::pload<packet<S>>(buf);
}
template <class S>
inline void store(S* p, const packet<S>& v, whole<S>) {
  ei::pstoreu(p, v);
}
template <class S>
inline void store(S* p, const packet<S>& v, Index count) {
  alignas(64) S buf[lanes<S>];
  ei::pstore(buf, v);
  std::memcpy(p, buf, static_cast<std::size_t>(count) * sizeof(S));
}
/// v with lanes [count, L) set to 0 (for sums over a partial packet).
template <class S>
inline packet<S> keep_lanes(const packet<S>& v, whole<S>) {
  return v;
}
template <class S>
inline packet<S> keep_lanes(const packet<S>& v, Index count) {
  alignas(64) S buf[lanes<S>];
  ei::pstore(buf, v);
  for (Index i = count; i < lanes<S>; ++i) buf[i] = S(0);
  return ei::pload<packet<S>>(buf);
}

/// a where \p mask is set, b elsewhere (mask lanes all ones or all zeros).
template <class S>
inline packet<S> select(const packet<S>& mask, const packet<S>& a, const packet<S>& b) {
  return ei::pselect(mask, a, b);
}

/// exp(x), with results below the smallest normal number flushed to exactly 0. Eigen's packet
/// exp clamps its argument (about -88.4 for float on SSE/AVX builds), so exp(-inf) would be
/// 2.9e-39 instead of 0 there; a masked or -infinity score must weigh exactly 0 on every build.
/// A comparison, not a multiplication: NaN stays NaN.
template <class S>
inline packet<S> exp_flushed(const packet<S>& x) {
  const packet<S> e = ei::pexp(x);
  const packet<S> tiny = ei::pset1<packet<S>>(std::numeric_limits<S>::min());
  return select<S>(ei::pcmp_lt(e, tiny), ei::pzero(e), e);
}

/// Lanes where f != 0 (keep flags: 1 kept, 0 masked).
template <class S>
inline packet<S> flag_set(const packet<S>& f) {
  return ei::pnot(ei::pcmp_eq(f, ei::pzero(f)));
}

/// max of x[0, n), n >= 1 (NaN handling unspecified: callers propagate NaN through exp).
template <class S>
inline S max_of(const S* x, Index n) {
  packet<S> acc = ei::pset1<packet<S>>(std::numeric_limits<S>::lowest());
  for_each_packet<S>(n, [&](Index k, auto c) {
    acc = ei::pmax(acc, load<S>(x + k, c, std::numeric_limits<S>::lowest()));
  });
  return ei::predux_max(acc);
}
/// min of x[0, n), n >= 1.
template <class S>
inline S min_of(const S* x, Index n) {
  packet<S> acc = ei::pset1<packet<S>>(std::numeric_limits<S>::max());
  for_each_packet<S>(n, [&](Index k, auto c) {
    acc = ei::pmin(acc, load<S>(x + k, c, std::numeric_limits<S>::max()));
  });
  return ei::predux_min(acc);
}
/// max over the kept entries (f != 0) of v[0, n); lowest() when none is kept.
template <class S>
inline S max_kept(const S* v, const S* f, Index n) {
  const packet<S> low = ei::pset1<packet<S>>(std::numeric_limits<S>::lowest());
  packet<S> acc = low;
  for_each_packet<S>(n, [&](Index k, auto c) {
    const packet<S> t = select<S>(flag_set<S>(load<S>(f + k, c)), load<S>(v + k, c), low);
    acc = ei::pmax(acc, t);
  });
  return ei::predux_max(acc);
}

/// y[k] = flushed exp(scale * x[k] - m) over [0, n) (y == nullptr: nothing stored); returns
/// the sum of those values, in an order fixed by n alone.
template <class S>
inline S exp_sum(const S* x, Index n, S scale, S m, S* y) {
  const packet<S> ps = ei::pset1<packet<S>>(scale), pm = ei::pset1<packet<S>>(m);
  packet<S> acc = ei::pzero(ps);
  for_each_packet<S>(n, [&](Index k, auto c) {
    const packet<S> e = exp_flushed<S>(ei::psub(ei::pmul(load<S>(x + k, c), ps), pm));
    if (y) store<S>(y + k, e, c);
    acc = ei::padd(acc, keep_lanes<S>(e, c));
  });
  return ei::predux(acc);
}

/// y[k] = f[k] != 0 ? flushed exp(v[k] - m) : 0 over [0, n) (y == nullptr: nothing stored);
/// returns the sum. Masked entries are 0 even when m or v[k] is NaN or infinite.
template <class S>
inline S exp_sum_kept(const S* v, const S* f, Index n, S m, S* y) {
  const packet<S> pm = ei::pset1<packet<S>>(m);
  packet<S> acc = ei::pzero(pm);
  for_each_packet<S>(n, [&](Index k, auto c) {
    const packet<S> e = exp_flushed<S>(ei::psub(load<S>(v + k, c), pm));
    const packet<S> r = select<S>(flag_set<S>(load<S>(f + k, c)), e, ei::pzero(e));
    if (y) store<S>(y + k, r, c);
    acc = ei::padd(acc, keep_lanes<S>(r, c));
  });
  return ei::predux(acc);
}

/// y[k] *= a over [0, n).
template <class S>
inline void scale(S* y, Index n, S a) {
  const packet<S> pa = ei::pset1<packet<S>>(a);
  for_each_packet<S>(n, [&](Index k, auto c) { store<S>(y + k, ei::pmul(load<S>(y + k, c), pa), c); });
}

/// y[k] = f[k] != 0 ? y[k] * a : 0 over [0, n): a NaN factor never reaches masked zeros.
template <class S>
inline void scale_kept(S* y, const S* f, Index n, S a) {
  const packet<S> pa = ei::pset1<packet<S>>(a);
  for_each_packet<S>(n, [&](Index k, auto c) {
    const packet<S> r = ei::pmul(load<S>(y + k, c), pa);
    store<S>(y + k, select<S>(flag_set<S>(load<S>(f + k, c)), r, ei::pzero(r)), c);
  });
}

/// y[k] = f[k] != 0 ? scale * x[k] : 0 over [0, n): masked scores (NaN, infinity) never
/// reach y.
template <class S>
inline void scale_kept_from(const S* x, const S* f, Index n, S a, S* y) {
  const packet<S> pa = ei::pset1<packet<S>>(a);
  for_each_packet<S>(n, [&](Index k, auto c) {
    const packet<S> r = ei::pmul(load<S>(x + k, c), pa);
    store<S>(y + k, select<S>(flag_set<S>(load<S>(f + k, c)), r, ei::pzero(r)), c);
  });
}

/// y[k] = (scale * x[k] - m) - b over [0, n) (log-softmax of a run without mask test).
template <class S>
inline void shift(const S* x, Index n, S scale, S m, S b, S* y) {
  const packet<S> ps = ei::pset1<packet<S>>(scale), pm = ei::pset1<packet<S>>(m),
                  pb = ei::pset1<packet<S>>(b);
  for_each_packet<S>(n, [&](Index k, auto c) {
    store<S>(y + k, ei::psub(ei::psub(ei::pmul(load<S>(x + k, c), ps), pm), pb), c);
  });
}

/// y[k] = f[k] != 0 ? (v[k] - m) - b : fill over [0, n).
template <class S>
inline void shift_kept(const S* v, const S* f, Index n, S m, S b, S fill, S* y) {
  const packet<S> pm = ei::pset1<packet<S>>(m), pb = ei::pset1<packet<S>>(b),
                  pf = ei::pset1<packet<S>>(fill);
  for_each_packet<S>(n, [&](Index k, auto c) {
    const packet<S> r = ei::psub(ei::psub(load<S>(v + k, c), pm), pb);
    store<S>(y + k, select<S>(flag_set<S>(load<S>(f + k, c)), r, pf), c);
  });
}

}  // namespace simd
}  // namespace detail
EMASK_NAMESPACE_END
