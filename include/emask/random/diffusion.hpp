/// \file
/// \brief Masked-diffusion language-model noising (LLaDA, Nie et al. 2025, arXiv 2502.09992;
/// MDLM, Sahoo et al. 2024, arXiv 2406.07524) and its importance-weighted loss, reproducible bit
/// for bit from (seed, sample id, position).
///
/// Reference: LLaDA's `forward_process` in GUIDELINES.md (GSAI-ML/LLaDA). Per sequence
/// t ~ U[0, 1) and p = (1 - eps) t + eps; each token is masked (replaced by the mask id) with
/// probability p; the loss of a masked token is its cross-entropy divided by p. Pre-training loss:
/// the sum over masked tokens of CE / p, divided by b * l; 1% of pre-training sequences are cut
/// to a length drawn from U[1, l]. SFT: the prompt is never masked, and each token's CE / p is
/// divided by its sequence's answer length (the non-prompt positions), the sum by b.
///
/// Where emask differs: draws come from Philox (docs/random.md), so t is a 53-bit double and a
/// token is masked iff its packed word is below ceil(p * 2^32); p is defined as
/// std::fma(1 - eps, t, eps). The random-length cut is drawn per sequence (LLaDA draws one cut per
/// batch and truncates the whole batch); positions past a sequence's cut are padding: never
/// masked, weight 0, and `lengths` of the result says where each sequence ends. The pre-training
/// loss divides by the number of real positions, the sum of those lengths (b * l when no sequence
/// is padded or cut, as in LLaDA). The `masked` matrix of the result is LLaDA's
/// `masked_indices`: true = masked, the opposite of emask's usual "true = kept".
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "emask/config.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/detail/threads.hpp"
#include "emask/random/distributions.hpp"
#include "emask/random/tokens.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Parameters of masked-diffusion noising. vocab_size and mask_id have no defaults and
/// must be set. The seed is not an option: it is part of the random_address every masker takes.
struct diffusion_options {
  std::int32_t vocab_size = 0;      ///< ids are in [0, vocab_size); must be >= 1
  token_id mask_id = -1;            ///< the [MASK] id (LLaDA: 126336), in [0, vocab_size)
  double eps = 1e-3;                ///< p = (1 - eps) t + eps, in (0, 1]
  double random_length_prob = 0.0;  ///< share of sequences cut to U[1, length] (LLaDA: 0.01)
  token_id pad_id = -1;  ///< written past a random-length cut (< 0: those positions keep their id)
};

/// \brief A noised batch [batch, length] with its per-token loss weights and per-row draws.
struct diffusion_result {
  token_matrix noisy_ids;  ///< ids with every masked position replaced by mask_id
  /// LLaDA's `masked_indices`: **true = masked** (replaced by mask_id and predicted), false =
  /// left as is. This is the opposite of emask's "true = kept" convention, hence the name.
  bool_matrix masked;
  /// float(1 / p) where masked, 0 elsewhere (finite unless eps < 2.9e-39: float overflows)
  row_matrix<float> weight;
  Eigen::VectorXd t;                  ///< the time t of each row, in [0, 1)
  Eigen::VectorXd p;                  ///< the mask probability of each row, fma(1 - eps, t, eps)
  std::vector<Index> lengths;         ///< row b ends at lengths[b]: later positions are padding
  std::vector<Index> prompt_lengths;  ///< the protected prefix of each row (0 without a prompt)
};

namespace detail {
inline void check_diffusion_options(const char* where, const diffusion_options& o) {
  if (o.vocab_size < 1) fail_argument(where, "vocab_size", o.vocab_size, ">= 1");
  if (o.mask_id < 0 || o.mask_id >= o.vocab_size)
    fail_argument(where, "mask_id", o.mask_id, "an id inside the vocabulary [0, ", o.vocab_size,
                  ")");
  if (is_nan(o.eps) || !(o.eps > 0.0 && o.eps <= 1.0))
    fail_argument(where, "eps", o.eps, "a minimum mask probability in (0, 1]");
  check_probability(where, "random_length_prob", o.random_length_prob);
  if (o.pad_id >= o.vocab_size)
    fail_argument(where, "pad_id", o.pad_id, "an id inside the vocabulary [0, ", o.vocab_size,
                  ") or a negative value for none");
}

inline void check_diffusion_call(const char* where, Index rows, Index cols,
                                 const index_list* lengths, const index_list* prompt_lengths,
                                 const diffusion_options& o) {
  check_diffusion_options(where, o);
  if (cols > (Index{1} << 32) - 1)
    fail_argument(where, "ids", concat(cols, " columns"), "at most 2^32 - 1 positions per row");
  check_lengths(where, lengths, rows, cols);
  check_lengths(where, prompt_lengths, rows, cols, "prompt_lengths");
}

/// The draws of one sequence from its diffusion_time block: t from words 0-1, the
/// random-length decision from word 2, the cut length from the word stream resumed at word 3.
struct diffusion_row_draw {
  double t;
  double p;
  Index end;  // where the row ends after a random-length cut (its length when not cut)
  bool cut;
};

inline diffusion_row_draw draw_diffusion_row(std::uint64_t seed, std::uint64_t sample, Index length,
                                             double eps, const bernoulli& cut_length) noexcept {
  const philox_block head = random_block(seed, sample, purpose::diffusion_time, 0);
  diffusion_row_draw d{};
  d.t = uniform_double(head[0], head[1]);
  // The definition of p, one rounding for 1 - eps and one for the fused multiply-add: the same
  // value on every machine, whether or not the compiler would contract a * b + c.
  d.p = std::fma(1.0 - eps, d.t, eps);
  d.end = length;
  d.cut = false;
  if (length >= 1 && cut_length(head[2])) {
    word_stream rest(seed, sample, purpose::diffusion_time, 0, head.data(), 3);
    d.end = 1 + static_cast<Index>(bounded(rest, static_cast<std::uint32_t>(length)));
    d.cut = true;
  }
  return d;
}

/// Positions [0, n) of one chunk: masked iff word <= threshold - 1 (threshold = ceil(p 2^32) is
/// >= 1 since p >= eps > 0, so last = threshold - 1 fits 32 bits and p = 1 gives 0xFFFFFFFF).
/// Branch-free, so the compiler vectorizes it.
inline void diffusion_chunk(const std::uint32_t* words, const token_id* ids, Index n,
                            std::uint32_t last, token_id mask_id, float w, token_id* noisy,
                            bool* masked, float* weight) noexcept {
  std::uint32_t w_bits;
  std::memcpy(&w_bits, &w, sizeof w_bits);
  const auto mask_bits = static_cast<std::uint32_t>(mask_id);
  for (Index j = 0; j < n; ++j) {
    // all ones where masked: the selects are bitwise, with no branch to stop vectorization
    const std::uint32_t m = 0u - static_cast<std::uint32_t>(words[j] <= last);
    const auto id = static_cast<std::uint32_t>(ids[j]);
    noisy[j] = static_cast<token_id>((id & ~m) | (mask_bits & m));
    masked[j] = m != 0;
    const std::uint32_t wb = w_bits & m;
    std::memcpy(weight + j, &wb, sizeof wb);
  }
}

/// One row: positions [prompt, end) are drawn, the rest copied unmasked with weight 0.
inline void diffusion_row(const token_id* ids, token_id* noisy, bool* masked, float* weight,
                          Index width, Index prompt, const diffusion_row_draw& d,
                          std::uint64_t seed, std::uint64_t sample,
                          const diffusion_options& o) noexcept {
  const Index begin = (std::min)(prompt, d.end);
  for (Index j = 0; j < begin; ++j) {
    noisy[j] = ids[j];
    masked[j] = false;
    weight[j] = 0.0f;
  }
  const std::uint64_t threshold = bernoulli(d.p).threshold();
  const auto last = static_cast<std::uint32_t>(threshold - 1);
  const auto w = static_cast<float>(1.0 / d.p);
  constexpr Index chunk = 256;
  std::uint32_t words[chunk];
  for (Index c = begin; c < d.end; c += chunk) {
    const Index n = (std::min)(chunk, d.end - c);
    fill_packed_words(seed, sample, purpose::diffusion_select, static_cast<std::uint64_t>(c),
                      static_cast<std::uint64_t>(c + n), words);
    diffusion_chunk(words, ids + c, n, last, o.mask_id, w, noisy + c, masked + c, weight + c);
  }
  const bool fill = d.cut && o.pad_id >= 0;
  for (Index j = (std::max)(begin, d.end); j < width; ++j) {
    noisy[j] = fill ? o.pad_id : ids[j];
    masked[j] = false;
    weight[j] = 0.0f;
  }
}

inline diffusion_result diffusion_batch(const Eigen::Ref<const token_matrix>& ids,
                                        const index_list* lengths, const index_list* prompt_lengths,
                                        const diffusion_options& o, random_address at) {
  const Index B = ids.rows(), L = ids.cols();
  diffusion_result r{token_matrix(B, L),
                     bool_matrix(B, L),
                     row_matrix<float>(B, L),
                     Eigen::VectorXd(B),
                     Eigen::VectorXd(B),
                     std::vector<Index>(static_cast<std::size_t>(B)),
                     std::vector<Index>(static_cast<std::size_t>(B))};
  const bernoulli cut_length(o.random_length_prob);
  const token_id* in = ids.data();
  const Index stride = ids.outerStride();
#if EMASK_HAS_OPENMP
#pragma omp parallel for schedule(static) if (B > 1 && B * L >= 16384)
#endif
  for (Index b = 0; b < B; ++b) {
    const std::uint64_t sample = at.sample + static_cast<std::uint64_t>(b);
    const Index length = row_length(lengths, b, L);
    const Index prompt = row_length(prompt_lengths, b, 0);
    const diffusion_row_draw d = draw_diffusion_row(at.seed, sample, length, o.eps, cut_length);
    diffusion_row(in + b * stride, r.noisy_ids.data() + b * L, r.masked.data() + b * L,
                  r.weight.data() + b * L, L, prompt, d, at.seed, sample, o);
    r.t(b) = d.t;
    r.p(b) = d.p;
    r.lengths[static_cast<std::size_t>(b)] = d.end;
    r.prompt_lengths[static_cast<std::size_t>(b)] = prompt;
  }
  return r;
}

template <class Derived>
void check_diffusion_loss(const char* where, const Eigen::DenseBase<Derived>& nll,
                          const diffusion_result& r) {
  static_assert(std::is_floating_point<typename Derived::Scalar>::value,
                "emask: the negative log-likelihoods must be float or double; cast them first");
  const Index B = r.masked.rows(), L = r.masked.cols();
  if (r.p.size() != B || static_cast<Index>(r.lengths.size()) != B ||
      static_cast<Index>(r.prompt_lengths.size()) != B)
    fail_argument(where, "result",
                  concat(B, " rows of masks with ", r.p.size(), " values of p, ", r.lengths.size(),
                         " lengths and ", r.prompt_lengths.size(), " prompt lengths"),
                  "a diffusion_result returned by diffusion_mask or diffusion_mask_sft");
  if (nll.rows() != B || nll.cols() != L)
    fail_argument(where, "nll", concat(nll.rows(), "x", nll.cols()), "the shape of the masks, ", B,
                  "x", L);
  for (Index b = 0; b < B; ++b)
    for (Index j = 0; j < L; ++j)
      if (r.masked(b, j) && !is_finite(static_cast<double>(nll.derived().coeff(b, j))))
        fail_element(where, "nll", concat(b, ", ", j),
                     static_cast<double>(nll.derived().coeff(b, j)),
                     "a finite negative log-likelihood at a masked position");
}

/// Sum over the masked positions of row b of nll / p_b, in double, left to right.
template <class Derived>
double diffusion_row_sum(const Eigen::DenseBase<Derived>& nll, const diffusion_result& r, Index b) {
  double s = 0.0;
  const double p = r.p(b);
  for (Index j = 0; j < r.masked.cols(); ++j)
    if (r.masked(b, j)) s += static_cast<double>(nll.derived().coeff(b, j)) / p;
  return s;
}
}  // namespace detail

/// \brief Masked-diffusion noising of \p ids [batch, length] (LLaDA pre-training). Row b is
/// sample at.sample + b of seed at.seed: its t, p and masked positions do not depend on the
/// batch split or the thread count.
inline diffusion_result diffusion_mask(const Eigen::Ref<const token_matrix>& ids,
                                       const diffusion_options& options, random_address at = {}) {
  detail::check_diffusion_call("diffusion_mask", ids.rows(), ids.cols(), nullptr, nullptr, options);
  return detail::diffusion_batch(ids, nullptr, nullptr, options, at);
}

/// \brief Noising of rows with valid lengths \p lengths: positions >= lengths[b] are padding
/// (never masked, weight 0); a random-length cut is drawn in [1, lengths[b]].
inline diffusion_result diffusion_mask(const Eigen::Ref<const token_matrix>& ids,
                                       const index_list& lengths, const diffusion_options& options,
                                       random_address at = {}) {
  detail::check_diffusion_call("diffusion_mask", ids.rows(), ids.cols(), &lengths, nullptr,
                               options);
  return detail::diffusion_batch(ids, &lengths, nullptr, options, at);
}

/// \brief LLaDA SFT noising: the first prompt_lengths[b] positions of row b (the prompt) are
/// never masked; everything after, including padded EOS tokens, is the answer.
inline diffusion_result diffusion_mask_sft(const Eigen::Ref<const token_matrix>& ids,
                                           const index_list& prompt_lengths,
                                           const diffusion_options& options,
                                           random_address at = {}) {
  detail::check_diffusion_call("diffusion_mask_sft", ids.rows(), ids.cols(), nullptr,
                               &prompt_lengths, options);
  return detail::diffusion_batch(ids, nullptr, &prompt_lengths, options, at);
}

/// \brief SFT noising of rows that also end early: positions >= lengths[b] are padding.
inline diffusion_result diffusion_mask_sft(const Eigen::Ref<const token_matrix>& ids,
                                           const index_list& prompt_lengths,
                                           const index_list& lengths,
                                           const diffusion_options& options,
                                           random_address at = {}) {
  detail::check_diffusion_call("diffusion_mask_sft", ids.rows(), ids.cols(), &lengths,
                               &prompt_lengths, options);
  return detail::diffusion_batch(ids, &lengths, &prompt_lengths, options, at);
}

/// \brief LLaDA's pre-training loss: the sum over masked positions of nll / p, divided by the
/// number of real positions, sum of r.lengths (b * l when no row is padded or cut). \p nll
/// [batch, length] holds the caller's per-token negative log-likelihood of the original token
/// (cross-entropy); only masked positions are read, and each must be finite. 0 when the batch
/// has no real position. Accumulated in double.
template <class Derived>
double diffusion_loss(const Eigen::DenseBase<Derived>& nll, const diffusion_result& r) {
  detail::check_diffusion_loss("diffusion_loss", nll, r);
  double sum = 0.0;
  Index tokens = 0;
  for (Index b = 0; b < r.masked.rows(); ++b) {
    sum += detail::diffusion_row_sum(nll, r, b);
    tokens += r.lengths[static_cast<std::size_t>(b)];
  }
  return tokens > 0 ? sum / static_cast<double>(tokens) : 0.0;
}

/// \brief LLaDA's SFT loss: each masked position contributes nll / p / answer_length of its row,
/// where answer_length = lengths[b] - prompt_lengths[b] (the positions that could be masked,
/// padded EOS included); the sum is divided by the number of rows. Rows without an answer add 0.
template <class Derived>
double diffusion_sft_loss(const Eigen::DenseBase<Derived>& nll, const diffusion_result& r) {
  detail::check_diffusion_loss("diffusion_sft_loss", nll, r);
  const Index B = r.masked.rows();
  double sum = 0.0;
  for (Index b = 0; b < B; ++b) {
    const Index answer =
        r.lengths[static_cast<std::size_t>(b)] - r.prompt_lengths[static_cast<std::size_t>(b)];
    if (answer > 0) sum += detail::diffusion_row_sum(nll, r, b) / static_cast<double>(answer);
  }
  return B > 0 ? sum / static_cast<double>(B) : 0.0;
}

EMASK_NAMESPACE_END
