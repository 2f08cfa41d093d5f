/// \file
/// \brief Masked pooling over time: sum, mean and max of the kept steps of each sequence.
///
/// \p x is [batch * time, features] (row b*T + t is step t of sequence b) and \p mask is
/// [batch, time], true = keep. A sequence with no kept step pools to 0 in every variant
/// (mean: not 0/0; max: not -infinity), so padding never produces NaN or -inf downstream.
#pragma once

#include "emask/core/polarity.hpp"
#include "emask/seq/sequence_mask.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Which reduction masked_pool applies.
enum class pooling { sum, mean, max };

namespace detail {
template <class Derived, class MaskDerived>
Index check_pool(const char* where, const Eigen::MatrixBase<Derived>& x,
                 const Eigen::DenseBase<MaskDerived>& mask) {
  static_assert(!std::is_integral<typename Derived::Scalar>::value,
                "emask::masked_pool: x must hold float or double");
  const Index B = mask.rows();
  if (B < 1) fail_argument(where, "mask.rows()", B, ">= 1 (one row per sequence)");
  const Index T = time_steps(where, x.rows(), B, "mask.rows()");
  if (mask.cols() != T)
    fail_argument(where, "mask.cols()", mask.cols(), T, " (x.rows() / batch time steps)");
  return T;
}

/// Pools the kept steps of each sequence; \p where names the public function.
template <class Derived, class MaskDerived>
row_matrix<typename Derived::Scalar> masked_pool(const char* where,
                                                 const Eigen::MatrixBase<Derived>& x,
                                                 const Eigen::DenseBase<MaskDerived>& mask,
                                                 pooling how) {
  using S = typename Derived::Scalar;
  if (how != pooling::sum && how != pooling::mean && how != pooling::max)
    fail_argument(where, "how", static_cast<int>(how), "pooling::sum, mean or max");
  const Index T = check_pool(where, x, mask);
  const Index B = mask.rows(), F = x.cols();
  row_matrix<S> out = row_matrix<S>::Zero(B, F);
  for (Index b = 0; b < B; ++b) {
    Index kept = 0;
    for (Index t = 0; t < T; ++t) {
      if (!mask(b, t)) continue;
      if (how == pooling::max && kept == 0) {
        out.row(b) = x.row(b * T + t);
      } else if (how == pooling::max) {
        out.row(b) = out.row(b).cwiseMax(x.row(b * T + t));
      } else {
        out.row(b) += x.row(b * T + t);
      }
      ++kept;
    }
    if (how == pooling::mean && kept > 0) out.row(b) /= static_cast<S>(kept);
  }
  return out;
}
}  // namespace detail

/// \brief Pools the kept steps of each sequence: result [batch, features].
template <class Derived, class MaskDerived>
row_matrix<typename Derived::Scalar> masked_pool(const Eigen::MatrixBase<Derived>& x,
                                                 const Eigen::DenseBase<MaskDerived>& mask,
                                                 pooling how) {
  return detail::masked_pool("masked_pool", x, mask, how);
}

/// \brief Sum of the kept steps; 0 for a fully masked sequence.
template <class Derived, class MaskDerived>
row_matrix<typename Derived::Scalar> masked_sum(const Eigen::MatrixBase<Derived>& x,
                                                const Eigen::DenseBase<MaskDerived>& mask) {
  return detail::masked_pool("masked_sum", x, mask, pooling::sum);
}
/// \brief Mean of the kept steps; 0 for a fully masked sequence.
template <class Derived, class MaskDerived>
row_matrix<typename Derived::Scalar> masked_mean(const Eigen::MatrixBase<Derived>& x,
                                                 const Eigen::DenseBase<MaskDerived>& mask) {
  return detail::masked_pool("masked_mean", x, mask, pooling::mean);
}
/// \brief Feature-wise max of the kept steps; 0 for a fully masked sequence.
template <class Derived, class MaskDerived>
row_matrix<typename Derived::Scalar> masked_max(const Eigen::MatrixBase<Derived>& x,
                                                const Eigen::DenseBase<MaskDerived>& mask) {
  return detail::masked_pool("masked_max", x, mask, pooling::max);
}

EMASK_NAMESPACE_END
