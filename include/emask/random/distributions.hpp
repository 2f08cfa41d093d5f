/// \file
/// \brief emask's own conversions from Philox words to uniform floats, bounded integers,
/// Bernoulli and geometric draws, and argsort of uniform noise. All integer arithmetic or exact
/// floating-point operations, so every platform gives the same values bit for bit. No
/// std::*_distribution (their output differs between standard libraries).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "emask/core/types.hpp"
#include "emask/error.hpp"
#include "emask/random/philox.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Uniform float in [0, 1) from the top 24 bits of \p w: (w >> 8) * 2^-24. Exact.
constexpr float uniform_float(std::uint32_t w) noexcept {
  return static_cast<float>(w >> 8) * (1.0f / 16777216.0f);
}

/// \brief Uniform double in [0, 1) from 53 bits: the top 32 bits of \p first followed by the top
/// 21 bits of \p second, times 2^-53. Exact.
constexpr double uniform_double(std::uint32_t first, std::uint32_t second) noexcept {
  const std::uint64_t bits = (static_cast<std::uint64_t>(first) << 21) | (second >> 11);
  return static_cast<double>(bits) * (1.0 / 9007199254740992.0);
}

/// \brief A Bernoulli(p) draw as an integer threshold: a word w gives true iff w < ceil(p * 2^32).
/// p * 2^32 is exact in double, so the threshold is the same everywhere; p = 0 never fires and
/// p = 1 always does. The probability realized is threshold / 2^32 (within 2^-32 of p).
class bernoulli {
 public:
  /// \pre 0 <= p <= 1 (checked by the public entry points that build one).
  explicit bernoulli(double p) noexcept
      : threshold_(p <= 0.0
                       ? 0u
                       : (p >= 1.0 ? (std::uint64_t{1} << 32)
                                   : static_cast<std::uint64_t>(std::ceil(p * 4294967296.0)))) {}
  /// \brief True with probability p.
  constexpr bool operator()(std::uint32_t w) const noexcept { return w < threshold_; }
  /// \brief ceil(p * 2^32), in [0, 2^32].
  constexpr std::uint64_t threshold() const noexcept { return threshold_; }

 private:
  std::uint64_t threshold_;
};

/// \brief Uniform integer in [0, n) without modulo bias: Lemire's multiply-shift with rejection
/// ("Fast random integer generation in an interval", ACM TOMACS 2019). For each word w of the
/// stream: m = w * n (64-bit); if (m mod 2^32) < (2^32 mod n) the word is rejected and the next one
/// is used; otherwise the result is m >> 32. Rejection uses the next word of the same addressed
/// stream, so it never shifts the draws of other elements.
/// Stream is word_stream or any type with `std::uint32_t next()`.
/// \pre n >= 1.
template <class Stream>
std::uint32_t bounded(Stream& stream, std::uint32_t n) noexcept {
  EMASK_ASSERT(n >= 1);
  const std::uint32_t t = static_cast<std::uint32_t>(-n) % n;  // 2^32 mod n
  for (;;) {
    const std::uint64_t m = static_cast<std::uint64_t>(stream.next()) * n;
    if (static_cast<std::uint32_t>(m) >= t) return static_cast<std::uint32_t>(m >> 32);
  }
}

/// \brief Geometric(p) on {1, 2, ...}: the number of Bernoulli(p) trials up to and including the
/// first success, one stream word per trial. Stops at \p cap trials (returns cap) so it always
/// terminates; the default cap is far beyond any probability that matters for p >= 1e-6.
/// \pre 0 < p <= 1.
template <class Stream>
std::uint32_t geometric(Stream& stream, const bernoulli& success,
                        std::uint32_t cap = 1u << 24) noexcept {
  std::uint32_t k = 1;
  while (k < cap && !success(stream.next())) ++k;
  return k;
}

/// \brief Geometric(p) conditioned on k <= \p max_k (truncated and renormalized), by rejection:
/// trials run as in geometric(); if trial max_k also fails, the attempt is discarded and a new
/// one starts from the next word. After 4096 discarded attempts it returns max_k.
/// \pre 0 < p <= 1, max_k >= 1.
template <class Stream>
std::uint32_t truncated_geometric(Stream& stream, const bernoulli& success,
                                  std::uint32_t max_k) noexcept {
  for (int attempt = 0; attempt < 4096; ++attempt) {
    for (std::uint32_t k = 1; k <= max_k; ++k)
      if (success(stream.next())) return k;
  }
  return max_k;
}

namespace detail {
/// Sort key of "argsort of uniform noise": the noise word in the high half, the index in the low
/// half, so equal noise words are ordered by index.
constexpr std::uint64_t noise_key(std::uint32_t word, std::uint32_t index) noexcept {
  return (static_cast<std::uint64_t>(word) << 32) | index;
}

/// Python's round() / numpy.round(): round half to even, on the exact double value.
inline double round_half_even(double x) noexcept {
  const double f = std::floor(x);
  const double d = x - f;  // exact for |x| < 2^52
  if (d > 0.5) return f + 1.0;
  if (d < 0.5) return f;
  return std::fmod(f, 2.0) == 0.0 ? f : f + 1.0;
}

/// round_half_even(x) as an Int, saturated to Int's range (NaN gives the maximum): a double
/// outside the range would be undefined behaviour to convert.
template <class Int>
Int round_half_even_to(double x) noexcept {
  const double r = round_half_even(x);
  const double top = static_cast<double>((std::numeric_limits<Int>::max)());  // 2^63 for int64
  const double bottom = static_cast<double>((std::numeric_limits<Int>::min)());
  if (!(r < top)) return (std::numeric_limits<Int>::max)();
  if (r < bottom) return (std::numeric_limits<Int>::min)();
  return static_cast<Int>(r);
}
}  // namespace detail

/// \brief Argsort of uniform noise: the permutation that sorts the packed words 0..n-1 of
/// (at.seed, at.sample, purpose) ascending, ties broken by index. Element j of the result is the
/// index with the j-th smallest noise. \pre n < 2^32.
inline std::vector<std::uint32_t> noise_argsort(std::uint16_t purpose_id, std::uint32_t n,
                                                random_address at) {
  std::vector<std::uint32_t> words(n);
  detail::fill_packed_words(at.seed, at.sample, purpose_id, 0, n, words.data());
  std::vector<std::uint64_t> keys(n);
  for (std::uint32_t i = 0; i < n; ++i) keys[i] = detail::noise_key(words[i], i);
  std::sort(keys.begin(), keys.end());
  std::vector<std::uint32_t> order(n);
  for (std::uint32_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(keys[i]);
  return order;
}

namespace detail {
/// Marks (flag = 1) the k entries of keys with the smallest key; the low 32 bits of each key are
/// the index into flags. keys is reordered. O(n) on average (nth_element); the set is exactly the
/// k smallest keys, so it does not depend on the selection algorithm.
inline void mark_smallest(std::vector<std::uint64_t>& keys, std::size_t k, unsigned char* flags) {
  if (k == 0) return;
  if (k < keys.size())
    std::nth_element(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(k - 1), keys.end());
  const std::size_t m = (std::min)(k, keys.size());
  for (std::size_t j = 0; j < m; ++j) flags[static_cast<std::uint32_t>(keys[j])] = 1;
}
}  // namespace detail

EMASK_NAMESPACE_END
