/// \file
/// \brief Storage types of KV caches (float, Eigen::bfloat16, Eigen::half) and their conversion
/// to and from float, with a native path (AVX-512 integer shifts for bfloat16, AVX-512
/// vcvtph2ps / vcvtps2ph for half) and a portable scalar path.
///
/// bfloat16 -> float and half -> float are exact (every value of the narrow type is a float), so
/// both paths give the same bits (checked over all 65536 patterns by the tests; a NaN keeps its
/// payload and half NaNs are made quiet, as vcvtph2ps does). float -> bfloat16 and float -> half
/// round to nearest even on both paths, with the same bits; bfloat16 keeps subnormals, so the
/// native path uses integer AVX-512 instructions rather than vcvtneps2bf16, which flushes
/// subnormal inputs and outputs to zero. The half rounding is F. Giesen's
/// float_to_half_fast3_rtne (public domain). With -ffast-math (DAZ), float subnormals read from a
/// bfloat16 cache count as zero in arithmetic, on both paths.
///
/// kv_f32x16 is the 16-float register the KV kernel computes with: one __m512 with AVX-512F, a
/// float[16] otherwise (the portable build; its dot products group the products the same way but
/// may or may not contract the multiply-adds, see attn_kv.hpp for the bound).
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/kv_convert.hpp is private to emask: include a public header (such as <emask/kernels/kv_cache.hpp>)"
#endif

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "emask/core/types.hpp"

#if defined(__AVX512F__) && !defined(EMASK_NO_SIMD)
#include <immintrin.h>
#define EMASK_KV_AVX512 1
#else
#define EMASK_KV_AVX512 0
#endif

// The loops over the query rows and packets of a register block must be unrolled, or GCC keeps
// the accumulators in memory (a store-to-load round trip per multiply-add: 10x slower).
#if defined(__GNUC__)
#define EMASK_KV_UNROLL _Pragma("GCC unroll 16")
#else
#define EMASK_KV_UNROLL
#endif

EMASK_NAMESPACE_BEGIN
namespace detail {

/// Whether T is a KV-cache storage type of masked_attention_decode.
template <class T>
inline constexpr bool kv_decode_storage_v =
    std::is_same<T, float>::value || std::is_same<T, Eigen::bfloat16>::value ||
    std::is_same<T, Eigen::half>::value;

inline std::uint32_t kv_float_bits(float x) noexcept {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
inline float kv_bits_float(std::uint32_t u) noexcept {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
template <class T>
inline std::uint16_t kv_raw(const T& x) noexcept {
  static_assert(sizeof(T) == 2, "two-byte storage types only");
  std::uint16_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
template <class T>
inline T kv_from_raw(std::uint16_t u) noexcept {
  T x;
  std::memcpy(static_cast<void*>(&x), &u, sizeof x);  // bfloat16 / half: 16 raw bits
  return x;
}

// ---- portable scalar conversions ----

/// bfloat16 bits -> float: the high half of the float's bits (exact).
inline float bf16_to_float_portable(std::uint16_t h) noexcept {
  return kv_bits_float(static_cast<std::uint32_t>(h) << 16);
}
/// float -> bfloat16 bits, round to nearest even; NaN stays NaN (made quiet).
inline std::uint16_t float_to_bf16_portable(float f) noexcept {
  const std::uint32_t x = kv_float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  const std::uint32_t r = x + 0x7fffu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>(r >> 16);
}
/// half bits -> float (exact); a NaN keeps its payload and is made quiet.
inline float half_to_float_portable(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t e = (static_cast<std::uint32_t>(h) >> 10) & 0x1fu;
  std::uint32_t m = h & 0x3ffu;
  std::uint32_t bits;
  if (e == 0) {
    if (m == 0) {
      bits = sign;
    } else {  // subnormal: m 2^-24, normalized
      std::uint32_t shift = 0;
      while ((m & 0x400u) == 0) {
        m <<= 1;
        ++shift;
      }
      bits = sign | ((113u - shift) << 23) | ((m & 0x3ffu) << 13);
    }
  } else if (e == 31) {
    bits = sign | 0x7f800000u | (m << 13) | (m != 0 ? 0x400000u : 0u);
  } else {
    bits = sign | ((e + 112u) << 23) | (m << 13);
  }
  return kv_bits_float(bits);
}
/// float -> half bits, round to nearest even (F. Giesen, float_to_half_fast3_rtne); NaN stays
/// NaN (quiet, payload truncated, as vcvtps2ph does).
inline std::uint16_t float_to_half_portable(float f) noexcept {
  std::uint32_t x = kv_float_bits(f);
  const std::uint32_t sign = x & 0x80000000u;
  x ^= sign;
  std::uint32_t o;
  if (x >= (127u + 16u) << 23) {  // 65536 and up, inf, NaN
    o = x > 0x7f800000u ? (0x7e00u | ((x >> 13) & 0x3ffu)) : 0x7c00u;
  } else if (x < (113u << 23)) {  // below 2^-14: a half subnormal, rounded by one float add
    const float magic = kv_bits_float(((127u - 15u) + (23u - 10u) + 1u) << 23);
    volatile float sum = kv_bits_float(x);  // volatile: the add is kept under -ffast-math
    sum = sum + magic;
    o = kv_float_bits(sum) - kv_float_bits(magic);
  } else {
    const std::uint32_t odd = (x >> 13) & 1u;
    x += ((15u - 127u) << 23) + 0xfffu;
    x += odd;
    o = x >> 13;
  }
  return static_cast<std::uint16_t>(o | (sign >> 16));
}

// ---- the 16-float register ----

#if EMASK_KV_AVX512
struct kv_f32x16 {
  __m512 v;
};
// The zero-masking forms of the intrinsics: GCC 12 warns (-Wmaybe-uninitialized) about the
// _mm512_undefined operand of the plain forms at -O1.
constexpr __mmask16 kv_all16 = 0xffff;
inline kv_f32x16 kv_zero() noexcept { return {_mm512_setzero_ps()}; }
inline kv_f32x16 kv_set1(float x) noexcept { return {_mm512_set1_ps(x)}; }
inline kv_f32x16 kv_fmadd(kv_f32x16 a, kv_f32x16 b, kv_f32x16 c) noexcept {
  return {_mm512_fmadd_ps(a.v, b.v, c.v)};
}
inline kv_f32x16 kv_add(kv_f32x16 a, kv_f32x16 b) noexcept { return {_mm512_add_ps(a.v, b.v)}; }
/// The sums of four registers: halves folded (lane i + lane i + 8, then i + 4), then
/// (l0 + l1) + (l2 + l3) by two rounds of horizontal adds.
inline void kv_reduce4(const kv_f32x16* a, float* out) noexcept {
  __m128 x[4];
  EMASK_KV_UNROLL
  for (int r = 0; r < 4; ++r) {
    const __m256 lo =
        _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, _mm512_castps_pd(a[r].v), 0));
    const __m256 hi =
        _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, _mm512_castps_pd(a[r].v), 1));
    const __m256 s8 = _mm256_add_ps(lo, hi);
    x[r] = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  }
  _mm_storeu_ps(out, _mm_hadd_ps(_mm_hadd_ps(x[0], x[1]), _mm_hadd_ps(x[2], x[3])));
}
inline void kv_store16(float* p, kv_f32x16 a) noexcept { _mm512_storeu_ps(p, a.v); }
inline kv_f32x16 kv_load16(const float* p) noexcept { return {_mm512_loadu_ps(p)}; }
/// 16 bfloat16 -> 16 floats: zero-extend to 32 bits and shift into the high half (exact).
inline kv_f32x16 kv_load16(const Eigen::bfloat16* p) noexcept {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return {_mm512_castsi512_ps(
      _mm512_maskz_slli_epi32(kv_all16, _mm512_maskz_cvtepu16_epi32(kv_all16, h), 16))};
}
/// 16 half -> 16 floats: vcvtph2ps (exact).
inline kv_f32x16 kv_load16(const Eigen::half* p) noexcept {
  return {_mm512_maskz_cvtph_ps(kv_all16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))};
}
/// 16 floats -> 16 bfloat16, round to nearest even with the portable path's integer steps.
inline void kv_store16(Eigen::bfloat16* p, kv_f32x16 a) noexcept {
  const __m512i x = _mm512_castps_si512(a.v);
  const __m512i lsb =
      _mm512_and_si512(_mm512_maskz_srli_epi32(kv_all16, x, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_maskz_srli_epi32(
      kv_all16, _mm512_add_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(0x7fff)), lsb), 16);
  const __m512i qnan =
      _mm512_or_si512(_mm512_maskz_srli_epi32(kv_all16, x, 16), _mm512_set1_epi32(0x40));
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(x, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                      _mm512_maskz_cvtepi32_epi16(kv_all16, _mm512_mask_mov_epi32(r, nan, qnan)));
}
/// 16 floats -> 16 half: vcvtps2ph, round to nearest even.
inline void kv_store16(Eigen::half* p, kv_f32x16 a) noexcept {
  _mm256_storeu_si256(
      reinterpret_cast<__m256i*>(p),
      _mm512_maskz_cvtps_ph(kv_all16, a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
#else
struct kv_f32x16 {
  float v[16];
};
inline kv_f32x16 kv_zero() noexcept { return kv_f32x16{}; }
inline kv_f32x16 kv_set1(float x) noexcept {
  kv_f32x16 r;
  for (int i = 0; i < 16; ++i) r.v[i] = x;
  return r;
}
inline kv_f32x16 kv_fmadd(kv_f32x16 a, kv_f32x16 b, kv_f32x16 c) noexcept {
  for (int i = 0; i < 16; ++i) c.v[i] += a.v[i] * b.v[i];
  return c;
}
inline kv_f32x16 kv_add(kv_f32x16 a, kv_f32x16 b) noexcept {
  for (int i = 0; i < 16; ++i) a.v[i] += b.v[i];
  return a;
}
/// The sums of four registers, in the AVX-512 path's order.
inline void kv_reduce4(const kv_f32x16* a, float* out) noexcept {
  for (int r = 0; r < 4; ++r) {
    float t[8];
    for (int i = 0; i < 8; ++i) t[i] = a[r].v[i] + a[r].v[i + 8];
    for (int i = 0; i < 4; ++i) t[i] += t[i + 4];
    out[r] = (t[0] + t[1]) + (t[2] + t[3]);
  }
}
inline void kv_store16(float* p, kv_f32x16 a) noexcept { std::memcpy(p, a.v, sizeof a.v); }
inline kv_f32x16 kv_load16(const float* p) noexcept {
  kv_f32x16 r;
  std::memcpy(r.v, p, sizeof r.v);
  return r;
}
inline kv_f32x16 kv_load16(const Eigen::bfloat16* p) noexcept {
  kv_f32x16 r;
  for (int i = 0; i < 16; ++i) r.v[i] = bf16_to_float_portable(kv_raw(p[i]));
  return r;
}
inline kv_f32x16 kv_load16(const Eigen::half* p) noexcept {
  kv_f32x16 r;
  for (int i = 0; i < 16; ++i) r.v[i] = half_to_float_portable(kv_raw(p[i]));
  return r;
}
inline void kv_store16(Eigen::bfloat16* p, kv_f32x16 a) noexcept {
  for (int i = 0; i < 16; ++i) p[i] = kv_from_raw<Eigen::bfloat16>(float_to_bf16_portable(a.v[i]));
}
inline void kv_store16(Eigen::half* p, kv_f32x16 a) noexcept {
  for (int i = 0; i < 16; ++i) p[i] = kv_from_raw<Eigen::half>(float_to_half_portable(a.v[i]));
}
#endif

/// One element -> float, portable (the scalar tails; the same values as kv_load16).
inline float kv_elem_float(float x) noexcept { return x; }
inline float kv_elem_float(Eigen::bfloat16 x) noexcept { return bf16_to_float_portable(kv_raw(x)); }
inline float kv_elem_float(Eigen::half x) noexcept { return half_to_float_portable(kv_raw(x)); }

/// float -> T, one element, portable (the same values as kv_store16).
template <class T>
inline T kv_elem_from_float(float x) noexcept {
  if constexpr (std::is_same<T, float>::value) {
    return x;
  } else if constexpr (std::is_same<T, Eigen::bfloat16>::value) {
    return kv_from_raw<T>(float_to_bf16_portable(x));
  } else {
    return kv_from_raw<T>(float_to_half_portable(x));
  }
}

/// dst[0, n) = float(src[0, n)), native path.
template <class T>
inline void kv_widen_n(const T* src, Index n, float* dst) noexcept {
  const Index n16 = n / 16 * 16;
  for (Index i = 0; i < n16; i += 16) kv_store16(dst + i, kv_load16(src + i));
  for (Index i = n16; i < n; ++i) dst[i] = kv_elem_float(src[i]);
}
/// dst[0, n) = T(src[0, n)) rounded to nearest even, native path.
template <class T>
inline void kv_narrow_n(const float* src, Index n, T* dst) noexcept {
  const Index n16 = n / 16 * 16;
  for (Index i = 0; i < n16; i += 16) kv_store16(dst + i, kv_load16(src + i));
  for (Index i = n16; i < n; ++i) dst[i] = kv_elem_from_float<T>(src[i]);
}

}  // namespace detail
EMASK_NAMESPACE_END
