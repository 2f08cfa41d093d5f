// Included first by every generated group source of tests/CMakeLists.txt (EMASK_TEST_GROUPS).
// A group source compiles several test_*.cpp files as one translation unit, each wrapped in a
// namespace of its own so their file-local helpers do not collide. The wrapping only works for
// headers already included here, at global scope: their include guards make a test file's own
// #include lines no-ops. A test file that includes a header missing from this list fails to
// build in its group (the header lands inside the namespace); add the header here.
#ifndef EMASK_TESTS_UNITY_PRELUDE_HPP
#define EMASK_TESTS_UNITY_PRELUDE_HPP

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <new>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <emask/dist/partition.hpp>  // MPI-free; not in the umbrella (dist/ is its own module)
#include <emask/emask.hpp>
#include <emask/reference.hpp>

#include <emask/detail/ieee.hpp>  // after a public header, as private headers require
#include <emask/detail/portable_math.hpp>
#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

#include "catch.hpp"
#include "fuzz/random_masks.hpp"
#include "kernel_agreement.hpp"
#include "kernel_variants.hpp"
#include "mask_testing.hpp"

#endif  // EMASK_TESTS_UNITY_PRELUDE_HPP
