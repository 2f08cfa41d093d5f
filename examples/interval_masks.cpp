// Interval masks: a reward-model batch packed as one question and two answers, written the way
// PaddlePaddle's flashmask_attention takes it (startend_row_indices, one masked row interval per
// key column), converted to the row form (a few key intervals per query row), and run through
// the tiled kernel. Both forms take O(length) memory, answer tiles exactly, and give the same
// attention as the dense keep-mask.
// ctest-pass: row 10 keeps 2 runs: .0, 4\) .8, 11\)
// ctest-pass: max \|column form - dense\| = [0-9.e-]+ \(ok\)
// ctest-pass: max \|row form - dense\| = [0-9.e-]+ \(ok\)
#include <cmath>
#include <cstdint>
#include <emask/emask.hpp>
#include <emask/kernels/attention.hpp>
#include <emask/masks/interval_union.hpp>
#include <iostream>
#include <vector>

using emask::Index;
using mat = emask::row_matrix<float>;

int main() {
  // Question [0, 4), answer A [4, 8), answer B [8, 12), causal. Answer B must not see answer A:
  // key columns 4..7 are masked for rows [8, 12) (LTS, LTE); the other columns never are.
  const Index L = 12;
  std::vector<std::int32_t> startend;  // [batch 1, heads 1, L keys, 2 columns]
  for (Index j = 0; j < L; ++j) {
    const bool in_a = j >= 4 && j < 8;
    startend.push_back(in_a ? 8 : 12);
    startend.push_back(12);
  }
  const auto columns = emask::column_interval_mask::from_flashmask(startend.data(), 1, 1, L, 2, L,
                                                                   /*causal=*/true);
  std::cout << "column form (Paddle startend_row_indices, causal, 2 columns):\n"
            << emask::render(columns, L, L, {0, 0, true, true, false});

  // The same mask as key intervals per query row.
  const emask::interval_union_mask rows = emask::to_interval_union(columns, L, L);
  const Index q = 10;
  std::cout << "row " << q << " keeps " << rows.runs(q) << " runs:";
  for (Index i = 0; i < rows.runs(q); ++i)
    std::cout << " [" << rows.run(q, i).begin << ", " << rows.run(q, i).end << ")";
  std::cout << "\n";

  // A longer packed batch: 4 questions of 64 tokens, each with two answers of 96, in tiles of
  // 32; built in the row form from a document-style description, then the column form from it.
  const Index groups = 4, Lquest = 64, La = 96, G = Lquest + 2 * La, S = groups * G, D = 32;
  std::vector<Index> starts, ends;  // up to 2 intervals per row
  for (Index g = 0; g < groups; ++g)
    for (Index i = 0; i < G; ++i) {
      const Index base = g * G, p = base + i;
      if (i < Lquest + La) {  // question or answer A: causal inside the group
        starts.insert(starts.end(), {base, p + 1});
        ends.insert(ends.end(), {p + 1, p + 1});  // second slot empty
      } else {                                    // answer B: the question, then itself
        starts.insert(starts.end(), {base, base + Lquest + La});
        ends.insert(ends.end(), {base + Lquest, p + 1});
      }
    }
  const emask::interval_union_mask packed(starts, ends, S, S, 2);
  const emask::column_interval_mask packed_cols = emask::to_column_intervals(packed, S, S);
  std::cout << "packed: " << S << " tokens; row form " << packed.memory_bytes()
            << " bytes, column form " << packed_cols.memory_bytes() << " bytes, dense " << S * S
            << " bytes\n";

  mat Q(S, D), K(S, D), V(S, D);
  for (Index i = 0; i < S; ++i)
    for (Index j = 0; j < D; ++j) {
      const float x = static_cast<float>(i * D + j);
      Q(i, j) = std::sin(0.011f * x);
      K(i, j) = std::cos(0.017f * x);
      V(i, j) = std::sin(0.023f * x + 1.f);
    }
  emask::attention_options opt;
  opt.tile_q = 32;
  opt.tile_k = 32;
  const emask::bool_matrix dense = emask::materialize(packed, S, S);
  mat want(S, D), from_cols(S, D), from_rows(S, D);
  emask::masked_attention(Q, K, V, emask::as_mask(dense), want, opt);
  emask::masked_attention(Q, K, V, packed_cols, from_cols, opt);
  emask::masked_attention(Q, K, V, packed, from_rows, opt);
  const emask::block_mask bm = emask::materialize_block_mask(packed, S, S, 32, 32);
  const Index tiles = bm.q_tiles() * bm.k_tiles();
  std::cout << "tiles of 32: " << tiles - bm.count(emask::tile_state::empty) << " of " << tiles
            << " visited (" << bm.count(emask::tile_state::full) << " full, "
            << bm.count(emask::tile_state::partial) << " partial)\n";
  const double dc = static_cast<double>((from_cols - want).cwiseAbs().maxCoeff());
  const double dr = static_cast<double>((from_rows - want).cwiseAbs().maxCoeff());
  std::cout << "max |column form - dense| = " << dc << (dc < 1e-6 ? " (ok)" : " (MISMATCH)")
            << "\n";
  std::cout << "max |row form - dense| = " << dr << (dr < 1e-6 ? " (ok)" : " (MISMATCH)") << "\n";
  return dc < 1e-6 && dr < 1e-6 ? 0 : 1;
}
