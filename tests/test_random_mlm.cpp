// BERT MLM masking: golden outputs, a plain reference, statistics, reproducibility, errors.
#include <emask/random/mlm.hpp>

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
const std::vector<std::int32_t> kSpecials = {0, 100, 101, 102, 103};

mlm_options bert_options() {
  mlm_options o;
  o.vocabulary = special_tokens(30522, kSpecials);
  o.mask_id = 103;
  return o;
}

token_matrix small_batch() {
  token_matrix ids(2, 12);
  ids << 101, 7592, 2088, 2003, 1037, 3231, 1997, 1996, 4248, 102, 0, 0,  //
      101, 2023, 2003, 2178, 6251, 2005, 3231, 2075, 2009, 2041, 1012, 102;
  return ids;
}

// [CLS] w w ... w [SEP] [PAD]...: row b has length lens[b]; ids drawn from a simple LCG.
token_matrix big_batch(Index B, Index L, std::vector<Index>& lens) {
  token_matrix ids = token_matrix::Zero(B, L);
  std::uint32_t x = 12345;
  lens.assign(static_cast<std::size_t>(B), 0);
  for (Index b = 0; b < B; ++b) {
    x = x * 1664525u + 1013904223u;
    const Index len = L / 2 + static_cast<Index>(x % static_cast<std::uint32_t>(L / 2 + 1));
    lens[static_cast<std::size_t>(b)] = len;
    ids(b, 0) = 101;
    for (Index t = 1; t < len - 1; ++t) {
      x = x * 1664525u + 1013904223u;
      ids(b, t) = 1000 + static_cast<std::int32_t>(x % 29000u);
    }
    ids(b, len - 1) = 102;
  }
  return ids;
}

// Plain reference written from docs/random.md, one token at a time, no chunking or threads.
mlm_result reference_mlm(const token_matrix& ids, const std::vector<Index>* lens,
                         const mlm_options& o, random_address at) {
  mlm_result r{ids, token_matrix::Constant(ids.rows(), ids.cols(), o.ignore_index)};
  const auto thr = [](double p) { return static_cast<std::uint64_t>(std::ceil(p * 4294967296.0)); };
  const std::uint64_t t_sel = thr(o.mlm_probability), t_mask = thr(o.mask_replace_prob);
  const std::uint64_t t_rand = thr(o.random_replace_prob / (1.0 - o.mask_replace_prob));
  const auto& pool = o.vocabulary.regular_ids();
  for (Index b = 0; b < ids.rows(); ++b) {
    const std::uint64_t sample = at.sample + static_cast<std::uint64_t>(b);
    const Index len = lens ? (*lens)[static_cast<std::size_t>(b)] : ids.cols();
    for (Index t = 0; t < len; ++t) {
      const std::int32_t id = ids(b, t);
      if (o.vocabulary.is_special(id) || id == o.pad_id) continue;
      if (!(packed_word(at.seed, sample, purpose::mlm_select, static_cast<std::uint64_t>(t)) <
            t_sel))
        continue;
      r.labels(b, t) = id;
      word_stream s(at.seed, sample, purpose::mlm_replace, static_cast<std::uint32_t>(t));
      if (s.next() < t_mask) {
        r.input_ids(b, t) = o.mask_id;
      } else if (s.next() < t_rand) {
        const auto n = static_cast<std::uint64_t>(pool.size());
        for (;;) {
          const std::uint64_t m = s.next() * n;
          if ((m & 0xffffffffu) >= (std::uint64_t{1} << 32) % n) {
            r.input_ids(b, t) = pool[static_cast<std::size_t>(m >> 32)];
            break;
          }
        }
      }
    }
  }
  return r;
}
}  // namespace

TEST_CASE("mlm_mask golden output", "[random][mlm]") {
  mlm_options o = bert_options();
  o.mlm_probability = 0.3;
  const mlm_result r = mlm_mask(small_batch(), o, {2024});
  token_matrix ids(2, 12), labels(2, 12);
  ids << 101, 103, 2088, 2003, 1037, 103, 1997, 1996, 5292, 102, 0, 0,  //
      101, 2023, 103, 2178, 6251, 2005, 3231, 2075, 2009, 2041, 1012, 102;
  labels << -100, 7592, -100, 2003, -100, 3231, -100, -100, 4248, -100, -100, -100,  //
      -100, 2023, 2003, -100, -100, -100, -100, -100, -100, -100, -100, -100;
  CHECK((r.input_ids == ids).all());
  CHECK((r.labels == labels).all());

  SECTION("exact count") {
    o.selection = mlm_selection::exact_count;
    const mlm_result e = mlm_mask(small_batch(), {10, 12}, o, {2024});
    token_matrix eids(2, 12), elabels(2, 12);
    eids << 101, 103, 2088, 2003, 1037, 3231, 1997, 1996, 4248, 102, 0, 0,  //
        101, 2023, 103, 2178, 6251, 2005, 3231, 2075, 103, 2041, 1012, 102;
    elabels << -100, 7592, -100, 2003, -100, -100, -100, -100, -100, -100, -100, -100,  //
        -100, 2023, 2003, -100, -100, -100, -100, -100, 2009, -100, -100, -100;
    CHECK((e.input_ids == eids).all());
    CHECK((e.labels == elabels).all());
  }
}

TEST_CASE("mlm_mask equals the plain reference", "[random][mlm]") {
  std::vector<Index> lens;
  const token_matrix ids = big_batch(16, 300, lens);  // rows longer than one 256-word chunk
  for (double p : {0.0, 0.15, 0.5, 1.0}) {
    mlm_options o = bert_options();
    o.mlm_probability = p;
    const mlm_result got = mlm_mask(ids, index_list(lens), o, {77, 1000});
    const mlm_result want = reference_mlm(ids, &lens, o, {77, 1000});
    CHECK((got.input_ids == want.input_ids).all());
    CHECK((got.labels == want.labels).all());
  }
  SECTION("pad id instead of lengths") {
    mlm_options o = bert_options();
    o.vocabulary = special_tokens(30522, {100, 101, 102, 103});  // pad 0 not special
    o.pad_id = 0;
    const mlm_result got = mlm_mask(ids, o, {5, 3});
    const mlm_result want = reference_mlm(ids, nullptr, o, {5, 3});
    CHECK((got.input_ids == want.input_ids).all());
    CHECK((got.labels == want.labels).all());
    CHECK((got.input_ids == 0).count() == (ids == 0).count());  // padding untouched
  }
}

TEST_CASE("mlm_mask statistics (fixed seeds, 4 sigma)", "[random][mlm]") {
  std::vector<Index> lens;
  const token_matrix ids = big_batch(256, 512, lens);
  const mlm_options o = bert_options();
  const mlm_result r = mlm_mask(ids, index_list(lens), o, {99});
  double n = 0, selected = 0, masked = 0, changed = 0, kept = 0;
  bool specials_or_padding_selected = false, random_special = false;
  for (Index b = 0; b < ids.rows(); ++b) {
    for (Index t = 0; t < ids.cols(); ++t) {
      const bool real = t < lens[static_cast<std::size_t>(b)];
      const bool special = o.vocabulary.is_special(ids(b, t));
      if (real && !special) ++n;
      if (r.labels(b, t) == o.ignore_index) {
        CHECK(r.input_ids(b, t) == ids(b, t));
        continue;
      }
      if (!real || special) specials_or_padding_selected = true;
      CHECK(r.labels(b, t) == ids(b, t));
      ++selected;
      if (r.input_ids(b, t) == o.mask_id) {
        ++masked;
      } else if (r.input_ids(b, t) != ids(b, t)) {
        ++changed;
        if (o.vocabulary.is_special(r.input_ids(b, t))) random_special = true;
      } else {
        ++kept;
      }
    }
  }
  CHECK_FALSE(specials_or_padding_selected);
  CHECK_FALSE(random_special);
  const auto within = [](double count, double trials, double p) {
    return std::abs(count - trials * p) < 4 * std::sqrt(trials * p * (1 - p));
  };
  CHECK(n > 60000);
  CHECK(within(selected, n, 0.15));
  CHECK(within(masked, selected, 0.8));
  // a random id equals the original with probability 1 / |pool|
  const double pool = static_cast<double>(o.vocabulary.regular_ids().size());
  CHECK(within(changed, selected, 0.1 * (1 - 1 / pool)));
  CHECK(within(kept, selected, 0.1 + 0.1 / pool));

  SECTION("exact count selects round(p * n) per row") {
    mlm_options e = o;
    e.selection = mlm_selection::exact_count;
    const mlm_result x = mlm_mask(ids, index_list(lens), e, {99});
    for (Index b = 0; b < ids.rows(); ++b) {
      const Index len = lens[static_cast<std::size_t>(b)];
      const Index selectable = len - 2;  // [CLS] and [SEP]
      const auto expected =
          static_cast<Index>(detail::round_half_even(0.15 * static_cast<double>(selectable)));
      CHECK((x.labels.row(b) != e.ignore_index).count() == expected);
    }
  }
  SECTION("HF parity option: random ids over the whole vocabulary, specials included") {
    mlm_options h = bert_options();
    h.vocabulary = special_tokens(8, {0, 1, 2, 3});
    h.mask_id = 3;
    h.mask_replace_prob = 0.0;
    h.random_replace_prob = 1.0;
    h.mlm_probability = 1.0;
    h.random_includes_special = true;
    token_matrix small = token_matrix::Constant(64, 64, 5);
    const mlm_result x = mlm_mask(small, h, {4});
    CHECK((x.input_ids < 4).count() > 0);
    CHECK((x.input_ids < 8).all());
    h.random_includes_special = false;
    const mlm_result y = mlm_mask(small, h, {4});
    CHECK((y.input_ids >= 4).all());
    CHECK((y.input_ids < 8).all());
    CHECK((y.input_ids != 5).count() > 0);
  }
}

TEST_CASE("mlm_mask is reproducible across thread counts and batch splits", "[random][mlm]") {
  std::vector<Index> lens;
  const token_matrix ids = big_batch(64, 384, lens);
  mlm_options o = bert_options();
  for (mlm_selection sel : {mlm_selection::bernoulli, mlm_selection::exact_count}) {
    o.selection = sel;
    const mlm_result whole = mlm_mask(ids, index_list(lens), o, {1234, 500});
    SECTION("two calls with the right sample ids") {
      const std::vector<Index> lens_a(lens.begin(), lens.begin() + 25),
          lens_b(lens.begin() + 25, lens.end());
      const mlm_result a = mlm_mask(ids.topRows(25), index_list(lens_a), o, {1234, 500});
      const mlm_result b = mlm_mask(ids.bottomRows(39), index_list(lens_b), o, {1234, 525});
      CHECK((a.input_ids == whole.input_ids.topRows(25)).all());
      CHECK((b.input_ids == whole.input_ids.bottomRows(39)).all());
      CHECK((b.labels == whole.labels.bottomRows(39)).all());
      const mlm_result wrong = mlm_mask(ids.bottomRows(39), index_list(lens_b), o, {1234, 0});
      CHECK_FALSE((wrong.labels == whole.labels.bottomRows(39)).all());
    }
    SECTION("in place equals out of place") {
      token_matrix work = ids;
      token_matrix labels(ids.rows(), ids.cols());
      mlm_mask_inplace(work, labels, index_list(lens), o, {1234, 500});
      CHECK((work == whole.input_ids).all());
      CHECK((labels == whole.labels).all());
    }
#if EMASK_HAS_OPENMP
    SECTION("1 and 2 threads") {
      const int before = omp_get_max_threads();
      omp_set_num_threads(1);
      const mlm_result one = mlm_mask(ids, index_list(lens), o, {1234, 500});
      omp_set_num_threads(2);
      const mlm_result two = mlm_mask(ids, index_list(lens), o, {1234, 500});
      omp_set_num_threads(before);
      CHECK((one.input_ids == whole.input_ids).all());
      CHECK((two.input_ids == whole.input_ids).all());
      CHECK((two.labels == one.labels).all());
    }
#endif
  }
  SECTION("different seeds differ") {
    CHECK_FALSE((mlm_mask(ids, o, {1234}).labels == mlm_mask(ids, o, {1235}).labels).all());
  }
}

TEST_CASE("mlm_mask rejects bad arguments, naming them", "[random][mlm][errors]") {
  const token_matrix ids = small_batch();
  mlm_options o = bert_options();
  SECTION("probabilities outside [0, 1]") {
    o.mlm_probability = 1.5;
    REQUIRE_THROWS_WITH(mlm_mask(ids, o), Contains("mlm_probability") && Contains("[0, 1]"));
    o.mlm_probability = -0.1;
    REQUIRE_THROWS_AS(mlm_mask(ids, o), emask::error);
    o.mlm_probability = std::nan("");
    REQUIRE_THROWS_WITH(mlm_mask(ids, o), Contains("mlm_probability"));
    o = bert_options();
    o.mask_replace_prob = 2;
    REQUIRE_THROWS_WITH(mlm_mask(ids, o), Contains("mask_replace_prob"));
    o = bert_options();
    o.random_replace_prob = 0.3;  // 0.8 + 0.3 > 1
    REQUIRE_THROWS_WITH(mlm_mask(ids, o), Contains("random_replace_prob"));
  }
  SECTION("a selection outside the enumerators") {
    o.selection = static_cast<mlm_selection>(7);
    REQUIRE_THROWS_WITH(mlm_mask(ids, o),
                        Contains("emask::mlm_mask: argument 'selection' = 7, expected bernoulli or "
                                 "exact_count"));
  }
  SECTION("mask id outside the vocabulary") {
    o.mask_id = 30522;
    REQUIRE_THROWS_WITH(mlm_mask(ids, o), Contains("mask_id") && Contains("30522"));
    o.mask_id = -1;
    REQUIRE_THROWS_WITH(mlm_mask(ids, o), Contains("mask_id"));
  }
  SECTION("vocabulary empty after excluding specials") {
    o.vocabulary = special_tokens(4, {0, 1, 2, 3});
    o.mask_id = 3;
    REQUIRE_THROWS_WITH(mlm_mask(ids, o), Contains("vocabulary"));
    o.random_includes_special = true;
    CHECK_NOTHROW(mlm_mask(ids, o));
    o.random_includes_special = false;
    o.random_replace_prob = 0.0;
    CHECK_NOTHROW(mlm_mask(ids, o));
  }
  SECTION("missing vocabulary") {
    mlm_options empty;
    REQUIRE_THROWS_WITH(mlm_mask(ids, empty), Contains("vocabulary"));
  }
  SECTION("special ids outside the vocabulary") {
    REQUIRE_THROWS_WITH(special_tokens(10, {3, 10}), Contains("ids[1]"));
    REQUIRE_THROWS_WITH(special_tokens(0, {}), Contains("vocab_size"));
  }
  SECTION("lengths") {
    REQUIRE_THROWS_WITH(mlm_mask(ids, {3}, o), Contains("lengths"));
    REQUIRE_THROWS_WITH(mlm_mask(ids, {3, 13}, o), Contains("lengths[1]"));
  }
  SECTION("labels shape") {
    token_matrix work = ids;
    token_matrix labels(2, 11);
    REQUIRE_THROWS_WITH(mlm_mask_inplace(work, labels, o), Contains("labels"));
  }
}

TEST_CASE("selection bits: SIMD and scalar forms agree", "[random][mlm]") {
  const special_tokens voc(50, {0, 3, 49});
  std::vector<std::uint32_t> words(64);
  std::vector<std::int32_t> ids(64);
  std::uint32_t x = 99;
  for (int round = 0; round < 200; ++round) {
    for (std::size_t j = 0; j < 64; ++j) {
      x = x * 1664525u + 1013904223u;
      words[j] = x;
      x = x * 1664525u + 1013904223u;
      ids[j] = static_cast<std::int32_t>(x % 60u) - 5;  // negative, special, pad, out of range
    }
    const detail::selectable ok{voc.flags().data(), voc.vocab_size(), 7};
    for (std::uint64_t thr : {std::uint64_t{0}, std::uint64_t{1} << 31, std::uint64_t{644245095},
                              std::uint64_t{1} << 32}) {
      const Index m = 1 + round % 64;
      const std::uint64_t scalar = detail::selection_bits(words.data(), ids.data(), m, thr, ok);
      // reference, one position at a time
      std::uint64_t ref = 0;
      for (Index j = 0; j < m; ++j) {
        const std::int32_t id = ids[static_cast<std::size_t>(j)];
        const bool take =
            words[static_cast<std::size_t>(j)] < thr && !voc.is_special(id) && id != 7;
        ref |= static_cast<std::uint64_t>(take) << j;
      }
      REQUIRE(scalar == ref);
#if EMASK_PHILOX_AVX2
      if (detail::cpu_has_avx2())
        REQUIRE(detail::selection_bits_avx2(words.data(), ids.data(), m, thr, ok) == ref);
#endif
    }
  }
  CHECK(voc.flags().size() == 54);  // 4 padding bytes after the flags
}

TEST_CASE("special_tokens", "[random][mlm]") {
  const special_tokens s(6, {0, 4});
  CHECK(s.vocab_size() == 6);
  CHECK(s.is_special(0));
  CHECK_FALSE(s.is_special(1));
  CHECK(s.is_special(-1));
  CHECK(s.is_special(6));
  CHECK(s.regular_ids() == std::vector<std::int32_t>{1, 2, 3, 5});
  const auto p = special_tokens::from_predicate(6, [](std::int32_t id) { return id % 2 == 0; });
  CHECK(p.regular_ids() == std::vector<std::int32_t>{1, 3, 5});
}
