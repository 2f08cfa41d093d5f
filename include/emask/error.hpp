/// \file
/// \brief Argument errors: emask::error, the overridable handler, and the check helpers.
///
/// Public entry points check their arguments in O(1) or O(batch) work and report a violation
/// through one handler. The default handler throws emask::error (a std::invalid_argument) when
/// exceptions are on; built with -fno-exceptions it prints the message to stderr and aborts.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
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
/// One part of a message as text. Formatting lives in a few non-template functions, so each
/// distinct argument list of concat() costs a few instructions, not an inlined ostringstream
/// (error paths are cold, and there are dozens of them in every kernel call).
class text_piece {
 public:
  text_piece(const char* s) noexcept : p_(s ? s : "(null)"), n_(std::strlen(p_)) {}
  text_piece(const std::string& s) noexcept : p_(s.data()), n_(s.size()) {}
  text_piece(char c) noexcept : p_(buf_), n_(1) { buf_[0] = c; }
  text_piece(bool b) noexcept : text_piece(static_cast<long long>(b)) {}
  text_piece(double v) noexcept : p_(buf_), n_(print(buf_, "%g", v)) {}
  text_piece(float v) noexcept : text_piece(static_cast<double>(v)) {}
  text_piece(long double v) noexcept : text_piece(static_cast<double>(v)) {}
  text_piece(long long v) noexcept : p_(buf_), n_(print(buf_, "%lld", v)) {}
  text_piece(unsigned long long v) noexcept : p_(buf_), n_(print(buf_, "%llu", v)) {}
  template <class T, std::enable_if_t<std::is_integral<T>::value && std::is_signed<T>::value &&
                                          !std::is_same<T, char>::value,
                                      int> = 0>
  text_piece(T v) noexcept : text_piece(static_cast<long long>(v)) {}
  template <class T, std::enable_if_t<std::is_integral<T>::value && std::is_unsigned<T>::value &&
                                          !std::is_same<T, bool>::value,
                                      int> = 0>
  text_piece(T v) noexcept : text_piece(static_cast<unsigned long long>(v)) {}
  text_piece(const text_piece&) = delete;
  text_piece& operator=(const text_piece&) = delete;

  const char* data() const noexcept { return p_; }
  std::size_t size() const noexcept { return n_; }

 private:
  template <class T>
  static std::size_t print(char* buf, const char* fmt, T v) noexcept {
    const int n = std::snprintf(buf, sizeof(buf_), fmt, v);
    return n < 0 ? 0 : (std::min)(static_cast<std::size_t>(n), sizeof(buf_) - 1);
  }
  const char* p_;
  std::size_t n_;
  char buf_[40];
};

/// The pieces, joined.
inline EMASK_NOINLINE std::string join_pieces(const text_piece* const* pieces, std::size_t n) {
  std::size_t total = 0;
  for (std::size_t i = 0; i < n; ++i) total += pieces[i]->size();
  std::string out;
  out.reserve(total);
  for (std::size_t i = 0; i < n; ++i) out.append(pieces[i]->data(), pieces[i]->size());
  return out;
}

template <class... Ps>
std::string join_parts(const Ps&... pieces) {
  const text_piece* const list[sizeof...(Ps) + 1] = {&pieces..., nullptr};
  return join_pieces(list, sizeof...(Ps));
}

/// The parts as one string: text as is, numbers as an ostream would print them (%g for
/// floating point).
template <class... Parts>
std::string concat(const Parts&... parts) {
  return join_parts<std::conditional_t<true, text_piece, Parts>...>(parts...);
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
