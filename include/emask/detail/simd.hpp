/// \file
/// \brief Packet loops over rows: the vectorized building blocks of every row softmax
/// (max, exp with a flush to exactly 0, sum, scale, select on keep flags).
///
/// Why not Eigen expressions: Eigen 3.4's `select()` has no packet path, so one select around
/// an `exp()` turns the whole expression into a scalar libm call per element (the 8x masked
/// softmax regression of 9c449c8). Eigen's assignment and reduction loops also peel unaligned
/// heads with scalar code, so a row's result would depend on its buffer's alignment. These
/// loops call Eigen's packet primitives (`pexp`, `pcmp_lt`, `pselect`, ...) directly: partial
/// head and tail packets go through the same packet code via a padded local buffer, so every
/// element is computed by the same instructions whatever its lane or address; sums assign
/// packets to accumulators by index, so their rounding never depends on an address either.
/// A select costs one compare and one blend. With EMASK_NO_SIMD (or an Eigen build without
/// vectorization) the packet is the scalar itself.
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/simd.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "emask/config.hpp"

// Non-temporal stores: x86 only, and not with EMASK_NO_SIMD. Only the header of the ISA the
// build targets, which Eigen has included already: <immintrin.h> costs every including
// translation unit about a third of a second when it is not needed.
#if EMASK_HAS_STREAM_STORES
#if defined(__AVX__) || defined(_MSC_VER)
#include <immintrin.h>
#else
#include <emmintrin.h>
#endif
#endif

EMASK_NAMESPACE_BEGIN
namespace detail {
namespace simd {

namespace ei = Eigen::internal;
using Index = Eigen::Index;  // emask::Index, without the mask headers

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

/// The same over a grid aligned to \p p: a partial head packet up to p's first packet
/// boundary, whole aligned packets, a partial tail. Out of cache, an access that spans two
/// cache lines costs about twice (25 % slower masked softmax at S = 4096 on AMD Zen 5), so
/// element-wise passes walk the data's own grid; every element still goes through the same
/// packet code, whatever its lane, so no result depends on the address. Reductions whose
/// rounding depends on the order (sums) use for_each_packet2 instead.
template <class S, class Body>
inline void for_each_packet_at(const S* p, Index n, Body&& body) {
  constexpr Index L = lanes<S>;
  constexpr std::uintptr_t bytes = static_cast<std::uintptr_t>(L) * sizeof(S);
  const std::uintptr_t mis = reinterpret_cast<std::uintptr_t>(p) % bytes;
  Index k = 0;
  if (mis != 0 && mis % sizeof(S) == 0) {
    k = std::min<Index>(n, static_cast<Index>((bytes - mis) / sizeof(S)));
    body(Index(0), k);
  }
  for (; k + L <= n; k += L) body(k, whole<S>{});
  if (k < n) body(k, n - k);
}

/// The same two packets at a time, for reductions: body(k, count, lane) with lane 0 or 1
/// picking one of two accumulators, so consecutive packets do not wait on each other's add.
/// Which packet goes to which accumulator depends on k alone (never on the address).
template <class S, class Body>
inline void for_each_packet2(Index n, Body&& body) {
  constexpr Index L = lanes<S>;
  Index k = 0;
  for (; k + 2 * L <= n; k += 2 * L) {
    body(k, whole<S>{}, 0);
    body(k + L, whole<S>{}, 1);
  }
  if (k + L <= n) {
    body(k, whole<S>{}, 0);
    k += L;
  }
  if (k < n) body(k, n - k, 1);
}

template <class S>
inline packet<S> load(const S* p, whole<S>) {
  return ei::ploadu<packet<S>>(p);
}
// Partial packets go through a local buffer. AVX-512 masked loads and stores would be one
// instruction each, but measured 20 % slower on masked softmax at S = 4096 on AMD Zen 5.
/// A partial packet: lanes [count, L) hold \p pad. Lanes past count are never read from p.
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
/// Stores lanes [0, count) of v; p[count, L) is never touched.
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
/// exp clamps its argument (-88.72 for float on SSE and AVX builds), so exp(-inf) would be
/// 2.9e-39 instead of 0 there; a masked or -infinity score must weigh exactly 0 on every build.
/// A comparison, not a multiplication: NaN stays NaN.
template <class S>
inline packet<S> exp_flushed(const packet<S>& x) {
  const packet<S> e = ei::pexp(x);
  const packet<S> tiny = ei::pset1<packet<S>>((std::numeric_limits<S>::min)());
#if defined(__AVX512F__) && !defined(EMASK_NO_SIMD)
  // One compare into a mask register and a zeroing move (Eigen's generic pcmp_lt + pselect
  // expand the mask to a vector and back: four instructions). NLT_UQ is true for NaN.
  if constexpr (lanes<S> * sizeof(S) == 64) {
    if constexpr (std::is_same<S, float>::value)
      return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(e, tiny, _CMP_NLT_UQ), e);
    else
      return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(e, tiny, _CMP_NLT_UQ), e);
  }
#endif
  return select<S>(ei::pcmp_lt(e, tiny), ei::pzero(e), e);
}

/// Lanes where f != 0 (keep flags: 1 kept, 0 masked).
template <class S>
inline packet<S> flag_set(const packet<S>& f) {
  return ei::pnot(ei::pcmp_eq(f, ei::pzero(f)));
}

/// max of x[0, n), n >= 1 (NaN handling unspecified: callers propagate NaN through exp).
/// The maximum is exact, so the grid may follow x's address.
template <class S>
inline S max_of(const S* x, Index n) {
  const S low = std::numeric_limits<S>::lowest();
  packet<S> acc = ei::pset1<packet<S>>(low);
  for_each_packet_at<S>(x, n,
                        [&](Index k, auto c) { acc = ei::pmax(acc, load<S>(x + k, c, low)); });
  return ei::predux_max(acc);
}
/// min of x[0, n), n >= 1.
template <class S>
inline S min_of(const S* x, Index n) {
  const S high = (std::numeric_limits<S>::max)();
  packet<S> acc = ei::pset1<packet<S>>(high);
  for_each_packet_at<S>(x, n,
                        [&](Index k, auto c) { acc = ei::pmin(acc, load<S>(x + k, c, high)); });
  return ei::predux_min(acc);
}
/// max over the kept entries (f != 0) of v[0, n); lowest() when none is kept.
template <class S>
inline S max_kept(const S* v, const S* f, Index n) {
  const packet<S> low = ei::pset1<packet<S>>(std::numeric_limits<S>::lowest());
  packet<S> acc = low;
  for_each_packet_at<S>(v, n, [&](Index k, auto c) {
    acc = ei::pmax(acc, select<S>(flag_set<S>(load<S>(f + k, c)), load<S>(v + k, c), low));
  });
  return ei::predux_max(acc);
}

/// sum of y[0, n), in an order fixed by n alone (never by the address of y).
template <class S>
inline S sum_of(const S* y, Index n) {
  packet<S> acc[2] = {ei::pset1<packet<S>>(S(0)), ei::pset1<packet<S>>(S(0))};
  for_each_packet2<S>(
      n, [&](Index k, auto c, int a) { acc[a] = ei::padd(acc[a], load<S>(y + k, c)); });
  return ei::predux(ei::padd(acc[0], acc[1]));
}

/// Returns the sum of flushed exp(scale * x[k] - m) over [0, n) and, unless y == nullptr,
/// stores the values in y[0, n): on y's grid, then summed by a second pass over y (in L1) in
/// an order fixed by n, so neither result depends on an address.
template <class S>
inline S exp_sum(const S* x, Index n, S scale, S m, S* y) {
  const packet<S> ps = ei::pset1<packet<S>>(scale), pm = ei::pset1<packet<S>>(m);
  const auto value = [&](Index k, auto c) {
    return exp_flushed<S>(ei::psub(ei::pmul(load<S>(x + k, c), ps), pm));
  };
  if (y) {
    for_each_packet_at<S>(y, n, [&](Index k, auto c) { store<S>(y + k, value(k, c), c); });
    return sum_of(y, n);
  }
  packet<S> acc[2] = {ei::pzero(ps), ei::pzero(ps)};
  for_each_packet2<S>(
      n, [&](Index k, auto c, int a) { acc[a] = ei::padd(acc[a], keep_lanes<S>(value(k, c), c)); });
  return ei::predux(ei::padd(acc[0], acc[1]));
}

/// The same over kept entries: f[k] != 0 ? flushed exp(v[k] - m) : 0. Masked entries are 0
/// even when m or v[k] is NaN or infinite.
template <class S>
inline S exp_sum_kept(const S* v, const S* f, Index n, S m, S* y) {
  const packet<S> pm = ei::pset1<packet<S>>(m);
  const auto value = [&](Index k, auto c) {
    const packet<S> e = exp_flushed<S>(ei::psub(load<S>(v + k, c), pm));
    return select<S>(flag_set<S>(load<S>(f + k, c)), e, ei::pzero(e));
  };
  if (y) {
    for_each_packet_at<S>(y, n, [&](Index k, auto c) { store<S>(y + k, value(k, c), c); });
    return sum_of(y, n);
  }
  packet<S> acc[2] = {ei::pzero(pm), ei::pzero(pm)};
  for_each_packet2<S>(
      n, [&](Index k, auto c, int a) { acc[a] = ei::padd(acc[a], keep_lanes<S>(value(k, c), c)); });
  return ei::predux(ei::padd(acc[0], acc[1]));
}

/// y[k] *= a over [0, n).
template <class S>
inline void scale(S* y, Index n, S a) {
  const packet<S> pa = ei::pset1<packet<S>>(a);
  for_each_packet_at<S>(
      y, n, [&](Index k, auto c) { store<S>(y + k, ei::pmul(load<S>(y + k, c), pa), c); });
}

/// y[k] = f[k] != 0 ? y[k] * a : 0 over [0, n): a NaN factor never reaches masked zeros.
template <class S>
inline void scale_kept(S* y, const S* f, Index n, S a) {
  const packet<S> pa = ei::pset1<packet<S>>(a);
  for_each_packet_at<S>(y, n, [&](Index k, auto c) {
    const packet<S> r = ei::pmul(load<S>(y + k, c), pa);
    store<S>(y + k, select<S>(flag_set<S>(load<S>(f + k, c)), r, ei::pzero(r)), c);
  });
}

/// y[k] = f[k] != 0 ? scale * x[k] : 0 over [0, n): masked scores (NaN, infinity) never
/// reach y. Returns the maximum over the kept entries (lowest() when none is kept), so the
/// caller needs no second pass for it.
template <class S>
inline S scale_kept_from(const S* x, const S* f, Index n, S a, S* y) {
  const packet<S> pa = ei::pset1<packet<S>>(a);
  const packet<S> low = ei::pset1<packet<S>>(std::numeric_limits<S>::lowest());
  packet<S> mx = low;
  for_each_packet_at<S>(y, n, [&](Index k, auto c) {
    const packet<S> keep = flag_set<S>(load<S>(f + k, c));
    const packet<S> r = ei::pmul(load<S>(x + k, c), pa);
    store<S>(y + k, select<S>(keep, r, ei::pzero(r)), c);
    // Lanes past a partial packet hold flag 0 (load pads with 0): never counted.
    mx = ei::pmax(mx, select<S>(keep, r, low));
  });
  return ei::predux_max(mx);
}

/// p unchanged, but opaque to -ffast-math's reassociation: (a - m) - b must not become
/// a - (m + b), which absorbs b when |m| is huge. Costs nothing (no instruction).
template <class P>
inline P ordered(P p) {
#if defined(__FAST_MATH__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__x86_64__) || defined(__i386__)
  __asm__("" : "+v"(p));
#elif defined(__aarch64__)
  __asm__("" : "+w"(p));
#endif
#endif
  return p;
}

/// y[k] = (scale * x[k] - m) - b over [0, n) (log-softmax of a run without mask test,
/// b = log of the sum). Two subtractions, in this order: m + b would absorb b when |m| is huge
/// (found by the kernels fuzzer: a row of equal scores near 1e30 summed to 10).
template <class S>
inline void shift(const S* x, Index n, S scale, S m, S b, S* y) {
  const packet<S> ps = ei::pset1<packet<S>>(scale), pm = ei::pset1<packet<S>>(m),
                  pb = ei::pset1<packet<S>>(b);
  for_each_packet_at<S>(y, n, [&](Index k, auto c) {
    store<S>(y + k, ei::psub(ordered(ei::psub(ei::pmul(load<S>(x + k, c), ps), pm)), pb), c);
  });
}

/// y[k] = f[k] != 0 ? (v[k] - m) - b : fill over [0, n).
template <class S>
inline void shift_kept(const S* v, const S* f, Index n, S m, S b, S fill, S* y) {
  const packet<S> pm = ei::pset1<packet<S>>(m), pb = ei::pset1<packet<S>>(b),
                  pf = ei::pset1<packet<S>>(fill);
  for_each_packet_at<S>(y, n, [&](Index k, auto c) {
    const packet<S> r = ei::psub(ordered(ei::psub(load<S>(v + k, c), pm)), pb);
    store<S>(y + k, select<S>(flag_set<S>(load<S>(f + k, c)), r, pf), c);
  });
}

// ---------------------------------------------------------------- non-temporal stores
// Outputs larger than the cache that are not read back at once are written with streaming
// stores: they bypass the cache and cost no read-for-ownership (a plain store first reads the
// line), so writing n bytes moves n bytes instead of 2n. Unaligned head and tail elements use
// plain stores; the caller issues stream_fence() before others read the output.

/// y[0, n) = value, streamed.
template <class S>
inline void stream_fill(S* y, Index n, S value) {
#if EMASK_HAS_STREAM_STORES
#if defined(__AVX512F__)
  constexpr std::uintptr_t align = 64;
#elif defined(__AVX__)
  constexpr std::uintptr_t align = 32;
#else
  constexpr std::uintptr_t align = 16;
#endif
  constexpr Index step = static_cast<Index>(align / sizeof(S));
  Index i = 0;
  while (i < n && (reinterpret_cast<std::uintptr_t>(y + i) & (align - 1)) != 0) y[i++] = value;
  if constexpr (std::is_same<S, float>::value) {
#if defined(__AVX512F__)
    const __m512 p = _mm512_set1_ps(value);
    for (; i + step <= n; i += step) _mm512_stream_ps(y + i, p);
#elif defined(__AVX__)
    const __m256 p = _mm256_set1_ps(value);
    for (; i + step <= n; i += step) _mm256_stream_ps(y + i, p);
#else
    const __m128 p = _mm_set1_ps(value);
    for (; i + step <= n; i += step) _mm_stream_ps(y + i, p);
#endif
  } else {
#if defined(__AVX512F__)
    const __m512d p = _mm512_set1_pd(value);
    for (; i + step <= n; i += step) _mm512_stream_pd(y + i, p);
#elif defined(__AVX__)
    const __m256d p = _mm256_set1_pd(value);
    for (; i + step <= n; i += step) _mm256_stream_pd(y + i, p);
#else
    const __m128d p = _mm_set1_pd(value);
    for (; i + step <= n; i += step) _mm_stream_pd(y + i, p);
#endif
  }
  for (; i < n; ++i) y[i] = value;
#else
  std::fill(y, y + n, value);
#endif
}

/// Orders earlier streaming stores before later stores (a no-op without them).
inline void stream_fence() {
#if EMASK_HAS_STREAM_STORES
  _mm_sfence();
#endif
}

}  // namespace simd
}  // namespace detail
EMASK_NAMESPACE_END
