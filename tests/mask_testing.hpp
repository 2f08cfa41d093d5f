// Test helpers for mask expressions: a portable RNG and brute-force checkers that compare a mask
// with a plain predicate entry by entry, key span by key span and tile by tile.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <emask/emask.hpp>

#include "catch.hpp"

namespace emask_test {

using emask::Index;

/// splitmix64: the same sequence on every platform (std distributions are not portable).
class rng {
 public:
  explicit rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [lo, hi] (tiny modulo bias is irrelevant for tests).
  Index between(Index lo, Index hi) {
    return lo + static_cast<Index>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  bool coin(double p = 0.5) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }

 private:
  std::uint64_t s_;
};

/// A matrix of values uniform in [-amp, amp], drawn row by row from g.
template <class S>
emask::row_matrix<S> uniform_matrix(rng& g, Index rows, Index cols, double amp = 1.0) {
  emask::row_matrix<S> m(rows, cols);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j)
      m(i, j) = static_cast<S>(amp * (static_cast<double>(g.next() >> 11) * 0x1.0p-53 * 2.0 - 1.0));
  return m;
}

using predicate = std::function<bool(Index b, Index h, Index q, Index k)>;

inline emask::tile_state brute_tile(const predicate& ref, Index b, Index h, Index q0, Index q1,
                                    Index k0, Index k1) {
  bool any = false, all = true;
  for (Index q = q0; q < q1; ++q)
    for (Index k = k0; k < k1; ++k) {
      const bool kept = ref(b, h, q, k);
      any = any || kept;
      all = all && kept;
    }
  return any ? (all ? emask::tile_state::full : emask::tile_state::partial)
             : emask::tile_state::empty;
}

/// Compares \p mask with \p ref on [B, H, Lq, Lk]: keep() everywhere, keys() on every row for
/// several key ranges, and tile() on every tile of several random tilings. Tile answers must never
/// be wrong; masks with exact_tiles must match brute force exactly.
template <class Mask>
void check_mask(const Mask& mask, const predicate& ref, Index B, Index H, Index Lq, Index Lk,
                std::uint64_t seed = 1) {
  INFO("shape B=" << B << " H=" << H << " Lq=" << Lq << " Lk=" << Lk);
  mask.check(emask::region{0, B, 0, H, 0, Lq, 0, Lk}, "test");
  rng r(seed);
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h) {
      for (Index q = 0; q < Lq; ++q)
        for (Index k = 0; k < Lk; ++k) {
          if (mask.keep(b, h, q, k) != ref(b, h, q, k)) {
            FAIL("keep mismatch at b=" << b << " h=" << h << " q=" << q << " k=" << k
                                       << ": mask says " << mask.keep(b, h, q, k));
          }
        }
      // Key spans: the whole row and random sub-ranges.
      for (Index q = 0; q < Lq && Lk > 0; ++q) {
        for (int trial = 0; trial < 4; ++trial) {
          Index k0 = 0, k1 = Lk;
          if (trial > 0) {
            k0 = r.between(0, Lk - 1);
            k1 = r.between(k0 + 1, Lk);
          }
          const emask::key_span s = mask.keys(b, h, q, k0, k1);
          Index first = -1, last = -1;
          for (Index k = k0; k < k1; ++k)
            if (ref(b, h, q, k)) {
              if (first < 0) first = k;
              last = k;
            }
          INFO("keys b=" << b << " h=" << h << " q=" << q << " [" << k0 << ", " << k1 << ") -> ["
                         << s.begin << ", " << s.end << ") exact=" << s.exact);
          if (first < 0) {
            // No kept key: an empty span, or a non-exact span (conservative).
            REQUIRE((s.empty() || !s.exact));
          } else {
            REQUIRE(s.begin <= first);
            REQUIRE(s.end >= last + 1);
            REQUIRE(s.begin >= k0);
            REQUIRE(s.end <= k1);
            if (s.exact) {
              for (Index k = s.begin; k < s.end; ++k) REQUIRE(ref(b, h, q, k));
            }
          }
        }
      }
      // Tiles of several random tilings.
      if (Lq == 0 || Lk == 0) continue;
      for (int tiling = 0; tiling < 3; ++tiling) {
        const Index tq = r.between(1, std::max<Index>(1, Lq / 2 + 1));
        const Index tk = r.between(1, std::max<Index>(1, Lk / 2 + 1));
        for (Index q0 = 0; q0 < Lq; q0 += tq)
          for (Index k0 = 0; k0 < Lk; k0 += tk) {
            const Index q1 = std::min(q0 + tq, Lq), k1 = std::min(k0 + tk, Lk);
            const emask::tile_state truth = brute_tile(ref, b, h, q0, q1, k0, k1);
            const emask::tile_state got = mask.tile(b, h, q0, q1, k0, k1);
            INFO("tile b=" << b << " h=" << h << " [" << q0 << "," << q1 << ")x[" << k0 << "," << k1
                           << ") truth=" << int(truth) << " got=" << int(got));
            if (Mask::exact_tiles) {
              REQUIRE(got == truth);
            } else {
              REQUIRE((got == truth || got == emask::tile_state::partial));
            }
          }
      }
    }
}

}  // namespace emask_test
