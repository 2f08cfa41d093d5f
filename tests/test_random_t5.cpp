// T5 span corruption: HF's length helper, golden output, structure, uniformity, errors.
#include <emask/random/t5.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <vector>

#include "catch.hpp"

#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

using namespace emask;
using Catch::Matchers::Contains;

namespace {
t5_options t5() {
  t5_options o;
  o.first_sentinel_id = 32099;
  o.eos_id = 1;
  return o;
}
token_matrix counting(Index B, Index L, std::int32_t first = 200) {
  token_matrix ids(B, L);
  for (Index i = 0; i < B * L; ++i) ids(i / L, i % L) = first + static_cast<std::int32_t>(i);
  return ids;
}
}  // namespace

TEST_CASE("compute_input_and_target_lengths matches HF", "[random][t5]") {
  // run_t5_mlm_flax.py with max_seq_length 512: expanded inputs 568, targets 114.
  // 568: noise round(85.2) = 85, spans round(28.33) = 28, inputs 483 + 28 + 1 = 512; 569 gives 513.
  const t5_lengths l = compute_input_and_target_lengths(512, 0.15, 3.0);
  CHECK(l.tokens_length == 568);
  CHECK(l.targets_length == 114);
  // density 0.5: 191 raw tokens fit (96 noise by half-to-even, 32 spans) but the targets (129)
  // exceed the inputs, so HF's adjustment drops one token: {190, 128}
  const t5_lengths h = compute_input_and_target_lengths(128, 0.5, 3.0);
  CHECK(h.tokens_length == 190);
  CHECK(h.targets_length == 128);
  const t5_sizes s = t5_corruption_sizes(568);
  CHECK(s.num_noise_tokens == 85);
  CHECK(s.num_noise_spans == 28);
  CHECK(s.inputs_length == 512);
  CHECK(s.targets_length == 114);
  // clamps of the mask: at least one noise token and one kept token
  CHECK(t5_corruption_sizes(2, 0.0).num_noise_tokens == 1);
  CHECK(t5_corruption_sizes(4, 1.0, 3.0).num_noise_tokens == 3);
  REQUIRE_THROWS_WITH(compute_input_and_target_lengths(0), Contains("inputs_length"));
}

namespace {
// HF's search, step by step: the reference for the bounded search of the library.
t5_lengths hf_lengths(Index inputs_length, double density, double mean) {
  auto f = [&](Index tokens) {
    const auto nz = static_cast<Index>(detail::round_half_even(double(tokens) * density));
    const auto sp = static_cast<Index>(detail::round_half_even(double(nz) / mean));
    return std::pair<Index, Index>(tokens - nz + sp + 1, nz + sp + 1);
  };
  Index tokens = inputs_length;
  while (f(tokens + 1).first <= inputs_length) ++tokens;
  Index targets = f(tokens).second;
  if (density == 0.5 && targets > f(tokens).first) {
    --tokens;
    --targets;
  }
  return {tokens, targets};
}
}  // namespace

TEST_CASE("compute_input_and_target_lengths: HF's results, in bounded time for any mean",
          "[random][t5]") {
  for (double density : {0.0, 0.01, 0.15, 0.3, 0.5, 0.77, 0.99, 1.0})
    for (double mean : {0.3, 1.0, 2.0, 3.0, 7.5, 40.0})
      for (Index len : {Index(1), Index(2), Index(7), Index(128), Index(512), Index(1000)}) {
        INFO("density " << density << " mean " << mean << " inputs_length " << len);
        const t5_lengths a = compute_input_and_target_lengths(len, density, mean);
        const t5_lengths b = hf_lengths(len, density, mean);
        CHECK(a.tokens_length == b.tokens_length);
        CHECK(a.targets_length == b.targets_length);
      }
  // density 1, mean 1e9: noise = t, spans = round(t / 1e9); the inputs (spans + 1) fit while
  // t / 1e9 < 511.5, so HF's loop would run 5e11 times.
  const t5_lengths big = compute_input_and_target_lengths(512, 1.0, 1e9);
  CHECK(big.tokens_length == 511499999999);
  CHECK(big.targets_length == 511499999999 + 511 + 1);
  // No finite answer (or none below 2^52 raw tokens): an error, not an endless loop.
  for (double mean : {1e30, std::numeric_limits<double>::infinity(),
                      std::numeric_limits<double>::quiet_NaN(), -1.0, 0.0})
    REQUIRE_THROWS_WITH(compute_input_and_target_lengths(512, 1.0, mean),
                        Contains("emask::compute_input_and_target_lengths: argument "
                                 "'mean_noise_span_length'"));
  REQUIRE_THROWS_WITH(
      compute_input_and_target_lengths(std::numeric_limits<Index>::max(), 0.15, 3.0),
      Contains("argument 'inputs_length'"));
  // The sizes of a row of INT64_MAX tokens overflowed inputs_length (and cast 2^63 to Index).
  REQUIRE_THROWS_WITH(t5_corruption_sizes(std::numeric_limits<Index>::max(), 1e-300, 3.0),
                      Contains("emask::t5_corruption_sizes: argument 'length'"));
  CHECK(t5_corruption_sizes(Index{1} << 52, 1.0, 1e300).inputs_length == 3);
}

TEST_CASE("t5_span_corruption golden output", "[random][t5]") {
  t5_options o = t5();
  o.noise_density = 0.3;
  o.mean_noise_span_length = 2.0;
  const t5_result r = t5_span_corruption(counting(2, 20), o, {2024});
  token_matrix inputs(2, 18), targets(2, 10);
  // clang-format off
  inputs << 200, 201, 32099, 205, 206, 207, 208, 209, 210, 211, 212, 32098, 215, 216, 217, 218, 32097, 1,
      220, 221, 222, 223, 224, 225, 226, 32099, 229, 230, 231, 232, 233, 234, 32098, 238, 32097, 1;
  // clang-format on
  targets << 32099, 202, 203, 204, 32098, 213, 214, 32097, 219, 1,  //
      32099, 227, 228, 32098, 235, 236, 237, 32097, 239, 1;
  CHECK((r.inputs == inputs).all());
  CHECK((r.targets == targets).all());
  CHECK((r.kept.row(0).cast<int>() ==
         (Eigen::Array<int, 1, 20>() << 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0)
             .finished())
            .all());
}

TEST_CASE("t5_span_corruption structure: inputs and targets rebuild the original", "[random][t5]") {
  const Index B = 32, L = 568;
  const token_matrix ids = counting(B, L, 1000);
  const t5_options o = t5();
  const t5_result r = t5_span_corruption(ids, o, {5, 100});
  const t5_sizes s = t5_corruption_sizes(L);
  REQUIRE(r.inputs.cols() == 512);
  REQUIRE(r.targets.cols() == 114);
  for (Index b = 0; b < B; ++b) {
    CHECK(r.inputs(b, r.inputs.cols() - 1) == 1);
    CHECK(r.targets(b, r.targets.cols() - 1) == 1);
    CHECK((r.kept.row(b) == false).count() == s.num_noise_tokens);
    CHECK(r.kept(b, 0));            // starts with a kept segment
    CHECK_FALSE(r.kept(b, L - 1));  // ends with a noise span (HF's layout)
    Index runs = 0;
    for (Index t = 0; t < L; ++t) runs += (!r.kept(b, t) && (t == 0 || r.kept(b, t - 1))) ? 1 : 0;
    CHECK(runs == s.num_noise_spans);
    CHECK((r.kept.row(b) == t5_keep_mask(L, o, {5, 100 + static_cast<std::uint64_t>(b)})).all());
    // rebuild: each sentinel in the inputs is replaced by what follows it in the targets
    std::map<std::int32_t, std::vector<std::int32_t>> span;
    std::int32_t current = -1;
    for (Index j = 0; j + 1 < r.targets.cols(); ++j) {
      const std::int32_t v = r.targets(b, j);
      if (v > 32099 - 1000 && v <= 32099)
        current = v;
      else
        span[current].push_back(v);
    }
    std::vector<std::int32_t> rebuilt;
    std::int32_t expected_sentinel = 32099;
    for (Index j = 0; j + 1 < r.inputs.cols(); ++j) {
      const std::int32_t v = r.inputs(b, j);
      if (v > 32099 - 1000 && v <= 32099) {
        CHECK(v == expected_sentinel--);  // sentinels count down
        rebuilt.insert(rebuilt.end(), span[v].begin(), span[v].end());
      } else {
        rebuilt.push_back(v);
      }
    }
    REQUIRE(rebuilt.size() == static_cast<std::size_t>(L));
    bool same = true;
    for (Index t = 0; t < L; ++t) same = same && rebuilt[static_cast<std::size_t>(t)] == ids(b, t);
    CHECK(same);
  }
}

TEST_CASE("t5 segmentations are uniform over compositions", "[random][t5]") {
  // L = 10, density 0.4, mean 2: 4 noise tokens in 2 spans, 6 kept tokens in 2 segments.
  // Noise span lengths (1,3), (2,2), (3,1) each have probability 1/3; kept segment lengths
  // (1,5) ... (5,1) each 1/5.
  t5_options o = t5();
  o.noise_density = 0.4;
  o.mean_noise_span_length = 2.0;
  const int n = 30000;
  std::map<Index, double> first_noise, first_kept;
  for (int i = 0; i < n; ++i) {
    const auto keep = t5_keep_mask(10, o, {17, static_cast<std::uint64_t>(i)});
    Index t = 0, k = 0, z = 0;
    while (keep(t)) ++t, ++k;
    while (!keep(t)) ++t, ++z;
    first_kept[k] += 1;
    first_noise[z] += 1;
  }
  REQUIRE(first_noise.size() == 3);
  REQUIRE(first_kept.size() == 5);
  for (const auto& kv : first_noise)
    CHECK(std::abs(kv.second - n / 3.0) < 4 * std::sqrt(n * (1 / 3.0) * (2 / 3.0)));
  for (const auto& kv : first_kept)
    CHECK(std::abs(kv.second - n / 5.0) < 4 * std::sqrt(n * 0.2 * 0.8));
}

TEST_CASE("t5_span_corruption reproducible across splits and threads", "[random][t5]") {
  const token_matrix ids = counting(40, 256);
  const t5_options o = t5();
  const t5_result whole = t5_span_corruption(ids, o, {9, 7});
  const t5_result a = t5_span_corruption(ids.topRows(13), o, {9, 7});
  const t5_result b = t5_span_corruption(ids.bottomRows(27), o, {9, 20});
  CHECK((a.inputs == whole.inputs.topRows(13)).all());
  CHECK((b.targets == whole.targets.bottomRows(27)).all());
#if EMASK_HAS_OPENMP
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  const t5_result one = t5_span_corruption(ids, o, {9, 7});
  omp_set_num_threads(2);
  const t5_result two = t5_span_corruption(ids, o, {9, 7});
  omp_set_num_threads(before);
  CHECK((one.inputs == whole.inputs).all());
  CHECK((two.inputs == whole.inputs).all());
  CHECK((two.targets == one.targets).all());
#endif
}

TEST_CASE("t5 errors name the argument", "[random][t5][errors]") {
  t5_options o = t5();
  SECTION("density too large for L") {
    o.noise_density = 0.9;  // L = 10: 9 noise tokens in 3 spans but only 1 kept token
    REQUIRE_THROWS_WITH(t5_span_corruption(counting(1, 10), o),
                        Contains("noise_density") && Contains("kept"));
  }
  SECTION("density outside [0, 1]") {
    o.noise_density = 1.5;
    REQUIRE_THROWS_WITH(t5_span_corruption(counting(1, 10), o), Contains("noise_density"));
  }
  SECTION("too short") {
    REQUIRE_THROWS_WITH(t5_span_corruption(counting(1, 1), o), Contains("length"));
  }
  SECTION("mean span length") {
    o.mean_noise_span_length = 0.5;
    REQUIRE_THROWS_WITH(t5_span_corruption(counting(1, 10), o), Contains("mean_noise_span_length"));
  }
  SECTION("sentinels must stay non-negative") {
    o.first_sentinel_id = 3;  // 568 tokens need 28 sentinels
    REQUIRE_THROWS_WITH(t5_span_corruption(counting(1, 568), o), Contains("first_sentinel_id"));
    o.first_sentinel_id = -1;
    REQUIRE_THROWS_WITH(t5_span_corruption(counting(1, 10), o), Contains("first_sentinel_id"));
  }
}
