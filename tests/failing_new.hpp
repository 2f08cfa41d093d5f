// A global operator new that fails on request, for the tests that check that an allocation
// failure inside a parallel region reaches the caller. Include it in exactly one translation
// unit of a test program: it replaces every plain and array form of new and delete, all on
// malloc / free, so that AddressSanitizer sees matching pairs.
#pragma once

#include <atomic>
#include <cstdlib>
#include <new>

namespace emask_test {
/// Allocations of exactly this many bytes fail with std::bad_alloc (0: none).
inline std::atomic<std::size_t>& failing_new_size() {
  static std::atomic<std::size_t> size{0};
  return size;
}
/// How many allocations failed on purpose.
inline std::atomic<int>& failing_new_count() {
  static std::atomic<int> count{0};
  return count;
}
/// Arms the failure for \p bytes for the object's lifetime.
struct failing_new_armed {
  explicit failing_new_armed(std::size_t bytes) { failing_new_size() = bytes; }
  ~failing_new_armed() { failing_new_size() = 0; }
  failing_new_armed(const failing_new_armed&) = delete;
  failing_new_armed& operator=(const failing_new_armed&) = delete;
};
inline void* failing_new_allocate(std::size_t n) {
  if (n != 0 && n == failing_new_size().load(std::memory_order_relaxed)) {
    failing_new_count().fetch_add(1, std::memory_order_relaxed);
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
}  // namespace emask_test

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t n) { return emask_test::failing_new_allocate(n); }
void* operator new[](std::size_t n) { return emask_test::failing_new_allocate(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return emask_test::failing_new_allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return emask_test::failing_new_allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
