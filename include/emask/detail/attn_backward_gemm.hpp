/// \file
/// \brief Register-blocked micro-kernels of the tiled attention backward: C (=|+=) A B with A
/// read by scalars at any row / depth stride (so A or A^T of a row-major tile without a copy)
/// and B row-major, padded like gemm_microkernel.hpp (rows a multiple of gemm_rows, columns of
/// gemm_cols<S>). The register block is unrolled explicitly so that the accumulators stay in
/// registers; without the vector extension the plain gemm_microkernel.hpp kernels are used.
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/attn_backward_gemm.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif

#include <cstring>

#include "emask/detail/gemm_microkernel.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

#if EMASK_HAS_VECTOR_EXT
#define EMASK_BWD_UNROLL _Pragma("GCC unroll 16")

/// One gemm_rows x (NV lanes-vectors) block: C = (Acc ? C : 0) + sum_p A(r, p) B[p, :], with
/// A(r, p) = a[r * ars + p * aps].
template <class S, int NV, bool Acc>
inline void bwd_block(S* c, Index ldc, const S* a, Index ars, Index aps, const S* b, Index ldb,
                      Index depth) {
  using V = typename gemm_vec<S>::type;
  constexpr Index R = gemm_rows, L = gemm_lanes<S>;
  V acc[R][NV];
  EMASK_BWD_UNROLL
  for (Index r = 0; r < R; ++r) {
    EMASK_BWD_UNROLL
    for (int v = 0; v < NV; ++v) {
      if (Acc)
        std::memcpy(&acc[r][v], c + r * ldc + v * L, sizeof(V));
      else
        acc[r][v] = V{};
    }
  }
  for (Index p = 0; p < depth; ++p) {
    V bv[NV];
    EMASK_BWD_UNROLL
    for (int v = 0; v < NV; ++v) std::memcpy(&bv[v], b + p * ldb + v * L, sizeof(V));
    const S* ap = a + p * aps;
    EMASK_BWD_UNROLL
    for (Index r = 0; r < R; ++r) {
      const S x = ap[r * ars];
      EMASK_BWD_UNROLL
      for (int v = 0; v < NV; ++v) acc[r][v] += x * bv[v];
    }
  }
  EMASK_BWD_UNROLL
  for (Index r = 0; r < R; ++r) {
    EMASK_BWD_UNROLL
    for (int v = 0; v < NV; ++v) std::memcpy(c + r * ldc + v * L, &acc[r][v], sizeof(V));
  }
}
#undef EMASK_BWD_UNROLL
#endif

/// C = (Acc ? C : 0) + A B over rows x cols (rows a multiple of gemm_rows, cols of
/// gemm_cols<S>): A(r, p) = a[r * ars + p * aps], B depth x cols (ldb), C (ldc). Every element
/// is one multiply-add chain over p ascending (after C when Acc).
template <class S, bool Acc>
void bwd_gemm(S* c, Index ldc, const S* a, Index ars, Index aps, const S* b, Index ldb, Index depth,
              Index rows, Index cols) {
#if EMASK_HAS_VECTOR_EXT
  constexpr Index R = gemm_rows, L = gemm_lanes<S>;
  for (Index r0 = 0; r0 < rows; r0 += R)
    for (Index c0 = 0; c0 < cols; c0 += 2 * L)
      bwd_block<S, 2, Acc>(c + r0 * ldc + c0, ldc, a + r0 * ars, ars, aps, b + c0, ldb, depth);
#else
  for (Index r = 0; r < rows; ++r)
    for (Index j = 0; j < cols; ++j) {
      S s = Acc ? c[r * ldc + j] : S(0);
      for (Index p = 0; p < depth; ++p) s += a[r * ars + p * aps] * b[p * ldb + j];
      c[r * ldc + j] = s;
    }
#endif
}

}  // namespace detail
EMASK_NAMESPACE_END
