// BEiT blockwise, SimMIM and data2vec 2.0 inverse block masks: goldens, plain references
// written from docs/random.md, statistics, reproducibility, errors.
#include <emask/random/block_masks.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "catch.hpp"

#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

using namespace emask;
using Catch::Matchers::Contains;

namespace {
// Sample b of m as strings, 'x' = masked.
std::vector<std::string> picture(const patch_grid_mask& m, Index b) {
  std::vector<std::string> rows;
  const bool_matrix g = m.grid(b);
  for (Index i = 0; i < g.rows(); ++i) {
    std::string s;
    for (Index j = 0; j < g.cols(); ++j) s += g(i, j) ? 'x' : '.';
    rows.push_back(s);
  }
  return rows;
}

// BEiT as docs/random.md states it, one attempt at a time, always through portable_exp (the
// library may skip it with std::exp when the result cannot change).
std::vector<char> beit_reference(const beit_mask_options& o, std::uint64_t seed,
                                 std::uint64_t sample) {
  const Index H = o.height, W = o.width, N = o.num_masking_patches;
  const Index max_p = o.max_num_patches ? *o.max_num_patches : N;
  const double max_a = o.max_aspect ? *o.max_aspect : 1.0 / o.min_aspect;
  const double log_lo = detail::portable_log(o.min_aspect);
  const double log_span = detail::portable_log(max_a) - log_lo;
  std::vector<char> m(static_cast<std::size_t>(H * W), 0);
  Index count = 0;
  std::uint32_t a = 0;
  while (count < N) {
    const Index mm = std::min(N - count, max_p);
    Index delta = 0;
    for (int k = 0; k < 10; ++k) {
      word_stream s(seed, sample, purpose::beit_block, a++);
      const double u1 = static_cast<double>(s.next()) / 4294967296.0;
      const double u2 = static_cast<double>(s.next()) / 4294967296.0;
      const double area = std::fma(static_cast<double>(mm) - static_cast<double>(o.min_num_patches),
                                   u1, static_cast<double>(o.min_num_patches));
      const double aspect = detail::portable_exp(std::fma(log_span, u2, log_lo));
      const double h = detail::round_half_even(std::sqrt(area * aspect));
      const double w = detail::round_half_even(std::sqrt(area / aspect));
      if (w < static_cast<double>(W) && h < static_cast<double>(H)) {
        const auto hi = static_cast<Index>(h), wi = static_cast<Index>(w);
        const Index top = bounded(s, static_cast<std::uint32_t>(H - hi + 1));
        const Index left = bounded(s, static_cast<std::uint32_t>(W - wi + 1));
        Index already = 0;
        for (Index i = top; i < top + hi; ++i)
          for (Index j = left; j < left + wi; ++j)
            already += m[static_cast<std::size_t>(i * W + j)];
        if (0 < hi * wi - already && hi * wi - already <= mm) {
          for (Index i = top; i < top + hi; ++i)
            for (Index j = left; j < left + wi; ++j) m[static_cast<std::size_t>(i * W + j)] = 1;
          delta = hi * wi - already;
          break;
        }
      }
    }
    if (delta == 0) break;
    count += delta;
  }
  return m;
}

// data2vec 2.0 as docs/random.md states it.
std::vector<char> data2vec_reference(const data2vec_mask_options& o, std::uint64_t seed,
                                     std::uint64_t sample) {
  const Index H = o.height, W = o.width, L = H * W, ml = o.mask_length;
  const double p = o.inverse_mask ? 1.0 - o.mask_prob : o.mask_prob;
  const auto centres = static_cast<Index>(
      static_cast<double>(L) * ((p + o.mask_prob_adjust) / static_cast<double>(ml * ml)));
  std::vector<char> m(static_cast<std::size_t>(L), 0);
  for (Index c = 0; c < centres; ++c) {
    word_stream s(seed, sample, purpose::data2vec_block, static_cast<std::uint32_t>(c));
    const Index idx = bounded(s, static_cast<std::uint32_t>(L));
    for (Index di = 0; di < ml; ++di)
      for (Index dj = 0; dj < ml; ++dj) {
        const Index i = std::min(std::max(idx / W + di - ml / 2, Index{0}), H - 1);
        const Index j = std::min(std::max(idx % W + dj - ml / 2, Index{0}), W - 1);
        m[static_cast<std::size_t>(i * W + j)] = 1;
      }
  }
  if (o.require_same_masks) {
    const auto target = static_cast<Index>(static_cast<double>(L) * p);
    Index n = 0;
    for (char v : m) n += v;
    const char from = n > target ? 1 : 0;
    std::vector<std::uint64_t> keys;
    for (Index c = 0; c < L; ++c)
      if (m[static_cast<std::size_t>(c)] == from)
        keys.push_back((std::uint64_t{packed_word(seed, sample, purpose::data2vec_block,
                                                  (std::uint64_t{1} << 33) + c)}
                        << 32) |
                       static_cast<std::uint64_t>(c));
    std::sort(keys.begin(), keys.end());
    const Index flips = n > target ? n - target : target - n;
    for (Index k = 0; k < flips; ++k)
      m[static_cast<std::uint32_t>(keys[static_cast<std::size_t>(k)])] = static_cast<char>(!from);
  }
  if (o.inverse_mask)
    for (char& v : m) v = static_cast<char>(!v);
  return m;
}

bool row_equals(const patch_grid_mask& r, Index b, const std::vector<char>& ref) {
  for (Index c = 0; c < r.masked.cols(); ++c)
    if (r.masked(b, c) != (ref[static_cast<std::size_t>(c)] != 0)) return false;
  return true;
}
}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("beit_block_mask golden output", "[random][beit]") {
  SECTION(
      "a small grid (pinned: printed once from this implementation, checked by the reference)") {
    beit_mask_options o;
    o.height = 6;
    o.width = 5;
    o.num_masking_patches = 12;
    o.min_num_patches = 2;
    o.max_num_patches = 8;
    o.min_aspect = 0.5;
    const patch_grid_mask r = beit_block_mask(2, o, {2024});
    CHECK(r.height == 6);
    CHECK(r.width == 5);
    CHECK(picture(r, 0) ==
          std::vector<std::string>{"..xx.", ".xxxx", ".xxxx", "...xx", ".....", "....."});
    CHECK(picture(r, 1) ==
          std::vector<std::string>{"..x..", "..x..", "xx...", "xx...", "..xxx", "..xxx"});
  }
  SECTION("BEiT's defaults, 14 x 14 and 75 patches") {
    const patch_grid_mask r = beit_block_mask(8, {}, {2024, 7});
    std::vector<Index> counts(8);
    for (Index b = 0; b < 8; ++b) counts[static_cast<std::size_t>(b)] = r.counts()(b);
    CHECK(counts == std::vector<Index>{75, 72, 74, 75, 74, 74, 75, 75});
    CHECK(picture(r, 0) ==
          std::vector<std::string>{"..............", "...xxx........", "...xxx........",
                                   "...xxx........", "...xxx........", "...xxx........",
                                   "........xx....", "..xxxxxxxx....", "..xxxxxxxx....",
                                   "..xxxxxxxx....", "..xxxxxxxx....", "..xxxxxxxx....",
                                   ".xxxxxxxxx....", ".xxxxxxxxx...."});
  }
  SECTION("hand-derived: a 2 x 2 grid and blocks of exactly one patch") {
    // area = fma(1 - 1, u, 1) = 1 and aspect = exp(0) = 1, so h = w = 1 < 2; the first attempt
    // takes top = bounded(2) and left = bounded(2) from words 2 and 3 of block (beit_block,
    // index 0): 2^32 mod 2 = 0, so no rejection and each is the word's top bit.
    beit_mask_options o;
    o.height = 2;
    o.width = 2;
    o.num_masking_patches = 1;
    o.min_num_patches = 1;
    o.min_aspect = 1.0;
    for (std::uint64_t s = 0; s < 16; ++s) {
      const patch_grid_mask r = beit_block_mask(1, o, {99, s});
      const philox_block w = random_block(99, s, purpose::beit_block, 0);
      const Index cell = static_cast<Index>((w[2] >> 31) * 2 + (w[3] >> 31));
      REQUIRE(r.counts()(0) == 1);
      CHECK(r.masked(0, cell));
    }
  }
}

TEST_CASE("beit_block_mask equals the plain reference of the docs", "[random][beit]") {
  std::vector<beit_mask_options> configs(4);
  configs[1].height = 7;
  configs[1].width = 11;
  configs[1].num_masking_patches = 30;
  configs[1].min_num_patches = 4;
  configs[1].max_num_patches = 12;
  configs[2].min_aspect = 0.2;
  configs[2].max_aspect = 2.5;
  configs[2].num_masking_patches = 118;  // 60 %, as BEiT v2
  configs[3].height = 3;
  configs[3].width = 4;
  configs[3].num_masking_patches = 9;
  configs[3].min_num_patches = 1;
  for (const beit_mask_options& o : configs) {
    const Index B = 1500;
    const patch_grid_mask r = beit_block_mask(B, o, {77, 1000});
    bool same = true;
    for (Index b = 0; b < B && same; ++b)
      same = row_equals(r, b, beit_reference(o, 77, 1000 + static_cast<std::uint64_t>(b)));
    CHECK(same);
    CHECK((r.counts().array() <= o.num_masking_patches).all());
  }
}

TEST_CASE("beit_block_mask statistics", "[random][beit]") {
  // Against BEiT's own algorithm run with Python's random: 10^6 masks of the pure-Python
  // transcription of masking_generator.py (14 x 14, 75, min 16, aspect 0.3) gave
  //   mean count 74.471508, variance 0.9732962, corner (0, 0) rate 0.042191, centre (7, 7)
  //   0.716206 (random.seed(12345)). emask must agree within 4 sigma of the combined error.
  const Index B = 200000;
  const patch_grid_mask r = beit_block_mask(B, {}, {31337});
  const Eigen::Matrix<Index, Eigen::Dynamic, 1> counts = r.counts();
  const double mean = counts.cast<double>().mean();
  constexpr double py_n = 1e6, py_mean = 74.471508, py_var = 0.9732962, py_corner = 0.042191,
                   py_centre = 0.716206;
  CHECK(std::abs(mean - py_mean) < 4 * std::sqrt(py_var / static_cast<double>(B) + py_var / py_n));
  const auto rate_close = [&](Index cell, double py_rate) {
    const double rate = static_cast<double>(r.masked.col(cell).count()) / static_cast<double>(B);
    const double var = py_rate * (1 - py_rate);
    return std::abs(rate - py_rate) < 4 * std::sqrt(var / static_cast<double>(B) + var / py_n);
  };
  CHECK(rate_close(0, py_corner));
  CHECK(rate_close(7 * 14 + 7, py_centre));
  CHECK(counts.maxCoeff() <= 75);
  // Mirror symmetry of the per-cell rates (area, aspect and position are symmetric draws).
  bool symmetric = true;
  for (Index i = 0; i < 14; ++i)
    for (Index j = 0; j < 14; ++j) {
      const double a = static_cast<double>(r.masked.col(i * 14 + j).count());
      const double b = static_cast<double>(r.masked.col((13 - i) * 14 + (13 - j)).count());
      symmetric = symmetric && std::abs(a - b) < 4 * std::sqrt(a + b + 1);
    }
  CHECK(symmetric);
}

TEST_CASE("beit_block_mask edge cases and reproducibility", "[random][beit]") {
  SECTION("a budget larger than the grid stops when no rectangle adds anything") {
    beit_mask_options o;
    o.num_masking_patches = 1000;
    o.min_num_patches = 4;
    const patch_grid_mask r = beit_block_mask(50, o, {5});
    CHECK((r.counts().array() <= 196).all());
    CHECK(r.counts().maxCoeff() > 75);  // areas up to 1000 rarely fit: many stop early
  }
  SECTION("one row: h < height forces h = 0, nothing is ever masked (as BEiT)") {
    beit_mask_options o;
    o.height = 1;
    o.width = 20;
    o.num_masking_patches = 5;
    o.min_num_patches = 1;
    CHECK_FALSE(beit_block_mask(20, o, {5}).masked.any());
  }
  SECTION("zero budget, zero batch") {
    beit_mask_options o;
    o.num_masking_patches = 0;
    CHECK_FALSE(beit_block_mask(4, o, {5}).masked.any());
    const patch_grid_mask e = beit_block_mask(0, {}, {5});
    CHECK(e.masked.rows() == 0);
    CHECK(e.masked.cols() == 196);
  }
  SECTION("kept() is the complement") {
    const patch_grid_mask r = beit_block_mask(3, {}, {5});
    CHECK((r.kept() == !r.masked).all());
  }
  SECTION("batch split, threads, seeds") {
    const patch_grid_mask whole = beit_block_mask(200, {}, {8, 40});
    const patch_grid_mask tail = beit_block_mask(50, {}, {8, 190});
    CHECK((tail.masked == whole.masked.bottomRows(50)).all());
    CHECK_FALSE((beit_block_mask(200, {}, {9, 40}).masked == whole.masked).all());
#if EMASK_HAS_OPENMP
    const int before = omp_get_max_threads();
    omp_set_num_threads(1);
    const patch_grid_mask one = beit_block_mask(200, {}, {8, 40});
    omp_set_num_threads(2);
    const patch_grid_mask two = beit_block_mask(200, {}, {8, 40});
    omp_set_num_threads(before);
    CHECK((one.masked == whole.masked).all());
    CHECK((two.masked == whole.masked).all());
#endif
  }
}

TEST_CASE("beit_block_mask errors name the argument", "[random][beit][errors]") {
  beit_mask_options o;
  REQUIRE_THROWS_WITH(beit_block_mask(-1, o),
                      Contains("emask::beit_block_mask: argument 'batch' = -1"));
  o.height = 0;
  REQUIRE_THROWS_WITH(beit_block_mask(1, o), Contains("'options.height' = 0"));
  o = {};
  o.width = 20000;
  REQUIRE_THROWS_WITH(beit_block_mask(1, o), Contains("'options.width' = 20000"));
  o = {};
  o.num_masking_patches = -3;
  REQUIRE_THROWS_WITH(beit_block_mask(1, o), Contains("'options.num_masking_patches' = -3"));
  o = {};
  o.min_num_patches = -1;
  REQUIRE_THROWS_WITH(beit_block_mask(1, o), Contains("'options.min_num_patches' = -1"));
  o = {};
  o.max_num_patches = 0;
  REQUIRE_THROWS_WITH(beit_block_mask(1, o), Contains("'options.max_num_patches' = 0"));
  o = {};
  o.min_aspect = 0.0;
  REQUIRE_THROWS_WITH(beit_block_mask(1, o), Contains("'options.min_aspect' = 0"));
  o.min_aspect = std::nan("");
  REQUIRE_THROWS_WITH(beit_block_mask(1, o), Contains("'options.min_aspect' = nan"));
  o = {};
  o.max_aspect = 1e9;
  REQUIRE_THROWS_WITH(beit_block_mask(1, o), Contains("'options.max_aspect' = 1e+09"));
  REQUIRE_THROWS_WITH(patch_grid_mask{}.grid(0), Contains("patch_grid_mask::grid"));
}

// ---------------------------------------------------------------------------------------------

TEST_CASE("simmim_mask golden output and structure", "[random][simmim]") {
  SECTION("hand-derived small case: 2 x 2 mask patches of 2 x 2 model patches, 2 masked") {
    simmim_mask_options o;
    o.input_size = 8;
    o.mask_patch_size = 4;
    o.model_patch_size = 2;
    o.mask_ratio = 0.5;
    CHECK(simmim_mask_count(o) == 2);
    const patch_grid_mask r = simmim_mask(2, o, {2024});
    CHECK(picture(r, 0) == std::vector<std::string>{"....", "....", "xxxx", "xxxx"});
    CHECK(picture(r, 1) == std::vector<std::string>{"xxxx", "xxxx", "....", "...."});
    // Derivation: mask patch q is masked iff its packed word is among the two smallest.
    for (std::uint64_t b = 0; b < 2; ++b) {
      std::vector<std::uint64_t> keys;
      for (std::uint32_t q = 0; q < 4; ++q)
        keys.push_back(detail::noise_key(packed_word(2024, b, purpose::simmim_noise, q), q));
      std::sort(keys.begin(), keys.end());
      for (int k = 0; k < 2; ++k) {
        const auto q = static_cast<Index>(static_cast<std::uint32_t>(keys[k]));
        CHECK(r.masked(static_cast<Index>(b), (q / 2) * 2 * 4 + (q % 2) * 2));
      }
    }
  }
  SECTION("SimMIM's defaults: 48 x 48 model patches, 22 of 36 mask patches") {
    CHECK(simmim_mask_count() == 22);  // ceil(36 * 0.6) = ceil(21.599999999999998)
    const patch_grid_mask r = simmim_mask(40, {}, {2024});
    CHECK(r.height == 48);
    CHECK(r.width == 48);
    CHECK((r.counts().array() == 22 * 64).all());
    bool blocks = true;  // every 8 x 8 block is uniform
    for (Index b = 0; b < 40; ++b) {
      const bool_matrix g = r.grid(b);
      for (Index i = 0; i < 48; ++i)
        for (Index j = 0; j < 48; ++j) blocks = blocks && g(i, j) == g(i / 8 * 8, j / 8 * 8);
    }
    CHECK(blocks);
  }
  SECTION("ratios 0 and 1, count rounding") {
    simmim_mask_options o;
    o.mask_ratio = 0.0;
    CHECK_FALSE(simmim_mask(3, o, {1}).masked.any());
    o.mask_ratio = 1.0;
    CHECK(simmim_mask(3, o, {1}).masked.all());
    o.mask_ratio = 0.5;
    CHECK(simmim_mask_count(o) == 18);
    o.mask_ratio = 0.01;
    CHECK(simmim_mask_count(o) == 1);
  }
}

TEST_CASE("simmim_mask statistics and reproducibility", "[random][simmim]") {
  SECTION("every mask patch is masked with probability mask_count / tokens") {
    simmim_mask_options o;
    o.model_patch_size = 32;  // one model patch per mask patch: 6 x 6
    const Index B = 50000;    // 1.8 * 10^6 draws
    const patch_grid_mask r = simmim_mask(B, o, {404});
    const double p = 22.0 / 36.0;
    bool ok = true;
    for (Index q = 0; q < 36; ++q) {
      const double n = static_cast<double>(r.masked.col(q).count());
      ok = ok && std::abs(n - p * B) < 4 * std::sqrt(B * p * (1 - p));
    }
    CHECK(ok);
  }
  SECTION("batch split and threads") {
    const patch_grid_mask whole = simmim_mask(24, {}, {5, 10});
    CHECK((simmim_mask(4, {}, {5, 30}).masked == whole.masked.bottomRows(4)).all());
#if EMASK_HAS_OPENMP
    const int before = omp_get_max_threads();
    omp_set_num_threads(1);
    const patch_grid_mask one = simmim_mask(24, {}, {5, 10});
    omp_set_num_threads(2);
    const patch_grid_mask two = simmim_mask(24, {}, {5, 10});
    omp_set_num_threads(before);
    CHECK((one.masked == whole.masked).all());
    CHECK((two.masked == whole.masked).all());
#endif
  }
}

TEST_CASE("simmim_mask errors name the argument", "[random][simmim][errors]") {
  simmim_mask_options o;
  REQUIRE_THROWS_WITH(simmim_mask(-2, o), Contains("emask::simmim_mask: argument 'batch' = -2"));
  o.mask_patch_size = 30;
  REQUIRE_THROWS_WITH(simmim_mask(1, o),
                      Contains("'options.mask_patch_size' = 30") && Contains("divisor"));
  o = {};
  o.model_patch_size = 5;
  REQUIRE_THROWS_WITH(simmim_mask(1, o), Contains("'options.model_patch_size' = 5"));
  o = {};
  o.input_size = 0;
  REQUIRE_THROWS_WITH(simmim_mask(1, o), Contains("'options.input_size' = 0"));
  o = {};
  o.mask_ratio = 1.5;
  REQUIRE_THROWS_WITH(simmim_mask_count(o),
                      Contains("emask::simmim_mask_count: argument 'options.mask_ratio' = 1.5"));
}

// ---------------------------------------------------------------------------------------------

TEST_CASE("data2vec_block_mask golden output", "[random][data2vec]") {
  SECTION("data2vec 2.0 defaults (pinned)") {
    const patch_grid_mask r = data2vec_block_mask(2, {}, {2024});
    CHECK((r.counts().array() == 157).all());  // 196 - int(196 * (1 - 0.8)) = 196 - 39
    CHECK(picture(r, 0) ==
          std::vector<std::string>{"xxxxxxxx...xxx", "...xxxxx...xxx", "...xxxxx...xxx",
                                   "...xxxxxxxxx..", "xxxxxxxxxxxxx.", "xxxxxxxxxxxx.x",
                                   "...xxxxxxxxxxx", "...xxxxx...xxx", "...xxxxx..xxxx",
                                   "xxxxxxxx...xxx", "xxxxxxxxxxxxxx", "xxxxxxxxxxxxxx",
                                   "xxxxxxxxxxxxxx", "xxxxxxxxxxxxxx"});
  }
  SECTION("hand-derived: one centre, no inversion, no equalisation") {
    // int(35 * (0.3 / 9)) = 1 centre = bounded(35) from the stream (data2vec_block, index 0);
    // its 3 x 3 block is clamped to the 5 x 7 grid.
    data2vec_mask_options o;
    o.height = 5;
    o.width = 7;
    o.mask_prob = 0.3;
    o.mask_prob_adjust = 0.0;
    o.inverse_mask = false;
    o.require_same_masks = false;
    const patch_grid_mask r = data2vec_block_mask(2, o, {2024});
    CHECK(picture(r, 0) ==
          std::vector<std::string>{"....xxx", "....xxx", "....xxx", ".......", "......."});
    CHECK(picture(r, 1) ==
          std::vector<std::string>{".......", ".......", ".......", ".....xx", ".....xx"});
    word_stream s(2024, 1, purpose::data2vec_block, 0);
    CHECK(bounded(s, 35) == 4 * 7 + 6);  // the centre of sample 1: bottom-right corner
  }
}

TEST_CASE("data2vec_block_mask equals the plain reference of the docs", "[random][data2vec]") {
  std::vector<data2vec_mask_options> configs(5);
  configs[1].inverse_mask = false;
  configs[2].require_same_masks = false;
  configs[3].height = 9;
  configs[3].width = 13;
  configs[3].mask_length = 2;
  configs[3].mask_prob = 0.6;
  configs[4].mask_length = 5;
  configs[4].mask_prob = 0.5;
  configs[4].mask_prob_adjust = 0.2;
  for (const data2vec_mask_options& o : configs) {
    const Index B = 400;
    const patch_grid_mask r = data2vec_block_mask(B, o, {12, 3000});
    bool same = true;
    for (Index b = 0; b < B && same; ++b)
      same = row_equals(r, b, data2vec_reference(o, 12, 3000 + static_cast<std::uint64_t>(b)));
    CHECK(same);
    if (o.require_same_masks) {
      const Index L = o.height * o.width;
      const auto set = static_cast<Index>(static_cast<double>(L) *
                                          (o.inverse_mask ? 1.0 - o.mask_prob : o.mask_prob));
      CHECK((r.counts().array() == (o.inverse_mask ? L - set : set)).all());
    }
  }
}

TEST_CASE("data2vec_block_mask statistics, edges and reproducibility", "[random][data2vec]") {
  SECTION("per-cell rates are mirror symmetric") {
    const Index B = 20000;  // 20000 x 196 cells
    const patch_grid_mask r = data2vec_block_mask(B, {}, {77});
    bool symmetric = true;
    for (Index c = 0; c < 196; ++c) {
      const double a = static_cast<double>(r.masked.col(c).count());
      const double b = static_cast<double>(r.masked.col(195 - c).count());
      symmetric = symmetric && std::abs(a - b) < 4 * std::sqrt(a + b + 1);
    }
    CHECK(symmetric);
  }
  SECTION("mask_prob 1 masks everything, 0 nothing (inverse) ") {
    data2vec_mask_options o;
    o.mask_prob = 1.0;
    CHECK(data2vec_block_mask(3, o, {1}).masked.all());
    o.mask_prob = 0.0;
    o.mask_prob_adjust = 0.0;
    CHECK_FALSE(data2vec_block_mask(3, o, {1}).masked.any());
  }
  SECTION("blocks larger than the grid") {
    data2vec_mask_options o;
    o.height = 2;
    o.width = 3;
    o.mask_length = 7;
    o.mask_prob = 0.5;
    CHECK((data2vec_block_mask(5, o, {1}).counts().array() == 3).all());
  }
  SECTION("batch split and threads") {
    const patch_grid_mask whole = data2vec_block_mask(300, {}, {6, 0});
    CHECK((data2vec_block_mask(100, {}, {6, 200}).masked == whole.masked.bottomRows(100)).all());
#if EMASK_HAS_OPENMP
    const int before = omp_get_max_threads();
    omp_set_num_threads(1);
    const patch_grid_mask one = data2vec_block_mask(300, {}, {6, 0});
    omp_set_num_threads(2);
    const patch_grid_mask two = data2vec_block_mask(300, {}, {6, 0});
    omp_set_num_threads(before);
    CHECK((one.masked == whole.masked).all());
    CHECK((two.masked == whole.masked).all());
#endif
  }
}

TEST_CASE("data2vec_block_mask errors name the argument", "[random][data2vec][errors]") {
  data2vec_mask_options o;
  REQUIRE_THROWS_WITH(data2vec_block_mask(-1, o),
                      Contains("emask::data2vec_block_mask: argument 'batch' = -1"));
  o.mask_length = 1;
  REQUIRE_THROWS_WITH(data2vec_block_mask(1, o), Contains("'options.mask_length' = 1"));
  o = {};
  o.mask_prob = -0.1;
  REQUIRE_THROWS_WITH(data2vec_block_mask(1, o), Contains("'options.mask_prob' = -0.1"));
  o = {};
  o.mask_prob_adjust = std::nan("");
  REQUIRE_THROWS_WITH(data2vec_block_mask(1, o), Contains("'options.mask_prob_adjust' = nan"));
  o = {};
  o.height = -4;
  REQUIRE_THROWS_WITH(data2vec_block_mask(1, o), Contains("'options.height' = -4"));
  o = {};
  o.width = 0;
  REQUIRE_THROWS_WITH(data2vec_block_mask(1, o), Contains("'options.width' = 0"));
}
