/// \file
/// \brief Argument errors: emask::error, the overridable handler, and the check helpers.
///
/// Public entry points check their arguments in O(1) or O(batch) work and report a violation
/// through one handler. The default handler throws emask::error (a std::invalid_argument) when
/// exceptions are on; built with -fno-exceptions it prints the message to stderr and aborts.
#pragma once

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "emask/config.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief The exception thrown for a bad argument. Its message names the function, the
/// argument, the value received and what was expected.
class error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// \brief Signature of an error handler. It receives the full message and must not return
/// (throw, longjmp, or terminate); if it returns, emask aborts.
using error_handler = void (*)(const char* message);

namespace detail {
[[noreturn]] inline void default_error_handler(const char* message) {
#if EMASK_HAS_EXCEPTIONS
  throw error(message);
#else
  std::fprintf(stderr, "%s\n", message);
  std::fflush(stderr);
  std::abort();
#endif
}

inline std::atomic<error_handler>& error_handler_slot() noexcept {
  static std::atomic<error_handler> slot{&default_error_handler};
  return slot;
}
}  // namespace detail

/// \brief Installs \p handler (nullptr restores the default) and returns the previous one.
inline error_handler set_error_handler(error_handler handler) noexcept {
  return detail::error_handler_slot().exchange(handler ? handler : &detail::default_error_handler);
}

/// \brief The handler currently installed.
inline error_handler get_error_handler() noexcept { return detail::error_handler_slot().load(); }

/// \brief Reports \p message through the installed handler. Never returns.
[[noreturn]] inline EMASK_NOINLINE void report_error(const std::string& message) {
  get_error_handler()(message.c_str());
  // A handler that returns has broken its contract; continuing would compute garbage.
  std::fprintf(stderr, "emask: error handler returned after: %s\n", message.c_str());
  std::abort();
}

namespace detail {
template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

/// Builds "emask::<where>: argument '<arg>' = <value>, expected <expected...>" and reports it.
template <class Value, class... Expected>
[[noreturn]] EMASK_NOINLINE void fail_argument(const char* where, const char* arg,
                                               const Value& value, const Expected&... expected) {
  report_error(
      concat("emask::", where, ": argument '", arg, "' = ", value, ", expected ", expected...));
}

/// Same, for an indexed element of an argument ("lengths[3]").
template <class Index, class Value, class... Expected>
[[noreturn]] EMASK_NOINLINE void fail_element(const char* where, const char* arg, Index i,
                                              const Value& value, const Expected&... expected) {
  report_error(concat("emask::", where, ": argument '", arg, "[", i, "]' = ", value, ", expected ",
                      expected...));
}
}  // namespace detail

EMASK_NAMESPACE_END
