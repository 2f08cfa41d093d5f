// Include shim: the tests are written against the API common to Catch2 2.13 and 3.x.
#pragma once
#if defined(EMASK_CATCH2_V3)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
