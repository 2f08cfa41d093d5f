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

// Every public header but the attention kernel's (kernels/attention.hpp, merge.hpp and the
// umbrellas that include them): its detail/attn_*.hpp still call std::min / std::max. Replace
// this list by <emask/emask.hpp> and <emask/reference.hpp> once they are fixed.
#include <emask/config.hpp>
#include <emask/core.hpp>
#include <emask/error.hpp>
#include <emask/fwd.hpp>
#include <emask/kernels/attention_options.hpp>
#include <emask/kernels/kernel_options.hpp>
#include <emask/kernels/softmax.hpp>
#include <emask/kernels/tensor_view.hpp>
#include <emask/kernels/variant.hpp>
#include <emask/masks.hpp>
#include <emask/random.hpp>
#include <emask/reference/softmax.hpp>
#include <emask/rl.hpp>
#include <emask/seq.hpp>
#include <emask/version.hpp>

int main() {
  const emask::bool_matrix keep = emask::materialize(emask::causal(), 3, 4);
  return keep.count() == 6 ? 0 : 1;
}
