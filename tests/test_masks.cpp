// Every builder compared entry by entry with its brute-force definition, on small shapes with
// Lq != Lk, empty and full lengths, offsets and per-batch parameters; bad arguments rejected.
#include <limits>
#include <vector>

#include "mask_testing.hpp"

using namespace emask;
using emask_test::check_mask;
using emask_test::rng;

namespace {
const std::vector<std::pair<Index, Index>> kShapes = {{1, 1},  {3, 5},  {5, 3},   {7, 7},
                                                      {8, 13}, {13, 8}, {16, 16}, {0, 4}};
}

TEST_CASE("causal: top-left, bottom-right and strict match their definitions", "[causal]") {
  for (const auto& shape : kShapes) {
    const Index lq = shape.first, lk = shape.second;
    check_mask(
        causal(), [](Index, Index, Index q, Index k) { return k <= q; }, 1, 1, lq, lk);
    check_mask(
        causal::bottom_right(lq, lk),
        [=](Index, Index, Index q, Index k) { return k <= q + lk - lq; }, 1, 1, lq, lk);
    check_mask(
        causal().strict(), [](Index, Index, Index q, Index k) { return k < q; }, 1, 1, lq, lk);
    check_mask(
        causal::bottom_right(lq, lk).strict(),
        [=](Index, Index, Index q, Index k) { return k < q + lk - lq; }, 1, 1, lq, lk);
  }
}

TEST_CASE("causal: both alignments drawn for Lq=3, Lk=5", "[causal]") {
  // Hand-checked: top-left row i keeps keys 0..i; bottom-right row i keeps keys 0..i+2.
  const bool_matrix tl = materialize(causal(), 3, 5);
  const bool_matrix br = materialize(causal::bottom_right(3, 5), 3, 5);
  bool_matrix tl_expected(3, 5), br_expected(3, 5);
  // clang-format off
  tl_expected << 1, 0, 0, 0, 0,
                 1, 1, 0, 0, 0,
                 1, 1, 1, 0, 0;
  // clang-format on
  // clang-format off
  br_expected << 1, 1, 1, 0, 0,
                 1, 1, 1, 1, 0,
                 1, 1, 1, 1, 1;
  // clang-format on
  CHECK((tl == tl_expected).all());
  CHECK((br == br_expected).all());
  CHECK(render(causal(), 3, 5, {0, 0, true}) ==
        " k 01234\n 0 #....  1\n 1 ##...  2\n 2 ###..  3\nkept 6 of 15 (density 0.4)\n");
}

TEST_CASE("causal: per-batch bottom-right alignment for variable-length caches", "[causal]") {
  const causal c = causal::bottom_right({2, 1, 3}, {4, 6, 3});
  const std::vector<Index> diag = {2, 5, 0};
  check_mask(
      c,
      [&](Index b, Index, Index q, Index k) { return k <= q + diag[static_cast<std::size_t>(b)]; },
      3, 2, 3, 6);
  REQUIRE_THROWS_WITH(causal::bottom_right({1, 2}, {3}), Catch::Matchers::Contains("k_lens"));
  REQUIRE_THROWS_WITH(causal::bottom_right({2, -1}, {3, 3}),
                      Catch::Matchers::Contains("q_lens[1]"));
  REQUIRE_THROWS_WITH(causal::bottom_right(-2, 3), Catch::Matchers::Contains("q_len"));
  // The mask knows its batch: asking for more sequences than it was built for is an error.
  REQUIRE_THROWS_AS(materialize(c, 3, 6, 3), emask::error);
}

TEST_CASE(
    "causal::bottom_right(q_len, k_len) rejects a call beyond the lengths it was built "
    "for, and accepts shards and tiles inside them",
    "[causal]") {
  const causal c = causal::bottom_right(1, 10);
  CHECK(c.q_len() == 1);
  CHECK(c.k_len() == 10);
  CHECK(causal().k_len() == -1);
  CHECK(causal::with_diagonal(9).q_len() == -1);
  // A 12-key cache: keys 10 and 11 would be silently dropped. The error names both lengths.
  REQUIRE_THROWS_WITH(materialize(c, 1, 12),
                      Catch::Matchers::Contains("causal::bottom_right(1, 10)") &&
                          Catch::Matchers::Contains("keys [0, 12)"));
  REQUIRE_THROWS_WITH(materialize(causal::bottom_right(2, 10), 3, 10),
                      Catch::Matchers::Contains("queries [0, 3)"));
  // Inside the lengths: the whole problem, a key shard at an offset, a strict copy.
  CHECK(materialize(c, 1, 10).count() == 10);
  CHECK(materialize(c.offset(0, 6), 1, 4).count() == 4);
  CHECK(materialize(causal::bottom_right(4, 8).strict(), 4, 8).count() ==
        materialize(causal::with_diagonal(4).strict(), 4, 8).count());
  REQUIRE_THROWS_AS(materialize(causal::bottom_right(4, 8).strict(), 4, 9), emask::error);
}

TEST_CASE("sink_window: sinks plus a causal window, exact tiles, against brute force",
          "[sink_window]") {
  for (const Index n_sink : {Index(0), Index(1), Index(4), Index(30)})
    for (const Index window : {Index(0), Index(1), Index(3), Index(8), Index(40)}) {
      INFO("n_sink " << n_sink << " window " << window);
      const emask::sink_window m(n_sink, window);
      STATIC_REQUIRE(emask::sink_window::exact_tiles);
      check_mask(
          m,
          [=](Index, Index, Index q, Index k) { return k <= q && (k < n_sink || q - k < window); },
          1, 1, 37, 41, static_cast<std::uint64_t>(n_sink * 100 + window));
      // Seen from a shard (offsets): the same predicate at absolute positions.
      check_mask(
          m.offset(20, 5),
          [=](Index, Index, Index q, Index k) {
            return k + 5 <= q + 20 && (k + 5 < n_sink || (q + 20) - (k + 5) < window);
          },
          1, 1, 17, 29);
    }
  // Hand-checked: 2 sinks, window 3, 7 x 7.
  CHECK(render(emask::sink_window(2, 3), 7, 7, {0, 0, false}) ==
        render(causal() & (emask::key_padding::from_lengths({2}, 7) | sliding_window(2, 0)), 7, 7,
               {0, 0, false}));
  CHECK(materialize(emask::sink_window(2, 3), 7, 7).row(6).cast<int>().sum() ==
        5);  // 0, 1, 4, 5, 6
  REQUIRE_THROWS_WITH(emask::sink_window(-1, 4), Catch::Matchers::Contains("'n_sink'"));
  REQUIRE_THROWS_WITH(emask::sink_window(4, -2), Catch::Matchers::Contains("'window'"));
}

TEST_CASE(
    "token_bitmask: LSB-first 32-bit words read in place, padding bits never allowed, "
    "exact tiles",
    "[token_bitmask]") {
  // Bit order pinned by hand: word 0x00000005 allows tokens 0 and 2; the sign bit is token 31.
  const std::int32_t hand[2] = {0x5, static_cast<std::int32_t>(0x80000001u)};
  const emask::token_bitmask h(hand, 1, 2, 64);
  CHECK(h.keep(0, 0, 0, 0));
  CHECK(!h.keep(0, 0, 0, 1));
  CHECK(h.keep(0, 0, 0, 2));
  CHECK(!h.keep(0, 0, 0, 31));
  CHECK(h.keep(0, 0, 0, 32));
  CHECK(h.keep(0, 0, 0, 63));
  // A vocabulary of 40 over the same words: bit 63 (token 63) is padding, never allowed.
  const emask::token_bitmask narrow(hand, 1, 2, 40);
  CHECK(!narrow.keep(0, 0, 0, 63));
  CHECK(narrow.to_bool().count() == 3);
  // Random words, garbage in the padding bits: the brute force sees only bits below vocab.
  rng r(5);
  for (const Index vocab : {Index(1), Index(31), Index(32), Index(33), Index(100), Index(130)}) {
    const Index rows = 7, wpr = (vocab + 31) / 32;
    std::vector<std::int32_t> words(static_cast<std::size_t>(rows * wpr));
    for (std::size_t i = 0; i < words.size(); ++i) {
      const int kind = static_cast<int>(r.between(0, 3));  // all, none, random, random
      words[i] = kind == 0 ? -1 : kind == 1 ? 0 : static_cast<std::int32_t>(r.next());
    }
    const emask::token_bitmask m(words.data(), rows, wpr, vocab);
    INFO("vocab " << vocab);
    STATIC_REQUIRE(emask::token_bitmask::exact_tiles);
    check_mask(
        m,
        [&](Index, Index, Index q, Index k) {
          const auto w =
              static_cast<std::uint32_t>(words[static_cast<std::size_t>(q * wpr + k / 32)]);
          return ((w >> (k % 32)) & 1u) != 0;
        },
        1, 1, rows, vocab, static_cast<std::uint64_t>(vocab));
  }
  // A vocabulary wider than the bits: an error by default, masked with vocab_tail::mask.
  REQUIRE_THROWS_WITH(emask::token_bitmask(hand, 1, 2, 65),
                      Catch::Matchers::Contains("emask::token_bitmask: argument 'vocab' = 65"));
  const emask::token_bitmask wide(hand, 1, 2, 70, emask::vocab_tail::mask);
  CHECK(!wide.keep(0, 0, 0, 64));
  CHECK(!wide.keep(0, 0, 0, 69));
  CHECK(wide.to_bool().count() == 4);
  REQUIRE_THROWS_WITH(emask::token_bitmask(hand, -1, 2, 64),
                      Catch::Matchers::Contains("emask::token_bitmask: argument 'rows' = -1"));
  REQUIRE_THROWS_WITH(emask::token_bitmask(nullptr, 1, 2, 64),
                      Catch::Matchers::Contains("emask::token_bitmask: argument 'words'"));
  CHECK(emask::token_bitmask(nullptr, 0, 2, 64).to_bool().size() == 0);  // no rows, no words
  // Asked beyond its rows or vocabulary: an error naming the caller.
  REQUIRE_THROWS_WITH(materialize(h, 2, 64), Catch::Matchers::Contains("token_bitmask of 1 rows"));
  REQUIRE_THROWS_WITH(materialize(h, 1, 65),
                      Catch::Matchers::Contains("token_bitmask of vocab 64"));
}

TEST_CASE("offsets: a shard or cache step is the same mask at other positions", "[offset]") {
  for (Index dq : {0, 3, 10})
    for (Index dk : {0, 2, 9}) {
      check_mask(
          causal().offset(dq, dk), [=](Index, Index, Index q, Index k) { return k + dk <= q + dq; },
          1, 1, 6, 7);
      check_mask(
          sliding_window(2, 1).offset(dq, dk),
          [=](Index, Index, Index q, Index k) {
            const Index p = q + dq, kk = k + dk;
            return p - 2 <= kk && kk <= p + 1;
          },
          1, 1, 6, 7);
      // Offsets compose by addition.
      check_mask(
          causal().offset(dq, 0).offset(0, dk),
          [=](Index, Index, Index q, Index k) { return k + dk <= q + dq; }, 1, 1, 4, 5);
    }
  // One decode step at position 9 of a cache of 10 keys: top-left causal with a query offset
  // equals bottom-right causal for Lq = 1.
  CHECK(
      (materialize(causal().offset(9, 0), 1, 10) == materialize(causal::bottom_right(1, 10), 1, 10))
          .all());
  REQUIRE_THROWS_WITH(causal().offset(-1, 0), Catch::Matchers::Contains("q_offset"));
  REQUIRE_THROWS_WITH(causal().offset(0, -3), Catch::Matchers::Contains("k_offset"));
}

TEST_CASE("positions near the largest Index: saturated or rejected, never overflowed",
          "[offset][causal][window]") {
  const Index max = std::numeric_limits<Index>::max();
  // A diagonal beyond every position keeps everything (or nothing) as documented.
  CHECK(materialize(causal::with_diagonal(max), 3, 5).count() == 15);
  CHECK(materialize(causal::with_diagonal(max).strict(), 3, 5).count() == 15);
  CHECK(materialize(causal::with_diagonal(-max), 3, 5).count() == 0);
  CHECK(materialize(causal::with_diagonal(std::numeric_limits<Index>::min()), 3, 5).count() == 0);
  CHECK(materialize(causal::bottom_right(2, max), 2, 4).count() == 8);
  CHECK(materialize(causal::bottom_right({0, 1}, {max, 1}), 2, 4, 0).count() == 8);
  // Windows: the sides are clamped to unbounded (documented), the diagonal never overflows.
  CHECK(materialize(sliding_window(0, 0, max), 3, 5).count() == 0);
  CHECK(materialize(sliding_window(unbounded, 0, -max), 3, 5).count() == 0);
  CHECK(materialize(sliding_window(max, max, max), 3, 5).count() == 0);
  CHECK(materialize(sliding_window(max, max, -max), 3, 5).count() == 0);
  CHECK(materialize(sliding_window(max, max, unbounded), 3, 5).count() == 12);  // k >= q
  CHECK(materialize(sliding_window(max, max, -unbounded), 3, 5).count() == 6);  // k <= q
  CHECK(materialize(sliding_window::from_flash_attn(-1, 0, 0, max), 3, 5).count() == 0);
  // Absolute positions stay <= emask::unbounded: larger offsets, and sums of offsets, are
  // rejected instead of wrapping around.
  CHECK(materialize(causal().offset(unbounded - 2, 0), 2, 6).count() == 12);
  REQUIRE_THROWS_AS(causal().offset(max - 1, 0), emask::error);
  REQUIRE_THROWS_WITH(causal().offset(max - 1, 0), Catch::Matchers::Contains("'q_offset'"));
  REQUIRE_THROWS_WITH(causal().offset(0, max), Catch::Matchers::Contains("'k_offset'"));
  REQUIRE_THROWS_AS(causal().offset(max / 2 + 1, 0).offset(max / 2 + 1, 0), emask::error);
  REQUIRE_THROWS_WITH(causal().offset(unbounded, 0).offset(1, 0),
                      Catch::Matchers::Contains("emask::offset: argument 'q_offset' = 1"));
  REQUIRE_THROWS_WITH(causal().offset(0, unbounded - 3).offset(0, 4),
                      Catch::Matchers::Contains("emask::offset: argument 'k_offset' = 4"));
  CHECK(causal().offset(unbounded - 3, 1).offset(3, 2).q_offset() == unbounded);
  // The region asked about must stay inside too.
  REQUIRE_THROWS_WITH(materialize(causal().offset(unbounded - 1, 0), 2, 3),
                      Catch::Matchers::Contains("emask::materialize: argument 'query positions'"));
  REQUIRE_THROWS_WITH(materialize(causal().offset(0, unbounded - 1), 2, 3),
                      Catch::Matchers::Contains("emask::materialize: argument 'key positions'"));
}

TEST_CASE("sliding_window: the inclusive spec and each converter", "[window]") {
  for (const auto& shape : kShapes)
    for (Index left : {0, 1, 3})
      for (Index right : {0, 2}) {
        const Index lq = shape.first, lk = shape.second;
        check_mask(
            sliding_window(left, right),
            [=](Index, Index, Index q, Index k) { return q - left <= k && k <= q + right; }, 1, 1,
            lq, lk);
      }
  check_mask(
      sliding_window(unbounded, 0), [](Index, Index, Index q, Index k) { return k <= q; }, 1, 1, 9,
      9);
  check_mask(
      sliding_window(1, unbounded), [](Index, Index, Index q, Index k) { return k >= q - 1; }, 1, 1,
      9, 9);
  REQUIRE_THROWS_WITH(sliding_window(-1, 0), Catch::Matchers::Contains("'left' = -1"));
  REQUIRE_THROWS_WITH(sliding_window(0, -2), Catch::Matchers::Contains("'right' = -2"));
}

namespace {
// Kept keys per row, as a list: the form in which each converter is pinned.
std::vector<std::vector<Index>> kept_lists(const bool_matrix& m) {
  std::vector<std::vector<Index>> rows(static_cast<std::size_t>(m.rows()));
  for (Index q = 0; q < m.rows(); ++q)
    for (Index k = 0; k < m.cols(); ++k)
      if (m(q, k)) rows[static_cast<std::size_t>(q)].push_back(k);
  return rows;
}
using lists = std::vector<std::vector<Index>>;
}  // namespace

TEST_CASE("sliding_window converters list the kept keys of a small case", "[window]") {
  // Hugging Face sliding_window=3 (causal and kv_idx > q_idx - 3), 5 positions.
  CHECK(kept_lists(materialize(sliding_window::from_hf(3), 5, 5)) ==
        lists{{0}, {0, 1}, {0, 1, 2}, {1, 2, 3}, {2, 3, 4}});
  // llama.cpp n_swa=3, standard: masked when q - k >= 3, causal.
  CHECK(kept_lists(materialize(sliding_window::from_llama_cpp(3), 5, 5)) ==
        lists{{0}, {0, 1}, {0, 1, 2}, {1, 2, 3}, {2, 3, 4}});
  // llama.cpp n_swa=4, symmetric: masked when |q - k| > 2.
  CHECK(
      kept_lists(materialize(sliding_window::from_llama_cpp(4, llama_swa_type::symmetric), 5, 5)) ==
      lists{{0, 1, 2}, {0, 1, 2, 3}, {0, 1, 2, 3, 4}, {1, 2, 3, 4}, {2, 3, 4}});
  // llama.cpp n_swa=5, symmetric: 5 / 2 = 2 on each side (integer division).
  CHECK(kept_lists(materialize(sliding_window::from_llama_cpp(5, llama_swa_type::symmetric), 5,
                               5)) == kept_lists(materialize(sliding_window(2, 2), 5, 5)));
  // FlashAttention window_size=(1, 0) with 3 queries over 5 keys: bottom-right aligned,
  // query i keeps [i + 2 - 1, i + 2].
  CHECK(kept_lists(materialize(sliding_window::from_flash_attn(1, 0, 3, 5), 3, 5)) ==
        lists{{1, 2}, {2, 3}, {3, 4}});
  // FlashAttention window_size=(-1, 0) is bottom-right causal; (-1, -1) keeps everything.
  CHECK((materialize(sliding_window::from_flash_attn(-1, 0, 3, 5), 3, 5) ==
         materialize(causal::bottom_right(3, 5), 3, 5))
            .all());
  CHECK(materialize(sliding_window::from_flash_attn(-1, -1, 3, 5), 3, 5).all());
  // SHAPES.md attn-window: query i sees keys i-255..i.
  const sliding_window w = sliding_window::from_hf(256);
  CHECK(w.left() == 255);
  CHECK(w.right() == 0);
  REQUIRE_THROWS_WITH(sliding_window::from_hf(0), Catch::Matchers::Contains("sliding_window"));
  REQUIRE_THROWS_WITH(sliding_window::from_llama_cpp(0), Catch::Matchers::Contains("n_swa"));
  REQUIRE_THROWS_WITH(sliding_window::from_flash_attn(-2, 0, 3, 3),
                      Catch::Matchers::Contains("window_left"));
  REQUIRE_THROWS_WITH(
      sliding_window::from_llama_cpp(4, static_cast<llama_swa_type>(7)),
      Catch::Matchers::Contains("emask::sliding_window::from_llama_cpp: argument 'type' = 7"));
}

TEST_CASE("chunked: same chunk only, causal inside by composition", "[chunk]") {
  for (const auto& shape : kShapes)
    for (Index c : {1, 2, 3, 5}) {
      const Index lq = shape.first, lk = shape.second;
      check_mask(
          chunked(c), [=](Index, Index, Index q, Index k) { return q / c == k / c; }, 1, 1, lq, lk);
      check_mask(
          chunked(c) & causal(),
          [=](Index, Index, Index q, Index k) { return q / c == k / c && k <= q; }, 1, 1, lq, lk);
    }
  check_mask(
      chunked(4).offset(6, 6),
      [](Index, Index, Index q, Index k) { return (q + 6) / 4 == (k + 6) / 4; }, 1, 1, 7, 7);
  REQUIRE_THROWS_WITH(chunked(0), Catch::Matchers::Contains("chunk_size"));
}

TEST_CASE("prefix_lm: bidirectional prefix, causal after", "[prefix]") {
  for (const auto& shape : kShapes)
    for (Index p : {0, 1, 3, 20}) {
      const Index lq = shape.first, lk = shape.second;
      check_mask(
          prefix_lm(p), [=](Index, Index, Index q, Index k) { return k < p || k <= q; }, 1, 1, lq,
          lk);
    }
  const std::vector<Index> ps = {0, 2, 6};
  check_mask(
      prefix_lm({0, 2, 6}),
      [&](Index b, Index, Index q, Index k) {
        return k < ps[static_cast<std::size_t>(b)] || k <= q;
      },
      3, 1, 8, 8);
  REQUIRE_THROWS_WITH(prefix_lm(-1), Catch::Matchers::Contains("prefix_length"));
  REQUIRE_THROWS_WITH(prefix_lm({1, -4}), Catch::Matchers::Contains("prefix_lengths[1]"));
}

TEST_CASE("key_padding: right, left and range padding per sequence", "[padding]") {
  const std::vector<Index> len = {0, 3, 7, 5};
  const Index L = 7;
  check_mask(
      key_padding::from_lengths({0, 3, 7, 5}, L),
      [&](Index b, Index, Index, Index k) { return k < len[static_cast<std::size_t>(b)]; }, 4, 2, 5,
      L);
  check_mask(
      key_padding::from_lengths_left({0, 3, 7, 5}, L),
      [&](Index b, Index, Index, Index k) { return k >= L - len[static_cast<std::size_t>(b)]; }, 4,
      2, 5, L);
  check_mask(
      key_padding::from_ranges({1, 0, 2}, {4, 0, 7}, L),
      [](Index b, Index, Index, Index k) {
        const Index s[] = {1, 0, 2}, e[] = {4, 0, 7};
        return s[b] <= k && k < e[b];
      },
      3, 1, 4, L);
  // An Eigen vector of int32 lengths works as well as a braced list.
  Eigen::VectorXi lengths(2);
  lengths << 2, 4;
  CHECK((materialize(key_padding::from_lengths(lengths, 4), 2, 4, 1) == true).all());
  REQUIRE_THROWS_WITH(key_padding::from_lengths({3, -1}, 5),
                      Catch::Matchers::Contains("lengths[1]' = -1"));
  REQUIRE_THROWS_WITH(key_padding::from_lengths({6}, 5),
                      Catch::Matchers::Contains("lengths[0]' = 6"));
  REQUIRE_THROWS_WITH(key_padding::from_ranges({3}, {2}, 5), Catch::Matchers::Contains("ends[0]"));
  REQUIRE_THROWS_WITH(key_padding::from_ranges({0, 1}, {2}, 5), Catch::Matchers::Contains("ends"));
  REQUIRE_THROWS_WITH(key_padding::from_lengths({}, 5), Catch::Matchers::Contains("lengths"));
  // Used with more keys than it was built for, or more sequences: an error naming the problem.
  REQUIRE_THROWS_WITH(materialize(key_padding::from_lengths({3}, 5), 2, 6),
                      Catch::Matchers::Contains("key positions"));
  REQUIRE_THROWS_WITH(materialize(key_padding::from_lengths({3}, 5), 2, 5, 1),
                      Catch::Matchers::Contains("key padding"));
}

TEST_CASE("query_padding: padded queries keep nothing", "[padding]") {
  const std::vector<Index> len = {0, 2, 5};
  check_mask(
      query_padding::from_lengths({0, 2, 5}, 5),
      [&](Index b, Index, Index q, Index) { return q < len[static_cast<std::size_t>(b)]; }, 3, 1, 5,
      4);
  check_mask(
      query_padding::from_lengths_left({0, 2, 5}, 5),
      [&](Index b, Index, Index q, Index) { return q >= 5 - len[static_cast<std::size_t>(b)]; }, 3,
      1, 5, 4);
  check_mask(
      query_padding::from_ranges({1}, {3}, 5),
      [](Index, Index, Index q, Index) { return q >= 1 && q < 3; }, 1, 1, 5, 6);
  // Query and key padding together: the usual encoder mask of a padded batch.
  check_mask(
      query_padding::from_lengths({2, 4}, 4) & key_padding::from_lengths({2, 4}, 4),
      [](Index b, Index, Index q, Index k) {
        const Index n = b == 0 ? 2 : 4;
        return q < n && k < n;
      },
      2, 1, 4, 4);
  REQUIRE_THROWS_WITH(query_padding::from_lengths({7}, 5), Catch::Matchers::Contains("lengths[0]"));
}

TEST_CASE("key_flags and query_flags: pad ids anywhere, keep arrays and drop masks", "[flags]") {
  const id_table ids{{5, 0, 7, 0, 0, 9}, {0, 0, 1, 2, 3, 4}, {1, 2, 3, 4, 5, 6}};
  const std::int64_t pad = 0;
  const auto ref = [&](Index b, Index, Index, Index k) { return ids(b, k) != pad; };
  check_mask(key_flags::from_tokens(ids, pad), ref, 3, 2, 4, 6);
  check_mask(
      query_flags::from_tokens(ids, pad),
      [&](Index b, Index, Index q, Index) { return ids(b, q) != pad; }, 3, 1, 6, 3);
  // The same padding from PyTorch's key_padding_mask (true = pad) through the named conversion.
  bool_matrix pad_flags(3, 6);
  for (Index b = 0; b < 3; ++b)
    for (Index k = 0; k < 6; ++k) pad_flags(b, k) = ids(b, k) == pad;
  check_mask(key_flags::from_drop(drop_mask(pad_flags)), ref, 3, 1, 2, 6);
  check_mask(key_flags::from_keep(!pad_flags), ref, 3, 1, 2, 6);
  // Token ids from an int32 Eigen array.
  Eigen::Array<std::int32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> tok(1, 4);
  tok << 3, 3, 1, 1;
  CHECK(kept_lists(materialize(key_flags::from_tokens(tok, 1), 1, 4)) == lists{{0, 1}});
  REQUIRE_THROWS_WITH(materialize(key_flags::from_tokens(ids, pad), 2, 7),
                      Catch::Matchers::Contains("key positions"));
}

TEST_CASE("document: segment ids, cross ids and cu_seqlens", "[document]") {
  const id_table seg{{0, 0, 0, 1, 1, 2, 2, 2}, {4, 4, 7, 7, 7, 7, 9, 9}};
  check_mask(
      document::from_segment_ids(seg),
      [&](Index b, Index, Index q, Index k) { return seg(b, q) == seg(b, k); }, 2, 1, 8, 8);
  check_mask(
      document::from_segment_ids(seg) & causal(),
      [&](Index b, Index, Index q, Index k) { return seg(b, q) == seg(b, k) && k <= q; }, 2, 1, 8,
      8);
  // Ids that reappear in two runs (not packed in order) still give exact answers.
  const id_table odd{{1, 1, 2, 1, 3, 3, 2}};
  check_mask(
      document::from_segment_ids(odd),
      [&](Index, Index, Index q, Index k) { return odd(0, q) == odd(0, k); }, 1, 1, 7, 7);
  // Cross ids: queries of one layout, keys of another.
  const id_table qs{{0, 1, 1}}, ks{{0, 0, 1, 1, 1, 2}};
  check_mask(
      document::from_segment_ids(qs, ks),
      [&](Index, Index, Index q, Index k) { return qs(0, q) == ks(0, k); }, 1, 1, 3, 6);
  // cu_seqlens [0, 3, 5, 5, 8]: documents of 3, 2, 0 and 3 tokens.
  const std::vector<Index> doc = {0, 0, 0, 1, 1, 3, 3, 3};
  check_mask(
      document::from_cu_seqlens({0, 3, 5, 5, 8}),
      [&](Index, Index, Index q, Index k) {
        return doc[static_cast<std::size_t>(q)] == doc[static_cast<std::size_t>(k)];
      },
      1, 1, 8, 8);
  REQUIRE_THROWS_WITH(document::from_cu_seqlens({0, 4, 3}),
                      Catch::Matchers::Contains("cu_seqlens[2]' = 3"));
  REQUIRE_THROWS_WITH(document::from_cu_seqlens({1, 4}),
                      Catch::Matchers::Contains("cu_seqlens[0]"));
  REQUIRE_THROWS_WITH(document::from_cu_seqlens({0}), Catch::Matchers::Contains("cu_seqlens"));
  REQUIRE_THROWS_WITH(document::from_segment_ids(seg, qs),
                      Catch::Matchers::Contains("k_segment_ids"));
  REQUIRE_THROWS_WITH(materialize(document::from_cu_seqlens({0, 3}), 4, 3),
                      Catch::Matchers::Contains("query positions"));
}

TEST_CASE("document::from_cu_seqlens: an absurd total length is an argument error", "[document]") {
  const Index max = std::numeric_limits<Index>::max();
  REQUIRE_THROWS_AS(document::from_cu_seqlens({0, max}), emask::error);
  REQUIRE_THROWS_WITH(
      document::from_cu_seqlens({0, 3, max}),
      Catch::Matchers::Contains("emask::document::from_cu_seqlens: argument 'cu_seqlens[2]'"));
}

TEST_CASE("dense_mask: a user array as a mask, viewed or owned, with broadcasting", "[dense]") {
  rng r(7);
  bool_matrix a(6, 9);
  for (Index q = 0; q < 6; ++q)
    for (Index k = 0; k < 9; ++k) a(q, k) = r.coin(0.6);
  check_mask(
      as_mask(a), [&](Index, Index, Index q, Index k) { return a(q, k); }, 2, 2, 6, 9);
  check_mask(
      to_mask(a), [&](Index, Index, Index q, Index k) { return a(q, k); }, 1, 1, 6, 9);
  // [B=2, H=1, 3, 4] buffer, broadcast over heads.
  std::vector<char> storage(2 * 3 * 4);
  bool buf[2 * 3 * 4];
  for (std::size_t i = 0; i < 24; ++i) buf[i] = r.coin();
  const dense_mask d(buf, 2, 1, 3, 4);
  check_mask(
      d, [&](Index b, Index, Index q, Index k) { return buf[(b * 3 + q) * 4 + k]; }, 2, 3, 3, 4);
  // keep_row(b, h, q): the row of flags keep() reads, heads broadcast (H = 1).
  for (Index b = 0; b < 2; ++b)
    for (Index h = 0; h < 3; ++h)
      for (Index q = 0; q < 3; ++q) {
        CHECK(d.keep_row(b, h, q) == buf + (b * 3 + q) * 4);
        for (Index k = 0; k < 4; ++k) CHECK(d.keep_row(b, h, q)[k] == d.keep(b, h, q, k));
      }
  CHECK(as_mask(a).keep_row(1, 1, 5) == a.data() + 5 * 9);
  // as_mask views (sees a later change of the array), to_mask owns a copy (does not).
  const dense_mask view = as_mask(a), owned = to_mask(a);
  const bool before = a(2, 3);
  a(2, 3) = !before;
  CHECK(view.keep(0, 0, 2, 3) == !before);
  CHECK(owned.keep(0, 0, 2, 3) == before);
  CHECK(owned.keep_row(0, 0, 2) != a.data() + 2 * 9);
  a(2, 3) = before;
  REQUIRE_THROWS_WITH(dense_mask(buf, 0, 1, 3, 4), Catch::Matchers::Contains("batch"));
  REQUIRE_THROWS_WITH(materialize(d, 3, 4, 2), Catch::Matchers::Contains("dense mask batch"));
  REQUIRE_THROWS_WITH(materialize(as_mask(a), 7, 9), Catch::Matchers::Contains("query positions"));
}

TEST_CASE("per_head: one window per head", "[per_head]") {
  const auto m = per_head(std::vector<sliding_window>{sliding_window(0, 0), sliding_window(2, 0),
                                                      sliding_window(1, 1)});
  check_mask(
      m,
      [](Index, Index h, Index q, Index k) {
        const Index l[] = {0, 2, 1}, r[] = {0, 0, 1};
        return q - l[h] <= k && k <= q + r[h];
      },
      1, 3, 6, 6);
  // A head the mask has no entry for (volatile: g++ -O2 would otherwise warn about the
  // out-of-range access on the path that the check makes unreachable).
  volatile Index missing_head = 3;
  REQUIRE_THROWS_WITH(materialize(m, 6, 6, 0, missing_head), Catch::Matchers::Contains("per_head"));
  REQUIRE_THROWS_WITH(per_head(std::vector<causal>{}), Catch::Matchers::Contains("masks"));
}

TEST_CASE("keep_all: every pair kept, every tile full, neutral for &", "[keep_all]") {
  const auto all = [](Index, Index, Index, Index) { return true; };
  for (Index lq : {1, 5, 17})
    for (Index lk : {1, 8, 33}) {
      check_mask(keep_all(), all, 2, 2, lq, lk);
      check_mask(keep_all().offset(3, 7), all, 1, 1, lq, lk);
    }
  // Full at any position, including tiles that reach emask::unbounded.
  CHECK(keep_all().tile(0, 0, 0, 1, 0, 1) == tile_state::full);
  CHECK(keep_all().tile(3, 1, 100, 164, 4000, 4064) == tile_state::full);
  CHECK(keep_all().tile(0, 0, unbounded - 2, unbounded, 0, unbounded) == tile_state::full);
  const key_span s = keep_all().keys(0, 0, 9, 2, 12);
  CHECK((s.begin == 2 && s.end == 12 && s.exact));
  // keep_all() & m is m, keep_all() | m is keep_all(), !keep_all() keeps nothing.
  const auto m = causal() & sliding_window(3, 0);
  check_mask(
      keep_all() & m, [](Index, Index, Index q, Index k) { return k <= q && q - k <= 3; }, 1, 1, 12,
      12);
  check_mask(
      m & keep_all(), [](Index, Index, Index q, Index k) { return k <= q && q - k <= 3; }, 1, 1, 12,
      12);
  check_mask(keep_all() | m, all, 1, 1, 9, 11);
  check_mask(
      !keep_all(), [](Index, Index, Index, Index) { return false; }, 1, 1, 6, 7);
  // Any batch and head; positions beyond emask::unbounded are refused.
  keep_all().check(region{0, 1000, 0, 64, 0, 10, 0, 10}, "test");
  REQUIRE_THROWS_WITH(keep_all().check(region{0, 1, 0, 1, 0, 1, 0, unbounded + 1}, "where"),
                      Catch::Matchers::Contains("emask::where: argument 'key positions'"));
}

TEST_CASE("keep_all in the kernels: plain softmax and attention", "[keep_all][kernels]") {
  rng g(41);
  const Index lq = 7, lk = 37, d = 16;
  const row_matrix<double> x = emask_test::uniform_matrix<double>(g, lq, lk, 4.0);
  const row_matrix<double> p = masked_softmax(x, keep_all());
  for (Index i = 0; i < lq; ++i) {
    const double m = x.row(i).maxCoeff();
    const double z = (x.row(i).array() - m).exp().sum();
    for (Index j = 0; j < lk; ++j)
      CHECK(p(i, j) == Approx(std::exp(x(i, j) - m) / z).epsilon(1e-14));
  }
  // The same bits as the window that keeps everything (the spelling users had before).
  const row_matrix<float> q = emask_test::uniform_matrix<float>(g, lq, d),
                          k = emask_test::uniform_matrix<float>(g, lk, d),
                          v = emask_test::uniform_matrix<float>(g, lk, d);
  row_matrix<float> a(lq, d), b(lq, d);
  masked_attention(q, k, v, keep_all(), a);
  masked_attention(q, k, v, sliding_window(unbounded, unbounded), b);
  CHECK((a.array() == b.array()).all());
}
