// The reproducible exp / log / cos(pi r / 2) of detail/portable_math.hpp: accuracy against the
// libm in long double, exact special values, and pinned bit patterns that any change of the
// evaluation (an fma contracted differently, a reordered polynomial) would move.
#include <emask/random/distributions.hpp>

#include <emask/detail/portable_math.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "catch.hpp"

namespace {
using namespace emask;

std::uint64_t bits_of(double x) {
  std::uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// Distance in ulps between a double and a long double reference.
double ulps(double got, long double want) {
  const double w = static_cast<double>(want);
  if (w == 0.0) return std::fabs(got) / std::numeric_limits<double>::denorm_min();
  const double ulp =
      std::nextafter(std::fabs(w), std::numeric_limits<double>::infinity()) - std::fabs(w);
  return static_cast<double>(std::fabs(static_cast<long double>(got) - want)) / ulp;
}

// Inputs spread over a range from Philox words (the same on every run).
double draw(std::uint64_t i, double lo, double hi) {
  const philox_block w = random_block(99, i, purpose::user, 0);
  return lo + (hi - lo) * uniform_double(w[0], w[1]);
}
}  // namespace

TEST_CASE("portable_exp: within 2 ulps of expl, special values", "[random][portable_math]") {
  double worst = 0.0;
  for (std::uint64_t i = 0; i < 200000; ++i) {
    const double x = draw(i, -740.0, 709.0);
    worst = (std::max)(worst, ulps(detail::portable_exp(x), std::exp(static_cast<long double>(x))));
  }
  for (std::uint64_t i = 0; i < 200000; ++i) {
    const double x = draw(i, -2.0, 2.0);
    worst = (std::max)(worst, ulps(detail::portable_exp(x), std::exp(static_cast<long double>(x))));
  }
  CHECK(worst <= 2.0);
  CHECK(detail::portable_exp(0.0) == 1.0);
  CHECK(detail::portable_exp(1000.0) == std::numeric_limits<double>::infinity());
  CHECK(detail::portable_exp(-1000.0) == 0.0);
  CHECK(std::isnan(detail::portable_exp(std::numeric_limits<double>::quiet_NaN())));
}

TEST_CASE("portable_log: within 3 ulps of logl, special values", "[random][portable_math]") {
  double worst = 0.0;
  for (std::uint64_t i = 0; i < 200000; ++i) {
    const double x = std::ldexp(draw(i, 0.5, 1.0), static_cast<int>(i % 200) - 100);
    worst = (std::max)(worst, ulps(detail::portable_log(x), std::log(static_cast<long double>(x))));
  }
  for (std::uint64_t i = 0; i < 200000; ++i) {
    const double x = draw(i, 0.25, 4.0);
    const double got = detail::portable_log(x);
    // Near x = 1 the result is tiny: measure against an absolute bound there instead.
    if (std::fabs(x - 1.0) > 1e-3) worst = (std::max)(worst, ulps(got, std::log((long double)x)));
    CHECK(std::fabs(got - static_cast<double>(std::log(static_cast<long double>(x)))) < 1e-15);
  }
  CHECK(worst <= 3.0);  // f = (m - 1) / (m + 1) is rounded once before the series
  CHECK(detail::portable_log(1.0) == 0.0);
  CHECK(detail::portable_log(2.0) == std::log(2.0));
  CHECK(detail::portable_log(0.0) == -std::numeric_limits<double>::infinity());
  CHECK(std::isnan(detail::portable_log(-1.0)));
  CHECK(detail::portable_log(std::numeric_limits<double>::infinity()) ==
        std::numeric_limits<double>::infinity());
}

TEST_CASE("portable_cos_half_pi: within 3 ulps of cosl, exact ends", "[random][portable_math]") {
  double worst_rel = 0.0;
  const long double pi = 3.141592653589793238462643383279502884L;
  for (std::uint64_t i = 0; i < 200000; ++i) {
    const double r = draw(i, 0.0, 1.0);
    // Near r = 1 cosl(pi r / 2) itself loses digits (its argument is rounded near a zero), so
    // the reference there is sinl(pi (1 - r) / 2), with 1 - r exact.
    const long double want = r > 0.5 ? std::sin(pi * (1.0L - static_cast<long double>(r)) / 2)
                                     : std::cos(pi * static_cast<long double>(r) / 2);
    worst_rel = (std::max)(worst_rel, ulps(detail::portable_cos_half_pi(r), want));
  }
  CHECK(worst_rel <= 3.0);  // the reduced angle x = s pi / 2 is rounded once
  CHECK(detail::portable_cos_half_pi(0.0) == 1.0);
  CHECK(detail::portable_cos_half_pi(1.0) == 0.0);
  CHECK(detail::portable_cos_half_pi(-3.0) == 1.0);
  CHECK(detail::portable_cos_half_pi(7.0) == 0.0);
  CHECK_THAT(detail::portable_cos_half_pi(1.0 / 3), WithinAbs(std::sqrt(3.0) / 2, 1e-16));
  CHECK_THAT(detail::portable_cos_half_pi(0.5), WithinAbs(std::sqrt(0.5), 1e-16));
  // Monotone non-increasing on a fine grid (a schedule must never go up).
  double prev = 2.0;
  bool monotone = true;
  for (int k = 0; k <= 1 << 16; ++k) {
    const double v = detail::portable_cos_half_pi(k / 65536.0);
    monotone = monotone && v <= prev;
    prev = v;
  }
  CHECK(monotone);
}

TEST_CASE("portable math: pinned bits (the same on every machine and flag set)",
          "[random][portable_math]") {
  // Computed once on x86-64 (g++ 12 at -O0, -O2, -O2 -march=native, -O3 -ffast-math -march=native
  // and clang++ 14 -march=native all agree); any change of the evaluation order or of an fma shows
  // here. Each pinned value is also the correctly rounded result or its neighbour (checked against
  // long double above).
  CHECK(bits_of(detail::portable_exp(0.5)) == 0x3FFA61298E1E069CULL);
  CHECK(bits_of(detail::portable_exp(-3.3)) == 0x3FA2E259BB85BE85ULL);
  CHECK(bits_of(detail::portable_log(0.3)) == 0xBFF34378FCBDA721ULL);
  CHECK(bits_of(detail::portable_log(1e10)) == 0x4037069E2AA2AA5BULL);
  CHECK(bits_of(detail::portable_cos_half_pi(0.3)) == 0x3FEC83201D3D2C6DULL);
  CHECK(bits_of(detail::portable_cos_half_pi(0.9)) == 0x3FC4060B67A85374ULL);
}
