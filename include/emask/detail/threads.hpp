/// \file
/// \brief The thread count and thread id every kernel uses (1 and 0 without OpenMP).
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/threads.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif

#include <atomic>
#if EMASK_HAS_EXCEPTIONS
#include <exception>
#endif

#include "emask/config.hpp"

#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

EMASK_NAMESPACE_BEGIN
namespace detail {

/// The threads of a kernel call: \p requested, or every thread OpenMP offers when it is 0.
inline int thread_count(int requested) {
#if EMASK_HAS_OPENMP
  return requested > 0 ? requested : omp_get_max_threads();
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

/// Carries an exception out of an OpenMP region, which an exception may not leave (the process
/// would terminate): each work item runs through run(), the first exception is kept and the
/// items after it are skipped, and rethrow() after the region throws it in the caller. Without
/// exceptions run() only calls the item. On the normal path the cost is one relaxed load per item.
class region_exception {
 public:
  template <class F>
  void run(F&& item) noexcept {
#if EMASK_HAS_EXCEPTIONS
    if (failed_.load(std::memory_order_relaxed)) return;
    try {
      item();
    } catch (...) {
#if EMASK_HAS_OPENMP
#pragma omp critical(emask_region_exception)
#endif
      {
        if (!error_) error_ = std::current_exception();
      }
      failed_.store(true, std::memory_order_relaxed);
    }
#else
    item();
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
#endif
  std::atomic<bool> failed_{false};
};

}  // namespace detail
EMASK_NAMESPACE_END
