// Whole-word masking and SpanBERT span masking.
#include <emask/random/span.hpp>

#include <algorithm>
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
template <class Options>
Options bert() {
  Options o;
  o.vocabulary = special_tokens(30522, {0, 100, 101, 102, 103});
  o.mask_id = 103;
  return o;
}

token_matrix small_batch() {
  token_matrix ids(2, 12);
  ids << 101, 7592, 2088, 2003, 1037, 3231, 1997, 1996, 4248, 102, 0, 0,  //
      101, 2023, 2003, 2178, 6251, 2005, 3231, 2075, 2009, 2041, 1012, 102;
  return ids;
}

bool_matrix small_starts() {
  bool_matrix s = bool_matrix::Constant(2, 12, true);
  s(0, 4) = false;  // "##" continuation
  s(1, 5) = false;
  s(1, 6) = false;
  return s;
}

// Rows of [CLS] words [SEP] [PAD]..., words of 1-4 tokens; returns ids, starts, word ids.
void big_batch(Index B, Index L, token_matrix& ids, bool_matrix& starts, token_matrix& word_ids,
               std::vector<Index>& lens) {
  ids = token_matrix::Zero(B, L);
  starts = bool_matrix::Constant(B, L, true);
  word_ids = token_matrix::Constant(B, L, -1);
  lens.assign(static_cast<std::size_t>(B), 0);
  std::uint32_t x = 777;
  auto next = [&x]() { return (x = x * 1664525u + 1013904223u) >> 8; };
  for (Index b = 0; b < B; ++b) {
    const Index len = L - static_cast<Index>(next() % static_cast<std::uint32_t>(L / 4));
    lens[static_cast<std::size_t>(b)] = len;
    ids(b, 0) = 101;
    ids(b, len - 1) = 102;
    std::int32_t word = 0;
    for (Index t = 1; t < len - 1;) {
      const Index size = 1 + static_cast<Index>(next() % 4u);
      for (Index k = 0; k < size && t < len - 1; ++k, ++t) {
        ids(b, t) = 1000 + static_cast<std::int32_t>(next() % 20000u);
        starts(b, t) = k == 0;
        word_ids(b, t) = word;
      }
      ++word;
    }
  }
}

// Words of a row as [begin, end) position pairs (same rule as the library, written plainly).
std::vector<std::pair<Index, Index>> words_of(const token_matrix& ids, const bool_matrix& starts,
                                              Index b, Index len, const mlm_options& o) {
  std::vector<std::pair<Index, Index>> w;
  bool open = false;
  for (Index t = 0; t < len; ++t) {
    if (o.vocabulary.is_special(ids(b, t)) || ids(b, t) == o.pad_id) {
      open = false;
      continue;
    }
    if (!open || starts(b, t))
      w.push_back({t, t + 1});
    else
      w.back().second = t + 1;
    open = true;
  }
  return w;
}
}  // namespace

TEST_CASE("whole_word_mask golden output", "[random][wwm]") {
  auto o = bert<whole_word_options>();
  o.mlm_probability = 0.3;
  const mlm_result r = whole_word_mask(small_batch(), small_starts(), o, {2024});
  token_matrix ids(2, 12), labels(2, 12);
  ids << 101, 7592, 2088, 2003, 103, 3231, 1997, 103, 4248, 102, 0, 0,  //
      101, 2023, 2003, 2178, 103, 6372, 103, 2075, 2009, 103, 1012, 102;
  labels << -100, -100, -100, 2003, 1037, -100, 1997, 1996, -100, -100, -100, -100,  //
      -100, -100, -100, -100, 6251, 2005, 3231, -100, -100, 2041, -100, -100;
  CHECK((r.input_ids == ids).all());
  CHECK((r.labels == labels).all());
}

TEST_CASE("whole_word_mask selects whole words within HF's budget", "[random][wwm]") {
  token_matrix ids, word_ids;
  bool_matrix starts;
  std::vector<Index> lens;
  big_batch(48, 256, ids, starts, word_ids, lens);
  auto o = bert<whole_word_options>();
  o.pad_id = 0;
  const mlm_result r = whole_word_mask(ids, starts, index_list(lens), o, {31, 10});
  double total = 0, total_budget = 0;
  for (Index b = 0; b < ids.rows(); ++b) {
    const Index len = lens[static_cast<std::size_t>(b)];
    const auto budget = std::min<Index>(
        o.max_predictions,
        std::max<Index>(
            1, static_cast<Index>(detail::round_half_even(0.15 * static_cast<double>(len)))));
    Index count = 0;
    for (const auto& w : words_of(ids, starts, b, len, o)) {
      Index m = 0;
      for (Index t = w.first; t < w.second; ++t) m += r.labels(b, t) != o.ignore_index ? 1 : 0;
      CHECK((m == 0 || m == w.second - w.first));  // all of a word or none of it
      count += m;
    }
    CHECK(count == (r.labels.row(b) != o.ignore_index).count());  // nothing outside words
    CHECK(count <= budget);
    CHECK(count >= budget - 3);  // greedy fill: a skipped word is at most 4 tokens
    total += static_cast<double>(count);
    total_budget += static_cast<double>(budget);
  }
  CHECK(total > 0.97 * total_budget);

  SECTION("word ids give the same words") {
    const mlm_result by_ids = whole_word_mask_by_ids(ids, word_ids, o, {31, 10});
    // word_ids is -1 on [CLS]/[SEP]/padding, so only the lengths differ: n counts non-pad tokens
    CHECK((by_ids.labels == r.labels).all());
    CHECK((by_ids.input_ids == r.input_ids).all());
    const mlm_result by_ids_len =
        whole_word_mask_by_ids(ids, word_ids, index_list(lens), o, {31, 10});
    CHECK((by_ids_len.labels == r.labels).all());
    REQUIRE_THROWS_WITH(whole_word_mask_by_ids(ids, word_ids, {1, 2}, o, {31, 10}),
                        Contains("lengths"));
  }
  SECTION("max_predictions caps every row") {
    auto capped = o;
    capped.max_predictions = 2;
    const mlm_result c = whole_word_mask(ids, starts, index_list(lens), capped, {31, 10});
    for (Index b = 0; b < ids.rows(); ++b) CHECK((c.labels.row(b) != o.ignore_index).count() <= 2);
  }
  SECTION("batch split and threads") {
    const std::vector<Index> la(lens.begin(), lens.begin() + 20), lb(lens.begin() + 20, lens.end());
    const mlm_result a =
        whole_word_mask(ids.topRows(20), starts.topRows(20), index_list(la), o, {31, 10});
    const mlm_result b =
        whole_word_mask(ids.bottomRows(28), starts.bottomRows(28), index_list(lb), o, {31, 30});
    CHECK((a.input_ids == r.input_ids.topRows(20)).all());
    CHECK((b.input_ids == r.input_ids.bottomRows(28)).all());
#if EMASK_HAS_OPENMP
    const int before = omp_get_max_threads();
    omp_set_num_threads(1);
    const mlm_result one = whole_word_mask(ids, starts, index_list(lens), o, {31, 10});
    omp_set_num_threads(2);
    const mlm_result two = whole_word_mask(ids, starts, index_list(lens), o, {31, 10});
    omp_set_num_threads(before);
    CHECK((one.input_ids == r.input_ids).all());
    CHECK((two.input_ids == r.input_ids).all());
#endif
  }
}

TEST_CASE("whole_word_mask errors name the argument", "[random][wwm][errors]") {
  auto o = bert<whole_word_options>();
  const token_matrix ids = small_batch();
  REQUIRE_THROWS_WITH(whole_word_mask(ids, bool_matrix::Constant(2, 11, true), o),
                      Contains("word_starts"));
  REQUIRE_THROWS_WITH(whole_word_mask_by_ids(ids, token_matrix::Zero(1, 12), o),
                      Contains("word_ids"));
  o.max_predictions = -1;
  REQUIRE_THROWS_WITH(whole_word_mask(ids, small_starts(), o), Contains("max_predictions"));
  o = bert<whole_word_options>();
  o.mlm_probability = 2;
  REQUIRE_THROWS_WITH(whole_word_mask(ids, small_starts(), o), Contains("mlm_probability"));
}

TEST_CASE("span_mask golden output", "[random][span]") {
  auto o = bert<span_options>();
  o.mlm_probability = 0.3;
  const mlm_result r = span_mask(small_batch(), o, {2024});
  token_matrix ids(2, 12), labels(2, 12);
  ids << 101, 7592, 2088, 103, 103, 103, 1997, 1996, 4248, 102, 0, 0,  //
      101, 2023, 2003, 2178, 6251, 2005, 3231, 103, 103, 103, 1012, 102;
  labels << -100, -100, -100, 2003, 1037, 3231, -100, -100, -100, -100, -100, -100,  //
      -100, -100, -100, -100, -100, -100, -100, 2075, 2009, 2041, -100, -100;
  CHECK((r.input_ids == ids).all());
  CHECK((r.labels == labels).all());
}

TEST_CASE("span_mask: budget, whole words, contiguity and replacement", "[random][span]") {
  token_matrix ids, word_ids;
  bool_matrix starts;
  std::vector<Index> lens;
  big_batch(48, 256, ids, starts, word_ids, lens);
  auto o = bert<span_options>();
  o.pad_id = 0;
  const random_address at{8, 3};
  const mlm_result r = span_mask(ids, starts, index_list(lens), o, at);
  for (Index b = 0; b < ids.rows(); ++b) {
    const Index len = lens[static_cast<std::size_t>(b)];
    const auto words = words_of(ids, starts, b, len, o);
    Index n = 0, partial = 0;
    for (const auto& w : words) {
      n += w.second - w.first;
      Index m = 0;
      for (Index t = w.first; t < w.second; ++t) m += r.labels(b, t) != o.ignore_index ? 1 : 0;
      if (m != 0 && m != w.second - w.first) ++partial;
    }
    const auto budget = static_cast<Index>(std::ceil(0.15 * static_cast<double>(n)));
    CHECK((r.labels.row(b) != o.ignore_index).count() == budget);  // exactly the budget
    CHECK(partial <= 1);  // only the span that hit the budget may end inside a word
    for (Index t = 0; t < ids.cols(); ++t)
      if (r.labels(b, t) != o.ignore_index) {
        CHECK(r.labels(b, t) == ids(b, t));
        CHECK_FALSE(o.vocabulary.is_special(ids(b, t)));
      }
  }
  SECTION("single-token words (no word_starts) also meet the budget") {
    const mlm_result t = span_mask(ids, o, at);
    const bool_matrix every = bool_matrix::Constant(ids.rows(), ids.cols(), true);
    CHECK((span_mask(ids, every, o, at).labels == t.labels).all());  // same words, same spans
    token_matrix cut = ids;
    for (Index b = 0; b < ids.rows(); ++b)
      cut.row(b).tail(ids.cols() - lens[static_cast<std::size_t>(b)]).setConstant(7);
    const mlm_result tc = span_mask(cut, every, index_list(lens), o, at);
    CHECK((tc.labels == t.labels).all());  // positions past the length are never selected
    for (Index b = 0; b < ids.rows(); ++b) {
      const Index n = lens[static_cast<std::size_t>(b)] - 2;
      CHECK((t.labels.row(b) != o.ignore_index).count() ==
            static_cast<Index>(std::ceil(0.15 * static_cast<double>(n))));
    }
  }
  SECTION("per-span replacement: all [MASK] or all kept") {
    auto m = o;
    m.mask_replace_prob = 1.0;
    m.random_replace_prob = 0.0;
    const mlm_result all_mask = span_mask(ids, starts, index_list(lens), m, at);
    CHECK(((all_mask.labels != m.ignore_index) == (all_mask.input_ids == m.mask_id)).all());
    CHECK((all_mask.labels == r.labels).all());  // replacement draws never move the selection
    m.mask_replace_prob = 0.0;
    const mlm_result keep = span_mask(ids, starts, index_list(lens), m, at);
    CHECK((keep.input_ids == ids).all());
  }
  SECTION("80/10/10 over spans and over tokens") {
    token_matrix big, bw;
    bool_matrix bs;
    std::vector<Index> bl;
    big_batch(256, 512, big, bs, bw, bl);
    for (bool per_span : {false, true}) {
      auto p = o;
      p.replace_per_span = per_span;
      const mlm_result x = span_mask(big, bs, index_list(bl), p, {8, 0});
      double selected = 0, masked = 0;
      for (Index b = 0; b < big.rows(); ++b)
        for (Index t = 0; t < big.cols(); ++t)
          if (x.labels(b, t) != p.ignore_index) {
            ++selected;
            masked += x.input_ids(b, t) == p.mask_id ? 1 : 0;
          }
      REQUIRE(selected > 10000);
      const double rate = masked / selected;
      // per token: binomial 4 sigma; per span: tokens are correlated in spans of ~4, so widen
      const double sigma = std::sqrt(0.8 * 0.2 / selected) * (per_span ? 3.0 : 1.0);
      CHECK(std::abs(rate - 0.8) < 4 * sigma);
    }
  }
  SECTION("batch split and threads") {
    const std::vector<Index> la(lens.begin(), lens.begin() + 17), lb(lens.begin() + 17, lens.end());
    const mlm_result a = span_mask(ids.topRows(17), starts.topRows(17), index_list(la), o, at);
    const mlm_result b =
        span_mask(ids.bottomRows(31), starts.bottomRows(31), index_list(lb), o, {8, 20});
    CHECK((a.input_ids == r.input_ids.topRows(17)).all());
    CHECK((b.input_ids == r.input_ids.bottomRows(31)).all());
#if EMASK_HAS_OPENMP
    const int before = omp_get_max_threads();
    omp_set_num_threads(1);
    const mlm_result one = span_mask(ids, starts, index_list(lens), o, at);
    omp_set_num_threads(2);
    const mlm_result two = span_mask(ids, starts, index_list(lens), o, at);
    omp_set_num_threads(before);
    CHECK((one.input_ids == r.input_ids).all());
    CHECK((two.labels == r.labels).all());
#endif
  }
}

TEST_CASE("span_mask errors name the argument", "[random][span][errors]") {
  auto o = bert<span_options>();
  const token_matrix ids = small_batch();
  o.geometric_p = 0.0;
  REQUIRE_THROWS_WITH(span_mask(ids, o), Contains("geometric_p"));
  o = bert<span_options>();
  o.max_span_words = 0;
  REQUIRE_THROWS_WITH(span_mask(ids, o), Contains("max_span_words"));
  o = bert<span_options>();
  o.mlm_probability = -1;
  REQUIRE_THROWS_WITH(span_mask(ids, o), Contains("mlm_probability"));
  REQUIRE_THROWS_WITH(span_mask(ids, bool_matrix::Constant(3, 12, true), bert<span_options>()),
                      Contains("word_starts"));
}
