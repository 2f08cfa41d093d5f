// Per-layer schedules (Gemma 2/3, gpt-oss, Llama 4) and block-bidirectional groups: every mask
// against its brute-force definition, the KV-cache key counts against a brute-force count, the
// published layer patterns pinned by hand, bad input rejected.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernel_agreement.hpp"
#include "mask_testing.hpp"

using namespace emask;
using emask_test::check_mask;
using emask_test::rng;

namespace {

/// Random group ids: runs of -1 and of fresh group ids, lengths 1..6.
std::vector<std::int64_t> random_groups(rng& r, Index len) {
  std::vector<std::int64_t> ids;
  std::int64_t next_id = static_cast<std::int64_t>(r.between(0, 3));
  while (static_cast<Index>(ids.size()) < len) {
    const Index run = r.between(1, 6);
    const std::int64_t id = r.coin(0.4) ? -1 : next_id++;
    for (Index i = 0; i < run && static_cast<Index>(ids.size()) < len; ++i) ids.push_back(id);
  }
  return ids;
}

/// The definition: k <= q, or q and k in the same group.
bool bidirectional_keep(const std::vector<std::int64_t>& ids, Index q, Index k) {
  const auto g = [&](Index p) { return ids[static_cast<std::size_t>(p)]; };
  return k <= q || (g(q) >= 0 && g(q) == g(k));
}

}  // namespace

TEST_CASE("block_bidirectional: groups see each other both ways on top of causal",
          "[block_bidirectional]") {
  // By hand: ids -1 0 0 -1 1 1 1.
  const block_bidirectional hand(id_table({{-1, 0, 0, -1, 1, 1, 1}}));
  const bool expect[7][7] = {{1, 0, 0, 0, 0, 0, 0}, {1, 1, 1, 0, 0, 0, 0}, {1, 1, 1, 0, 0, 0, 0},
                             {1, 1, 1, 1, 0, 0, 0}, {1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1},
                             {1, 1, 1, 1, 1, 1, 1}};
  const bool_matrix got = materialize(hand, 7, 7);
  for (Index q = 0; q < 7; ++q)
    for (Index k = 0; k < 7; ++k) CHECK(got(q, k) == expect[q][k]);

  rng r(17);
  for (int trial = 0; trial < 40; ++trial) {
    const Index len = r.between(0, 40), batch = r.between(1, 3);
    std::vector<std::vector<std::int64_t>> rows;
    std::vector<std::int64_t> flat;
    for (Index b = 0; b < batch; ++b) {
      rows.push_back(random_groups(r, len));
      flat.insert(flat.end(), rows.back().begin(), rows.back().end());
    }
    Eigen::Matrix<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> table(batch, len);
    for (Index i = 0; i < batch * len; ++i) table.data()[i] = flat[static_cast<std::size_t>(i)];
    const block_bidirectional m{id_table(table)};
    const Index lq = len == 0 ? 0 : r.between(1, len), lk = len == 0 ? 0 : r.between(1, len);
    INFO("trial " << trial << " len " << len);
    check_mask(
        m,
        [&](Index b, Index, Index q, Index k) {
          return bidirectional_keep(rows[static_cast<std::size_t>(b)], q, k);
        },
        batch, 2, lq, lk, static_cast<std::uint64_t>(trial));
  }
}

TEST_CASE("block_bidirectional generalizes prefix_lm", "[block_bidirectional]") {
  for (Index len : {0, 1, 5, 33})
    for (Index p : {Index(0), Index(1), len / 2, len}) {
      if (p > len) continue;
      INFO("len " << len << " prefix " << p);
      const block_bidirectional m = block_bidirectional::prefix(p, len);
      CHECK(
          (materialize(m, len, len).array() == materialize(prefix_lm(p), len, len).array()).all());
    }
}

TEST_CASE("block_bidirectional: bad input", "[block_bidirectional][bad_input]") {
  REQUIRE_THROWS_WITH(
      block_bidirectional(id_table({{0, 0, -2}})),
      Catch::Matchers::StartsWith("emask::block_bidirectional: argument 'group_ids[2]' = -2"));
  REQUIRE_THROWS_WITH(
      block_bidirectional(id_table({{0, 0, 1, -1, 0}})),
      Catch::Matchers::StartsWith("emask::block_bidirectional: argument 'group_ids[4]' = 0") &&
          Catch::Matchers::Contains("already ran from position 0"));
  REQUIRE_THROWS_WITH(block_bidirectional(id_table()),
                      Catch::Matchers::StartsWith(
                          "emask::block_bidirectional: argument 'group_ids' = an empty table"));
  REQUIRE_THROWS_WITH(block_bidirectional::prefix(5, 3),
                      Catch::Matchers::Contains("argument 'prefix_length' = 5"));
  const block_bidirectional m(id_table({{0, 0, -1}}));
  REQUIRE_THROWS_WITH(materialize(m, 4, 3), Catch::Matchers::Contains("'query positions'"));
  REQUIRE_THROWS_WITH(materialize(m, 3, 4), Catch::Matchers::Contains("'key positions'"));
  const block_bidirectional two(id_table({{0, 0, -1}, {-1, 1, 1}}));
  row_matrix<float> x = row_matrix<float>::Zero(3, 3), y = row_matrix<float>::Constant(3, 3, 7);
  softmax_options o;
  o.slice.b = 2;  // batch entry 2 of a 2-row table
  REQUIRE_THROWS_WITH(masked_softmax(x, two, y, o), Catch::Matchers::Contains("'group_ids'"));
  CHECK((y.array() == 7.f).all());  // output untouched
}

TEST_CASE("block_bidirectional in every kernel variant equals its materialized keep-mask",
          "[block_bidirectional][kernels]") {
  rng r(23);
  for (int trial = 0; trial < 4; ++trial) {
    const Index len = r.between(20, 200);
    const block_bidirectional m{id_table(random_groups(r, len))};
    emask_test::check_kernels_match_materialized(m, len, len, r.between(1, 16), r);
  }
}

TEST_CASE("layer_schedule: the published patterns, layer by layer", "[layer_schedule]") {
  const layer_schedule g2 = layer_schedule::gemma2(26);
  CHECK(g2.layers() == 26);
  for (Index l = 0; l < 26; ++l) {
    CHECK(g2[l].kind == (l % 2 == 0 ? layer_kind::sliding : layer_kind::global));
    CHECK(g2[l].softcap == 50.0);
  }
  CHECK(g2[0].span == 4096);

  const layer_schedule g3 = layer_schedule::gemma3(34);
  for (Index l = 0; l < 34; ++l) {
    const bool global = l == 5 || l == 11 || l == 17 || l == 23 || l == 29;
    CHECK(g3[l].kind == (global ? layer_kind::global : layer_kind::sliding));
    CHECK(g3[l].softcap == 0.0);
  }
  CHECK(g3[0].span == 1024);
  CHECK(layer_schedule::gemma3(26, 512)[4].span == 512);

  const layer_schedule oss = layer_schedule::gpt_oss(24);
  CHECK(oss[0].kind == layer_kind::sliding);
  CHECK(oss[0].span == 128);
  CHECK(oss[23].kind == layer_kind::global);

  const layer_schedule l4 = layer_schedule::llama4(48);
  for (Index l = 0; l < 48; ++l) {
    const bool nope = (l + 1) % 4 == 0;
    CHECK(l4[l].kind == (nope ? layer_kind::global : layer_kind::chunked));
    CHECK(l4[l].rope == !nope);
  }
  CHECK(l4[0].span == 8192);

  attention_options base;
  base.scale = 0.125;
  const attention_options o = g2.options(3, base);
  CHECK(o.softcap == 50.0);
  CHECK(*o.scale == 0.125);
}

TEST_CASE("layer_schedule: each layer's mask and KV-cache keys against brute force",
          "[layer_schedule]") {
  const layer_schedule s(7, {{layer_kind::sliding, 5, 0.0, true},
                             {layer_kind::chunked, 4, 0.0, true},
                             {layer_kind::global, 0, 0.0, true}});
  rng r(5);
  for (Index l = 0; l < s.layers(); ++l) {
    const layer_attention a = s[l];
    const auto keep = [&](Index q, Index k) {
      if (k > q) return false;
      if (a.kind == layer_kind::sliding) return q - k < a.span;
      if (a.kind == layer_kind::chunked) return q / a.span == k / a.span;
      return true;
    };
    s.visit(l, [&](const auto& mask) {
      check_mask(
          mask, [&](Index, Index, Index q, Index k) { return keep(q, k); }, 1, 1, 23, 23,
          static_cast<std::uint64_t>(l));
    });
    for (Index context = 0; context < 30; ++context)
      for (Index step : {1, 2, 3, 7}) {
        Index brute = 0;
        for (Index k = 0; k < context + step; ++k) {
          bool needed = false;
          for (Index q = context; q < context + step; ++q) needed = needed || keep(q, k);
          brute += needed ? 1 : 0;
        }
        INFO("layer " << l << " context " << context << " step " << step);
        CHECK(s.kv_cache_keys(l, context, step) == brute);
      }
  }
  // gpt-oss, 24 layers at context 100000, one token a step: 12 windows of 128 keys (127 old
  // keys and the new one) and 12 global layers of 100001 keys.
  CHECK(layer_schedule::gpt_oss(24).total_kv_cache_keys(100000, 1) == 12 * 128 + 12 * 100001);
}

TEST_CASE("layer_schedule runs every layer of a model through masked_attention",
          "[layer_schedule][kernels]") {
  const layer_schedule s = layer_schedule::gemma2(4, 8);
  rng r(9);
  for (Index l = 0; l < s.layers(); ++l)
    s.visit(l, [&](const auto& mask) {
      INFO("layer " << l);
      emask_test::check_kernels_match_materialized(mask, 40, 40, 8, r, 8);
    });
}

TEST_CASE("layer_schedule: bad input", "[layer_schedule][bad_input]") {
  using Catch::Matchers::StartsWith;
  REQUIRE_THROWS_WITH(layer_schedule(-1, std::vector<layer_attention>(1)),
                      StartsWith("emask::layer_schedule: argument 'layers' = -1"));
  REQUIRE_THROWS_WITH(layer_schedule(4, {}),
                      StartsWith("emask::layer_schedule: argument 'pattern' = an empty list"));
  REQUIRE_THROWS_WITH(
      layer_schedule(4, {{}, {layer_kind::sliding, 0, 0.0, true}}),
      StartsWith("emask::layer_schedule: argument 'pattern.span[1]' = 0, expected >= 1"));
  REQUIRE_THROWS_WITH(layer_schedule(4, {{layer_kind::global, 0, std::nan(""), true}}),
                      StartsWith("emask::layer_schedule: argument 'pattern.softcap[0]' = nan"));
  REQUIRE_THROWS_WITH(layer_schedule::gemma3(4, 0),
                      StartsWith("emask::layer_schedule: argument 'pattern.span[0]' = 0"));
  const layer_schedule s = layer_schedule::llama4(8);
  REQUIRE_THROWS_WITH(s.at(8), StartsWith("emask::layer_schedule::at: argument 'layer' = 8, "
                                          "expected >= 0 and < layers() = 8"));
  REQUIRE_THROWS_WITH(s.kv_cache_keys(0, -1, 1),
                      StartsWith("emask::layer_schedule::kv_cache_keys: argument 'context' = -1"));
  REQUIRE_THROWS_WITH(
      s.kv_cache_keys(0, 5, 0),
      StartsWith("emask::layer_schedule::kv_cache_keys: argument 'micro_batch' = 0"));
}
