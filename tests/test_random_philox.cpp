// Philox4x32-10 known answers, the addressing of draws, and the portable conversions.
#include <emask/random/distributions.hpp>
#include <emask/random/span.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <set>
#include <vector>

#include "catch.hpp"

using namespace emask;

namespace {
// A stream of given words, to drive bounded() / geometric() by hand.
struct fixed_stream {
  std::vector<std::uint32_t> words;
  std::size_t at = 0;
  std::uint32_t next() { return words.at(at++); }
};

double chi_square(const std::vector<double>& observed, const std::vector<double>& expected) {
  double x = 0;
  for (std::size_t i = 0; i < observed.size(); ++i)
    x += (observed[i] - expected[i]) * (observed[i] - expected[i]) / expected[i];
  return x;
}
}  // namespace

TEST_CASE("philox4x32_10 matches the Random123 known-answer vectors", "[random][philox]") {
  // Random123 tests/kat_vectors, the three "philox4x32 10" lines: counter, key, expected.
  SECTION("zeros") {
    const auto r = philox4x32_10({0u, 0u, 0u, 0u}, {0u, 0u});
    CHECK(r == philox_block{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  }
  SECTION("all ones") {
    const std::uint32_t f = 0xffffffffu;
    const auto r = philox4x32_10({f, f, f, f}, {f, f});
    CHECK(r == philox_block{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  }
  SECTION("pi digits") {
    const auto r = philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                                 {0xa4093822u, 0x299f31d0u});
    CHECK(r == philox_block{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
  }
  SECTION("usable at compile time") {
    constexpr auto r = philox4x32_10({0u, 0u, 0u, 0u}, {0u, 0u});
    static_assert(r[0] == 0x6627e8d5u, "constexpr Philox");
    CHECK(r[3] == 0x9b00dbd8u);
  }
  SECTION("round count matters") {
    CHECK(philox4x32({0u, 0u, 0u, 0u}, {0u, 0u}, 7) != philox4x32_10({0u, 0u, 0u, 0u}, {0u, 0u}));
  }
}

TEST_CASE("draw addressing: counter and key layout", "[random][philox]") {
  const std::uint64_t seed = 0x0123456789abcdefull, sample = 0xfedcba9876543210ull;
  const auto c = random_counter(sample, 0x8001, 17, 3);
  CHECK(c == philox_counter{17u, 0x76543210u, 0xfedcba98u, 0x00038001u});
  CHECK(random_key(seed) == philox_key{0x89abcdefu, 0x01234567u});
  CHECK(random_block(seed, sample, 0x8001, 17, 3) == philox4x32_10(c, random_key(seed)));
  // every address component changes the block
  const auto base = random_block(1, 2, 3, 4, 0);
  CHECK(random_block(2, 2, 3, 4, 0) != base);
  CHECK(random_block(1, 3, 3, 4, 0) != base);
  CHECK(random_block(1, 2 + (std::uint64_t{1} << 32), 3, 4, 0) != base);
  CHECK(random_block(1, 2, 4, 4, 0) != base);
  CHECK(random_block(1, 2, 3, 5, 0) != base);
  CHECK(random_block(1, 2, 3, 4, 1) != base);
  // golden: pins the layout so any change of the stream is caught
  CHECK(random_block(42, 7, purpose::mlm_select, 3) ==
        philox4x32_10({3u, 7u, 0u, 0x8001u}, {42u, 0u}));
}

TEST_CASE("packed words and word streams", "[random][philox]") {
  SECTION("packed_word is word i%4 of block i/4") {
    for (std::uint64_t i = 0; i < 20; ++i)
      CHECK(packed_word(9, 5, 77, i) ==
            random_block(9, 5, 77, static_cast<std::uint32_t>(i / 4))[i % 4]);
  }
  SECTION("fill_packed_words equals packed_word for every alignment") {
    // covers the scalar form and, on CPUs with AVX2, the 8-block SIMD form (runs >= 64 words)
    for (std::uint64_t begin : {0u, 1u, 3u, 4u, 5u, 31u, 32u, 33u, 1000u}) {
      for (std::uint64_t count : {0u, 1u, 2u, 7u, 32u, 33u, 63u, 64u, 100u, 257u, 1031u}) {
        std::vector<std::uint32_t> w(count + 1, 0xdeadbeefu), v(count + 1, 0xdeadbeefu);
        detail::fill_packed_words(3, 11, purpose::mlm_select, begin, begin + count, w.data());
        detail::fill_packed_words_scalar(3, 11, purpose::mlm_select, begin, begin + count,
                                         v.data());
        bool same = true;
        for (std::uint64_t i = 0; i < count; ++i)
          same = same && w[i] == packed_word(3, 11, purpose::mlm_select, begin + i) && v[i] == w[i];
        CHECK(same);
        CHECK(w[count] == 0xdeadbeefu);  // no write past the end
        CHECK(v[count] == 0xdeadbeefu);
      }
    }
  }
  SECTION("stream heads computed together, and streams resumed from a known head") {
    std::vector<std::uint32_t> index = {5, 900, 3, 3, 77, 1u << 31, 12, 13, 14, 0, 4000000000u};
    for (std::size_t n : {std::size_t{0}, std::size_t{3}, std::size_t{8}, index.size()}) {
      std::vector<std::uint32_t> heads(4 * n + 1, 0xdeadbeefu);
      detail::fill_stream_heads(8, 9, purpose::mlm_replace, index.data(), n, heads.data());
      for (std::size_t j = 0; j < n; ++j)
        for (std::size_t w = 0; w < 4; ++w)
          CHECK(heads[4 * j + w] == random_block(8, 9, purpose::mlm_replace, index[j])[w]);
      CHECK(heads[4 * n] == 0xdeadbeefu);
    }
    const auto head = random_block(8, 9, 10, 11);
    word_stream fresh(8, 9, 10, 11), resumed(8, 9, 10, 11, head.data(), 2);
    fresh.next();
    fresh.next();
    for (int i = 0; i < 10; ++i) CHECK(resumed.next() == fresh.next());
  }
  SECTION("word_stream walks the retry blocks of one index") {
    word_stream s(5, 6, 7, 8);
    std::vector<std::uint32_t> got;
    for (int i = 0; i < 12; ++i) got.push_back(s.next());
    for (int r = 0; r < 3; ++r)
      for (int w = 0; w < 4; ++w)
        CHECK(got[static_cast<std::size_t>(4 * r + w)] ==
              random_block(5, 6, 7, 8, static_cast<std::uint16_t>(r))[static_cast<std::size_t>(w)]);
  }
}

TEST_CASE("uniform float and double conversions are exact", "[random][distributions]") {
  CHECK(uniform_float(0u) == 0.0f);
  CHECK(uniform_float(0xffffffffu) == 16777215.0f / 16777216.0f);
  CHECK(uniform_float(0x80000000u) == 0.5f);
  CHECK(uniform_float(0x000000ffu) == 0.0f);  // low 8 bits are dropped
  CHECK(uniform_float(0x00000100u) == std::ldexp(1.0f, -24));
  CHECK(uniform_double(0u, 0u) == 0.0);
  CHECK(uniform_double(0xffffffffu, 0xffffffffu) == (9007199254740991.0 / 9007199254740992.0));
  CHECK(uniform_double(0x80000000u, 0u) == 0.5);
  CHECK(uniform_double(0u, 0x00000800u) == std::ldexp(1.0, -53));
  CHECK(uniform_double(0u, 0x000007ffu) == 0.0);
  // mean of many draws within 4 sigma of 1/2 (sigma = sqrt(1/12 / n))
  const int n = 200000;
  double sum_f = 0, sum_d = 0;
  for (int i = 0; i < n; ++i) {
    const auto b = random_block(1, 0, purpose::user, static_cast<std::uint32_t>(i));
    sum_f += uniform_float(b[0]);
    sum_d += uniform_double(b[1], b[2]);
  }
  const double sigma = std::sqrt(1.0 / 12.0 / n);
  CHECK(std::abs(sum_f / n - 0.5) < 4 * sigma);
  CHECK(std::abs(sum_d / n - 0.5) < 4 * sigma);
}

TEST_CASE("bernoulli thresholds", "[random][distributions]") {
  CHECK(bernoulli(0.0).threshold() == 0u);
  CHECK(bernoulli(1.0).threshold() == (std::uint64_t{1} << 32));
  CHECK(bernoulli(0.5).threshold() == 0x80000000u);
  CHECK(bernoulli(0.15).threshold() == static_cast<std::uint64_t>(std::ceil(0.15 * 4294967296.0)));
  CHECK_FALSE(bernoulli(0.0)(0u));
  CHECK(bernoulli(1.0)(0xffffffffu));
  CHECK(bernoulli(0.5)(0x7fffffffu));
  CHECK_FALSE(bernoulli(0.5)(0x80000000u));
  // rate within 4 sigma
  const double p = 0.15;
  const bernoulli b(p);
  const int n = 400000;
  int hits = 0;
  for (int i = 0; i < n; ++i)
    hits += b(packed_word(7, 1, purpose::user, static_cast<std::uint64_t>(i))) ? 1 : 0;
  CHECK(std::abs(hits - n * p) < 4 * std::sqrt(n * p * (1 - p)));
}

TEST_CASE("bounded integers: Lemire multiply-shift with rejection", "[random][distributions]") {
  SECTION("hand-checked words") {
    // n = 3: 2^32 mod 3 = 1, so only w = 0 is rejected; w -> floor(w * 3 / 2^32)
    fixed_stream s{{0u, 0u, 5u, 0x55555556u, 0xffffffffu}};
    CHECK(bounded(s, 3) == 0u);  // two rejections, then 5*3 >> 32 = 0
    CHECK(s.at == 3);
    CHECK(bounded(s, 3) == 1u);  // 0x55555556 * 3 = 0x1_0000_0002
    CHECK(bounded(s, 3) == 2u);
    // n = 2^31 + 1: threshold 2^31 - 1
    const std::uint32_t n = 0x80000001u;
    fixed_stream t{{0u, 1u, 0xffffffffu}};
    CHECK(bounded(t, n) == 0u);  // w = 0 rejected, w = 1 gives 0
    CHECK(t.at == 2);
    CHECK(bounded(t, n) == 0x80000000u);  // the largest value, n - 1
    fixed_stream one{{0x12345678u}};
    CHECK(bounded(one, 1) == 0u);
  }
  SECTION("uniform over [0, n) by chi-square") {
    for (std::uint32_t n : {2u, 6u, 7u, 1000u}) {
      const int draws = 100000;
      std::vector<double> count(n, 0.0);
      for (int i = 0; i < draws; ++i) {
        word_stream s(11, n, purpose::user, static_cast<std::uint32_t>(i));
        const std::uint32_t r = bounded(s, n);
        REQUIRE(r < n);
        count[r] += 1;
      }
      const std::vector<double> expected(n, static_cast<double>(draws) / n);
      // dof = n - 1; mean dof, sd sqrt(2 dof): 6 sd above the mean never happens by chance
      const double dof = n - 1.0;
      CHECK(chi_square(count, expected) < dof + 6 * std::sqrt(2 * dof) + 10);
    }
  }
}

TEST_CASE("geometric draws", "[random][distributions]") {
  fixed_stream s{{0xffffffffu, 0xffffffffu, 0u}};
  CHECK(geometric(s, bernoulli(0.2)) == 3u);  // fail, fail, success
  fixed_stream capped{{0xffffffffu, 0xffffffffu, 0xffffffffu}};
  CHECK(geometric(capped, bernoulli(0.2), 2) == 2u);
  // truncated: a full failed attempt of max_k words restarts
  fixed_stream tr{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0u}};
  CHECK(truncated_geometric(tr, bernoulli(0.2), 3) == 2u);  // 3 failures, restart, fail, success
  SECTION("mean of geometric(p) is 1/p") {
    const double p = 0.25;
    const bernoulli b(p);
    const int n = 100000;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < n; ++i) {
      word_stream w(3, 0, purpose::user, static_cast<std::uint32_t>(i));
      const double k = geometric(w, b);
      sum += k;
      sum2 += k * k;
    }
    const double var = (1 - p) / (p * p);
    CHECK(std::abs(sum / n - 1 / p) < 4 * std::sqrt(var / n));
    const double sample_var = sum2 / n - (sum / n) * (sum / n);
    CHECK_THAT(sample_var, WithinRel(var, 0.1));
  }
  SECTION("truncated geometric matches the renormalized pmf (chi-square)") {
    const double p = 0.2;
    const int max_k = 10, n = 200000;
    const auto pk = span_length_distribution(p, max_k);
    REQUIRE(pk.size() == 10);
    CHECK_THAT(std::accumulate(pk.begin(), pk.end(), 0.0), WithinAbs(1.0, 1e-12));
    CHECK_THAT(pk[0], WithinRel(0.2 / (1 - std::pow(0.8, 10)), 1e-12));
    std::vector<double> obs(max_k, 0.0), expected(max_k);
    const bernoulli b(p);
    for (int i = 0; i < n; ++i) {
      word_stream w(5, 1, purpose::span_draw, static_cast<std::uint32_t>(i));
      const std::uint32_t k = truncated_geometric(w, b, max_k);
      REQUIRE(k >= 1);
      REQUIRE(k <= 10);
      obs[k - 1] += 1;
    }
    for (int k = 0; k < max_k; ++k)
      expected[static_cast<std::size_t>(k)] = n * pk[static_cast<std::size_t>(k)];
    // 9 degrees of freedom: the 0.9999 quantile is 33.7
    CHECK(chi_square(obs, expected) < 33.7);
  }
}

TEST_CASE("argsort of uniform noise", "[random][distributions]") {
  const auto order = noise_argsort(purpose::mae_noise, 50, {1, 2});
  REQUIRE(order.size() == 50);
  CHECK(std::set<std::uint32_t>(order.begin(), order.end()).size() == 50);
  for (std::size_t j = 1; j < order.size(); ++j)
    CHECK(detail::noise_key(packed_word(1, 2, purpose::mae_noise, order[j - 1]), order[j - 1]) <
          detail::noise_key(packed_word(1, 2, purpose::mae_noise, order[j]), order[j]));
  // ties are broken by index
  CHECK(detail::noise_key(5u, 1u) < detail::noise_key(5u, 2u));
  CHECK(detail::noise_key(4u, 9u) < detail::noise_key(5u, 0u));
  CHECK(noise_argsort(purpose::mae_noise, 0, {1, 2}).empty());
}

TEST_CASE("round half to even, as Python and numpy round", "[random][distributions]") {
  CHECK(detail::round_half_even(0.5) == 0.0);
  CHECK(detail::round_half_even(1.5) == 2.0);
  CHECK(detail::round_half_even(2.5) == 2.0);
  CHECK(detail::round_half_even(2.5000001) == 3.0);
  CHECK(detail::round_half_even(76.8) == 77.0);
  CHECK(detail::round_half_even(3.0) == 3.0);
  CHECK(detail::round_half_even(0.0) == 0.0);
}
