// emask::detail::is_nan / is_finite / is_inf classify from the bit pattern, so argument checks
// reject NaN also in -ffast-math builds (the fast_math CI row builds this file with it). The
// expected classes are written out, never computed with std::isnan & co.
#include <cstdint>
#include <cstring>
#include <limits>

#include <emask/config.hpp>  // before the private header below
#include <emask/detail/ieee.hpp>

#include "catch.hpp"

namespace {

template <class S, class U>
S from_bits(U u) {
  static_assert(sizeof(S) == sizeof(U), "same width");
  S x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

struct expected_class {
  bool nan, finite, inf;
};

template <class S>
void check_class(S x, expected_class e) {
  INFO("a " << sizeof(S) * 8 << "-bit value: " << x);
  CHECK(emask::detail::is_nan(x) == e.nan);
  CHECK(emask::detail::is_finite(x) == e.finite);
  CHECK(emask::detail::is_inf(x) == e.inf);
}

constexpr expected_class finite_value{false, true, false};
constexpr expected_class infinite{false, false, true};
constexpr expected_class not_a_number{true, false, false};

}  // namespace

TEST_CASE("ieee: float classes from the bit pattern", "[ieee]") {
  using L = std::numeric_limits<float>;
  for (float x : {0.0f, -0.0f, 1.0f, -1.5f, L::denorm_min(), -L::denorm_min(), L::min(), L::max(),
                  L::lowest(), 1e38f, 3.0e-39f})
    check_class(x, finite_value);
  check_class(from_bits<float>(std::uint32_t{0x7f800000u}), infinite);      // +inf
  check_class(from_bits<float>(std::uint32_t{0xff800000u}), infinite);      // -inf
  check_class(from_bits<float>(std::uint32_t{0x7f7fffffu}), finite_value);  // max
  check_class(from_bits<float>(std::uint32_t{0x7fc00000u}), not_a_number);  // quiet NaN
  check_class(from_bits<float>(std::uint32_t{0xffc00000u}), not_a_number);  // negative NaN
  check_class(from_bits<float>(std::uint32_t{0x7f800001u}), not_a_number);  // signaling, payload 1
  check_class(from_bits<float>(std::uint32_t{0xffffffffu}), not_a_number);  // all ones
  check_class(L::infinity(), infinite);
  check_class(L::quiet_NaN(), not_a_number);
}

TEST_CASE("ieee: double classes from the bit pattern", "[ieee]") {
  using L = std::numeric_limits<double>;
  for (double x :
       {0.0, -0.0, 1.0, -1.5, L::denorm_min(), L::min(), L::max(), L::lowest(), 1e300, 1e-310})
    check_class(x, finite_value);
  check_class(from_bits<double>(std::uint64_t{0x7ff0000000000000ull}), infinite);
  check_class(from_bits<double>(std::uint64_t{0xfff0000000000000ull}), infinite);
  check_class(from_bits<double>(std::uint64_t{0x7fefffffffffffffull}), finite_value);
  check_class(from_bits<double>(std::uint64_t{0x7ff8000000000000ull}), not_a_number);
  check_class(from_bits<double>(std::uint64_t{0xfff8000000000000ull}), not_a_number);
  check_class(from_bits<double>(std::uint64_t{0x7ff0000000000001ull}), not_a_number);
  check_class(from_bits<double>(std::uint64_t{0xffffffffffffffffull}), not_a_number);
  check_class(L::infinity(), infinite);
  check_class(L::quiet_NaN(), not_a_number);
}
