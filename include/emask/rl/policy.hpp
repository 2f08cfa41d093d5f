/// \file
/// \brief Masked categorical policies over logits: masked logits, probabilities,
/// log-probabilities, sampling, log-prob of given actions, entropy and argmax over legal
/// actions, for Discrete, MultiDiscrete and MultiBinary action spaces.
///
/// Logits are [batch x space.width()] in the flat layout of action_mask (sub-space i occupies
/// columns [offset(i), offset(i) + nvec[i])). Every sub-space is its own categorical
/// distribution over its legal actions; a MultiDiscrete action is one index per sub-space and
/// its log-probability and entropy are the sums over sub-spaces (as sb3-contrib's
/// MaskableMultiCategoricalDistribution). Probabilities come from emask's masked_softmax.
///
/// Fill modes: mask_fill::negative_infinity (default) gives masked logits -infinity, masked
/// probabilities exactly 0 and masked log-probabilities -infinity. mask_fill::sb3_compatible
/// reproduces sb3-contrib's MaskableCategorical and CleanRL's CategoricalMasked: masked logits
/// are replaced by -1e8 and the softmax runs over the whole row, so masked log-probabilities are
/// finite (about -1e8) and masked probabilities underflow to 0. Entropy, sampling, argmax and
/// log_prob of legal actions agree between the two modes whenever the legal logits are finite
/// and far above -1e8.
///
/// A NaN logit (or +infinity, or -infinity on every legal action of a sub-space) at a legal
/// position raises emask::error naming the row and the sub-space; values at masked positions are
/// never read.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "emask/config.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/kernels/softmax.hpp"
#include "emask/random/distributions.hpp"
#include "emask/random/philox.hpp"
#include "emask/rl/action_mask.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief What masked positions of the logits become.
enum class mask_fill : unsigned char {
  negative_infinity,  ///< -infinity: masked probability exactly 0, log-probability -infinity
  sb3_compatible      ///< -1e8 then an unmasked softmax, as sb3-contrib and CleanRL
};

/// \brief The fill value of mask_fill::sb3_compatible (sb3-contrib's HUGE_NEG).
inline constexpr double sb3_mask_value = -1e8;

namespace detail {

template <class S>
void check_policy_scalar() {
  static_assert(std::is_same<S, float>::value || std::is_same<S, double>::value,
                "emask::masked policy: use float or double logits (cast with .cast<float>())");
}

inline void check_policy_shape(const char* where, Index rows, Index cols, const action_mask& m) {
  if (rows != m.batch() || cols != m.width())
    fail_argument(where, "logits", concat(rows, " x ", cols), m.batch(), " x ", m.width(),
                  " (batch x sum(nvec) of the action mask)");
  if (m.batch() > Index(0xFFFFFFFF))
    fail_argument(where, "logits", concat(rows, " rows"), "at most 2^32 - 1 rows");
}

inline void check_fill(const char* where, mask_fill fill) {
  if (fill != mask_fill::negative_infinity && fill != mask_fill::sb3_compatible)
    fail_argument(where, "fill", static_cast<int>(fill), "negative_infinity or sb3_compatible");
}

/// What a policy accepts at legal positions (the "expected" part of its logits errors).
constexpr const char* finite_logits_expected =
    "finite logits (not NaN, not +infinity, not -infinity on every legal action) at legal "
    "positions";

/// Checks the log-sum-exp of every (row, sub-space): NaN means a NaN or +infinity logit, or
/// -infinity on every legal action, at a legal position.
template <class S>
void check_lse(const char* where, const Eigen::Matrix<S, Eigen::Dynamic, 1>& lse, Index i) {
  for (Index b = 0; b < lse.size(); ++b)
    if (!is_finite(lse[b]))
      fail_argument(where, "logits",
                    concat("a non-finite log-sum-exp (", lse[b], ") in row ", b, ", sub-space ", i),
                    finite_logits_expected);
}

/// Softmax (Log = false) or log-softmax (Log = true) of every sub-space into out.
template <bool Log, class S, class Derived>
void policy_softmax(const char* where, const Eigen::MatrixBase<Derived>& logits,
                    const action_mask& legal, mask_fill fill, row_matrix<S>& out) {
  check_policy_scalar<S>();
  check_policy_shape(where, logits.rows(), logits.cols(), legal);
  check_fill(where, fill);
  const Eigen::Ref<const row_matrix<S>, 0, Eigen::OuterStride<>> x(logits.derived());
  out.resize(x.rows(), x.cols());
  // An empty batch has nothing to compute (and column blocks of a 0-row matrix would offset a
  // null pointer inside Eigen).
  if (x.rows() == 0) return;
  Eigen::Matrix<S, Eigen::Dynamic, 1> lse(x.rows());
  const softmax_options o;
  const action_space& sp = legal.space();
  if (fill == mask_fill::negative_infinity) {
    for (Index i = 0; i < sp.sub_spaces(); ++i) {
      const Index off = sp.offset(i), n = sp.size(i);
      Eigen::Ref<row_matrix<S>> y(out.middleCols(off, n));
      if (sp.sub_spaces() == 1) {
        // Discrete: the flat mask itself, without the offset view.
        if (Log)
          masked_log_softmax(fused, x, as_mask(legal.flat()), y, lse, o);
        else
          masked_softmax(fused, x, as_mask(legal.flat()), y, lse, o);
      } else if (Log) {
        masked_log_softmax(fused, x.middleCols(off, n), legal.sub_space_view(i), y, lse, o);
      } else {
        masked_softmax(fused, x.middleCols(off, n), legal.sub_space_view(i), y, lse, o);
      }
      check_lse(where, lse, i);
    }
  } else {
    // sb3-contrib: logits = where(legal, logits, -1e8), then an ordinary softmax of the row.
    // -infinity on every legal action would hand the whole row to the illegal -1e8 entries:
    // it raises, as in the exact mode (a NaN counts as not -infinity; check_lse reports it).
    for (Index b = 0; b < x.rows(); ++b)
      for (Index i = 0; i < sp.sub_spaces(); ++i) {
        bool live = false;
        for (Index a = sp.offset(i); a < sp.offset(i + 1); ++a)
          live = live || (legal.flat()(b, a) && !(x(b, a) < std::numeric_limits<S>::lowest()));
        if (!live)
          fail_argument(where, "logits",
                        concat("-infinity at every legal action in row ", b, ", sub-space ", i),
                        finite_logits_expected);
      }
    const S big = static_cast<S>(sb3_mask_value);
    row_matrix<S> filled = legal.flat().select(x.array(), big).matrix();
    for (Index i = 0; i < sp.sub_spaces(); ++i) {
      const Index off = sp.offset(i), n = sp.size(i);
      const bool_matrix all = bool_matrix::Constant(x.rows(), n, true);
      Eigen::Ref<row_matrix<S>> y(out.middleCols(off, n));
      if (Log)
        masked_log_softmax(fused, filled.middleCols(off, n), all, y, lse, o);
      else
        masked_softmax(fused, filled.middleCols(off, n), all, y, lse, o);
      check_lse(where, lse, i);
      // A NaN at a legal position can hide behind a finite log-sum-exp only if it is NaN
      // itself, which check_lse caught; the -1e8 entries are finite by construction.
    }
  }
}

/// Inverse-CDF draw over one probability row p[0, n): the first action whose cumulative
/// probability exceeds u times the row total. masked_softmax writes exactly 0 at masked actions,
/// so a masked action never is the first to exceed the target (its cumulative sum equals its
/// predecessor's); the final check keeps that guarantee even for a hand-made p.
template <class S>
Index sample_row(const S* p, const bool* legal, Index n, double u) {
  double total = 0.0;
  for (Index a = 0; a < n; ++a) total += static_cast<double>(p[a]);
  const double target = u * total;
  double cum = 0.0;
  Index chosen = n - 1;
  for (Index a = 0; a < n; ++a) {
    cum += static_cast<double>(p[a]);
    if (cum > target) {
      chosen = a;
      break;
    }
  }
  if (EMASK_UNLIKELY(!legal[chosen] || !(p[chosen] > S(0)))) {
    // Rounding at the end of the row: the last legal action with positive mass.
    for (Index a = n - 1; a >= 0; --a)
      if (legal[a] && p[a] > S(0)) return a;
    for (Index a = 0; a < n; ++a)
      if (legal[a]) return a;
  }
  return chosen;
}

/// Draws one action per (row, sub-space) from probabilities laid out as the logits.
template <class S>
action_matrix sample_from_probs(const row_matrix<S>& probs, const action_mask& legal,
                                random_address at) {
  const action_space& sp = legal.space();
  action_matrix actions(legal.batch(), sp.sub_spaces());
  const Index rows = legal.batch();
#if EMASK_HAS_OPENMP
#pragma omp parallel for schedule(static) if (rows * legal.width() >= softmax_parallel_threshold)
#endif
  for (Index b = 0; b < rows; ++b) {
    word_stream words(at.seed, at.sample, purpose::rl_sample, static_cast<std::uint32_t>(b));
    const S* p = probs.data() + b * probs.cols();
    const bool* row_legal = legal.flat().data() + b * legal.width();
    for (Index i = 0; i < sp.sub_spaces(); ++i) {
      const std::uint32_t w0 = words.next();
      const std::uint32_t w1 = words.next();
      const Index off = sp.offset(i);
      actions(b, i) = sample_row(p + off, row_legal + off, sp.size(i), uniform_double(w0, w1));
    }
  }
  return actions;
}

/// True when \p actions is a vector of batch actions of a Discrete space (instead of a
/// [batch x 1] matrix); both forms are accepted.
template <class Derived>
bool vector_actions(const Eigen::DenseBase<Derived>& actions, const action_mask& legal) {
  return legal.sub_spaces() == 1 && actions.rows() == 1 && actions.cols() == legal.batch();
}

template <class Derived>
Index action_at(const Eigen::DenseBase<Derived>& actions, Index b, Index i, bool row_vector) {
  return static_cast<Index>(row_vector ? actions(0, b) : actions(b, i));
}

template <class Derived>
void check_actions(const char* where, const Eigen::DenseBase<Derived>& actions,
                   const action_mask& legal) {
  static_assert(std::is_integral<typename Derived::Scalar>::value,
                "emask::masked_log_prob: pass integer actions, [batch x sub-spaces]");
  const action_space& sp = legal.space();
  const bool row_vector = vector_actions(actions, legal);
  if (!row_vector && (actions.rows() != legal.batch() || actions.cols() != sp.sub_spaces()))
    fail_argument(where, "actions", concat(actions.rows(), " x ", actions.cols()), legal.batch(),
                  " x ", sp.sub_spaces(), " (batch x sub-spaces)");
  for (Index b = 0; b < legal.batch(); ++b) {
    for (Index i = 0; i < sp.sub_spaces(); ++i) {
      const Index a = action_at(actions, b, i, row_vector);
      if (a < 0 || a >= sp.size(i))
        fail_element(where, "actions", concat(b, ", ", i), a, "an action in [0, ", sp.size(i),
                     ") of sub-space ", i);
      if (!legal.legal(b, i, a))
        fail_element(where, "actions", concat(b, ", ", i), a, "a legal action (row ", b,
                     ", sub-space ", i, " masks action ", a, ")");
    }
  }
}

}  // namespace detail

/// \brief The logits with masked positions replaced: -infinity (default) or -1e8
/// (mask_fill::sb3_compatible). Legal positions are copied unchanged.
/// \pre logits is [legal.batch() x legal.width()].
template <class Derived>
row_matrix<typename Derived::Scalar> masked_logits(const Eigen::MatrixBase<Derived>& logits,
                                                   const action_mask& legal,
                                                   mask_fill fill = mask_fill::negative_infinity) {
  using S = typename Derived::Scalar;
  detail::check_policy_scalar<S>();
  detail::check_policy_shape("masked_logits", logits.rows(), logits.cols(), legal);
  detail::check_fill("masked_logits", fill);
  const S value = fill == mask_fill::negative_infinity ? detail::negative_infinity<S>()
                                                       : static_cast<S>(sb3_mask_value);
  return legal.flat().select(logits.derived().array(), value).matrix();
}

/// \brief Probabilities [batch x width]: within each sub-space the softmax over its legal
/// actions (masked positions 0), so each (row, sub-space) sums to 1.
template <class Derived>
row_matrix<typename Derived::Scalar> masked_probs(const Eigen::MatrixBase<Derived>& logits,
                                                  const action_mask& legal,
                                                  mask_fill fill = mask_fill::negative_infinity) {
  row_matrix<typename Derived::Scalar> out;
  detail::policy_softmax<false, typename Derived::Scalar>("masked_probs", logits, legal, fill, out);
  return out;
}

/// \brief Log-probabilities [batch x width]: within each sub-space the log-softmax over its
/// legal actions; masked positions are -infinity (sb3_compatible: the finite value sb3-contrib
/// gives, about -1e8).
template <class Derived>
row_matrix<typename Derived::Scalar> masked_log_probs(
    const Eigen::MatrixBase<Derived>& logits, const action_mask& legal,
    mask_fill fill = mask_fill::negative_infinity) {
  row_matrix<typename Derived::Scalar> out;
  detail::policy_softmax<true, typename Derived::Scalar>("masked_log_probs", logits, legal, fill,
                                                         out);
  return out;
}

/// \brief Samples one legal action per (row, sub-space) from the masked policy, [batch x
/// sub-spaces]. Row b draws from Philox stream (at.seed, at.sample, purpose::rl_sample,
/// index = b): two words per sub-space give a 53-bit uniform u, and the action is the first
/// legal one whose cumulative probability exceeds u. The result depends only on (at, row,
/// logits, legal), not on threads or on the other rows. Never returns an illegal action.
/// \param logits [batch x width] logits, \param legal the legal actions.
/// \param at the Philox key (seed) and the step as sample id: a counter the caller advances
/// every call (environment step, update number). In rl/ the rows of one call share the sample
/// id and are the index of the draw, so the first k rows alone draw what they draw in the batch.
template <class Derived>
action_matrix masked_sample(const Eigen::MatrixBase<Derived>& logits, const action_mask& legal,
                            random_address at) {
  using S = typename Derived::Scalar;
  row_matrix<S> probs;
  detail::policy_softmax<false, S>("masked_sample", logits, legal, mask_fill::negative_infinity,
                                   probs);
  return detail::sample_from_probs(probs, legal, at);
}

namespace detail {
template <class Derived, class DerivedA>
row_matrix<typename Derived::Scalar> log_prob_per_space(const char* where,
                                                        const Eigen::MatrixBase<Derived>& logits,
                                                        const action_mask& legal,
                                                        const Eigen::DenseBase<DerivedA>& actions,
                                                        mask_fill fill) {
  using S = typename Derived::Scalar;
  row_matrix<S> lp;
  policy_softmax<true, S>(where, logits, legal, fill, lp);
  check_actions(where, actions, legal);
  const bool row_vector = vector_actions(actions, legal);
  const action_space& sp = legal.space();
  row_matrix<S> out(legal.batch(), sp.sub_spaces());
  for (Index b = 0; b < legal.batch(); ++b)
    for (Index i = 0; i < sp.sub_spaces(); ++i)
      out(b, i) = lp(b, sp.offset(i) + action_at(actions, b, i, row_vector));
  return out;
}

template <class Derived>
row_matrix<typename Derived::Scalar> entropy_per_space(const char* where,
                                                       const Eigen::MatrixBase<Derived>& logits,
                                                       const action_mask& legal, mask_fill fill) {
  using S = typename Derived::Scalar;
  row_matrix<S> lp;
  policy_softmax<true, S>(where, logits, legal, fill, lp);
  const action_space& sp = legal.space();
  row_matrix<S> out(legal.batch(), sp.sub_spaces());
  for (Index b = 0; b < legal.batch(); ++b) {
    for (Index i = 0; i < sp.sub_spaces(); ++i) {
      S h = S(0);
      for (Index a = sp.offset(i); a < sp.offset(i + 1); ++a)
        // A legal -infinity logit has p = 0 and adds nothing (not 0 * -inf = NaN).
        if (legal.flat()(b, a) && !detail::is_neg_inf(lp(b, a)))  // bits: -ffast-math safe
          h -= std::exp(lp(b, a)) * lp(b, a);
      out(b, i) = h;
    }
  }
  return out;
}
}  // namespace detail

/// \brief Log-probability of the given actions, per (row, sub-space): [batch x sub-spaces].
/// \param actions integer [batch x sub-spaces] (a Discrete space also takes a row vector
/// [1 x batch]; a column vector is already [batch x 1]). An action out of range or illegal
/// raises emask::error naming row and sub-space.
/// \param logits [batch x width] logits, \param legal the legal actions,
/// \param fill the masked-logit fill (negative infinity, or -1e8 for sb3-contrib parity).
template <class Derived, class DerivedA>
row_matrix<typename Derived::Scalar> masked_log_prob_per_space(
    const Eigen::MatrixBase<Derived>& logits, const action_mask& legal,
    const Eigen::DenseBase<DerivedA>& actions, mask_fill fill = mask_fill::negative_infinity) {
  return detail::log_prob_per_space("masked_log_prob_per_space", logits, legal, actions, fill);
}

/// \brief Log-probability of the given actions summed over sub-spaces, one per row (the joint
/// log-probability of a MultiDiscrete action).
template <class Derived, class DerivedA>
Eigen::Matrix<typename Derived::Scalar, Eigen::Dynamic, 1> masked_log_prob(
    const Eigen::MatrixBase<Derived>& logits, const action_mask& legal,
    const Eigen::DenseBase<DerivedA>& actions, mask_fill fill = mask_fill::negative_infinity) {
  return detail::log_prob_per_space("masked_log_prob", logits, legal, actions, fill)
      .rowwise()
      .sum();
}

/// \brief Gradient of the joint log-probability of the given actions with respect to the
/// logits, [batch x width]: in sub-space i of row b, onehot(a_i) - p at legal positions and
/// exactly 0 at masked ones (masked logits are replaced by a constant, so they receive no
/// gradient: Huang and Ontanon 2020, section 3). The policy-gradient update of a linear or
/// tabular policy on Eigen is `advantage * gradient`. Arguments as masked_log_prob.
template <class Derived, class DerivedA>
row_matrix<typename Derived::Scalar> masked_log_prob_grad(
    const Eigen::MatrixBase<Derived>& logits, const action_mask& legal,
    const Eigen::DenseBase<DerivedA>& actions) {
  using S = typename Derived::Scalar;
  const char* where = "masked_log_prob_grad";
  row_matrix<S> g;
  detail::policy_softmax<false, S>(where, logits, legal, mask_fill::negative_infinity, g);
  detail::check_actions(where, actions, legal);
  const bool row_vector = detail::vector_actions(actions, legal);
  const action_space& sp = legal.space();
  g = -g;  // -p at legal positions, exactly 0 (negated) at masked ones
  for (Index b = 0; b < legal.batch(); ++b)
    for (Index i = 0; i < sp.sub_spaces(); ++i)
      g(b, sp.offset(i) + detail::action_at(actions, b, i, row_vector)) += S(1);
  // Masked entries are -0.0 after the negation: write a clean 0.
  g = legal.flat().select(g, S(0));
  return g;
}

/// \brief Entropy of each (row, sub-space) over its legal actions only, [batch x sub-spaces]:
/// -sum over legal a of p(a) log p(a), the entropy of the renormalized legal distribution
/// (sb3-contrib's MaskableCategorical.entropy). Masked actions contribute nothing.
template <class Derived>
row_matrix<typename Derived::Scalar> masked_entropy_per_space(
    const Eigen::MatrixBase<Derived>& logits, const action_mask& legal,
    mask_fill fill = mask_fill::negative_infinity) {
  return detail::entropy_per_space("masked_entropy_per_space", logits, legal, fill);
}

/// \brief Entropy summed over sub-spaces, one per row.
template <class Derived>
Eigen::Matrix<typename Derived::Scalar, Eigen::Dynamic, 1> masked_entropy(
    const Eigen::MatrixBase<Derived>& logits, const action_mask& legal,
    mask_fill fill = mask_fill::negative_infinity) {
  return detail::entropy_per_space("masked_entropy", logits, legal, fill).rowwise().sum();
}

/// \brief Gradient of masked_entropy (the sum over sub-spaces) with respect to the logits,
/// [batch x width]: in each (row, sub-space) with entropy H, -p_j (log p_j + H) at legal
/// positions j, exactly 0 at masked ones (masked logits are replaced by a constant) and at a
/// legal -infinity logit (p = 0; never 0 * -inf). Never NaN for valid logits.
///
/// mask_fill::sb3_compatible gives what autograd gives for sb3-contrib's entropy (masked
/// logits = -1e8, p log p of masked entries replaced by 0): -p_j (log p_j + H + M) with M the
/// probability the -1e8 entries keep. For legal logits above about -1e8 + 745 (double; + 104 for
/// float) M underflows to exactly 0 and both modes give the same gradient.
template <class Derived>
row_matrix<typename Derived::Scalar> masked_entropy_grad(
    const Eigen::MatrixBase<Derived>& logits, const action_mask& legal,
    mask_fill fill = mask_fill::negative_infinity) {
  using S = typename Derived::Scalar;
  row_matrix<S> lp;
  detail::policy_softmax<true, S>("masked_entropy_grad", logits, legal, fill, lp);
  const action_space& sp = legal.space();
  row_matrix<S> g = row_matrix<S>::Zero(legal.batch(), legal.width());
  for (Index b = 0; b < legal.batch(); ++b) {
    for (Index i = 0; i < sp.sub_spaces(); ++i) {
      S h = S(0), masked_mass = S(0);
      for (Index a = sp.offset(i); a < sp.offset(i + 1); ++a) {
        if (legal.flat()(b, a)) {
          if (!detail::is_neg_inf(lp(b, a))) h -= std::exp(lp(b, a)) * lp(b, a);
        } else if (fill == mask_fill::sb3_compatible) {
          masked_mass += std::exp(lp(b, a));  // finite log-probability (about -1e8)
        }
      }
      for (Index a = sp.offset(i); a < sp.offset(i + 1); ++a)
        if (legal.flat()(b, a) && !detail::is_neg_inf(lp(b, a)))
          g(b, a) = -std::exp(lp(b, a)) * (lp(b, a) + h + masked_mass);
    }
  }
  return g;
}

/// \brief The most likely legal action of each (row, sub-space), [batch x sub-spaces] (the
/// policy's mode). Ties go to the lowest index, as torch.argmax. A NaN logit at a legal position
/// raises emask::error.
template <class Derived>
action_matrix masked_argmax(const Eigen::MatrixBase<Derived>& logits, const action_mask& legal) {
  using S = typename Derived::Scalar;
  const char* where = "masked_argmax";
  detail::check_policy_scalar<S>();
  detail::check_policy_shape(where, logits.rows(), logits.cols(), legal);
  const Eigen::Ref<const row_matrix<S>, 0, Eigen::OuterStride<>> x(logits.derived());
  const action_space& sp = legal.space();
  action_matrix out(legal.batch(), sp.sub_spaces());
  for (Index b = 0; b < legal.batch(); ++b) {
    for (Index i = 0; i < sp.sub_spaces(); ++i) {
      const Index off = sp.offset(i), n = sp.size(i);
      Index nan_at = -1;
      const Index best = detail::legal_argmax(x.row(b).segment(off, n).array(),
                                              legal.flat().row(b).segment(off, n), &nan_at);
      if (nan_at >= 0)
        detail::fail_element(where, "logits", detail::concat(b, ", ", off + nan_at),
                             x(b, off + nan_at), "a number at a legal position (row ", b,
                             ", sub-space ", i, ")");
      out(b, i) = best;
    }
  }
  return out;
}

EMASK_NAMESPACE_END
