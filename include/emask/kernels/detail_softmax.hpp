/// \file
/// \brief Row kernels of masked softmax: runs of kept keys, the two-pass row softmax, and the
/// additive-bias row kernel. Not public API; see emask/kernels/softmax.hpp.
// IWYU pragma: private
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "emask/core/mask.hpp"

#if defined(__SSE2__) || defined(_M_X64)
#include <immintrin.h>
#define EMASK_DETAIL_HAS_STREAM 1
#else
#define EMASK_DETAIL_HAS_STREAM 0
#endif

EMASK_NAMESPACE_BEGIN
namespace detail {

/// -infinity built from its bit pattern: a stored constant that no -ffast-math folding can
/// turn into arithmetic. Only ever written to outputs, never computed with.
template <class S>
inline S negative_infinity() noexcept {
  static_assert(std::is_same<S, float>::value || std::is_same<S, double>::value,
                "emask: negative_infinity is defined for float and double");
  S s;
  if constexpr (sizeof(S) == 4) {
    const std::uint32_t bits = 0xFF800000u;
    std::memcpy(&s, &bits, sizeof s);
  } else {
    const std::uint64_t bits = 0xFFF0000000000000ull;
    std::memcpy(&s, &bits, sizeof s);
  }
  return s;
}

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

  /// Adds [b, e) of row x where keep(k) decides each key; trims the run to its kept keys.
  template <class Keep>
  void add_flagged(const S* x, Index b, Index e, S scale, S* v, S* f, Keep&& keep) {
    Index first = e, last = b;
    for (Index k = b; k < e; ++k) {
      if (keep(k)) {
        const S t = scale * x[k];
        v[k] = t;
        f[k] = S(1);
        if (first == e) first = k;
        last = k + 1;
        // A NaN maximum is not needed for the NaN policy: the exp pass propagates a kept NaN.
        if (!flagged_any || t > flagged_max) flagged_max = t;
        flagged_any = true;
      } else {
        v[k] = S(0);
        f[k] = S(0);
      }
    }
    if (first < last) runs.push_back({first, last, true});
  }
};

/// Writes \p value to y[0, n) with non-temporal (streaming) stores where the target has them:
/// the stores bypass the cache and cost no read-for-ownership. Unaligned head and tail
/// elements use plain stores. The caller issues stream_fence() before others read y.
template <class S>
inline void stream_fill(S* y, Index n, S value) {
#if EMASK_DETAIL_HAS_STREAM
#if defined(__AVX512F__)
  constexpr std::uintptr_t align = 64;
#elif defined(__AVX__)
  constexpr std::uintptr_t align = 32;
#else
  constexpr std::uintptr_t align = 16;
#endif
  constexpr Index lanes = static_cast<Index>(align / sizeof(S));
  Index i = 0;
  while (i < n && (reinterpret_cast<std::uintptr_t>(y + i) & (align - 1)) != 0) y[i++] = value;
  if constexpr (std::is_same<S, float>::value) {
#if defined(__AVX512F__)
    const __m512 p = _mm512_set1_ps(value);
    for (; i + lanes <= n; i += lanes) _mm512_stream_ps(y + i, p);
#elif defined(__AVX__)
    const __m256 p = _mm256_set1_ps(value);
    for (; i + lanes <= n; i += lanes) _mm256_stream_ps(y + i, p);
#else
    const __m128 p = _mm_set1_ps(value);
    for (; i + lanes <= n; i += lanes) _mm_stream_ps(y + i, p);
#endif
  } else {
#if defined(__AVX512F__)
    const __m512d p = _mm512_set1_pd(value);
    for (; i + lanes <= n; i += lanes) _mm512_stream_pd(y + i, p);
#elif defined(__AVX__)
    const __m256d p = _mm256_set1_pd(value);
    for (; i + lanes <= n; i += lanes) _mm256_stream_pd(y + i, p);
#else
    const __m128d p = _mm_set1_pd(value);
    for (; i + lanes <= n; i += lanes) _mm_stream_pd(y + i, p);
#endif
  }
  for (; i < n; ++i) y[i] = value;
#else
  std::fill(y, y + n, value);
#endif
}

/// Orders earlier streaming stores before later stores (a no-op without them).
inline void stream_fence() {
#if EMASK_DETAIL_HAS_STREAM
  _mm_sfence();
#endif
}

/// Writes \p value into the parts of y[0, n) that no run covers (streamed when \p stream).
template <class S>
inline void fill_gaps(S* y, Index n, const std::vector<softmax_run>& runs, S value, bool stream) {
  Index pos = 0;
  const auto fill = [&](Index b, Index e) {
    if (e <= b) return;
    if (stream) {
      stream_fill(y + b, e - b, value);
    } else {
      std::fill(y + b, y + e, value);
    }
  };
  for (const softmax_run& r : runs) {
    fill(pos, r.begin);
    pos = r.end;
  }
  fill(pos, n);
  if (stream) stream_fence();
}

/// exp() results below the smallest normal number become exactly 0. Eigen's vectorized exp
/// clamps its argument (about -88.4 for float), so exp(-inf) would give 2.9e-39 instead of 0
/// on plain x86-64 builds (and 0 with -march=native): a kept -infinity score must get
/// probability 0 whatever the build. A comparison, not a multiplication: NaN stays NaN.
template <class E>
auto flush_below_normal(const E& e) {
  using S = typename E::Scalar;
  return (e < std::numeric_limits<S>::min()).select(S(0), e);
}

/// Softmax (or log-softmax) of one row from its plan. x is the score row, y the output row,
/// v and f the flagged-run buffers. Writes the row's log-sum-exp to *lse when lse != nullptr.
/// An empty plan gives zeros (log-softmax: -infinity) and a log-sum-exp of -infinity. With
/// \p stream the masked parts are written with non-temporal stores.
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
    const const_row_segment<S> xs(x + r.begin, r.end - r.begin);
    const S t = scale * (scale >= S(0) ? xs.maxCoeff() : xs.minCoeff());
    if (!any || t > m) m = t;
    any = true;
  }
  // Pass 2: exponentials and their sum. Masked keys of a flagged run see (v - m) * 0 = 0, a
  // finite argument, and are then multiplied by their zero flag: exactly 0.
  S sum = S(0);
  for (const softmax_run& r : plan.runs) {
    const Index len = r.end - r.begin;
    row_segment<S> ys(y + r.begin, len);
    if (!r.flagged) {
      const const_row_segment<S> xs(x + r.begin, len);
      if (Log) {
        sum += (xs * scale - m).exp().sum();
      } else {
        ys = flush_below_normal((xs * scale - m).exp());
        sum += ys.sum();
      }
    } else {
      const const_row_segment<S> vs(v + r.begin, len), fs(f + r.begin, len);
      ys = flush_below_normal(((vs - m) * fs).exp()) * fs;
      sum += ys.sum();
    }
  }
  // Pass 3: normalize.
  if (!Log) {
    const S inv = S(1) / sum;
    for (const softmax_run& r : plan.runs) {
      const Index len = r.end - r.begin;
      row_segment<S> ys(y + r.begin, len);
      if (!r.flagged) {
        ys *= inv;
      } else {
        // Select, not multiply: when a kept score is NaN or +inf, m is too and the masked
        // entries above are NaN; a zero flag times NaN would stay NaN (NaN policy, rule 1).
        ys = (const_row_segment<S>(f + r.begin, len) != S(0)).select(ys * inv, S(0));
      }
    }
  } else {
    const S log_sum = std::log(sum);
    for (const softmax_run& r : plan.runs) {
      const Index len = r.end - r.begin;
      row_segment<S> ys(y + r.begin, len);
      if (!r.flagged) {
        ys = (const_row_segment<S>(x + r.begin, len) * scale - m) - log_sum;
      } else {
        ys = (const_row_segment<S>(v + r.begin, len) - m) - log_sum;
        for (Index k = r.begin; k < r.end; ++k)
          if (f[k] == S(0)) y[k] = fill_value;
      }
    }
  }
  fill_gaps(y, n, plan.runs, fill_value, stream);
  if (lse) *lse = m + std::log(sum);
}

/// Softmax of one row of scale * x + bias, where a key is masked when its bias is <= the
/// lowest finite value of the bias scalar (so both -infinity and a finite lowest() fill count).
/// t is a row buffer of n scalars. Masked keys are decided from the bias alone: their scores
/// (NaN, infinity) never enter the arithmetic.
template <bool Log, class S, class B>
void additive_row(const S* x, const B* bias, S* y, Index n, S scale, S* t, S* lse) {
  const B threshold = std::numeric_limits<B>::lowest();
  const S low = std::numeric_limits<S>::lowest();
  Index kept = 0;
  for (Index k = 0; k < n; ++k) {
    const bool keep = bias[k] > threshold;
    kept += keep ? 1 : 0;
    t[k] = keep ? scale * x[k] + static_cast<S>(bias[k]) : low;
  }
  if (kept == 0) {
    std::fill(y, y + n, Log ? negative_infinity<S>() : S(0));
    if (lse) *lse = negative_infinity<S>();
    return;
  }
  const S m = row_segment<S>(t, n).maxCoeff();
  // Masked keys get the finite argument 0; their result is replaced by the select below.
  for (Index k = 0; k < n; ++k) t[k] = bias[k] > threshold ? t[k] - m : S(0);
  row_segment<S> ys(y, n);
  const const_row_segment<S> ts(t, n);
  ys = flush_below_normal(ts.exp());
  for (Index k = 0; k < n; ++k) y[k] = bias[k] > threshold ? y[k] : S(0);
  const S sum = ys.sum();
  if (!Log) {
    // Scale the kept keys only: a NaN sum (NaN at a kept key) must not reach masked zeros.
    const S inv = S(1) / sum;
    for (Index k = 0; k < n; ++k) y[k] = bias[k] > threshold ? y[k] * inv : S(0);
  } else {
    const S log_sum = std::log(sum);
    const S ninf = negative_infinity<S>();
    for (Index k = 0; k < n; ++k) y[k] = bias[k] > threshold ? t[k] - log_sum : ninf;
  }
  if (lse) *lse = m + std::log(sum);
}

}  // namespace detail
EMASK_NAMESPACE_END
