/// \file
/// \brief Every macro and feature test of emask lives here.
#pragma once

/// Defined by this header, which every public emask header includes before any detail header;
/// the detail headers refuse to be included without it (as Eigen's internal headers do).
#define EMASK_CONFIG_INCLUDED 1

#include <Eigen/Core>

#include "emask/version.hpp"

#if !EIGEN_VERSION_AT_LEAST(3, 4, 0)
#error "emask needs Eigen 3.4 or newer (found an older Eigen/Core on the include path)"
#endif

/// Exceptions are used when the compiler has them and the user did not opt out with
/// EMASK_NO_EXCEPTIONS. Without them the error handler prints and aborts.
#if !defined(EMASK_NO_EXCEPTIONS) && \
    (defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND))
#define EMASK_HAS_EXCEPTIONS 1  ///< 1 when errors are reported by throwing emask::error
#else
#define EMASK_HAS_EXCEPTIONS 0
#endif

/// Inner-loop precondition checks. Override by defining EMASK_ASSERT before including emask;
/// the default follows eigen_assert, so NDEBUG / EIGEN_NO_DEBUG switch it off.
#ifndef EMASK_ASSERT
#define EMASK_ASSERT(x) eigen_assert(x)
#endif

/// \def EMASK_HAS_OPENMP
/// 1 when compiled with OpenMP: kernels then run in parallel (results never depend on threads).
#if defined(_OPENMP)
#define EMASK_HAS_OPENMP 1
#else
#define EMASK_HAS_OPENMP 0
#endif

/// \def EMASK_HAS_CONCEPTS
/// 1 under C++20 with concepts (emask::mask_expression); define EMASK_NO_CONCEPTS to turn it off.
#if defined(__cpp_concepts) && __cpp_concepts >= 201907L && !defined(EMASK_NO_CONCEPTS)
#define EMASK_HAS_CONCEPTS 1
#else
#define EMASK_HAS_CONCEPTS 0
#endif

/// \def EMASK_RESTRICT
/// The pointer is the only way to reach its data in the function (C's restrict): lets the
/// compiler vectorize loops over several output arrays without run-time overlap checks.
/// \def EMASK_NOINLINE
/// Keeps cold error paths out of line.
/// \def EMASK_LIKELY
/// Branch hint: \p x is usually true.
/// \def EMASK_UNLIKELY
/// Branch hint: \p x is usually false.
#if defined(__GNUC__) || defined(__clang__)
#define EMASK_RESTRICT __restrict__
#define EMASK_NOINLINE __attribute__((noinline))
#define EMASK_LIKELY(x) __builtin_expect(!!(x), 1)
#define EMASK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#elif defined(_MSC_VER)
#define EMASK_RESTRICT __restrict
#define EMASK_NOINLINE __declspec(noinline)
#define EMASK_LIKELY(x) (x)
#define EMASK_UNLIKELY(x) (x)
#else
#define EMASK_RESTRICT
#define EMASK_NOINLINE
#define EMASK_LIKELY(x) (x)
#define EMASK_UNLIKELY(x) (x)
#endif

// EMASK_NO_SIMD (user-defined, before any emask header) builds every emask kernel without
// explicit SIMD code: no vector extensions in the GEMM micro-kernel, scalar packets in the row
// kernels, no streaming stores, no AVX2 Philox.
/// \def EMASK_SIMD_BYTES
/// Bytes of the widest vector the build targets: 64 (AVX-512F), 32 (AVX), else 16.
/// \def EMASK_HAS_VECTOR_EXT
/// 1 when the GEMM micro-kernel uses GCC / clang vector extensions.
/// \def EMASK_HAS_STREAM_STORES
/// 1 when the row kernels may write with non-temporal stores (x86 with SSE2).
/// \def EMASK_HAS_AVX2_DISPATCH
/// 1 when Philox has an AVX2 path chosen at run time (x86-64, GCC or clang); its stream is the
/// scalar one, bit for bit.
#if defined(__AVX512F__) && !defined(EMASK_NO_SIMD)
#define EMASK_SIMD_BYTES 64
#elif defined(__AVX__) && !defined(EMASK_NO_SIMD)
#define EMASK_SIMD_BYTES 32
#else
#define EMASK_SIMD_BYTES 16
#endif
#if (defined(__GNUC__) || defined(__clang__)) && !defined(EMASK_NO_SIMD)
#define EMASK_HAS_VECTOR_EXT 1
#else
#define EMASK_HAS_VECTOR_EXT 0
#endif
#if (defined(__SSE2__) || defined(_M_X64)) && !defined(EMASK_NO_SIMD)
#define EMASK_HAS_STREAM_STORES 1
#else
#define EMASK_HAS_STREAM_STORES 0
#endif
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(EMASK_NO_SIMD)
#define EMASK_HAS_AVX2_DISPATCH 1
#else
#define EMASK_HAS_AVX2_DISPATCH 0
#endif

/// \def EMASK_DIAGNOSTICS_PUSH
/// Turns off, from EMASK_NAMESPACE_BEGIN to EMASK_NAMESPACE_END only, the warnings a user may
/// enable that emask's code triggers on purpose: -Wfloat-equal (the kernels test exact values:
/// an empty row's sum of 0, a maximum of -infinity, a scale of exactly 1). GCC and clang.
/// \def EMASK_DIAGNOSTICS_POP
/// Restores the warnings EMASK_DIAGNOSTICS_PUSH turned off.
#if defined(__GNUC__) || defined(__clang__)
#define EMASK_DIAGNOSTICS_PUSH \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wfloat-equal\"")
#define EMASK_DIAGNOSTICS_POP _Pragma("GCC diagnostic pop")
#else
#define EMASK_DIAGNOSTICS_PUSH
#define EMASK_DIAGNOSTICS_POP
#endif

/// The ABI namespace: bump it when a layout changes.
#define EMASK_NAMESPACE_BEGIN \
  EMASK_DIAGNOSTICS_PUSH      \
  namespace emask {           \
  inline namespace v0 {
#define EMASK_NAMESPACE_END \
  }                         \
  }                         \
  EMASK_DIAGNOSTICS_POP
