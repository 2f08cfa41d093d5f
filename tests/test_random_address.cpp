// random_address{seed, sample}, the last argument of every random masker: the same address gives
// the same bits, another seed other bits, and row b of a batch is sample `sample + b`, so a batch
// cut at row k and called twice (the second part at sample + k) gives the batch's output.
#include <emask/random.hpp>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <vector>

#include "catch.hpp"
#include "failing_new.hpp"

using namespace emask;

namespace {
template <class Options>
Options bert() {
  Options o;
  o.vocabulary = special_tokens(1000, {0, 1, 2, 3});
  o.mask_id = 3;
  o.mlm_probability = 0.4;
  return o;
}

// 4 rows of [CLS] w w ... [SEP] [PAD]...: lengths 16, 13, 16, 9.
token_matrix batch4(std::vector<Index>& lens, bool_matrix& starts, token_matrix& word_ids) {
  lens = {16, 13, 16, 9};
  token_matrix ids = token_matrix::Zero(4, 16);
  starts = bool_matrix::Constant(4, 16, true);
  word_ids = token_matrix::Constant(4, 16, -1);
  std::uint32_t x = 41;
  for (Index b = 0; b < 4; ++b) {
    const Index len = lens[static_cast<std::size_t>(b)];
    ids(b, 0) = 1;
    ids(b, len - 1) = 2;
    token_id word = -1;
    for (Index t = 1; t < len - 1; ++t) {
      x = x * 1664525u + 1013904223u;
      ids(b, t) = 10 + static_cast<token_id>((x >> 8) % 900u);
      starts(b, t) = t == 1 || (x >> 4) % 3u != 0;  // words of 1-3 tokens
      word += starts(b, t) ? 1 : 0;
      word_ids(b, t) = word;
    }
  }
  return ids;
}

bool same(const mlm_result& a, const mlm_result& b) {
  return (a.input_ids == b.input_ids).all() && (a.labels == b.labels).all();
}

// rows [0, 2) at s and rows [2, 4) at s + 2, stacked
mlm_result stack(const mlm_result& top, const mlm_result& bottom) {
  mlm_result r{token_matrix(4, top.input_ids.cols()), token_matrix(4, top.labels.cols())};
  r.input_ids << top.input_ids, bottom.input_ids;
  r.labels << top.labels, bottom.labels;
  return r;
}

index_list rows(const std::vector<Index>& lens, std::size_t first, std::size_t n) {
  return index_list(std::vector<Index>(lens.begin() + static_cast<std::ptrdiff_t>(first),
                                       lens.begin() + static_cast<std::ptrdiff_t>(first + n)));
}
}  // namespace

TEST_CASE("random_address: a plain aggregate, {0, 0} by default", "[random][address]") {
  static_assert(std::is_trivially_copyable<random_address>::value, "a value type");
  const random_address a{};
  CHECK(a.seed == 0);
  CHECK(a.sample == 0);
  const random_address b{7};
  CHECK(b.seed == 7);
  CHECK(b.sample == 0);
  const random_address c{7, 9};
  CHECK(c.sample == 9);
  static_assert(std::is_same<token_matrix::Scalar, token_id>::value, "token_matrix of token_id");
}

TEST_CASE("random_address: same address, same bits; the default is {0, 0}", "[random][address]") {
  std::vector<Index> lens;
  bool_matrix starts;
  token_matrix word_ids;
  const token_matrix ids = batch4(lens, starts, word_ids);
  const auto o = bert<mlm_options>();
  const random_address at{2024, 5};
  CHECK(same(mlm_mask(ids, o, at), mlm_mask(ids, o, at)));
  CHECK_FALSE(same(mlm_mask(ids, o, at), mlm_mask(ids, o, {2025, 5})));
  CHECK_FALSE(same(mlm_mask(ids, o, at), mlm_mask(ids, o, {2024, 6})));
  CHECK(same(mlm_mask(ids, o), mlm_mask(ids, o, {0, 0})));

  const auto w = bert<whole_word_options>();
  CHECK(same(whole_word_mask(ids, starts, w, at), whole_word_mask(ids, starts, w, at)));
  CHECK(same(whole_word_mask(ids, starts, w), whole_word_mask(ids, starts, w, {0, 0})));
  const auto sp = bert<span_options>();
  CHECK(same(span_mask(ids, sp, at), span_mask(ids, sp, at)));
  CHECK(same(span_mask(ids, sp), span_mask(ids, sp, {0, 0})));
  CHECK_FALSE(same(span_mask(ids, sp, at), span_mask(ids, sp, {1, 5})));

  t5_options t5;
  t5.first_sentinel_id = 999;
  CHECK((t5_span_corruption(ids, t5, at).inputs == t5_span_corruption(ids, t5, at).inputs).all());
  CHECK((t5_span_corruption(ids, t5).kept == t5_span_corruption(ids, t5, {0, 0}).kept).all());
  CHECK((mae_random_masking(4, 32, 0.5, at).kept == mae_random_masking(4, 32, 0.5, at).kept).all());
  CHECK((mae_random_masking(4, 32).kept == mae_random_masking(4, 32, 0.75, {0, 0}).kept).all());
  CHECK((mgd_spatial_mask(4, 3, 5, 0.5, at) == mgd_spatial_mask(4, 3, 5, 0.5, at)).all());
  CHECK((mgd_channel_mask(4, 64, 0.5) == mgd_channel_mask(4, 64, 0.5, {0, 0})).all());
  CHECK_FALSE((mgd_channel_mask(4, 64, 0.5, at) == mgd_channel_mask(4, 64, 0.5, {9, 5})).all());
  CHECK(noise_argsort(purpose::user, 40, at) == noise_argsort(purpose::user, 40, at));
  CHECK(noise_argsort(purpose::user, 40, at) != noise_argsort(purpose::user, 40, {2024, 6}));
}

TEST_CASE("random_address: rows [0, 4) at s = rows [0, 2) at s and rows [2, 4) at s + 2",
          "[random][address]") {
  std::vector<Index> lens;
  bool_matrix starts;
  token_matrix word_ids;
  const token_matrix ids = batch4(lens, starts, word_ids);
  const std::uint64_t seed = 77, s = 1000;
  const random_address at{seed, s}, at2{seed, s + 2};
  const index_list all(lens);
  const index_list top = rows(lens, 0, 2), bottom = rows(lens, 2, 2);

  SECTION("mlm_mask and mlm_mask_inplace") {
    for (mlm_selection sel : {mlm_selection::bernoulli, mlm_selection::exact_count}) {
      auto o = bert<mlm_options>();
      o.selection = sel;
      const mlm_result whole = mlm_mask(ids, o, at);
      CHECK(
          same(whole, stack(mlm_mask(ids.topRows(2), o, at), mlm_mask(ids.bottomRows(2), o, at2))));
      const mlm_result whole_len = mlm_mask(ids, all, o, at);
      CHECK(same(whole_len, stack(mlm_mask(ids.topRows(2), top, o, at),
                                  mlm_mask(ids.bottomRows(2), bottom, o, at2))));
      token_matrix work = ids, labels(4, 16);
      mlm_mask_inplace(work.topRows(2), labels.topRows(2), o, at);
      mlm_mask_inplace(work.bottomRows(2), labels.bottomRows(2), o, at2);
      CHECK(same({work, labels}, whole));
      work = ids;
      mlm_mask_inplace(work.topRows(2), labels.topRows(2), top, o, at);
      mlm_mask_inplace(work.bottomRows(2), labels.bottomRows(2), bottom, o, at2);
      CHECK(same({work, labels}, whole_len));
    }
  }
  SECTION("whole_word_mask and whole_word_mask_by_ids") {
    const auto w = bert<whole_word_options>();
    CHECK(same(whole_word_mask(ids, starts, w, at),
               stack(whole_word_mask(ids.topRows(2), starts.topRows(2), w, at),
                     whole_word_mask(ids.bottomRows(2), starts.bottomRows(2), w, at2))));
    CHECK(same(whole_word_mask(ids, starts, all, w, at),
               stack(whole_word_mask(ids.topRows(2), starts.topRows(2), top, w, at),
                     whole_word_mask(ids.bottomRows(2), starts.bottomRows(2), bottom, w, at2))));
    CHECK(same(whole_word_mask_by_ids(ids, word_ids, w, at),
               stack(whole_word_mask_by_ids(ids.topRows(2), word_ids.topRows(2), w, at),
                     whole_word_mask_by_ids(ids.bottomRows(2), word_ids.bottomRows(2), w, at2))));
    CHECK(same(
        whole_word_mask_by_ids(ids, word_ids, all, w, at),
        stack(whole_word_mask_by_ids(ids.topRows(2), word_ids.topRows(2), top, w, at),
              whole_word_mask_by_ids(ids.bottomRows(2), word_ids.bottomRows(2), bottom, w, at2))));
  }
  SECTION("span_mask, all four overloads") {
    const auto sp = bert<span_options>();
    CHECK(same(span_mask(ids, sp, at),
               stack(span_mask(ids.topRows(2), sp, at), span_mask(ids.bottomRows(2), sp, at2))));
    CHECK(same(span_mask(ids, all, sp, at), stack(span_mask(ids.topRows(2), top, sp, at),
                                                  span_mask(ids.bottomRows(2), bottom, sp, at2))));
    CHECK(same(span_mask(ids, starts, sp, at),
               stack(span_mask(ids.topRows(2), starts.topRows(2), sp, at),
                     span_mask(ids.bottomRows(2), starts.bottomRows(2), sp, at2))));
    CHECK(same(span_mask(ids, starts, all, sp, at),
               stack(span_mask(ids.topRows(2), starts.topRows(2), top, sp, at),
                     span_mask(ids.bottomRows(2), starts.bottomRows(2), bottom, sp, at2))));
  }
  SECTION("t5_span_corruption and t5_keep_mask") {
    t5_options t5;
    t5.first_sentinel_id = 999;
    const t5_result whole = t5_span_corruption(ids, t5, at);
    const t5_result a = t5_span_corruption(ids.topRows(2), t5, at);
    const t5_result b = t5_span_corruption(ids.bottomRows(2), t5, at2);
    CHECK((whole.inputs.topRows(2) == a.inputs).all());
    CHECK((whole.inputs.bottomRows(2) == b.inputs).all());
    CHECK((whole.targets.bottomRows(2) == b.targets).all());
    CHECK((whole.kept.bottomRows(2) == b.kept).all());
    for (Index r = 0; r < 4; ++r)
      CHECK((whole.kept.row(r) == t5_keep_mask(16, t5, {seed, s + static_cast<std::uint64_t>(r)}))
                .all());
  }
  SECTION("mae_random_masking, mgd_spatial_mask, mgd_channel_mask") {
    const mae_result whole = mae_random_masking(4, 24, 0.5, at);
    const mae_result b = mae_random_masking(2, 24, 0.5, at2);
    CHECK((whole.kept.topRows(2) == mae_random_masking(2, 24, 0.5, at).kept).all());
    CHECK((whole.kept.bottomRows(2) == b.kept).all());
    CHECK((whole.ids_shuffle.bottomRows(2) == b.ids_shuffle).all());
    const bool_matrix spatial = mgd_spatial_mask(4, 3, 5, 0.5, at);
    CHECK((spatial.topRows(2) == mgd_spatial_mask(2, 3, 5, 0.5, at)).all());
    CHECK((spatial.bottomRows(2) == mgd_spatial_mask(2, 3, 5, 0.5, at2)).all());
    const bool_matrix channel = mgd_channel_mask(4, 40, 0.5, at);
    CHECK((channel.topRows(2) == mgd_channel_mask(2, 40, 0.5, at)).all());
    CHECK((channel.bottomRows(2) == mgd_channel_mask(2, 40, 0.5, at2)).all());
  }
}

TEST_CASE("span_mask(ids, lengths, options): every token a word, rows cut at their length",
          "[random][address][span]") {
  std::vector<Index> lens;
  bool_matrix starts;
  token_matrix word_ids;
  const token_matrix ids = batch4(lens, starts, word_ids);
  auto sp = bert<span_options>();
  sp.pad_id = 0;
  const random_address at{3, 11};
  const mlm_result r = span_mask(ids, index_list(lens), sp, at);
  // the same as the word_starts overload with every token a word start
  const bool_matrix every = bool_matrix::Constant(4, 16, true);
  CHECK(same(r, span_mask(ids, every, index_list(lens), sp, at)));
  // padding is a token like any other without lengths: with lengths it is never selected
  token_matrix filled = ids;
  for (Index b = 0; b < 4; ++b)
    for (Index t = lens[static_cast<std::size_t>(b)]; t < 16; ++t) filled(b, t) = 500;
  const mlm_result f = span_mask(filled, index_list(lens), sp, at);
  CHECK((f.labels == r.labels).all());
  for (Index b = 0; b < 4; ++b)
    for (Index t = lens[static_cast<std::size_t>(b)]; t < 16; ++t) {
      CHECK(f.labels(b, t) == sp.ignore_index);
      CHECK(f.input_ids(b, t) == 500);
    }
  CHECK_FALSE(same(f, span_mask(filled, sp, at)));  // without lengths the tail can be selected
}

// An allocation that fails inside a masker's OpenMP region (its per-thread buffers) must reach
// the caller as std::bad_alloc, not terminate the process (an exception may not leave an OpenMP
// region). The global operator new of failing_new.hpp fails allocations of exactly the armed size,
// a size only the per-thread buffers of the masker under test request (the results are Eigen
// arrays, allocated with malloc).

namespace {
/// Runs \p f with allocations of \p bytes failing; true when it threw std::bad_alloc.
template <class F>
bool fails_with_bad_alloc(std::size_t bytes, F&& f) {
  emask_test::failing_new_count() = 0;
  emask_test::failing_new_size() = bytes;
  bool caught = false;
  try {
    f();
  } catch (const std::bad_alloc&) {
    caught = true;
  }
  emask_test::failing_new_size() = 0;
  return caught && emask_test::failing_new_count() > 0;
}
}  // namespace

TEST_CASE("random maskers: an allocation failure in the parallel region reaches the caller",
          "[random][threads]") {
  // 20 x 1000 tokens, every one selectable: large enough for the OpenMP branch of every masker.
  const Index B = 20, L = 1000;
  token_matrix ids(B, L);
  for (Index i = 0; i < ids.size(); ++i) ids.data()[i] = static_cast<token_id>(10 + i % 900);
  const bool_matrix starts = bool_matrix::Constant(B, L, true);
  auto mlm = bert<mlm_options>();
  mlm.selection = mlm_selection::exact_count;
  const mlm_result clean = mlm_mask(ids, mlm, {5});
  // exact count: the row's selection words, L * 4 bytes
  CHECK(fails_with_bad_alloc(L * 4, [&] { mlm_mask(ids, mlm, {5}); }));
  // whole words: the word noise, one 4-byte word per word (every token a word)
  CHECK(fails_with_bad_alloc(
      L * 4, [&] { whole_word_mask(ids, starts, bert<whole_word_options>(), {5}); }));
  // spans: the taken flags, one byte per word
  CHECK(fails_with_bad_alloc(L, [&] { span_mask(ids, bert<span_options>(), {5}); }));
  // T5: the words of the kept-token segmentation, (850 - 1) * 4 bytes
  t5_options t5;
  t5.first_sentinel_id = 32099;
  CHECK(fails_with_bad_alloc((L - 150 - 1) * 4, [&] { t5_span_corruption(ids, t5, {5}); }));
  // MAE: the noise words and the order of noise_argsort, L * 4 bytes
  CHECK(fails_with_bad_alloc(L * 4, [&] { mae_random_masking(B, L, 0.75, {5}); }));
  // After a failure the maskers work as before.
  const mlm_result again = mlm_mask(ids, mlm, {5});
  CHECK((again.input_ids == clean.input_ids).all());
  CHECK((again.labels == clean.labels).all());
}
