// A decoder's KV-cache loop: one token at a time, the new query attends to the whole cache with
// a bottom-right aligned causal mask (the last query sees every key), using the decode variant.
// The outputs equal a full causal recompute over the whole sequence (the tiled variant), which
// itself equals the plain reference (emask::reference::naive, from emask/reference/). Last, the
// final step again with the cache split in two shards (as two devices or ranks would hold it),
// every head of each shard attended separately and the partials merged (batched merge).
// ctest-pass: max \|decode loop - full causal recompute\| = [0-9.e-]+ \(ok\)
// ctest-pass: max \|two cache shards merged - last step\| = [0-9.e-]+ \(ok\)
#include <cmath>
#include <emask/emask.hpp>
#include <emask/kernels/attention.hpp>
#include <emask/reference/attention.hpp>
#include <iostream>
#include <vector>

using emask::Index;
using mat = emask::row_matrix<float>;

int main() {
  const Index H = 2, D = 16, T = 40;
  // Projected q, k, v of every token, [T, H*D]; a real decoder computes row t at step t.
  mat q(T, H * D), k(T, H * D), v(T, H * D);
  for (Index t = 0; t < T; ++t)
    for (Index c = 0; c < H * D; ++c) {
      const float x = static_cast<float>(t * H * D + c);
      q(t, c) = std::sin(0.13f * x);
      k(t, c) = std::cos(0.07f * x + 1.f);
      v(t, c) = std::sin(0.05f * x + 2.f);
    }

  // The cache holds [H, T, D] (room for T tokens); step t views its first t + 1 rows.
  mat k_cache = mat::Zero(H * T, D), v_cache = mat::Zero(H * T, D);
  mat decoded(T, H * D);
  emask::attention_options decode;
  decode.decode_chunk = 16;
  for (Index t = 0; t < T; ++t) {
    for (Index h = 0; h < H; ++h) {
      k_cache.row(h * T + t) = k.row(t).segment(h * D, D);
      v_cache.row(h * T + t) = v.row(t).segment(h * D, D);
    }
    const Index n = t + 1;
    const emask::tensor_view<const float> kv_k(k_cache.data(), 1, H, n, D, H * T * D, T * D, D);
    const emask::tensor_view<const float> kv_v(v_cache.data(), 1, H, n, D, H * T * D, T * D, D);
    emask::masked_attention(emask::decode, emask::view_blhd(q.row(t).data(), 1, 1, H, D), kv_k,
                            kv_v, emask::causal::bottom_right(1, n),
                            emask::view_blhd(decoded.row(t).data(), 1, 1, H, D), decode);
  }

  // Full recompute: T queries over T keys, top-left causal (Lq == Lk, both alignments agree).
  mat full(T, H * D);
  emask::masked_attention(emask::view_blhd(q.data(), 1, T, H, D),
                          emask::view_blhd(k.data(), 1, T, H, D),
                          emask::view_blhd(v.data(), 1, T, H, D), emask::causal(),
                          emask::view_blhd(full.data(), 1, T, H, D));
  // The same recompute with the plain reference: scores materialized, masked, softmax, times V.
  mat naive(T, H * D);
  emask::masked_attention(emask::reference::naive, emask::view_blhd(q.data(), 1, T, H, D),
                          emask::view_blhd(k.data(), 1, T, H, D),
                          emask::view_blhd(v.data(), 1, T, H, D), emask::causal(),
                          emask::view_blhd(naive.data(), 1, T, H, D));
  const double worst = static_cast<double>((decoded - full).cwiseAbs().maxCoeff());
  const double tiled_vs_naive = static_cast<double>((full - naive).cwiseAbs().maxCoeff());
  std::cout << "decoded " << T << " tokens, " << H << " heads of " << D
            << ", one query per step over a growing cache\n";
  std::cout << "step 0 sees 1 key; step " << T - 1 << " sees " << T
            << " keys (causal::bottom_right(1, n))\n";
  std::cout << "max |decode loop - full causal recompute| = " << worst
            << (worst < 1e-5 ? " (ok)" : " (MISMATCH)") << "\n";
  std::cout << "max |tiled recompute - reference::naive| = " << tiled_vs_naive << "\n";

  // The last step with the cache in two shards, keys [0, 25) and [25, T): each shard's output
  // and log-sum-exp per head, the mask asked at the shard's key offset, then one merge.
  const Index cut = 25;
  std::vector<emask::row_matrix<float>> lses(2, emask::row_matrix<float>(H, 1));
  std::vector<mat> outs(2, mat(1, H * D));
  std::vector<emask::tensor_view<const float>> parts;
  for (Index s = 0; s < 2; ++s) {
    const Index k0 = s == 0 ? 0 : cut, n = s == 0 ? cut : T - cut;
    const emask::tensor_view<const float> sk(k_cache.data() + k0 * D, 1, H, n, D, H * T * D, T * D,
                                             D);
    const emask::tensor_view<const float> sv(v_cache.data() + k0 * D, 1, H, n, D, H * T * D, T * D,
                                             D);
    emask::attention_options shard = decode;
    shard.k_offset = k0;
    emask::masked_attention(emask::decode, emask::view_blhd(q.row(T - 1).data(), 1, 1, H, D), sk,
                            sv, emask::causal::bottom_right(1, T),
                            emask::view_blhd(outs[static_cast<std::size_t>(s)].data(), 1, 1, H, D),
                            lses[static_cast<std::size_t>(s)], shard);
    parts.push_back(
        emask::view_blhd<const float>(outs[static_cast<std::size_t>(s)].data(), 1, 1, H, D));
  }
  mat merged(1, H * D);
  emask::row_matrix<float> merged_lse(H, 1);
  emask::merge_attention(parts, lses, emask::view_blhd(merged.data(), 1, 1, H, D), merged_lse);
  const double shard_err =
      static_cast<double>((merged.row(0) - decoded.row(T - 1)).cwiseAbs().maxCoeff());
  std::cout << "max |two cache shards merged - last step| = " << shard_err
            << (shard_err < 1e-5 ? " (ok)" : " (MISMATCH)") << "\n";
  return worst < 1e-5 && tiled_vs_naive < 1e-5 && shard_err < 1e-5 ? 0 : 1;
}
