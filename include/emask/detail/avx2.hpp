/// \file
/// \brief The few AVX2 operations of the run-time dispatched paths (Philox, MLM selection).
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/avx2.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif
// Written with the compilers' vector extensions and the builtins behind the intrinsics instead
// of <immintrin.h>: with GCC that header declares every x86 extension (AVX-512, AMX, ...) and
// cost a translation unit that includes <emask/emask.hpp> about a quarter of its compile time,
// for code that runs only where a build for plain x86-64 finds AVX2 at run time. Only x86-64
// GCC and clang get here (EMASK_HAS_AVX2_DISPATCH); both have these builtins.

#include <cstring>

#include "emask/config.hpp"

#if EMASK_HAS_AVX2_DISPATCH

// Every function here runs inside a target("avx2") caller and is inlined into it.
#define EMASK_AVX2 __attribute__((target("avx2"), always_inline)) inline

EMASK_NAMESPACE_BEGIN
namespace detail {
namespace avx2 {

typedef int i32x8 __attribute__((vector_size(32)));
typedef unsigned int u32x8 __attribute__((vector_size(32)));
typedef unsigned long long u64x4 __attribute__((vector_size(32)));
typedef float f32x8 __attribute__((vector_size(32)));

template <class V>
EMASK_AVX2 V load(const void* p) noexcept {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class V>
EMASK_AVX2 void store(void* p, V v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

/// The 64-bit products of the even 32-bit lanes (vpmuludq).
EMASK_AVX2 u64x4 mul_even(u32x8 a, u32x8 b) noexcept {
  return (u64x4)__builtin_ia32_pmuludq256((i32x8)a, (i32x8)b);
}

/// Bit l set where lane l of \p m has its sign bit set (vmovmskps).
EMASK_AVX2 unsigned movemask(i32x8 m) noexcept {
  return static_cast<unsigned>(__builtin_ia32_movmskps256((f32x8)m));
}

/// base + idx[l] bytes, eight 32-bit loads (vpgatherdd with scale 1).
EMASK_AVX2 i32x8 gather_bytes(const int* base, i32x8 idx) noexcept {
#if defined(__clang__)
  return (i32x8)__builtin_ia32_gatherd_d256(i32x8{}, base, idx, ~i32x8{}, 1);
#else
  return (i32x8)__builtin_ia32_gathersiv8si(i32x8{}, base, idx, ~i32x8{}, 1);
#endif
}

/// Lanes of a and b picked by eight constant indices (0..7 from a, 8..15 from b).
#if defined(__clang__)
#define EMASK_AVX2_SHUFFLE(a, b, i0, i1, i2, i3, i4, i5, i6, i7) \
  __builtin_shufflevector(a, b, i0, i1, i2, i3, i4, i5, i6, i7)
#else
#define EMASK_AVX2_SHUFFLE(a, b, i0, i1, i2, i3, i4, i5, i6, i7) \
  __builtin_shuffle(a, b, ::emask::detail::avx2::u32x8{i0, i1, i2, i3, i4, i5, i6, i7})
#endif

}  // namespace avx2
}  // namespace detail
EMASK_NAMESPACE_END

#endif  // EMASK_HAS_AVX2_DISPATCH
