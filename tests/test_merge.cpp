// merge_attention / merge_attention_into: sharded keys merge into the unsharded result.
#include <cmath>
#include <limits>
#include <vector>

#include <emask/kernels/attention.hpp>
#include "kernel_variants.hpp"

#include "mask_testing.hpp"

namespace {
using emask::Index;
using emask::row_matrix;

}  // namespace

TEMPLATE_TEST_CASE("merge_attention: 1..8 key shards merge into the unsharded result", "[merge]",
                   float, double) {
  using S = TestType;
  const double tol = std::is_same<S, float>::value ? 3e-5 : 1e-12;
  emask_test::rng g(7);
  const Index Lq = 60, Lk = 203, D = 16, Dv = 9;
  const row_matrix<S> q = emask_test::uniform_matrix<S>(g, Lq, D, 2.0),
                      k = emask_test::uniform_matrix<S>(g, Lk, D, 2.0),
                      v = emask_test::uniform_matrix<S>(g, Lk, Dv, 2.0);
  // Bottom-right causal and a window: some shards see nothing for some rows (lse = -inf).
  const auto mask = emask::causal::bottom_right(Lq, Lk) & emask::sliding_window(40, 0, Lk - Lq);
  for (auto variant : {emask_test::attention_variant::naive, emask_test::attention_variant::tiled,
                       emask_test::attention_variant::decode}) {
    emask_test::attention_options o;
    o.variant = variant;
    o.tile_q = 16;
    o.tile_k = 16;
    row_matrix<S> full(Lq, Dv);
    emask::lse_vector<S> full_lse(Lq);
    emask_test::masked_attention(q, k, v, mask, full, full_lse, o);
    for (Index n = 1; n <= 8; ++n) {
      std::vector<row_matrix<S>> outs;
      std::vector<emask::lse_vector<S>> lses;
      for (Index s = 0; s < n; ++s) {
        const Index k0 = Lk * s / n, k1 = Lk * (s + 1) / n;
        row_matrix<S> o_s(Lq, Dv);
        emask::lse_vector<S> l_s(Lq);
        // The shard's mask is the global one seen from its key offset.
        emask_test::masked_attention(q, k.middleRows(k0, k1 - k0), v.middleRows(k0, k1 - k0),
                                     mask.offset(0, k0), o_s, l_s, o);
        // Same through options.k_offset with the global mask.
        emask_test::attention_options o2 = o;
        o2.k_offset = k0;
        row_matrix<S> o_t(Lq, Dv);
        emask::lse_vector<S> l_t(Lq);
        emask_test::masked_attention(q, k.middleRows(k0, k1 - k0), v.middleRows(k0, k1 - k0), mask,
                                     o_t, l_t, o2);
        CHECK((o_s.array() == o_t.array()).all());
        outs.push_back(o_s);
        lses.push_back(l_s);
      }
      row_matrix<S> merged(Lq, Dv);
      emask::lse_vector<S> merged_lse(Lq);
      emask::merge_attention(outs, lses, merged, merged_lse);
      INFO("shards " << n);
      if (n == 2) {
        // Braced lists of shards: the scalar comes from out, no template argument spelled out.
        row_matrix<S> braced(Lq, Dv);
        emask::lse_vector<S> braced_lse(Lq);
        emask::merge_attention({outs[0], outs[1]}, {lses[0], lses[1]}, braced, braced_lse);
        CHECK((braced.array() == merged.array()).all());
        CHECK((braced_lse.array() == merged_lse.array()).all());
      }
      CHECK((merged - full).cwiseAbs().maxCoeff() <= S(tol));
      CHECK((merged_lse - full_lse).cwiseAbs().maxCoeff() <= S(4 * tol * 10));
      // Folding in reverse order gives the same result up to rounding.
      row_matrix<S> acc = outs.back();
      emask::lse_vector<S> acc_lse = lses.back();
      for (Index s = n - 2; s >= 0; --s)
        emask::merge_attention_into(acc, acc_lse, outs[static_cast<std::size_t>(s)],
                                    lses[static_cast<std::size_t>(s)]);
      CHECK((acc - full).cwiseAbs().maxCoeff() <= S(tol));
    }
  }
}

TEST_CASE("merge_attention_into: empty rows, hand-checked values and bad shapes", "[merge]") {
  using Catch::Matchers::Contains;
  const double inf = std::numeric_limits<double>::infinity();
  row_matrix<double> a(3, 2), b(3, 2);
  a << 1, 2, 0, 0, 5, 5;
  b << 3, 4, 7, 8, 0, 0;
  emask::lse_vector<double> la(3), lb(3);
  la << std::log(1.0), -inf, std::log(2.0);
  lb << std::log(3.0), std::log(5.0), -inf;
  emask::merge_attention_into(a, la, b, lb);
  // Row 0: weights 1/4 and 3/4.
  CHECK_THAT(a(0, 0), WithinAbs(0.25 * 1 + 0.75 * 3, 1e-14));
  CHECK_THAT(a(0, 1), WithinAbs(0.25 * 2 + 0.75 * 4, 1e-14));
  CHECK_THAT(la(0), WithinAbs(std::log(4.0), 1e-14));
  // Row 1: the accumulator was empty, the part is taken as is.
  CHECK(a(1, 0) == 7);
  CHECK(a(1, 1) == 8);
  CHECK_THAT(la(1), WithinAbs(std::log(5.0), 1e-14));
  // Row 2: the part is empty, nothing changes.
  CHECK(a(2, 0) == 5);
  CHECK_THAT(la(2), WithinAbs(std::log(2.0), 1e-14));
  // Both empty: stays zero with -inf.
  row_matrix<double> z = row_matrix<double>::Zero(1, 2), z2 = row_matrix<double>::Zero(1, 2);
  emask::lse_vector<double> lz(1), lz2(1);
  lz << -inf;
  lz2 << -inf;
  emask::merge_attention_into(z, lz, z2, lz2);
  CHECK((z.array() == 0).all());
  CHECK(lz(0) < -1e300);

  row_matrix<double> bad(2, 2);
  emask::lse_vector<double> lbad(2);
  REQUIRE_THROWS_WITH(emask::merge_attention_into(a, la, bad, lb), Contains("'part_out'"));
  REQUIRE_THROWS_WITH(emask::merge_attention_into(a, la, b, lbad), Contains("'part_lse'"));
  REQUIRE_THROWS_WITH(emask::merge_attention_into(a, lbad, b, lb), Contains("'lse'"));
  std::vector<row_matrix<double>> none;
  std::vector<emask::lse_vector<double>> none_l;
  REQUIRE_THROWS_WITH(emask::merge_attention(none, none_l, a, la), Contains("'parts'"));
}
