/// \file
/// \brief The options every kernel shares, with one name and one meaning each: the scale, the
/// slice of the mask, the offsets of the positions and the thread count. softmax_options and
/// attention_options derive from kernel_options.
#pragma once

#include <optional>
#include <vector>

#include "emask/config.hpp"
#include "emask/core/score_mod.hpp"
#include "emask/core/types.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/error.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief A batch entry and a head: where a single-problem call asks the mask.
struct slice {
  Index b = 0;  ///< batch entry
  Index h = 0;  ///< head
};

/// \brief What masked_softmax, masked_log_softmax and masked_attention share.
///
/// Every score goes through, in this order: scale, softcap, (attention: ALiBi), score_mod, mask.
struct kernel_options {
  /// Multiplies the scores (Q K^T for attention) before anything else; any finite value, 0
  /// included (0 means 0). Unset: 1 for softmax, 1 / sqrt(D) for attention.
  std::optional<double> scale;
  /// Logit soft-capping (Gemma 2, Grok), after the scale: s -> softcap * tanh(s / softcap);
  /// 0 turns it off. Finite and >= 0.
  double softcap = 0;
  /// A score modifier (emask::score_mod: ALiBi, T5 buckets, biases, any callable), applied
  /// after scale, softcap and attention's ALiBi option and before the mask. Empty: none.
  emask::score_mod score_mod;
  /// Learned sink logit per query head (gpt-oss, DeepSeek-V4): s_h joins the softmax
  /// denominator as a key with no value row: p_j = exp(x_j) / (sum_k exp(x_k) + exp(s_h)),
  /// and the log-sum-exp includes it. A row that keeps no key gives zeros and lse = s_h. The
  /// single-head entry points use entry slice.h. Empty: none. (Not sink_window, the mask that
  /// keeps the first tokens.)
  std::vector<double> sink_logit;
  /// The batch entry and head the mask is asked at (the single-head entry points; the batched
  /// attention entry point asks each (b, h) of its views).
  emask::slice slice;
  /// Absolute position of query row 0: the mask (and ALiBi) see q_offset + i. For tiles,
  /// shards, KV-cache steps.
  Index q_offset = 0;
  /// Absolute position of key row 0: the mask (and ALiBi) see k_offset + j.
  Index k_offset = 0;
  /// OpenMP threads; 0 means omp_get_max_threads(). Ignored without OpenMP. Results do not
  /// depend on it.
  int threads = 0;
};

namespace detail {
/// Checks the shared fields for the kernel \p where; \p unset_scale says what an unset scale
/// means there.
/// \p q_len and \p k_len: the positions the kernel will ask the mask about start at the
/// offsets, so offset + length must be representable (and stay below emask::unbounded, the
/// masks' "no limit").
inline void check_kernel_options(const char* where, const kernel_options& o,
                                 const char* unset_scale, Index q_len, Index k_len) {
  if (o.scale && !is_finite(*o.scale))
    fail_argument(where, "options.scale", *o.scale, "a finite value (unset: ", unset_scale, ")");
  if (o.slice.b < 0) fail_argument(where, "options.slice.b", o.slice.b, ">= 0");
  if (o.slice.h < 0) fail_argument(where, "options.slice.h", o.slice.h, ">= 0");
  if (o.q_offset < 0) fail_argument(where, "options.q_offset", o.q_offset, ">= 0");
  if (o.k_offset < 0) fail_argument(where, "options.k_offset", o.k_offset, ">= 0");
  if (o.threads < 0) fail_argument(where, "options.threads", o.threads, ">= 0 (0: all)");
  if (!is_finite(o.softcap) || o.softcap < 0)
    fail_argument(where, "options.softcap", o.softcap, "a finite value >= 0 (0: off)");
  if (o.q_offset > unbounded - q_len)
    fail_argument(where, "options.q_offset", o.q_offset, "<= emask::unbounded - ", q_len,
                  " (positions offset + length must stay representable)");
  if (o.k_offset > unbounded - k_len)
    fail_argument(where, "options.k_offset", o.k_offset, "<= emask::unbounded - ", k_len,
                  " (positions offset + length must stay representable)");
}

/// The sink logits of heads [h0, h0 + n) in the kernel's scalar, checked for the kernel \p where
/// (empty when none are set).
template <class S>
std::vector<S> sink_logits(const char* where, const kernel_options& o, Index h0, Index n) {
  std::vector<S> out;
  if (o.sink_logit.empty()) return out;
  if (static_cast<Index>(o.sink_logit.size()) < h0 + n)
    fail_argument(where, "options.sink_logit", concat(o.sink_logit.size(), " entries"),
                  "one per query head (", h0 + n, ")");
  for (Index h = h0; h < h0 + n; ++h) {
    const double s = o.sink_logit[static_cast<std::size_t>(h)];
    if (!is_finite(static_cast<S>(s)))
      fail_argument(where, concat("options.sink_logit[", h, "]").c_str(), s,
                    "a value finite in the kernel's scalar type");
    out.push_back(static_cast<S>(s));
  }
  return out;
}

}  // namespace detail

EMASK_NAMESPACE_END
