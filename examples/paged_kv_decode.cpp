// One decode step of a serving engine: four sequences of different lengths (one of them empty)
// share a bfloat16 KV cache cut into pages of 16 tokens, scattered over a page pool and found
// through a block table, as vLLM's PagedAttention stores them. Each sequence's newest token
// attends to its own cache (causal: the query is the last position) with grouped-query heads,
// in one masked_attention_decode call. The result is compared with float attention over the
// same bfloat16-rounded keys and values (they agree to float rounding), and with float keys and
// values that were never rounded (the difference bfloat16 storage makes).
// ctest-pass: max \|paged bf16 decode - float attention on the rounded cache\| = [0-9.e-]+
// ctest-pass: PASS
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <emask/emask.hpp>
#include <emask/kernels/attention.hpp>
#include <emask/kernels/kv_cache.hpp>
#include <iostream>
#include <vector>

using emask::Index;

int main() {
  const Index H = 8, Hkv = 2, D = 64, P = 16;  // 8 query heads share 2 KV heads
  const std::vector<std::int32_t> lengths = {37, 5, 0, 120};
  const Index B = static_cast<Index>(lengths.size());

  // The page pool ([page, head, token in page, feature]) and the block table: logical page p of
  // sequence b lives in physical page table[b][p]; pages are handed out in a shuffled order.
  const Index max_pages = 8, num_pages = 16;
  std::vector<std::int32_t> table(static_cast<std::size_t>(B * max_pages), 0);
  const std::int32_t order[] = {11, 3, 14, 0, 7, 9, 2, 12, 5, 15, 1, 8, 13, 4, 6, 10};
  Index next = 0;
  for (Index b = 0; b < B; ++b)
    for (Index p = 0; p < (lengths[static_cast<std::size_t>(b)] + P - 1) / P; ++p)
      table[static_cast<std::size_t>(b * max_pages + p)] = order[next++];
  const std::size_t pool = static_cast<std::size_t>(num_pages * Hkv * P * D);
  std::vector<Eigen::bfloat16> k_pages(pool), v_pages(pool);
  const emask::paged_kv_view<Eigen::bfloat16> cache(k_pages.data(), v_pages.data(), num_pages, P,
                                                    Hkv, D, emask::kv_page_layout::hnd,
                                                    table.data(), B, max_pages, lengths.data());

  // Every token's keys and values as float (what the model computed), written into the pages
  // in bfloat16, and kept as float rows [b][head][token] for the references.
  const Index cap = 120;
  std::vector<float> k_f(static_cast<std::size_t>(B * Hkv * cap * D)), v_f(k_f.size());
  for (Index b = 0; b < B; ++b)
    for (Index g = 0; g < Hkv; ++g)
      for (Index t = 0; t < lengths[static_cast<std::size_t>(b)]; ++t) {
        float* kr = k_f.data() + ((b * Hkv + g) * cap + t) * D;
        float* vr = v_f.data() + ((b * Hkv + g) * cap + t) * D;
        for (Index x = 0; x < D; ++x) {
          kr[x] = std::sin(0.37f * static_cast<float>(x + 3 * t + 7 * g + 11 * b));
          vr[x] = std::cos(0.21f * static_cast<float>(2 * x + t + 5 * g + 3 * b));
        }
        const Index page = table[static_cast<std::size_t>(b * max_pages + t / P)];
        emask::kv_convert(kr, D, k_pages.data() + cache.offset(page, g, t % P));
        emask::kv_convert(vr, D, v_pages.data() + cache.offset(page, g, t % P));
      }

  // The newest token's query of every sequence: q [B, H, 1, D]; one call for the whole batch.
  std::vector<float> q(static_cast<std::size_t>(B * H * D)), out(q.size());
  for (std::size_t i = 0; i < q.size(); ++i) q[i] = std::sin(0.05f * static_cast<float>(i));
  emask::masked_attention_decode(emask::view_bhld<const float>(q.data(), B, H, 1, D), cache,
                                 emask::causal(), emask::view_bhld(out.data(), B, H, 1, D));

  // References per sequence: float attention (the decode variant of masked_attention) over the
  // sequence's rows, once with the bfloat16-rounded values and once with the original floats.
  double vs_rounded = 0, vs_float = 0;
  bool empty_is_zero = true;
  for (Index b = 0; b < B; ++b) {
    const Index n = lengths[static_cast<std::size_t>(b)];
    const float* got = out.data() + b * H * D;
    if (n == 0) {
      empty_is_zero = std::all_of(got, got + H * D, [](float x) { return x == 0.f; });
      continue;
    }
    std::vector<float> ref(static_cast<std::size_t>(H * D));
    for (int pass = 0; pass < 2; ++pass) {
      std::vector<float> ks = k_f, vs = v_f;
      if (pass == 0) {  // round to bfloat16 and back: the values the cache holds
        std::vector<Eigen::bfloat16> tmp(ks.size());
        emask::kv_convert(ks.data(), static_cast<Index>(ks.size()), tmp.data());
        emask::kv_convert(tmp.data(), static_cast<Index>(ks.size()), ks.data());
        emask::kv_convert(vs.data(), static_cast<Index>(vs.size()), tmp.data());
        emask::kv_convert(tmp.data(), static_cast<Index>(vs.size()), vs.data());
      }
      const Index off = b * Hkv * cap * D;
      emask::masked_attention(
          emask::decode, emask::view_bhld<const float>(q.data() + b * H * D, 1, H, 1, D),
          emask::tensor_view<const float>(ks.data() + off, 1, Hkv, n, D, 0, cap * D, D),
          emask::tensor_view<const float>(vs.data() + off, 1, Hkv, n, D, 0, cap * D, D),
          emask::causal::bottom_right(1, n), emask::view_bhld(ref.data(), 1, H, 1, D));
      double worst = 0;
      for (Index i = 0; i < H * D; ++i)
        worst = std::max(worst,
                         static_cast<double>(std::abs(got[i] - ref[static_cast<std::size_t>(i)])));
      (pass == 0 ? vs_rounded : vs_float) = std::max(pass == 0 ? vs_rounded : vs_float, worst);
    }
  }
  std::cout << "decode step: " << B << " sequences of lengths 37, 5, 0, 120 tokens; " << H
            << " query heads over " << Hkv << " KV heads of " << D << " features\n";
  std::cout << "cache: bfloat16, pages of " << P << " tokens, " << num_pages
            << " pages in the pool, block table " << B << " x " << max_pages << "\n";
  std::cout << "max |paged bf16 decode - float attention on the rounded cache| = " << vs_rounded
            << "\n";
  std::cout << "max |paged bf16 decode - float attention on the unrounded cache| = " << vs_float
            << " (the cost of storing bfloat16)\n";
  std::cout << "empty sequence gives zeros: " << (empty_is_zero ? "yes" : "no") << "\n";
  const bool ok = vs_rounded < 1e-5 && vs_float < 2e-2 && empty_is_zero;
  std::cout << (ok ? "PASS" : "FAIL") << "\n";
  return ok ? 0 : 1;
}
