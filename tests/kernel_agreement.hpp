// End-to-end check of a mask's tile answers: every attention variant and masked_softmax given
// the mask must match the same kernel given its materialized keep-matrix (which the kernels
// read entry by entry), so a tile wrongly called full or empty shows up as a wrong output.
#pragma once

#include "catch.hpp"
#include "kernel_variants.hpp"
#include "mask_testing.hpp"

namespace emask_test {

/// Runs the comparison on [lq, lk] (head dimension d, tile sizes tile x tile) for \p mask as
/// the kernels see it (the options' offsets are zero: shift the mask with offset() first).
template <class Mask>
void check_kernels_match_materialized(const Mask& mask, Index lq, Index lk, Index d, rng& r,
                                      Index tile = 16) {
  using emask::row_matrix;
  const emask::bool_matrix keep = emask::materialize(mask, lq, lk);
  const row_matrix<float> q = uniform_matrix<float>(r, lq, d), k = uniform_matrix<float>(r, lk, d),
                          v = uniform_matrix<float>(r, lk, d);
  for (auto variant :
       {attention_variant::tiled, attention_variant::decode, attention_variant::naive}) {
    attention_options o;
    o.variant = variant;
    o.tile_q = tile;
    o.tile_k = tile;
    row_matrix<float> want(lq, d), got(lq, d);
    masked_attention(q, k, v, emask::as_mask(keep), want, o);
    masked_attention(q, k, v, mask, got, o);
    INFO("attention variant " << static_cast<int>(variant) << " lq " << lq << " lk " << lk);
    REQUIRE((got - want).cwiseAbs().maxCoeff() <= 1e-5f);
  }
  const row_matrix<float> x = uniform_matrix<float>(r, lq, lk);
  for (auto variant : {softmax_variant::tiled, softmax_variant::fused, softmax_variant::naive}) {
    softmax_options o;
    o.variant = variant;
    o.tile_q = tile;
    o.tile_k = tile;
    row_matrix<float> want(lq, lk), got(lq, lk);
    masked_softmax(x, keep, want, o);
    masked_softmax(x, mask, got, o);
    INFO("softmax variant " << static_cast<int>(variant));
    REQUIRE((got - want).cwiseAbs().maxCoeff() <= 1e-6f);
    REQUIRE((keep.array() || got.array() == 0.0f).all());  // dropped entries exactly zero
  }
}

}  // namespace emask_test
