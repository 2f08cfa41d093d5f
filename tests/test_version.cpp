// EMASK_VERSION_* (include/emask/version.hpp) must equal the CMake project version, which
// tests/CMakeLists.txt passes to every test as EMASK_PROJECT_VERSION="x.y.z".
#include <emask/version.hpp>

#include <sstream>
#include <string>

#include "catch.hpp"

#ifndef EMASK_PROJECT_VERSION
#error "tests/CMakeLists.txt must define EMASK_PROJECT_VERSION"
#endif

TEST_CASE("EMASK_VERSION_* equal project(VERSION) in CMakeLists.txt", "[version]") {
  std::ostringstream header;
  header << EMASK_VERSION_MAJOR << '.' << EMASK_VERSION_MINOR << '.' << EMASK_VERSION_PATCH;
  CHECK(header.str() == std::string(EMASK_PROJECT_VERSION));
}

TEST_CASE("EMASK_VERSION packs major, minor and patch", "[version]") {
  STATIC_REQUIRE(EMASK_VERSION_MAJOR >= 0);
  STATIC_REQUIRE(EMASK_VERSION_MINOR >= 0 && EMASK_VERSION_MINOR < 100);
  STATIC_REQUIRE(EMASK_VERSION_PATCH >= 0 && EMASK_VERSION_PATCH < 100);
  STATIC_REQUIRE(EMASK_VERSION ==
                 EMASK_VERSION_MAJOR * 10000 + EMASK_VERSION_MINOR * 100 + EMASK_VERSION_PATCH);
  // Usable in #if, as users will write.
#if EMASK_VERSION < 100
  CHECK(EMASK_VERSION_MAJOR == 0);
  CHECK(EMASK_VERSION_MINOR == 0);
#else
  CHECK(EMASK_VERSION >= 100);
#endif
}
