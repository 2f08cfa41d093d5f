// wav2vec 2.0 / SpecAugment span masks: goldens, a plain reference written from
// docs/random.md, HF's count rules, statistics, padding, reproducibility, errors.
#include <emask/random/audio_span.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "catch.hpp"

#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

using namespace emask;
using Catch::Matchers::Contains;

namespace {
std::string row_text(const bool_matrix& m, Index b) {
  std::string s;
  for (Index j = 0; j < m.cols(); ++j) s += m(b, j) ? 'x' : '.';
  return s;
}

// HF's count for a row, with the epsilon of docs/random.md.
Index reference_count(const audio_span_options& o, Index n, Index width, double eps) {
  Index c = static_cast<Index>(
      o.mask_prob * static_cast<double>(n) / static_cast<double>(o.mask_length) + eps);
  c = std::max(c, o.min_masks);
  if (c * o.mask_length > width) c = width / o.mask_length;
  if (n - (o.mask_length - 1) < c) c = std::max(n - (o.mask_length - 1), Index{0});
  return c;
}

// One row as docs/random.md states it: Floyd's sampling with a std::set, then the spans.
std::string reference_row(const audio_span_options& o, Index n, Index width, std::uint64_t seed,
                          std::uint64_t sample, std::uint32_t axis) {
  const philox_block head = random_block(seed, sample, purpose::audio_span, axis);
  const Index count = reference_count(o, n, width, uniform_double(head[0], head[1]));
  const Index m = n - o.mask_length + 1;
  std::set<Index> starts;
  for (Index k = 0; k < count; ++k) {
    const Index j = m - count + k;
    word_stream s(seed, sample, purpose::audio_span, axis | static_cast<std::uint32_t>(k + 1));
    const Index t = bounded(s, static_cast<std::uint32_t>(j + 1));
    starts.insert(starts.count(t) ? j : t);
  }
  std::string row(static_cast<std::size_t>(width), '.');
  for (Index st : starts)
    for (Index p = st; p < st + o.mask_length; ++p) row[static_cast<std::size_t>(p)] = 'x';
  return row;
}
}  // namespace

TEST_CASE("audio_span_mask golden output", "[random][audio_span]") {
  SECTION("pinned: three rows of lengths 40, 31 and 9 (printed once, checked by the reference)") {
    const audio_span_result r = audio_span_mask({40, 31, 9}, 40, {0.3, 4, 0}, {2024});
    CHECK(row_text(r.masked, 0) == "...xxxx........................xxxxxxx..");
    CHECK(row_text(r.masked, 1) == "xxxx.xxxx..................xxxx.........");
    CHECK(row_text(r.masked, 2) == "...xxxx.................................");
    CHECK(r.num_spans(0) == 3);  // int(0.3 * 40 / 4 + eps) = 3 for any eps
    CHECK(r.num_spans(1) == 3);  // int(2.325 + eps): 3 because eps >= 0.675 here
    CHECK(r.num_spans(2) == 1);  // int(0.675 + eps)
    const philox_block h1 = random_block(2024, 1, purpose::audio_span, 0);
    CHECK(uniform_double(h1[0], h1[1]) >= 0.675);
    const audio_span_result f = spec_augment_feature_mask(2, 24, {0.5, 3, 0}, {2024});
    CHECK(row_text(f.masked, 0) == ".xxx...xxx.....xxx.xxx..");
    CHECK(row_text(f.masked, 1) == "...xxx.xxx...xxx.xxx....");
  }
  SECTION("hand-derived: mask_length 1 and a count forced to the length masks every frame") {
    CHECK(audio_span_mask(3, 17, {1.0, 1, 0}, {5}).masked.all());  // int(17 + eps) = 17
    // min_masks 2, capped to width // mask_length = 1: the only start, 0, covers the row
    const audio_span_result r = audio_span_mask(2, 10, {0.0, 10, 2}, {5});
    CHECK(r.masked.all());
    CHECK((r.num_spans.array() == 1).all());
  }
}

TEST_CASE("audio_span_mask equals the plain reference of the docs", "[random][audio_span]") {
  const std::vector<audio_span_options> configs = {{0.05, 10, 2}, {0.65, 10, 2}, {0.3, 4, 0},
                                                   {0.9, 1, 0},   {1.0, 7, 3},   {0.2, 25, 1}};
  const Index width = 120, B = 600;
  std::vector<Index> lengths(B);
  for (Index b = 0; b < B; ++b) lengths[static_cast<std::size_t>(b)] = (b * 37) % (width + 1);
  lengths[0] = width;
  for (const audio_span_options& o : configs) {
    const audio_span_result r = audio_span_mask(lengths, width, o, {31, 500});
    bool same = true, padding_clear = true;
    for (Index b = 0; b < B; ++b) {
      const Index n = lengths[static_cast<std::size_t>(b)];
      same = same && row_text(r.masked, b) ==
                         reference_row(o, n, width, 31, 500 + static_cast<std::uint64_t>(b), 0);
      padding_clear = padding_clear && !r.masked.row(b).tail(width - n).any();
    }
    CHECK(same);
    CHECK(padding_clear);
    const audio_span_result f = spec_augment_feature_mask(50, width, o, {31, 500});
    bool feature_same = true;
    for (Index b = 0; b < 50; ++b)
      feature_same =
          feature_same &&
          row_text(f.masked, b) ==
              reference_row(o, width, width, 31, 500 + static_cast<std::uint64_t>(b), 0x80000000u);
    CHECK(feature_same);
  }
}

TEST_CASE("audio_span_mask statistics", "[random][audio_span]") {
  SECTION("E[num_spans] = mask_prob * L / mask_length exactly (probabilistic rounding)") {
    // 0.3 * 50 / 4 = 3.75: the count is 3 or 4, 4 with probability 0.75
    const Index B = 250000;
    const audio_span_result r = audio_span_mask(B, 50, {0.3, 4, 0}, {8});
    const double mean = r.num_spans.cast<double>().mean();
    CHECK(std::abs(mean - 3.75) < 4 * std::sqrt(0.75 * 0.25 / B));
    CHECK(r.num_spans.minCoeff() == 3);
    CHECK(r.num_spans.maxCoeff() == 4);
  }
  SECTION("starts are uniform: with mask_length 1 every frame has rate count / L") {
    const Index B = 100000, L = 20;  // int(0.3 * 20 + eps) = 6 starts of 20: 2 * 10^6 draws
    const audio_span_result r = audio_span_mask(B, L, {0.3, 1, 0}, {9});
    CHECK((r.num_spans.array() == 6).all());
    bool uniform = true;
    for (Index p = 0; p < L; ++p) {
      const double n = static_cast<double>(r.masked.col(p).count());
      uniform = uniform && std::abs(n - 0.3 * B) < 4 * std::sqrt(B * 0.3 * 0.7);
    }
    CHECK(uniform);
  }
}

TEST_CASE("audio_span_mask edges and reproducibility", "[random][audio_span]") {
  SECTION("rows shorter than a span get none; empty rows; padding never masked") {
    const audio_span_result r = audio_span_mask({0, 3, 9, 10, 30}, 30, {0.65, 10, 2}, {3});
    CHECK(r.num_spans(0) == 0);
    CHECK(r.num_spans(1) == 0);
    CHECK(r.num_spans(2) == 0);
    CHECK(r.num_spans(3) == 1);  // one start (0) exists: min_masks 2 lowered to 1
    CHECK_FALSE(r.masked.row(0).any());
    CHECK_FALSE(r.masked.row(2).any());
    CHECK(r.masked.row(3).head(10).all());
    CHECK_FALSE(r.masked.row(3).tail(20).any());  // HF would mark frame 29 of the padding
  }
  SECTION("the lengths overload with full rows equals the batch overload") {
    const audio_span_result a = audio_span_mask(4, 64, {}, {7, 3});
    const audio_span_result b = audio_span_mask({64, 64, 64, 64}, 64, {}, {7, 3});
    CHECK((a.masked == b.masked).all());
    CHECK((a.num_spans.array() == b.num_spans.array()).all());
  }
  SECTION("time and feature draws of one address differ") {
    CHECK_FALSE((audio_span_mask(8, 64, {0.5, 4, 0}, {7}).masked ==
                 spec_augment_feature_mask(8, 64, {0.5, 4, 0}, {7}).masked)
                    .all());
  }
  SECTION("batch split and threads") {
    const audio_span_result whole = audio_span_mask(400, 300, {0.65, 10, 2}, {11, 50});
    CHECK(
        (audio_span_mask(100, 300, {0.65, 10, 2}, {11, 350}).masked == whole.masked.bottomRows(100))
            .all());
#if EMASK_HAS_OPENMP
    const int before = omp_get_max_threads();
    omp_set_num_threads(1);
    const audio_span_result one = audio_span_mask(400, 300, {0.65, 10, 2}, {11, 50});
    omp_set_num_threads(2);
    const audio_span_result two = audio_span_mask(400, 300, {0.65, 10, 2}, {11, 50});
    omp_set_num_threads(before);
    CHECK((one.masked == whole.masked).all());
    CHECK((two.masked == whole.masked).all());
#endif
  }
}

TEST_CASE("audio_span_mask errors name the argument", "[random][audio_span][errors]") {
  REQUIRE_THROWS_WITH(audio_span_mask(-1, 10),
                      Contains("emask::audio_span_mask: argument 'batch' = -1"));
  REQUIRE_THROWS_WITH(audio_span_mask(2, 0), Contains("'sequence_length' = 0"));
  REQUIRE_THROWS_WITH(audio_span_mask(2, 8, {0.5, 9, 0}),
                      Contains("'options.mask_length' = 9") && Contains("[1, 8]"));
  REQUIRE_THROWS_WITH(audio_span_mask(2, 8, {0.5, 0, 0}), Contains("'options.mask_length' = 0"));
  REQUIRE_THROWS_WITH(audio_span_mask(2, 8, {1.5, 2, 0}), Contains("'options.mask_prob' = 1.5"));
  REQUIRE_THROWS_WITH(audio_span_mask(2, 8, {std::nan(""), 2, 0}),
                      Contains("'options.mask_prob' = nan"));
  REQUIRE_THROWS_WITH(audio_span_mask(2, 8, {0.5, 2, -1}), Contains("'options.min_masks' = -1"));
  REQUIRE_THROWS_WITH(audio_span_mask({3, 9}, 8, {0.5, 2, 0}), Contains("'lengths[1]' = 9"));
  REQUIRE_THROWS_WITH(audio_span_mask({3, -1}, 8, {0.5, 2, 0}), Contains("'lengths[1]' = -1"));
  REQUIRE_THROWS_WITH(spec_augment_feature_mask(2, 0, {0.5, 2, 0}),
                      Contains("emask::spec_augment_feature_mask: argument 'hidden_size' = 0"));
}
