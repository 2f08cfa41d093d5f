/// \file
/// \brief Row kernels of masked softmax: runs of kept keys, the two-pass row softmax, and the
/// additive-bias row kernel. Not public API; see emask/kernels/softmax.hpp.
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/softmax_row.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "emask/core/mask.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/detail/mask_tiles.hpp"
#include "emask/detail/simd.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

template <class S>
using row_segment = Eigen::Map<Eigen::Array<S, 1, Eigen::Dynamic>>;
template <class S>
using const_row_segment = Eigen::Map<const Eigen::Array<S, 1, Eigen::Dynamic>>;

/// A run [begin, end) of one row. A plain run is kept everywhere (no mask test); a flagged run
/// holds kept and masked keys, with scale * score in v[] and 1 / 0 keep flags in f[].
struct softmax_run {
  Index begin;
  Index end;
  bool flagged;
};

/// The runs of one row, and the maximum of scale * score over the kept keys of its flagged runs
/// (plain runs get their maximum in finish_row, once per merged run).
template <class S>
struct row_plan {
  std::vector<softmax_run> runs;
  S flagged_max = S(0);
  bool flagged_any = false;

  void reset() {
    runs.clear();
    flagged_any = false;
    flagged_max = S(0);
  }

  /// Adds the plain run [b, e): every key kept, no mask test. Merges with a plain run that
  /// ends at b, so consecutive full tiles become one run.
  void add_plain(Index b, Index e) {
    if (b >= e) return;
    if (!runs.empty() && !runs.back().flagged && runs.back().end == b) {
      runs.back().end = e;
    } else {
      runs.push_back({b, e, false});
    }
  }

  /// Adds [b, e) of row x whose 1 / 0 keep flags are in f[b, e) already; trims the run to its
  /// kept keys. v[k] = scale * x[k] where kept (0 elsewhere), and the maximum over the kept
  /// keys, come out of one packet pass.
  void add_flagged(const S* x, Index b, Index e, S scale, S* v, const S* f) {
    const S mx = simd::scale_kept_from(x + b, f + b, e - b, scale, v + b);
    Index first = b, last = e;
    while (first < e && f[first] == S(0)) ++first;
    if (first == e) return;
    while (f[last - 1] == S(0)) --last;
    // A NaN maximum is not needed for the NaN policy: the exp pass propagates a kept NaN.
    if (!flagged_any || mx > flagged_max) flagged_max = mx;
    flagged_any = true;
    runs.push_back({first, last, true});
  }
};

/// Adds columns [b, e) of row q as a flagged run, their keep flags asked from the mask;
/// column j is key position k0 + j.
template <class S>
void add_masked_run(row_plan<S>& plan, const mask_tiles<S>& mask, Index mb, Index mh, Index q,
                    const S* x, Index b, Index e, S scale, S* v, S* f, Index k0 = 0) {
  mask.flags(mb, mh, q, k0 + b, k0 + e, f + b, 1);
  plan.add_flagged(x, b, e, scale, v, f);
}

/// Plans row q of n columns, column j being key position k0 + j: the mask's key span, one
/// plain run when it is exact, else one flagged run. \p v and \p f hold n scalars.
template <class S>
void plan_masked_row(row_plan<S>& plan, const mask_tiles<S>& mask, Index mb, Index mh, Index q,
                     const S* x, Index n, S scale, S* v, S* f, Index k0 = 0) {
  plan.reset();
  if (n <= 0) return;
  const key_span s = mask.keys(mb, mh, q, k0, k0 + n);
  if (s.empty()) return;
  if (s.exact) {
    plan.add_plain(s.begin - k0, s.end - k0);
  } else {
    add_masked_run(plan, mask, mb, mh, q, x, s.begin - k0, s.end - k0, scale, v, f, k0);
  }
}

/// Writes \p value into the parts of y[0, n) that no run covers (streamed when \p stream).
template <class S>
inline void fill_gaps(S* y, Index n, const std::vector<softmax_run>& runs, S value, bool stream) {
  Index pos = 0;
  const auto fill = [&](Index b, Index e) {
    if (e <= b) return;
    if (stream) {
      simd::stream_fill(y + b, e - b, value);
    } else {
      std::fill(y + b, y + e, value);
    }
  };
  for (const softmax_run& r : runs) {
    fill(pos, r.begin);
    pos = r.end;
  }
  fill(pos, n);
  if (stream) simd::stream_fence();
}

/// Softmax (or log-softmax) of one row from its plan. x is the score row, y the output row,
/// v and f the flagged-run buffers. Writes the row's log-sum-exp to *lse when lse != nullptr.
/// An empty plan gives zeros (log-softmax: -infinity) and a log-sum-exp of -infinity. Every
/// pass is a packet loop of detail/simd.hpp: vectorized exp with exp(-inf) = 0 on every build,
/// selects on keep flags as blends, results independent of the row's alignment.
/// With \p stream the masked parts are written with non-temporal stores. (Streaming the kept
/// part too, through a row buffer, measured no faster on AMD Zen 5: the row is compute-bound.)
/// Whether a kept score of the row is NaN (asked only when the kept maximum is -inf, where the
/// maximum may have skipped it).
template <class S>
bool plan_has_nan(const S* x, const row_plan<S>& plan, const S* v, const S* f, S scale) {
  for (const softmax_run& r : plan.runs)
    for (Index k = r.begin; k < r.end; ++k)
      if (r.flagged ? (f[k] != S(0) && is_nan(v[k])) : is_nan(scale * x[k])) return true;
  return false;
}

/// A row without weight anywhere, written like a fully masked one: \p fill (0, or -inf for
/// log-softmax) everywhere, lse -inf.
template <class S>
void write_empty_row(S* y, Index n, const row_plan<S>& plan, S fill, S* lse, bool stream) {
  for (const softmax_run& r : plan.runs) std::fill(y + r.begin, y + r.end, fill);
  fill_gaps(y, n, plan.runs, fill, stream);
  if (lse) *lse = negative_infinity<S>();
}

template <bool Log, class S>
void finish_row(const S* x, S* y, Index n, const row_plan<S>& plan, const S* v, const S* f, S scale,
                S* lse, bool stream) {
  const S fill_value = Log ? negative_infinity<S>() : S(0);
  if (plan.runs.empty()) {
    fill_gaps(y, n, plan.runs, fill_value, stream);
    if (lse) *lse = negative_infinity<S>();
    return;
  }

  // Pass 1: the maximum of scale * score over the kept keys.
  bool any = plan.flagged_any;
  S m = plan.flagged_max;
  for (const softmax_run& r : plan.runs) {
    if (r.flagged) continue;
    const Index len = r.end - r.begin;
    const S mx =
        scale * (scale >= S(0) ? simd::max_of(x + r.begin, len) : simd::min_of(x + r.begin, len));
    if (!any || mx > m) m = mx;
    any = true;
  }
  // Every kept score -inf and none NaN: no weight anywhere (see below); decided before the
  // exponentials, whose -inf - -inf would be NaN.
  if (is_neg_inf(m) && !plan_has_nan(x, plan, v, f, scale)) {
    write_empty_row(y, n, plan, fill_value, lse, stream);
    return;
  }
  // Pass 2: exponentials and their sum (log-softmax: the sum only). Masked keys of a flagged
  // run are selected to exactly 0, whatever their argument.
  S sum = S(0);
  for (const softmax_run& r : plan.runs) {
    const Index len = r.end - r.begin;
    S* ws = Log ? nullptr : y + r.begin;
    sum += r.flagged ? simd::exp_sum_kept(v + r.begin, f + r.begin, len, m, ws)
                     : simd::exp_sum(x + r.begin, len, scale, m, ws);
  }
  // Every kept score -inf: no key has weight (sum exactly 0, by its bits so that -ffast-math
  // keeps it), and the row is written like an empty one: zeros, log-softmax -inf, lse -inf.
  // A NaN score makes the sum NaN and the row NaN (NaN policy, rule 2).
  if (magnitude_bits(sum) == 0) {
    write_empty_row(y, n, plan, fill_value, lse, stream);
    return;
  }
  // Pass 3: normalize.
  if (!Log) {
    const S inv = S(1) / sum;
    for (const softmax_run& r : plan.runs) {
      const Index len = r.end - r.begin;
      // Select, not multiply, on flagged runs: when a kept score is NaN or +inf, inv is NaN
      // and a masked zero times it would be NaN (NaN policy, rule 1).
      if (r.flagged) {
        simd::scale_kept(y + r.begin, f + r.begin, len, inv);
      } else {
        simd::scale(y + r.begin, len, inv);
      }
    }
  } else {
    const S log_sum = std::log(sum);
    for (const softmax_run& r : plan.runs) {
      const Index len = r.end - r.begin;
      if (r.flagged) {
        simd::shift_kept(v + r.begin, f + r.begin, len, m, log_sum, fill_value, y + r.begin);
      } else {
        simd::shift(x + r.begin, len, scale, m, log_sum, y + r.begin);
      }
    }
  }
  fill_gaps(y, n, plan.runs, fill_value, stream);
  if (lse) *lse = m + std::log(sum);
}

/// Softmax of one row of scale * x + bias, where a key is masked when its bias is <= the
/// lowest finite value of the bias scalar (so both -infinity and a finite lowest() fill count);
/// a NaN bias is not masked: it makes the row NaN like a kept NaN score. t and f are row buffers of
/// n scalars, plan a reusable plan. Masked keys are decided from the bias alone: their scores (NaN,
/// infinity) never enter the arithmetic. The row is one flagged run of the row core above.
template <bool Log, class S, class B>
void additive_row(const S* x, const B* bias, S* y, Index n, S scale, S* t, S* f, row_plan<S>& plan,
                  S* lse) {
  const B threshold = std::numeric_limits<B>::lowest();
  bool any = false;
  for (Index k = 0; k < n; ++k) {
    const bool keep = !(bias[k] <= threshold);  // NaN is kept (to_keep agrees)
    any = any || keep;
    // Masked keys hold 0 in t (a finite value); their results are selected away.
    t[k] = keep ? scale * x[k] + static_cast<S>(bias[k]) : S(0);
    f[k] = keep ? S(1) : S(0);
  }
  plan.reset();
  if (any) {
    plan.runs.push_back({0, n, true});
    plan.flagged_any = true;
    plan.flagged_max = simd::max_kept(t, f, n);
  }
  finish_row<Log>(x, y, n, plan, t, f, scale, lse, false);
}
}  // namespace detail
EMASK_NAMESPACE_END
