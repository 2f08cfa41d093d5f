/// \file
/// \brief DQN helpers with action masks: masked max and argmax over Q-values, masked
/// epsilon-greedy, and masked TD targets (DQN and Double DQN) with terminal transitions.
///
/// Q-values are [batch x n] (row-major or any dense expression) and the legal actions a keep
/// mask of the same shape (bool_matrix, or an action_mask of a Discrete space). Only legal
/// positions are read: a NaN or garbage value at an illegal action has no effect. A NaN at a
/// legal position raises emask::error naming the row.
///
/// TD targets: y = r + gamma * (1 - done) * V(s') with V(s') = max over legal a' of
/// Q_target(s', a') (DQN), or Q_target(s', argmax over legal a' of Q_online(s', a')) (Double
/// DQN, van Hasselt et al. 2016). \c done means *terminated* (Gymnasium's `terminated`): such
/// rows do not bootstrap, their next Q-values are not read and their next mask may be empty.
/// A truncated (time-limit) transition is not terminal: pass done = false for it.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "emask/core/polarity.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/random/distributions.hpp"
#include "emask/random/philox.hpp"
#include "emask/rl/action_mask.hpp"

EMASK_NAMESPACE_BEGIN

namespace detail {

template <class S>
void check_q_scalar() {
  static_assert(std::is_same<S, float>::value || std::is_same<S, double>::value,
                "emask::masked DQN helpers: use float or double Q-values");
}

inline void check_q_shape(const char* where, const char* arg, Index rows, Index cols,
                          const bool_matrix& legal) {
  if (rows != legal.rows() || cols != legal.cols())
    fail_argument(where, arg, concat(rows, " x ", cols), legal.rows(), " x ", legal.cols(),
                  " (the shape of the legal-action mask)");
  if (cols < 1) fail_argument(where, arg, concat(rows, " x ", cols), "at least one action column");
}

/// Masked argmax of one row of Q; -1 when no action is legal. NaN at a legal position raises.
template <class Derived>
Index q_row_argmax(const char* where, const char* arg, const Eigen::MatrixBase<Derived>& q,
                   const bool_matrix& legal, Index b) {
  Index nan_at = -1;
  const Index best = legal_argmax(q.row(b).array(), legal.row(b), &nan_at);
  if (nan_at >= 0)
    fail_element(where, arg, concat(b, ", ", nan_at), q(b, nan_at),
                 "a number at a legal action (row ", b, ")");
  return best;
}

[[noreturn]] inline void fail_no_legal(const char* where, const char* arg, Index b, Index n) {
  fail_argument(where, arg, concat("no legal action in row ", b, " (", n, " actions, all masked)"),
                "at least one legal action in every row");
}

template <class Derived>
void check_vector(const char* where, const char* arg, const Eigen::DenseBase<Derived>& v,
                  Index batch) {
  if ((v.rows() != 1 && v.cols() != 1) || v.size() != batch)
    fail_argument(where, arg, concat(v.rows(), " x ", v.cols()), "a vector of ", batch,
                  " entries (one per row)");
}

template <class Derived>
auto vector_at(const Eigen::DenseBase<Derived>& v, Index b) {
  return v.rows() == 1 ? v(0, b) : v(b, 0);
}

inline void check_discrete(const char* where, const action_mask& m) {
  if (m.sub_spaces() != 1)
    fail_argument(where, "legal", concat("an action mask with ", m.sub_spaces(), " sub-spaces"),
                  "a Discrete action mask (one sub-space)");
}

template <class DR, class DD, class DQ>
void check_td_args(const char* where, const Eigen::DenseBase<DR>& reward,
                   const Eigen::DenseBase<DD>& done, const Eigen::MatrixBase<DQ>& next_q,
                   const bool_matrix& next_legal, double gamma) {
  check_q_scalar<typename DQ::Scalar>();
  check_q_shape(where, "next_q", next_q.rows(), next_q.cols(), next_legal);
  check_vector(where, "reward", reward, next_legal.rows());
  check_vector(where, "done", done, next_legal.rows());
  if (detail::is_nan(gamma) || !(gamma >= 0.0 && gamma <= 1.0))
    fail_argument(where, "gamma", gamma, "a value in [0, 1]");
}

}  // namespace detail

/// \brief Index of the largest Q-value among the legal actions of every row (ties: lowest
/// index). \pre every row has a legal action (emask::error names the row otherwise).
template <class Derived>
index_vector masked_q_argmax(const Eigen::MatrixBase<Derived>& q, const bool_matrix& legal) {
  const char* where = "masked_q_argmax";
  detail::check_q_scalar<typename Derived::Scalar>();
  detail::check_q_shape(where, "q", q.rows(), q.cols(), legal);
  index_vector out(q.rows());
  for (Index b = 0; b < q.rows(); ++b) {
    out[b] = detail::q_row_argmax(where, "q", q, legal, b);
    if (out[b] < 0) detail::fail_no_legal(where, "legal", b, q.cols());
  }
  return out;
}

/// \brief Largest Q-value among the legal actions of every row.
/// \pre every row has a legal action.
template <class Derived>
Eigen::Matrix<typename Derived::Scalar, Eigen::Dynamic, 1> masked_q_max(
    const Eigen::MatrixBase<Derived>& q, const bool_matrix& legal) {
  const char* where = "masked_q_max";
  detail::check_q_scalar<typename Derived::Scalar>();
  detail::check_q_shape(where, "q", q.rows(), q.cols(), legal);
  Eigen::Matrix<typename Derived::Scalar, Eigen::Dynamic, 1> out(q.rows());
  for (Index b = 0; b < q.rows(); ++b) {
    const Index a = detail::q_row_argmax(where, "q", q, legal, b);
    if (a < 0) detail::fail_no_legal(where, "legal", b, q.cols());
    out[b] = q(b, a);
  }
  return out;
}

/// \brief Masked epsilon-greedy: in each row, with probability \p epsilon a uniformly random
/// legal action, otherwise the greedy legal action (masked_q_argmax). Never returns an illegal
/// action.
///
/// Row b reads the Philox word stream (at.seed, at.sample, purpose::rl_explore, index = b):
/// word 0 explores when below ceil(epsilon * 2^32) (emask::bernoulli); the uniform choice among
/// the row's L legal actions is emask::bounded(stream, L) on the following words, and picks
/// the legal action of that rank. The result depends only on (at, row, q, legal). at.sample is
/// the step, a counter the caller advances every call; the rows of one call share it.
/// \pre 0 <= epsilon <= 1; every row has a legal action.
template <class Derived>
index_vector masked_epsilon_greedy(const Eigen::MatrixBase<Derived>& q, const bool_matrix& legal,
                                   double epsilon, random_address at) {
  const char* where = "masked_epsilon_greedy";
  detail::check_q_scalar<typename Derived::Scalar>();
  detail::check_q_shape(where, "q", q.rows(), q.cols(), legal);
  if (detail::is_nan(epsilon) || !(epsilon >= 0.0 && epsilon <= 1.0))
    detail::fail_argument(where, "epsilon", epsilon, "a probability in [0, 1]");
  if (q.rows() > Index(0xFFFFFFFF))
    detail::fail_argument(where, "q", detail::concat(q.rows(), " rows"), "at most 2^32 - 1 rows");
  const bernoulli explore(epsilon);
  index_vector out(q.rows());
  for (Index b = 0; b < q.rows(); ++b) {
    word_stream words(at.seed, at.sample, purpose::rl_explore, static_cast<std::uint32_t>(b));
    // The greedy action of every row, explored or not: a legal NaN raises either way.
    const Index greedy = detail::q_row_argmax(where, "q", q, legal, b);
    if (greedy < 0) detail::fail_no_legal(where, "legal", b, q.cols());
    if (explore(words.next())) {
      const Index count = static_cast<Index>(legal.row(b).count());
      Index rank = static_cast<Index>(bounded(words, static_cast<std::uint32_t>(count)));
      Index a = 0;
      for (;; ++a) {
        if (legal(b, a) && rank-- == 0) break;
      }
      out[b] = a;
    } else {
      out[b] = greedy;
    }
  }
  return out;
}

/// \brief DQN target r + gamma * (1 - done) * max over legal a' of next_q(s', a'), per row.
/// \param reward, done vectors of batch entries (done: bool or 0/1; true = terminated).
/// \param next_q target-network Q-values of the next states, [batch x n].
/// \param next_legal legal actions in the next states; a terminated row may have none.
/// \param gamma discount factor.
/// \pre 0 <= gamma <= 1; every non-terminal row has a legal next action.
template <class DR, class DD, class DQ>
Eigen::Matrix<typename DQ::Scalar, Eigen::Dynamic, 1> masked_td_target(
    const Eigen::DenseBase<DR>& reward, const Eigen::DenseBase<DD>& done,
    const Eigen::MatrixBase<DQ>& next_q, const bool_matrix& next_legal, double gamma) {
  using S = typename DQ::Scalar;
  const char* where = "masked_td_target";
  detail::check_td_args(where, reward, done, next_q, next_legal, gamma);
  Eigen::Matrix<S, Eigen::Dynamic, 1> y(next_q.rows());
  for (Index b = 0; b < next_q.rows(); ++b) {
    const S r = static_cast<S>(detail::vector_at(reward, b));
    if (static_cast<bool>(detail::vector_at(done, b))) {
      y[b] = r;
      continue;
    }
    const Index a = detail::q_row_argmax(where, "next_q", next_q, next_legal, b);
    if (a < 0) detail::fail_no_legal(where, "next_legal", b, next_q.cols());
    y[b] = r + static_cast<S>(gamma) * next_q(b, a);
  }
  return y;
}

/// \brief Double DQN target r + gamma * (1 - done) * next_q_target(s', a*) with a* the argmax
/// over legal a' of next_q_online(s', a'), per row. Arguments as masked_td_target.
template <class DR, class DD, class DO, class DT>
Eigen::Matrix<typename DT::Scalar, Eigen::Dynamic, 1> masked_double_td_target(
    const Eigen::DenseBase<DR>& reward, const Eigen::DenseBase<DD>& done,
    const Eigen::MatrixBase<DO>& next_q_online, const Eigen::MatrixBase<DT>& next_q_target,
    const bool_matrix& next_legal, double gamma) {
  using S = typename DT::Scalar;
  const char* where = "masked_double_td_target";
  detail::check_td_args(where, reward, done, next_q_target, next_legal, gamma);
  detail::check_q_scalar<typename DO::Scalar>();
  detail::check_q_shape(where, "next_q_online", next_q_online.rows(), next_q_online.cols(),
                        next_legal);
  Eigen::Matrix<S, Eigen::Dynamic, 1> y(next_q_target.rows());
  for (Index b = 0; b < next_q_target.rows(); ++b) {
    const S r = static_cast<S>(detail::vector_at(reward, b));
    if (static_cast<bool>(detail::vector_at(done, b))) {
      y[b] = r;
      continue;
    }
    const Index a = detail::q_row_argmax(where, "next_q_online", next_q_online, next_legal, b);
    if (a < 0) detail::fail_no_legal(where, "next_legal", b, next_q_online.cols());
    const S v = next_q_target(b, a);
    if (detail::is_nan(v))
      detail::fail_element(where, "next_q_target", detail::concat(b, ", ", a), v,
                           "a number at the action chosen by next_q_online");
    y[b] = r + static_cast<S>(gamma) * v;
  }
  return y;
}

/// \name action_mask overloads (Discrete spaces)
/// \{
/// \brief masked_q_argmax over the flat mask of a Discrete action_mask.
template <class Derived>
index_vector masked_q_argmax(const Eigen::MatrixBase<Derived>& q, const action_mask& legal) {
  detail::check_discrete("masked_q_argmax", legal);
  return masked_q_argmax(q, legal.flat());
}
/// \brief masked_q_max over the flat mask of a Discrete action_mask.
template <class Derived>
Eigen::Matrix<typename Derived::Scalar, Eigen::Dynamic, 1> masked_q_max(
    const Eigen::MatrixBase<Derived>& q, const action_mask& legal) {
  detail::check_discrete("masked_q_max", legal);
  return masked_q_max(q, legal.flat());
}
/// \brief masked_epsilon_greedy over the flat mask of a Discrete action_mask.
template <class Derived>
index_vector masked_epsilon_greedy(const Eigen::MatrixBase<Derived>& q, const action_mask& legal,
                                   double epsilon, random_address at) {
  detail::check_discrete("masked_epsilon_greedy", legal);
  return masked_epsilon_greedy(q, legal.flat(), epsilon, at);
}
/// \}

EMASK_NAMESPACE_END
