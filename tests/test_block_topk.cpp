// block_topk: top-k block selection (MoBA, NSA's selected branch). The selection against a
// brute-force sort with the documented tie-break (lower block first, -inf and NaN never chosen by
// score, forced blocks counted in top_k), the mask against brute force (keep, keys, every tile of
// random tilings, exact), hand-checked goldens, MoBA's gate against a plain loop, every attention
// variant against the same kernel on the materialized mask, and bad input.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <emask/kernels/attention.hpp>
#include <emask/masks/block_topk.hpp>
#include <emask/masks/dense.hpp>
#include "kernel_variants.hpp"

#include "mask_testing.hpp"

namespace {

using emask::block_topk;
using emask::block_topk_options;
using emask::Index;
using emask::row_matrix;
using emask::tile_state;
using emask_test::rng;

const double inf = std::numeric_limits<double>::infinity();
const double nan_d = std::numeric_limits<double>::quiet_NaN();

bool is_nan_bits(double x) { return emask::detail::is_nan(x); }  // also under -ffast-math
bool is_neg_inf_bits(double x) { return emask::detail::is_neg_inf(x); }

/// The documented rule, written plainly: forced blocks, then the best scores by a stable sort
/// (equal scores keep their index order, so the lower block wins), -inf and NaN left out.
std::vector<Index> brute_select(const std::vector<double>& row, Index qb, Index top_k, Index n_sink,
                                Index local) {
  const Index nkb = static_cast<Index>(row.size());
  const Index allowed = std::min(qb + 1, nkb);
  std::set<Index> chosen;
  for (Index j = 0; j < allowed; ++j) {
    const bool sink = j < n_sink;
    const bool recent = j > qb - std::max<Index>(local, 1);
    if (sink || recent) chosen.insert(j);
  }
  std::vector<Index> cand;
  for (Index j = 0; j < allowed; ++j) {
    const double s = row[static_cast<std::size_t>(j)];
    if (!chosen.count(j) && !is_nan_bits(s) && !is_neg_inf_bits(s)) cand.push_back(j);
  }
  std::stable_sort(cand.begin(), cand.end(), [&](Index a, Index b) {
    return row[static_cast<std::size_t>(a)] > row[static_cast<std::size_t>(b)];
  });
  const Index room = top_k - static_cast<Index>(chosen.size());
  for (Index t = 0; t < room && t < static_cast<Index>(cand.size()); ++t)
    chosen.insert(cand[static_cast<std::size_t>(t)]);
  return std::vector<Index>(chosen.begin(), chosen.end());
}

/// A score with many ties, signed zeros and, when \p specials, infinities and NaN.
double draw_score(rng& g, bool specials) {
  if (specials) {
    const Index c = g.between(0, 19);
    if (c == 0) return nan_d;
    if (c == 1) return -inf;
    if (c == 2) return inf;
  }
  const Index v = g.between(-3, 3);
  return v == 0 ? (g.coin() ? 0.0 : -0.0) : static_cast<double>(v) * 0.5;
}

Index ceil_div(Index a, Index b) { return (a + b - 1) / b; }

/// Query blocks touched by [qo, qo + lq) in blocks of bs.
Index q_block_count(Index qo, Index lq, Index bs) {
  return lq > 0 ? (qo + lq - 1) / bs - qo / bs + 1 : 0;
}

/// One random problem: scores [B, H, nqb, nkb] and the brute-force choice of every row.
struct problem {
  Index B, H, bs, lq, lk, qo, top_k;
  block_topk_options o;
  Index nqb, nkb;
  std::vector<double> scores;
  std::vector<std::vector<Index>> want;  // [(b * H + h) * nqb + i]
  const std::vector<Index>& row(Index b, Index h, Index i) const {
    return want[static_cast<std::size_t>((b * H + h) * nqb + i)];
  }
  bool keep(Index b, Index h, Index q, Index k) const {  // q absolute
    if (q < qo || q >= qo + lq || k < 0 || k >= lk || k > q) return false;
    const std::vector<Index>& r = row(B == 1 ? 0 : b, H == 1 ? 0 : h, q / bs - qo / bs);
    return std::binary_search(r.begin(), r.end(), k / bs);
  }
};

problem make_problem(rng& g, bool specials) {
  problem p{};
  p.B = g.between(1, 2);
  p.H = g.between(1, 3);
  p.bs = g.between(1, 6);
  p.lq = g.between(0, 26);
  p.lk = g.between(0, 26);
  p.qo = g.coin(0.3) ? g.between(1, 20) : 0;
  p.o.n_sink_blocks = g.between(0, 2);
  p.o.local_blocks = g.between(0, 3);
  p.o.q_offset = p.qo;
  p.top_k = p.o.n_sink_blocks + std::max<Index>(p.o.local_blocks, 1) + g.between(0, 4);
  p.nqb = q_block_count(p.qo, p.lq, p.bs);
  p.nkb = ceil_div(p.lk, p.bs);
  p.scores.resize(static_cast<std::size_t>(p.B * p.H * p.nqb * p.nkb));
  for (double& s : p.scores) s = draw_score(g, specials);
  for (Index r = 0; r < p.B * p.H * p.nqb; ++r) {
    const std::vector<double> row(p.scores.begin() + r * p.nkb, p.scores.begin() + (r + 1) * p.nkb);
    p.want.push_back(brute_select(row, p.qo / p.bs + r % std::max<Index>(p.nqb, 1), p.top_k,
                                  p.o.n_sink_blocks, p.o.local_blocks));
  }
  return p;
}

template <class S>
block_topk build(const problem& p, std::vector<S>& buf) {
  buf.assign(p.scores.begin(), p.scores.end());
  return block_topk::from_scores(emask::view_bhld<const S>(buf.data(), p.B, p.H, p.nqb, p.nkb),
                                 p.lq, p.lk, p.top_k, p.bs, p.o);
}

std::string picture(const emask::bool_matrix& m) {
  std::string s;
  for (Index i = 0; i < m.rows(); ++i) {
    for (Index j = 0; j < m.cols(); ++j) s += m(i, j) ? '#' : '.';
    s += '\n';
  }
  return s;
}

}  // namespace

TEST_CASE("block_topk: hand-checked selection, picture and tile states", "[block_topk]") {
  // Blocks of 2 over 8 positions, top 2 per query block (own block included).
  row_matrix<double> scores(4, 4);
  scores << 5, 9, 9, 9,  // block 0: only block 0 is allowed (the 9s are in the future)
      3, 9, 9, 9,        // block 1: own block 1 + best of {0}
      1, 7, 0, 9,        // block 2: own block 2 + best of {0: 1, 1: 7} = 1
      4, 4, 2, 0;        // block 3: own block 3 + tie 0 / 1 at 4: the lower block, 0
  const block_topk sel = block_topk::from_scores(scores, 8, 8, 2, 2);
  CHECK(sel.chosen(0) == std::vector<Index>{0});
  CHECK(sel.chosen(1) == std::vector<Index>{0, 1});
  CHECK(sel.chosen(2) == std::vector<Index>{1, 2});
  CHECK(sel.chosen(3) == std::vector<Index>{0, 3});
  CHECK(sel.q_blocks() == 4);
  CHECK(sel.k_blocks() == 4);
  CHECK(picture(emask::materialize(sel, 8, 8)) ==
        "#.......\n"
        "##......\n"
        "###.....\n"
        "####....\n"
        "..###...\n"
        "..####..\n"
        "##....#.\n"
        "##....##\n");
  // Tiles of the blocks: chosen below the diagonal full, diagonal partial, the rest empty.
  CHECK(sel.tile(0, 0, 6, 8, 0, 2) == tile_state::full);
  CHECK(sel.tile(0, 0, 6, 8, 2, 4) == tile_state::empty);
  CHECK(sel.tile(0, 0, 6, 8, 4, 6) == tile_state::empty);
  CHECK(sel.tile(0, 0, 6, 8, 6, 8) == tile_state::partial);
  CHECK(sel.tile(0, 0, 4, 6, 2, 4) == tile_state::full);
  CHECK(sel.tile(0, 0, 4, 6, 0, 2) == tile_state::empty);
  // Row 6 keeps blocks 0 and 3: two runs, so keys() answers the hull, not exact.
  const emask::key_span s6 = sel.keys(0, 0, 6, 0, 8);
  CHECK(s6.begin == 0);
  CHECK(s6.end == 7);
  CHECK(!s6.exact);
  const emask::key_span s5 = sel.keys(0, 0, 5, 0, 8);
  CHECK((s5.begin == 2 && s5.end == 6 && s5.exact));

  // NSA's layout at block size 1: top 3 = the first block + the 2 most recent (own included).
  row_matrix<float> nsa = row_matrix<float>::Constant(6, 6, 1.0f);
  block_topk_options o;
  o.n_sink_blocks = 1;
  o.local_blocks = 2;
  const block_topk n = block_topk::from_scores(nsa, 6, 6, 3, 1, o);
  CHECK(n.chosen(5) == std::vector<Index>{0, 4, 5});
  CHECK(n.chosen(3) == std::vector<Index>{0, 2, 3});
  CHECK(n.chosen(1) == std::vector<Index>{0, 1});
  CHECK(n.chosen(0) == std::vector<Index>{0});
  // One more place goes to the best of the rest.
  nsa(5, 2) = 2.0f;
  const block_topk n4 = block_topk::from_scores(nsa, 6, 6, 4, 1, o);
  CHECK(n4.chosen(5) == std::vector<Index>{0, 2, 4, 5});
}

TEST_CASE("block_topk: infinities, signed zeros and NaN scores", "[block_topk]") {
  // Query block 5 (block size 1): own block 5 forced; 0 is NaN, 1 is -inf: never chosen by score.
  row_matrix<double> s(1, 6);
  s << nan_d, -inf, inf, 0.0, -0.0, 1.0;
  block_topk_options o;
  o.q_offset = 5;
  CHECK(block_topk::from_scores(s, 1, 6, 2, 1, o).chosen(0) == std::vector<Index>{2, 5});
  s(0, 5) = -1.0;  // the own block's score does not matter
  // +inf, then 0 and -0 tie (the lower block, 3, first).
  CHECK(block_topk::from_scores(s, 1, 6, 3, 1, o).chosen(0) == std::vector<Index>{2, 3, 5});
  CHECK(block_topk::from_scores(s, 1, 6, 4, 1, o).chosen(0) == std::vector<Index>{2, 3, 4, 5});
  // Room for all: -inf and NaN still left out.
  CHECK(block_topk::from_scores(s, 1, 6, 6, 1, o).chosen(0) == std::vector<Index>{2, 3, 4, 5});
  // Forced blocks are kept whatever their score.
  o.n_sink_blocks = 2;
  CHECK(block_topk::from_scores(s, 1, 6, 3, 1, o).chosen(0) == std::vector<Index>{0, 1, 5});
  // A row of NaN: only the forced blocks; in float too.
  row_matrix<float> all_nan =
      row_matrix<float>::Constant(1, 6, std::numeric_limits<float>::quiet_NaN());
  o.n_sink_blocks = 0;
  CHECK(block_topk::from_scores(all_nan, 1, 6, 4, 1, o).chosen(0) == std::vector<Index>{5});
}

TEMPLATE_TEST_CASE("block_topk: selection and mask against brute force", "[block_topk]", float,
                   double) {
  using S = TestType;
  rng g(std::is_same<S, float>::value ? 7 : 8);
  for (int trial = 0; trial < 160; ++trial) {
    const bool specials = trial % 3 == 0;
    const problem p = make_problem(g, specials);
    INFO("trial " << trial << " B " << p.B << " H " << p.H << " bs " << p.bs << " lq " << p.lq
                  << " lk " << p.lk << " q_offset " << p.qo << " top_k " << p.top_k << " sinks "
                  << p.o.n_sink_blocks << " local " << p.o.local_blocks);
    std::vector<S> buf;
    const block_topk sel = build(p, buf);
    REQUIRE(sel.q_blocks() == p.nqb);
    REQUIRE(sel.k_blocks() == p.nkb);
    REQUIRE(sel.first_q_block() == p.qo / p.bs);
    for (Index b = 0; b < p.B; ++b)
      for (Index h = 0; h < p.H; ++h)
        for (Index i = 0; i < p.nqb; ++i) {
          const std::vector<Index> got = sel.chosen(i, b, h);
          REQUIRE(got == p.row(b, h, i));
          const Index qb = p.qo / p.bs + i, allowed = std::min(qb + 1, p.nkb);
          if (!specials) {
            CHECK(static_cast<Index>(got.size()) == std::min(p.top_k, allowed));
          } else {
            CHECK(static_cast<Index>(got.size()) <= std::min(p.top_k, allowed));
          }
          if (qb < p.nkb) CHECK(std::binary_search(got.begin(), got.end(), qb));  // own block
          for (Index j = 0; j < std::min(p.o.n_sink_blocks, allowed); ++j)
            CHECK(std::binary_search(got.begin(), got.end(), j));
        }
    // The mask, asked about positions relative to q_offset (tiles, shards, kernels see the same).
    const auto ref = [&](Index b, Index h, Index q, Index k) { return p.keep(b, h, p.qo + q, k); };
    if (p.qo == 0)
      emask_test::check_mask(sel, ref, p.B, p.H, p.lq, p.lk,
                             static_cast<std::uint64_t>(100 + trial));
    emask_test::check_mask(sel.offset(p.qo, 0), ref, p.B, p.H, p.lq, p.lk,
                           static_cast<std::uint64_t>(200 + trial));
  }
}

TEST_CASE("block_topk: one slice of scores serves every batch entry and head", "[block_topk]") {
  rng g(3);
  row_matrix<double> s(5, 5);
  for (Index i = 0; i < 5; ++i)
    for (Index j = 0; j < 5; ++j) s(i, j) = draw_score(g, false);
  const block_topk sel = block_topk::from_scores(s, 19, 17, 2, 4);
  CHECK(sel.batch() == 1);
  CHECK(sel.heads() == 1);
  std::vector<std::vector<Index>> want;
  for (Index i = 0; i < 5; ++i)
    want.push_back(
        brute_select(std::vector<double>(s.row(i).data(), s.row(i).data() + 5), i, 2, 0, 1));
  const auto ref = [&](Index, Index, Index q, Index k) {
    const std::vector<Index>& r = want[static_cast<std::size_t>(q / 4)];
    return k <= q && std::binary_search(r.begin(), r.end(), k / 4);
  };
  emask_test::check_mask(sel, ref, 3, 2, 19, 17);
}

TEST_CASE("block_topk: aligned kernel tiles visit exactly the chosen blocks", "[block_topk]") {
  rng g(5);
  const Index bs = 16, L = 200, top_k = 3;  // 13 blocks, the last one partial
  const Index nb = ceil_div(L, bs);
  row_matrix<double> s(nb, nb);
  for (Index i = 0; i < nb; ++i)
    for (Index j = 0; j < nb; ++j) s(i, j) = static_cast<double>(g.between(0, 1000));
  const block_topk sel = block_topk::from_scores(s, L, L, top_k, bs);
  const emask::tile_grid grid(L, L, bs, bs);
  Index nonempty = 0, full = 0, chosen = 0, below = 0;
  for (Index qt = 0; qt < grid.q_tiles(); ++qt) {
    chosen += sel.chosen_count(qt);
    for (Index j = 0; j < sel.chosen_count(qt); ++j) below += sel.chosen_blocks(qt)[j] < qt;
    for (Index kt = 0; kt < grid.k_tiles(); ++kt) {
      const tile_state t =
          sel.tile(0, 0, grid.q_begin(qt), grid.q_end(qt), grid.k_begin(kt), grid.k_end(kt));
      nonempty += t != tile_state::empty;
      full += t == tile_state::full;
      CHECK((t == tile_state::partial) == (kt == qt));  // only the diagonal is partial
    }
  }
  CHECK(nonempty == chosen);
  CHECK(full == below);
  CHECK(chosen == 1 + 2 + 3 * (nb - 2));
  // The same through a block mask at the kernel's tiles: one lookup per tile.
  const emask::block_mask bm = emask::materialize_block_mask(sel, L, L, bs, bs);
  CHECK(bm.count(tile_state::full) == below);
  CHECK(bm.count(tile_state::partial) == nb);
}

TEST_CASE("block_topk: MoBA's gate, per query block, against a plain loop", "[block_topk]") {
  rng g(9);
  for (int trial = 0; trial < 20; ++trial) {
    const Index B = g.between(1, 2), HKV = g.between(1, 2), H = HKV * g.between(1, 2);
    const Index D = g.between(1, 6), lq = g.between(0, 23), lk = g.between(0, 23);
    const Index bs = g.between(1, 5), qo = g.coin(0.3) ? g.between(1, 9) : 0;
    INFO("trial " << trial << " B " << B << " H " << H << " HKV " << HKV << " D " << D << " lq "
                  << lq << " lk " << lk << " bs " << bs << " q_offset " << qo);
    std::vector<float> q(static_cast<std::size_t>(B * H * lq * D)),
        k(static_cast<std::size_t>(B * HKV * lk * D));
    for (float& x : q) x = static_cast<float>(g.between(-8, 8)) / 4.0f;
    for (float& x : k) x = static_cast<float>(g.between(-8, 8)) / 4.0f;
    const auto qv = emask::view_bhld<const float>(q.data(), B, H, lq, D);
    const auto kv = emask::view_bhld<const float>(k.data(), B, HKV, lk, D);
    const row_matrix<double> gate = block_topk::moba_gate(qv, kv, bs, qo);
    const Index nqb = q_block_count(qo, lq, bs), nkb = ceil_div(lk, bs);
    REQUIRE(gate.rows() == B * H * nqb);
    REQUIRE(gate.cols() == nkb);
    for (Index b = 0; b < B; ++b)
      for (Index h = 0; h < H; ++h) {
        const Index kh = h / (H / HKV);
        for (Index i = 0; i < nqb; ++i)
          for (Index j = 0; j < nkb; ++j) {
            // The mean over the block's query tokens of MoBA's token gate q . mean(K of block j).
            double sum = 0;
            Index nq = 0;
            for (Index t = 0; t < lq; ++t) {
              if ((qo + t) / bs != qo / bs + i) continue;
              Index nk = 0;
              std::vector<double> kmean(static_cast<std::size_t>(D), 0.0);
              for (Index u = j * bs; u < std::min(lk, (j + 1) * bs); ++u, ++nk)
                for (Index c = 0; c < D; ++c)
                  kmean[static_cast<std::size_t>(c)] +=
                      k[static_cast<std::size_t>(((b * HKV + kh) * lk + u) * D + c)];
              double dot = 0;
              for (Index c = 0; c < D; ++c)
                dot += static_cast<double>(
                           q[static_cast<std::size_t>(((b * H + h) * lq + t) * D + c)]) *
                       kmean[static_cast<std::size_t>(c)] / static_cast<double>(nk);
              sum += dot;
              ++nq;
            }
            CHECK(std::abs(gate((b * H + h) * nqb + i, j) - sum / static_cast<double>(nq)) <=
                  1e-12 * (1 + std::abs(sum)));
          }
      }
    block_topk_options o;
    o.q_offset = qo;
    o.n_sink_blocks = g.between(0, 1);
    const Index top_k = 1 + o.n_sink_blocks + g.between(0, 3);
    const block_topk a = block_topk::from_moba_gate(qv, kv, top_k, bs, o);
    const block_topk c = block_topk::from_scores(
        emask::view_bhld<const double>(gate.data(), B, H, nqb, nkb), lq, lk, top_k, bs, o);
    for (Index b = 0; b < B; ++b)
      for (Index h = 0; h < H; ++h)
        for (Index i = 0; i < nqb; ++i) CHECK(a.chosen(i, b, h) == c.chosen(i, b, h));
  }
  // A hand case: the key block whose mean key points along the query block's mean query wins.
  // D = 2, blocks of 2; keys of block 0 along x, block 1 along y, block 2 (own) anything.
  const float qd[] = {0, 1, 0, 3, 0, 0, 0, 0, 0, 1, 0, 1};  // query block 2 (rows 4, 5): +y
  const float kd[] = {1, 0, 3, 0, 0, 1, 0, 1, 5, 5, 5, 5};
  const block_topk m =
      block_topk::from_moba_gate(emask::view_bhld<const float>(qd, 1, 1, 6, 2),
                                 emask::view_bhld<const float>(kd, 1, 1, 6, 2), 2, 2);
  CHECK(m.chosen(2) == std::vector<Index>{1, 2});
  CHECK(m.chosen(1) == std::vector<Index>{0, 1});
}

// float only: the mask's tile answers do not depend on the scalar, and each instantiation of
// the three kernels costs compile time (the double kernels are tested in test_attention).
TEMPLATE_TEST_CASE("block_topk: every attention variant agrees with the materialized mask",
                   "[block_topk][attention]", float) {
  using S = TestType;
  rng g(11);
  struct shape {
    Index lq, lk, bs, top_k, q_offset;
  };
  // Self-attention with tiles equal to, dividing and not dividing the blocks; Lq != Lk; a decode
  // step (one new query at the end of the cache) and a prefill chunk at an offset.
  const shape shapes[] = {{77, 77, 16, 3, 0},
                          {50, 70, 8, 2, 0},
                          {1, 90, 16, 3, 89},
                          {20, 64, 16, 2, 44},
                          {130, 129, 32, 2, 0}};
  const Index B = 2, H = 2, HKV = 1, D = 8;
  for (const shape& sh : shapes) {
    block_topk_options o;
    o.n_sink_blocks = 1;
    o.q_offset = sh.q_offset;
    const Index nqb = q_block_count(sh.q_offset, sh.lq, sh.bs), nkb = ceil_div(sh.lk, sh.bs);
    std::vector<S> scores(static_cast<std::size_t>(B * H * nqb * nkb));
    for (S& x : scores) x = static_cast<S>(g.between(0, 99));
    const block_topk sel =
        block_topk::from_scores(emask::view_bhld<const S>(scores.data(), B, H, nqb, nkb), sh.lq,
                                sh.lk, sh.top_k + 1, sh.bs, o);
    // The same pattern as a dense [B, H, Lq, Lk] keep buffer (rows at the kernel's positions).
    emask::bool_matrix keep(B * H * sh.lq, sh.lk);
    for (Index b = 0; b < B; ++b)
      for (Index h = 0; h < H; ++h)
        for (Index i = 0; i < sh.lq; ++i)
          for (Index j = 0; j < sh.lk; ++j)
            keep((b * H + h) * sh.lq + i, j) = sel.keep(b, h, sh.q_offset + i, j);
    const emask::dense_mask dense(keep.data(), B, H, sh.lq, sh.lk);
    std::vector<S> q(static_cast<std::size_t>(B * H * sh.lq * D)),
        k(static_cast<std::size_t>(B * HKV * sh.lk * D)), v(k.size());
    for (S& x : q) x = static_cast<S>(g.between(-100, 100)) / S(50);
    for (S& x : k) x = static_cast<S>(g.between(-100, 100)) / S(50);
    for (S& x : v) x = static_cast<S>(g.between(-100, 100)) / S(100);
    const auto qv = emask::view_bhld<const S>(q.data(), B, H, sh.lq, D);
    const auto kv = emask::view_bhld<const S>(k.data(), B, HKV, sh.lk, D);
    const auto vv = emask::view_bhld<const S>(v.data(), B, HKV, sh.lk, D);
    for (const auto variant :
         {emask_test::attention_variant::naive, emask_test::attention_variant::tiled,
          emask_test::attention_variant::decode}) {
      for (const Index tile : {sh.bs, sh.bs / 2, Index(7), Index(64)}) {
        INFO("lq " << sh.lq << " lk " << sh.lk << " bs " << sh.bs << " q_offset " << sh.q_offset
                   << " variant " << static_cast<int>(variant) << " tile " << tile);
        emask_test::attention_options ao;
        ao.variant = variant;
        ao.tile_q = tile;
        ao.tile_k = tile;
        ao.decode_chunk = tile;
        // The dense buffer's rows are the kernel's rows; the selection sees absolute positions.
        ao.q_offset = sh.q_offset;
        std::vector<S> out_sel(q.size(), S(7)), out_dense(q.size(), S(7));
        row_matrix<S> lse_sel(B * H, sh.lq), lse_dense(B * H, sh.lq);
        emask_test::masked_attention(qv, kv, vv, sel,
                                     emask::view_bhld(out_sel.data(), B, H, sh.lq, D), lse_sel, ao);
        ao.q_offset = 0;
        emask_test::masked_attention(
            qv, kv, vv, dense, emask::view_bhld(out_dense.data(), B, H, sh.lq, D), lse_dense, ao);
        const double tol = std::is_same<S, float>::value ? 2e-6 : 1e-13;
        double worst = 0;
        for (std::size_t t = 0; t < q.size(); ++t)
          worst = std::max(worst, std::abs(static_cast<double>(out_sel[t] - out_dense[t])));
        CHECK(worst <= tol);
        for (Index r = 0; r < B * H; ++r)
          for (Index i = 0; i < sh.lq; ++i)
            CHECK(std::abs(static_cast<double>(lse_sel(r, i) - lse_dense(r, i))) <= 8 * tol);
      }
    }
  }
}

TEST_CASE("block_topk: bad input", "[block_topk][bad_input]") {
  using Catch::Matchers::StartsWith;
  const row_matrix<double> s = row_matrix<double>::Zero(4, 4);
  const auto starts = [](const std::string& where, const std::string& arg) {
    return StartsWith("emask::" + where + ": argument '" + arg + "'");
  };
  const std::string fs = "block_topk::from_scores";
  REQUIRE_THROWS_WITH(block_topk::from_scores(s, 8, 8, 0, 2), starts(fs, "top_k"));
  REQUIRE_THROWS_WITH(block_topk::from_scores(s, 8, 8, -3, 2), starts(fs, "top_k"));
  REQUIRE_THROWS_WITH(block_topk::from_scores(s, 8, 8, 2, 0), starts(fs, "block_size"));
  REQUIRE_THROWS_WITH(block_topk::from_scores(s, -1, 8, 2, 2), starts(fs, "q_len"));
  REQUIRE_THROWS_WITH(block_topk::from_scores(s, 8, -8, 2, 2), starts(fs, "k_len"));
  // Score shapes: rows are query blocks, columns key blocks.
  REQUIRE_THROWS_WITH(block_topk::from_scores(s, 9, 8, 2, 2),
                      starts(fs, "scores") && Catch::Matchers::Contains("expected 5"));
  REQUIRE_THROWS_WITH(block_topk::from_scores(s, 8, 6, 2, 2),
                      starts(fs, "scores") && Catch::Matchers::Contains("expected 3"));
  std::vector<float> flat(2 * 3 * 4 * 5);
  REQUIRE_THROWS_WITH(
      block_topk::from_scores(emask::view_bhld<const float>(flat.data(), 2, 3, 4, 5), 8, 8, 2, 2),
      starts(fs, "scores"));
  block_topk_options o;
  o.n_sink_blocks = -1;
  REQUIRE_THROWS_WITH(block_topk::from_scores(s, 8, 8, 2, 2, o),
                      starts(fs, "options.n_sink_blocks"));
  o = {};
  o.local_blocks = -2;
  REQUIRE_THROWS_WITH(block_topk::from_scores(s, 8, 8, 2, 2, o),
                      starts(fs, "options.local_blocks"));
  o = {};
  o.q_offset = -1;
  REQUIRE_THROWS_WITH(block_topk::from_scores(s, 8, 8, 2, 2, o), starts(fs, "options.q_offset"));
  // The forced blocks count toward top_k.
  o = {};
  o.n_sink_blocks = 1;
  o.local_blocks = 2;
  REQUIRE_THROWS_WITH(block_topk::from_scores(s, 8, 8, 2, 2, o),
                      starts(fs, "top_k") && Catch::Matchers::Contains(">= 3"));

  // MoBA's gate: q and k must agree.
  const std::string fm = "block_topk::from_moba_gate";
  std::vector<float> q(2 * 4 * 6 * 3), k(2 * 3 * 6 * 3);
  const auto qv = emask::view_bhld<const float>(q.data(), 2, 4, 6, 3);
  REQUIRE_THROWS_WITH(
      block_topk::from_moba_gate(qv, emask::view_bhld<const float>(k.data(), 2, 3, 6, 3), 2, 2),
      starts(fm, "k"));  // 3 heads do not divide 4
  REQUIRE_THROWS_WITH(
      block_topk::from_moba_gate(qv, emask::view_bhld<const float>(k.data(), 1, 2, 6, 3), 2, 2),
      starts(fm, "k"));  // batch
  REQUIRE_THROWS_WITH(
      block_topk::from_moba_gate(qv, emask::view_bhld<const float>(k.data(), 2, 2, 9, 2), 2, 2),
      starts(fm, "k"));  // dim
  REQUIRE_THROWS_WITH(
      block_topk::from_moba_gate(qv, emask::view_bhld<const float>(k.data(), 2, 2, 6, 3), 0, 2),
      starts(fm, "top_k"));
  REQUIRE_THROWS_WITH(
      block_topk::moba_gate(qv, emask::view_bhld<const float>(k.data(), 2, 2, 6, 3), 0),
      starts("block_topk::moba_gate", "block_size"));

  // A kernel call outside the selection: an error naming the positions, and the output untouched.
  const block_topk sel = block_topk::from_scores(s, 8, 8, 2, 2);
  row_matrix<double> qm = row_matrix<double>::Ones(8, 4), km = row_matrix<double>::Ones(10, 4);
  row_matrix<double> out = row_matrix<double>::Constant(8, 4, 7.0);
  emask::lse_vector<double> lse = emask::lse_vector<double>::Constant(8, 7.0);
  REQUIRE_THROWS_WITH(
      emask::masked_attention(emask::tiled, qm, km, km, sel, out, lse),
      starts("masked_attention", "key positions") && Catch::Matchers::Contains("[0, 8)"));
  CHECK((out.array() == 7.0).all());
  emask::attention_options ao;
  ao.q_offset = 1;
  REQUIRE_THROWS_WITH(
      emask::masked_attention(emask::tiled, qm, km.topRows(8), km.topRows(8), sel, out, lse, ao),
      starts("masked_attention", "query positions"));
  CHECK((out.array() == 7.0).all());
  CHECK((lse.array() == 7.0).all());
  std::vector<double> sb(2 * 1 * 4 * 4, 0.0);
  const block_topk two =
      block_topk::from_scores(emask::view_bhld<const double>(sb.data(), 2, 1, 4, 4), 8, 8, 2, 2);
  REQUIRE_THROWS_WITH(emask::materialize(two, 8, 8, 2, 0),
                      starts("materialize", "block_topk batch"));
}
