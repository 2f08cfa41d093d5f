// Top-k block selection (MoBA, NSA's selected branch): 48 tokens in blocks of 6, each query block
// keeps 3 key blocks: its own, the first one (a sink, as NSA's initial block) and the best of the
// rest by MoBA's gate (mean query of the block . mean key of each earlier block). Prints the
// chosen blocks, the mask, how many kernel tiles (6 x 6, the blocks) are visited, and checks the
// tiled kernel against the same kernel on the materialized mask.
// ctest-pass: query block 7 keeps key blocks .0, [1-6], 7.
// ctest-pass: tiles visited: 21 of 64 \(13 full, 8 partial\)
// ctest-pass: max \|top-k mask - materialized mask\| = [0-9.e-]+ \(ok\)
#include <cmath>
#include <emask/emask.hpp>
#include <emask/kernels/attention.hpp>
#include <emask/masks/block_topk.hpp>
#include <iostream>

using emask::Index;
using mat = emask::row_matrix<float>;

int main() {
  const Index S = 48, D = 8, block = 6, top_k = 3;
  mat q(S, D), k(S, D), v(S, D);
  for (Index i = 0; i < S; ++i)
    for (Index j = 0; j < D; ++j) {
      const float x = static_cast<float>(i * D + j);
      q(i, j) = std::sin(0.37f * x);
      k(i, j) = std::cos(0.11f * x + 0.05f * static_cast<float>(i * i));
      v(i, j) = std::sin(0.05f * x + 1.f);
    }

  emask::block_topk_options opt;
  opt.n_sink_blocks = 1;  // block 0 is always kept; the own block is always kept
  const auto qv = emask::view_bhld<const float>(q.data(), 1, 1, S, D);
  const auto kv = emask::view_bhld<const float>(k.data(), 1, 1, S, D);
  const emask::block_topk sel = emask::block_topk::from_moba_gate(qv, kv, top_k, block, opt);

  for (Index i = 0; i < sel.q_blocks(); ++i) {
    std::cout << "query block " << i << " keeps key blocks {";
    for (Index j = 0; j < sel.chosen_count(i); ++j)
      std::cout << (j ? ", " : "") << sel.chosen_blocks(i)[j];
    std::cout << "}\n";
  }
  emask::render_options ro;
  ro.ascii = true;
  ro.tile_q = block;
  ro.tile_k = block;
  std::cout << emask::render(sel, S, S, ro);

  // The tiled kernel asks one tile question per (query tile, key tile) and skips the empty ones.
  const emask::block_mask tiles = emask::materialize_block_mask(sel, S, S, block, block);
  std::cout << "tiles visited: "
            << tiles.q_tiles() * tiles.k_tiles() - tiles.count(emask::tile_state::empty) << " of "
            << tiles.q_tiles() * tiles.k_tiles() << " (" << tiles.count(emask::tile_state::full)
            << " full, " << tiles.count(emask::tile_state::partial) << " partial)\n";

  emask::attention_options ao;
  ao.tile_q = block;
  ao.tile_k = block;
  mat out(S, D), ref(S, D);
  emask::masked_attention(q, k, v, sel, out, ao);
  const emask::bool_matrix keep = emask::materialize(sel, S, S);
  emask::masked_attention(q, k, v, emask::as_mask(keep), ref, ao);
  const float worst = (out - ref).cwiseAbs().maxCoeff();
  std::cout << "max |top-k mask - materialized mask| = " << worst
            << (worst <= 1e-6f ? " (ok)" : " (MISMATCH)") << "\n";
  return worst <= 1e-6f ? 0 : 1;
}
