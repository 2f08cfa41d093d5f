// Hand a mask to a block-sparse GPU kernel: the lists of PyTorch FlexAttention's BlockMask
// (also FlashAttention-4's block-sparse tensors) and BSR indptr / indices for a document-causal
// mask, the BlockMask-style printout, and the lists read back as a mask with the same keeps.
// ctest-pass: BlockMask\(shape=\(1, 1, 1024, 1024\), block=\(128, 128\), sparsity=
// ctest-pass: kv_num_blocks = \[1, 1, 1\]
// ctest-pass: full_kv_num_blocks = \[0, 1, 0\]
// ctest-pass: indptr = \[0, 1, 3, 4\]
// ctest-pass: read back with the mask as mask_mod: same keeps: yes
#include <cstdint>
#include <emask/core/block_sparse.hpp>
#include <emask/emask.hpp>
#include <emask/masks/block_sparse_mask.hpp>
#include <iostream>
#include <vector>

using emask::Index;

namespace {
void print(const char* name, const std::vector<std::int32_t>& v) {
  std::cout << name << " = [";
  for (std::size_t i = 0; i < v.size(); ++i) std::cout << (i ? ", " : "") << v[i];
  std::cout << "]\n";
}
}  // namespace

int main() {
  // Three packed documents, causal inside each, FlexAttention's default 128 x 128 blocks.
  const auto docs = emask::document::from_cu_seqlens({0, 300, 700, 1024}) & emask::causal();
  const emask::flex_block_mask big = emask::to_flex_block_mask(docs, 1024, 1024);
  std::cout << big << "\n\n";

  // A small one whose lists fit on a line: 10 tokens in blocks of 4 (the last block is short,
  // so never full, as in FlexAttention). Shapes [B, H, Q] and [B, H, Q, KV] = [1, 1, 3, 3].
  const auto small = emask::document::from_cu_seqlens({0, 8, 10}) & emask::causal();
  const emask::flex_block_mask f = emask::to_flex_block_mask(small, 10, 10, {}, 4, 4);
  emask::block_string_options ascii;
  ascii.ascii = true;
  std::cout << emask::to_string(f, ascii) << "\n";
  print("kv_num_blocks", f.kv_num_blocks);
  print("kv_indices", f.kv_indices);
  print("full_kv_num_blocks", f.full_kv_num_blocks);
  print("full_kv_indices", f.full_kv_indices);
  print("q_num_blocks", f.q_num_blocks);
  print("q_indices", f.q_indices);
  std::cout << "# torch: BlockMask.from_kv_blocks(kv_num_blocks.view(1, 1, 3), "
               "kv_indices.view(1, 1, 3, 3), full_kv_num_blocks.view(1, 1, 3), "
               "full_kv_indices.view(1, 1, 3, 3), BLOCK_SIZE=(4, 4), mask_mod=..., "
               "seq_lengths=(10, 10))\n";

  const emask::bsr_block_sparse s = emask::to_bsr_block_sparse(small, 10, 10, {}, 4, 4);
  print("indptr", s.indptr);
  print("indices", s.indices);
  std::cout << "block_full = [";
  for (std::size_t i = 0; i < s.block_full.size(); ++i)
    std::cout << (i ? ", " : "") << int(s.block_full[i]);
  std::cout << "]\n";

  // Read back: with the mask as mask_mod the keeps are the mask's; without one, each listed
  // block is kept whole.
  const auto exact = emask::from_flex_block_mask(f, small);
  const auto whole = emask::from_bsr_block_sparse(s);
  const bool same = (emask::materialize(exact, 10, 10) == emask::materialize(small, 10, 10)).all();
  std::cout << "read back with the mask as mask_mod: same keeps: " << (same ? "yes" : "no") << "\n";
  std::cout << "read back without mask_mod (listed blocks kept whole):\n"
            << emask::render(whole, 10, 10, {0, 0, true, false, false, 4, 4}) << "\n";
  return same ? 0 : 1;
}
