/// \file
/// \brief Backward passes of masked_softmax and masked_log_softmax: the gradient with respect to
/// the scores from the forward's output and the gradient of the output.
///
/// With s = options.scale and y = masked_softmax(scores) (the forward computed softmax(s * x)
/// over the kept keys of each row), the chain rule through the softmax Jacobian
/// diag(y) - y y^T gives, for kept keys j of a row,
///
///     softmax:      dx_j = s * y_j * (dy_j - sum_kept(y * dy))
///     log-softmax:  dx_j = s * (dy_j - exp(y_j) * sum_kept(dy))     (y = log-probabilities)
///
/// and dx_j = 0 exactly at masked keys whatever y and dy hold there (the mask decides, through
/// the same key runs and keep flags as the forward: never -infinity arithmetic, so the kernels
/// stay correct under -ffast-math and a NaN or infinity of dy at a masked key never leaks). A
/// fully masked row gives zeros. With a learned sink logit s_h (options.sink_logit) the sink is
/// one more key whose output is not returned (its dy is 0): dx is unchanged, and
/// dL/ds_h = -p_sink * sum_kept(y * dy) (log-softmax: -p_sink * sum_kept(dy)) with
/// p_sink = 1 - sum_kept(y) (log-softmax: 1 - sum_kept(exp(y))), summed over the rows.
/// The formulas are the standard softmax / log-softmax vector-Jacobian products (e.g. PyTorch's
/// _softmax_backward_data and _log_softmax_backward_data).
///
/// Variants as the forward (emask/kernels/variant.hpp): emask::tiled (the default; tile answers
/// over tile_q x tile_k tiles: empty tiles are written as zeros without a mask test, full ones
/// are read without one), emask::fused (one key span per row) and reference::naive (materializes
/// the keep mask, plain scalar loops; for tests).
#pragma once

#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "emask/core/materialize.hpp"
#include "emask/kernels/softmax.hpp"

EMASK_NAMESPACE_BEGIN

namespace detail {

/// y, dy as read by the backward: row-major, unit inner stride, bound without a copy.
template <class S>
using grad_in_ref = Eigen::Ref<const row_matrix<S>, 0, Eigen::OuterStride<>>;

namespace simd_bw {
namespace ei = Eigen::internal;
using simd::for_each_packet2;
using simd::for_each_packet_at;
using simd::packet;

/// sum of y[k] * dy[k] over [0, n) (kept: f[k] != 0 only), in an order fixed by n alone.
template <bool Flagged, class S>
inline S dot(const S* y, const S* dy, const S* f, Index n) {
  packet<S> acc[2] = {ei::pset1<packet<S>>(S(0)), ei::pset1<packet<S>>(S(0))};
  for_each_packet2<S>(n, [&](Index k, auto c, int a) {
    packet<S> t = ei::pmul(simd::load<S>(y + k, c), simd::load<S>(dy + k, c));
    if constexpr (Flagged)
      t = simd::select<S>(simd::flag_set<S>(simd::load<S>(f + k, c)), t, ei::pzero(t));
    acc[a] = ei::padd(acc[a], t);  // partial packets load zeros past n (and flag 0)
  });
  return ei::predux(ei::padd(acc[0], acc[1]));
}

/// sum of y[k] (or flushed exp(y[k]) when Exp) over [0, n) (kept only when Flagged).
template <bool Flagged, bool Exp, class S>
inline S sum(const S* y, const S* f, Index n) {
  packet<S> acc[2] = {ei::pset1<packet<S>>(S(0)), ei::pset1<packet<S>>(S(0))};
  for_each_packet2<S>(n, [&](Index k, auto c, int a) {
    packet<S> t = simd::load<S>(y + k, c);
    if constexpr (Exp) t = simd::keep_lanes<S>(simd::exp_flushed<S>(t), c);
    if constexpr (Flagged)
      t = simd::select<S>(simd::flag_set<S>(simd::load<S>(f + k, c)), t, ei::pzero(t));
    acc[a] = ei::padd(acc[a], t);
  });
  return ei::predux(ei::padd(acc[0], acc[1]));
}

/// max of y[0, n) over the kept entries; -infinity when none (a bit pattern: fine under
/// -ffast-math). NaN handling unspecified: the caller looks for NaN when the max is -infinity.
template <bool Flagged, class S>
inline S kept_max(const S* y, const S* f, Index n) {
  const packet<S> low = ei::pset1<packet<S>>(negative_infinity<S>());
  packet<S> acc = low;
  for_each_packet_at<S>(y, n, [&](Index k, auto c) {
    packet<S> t = simd::load<S>(y + k, c, negative_infinity<S>());
    if constexpr (Flagged) t = simd::select<S>(simd::flag_set<S>(simd::load<S>(f + k, c)), t, low);
    acc = ei::pmax(acc, t);
  });
  return ei::predux_max(acc);
}

/// softmax: dx[k] = s * (y[k] * (dy[k] - d)); log-softmax: dx[k] = s * (dy[k] - exp(y[k]) * d).
/// Flagged: 0 where f[k] == 0, whatever y and dy hold there.
template <bool Log, bool Flagged, class S>
inline void grad(const S* y, const S* dy, const S* f, Index n, S s, S d, S* dx) {
  const packet<S> ps = ei::pset1<packet<S>>(s), pd = ei::pset1<packet<S>>(d);
  for_each_packet_at<S>(dx, n, [&](Index k, auto c) {
    const packet<S> py = simd::load<S>(y + k, c), pdy = simd::load<S>(dy + k, c);
    packet<S> r;
    if constexpr (Log) {
      r = ei::pmul(ps, ei::psub(pdy, ei::pmul(simd::exp_flushed<S>(py), pd)));
    } else {
      r = ei::pmul(ps, ei::pmul(py, ei::psub(pdy, pd)));
    }
    if constexpr (Flagged)
      r = simd::select<S>(simd::flag_set<S>(simd::load<S>(f + k, c)), r, ei::pzero(r));
    simd::store<S>(dx + k, r, c);
  });
}
}  // namespace simd_bw

/// The runs of one row for the backward: plain runs (every key kept) and flagged runs whose
/// keep flags are in f[]. Reuses the forward's row_plan (runs only; no maximum).
template <class S>
void softmax_backward_flagged(row_plan<S>& plan, const mask_tiles<S>& mask, Index b, Index h,
                              Index q, Index k0, Index k1, S* f) {
  mask.flags(b, h, q, k0, k1, f + k0, 1);
  plan.runs.push_back({k0, k1, true});
}

/// Backward of one row from its plan. Writes dL/ds (sink) of the row to *dsink when non-null.
/// dx may be the storage of y or dy: every read of a row happens before the write of the same
/// element, and the reductions before any write.
template <bool Log, class S>
void softmax_backward_row(const S* y, const S* dy, S* dx, Index n, const row_plan<S>& plan,
                          const S* f, S scale, S* dsink, bool stream) {
  if (plan.runs.empty()) {
    fill_gaps(dx, n, plan.runs, S(0), stream);
    if (dsink) *dsink = S(0);
    return;
  }
  if constexpr (Log) {
    // Every kept log-probability -inf: the forward wrote the row like an empty one (its output
    // does not depend on the scores), so its gradient is 0. Decided by bits, before any exp.
    bool any = false;
    S m = S(0);
    for (const softmax_run& r : plan.runs) {
      const Index len = r.end - r.begin;
      const S mx = r.flagged ? simd_bw::kept_max<true>(y + r.begin, f + r.begin, len)
                             : simd_bw::kept_max<false>(y + r.begin, f, len);
      if (!any || mx > m) m = mx;
      any = true;
    }
    if (is_neg_inf(m)) {
      bool nan = false;  // a kept NaN the maximum may have skipped keeps the row NaN
      for (const softmax_run& r : plan.runs)
        for (Index k = r.begin; k < r.end && !nan; ++k)
          nan = (!r.flagged || f[k] != S(0)) && (is_nan(y[k]) || is_nan(dy[k]));
      if (!nan) {
        for (const softmax_run& r : plan.runs) std::fill(dx + r.begin, dx + r.end, S(0));
        fill_gaps(dx, n, plan.runs, S(0), stream);
        if (dsink) *dsink = S(0);
        return;
      }
    }
  }
  // Pass 1: softmax: d = sum_kept(y * dy); log-softmax: d = sum_kept(dy). Runs in mask order.
  S d = S(0);
  for (const softmax_run& r : plan.runs) {
    const Index len = r.end - r.begin;
    if constexpr (Log) {
      d += r.flagged ? simd_bw::sum<true, false>(dy + r.begin, f + r.begin, len)
                     : simd_bw::sum<false, false>(dy + r.begin, f, len);
    } else {
      d += r.flagged ? simd_bw::dot<true>(y + r.begin, dy + r.begin, f + r.begin, len)
                     : simd_bw::dot<false>(y + r.begin, dy + r.begin, f, len);
    }
  }
  if (dsink) {
    S mass = S(0);  // sum_kept(p): the probability the kept keys hold; the sink has the rest
    for (const softmax_run& r : plan.runs) {
      const Index len = r.end - r.begin;
      mass += r.flagged ? simd_bw::sum<true, Log>(y + r.begin, f + r.begin, len)
                        : simd_bw::sum<false, Log>(y + r.begin, f, len);
    }
    *dsink = -(S(1) - mass) * d;
  }
  // Pass 2: the gradient on the runs, then 0 in the gaps.
  for (const softmax_run& r : plan.runs) {
    const Index len = r.end - r.begin;
    if (r.flagged) {
      simd_bw::grad<Log, true>(y + r.begin, dy + r.begin, f + r.begin, len, scale, d, dx + r.begin);
    } else {
      simd_bw::grad<Log, false>(y + r.begin, dy + r.begin, f, len, scale, d, dx + r.begin);
    }
  }
  fill_gaps(dx, n, plan.runs, S(0), stream);
}

/// Below this many entries the backward stays on the calling thread (as the forward).
inline constexpr Index softmax_backward_parallel_threshold = softmax_parallel_threshold;

/// fused: one key span per row. tiled: tile answers. Rows are independent and each is computed
/// by the same code whatever thread runs it, so results do not depend on the thread count.
template <bool Log, bool Tiled, class S>
void softmax_backward_rows(const grad_in_ref<S>& y, const grad_in_ref<S>& dy,
                           Eigen::Ref<row_matrix<S>> dx, const mask_tiles<S>& mask, S* dsink,
                           S scale, Index b, Index h, const tile_grid& grid, bool stream,
                           int threads) {
  const Index q_len = y.rows(), k_len = y.cols();
  const Index q_tiles = Tiled ? grid.q_tiles() : q_len, k_tiles = Tiled ? grid.k_tiles() : 0;
  region_errors errors;
#if EMASK_HAS_OPENMP
#pragma omp parallel if (q_len * k_len >= softmax_backward_parallel_threshold) num_threads(threads)
#else
  (void)threads;
#endif
  {
    std::vector<S> f;  // sized at the first inexact key span
    std::vector<tile_state> states;
    row_plan<S> plan;
    const bool ready = errors.run([&] { states.resize(static_cast<std::size_t>(k_tiles)); });
#if EMASK_HAS_OPENMP
#pragma omp for schedule(static, Tiled ? 1 : 16) nowait
#endif
    for (Index qt = 0; qt < q_tiles; ++qt) {
      if (!ready) continue;
      errors.run([&] {
        const Index q0 = Tiled ? grid.q_begin(qt) : qt, q1 = Tiled ? grid.q_end(qt) : qt + 1;
        if constexpr (Tiled)
          for (Index kt = 0; kt < k_tiles; ++kt)
            states[static_cast<std::size_t>(kt)] =
                mask.tile(b, h, q0, q1, grid.k_begin(kt), grid.k_end(kt));
        for (Index q = q0; q < q1; ++q) {
          plan.reset();
          const auto add = [&](Index k0, Index k1) {
            const key_span s = mask.keys(b, h, q, k0, k1);
            if (s.empty()) return;
            if (s.exact) {
              plan.add_plain(s.begin, s.end);
              return;
            }
            if (f.empty()) f.resize(static_cast<std::size_t>(k_len));
            softmax_backward_flagged(plan, mask, b, h, q, s.begin, s.end, f.data());
          };
          if constexpr (Tiled) {
            for (Index kt = 0; kt < k_tiles; ++kt) {
              const tile_state st = states[static_cast<std::size_t>(kt)];
              if (st == tile_state::empty) continue;
              if (st == tile_state::full) {
                plan.add_plain(grid.k_begin(kt), grid.k_end(kt));
              } else {
                add(grid.k_begin(kt), grid.k_end(kt));
              }
            }
          } else if (k_len > 0) {
            add(0, k_len);
          }
          softmax_backward_row<Log>(y.data() + q * y.outerStride(),
                                    dy.data() + q * dy.outerStride(),
                                    dx.data() + q * dx.outerStride(), k_len, plan, f.data(), scale,
                                    dsink ? dsink + q : nullptr, stream);
        }
      });
    }
  }
  errors.rethrow();
}

/// reference::naive: the keep mask materialized, plain scalar loops in S.
template <bool Log, class S>
void softmax_backward_naive(const grad_in_ref<S>& y, const grad_in_ref<S>& dy,
                            Eigen::Ref<row_matrix<S>> dx, const bool_matrix& keep, S* dsink,
                            S scale) {
  const Index q_len = y.rows(), k_len = y.cols();
  for (Index q = 0; q < q_len; ++q) {
    S d = S(0), mass = S(0);
    bool any = false, nan = false;
    for (Index k = 0; k < k_len; ++k) {
      if (!keep(q, k)) continue;
      const S p = Log ? (is_neg_inf(y(q, k)) ? S(0) : std::exp(y(q, k))) : y(q, k);
      d += Log ? dy(q, k) : y(q, k) * dy(q, k);
      mass += p;
      any = any || !(Log && is_neg_inf(y(q, k)));
      nan = nan || is_nan(y(q, k)) || is_nan(dy(q, k));
    }
    const bool zero = Log && !any && !nan;  // log-softmax row written like an empty one
    for (Index k = 0; k < k_len; ++k) {
      if (!keep(q, k) || zero) {
        dx(q, k) = S(0);
      } else if (Log) {
        const S p = is_neg_inf(y(q, k)) ? S(0) : std::exp(y(q, k));
        dx(q, k) = scale * (dy(q, k) - p * d);
      } else {
        dx(q, k) = scale * (y(q, k) * (dy(q, k) - d));
      }
    }
    if (dsink) dsink[q] = zero ? S(0) : -(S(1) - mass) * d;
  }
}

/// The one entry point behind every public overload.
template <bool Log, class V, class S, class Mask>
void masked_softmax_backward_impl(const char* where, const grad_in_ref<S>& y,
                                  const grad_in_ref<S>& dy, const Mask& mask,
                                  Eigen::Ref<row_matrix<S>> dx, S* dsink, const Index* dsink_size,
                                  const softmax_options& o) {
  check_softmax_scalar<S>();
  const Index q_len = y.rows(), k_len = y.cols();
  if (dy.rows() != q_len || dy.cols() != k_len)
    fail_argument(where, "dy", concat(dy.rows(), " x ", dy.cols()), q_len, " x ", k_len,
                  " (the shape of y)");
  if (dx.rows() != q_len || dx.cols() != k_len)
    fail_argument(where, "dx", concat(dx.rows(), " x ", dx.cols()), q_len, " x ", k_len,
                  " (the shape of y)");
  if (dsink_size && *dsink_size != q_len)
    fail_argument(where, "d_sink", concat(*dsink_size, " entries"), q_len,
                  " entries (one per row of y)");
  check_kernel_options(where, o, "1", q_len, k_len);
  if (o.tile_q < 1) fail_argument(where, "options.tile_q", o.tile_q, ">= 1");
  if (o.tile_k < 1) fail_argument(where, "options.tile_k", o.tile_k, ">= 1");
  if (o.stream_bytes < 0) fail_argument(where, "options.stream_bytes", o.stream_bytes, ">= 0");
  if (o.softcap != 0)
    fail_argument(where, "options.softcap", o.softcap,
                  "0 (the backward of a soft-capped softmax needs the scores: differentiate "
                  "the capped scores with scale 1, then the cap)");
  if (!o.score_mod.empty())
    fail_argument(where, "options.score_mod", "set",
                  "empty (differentiate the modified scores with scale 1, then the modifier)");
  const S scale = static_cast<S>(o.scale.value_or(1.0));
  if (!is_finite(scale))
    fail_argument(where, "options.scale", *o.scale, "a value finite in the kernel's scalar type");
  if (dsink && o.sink_logit.empty())
    fail_argument(where, "options.sink_logit", "empty",
                  "one logit per query head (d_sink is the gradient of the sink logit)");
  (void)sink_logits<S>(where, o, o.slice.h, 1);  // checked as the forward checks them
  const bool stream = q_len * k_len * static_cast<Index>(sizeof(S)) >= o.stream_bytes;

  if constexpr (is_additive_mask<Mask>::value) {
    if (mask.rows() != q_len || mask.cols() != k_len)
      fail_argument(where, "mask", concat(mask.rows(), " x ", mask.cols(), " additive mask"), q_len,
                    " x ", k_len, " (the shape of y)");
    if (o.q_offset != 0 || o.k_offset != 0)
      fail_argument(where, "options.q_offset, options.k_offset",
                    concat(o.q_offset, ", ", o.k_offset),
                    "0, 0 with an additive_mask (it has no positions to shift)");
    const bool_matrix keep = to_keep(mask);  // <= lowest() masked, NaN kept: as the forward
    masked_softmax_backward_impl<Log, V>(where, y, dy, as_mask(keep), dx, dsink, dsink_size, o);
  } else if constexpr (std::is_same<Mask, bool_matrix>::value) {
    if (mask.rows() != q_len || mask.cols() != k_len)
      fail_argument(where, "mask", concat(mask.rows(), " x ", mask.cols(), " bool_matrix"), q_len,
                    " x ", k_len, " (the shape of y)");
    masked_softmax_backward_impl<Log, V>(where, y, dy, as_mask(mask), dx, dsink, dsink_size, o);
  } else if constexpr (std::is_same<Mask, drop_mask>::value) {
    if (mask.rows() != q_len || mask.cols() != k_len)
      fail_argument(where, "mask", concat(mask.rows(), " x ", mask.cols(), " drop_mask"), q_len,
                    " x ", k_len, " (the shape of y)");
    const bool_matrix keep = to_keep(mask);
    masked_softmax_backward_impl<Log, V>(where, y, dy, as_mask(keep), dx, dsink, dsink_size, o);
  } else {
    static_assert(is_mask_v<Mask>,
                  "emask::masked_softmax_backward: pass the forward's mask (a mask expression, a "
                  "bool_matrix keep-mask, a drop_mask or an additive_mask<S>)");
    const Index b = o.slice.b, h = o.slice.h, qo = o.q_offset, ko = o.k_offset;
    mask.check(region{b, b + 1, h, h + 1, qo, qo + q_len, ko, ko + k_len}, where);
    const int threads = thread_count(o.threads);
    if constexpr (std::is_same<V, fused_t>::value) {
      softmax_backward_rows<Log, false>(y, dy, dx, mask_tiles<S>(mask, qo, ko), dsink, scale, b, h,
                                        tile_grid(q_len, k_len, 1, 1), stream, threads);
    } else if constexpr (std::is_same<V, tiled_t>::value) {
      softmax_backward_rows<Log, true>(y, dy, dx, mask_tiles<S>(mask, qo, ko), dsink, scale, b, h,
                                       tile_grid(q_len, k_len, o.tile_q, o.tile_k), stream,
                                       threads);
    } else {
      static_assert(std::is_same<V, reference::naive_t>::value,
                    "emask::masked_softmax_backward: the variant is emask::tiled, emask::fused or "
                    "emask::reference::naive");
      const bool_matrix keep = materialize_keep(where, mask.offset(qo, ko), q_len, k_len, b, h);
      softmax_backward_naive<Log>(y, dy, dx, keep, dsink, scale);
    }
  }
}

template <bool Log, class V, class DY, class DDY, class Mask>
void masked_softmax_backward_entry(const char* where, const Eigen::MatrixBase<DY>& y,
                                   const Eigen::MatrixBase<DDY>& dy, const Mask& mask,
                                   Eigen::Ref<row_matrix<typename DY::Scalar>> dx,
                                   typename DY::Scalar* dsink, const Index* dsink_size,
                                   const softmax_options& o) {
  using S = typename DY::Scalar;
  check_softmax_scalar<S>();
  static_assert(std::is_same<S, typename DDY::Scalar>::value,
                "emask::masked_softmax_backward: y and dy must have the same scalar type (cast "
                "one with .cast<S>())");
  const grad_in_ref<S> yr(y.derived());
  const grad_in_ref<S> dyr(dy.derived());
  masked_softmax_backward_impl<Log, V>(where, yr, dyr, mask, dx, dsink, dsink_size, o);
}

}  // namespace detail

/// \brief Gradient of masked_softmax with respect to the scores, written to \p dx:
/// dx_j = s * y_j * (dy_j - sum_kept(y * dy)) at kept keys, exactly 0 at masked keys and in
/// fully masked rows, with s = options.scale (unset: 1).
///
/// \param y Lq x Lk output of the forward (masked_softmax with the same mask and options).
/// \param dy Lq x Lk gradient of the loss with respect to y; its masked entries are never read
///        into the result (NaN or infinity there has no effect).
/// \param mask the forward's mask (expression, bool_matrix, drop_mask or additive_mask).
/// \param dx Lq x Lk output (overwritten); may be the storage of y or of dy.
/// \param options the forward's options (scale, slice, offsets, tiles, threads; softcap and
///        score_mod must be off; sink_logit only checked: dx does not depend on it).
template <class Variant, class DY, class DDY, class Mask,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
void masked_softmax_backward(Variant, const Eigen::MatrixBase<DY>& y,
                             const Eigen::MatrixBase<DDY>& dy, const Mask& mask,
                             Eigen::Ref<row_matrix<typename DY::Scalar>> dx,
                             const softmax_options& options = {}) {
  detail::masked_softmax_backward_entry<false, Variant>("masked_softmax_backward", y, dy, mask, dx,
                                                        nullptr, nullptr, options);
}

/// \brief Same, with the learned sink logit of options.sink_logit (entry options.slice.h):
/// also writes, per row q, d_sink[q] = dL/ds from that row = -p_sink * sum_kept(y * dy) with
/// p_sink = 1 - sum_kept(y) (0 for a fully masked row); d_sink.sum() is dL/ds_h of the call.
template <class Variant, class DY, class DDY, class Mask,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
void masked_softmax_backward(Variant, const Eigen::MatrixBase<DY>& y,
                             const Eigen::MatrixBase<DDY>& dy, const Mask& mask,
                             Eigen::Ref<row_matrix<typename DY::Scalar>> dx,
                             detail::lse_ref<typename DY::Scalar> d_sink,
                             const softmax_options& options = {}) {
  const Index n = d_sink.size();
  detail::masked_softmax_backward_entry<false, Variant>("masked_softmax_backward", y, dy, mask, dx,
                                                        d_sink.data(), &n, options);
}

/// \brief Gradient of masked_softmax returned by value.
template <class Variant, class DY, class DDY, class Mask,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
row_matrix<typename DY::Scalar> masked_softmax_backward(Variant variant,
                                                        const Eigen::MatrixBase<DY>& y,
                                                        const Eigen::MatrixBase<DDY>& dy,
                                                        const Mask& mask,
                                                        const softmax_options& options = {}) {
  row_matrix<typename DY::Scalar> dx(y.rows(), y.cols());
  masked_softmax_backward(variant, y, dy, mask, dx, options);
  return dx;
}

/// \brief Gradient of masked_log_softmax with respect to the scores, written to \p dx:
/// dx_j = s * (dy_j - exp(y_j) * sum_kept(dy)) at kept keys, exactly 0 at masked keys, in fully
/// masked rows and in rows whose kept log-probabilities are all -infinity (the forward writes
/// them like empty rows). \p y is the forward's output (log-probabilities); other arguments as
/// masked_softmax_backward.
template <class Variant, class DY, class DDY, class Mask,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
void masked_log_softmax_backward(Variant, const Eigen::MatrixBase<DY>& y_log,
                                 const Eigen::MatrixBase<DDY>& dy, const Mask& mask,
                                 Eigen::Ref<row_matrix<typename DY::Scalar>> dx,
                                 const softmax_options& options = {}) {
  detail::masked_softmax_backward_entry<true, Variant>("masked_log_softmax_backward", y_log, dy,
                                                       mask, dx, nullptr, nullptr, options);
}

/// \brief Same, with the sink logit: d_sink[q] = -p_sink * sum_kept(dy), p_sink =
/// 1 - sum_kept(exp(y_log)); d_sink.sum() is dL/ds_h of the call.
template <class Variant, class DY, class DDY, class Mask,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
void masked_log_softmax_backward(Variant, const Eigen::MatrixBase<DY>& y_log,
                                 const Eigen::MatrixBase<DDY>& dy, const Mask& mask,
                                 Eigen::Ref<row_matrix<typename DY::Scalar>> dx,
                                 detail::lse_ref<typename DY::Scalar> d_sink,
                                 const softmax_options& options = {}) {
  const Index n = d_sink.size();
  detail::masked_softmax_backward_entry<true, Variant>("masked_log_softmax_backward", y_log, dy,
                                                       mask, dx, d_sink.data(), &n, options);
}

/// \brief Gradient of masked_log_softmax returned by value.
template <class Variant, class DY, class DDY, class Mask,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
row_matrix<typename DY::Scalar> masked_log_softmax_backward(Variant variant,
                                                            const Eigen::MatrixBase<DY>& y_log,
                                                            const Eigen::MatrixBase<DDY>& dy,
                                                            const Mask& mask,
                                                            const softmax_options& options = {}) {
  row_matrix<typename DY::Scalar> dx(y_log.rows(), y_log.cols());
  masked_log_softmax_backward(variant, y_log, dy, mask, dx, options);
  return dx;
}

// The default variant, emask::tiled: the same argument lists without the tag.

/// \brief masked_softmax_backward with the default variant (emask::tiled).
template <class DY, class DDY, class Mask>
void masked_softmax_backward(const Eigen::MatrixBase<DY>& y, const Eigen::MatrixBase<DDY>& dy,
                             const Mask& mask, Eigen::Ref<row_matrix<typename DY::Scalar>> dx,
                             const softmax_options& options = {}) {
  masked_softmax_backward(tiled, y, dy, mask, dx, options);
}

/// \brief masked_softmax_backward with the sink gradient, default variant (emask::tiled).
template <class DY, class DDY, class Mask>
void masked_softmax_backward(const Eigen::MatrixBase<DY>& y, const Eigen::MatrixBase<DDY>& dy,
                             const Mask& mask, Eigen::Ref<row_matrix<typename DY::Scalar>> dx,
                             detail::lse_ref<typename DY::Scalar> d_sink,
                             const softmax_options& options = {}) {
  masked_softmax_backward(tiled, y, dy, mask, dx, d_sink, options);
}

/// \brief masked_softmax_backward by value, default variant (emask::tiled).
template <class DY, class DDY, class Mask>
row_matrix<typename DY::Scalar> masked_softmax_backward(const Eigen::MatrixBase<DY>& y,
                                                        const Eigen::MatrixBase<DDY>& dy,
                                                        const Mask& mask,
                                                        const softmax_options& options = {}) {
  return masked_softmax_backward(tiled, y, dy, mask, options);
}

/// \brief masked_log_softmax_backward with the default variant (emask::tiled).
template <class DY, class DDY, class Mask>
void masked_log_softmax_backward(const Eigen::MatrixBase<DY>& y_log,
                                 const Eigen::MatrixBase<DDY>& dy, const Mask& mask,
                                 Eigen::Ref<row_matrix<typename DY::Scalar>> dx,
                                 const softmax_options& options = {}) {
  masked_log_softmax_backward(tiled, y_log, dy, mask, dx, options);
}

/// \brief masked_log_softmax_backward with the sink gradient, default variant (emask::tiled).
template <class DY, class DDY, class Mask>
void masked_log_softmax_backward(const Eigen::MatrixBase<DY>& y_log,
                                 const Eigen::MatrixBase<DDY>& dy, const Mask& mask,
                                 Eigen::Ref<row_matrix<typename DY::Scalar>> dx,
                                 detail::lse_ref<typename DY::Scalar> d_sink,
                                 const softmax_options& options = {}) {
  masked_log_softmax_backward(tiled, y_log, dy, mask, dx, d_sink, options);
}

/// \brief masked_log_softmax_backward by value, default variant (emask::tiled).
template <class DY, class DDY, class Mask>
row_matrix<typename DY::Scalar> masked_log_softmax_backward(const Eigen::MatrixBase<DY>& y_log,
                                                            const Eigen::MatrixBase<DDY>& dy,
                                                            const Mask& mask,
                                                            const softmax_options& options = {}) {
  return masked_log_softmax_backward(tiled, y_log, dy, mask, options);
}

EMASK_NAMESPACE_END
