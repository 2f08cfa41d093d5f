/// \file
/// \brief Options, problem description and checks shared by the attention variants.
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/attn_common.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "emask/core/mask.hpp"
#include "emask/core/score_mod.hpp"
#include "emask/core/types.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/detail/threads.hpp"

EMASK_NAMESPACE_BEGIN

namespace detail {

/// One attention problem: B x H query heads over B x Hkv key/value heads, pointers and strides.
template <class S>
struct attn_problem {
  const S* q;
  const S* k;
  const S* v;
  S* out;
  Index q_sb, q_sh, q_sl;
  Index k_sb, k_sh, k_sl;
  Index v_sb, v_sh, v_sl;
  Index o_sb, o_sh, o_sl;
  S* lse = nullptr;  // [B*H rows, stride lse_row] x Lq, or null
  Index lse_row = 0;
  Index batch, heads, kv_heads, lq, lk, d, dv;
  Index b0 = 0, h0 = 0;  // mask coordinates of batch 0 / head 0 (single-head entry point)
  Index q_off, k_off;
  S scale;  // scale / softcap when softcap is on
  S softcap;
  bool has_softcap;
  std::vector<S> slopes;           // one per head, empty = no ALiBi
  const score_mod* mod = nullptr;  // null: none
  std::vector<S> sinks;            // learned sink logit per head, empty = none
  int threads;

  const S* q_ptr(Index b, Index h) const { return q + b * q_sb + h * q_sh; }
  Index kv_head(Index h) const { return h / (heads / kv_heads); }
  const S* k_ptr(Index b, Index h) const { return k + b * k_sb + kv_head(h) * k_sh; }
  const S* v_ptr(Index b, Index h) const { return v + b * v_sb + kv_head(h) * v_sh; }
  S* out_ptr(Index b, Index h) const { return out + b * o_sb + h * o_sh; }
  S* lse_ptr(Index b, Index h) const { return lse ? lse + (b * heads + h) * lse_row : nullptr; }
  S slope(Index h) const { return slopes.empty() ? S(0) : slopes[static_cast<std::size_t>(h)]; }
};

/// Score transform of one row segment s[0, n) whose first key has index j0 (in the problem):
/// softcap, ALiBi, then the score modifier, for query index i of head (b, h).
template <class S>
inline void attn_transform(const attn_problem<S>& p, Index b, Index h, Index i, Index j0, S* s,
                           Index n) {
  Eigen::Map<Eigen::Array<S, Eigen::Dynamic, 1>> a(s, n);
  if (p.has_softcap) a = p.softcap * a.tanh();
  const S slope = p.slope(h);
  if (slope != S(0)) {
    const Index rel0 = j0 - i + p.k_off - p.q_off;
    for (Index j = 0; j < n; ++j) s[j] += slope * static_cast<S>(rel0 + j);
  }
  if (p.mod) p.mod->apply(s, 1, n, 1, n, p.b0 + b, p.h0 + h, p.q_off + i, p.k_off + j0);
}

/// The one log-sum-exp merge: folds the normalized partial (po, plse) of one row into (o, lse),
/// in place, so that afterwards they cover the keys of both. A side whose lse is -infinity kept
/// no key (or only keys of weight 0) and takes no part: decided from the bits, never by infinity
/// arithmetic (-ffast-math), so any finite lse, lowest() included, is a real row. A NaN side
/// makes the row NaN. Used by merge_attention (shards) and the decode variant (key chunks).
template <class S>
inline void merge_lse_row(S* o, S& lse, const S* po, S plse, Index dv) {
  if (is_neg_inf(plse)) return;
  if (is_neg_inf(lse)) {
    for (Index x = 0; x < dv; ++x) o[x] = po[x];
    lse = plse;
    return;
  }
  const S mx = (std::max)(lse, plse);
  const S wa = std::exp(lse - mx), wc = std::exp(plse - mx);
  const S sum = wa + wc;
  const S fa = wa / sum, fc = wc / sum;
  for (Index x = 0; x < dv; ++x) o[x] = fa * o[x] + fc * po[x];
  lse = mx + std::log(sum);
}

/// Folds a learned sink logit \p s, a key whose value row is zero, into one finished row
/// (o, lse): lse' = log(exp(lse) + exp(s)), o' = exp(lse - lse') o. A row that kept nothing
/// gets zeros and lse = s; a NaN row stays NaN.
template <class S>
inline void fold_sink_row(S* o, S& lse, S s, Index dv) {
  if (is_neg_inf(lse)) {
    for (Index x = 0; x < dv; ++x) o[x] = S(0);
    lse = s;
    return;
  }
  if (is_nan(lse)) return;  // a NaN row stays NaN
  const S mx = lse < s ? s : lse;
  const S wa = std::exp(lse - mx), wc = std::exp(s - mx);
  const S sum = wa + wc;
  const S fa = wa / sum;
  for (Index x = 0; x < dv; ++x) o[x] *= fa;
  lse = mx + std::log(sum);
}

}  // namespace detail
EMASK_NAMESPACE_END
