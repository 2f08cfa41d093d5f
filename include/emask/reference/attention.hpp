/// \file
/// \brief reference::naive for masked_attention: scores Lq x Lk materialized, masked, softmax,
/// multiplied by V (Eigen's GEMM). The plain reference the tests compare the tiled and decode
/// variants with; O(Lq * Lk) memory per thread. Use masked_attention(reference::naive, ...).
#pragma once

#include "emask/config.hpp"
#include "emask/detail/attn_naive.hpp"
#include "emask/kernels/attention.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

template <>
struct attn_kernel<reference::naive_t> {
  template <class S>
  static Index workspace(Index, Index lq, Index lk, Index, Index, const attention_options& opt) {
    return thread_count(opt.threads) * attn_naive_per_thread(lq, lk);
  }
  template <class S, class Mask>
  static void run(attn_problem<S>& p, const Mask& mask, const attention_options&, S* base) {
    const Index items = p.batch * p.heads;
    // Always inside a parallel region of p.threads threads, so Eigen's own GEMM threading
    // (nested) cannot use more threads than asked for.
#if EMASK_HAS_OPENMP
#pragma omp parallel num_threads(p.threads)
    {
      // Eigen parallelizes its GEMM with OpenMP: limit this task to one thread so that it
      // never nests (the ICV is per task; the caller's setting is untouched).
      omp_set_num_threads(1);
#pragma omp for schedule(dynamic, 1)
      for (Index w = 0; w < items; ++w) {
        attn_naive_head(p, mask, w / p.heads, w % p.heads,
                        base + static_cast<Index>(thread_id()) * attn_naive_per_thread(p.lq, p.lk));
      }
    }
#else
    for (Index w = 0; w < items; ++w) attn_naive_head(p, mask, w / p.heads, w % p.heads, base);
#endif
  }
};

}  // namespace detail
EMASK_NAMESPACE_END
