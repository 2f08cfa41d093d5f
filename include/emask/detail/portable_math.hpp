/// \file
/// \brief exp, log and cos(pi r / 2) that give the same bits on every machine, compiler and flag
/// set, for the random maskers whose draws pass through them (BEiT's aspect ratio, MaskGIT's
/// cosine schedule). std::exp / std::log / std::cos are not enough: libms differ by an ulp, and an
/// ulp can move a round() or a ceil() and so change a mask.
///
/// Each function is a range reduction by exact operations (frexp, ldexp, 1 - r, products by
/// constants) followed by a Taylor polynomial evaluated by Horner's rule with explicit std::fma.
/// An explicit fma is correctly rounded everywhere and a compiler cannot contract or reorder it
/// (not even under -ffast-math), while `a * b + c` may or may not become an fma depending on
/// -march. No expression here has that shape. Accuracy: within 3 ulps of the true value
/// (tests/test_portable_math.cpp); only reproducibility is promised bit for bit.
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/portable_math.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif

#include <cmath>
#include <limits>

#include "emask/detail/ieee.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

/// Horner's rule with explicit fma: c[0] + x (c[1] + x (c[2] + ...)), N coefficients.
template <int N>
inline double horner_fma(double x, const double (&c)[N]) noexcept {
  double acc = c[N - 1];
  for (int i = N - 2; i >= 0; --i) acc = std::fma(acc, x, c[i]);
  return acc;
}

// ln 2 split so that n * ln2_hi is exact for |n| < 2^11 (its low 32 bits are zero).
constexpr double ln2_hi = 6.93147180369123816490e-01;
constexpr double ln2_lo = 1.90821492927058770002e-10;
constexpr double inv_ln2 = 1.44269504088896338700e+00;

/// e^x. NaN gives NaN, overflow +inf, underflow 0.
inline double portable_exp(double x) noexcept {
  if (is_nan(x)) return x;  // from the bits: -ffast-math may fold x != x away
  if (x > 709.782712893384) return std::numeric_limits<double>::infinity();
  if (x < -745.2) return 0.0;
  // x = n ln2 + r with |r| <= ln2 / 2 (slightly more at ties): n = round(x / ln2).
  const double n = std::floor(std::fma(x, inv_ln2, 0.5));
  const double r = std::fma(-n, ln2_lo, std::fma(-n, ln2_hi, x));
  // Taylor to r^14 / 14!: the remainder is below 2^-60 for |r| <= 0.35.
  static constexpr double c[] = {1.0,
                                 1.0,
                                 1.0 / 2,
                                 1.0 / 6,
                                 1.0 / 24,
                                 1.0 / 120,
                                 1.0 / 720,
                                 1.0 / 5040,
                                 1.0 / 40320,
                                 1.0 / 362880,
                                 1.0 / 3628800,
                                 1.0 / 39916800,
                                 1.0 / 479001600,
                                 1.0 / 6227020800.0,
                                 1.0 / 87178291200.0};
  const double er = horner_fma(r, c);
  // ldexp is exact except in the subnormal range, where it rounds once (the same everywhere).
  return std::ldexp(er, static_cast<int>(n));
}

/// Natural log. x < 0 or NaN gives NaN, 0 gives -inf, +inf gives +inf.
inline double portable_log(double x) noexcept {
  if (is_nan(x) || x < 0.0) return std::numeric_limits<double>::quiet_NaN();
  if (x == 0.0) return -std::numeric_limits<double>::infinity();
  if (is_inf(x)) return x;
  int e = 0;
  double m = std::frexp(x, &e);  // x = m 2^e, m in [0.5, 1), exact
  if (m < 0.70710678118654752440) {
    m *= 2.0;  // exact
    --e;
  }
  // log m = 2 atanh(f), f = (m - 1) / (m + 1), |f| <= 0.1716: odd series to f^23.
  const double f = (m - 1.0) / (m + 1.0);  // m - 1 is exact (Sterbenz); one rounding each
  const double f2 = f * f;
  static constexpr double c[] = {2.0,      2.0 / 3,  2.0 / 5,  2.0 / 7,  2.0 / 9,  2.0 / 11,
                                 2.0 / 13, 2.0 / 15, 2.0 / 17, 2.0 / 19, 2.0 / 21, 2.0 / 23};
  const double log_m = f * horner_fma(f2, c);
  const double de = static_cast<double>(e);
  return std::fma(de, ln2_hi, std::fma(de, ln2_lo, log_m));
}

/// cos(pi r / 2) for r in [0, 1] (MaskGIT's cosine schedule): exactly 1 at r = 0 and exactly 0 at
/// r = 1. Outside [0, 1] it is clamped; NaN gives NaN.
inline double portable_cos_half_pi(double r) noexcept {
  if (is_nan(r)) return r;
  if (r <= 0.0) return 1.0;
  if (r >= 1.0) return 0.0;
  constexpr double half_pi = 1.57079632679489661923;
  // cos(pi r / 2) = sin(pi (1 - r) / 2); 1 - r is exact for r in [0.5, 1]. Reduced angle <= pi/4.
  const bool use_sin = r > 0.5;
  const double x = (use_sin ? 1.0 - r : r) * half_pi;
  const double x2 = x * x;
  if (use_sin) {
    static constexpr double s[] = {1.0,
                                   -1.0 / 6,
                                   1.0 / 120,
                                   -1.0 / 5040,
                                   1.0 / 362880,
                                   -1.0 / 39916800,
                                   1.0 / 6227020800.0,
                                   -1.0 / 1307674368000.0,
                                   1.0 / 355687428096000.0};
    return x * horner_fma(x2, s);
  }
  static constexpr double c[] = {1.0,
                                 -1.0 / 2,
                                 1.0 / 24,
                                 -1.0 / 720,
                                 1.0 / 40320,
                                 -1.0 / 3628800,
                                 1.0 / 479001600,
                                 -1.0 / 87178291200.0,
                                 1.0 / 20922789888000.0,
                                 -1.0 / 6402373705728000.0};
  return horner_fma(x2, c);
}

}  // namespace detail
EMASK_NAMESPACE_END
