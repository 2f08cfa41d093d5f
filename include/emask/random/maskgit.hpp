/// \file
/// \brief MaskGIT masking (Chang et al. 2022, "MaskGIT: Masked Generative Image Transformer",
/// arXiv 2202.04200): the mask-ratio schedules gamma, the training draw (mask ceil(gamma(r) N)
/// tokens chosen uniformly) and the inference step (re-mask the least confident tokens).
///
/// Reference: google-research/maskgit, `libml/mask_schedule.py` (`schedule`) and
/// `libml/parallel_decode.py` (`decode`, `mask_by_random_topk`); the training draw follows the
/// paper (section 3.2: r ~ U[0, 1), ceil(gamma(r) N) tokens masked uniformly), the reference
/// release having no training code. Schedules: "cosine" cos(pi r / 2), "uniform" 1 - r (here
/// `linear`), "pow<k>" 1 - r^k (here `power(k)`, with `square` k = 2 and `cubic` k = 3), and the
/// paper's square root 1 - sqrt(r) (the reference's "pow0.5"); the reference clips gamma to
/// [1e-6, 1] before counting, and so does emask. Its "log" and "exp" schedules are not provided.
///
/// Where emask differs: r and the selection noise come from Philox (docs/random.md); gamma is
/// evaluated with exact or correctly rounded operations only (cos by detail::portable_cos_half_pi,
/// 1 - r^k by std::fma), so counts are the same on every machine. The inference step re-masks
/// exactly n tokens with ties in confidence broken by the lower position first, where the
/// reference's `confidence < cut_off` masks fewer than n on ties; at the last step it returns 0
/// (the reference computes a count there but returns the tokens sampled before re-masking). The
/// reference's Gumbel noise on the confidence (temperature `choice_temperature * (1 - ratio)`)
/// is left to the caller: pass log(prob) + temperature * gumbel as the confidence.
/// The `masked` / `unknown` matrices are named for what they hold: **true = masked** (MaskGIT's
/// `unknown_map`), the opposite of emask's "true = kept".
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "emask/config.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/detail/portable_math.hpp"
#include "emask/detail/threads.hpp"
#include "emask/random/distributions.hpp"
#include "emask/random/tokens.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief A MaskGIT mask-ratio schedule gamma: [0, 1] -> [0, 1], non-increasing, gamma(0) = 1
/// and gamma(1) = 0. Build one with the named factories.
class maskgit_schedule {
 public:
  /// \brief The family of the schedule.
  enum class kind {
    cosine,       ///< cos(pi r / 2) (reference "cosine", MaskGIT's default)
    linear,       ///< 1 - r (reference "uniform")
    square_root,  ///< 1 - sqrt(r) (reference "pow0.5")
    power         ///< 1 - r^k, integer k >= 1 (reference "pow<k>")
  };
  /// \brief The default: cosine.
  constexpr maskgit_schedule() noexcept = default;
  /// \brief cos(pi r / 2).
  static constexpr maskgit_schedule cosine() noexcept { return {kind::cosine, 1}; }
  /// \brief 1 - r.
  static constexpr maskgit_schedule linear() noexcept { return {kind::linear, 1}; }
  /// \brief 1 - sqrt(r).
  static constexpr maskgit_schedule square_root() noexcept { return {kind::square_root, 1}; }
  /// \brief 1 - r^2.
  static constexpr maskgit_schedule square() noexcept { return {kind::power, 2}; }
  /// \brief 1 - r^3.
  static constexpr maskgit_schedule cubic() noexcept { return {kind::power, 3}; }
  /// \brief 1 - r^k for an integer \p k in [1, 64].
  static maskgit_schedule power(int k) {
    if (k < 1 || k > 64)
      detail::fail_argument("maskgit_schedule::power", "k", k, "an integer exponent in [1, 64]");
    return {kind::power, k};
  }
  /// \brief The family.
  constexpr kind type() const noexcept { return type_; }
  /// \brief k of a power schedule (1 for the others).
  constexpr int exponent() const noexcept { return exponent_; }

 private:
  constexpr maskgit_schedule(kind t, int k) noexcept : type_(t), exponent_(k) {}
  kind type_ = kind::cosine;
  int exponent_ = 1;
};

namespace detail {
/// gamma(r) for r in [0, 1], no checks. Every operation is exact or correctly rounded, and no
/// expression has the a * b + c shape a compiler could contract (docs/random.md, MaskGIT).
inline double maskgit_gamma_unchecked(const maskgit_schedule& s, double r) noexcept {
  switch (s.type()) {
    case maskgit_schedule::kind::cosine: return portable_cos_half_pi(r);
    case maskgit_schedule::kind::linear: return 1.0 - r;
    case maskgit_schedule::kind::square_root: return 1.0 - std::sqrt(r);
    case maskgit_schedule::kind::power: {
      double q = 1.0;  // r^(k-1), products left to right
      for (int i = 1; i < s.exponent(); ++i) q *= r;
      return std::fma(-q, r, 1.0);  // 1 - r^k with one rounding
    }
  }
  return 0.0;
}

/// The reference's clip of gamma to [1e-6, 1] before counting.
inline double maskgit_gamma_clipped(const maskgit_schedule& s, double r) noexcept {
  return (std::min)(1.0, (std::max)(1e-6, maskgit_gamma_unchecked(s, r)));
}

inline void check_schedule(const char* where, const maskgit_schedule& s) {
  const auto t = static_cast<int>(s.type());
  if (t < 0 || t > static_cast<int>(maskgit_schedule::kind::power))
    fail_argument(where, "schedule", t, "cosine, linear, square_root or power");
  if (s.exponent() < 1 || s.exponent() > 64)
    fail_argument(where, "schedule", concat("power(", s.exponent(), ")"), "an exponent in [1, 64]");
}

inline void check_ratio(const char* where, const char* arg, double r) {
  if (is_nan(r) || !(r >= 0.0 && r <= 1.0)) fail_argument(where, arg, r, "a ratio in [0, 1]");
}

/// ceil(clip(gamma(r)) * n): in [1, n] for n >= 1 since the clipped gamma is in [1e-6, 1].
inline Index maskgit_count_unchecked(const maskgit_schedule& s, Index n, double r) noexcept {
  return static_cast<Index>(std::ceil(maskgit_gamma_clipped(s, r) * static_cast<double>(n)));
}

/// The reference's decode count for step t of T, with the last step settled (0).
inline Index maskgit_remask_unchecked(const maskgit_schedule& s, Index initial, Index unknown,
                                      Index step, Index steps) noexcept {
  if (step + 1 >= steps || unknown <= 0) return 0;
  const double ratio = static_cast<double>(step + 1) / static_cast<double>(steps);
  const auto n = static_cast<Index>(
      std::floor(static_cast<double>(initial) * maskgit_gamma_clipped(s, ratio)));
  // max(1, min(unknown - 1, n)) as the reference, and never more than are unknown
  return (std::min)(unknown, (std::max)(Index{1}, (std::min)(unknown - 1, n)));
}
}  // namespace detail

/// \brief The schedule's mask ratio gamma(\p r) for r in [0, 1], not clipped: gamma(0) = 1,
/// gamma(1) = 0. The counts use it clipped to [1e-6, 1], as the reference does.
inline double maskgit_gamma(const maskgit_schedule& schedule, double r) {
  detail::check_schedule("maskgit_gamma", schedule);
  detail::check_ratio("maskgit_gamma", "r", r);
  return detail::maskgit_gamma_unchecked(schedule, r);
}

/// \brief Training count: how many of \p n tokens to mask for the drawn ratio \p r,
/// ceil(clip(gamma(r), 1e-6, 1) * n); in [1, n] when n >= 1, 0 when n = 0.
inline Index maskgit_mask_count(Index n, double r, const maskgit_schedule& schedule) {
  const char* where = "maskgit_mask_count";
  detail::check_schedule(where, schedule);
  if (n < 0 || n > (Index{1} << 32) - 1)
    detail::fail_argument(where, "n", n, "a count in [0, 2^32)");
  detail::check_ratio(where, "r", r);
  return detail::maskgit_count_unchecked(schedule, n, r);
}

/// \brief Inference count: how many tokens stay masked after step \p step (0-based) of
/// \p total_steps, for a row that started with \p initial_unknown masked tokens and has
/// \p unknown of them still masked before this step. As the reference:
/// n = floor(initial_unknown * clip(gamma((step + 1) / total_steps), 1e-6, 1)), then
/// max(1, min(unknown - 1, n)) (keep at least one new token, leave at least one masked), capped
/// at unknown; 0 at the last step (step = total_steps - 1) and when nothing is unknown.
inline Index maskgit_remask_count(Index initial_unknown, Index unknown, Index step,
                                  Index total_steps, const maskgit_schedule& schedule) {
  const char* where = "maskgit_remask_count";
  detail::check_schedule(where, schedule);
  if (initial_unknown < 0 || initial_unknown > (Index{1} << 32) - 1)
    detail::fail_argument(where, "initial_unknown", initial_unknown, "a count in [0, 2^32)");
  if (unknown < 0 || unknown > initial_unknown)
    detail::fail_argument(where, "unknown", unknown,
                          "a count in [0, initial_unknown = ", initial_unknown, "]");
  if (total_steps < 1) detail::fail_argument(where, "total_steps", total_steps, ">= 1");
  if (step < 0 || step >= total_steps)
    detail::fail_argument(where, "step", step, "a step in [0, total_steps = ", total_steps, ")");
  return detail::maskgit_remask_unchecked(schedule, initial_unknown, unknown, step, total_steps);
}

/// \brief Parameters of MaskGIT training masking. vocab_size and mask_id must be set.
struct maskgit_options {
  std::int32_t vocab_size = 0;  ///< ids are in [0, vocab_size); must be >= 1
  token_id mask_id = -1;        ///< the [MASK] id, in [0, vocab_size)
  maskgit_schedule schedule;    ///< gamma; cosine by default (MaskGIT)
};

/// \brief A MaskGIT training batch [batch, length].
struct maskgit_result {
  token_matrix noisy_ids;  ///< ids with every masked position replaced by mask_id
  /// **true = masked** (replaced by mask_id, to be predicted), as MaskGIT's mask; the opposite
  /// of emask's "true = kept" convention, hence the name.
  bool_matrix masked;
  Eigen::VectorXd ratio;     ///< r of each row, in [0, 1)
  std::vector<Index> count;  ///< masked tokens of each row: maskgit_mask_count(length, r)
};

namespace detail {
inline void check_maskgit_call(const char* where, Index cols, const index_list* lengths, Index rows,
                               const maskgit_options& o) {
  if (o.vocab_size < 1) fail_argument(where, "vocab_size", o.vocab_size, ">= 1");
  if (o.mask_id < 0 || o.mask_id >= o.vocab_size)
    fail_argument(where, "mask_id", o.mask_id, "an id inside the vocabulary [0, ", o.vocab_size,
                  ")");
  check_schedule(where, o.schedule);
  if (cols > (Index{1} << 32) - 1)
    fail_argument(where, "ids", concat(cols, " columns"), "at most 2^32 - 1 positions per row");
  check_lengths(where, lengths, rows, cols);
}

inline maskgit_result maskgit_batch(const Eigen::Ref<const token_matrix>& ids,
                                    const index_list* lengths, const maskgit_options& o,
                                    random_address at) {
  const Index B = ids.rows(), L = ids.cols();
  maskgit_result r{ids, bool_matrix::Constant(B, L, false), Eigen::VectorXd(B),
                   std::vector<Index>(static_cast<std::size_t>(B))};
  region_errors failure;  // an allocation failure of a thread's buffers reaches the caller
#if EMASK_HAS_OPENMP
#pragma omp parallel if (B > 1 && B * L >= 16384)
#endif
  {
    std::vector<std::uint32_t> words;
    std::vector<std::uint64_t> keys;
    std::vector<unsigned char> flags;
#if EMASK_HAS_OPENMP
#pragma omp for schedule(static)
#endif
    for (Index b = 0; b < B; ++b)
      failure.run([&] {
        const std::uint64_t s = at.sample + static_cast<std::uint64_t>(b);
        const Index n = row_length(lengths, b, L);
        const philox_block head = random_block(at.seed, s, purpose::maskgit_ratio, 0);
        const double ratio = uniform_double(head[0], head[1]);
        const Index k = maskgit_count_unchecked(o.schedule, n, ratio);
        const auto un = static_cast<std::size_t>(n);
        words.resize(un);
        keys.resize(un);
        flags.assign(un, 0);
        fill_packed_words(at.seed, s, purpose::maskgit_noise, 0, un, words.data());
        for (std::size_t j = 0; j < un; ++j)
          keys[j] = noise_key(words[j], static_cast<std::uint32_t>(j));
        mark_smallest(keys, static_cast<std::size_t>(k), flags.data());
        for (Index j = 0; j < n; ++j)
          if (flags[static_cast<std::size_t>(j)]) {
            r.noisy_ids(b, j) = o.mask_id;
            r.masked(b, j) = true;
          }
        r.ratio(b) = ratio;
        r.count[static_cast<std::size_t>(b)] = k;
      });
  }
  failure.rethrow();
  return r;
}

template <class Derived>
void check_remask(const char* where, const Eigen::DenseBase<Derived>& confidence,
                  const Eigen::Ref<const bool_matrix>& unknown, const index_list& initial_unknown,
                  Index step, Index total_steps, const maskgit_schedule& s) {
  static_assert(std::is_floating_point<typename Derived::Scalar>::value,
                "emask: the confidences must be float or double; cast them first");
  check_schedule(where, s);
  const Index B = confidence.rows(), L = confidence.cols();
  if (unknown.rows() != B || unknown.cols() != L)
    fail_argument(where, "unknown", concat(unknown.rows(), "x", unknown.cols()),
                  "the shape of confidence, ", B, "x", L);
  if (L > (Index{1} << 32) - 1)
    fail_argument(where, "confidence", concat(L, " columns"), "at most 2^32 - 1 positions per row");
  if (total_steps < 1) fail_argument(where, "total_steps", total_steps, ">= 1");
  if (step < 0 || step >= total_steps)
    fail_argument(where, "step", step, "a step in [0, total_steps = ", total_steps, ")");
  if (static_cast<Index>(initial_unknown.size()) != B)
    fail_argument(where, "initial_unknown", concat(initial_unknown.size(), " entries"), B,
                  " entries (one per row of confidence)");
  for (std::size_t i = 0; i < initial_unknown.size(); ++i)
    if (initial_unknown[i] < 0 || initial_unknown[i] > L)
      fail_element(where, "initial_unknown", i, initial_unknown[i], "a count in [0, ", L, "]");
  for (Index b = 0; b < B; ++b)
    for (Index j = 0; j < L; ++j)
      if (unknown(b, j) && is_nan(confidence.derived().coeff(b, j)))
        fail_element(where, "confidence", concat(b, ", ", j),
                     static_cast<double>(confidence.derived().coeff(b, j)),
                     "a number (not NaN) at a position still unknown");
}

/// Writes the next unknown map into out (which may alias unknown: each row is read into
/// `order` before it is written).
template <class Derived>
void remask_rows(const Eigen::DenseBase<Derived>& confidence,
                 const Eigen::Ref<const bool_matrix>& unknown, const index_list& initial_unknown,
                 Index step, Index total_steps, const maskgit_schedule& s,
                 Eigen::Ref<bool_matrix> out) {
  using Scalar = typename Derived::Scalar;
  const Index B = confidence.rows(), L = confidence.cols();
  region_errors failure;
#if EMASK_HAS_OPENMP
#pragma omp parallel if (B > 1 && B * L >= 16384)
#endif
  {
    std::vector<std::uint32_t> order;
#if EMASK_HAS_OPENMP
#pragma omp for schedule(static)
#endif
    for (Index b = 0; b < B; ++b)
      failure.run([&] {
        order.clear();
        for (Index j = 0; j < L; ++j)
          if (unknown(b, j)) order.push_back(static_cast<std::uint32_t>(j));
        const auto n = static_cast<std::size_t>(
            maskgit_remask_unchecked(s, initial_unknown[static_cast<std::size_t>(b)],
                                     static_cast<Index>(order.size()), step, total_steps));
        // least confident first, ties by the lower position
        const auto less = [&](std::uint32_t x, std::uint32_t y) {
          const Scalar cx = confidence.derived().coeff(b, static_cast<Index>(x));
          const Scalar cy = confidence.derived().coeff(b, static_cast<Index>(y));
          return cx < cy || (!(cy < cx) && x < y);
        };
        if (n > 0 && n < order.size())
          std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n - 1),
                           order.end(), less);
        for (Index j = 0; j < L; ++j) out(b, j) = false;
        for (std::size_t i = 0; i < n; ++i) out(b, static_cast<Index>(order[i])) = true;
      });
  }
  failure.rethrow();
}
}  // namespace detail

/// \brief MaskGIT training masking of \p ids [batch, length]: per row, r ~ U[0, 1) and the
/// maskgit_mask_count(length, r) positions with the smallest selection noise are masked. Row b
/// is sample at.sample + b of seed at.seed.
inline maskgit_result maskgit_mask(const Eigen::Ref<const token_matrix>& ids,
                                   const maskgit_options& options, random_address at = {}) {
  detail::check_maskgit_call("maskgit_mask", ids.cols(), nullptr, ids.rows(), options);
  return detail::maskgit_batch(ids, nullptr, options, at);
}

/// \brief Training masking of rows with valid lengths \p lengths: only positions < lengths[b]
/// are counted and masked.
inline maskgit_result maskgit_mask(const Eigen::Ref<const token_matrix>& ids,
                                   const index_list& lengths, const maskgit_options& options,
                                   random_address at = {}) {
  detail::check_maskgit_call("maskgit_mask", ids.cols(), &lengths, ids.rows(), options);
  return detail::maskgit_batch(ids, &lengths, options, at);
}

/// \brief One MaskGIT decoding step: returns the unknown map for the next step (**true =
/// masked**). In each row the maskgit_remask_count(initial_unknown[b], unknown tokens, step,
/// total_steps) least confident of the tokens still unknown stay masked, ties broken by the lower
/// position first; tokens already known (unknown = false) are never re-masked, and their
/// confidence is not read. \p confidence [batch, length] (float or double) is the caller's
/// confidence in the tokens sampled at this step (MaskGIT: the probability of the sampled id,
/// optionally log(p) + temperature * Gumbel noise); NaN at an unknown position is an error.
template <class Derived>
bool_matrix maskgit_remask(const Eigen::DenseBase<Derived>& confidence,
                           const Eigen::Ref<const bool_matrix>& unknown,
                           const index_list& initial_unknown, Index step, Index total_steps,
                           const maskgit_schedule& schedule = {}) {
  detail::check_remask("maskgit_remask", confidence, unknown, initial_unknown, step, total_steps,
                       schedule);
  bool_matrix next(unknown.rows(), unknown.cols());
  detail::remask_rows(confidence, unknown, initial_unknown, step, total_steps, schedule, next);
  return next;
}

/// \brief The decoding step in place: \p unknown (true = masked) becomes the next step's map.
/// Every argument is checked before \p unknown is written.
template <class Derived>
void maskgit_remask_inplace(const Eigen::DenseBase<Derived>& confidence,
                            Eigen::Ref<bool_matrix> unknown, const index_list& initial_unknown,
                            Index step, Index total_steps, const maskgit_schedule& schedule = {}) {
  const Eigen::Ref<const bool_matrix> in(unknown);
  detail::check_remask("maskgit_remask_inplace", confidence, in, initial_unknown, step, total_steps,
                       schedule);
  detail::remask_rows(confidence, in, initial_unknown, step, total_steps, schedule, unknown);
}

EMASK_NAMESPACE_END
