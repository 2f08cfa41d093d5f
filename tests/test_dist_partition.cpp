// emask/dist/partition.hpp: shard layouts, local <-> global maps, pair states and work plans
// (no MPI).
#include <emask/dist/partition.hpp>
#include <emask/masks/causal.hpp>
#include <emask/masks/padding.hpp>
#include <emask/masks/window.hpp>

#include <algorithm>
#include <vector>

#include "catch.hpp"

namespace {
using Catch::Matchers::Contains;
using emask::Index;
using emask::seq_chunk;
using emask::shard_layout;
using emask::shard_plan;
using emask::tile_state;

// Brute force: whether any (q, k) of the rectangle is kept.
template <class Mask>
bool any_kept(const Mask& m, Index b, Index h, const seq_chunk& q, const seq_chunk& k) {
  for (Index i = q.begin; i < q.end; ++i)
    for (Index j = k.begin; j < k.end; ++j)
      if (m.keep(b, h, i, j)) return true;
  return false;
}

// Brute force work: every tile of the chunk pair's grid asked on its own, partial counted fully.
template <class Mask>
Index scan_work(const Mask& m, const seq_chunk& q, const seq_chunk& k, Index tile) {
  Index n = 0;
  for (Index i = q.begin; i < q.end; i += tile)
    for (Index j = k.begin; j < k.end; j += tile) {
      const Index i1 = std::min(i + tile, q.end), j1 = std::min(j + tile, k.end);
      if (m.tile(0, 0, i, i1, j, j1) != tile_state::empty) n += (i1 - i) * (j1 - j);
    }
  return n;
}
}  // namespace

TEST_CASE("shard_plan: hand-derived zigzag and contiguous chunks", "[dist][partition]") {
  // S = 10 over 2 ranks, zigzag: 4 chunks of sizes 3, 3, 2, 2 (numpy.array_split).
  const shard_plan z(10, 2, shard_layout::zigzag);
  CHECK(z.chunk_count() == 4);
  CHECK(z.chunks_per_rank() == 2);
  CHECK(z.chunk(0, 0).begin == 0);
  CHECK(z.chunk(0, 0).end == 3);
  CHECK(z.chunk(0, 1).begin == 8);  // chunk 2R-1-0 = 3
  CHECK(z.chunk(0, 1).end == 10);
  CHECK(z.chunk(1, 0).begin == 3);
  CHECK(z.chunk(1, 0).end == 6);
  CHECK(z.chunk(1, 1).begin == 6);  // chunk 2
  CHECK(z.chunk(1, 1).end == 8);
  CHECK(z.local_length(0) == 5);
  CHECK(z.local_length(1) == 5);
  CHECK(z.local_begin(0, 1) == 3);
  CHECK(z.global_position(0, 3) == 8);
  CHECK(z.global_position(1, 4) == 7);
  CHECK(z.locate(7).rank == 1);
  CHECK(z.locate(7).row == 4);
  CHECK(z.locate(9).rank == 0);
  CHECK(z.locate(9).row == 4);
  // S = 10 over 3 ranks, contiguous: sizes 4, 3, 3.
  const shard_plan c(10, 3, shard_layout::contiguous);
  CHECK(c.chunks_per_rank() == 1);
  CHECK(c.chunk(0, 0).size() == 4);
  CHECK(c.chunk(1, 0).begin == 4);
  CHECK(c.chunk(2, 0).begin == 7);
  CHECK(c.max_local_length() == 4);
  CHECK(c.locate(4).rank == 1);
  CHECK(c.locate(4).row == 0);
}

TEST_CASE("shard_plan: chunks cover the sequence once, maps are inverse, R = 1..8",
          "[dist][partition]") {
  for (shard_layout layout : {shard_layout::contiguous, shard_layout::zigzag})
    for (int R = 1; R <= 8; ++R)
      for (Index S : {Index(0), Index(1), Index(7), Index(64), Index(100), Index(127), Index(128),
                      Index(1001)}) {
        INFO("R " << R << " S " << S << " zigzag " << (layout == shard_layout::zigzag));
        const shard_plan p(S, R, layout);
        // Global chunks: consecutive, sizes floor(S/n) or +1, the larger ones first.
        Index at = 0, min_size = S, max_size = 0;
        for (Index i = 0; i < p.chunk_count(); ++i) {
          const seq_chunk g = p.global_chunk(i);
          CHECK(g.begin == at);
          at = g.end;
          min_size = std::min(min_size, g.size());
          max_size = std::max(max_size, g.size());
        }
        CHECK(at == S);
        CHECK(max_size - min_size <= 1);
        // Rank r holds global chunk r (and 2R-1-r for zigzag), in that order.
        std::vector<int> owner(static_cast<std::size_t>(S), -1);
        Index total = 0;
        for (int r = 0; r < R; ++r) {
          const seq_chunk c0 = p.chunk(r, 0);
          CHECK(c0.begin == p.global_chunk(r).begin);
          if (layout == shard_layout::zigzag) {
            const seq_chunk c1 = p.chunk(r, 1);
            CHECK(c1.begin == p.global_chunk(2 * R - 1 - r).begin);
            CHECK(p.local_length(r) == c0.size() + c1.size());
          }
          total += p.local_length(r);
          CHECK(p.local_length(r) <= p.max_local_length());
          for (Index row = 0; row < p.local_length(r); ++row) {
            const Index pos = p.global_position(r, row);
            REQUIRE(pos >= 0);
            REQUIRE(pos < S);
            CHECK(owner[static_cast<std::size_t>(pos)] == -1);
            owner[static_cast<std::size_t>(pos)] = r;
            const emask::shard_row back = p.locate(pos);
            CHECK(back.rank == r);
            CHECK(back.row == row);
          }
        }
        CHECK(total == S);
        CHECK(std::count(owner.begin(), owner.end(), -1) == 0);
      }
}

TEST_CASE("pair_state: causal empty pairs equal a brute-force count and the closed form",
          "[dist][partition]") {
  const emask::causal mask;
  for (shard_layout layout : {shard_layout::contiguous, shard_layout::zigzag})
    for (int R = 1; R <= 6; ++R)
      for (Index S : {Index(37), Index(64), Index(100)}) {
        INFO("R " << R << " S " << S << " zigzag " << (layout == shard_layout::zigzag));
        const shard_plan p(S, R, layout);
        Index brute_empty = 0;
        for (int r = 0; r < R; ++r)
          for (int s = 0; s < R; ++s) {
            const std::vector<tile_state> st = emask::pair_states(p, mask, r, s);
            REQUIRE(static_cast<int>(st.size()) == p.chunks_per_rank() * p.chunks_per_rank());
            for (int qc = 0; qc < p.chunks_per_rank(); ++qc)
              for (int kc = 0; kc < p.chunks_per_rank(); ++kc) {
                const bool empty = st[static_cast<std::size_t>(qc * p.chunks_per_rank() + kc)] ==
                                   tile_state::empty;
                const bool kept = any_kept(mask, 0, 0, p.chunk(r, qc), p.chunk(s, kc));
                CHECK(empty == !kept);  // causal tile answers are exact
                brute_empty += kept ? 0 : 1;
              }
          }
        const emask::work_plan wp = emask::plan_work(p, mask);
        CHECK(wp.empty_pairs() == brute_empty);
        CHECK(wp.pairs() == Index(R) * R * p.chunks_per_rank() * p.chunks_per_rank());
        // n chunks, all non-empty: the n (n - 1) / 2 pairs above the diagonal are empty.
        const Index n = p.chunk_count();
        CHECK(brute_empty == n * (n - 1) / 2);
      }
}

TEST_CASE("plan_work: causal S = 16384, zigzag balanced within 5%, contiguous not",
          "[dist][partition]") {
  const emask::causal mask;
  const Index S = 16384;
  // Tiles of 64 on the diagonal are partial and counted fully: 256 * 257 / 2 tiles of 4096.
  const Index expected_total = 256 * 257 / 2 * 64 * 64;
  for (int R : {2, 4, 8}) {
    const emask::work_plan z = emask::plan_work(shard_plan(S, R, shard_layout::zigzag), mask);
    const emask::work_plan c = emask::plan_work(shard_plan(S, R, shard_layout::contiguous), mask);
    INFO("R " << R << ": zigzag imbalance " << z.imbalance() << ", contiguous " << c.imbalance());
    CHECK(z.total_work() == expected_total);
    CHECK(c.total_work() == expected_total);
    CHECK(z.imbalance() <= 1.05);
    CHECK(z.imbalance() >= 1.0);
    // Contiguous: the last rank does (2R - 1) / R^2 of the work, the mean is 1 / R.
    CHECK(c.imbalance() > 1.4);
    CHECK(c.imbalance() == Approx(static_cast<double>(2 * R - 1) / R).epsilon(0.01));
    // Zigzag skips R (2R - 1) of the 4 R^2 pairs, contiguous R (R - 1) / 2 of R^2.
    CHECK(z.empty_pairs() == Index(R) * (2 * R - 1));
    CHECK(c.empty_pairs() == Index(R) * (R - 1) / 2);
  }
}

TEST_CASE("plan_work: the work equals a tile-by-tile scan; windows and padding skip pairs",
          "[dist][partition]") {
  const Index S = 203, tile = 16;
  const emask::sliding_window win(24, 5);
  for (shard_layout layout : {shard_layout::contiguous, shard_layout::zigzag})
    for (int R : {1, 3, 4}) {
      const shard_plan p(S, R, layout);
      const emask::work_plan wp = emask::plan_work(p, win, {}, tile);
      CHECK(wp.tile == tile);
      for (int r = 0; r < R; ++r) {
        Index w = 0, empty = 0;
        for (int s = 0; s < R; ++s)
          for (const seq_chunk& q : p.chunks(r))
            for (const seq_chunk& k : p.chunks(s)) {
              w += scan_work(win, q, k, tile);
              empty += any_kept(win, 0, 0, q, k) ? 0 : 1;
            }
        CHECK(wp.ranks[static_cast<std::size_t>(r)].work == w);
        CHECK(wp.ranks[static_cast<std::size_t>(r)].empty_pairs == empty);
      }
    }
  // Key padding of two sequences: a pair is empty only when it is empty for both.
  const auto pad = emask::key_padding::from_lengths({60, 20}, 100);
  const shard_plan p(100, 4, shard_layout::contiguous);  // chunks of 25
  CHECK(emask::pair_state(pad, p.chunk(0, 0), p.chunk(1, 0), {0, 1, 0, 1}) == tile_state::full);
  CHECK(emask::pair_state(pad, p.chunk(0, 0), p.chunk(1, 0), {1, 2, 0, 1}) == tile_state::empty);
  CHECK(emask::pair_state(pad, p.chunk(0, 0), p.chunk(1, 0), {0, 2, 0, 3}) == tile_state::partial);
  CHECK(emask::pair_state(pad, p.chunk(0, 0), p.chunk(3, 0), {0, 2, 0, 3}) == tile_state::empty);
  CHECK(emask::pair_state(pad, p.chunk(0, 0), seq_chunk{5, 5}) == tile_state::empty);
  // Batch entry 1 keeps keys [0, 20): only the first key chunk; entry 0 keys [0, 60).
  const emask::work_plan wp = emask::plan_work(p, pad, {0, 2, 0, 1}, 25);
  CHECK(wp.ranks[0].empty_pairs == 1);  // key chunk 3 = [75, 100)
  // Entry 0: key chunks 0, 1 full, chunk 2 = [50, 75) one partial tile counted fully; entry 1:
  // key chunk 0 one partial tile counted fully. Four 25 x 25 tiles.
  CHECK(wp.ranks[0].work == 4 * 25 * 25);
}

TEST_CASE("partition: bad input raises emask::error naming the argument", "[dist][partition]") {
  REQUIRE_THROWS_WITH(shard_plan(-1, 2),
                      Contains("emask::shard_plan: argument 'seq_len' = -1, expected >= 0"));
  REQUIRE_THROWS_WITH(shard_plan(10, 0),
                      Contains("emask::shard_plan: argument 'ranks' = 0, expected >= 1"));
  REQUIRE_THROWS_WITH(shard_plan(10, 2, static_cast<shard_layout>(7)),
                      Contains("argument 'layout' = 7"));
  const shard_plan p(10, 2);
  REQUIRE_THROWS_WITH(p.chunk(2, 0), Contains("emask::shard_plan::chunk: argument 'r' = 2"));
  REQUIRE_THROWS_WITH(p.chunk(0, 2), Contains("emask::shard_plan::chunk: argument 'c' = 2"));
  REQUIRE_THROWS_WITH(p.global_position(0, 5),
                      Contains("emask::shard_plan::global_position: argument 'row' = 5"));
  REQUIRE_THROWS_WITH(p.locate(10), Contains("emask::shard_plan::locate: argument 'pos' = 10"));
  REQUIRE_THROWS_WITH(p.global_chunk(4),
                      Contains("emask::shard_plan::global_chunk: argument 'i' = 4"));
  REQUIRE_THROWS_WITH(emask::plan_work(p, emask::causal(), {}, 0),
                      Contains("emask::plan_work: argument 'tile' = 0"));
  REQUIRE_THROWS_WITH(emask::plan_work(p, emask::causal(), {0, 1, 2, 1}),
                      Contains("emask::plan_work: argument 'heads.h_begin, heads.h_end'"));
  REQUIRE_THROWS_WITH(emask::pair_states(p, emask::causal(), 0, 2),
                      Contains("emask::pair_states: argument 'k_rank' = 2"));
  REQUIRE_THROWS_WITH(emask::pair_state(emask::causal(), seq_chunk{4, 2}, seq_chunk{0, 1}),
                      Contains("emask::pair_state: argument 'q' = [4, 2)"));
  // A mask built for fewer positions than the plan: the mask's own check names plan_work.
  const auto pad = emask::key_padding::from_lengths({5}, 6);
  REQUIRE_THROWS_WITH(emask::plan_work(p, pad), Contains("emask::plan_work"));
}
