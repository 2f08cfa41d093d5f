/// \file
/// \brief Gradients of masked_cross_entropy and masked_nll (emask/seq/loss.hpp) with respect to
/// their input, [batch * time, vocab], for the same arguments and options.
///
/// The gradient is that of loss_result::value: with w = 1 / counted for reduction mean and
/// w = 1 for sum and none (none: value is the sum of the per-token losses), a counted token
/// (target != ignore_index and, if given, mask entry true) with target y gets
///
///     cross-entropy:  w * (softmax(logits row) - onehot(y))
///     NLL:            -w * onehot(y)
///
/// and every other row is exactly 0; no counted token gives an all-zero gradient (the loss is 0).
/// The arguments are checked by the forward's own checks (the same messages, named after the
/// gradient function), before anything is computed.
///
/// Non-finite logits follow the forward: a -infinity logit has probability exactly 0 (decided
/// by its bits, so also under -ffast-math) and gradient 0, or -w when it is the target (whose
/// loss is then +infinity: the gradient is the limit as the logit goes to -infinity, finite). A
/// row whose forward loss is NaN (a NaN or +infinity logit, or every logit -infinity) gets a NaN
/// gradient row. NLL's gradient does not read log_probs: it is finite whatever they hold.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "emask/config.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/seq/loss.hpp"

EMASK_NAMESPACE_BEGIN

namespace detail {

/// Runs masked_token_loss's checks (targets shape and range, mask shape, reduction) for the
/// function \p where, with a row loss that computes nothing, and returns the counted tokens.
template <class S, class Derived, class TargetDerived>
Index counted_tokens(const char* where, const Eigen::MatrixBase<Derived>& x,
                     const Eigen::DenseBase<TargetDerived>& targets, const bool_matrix* mask,
                     const loss_options& opt) {
  return masked_token_loss<S>(where, x, targets, mask, opt, [](const auto&, Index) { return S(0); })
      .counted;
}

template <class Derived, class TargetDerived>
row_matrix<typename Derived::Scalar> cross_entropy_grad(
    const Eigen::MatrixBase<Derived>& logits, const Eigen::DenseBase<TargetDerived>& targets,
    const bool_matrix* mask, const loss_options& opt) {
  using S = typename Derived::Scalar;
  static_assert(!std::is_integral<S>::value,
                "emask::masked_cross_entropy_grad: logits must be float or double");
  const char* where = "masked_cross_entropy_grad";
  if (logits.cols() < 1)
    fail_argument(where, "logits.cols()", logits.cols(), ">= 1 (vocabulary size)");
  const Index counted = counted_tokens<S>(where, logits, targets, mask, opt);
  const Index B = targets.rows(), T = targets.cols(), V = logits.cols();
  row_matrix<S> g = row_matrix<S>::Zero(B * T, V);
  if (counted == 0) return g;
  const S w = opt.reduction == loss_reduction::mean ? S(1) / static_cast<S>(counted) : S(1);
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < T; ++t) {
      if (!token_counts(targets, mask, opt, b, t)) continue;
      const Index r = b * T + t;
      const auto x = logits.row(r);
      auto gr = g.row(r);
      const S m = x.maxCoeff();
      if (is_neg_inf(m)) {  // every logit -inf: the forward's loss is NaN (-inf - -inf)
        gr.setConstant(std::numeric_limits<S>::quiet_NaN());
        continue;
      }
      gr.array() = (x.array() - m).exp();  // vectorized; -inf logits fixed below
      for (Index j = 0; j < V; ++j)
        if (is_neg_inf(x(j))) gr(j) = S(0);  // exactly 0, also where exp() clamps
      gr *= w / gr.sum();  // a NaN or +inf logit makes the sum (and the row) NaN, as the loss
      gr(static_cast<Index>(targets(b, t))) -= w;
    }
  return g;
}

template <class Derived, class TargetDerived>
row_matrix<typename Derived::Scalar> nll_grad(const Eigen::MatrixBase<Derived>& log_probs,
                                              const Eigen::DenseBase<TargetDerived>& targets,
                                              const bool_matrix* mask, const loss_options& opt) {
  using S = typename Derived::Scalar;
  static_assert(!std::is_integral<S>::value,
                "emask::masked_nll_grad: log_probs must be float or double");
  const Index counted = counted_tokens<S>("masked_nll_grad", log_probs, targets, mask, opt);
  const Index B = targets.rows(), T = targets.cols();
  row_matrix<S> g = row_matrix<S>::Zero(B * T, log_probs.cols());
  if (counted == 0) return g;
  const S w = opt.reduction == loss_reduction::mean ? S(1) / static_cast<S>(counted) : S(1);
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < T; ++t)
      if (token_counts(targets, mask, opt, b, t))
        g(b * T + t, static_cast<Index>(targets(b, t))) = -w;
  return g;
}

}  // namespace detail

/// \brief Gradient of masked_cross_entropy(logits, targets, options).value with respect to
/// \p logits, [batch * time, vocab]: w * (softmax(row) - onehot(target)) for counted tokens
/// (w = 1 / counted for reduction mean, else 1), exactly 0 for the others; all 0 when no token
/// counts.
/// \param logits [batch * time, vocab] float or double logits.
/// \param targets [batch, time] integer class ids (ignore_index: not counted).
/// \param options ignore index and reduction, as masked_cross_entropy.
template <class Derived, class TargetDerived>
row_matrix<typename Derived::Scalar> masked_cross_entropy_grad(
    const Eigen::MatrixBase<Derived>& logits, const Eigen::DenseBase<TargetDerived>& targets,
    const loss_options& options = {}) {
  return detail::cross_entropy_grad(logits, targets, nullptr, options);
}

/// \brief Same for the overload with a [batch, time] keep \p mask: tokens whose mask entry is
/// false do not count.
template <class Derived, class TargetDerived>
row_matrix<typename Derived::Scalar> masked_cross_entropy_grad(
    const Eigen::MatrixBase<Derived>& logits, const Eigen::DenseBase<TargetDerived>& targets,
    const bool_matrix& mask, const loss_options& options = {}) {
  return detail::cross_entropy_grad(logits, targets, &mask, options);
}

/// \brief Gradient of masked_nll(log_probs, targets, options).value with respect to
/// \p log_probs: -w at (token, target) for counted tokens (w = 1 / counted for reduction mean,
/// else 1), exactly 0 elsewhere. Arguments as masked_nll.
template <class Derived, class TargetDerived>
row_matrix<typename Derived::Scalar> masked_nll_grad(const Eigen::MatrixBase<Derived>& log_probs,
                                                     const Eigen::DenseBase<TargetDerived>& targets,
                                                     const loss_options& options = {}) {
  return detail::nll_grad(log_probs, targets, nullptr, options);
}

/// \brief Same for the overload with a [batch, time] keep \p mask.
template <class Derived, class TargetDerived>
row_matrix<typename Derived::Scalar> masked_nll_grad(const Eigen::MatrixBase<Derived>& log_probs,
                                                     const Eigen::DenseBase<TargetDerived>& targets,
                                                     const bool_matrix& mask,
                                                     const loss_options& options = {}) {
  return detail::nll_grad(log_probs, targets, &mask, options);
}

EMASK_NAMESPACE_END
