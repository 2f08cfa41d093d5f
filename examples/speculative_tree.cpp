// Tree attention for speculative decoding (Medusa, EAGLE, SpecInfer): the draft model proposes
// a tree of candidate tokens after the committed ones, and the target model checks every branch
// in one pass. Each draft token attends to the committed prefix, its ancestors and itself.
// This program builds such a tree over a 12-token cache, prints its mask and position ids, runs
// masked_attention over prefix + draft with it (checked against a plain loop), and prints the
// packed forms FlashInfer (custom_mask, bits per byte) and TensorRT-LLM
// (spec_decoding_packed_mask, int32 words) take, then reads the tree back from the words.
// ctest-pass: position ids: 12 12 13 13 13 14 14 14 14 15
// ctest-pass: max \|tiled - plain loop\| = [0-9.e-]+ \(ok\)
// ctest-pass: FlashInfer custom mask, bit order little: 28 bytes
// ctest-pass: 2 requests: indptr 0 28 45
// ctest-pass: TensorRT-LLM spec_decoding_packed_mask, 1 word per row: 1 2 5 9 18 37 69 137 274 649
// ctest-pass: parents read back from the words: -1 -1 0 0 1 2 2 3 4 7 \(same\)
#include <cmath>
#include <cstdint>
#include <emask/emask.hpp>
#include <emask/masks/tree.hpp>
#include <emask/masks/tree_packing.hpp>
#include <iomanip>
#include <iostream>
#include <vector>

using emask::Index;
using mat = emask::row_matrix<float>;

int main() {
  const Index P = 12, D = 32;
  // Two candidates for the next token (roots 0 and 1), their continuations below them:
  //   prefix -> 0 -> 2 -> 5
  //                  2 -> 6
  //             0 -> 3 -> 7 -> 9
  //   prefix -> 1 -> 4 -> 8
  const std::vector<Index> parents = {-1, -1, 0, 0, 1, 2, 2, 3, 4, 7};
  const emask::tree_mask tree(parents, P);
  const Index T = tree.draft_length();

  std::cout << "draft block of the mask (row i: draft token i; the " << P
            << " prefix keys are kept by every row):\n"
            << emask::render(tree.offset(0, P), T, T);
  std::cout << "position ids:";
  for (const Index p : tree.positions()) std::cout << " " << p;
  std::cout << "\n";

  // Queries are the T draft tokens; keys and values are the prefix cache, then the draft.
  mat q(T, D), k(P + T, D), v(P + T, D);
  for (Index i = 0; i < q.size(); ++i) q.data()[i] = std::sin(0.37f * static_cast<float>(i));
  for (Index i = 0; i < k.size(); ++i) k.data()[i] = std::cos(0.11f * static_cast<float>(i));
  for (Index i = 0; i < v.size(); ++i) v.data()[i] = std::sin(0.05f * static_cast<float>(i) + 1.f);
  mat out(T, D);
  emask::masked_attention(q, k, v, tree, out);

  // The plain loop: softmax over the keys the tree keeps, in double.
  float worst = 0;
  for (Index i = 0; i < T; ++i) {
    std::vector<double> score(static_cast<std::size_t>(P + T), 0.0);
    double mx = -1e300, sum = 0;
    for (Index j = 0; j < P + T; ++j)
      if (tree.keep(0, 0, i, j)) {
        score[static_cast<std::size_t>(j)] =
            q.row(i).cast<double>().dot(k.row(j).cast<double>()) / std::sqrt(double(D));
        mx = std::max(mx, score[static_cast<std::size_t>(j)]);
      }
    Eigen::RowVectorXd want = Eigen::RowVectorXd::Zero(D);
    for (Index j = 0; j < P + T; ++j)
      if (tree.keep(0, 0, i, j)) {
        const double w = std::exp(score[static_cast<std::size_t>(j)] - mx);
        sum += w;
        want += w * v.row(j).cast<double>();
      }
    want /= sum;
    worst = std::max(worst, (out.row(i).cast<double>() - want).cwiseAbs().cast<float>().maxCoeff());
  }
  const bool ok = worst <= 1e-5f;
  std::cout << "max |tiled - plain loop| = " << worst << (ok ? " (ok)" : " (MISMATCH)") << "\n";

  // FlashInfer: the T x (P + T) mask flattened row by row, 8 bits per byte, least significant
  // bit first (what BatchPrefillWithPagedKVCacheWrapper.plan(custom_mask=...) packs).
  const std::vector<std::uint8_t> bytes = emask::packbits(tree, T, P + T, emask::bit_order::little);
  std::cout << "FlashInfer custom mask, bit order little: " << bytes.size() << " bytes:" << std::hex
            << std::setfill('0');
  for (const std::uint8_t b : bytes) std::cout << " " << std::setw(2) << int(b);
  std::cout << std::dec << std::setfill(' ') << "\n";
  // A batch: this tree and a chain of 4 drafts over 30 tokens, one byte-aligned segment each.
  const emask::packed_segments batch = emask::segment_packbits(
      std::vector<emask::tree_mask>{tree, emask::tree_mask({-1, 0, 1, 2}, 30)},
      emask::bit_order::little);
  std::cout << "2 requests: indptr";
  for (const Index p : batch.indptr) std::cout << " " << p;
  std::cout << " (byte offsets of each request's segment)\n";

  // TensorRT-LLM: one row of ceil(T / 32) int32 words per draft token, bit j = draft token j.
  const std::vector<std::int32_t> words = emask::pack_spec_decoding_mask(tree);
  std::cout << "TensorRT-LLM spec_decoding_packed_mask, 1 word per row:";
  for (const std::int32_t w : words) std::cout << " " << w;
  std::cout << "\n";
  const emask::tree_mask back = emask::tree_mask::from_ancestor_matrix(
      emask::unpack_spec_decoding_mask(words.data(), T, 1, T), P);
  const bool same = back.parents() == parents;
  std::cout << "parents read back from the words:";
  for (const Index p : back.parents()) std::cout << " " << p;
  std::cout << (same ? " (same)" : " (DIFFERENT)") << "\n";
  return ok && same ? 0 : 1;
}
