// Tiles as a stage: the tile grid, word-at-a-time tile answers of dense and bit masks, and block
// masks as precomputed tile maps that every kernel accepts.
#include <cmath>
#include <limits>
#include <vector>

#include "kernel_agreement.hpp"
#include "kernel_variants.hpp"
#include "mask_testing.hpp"

namespace {

using emask::bool_matrix;
using emask::Index;
using emask::row_matrix;
using emask::tile_grid;
using emask::tile_state;
using emask_test::rng;

bool_matrix random_keep(rng& r, Index rows, Index cols, double p) {
  bool_matrix a(rows, cols);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) a(i, j) = r.coin(p);
  return a;
}

}  // namespace

TEST_CASE("tile_grid cuts lengths into tiles, clamped so that nothing overflows", "[tiles]") {
  const tile_grid g(10, 7, 4, 3);
  CHECK(g.q_tiles() == 3);
  CHECK(g.k_tiles() == 3);
  CHECK(g.tiles() == 9);
  CHECK(g.q_begin(2) == 8);
  CHECK(g.q_end(2) == 10);
  CHECK(g.k_end(1) == 6);
  CHECK(g.k_end(2) == 7);
  CHECK(g.q_tile_of(7) == 1);
  CHECK(g.k_tile_of(6) == 2);
  // Every position is in exactly one tile, tiles in order.
  rng r(3);
  for (int trial = 0; trial < 200; ++trial) {
    const Index lq = r.between(0, 60), lk = r.between(0, 60);
    const tile_grid t(lq, lk, r.between(1, 70), r.between(1, 70));
    Index covered = 0;
    for (Index qt = 0; qt < t.q_tiles(); ++qt) {
      REQUIRE(t.q_begin(qt) == covered);
      REQUIRE(t.q_end(qt) > t.q_begin(qt));
      for (Index q = t.q_begin(qt); q < t.q_end(qt); ++q) REQUIRE(t.q_tile_of(q) == qt);
      covered = t.q_end(qt);
    }
    REQUIRE(covered == lq);
    REQUIRE(t.k_tiles() == (lk + t.tile_k() - 1) / t.tile_k());
  }
  // Huge tiles are one tile; an empty length has no tile.
  const Index huge = std::numeric_limits<Index>::max();
  const tile_grid one(5, 9, huge, emask::unbounded);
  CHECK(one.q_tiles() == 1);
  CHECK(one.k_tiles() == 1);
  CHECK(one.tile_q() == 5);
  CHECK(one.q_end(0) == 5);
  CHECK(one.k_end(0) == 9);
  CHECK(tile_grid::count(0, 4) == 0);
  CHECK(tile_grid::count(huge, huge) == 1);
  CHECK(tile_grid::count(huge, 1) == huge);
  CHECK(tile_grid::count(7, 0) == 7);  // a tile < 1 counts as 1
  CHECK(tile_grid(0, 0, 4, 4).tiles() == 0);
  CHECK(tile_grid(3, 4, 2, 2) == tile_grid(3, 4, 2, 2));
  CHECK(tile_grid(3, 4, 2, 2) != tile_grid(3, 4, 2, 3));
}

TEST_CASE("bit rows find their first and last kept entries a word at a time", "[tiles][bits]") {
  rng r(11);
  for (int trial = 0; trial < 300; ++trial) {
    const Index cols = r.between(1, 200);
    const double p = trial % 3 == 0 ? 0.02 : (trial % 3 == 1 ? 0.5 : 0.98);
    const bool_matrix a = random_keep(r, 1, cols, p);
    const emask::bit_mask bits = emask::bit_mask::from_bool(a);
    const emask::bit_row row = bits.row(0);
    const Index k0 = r.between(0, cols - 1), k1 = r.between(k0, cols);
    Index first = k1, last_end = k0, count = 0;
    for (Index k = k0; k < k1; ++k)
      if (a(0, k)) {
        if (first == k1) first = k;
        last_end = k + 1;
        ++count;
      }
    INFO("cols " << cols << " [" << k0 << ", " << k1 << ")");
    REQUIRE(row.first(k0, k1) == first);
    REQUIRE(row.last_end(k0, k1) == last_end);
    REQUIRE(row.count(k0, k1) == count);
    const emask::key_span s = row.span(k0, k1);
    if (count == 0) {
      REQUIRE(s.empty());
    } else {
      REQUIRE(s.begin == first);
      REQUIRE(s.end == last_end);
      REQUIRE(s.exact == (count == last_end - first));
    }
  }
}

TEST_CASE("dense and bit masks answer tiles and key spans exactly, word by word",
          "[tiles][dense][bits]") {
  rng r(17);
  for (int trial = 0; trial < 12; ++trial) {
    const Index lq = r.between(1, 40), lk = r.between(1, 150);
    // Sparse, dense and banded contents, so tiles of every state occur.
    bool_matrix a = random_keep(r, lq, lk, trial % 2 == 0 ? 0.03 : 0.97);
    if (trial % 3 == 0) a = emask::materialize(emask::sliding_window(r.between(0, 30), 2), lq, lk);
    const auto truth = [&](Index, Index, Index q, Index k) { return a(q, k); };
    emask_test::check_mask(emask::as_mask(a), truth, 1, 1, lq, lk, 100 + trial);
    emask_test::check_mask(emask::bit_mask::from_bool(a), truth, 1, 1, lq, lk, 200 + trial);
  }
}

TEST_CASE("block masks are masks: exact keep, key spans and tiles of any rectangle",
          "[tiles][block]") {
  using namespace emask;
  rng r(23);
  for (int trial = 0; trial < 16; ++trial) {
    const Index lq = r.between(1, 70), lk = r.between(1, 140);
    const Index tq = r.between(1, 20), tk = r.between(1, 80);
    // A conservative composition (its tiles are not exact) with padding per batch entry.
    const auto m = (sliding_window(r.between(0, 30), r.between(0, 5)) | causal().offset(0, 3)) &
                   key_padding::from_lengths({r.between(0, lk), lk}, lk);
    const bool_matrix d0 = materialize(m, lq, lk, 0), d1 = materialize(m, lq, lk, 1);
    const block_mask bm = materialize_block_mask(m, lq, lk, tq, tk, slice_extents{2, 1});
    CHECK(bm.grid() == tile_grid(lq, lk, tq, tk));
    CHECK(bm.extents().batch == 2);
    CHECK(bm.memory_bytes() > 0);
    emask_test::check_mask(
        bm, [&](Index b, Index, Index q, Index k) { return b == 0 ? d0(q, k) : d1(q, k); }, 2, 3,
        lq, lk, 300 + trial);
    // Its own tiles: exact even where the expression was conservative, and the lists agree.
    for (Index b = 0; b < 2; ++b)
      for (Index qt = 0; qt < bm.q_tiles(); ++qt) {
        Index listed = 0;
        for (Index kt = 0; kt < bm.k_tiles(); ++kt) {
          const Index q0 = qt * tq, k0 = kt * tk;
          const auto blk =
              (b == 0 ? d0 : d1).block(q0, k0, std::min(tq, lq - q0), std::min(tk, lk - k0));
          const tile_state truth =
              blk.all() ? tile_state::full : (blk.any() ? tile_state::partial : tile_state::empty);
          REQUIRE(bm.state(qt, kt, b, 2) == truth);
          if (truth != tile_state::empty) REQUIRE(bm.nonempty_tile(qt, listed++, b) == kt);
        }
        REQUIRE(bm.nonempty_count(qt, b) == listed);
      }
  }
  // One slice (b, h) of a per-head mask, shared by every head.
  const auto per =
      per_head(std::vector<sliding_window>{sliding_window(1, 0), sliding_window(4, 0)});
  const block_mask h1 = materialize_block_mask(per, 9, 9, 4, 4, 0, 1);
  const bool_matrix w4 = materialize(sliding_window(4, 0), 9, 9);
  emask_test::check_mask(
      h1, [&](Index, Index, Index q, Index k) { return w4(q, k); }, 2, 2, 9, 9);
}

TEST_CASE("block masks reject bad extents and regions outside what they hold",
          "[tiles][block][errors]") {
  using namespace emask;
  REQUIRE_THROWS_WITH(materialize_block_mask(causal(), 8, 8, 4, 4, slice_extents{0, 1}),
                      Catch::Matchers::Contains("materialize_block_mask") &&
                          Catch::Matchers::Contains("extents.batch"));
  REQUIRE_THROWS_WITH(materialize_block_mask(causal(), 8, 8, 4, 4, slice_extents{1, -2}),
                      Catch::Matchers::Contains("extents.heads"));
  // The mask must answer for every slice of the extents.
  REQUIRE_THROWS_WITH(
      materialize_block_mask(key_padding::from_lengths({3, 4}, 8), 8, 8, 4, 4, slice_extents{3, 1}),
      Catch::Matchers::Contains("materialize_block_mask"));
  const block_mask bm = materialize_block_mask(causal(), 8, 8, 4, 4, slice_extents{2, 1});
  row_matrix<float> q = row_matrix<float>::Ones(9, 4), out(9, 4);
  out.setConstant(7.0f);
  REQUIRE_THROWS_WITH(masked_attention(q, q, q, bm, out),
                      Catch::Matchers::Contains("masked_attention") &&
                          Catch::Matchers::Contains("query positions"));
  CHECK((out.array() == 7.0f).all());  // outputs untouched
  // A huge tile is one tile.
  const block_mask one =
      materialize_block_mask(causal(), 8, 8, std::numeric_limits<Index>::max(), unbounded);
  CHECK(one.q_tiles() == 1);
  CHECK(one.state(0, 0) == tile_state::partial);
}

TEST_CASE("kernels accept a block mask and give the result of the mask it was built from",
          "[tiles][block][kernels]") {
  using namespace emask;
  rng r(29);
  for (int trial = 0; trial < 10; ++trial) {
    const Index lk = r.between(1, 300), lq = r.between(1, lk), d = r.between(1, 40);
    const auto m = document::from_cu_seqlens({0, lk / 3, lk}) & causal::bottom_right(lq, lk) &
                   sliding_window(r.between(0, 200), 0);
    const row_matrix<float> q = emask_test::uniform_matrix<float>(r, lq, d),
                            k = emask_test::uniform_matrix<float>(r, lk, d),
                            v = emask_test::uniform_matrix<float>(r, lk, d);
    // Built with the kernel's tiles (lookups) and with odd tiles (rectangle answers).
    for (Index tile : {Index(64), Index(r.between(1, 50))}) {
      const block_mask bm = materialize_block_mask(m, lq, lk, tile, tile);
      for (auto variant :
           {emask_test::attention_variant::tiled, emask_test::attention_variant::decode,
            emask_test::attention_variant::naive}) {
        emask_test::attention_options o;
        o.variant = variant;
        row_matrix<float> want(lq, d), got(lq, d);
        lse_vector<float> lw(lq), lg(lq);
        emask_test::masked_attention(q, k, v, m, want, lw, o);
        emask_test::masked_attention(q, k, v, bm, got, lg, o);
        INFO("trial " << trial << " tile " << tile << " variant " << int(variant));
        REQUIRE((got - want).cwiseAbs().maxCoeff() <= 1e-5f);
        for (Index i = 0; i < lq; ++i) {
          if (std::isinf(lw[i])) {
            REQUIRE(std::isinf(lg[i]));
          } else {
            REQUIRE(std::abs(lg[i] - lw[i]) <= 1e-5f * (1.0f + std::abs(lw[i])));
          }
        }
      }
      for (auto variant : {emask_test::softmax_variant::tiled, emask_test::softmax_variant::fused,
                           emask_test::softmax_variant::naive}) {
        emask_test::softmax_options o;
        o.variant = variant;
        const row_matrix<float> x = emask_test::uniform_matrix<float>(r, lq, lk);
        row_matrix<float> want(lq, lk), got(lq, lk);
        emask_test::masked_softmax(x, m, want, o);
        emask_test::masked_softmax(x, bm, got, o);
        REQUIRE((got - want).cwiseAbs().maxCoeff() <= 1e-6f);
        // Masked entries are exactly zero.
        const bool_matrix keep = materialize(m, lq, lk);
        REQUIRE((keep || got.array() == 0.0f).all());
      }
    }
  }
  // Batched: one block mask of [B, H] slices, reused by a grouped-query call.
  const Index B = 2, H = 4, L = 70, D = 16;
  const auto per =
      per_head(std::vector<sliding_window>{sliding_window(unbounded, 0), sliding_window(8, 0),
                                           sliding_window(unbounded, 0), sliding_window(20, 0)}) &
      key_padding::from_lengths({70, 41}, L);
  const block_mask bm = materialize_block_mask(per, L, L, 64, 64, slice_extents{B, H});
  std::vector<float> qb(static_cast<std::size_t>(B * H * L * D)), kb(qb.size() / 2),
      vb(qb.size() / 2), o1(qb.size()), o2(qb.size());
  for (auto& x : qb) x = static_cast<float>(r.next() % 1000) / 500.0f - 1.0f;
  for (auto& x : kb) x = static_cast<float>(r.next() % 1000) / 500.0f - 1.0f;
  for (auto& x : vb) x = static_cast<float>(r.next() % 1000) / 500.0f - 1.0f;
  const auto qv = view_bhld<const float>(qb.data(), B, H, L, D);
  const auto kv = view_bhld<const float>(kb.data(), B, H / 2, L, D);
  const auto vv = view_bhld<const float>(vb.data(), B, H / 2, L, D);
  masked_attention(qv, kv, vv, per, view_bhld<float>(o1.data(), B, H, L, D));
  masked_attention(qv, kv, vv, bm, view_bhld<float>(o2.data(), B, H, L, D));
  float worst = 0;
  for (std::size_t i = 0; i < o1.size(); ++i) worst = std::max(worst, std::abs(o1[i] - o2[i]));
  CHECK(worst <= 1e-5f);
}

TEST_CASE("sink_window in every kernel variant equals its materialized keep-mask",
          "[tiles][sink_window][kernels]") {
  using namespace emask;
  rng r(31);
  for (int trial = 0; trial < 6; ++trial) {
    const Index lk = r.between(1, 300), lq = r.between(1, lk), d = r.between(1, 24);
    const sink_window m(r.between(0, 8), r.between(0, 100));
    INFO("trial " << trial);
    // Decoding-style: the queries are the last lq positions.
    emask_test::check_kernels_match_materialized(m.offset(lk - lq, 0), lq, lk, d, r);
  }
}

TEST_CASE("token_bitmask: masked_softmax, log-softmax and sampling read the grammar bitmask",
          "[tiles][token_bitmask][kernels]") {
  using namespace emask;
  rng r(37);
  const Index rows = 6, vocab = 1000, wpr = (vocab + 31) / 32;
  std::vector<std::int32_t> words(static_cast<std::size_t>(rows * wpr));
  for (auto& w : words) w = static_cast<std::int32_t>(r.next() & r.next());          // ~1/4 allowed
  for (Index i = 0; i < wpr; ++i) words[static_cast<std::size_t>(3 * wpr + i)] = 0;  // row 3: none
  words[static_cast<std::size_t>(wpr - 1)] = -1;  // row 0: padding bits 1000..1023 set
  const token_bitmask m(words.data(), rows, wpr, vocab);
  const bool_matrix keep = m.to_bool();
  const row_matrix<float> logits = emask_test::uniform_matrix<float>(r, rows, vocab, 5.0);
  for (auto variant : {emask_test::softmax_variant::tiled, emask_test::softmax_variant::fused,
                       emask_test::softmax_variant::naive}) {
    emask_test::softmax_options o;
    o.variant = variant;
    row_matrix<float> want(rows, vocab), got(rows, vocab), lgot(rows, vocab);
    lse_vector<float> lse(rows);
    emask_test::masked_softmax(logits, keep, want, o);
    emask_test::masked_softmax(logits, m, got, lse, o);
    emask_test::masked_log_softmax(logits, m, lgot, o);
    INFO("variant " << int(variant));
    REQUIRE((got - want).cwiseAbs().maxCoeff() <= 1e-6f);
    REQUIRE((keep || got.array() == 0.0f).all());  // disallowed tokens exactly 0
    REQUIRE(got.row(3).isZero(0));                 // no allowed token: zeros, lse -inf
    REQUIRE(std::isinf(lse(3)));
    REQUIRE((lgot.row(3).array() == -std::numeric_limits<float>::infinity()).all());
    for (Index q = 0; q < rows; ++q) {
      if (q == 3) continue;
      REQUIRE(std::abs(got.row(q).sum() - 1.0f) <= 1e-5f);
      // Against a plain double log-sum-exp over the allowed tokens.
      double mx = -std::numeric_limits<double>::infinity(), sum = 0;
      for (Index k = 0; k < vocab; ++k)
        if (keep(q, k)) mx = std::max(mx, static_cast<double>(logits(q, k)));
      for (Index k = 0; k < vocab; ++k)
        if (keep(q, k)) sum += std::exp(static_cast<double>(logits(q, k)) - mx);
      const double l = mx + std::log(sum);
      REQUIRE(std::abs(static_cast<double>(lse(q)) - l) <= 1e-5 * (1 + std::abs(l)));
      for (Index k = 0; k < vocab; ++k)
        if (keep(q, k))
          REQUIRE(std::abs(static_cast<double>(lgot(q, k)) -
                           (static_cast<double>(logits(q, k)) - l)) <= 1e-5 * (1 + std::abs(l)));
    }
  }
  // Sampling: the bitmask as an action mask (rows with an allowed token; a row without one is
  // an emask::error there); every draw is an allowed token.
  const row_matrix<float> first = logits.topRows(3);
  const bool_matrix first_keep = keep.topRows(3);
  const action_matrix a = masked_sample(first, action_mask::discrete(first_keep), {7, 0});
  for (Index q = 0; q < 3; ++q) REQUIRE(keep(q, a(q, 0)));
}

TEST_CASE("huge tile and chunk options mean one tile: same results, no overflow",
          "[tiles][kernels]") {
  using namespace emask;
  rng r(31);
  const Index lq = 37, lk = 90, d = 8;
  const row_matrix<double> q = emask_test::uniform_matrix<double>(r, lq, d),
                           k = emask_test::uniform_matrix<double>(r, lk, d),
                           v = emask_test::uniform_matrix<double>(r, lk, d);
  const auto m = causal::bottom_right(lq, lk) & sliding_window(30, 0);
  const Index huge = std::numeric_limits<Index>::max();
  for (auto variant :
       {emask_test::attention_variant::tiled, emask_test::attention_variant::decode}) {
    emask_test::attention_options plain, big;
    plain.variant = big.variant = variant;
    big.tile_q = huge;
    big.tile_k = unbounded;
    big.decode_chunk = huge;
    row_matrix<double> want(lq, d), got(lq, d);
    emask_test::masked_attention(q, k, v, m, want, plain);
    emask_test::masked_attention(q, k, v, m, got, big);
    REQUIRE((got - want).cwiseAbs().maxCoeff() <= 1e-12);
    CHECK(attention_workspace_size<double>(1, lq, lk, d, d, big) > 0);
  }
  emask_test::softmax_options plain, big;
  big.tile_q = huge;
  big.tile_k = unbounded;
  const row_matrix<double> x = emask_test::uniform_matrix<double>(r, lq, lk);
  row_matrix<double> want(lq, lk), got(lq, lk);
  emask_test::masked_softmax(x, m, want, plain);
  emask_test::masked_softmax(x, m, got, big);
  REQUIRE((got - want).cwiseAbs().maxCoeff() <= 1e-15);
}
