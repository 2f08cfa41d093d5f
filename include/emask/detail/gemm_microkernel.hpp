/// \file
/// \brief Register-blocked micro-kernels for the two products of tiled attention:
/// S = Q_tile * K_tile^T (K packed transposed) and O = diag(alpha) O + P * V_tile (V packed).
///
/// With GCC or Clang the kernels use the compilers' generic vector extension with the widest
/// vector the target has (64 bytes with AVX-512, 32 with AVX, 16 otherwise), so -march=native
/// decides the width; other compilers get plain loops. Every operand is padded by the caller:
/// rows to a multiple of gemm_rows, columns to a multiple of gemm_cols<S>.
///
/// The register-block loops are unrolled by pragma: without it GCC 12 at -O2 (not -O3) keeps
/// the 16 accumulators on the stack, a load and a store per multiply-add, and the tiled
/// attention ran 2.4x slower at -O2 than at -O3.
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/gemm_microkernel.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif

#include <cstring>

#include "emask/core/mask.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

/// Rows of the register block (accumulators: gemm_rows x gemm_vecs vectors).
inline constexpr Index gemm_rows = EMASK_SIMD_BYTES == 64 ? 8 : 4;
/// Vectors per column chunk.
inline constexpr Index gemm_vecs = 2;
/// Lanes of one vector of S.
template <class S>
inline constexpr Index gemm_lanes = EMASK_SIMD_BYTES / static_cast<Index>(sizeof(S));
/// Columns of one register block: every packed operand is padded to a multiple of it.
template <class S>
inline constexpr Index gemm_cols = Index{gemm_vecs} * gemm_lanes<S>;

constexpr Index round_up(Index x, Index m) noexcept { return (x + m - 1) / m * m; }

#if EMASK_HAS_VECTOR_EXT
typedef float gemm_vf __attribute__((vector_size(EMASK_SIMD_BYTES)));
typedef double gemm_vd __attribute__((vector_size(EMASK_SIMD_BYTES)));
template <class S>
struct gemm_vec;
template <>
struct gemm_vec<float> {
  using type = gemm_vf;
};
template <>
struct gemm_vec<double> {
  using type = gemm_vd;
};
#endif

/// C[r, c] = sum_p A[r, p] * Bt[p, c] for r < gemm_rows*row_blocks ... in blocks:
/// A is rows x depth (row stride lda), Bt is depth x cols (row stride ldb), C rows x cols (ldc).
/// rows is a multiple of gemm_rows, cols a multiple of gemm_cols<S>.
template <class S>
void gemm_abt(const S* a, Index lda, const S* bt, Index ldb, Index depth, S* c, Index ldc,
              Index rows, Index cols) {
#if EMASK_HAS_VECTOR_EXT
  using V = typename gemm_vec<S>::type;
  constexpr Index R = gemm_rows, NV = gemm_vecs, L = gemm_lanes<S>;
  for (Index c0 = 0; c0 < cols; c0 += NV * L) {
    for (Index r0 = 0; r0 < rows; r0 += R) {
      V acc[R][NV];
      _Pragma("GCC unroll 16") for (Index r = 0; r < R; ++r)
          _Pragma("GCC unroll 16") for (Index v = 0; v < NV; ++v) acc[r][v] = V{};
      const S* ap = a + r0 * lda;
      const S* bp = bt + c0;
      for (Index p = 0; p < depth; ++p) {
        V bv[NV];
        _Pragma("GCC unroll 16") for (Index v = 0; v < NV; ++v)
            std::memcpy(&bv[v], bp + p * ldb + v * L, sizeof(V));
        _Pragma("GCC unroll 16") for (Index r = 0; r < R; ++r) {
          const S x = ap[r * lda + p];
          _Pragma("GCC unroll 16") for (Index v = 0; v < NV; ++v) acc[r][v] += x * bv[v];
        }
      }
      _Pragma("GCC unroll 16") for (Index r = 0; r < R; ++r)
          _Pragma("GCC unroll 16") for (Index v = 0; v < NV; ++v) {
        const V t = acc[r][v];
        std::memcpy(c + (r0 + r) * ldc + c0 + v * L, &t, sizeof t);
      }
    }
  }
#else
  for (Index r = 0; r < rows; ++r)
    for (Index j = 0; j < cols; ++j) {
      S s = 0;
      for (Index p = 0; p < depth; ++p) s += a[r * lda + p] * bt[p * ldb + j];
      c[r * ldc + j] = s;
    }
#endif
}

/// O[r, c] = alpha[r] * O[r, c] + sum_j P[r, j] * Vp[j, c]: O is rows x cols (ldo), P[r, j] is
/// p[r * p_rs + j * p_cs], Vp depth x cols (ldv). rows a multiple of gemm_rows, cols of
/// gemm_cols.
template <class S>
void gemm_scale_add_ab(S* o, Index ldo, const S* alpha, const S* p, Index p_rs, Index p_cs,
                       const S* vp, Index ldv, Index depth, Index rows, Index cols) {
#if EMASK_HAS_VECTOR_EXT
  using V = typename gemm_vec<S>::type;
  constexpr Index R = gemm_rows, NV = gemm_vecs, L = gemm_lanes<S>;
  for (Index c0 = 0; c0 < cols; c0 += NV * L) {
    for (Index r0 = 0; r0 < rows; r0 += R) {
      V acc[R][NV];
      _Pragma("GCC unroll 16") for (Index r = 0; r < R; ++r) {
        const S al = alpha[r0 + r];
        _Pragma("GCC unroll 16") for (Index v = 0; v < NV; ++v) {
          V t;
          std::memcpy(&t, o + (r0 + r) * ldo + c0 + v * L, sizeof t);
          acc[r][v] = t * al;
        }
      }
      const S* pp = p + r0 * p_rs;
      const S* vq = vp + c0;
      for (Index j = 0; j < depth; ++j) {
        V bv[NV];
        _Pragma("GCC unroll 16") for (Index v = 0; v < NV; ++v)
            std::memcpy(&bv[v], vq + j * ldv + v * L, sizeof(V));
        _Pragma("GCC unroll 16") for (Index r = 0; r < R; ++r) {
          const S x = pp[r * p_rs + j * p_cs];
          _Pragma("GCC unroll 16") for (Index v = 0; v < NV; ++v) acc[r][v] += x * bv[v];
        }
      }
      _Pragma("GCC unroll 16") for (Index r = 0; r < R; ++r)
          _Pragma("GCC unroll 16") for (Index v = 0; v < NV; ++v) {
        const V t = acc[r][v];
        std::memcpy(o + (r0 + r) * ldo + c0 + v * L, &t, sizeof t);
      }
    }
  }
#else
  for (Index r = 0; r < rows; ++r)
    for (Index c = 0; c < cols; ++c) {
      S s = alpha[r] * o[r * ldo + c];
      for (Index j = 0; j < depth; ++j) s += p[r * p_rs + j * p_cs] * vp[j * ldv + c];
      o[r * ldo + c] = s;
    }
#endif
}

}  // namespace detail
EMASK_NAMESPACE_END
