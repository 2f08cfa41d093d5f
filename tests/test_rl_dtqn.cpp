// Tests of emask/rl/dtqn.hpp: episode ids from starts, dones and a ring buffer (hand-checked),
// the history mask against a brute-force predicate (same episode and causal), and the mask fed
// to masked_attention against a float64 reference.
#include <cmath>
#include <cstdint>
#include <random>

#include <emask/core/materialize.hpp>
#include <emask/kernels/attention.hpp>
#include <emask/rl/dtqn.hpp>

#include "catch.hpp"

using Catch::Matchers::Contains;
using emask::bool_matrix;
using emask::Index;
using emask::row_matrix;

namespace {
using id_array = Eigen::Array<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
}

TEST_CASE("dtqn: episode ids from starts, dones and a ring", "[rl][dtqn]") {
  bool_matrix starts(2, 6);
  starts << false, false, true, false, true, true,  //
      true, false, false, false, false, false;
  const id_array ids = emask::episode_ids_from_starts(starts);
  id_array expect(2, 6);
  expect << 0, 0, 1, 1, 2, 3,  //
      0, 0, 0, 0, 0, 0;
  CHECK((ids == expect).all());

  bool_matrix dones(1, 5);
  dones << false, true, false, false, true;
  id_array expect_d(1, 5);
  expect_d << 0, 0, 1, 1, 1;
  CHECK((emask::episode_ids_from_dones(dones) == expect_d).all());

  // Ring of 5 slots, oldest at slot 3: chronological dones are slots 3, 4, 0, 1, 2.
  bool_matrix ring(1, 5);
  ring << false, false, true, true, false;
  // Chronological order: slot 3 (done), slot 4, slot 0, slot 1, slot 2 (done, but last).
  id_array expect_r2(1, 5);
  expect_r2 << 0, 1, 1, 1, 1;
  CHECK((emask::episode_ids_from_ring(ring, {3}) == expect_r2).all());

  REQUIRE_THROWS_WITH(emask::episode_ids_from_ring(ring, {5}), Contains("'head[0]' = 5"));
  REQUIRE_THROWS_WITH(emask::episode_ids_from_ring(ring, {0, 1}), Contains("argument 'head'"));
  REQUIRE_THROWS_WITH(emask::episode_ids_from_starts(bool_matrix(0, 3)),
                      Contains("argument 'starts'"));
  REQUIRE_THROWS_WITH(emask::make_dtqn_mask(emask::id_table(std::vector<int>{})),
                      Contains("argument 'episode_ids'"));
}

TEST_CASE("dtqn: history mask is same-episode and causal", "[rl][dtqn]") {
  std::mt19937 gen(7);
  std::bernoulli_distribution start(0.2);
  const Index batch = 3, window = 17;
  bool_matrix starts(batch, window);
  for (Index b = 0; b < batch; ++b)
    for (Index t = 0; t < window; ++t) starts(b, t) = start(gen);
  const id_array ids = emask::episode_ids_from_starts(starts);
  const auto mask = emask::dtqn_mask_from_starts(starts);
  for (Index b = 0; b < batch; ++b) {
    const bool_matrix m = emask::materialize(mask, window, window, b);
    for (Index t = 0; t < window; ++t) {
      CHECK(m(t, t));  // every position sees itself: no fully masked row
      for (Index s = 0; s < window; ++s) CHECK(m(t, s) == (s <= t && ids(b, s) == ids(b, t)));
    }
    // Tile answers are never wrong.
    for (Index q0 = 0; q0 < window; q0 += 4)
      for (Index k0 = 0; k0 < window; k0 += 4) {
        const Index q1 = std::min(q0 + 4, window), k1 = std::min(k0 + 4, window);
        const emask::tile_state st = mask.tile(b, 0, q0, q1, k0, k1);
        const auto blk = m.block(q0, k0, q1 - q0, k1 - k0);
        if (st == emask::tile_state::full) CHECK(blk.all());
        if (st == emask::tile_state::empty) CHECK_FALSE(blk.any());
      }
  }
  // The done form gives the same mask as the equivalent starts.
  bool_matrix dones(1, 6), st(1, 6);
  dones << false, false, true, false, false, false;
  st << true, false, false, true, false, false;
  CHECK((emask::materialize(emask::dtqn_mask_from_dones(dones), 6, 6) ==
         emask::materialize(emask::dtqn_mask_from_starts(st), 6, 6))
            .all());
}

TEMPLATE_TEST_CASE("dtqn: masked_attention over a window crossing episodes", "[rl][dtqn]", float,
                   double) {
  using S = TestType;
  const Index window = 12, d = 8;
  bool_matrix dones(2, window);
  dones.setConstant(false);
  dones(0, 4) = true;
  dones(0, 9) = true;
  dones(1, 0) = true;
  const auto mask = emask::dtqn_mask_from_dones(dones);
  std::mt19937 gen(11);
  std::normal_distribution<double> normal;
  for (Index b = 0; b < 2; ++b) {
    row_matrix<S> q(window, d), k(window, d), v(window, d), out(window, d);
    for (Index i = 0; i < window; ++i)
      for (Index j = 0; j < d; ++j) {
        q(i, j) = static_cast<S>(normal(gen));
        k(i, j) = static_cast<S>(normal(gen));
        v(i, j) = static_cast<S>(normal(gen));
      }
    emask::attention_options opt;
    opt.slice.b = b;
    emask::masked_attention(q, k, v, mask, out, opt);
    const bool_matrix keep = emask::materialize(mask, window, window, b);
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    for (Index i = 0; i < window; ++i) {
      // float64 reference: softmax over the kept keys of row i.
      double mx = -1e300;
      for (Index s = 0; s < window; ++s)
        if (keep(i, s)) {
          const double sc =
              scale * q.row(i).template cast<double>().dot(k.row(s).template cast<double>());
          mx = std::max(mx, sc);
        }
      Eigen::VectorXd acc = Eigen::VectorXd::Zero(d);
      double z = 0.0;
      for (Index s = 0; s < window; ++s)
        if (keep(i, s)) {
          const double w = std::exp(
              scale * q.row(i).template cast<double>().dot(k.row(s).template cast<double>()) - mx);
          z += w;
          acc += w * v.row(s).template cast<double>().transpose();
        }
      acc /= z;
      const double tol = std::is_same<S, float>::value ? 1e-4 : 1e-10;
      for (Index j = 0; j < d; ++j)
        CHECK_THAT(static_cast<double>(out(i, j)), WithinAbs(acc[j], tol));
    }
  }
}
