// The byte decoder shared by the libFuzzer harnesses: every input is valid, because an exhausted
// input reads as zeros; special_value() maps one byte to the values that break kernels
// (+-infinity, NaN, +-1e38, denormals, 0, +-88) or to a small float built from two more bytes.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include <emask/config.hpp>

namespace emask_fuzz {

using emask::Index;

class byte_source {
 public:
  byte_source(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
  std::uint8_t byte() { return i_ < n_ ? p_[i_++] : 0; }
  Index between(Index lo, Index hi) {
    const auto span = static_cast<std::uint64_t>(hi - lo) + 1;
    std::uint64_t v = byte();
    if (span > 256) v = (v << 8) | byte();
    if (span > 65536) v = (v << 16) | (std::uint64_t(byte()) << 8) | byte();
    return lo + static_cast<Index>(v % span);
  }
  double uniform() { return (byte() + byte() / 256.0) / 256.0; }
  bool coin(double p = 0.5) { return uniform() < p; }
  /// True with probability p; false for an exhausted input.
  bool rare(double p) { return !coin(1.0 - p); }
  /// A seed or sample id: small, near 2^32 (the high word of the counter), or any 64-bit value.
  std::uint64_t u64() {
    switch (byte() % 4) {
      case 0: return byte();
      case 1: return 0xFFFFFFFFull - byte() % 8;
      case 2: return (std::uint64_t(byte()) << 8) | byte();
      default: {
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v = (v << 8) | byte();
        return v;
      }
    }
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t i_ = 0;
};

/// One value from the input: a special value (non-finite ones only when allow_nonfinite) or a
/// small float in [-32, 32) in steps of 1/1024.
inline double special_value(byte_source& s, bool allow_nonfinite) {
  const std::uint8_t c = s.byte();
  const double inf = std::numeric_limits<double>::infinity();
  switch (c % 16) {
    case 0: return allow_nonfinite ? inf : 1.0;
    case 1: return allow_nonfinite ? -inf : -1.0;
    case 2: return allow_nonfinite ? std::nan("") : 0.5;
    case 3: return 1e38;
    case 4: return -1e38;
    case 5: return 1e-40;  // a float denormal
    case 6: return -1e-45;
    case 7: return 0.0;
    case 8: return 88.0;
    case 9: return -88.0;
    default: {
      const int raw = (s.byte() << 8) | s.byte();
      return (raw - 32768) / 1024.0;
    }
  }
}

}  // namespace emask_fuzz
