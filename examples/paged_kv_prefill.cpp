// Chunked prefill over a paged bfloat16 KV cache: three sequences already hold some tokens in
// pages of 16 (scattered over a pool, found through a block table); a chunk of 24 new tokens per
// sequence has just been written into their pages, and those 24 queries attend to everything
// their sequence holds, cached and new, bottom-right causal, in one masked_attention_prefill
// call. The result is compared with masked_attention on float copies of the same bfloat16 keys
// and values. On a build with AVX512-BF16 (-march=native on Zen 4/5, Sapphire Rapids) the
// products run in bfloat16 (vdpbf16ps), so the two differ by bfloat16 rounding of Q and the
// probabilities; otherwise the cache is converted to float a tile at a time and they are equal.
// ctest-pass: path: .*
// ctest-pass: max \|paged bf16 prefill - float attention on the same values\| = [0-9.e-]+ .*PASS
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include <emask/kernels/attention.hpp>
#include <emask/kernels/kv_prefill.hpp>
#include <emask/masks/causal.hpp>

using emask::Index;

int main() {
  const Index H = 4, Hkv = 2, D = 64, P = 16, chunk = 24;  // 4 query heads share 2 KV heads
  const std::vector<std::int32_t> lengths = {24 + 40, 24, 24 + 77};  // cached + new tokens
  const Index B = static_cast<Index>(lengths.size());
  const Index max_pages = 8, num_pages = 24;

  // Logical page p of sequence b lives in physical page table[b][p], handed out backwards.
  std::vector<std::int32_t> table(static_cast<std::size_t>(B * max_pages), 0);
  std::int32_t next = static_cast<std::int32_t>(num_pages);
  for (Index b = 0; b < B; ++b)
    for (Index p = 0; p < (lengths[static_cast<std::size_t>(b)] + P - 1) / P; ++p)
      table[static_cast<std::size_t>(b * max_pages + p)] = --next;
  const std::size_t pool = static_cast<std::size_t>(num_pages * Hkv * P * D);
  std::vector<Eigen::bfloat16> k_pages(pool), v_pages(pool);
  const emask::paged_kv_view<Eigen::bfloat16> cache(k_pages.data(), v_pages.data(), num_pages, P,
                                                    Hkv, D, emask::kv_page_layout::hnd,
                                                    table.data(), B, max_pages, lengths.data());

  // Fill the cache (in an engine: the K and V projections of each token), and keep float copies
  // of the stored values, [B, Hkv, L, D], for the comparison.
  const Index L = *std::max_element(lengths.begin(), lengths.end());
  std::vector<float> k_ref(static_cast<std::size_t>(B * Hkv * L * D), 0.0f), v_ref(k_ref.size());
  std::uint32_t s = 1;
  auto uniform = [&s] {
    s = s * 1664525u + 1013904223u;
    return static_cast<float>(s >> 8) / 16777216.0f * 2.0f - 1.0f;
  };
  for (Index b = 0; b < B; ++b)
    for (Index g = 0; g < Hkv; ++g)
      for (Index t = 0; t < lengths[static_cast<std::size_t>(b)]; ++t) {
        const Index page = table[static_cast<std::size_t>(b * max_pages + t / P)];
        const Index at = cache.offset(page, g, t % P);
        for (Index c = 0; c < D; ++c) {
          k_pages[static_cast<std::size_t>(at + c)] = Eigen::bfloat16(uniform());
          v_pages[static_cast<std::size_t>(at + c)] = Eigen::bfloat16(uniform());
          const std::size_t r = static_cast<std::size_t>(((b * Hkv + g) * L + t) * D + c);
          k_ref[r] = static_cast<float>(k_pages[static_cast<std::size_t>(at + c)]);
          v_ref[r] = static_cast<float>(v_pages[static_cast<std::size_t>(at + c)]);
        }
      }
  std::vector<float> q(static_cast<std::size_t>(B * H * chunk * D));
  for (float& x : q) x = uniform();
  std::vector<float> out(q.size());
  emask::masked_attention_prefill(emask::view_bhld<const float>(q.data(), B, H, chunk, D), cache,
                                  emask::causal(), emask::view_bhld(out.data(), B, H, chunk, D));

  // The same with masked_attention per sequence: query i at position length - chunk + i.
  double worst = 0;
  for (Index b = 0; b < B; ++b) {
    const Index n = lengths[static_cast<std::size_t>(b)];
    emask::attention_options opt;
    opt.q_offset = n - chunk;
    for (Index h = 0; h < H; ++h) {
      const Index g = h / (H / Hkv);
      using cmap = Eigen::Map<const emask::row_matrix<float>>;
      const cmap qh(q.data() + (b * H + h) * chunk * D, chunk, D);
      const cmap kh(k_ref.data() + (b * Hkv + g) * L * D, n, D);
      const cmap vh(v_ref.data() + (b * Hkv + g) * L * D, n, D);
      emask::row_matrix<float> ref(chunk, D);
      emask::masked_attention(qh, kh, vh, emask::causal(), ref, opt);
      const cmap got(out.data() + (b * H + h) * chunk * D, chunk, D);
      worst = std::max(worst, static_cast<double>((got - ref).cwiseAbs().maxCoeff()));
    }
  }
  std::printf("path: %s\n", emask::kv_prefill_bf16_products
                                ? "bfloat16 products (AVX512-BF16)"
                                : "keys and values converted to float a tile at a time");
  // bfloat16 products: Q and P rounded to 8 significant bits; values here are within [-1, 1].
  const bool pass = worst < 2e-2;
  std::printf("max |paged bf16 prefill - float attention on the same values| = %.3g %s\n", worst,
              pass ? "PASS" : "FAIL");
  return pass ? 0 : 1;
}
