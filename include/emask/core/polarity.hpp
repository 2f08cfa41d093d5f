/// \file
/// \brief The three materialized polarities as distinct types, and the named conversions.
///
/// - bool_matrix: keep-mask, `true` where the pair takes part (PyTorch SDPA's convention).
/// - drop_mask: `true` where the element is ignored (PyTorch's key_padding_mask, MHA's boolean
///   attn_mask). A separate type, so it can never be passed where a keep-mask is expected.
/// - additive_mask\<S\>: 0 where kept, a fill (-infinity by default) where masked.
#pragma once

#include <limits>
#include <type_traits>
#include <utility>

#include "emask/core/mask.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief A boolean mask in the "true = ignore" convention (PyTorch key_padding_mask).
/// Convert with to_keep(); never use it as a keep-mask directly.
class drop_mask {
 public:
  drop_mask() = default;
  /// Wraps flags where true means "ignore this element".
  explicit drop_mask(bool_matrix drop_flags) : flags_(std::move(drop_flags)) {}
  /// Wraps any boolean-convertible Eigen array where true means "ignore this element".
  template <class Derived>
  explicit drop_mask(const Eigen::DenseBase<Derived>& drop_flags)
      : flags_(drop_flags.derived().template cast<bool>()) {}

  /// \brief The raw flags, true = ignore.
  const bool_matrix& flags() const noexcept { return flags_; }
  /// \brief Number of rows.
  Index rows() const noexcept { return flags_.rows(); }
  /// \brief Number of columns.
  Index cols() const noexcept { return flags_.cols(); }

 private:
  bool_matrix flags_;
};

/// \brief An additive bias: 0 where kept, fill() where masked. A distinct type from the boolean
/// forms so that a bias is never read as a keep flag or the other way round.
template <class Scalar>
class additive_mask {
  static_assert(!std::is_integral<Scalar>::value,
                "emask::additive_mask: use float or double; an integer bias cannot hold -infinity");

 public:
  using scalar_type = Scalar;  ///< float or double
  /// \brief Wraps \p bias, whose masked entries hold \p fill.
  additive_mask(row_matrix<Scalar> bias, Scalar fill) : bias_(std::move(bias)), fill_(fill) {}

  /// \brief The bias matrix: 0 where kept, fill() where masked.
  const row_matrix<Scalar>& matrix() const noexcept { return bias_; }
  /// \brief The value written at masked entries.
  Scalar fill() const noexcept { return fill_; }
  /// \brief Number of rows.
  Index rows() const noexcept { return bias_.rows(); }
  /// \brief Number of columns.
  Index cols() const noexcept { return bias_.cols(); }

 private:
  row_matrix<Scalar> bias_;
  Scalar fill_;
};

/// \brief Keep-mask from a drop-mask: true where the drop-mask says "do not ignore".
inline bool_matrix to_keep(const drop_mask& drop) { return !drop.flags(); }

/// \brief Drop-mask (true = ignore, PyTorch key_padding_mask) from a keep-mask.
template <class Derived>
drop_mask to_drop(const Eigen::ArrayBase<Derived>& keep) {
  static_assert(std::is_same<typename Derived::Scalar, bool>::value,
                "emask::to_drop: pass a boolean keep-mask (bool_matrix)");
  return drop_mask(bool_matrix(!keep.derived()));
}

/// \brief Keep-mask from an additive bias: an entry is masked when its value is <= threshold.
/// The default threshold, the lowest finite value, treats both -infinity and a finite fill such
/// as Hugging Face's `finfo.min` as masked. A NaN entry is kept, as masked_softmax treats it (it
/// makes its row NaN, like a NaN score).
template <class Scalar>
bool_matrix to_keep(const additive_mask<Scalar>& bias,
                    Scalar threshold = std::numeric_limits<Scalar>::lowest()) {
  return !(bias.matrix().array() <= threshold);
}

/// \brief An additive_mask holding a copy of a user's bias matrix (0 kept, \p fill masked).
template <class Derived>
additive_mask<typename Derived::Scalar> to_additive(
    const Eigen::MatrixBase<Derived>& bias,
    typename Derived::Scalar fill = -std::numeric_limits<typename Derived::Scalar>::infinity()) {
  return additive_mask<typename Derived::Scalar>(bias, fill);
}

namespace detail {
template <class T>
struct is_additive_mask : std::false_type {};
template <class T>
struct is_additive_mask<additive_mask<T>> : std::true_type {};
}  // namespace detail

EMASK_NAMESPACE_END
