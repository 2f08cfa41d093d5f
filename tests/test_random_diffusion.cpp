// Masked-diffusion LM noising (LLaDA / MDLM) and its loss helpers.
#include <emask/random/diffusion.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "catch.hpp"

#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

using namespace emask;
using Catch::Matchers::Contains;

namespace {
diffusion_options llada_options() {
  diffusion_options o;
  o.vocab_size = 1000;
  o.mask_id = 999;
  return o;
}

token_matrix counting_ids(Index B, Index L) {
  token_matrix ids(B, L);
  for (Index b = 0; b < B; ++b)
    for (Index j = 0; j < L; ++j) ids(b, j) = static_cast<token_id>((b * 31 + j * 7) % 900 + 1);
  return ids;
}

// The draws of docs/random.md, written out from the primitives: t, p and the masked positions of
// one row without random length and without prompt.
struct row_draw {
  double t, p;
  std::vector<bool> masked;
};
row_draw reference_row(std::uint64_t seed, std::uint64_t sample, Index L, double eps) {
  const philox_block h = random_block(seed, sample, purpose::diffusion_time, 0);
  row_draw d;
  d.t = uniform_double(h[0], h[1]);
  d.p = std::fma(1.0 - eps, d.t, eps);
  const auto threshold = static_cast<std::uint64_t>(std::ceil(d.p * 4294967296.0));
  for (Index j = 0; j < L; ++j)
    d.masked.push_back(packed_word(seed, sample, purpose::diffusion_select,
                                   static_cast<std::uint64_t>(j)) < threshold);
  return d;
}

bool same(const diffusion_result& a, const diffusion_result& b) {
  return (a.noisy_ids == b.noisy_ids).all() && (a.masked == b.masked).all() &&
         a.weight == b.weight && a.t == b.t && a.p == b.p && a.lengths == b.lengths &&
         a.prompt_lengths == b.prompt_lengths;
}
}  // namespace

TEST_CASE("diffusion_mask follows the documented draws", "[random][diffusion]") {
  const Index B = 5, L = 300;  // 300: chunks of 256 words plus a tail
  const token_matrix ids = counting_ids(B, L);
  const diffusion_options o = llada_options();
  const diffusion_result r = diffusion_mask(ids, o, {77, 1000});
  REQUIRE(r.noisy_ids.rows() == B);
  REQUIRE(r.noisy_ids.cols() == L);
  for (Index b = 0; b < B; ++b) {
    const row_draw d = reference_row(77, 1000 + static_cast<std::uint64_t>(b), L, 1e-3);
    CHECK(r.t(b) == d.t);
    CHECK(r.p(b) == d.p);
    CHECK(r.lengths[static_cast<std::size_t>(b)] == L);
    CHECK(r.prompt_lengths[static_cast<std::size_t>(b)] == 0);
    bool all_same = true;
    for (Index j = 0; j < L; ++j) {
      const bool m = d.masked[static_cast<std::size_t>(j)];
      all_same = all_same && r.masked(b, j) == m &&
                 r.noisy_ids(b, j) == (m ? o.mask_id : ids(b, j)) &&
                 r.weight(b, j) == (m ? static_cast<float>(1.0 / d.p) : 0.0f);
    }
    CHECK(all_same);
  }
}

TEST_CASE("diffusion_mask golden output", "[random][diffusion]") {
  // Pinned once from this implementation (seed 2024, samples 0-1, 2 x 12, eps 1e-3); the
  // "documented draws" case above derives the same values from the Philox primitives. A change
  // here changes everybody's masks.
  const diffusion_result r = diffusion_mask(counting_ids(2, 12), llada_options(), {2024, 0});
  Eigen::Array<int, 2, 12, Eigen::RowMajor> expected;
  expected << 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0,  //
      0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1;
  INFO(r.masked.cast<int>() << "\nt = " << r.t.transpose());
  CHECK((r.masked.cast<int>() == expected).all());
  // t as its 53-bit integer: t = k * 2^-53
  CHECK(r.t(0) == 3043557920321517.0 / 9007199254740992.0);
  CHECK(r.t(1) == 1835664908372960.0 / 9007199254740992.0);
  CHECK(r.p(0) == 0.33856490518412846);
  CHECK(r.p(1) == 0.20459594493253164);
  CHECK(r.weight(0, 2) == static_cast<float>(1.0 / 0.33856490518412846));
}

TEST_CASE("diffusion_mask: masks, ids and weights agree; edge cases", "[random][diffusion]") {
  const token_matrix ids = counting_ids(8, 40);
  diffusion_options o = llada_options();
  const diffusion_result r = diffusion_mask(ids, o, {5});
  for (Index b = 0; b < 8; ++b) {
    CHECK(r.t(b) >= 0.0);
    CHECK(r.t(b) < 1.0);
    CHECK(r.p(b) >= 1e-3);
    CHECK(r.p(b) < 1.0);
    for (Index j = 0; j < 40; ++j) {
      CHECK(r.masked(b, j) == (r.noisy_ids(b, j) == o.mask_id));
      CHECK(r.weight(b, j) == (r.masked(b, j) ? static_cast<float>(1.0 / r.p(b)) : 0.0f));
    }
  }
  SECTION("eps = 1 masks everything with weight 1") {
    o.eps = 1.0;
    const diffusion_result all = diffusion_mask(ids, o, {5});
    CHECK(all.masked.all());
    CHECK((all.noisy_ids == o.mask_id).all());
    CHECK((all.weight.array() == 1.0f).all());
    CHECK((all.p.array() == 1.0).all());
  }
  SECTION("empty batches") {
    const diffusion_result none = diffusion_mask(token_matrix(0, 16), o, {5});
    CHECK(none.masked.rows() == 0);
    CHECK(none.lengths.empty());
    const diffusion_result zero = diffusion_mask(token_matrix(3, 0), o, {5});
    CHECK(zero.masked.cols() == 0);
    CHECK(zero.lengths == std::vector<Index>{0, 0, 0});
    CHECK(diffusion_loss(row_matrix<float>(3, 0), zero) == 0.0);
    CHECK(diffusion_sft_loss(row_matrix<float>(3, 0), zero) == 0.0);
  }
  SECTION("the input is not modified and blocks bind without a copy") {
    token_matrix big = counting_ids(10, 40);
    const token_matrix before = big;
    const diffusion_result part = diffusion_mask(big.middleRows(2, 8), o, {5, 2});
    CHECK((big == before).all());
    const diffusion_result whole = diffusion_mask(big, o, {5, 0});
    CHECK((part.masked == whole.masked.middleRows(2, 8)).all());
  }
}

TEST_CASE("diffusion_mask: padding and the protected prompt", "[random][diffusion]") {
  const Index B = 6, L = 32;
  const token_matrix ids = counting_ids(B, L);
  const diffusion_options o = llada_options();
  const index_list lengths = {32, 20, 0, 1, 31, 16};
  const index_list prompts = {5, 0, 3, 1, 31, 20};
  SECTION("lengths: positions past the end are never masked and keep their id") {
    const diffusion_result r = diffusion_mask(ids, lengths, o, {8});
    const diffusion_result full = diffusion_mask(ids, o, {8});
    for (Index b = 0; b < B; ++b) {
      const Index n = lengths[static_cast<std::size_t>(b)];
      CHECK(r.lengths[static_cast<std::size_t>(b)] == n);
      CHECK(r.t(b) == full.t(b));
      // the draw of a position does not depend on the row's length
      CHECK((r.masked.row(b).head(n) == full.masked.row(b).head(n)).all());
      CHECK_FALSE(r.masked.row(b).tail(L - n).any());
      CHECK((r.noisy_ids.row(b).tail(L - n) == ids.row(b).tail(L - n)).all());
      CHECK((r.weight.row(b).tail(L - n).array() == 0.0f).all());
    }
  }
  SECTION("SFT: the prompt is never masked, the answer as in pre-training") {
    const diffusion_result r = diffusion_mask_sft(ids, prompts, o, {8});
    const diffusion_result full = diffusion_mask(ids, o, {8});
    for (Index b = 0; b < B; ++b) {
      const Index n = prompts[static_cast<std::size_t>(b)];
      CHECK(r.prompt_lengths[static_cast<std::size_t>(b)] == n);
      CHECK_FALSE(r.masked.row(b).head(n).any());
      CHECK((r.noisy_ids.row(b).head(n) == ids.row(b).head(n)).all());
      CHECK((r.masked.row(b).tail(L - n) == full.masked.row(b).tail(L - n)).all());
    }
  }
  SECTION("SFT with lengths") {
    const diffusion_result r = diffusion_mask_sft(ids, prompts, lengths, o, {8});
    for (Index b = 0; b < B; ++b) {
      const Index p = prompts[static_cast<std::size_t>(b)];
      const Index n = lengths[static_cast<std::size_t>(b)];
      for (Index j = 0; j < L; ++j)
        if (j < p || j >= n) CHECK_FALSE(r.masked(b, j));
    }
  }
  SECTION("a long prompt is never masked, statistically") {
    diffusion_options all = o;
    all.eps = 0.9;  // p >= 0.9: an unprotected prompt would show masks at once
    const diffusion_result r =
        diffusion_mask_sft(counting_ids(2000, 64), std::vector<int>(2000, 48), all, {12});
    CHECK_FALSE(r.masked.leftCols(48).any());
    CHECK(r.masked.rightCols(16).count() > 2000 * 16 * 8 / 10);
  }
}

TEST_CASE("diffusion_mask: random-length cut", "[random][diffusion]") {
  diffusion_options o = llada_options();
  o.pad_id = 0;
  SECTION("cut rows end at a uniform length in [1, L] and are padded") {
    o.random_length_prob = 1.0;
    const Index B = 80000, L = 8;
    const diffusion_result r = diffusion_mask(counting_ids(B, L), o, {21});
    std::vector<double> histogram(L + 1, 0.0);
    for (Index b = 0; b < B; ++b) {
      const Index end = r.lengths[static_cast<std::size_t>(b)];
      REQUIRE(end >= 1);
      REQUIRE(end <= L);
      histogram[static_cast<std::size_t>(end)] += 1;
      REQUIRE_FALSE(r.masked.row(b).tail(L - end).any());
      REQUIRE((r.noisy_ids.row(b).tail(L - end) == 0).all());
      REQUIRE((r.weight.row(b).tail(L - end).array() == 0.0f).all());
      // the cut is documented: word 3 of the diffusion_time block and the stream after it
      word_stream s(21, static_cast<std::uint64_t>(b), purpose::diffusion_time, 0);
      for (int w = 0; w < 3; ++w) s.next();
      REQUIRE(end == 1 + static_cast<Index>(bounded(s, static_cast<std::uint32_t>(L))));
    }
    const double q = 1.0 / L, mean = B * q, sd = std::sqrt(B * q * (1 - q));
    for (Index n = 1; n <= L; ++n)
      CHECK(std::abs(histogram[static_cast<std::size_t>(n)] - mean) < 4 * sd);
  }
  SECTION("the share of cut rows is random_length_prob, and uncut rows keep their ids") {
    o.random_length_prob = 0.01;  // LLaDA pre-training
    o.pad_id = -1;
    const Index B = 1000000, L = 2;
    const token_matrix ids = counting_ids(B, L);
    const diffusion_result r = diffusion_mask(ids, o, {22});
    double cut = 0;
    for (Index b = 0; b < B; ++b) {
      const philox_block h =
          random_block(22, static_cast<std::uint64_t>(b), purpose::diffusion_time, 0);
      const bool drawn = h[2] < static_cast<std::uint64_t>(std::ceil(0.01 * 4294967296.0));
      cut += drawn ? 1 : 0;
      if (!drawn) REQUIRE(r.lengths[static_cast<std::size_t>(b)] == L);
    }
    CHECK(std::abs(cut - B * 0.01) < 4 * std::sqrt(B * 0.01 * 0.99));
    // pad_id < 0: cut positions keep their ids
    CHECK((r.noisy_ids == r.masked.select(token_matrix::Constant(B, L, o.mask_id), ids)).all());
  }
  SECTION("a cut inside given lengths") {
    o.random_length_prob = 1.0;
    const index_list lengths = {5, 1, 0};
    const diffusion_result r = diffusion_mask(counting_ids(3, 6), lengths, o, {4});
    CHECK(r.lengths[0] >= 1);
    CHECK(r.lengths[0] <= 5);
    CHECK(r.lengths[1] == 1);
    CHECK(r.lengths[2] == 0);
  }
}

TEST_CASE("diffusion_mask statistics", "[random][diffusion]") {
  const diffusion_options o = llada_options();
  SECTION("mask rate given p, over 10^6 tokens") {
    const Index B = 4096, L = 256;
    const diffusion_result r = diffusion_mask(counting_ids(B, L), o, {31});
    double mean = 0, var = 0;
    for (Index b = 0; b < B; ++b) {
      const double q = std::ceil(r.p(b) * 4294967296.0) / 4294967296.0;  // realized probability
      mean += L * q;
      var += L * q * (1 - q);
    }
    CHECK(std::abs(static_cast<double>(r.masked.count()) - mean) < 4 * std::sqrt(var));
  }
  SECTION("t is uniform: mean and variance of p") {
    const Index B = 1 << 20;
    const diffusion_result r = diffusion_mask(token_matrix(B, 1), o, {32});
    const double eps = 1e-3, mean = (1 - eps) / 2 + eps, sd = (1 - eps) / std::sqrt(12.0);
    CHECK(std::abs(r.p.mean() - mean) < 4 * sd / std::sqrt(static_cast<double>(B)));
    CHECK(std::abs(r.t.mean() - 0.5) < 4 / std::sqrt(12.0 * B));
    // the fraction of t below 1/4 (a check of the shape, not only of the mean)
    const double low = static_cast<double>((r.t.array() < 0.25).count());
    CHECK(std::abs(low - B * 0.25) < 4 * std::sqrt(B * 0.25 * 0.75));
  }
  SECTION("unbiased: E[sum over masked of 1 / p] = L") {
    const Index B = 16384, L = 64;
    const diffusion_result r = diffusion_mask(counting_ids(B, L), o, {33});
    const Eigen::VectorXd x = r.weight.cast<double>().rowwise().sum();
    const double mean = x.mean();
    const double sd = std::sqrt((x.array() - mean).square().sum() / (B - 1));
    CHECK(std::abs(mean - L) < 4 * sd / std::sqrt(static_cast<double>(B)));
  }
}

TEST_CASE("diffusion_mask reproducibility", "[random][diffusion]") {
  diffusion_options o = llada_options();
  o.random_length_prob = 0.3;
  o.pad_id = 1;
  const Index B = 64, L = 512;  // B * L >= 16384: the OpenMP path when it is there
  const token_matrix ids = counting_ids(B, L);
  std::vector<Index> prompts(static_cast<std::size_t>(B));
  for (Index b = 0; b < B; ++b) prompts[static_cast<std::size_t>(b)] = b % 40;
  const diffusion_result all = diffusion_mask_sft(ids, prompts, o, {99, 500});
  CHECK(same(all, diffusion_mask_sft(ids, prompts, o, {99, 500})));
  SECTION("batch split") {
    const std::vector<Index> head(prompts.begin(), prompts.begin() + 24);
    const std::vector<Index> tail(prompts.begin() + 24, prompts.end());
    const diffusion_result a = diffusion_mask_sft(ids.topRows(24), head, o, {99, 500});
    const diffusion_result c = diffusion_mask_sft(ids.bottomRows(40), tail, o, {99, 524});
    CHECK((a.masked == all.masked.topRows(24)).all());
    CHECK((c.masked == all.masked.bottomRows(40)).all());
    CHECK((c.noisy_ids == all.noisy_ids.bottomRows(40)).all());
    CHECK(c.weight == all.weight.bottomRows(40));
    CHECK(c.p == all.p.tail(40));
    CHECK(std::vector<Index>(all.lengths.begin() + 24, all.lengths.end()) == c.lengths);
  }
  SECTION("another seed or sample gives another mask") {
    CHECK_FALSE((diffusion_mask_sft(ids, prompts, o, {98, 500}).masked == all.masked).all());
    CHECK_FALSE((diffusion_mask_sft(ids, prompts, o, {99, 501}).masked == all.masked).all());
  }
#if EMASK_HAS_OPENMP
  SECTION("1 vs 2 threads") {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const diffusion_result one = diffusion_mask_sft(ids, prompts, o, {99, 500});
    omp_set_num_threads(2);
    const diffusion_result two = diffusion_mask_sft(ids, prompts, o, {99, 500});
    omp_set_num_threads(saved);
    CHECK(same(one, all));
    CHECK(same(two, all));
  }
#endif
}

TEST_CASE("diffusion losses against a double-precision hand computation",
          "[random][diffusion][loss]") {
  const Index B = 3, L = 10;
  diffusion_options o = llada_options();
  const token_matrix ids = counting_ids(B, L);
  row_matrix<float> nll(B, L);
  for (Index b = 0; b < B; ++b)
    for (Index j = 0; j < L; ++j) nll(b, j) = 0.25f * static_cast<float>(1 + (b * 3 + j) % 7);
  SECTION("pre-training: sum over masked of nll / p, divided by b * l") {
    const diffusion_result r = diffusion_mask(ids, o, {40});
    REQUIRE(r.masked.count() > 0);
    double expected = 0;
    for (Index b = 0; b < B; ++b)
      for (Index j = 0; j < L; ++j)
        if (r.masked(b, j)) expected += static_cast<double>(nll(b, j)) / r.p(b);
    expected /= B * L;
    CHECK_THAT(diffusion_loss(nll, r), Catch::Matchers::WithinRel(expected, 1e-14));
    CHECK_THAT(diffusion_loss(nll.cast<double>(), r), Catch::Matchers::WithinRel(expected, 1e-14));
    // unmasked positions are not read: NaN there changes nothing
    row_matrix<float> holes = nll;
    for (Index b = 0; b < B; ++b)
      for (Index j = 0; j < L; ++j)
        if (!r.masked(b, j)) holes(b, j) = std::numeric_limits<float>::quiet_NaN();
    CHECK(diffusion_loss(holes, r) == diffusion_loss(nll, r));
  }
  SECTION("pre-training with lengths: divided by the real positions") {
    const index_list lengths = {10, 4, 7};
    const diffusion_result r = diffusion_mask(ids, lengths, o, {41});
    double expected = 0;
    for (Index b = 0; b < B; ++b)
      for (Index j = 0; j < L; ++j)
        if (r.masked(b, j)) expected += static_cast<double>(nll(b, j)) / r.p(b);
    expected /= 21;
    CHECK_THAT(diffusion_loss(nll, r), Catch::Matchers::WithinRel(expected, 1e-14));
  }
  SECTION("SFT: per-token nll / p / answer length, summed, divided by b") {
    o.eps = 0.5;
    const index_list prompts = {3, 0, 10};  // the last row has no answer
    const diffusion_result r = diffusion_mask_sft(ids, prompts, o, {42});
    double expected = 0;
    for (Index b = 0; b < B; ++b)
      for (Index j = 0; j < L; ++j)
        if (r.masked(b, j))
          expected += static_cast<double>(nll(b, j)) / r.p(b) /
                      static_cast<double>(L - prompts[static_cast<std::size_t>(b)]);
    expected /= B;
    REQUIRE(expected > 0);
    CHECK_THAT(diffusion_sft_loss(nll, r), Catch::Matchers::WithinRel(expected, 1e-14));
  }
  SECTION("a tiny hand case") {
    // two rows of two tokens, eps = 1: every token masked, p = 1
    o.eps = 1.0;
    const diffusion_result r = diffusion_mask(counting_ids(2, 2), o, {1});
    row_matrix<double> x(2, 2);
    x << 1.0, 2.0, 3.0, 6.0;
    CHECK(diffusion_loss(x, r) == 3.0);  // 12 / 4
    const diffusion_result s = diffusion_mask_sft(counting_ids(2, 2), {1, 0}, o, {1});
    CHECK(diffusion_sft_loss(x, s) == 3.25);  // (2 / 1 + 9 / 2) / 2
  }
  SECTION("errors") {
    const diffusion_result r = diffusion_mask(ids, o, {40});
    REQUIRE_THROWS_WITH(
        diffusion_loss(row_matrix<float>(B, L + 1), r),
        Contains("emask::diffusion_loss: argument 'nll' = 3x11") && Contains("3x10"));
    REQUIRE_THROWS_WITH(diffusion_sft_loss(row_matrix<float>(B + 1, L), r),
                        Contains("emask::diffusion_sft_loss: argument 'nll'"));
    Index b0 = 0, j0 = 0;
    for (Index k = 0; k < B * L; ++k)
      if (r.masked(k / L, k % L)) {
        b0 = k / L;
        j0 = k % L;
        break;
      }
    row_matrix<float> bad = nll;
    bad(b0, j0) = std::numeric_limits<float>::quiet_NaN();
    REQUIRE_THROWS_WITH(diffusion_loss(bad, r),
                        Contains(detail::concat("argument 'nll[", b0, ", ", j0, "]' = nan")) &&
                            Contains("finite negative log-likelihood at a masked position"));
    bad(b0, j0) = std::numeric_limits<float>::infinity();
    REQUIRE_THROWS_WITH(diffusion_sft_loss(bad, r), Contains("= inf"));
    diffusion_result broken = r;
    broken.lengths.pop_back();
    REQUIRE_THROWS_WITH(diffusion_loss(nll, broken), Contains("argument 'result'"));
  }
}

TEST_CASE("diffusion_mask errors name the argument", "[random][diffusion][errors]") {
  const token_matrix ids = counting_ids(2, 8);
  diffusion_options o = llada_options();
  SECTION("options") {
    diffusion_options bad = o;
    bad.vocab_size = 0;
    REQUIRE_THROWS_WITH(diffusion_mask(ids, bad),
                        Contains("emask::diffusion_mask: argument 'vocab_size' = 0"));
    bad = o;
    bad.mask_id = 1000;
    REQUIRE_THROWS_WITH(diffusion_mask(ids, bad),
                        Contains("argument 'mask_id' = 1000, expected an id inside the "
                                 "vocabulary [0, 1000)"));
    bad.mask_id = -1;
    REQUIRE_THROWS_WITH(diffusion_mask(ids, bad), Contains("argument 'mask_id' = -1"));
    for (double eps : {0.0, -0.5, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
      bad = o;
      bad.eps = eps;
      REQUIRE_THROWS_WITH(diffusion_mask(ids, bad),
                          Contains("argument 'eps'") && Contains("(0, 1]"));
    }
    for (double q : {-0.1, 1.1, std::numeric_limits<double>::quiet_NaN()}) {
      bad = o;
      bad.random_length_prob = q;
      REQUIRE_THROWS_WITH(diffusion_mask(ids, bad), Contains("argument 'random_length_prob'") &&
                                                        Contains("a probability in [0, 1]"));
    }
    bad = o;
    bad.pad_id = 1000;
    REQUIRE_THROWS_WITH(diffusion_mask(ids, bad), Contains("argument 'pad_id' = 1000"));
  }
  SECTION("lengths and prompt lengths") {
    REQUIRE_THROWS_WITH(diffusion_mask(ids, {8}, o),
                        Contains("argument 'lengths' = 1 entries, expected 2 entries"));
    REQUIRE_THROWS_WITH(diffusion_mask(ids, {8, 9}, o),
                        Contains("argument 'lengths[1]' = 9, expected a length in [0, 8]"));
    REQUIRE_THROWS_WITH(diffusion_mask(ids, {-1, 3}, o), Contains("'lengths[0]' = -1"));
    REQUIRE_THROWS_WITH(diffusion_mask_sft(ids, {1, 2, 3}, o),
                        Contains("emask::diffusion_mask_sft: argument 'prompt_lengths' = 3 "
                                 "entries"));
    REQUIRE_THROWS_WITH(diffusion_mask_sft(ids, {1, 9}, {8, 8}, o),
                        Contains("'prompt_lengths[1]' = 9"));
    REQUIRE_THROWS_WITH(diffusion_mask_sft(ids, {1, 2}, {8, 18}, o), Contains("'lengths[1]' = 18"));
  }
}
