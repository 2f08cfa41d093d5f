/// \file
/// \brief wav2vec 2.0 / SpecAugment span masking (Baevski et al. 2020, "wav2vec 2.0"; Park et
/// al. 2019, "SpecAugment"): spans of mask_length frames at starts drawn without replacement, as
/// Hugging Face transformers' `_compute_mask_indices` (models/wav2vec2/modeling_wav2vec2.py).
///
/// Per row of valid length n: num_spans = int(mask_prob * n / mask_length + epsilon), epsilon ~
/// U[0, 1) (probabilistic rounding), raised to min_masks, lowered to sequence_length //
/// mask_length when num_spans * mask_length > sequence_length, and to max(n - mask_length + 1, 0)
/// when fewer starts exist; the starts are a uniform subset of [0, n - mask_length + 1) and each
/// masks [start, start + mask_length). Spans may overlap, so mask_prob is an upper bound.
///
/// Differences from Hugging Face, all deliberate:
///  - epsilon is drawn per sample, not once per call, so a row depends only on its own sample id
///    (batch split reproducibility). Each row's span count has HF's distribution; only the
///    correlation between rows of one call is gone.
///  - padding is never masked. HF pads every row's start list to the batch's largest count with a
///    dummy start; a row with no span takes sequence_length - 1 as the dummy, which (clipped) marks
///    the last frame of that row's padding as masked whenever another row has a span.
///  - lengths are given as per-row valid lengths (right padding), the sum HF takes of
///    attention_mask; emask also rejects mask_prob outside [0, 1].
/// The feature axis of SpecAugment (HF's mask_feature_prob / mask_feature_length, the same
/// function over the hidden size, broadcast over time) is spec_augment_feature_mask().
#pragma once

#include <algorithm>
#include <cstdint>

#include "emask/config.hpp"

#include "emask/core/index_list.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/detail/threads.hpp"
#include "emask/random/distributions.hpp"
#include "emask/random/tokens.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Options of wav2vec 2.0 span masking. The defaults are Wav2Vec2Config's time-axis
/// defaults (mask_time_prob 0.05, mask_time_length 10, mask_time_min_masks 2); pre-training
/// recipes use mask_prob 0.65. `_compute_mask_indices` itself defaults min_masks to 0.
struct audio_span_options {
  double mask_prob = 0.05;  ///< mask_prob * length / mask_length spans on average (upper bound)
  Index mask_length = 10;   ///< frames per span, in [1, sequence_length]
  Index min_masks = 2;      ///< at least this many spans (when they fit)
};

/// \brief Span masks of a batch.
struct audio_span_result {
  /// [batch, sequence_length], true = masked: HF's `mask_time_indices` convention (the opposite
  /// of emask's keep convention). Padding (column >= the row's length) is never masked.
  bool_matrix masked;
  /// Spans drawn per row (distinct starts; overlapping spans each count).
  Eigen::Matrix<Index, Eigen::Dynamic, 1> num_spans;
};

namespace detail {
/// Index space of purpose::audio_span: the time axis uses stream indices below 2^31, the feature
/// axis the same indices plus 2^31.
constexpr std::uint32_t audio_feature_axis = 0x80000000u;

/// HF's compute_num_masked_span for a row of valid length n in a batch of width `width`.
inline Index audio_span_count(double mask_prob, Index mask_length, Index min_masks, Index n,
                              Index width, double epsilon) noexcept {
  // int(mask_prob * input_length / mask_length + epsilon): multiply, divide, add, truncate.
  const double expected = mask_prob * static_cast<double>(n);
  const double spans = expected / static_cast<double>(mask_length);
  auto count = static_cast<Index>(spans + epsilon);
  count = (std::max)(count, min_masks);
  if (count * mask_length > width) count = width / mask_length;
  if (n - (mask_length - 1) < count) count = (std::max)(n - (mask_length - 1), Index{0});
  return count;
}

/// One row: draws, marks and returns the span count. row[0, width) is all false on entry.
/// Stream (seed, sample, audio_span, axis | 0), words 0 and 1: epsilon = uniform_double(w0, w1).
/// Start k (k = 0 .. count-1) is step k of Floyd's sampling over [0, m), m = n - mask_length + 1:
/// j = m - count + k, t = bounded(stream (seed, sample, audio_span, axis | (k + 1)), j + 1); t is
/// taken unless already taken, in which case j is.
inline Index audio_span_row(bool* row, Index n, Index width, double mask_prob, Index mask_length,
                            Index min_masks, std::uint64_t seed, std::uint64_t sample,
                            std::uint32_t axis) noexcept {
  const philox_block head = random_block(seed, sample, purpose::audio_span, axis);
  const double epsilon = uniform_double(head[0], head[1]);
  const Index count = audio_span_count(mask_prob, mask_length, min_masks, n, width, epsilon);
  if (count == 0) return 0;
  const Index m = n - mask_length + 1;  // count <= m, so m >= 1
  for (Index k = 0; k < count; ++k) {   // starts are flagged in row[0, m) first
    const Index j = m - count + k;
    word_stream s(seed, sample, purpose::audio_span, axis | static_cast<std::uint32_t>(k + 1));
    const auto t = static_cast<Index>(bounded(s, static_cast<std::uint32_t>(j + 1)));
    row[row[t] ? j : t] = true;
  }
  // Right to left, a start flag becomes its span: a span only covers positions already visited,
  // so every flag read is still a start flag.
  for (Index p = m - 1; p >= 0; --p)
    if (row[p]) std::fill(row + p, row + p + mask_length, true);
  return count;
}

inline void check_audio_options(const char* where, Index width, const audio_span_options& o,
                                const char* width_name) {
  if (width < 1 || width > (Index{1} << 31) - 2)
    fail_argument(where, width_name, width, "a length in [1, 2^31 - 1)");
  check_probability(where, "options.mask_prob", o.mask_prob);
  if (o.mask_length < 1 || o.mask_length > width)
    fail_argument(where, "options.mask_length", o.mask_length, "a span length in [1, ", width,
                  "] (", width_name, ")");
  if (o.min_masks < 0 || o.min_masks > (Index{1} << 31) - 1)
    fail_argument(where, "options.min_masks", o.min_masks, "a count in [0, 2^31)");
}

inline audio_span_result audio_span_batch(Index batch, const index_list* lengths, Index width,
                                          const audio_span_options& o, random_address at,
                                          std::uint32_t axis) {
  audio_span_result r{bool_matrix::Constant(batch, width, false),
                      Eigen::Matrix<Index, Eigen::Dynamic, 1>::Zero(batch)};
#if EMASK_HAS_OPENMP
#pragma omp parallel for schedule(static) if (batch > 1 && batch * width >= 16384)
#endif
  for (Index b = 0; b < batch; ++b)
    r.num_spans(b) = audio_span_row(r.masked.data() + b * width, row_length(lengths, b, width),
                                    width, o.mask_prob, o.mask_length, o.min_masks, at.seed,
                                    at.sample + static_cast<std::uint64_t>(b), axis);
  return r;
}
}  // namespace detail

/// \brief Time-axis span masks of \p batch rows of \p sequence_length frames, all valid; row b is
/// sample at.sample + b.
inline audio_span_result audio_span_mask(Index batch, Index sequence_length,
                                         const audio_span_options& options = {},
                                         random_address at = {}) {
  const char* where = "audio_span_mask";
  if (batch < 0) detail::fail_argument(where, "batch", batch, ">= 0");
  detail::check_audio_options(where, sequence_length, options, "sequence_length");
  return detail::audio_span_batch(batch, nullptr, sequence_length, options, at, 0);
}

/// \brief Time-axis span masks of rows with valid lengths \p lengths (right padding; HF's
/// attention_mask.sum(-1)) in a batch of width \p sequence_length; row b is sample at.sample + b.
/// Positions at or beyond a row's length are never masked.
inline audio_span_result audio_span_mask(const index_list& lengths, Index sequence_length,
                                         const audio_span_options& options = {},
                                         random_address at = {}) {
  const char* where = "audio_span_mask";
  detail::check_audio_options(where, sequence_length, options, "sequence_length");
  const auto batch = static_cast<Index>(lengths.size());
  detail::check_lengths(where, &lengths, batch, sequence_length);
  return detail::audio_span_batch(batch, &lengths, sequence_length, options, at, 0);
}

/// \brief SpecAugment feature-axis masks [batch, hidden_size] (HF's mask_feature_prob,
/// mask_feature_length, mask_feature_min_masks: pass them as options; HF's defaults are 0, 10
/// and 0). True = the feature channel is masked at every time step of that row. Row b is sample
/// at.sample + b; its draws are independent of the time-axis ones of the same address.
inline audio_span_result spec_augment_feature_mask(Index batch, Index hidden_size,
                                                   const audio_span_options& options,
                                                   random_address at = {}) {
  const char* where = "spec_augment_feature_mask";
  if (batch < 0) detail::fail_argument(where, "batch", batch, ">= 0");
  detail::check_audio_options(where, hidden_size, options, "hidden_size");
  return detail::audio_span_batch(batch, nullptr, hidden_size, options, at,
                                  detail::audio_feature_axis);
}

EMASK_NAMESPACE_END
