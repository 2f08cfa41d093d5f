/// \file
/// \brief T5 span corruption (Raffel et al. 2020) as Hugging Face's run_t5_mlm_flax.py implements
/// it: random_spans_noise_mask, sentinel filling, and compute_input_and_target_lengths.
///
/// For a row of length L: num_noise = round_half_even(L * noise_density) clamped to [1, L - 1];
/// num_spans = max(1, round_half_even(num_noise / mean_noise_span_length)); the noise tokens and
/// the L - num_noise kept tokens are each split into num_spans non-empty segments uniformly at
/// random (random_segmentation), and the segments interleave kept, noise, kept, noise, ...
/// starting with kept. Inputs: each noise span is replaced by one sentinel (first_sentinel_id,
/// first_sentinel_id - 1, ... for spans 0, 1, ...), then eos_id. Targets: for each span its
/// sentinel followed by the span's tokens, then eos_id.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "emask/core/polarity.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/detail/threads.hpp"
#include "emask/random/distributions.hpp"
#include "emask/random/tokens.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Parameters of T5 span corruption. first_sentinel_id has no default: T5's vocabulary
/// puts `<extra_id_0>` at 32099 (= len(tokenizer) - 1), counting down. The seed is not an
/// option: it is part of the random_address the functions take last.
struct t5_options {
  double noise_density = 0.15;          ///< fraction of tokens corrupted
  double mean_noise_span_length = 3.0;  ///< mean noise span length
  token_id first_sentinel_id = -1;      ///< id of the first sentinel; later ones count down
  token_id eos_id = 1;                  ///< appended to inputs and targets
};

/// \brief Sizes of the corruption of a row of \p length tokens (the same for every row).
struct t5_sizes {
  Index num_noise_tokens;  ///< round(length * noise_density), clamped to [1, length - 1]
  Index num_noise_spans;   ///< max(1, round(num_noise_tokens / mean_noise_span_length))
  Index inputs_length;     ///< length - num_noise_tokens + num_noise_spans + 1
  Index targets_length;    ///< num_noise_tokens + num_noise_spans + 1
};

/// \brief The corrupted batch.
struct t5_result {
  token_matrix inputs;   ///< [batch, inputs_length]
  token_matrix targets;  ///< [batch, targets_length]
  bool_matrix kept;      ///< [batch, length], true where the token stays in the inputs (not noise)
};

namespace detail {
inline t5_sizes t5_sizes_checked(const char* where, Index length, double density, double mean) {
  if (length < 2) fail_argument(where, "length", length, ">= 2 tokens (one noise and one kept)");
  // length * density is rounded exactly below 2^52, and inputs_length cannot overflow.
  if (length > (Index{1} << 52)) fail_argument(where, "length", length, "at most 2^52 tokens");
  check_probability(where, "noise_density", density);
  if (is_nan(mean) || !(mean >= 1.0)) fail_argument(where, "mean_noise_span_length", mean, ">= 1");
  Index noise = round_half_even_to<Index>(static_cast<double>(length) * density);
  noise = (std::min)(std::max<Index>(noise, 1), length - 1);
  const Index spans =
      std::max<Index>(1, round_half_even_to<Index>(static_cast<double>(noise) / mean));
  const Index kept = length - noise;
  if (spans > kept)
    fail_argument(where, "noise_density", density,
                  concat("a density that leaves at least one kept token per noise span (length ",
                         length, " gives ", spans, " spans but ", kept, " kept tokens)"));
  return {noise, spans, kept + spans + 1, noise + spans + 1};
}

/// HF's _random_segmentation: splits num_items into num_segments non-empty segments. A segment
/// starts after gap g (between items g and g+1) for the num_segments - 1 gaps g in
/// [0, num_items - 1) with the smallest packed words of (seed, sample, purpose, g).
inline void random_segmentation(std::uint64_t seed, std::uint64_t sample, std::uint16_t purpose_id,
                                Index num_items, Index num_segments,
                                std::vector<std::uint64_t>& keys, std::vector<unsigned char>& cut,
                                std::vector<std::uint32_t>& words, std::vector<Index>& out) {
  const auto gaps = static_cast<std::size_t>(num_items - 1);
  words.resize(gaps);
  fill_packed_words(seed, sample, purpose_id, 0, gaps, words.data());
  keys.resize(gaps);
  for (std::size_t g = 0; g < gaps; ++g)
    keys[g] = noise_key(words[g], static_cast<std::uint32_t>(g));
  cut.assign(gaps, 0);
  mark_smallest(keys, static_cast<std::size_t>(num_segments - 1), cut.data());
  out.clear();
  Index run = 1;
  for (std::size_t g = 0; g < gaps; ++g) {
    if (cut[g]) {
      out.push_back(run);
      run = 1;
    } else {
      ++run;
    }
  }
  out.push_back(run);
}
}  // namespace detail

/// \brief Sizes of the corruption of rows of \p length tokens, so callers can size buffers.
inline t5_sizes t5_corruption_sizes(Index length, double noise_density = 0.15,
                                    double mean_noise_span_length = 3.0) {
  return detail::t5_sizes_checked("t5_corruption_sizes", length, noise_density,
                                  mean_noise_span_length);
}

/// \brief Result of compute_input_and_target_lengths.
struct t5_lengths {
  Index tokens_length;   ///< raw tokens per example (the "expanded" input length)
  Index targets_length;  ///< length of the targets, EOS included
};

/// \brief HF's compute_input_and_target_lengths: the largest raw length whose corrupted inputs
/// (EOS included) fit in \p inputs_length, and the matching targets length. Uses the formula
/// without the clamps of the mask itself, as HF does (it also applies HF's noise_density = 0.5
/// adjustment). For 512, 0.15, 3.0 it gives {568, 114}. HF searches one raw length at a time;
/// the inputs length is non-decreasing in the raw length, so a galloping binary search finds the
/// same answer in O(log) steps. \pre inputs_length in [1, 2^51), noise_density in [0, 1],
/// mean_noise_span_length finite and > 0, and an answer below 2^52 raw tokens (density 1 with a
/// mean of 1e30 has none).
inline t5_lengths compute_input_and_target_lengths(Index inputs_length, double noise_density = 0.15,
                                                   double mean_noise_span_length = 3.0) {
  const char* where = "compute_input_and_target_lengths";
  constexpr Index max_tokens = Index{1} << 52;  // t * density stays exact enough to round
  if (inputs_length < 1 || inputs_length >= max_tokens / 2)
    detail::fail_argument(where, "inputs_length", inputs_length, "a length in [1, 2^51)");
  detail::check_probability(where, "noise_density", noise_density);
  if (!detail::is_finite(mean_noise_span_length) || !(mean_noise_span_length > 0.0))
    detail::fail_argument(where, "mean_noise_span_length", mean_noise_span_length,
                          "a finite value > 0");
  auto lengths = [&](Index tokens) {
    const Index noise =
        detail::round_half_even_to<Index>(static_cast<double>(tokens) * noise_density);
    // A tiny mean makes noise / mean huge: saturated, and capped where the search stops.
    const Index spans = (std::min)(
        max_tokens,
        detail::round_half_even_to<Index>(static_cast<double>(noise) / mean_noise_span_length));
    return std::pair<Index, Index>(tokens - noise + spans + 1, noise + spans + 1);
  };
  const auto fits = [&](Index tokens) { return lengths(tokens).first <= inputs_length; };
  Index tokens = inputs_length;
  if (fits(tokens + 1)) {
    // lo fits, hi does not: gallop up to a raw length that does not fit, then bisect.
    Index lo = tokens + 1, hi = 0, step = 1;
    while (hi == 0) {
      const Index next = lo < max_tokens - step ? lo + step : max_tokens;
      if (!fits(next)) {
        hi = next;
      } else if (next == max_tokens) {
        detail::fail_argument(
            where, "mean_noise_span_length", mean_noise_span_length,
            detail::concat("a mean for which fewer than 2^52 raw tokens fill inputs_length = ",
                           inputs_length, " (noise_density = ", noise_density, ")"));
      } else {
        lo = next;
        step *= 2;
      }
    }
    while (hi - lo > 1) {
      const Index mid = lo + (hi - lo) / 2;
      (fits(mid) ? lo : hi) = mid;
    }
    tokens = lo;
  }
  Index targets = lengths(tokens).second;
  if (noise_density == 0.5 && targets > lengths(tokens).first) {
    --tokens;
    --targets;
  }
  return {tokens, targets};
}

/// \brief The noise mask of one row in keep convention (true = kept token, false = noise), for
/// sample at.sample of seed at.seed: row b of t5_span_corruption(ids, options, {seed, s}) is
/// t5_keep_mask(length, options, {seed, s + b}).
inline Eigen::Array<bool, 1, Eigen::Dynamic> t5_keep_mask(Index length, const t5_options& options,
                                                          random_address at) {
  const t5_sizes s = detail::t5_sizes_checked("t5_keep_mask", length, options.noise_density,
                                              options.mean_noise_span_length);
  std::vector<std::uint64_t> keys;
  std::vector<unsigned char> cut;
  std::vector<std::uint32_t> words;
  std::vector<Index> noise_len, kept_len;
  detail::random_segmentation(at.seed, at.sample, purpose::t5_noise_cuts, s.num_noise_tokens,
                              s.num_noise_spans, keys, cut, words, noise_len);
  detail::random_segmentation(at.seed, at.sample, purpose::t5_nonnoise_cuts,
                              length - s.num_noise_tokens, s.num_noise_spans, keys, cut, words,
                              kept_len);
  Eigen::Array<bool, 1, Eigen::Dynamic> keep(length);
  Index t = 0;
  for (std::size_t j = 0; j < noise_len.size(); ++j) {
    for (Index i = 0; i < kept_len[j]; ++i) keep(t++) = true;
    for (Index i = 0; i < noise_len[j]; ++i) keep(t++) = false;
  }
  return keep;
}

/// \brief T5 span corruption of every row of \p ids (row b is sample at.sample + b of seed
/// at.seed).
inline t5_result t5_span_corruption(const Eigen::Ref<const token_matrix>& ids,
                                    const t5_options& options, random_address at = {}) {
  const char* where = "t5_span_corruption";
  const Index B = ids.rows(), L = ids.cols();
  const t5_sizes s =
      detail::t5_sizes_checked(where, L, options.noise_density, options.mean_noise_span_length);
  if (options.first_sentinel_id - (s.num_noise_spans - 1) < 0)
    detail::fail_argument(where, "first_sentinel_id", options.first_sentinel_id,
                          detail::concat(">= ", s.num_noise_spans - 1, " (", s.num_noise_spans,
                                         " sentinels counting down must stay >= 0)"));
  t5_result r{token_matrix(B, s.inputs_length), token_matrix(B, s.targets_length),
              bool_matrix(B, L)};
  detail::region_errors failure;  // an allocation failure of a thread's buffers reaches us
#if EMASK_HAS_OPENMP
#pragma omp parallel if (B > 1 && B * L >= 16384)
#endif
  {
    std::vector<std::uint64_t> keys;
    std::vector<unsigned char> cut;
    std::vector<std::uint32_t> words;
    std::vector<Index> noise_len, kept_len;
#if EMASK_HAS_OPENMP
#pragma omp for schedule(static)
#endif
    for (Index b = 0; b < B; ++b)
      failure.run([&] {
        const std::uint64_t sample = at.sample + static_cast<std::uint64_t>(b);
        detail::random_segmentation(at.seed, sample, purpose::t5_noise_cuts, s.num_noise_tokens,
                                    s.num_noise_spans, keys, cut, words, noise_len);
        detail::random_segmentation(at.seed, sample, purpose::t5_nonnoise_cuts,
                                    L - s.num_noise_tokens, s.num_noise_spans, keys, cut, words,
                                    kept_len);
        Index t = 0, in = 0, tg = 0;
        for (std::size_t j = 0; j < noise_len.size(); ++j) {
          const auto sentinel =
              static_cast<token_id>(options.first_sentinel_id - static_cast<token_id>(j));
          for (Index i = 0; i < kept_len[j]; ++i, ++t) {
            r.kept(b, t) = true;
            r.inputs(b, in++) = ids(b, t);
          }
          r.inputs(b, in++) = sentinel;
          r.targets(b, tg++) = sentinel;
          for (Index i = 0; i < noise_len[j]; ++i, ++t) {
            r.kept(b, t) = false;
            r.targets(b, tg++) = ids(b, t);
          }
        }
        r.inputs(b, in) = options.eos_id;
        r.targets(b, tg) = options.eos_id;
      });
  }
  failure.rethrow();
  return r;
}

EMASK_NAMESPACE_END
