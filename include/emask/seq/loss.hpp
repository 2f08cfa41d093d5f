/// \file
/// \brief Masked cross-entropy and NLL over [batch, time, vocab] with an ignore index and a
/// token mask.
///
/// A token counts when its target differs from ignore_index and (if given) its mask entry is
/// true. Reductions: none (a [batch, time] matrix, 0 where the token does not count), sum, and
/// mean over counted tokens (PyTorch's CrossEntropyLoss(reduction='mean', ignore_index=-100)).
/// Keras' "sum_over_batch_size" divides the sum by batch * time instead, counted or not: pass
/// reduction sum and divide yourself if you need it. No counted token: sum and mean are 0.
#pragma once

#include <cmath>
#include <cstdint>

#include "emask/core/polarity.hpp"
#include "emask/seq/sequence_mask.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief How the per-token losses are reduced.
enum class loss_reduction { none, sum, mean };

/// \brief Options of masked_cross_entropy and masked_nll.
struct loss_options {
  std::int64_t ignore_index = -100;                 ///< targets equal to this do not count
  loss_reduction reduction = loss_reduction::mean;  ///< none, sum, or mean over counted tokens
};

/// \brief Result: per-token losses (reduction none) or the reduced value, and the token count.
template <class Scalar>
struct loss_result {
  row_matrix<Scalar> per_token;  ///< [batch, time] for reduction none, else empty
  Scalar value = 0;              ///< sum or mean (reduction none: the sum)
  Index counted = 0;             ///< tokens that counted
};

namespace detail {
/// Whether token (b, t) counts: its target is not ignore_index and its mask entry (if any) keeps
/// it. Shared with the gradients (loss_grad.hpp).
template <class TargetDerived>
bool token_counts(const Eigen::DenseBase<TargetDerived>& targets, const bool_matrix* mask,
                  const loss_options& opt, Index b, Index t) {
  const auto y = static_cast<std::int64_t>(targets(b, t));
  return !(y == opt.ignore_index || (mask && !(*mask)(b, t)));
}

template <class Scalar, class Derived, class TargetDerived, class RowLoss>
loss_result<Scalar> masked_token_loss(const char* where, const Eigen::MatrixBase<Derived>& x,
                                      const Eigen::DenseBase<TargetDerived>& targets,
                                      const bool_matrix* mask, const loss_options& opt,
                                      RowLoss&& row_loss) {
  static_assert(std::is_integral<typename TargetDerived::Scalar>::value,
                "emask: targets must be integer class ids");
  const Index B = targets.rows();
  if (B < 1) fail_argument(where, "targets.rows()", B, ">= 1");
  if (opt.reduction != loss_reduction::none && opt.reduction != loss_reduction::sum &&
      opt.reduction != loss_reduction::mean)
    fail_argument(where, "options.reduction", static_cast<int>(opt.reduction),
                  "loss_reduction::none, sum or mean");
  const Index T = time_steps(where, x.rows(), B, "targets.rows()");
  if (targets.cols() != T)
    fail_argument(where, "targets.cols()", targets.cols(), T, " (x.rows() / batch)");
  if (mask && (mask->rows() != B || mask->cols() != T))
    fail_argument(where, "mask", concat(mask->rows(), "x", mask->cols()), B, "x", T);
  const Index V = x.cols();
  // Validate every counted target first, so no partial result is produced on bad input.
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < T; ++t) {
      if (!token_counts(targets, mask, opt, b, t)) continue;
      const auto y = static_cast<std::int64_t>(targets(b, t));
      if (y < 0 || y >= V)
        fail_argument(where, concat("targets(", b, ", ", t, ")").c_str(), y, "a class in [0, ", V,
                      ") or ignore_index ", opt.ignore_index);
    }
  loss_result<Scalar> r;
  if (opt.reduction == loss_reduction::none) r.per_token = row_matrix<Scalar>::Zero(B, T);
  Scalar total = 0;
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < T; ++t) {
      if (!token_counts(targets, mask, opt, b, t)) continue;
      const auto y = static_cast<std::int64_t>(targets(b, t));
      const Scalar l = row_loss(x.row(b * T + t), static_cast<Index>(y));
      if (opt.reduction == loss_reduction::none) r.per_token(b, t) = l;
      total += l;
      ++r.counted;
    }
  r.value = (opt.reduction == loss_reduction::mean && r.counted > 0)
                ? total / static_cast<Scalar>(r.counted)
                : total;
  return r;
}
}  // namespace detail

namespace detail {
template <class Derived, class TargetDerived>
loss_result<typename Derived::Scalar> cross_entropy(const Eigen::MatrixBase<Derived>& logits,
                                                    const Eigen::DenseBase<TargetDerived>& targets,
                                                    const bool_matrix* mask,
                                                    const loss_options& opt) {
  using S = typename Derived::Scalar;
  static_assert(!std::is_integral<S>::value,
                "emask::masked_cross_entropy: logits must be float or double");
  const char* where = "masked_cross_entropy";
  if (logits.cols() < 1)
    fail_argument(where, "logits.cols()", logits.cols(), ">= 1 (vocabulary size)");
  return masked_token_loss<S>(where, logits, targets, mask, opt, [](const auto& row, Index y) {
    const S m = row.maxCoeff();
    const S lse = m + std::log((row.array() - m).exp().sum());
    return lse - row(y);
  });
}

template <class Derived, class TargetDerived>
loss_result<typename Derived::Scalar> nll(const Eigen::MatrixBase<Derived>& log_probs,
                                          const Eigen::DenseBase<TargetDerived>& targets,
                                          const bool_matrix* mask, const loss_options& opt) {
  using S = typename Derived::Scalar;
  static_assert(!std::is_integral<S>::value,
                "emask::masked_nll: log_probs must be float or double");
  return masked_token_loss<S>("masked_nll", log_probs, targets, mask, opt,
                              [](const auto& row, Index y) { return -row(y); });
}
}  // namespace detail

/// \brief Cross-entropy of logits \p logits ([batch * time, vocab]) against integer \p targets
/// ([batch, time]), skipping ignore_index. Uses a stable log-sum-exp per row; a NaN logit makes
/// that token's loss NaN.
template <class Derived, class TargetDerived>
loss_result<typename Derived::Scalar> masked_cross_entropy(
    const Eigen::MatrixBase<Derived>& logits, const Eigen::DenseBase<TargetDerived>& targets,
    const loss_options& opt = {}) {
  return detail::cross_entropy(logits, targets, nullptr, opt);
}

/// \brief Cross-entropy that also skips the tokens whose \p mask entry ([batch, time], true =
/// keep) is false.
template <class Derived, class TargetDerived>
loss_result<typename Derived::Scalar> masked_cross_entropy(
    const Eigen::MatrixBase<Derived>& logits, const Eigen::DenseBase<TargetDerived>& targets,
    const bool_matrix& mask, const loss_options& opt = {}) {
  return detail::cross_entropy(logits, targets, &mask, opt);
}

/// \brief Negative log-likelihood of log-probabilities \p log_probs ([batch * time, vocab]):
/// loss = -log_probs(token, target), with the same ignore index and reductions.
template <class Derived, class TargetDerived>
loss_result<typename Derived::Scalar> masked_nll(const Eigen::MatrixBase<Derived>& log_probs,
                                                 const Eigen::DenseBase<TargetDerived>& targets,
                                                 const loss_options& opt = {}) {
  return detail::nll(log_probs, targets, nullptr, opt);
}

/// \brief Negative log-likelihood that also skips the tokens whose \p mask entry ([batch, time],
/// true = keep) is false.
template <class Derived, class TargetDerived>
loss_result<typename Derived::Scalar> masked_nll(const Eigen::MatrixBase<Derived>& log_probs,
                                                 const Eigen::DenseBase<TargetDerived>& targets,
                                                 const bool_matrix& mask,
                                                 const loss_options& opt = {}) {
  return detail::nll(log_probs, targets, &mask, opt);
}

EMASK_NAMESPACE_END
