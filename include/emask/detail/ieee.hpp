/// \file
/// \brief Floating-point classification from the bit pattern.
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/ieee.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif
// Floating-point classification from the bit pattern. Argument checks use these instead of
// std::isnan / std::isfinite, which -ffast-math (-ffinite-math-only) lets the compiler fold to
// constants: a NaN scale or probability must be rejected in such builds too.

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "emask/config.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

template <class S>
struct ieee_layout;
template <>
struct ieee_layout<float> {
  using bits = std::uint32_t;
  static constexpr bits exponent = 0x7f800000u;  // all exponent bits: infinity
  static constexpr bits magnitude = 0x7fffffffu;
};
template <>
struct ieee_layout<double> {
  using bits = std::uint64_t;
  static constexpr bits exponent = 0x7ff0000000000000ull;
  static constexpr bits magnitude = 0x7fffffffffffffffull;
};

/// The bits of |x|.
template <class S>
typename ieee_layout<S>::bits magnitude_bits(S x) noexcept {
  typename ieee_layout<S>::bits u;
  std::memcpy(&u, &x, sizeof u);
  return u & ieee_layout<S>::magnitude;
}

/// NaN, whatever the floating-point flags of the translation unit.
template <class S>
bool is_nan(S x) noexcept {
  return magnitude_bits(x) > ieee_layout<S>::exponent;
}

/// Neither NaN nor infinite, whatever the floating-point flags of the translation unit.
template <class S>
bool is_finite(S x) noexcept {
  return magnitude_bits(x) < ieee_layout<S>::exponent;
}

/// +-infinity, whatever the floating-point flags of the translation unit.
template <class S>
bool is_inf(S x) noexcept {
  return magnitude_bits(x) == ieee_layout<S>::exponent;
}

/// Whether x[0, n) holds a NaN, whatever the floating-point flags of the translation unit.
template <class S>
bool any_nan(const S* x, Eigen::Index n) noexcept {
  for (Eigen::Index i = 0; i < n; ++i)
    if (is_nan(x[i])) return true;
  return false;
}

/// -infinity exactly, whatever the floating-point flags of the translation unit.
template <class S>
bool is_neg_inf(S x) noexcept {
  typename ieee_layout<S>::bits u;
  std::memcpy(&u, &x, sizeof u);
  return u == (ieee_layout<S>::exponent | ~ieee_layout<S>::magnitude);
}

/// -infinity built from its bit pattern: a stored constant that no -ffast-math folding can
/// turn into arithmetic. Only ever written to outputs, never computed with.
template <class S>
inline S negative_infinity() noexcept {
  static_assert(std::is_same<S, float>::value || std::is_same<S, double>::value,
                "emask: negative_infinity is defined for float and double");
  S s;
  if constexpr (sizeof(S) == 4) {
    const std::uint32_t bits = 0xFF800000u;
    std::memcpy(&s, &bits, sizeof s);
  } else {
    const std::uint64_t bits = 0xFFF0000000000000ull;
    std::memcpy(&s, &bits, sizeof s);
  }
  return s;
}

}  // namespace detail
EMASK_NAMESPACE_END
