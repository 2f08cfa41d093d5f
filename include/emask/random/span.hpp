/// \file
/// \brief SpanBERT span masking: contiguous spans of whole words, span lengths from a geometric
/// distribution clipped to [1, max_span_words] and renormalized, uniform anchors, no overlap.
///
/// Per row, with n selectable tokens grouped into words (word-start flags, or one word per
/// token): budget = ceil(mlm_probability * n). Try a = 0, 1, 2, ... (at most 64 * words + 64
/// tries) while fewer than budget tokens are masked, each try drawing from the word stream
/// (seed, sample, purpose::span_draw, a):
///  1. span length l (in words) = truncated_geometric(geometric_p, max_span_words);
///  2. anchor word = bounded(number of words);
///  3. if the anchor word is already masked the try is void; otherwise words anchor, anchor+1, ...
///     are masked while fewer than l words are taken, the next word exists, is unmasked and
///     starts right where the previous one ends (spans never jump over special tokens); tokens
///     are masked one by one and the span stops as soon as the budget is reached (as SpanBERT).
/// Replacement is 80/10/10 per token (as mlm.hpp) or per span: the span's decision comes from
/// words 0 and 1 of (seed, sample, purpose::span_replace, first position of the span); a random
/// span gets an independent random id per token (words 2... of that token's mlm_replace stream).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "emask/config.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/random/whole_word.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Options of SpanBERT masking.
struct span_options : mlm_options {
  double geometric_p = 0.2;          ///< parameter of the span-length geometric distribution
  std::int32_t max_span_words = 10;  ///< span lengths are clipped to [1, max_span_words]
  bool replace_per_span = true;      ///< 80/10/10 decided once per span (SpanBERT) or per token
};

namespace detail {
/// Per-thread buffers of span masking.
struct span_scratch {
  std::vector<unsigned char> taken;
};

template <class StartsOf>
void span_batch(Eigen::Ref<token_matrix> ids, Eigen::Ref<token_matrix> labels,
                const index_list* lengths, const span_options& o, random_address at,
                StartsOf&& starts_of) {
  const replacer rep(o, at.seed);
  const selectable ok = make_selectable(o);
  const bernoulli success(o.geometric_p);
  const auto max_l = static_cast<std::uint32_t>(o.max_span_words);
  word_rows<span_scratch>(
      ids, labels, lengths, o, ok, at, starts_of,
      [&](span_scratch& sc, token_id* row, token_id* lab, Index, std::uint64_t sample,
          const std::vector<word_range>& words) {
        std::int64_t n = 0;
        for (const word_range& w : words) n += w.end - w.begin;
        if (words.empty()) return;
        const auto budget =
            static_cast<std::int64_t>(std::ceil(o.mlm_probability * static_cast<double>(n)));
        const auto nw = static_cast<std::uint32_t>(words.size());
        sc.taken.assign(nw, 0);
        std::int64_t covered = 0;
        const std::uint64_t max_tries = 64u * std::uint64_t{nw} + 64u;
        for (std::uint64_t a = 0; a < max_tries && covered < budget; ++a) {
          word_stream s(at.seed, sample, purpose::span_draw, static_cast<std::uint32_t>(a));
          const std::uint32_t l = truncated_geometric(s, success, max_l);
          const std::uint32_t anchor = bounded(s, nw);
          if (sc.taken[anchor]) continue;
          const std::uint32_t span_begin = words[anchor].begin;
          std::uint32_t span_end = span_begin;
          for (std::uint32_t w = anchor, k = 0; w < nw && k < l && covered < budget; ++w, ++k) {
            if (sc.taken[w] || (w != anchor && words[w].begin != words[w - 1].end)) break;
            sc.taken[w] = 1;
            for (std::uint32_t t = words[w].begin; t < words[w].end && covered < budget; ++t) {
              lab[t] = row[t];
              span_end = t + 1;
              ++covered;
            }
          }
          // replacement of the span [span_begin, span_end)
          if (o.replace_per_span) {
            word_stream d(at.seed, sample, purpose::span_replace, span_begin);
            const replacer::action act = rep.decide(d);
            for (std::uint32_t t = span_begin; t < span_end; ++t) {
              if (act == replacer::action::mask)
                row[t] = rep.mask_id();
              else if (act == replacer::action::random)
                row[t] = rep.random_id(sample, t);
            }
          } else {
            for (std::uint32_t t = span_begin; t < span_end; ++t) row[t] = rep(sample, t, row[t]);
          }
        }
      });
}

inline void check_span(const char* where, const span_options& o) {
  if (is_nan(o.geometric_p) || !(o.geometric_p > 0.0 && o.geometric_p <= 1.0))
    fail_argument(where, "geometric_p", o.geometric_p, "a probability in (0, 1]");
  if (o.max_span_words < 1) fail_argument(where, "max_span_words", o.max_span_words, ">= 1");
}

/// Every span_mask overload: the checks shared with whole-word masking, then the batch.
template <class StartsOf>
mlm_result span_call(const Eigen::Ref<const token_matrix>& ids, const word_input& words,
                     const index_list* lengths, const span_options& o, random_address at,
                     StartsOf&& starts_of) {
  check_word_call("span_mask", ids, words, lengths, o, &check_span);
  mlm_result r{ids, token_matrix(ids.rows(), ids.cols())};
  span_batch(r.input_ids, r.labels, lengths, o, at, starts_of);
  return r;
}

/// Every selectable token its own word, for each row.
inline starts_every_token starts_of_tokens(Index) noexcept { return {}; }
}  // namespace detail

/// \brief Probability of a span of k words, k in [1, max_span_words]: the renormalized truncated
/// geometric p (1-p)^(k-1) / (1 - (1-p)^max). Reference for tests and docs (not used to draw).
/// \pre 0 < geometric_p <= 1, max_span_words >= 1 (as span_options).
inline std::vector<double> span_length_distribution(double geometric_p,
                                                    std::int32_t max_span_words) {
  span_options o;
  o.geometric_p = geometric_p;
  o.max_span_words = max_span_words;
  detail::check_span("span_length_distribution", o);
  std::vector<double> pk;
  double q = 1.0, total = 0.0;
  for (std::int32_t k = 1; k <= max_span_words; ++k) {
    pk.push_back(geometric_p * q);
    total += geometric_p * q;
    q *= 1.0 - geometric_p;
  }
  for (double& x : pk) x /= total;
  return pk;
}

/// \brief SpanBERT masking where every selectable token is a word. Row b is sample
/// at.sample + b of seed at.seed.
inline mlm_result span_mask(const Eigen::Ref<const token_matrix>& ids, const span_options& options,
                            random_address at = {}) {
  return detail::span_call(ids, {}, nullptr, options, at, &detail::starts_of_tokens);
}

/// \brief SpanBERT masking where every selectable token is a word, rows of valid lengths
/// \p lengths.
inline mlm_result span_mask(const Eigen::Ref<const token_matrix>& ids, const index_list& lengths,
                            const span_options& options, random_address at = {}) {
  return detail::span_call(ids, {}, &lengths, options, at, &detail::starts_of_tokens);
}

/// \brief SpanBERT masking over whole words given by \p word_starts (true on a word's first
/// token), full rows.
inline mlm_result span_mask(const Eigen::Ref<const token_matrix>& ids,
                            const Eigen::Ref<const bool_matrix>& word_starts,
                            const span_options& options, random_address at = {}) {
  return detail::span_call(ids, {"word_starts", word_starts.rows(), word_starts.cols()}, nullptr,
                           options, at, detail::starts_of_flags(word_starts));
}

/// \brief SpanBERT masking over whole words given by \p word_starts, rows of valid lengths
/// \p lengths.
inline mlm_result span_mask(const Eigen::Ref<const token_matrix>& ids,
                            const Eigen::Ref<const bool_matrix>& word_starts,
                            const index_list& lengths, const span_options& options,
                            random_address at = {}) {
  return detail::span_call(ids, {"word_starts", word_starts.rows(), word_starts.cols()}, &lengths,
                           options, at, detail::starts_of_flags(word_starts));
}

EMASK_NAMESPACE_END
