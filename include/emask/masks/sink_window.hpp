/// \file
/// \brief The StreamingLLM mask: a causal sliding window plus the first tokens (the attention
/// sinks), kept by every query.
///
/// Not to be confused with a learned sink logit (gpt-oss): that is a per-head score that joins
/// the softmax denominator, not a set of kept keys.
#pragma once

#include "emask/config.hpp"
#include "emask/core/mask.hpp"
#include "emask/detail/interval_mask.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Query q keeps key k when k <= q and (k < n_sink or q - k < window): the first n_sink
/// positions (the sink tokens) and the last `window` positions up to and including its own
/// (StreamingLLM, Xiao et al. 2023). Exact tile answers; a row's kept keys are one span when the
/// sinks and the window touch, else two (keys() then answers the hull, not exact).
class sink_window : public mask_base<sink_window> {
 public:
  static constexpr bool exact_tiles = true;  ///< whether tile() answers are exact

  /// \brief \p n_sink sink tokens and a window of \p window positions (the query's own
  /// included: window 1 keeps the diagonal, 0 keeps only the sinks).
  /// \pre 0 <= n_sink, window <= emask::unbounded.
  sink_window(Index n_sink, Index window) : n_sink_(n_sink), window_(window) {
    if (n_sink < 0 || n_sink > unbounded)
      detail::fail_argument("sink_window", "n_sink", n_sink, ">= 0 and <= emask::unbounded");
    if (window < 0 || window > unbounded)
      detail::fail_argument("sink_window", "window", window, ">= 0 and <= emask::unbounded");
  }

  /// \brief Number of sink tokens.
  Index n_sink() const noexcept { return n_sink_; }
  /// \brief Window length (the query's own position included).
  Index window() const noexcept { return window_; }

  /// \brief Whether query q keeps key k.
  bool keep(Index, Index, Index q, Index k) const {
    return k <= q && (k < n_sink_ || q - k < window_);
  }

  /// \brief Keys of row q kept inside [k0, k1): exact when they are one span.
  key_span keys(Index, Index, Index q, Index k0, Index k1) const {
    const Index top = (q + 1 < k1) ? q + 1 : k1;        // causal: k <= q
    Index sb = k0, se = n_sink_ < top ? n_sink_ : top;  // sinks [k0, min(n_sink, top))
    const Index wlo = q - window_ + 1;
    Index wb = wlo > k0 ? wlo : k0, we = top;  // window [max(k0, q - W + 1), top)
    const bool s_empty = se <= sb, w_empty = we <= wb;
    if (s_empty && w_empty) return detail::empty_span(k0);
    if (s_empty) return {wb, we, true};
    if (w_empty) return {sb, se, true};
    if (se >= wb) return {sb, se > we ? se : we, true};  // they touch: one span
    return {sb, we, false};
  }

  /// \brief State of the tile [q0, q1) x [k0, k1), exact.
  tile_state tile(Index, Index, Index q0, Index q1, Index k0, Index k1) const {
    if (q1 <= q0 || k1 <= k0) return tile_state::empty;
    // Full: every key at or before every query (k1 - 1 <= q0), and no key of the tile in the
    // gap [n_sink, q - W + 1) of the last query (the widest gap).
    if (k1 - 1 <= q0) {
      const Index gap_lo = n_sink_ > k0 ? n_sink_ : k0;
      const Index gap_hi = (q1 - window_ < k1) ? q1 - window_ : k1;
      if (gap_lo >= gap_hi) return tile_state::full;
    }
    // Some sink kept: key k0 < n_sink at or before the last query.
    const bool sink = k0 < n_sink_ && k0 <= q1 - 1;
    // Some window pair: a query q >= k0 with q - (k1 - 1) < W, i.e. q <= k1 + W - 2.
    const Index lo = q0 > k0 ? q0 : k0;
    const Index hi = (q1 - 1 < k1 + window_ - 2) ? q1 - 1 : k1 + window_ - 2;
    const bool win = window_ >= 1 && lo <= hi;
    return (sink || win) ? tile_state::partial : tile_state::empty;
  }

  /// \brief Raises emask::error for positions beyond emask::unbounded; any batch and head.
  void check(const region& r, const char* where) const { detail::check_positions(where, r); }

 private:
  Index n_sink_, window_;
};

EMASK_NAMESPACE_END
