/// \file
/// \brief The thread count and thread id every kernel uses (1 and 0 without OpenMP).
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/threads.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif

#include <algorithm>
#include <atomic>
#if EMASK_HAS_EXCEPTIONS
#include <exception>
#endif

#include "emask/config.hpp"

#if EMASK_HAS_EXCEPTIONS
#include <exception>
#endif
#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

EMASK_NAMESPACE_BEGIN
namespace detail {

/// The threads of a kernel call: \p requested, or every thread OpenMP offers when it is 0.
/// A request beyond 4x the processors is clamped there: results never depend on the thread
/// count, and per-thread workspace for 2^30 threads would only fail to allocate.
inline int thread_count(int requested) {
#if EMASK_HAS_OPENMP
  // omp_get_num_procs() reads the system's CPU list (about 70 us with libgomp): once.
  static const int most = 4 * (std::max)(omp_get_max_threads(), omp_get_num_procs());
  return requested > 0 ? (std::min)(requested, most) : omp_get_max_threads();
#else
  (void)requested;
  return 1;
#endif
}

/// The id of the calling thread inside a parallel region (0 outside one).
inline int thread_id() {
#if EMASK_HAS_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/// Carries an exception (an allocation failure) out of an OpenMP parallel region, which an
/// exception may not leave, nor a worksharing loop's body (the process would terminate): each
/// allocation and each work item runs through run(), the first exception is kept and the items
/// after it are skipped, and rethrow() throws it in the caller after the region. Without
/// exceptions run() only calls the item. On the normal path the cost is one relaxed load per item.
class region_errors {
 public:
  /// Runs item() unless an earlier one threw; returns whether it ran and returned normally.
  template <class F>
  bool run(F&& item) noexcept {
#if EMASK_HAS_EXCEPTIONS
    if (failed_.load(std::memory_order_relaxed)) return false;
    try {
      item();
      return true;
    } catch (...) {
#if EMASK_HAS_OPENMP
#pragma omp critical(emask_region_errors)
#endif
      {
        if (!error_) error_ = std::current_exception();
      }
      failed_.store(true, std::memory_order_relaxed);
      return false;
    }
#else
    item();
    return true;
#endif
  }
  /// Throws the kept exception, if any (call it after the region).
  void rethrow() const {
#if EMASK_HAS_EXCEPTIONS
    if (error_) std::rethrow_exception(error_);
#endif
  }

 private:
#if EMASK_HAS_EXCEPTIONS
  std::exception_ptr error_;
  std::atomic<bool> failed_{false};
#endif
};

}  // namespace detail
EMASK_NAMESPACE_END
