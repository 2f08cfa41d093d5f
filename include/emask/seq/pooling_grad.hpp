/// \file
/// \brief Gradients of masked_sum, masked_mean, masked_max and masked_pool (emask/seq/pooling.hpp)
/// with respect to x, [batch * time, features], from the gradient of the pooled result
/// d_pooled, [batch, features].
///
/// For sequence b with n kept steps:
///
///     sum:   dx(b*T + t) = d_pooled(b)       at kept steps t
///     mean:  dx(b*T + t) = d_pooled(b) / n   at kept steps t
///     max:   dx(b*T + t*, f) = d_pooled(b, f) at the arg-max kept step t* of feature f
///
/// and exactly 0 at masked steps, at the other steps of max, and for a sequence with no kept
/// step (it pools to the constant 0). The arg-max is the first kept step with the largest value
/// (ties go to the first, as the forward keeps the first of equal values): a later step takes it
/// only when strictly greater. A NaN step never takes it from an earlier step, and a NaN first
/// kept step keeps it (the gradient routes to one step and stays finite where d_pooled is).
#pragma once

#include <algorithm>
#include <vector>

#include "emask/seq/pooling.hpp"

EMASK_NAMESPACE_BEGIN

namespace detail {
template <class Derived, class MaskDerived, class GradDerived>
row_matrix<typename Derived::Scalar> masked_pool_grad(
    const char* where, const Eigen::MatrixBase<Derived>& x,
    const Eigen::DenseBase<MaskDerived>& mask, pooling how,
    const Eigen::MatrixBase<GradDerived>& d_pooled) {
  using S = typename Derived::Scalar;
  static_assert(std::is_same<S, typename GradDerived::Scalar>::value,
                "emask::masked_pool_grad: x and d_pooled must have the same scalar type (cast one "
                "with .cast<S>())");
  if (how != pooling::sum && how != pooling::mean && how != pooling::max)
    fail_argument(where, "how", static_cast<int>(how), "pooling::sum, mean or max");
  const Index T = check_pool(where, x, mask);
  const Index B = mask.rows(), F = x.cols();
  if (d_pooled.rows() != B || d_pooled.cols() != F)
    fail_argument(where, "d_pooled", concat(d_pooled.rows(), " x ", d_pooled.cols()), B, " x ", F,
                  " (batch x features, the shape of the pooled result)");
  row_matrix<S> dx = row_matrix<S>::Zero(B * T, F);
  std::vector<Index> arg(static_cast<std::size_t>(how == pooling::max ? F : 0));
  for (Index b = 0; b < B; ++b) {
    Index kept = 0;
    for (Index t = 0; t < T; ++t) kept += mask(b, t) ? 1 : 0;
    if (kept == 0) continue;  // pooled to the constant 0: no gradient
    if (how != pooling::max) {
      const S w = how == pooling::mean ? S(1) / static_cast<S>(kept) : S(1);
      for (Index t = 0; t < T; ++t)
        if (mask(b, t)) dx.row(b * T + t) = w * d_pooled.row(b);
      continue;
    }
    Index first = -1;
    for (Index t = 0; t < T; ++t) {
      if (!mask(b, t)) continue;
      const Index r = b * T + t;
      if (first < 0) {
        first = r;
        std::fill(arg.begin(), arg.end(), r);
        continue;
      }
      for (Index f = 0; f < F; ++f)
        if (x(r, f) > x(arg[static_cast<std::size_t>(f)], f)) arg[static_cast<std::size_t>(f)] = r;
    }
    for (Index f = 0; f < F; ++f) dx(arg[static_cast<std::size_t>(f)], f) = d_pooled(b, f);
  }
  return dx;
}
}  // namespace detail

/// \brief Gradient of masked_pool(x, mask, how) with respect to \p x, [batch * time, features].
/// \param x the forward's input, [batch * time, features] (max reads it; sum and mean only its
///        shape).
/// \param mask the forward's [batch, time] keep mask.
/// \param how the forward's reduction.
/// \param d_pooled gradient of the pooled result, [batch, features].
template <class Derived, class MaskDerived, class GradDerived>
row_matrix<typename Derived::Scalar> masked_pool_grad(
    const Eigen::MatrixBase<Derived>& x, const Eigen::DenseBase<MaskDerived>& mask, pooling how,
    const Eigen::MatrixBase<GradDerived>& d_pooled) {
  return detail::masked_pool_grad("masked_pool_grad", x, mask, how, d_pooled);
}

/// \brief Gradient of masked_sum: d_pooled(b) at the kept steps of sequence b, 0 elsewhere.
template <class Derived, class MaskDerived, class GradDerived>
row_matrix<typename Derived::Scalar> masked_sum_grad(
    const Eigen::MatrixBase<Derived>& x, const Eigen::DenseBase<MaskDerived>& mask,
    const Eigen::MatrixBase<GradDerived>& d_pooled) {
  return detail::masked_pool_grad("masked_sum_grad", x, mask, pooling::sum, d_pooled);
}

/// \brief Gradient of masked_mean: d_pooled(b) / kept steps at the kept steps of sequence b, 0
/// elsewhere and for a sequence with no kept step.
template <class Derived, class MaskDerived, class GradDerived>
row_matrix<typename Derived::Scalar> masked_mean_grad(
    const Eigen::MatrixBase<Derived>& x, const Eigen::DenseBase<MaskDerived>& mask,
    const Eigen::MatrixBase<GradDerived>& d_pooled) {
  return detail::masked_pool_grad("masked_mean_grad", x, mask, pooling::mean, d_pooled);
}

/// \brief Gradient of masked_max: d_pooled(b, f) at the first kept step holding the maximum of
/// feature f, 0 elsewhere and for a sequence with no kept step.
template <class Derived, class MaskDerived, class GradDerived>
row_matrix<typename Derived::Scalar> masked_max_grad(
    const Eigen::MatrixBase<Derived>& x, const Eigen::DenseBase<MaskDerived>& mask,
    const Eigen::MatrixBase<GradDerived>& d_pooled) {
  return detail::masked_pool_grad("masked_max_grad", x, mask, pooling::max, d_pooled);
}

EMASK_NAMESPACE_END
