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

/// \def EMASK_NOINLINE
/// Keeps cold error paths out of line.
/// \def EMASK_LIKELY
/// Branch hint: \p x is usually true.
/// \def EMASK_UNLIKELY
/// Branch hint: \p x is usually false.
#if defined(__GNUC__) || defined(__clang__)
#define EMASK_NOINLINE __attribute__((noinline))
#define EMASK_LIKELY(x) __builtin_expect(!!(x), 1)
#define EMASK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define EMASK_NOINLINE
#define EMASK_LIKELY(x) (x)
#define EMASK_UNLIKELY(x) (x)
#endif

/// The ABI namespace: bump it when a layout changes.
#define EMASK_NAMESPACE_BEGIN \
  namespace emask {           \
  inline namespace v0 {
#define EMASK_NAMESPACE_END \
  }                         \
  }
