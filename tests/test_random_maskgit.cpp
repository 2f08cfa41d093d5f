// MaskGIT schedules, training masks and the decoding re-mask step.
#include <emask/random/maskgit.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "catch.hpp"

#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

using namespace emask;
using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;

namespace {
maskgit_options vq_options(maskgit_schedule s = maskgit_schedule::cosine()) {
  maskgit_options o;
  o.vocab_size = 1025;  // a 1024-code VQGAN codebook and the mask token
  o.mask_id = 1024;
  o.schedule = s;
  return o;
}

token_matrix codes(Index B, Index L) {
  token_matrix ids(B, L);
  for (Index b = 0; b < B; ++b)
    for (Index j = 0; j < L; ++j) ids(b, j) = static_cast<token_id>((b * 131 + j * 17) % 1024);
  return ids;
}

// Confidences in [0, 1) from Philox words (user purpose), so the test needs no std:: generator.
row_matrix<float> confidences(Index B, Index L, std::uint64_t sample) {
  row_matrix<float> c(B, L);
  for (Index b = 0; b < B; ++b)
    for (Index j = 0; j < L; ++j)
      c(b, j) = uniform_float(packed_word(7, sample + static_cast<std::uint64_t>(b), purpose::user,
                                          static_cast<std::uint64_t>(j)));
  return c;
}
}  // namespace

TEST_CASE("maskgit schedules at hand values", "[random][maskgit]") {
  const maskgit_schedule all[] = {maskgit_schedule::cosine(),      maskgit_schedule::linear(),
                                  maskgit_schedule::square_root(), maskgit_schedule::square(),
                                  maskgit_schedule::cubic(),       maskgit_schedule::power(5)};
  for (const maskgit_schedule& s : all) {
    CHECK(maskgit_gamma(s, 0.0) == 1.0);
    CHECK(maskgit_gamma(s, 1.0) == 0.0);
    double previous = 1.0;  // non-increasing
    for (int i = 1; i <= 64; ++i) {
      const double g = maskgit_gamma(s, i / 64.0);
      CHECK(g <= previous);
      previous = g;
    }
  }
  CHECK_THAT(maskgit_gamma(maskgit_schedule::cosine(), 1.0 / 3),
             WithinAbs(std::sqrt(3.0) / 2, 1e-15));
  CHECK_THAT(maskgit_gamma(maskgit_schedule::cosine(), 0.5), WithinAbs(std::sqrt(0.5), 1e-15));
  CHECK(maskgit_gamma(maskgit_schedule::linear(), 0.25) == 0.75);
  CHECK(maskgit_gamma(maskgit_schedule::square_root(), 0.25) == 0.5);
  CHECK(maskgit_gamma(maskgit_schedule::square(), 0.5) == 0.75);
  CHECK(maskgit_gamma(maskgit_schedule::cubic(), 0.5) == 0.875);
  CHECK(maskgit_gamma(maskgit_schedule::power(5), 0.5) == 1 - 1.0 / 32);
  CHECK(maskgit_gamma(maskgit_schedule::power(1), 0.3) ==
        maskgit_gamma(maskgit_schedule::linear(), 0.3));
  CHECK(maskgit_schedule::cubic().type() == maskgit_schedule::kind::power);
  CHECK(maskgit_schedule::cubic().exponent() == 3);
  CHECK(maskgit_schedule().type() == maskgit_schedule::kind::cosine);
}

TEST_CASE("maskgit counts", "[random][maskgit]") {
  SECTION("training: ceil(gamma(r) N), clipped to [1e-6, 1]") {
    CHECK(maskgit_mask_count(256, 0.0, maskgit_schedule::cosine()) == 256);
    CHECK(maskgit_mask_count(256, 0.5, maskgit_schedule::cosine()) == 182);   // 181.02
    CHECK(maskgit_mask_count(256, 0.25, maskgit_schedule::linear()) == 192);  // exact
    CHECK(maskgit_mask_count(256, 0.25, maskgit_schedule::square_root()) == 128);
    CHECK(maskgit_mask_count(256, 0.5, maskgit_schedule::square()) == 192);
    CHECK(maskgit_mask_count(256, 0.5, maskgit_schedule::cubic()) == 224);
    CHECK(maskgit_mask_count(10, 1.0, maskgit_schedule::linear()) == 1);  // gamma clipped to 1e-6
    CHECK(maskgit_mask_count(10, 0.9999999, maskgit_schedule::cosine()) == 1);
    CHECK(maskgit_mask_count(3000000, 1.0, maskgit_schedule::cosine()) == 3);  // 1e-6 * 3e6
    CHECK(maskgit_mask_count(0, 0.5, maskgit_schedule::cosine()) == 0);
  }
  SECTION("decoding: floor(N0 gamma((t + 1) / T)), then max(1, min(unknown - 1, n))") {
    // N0 = 256, T = 8, cosine: floor(256 cos(pi (t + 1) / 16)) for t = 0..6, 0 at the last step
    const Index expected[] = {251, 236, 212, 181, 142, 97, 49, 0};
    Index unknown = 256;
    for (Index t = 0; t < 8; ++t) {
      const Index n = maskgit_remask_count(256, unknown, t, 8, maskgit_schedule::cosine());
      CHECK(n == expected[t]);
      unknown = n;
    }
    CHECK(maskgit_remask_count(256, 100, 0, 8, maskgit_schedule::cosine()) == 99);  // unknown - 1
    CHECK(maskgit_remask_count(256, 1, 3, 8, maskgit_schedule::cosine()) == 1);     // at least 1
    CHECK(maskgit_remask_count(256, 0, 3, 8, maskgit_schedule::cosine()) == 0);
    CHECK(maskgit_remask_count(256, 1, 7, 8, maskgit_schedule::cosine()) == 0);  // last step
    CHECK(maskgit_remask_count(16, 16, 0, 1, maskgit_schedule::linear()) == 0);  // one step
    CHECK(maskgit_remask_count(16, 16, 0, 4, maskgit_schedule::linear()) == 12);
  }
}

TEST_CASE("maskgit_mask golden output", "[random][maskgit]") {
  // Pinned once from this implementation (seed 2024, samples 0-1, 2 x 12, linear schedule); the
  // next test case derives the same rule from the Philox primitives. r as its 53-bit integer:
  // row 0 r = 0.2074..., ceil(0.7926 * 12) = 10 masked; row 1 r = 0.3979..., ceil(7.22) = 8.
  const maskgit_result r =
      maskgit_mask(codes(2, 12), vq_options(maskgit_schedule::linear()), {2024, 0});
  Eigen::Array<int, 2, 12, Eigen::RowMajor> expected;
  expected << 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1,  //
      1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 1, 0;
  INFO(r.masked.cast<int>() << "\nr = " << r.ratio.transpose());
  CHECK((r.masked.cast<int>() == expected).all());
  CHECK(r.ratio(0) == 1868353898688793.0 / 9007199254740992.0);
  CHECK(r.ratio(1) == 3584317829982554.0 / 9007199254740992.0);
  CHECK(r.count == std::vector<Index>{10, 8});
}

TEST_CASE("maskgit_mask follows the documented draws", "[random][maskgit]") {
  const Index B = 40, L = 100;
  const token_matrix ids = codes(B, L);
  for (const maskgit_schedule& s :
       {maskgit_schedule::cosine(), maskgit_schedule::square_root(), maskgit_schedule::cubic()}) {
    const maskgit_options o = vq_options(s);
    const maskgit_result r = maskgit_mask(ids, o, {3, 70});
    for (Index b = 0; b < B; ++b) {
      const std::uint64_t sample = 70 + static_cast<std::uint64_t>(b);
      const philox_block h = random_block(3, sample, purpose::maskgit_ratio, 0);
      const double ratio = uniform_double(h[0], h[1]);
      const Index k = maskgit_mask_count(L, ratio, s);
      CHECK(r.ratio(b) == ratio);
      CHECK(r.count[static_cast<std::size_t>(b)] == k);
      CHECK(r.masked.row(b).count() == k);  // exactly ceil(gamma(r) L)
      // the k positions with the smallest (noise word, position) keys
      std::vector<std::uint64_t> keys;
      for (Index j = 0; j < L; ++j)
        keys.push_back(detail::noise_key(
            packed_word(3, sample, purpose::maskgit_noise, static_cast<std::uint64_t>(j)),
            static_cast<std::uint32_t>(j)));
      std::sort(keys.begin(), keys.end());
      bool exact = true;
      for (Index i = 0; i < L; ++i)
        exact = exact && r.masked(b, static_cast<Index>(static_cast<std::uint32_t>(
                                         keys[static_cast<std::size_t>(i)]))) == (i < k);
      CHECK(exact);
      for (Index j = 0; j < L; ++j)
        CHECK(r.noisy_ids(b, j) == (r.masked(b, j) ? o.mask_id : ids(b, j)));
    }
  }
}

TEST_CASE("maskgit_mask: lengths, statistics, reproducibility", "[random][maskgit]") {
  const maskgit_options o = vq_options();
  SECTION("lengths: only the first lengths[b] positions are counted and masked") {
    const index_list lengths = {16, 5, 0, 1};
    const maskgit_result r = maskgit_mask(codes(4, 16), lengths, o, {9});
    for (Index b = 0; b < 4; ++b) {
      const Index n = lengths[static_cast<std::size_t>(b)];
      CHECK(r.masked.row(b).count() == maskgit_mask_count(n, r.ratio(b), o.schedule));
      CHECK_FALSE(r.masked.row(b).tail(16 - n).any());
    }
    CHECK(r.count == std::vector<Index>{r.count[0], r.count[1], 0, 1});
  }
  SECTION("every position equally likely, given the counts (10^6 draws)") {
    const Index B = 65536, L = 16;
    const maskgit_result r = maskgit_mask(codes(B, L), o, {10});
    double expected = 0, var = 0;
    for (Index b = 0; b < B; ++b) {
      const double q = static_cast<double>(r.count[static_cast<std::size_t>(b)]) / L;
      expected += q;
      var += q * (1 - q);
    }
    for (Index j = 0; j < L; ++j)
      CHECK(std::abs(static_cast<double>(r.masked.col(j).count()) - expected) < 4 * std::sqrt(var));
    // r is uniform: its mean
    CHECK(std::abs(r.ratio.mean() - 0.5) < 4 / std::sqrt(12.0 * B));
  }
  SECTION("batch split and threads") {
    const Index B = 64, L = 256;
    const token_matrix ids = codes(B, L);
    const maskgit_result all = maskgit_mask(ids, o, {11, 40});
    const maskgit_result tail = maskgit_mask(ids.bottomRows(24), o, {11, 80});
    CHECK((tail.masked == all.masked.bottomRows(24)).all());
    CHECK((tail.noisy_ids == all.noisy_ids.bottomRows(24)).all());
    CHECK(tail.ratio == all.ratio.tail(24));
    CHECK_FALSE((maskgit_mask(ids, o, {12, 40}).masked == all.masked).all());
#if EMASK_HAS_OPENMP
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const maskgit_result one = maskgit_mask(ids, o, {11, 40});
    omp_set_num_threads(2);
    const maskgit_result two = maskgit_mask(ids, o, {11, 40});
    omp_set_num_threads(saved);
    CHECK((one.masked == all.masked).all());
    CHECK((two.masked == all.masked).all());
    CHECK((two.noisy_ids == all.noisy_ids).all());
#endif
  }
}

TEST_CASE("maskgit_remask picks the least confident, ties by position", "[random][maskgit]") {
  row_matrix<float> c(1, 8);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  c << 0.5f, 0.1f, 0.9f, 0.1f, 0.3f, nan, 0.7f, 0.1f;  // position 5 is known: never read
  bool_matrix unknown(1, 8);
  unknown << true, true, true, true, true, false, true, true;
  const maskgit_schedule linear = maskgit_schedule::linear();
  SECTION("step 0 of 4: floor(8 * 0.75) = 6 stay masked") {
    bool_matrix next = maskgit_remask(c, unknown, {8}, 0, 4, linear);
    bool_matrix expected(1, 8);
    expected << true, true, false, true, true, false, true, true;
    CHECK((next == expected).all());
  }
  SECTION("step 2 of 4: floor(8 * 0.25) = 2; three tie at 0.1, the lower positions win") {
    bool_matrix next = maskgit_remask(c, unknown, {8}, 2, 4, linear);
    bool_matrix expected = bool_matrix::Constant(1, 8, false);
    expected(0, 1) = expected(0, 3) = true;
    CHECK((next == expected).all());
  }
  SECTION("the last step settles every token") {
    CHECK_FALSE(maskgit_remask(c, unknown, {8}, 3, 4, linear).any());
  }
  SECTION("double confidences, -0 and +0 tie, infinities order") {
    row_matrix<double> d(1, 6);
    d << 0.0, -0.0, -std::numeric_limits<double>::infinity(), 1.0, 0.0, 2.0;
    const bool_matrix all = bool_matrix::Constant(1, 6, true);
    // 6 unknown, step 1 of 3, linear: floor(6 / 3) = 2: -inf (2) then the first zero (0)
    bool_matrix expected = bool_matrix::Constant(1, 6, false);
    expected(0, 2) = expected(0, 0) = true;
    CHECK((maskgit_remask(d, all, {6}, 1, 3, linear) == expected).all());
  }
  SECTION("in place gives the same map") {
    bool_matrix work = unknown;
    maskgit_remask_inplace(c, work, {8}, 0, 4, linear);
    CHECK((work == maskgit_remask(c, unknown, {8}, 0, 4, linear)).all());
  }
}

TEST_CASE("maskgit decoding: monotone, never re-masks a known token", "[random][maskgit]") {
  const Index B = 48, L = 400, T = 12;  // B * L >= 16384: the OpenMP path when it is there
  bool_matrix unknown = bool_matrix::Constant(B, L, true);
  for (Index b = 0; b < B; b += 5) unknown.row(b).head(b) = false;  // some rows start partly known
  std::vector<Index> initial(static_cast<std::size_t>(B));
  for (Index b = 0; b < B; ++b) initial[static_cast<std::size_t>(b)] = unknown.row(b).count();
  for (Index t = 0; t < T; ++t) {
    const row_matrix<float> c = confidences(B, L, static_cast<std::uint64_t>(t) * 1000);
    const bool_matrix next = maskgit_remask(c, unknown, initial, t, T);
    for (Index b = 0; b < B; ++b) {
      const Index before = unknown.row(b).count();
      const Index n = maskgit_remask_count(initial[static_cast<std::size_t>(b)], before, t, T,
                                           maskgit_schedule::cosine());
      REQUIRE(next.row(b).count() == n);
      REQUIRE((next.row(b) <= unknown.row(b)).all());  // known stays known
      if (before >= 2) REQUIRE(n < before);
      // every token kept masked is at most as confident as every newly known one
      float most = -1.0f, least = 2.0f;
      for (Index j = 0; j < L; ++j) {
        if (next(b, j)) most = (std::max)(most, c(b, j));
        if (unknown(b, j) && !next(b, j)) least = (std::min)(least, c(b, j));
      }
      REQUIRE(most <= least);
    }
#if EMASK_HAS_OPENMP
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const bool_matrix one = maskgit_remask(c, unknown, initial, t, T);
    omp_set_num_threads(2);
    const bool_matrix two = maskgit_remask(c, unknown, initial, t, T);
    omp_set_num_threads(saved);
    REQUIRE((one == next).all());
    REQUIRE((two == next).all());
#endif
    unknown = next;
  }
  CHECK_FALSE(unknown.any());
}

TEST_CASE("maskgit errors name the argument", "[random][maskgit][errors]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  SECTION("schedules and counts") {
    REQUIRE_THROWS_WITH(maskgit_schedule::power(0),
                        Contains("emask::maskgit_schedule::power: argument 'k' = 0, expected an "
                                 "integer exponent in [1, 64]"));
    REQUIRE_THROWS_WITH(maskgit_schedule::power(65), Contains("'k' = 65"));
    REQUIRE_THROWS_WITH(maskgit_gamma(maskgit_schedule::cosine(), 1.5),
                        Contains("emask::maskgit_gamma: argument 'r' = 1.5, expected a ratio in "
                                 "[0, 1]"));
    REQUIRE_THROWS_WITH(maskgit_gamma(maskgit_schedule::cosine(), nan), Contains("'r' = nan"));
    REQUIRE_THROWS_WITH(maskgit_mask_count(-1, 0.5, maskgit_schedule::cosine()),
                        Contains("emask::maskgit_mask_count: argument 'n' = -1"));
    REQUIRE_THROWS_WITH(maskgit_mask_count(4, -0.5, maskgit_schedule::cosine()),
                        Contains("argument 'r' = -0.5"));
    const maskgit_schedule c = maskgit_schedule::cosine();
    REQUIRE_THROWS_WITH(maskgit_remask_count(-1, 0, 0, 4, c),
                        Contains("emask::maskgit_remask_count: argument 'initial_unknown' = -1"));
    REQUIRE_THROWS_WITH(maskgit_remask_count(4, 5, 0, 4, c),
                        Contains("argument 'unknown' = 5, expected a count in [0, "
                                 "initial_unknown = 4]"));
    REQUIRE_THROWS_WITH(maskgit_remask_count(4, 4, 0, 0, c),
                        Contains("argument 'total_steps' = 0"));
    REQUIRE_THROWS_WITH(maskgit_remask_count(4, 4, 4, 4, c),
                        Contains("argument 'step' = 4, expected a step in [0, total_steps = 4)"));
  }
  SECTION("training masking") {
    maskgit_options o = vq_options();
    const token_matrix ids = codes(2, 8);
    o.mask_id = 1025;
    REQUIRE_THROWS_WITH(maskgit_mask(ids, o),
                        Contains("emask::maskgit_mask: argument 'mask_id' = 1025, expected an id "
                                 "inside the vocabulary [0, 1025)"));
    o = vq_options();
    o.vocab_size = 0;
    REQUIRE_THROWS_WITH(maskgit_mask(ids, o), Contains("argument 'vocab_size' = 0"));
    o = vq_options();
    REQUIRE_THROWS_WITH(maskgit_mask(ids, {8}, o), Contains("argument 'lengths' = 1 entries"));
    REQUIRE_THROWS_WITH(maskgit_mask(ids, {8, 9}, o), Contains("'lengths[1]' = 9"));
  }
  SECTION("decoding step; the in-place map is untouched on error") {
    row_matrix<float> c = row_matrix<float>::Constant(2, 4, 0.5f);
    bool_matrix unknown = bool_matrix::Constant(2, 4, true);
    unknown(1, 0) = false;
    REQUIRE_THROWS_WITH(maskgit_remask(c, bool_matrix::Constant(2, 5, true), {4, 4}, 0, 4),
                        Contains("emask::maskgit_remask: argument 'unknown' = 2x5, expected the "
                                 "shape of confidence, 2x4"));
    REQUIRE_THROWS_WITH(maskgit_remask(c, unknown, {4}, 0, 4),
                        Contains("argument 'initial_unknown' = 1 entries, expected 2 entries"));
    REQUIRE_THROWS_WITH(maskgit_remask(c, unknown, {4, 5}, 0, 4),
                        Contains("'initial_unknown[1]' = 5, expected a count in [0, 4]"));
    REQUIRE_THROWS_WITH(maskgit_remask(c, unknown, {4, 4}, 4, 4), Contains("argument 'step' = 4"));
    REQUIRE_THROWS_WITH(maskgit_remask(c, unknown, {4, 4}, 0, 0),
                        Contains("argument 'total_steps' = 0"));
    c(1, 0) = std::numeric_limits<float>::quiet_NaN();  // known: not read
    CHECK(maskgit_remask(c, unknown, {4, 3}, 0, 4).rows() == 2);
    c(1, 2) = std::numeric_limits<float>::quiet_NaN();
    const bool_matrix before = unknown;
    REQUIRE_THROWS_WITH(maskgit_remask_inplace(c, unknown, {4, 3}, 0, 4),
                        Contains("emask::maskgit_remask_inplace: argument 'confidence[1, 2]' = "
                                 "nan, expected a number (not NaN) at a position still unknown"));
    CHECK((unknown == before).all());
  }
}
