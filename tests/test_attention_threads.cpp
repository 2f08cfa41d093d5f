// Thread bit-identity and the no-allocation guarantee of the tiled and decode kernels.
#define EIGEN_RUNTIME_NO_MALLOC
#include <vector>

#include <emask/kernels/attention.hpp>
#include "kernel_variants.hpp"

#include "mask_testing.hpp"

#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

namespace {
using emask::Index;
using emask::row_matrix;

std::vector<float> random_buffer(emask_test::rng& g, Index n) {
  std::vector<float> x(static_cast<std::size_t>(n));
  for (auto& e : x) e = static_cast<float>(static_cast<double>(g.next() >> 11) * 0x1.0p-53 * 2 - 1);
  return x;
}
}  // namespace

TEST_CASE("masked_attention: no allocation inside the tiled and decode kernels", "[attention]") {
  emask_test::rng g(5);
  const Index B = 2, H = 2, L = 100, D = 32;
  auto qb = random_buffer(g, B * H * L * D), kb = random_buffer(g, B * H * L * D),
       vb = random_buffer(g, B * H * L * D);
  std::vector<float> ob(qb.size());
  const auto q = emask::view_bhld<const float>(qb.data(), B, H, L, D);
  const auto k = emask::view_bhld<const float>(kb.data(), B, H, L, D);
  const auto v = emask::view_bhld<const float>(vb.data(), B, H, L, D);
  const auto out = emask::view_bhld(ob.data(), B, H, L, D);
  row_matrix<float> lse(B * H, L);
  const auto mask = emask::causal() & emask::key_padding::from_lengths({80, 100}, L);
  for (auto variant :
       {emask_test::attention_variant::tiled, emask_test::attention_variant::decode}) {
    emask_test::attention_options o;
    o.variant = variant;
    o.tile_q = 32;
    o.tile_k = 32;
    o.decode_chunk = 40;
    o.threads = 1;
    emask::attention_workspace<float> ws;
    ws.reserve(emask_test::attention_workspace_size<float>(B * H, L, L, D, D, o));
    Eigen::internal::set_is_malloc_allowed(false);
    emask_test::masked_attention(q, k, v, mask, out, lse, o, &ws);
    Eigen::internal::set_is_malloc_allowed(true);
    CHECK(std::isfinite(ob[0]));
    CHECK(ws.bytes() > 0);
  }
}

TEST_CASE("masked_attention: tiled workspace does not grow with the sequence", "[attention]") {
  emask_test::attention_options o;
  const Index small = emask_test::attention_workspace_size<float>(8, 512, 512, 64, 64, o);
  const Index big = emask_test::attention_workspace_size<float>(8, 32768, 32768, 64, 64, o);
  CHECK(small == big);
  CHECK(big * static_cast<Index>(sizeof(float)) < 64 * 1024 * 1024);
  o.variant = emask_test::attention_variant::naive;
  CHECK(emask_test::attention_workspace_size<float>(8, 4096, 4096, 64, 64, o) >= 4096 * 4096);
}

#if EMASK_HAS_OPENMP
TEST_CASE("masked_attention: 1 and 2 threads give bit-identical results", "[attention]") {
  emask_test::rng g(9);
  const Index B = 2, H = 3, Lq = 150, Lk = 170, D = 24;
  auto qb = random_buffer(g, B * H * Lq * D), kb = random_buffer(g, B * H * Lk * D),
       vb = random_buffer(g, B * H * Lk * D);
  const auto q = emask::view_bhld<const float>(qb.data(), B, H, Lq, D);
  const auto k = emask::view_bhld<const float>(kb.data(), B, H, Lk, D);
  const auto v = emask::view_bhld<const float>(vb.data(), B, H, Lk, D);
  const auto mask =
      emask::causal::bottom_right(Lq, Lk) & emask::key_padding::from_lengths({170, 90}, Lk);
  for (auto variant : {emask_test::attention_variant::naive, emask_test::attention_variant::tiled,
                       emask_test::attention_variant::decode}) {
    std::vector<std::vector<float>> results;
    std::vector<row_matrix<float>> lses;
    for (int threads : {1, 2}) {
      for (int via_omp : {0, 1}) {
        emask_test::attention_options o;
        o.variant = variant;
        o.tile_q = 32;
        o.tile_k = 32;
        o.decode_chunk = 50;
        if (via_omp) {
          omp_set_num_threads(threads);
          o.threads = 0;
        } else {
          o.threads = threads;
        }
        std::vector<float> ob(static_cast<std::size_t>(B * H * Lq * D));
        row_matrix<float> lse(B * H, Lq);
        emask_test::masked_attention(q, k, v, mask, emask::view_bhld(ob.data(), B, H, Lq, D), lse,
                                     o);
        results.push_back(ob);
        lses.push_back(lse);
      }
    }
    for (std::size_t i = 1; i < results.size(); ++i) {
      CHECK(results[i] == results[0]);
      CHECK((lses[i].array() == lses[0].array()).all());
    }
  }
}
#endif
