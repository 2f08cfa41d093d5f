// <windows.h> (without NOMINMAX) and some C libraries define function-like min and max macros.
// Defined after Eigen (which guards itself), they must not break emask: emask writes
// (std::min)(a, b), (std::max)(a, b) and (std::numeric_limits<T>::max)() everywhere.
// libstdc++ itself is not written against these macros (MSVC's standard library is), so the
// standard headers emask uses come first, as they would through a precompiled header.
#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#define min(a, b) (((a) < (b)) ? (a) : (b))
#define max(a, b) (((a) > (b)) ? (a) : (b))

#include <emask/emask.hpp>
#include <emask/reference.hpp>

int main() {
  const emask::bool_matrix keep = emask::materialize(emask::causal(), 3, 4);
  return keep.count() == 6 ? 0 : 1;
}
