// Tree masks for speculative decoding (masks/tree.hpp) and the packed layouts engines exchange
// them in (masks/tree_packing.hpp): every tree against its brute-force definition (random
// forests, chains, stars, several roots, children before parents, T = 0 and 1, P = 0, offsets),
// exact tiles, the kernels against the materialized mask, hand-written goldens of FlashInfer's
// and TensorRT-LLM's bytes and words, round trips, and bad input.
#include <algorithm>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include <emask/masks/tree.hpp>
#include <emask/masks/tree_packing.hpp>

#include "kernel_variants.hpp"
#include "mask_testing.hpp"

using namespace emask;
using emask_test::check_mask;
using emask_test::rng;

namespace {

// Whether draft token a is token i or an ancestor of i, by walking the parents.
bool on_path(const std::vector<Index>& parents, Index a, Index i) {
  for (Index j = i; j != -1; j = parents[static_cast<std::size_t>(j)])
    if (j == a) return true;
  return false;
}

emask_test::predicate tree_predicate(const std::vector<Index>& parents, Index p) {
  const Index t = static_cast<Index>(parents.size());
  return [parents, p, t](Index, Index, Index q, Index k) {
    return k < p || (k - p < t && on_path(parents, k - p, q));
  };
}

// A random forest: token i attaches to the prefix with probability root_p, else to a random
// earlier token; then the labels are shuffled (children may come before parents) when asked.
std::vector<Index> random_forest(rng& r, Index t, double root_p, bool shuffle) {
  std::vector<Index> parents(static_cast<std::size_t>(t), -1);
  for (Index i = 1; i < t; ++i)
    parents[static_cast<std::size_t>(i)] = r.coin(root_p) ? -1 : r.between(0, i - 1);
  if (!shuffle) return parents;
  std::vector<Index> label(static_cast<std::size_t>(t));
  for (Index i = 0; i < t; ++i) label[static_cast<std::size_t>(i)] = i;
  for (Index i = t - 1; i > 0; --i)
    std::swap(label[static_cast<std::size_t>(i)], label[static_cast<std::size_t>(r.between(0, i))]);
  std::vector<Index> out(static_cast<std::size_t>(t), -1);
  for (Index i = 0; i < t; ++i) {
    const Index pi = parents[static_cast<std::size_t>(i)];
    out[static_cast<std::size_t>(label[static_cast<std::size_t>(i)])] =
        pi < 0 ? -1 : label[static_cast<std::size_t>(pi)];
  }
  return out;
}

std::vector<Index> chain(Index t) {
  std::vector<Index> p(static_cast<std::size_t>(t));
  for (Index i = 0; i < t; ++i) p[static_cast<std::size_t>(i)] = i - 1;
  return p;
}

// What a call threw: its message, or a note that it threw something else or nothing.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const emask::error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("not an emask::error: ") + e.what();
  }
  return "no exception";
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

TEST_CASE("tree_mask: random forests, chains, stars against brute force, exact tiles", "[tree]") {
  STATIC_REQUIRE(tree_mask::exact_tiles);
  rng r(15);
  struct shape {
    const char* name;
    std::vector<Index> parents;
  };
  std::vector<shape> shapes = {
      {"empty", {}},
      {"one root", {-1}},
      {"chain 9", chain(9)},
      {"chain 70 (two words per row)", chain(70)},
      {"star of roots", std::vector<Index>(13, -1)},
      {"star under one root", {-1, 0, 0, 0, 0, 0, 0}},
      {"children before parents", {3, -1, 1, 1, 2, 4}},
  };
  for (int i = 0; i < 12; ++i)
    shapes.push_back({"random", random_forest(r, r.between(2, 40), 0.15 * (i % 4), i % 2 == 1)});
  shapes.push_back({"random 90", random_forest(r, 90, 0.05, true)});
  for (const shape& s : shapes) {
    const Index t = static_cast<Index>(s.parents.size());
    for (const Index p : {Index(0), Index(1), Index(5), Index(r.between(0, 70))}) {
      INFO(s.name << ": T " << t << " P " << p);
      const tree_mask m(s.parents, p);
      REQUIRE(m.draft_length() == t);
      REQUIRE(m.prefix_length() == p);
      REQUIRE(m.key_length() == p + t);
      const auto pred = tree_predicate(s.parents, p);
      check_mask(m, pred, 2, 2, t, p + t, static_cast<std::uint64_t>(t * 100 + p));
      // A shard: the last queries over a window of keys (Lq != Lk, both offsets > 0).
      if (t >= 2 && p + t >= 3) {
        const Index dq = r.between(0, t - 1), dk = r.between(0, p + t - 1);
        check_mask(
            m.offset(dq, dk),
            [&](Index b, Index h, Index q, Index k) { return pred(b, h, q + dq, k + dk); }, 1, 1,
            t - dq, p + t - dk);
      }
    }
  }
}

TEST_CASE("tree_mask: hand-checked tree, depths and position ids", "[tree]") {
  // Prefix of 2 committed tokens, then draft tokens 0..4:
  //   prefix -> 0 -> 1 -> 3
  //             0 -> 2
  //   prefix -> 4            (a second root)
  const tree_mask m({-1, 0, 0, 1, -1}, 2);
  bool_matrix want(5, 7);
  // clang-format off
  //         k: 0  1 | d0 d1 d2 d3 d4
  want << /*0*/ 1, 1,  1, 0, 0, 0, 0,
          /*1*/ 1, 1,  1, 1, 0, 0, 0,
          /*2*/ 1, 1,  1, 0, 1, 0, 0,
          /*3*/ 1, 1,  1, 1, 0, 1, 0,
          /*4*/ 1, 1,  0, 0, 0, 0, 1;
  // clang-format on
  CHECK((materialize(m, 5, 7) == want).all());
  CHECK(m.depth(0) == 0);
  CHECK(m.depth(1) == 1);
  CHECK(m.depth(2) == 1);
  CHECK(m.depth(3) == 2);
  CHECK(m.depth(4) == 0);
  CHECK(m.positions() == std::vector<Index>{2, 3, 3, 4, 2});
  CHECK(m.parent(3) == 1);
  CHECK(m.is_ancestor_or_self(0, 3));
  CHECK(!m.is_ancestor_or_self(2, 3));
  CHECK((m.draft_keep() == want.rightCols(5)).all());
  // Tiles: the prefix columns are full, the draft ones counted.
  CHECK(m.tile(0, 0, 0, 5, 0, 2) == tile_state::full);
  CHECK(m.tile(0, 0, 0, 4, 2, 3) == tile_state::full);   // every token under root 0
  CHECK(m.tile(0, 0, 1, 3, 5, 7) == tile_state::empty);  // rows 1, 2 keep neither 3 nor 4
  CHECK(m.tile(0, 0, 0, 5, 0, 7) == tile_state::partial);
  // keys(): row 3 keeps 0, 1 | 2, 3, 5: the hull [0, 6), not one run.
  const key_span s = m.keys(0, 0, 3, 0, 7);
  CHECK(s.begin == 0);
  CHECK(s.end == 6);
  CHECK(!s.exact);
  const key_span s1 = m.keys(0, 0, 1, 0, 7);  // 0, 1, 2, 3: one run
  CHECK((s1.begin == 0 && s1.end == 4 && s1.exact));
}

TEST_CASE(
    "tree_mask: properties (chain = bottom-right causal, star, depth = kept - 1, relabelling)",
    "[tree]") {
  rng r(16);
  for (int trial = 0; trial < 20; ++trial) {
    const Index t = r.between(0, 50), p = r.between(0, 40);
    INFO("T " << t << " P " << p);
    // A chain is the causal mask aligned bottom-right over prefix + draft.
    CHECK((materialize(tree_mask(chain(t), p), t, p + t) ==
           materialize(causal::bottom_right(t, p + t), t, p + t))
              .all());
    // A star of roots keeps the prefix and the diagonal only.
    const bool_matrix star =
        materialize(tree_mask(std::vector<Index>(static_cast<std::size_t>(t), -1), p), t, p + t);
    for (Index q = 0; q < t; ++q)
      for (Index k = 0; k < p + t; ++k) REQUIRE(star(q, k) == (k < p || k - p == q));
    // Row i keeps the prefix, itself and its ancestors: P + depth(i) + 1 keys.
    const std::vector<Index> parents = random_forest(r, t, 0.2, true);
    const tree_mask m(parents, p);
    const bool_matrix keep = materialize(m, t, p + t);
    for (Index i = 0; i < t; ++i) {
      REQUIRE(keep.row(i).count() == p + m.depth(i) + 1);
      REQUIRE(keep(i, p + i));
      REQUIRE(m.positions()[static_cast<std::size_t>(i)] == p + m.depth(i));
    }
    // Relabelling the tokens (i -> (7 i + 3) mod T, a permutation when 7 does not divide T)
    // permutes rows and draft columns alike.
    if (t > 0 && t % 7 != 0) {
      const auto label = [t](Index i) { return (i * 7 + 3) % t; };
      std::vector<Index> relabelled(static_cast<std::size_t>(t));
      for (Index i = 0; i < t; ++i) {
        const Index pi = parents[static_cast<std::size_t>(i)];
        relabelled[static_cast<std::size_t>(label(i))] = pi < 0 ? -1 : label(pi);
      }
      const tree_mask mr(relabelled, p);
      for (Index i = 0; i < t; ++i)
        for (Index j = 0; j < t; ++j)
          REQUIRE(mr.keep(0, 0, label(i), p + label(j)) == keep(i, p + j));
    }
    // The ancestor matrix gives the same tree back.
    const tree_mask back = tree_mask::from_ancestor_matrix(m.draft_keep(), p);
    REQUIRE(back.parents() == m.parents());
  }
}

TEST_CASE("tree_mask in every kernel variant equals its materialized keep-mask",
          "[tree][kernels]") {
  rng r(17);
  for (int trial = 0; trial < 8; ++trial) {
    const Index t = r.between(1, 70), p = r.between(0, 200), d = r.between(1, 24);
    const tree_mask m(random_forest(r, t, trial % 3 == 0 ? 0.3 : 0.05, trial % 2 == 0), p);
    const Index lk = p + t;
    const bool_matrix keep = materialize(m, t, lk);
    const row_matrix<float> q = emask_test::uniform_matrix<float>(r, t, d),
                            k = emask_test::uniform_matrix<float>(r, lk, d),
                            v = emask_test::uniform_matrix<float>(r, lk, d);
    for (auto variant :
         {emask_test::attention_variant::tiled, emask_test::attention_variant::decode,
          emask_test::attention_variant::naive}) {
      emask_test::attention_options o;
      o.variant = variant;
      o.tile_q = 16;
      o.tile_k = 16;
      row_matrix<float> want(t, d), got(t, d);
      emask_test::masked_attention(q, k, v, as_mask(keep), want, o);
      emask_test::masked_attention(q, k, v, m, got, o);
      INFO("trial " << trial << " T " << t << " P " << p << " variant " << int(variant));
      REQUIRE((got - want).cwiseAbs().maxCoeff() <= 1e-5f);
    }
    // The draft block alone (keys from position P on) through a key offset.
    const auto draft = m.offset(0, p);
    row_matrix<float> want(t, d), got(t, d);
    const row_matrix<float> kd = k.bottomRows(t), vd = v.bottomRows(t);
    const bool_matrix draft_keep = m.draft_keep();
    emask::masked_attention(q, kd, vd, as_mask(draft_keep), want);
    emask::masked_attention(q, kd, vd, draft, got);
    REQUIRE((got - want).cwiseAbs().maxCoeff() <= 1e-5f);
  }
}

TEST_CASE("FlashInfer packbits: hand-written bytes in both bit orders", "[tree][packing]") {
  // P = 1, parents {-1, 0, 0, 1}: the 4 x 5 keep array, flattened row by row (20 bits):
  //   row 0: 1 1 0 0 0   (prefix, token 0)
  //   row 1: 1 1 1 0 0   (prefix, 0, 1)
  //   row 2: 1 1 0 1 0   (prefix, 0, 2)
  //   row 3: 1 1 1 0 1   (prefix, 0, 1, 3)
  // elements 0-7  = 1 1 0 0 0 1 1 1, 8-15 = 0 0 1 1 0 1 0 1, 16-19 = 1 1 0 1 (+ 4 padding 0s).
  // big (element 0 = bit 7):    11000111 = 0xc7, 00110101 = 0x35, 1101'0000 = 0xd0
  // little (element 0 = bit 0): 11100011 = 0xe3, 10101100 = 0xac, 0000'1011 = 0x0b
  const tree_mask m({-1, 0, 0, 1}, 1);
  const std::vector<std::uint8_t> big = {0xc7, 0x35, 0xd0}, little = {0xe3, 0xac, 0x0b};
  CHECK(packbits(m, 4, 5, bit_order::big) == big);
  CHECK(packbits(m, 4, 5, bit_order::little) == little);
  CHECK(packbits(materialize(m, 4, 5), bit_order::big) == big);
  CHECK(packbits(materialize(m, 4, 5), bit_order::little) == little);
  CHECK((unpackbits(big.data(), 3, 4, 5, bit_order::big) == materialize(m, 4, 5)).all());
  CHECK((unpackbits(little.data(), 3, 4, 5, bit_order::little) == materialize(m, 4, 5)).all());
  // The one request as a segment: byte offsets {0, 3}.
  const packed_segments seg = segment_packbits(std::vector<tree_mask>{m}, bit_order::little);
  CHECK(seg.bytes == little);
  CHECK(seg.indptr == std::vector<Index>{0, 3});

  // Three 1-row requests of 4, 3 and 4 keys: 1011 | 001 | 1101, one byte each.
  // big: 1011'0000 = 0xb0, 001'00000 = 0x20, 1101'0000 = 0xd0;
  // little: 0000'1101 = 0x0d, 00000'100 = 0x04, 0000'1011 = 0x0b.
  std::vector<bool_matrix> reqs(3);
  reqs[0] = bool_matrix(1, 4);
  reqs[0] << 1, 0, 1, 1;
  reqs[1] = bool_matrix(1, 3);
  reqs[1] << 0, 0, 1;
  reqs[2] = bool_matrix(1, 4);
  reqs[2] << 1, 1, 0, 1;
  const packed_segments sb = segment_packbits(reqs, bit_order::big);
  CHECK(sb.bytes == std::vector<std::uint8_t>{0xb0, 0x20, 0xd0});
  CHECK(sb.indptr == std::vector<Index>{0, 1, 2, 3});
  CHECK(segment_packbits(reqs, bit_order::little).bytes ==
        std::vector<std::uint8_t>{0x0d, 0x04, 0x0b});
  const std::vector<bool_matrix> back =
      segment_unpackbits(sb.bytes.data(), 3, sb.indptr, {1, 1, 1}, {4, 3, 4}, bit_order::big);
  REQUIRE(back.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK((back[i] == reqs[i]).all());
}

TEST_CASE("TensorRT-LLM spec_decoding_packed_mask: hand-written words, LSB first",
          "[tree][packing]") {
  // parents {-1, 0, 0, 1}: draft rows {0}, {0, 1}, {0, 2}, {0, 1, 3} -> bits 0b0001, 0b0011,
  // 0b0101, 0b1011 = 1, 3, 5, 11; one word per row (ceil(4 / 32)).
  const tree_mask m({-1, 0, 0, 1}, 1);
  CHECK(pack_spec_decoding_mask(m) == std::vector<std::int32_t>{1, 3, 5, 11});
  CHECK(pack_spec_decoding_mask(m.draft_keep()) == std::vector<std::int32_t>{1, 3, 5, 11});
  // Padded to 2 words per row (the engine's packed_mask_dim): the second word is zero.
  CHECK(pack_spec_decoding_mask(m, 2) == std::vector<std::int32_t>{1, 0, 3, 0, 5, 0, 11, 0});
  // A chain of 33: row 31 keeps tokens 0..31, all 32 bits of word 0 (the sign bit is token 31);
  // row 32 keeps 0..32: word 0 all ones, word 1 = bit 0.
  const std::vector<std::int32_t> w = pack_spec_decoding_mask(tree_mask(chain(33), 0));
  REQUIRE(w.size() == 66);
  CHECK(w[0] == 1);
  CHECK(w[1] == 0);
  CHECK(w[62] == -1);
  CHECK(w[63] == 0);
  CHECK(w[64] == -1);
  CHECK(w[65] == 1);
  const bool_matrix back = unpack_spec_decoding_mask(w.data(), 33, 2, 33);
  CHECK((back == tree_mask(chain(33), 0).draft_keep()).all());
  CHECK(tree_mask::from_ancestor_matrix(back, 7).parents() == chain(33));
  // A batch: the rows of each tree, one after the other, 1 word each.
  CHECK(pack_spec_decoding_mask(std::vector<tree_mask>{m, tree_mask({-1, 0}, 3)}, 1) ==
        std::vector<std::int32_t>{1, 3, 5, 11, 1, 3});
}

TEST_CASE("packed layouts: round trips of random trees, sizes not multiples of 8 or 32",
          "[tree][packing]") {
  rng r(18);
  for (int trial = 0; trial < 30; ++trial) {
    const Index t = r.between(0, 75), p = r.between(0, 21);
    const tree_mask m(random_forest(r, t, 0.1, trial % 2 == 0), p);
    const bool_matrix keep = materialize(m, t, p + t);
    for (const bit_order order : {bit_order::big, bit_order::little}) {
      const std::vector<std::uint8_t> bytes = packbits(m, t, p + t, order);
      REQUIRE(static_cast<Index>(bytes.size()) == (t * (p + t) + 7) / 8);
      REQUIRE(bytes == packbits(keep, order));
      REQUIRE((unpackbits(bytes.data(), static_cast<Index>(bytes.size()), t, p + t, order) == keep)
                  .all());
      // The padding bits are zero: the last byte's kept count equals the mask's.
      Index ones = 0;
      for (const std::uint8_t b : bytes)
        for (int bit = 0; bit < 8; ++bit) ones += (b >> bit) & 1;
      REQUIRE(ones == keep.count());
    }
    const std::vector<std::int32_t> words = pack_spec_decoding_mask(m);
    const Index wpr = (t + 31) / 32;
    REQUIRE(static_cast<Index>(words.size()) == t * wpr);
    const bool_matrix draft = unpack_spec_decoding_mask(words.data(), t, wpr, t);
    REQUIRE((draft == m.draft_keep()).all());
    REQUIRE(tree_mask::from_ancestor_matrix(draft, p).parents() == m.parents());
  }
  // A batch of trees through FlashInfer's segments and back.
  std::vector<tree_mask> trees;
  std::vector<Index> q_lens, k_lens;
  for (int i = 0; i < 6; ++i) {
    trees.emplace_back(random_forest(r, r.between(0, 20), 0.2, true), r.between(0, 13));
    q_lens.push_back(trees.back().draft_length());
    k_lens.push_back(trees.back().key_length());
  }
  for (const bit_order order : {bit_order::big, bit_order::little}) {
    const packed_segments seg = segment_packbits(trees, order);
    REQUIRE(seg.indptr.size() == trees.size() + 1);
    const std::vector<bool_matrix> back = segment_unpackbits(
        seg.bytes.data(), static_cast<Index>(seg.bytes.size()), seg.indptr, q_lens, k_lens, order);
    for (std::size_t i = 0; i < trees.size(); ++i) {
      INFO("request " << i);
      REQUIRE(seg.indptr[i + 1] - seg.indptr[i] == (q_lens[i] * k_lens[i] + 7) / 8);
      REQUIRE((back[i] == materialize(trees[i], q_lens[i], k_lens[i])).all());
      REQUIRE(std::vector<std::uint8_t>(seg.bytes.begin() + seg.indptr[i],
                                        seg.bytes.begin() + seg.indptr[i + 1]) ==
              packbits(trees[i], q_lens[i], k_lens[i], order));
    }
  }
}

TEST_CASE("packed layouts: set padding bits are rejected, or ignored when asked",
          "[tree][packing]") {
  const tree_mask m({-1, 0, 0, 1}, 1);
  const bool_matrix keep = materialize(m, 4, 5);
  // 20 bits: bits 20..23 of the stream are padding; little order puts them at 0xf0 of byte 2.
  std::vector<std::uint8_t> little = {0xe3, 0xac, 0x0b | 0x10};
  const std::string e = error_of([&] { unpackbits(little.data(), 3, 4, 5, bit_order::little); });
  CHECK(starts_with(e, "emask::unpackbits: argument 'bytes[2]' = 0x1b, expected zero bits past"));
  CHECK((unpackbits(little.data(), 3, 4, 5, bit_order::little, tail_bits::ignore) == keep).all());
  // Big order: the padding is the low nibble of byte 2.
  std::vector<std::uint8_t> big = {0xc7, 0x35, 0xd0 | 0x01};
  CHECK(starts_with(error_of([&] { unpackbits(big.data(), 3, 4, 5, bit_order::big); }),
                    "emask::unpackbits: argument 'bytes[2]' = 0xd1"));
  CHECK((unpackbits(big.data(), 3, 4, 5, bit_order::big, tail_bits::ignore) == keep).all());
  // Read with the wrong bit order, the real bits land in the padding: caught.
  CHECK(starts_with(
      error_of([&] {
        unpackbits(std::vector<std::uint8_t>{0xc7, 0x35, 0xd0}.data(), 3, 4, 5, bit_order::little);
      }),
      "emask::unpackbits: argument 'bytes[2]'"));
  // Segments: the padding of request 1 (3 bits in one byte) is byte 1 of the buffer.
  const std::vector<std::uint8_t> seg = {0xb0, 0x20 | 0x01, 0xd0};
  CHECK(starts_with(
      error_of([&] {
        segment_unpackbits(seg.data(), 3, {0, 1, 2, 3}, {1, 1, 1}, {4, 3, 4}, bit_order::big);
      }),
      "emask::segment_unpackbits: argument 'bytes[1]' = 0x21"));
  CHECK(segment_unpackbits(seg.data(), 3, {0, 1, 2, 3}, {1, 1, 1}, {4, 3, 4}, bit_order::big,
                           tail_bits::ignore)[1]
            .count() == 1);
  // TensorRT-LLM words: bit 4 of row 2 is past the 4 tokens; a padded second word must be 0.
  std::vector<std::int32_t> words = {1, 3, 5 | 16, 11};
  CHECK(starts_with(error_of([&] { unpack_spec_decoding_mask(words.data(), 4, 1, 4); }),
                    "emask::unpack_spec_decoding_mask: argument 'words[2]' = 0x00000015"));
  CHECK((unpack_spec_decoding_mask(words.data(), 4, 1, 4, tail_bits::ignore) == m.draft_keep())
            .all());
  std::vector<std::int32_t> padded = {1, 0, 3, 0, 5, 0, 11, -2147483647 - 1};
  CHECK(starts_with(error_of([&] { unpack_spec_decoding_mask(padded.data(), 4, 2, 4); }),
                    "emask::unpack_spec_decoding_mask: argument 'words[7]' = 0x80000000"));
}

TEST_CASE("tree_mask and the packed layouts: bad input names the argument and the index",
          "[tree][bad_input]") {
  const auto bad = [](const std::string& message, const std::string& prefix) {
    INFO(message);
    CHECK(starts_with(message, prefix));
  };
  // Out of range, self-parent, cycles (named at their smallest index), negative prefix.
  bad(error_of([] {
        tree_mask({-1, 0, 7, 1}, 2);
      }),
      "emask::tree_mask: argument 'parents[2]' = 7, expected a draft token index in [0, 4)");
  bad(error_of([] { tree_mask({-1, -2}, 2); }), "emask::tree_mask: argument 'parents[1]' = -2");
  bad(error_of([] {
        tree_mask({-1, 0, 0, 1, 2, 5}, 0);
      }),
      "emask::tree_mask: argument 'parents[5]' = 5, expected another token's index or -1");
  bad(error_of([] {
        tree_mask({-1, 3, 1, 2}, 0);
      }),
      "emask::tree_mask: argument 'parents[1]' = 3, expected a forest, but following the parents "
      "from 1 loops: 1 -> 3 -> 2 -> 1");
  bad(error_of([] {
        tree_mask({1, 0}, 0);
      }),
      "emask::tree_mask: argument 'parents[0]' = 1, expected a forest");
  bad(error_of([] { tree_mask({-1}, -1); }),
      "emask::tree_mask: argument 'prefix_length' = -1, expected >= 0");
  // A long cycle is spelled out up to 16 steps.
  std::vector<Index> ring(40);
  for (Index i = 0; i < 40; ++i) ring[static_cast<std::size_t>(i)] = (i + 1) % 40;
  const std::string long_cycle = error_of([&] { tree_mask(ring, 0); });
  bad(long_cycle, "emask::tree_mask: argument 'parents[0]' = 1, expected a forest");
  CHECK(long_cycle.find("-> ...") != std::string::npos);
  // A failed construction leaves the target untouched.
  tree_mask kept({-1, 0}, 3);
  CHECK(error_of([&] { kept = tree_mask({1, 0}, 3); }) != "no exception");
  CHECK(kept.parents() == std::vector<Index>{-1, 0});
  CHECK(kept.prefix_length() == 3);

  // Not a tree's ancestor matrix.
  bool_matrix no_diag = bool_matrix::Constant(2, 2, false);
  no_diag(0, 0) = true;
  bad(error_of([&] { tree_mask::from_ancestor_matrix(no_diag, 0); }),
      "emask::tree_mask::from_ancestor_matrix: argument 'draft_keep[1]' = row {}, expected a row "
      "that keeps its own draft token 1");
  bool_matrix skip(3, 3);
  skip << 1, 0, 0, 1, 1, 0, 0, 1, 1;  // 2 keeps 1 but not 1's parent 0
  bad(error_of([&] { tree_mask::from_ancestor_matrix(skip, 0); }),
      "emask::tree_mask::from_ancestor_matrix: argument 'draft_keep[2]' = row {1, 2}, expected "
      "the row of a tree");
  bad(error_of([] { tree_mask::from_ancestor_matrix(bool_matrix(2, 3), 0); }),
      "emask::tree_mask::from_ancestor_matrix: argument 'draft_keep' = 2 x 3");

  // A call with more queries or keys than the tree has.
  const tree_mask m({-1, 0, 0}, 4);
  const row_matrix<float> q = row_matrix<float>::Zero(4, 8), k = row_matrix<float>::Zero(7, 8),
                          k8 = row_matrix<float>::Zero(8, 8);
  row_matrix<float> out = row_matrix<float>::Constant(4, 8, 3.f);
  bad(error_of([&] { masked_attention(q, k, k, m, out); }),
      "emask::masked_attention: argument 'query positions' = [0, 4), expected a range inside "
      "[0, 3)");
  CHECK((out.array() == 3.f).all());
  row_matrix<float> out3 = row_matrix<float>::Constant(3, 8, 3.f);
  bad(error_of([&] { masked_attention(q.topRows(3), k8, k8, m, out3); }),
      "emask::masked_attention: argument 'key positions' = [0, 8)");
  CHECK((out3.array() == 3.f).all());
  bad(error_of([&] { packbits(m, 3, 8, bit_order::big); }),
      "emask::packbits: argument 'key positions' = [0, 8)");

  // Packed layouts: sizes, offsets, word counts.
  const std::vector<std::uint8_t> bytes(3, 0);
  bad(error_of([&] { unpackbits(bytes.data(), 2, 4, 5, bit_order::big); }),
      "emask::unpackbits: argument 'n_bytes' = 2, expected ceil(q_len * k_len / 8) = ceil(4 * 5 "
      "/ 8) = 3");
  bad(error_of([&] { unpackbits(bytes.data(), 3, -1, 5, bit_order::big); }),
      "emask::unpackbits: argument 'q_len' = -1, expected >= 0");
  bad(error_of([&] { unpackbits(nullptr, 3, 4, 5, bit_order::big); }),
      "emask::unpackbits: argument 'bytes' = nullptr");
  bad(error_of([&] { unpackbits(bytes.data(), 3, 4, 5, static_cast<bit_order>(7)); }),
      "emask::unpackbits: argument 'order' = 7");
  bad(error_of([&] {
        segment_unpackbits(bytes.data(), 3, {0, 1, 3}, {1, 1, 1}, {4, 3, 4}, bit_order::big);
      }),
      "emask::segment_unpackbits: argument 'indptr' = 3 entries, expected 4 (requests + 1)");
  bad(error_of([&] {
        segment_unpackbits(bytes.data(), 3, {0, 1, 3, 4}, {1, 1, 1}, {4, 3, 4}, bit_order::big);
      }),
      "emask::segment_unpackbits: argument 'indptr[2]' = 3, expected indptr[1] + ceil(1 * 3 / 8) "
      "= 2");
  bad(error_of([&] {
        segment_unpackbits(bytes.data(), 2, {0, 1, 2, 3}, {1, 1, 1}, {4, 3, 4}, bit_order::big);
      }),
      "emask::segment_unpackbits: argument 'indptr[3]' = 3");
  bad(error_of([&] {
        segment_unpackbits(bytes.data(), 3, {0, 1, 2, 3}, {1, 1}, {4, 3, 4}, bit_order::big);
      }),
      "emask::segment_unpackbits: argument 'k_lens' = 3 entries, expected 2");
  bad(error_of([&] {
        segment_unpackbits(bytes.data(), 3, {0, 1, 2, 3}, {1, -1, 1}, {4, 3, 4}, bit_order::big);
      }),
      "emask::segment_unpackbits: argument 'q_lens[1]' = -1, expected >= 0");
  bad(error_of([&] { pack_spec_decoding_mask(tree_mask(chain(33), 0), 1); }),
      "emask::pack_spec_decoding_mask: argument 'words_per_row' = 1, expected >= ceil(33 / 32) = "
      "2");
  const std::vector<std::int32_t> words(4, 0);
  bad(error_of([&] { unpack_spec_decoding_mask(words.data(), 4, 1, 33); }),
      "emask::unpack_spec_decoding_mask: argument 'tokens' = 33, expected <= 32 * words_per_row "
      "= 32");
  bad(error_of([&] { unpack_spec_decoding_mask(nullptr, 4, 1, 4); }),
      "emask::unpack_spec_decoding_mask: argument 'words' = nullptr");
  bad(error_of([&] { unpack_spec_decoding_mask(words.data(), -4, 1, 4); }),
      "emask::unpack_spec_decoding_mask: argument 'rows' = -4, expected >= 0");
}
