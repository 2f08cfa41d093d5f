// Tests of include/emask/error.hpp: emask::error, the message format, and the handler slot.
#include <emask/error.hpp>

#include <stdexcept>
#include <string>
#include <type_traits>

#include "catch.hpp"

namespace {

// A user exception type, unrelated to emask::error, thrown by a custom handler.
struct user_error {
  std::string message;
};

[[noreturn]] void throwing_user_handler(const char* message) { throw user_error{message}; }
[[noreturn]] void other_handler(const char* message) { throw std::runtime_error(message); }

// Restores the default handler when a test case leaves, even if a REQUIRE failed.
struct handler_guard {
  emask::error_handler saved = emask::get_error_handler();
  ~handler_guard() { emask::set_error_handler(saved); }
};

std::string message_of(void (*f)()) {
  try {
    f();
  } catch (const emask::error& e) {
    return e.what();
  }
  return "<no emask::error thrown>";
}

}  // namespace

TEST_CASE("emask::error is a std::invalid_argument carrying its message", "[error]") {
  STATIC_REQUIRE(std::is_base_of<std::invalid_argument, emask::error>::value);
  STATIC_REQUIRE(std::is_base_of<std::logic_error, emask::error>::value);
  const emask::error e("emask::f: argument 'x' = 1, expected 2");
  CHECK(std::string(e.what()) == "emask::f: argument 'x' = 1, expected 2");
  const std::invalid_argument& base = e;
  CHECK(std::string(base.what()) == e.what());
}

TEST_CASE("fail_argument builds 'emask::<where>: argument '<arg>' = <value>, expected ...'",
          "[error]") {
  handler_guard guard;
  emask::set_error_handler(nullptr);
  SECTION("integer value and several expected parts") {
    const std::string m = message_of([] {
      emask::detail::fail_argument("sliding_window", "left", -3, ">= 0 (", "got a negative bound",
                                   ")");
    });
    CHECK(m == "emask::sliding_window: argument 'left' = -3, expected >= 0 (got a negative bound)");
  }
  SECTION("string value") {
    const std::string m = message_of([] {
      emask::detail::fail_argument("key_padding::from_lengths", "lengths", "an empty list",
                                   "one entry per sequence");
    });
    CHECK(m ==
          "emask::key_padding::from_lengths: argument 'lengths' = an empty list, expected one "
          "entry per sequence");
  }
  SECTION("numbers inside the expected parts") {
    const std::string m =
        message_of([] { emask::detail::fail_argument("chunked", "chunk_size", 0, ">= ", 1); });
    CHECK(m == "emask::chunked: argument 'chunk_size' = 0, expected >= 1");
  }
  SECTION("the default handler's exception can be caught as std::invalid_argument") {
    REQUIRE_THROWS_AS(emask::detail::fail_argument("f", "n", 5, "< 4"), std::invalid_argument);
    REQUIRE_THROWS_WITH(emask::detail::fail_argument("f", "n", 5, "< 4"),
                        Catch::Matchers::Contains("argument 'n' = 5"));
  }
}

TEST_CASE("fail_element names the indexed element", "[error]") {
  handler_guard guard;
  emask::set_error_handler(nullptr);
  const std::string m = message_of([] {
    emask::detail::fail_element("key_padding::from_lengths", "lengths", std::size_t{3}, 9,
                                "a length in [0, ", 8, "]");
  });
  CHECK(m ==
        "emask::key_padding::from_lengths: argument 'lengths[3]' = 9, expected a length in [0, "
        "8]");
  REQUIRE_THROWS_AS(emask::detail::fail_element("g", "ids", 0, -1, ">= 0"), emask::error);
  REQUIRE_THROWS_WITH(emask::detail::fail_element("g", "ids", 0, -1, ">= 0"),
                      Catch::Matchers::Contains("argument 'ids[0]' = -1"));
}

TEST_CASE("report_error passes the message through unchanged", "[error]") {
  handler_guard guard;
  emask::set_error_handler(nullptr);
  REQUIRE_THROWS_AS(emask::report_error("plain message"), emask::error);
  REQUIRE_THROWS_WITH(emask::report_error("plain message"), "plain message");
}

TEST_CASE("set_error_handler returns the previous handler; nullptr restores the default",
          "[error]") {
  handler_guard guard;
  const emask::error_handler original = emask::set_error_handler(nullptr);
  const emask::error_handler default_handler = emask::get_error_handler();
  REQUIRE(default_handler != nullptr);
  // The saved handler of a fresh process is the default one.
  CHECK(original == default_handler);

  SECTION("install, then replace, then restore") {
    CHECK(emask::set_error_handler(&throwing_user_handler) == default_handler);
    CHECK(emask::get_error_handler() == &throwing_user_handler);
    CHECK(emask::set_error_handler(&other_handler) == &throwing_user_handler);
    CHECK(emask::get_error_handler() == &other_handler);
    CHECK(emask::set_error_handler(nullptr) == &other_handler);
    CHECK(emask::get_error_handler() == default_handler);
    // Setting nullptr again returns the default, never nullptr.
    CHECK(emask::set_error_handler(nullptr) == default_handler);
  }
  SECTION("after restoring, errors throw emask::error again") {
    emask::set_error_handler(&throwing_user_handler);
    emask::set_error_handler(nullptr);
    REQUIRE_THROWS_AS(emask::detail::fail_argument("f", "x", 1, "0"), emask::error);
  }
}

TEST_CASE("a custom handler that throws its own type is used", "[error]") {
  handler_guard guard;
  emask::set_error_handler(&throwing_user_handler);
  bool caught_user = false;
  bool caught_emask = false;
  std::string seen;
  try {
    emask::detail::fail_argument("causal::bottom_right", "q_len", -1, ">= 0");
  } catch (const user_error& e) {
    caught_user = true;
    seen = e.message;
  } catch (const emask::error&) {
    caught_emask = true;
  }
  CHECK(caught_user);
  CHECK_FALSE(caught_emask);
  CHECK(seen == "emask::causal::bottom_right: argument 'q_len' = -1, expected >= 0");

  SECTION("a second handler type is used after replacing the first") {
    emask::set_error_handler(&other_handler);
    REQUIRE_THROWS_AS(emask::detail::fail_element("f", "v", 2, 7, "< 3"), std::runtime_error);
    REQUIRE_THROWS_WITH(emask::detail::fail_element("f", "v", 2, 7, "< 3"),
                        "emask::f: argument 'v[2]' = 7, expected < 3");
  }
}
