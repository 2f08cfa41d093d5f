/// \file
/// \brief Kernel variants as types. The variant is the first argument of masked_softmax,
/// masked_log_softmax and masked_attention (as Eigen picks a decomposition by type: LLT, LDLT):
/// a call compiles only the variant it runs. Without a tag each kernel runs its default,
/// emask::tiled.
///
/// | tag                 | softmax | attention | header                             |
/// |---------------------|---------|-----------|------------------------------------|
/// | `emask::tiled`      | default | default   | the kernel's own                   |
/// | `emask::fused`      | yes     |           | emask/kernels/softmax.hpp          |
/// | `emask::decode`     |         | yes       | emask/kernels/attention.hpp        |
/// | `reference::naive`  | yes     | yes       | emask/reference/{softmax,attention}.hpp |
#pragma once

#include <type_traits>

#include "emask/config.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Tile answers over square tiles: empty tiles skipped, full tiles without a mask test.
struct tiled_t {
  explicit constexpr tiled_t() = default;
};
/// \brief The tiled variant (the default of masked_softmax and masked_attention).
inline constexpr tiled_t tiled{};

/// \brief Softmax: one key span per row, the mask predicate inside the row loop.
struct fused_t {
  explicit constexpr fused_t() = default;
};
/// \brief The fused variant of masked_softmax and masked_log_softmax.
inline constexpr fused_t fused{};

/// \brief Attention with few query rows over a long KV cache: key chunks in parallel, merged by
/// log-sum-exp.
struct decode_t {
  explicit constexpr decode_t() = default;
};
/// \brief The decode variant of masked_attention.
inline constexpr decode_t decode{};

namespace reference {
/// \brief The plain reference: materialize the Lq x Lk scores (or bias), mask, softmax. For
/// tests and differential checks; O(Lq * Lk) memory. Include emask/reference/softmax.hpp or
/// emask/reference/attention.hpp to use it.
struct naive_t {
  explicit constexpr naive_t() = default;
};
/// \brief The naive reference variant of every kernel.
inline constexpr naive_t naive{};
}  // namespace reference

/// \brief True for the variant tags above.
template <class T>
struct is_kernel_variant
    : std::bool_constant<std::is_same<T, tiled_t>::value || std::is_same<T, fused_t>::value ||
                         std::is_same<T, decode_t>::value ||
                         std::is_same<T, reference::naive_t>::value> {};
/// \brief is_kernel_variant of T with references and cv removed.
template <class T>
inline constexpr bool is_kernel_variant_v = is_kernel_variant<std::decay_t<T>>::value;

EMASK_NAMESPACE_END
