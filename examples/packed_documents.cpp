// Attention over packed documents: several sequences concatenated into one row, separated by a
// document mask (cu_seqlens, FlashAttention's varlen layout) composed with causal. The tiled
// kernel skips every tile that crosses two documents; the result equals attending to each
// document on its own.
// ctest-pass: tiles visited [0-9]+ of [0-9]+
// ctest-pass: max \|packed - each document alone\| = [0-9.e-]+ \(ok\)
#include <cmath>
#include <emask/emask.hpp>
#include <emask/kernels/attention.hpp>
#include <iostream>
#include <vector>

using emask::Index;
using mat = emask::row_matrix<float>;

int main() {
  const std::vector<Index> cu = {0, 37, 60, 128, 150};
  const Index S = cu.back(), D = 32, tile = 32;
  mat q(S, D), k(S, D), v(S, D);
  for (Index i = 0; i < S; ++i)
    for (Index j = 0; j < D; ++j) {
      const float x = static_cast<float>(i * D + j);
      q(i, j) = std::sin(0.011f * x);
      k(i, j) = std::cos(0.017f * x);
      v(i, j) = std::sin(0.023f * x + 1.f);
    }
  const auto mask = emask::document::from_cu_seqlens(cu) & emask::causal();
  emask::attention_options opt;
  opt.tile_q = tile;
  opt.tile_k = tile;
  mat packed(S, D);
  emask::masked_attention(q, k, v, mask, packed, opt);

  double worst = 0;
  for (std::size_t d = 0; d + 1 < cu.size(); ++d) {
    const Index b = cu[d], n = cu[d + 1] - cu[d];
    mat alone(n, D);
    emask::masked_attention(q.middleRows(b, n), k.middleRows(b, n), v.middleRows(b, n),
                            emask::causal(), alone);
    worst = std::max(worst,
                     static_cast<double>((alone - packed.middleRows(b, n)).cwiseAbs().maxCoeff()));
  }
  const emask::block_mask bm = emask::materialize_block_mask(mask, S, S, tile, tile);
  const Index tiles = bm.q_tiles() * bm.k_tiles(),
              visited = tiles - bm.count(emask::tile_state::empty);
  std::cout << "positions 30..49 (documents of 37, 23, 68 and 22 tokens; the first ends at 37):\n"
            << emask::render(mask.offset(30, 30), 20, 20, {0, 0, true, false, false});
  std::cout << "tiles visited " << visited << " of " << tiles << " ("
            << bm.count(emask::tile_state::full) << " full, no mask test; "
            << bm.count(emask::tile_state::partial) << " partial)\n";
  std::cout << "max |packed - each document alone| = " << worst
            << (worst < 1e-5 ? " (ok)" : " (MISMATCH)") << "\n";
  // The block mask is itself a mask: hand it to the kernel instead of the expression (build it
  // once, reuse it for every layer and head); the result is the same.
  mat from_blocks(S, D);
  emask::masked_attention(q, k, v, bm, from_blocks, opt);
  const double diff = static_cast<double>((from_blocks - packed).cwiseAbs().maxCoeff());
  std::cout << "block mask (" << bm.memory_bytes() << " bytes) as the kernel's mask: max diff "
            << diff << (diff < 1e-6 ? " (ok)" : " (MISMATCH)") << "\n";
  return worst < 1e-5 && diff < 1e-6 ? 0 : 1;
}
