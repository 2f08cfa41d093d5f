// libFuzzer harness over emask's RL action masking (rl/action_mask, rl/policy, rl/dqn) and the
// random maskers (random/mlm, whole_word, span, t5, patch, feature, and the training-recipe
// maskers diffusion, maskgit, block_masks, audio_span), float and double.
//
// The first input byte picks the target (policy float, policy double, DQN, BERT MLM, whole-word,
// SpanBERT, T5, MAE + MGD, recipes); the following bytes are decoded, in order, into its shapes
// (batch 0..8; 1..40 actions, or a MultiDiscrete nvec of 1..4 sub-spaces of 1..10 actions, or
// MultiBinary(1..4); token rows of width 0..48), keep flags (random bits, all legal, one legal,
// sparse; a (row, sub-space) is sometimes left without a legal action), values (one byte picks a
// special value: +-inf, NaN, +-1e38, denormals, 0, +-88, or a small float from the following
// bytes), vocabularies with special ids, lengths, probabilities (sometimes outside [0, 1] or
// NaN), seeds and sample ids (some just below 2^32). An exhausted input reads as zeros, so every
// input is valid.
//
// Asserted (abort = finding):
// - no crash, no sanitizer report (build with -fsanitize=fuzzer,address,undefined);
// - every documented bad argument raises emask::error ("emask::..." message) naming an argument
//   that is bad; valid arguments never raise. Action masks with a (row, sub-space) without a
//   legal action are rejected by every constructor, naming the row and the sub-space; the DQN
//   helpers and TD targets name the row (terminated rows are never read); a NaN (or +inf, or
//   -inf on every legal action) legal logit raises in the policy functions, a NaN legal logit
//   in masked_argmax, a NaN legal Q-value in the DQN helpers;
// - values at illegal actions change nothing: every RL output (and error) is bit-identical to
//   the one with those logits / Q-values set to 0;
// - policy (valid logits): masked_logits copies legal logits bit for bit and fills -inf / -1e8;
//   probabilities are exactly 0 at illegal actions, in [0, 1], sum to 1 per (row, sub-space)
//   within 1e-3 (float) / 1e-9 (double); log-probabilities are -inf at illegal actions and
//   agree with log(p); entropy (of a sub-space whose legal logits are finite; K2) is not NaN,
//   in [-tol, log(legal count) + tol] and equals -sum p log p; sampled, argmax and epsilon-greedy
//   actions are in range and legal (sampled: with p > 0), argmax is the first maximum; the same
//   seed gives the same samples, and the first k rows of a batch give the same samples alone;
//   log_prob of a sampled action is the log-probability entry and is finite; the gradient is onehot
//   - p at legal actions and +0 at illegal ones; an illegal or out-of-range action raises naming
//   actions[row, sub-space]; sb3_compatible agrees with the exact mode when legal logits are finite
//   and >= -1e6;
// - DQN: argmax / max / epsilon-greedy equal a reference written from docs/rl.md (Philox stream
//   (seed, step, rl_explore, row), bernoulli, bounded); epsilon 0 is greedy; TD and Double DQN
//   targets equal r + gamma * Q(s', a*) (terminal rows: r), for vector and row-vector inputs;
// - random maskers: labels are ignore_index exactly where nothing was selected and the original
//   id elsewhere; selected positions lie inside the row length and are selectable (in the
//   vocabulary, not special, not pad_id); unselected ids are unchanged; replaced ids are
//   mask_id, the original or a random id from the documented pool; probabilities 0 and 1 give
//   none / all; the same random_address gives identical output; two calls over a split batch
//   (the second at sample + k) give the batch's output; in place into a block of a larger buffer
//   equals out of place and touches nothing else; MLM, whole-word, span, T5 segmentation, MAE
//   shuffles and MGD drops equal references written from docs/random.md; whole words are taken
//   whole and within HF's budget, spans within the budget with at most one cut word; T5 sizes,
//   sentinels and the reconstruction of the row from inputs and targets; MAE keeps exactly
//   int(L (1 - ratio)) patches per row, ids_restore inverts ids_shuffle; MGD application zeroes
//   exactly the dropped features.
//
// Seed corpus: tests/fuzz/corpus_masks (one file per case: tiny shapes, an all-illegal row,
// NaN / inf logits, a legal -inf, a large batch, MultiDiscrete, MultiBinary, DQN with empty rows,
// probabilities 0 and 1 and NaN, each random masker).
// Build and run: bash tools/ci/fuzz.sh (or see the comment there).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <emask/random/audio_span.hpp>
#include <emask/random/block_masks.hpp>
#include <emask/random/diffusion.hpp>
#include <emask/random/feature.hpp>
#include <emask/random/maskgit.hpp>
#include <emask/random/mlm.hpp>
#include <emask/random/patch.hpp>
#include <emask/random/span.hpp>
#include <emask/random/t5.hpp>
#include <emask/random/whole_word.hpp>
#include <emask/rl/action_mask.hpp>
#include <emask/rl/dqn.hpp>
#include <emask/rl/policy.hpp>

#include "byte_source.hpp"

namespace {

using emask::action_mask;
using emask::action_matrix;
using emask::bool_matrix;
using emask::Index;
using emask::index_vector;
using emask::row_matrix;
using emask::token_matrix;
using emask_fuzz::byte_source;
using emask_fuzz::special_value;
template <class S>
using vec = Eigen::Matrix<S, Eigen::Dynamic, 1>;

// Defects this harness found, fixed in the library and asserted here:
//  K1: masked_epsilon_greedy did not raise for a NaN Q-value at a legal action of a row that
//      explores.
//  K2: masked_entropy was NaN (0 * -inf) when a legal logit was -inf beside finite ones.
//  K3: mask_fill::sb3_compatible did not raise when every legal logit of a sub-space was -inf,
//      and put the probability on the illegal actions.
//  K4: on x86-64 builds without AVX, a kept -inf score got probability 2.9e-39 (float) /
//      5.6e-309 (double) instead of 0 (Eigen's vectorized exp clamps its argument).

const char* g_target = "";

// A probability: usually valid (0, 1, a default, 0.5, uniform), 1/32 of the time outside [0, 1]
// or NaN (then *bad is set).
double decode_prob(byte_source& s, double usual, bool* bad) {
  const std::uint8_t c = s.byte();
  *bad = false;
  if (c >= 248) {
    *bad = true;
    switch (c % 4) {
      case 0: return -0.25;
      case 1: return 1.5;
      case 2: return std::nan("");
      default: return 1.0000001;
    }
  }
  switch (c % 8) {
    case 0: return usual;
    case 1: return 0.0;
    case 2: return 1.0;
    case 3: return 0.5;
    default: return s.uniform();
  }
}

[[noreturn]] void finding(const char* what, Index row, double a, double b,
                          const std::string& detail = std::string()) {
  std::fprintf(stderr, "FINDING: %s (%s, row %ld): %.17g %.17g%s%s\n", what, g_target,
               static_cast<long>(row), a, b, detail.empty() ? "" : ": ", detail.c_str());
  std::abort();
}

void check(bool ok, const char* what, Index row = -1, double a = 0, double b = 0) {
  if (!ok) finding(what, row, a, b);
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string str(Index v) { return std::to_string(static_cast<long long>(v)); }

// The message of the emask::error f raises, or "" when it returns. Any other exception escapes
// and is reported by libFuzzer.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const emask::error& e) {
    const std::string m = e.what();
    if (m.compare(0, 7, "emask::") != 0 || !contains(m, "argument '"))
      finding("error message not of the documented form", -1, 0, 0, m);
    return m;
  }
  return std::string();
}

// An error was raised and its message contains one of the expected parts.
void expect_error(const std::string& msg, const std::vector<std::string>& parts, const char* what) {
  if (msg.empty()) finding(what, -1, 0, 0, "no emask::error raised");
  for (const std::string& p : parts)
    if (contains(msg, p)) return;
  std::string expected;
  for (const std::string& p : parts) expected += " [" + p + "]";
  finding(what, -1, 0, 0, "message '" + msg + "' has none of" + expected);
}

void expect_no_error(const std::string& msg, const char* what) {
  if (!msg.empty()) finding(what, -1, 0, 0, msg);
}

// "argument 'name" for each bad argument name.
std::vector<std::string> argument_parts(const std::vector<std::string>& names) {
  std::vector<std::string> parts;
  for (const std::string& n : names) parts.push_back("argument '" + n);
  return parts;
}

// Same shape and the same bytes in every element (NaN-aware, -0 != +0).
template <class A, class B>
bool same_bits(const A& a, const B& b) {
  using T = typename A::Scalar;
  static_assert(std::is_same<T, typename B::Scalar>::value, "same scalar type");
  if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
  for (Index i = 0; i < a.rows(); ++i)
    for (Index j = 0; j < a.cols(); ++j) {
      const T x = a(i, j), y = b(i, j);
      if (std::memcmp(&x, &y, sizeof(T)) != 0) return false;
    }
  return true;
}

bool approx(double a, double b, double tol) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (a == b) return true;
  return std::abs(a - b) <= tol * std::max(1.0, std::abs(b));
}

// Keep flags [batch x sum(nvec)]: random bits, all legal, one legal per (row, sub-space), or
// sparse bits. A (row, sub-space) left without a legal action gets one with probability
// fix_prob; *has_empty tells whether one stayed empty.
bool_matrix decode_legal(byte_source& s, Index batch, const std::vector<Index>& nvec,
                         double fix_prob, bool* has_empty) {
  Index width = 0;
  for (Index n : nvec) width += n;
  bool_matrix legal = bool_matrix::Constant(batch, width, false);
  const Index mode = s.between(0, 3);
  unsigned bits = 0;
  for (Index b = 0; b < batch; ++b) {
    Index off = 0;
    for (Index n : nvec) {
      if (mode == 2) {
        legal(b, off + s.between(0, n - 1)) = true;
      } else {
        for (Index a = 0; a < n; ++a) {
          const Index k = b * width + off + a;
          if (k % 8 == 0) bits = mode == 3 ? (s.byte() & s.byte()) : s.byte();
          legal(b, off + a) = mode == 1 || ((bits >> (k % 8)) & 1u);
        }
      }
      off += n;
    }
  }
  *has_empty = false;
  for (Index b = 0; b < batch; ++b) {
    Index off = 0;
    for (Index n : nvec) {
      bool any = false;
      for (Index a = 0; a < n; ++a) any = any || legal(b, off + a);
      if (!any) {
        if (s.coin(fix_prob))
          legal(b, off + s.between(0, n - 1)) = true;
        else
          *has_empty = true;
      }
      off += n;
    }
  }
  return legal;
}

// ---------------------------------------------------------------------------------------------
// RL: masked categorical policy

template <class S>
struct policy_out {
  std::string e_probs, e_log_probs, e_sample, e_entropy, e_argmax, e_probs_sb3, e_log_probs_sb3,
      e_entropy_sb3;
  row_matrix<S> logits_inf, logits_sb3, probs, log_probs, probs_sb3, log_probs_sb3, entropy_space,
      entropy_space_sb3;
  vec<S> entropy;
  action_matrix sample, argmax;
};

template <class S>
policy_out<S> run_policy(const row_matrix<S>& x, const action_mask& m, std::uint64_t seed,
                         std::uint64_t step) {
  const auto sb3 = emask::mask_fill::sb3_compatible;
  policy_out<S> o;
  o.logits_inf = emask::masked_logits(x, m);
  o.logits_sb3 = emask::masked_logits(x, m, sb3);
  o.e_probs = error_of([&] { o.probs = emask::masked_probs(x, m); });
  o.e_log_probs = error_of([&] { o.log_probs = emask::masked_log_probs(x, m); });
  o.e_sample = error_of([&] { o.sample = emask::masked_sample(x, m, {seed, step}); });
  o.e_entropy = error_of([&] {
    o.entropy_space = emask::masked_entropy_per_space(x, m);
    o.entropy = emask::masked_entropy(x, m);
  });
  o.e_argmax = error_of([&] { o.argmax = emask::masked_argmax(x, m); });
  o.e_probs_sb3 = error_of([&] { o.probs_sb3 = emask::masked_probs(x, m, sb3); });
  o.e_log_probs_sb3 = error_of([&] { o.log_probs_sb3 = emask::masked_log_probs(x, m, sb3); });
  o.e_entropy_sb3 =
      error_of([&] { o.entropy_space_sb3 = emask::masked_entropy_per_space(x, m, sb3); });
  return o;
}

template <class S>
void same_policy(const policy_out<S>& a, const policy_out<S>& b) {
  const char* what = "values at illegal actions changed a policy output";
  check(a.e_probs == b.e_probs && a.e_log_probs == b.e_log_probs && a.e_sample == b.e_sample &&
            a.e_entropy == b.e_entropy && a.e_argmax == b.e_argmax &&
            a.e_probs_sb3 == b.e_probs_sb3 && a.e_log_probs_sb3 == b.e_log_probs_sb3 &&
            a.e_entropy_sb3 == b.e_entropy_sb3,
        "values at illegal actions changed whether a policy function raises");
  check(same_bits(a.logits_inf, b.logits_inf) && same_bits(a.logits_sb3, b.logits_sb3), what, 0);
  check(same_bits(a.probs, b.probs) && same_bits(a.log_probs, b.log_probs), what, 1);
  check(same_bits(a.probs_sb3, b.probs_sb3) && same_bits(a.log_probs_sb3, b.log_probs_sb3), what,
        2);
  check(same_bits(a.entropy_space, b.entropy_space) && same_bits(a.entropy, b.entropy) &&
            same_bits(a.entropy_space_sb3, b.entropy_space_sb3),
        what, 3);
  check(a.sample == b.sample && a.argmax == b.argmax, what, 4);
}

template <class S>
void fuzz_policy(byte_source& s) {
  const double tol = sizeof(S) == 4 ? 1e-3 : 1e-9;
  const S inf = std::numeric_limits<S>::infinity();
  const int kind = static_cast<int>(s.between(0, 2));  // Discrete, MultiDiscrete, MultiBinary
  const Index batch = s.between(0, 8);
  std::vector<Index> nvec;
  if (kind == 0) {
    nvec.push_back(s.between(1, 40));
  } else {
    const Index k = s.between(1, 4);
    for (Index i = 0; i < k; ++i) nvec.push_back(kind == 1 ? s.between(1, 10) : 2);
  }
  std::vector<Index> off{0};
  for (Index n : nvec) off.push_back(off.back() + n);
  const Index width = off.back(), subs = static_cast<Index>(nvec.size());
  bool has_empty = false;
  const bool_matrix legal = decode_legal(s, batch, nvec, 0.9, &has_empty);
  const bool nonfinite = s.coin(0.5);
  row_matrix<double> xd(batch, width);
  for (Index i = 0; i < xd.size(); ++i) xd.data()[i] = special_value(s, nonfinite);
  const std::uint64_t seed = s.u64(), step = s.u64();
  const Index k_rows = s.between(0, batch);

  const emask::action_space space =
      kind == 0 ? emask::action_space::discrete(nvec[0])
                : (kind == 1 ? emask::action_space::multi_discrete(emask::index_list(nvec))
                             : emask::action_space::multi_binary(subs));
  auto make = [&](const bool_matrix& flags) {
    if (kind == 0) return action_mask::discrete(flags);
    if (kind == 1) return action_mask::multi_discrete(emask::index_list(nvec), flags);
    return action_mask::multi_binary(flags);
  };

  if (has_empty) {
    std::vector<std::string> parts;
    for (Index b = 0; b < batch; ++b)
      for (Index i = 0; i < subs; ++i) {
        bool any = false;
        for (Index a = off[i]; a < off[i + 1]; ++a) any = any || legal(b, a);
        if (!any)
          parts.push_back("argument 'legal' = no legal action in row " + str(b) + ", sub-space " +
                          str(i) + " (");
      }
    const char* what = "action_mask accepted a (row, sub-space) without a legal action";
    expect_error(error_of([&] { make(legal); }), parts, what);
    expect_error(error_of([&] { action_mask::from_array(space, legal); }), parts, what);
    expect_error(error_of([&] { action_mask::from_array(space, legal.cast<int>()); }), parts, what);
    expect_error(error_of([&] {
                   action_mask::from_callback(space, batch,
                                              [&](Index b, Index j) { return legal(b, j); });
                 }),
                 parts, what);
    return;
  }

  const action_mask m = make(legal);
  check(m.batch() == batch && m.width() == width && m.sub_spaces() == subs, "action_mask shape");
  check(m.space() == space, "action_mask space");
  check(same_bits(m.flat(), legal), "action_mask flat() differs from the flags");
  check(same_bits(action_mask::from_array(space, legal.cast<int>()).flat(), legal),
        "action_mask::from_array(int) differs");
  check(same_bits(action_mask::from_callback(space, batch,
                                             [&](Index b, Index i, Index a) {
                                               return legal(b,
                                                            off[static_cast<std::size_t>(i)] + a);
                                             })
                      .flat(),
                  legal),
        "action_mask::from_callback differs");
  for (Index i = 0; i < subs; ++i) {
    const bool_matrix sub = m.sub_mask(i);
    check(sub.rows() == batch && sub.cols() == nvec[i], "sub_mask shape", i);
    for (Index b = 0; b < batch; ++b) {
      Index count = 0;
      for (Index a = 0; a < nvec[i]; ++a) {
        check(m.legal(b, i, a) == legal(b, off[i] + a), "action_mask::legal", b);
        check(sub(b, a) == legal(b, off[i] + a), "sub_mask", b);
        count += legal(b, off[i] + a) ? 1 : 0;
      }
      check(m.legal_count(b, i) == count, "legal_count", b, double(m.legal_count(b, i)), count);
    }
  }

  const row_matrix<S> x = xd.cast<S>();
  // Which (row, sub-space) must raise, and which legal logits are NaN.
  std::vector<std::string> bad_parts, nan_parts;
  bool sb3_tame = true;  // legal logits finite and >= -1e6: both fill modes agree
  for (Index b = 0; b < batch; ++b)
    for (Index i = 0; i < subs; ++i) {
      bool bad = false, usable = false;
      for (Index j = off[i]; j < off[i + 1]; ++j) {
        if (!legal(b, j)) continue;
        const S v = x(b, j);
        if (std::isnan(v)) {
          bad = true;
          nan_parts.push_back("argument 'logits[" + str(b) + ", " + str(j) + "]'");
        } else if (v == inf) {
          bad = true;
        } else if (v > -inf) {
          usable = true;
        }
        if (!(std::isfinite(v) && v >= S(-1e6))) sb3_tame = false;
      }
      if (bad || !usable) bad_parts.push_back("in row " + str(b) + ", sub-space " + str(i) + ",");
    }

  const policy_out<S> out = run_policy(x, m, seed, step);
  // Values at illegal actions are never read.
  const row_matrix<S> x0 = legal.select(x.array(), S(0)).matrix();
  same_policy(out, run_policy(x0, m, seed, step));

  for (Index b = 0; b < batch; ++b)
    for (Index j = 0; j < width; ++j) {
      const S v = x(b, j), li = out.logits_inf(b, j), ls = out.logits_sb3(b, j);
      if (legal(b, j)) {
        check(std::memcmp(&v, &li, sizeof(S)) == 0 && std::memcmp(&v, &ls, sizeof(S)) == 0,
              "masked_logits changed a legal logit", b, double(li), double(v));
      } else {
        check(li == -inf, "masked_logits: illegal entry not -inf", b, double(li));
        check(ls == static_cast<S>(emask::sb3_mask_value), "masked_logits: sb3 fill not -1e8", b,
              double(ls));
      }
    }

  // argmax: raises exactly for a NaN at a legal logit.
  if (!nan_parts.empty()) {
    expect_error(out.e_argmax, nan_parts, "masked_argmax: NaN legal logit not reported");
  } else {
    expect_no_error(out.e_argmax, "masked_argmax raised without a NaN legal logit");
    check(out.argmax.rows() == batch && out.argmax.cols() == subs, "masked_argmax shape");
    for (Index b = 0; b < batch; ++b)
      for (Index i = 0; i < subs; ++i) {
        const Index a = out.argmax(b, i);
        check(a >= 0 && a < nvec[i] && legal(b, off[i] + a), "masked_argmax: illegal action", b,
              double(a));
        const S best = x(b, off[i] + a);
        for (Index c = 0; c < nvec[i]; ++c) {
          if (!legal(b, off[i] + c)) continue;
          const S v = x(b, off[i] + c);
          check(v <= best, "masked_argmax: a legal logit is larger", b, double(v), double(best));
          check(c >= a || v < best, "masked_argmax: tie not resolved to the lowest index", b,
                double(c), double(a));
        }
      }
  }

  // Legal actions of every (row, sub-space): the first one (for calls that need any action).
  action_matrix first_legal(batch, subs);
  for (Index b = 0; b < batch; ++b)
    for (Index i = 0; i < subs; ++i) {
      Index a = 0;
      while (!legal(b, off[i] + a)) ++a;
      first_legal(b, i) = a;
    }

  if (!bad_parts.empty()) {
    const char* what = "policy: non-finite legal logits not reported";
    expect_error(out.e_probs, bad_parts, what);
    expect_error(out.e_log_probs, bad_parts, what);
    expect_error(out.e_sample, bad_parts, what);
    expect_error(out.e_entropy, bad_parts, what);
    expect_error(error_of([&] { emask::masked_log_prob(x, m, first_legal); }), bad_parts, what);
    expect_error(error_of([&] { emask::masked_log_prob_grad(x, m, first_legal); }), bad_parts,
                 what);
    {  // K3
      expect_error(out.e_probs_sb3, bad_parts, "policy (sb3 fill): bad legal logits not reported");
      expect_error(out.e_log_probs_sb3, bad_parts,
                   "policy (sb3 fill): bad legal logits not reported");
    }
    return;
  }
  const char* what = "policy raised for valid logits";
  expect_no_error(out.e_probs, what);
  expect_no_error(out.e_log_probs, what);
  expect_no_error(out.e_sample, what);
  expect_no_error(out.e_entropy, what);
  expect_no_error(out.e_probs_sb3, what);
  expect_no_error(out.e_log_probs_sb3, what);
  expect_no_error(out.e_entropy_sb3, what);
  check(out.probs.rows() == batch && out.probs.cols() == width, "masked_probs shape");
  check(out.log_probs.rows() == batch && out.log_probs.cols() == width, "masked_log_probs shape");
  check(out.sample.rows() == batch && out.sample.cols() == subs, "masked_sample shape");
  check(out.entropy_space.rows() == batch && out.entropy_space.cols() == subs &&
            out.entropy.size() == batch,
        "masked_entropy shape");

  const S tiny = std::numeric_limits<S>::min();
  for (Index b = 0; b < batch; ++b) {
    double entropy_sum = 0;
    for (Index i = 0; i < subs; ++i) {
      double sum = 0, sum_exp = 0, h_ref = 0;
      Index count = 0;
      for (Index j = off[i]; j < off[i + 1]; ++j) {
        const S p = out.probs(b, j), lp = out.log_probs(b, j);
        if (!legal(b, j)) {
          check(p == S(0), "masked_probs: illegal action has a probability", b, double(p));
          check(lp == -inf, "masked_log_probs: illegal action not -inf", b, double(lp));
          continue;
        }
        ++count;
        check(p >= S(0) && p <= S(1), "masked_probs: probability outside [0, 1]", b, double(p));
        if (x(b, j) == -inf)  // K4
          check(p == S(0) && lp == -inf, "masked_probs: a legal -inf logit has a probability", b,
                double(p), double(lp));
        check(!std::isnan(lp) && lp <= S(tol), "masked_log_probs: NaN or positive", b, double(lp));
        if (p >= tiny)
          check(approx(double(lp), std::log(double(p)), tol), "log_probs differ from log(probs)", b,
                double(lp), std::log(double(p)));
        sum += double(p);
        sum_exp += std::exp(double(lp));
        // from lp: a legal logit far below the others can get a denormal p of about 3e-39
        // (float) from the vectorized exp, which times an lp of -1e38 is not negligible
        if (lp > -inf) h_ref -= std::exp(double(lp)) * double(lp);
      }
      check(std::abs(sum - 1.0) <= tol, "masked_probs: sub-space does not sum to one", b, sum, i);
      check(std::abs(sum_exp - 1.0) <= tol, "masked_log_probs: exp does not sum to one", b, sum_exp,
            i);
      const double h = double(out.entropy_space(b, i));
      {  // K2: a legal -inf beside finite logits once gave NaN
        check(!std::isnan(h), "masked_entropy: NaN for valid logits", b, h, i);
        check(h >= -tol && h <= std::log(double(count)) + tol,
              "masked_entropy outside [0, log(legal count)]", b, h, std::log(double(count)));
        check(approx(h, h_ref, tol), "masked_entropy differs from -sum p log p", b, h, h_ref);
      }
      entropy_sum += h;
    }
    if (!std::isnan(entropy_sum))
      check(approx(double(out.entropy(b)), entropy_sum, tol),
            "masked_entropy differs from the sum over sub-spaces", b, double(out.entropy(b)),
            entropy_sum);
  }

  // Sampling: legal, p > 0, reproducible, independent of the rows below.
  for (Index b = 0; b < batch; ++b)
    for (Index i = 0; i < subs; ++i) {
      const Index a = out.sample(b, i);
      check(a >= 0 && a < nvec[i], "masked_sample: action out of range", b, double(a));
      check(legal(b, off[i] + a), "masked_sample: illegal action", b, double(a));
      check(out.probs(b, off[i] + a) > S(0), "masked_sample: action of probability 0", b,
            double(a));
    }
  check(emask::masked_sample(x, m, {seed, step}) == out.sample,
        "masked_sample: same seed, different actions");
  if (k_rows > 0) {
    const row_matrix<S> top = x.topRows(k_rows);
    const action_matrix sk =
        emask::masked_sample(top, make(bool_matrix(legal.topRows(k_rows))), {seed, step});
    check(sk == out.sample.topRows(k_rows), "masked_sample: rows depend on the rows below", k_rows);
  }

  // log_prob of the sampled actions, and its gradient.
  const row_matrix<S> lpps = emask::masked_log_prob_per_space(x, m, out.sample);
  const vec<S> lp = emask::masked_log_prob(x, m, out.sample);
  check(lpps.rows() == batch && lpps.cols() == subs && lp.size() == batch, "log_prob shape");
  for (Index b = 0; b < batch; ++b) {
    double sum = 0;
    for (Index i = 0; i < subs; ++i) {
      const S v = lpps(b, i), ref = out.log_probs(b, off[i] + out.sample(b, i));
      check(std::memcmp(&v, &ref, sizeof(S)) == 0, "masked_log_prob differs from masked_log_probs",
            b, double(v), double(ref));
      check(std::isfinite(v), "masked_log_prob of a sampled action not finite", b, double(v));
      sum += double(v);
    }
    check(approx(double(lp(b)), sum, tol), "masked_log_prob differs from the per-space sum", b,
          double(lp(b)), sum);
  }
  if (kind == 0) {
    const action_matrix row_vector = out.sample.transpose();
    check(same_bits(emask::masked_log_prob(x, m, row_vector), lp),
          "masked_log_prob: row-vector actions differ");
  }
  if (sb3_tame) {
    const vec<S> lp3 = emask::masked_log_prob(x, m, out.sample, emask::mask_fill::sb3_compatible);
    for (Index b = 0; b < batch; ++b)
      check(approx(double(lp3(b)), double(lp(b)), tol), "sb3 fill: log_prob differs", b,
            double(lp3(b)), double(lp(b)));
    for (Index b = 0; b < batch; ++b)
      for (Index j = 0; j < width; ++j) {
        check(std::abs(double(out.probs_sb3(b, j)) - double(out.probs(b, j))) <= tol,
              "sb3 fill: probabilities differ", b, double(out.probs_sb3(b, j)),
              double(out.probs(b, j)));
        const double l3 = double(out.log_probs_sb3(b, j));
        if (legal(b, j))
          check(approx(l3, double(out.log_probs(b, j)), tol), "sb3 fill: log_probs differ", b, l3,
                double(out.log_probs(b, j)));
        else
          check(std::isfinite(l3) && l3 <= -1e7, "sb3 fill: masked log_prob not about -1e8", b, l3);
      }
    for (Index b = 0; b < batch; ++b)
      for (Index i = 0; i < subs; ++i)
        check(approx(double(out.entropy_space_sb3(b, i)), double(out.entropy_space(b, i)), tol),
              "sb3 fill: entropy differs", b, double(out.entropy_space_sb3(b, i)),
              double(out.entropy_space(b, i)));
  }
  const row_matrix<S> g = emask::masked_log_prob_grad(x, m, out.sample);
  check(g.rows() == batch && g.cols() == width, "masked_log_prob_grad shape");
  for (Index b = 0; b < batch; ++b)
    for (Index i = 0; i < subs; ++i)
      for (Index j = off[i]; j < off[i + 1]; ++j) {
        const S v = g(b, j), p = out.probs(b, j);
        if (!legal(b, j)) {
          check(v == S(0) && !std::signbit(v), "masked_log_prob_grad: illegal entry not +0", b,
                double(v));
        } else {
          const S ref = j - off[i] == out.sample(b, i) ? S(1) - p : -p;
          check(v == ref, "masked_log_prob_grad is not onehot - p", b, double(v), double(ref));
        }
      }

  // An illegal (else out-of-range) action raises naming actions[row, sub-space].
  if (batch > 0) {
    Index bb = 0, ii = 0, bad_action = -1;
    for (Index b = 0; b < batch; ++b)
      for (Index i = 0; i < subs; ++i)
        for (Index a = 0; a < nvec[i]; ++a)
          if (bad_action < 0 && !legal(b, off[i] + a)) {
            bb = b;
            ii = i;
            bad_action = a;
          }
    if (bad_action < 0) bad_action = s.coin() ? nvec[0] : -1;  // all legal: out of range
    const std::vector<std::string> parts{"argument 'actions[" + str(bb) + ", " + str(ii) + "]'"};
    action_matrix act = out.sample;
    act(bb, ii) = bad_action;
    expect_error(error_of([&] { emask::masked_log_prob(x, m, act); }), parts,
                 "masked_log_prob: bad action not reported");
    expect_error(error_of([&] { emask::masked_log_prob_grad(x, m, act); }), parts,
                 "masked_log_prob_grad: bad action not reported");
  }
  if (s.rare(0.1)) {
    const row_matrix<S> wide = row_matrix<S>::Zero(batch, width + 1);
    expect_error(error_of([&] { emask::masked_probs(wide, m); }), {"argument 'logits'"},
                 "masked_probs: logits of another shape not reported");
    expect_error(error_of([&] { emask::masked_argmax(wide, m); }), {"argument 'logits'"},
                 "masked_argmax: logits of another shape not reported");
  }
}

// ---------------------------------------------------------------------------------------------
// RL: DQN helpers

// Masked argmax of row b by the definition: first legal maximum; -1 when no action is legal;
// *nan when a legal value is NaN.
template <class S>
Index ref_argmax(const row_matrix<S>& q, const bool_matrix& legal, Index b, bool* nan) {
  Index best = -1;
  *nan = false;
  for (Index a = 0; a < q.cols(); ++a) {
    if (!legal(b, a)) continue;
    if (std::isnan(q(b, a))) {
      *nan = true;
    } else if (best < 0 || q(b, a) > q(b, best)) {
      best = a;
    }
  }
  return *nan ? -1 : best;
}

template <class S>
struct dqn_out {
  std::string e_argmax, e_max, e_greedy, e_td, e_td_int, e_double;
  index_vector argmax, greedy;
  vec<S> max, td, td_int, dtd;
};

template <class S>
dqn_out<S> run_dqn(const row_matrix<S>& q, const row_matrix<S>& q2, const bool_matrix& legal,
                   double epsilon, std::uint64_t seed, std::uint64_t step, const vec<S>& reward,
                   const Eigen::Array<bool, Eigen::Dynamic, 1>& done, double gamma) {
  dqn_out<S> o;
  o.e_argmax = error_of([&] { o.argmax = emask::masked_q_argmax(q, legal); });
  o.e_max = error_of([&] { o.max = emask::masked_q_max(q, legal); });
  o.e_greedy = error_of([&] {
    o.greedy = emask::masked_epsilon_greedy(q, legal, epsilon, {seed, step});
  });
  o.e_td = error_of([&] { o.td = emask::masked_td_target(reward, done, q, legal, gamma); });
  // done as 0/1 integers, reward as a row vector
  const Eigen::VectorXi done_int = done.cast<int>().matrix();
  const Eigen::Matrix<S, 1, Eigen::Dynamic> reward_row = reward.transpose();
  o.e_td_int =
      error_of([&] { o.td_int = emask::masked_td_target(reward_row, done_int, q, legal, gamma); });
  o.e_double =
      error_of([&] { o.dtd = emask::masked_double_td_target(reward, done, q2, q, legal, gamma); });
  return o;
}

template <class S>
void fuzz_dqn(byte_source& s) {
  const double tol = sizeof(S) == 4 ? 1e-6 : 1e-15;
  const Index batch = s.between(0, 8), n = s.between(1, 40);
  bool has_empty = false;
  const bool_matrix legal = decode_legal(s, batch, {n}, 0.8, &has_empty);
  const bool nonfinite = s.coin(0.5);
  row_matrix<S> q(batch, n), q2(batch, n);
  for (Index i = 0; i < q.size(); ++i) q.data()[i] = static_cast<S>(special_value(s, nonfinite));
  for (Index i = 0; i < q2.size(); ++i) q2.data()[i] = static_cast<S>(special_value(s, nonfinite));
  bool bad_epsilon = false, bad_gamma = false;
  const double epsilon = decode_prob(s, 0.1, &bad_epsilon);
  const double gamma = decode_prob(s, 0.99, &bad_gamma);
  const std::uint64_t seed = s.u64(), step = s.u64();
  vec<S> reward(batch);
  for (Index b = 0; b < batch; ++b) reward(b) = static_cast<S>(special_value(s, false));
  Eigen::Array<bool, Eigen::Dynamic, 1> done(batch);
  for (Index b = 0; b < batch; ++b) done(b) = s.coin(0.3);
  const Index k_rows = s.between(0, batch);

  const dqn_out<S> out = run_dqn(q, q2, legal, epsilon, seed, step, reward, done, gamma);
  // Values at illegal actions are never read.
  {
    const row_matrix<S> q0 = legal.select(q.array(), S(0)).matrix();
    const row_matrix<S> q20 = legal.select(q2.array(), S(0)).matrix();
    const dqn_out<S> o0 = run_dqn(q0, q20, legal, epsilon, seed, step, reward, done, gamma);
    check(out.e_argmax == o0.e_argmax && out.e_max == o0.e_max && out.e_greedy == o0.e_greedy &&
              out.e_td == o0.e_td && out.e_td_int == o0.e_td_int && out.e_double == o0.e_double,
          "values at illegal actions changed whether a DQN helper raises");
    check(out.argmax == o0.argmax && out.greedy == o0.greedy && same_bits(out.max, o0.max) &&
              same_bits(out.td, o0.td) && same_bits(out.td_int, o0.td_int) &&
              same_bits(out.dtd, o0.dtd),
          "values at illegal actions changed a DQN output");
  }

  // Reference: per row the greedy action, or why the row must raise.
  std::vector<Index> greedy(static_cast<std::size_t>(batch));
  std::vector<std::string> argmax_parts;
  for (Index b = 0; b < batch; ++b) {
    bool nan = false;
    const Index a = ref_argmax(q, legal, b, &nan);
    greedy[static_cast<std::size_t>(b)] = a;
    if (nan) argmax_parts.push_back("argument 'q[" + str(b) + ", ");
    if (a < 0 && !nan)
      argmax_parts.push_back("argument 'legal' = no legal action in row " + str(b) + " (");
  }
  if (!argmax_parts.empty()) {
    expect_error(out.e_argmax, argmax_parts, "masked_q_argmax: bad row not reported");
    expect_error(out.e_max, argmax_parts, "masked_q_max: bad row not reported");
  } else {
    expect_no_error(out.e_argmax, "masked_q_argmax raised for valid input");
    expect_no_error(out.e_max, "masked_q_max raised for valid input");
    check(out.argmax.size() == batch && out.max.size() == batch, "masked_q_argmax shape");
    for (Index b = 0; b < batch; ++b) {
      const Index a = out.argmax(b);
      check(a == greedy[static_cast<std::size_t>(b)], "masked_q_argmax differs from the reference",
            b, double(a), double(greedy[static_cast<std::size_t>(b)]));
      const S v = out.max(b), ref = q(b, a);
      check(std::memcmp(&v, &ref, sizeof(S)) == 0, "masked_q_max is not Q at the argmax", b,
            double(v), double(ref));
    }
    if (!has_empty) {
      const action_mask m = action_mask::discrete(legal);
      check(emask::masked_q_argmax(q, m) == out.argmax, "masked_q_argmax(action_mask) differs");
      check(same_bits(emask::masked_q_max(q, m), out.max), "masked_q_max(action_mask) differs");
    }
  }

  // Epsilon-greedy, by docs/rl.md: word 0 of (seed, step, rl_explore, b) explores when below
  // ceil(epsilon 2^32); the uniform legal action has rank bounded(stream, legal count).
  if (bad_epsilon) {
    expect_error(out.e_greedy, {"argument 'epsilon'"}, "epsilon outside [0, 1] not reported");
  } else {
    const emask::bernoulli explore(epsilon);
    std::vector<Index> ref(static_cast<std::size_t>(batch));
    std::vector<std::string> doc_parts;
    for (Index b = 0; b < batch; ++b) {
      emask::word_stream w(seed, step, emask::purpose::rl_explore, static_cast<std::uint32_t>(b));
      bool nan = false;
      const Index g = ref_argmax(q, legal, b, &nan);
      const std::string nan_part = "argument 'q[" + str(b) + ", ";
      const std::string empty_part = "argument 'legal' = no legal action in row " + str(b) + " (";
      const Index count = static_cast<Index>(legal.row(b).count());
      if (count == 0) {
        doc_parts.push_back(empty_part);
        continue;
      }
      if (nan) doc_parts.push_back(nan_part);
      if (explore(w.next())) {
        Index rank = static_cast<Index>(emask::bounded(w, static_cast<std::uint32_t>(count)));
        Index a = 0;
        for (;; ++a)
          if (legal(b, a) && rank-- == 0) break;
        ref[static_cast<std::size_t>(b)] = a;
      } else {
        ref[static_cast<std::size_t>(b)] = g;
      }
    }
    const std::vector<std::string>& parts = doc_parts;  // K1: explored rows too
    if (!parts.empty()) {
      expect_error(out.e_greedy, parts, "masked_epsilon_greedy: bad row not reported");
    } else {
      expect_no_error(out.e_greedy, "masked_epsilon_greedy raised for valid input");
      check(out.greedy.size() == batch, "masked_epsilon_greedy shape");
      for (Index b = 0; b < batch; ++b) {
        const Index a = out.greedy(b);
        check(a >= 0 && a < n && legal(b, a), "masked_epsilon_greedy: illegal action", b,
              double(a));
        check(a == ref[static_cast<std::size_t>(b)],
              "masked_epsilon_greedy differs from the documented draw", b, double(a),
              double(ref[static_cast<std::size_t>(b)]));
        if (epsilon == 0.0)
          check(a == greedy[static_cast<std::size_t>(b)], "epsilon 0 is not greedy", b);
      }
      check(emask::masked_epsilon_greedy(q, legal, epsilon, {seed, step}) == out.greedy,
            "masked_epsilon_greedy: same seed, different actions");
      if (k_rows > 0) {
        const row_matrix<S> top = q.topRows(k_rows);
        const bool_matrix top_legal = legal.topRows(k_rows);
        check(emask::masked_epsilon_greedy(top, top_legal, epsilon, {seed, step}) ==
                  out.greedy.head(k_rows),
              "masked_epsilon_greedy: rows depend on the rows below", k_rows);
      }
      if (!has_empty)
        check(emask::masked_epsilon_greedy(q, action_mask::discrete(legal), epsilon,
                                           {seed, step}) == out.greedy,
              "masked_epsilon_greedy(action_mask) differs");
    }
  }
  if (batch > 0 && s.rare(0.1)) {
    // MultiBinary(2): two sub-spaces (MultiBinary(1) is Discrete(2) and is accepted)
    const action_mask mb = action_mask::all_legal(emask::action_space::multi_binary(2), batch);
    const row_matrix<S> q2cols = row_matrix<S>::Zero(batch, 4);
    expect_error(error_of([&] { emask::masked_q_argmax(q2cols, mb); }), {"argument 'legal'"},
                 "masked_q_argmax accepted a MultiBinary action_mask");
  }

  // TD targets: terminated rows are r and never read; others bootstrap from the legal max.
  if (bad_gamma) {
    expect_error(out.e_td, {"argument 'gamma'"}, "gamma outside [0, 1] not reported");
    expect_error(out.e_double, {"argument 'gamma'"}, "gamma outside [0, 1] not reported");
    return;
  }
  std::vector<std::string> td_parts, dtd_parts;
  for (Index b = 0; b < batch; ++b) {
    if (done(b)) continue;
    bool nan = false, nan2 = false;
    const Index a = ref_argmax(q, legal, b, &nan);
    const Index a2 = ref_argmax(q2, legal, b, &nan2);
    if (a < 0 && !nan) {
      const std::string empty = "argument 'next_legal' = no legal action in row " + str(b) + " (";
      td_parts.push_back(empty);
      dtd_parts.push_back(empty);
      continue;
    }
    if (nan) td_parts.push_back("argument 'next_q[" + str(b) + ", ");
    if (nan2) dtd_parts.push_back("argument 'next_q_online[" + str(b) + ", ");
    if (a2 >= 0 && std::isnan(q(b, a2)))
      dtd_parts.push_back("argument 'next_q_target[" + str(b) + ", " + str(a2) + "]'");
  }
  if (!td_parts.empty()) {
    expect_error(out.e_td, td_parts, "masked_td_target: bad row not reported");
    expect_error(out.e_td_int, td_parts, "masked_td_target: bad row not reported");
  } else {
    expect_no_error(out.e_td, "masked_td_target raised for valid input");
    expect_no_error(out.e_td_int, "masked_td_target raised for valid input");
    check(same_bits(out.td, out.td_int), "masked_td_target: int done / row reward differ");
    for (Index b = 0; b < batch; ++b) {
      const S y = out.td(b);
      if (done(b)) {
        check(std::memcmp(&y, &reward(b), sizeof(S)) == 0, "masked_td_target: terminal row not r",
              b, double(y), double(reward(b)));
        continue;
      }
      bool nan = false;
      const Index a = ref_argmax(q, legal, b, &nan);
      const S ref = reward(b) + static_cast<S>(gamma) * q(b, a);
      check(approx(double(y), double(ref), tol), "masked_td_target differs from r + gamma max Q", b,
            double(y), double(ref));
    }
  }
  if (!dtd_parts.empty()) {
    expect_error(out.e_double, dtd_parts, "masked_double_td_target: bad row not reported");
  } else {
    expect_no_error(out.e_double, "masked_double_td_target raised for valid input");
    for (Index b = 0; b < batch; ++b) {
      const S y = out.dtd(b);
      if (done(b)) {
        check(std::memcmp(&y, &reward(b), sizeof(S)) == 0,
              "masked_double_td_target: terminal row not r", b, double(y), double(reward(b)));
        continue;
      }
      bool nan = false;
      const Index a = ref_argmax(q2, legal, b, &nan);
      const S ref = reward(b) + static_cast<S>(gamma) * q(b, a);
      check(approx(double(y), double(ref), tol),
            "masked_double_td_target differs from r + gamma Q_target(argmax Q_online)", b,
            double(y), double(ref));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Random maskers: shared decoding and references written from docs/random.md

double round_half_even(double x) {
  const double f = std::floor(x), d = x - f;
  if (d > 0.5) return f + 1.0;
  if (d < 0.5) return f;
  return std::fmod(f, 2.0) == 0.0 ? f : f + 1.0;
}

struct token_case {
  emask::mlm_options o;
  std::vector<std::string> bad;     // names of the bad arguments
  std::vector<unsigned char> flag;  // 1 = special, per id
  std::vector<std::int32_t> pool;   // random replacement ids
  Index batch = 0, width = 0;
  token_matrix ids;
  bool use_lengths = false;
  std::vector<Index> lengths;
  std::uint64_t seed = 0, first = 0;

  emask::random_address at() const { return {seed, first}; }
  Index length(Index b) const { return use_lengths ? lengths[static_cast<std::size_t>(b)] : width; }
  bool selectable(std::int32_t id) const {
    return id >= 0 && id < o.vocabulary.vocab_size() && !flag[static_cast<std::size_t>(id)] &&
           id != o.pad_id;
  }
  bool in_pool(std::int32_t id) const { return std::binary_search(pool.begin(), pool.end(), id); }
  // The replacement of a selected token (docs/random.md section 4).
  std::int32_t replace(std::uint64_t sample, Index t, std::int32_t original) const {
    emask::word_stream st(seed, sample, emask::purpose::mlm_replace, static_cast<std::uint32_t>(t));
    return apply(st, sample, t, original);
  }
  // 0: mask, 1: random, 2: keep, from words 0 and 1 of \p st.
  int decide(emask::word_stream& st) const {
    if (emask::bernoulli(o.mask_replace_prob)(st.next())) return 0;
    const double scaled = o.mask_replace_prob >= 1.0 || o.random_replace_prob <= 0.0
                              ? 0.0
                              : std::min(1.0, o.random_replace_prob / (1.0 - o.mask_replace_prob));
    return emask::bernoulli(scaled)(st.next()) ? 1 : 2;
  }
  std::int32_t random_id(std::uint64_t sample, Index t) const {
    emask::word_stream st(seed, sample, emask::purpose::mlm_replace, static_cast<std::uint32_t>(t));
    st.next();
    st.next();
    return pool[emask::bounded(st, static_cast<std::uint32_t>(pool.size()))];
  }
  std::int32_t apply(emask::word_stream& st, std::uint64_t sample, Index t,
                     std::int32_t original) const {
    switch (decide(st)) {
      case 0: return o.mask_id;
      case 1: return random_id(sample, t);
      default: return original;
    }
  }
};

void decode_tokens(byte_source& s, token_case& c) {
  emask::mlm_options& o = c.o;
  const auto vocab = static_cast<std::int32_t>(s.between(1, 200));
  c.flag.assign(static_cast<std::size_t>(vocab), 0);
  std::vector<std::int32_t> specials;
  const Index nspecial = s.between(0, 5);
  for (Index i = 0; i < nspecial; ++i) {
    specials.push_back(static_cast<std::int32_t>(s.between(0, vocab - 1)));
    c.flag[static_cast<std::size_t>(specials.back())] = 1;
  }
  if (s.coin(0.2))
    o.vocabulary = emask::special_tokens::from_predicate(
        vocab, [&](std::int32_t id) { return c.flag[static_cast<std::size_t>(id)] != 0; });
  else
    o.vocabulary = emask::special_tokens(vocab, specials);
  const std::uint8_t mc = s.byte();
  o.mask_id =
      mc >= 250 ? (mc % 2 ? -1 : vocab) : static_cast<std::int32_t>(s.between(0, vocab - 1));
  if (o.mask_id < 0 || o.mask_id >= vocab) c.bad.push_back("mask_id");
  bool bad = false;
  o.mlm_probability = decode_prob(s, 0.15, &bad);
  if (bad) c.bad.push_back("mlm_probability");
  o.mask_replace_prob = decode_prob(s, 0.8, &bad);
  if (bad) c.bad.push_back("mask_replace_prob");
  o.random_replace_prob = decode_prob(s, 0.1, &bad);
  if (!bad && o.mask_replace_prob + o.random_replace_prob > 1.0 && s.coin(0.8) &&
      o.mask_replace_prob <= 1.0)
    o.random_replace_prob = 1.0 - o.mask_replace_prob;
  if (bad || o.mask_replace_prob + o.random_replace_prob > 1.0)
    c.bad.push_back("random_replace_prob");
  o.random_includes_special = s.coin(0.3);
  if (o.random_replace_prob > 0.0 && o.mask_replace_prob < 1.0 && !o.random_includes_special &&
      o.vocabulary.regular_ids().empty())
    c.bad.push_back("vocabulary");
  const std::int32_t ignore[] = {-100, -1, -7};
  o.ignore_index = ignore[s.between(0, 2)];
  o.pad_id = s.coin(0.3) ? static_cast<std::int32_t>(s.between(0, vocab - 1)) : -1;
  o.selection = s.coin(0.3) ? emask::mlm_selection::exact_count : emask::mlm_selection::bernoulli;
  c.seed = s.u64();
  for (std::int32_t id = 0; id < vocab; ++id)
    if (o.random_includes_special || !c.flag[static_cast<std::size_t>(id)]) c.pool.push_back(id);

  c.batch = s.between(0, 8);
  c.width = s.between(0, 48);
  c.ids.resize(c.batch, c.width);
  for (Index b = 0; b < c.batch; ++b)
    for (Index t = 0; t < c.width; ++t) {
      const std::uint8_t k = s.byte();
      std::int32_t id;
      if (k < 10)
        id = k % 2 ? -1 - k : vocab + k;  // outside the vocabulary: never selected
      else if (k < 40 && o.pad_id >= 0)
        id = o.pad_id;
      else if (k < 60 && !specials.empty())
        id = specials[k % specials.size()];
      else
        id = static_cast<std::int32_t>(((k << 8) | s.byte()) % vocab);
      c.ids(b, t) = id;
    }
  c.use_lengths = s.coin(0.6);
  if (c.use_lengths) {
    for (Index b = 0; b < c.batch; ++b) c.lengths.push_back(s.between(0, c.width));
    const std::uint8_t k = s.byte();
    if (k >= 250) {
      c.bad.push_back("lengths");
      if (k >= 254 || c.batch == 0)
        c.lengths.push_back(0);  // one entry too many
      else
        c.lengths[static_cast<std::size_t>(k % c.batch)] = k % 2 ? c.width + 1 : -1;
    }
  }
  c.first = s.coin(0.2) ? 0xFFFFFFFFull - static_cast<std::uint64_t>(s.between(0, 8))
                        : static_cast<std::uint64_t>(s.between(0, 1000));
}

// Generic checks of an MLM-style result (labels, selectable positions, replacement values).
void check_masked(const token_case& c, const emask::mlm_result& r) {
  const emask::mlm_options& o = c.o;
  check(r.input_ids.rows() == c.batch && r.input_ids.cols() == c.width &&
            r.labels.rows() == c.batch && r.labels.cols() == c.width,
        "result shape");
  for (Index b = 0; b < c.batch; ++b)
    for (Index t = 0; t < c.width; ++t) {
      const std::int32_t orig = c.ids(b, t), lab = r.labels(b, t), out = r.input_ids(b, t);
      if (lab == o.ignore_index) {
        check(out == orig, "an unselected id changed", b, orig, out);
        continue;
      }
      check(lab == orig, "label is neither ignore_index nor the original id", b, lab, orig);
      check(t < c.length(b), "selected a position past the row length", b, double(t),
            double(c.length(b)));
      check(c.selectable(orig), "selected a special, padding or out-of-vocabulary token", b, orig,
            double(t));
      check(out == o.mask_id || out == orig || c.in_pool(out),
            "replacement is not mask_id, the original or a pool id", b, out, orig);
      if (o.mask_replace_prob == 1.0) check(out == o.mask_id, "mask_replace_prob 1: not mask_id");
      if (o.mask_replace_prob == 0.0 && o.random_replace_prob == 0.0)
        check(out == orig, "no replacement probability, but the token changed", b, out, orig);
    }
}

// The rows [b0, b0 + n) of the case as their own case.
token_case sub_case(const token_case& c, Index b0, Index n) {
  token_case d = c;
  d.batch = n;
  d.ids = c.ids.middleRows(b0, n);
  if (c.use_lengths) d.lengths.assign(c.lengths.begin() + b0, c.lengths.begin() + b0 + n);
  d.first = c.first + static_cast<std::uint64_t>(b0);
  return d;
}

bool same_result(const emask::mlm_result& a, const emask::mlm_result& b) {
  return same_bits(a.input_ids, b.input_ids) && same_bits(a.labels, b.labels);
}

// Calls one masker over the whole case; splits the batch in two calls and compares.
template <class Call>
emask::mlm_result check_repeat_and_split(byte_source& s, const token_case& c, Call&& call) {
  const emask::mlm_result r = call(c);
  check(same_result(call(c), r), "same seed, different output");
  if (c.batch > 0) {
    const Index k = s.between(0, c.batch);
    emask::mlm_result top, bottom;
    if (k > 0) top = call(sub_case(c, 0, k));
    if (k < c.batch) bottom = call(sub_case(c, k, c.batch - k));
    for (Index b = 0; b < c.batch; ++b) {
      const emask::mlm_result& part = b < k ? top : bottom;
      const Index pb = b < k ? b : b - k;
      check(same_bits(part.input_ids.row(pb), r.input_ids.row(b)) &&
                same_bits(part.labels.row(pb), r.labels.row(b)),
            "split batch (sample + k) differs from one call", b, double(k));
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// BERT MLM

emask::mlm_result ref_mlm(const token_case& c) {
  const emask::mlm_options& o = c.o;
  emask::mlm_result r{c.ids, token_matrix::Constant(c.batch, c.width, o.ignore_index)};
  for (Index b = 0; b < c.batch; ++b) {
    const std::uint64_t sample = c.first + static_cast<std::uint64_t>(b);
    std::vector<Index> chosen;
    if (o.selection == emask::mlm_selection::bernoulli) {
      const emask::bernoulli select(o.mlm_probability);
      for (Index t = 0; t < c.length(b); ++t)
        if (c.selectable(c.ids(b, t)) &&
            select(emask::packed_word(c.seed, sample, emask::purpose::mlm_select,
                                      static_cast<std::uint64_t>(t))))
          chosen.push_back(t);
    } else {
      std::vector<std::uint64_t> keys;
      for (Index t = 0; t < c.length(b); ++t)
        if (c.selectable(c.ids(b, t)))
          keys.push_back(
              (std::uint64_t(emask::packed_word(c.seed, sample, emask::purpose::mlm_select,
                                                static_cast<std::uint64_t>(t)))
               << 32) |
              static_cast<std::uint64_t>(t));
      std::sort(keys.begin(), keys.end());
      const auto k = static_cast<std::size_t>(
          round_half_even(o.mlm_probability * static_cast<double>(keys.size())));
      for (std::size_t j = 0; j < std::min(k, keys.size()); ++j)
        chosen.push_back(static_cast<Index>(keys[j] & 0xFFFFFFFFu));
    }
    for (Index t : chosen) {
      r.labels(b, t) = c.ids(b, t);
      r.input_ids(b, t) = c.replace(sample, t, c.ids(b, t));
    }
  }
  return r;
}

emask::mlm_result call_mlm(const token_case& c) {
  return c.use_lengths ? emask::mlm_mask(c.ids, emask::index_list(c.lengths), c.o, c.at())
                       : emask::mlm_mask(c.ids, c.o, c.at());
}

void fuzz_mlm(byte_source& s) {
  token_case c;
  decode_tokens(s, c);
  if (!c.bad.empty()) {
    const std::vector<std::string> parts = argument_parts(c.bad);
    expect_error(error_of([&] { call_mlm(c); }), parts, "mlm_mask: bad argument not reported");
    token_matrix ids = c.ids, labels(c.batch, c.width);
    expect_error(error_of([&] {
                   if (c.use_lengths)
                     emask::mlm_mask_inplace(ids, labels, emask::index_list(c.lengths), c.o,
                                             c.at());
                   else
                     emask::mlm_mask_inplace(ids, labels, c.o, c.at());
                 }),
                 parts, "mlm_mask_inplace: bad argument not reported");
    return;
  }
  emask::mlm_result r;
  expect_no_error(error_of([&] { r = check_repeat_and_split(s, c, call_mlm); }),
                  "mlm_mask raised for valid arguments");
  check_masked(c, r);
  const emask::mlm_options& o = c.o;
  for (Index b = 0; b < c.batch; ++b) {
    Index n = 0, selected = 0;
    for (Index t = 0; t < c.length(b); ++t) n += c.selectable(c.ids(b, t)) ? 1 : 0;
    for (Index t = 0; t < c.width; ++t) selected += r.labels(b, t) != o.ignore_index ? 1 : 0;
    if (o.mlm_probability == 0.0) check(selected == 0, "mlm_probability 0 selected a token", b);
    if (o.mlm_probability == 1.0) check(selected == n, "mlm_probability 1 left a token", b);
    if (o.selection == emask::mlm_selection::exact_count)
      check(selected == static_cast<Index>(round_half_even(o.mlm_probability * double(n))),
            "exact_count: wrong number selected", b, double(selected), double(n));
  }
  check(same_result(r, ref_mlm(c)), "mlm_mask differs from the documented algorithm");
  if (!c.use_lengths) {
    token_case d = c;
    d.use_lengths = true;
    d.lengths.assign(static_cast<std::size_t>(c.batch), c.width);
    check(same_result(call_mlm(d), r), "mlm_mask: full lengths differ from no lengths");
  }
  // In place into a block of a larger buffer: same values, nothing else touched.
  token_matrix ids = token_matrix::Constant(c.batch + 2, c.width + 3, 12345);
  token_matrix labels = token_matrix::Constant(c.batch + 2, c.width + 3, 54321);
  ids.block(1, 2, c.batch, c.width) = c.ids;
  if (c.use_lengths)
    emask::mlm_mask_inplace(ids.block(1, 2, c.batch, c.width), labels.block(1, 2, c.batch, c.width),
                            emask::index_list(c.lengths), o, c.at());
  else
    emask::mlm_mask_inplace(ids.block(1, 2, c.batch, c.width), labels.block(1, 2, c.batch, c.width),
                            o, c.at());
  check(same_bits(ids.block(1, 2, c.batch, c.width), r.input_ids) &&
            same_bits(labels.block(1, 2, c.batch, c.width), r.labels),
        "mlm_mask_inplace into a block differs from mlm_mask");
  for (Index i = 0; i < ids.rows(); ++i)
    for (Index j = 0; j < ids.cols(); ++j)
      if (i < 1 || i > c.batch || j < 2 || j >= c.width + 2)
        check(ids(i, j) == 12345 && labels(i, j) == 54321,
              "mlm_mask_inplace wrote outside its block", i, double(j));
  if (s.rare(0.1)) {
    token_matrix ids2 = c.ids, wrong(c.batch, c.width + 1);
    expect_error(error_of([&] { emask::mlm_mask_inplace(ids2, wrong, o, c.at()); }),
                 {"argument 'labels'"}, "mlm_mask_inplace: labels of another shape not reported");
  }
}

// ---------------------------------------------------------------------------------------------
// Whole-word masking

struct word {
  Index begin, end;
};

// Words of row b (docs/random.md section 5): non-selectable tokens and word id < 0 end the
// current word; a selectable token opens a word at a word start or after a non-member.
std::vector<word> ref_words(const token_case& c, Index b, const bool_matrix* starts,
                            const token_matrix* word_ids) {
  std::vector<word> words;
  bool open = false;
  for (Index t = 0; t < c.length(b); ++t) {
    const bool member = c.selectable(c.ids(b, t)) && (!word_ids || (*word_ids)(b, t) >= 0);
    if (!member) {
      open = false;
      continue;
    }
    const bool start = starts     ? (*starts)(b, t)
                       : word_ids ? (t == 0 || (*word_ids)(b, t) != (*word_ids)(b, t - 1))
                                  : true;
    if (!open || start) {
      words.push_back({t, t + 1});
      open = true;
    } else {
      words.back().end = t + 1;
    }
  }
  return words;
}

struct word_case : token_case {
  std::int32_t max_predictions = 512;
  bool by_ids = false;
  bool_matrix starts;
  token_matrix word_ids;
};

word_case sub_word_case(const word_case& c, Index b0, Index n) {
  word_case d = c;
  static_cast<token_case&>(d) = sub_case(c, b0, n);
  d.starts = c.starts.middleRows(b0, n);
  d.word_ids = c.word_ids.middleRows(b0, n);
  return d;
}

emask::whole_word_options wwm_options(const word_case& c) {
  emask::whole_word_options o;
  static_cast<emask::mlm_options&>(o) = c.o;
  o.max_predictions = c.max_predictions;
  return o;
}

emask::mlm_result call_wwm(const word_case& c) {
  const emask::whole_word_options o = wwm_options(c);
  if (c.by_ids)
    return c.use_lengths ? emask::whole_word_mask_by_ids(c.ids, c.word_ids,
                                                         emask::index_list(c.lengths), o, c.at())
                         : emask::whole_word_mask_by_ids(c.ids, c.word_ids, o, c.at());
  return c.use_lengths
             ? emask::whole_word_mask(c.ids, c.starts, emask::index_list(c.lengths), o, c.at())
             : emask::whole_word_mask(c.ids, c.starts, o, c.at());
}

void decode_words(byte_source& s, word_case& c) {
  c.by_ids = s.coin(0.4);
  c.starts.resize(c.batch, c.width);
  c.word_ids.resize(c.batch, c.width);
  for (Index b = 0; b < c.batch; ++b) {
    std::int32_t id = 0;
    for (Index t = 0; t < c.width; ++t) {
      const std::uint8_t k = s.byte();
      c.starts(b, t) = (k & 3) != 0;
      if (k & 3) ++id;
      c.word_ids(b, t) = k % 16 == 15 ? -1 : id;
    }
  }
}

void fuzz_whole_word(byte_source& s) {
  word_case c;
  decode_tokens(s, c);
  decode_words(s, c);
  const std::uint8_t k = s.byte();
  c.max_predictions = k >= 248 ? -1 : (k < 128 ? 512 : static_cast<std::int32_t>(k % 40));
  if (c.max_predictions < 0) c.bad.push_back("max_predictions");
  if (!c.bad.empty()) {
    expect_error(error_of([&] { call_wwm(c); }), argument_parts(c.bad),
                 "whole_word_mask: bad argument not reported");
    return;
  }
  if (s.rare(0.05)) {
    word_case d = c;
    d.starts.resize(c.batch, c.width + 1);
    d.word_ids.resize(c.batch, c.width + 1);
    expect_error(error_of([&] { call_wwm(d); }), {"argument 'word_starts'", "argument 'word_ids'"},
                 "whole_word_mask: word boundaries of another shape not reported");
  }
  emask::mlm_result r;
  expect_no_error(error_of([&] {
                    r = call_wwm(c);
                    check(same_result(call_wwm(c), r), "same seed, different output");
                  }),
                  "whole_word_mask raised for valid arguments");
  if (c.batch > 0) {
    const Index k2 = s.between(0, c.batch);
    for (int part = 0; part < 2; ++part) {
      const Index b0 = part ? k2 : 0, n = part ? c.batch - k2 : k2;
      if (n == 0) continue;
      const emask::mlm_result p = call_wwm(sub_word_case(c, b0, n));
      check(same_bits(p.input_ids, r.input_ids.middleRows(b0, n)) &&
                same_bits(p.labels, r.labels.middleRows(b0, n)),
            "whole_word_mask: split batch differs from one call", b0);
    }
  }
  check_masked(c, r);
  const emask::mlm_options& o = c.o;
  emask::mlm_result ref{c.ids, token_matrix::Constant(c.batch, c.width, o.ignore_index)};
  for (Index b = 0; b < c.batch; ++b) {
    const std::uint64_t sample = c.first + static_cast<std::uint64_t>(b);
    const std::vector<word> words =
        ref_words(c, b, c.by_ids ? nullptr : &c.starts, c.by_ids ? &c.word_ids : nullptr);
    Index n = 0;
    for (Index t = 0; t < c.length(b); ++t) n += (o.pad_id < 0 || c.ids(b, t) != o.pad_id) ? 1 : 0;
    const Index budget = std::min<Index>(
        c.max_predictions,
        std::max<Index>(1, static_cast<Index>(round_half_even(double(n) * o.mlm_probability))));
    // properties: whole words, within the budget, no skipped word would have fit
    Index covered = 0;
    for (const word& w : words) {
      Index taken = 0;
      for (Index t = w.begin; t < w.end; ++t) taken += r.labels(b, t) != o.ignore_index ? 1 : 0;
      check(taken == 0 || taken == w.end - w.begin, "whole_word_mask split a word", b,
            double(w.begin), double(taken));
      covered += taken;
    }
    check(covered <= budget, "whole_word_mask exceeded the budget", b, double(covered),
          double(budget));
    for (const word& w : words)
      if (r.labels(b, w.begin) == o.ignore_index)
        check(w.end - w.begin > budget - covered, "whole_word_mask skipped a word that fits", b,
              double(w.end - w.begin), double(budget - covered));
    // reference: visit words in the order of the argsort of wwm_order noise
    std::vector<std::uint64_t> keys;
    for (std::size_t w = 0; w < words.size(); ++w)
      keys.push_back(
          (std::uint64_t(emask::packed_word(c.seed, sample, emask::purpose::wwm_order, w)) << 32) |
          w);
    std::sort(keys.begin(), keys.end());
    Index got = 0;
    for (std::uint64_t key : keys) {
      if (got >= budget) break;
      const word& w = words[static_cast<std::size_t>(key & 0xFFFFFFFFu)];
      if (got + (w.end - w.begin) > budget) continue;
      got += w.end - w.begin;
      for (Index t = w.begin; t < w.end; ++t) {
        ref.labels(b, t) = c.ids(b, t);
        ref.input_ids(b, t) = c.replace(sample, t, c.ids(b, t));
      }
    }
  }
  check(same_result(r, ref), "whole_word_mask differs from the documented algorithm");
}

// ---------------------------------------------------------------------------------------------
// SpanBERT span masking

struct span_case : word_case {
  double geometric_p = 0.2;
  std::int32_t max_span_words = 10;
  bool per_span = true;
  int form = 0;  // 0: every token a word, full rows; 1: word_starts + lengths; 2: word_starts
};

emask::span_options span_opts(const span_case& c) {
  emask::span_options o;
  static_cast<emask::mlm_options&>(o) = c.o;
  o.geometric_p = c.geometric_p;
  o.max_span_words = c.max_span_words;
  o.replace_per_span = c.per_span;
  return o;
}

emask::mlm_result call_span(const span_case& c) {
  const emask::span_options o = span_opts(c);
  if (c.form == 0) return emask::span_mask(c.ids, o, c.at());
  if (c.form == 1)
    return emask::span_mask(c.ids, c.starts, emask::index_list(c.lengths), o, c.at());
  return emask::span_mask(c.ids, c.starts, o, c.at());
}

void fuzz_span(byte_source& s) {
  span_case c;
  decode_tokens(s, c);
  decode_words(s, c);
  c.form = c.use_lengths ? 1 : static_cast<int>(s.between(0, 1)) * 2;
  bool bad = false;
  c.geometric_p = decode_prob(s, 0.2, &bad);
  if (bad || c.geometric_p == 0.0) c.bad.push_back("geometric_p");
  const std::uint8_t k = s.byte();
  c.max_span_words =
      k >= 250 ? -static_cast<std::int32_t>(k % 2) : 1 + static_cast<std::int32_t>(k % 12);
  if (c.max_span_words < 1) c.bad.push_back("max_span_words");
  c.per_span = s.coin(0.7);
  if (!c.bad.empty()) {
    expect_error(error_of([&] { call_span(c); }), argument_parts(c.bad),
                 "span_mask: bad argument not reported");
    return;
  }
  emask::mlm_result r;
  expect_no_error(error_of([&] {
                    r = call_span(c);
                    check(same_result(call_span(c), r), "same seed, different output");
                  }),
                  "span_mask raised for valid arguments");
  if (c.batch > 0) {
    const Index k2 = s.between(0, c.batch);
    for (int part = 0; part < 2; ++part) {
      const Index b0 = part ? k2 : 0, n = part ? c.batch - k2 : k2;
      if (n == 0) continue;
      span_case d = c;
      static_cast<word_case&>(d) = sub_word_case(c, b0, n);
      const emask::mlm_result p = call_span(d);
      check(same_bits(p.input_ids, r.input_ids.middleRows(b0, n)) &&
                same_bits(p.labels, r.labels.middleRows(b0, n)),
            "span_mask: split batch differs from one call", b0);
    }
  }
  check_masked(c, r);
  const emask::mlm_options& o = c.o;
  const emask::bernoulli success(c.geometric_p);
  emask::mlm_result ref{c.ids, token_matrix::Constant(c.batch, c.width, o.ignore_index)};
  for (Index b = 0; b < c.batch; ++b) {
    const std::uint64_t sample = c.first + static_cast<std::uint64_t>(b);
    const std::vector<word> words = ref_words(c, b, c.form == 0 ? nullptr : &c.starts, nullptr);
    Index n = 0;
    for (const word& w : words) n += w.end - w.begin;
    const auto budget = static_cast<Index>(std::ceil(o.mlm_probability * double(n)));
    // properties: within the budget, at most one word cut
    Index covered = 0, cut = 0;
    for (const word& w : words) {
      Index taken = 0;
      for (Index t = w.begin; t < w.end; ++t) taken += r.labels(b, t) != o.ignore_index ? 1 : 0;
      covered += taken;
      cut += taken > 0 && taken < w.end - w.begin ? 1 : 0;
      for (Index t = w.begin + 1; t < w.end; ++t)
        check(r.labels(b, t) == o.ignore_index || r.labels(b, t - 1) != o.ignore_index,
              "span_mask: a word is taken from its middle", b, double(t));
    }
    check(covered <= budget, "span_mask exceeded the budget", b, double(covered), double(budget));
    check(cut <= 1, "span_mask cut more than one word", b, double(cut));
    if (words.empty()) continue;
    // reference: docs/random.md section 6
    const auto nw = static_cast<std::uint32_t>(words.size());
    std::vector<char> taken(nw, 0);
    Index got = 0;
    const std::uint64_t max_tries = 64u * std::uint64_t{nw} + 64u;
    for (std::uint64_t a = 0; a < max_tries && got < budget; ++a) {
      emask::word_stream st(c.seed, sample, emask::purpose::span_draw,
                            static_cast<std::uint32_t>(a));
      const std::uint32_t l =
          emask::truncated_geometric(st, success, static_cast<std::uint32_t>(c.max_span_words));
      const std::uint32_t anchor = emask::bounded(st, nw);
      if (taken[anchor]) continue;
      const Index span_begin = words[anchor].begin;
      Index span_end = span_begin;
      for (std::uint32_t w = anchor, m = 0; w < nw && m < l && got < budget; ++w, ++m) {
        if (taken[w] || (w != anchor && words[w].begin != words[w - 1].end)) break;
        taken[w] = 1;
        for (Index t = words[w].begin; t < words[w].end && got < budget; ++t) {
          ref.labels(b, t) = c.ids(b, t);
          span_end = t + 1;
          ++got;
        }
      }
      if (c.per_span) {
        emask::word_stream d(c.seed, sample, emask::purpose::span_replace,
                             static_cast<std::uint32_t>(span_begin));
        const int act = c.decide(d);
        for (Index t = span_begin; t < span_end; ++t)
          if (act == 0)
            ref.input_ids(b, t) = o.mask_id;
          else if (act == 1)
            ref.input_ids(b, t) = c.random_id(sample, t);
      } else {
        for (Index t = span_begin; t < span_end; ++t)
          ref.input_ids(b, t) = c.replace(sample, t, c.ids(b, t));
      }
    }
  }
  check(same_result(r, ref), "span_mask differs from the documented algorithm");
}

// ---------------------------------------------------------------------------------------------
// T5 span corruption

// HF's _random_segmentation (docs/random.md section 7): lengths of g segments of m items.
std::vector<Index> ref_segmentation(std::uint64_t seed, std::uint64_t sample, std::uint16_t purpose,
                                    Index m, Index g) {
  std::vector<std::uint64_t> keys;
  for (Index j = 0; j + 1 < m; ++j)
    keys.push_back(
        (std::uint64_t(emask::packed_word(seed, sample, purpose, static_cast<std::uint64_t>(j)))
         << 32) |
        static_cast<std::uint64_t>(j));
  std::sort(keys.begin(), keys.end());
  std::vector<char> cut(keys.size(), 0);
  for (Index j = 0; j < g - 1; ++j) cut[keys[static_cast<std::size_t>(j)] & 0xFFFFFFFFu] = 1;
  std::vector<Index> out;
  Index run = 1;
  for (char f : cut) {
    if (f) {
      out.push_back(run);
      run = 1;
    } else {
      ++run;
    }
  }
  out.push_back(run);
  return out;
}

void fuzz_t5(byte_source& s) {
  const Index batch = s.between(0, 8), length = s.between(0, 48);
  emask::t5_options o;
  std::vector<std::string> bad;
  bool b1 = false;
  o.noise_density = decode_prob(s, 0.15, &b1);
  const double means[] = {3.0, 1.0, 1.5, 10.0, 0.5, std::nan(""), 2.0, 1e9};
  o.mean_noise_span_length = means[s.between(0, 7)];
  if (s.coin(0.3)) o.mean_noise_span_length = 1.0 + 9.0 * s.uniform();
  o.first_sentinel_id = s.rare(0.1) ? static_cast<std::int32_t>(s.between(0, 3))
                                    : static_cast<std::int32_t>(s.between(20, 300));
  o.eos_id = static_cast<std::int32_t>(s.between(0, 3));
  const std::uint64_t seed = s.u64();
  const std::uint64_t first = s.u64();
  token_matrix ids(batch, length);
  for (Index i = 0; i < ids.size(); ++i)
    ids.data()[i] = static_cast<std::int32_t>(s.between(0, 999));

  if (length < 2) bad.push_back("length");
  if (b1) bad.push_back("noise_density");
  if (!(o.mean_noise_span_length >= 1.0)) bad.push_back("mean_noise_span_length");
  Index noise = 0, spans = 0;
  if (bad.empty()) {
    noise = static_cast<Index>(round_half_even(double(length) * o.noise_density));
    noise = std::min(std::max<Index>(noise, 1), length - 1);
    spans = std::max<Index>(
        1, static_cast<Index>(round_half_even(double(noise) / o.mean_noise_span_length)));
    if (spans > length - noise) bad.push_back("noise_density");
  }
  const bool sizes_bad = !bad.empty();
  if (!sizes_bad && o.first_sentinel_id - (spans - 1) < 0) bad.push_back("first_sentinel_id");

  emask::t5_sizes sz{};
  const std::string e_sizes = error_of(
      [&] { sz = emask::t5_corruption_sizes(length, o.noise_density, o.mean_noise_span_length); });
  emask::t5_result r;
  const std::string e = error_of([&] { r = emask::t5_span_corruption(ids, o, {seed, first}); });
  if (sizes_bad) {
    expect_error(e_sizes, argument_parts(bad), "t5_corruption_sizes: bad argument not reported");
    expect_error(error_of([&] {
                   emask::t5_keep_mask(length, o, {seed, first});
                 }),
                 argument_parts(bad), "t5_keep_mask: bad argument not reported");
  } else {
    expect_no_error(e_sizes, "t5_corruption_sizes raised for valid arguments");
    check(sz.num_noise_tokens == noise && sz.num_noise_spans == spans &&
              sz.inputs_length == length - noise + spans + 1 &&
              sz.targets_length == noise + spans + 1,
          "t5_corruption_sizes differ from the documented formulas", -1,
          double(sz.num_noise_tokens), double(sz.num_noise_spans));
  }
  if (!bad.empty()) {
    expect_error(e, argument_parts(bad), "t5_span_corruption: bad argument not reported");
  } else {
    expect_no_error(e, "t5_span_corruption raised for valid arguments");
    check(r.inputs.rows() == batch && r.inputs.cols() == sz.inputs_length &&
              r.targets.rows() == batch && r.targets.cols() == sz.targets_length &&
              r.kept.rows() == batch && r.kept.cols() == length,
          "t5_span_corruption shapes");
    for (Index b = 0; b < batch; ++b) {
      const std::uint64_t sample = first + static_cast<std::uint64_t>(b);
      // reference keep mask
      const std::vector<Index> noise_len =
          ref_segmentation(seed, sample, emask::purpose::t5_noise_cuts, noise, spans);
      const std::vector<Index> kept_len =
          ref_segmentation(seed, sample, emask::purpose::t5_nonnoise_cuts, length - noise, spans);
      check(static_cast<Index>(noise_len.size()) == spans &&
                static_cast<Index>(kept_len.size()) == spans,
            "reference segmentation size (harness)", b);
      Index t = 0, in = 0, tg = 0;
      for (Index j = 0; j < spans; ++j) {
        check(noise_len[static_cast<std::size_t>(j)] >= 1 &&
                  kept_len[static_cast<std::size_t>(j)] >= 1,
              "empty segment in the reference (harness)", b);
        const std::int32_t sentinel = o.first_sentinel_id - static_cast<std::int32_t>(j);
        for (Index i = 0; i < kept_len[static_cast<std::size_t>(j)]; ++i, ++t) {
          check(r.kept(b, t), "t5 kept mask differs from the documented segmentation", b,
                double(t));
          check(r.inputs(b, in++) == ids(b, t), "t5 inputs: kept token differs", b, double(t));
        }
        check(r.inputs(b, in++) == sentinel, "t5 inputs: wrong sentinel", b, double(j));
        check(r.targets(b, tg++) == sentinel, "t5 targets: wrong sentinel", b, double(j));
        for (Index i = 0; i < noise_len[static_cast<std::size_t>(j)]; ++i, ++t) {
          check(!r.kept(b, t), "t5 kept mask differs from the documented segmentation", b,
                double(t));
          check(r.targets(b, tg++) == ids(b, t), "t5 targets: noise token differs", b, double(t));
        }
      }
      check(t == length && in + 1 == sz.inputs_length && tg + 1 == sz.targets_length,
            "t5 row does not add up", b);
      check(r.inputs(b, in) == o.eos_id && r.targets(b, tg) == o.eos_id, "t5: no eos at the end",
            b);
      check(same_bits(emask::t5_keep_mask(length, o, {seed, sample}), r.kept.row(b)),
            "t5_keep_mask differs from t5_span_corruption", b);
    }
    const emask::t5_result r2 = emask::t5_span_corruption(ids, o, {seed, first});
    check(same_bits(r2.inputs, r.inputs) && same_bits(r2.targets, r.targets) &&
              same_bits(r2.kept, r.kept),
          "t5: same seed, different output");
    if (batch > 1) {
      const Index k = s.between(1, batch - 1);
      const emask::t5_result p =
          emask::t5_span_corruption(ids.bottomRows(batch - k), o, {seed, first + k});
      check(same_bits(p.inputs, r.inputs.bottomRows(batch - k)) &&
                same_bits(p.targets, r.targets.bottomRows(batch - k)),
            "t5: split batch differs from one call", k);
    }
  }

  // compute_input_and_target_lengths (mean kept <= 10: with density 1 and a huge mean the
  // search for the largest raw length runs for a very long time, as HF's).
  const Index inputs_length = s.rare(0.03) ? 0 : s.between(1, 600);
  const double density = o.noise_density;
  const double mean = s.rare(0.05) ? (s.coin() ? 0.0 : -1.0) : 0.5 + 9.5 * s.uniform();
  std::vector<std::string> lbad;
  if (inputs_length < 1) lbad.push_back("inputs_length");
  if (b1) lbad.push_back("noise_density");
  if (!(mean > 0.0)) lbad.push_back("mean_noise_span_length");
  emask::t5_lengths tl{};
  const std::string el =
      error_of([&] { tl = emask::compute_input_and_target_lengths(inputs_length, density, mean); });
  if (!lbad.empty()) {
    expect_error(el, argument_parts(lbad), "compute_input_and_target_lengths: bad argument");
    return;
  }
  expect_no_error(el, "compute_input_and_target_lengths raised for valid arguments");
  auto f = [&](Index tokens) {
    const auto nz = static_cast<Index>(round_half_even(double(tokens) * density));
    const auto sp = static_cast<Index>(round_half_even(double(nz) / mean));
    return std::pair<Index, Index>(tokens - nz + sp + 1, nz + sp + 1);
  };
  Index tokens = inputs_length;
  while (f(tokens + 1).first <= inputs_length) ++tokens;
  Index targets = f(tokens).second;
  if (density == 0.5 && targets > f(tokens).first) {
    --tokens;  // HF's adjustment for density 0.5
    --targets;
  }
  check(tl.tokens_length == tokens && tl.targets_length == targets,
        "compute_input_and_target_lengths differs from the documented search", inputs_length,
        double(tl.tokens_length), double(tokens));
}

// ---------------------------------------------------------------------------------------------
// MAE patch masking and MGD feature masks

void fuzz_patch_feature(byte_source& s) {
  {
    const Index batch = s.between(0, 8);
    const std::uint8_t k = s.byte();
    const Index patches = k >= 252 ? -static_cast<Index>(k % 2) : s.between(1, 64);
    const double ratios[] = {0.75, 0.0, 0.5, 0.9, 1.0, -0.1, std::nan(""), 0.999};
    const Index ri = s.between(0, 15);
    const double ratio = ri < 8 ? ratios[ri] : 0.999 * s.uniform();
    const std::uint64_t seed = s.u64(), first = s.u64();
    std::vector<std::string> bad;
    if (patches < 1) bad.push_back("num_patches");
    const bool ratio_bad = !(ratio >= 0.0 && ratio < 1.0);
    if (ratio_bad) bad.push_back("mask_ratio");
    const Index keep = ratio_bad ? 0 : static_cast<Index>(double(patches) * (1.0 - ratio));
    if (!ratio_bad && keep < 1) bad.push_back("mask_ratio");
    emask::mae_result r;
    const std::string e = error_of([&] {
      r = emask::mae_random_masking(batch, patches, ratio, {seed, first});
    });
    if (ratio_bad && patches >= 0)
      expect_error(error_of([&] { emask::mae_keep_count(patches, ratio); }),
                   {"argument 'mask_ratio'"}, "mae_keep_count: bad ratio not reported");
    else if (ratio_bad)  // the count is checked first
      expect_error(error_of([&] { emask::mae_keep_count(patches, ratio); }),
                   {"argument 'num_patches'"}, "mae_keep_count: negative count not reported");
    else if (patches < 0)
      expect_error(error_of([&] { emask::mae_keep_count(patches, ratio); }),
                   {"argument 'num_patches'"}, "mae_keep_count: negative count not reported");
    else
      check(emask::mae_keep_count(patches, ratio) == keep,
            "mae_keep_count differs from int(L (1 - r))");
    if (!bad.empty()) {
      expect_error(e, argument_parts(bad), "mae_random_masking: bad argument not reported");
    } else {
      expect_no_error(e, "mae_random_masking raised for valid arguments");
      check(r.ids_keep.rows() == batch && r.ids_keep.cols() == keep &&
                r.ids_restore.rows() == batch && r.ids_restore.cols() == patches &&
                r.ids_shuffle.rows() == batch && r.ids_shuffle.cols() == patches &&
                r.kept.rows() == batch && r.kept.cols() == patches,
            "mae_random_masking shapes");
      const row_matrix<float> removed = emask::mae_removed(r);
      for (Index b = 0; b < batch; ++b) {
        const std::vector<std::uint32_t> order =
            emask::noise_argsort(emask::purpose::mae_noise, static_cast<std::uint32_t>(patches),
                                 {seed, first + static_cast<std::uint64_t>(b)});
        std::vector<char> seen(static_cast<std::size_t>(patches), 0);
        Index kept = 0;
        for (Index j = 0; j < patches; ++j) {
          const std::int32_t p = r.ids_shuffle(b, j);
          check(p >= 0 && p < patches && !seen[static_cast<std::size_t>(p)],
                "ids_shuffle is not a permutation", b, p);
          seen[static_cast<std::size_t>(p)] = 1;
          check(p == static_cast<std::int32_t>(order[static_cast<std::size_t>(j)]),
                "ids_shuffle differs from noise_argsort", b, p);
          check(r.ids_restore(b, p) == j, "ids_restore does not invert ids_shuffle", b, double(j));
          if (j < keep) check(r.ids_keep(b, j) == p, "ids_keep is not the head of ids_shuffle", b);
          check(r.kept(b, p) == (j < keep), "mask differs from ids_keep", b, double(p));
          check(removed(b, p) == (j < keep ? 0.0f : 1.0f), "mae_removed is not !mask", b);
          kept += r.kept(b, p) ? 1 : 0;
        }
        check(kept == keep, "MAE kept count differs from int(L (1 - ratio))", b, double(kept),
              double(keep));
      }
      if (batch > 1) {
        const Index k2 = s.between(1, batch - 1);
        const emask::mae_result p =
            emask::mae_random_masking(batch - k2, patches, ratio, {seed, first + k2});
        check(same_bits(p.ids_shuffle, r.ids_shuffle.bottomRows(batch - k2)) &&
                  same_bits(p.kept, r.kept.bottomRows(batch - k2)),
              "mae_random_masking: split batch differs", k2);
      }
    }
  }
  // MGD
  const Index n = s.between(0, 6), h = s.between(0, 6), w = s.between(0, 6);
  const Index channels = s.rare(0.03) ? -1 : s.between(0, 6);
  bool lambda_bad = false;
  const double lambda = decode_prob(s, 0.5, &lambda_bad);
  const std::uint64_t seed = s.u64(), first = s.u64();
  bool_matrix spatial, channel;
  const std::string es = error_of([&] {
    spatial = emask::mgd_spatial_mask(n, h, w, lambda, {seed, first});
  });
  const std::string ec = error_of([&] {
    channel = emask::mgd_channel_mask(n, channels, lambda, {seed, first});
  });
  if (lambda_bad) {
    expect_error(es, {"argument 'lambda'"}, "mgd_spatial_mask: bad lambda not reported");
    expect_error(ec, {"argument 'lambda'", "argument 'channels'"},
                 "mgd_channel_mask: bad lambda not reported");
    return;
  }
  expect_no_error(es, "mgd_spatial_mask raised for valid arguments");
  if (channels < 0) {
    expect_error(ec, {"argument 'channels'"}, "mgd_channel_mask: negative channels not reported");
    return;
  }
  expect_no_error(ec, "mgd_channel_mask raised for valid arguments");
  const emask::bernoulli drop(lambda);
  check(spatial.rows() == n && spatial.cols() == h * w && channel.rows() == n &&
            channel.cols() == channels,
        "MGD mask shapes");
  for (Index i = 0; i < n; ++i) {
    const std::uint64_t sample = first + static_cast<std::uint64_t>(i);
    for (Index j = 0; j < h * w; ++j)
      check(spatial(i, j) == !drop(emask::packed_word(seed, sample, emask::purpose::mgd_spatial,
                                                      static_cast<std::uint64_t>(j))),
            "mgd_spatial_mask differs from the documented draw", i, double(j));
    for (Index j = 0; j < channels; ++j)
      check(channel(i, j) == !drop(emask::packed_word(seed, sample, emask::purpose::mgd_channel,
                                                      static_cast<std::uint64_t>(j))),
            "mgd_channel_mask differs from the documented draw", i, double(j));
    if (lambda == 0.0) check(spatial.row(i).all() && channel.row(i).all(), "lambda 0 dropped", i);
    if (lambda == 1.0) check(!spatial.row(i).any() && !channel.row(i).any(), "lambda 1 kept", i);
  }
  // Application to a feature map [n, C * H * W] of special values.
  const Index hw = h * w, cols = channels * hw;
  row_matrix<double> fd(n, cols);
  for (Index i = 0; i < fd.size(); ++i) fd.data()[i] = special_value(s, true);
  const bool use_float = s.coin();
  auto apply = [&](auto scalar) {
    using S = decltype(scalar);
    const row_matrix<S> f0 = fd.cast<S>();
    row_matrix<S> fs = f0, fc = f0;
    const std::string ea = error_of([&] { emask::apply_spatial_mask(fs, channels, spatial); });
    if (channels < 1) {
      expect_error(ea, {"argument 'channels'"}, "apply_spatial_mask: channels < 1 not reported");
    } else {
      expect_no_error(ea, "apply_spatial_mask raised for matching shapes");
      for (Index i = 0; i < n; ++i)
        for (Index c = 0; c < channels; ++c)
          for (Index j = 0; j < hw; ++j) {
            const S v = fs(i, c * hw + j), ref = spatial(i, j) ? f0(i, c * hw + j) : S(0);
            check(std::memcmp(&v, &ref, sizeof(S)) == 0, "apply_spatial_mask", i, double(v),
                  double(ref));
          }
    }
    const std::string eb = error_of([&] { emask::apply_channel_mask(fc, channel); });
    if (channels < 1 || (n > 0 && channels > 0 && cols % channels != 0)) {
      expect_error(eb, {"argument 'channel'"}, "apply_channel_mask: no channel not reported");
    } else {
      expect_no_error(eb, "apply_channel_mask raised for matching shapes");
      for (Index i = 0; i < n; ++i)
        for (Index c = 0; c < channels; ++c)
          for (Index j = 0; j < hw; ++j) {
            const S v = fc(i, c * hw + j), ref = channel(i, c) ? f0(i, c * hw + j) : S(0);
            check(std::memcmp(&v, &ref, sizeof(S)) == 0, "apply_channel_mask", i, double(v),
                  double(ref));
          }
    }
    if (n > 0 && channels > 0 && s.rare(0.1)) {
      row_matrix<S> wrong = row_matrix<S>::Zero(n, cols + 1);
      expect_error(error_of([&] { emask::apply_spatial_mask(wrong, channels, spatial); }),
                   {"argument 'spatial'", "argument 'channels'"},
                   "apply_spatial_mask: features of another shape not reported");
    }
  };
  if (use_float)
    apply(0.0f);
  else
    apply(0.0);
}

// The training-recipe maskers of issue 19: bad options are named errors; valid ones give masks
// with the documented invariants, the same bits for a split batch, and the documented draws
// where they are one word per token (LLaDA).
void fuzz_recipes(byte_source& s) {
  const std::uint64_t seed = s.u64(), first = s.u64();
  const Index batch = s.between(0, 6);
  switch (s.byte() % 5) {
    case 0: {  // LLaDA / MDLM noising
      const Index L = s.between(0, 40);
      token_matrix ids(batch, L);
      for (Index i = 0; i < ids.size(); ++i) ids.data()[i] = static_cast<std::int32_t>(s.byte());
      emask::diffusion_options o;
      o.vocab_size = 256;
      o.mask_id = 255;
      bool eps_bad = false, len_bad = false;
      o.eps = decode_prob(s, 1e-3, &eps_bad);
      if (!eps_bad && o.eps == 0.0) eps_bad = true;  // eps must be > 0
      o.random_length_prob = decode_prob(s, 0.0, &len_bad);
      std::vector<Index> prompt(static_cast<std::size_t>(batch));
      for (Index& v : prompt) v = s.between(0, L);
      const bool sft = s.coin();
      emask::diffusion_result r;
      const std::string e = error_of([&] {
        r = sft ? emask::diffusion_mask_sft(ids, emask::index_list(prompt), o, {seed, first})
                : emask::diffusion_mask(ids, o, {seed, first});
      });
      if (eps_bad || len_bad) {
        expect_error(e, {"argument 'eps'", "argument 'random_length_prob'"},
                     "diffusion_mask: bad option not reported");
        return;
      }
      expect_no_error(e, "diffusion_mask raised for valid arguments");
      for (Index b = 0; b < batch; ++b) {
        const double p = r.p(b);
        check(p == std::fma(1.0 - o.eps, r.t(b), o.eps) && r.t(b) >= 0.0 && r.t(b) < 1.0,
              "diffusion: p is not fma(1 - eps, t, eps)", b, p);
        const Index P = sft ? prompt[static_cast<std::size_t>(b)] : 0;
        const Index end = r.lengths[static_cast<std::size_t>(b)];
        check(end >= 0 && end <= L, "diffusion: row end outside [0, L]", b, double(end));
        const emask::bernoulli pick(p);
        for (Index j = 0; j < L; ++j) {
          const bool m = r.masked(b, j);
          const bool in = j >= (std::min)(P, end) && j < end;
          check(!m || in, "diffusion masked a protected or padding position", b, double(j));
          if (in)
            check(m == pick(emask::packed_word(seed, first + static_cast<std::uint64_t>(b),
                                               emask::purpose::diffusion_select,
                                               static_cast<std::uint64_t>(j))),
                  "diffusion mask differs from the documented draw", b, double(j));
          check(m ? r.noisy_ids(b, j) == 255 && r.weight(b, j) == static_cast<float>(1.0 / p)
                  : r.weight(b, j) == 0.0f,
                "diffusion: ids or weight inconsistent with the mask", b, double(j));
        }
      }
      if (batch > 1 && !sft) {
        const Index k = s.between(1, batch - 1);
        const emask::diffusion_result q =
            emask::diffusion_mask(ids.bottomRows(batch - k), o, {seed, first + k});
        check(same_bits(q.masked, r.masked.bottomRows(batch - k)) &&
                  same_bits(q.noisy_ids, r.noisy_ids.bottomRows(batch - k)),
              "diffusion_mask: split batch differs", k);
      }
      return;
    }
    case 1: {  // MaskGIT training masks and the decoding step
      const Index L = s.between(0, 40);
      const token_matrix ids = token_matrix::Constant(batch, L, 7);
      emask::maskgit_options o;
      o.vocab_size = 16;
      o.mask_id = s.rare(0.05) ? 16 : 15;
      const int k = static_cast<int>(s.between(-1, 66));
      const bool use_power = s.coin();
      const std::string es = error_of([&] {
        o.schedule =
            use_power ? emask::maskgit_schedule::power(k) : emask::maskgit_schedule::cosine();
      });
      if (!es.empty()) {
        check(k < 1 || k > 64, "maskgit_schedule::power rejected a valid exponent", -1, k);
        return;
      }
      emask::maskgit_result r;
      const std::string e = error_of([&] { r = emask::maskgit_mask(ids, o, {seed, first}); });
      if (o.mask_id == 16) {
        expect_error(e, {"argument 'mask_id'"}, "maskgit_mask: bad mask_id not reported");
        return;
      }
      expect_no_error(e, "maskgit_mask raised for valid arguments");
      for (Index b = 0; b < batch; ++b) {
        const Index want = emask::maskgit_mask_count(L, r.ratio(b), o.schedule);
        check(r.count[static_cast<std::size_t>(b)] == want && r.masked.row(b).count() == want &&
                  (L == 0 || (want >= 1 && want <= L)),
              "maskgit: masked count is not ceil(gamma(r) L)", b, double(want));
      }
      if (batch > 0 && L > 0) {
        row_matrix<float> conf(batch, L);
        for (Index i = 0; i < conf.size(); ++i)
          conf.data()[i] = s.rare(0.05) ? std::nanf("") : static_cast<float>(s.byte() % 8);
        std::vector<Index> initial(static_cast<std::size_t>(batch));
        for (Index b = 0; b < batch; ++b)
          initial[static_cast<std::size_t>(b)] = r.masked.row(b).count();
        const Index T = s.between(1, 6), step = s.between(0, T - 1);
        bool_matrix next;
        const std::string er = error_of([&] {
          next = emask::maskgit_remask(conf, r.masked, emask::index_list(initial), step, T,
                                       o.schedule);
        });
        bool nan_unknown = false;
        for (Index i = 0; i < conf.size(); ++i)
          nan_unknown = nan_unknown || (std::isnan(conf.data()[i]) && r.masked.data()[i]);
        if (nan_unknown) {
          expect_error(er, {"argument 'confidence"}, "maskgit_remask: NaN not reported");
          return;
        }
        expect_no_error(er, "maskgit_remask raised for valid arguments");
        for (Index b = 0; b < batch; ++b) {
          const Index U = r.masked.row(b).count();
          const Index n = emask::maskgit_remask_count(initial[static_cast<std::size_t>(b)], U, step,
                                                      T, o.schedule);
          check(next.row(b).count() == n, "maskgit_remask: count", b, double(n));
          for (Index j = 0; j < L; ++j) {
            check(!next(b, j) || r.masked(b, j), "maskgit_remask re-masked a known token", b);
            if (next(b, j))  // no unknown token left unmasked is less confident (ties by index)
              for (Index i = 0; i < L; ++i)
                if (r.masked(b, i) && !next(b, i))
                  check(conf(b, i) > conf(b, j) || (conf(b, i) == conf(b, j) && i > j),
                        "maskgit_remask kept a less confident token", b, double(i));
          }
        }
      }
      return;
    }
    case 2: {  // BEiT blockwise
      emask::beit_mask_options o;
      o.height = s.rare(0.03) ? 0 : s.between(1, 16);
      o.width = s.between(1, 16);
      o.num_masking_patches = s.between(0, o.height * o.width + 4);
      o.min_num_patches = s.between(0, 20);
      if (s.coin()) o.max_num_patches = s.rare(0.03) ? 0 : s.between(1, 40);
      const double aspects[] = {0.3, 1.0, 1e-4, 1e4, 0.0, std::nan(""), 2.5, 1e5};
      o.min_aspect = aspects[s.byte() % 8];
      emask::patch_grid_mask r;
      const std::string e = error_of([&] { r = emask::beit_block_mask(batch, o, {seed, first}); });
      const bool bad = o.height < 1 || !(o.min_aspect >= 1e-4 && o.min_aspect <= 1e4) ||
                       (o.max_num_patches && *o.max_num_patches < 1);
      if (bad) {
        expect_error(e, {"argument 'options."}, "beit_block_mask: bad option not reported");
        return;
      }
      expect_no_error(e, "beit_block_mask raised for valid arguments");
      check(r.counts().size() == batch &&
                (batch == 0 || r.counts().maxCoeff() <= o.num_masking_patches),
            "beit_block_mask: count above the budget");
      if (batch > 1) {
        const Index k = s.between(1, batch - 1);
        const emask::patch_grid_mask q = emask::beit_block_mask(batch - k, o, {seed, first + k});
        check(same_bits(q.masked, r.masked.bottomRows(batch - k)), "beit: split batch differs", k);
      }
      return;
    }
    case 3: {  // SimMIM and data2vec 2.0
      emask::simmim_mask_options sm;
      const Index sizes[] = {192, 96, 64, 30, 0, 32};
      sm.input_size = sizes[s.byte() % 6];
      sm.mask_patch_size = 32;
      sm.model_patch_size = s.between(1, 9);
      bool ratio_bad = false;
      sm.mask_ratio = decode_prob(s, 0.6, &ratio_bad);
      emask::patch_grid_mask r;
      const std::string e = error_of([&] { r = emask::simmim_mask(batch, sm, {seed, first}); });
      if (ratio_bad || sm.input_size < 1 || sm.input_size % 32 != 0 ||
          32 % sm.model_patch_size != 0) {
        expect_error(e, {"argument 'options."}, "simmim_mask: bad option not reported");
      } else {
        expect_no_error(e, "simmim_mask raised for valid arguments");
        const Index scale = 32 / sm.model_patch_size;
        for (Index b = 0; b < batch; ++b)
          check(r.masked.row(b).count() == emask::simmim_mask_count(sm) * scale * scale,
                "simmim: masked count is not mask_count * scale^2", b);
      }
      emask::data2vec_mask_options dv;
      dv.height = s.between(1, 16);
      dv.width = s.between(1, 16);
      dv.mask_length = s.between(0, 5);
      bool p_bad = false, a_bad = false;
      dv.mask_prob = decode_prob(s, 0.8, &p_bad);
      dv.mask_prob_adjust = decode_prob(s, 0.07, &a_bad);
      const std::string e2 = error_of([&] {
        r = emask::data2vec_block_mask(batch, dv, {seed, first});
      });
      if (p_bad || a_bad || dv.mask_length < 2) {
        expect_error(e2, {"argument 'options."}, "data2vec_block_mask: bad option not reported");
        return;
      }
      expect_no_error(e2, "data2vec_block_mask raised for valid arguments");
      const Index L = dv.height * dv.width;
      const auto target = L - static_cast<Index>(static_cast<double>(L) * (1.0 - dv.mask_prob));
      for (Index b = 0; b < batch; ++b)
        check(r.masked.row(b).count() == target, "data2vec: count is not L - int(L (1 - p))", b,
              double(target));
      return;
    }
    default: {  // wav2vec 2.0 spans
      const Index L = s.between(1, 60);
      emask::audio_span_options o;
      bool p_bad = false;
      o.mask_prob = decode_prob(s, 0.65, &p_bad);
      o.mask_length = s.between(0, 12);
      o.min_masks = s.rare(0.03) ? -1 : s.between(0, 5);
      std::vector<Index> lengths(static_cast<std::size_t>(batch));
      for (Index& v : lengths) v = s.between(0, L);
      emask::audio_span_result r;
      const std::string e = error_of([&] {
        r = emask::audio_span_mask(emask::index_list(lengths), L, o, {seed, first});
      });
      if (p_bad || o.mask_length < 1 || o.mask_length > L || o.min_masks < 0) {
        expect_error(e, {"argument 'options."}, "audio_span_mask: bad option not reported");
        return;
      }
      expect_no_error(e, "audio_span_mask raised for valid arguments");
      for (Index b = 0; b < batch; ++b) {
        const Index n = lengths[static_cast<std::size_t>(b)];
        Index run = 0;
        for (Index j = 0; j <= L; ++j) {
          const bool m = j < L && r.masked(b, j);
          check(!m || j < n, "audio_span_mask masked padding", b, double(j));
          if (m) {
            ++run;
          } else {
            check(run == 0 || run >= o.mask_length, "audio span run shorter than mask_length", b,
                  double(run));
            run = 0;
          }
        }
        check(r.num_spans(b) >= 0 && r.num_spans(b) * o.mask_length >= r.masked.row(b).count(),
              "audio spans do not cover the mask", b);
      }
      return;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  byte_source s(data, size);
  switch (s.byte() % 9) {
    case 0:
      g_target = "policy<float>";
      fuzz_policy<float>(s);
      break;
    case 1:
      g_target = "policy<double>";
      fuzz_policy<double>(s);
      break;
    case 2:
      if (s.coin()) {
        g_target = "dqn<float>";
        fuzz_dqn<float>(s);
      } else {
        g_target = "dqn<double>";
        fuzz_dqn<double>(s);
      }
      break;
    case 3:
      g_target = "mlm";
      fuzz_mlm(s);
      break;
    case 4:
      g_target = "whole_word";
      fuzz_whole_word(s);
      break;
    case 5:
      g_target = "span";
      fuzz_span(s);
      break;
    case 6:
      g_target = "t5";
      fuzz_t5(s);
      break;
    case 7:
      g_target = "mae+mgd";
      fuzz_patch_feature(s);
      break;
    default:
      g_target = "recipes";
      fuzz_recipes(s);
      break;
  }
  return 0;
}
