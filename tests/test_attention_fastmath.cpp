// The attention kernels and the merge under -ffast-math semantics: fully masked rows stay zero
// with lse = -infinity and finite rows stay finite, because empty rows are decided from the
// mask, never from infinity arithmetic. With GCC the whole translation unit (including the
// emask headers) is compiled with fast-math through the optimize pragma; CI also builds the
// suite with -ffast-math where a preset asks for it.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fast-math")
#endif
#include <vector>

#include <emask/kernels/attention.hpp>
#include "kernel_variants.hpp"

#include "mask_testing.hpp"

TEST_CASE("masked_attention and merge: empty rows without infinity arithmetic", "[attention]") {
  using emask::Index;
  using emask::row_matrix;
  const Index L = 150, D = 32;
  emask_test::rng g(3);
  row_matrix<float> q(L, D), k(L, D), v(L, D);
  for (auto* m : {&q, &k, &v})
    for (Index i = 0; i < L; ++i)
      for (Index j = 0; j < D; ++j)
        (*m)(i, j) = static_cast<float>(static_cast<double>(g.next() >> 11) * 0x1.0p-53 * 2 - 1);
  // Rows 0 (strict causal) and 100.. (query padding) keep nothing.
  const auto mask = emask::query_padding::from_lengths({100}, L) & emask::causal().strict();
  for (auto variant : {emask_test::attention_variant::naive, emask_test::attention_variant::tiled,
                       emask_test::attention_variant::decode}) {
    emask_test::attention_options o;
    o.variant = variant;
    o.tile_q = 32;
    o.tile_k = 32;
    o.decode_chunk = 40;
    o.softcap = 4;
    row_matrix<float> out(L, D);
    emask::lse_vector<float> lse(L);
    emask_test::masked_attention(q, k, v, mask, out, lse, o);
    for (Index i : {Index(0), Index(100), Index(149)}) {
      CHECK(out.row(i).cwiseAbs().maxCoeff() == 0.f);
      CHECK(lse(i) < -1e30f);
    }
    for (Index i = 1; i < 100; ++i) {
      CHECK(out.row(i).cwiseAbs().maxCoeff() <= 1.f);  // a convex combination of values in [-1, 1]
      CHECK(lse(i) > -1e30f);
    }
    std::vector<row_matrix<float>> parts{out, out};
    std::vector<emask::lse_vector<float>> lses{lse, lse};
    row_matrix<float> merged(L, D);
    emask::lse_vector<float> merged_lse(L);
    emask::merge_attention(parts, lses, merged, merged_lse);
    CHECK((merged - out).cwiseAbs().maxCoeff() < 1e-5f);
    CHECK(merged_lse(0) < -1e30f);
    CHECK(merged.row(0).cwiseAbs().maxCoeff() == 0.f);
  }
}
