/// \file
/// \brief Masked softmax and masked log-softmax over the rows of a row-major score matrix.
///
/// Row q of the result is the softmax of `scale * scores.row(q)` (then options.softcap and
/// options.score_mod, when set) over the keys the mask keeps for query q; masked keys are exactly 0
/// (log-softmax: -infinity). A fully masked row is all zeros (log-softmax: -infinity) with a
/// log-sum-exp of -infinity, never NaN. Masked entries are decided from the mask itself, never from
/// -infinity arithmetic, so the kernels stay correct under -ffast-math, and a NaN or infinity at a
/// masked position has no effect. A NaN at a kept position makes the kept entries of its row NaN.
///
/// Three variants compute the same result, chosen by a tag as first argument (a call compiles
/// only the one it runs; emask/kernels/variant.hpp):
/// - emask::tiled (the default): tile answers over square tiles: empty tiles are neither read
///   nor tested (written as zeros), full tiles are read without a mask test, partial tiles use
///   keys() and keep();
/// - emask::fused: per row, the mask's key span; exact spans need no per-element test;
/// - reference::naive (emask/reference/softmax.hpp): materialize the additive bias of the slice
///   (O(Lq * Lk) extra), add, softmax.
/// See docs/softmax.md.
#pragma once

#include <cmath>
#include <type_traits>
#include <vector>

#include "emask/core/bits.hpp"
#include "emask/core/polarity.hpp"
#include "emask/core/tile_grid.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/detail/softmax_row.hpp"
#include "emask/detail/threads.hpp"
#include "emask/kernels/kernel_options.hpp"
#include "emask/kernels/variant.hpp"
#include "emask/masks/dense.hpp"

#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

EMASK_NAMESPACE_BEGIN

/// \brief Options of masked_softmax and masked_log_softmax: scale (unset: 1), slice, offsets
/// and threads (kernel_options), and the tile and streaming settings.
struct softmax_options : kernel_options {
  /// Query rows per tile of the tiled variant, >= 1 (the same field as attention's).
  Index tile_q = 128;
  /// Keys per tile of the tiled variant, >= 1.
  Index tile_k = 128;
  /// fused and tiled write the masked part of outputs of at least this many bytes with
  /// non-temporal (streaming) stores, which bypass the cache: faster when the output does not
  /// fit in cache and is not read back at once. 0: always; emask::unbounded: never.
  Index stream_bytes = Index(4) << 20;
};

namespace detail {

/// Scores as a row-major view with unit inner stride: bound without a copy to row-major
/// storage (Matrix, Map, Ref, blocks); any other expression is evaluated once.
template <class S>
using score_ref = Eigen::Ref<const row_matrix<S>, 0, Eigen::OuterStride<>>;

template <class S>
using lse_ref = Eigen::Ref<Eigen::Matrix<S, Eigen::Dynamic, 1>>;

template <class S>
void check_softmax_scalar() {
  static_assert(std::is_same<S, float>::value || std::is_same<S, double>::value,
                "emask::masked_softmax: use float or double scores (cast integer or half-precision "
                "scores with .cast<float>() first)");
}

inline void check_softmax_args(const char* where, Index q_len, Index k_len, Index out_rows,
                               Index out_cols, const Index* lse_size, const softmax_options& o) {
  if (out_rows != q_len || out_cols != k_len)
    fail_argument(where, "out", concat(out_rows, " x ", out_cols), q_len, " x ", k_len,
                  " (the shape of scores)");
  if (lse_size && *lse_size != q_len)
    fail_argument(where, "lse", concat(*lse_size, " entries"), q_len,
                  " entries (one per row of scores)");
  check_kernel_options(where, o, "1", q_len, k_len);
  if (o.tile_q < 1) fail_argument(where, "options.tile_q", o.tile_q, ">= 1");
  if (o.tile_k < 1) fail_argument(where, "options.tile_k", o.tile_k, ">= 1");
  if (o.stream_bytes < 0) fail_argument(where, "options.stream_bytes", o.stream_bytes, ">= 0");
}

/// Below this many score entries the kernels stay on the calling thread.
inline constexpr Index softmax_parallel_threshold = Index(1) << 15;

/// Additive bias: every variant reads the bias (it carries no structure to exploit).
///
/// The three kernels below allocate per-thread buffers inside their parallel region; each
/// allocation and each row runs under region_errors, so a failure (std::bad_alloc) reaches the
/// caller after the region instead of terminating the process. No exception may leave a
/// worksharing loop's body either, hence the guard around each row, not around the loop.
template <bool Log, class S, class B>
void softmax_additive(const score_ref<S>& x, const row_matrix<B>& bias,
                      Eigen::Ref<row_matrix<S>> out, S* lse, S scale, int threads) {
  const Index q_len = x.rows(), k_len = x.cols();
  region_errors errors;
#if EMASK_HAS_OPENMP
#pragma omp parallel if (q_len * k_len >= softmax_parallel_threshold) num_threads(threads)
#else
  (void)threads;
#endif
  {
    std::vector<S> t, f;
    row_plan<S> plan;
    const bool ready = errors.run([&] {
      t.resize(static_cast<std::size_t>(k_len));
      f.resize(static_cast<std::size_t>(k_len));
    });
#if EMASK_HAS_OPENMP
#pragma omp for schedule(static, 16) nowait
#endif
    for (Index q = 0; q < q_len; ++q) {
      if (!ready) continue;
      errors.run([&] {
        additive_row<Log>(x.data() + q * x.outerStride(), bias.data() + q * bias.cols(),
                          out.data() + q * out.outerStride(), k_len, scale, t.data(), f.data(),
                          plan, lse ? lse + q : nullptr);
      });
    }
  }
  errors.rethrow();
}

template <bool Log, class S>
void softmax_fused(const score_ref<S>& x, const mask_tiles<S>& mask, Eigen::Ref<row_matrix<S>> out,
                   S* lse, S scale, Index b, Index h, bool stream, int threads) {
  const Index q_len = x.rows(), k_len = x.cols();
  region_errors errors;
#if EMASK_HAS_OPENMP
#pragma omp parallel if (q_len * k_len >= softmax_parallel_threshold) num_threads(threads)
#else
  (void)threads;
#endif
  {
    std::vector<S> v, f;
    row_plan<S> plan;
    const bool ready = errors.run([&] {
      v.resize(static_cast<std::size_t>(k_len));
      f.resize(static_cast<std::size_t>(k_len));
    });
#if EMASK_HAS_OPENMP
#pragma omp for schedule(static, 16) nowait
#endif
    for (Index q = 0; q < q_len; ++q) {
      if (!ready) continue;
      errors.run([&] {
        const S* xr = x.data() + q * x.outerStride();
        S* yr = out.data() + q * out.outerStride();
        plan_masked_row(plan, mask, b, h, q, xr, k_len, scale, v.data(), f.data());
        finish_row<Log>(xr, yr, k_len, plan, v.data(), f.data(), scale, lse ? lse + q : nullptr,
                        stream);
      });
    }
  }
  errors.rethrow();
}

template <bool Log, class S>
void softmax_tiled(const score_ref<S>& x, const mask_tiles<S>& mask, Eigen::Ref<row_matrix<S>> out,
                   S* lse, S scale, Index b, Index h, const tile_grid& grid, bool stream,
                   int threads) {
  const Index k_len = x.cols();
  const Index q_tiles = grid.q_tiles(), k_tiles = grid.k_tiles();
  region_errors errors;
#if EMASK_HAS_OPENMP
#pragma omp parallel if (x.rows() * k_len >= softmax_parallel_threshold) num_threads(threads)
#else
  (void)threads;
#endif
  {
    std::vector<S> v, f;  // sized at the first inexact key span
    std::vector<tile_state> states;
    row_plan<S> plan;
    const bool ready = errors.run([&] { states.resize(static_cast<std::size_t>(k_tiles)); });
#if EMASK_HAS_OPENMP
#pragma omp for schedule(static, 1) nowait
#endif
    for (Index qt = 0; qt < q_tiles; ++qt) {
      if (!ready) continue;
      errors.run([&] {
        const Index q0 = grid.q_begin(qt), q1 = grid.q_end(qt);
        for (Index kt = 0; kt < k_tiles; ++kt) {
          const Index k0 = grid.k_begin(kt), k1 = grid.k_end(kt);
          states[static_cast<std::size_t>(kt)] = mask.tile(b, h, q0, q1, k0, k1);
        }
        for (Index q = q0; q < q1; ++q) {
          const S* xr = x.data() + q * x.outerStride();
          S* yr = out.data() + q * out.outerStride();
          plan.reset();
          for (Index kt = 0; kt < k_tiles; ++kt) {
            const tile_state st = states[static_cast<std::size_t>(kt)];
            if (st == tile_state::empty) continue;
            const Index k0 = grid.k_begin(kt), k1 = grid.k_end(kt);
            if (st == tile_state::full) {
              plan.add_plain(k0, k1);
              continue;
            }
            const key_span s = mask.keys(b, h, q, k0, k1);
            if (s.empty()) continue;
            if (s.exact) {
              plan.add_plain(s.begin, s.end);
            } else {
              if (v.empty()) {
                v.resize(static_cast<std::size_t>(k_len));
                f.resize(static_cast<std::size_t>(k_len));
              }
              add_masked_run(plan, mask, b, h, q, xr, s.begin, s.end, scale, v.data(), f.data());
            }
          }
          finish_row<Log>(xr, yr, k_len, plan, v.data(), f.data(), scale, lse ? lse + q : nullptr,
                          stream);
        }
      });
    }
  }
  errors.rethrow();
}

/// Variants other than fused and tiled (reference::naive, in emask/reference/softmax.hpp).
template <class V>
struct softmax_kernel {
  static_assert(!std::is_same<V, reference::naive_t>::value,
                "emask::masked_softmax: include <emask/reference/softmax.hpp> for "
                "reference::naive");
  static_assert(std::is_same<V, reference::naive_t>::value,
                "emask::masked_softmax: the variant is emask::tiled, emask::fused or "
                "emask::reference::naive");
};

/// The one entry point behind every public overload.
template <bool Log, class V, class S, class Mask>
void masked_softmax_impl(const char* where, const score_ref<S>& x, const Mask& mask,
                         Eigen::Ref<row_matrix<S>> out, S* lse, const Index* lse_size,
                         const softmax_options& o) {
  check_softmax_scalar<S>();
  const Index q_len = x.rows(), k_len = x.cols();
  check_softmax_args(where, q_len, k_len, out.rows(), out.cols(), lse_size, o);
  const S scale = static_cast<S>(o.scale.value_or(1.0));
  if (!is_finite(scale))  // finite as double is not finite as float (1e39)
    fail_argument(where, "options.scale", *o.scale, "a value finite in the kernel's scalar type");
  const bool stream = q_len * k_len * static_cast<Index>(sizeof(S)) >= o.stream_bytes;

  if (!o.sink_logit.empty()) {
    // The kernel without the sink, then the sink folded into each row and its lse.
    const S s = sink_logits<S>(where, o, o.slice.h, 1)[0];
    lse_vector<S> own;
    S* l = lse;
    const Index n = q_len;
    if (!l) {
      own.resize(q_len);
      l = own.data();
    }
    softmax_options plain = o;
    plain.sink_logit.clear();
    masked_softmax_impl<Log, V>(where, x, mask, out, l, &n, plain);
    for (Index q = 0; q < q_len; ++q) {
      S* y = out.data() + q * out.outerStride();
      const S before = l[q];
      if (is_neg_inf(before)) {  // nothing kept: the row is already zeros (-inf)
        l[q] = s;
        continue;
      }
      if (is_nan(before)) continue;  // a NaN row stays as it is
      const S mx = before < s ? s : before;
      const S after = mx + std::log(std::exp(before - mx) + std::exp(s - mx));
      l[q] = after;
      if constexpr (Log) {
        const S delta = after - before;
        for (Index k = 0; k < k_len; ++k)
          if (!is_neg_inf(y[k])) y[k] -= delta;
      } else {
        const S factor = std::exp(before - after);
        for (Index k = 0; k < k_len; ++k) y[k] *= factor;
      }
    }
    return;
  }
  if (o.softcap > 0 || !o.score_mod.empty()) {
    // One pass that writes the transformed scores (scale, softcap, modifier), then the plain
    // kernel on them: the modifier sees every score of the row, masked or not.
    const Index b = o.slice.b, h = o.slice.h;
    o.score_mod.check(
        region{b, b + 1, h, h + 1, o.q_offset, o.q_offset + q_len, o.k_offset, o.k_offset + k_len},
        where);
    const S cap = static_cast<S>(o.softcap);
    const bool capped = o.softcap > 0;
    if (capped && !(is_finite(cap) && cap > S(0)))
      fail_argument(where, "options.softcap", o.softcap,
                    "a value >= 0 that is finite and nonzero in the kernel's scalar type");
    const S pre = capped ? static_cast<S>(static_cast<double>(scale) / o.softcap) : scale;
    if (!is_finite(pre))
      fail_argument(where, "options.scale / options.softcap",
                    static_cast<double>(scale) / o.softcap,
                    "a value finite in the kernel's scalar type");
    row_matrix<S> t(q_len, k_len);
    if (capped)
      t.array() = cap * (x.array() * pre).tanh();
    else
      t.array() = x.array() * pre;
    o.score_mod.apply(t.data(), 1, k_len, q_len, k_len, b, h, o.q_offset, o.k_offset);
    softmax_options plain = o;
    plain.scale = 1.0;
    plain.softcap = 0;
    plain.score_mod = {};
    masked_softmax_impl<Log, V>(where, score_ref<S>(t), mask, out, lse, lse_size, plain);
    return;
  }

  if constexpr (is_additive_mask<Mask>::value) {
    if (mask.rows() != q_len || mask.cols() != k_len)
      fail_argument(where, "mask", concat(mask.rows(), " x ", mask.cols(), " additive mask"), q_len,
                    " x ", k_len, " (the shape of scores)");
    if (o.q_offset != 0 || o.k_offset != 0)
      fail_argument(where, "options.q_offset, options.k_offset",
                    concat(o.q_offset, ", ", o.k_offset),
                    "0, 0 with an additive_mask (it has no positions to shift)");
    softmax_additive<Log>(x, mask.matrix(), out, lse, scale, thread_count(o.threads));
  } else if constexpr (std::is_same<Mask, bool_matrix>::value) {
    if (mask.rows() != q_len || mask.cols() != k_len)
      fail_argument(where, "mask", concat(mask.rows(), " x ", mask.cols(), " bool_matrix"), q_len,
                    " x ", k_len, " (the shape of scores)");
    masked_softmax_impl<Log, V>(where, x, as_mask(mask), out, lse, lse_size, o);
  } else if constexpr (std::is_same<Mask, drop_mask>::value) {
    if (mask.rows() != q_len || mask.cols() != k_len)
      fail_argument(where, "mask", concat(mask.rows(), " x ", mask.cols(), " drop_mask"), q_len,
                    " x ", k_len, " (the shape of scores)");
    const bool_matrix keep = to_keep(mask);
    masked_softmax_impl<Log, V>(where, x, as_mask(keep), out, lse, lse_size, o);
  } else {
    static_assert(is_mask_v<Mask>,
                  "emask::masked_softmax: pass a mask expression (causal, key_padding, a & b, "
                  "bit_mask, ...), a bool_matrix keep-mask, a drop_mask or an additive_mask<S>");
    const Index b = o.slice.b, h = o.slice.h, qo = o.q_offset, ko = o.k_offset;
    mask.check(region{b, b + 1, h, h + 1, qo, qo + q_len, ko, ko + k_len}, where);
    const int threads = thread_count(o.threads);
    if constexpr (std::is_same<V, fused_t>::value) {
      softmax_fused<Log>(x, mask_tiles<S>(mask, qo, ko), out, lse, scale, b, h, stream, threads);
    } else if constexpr (std::is_same<V, tiled_t>::value) {
      softmax_tiled<Log>(x, mask_tiles<S>(mask, qo, ko), out, lse, scale, b, h,
                         tile_grid(q_len, k_len, o.tile_q, o.tile_k), stream, threads);
    } else {
      softmax_kernel<V>::template run<Log>(x, mask.offset(qo, ko), out, lse, scale, b, h, threads);
    }
  }
}

template <bool Log, class V, class Derived, class Mask>
void masked_softmax_entry(const char* where, const Eigen::MatrixBase<Derived>& scores,
                          const Mask& mask, Eigen::Ref<row_matrix<typename Derived::Scalar>> out,
                          typename Derived::Scalar* lse, const Index* lse_size,
                          const softmax_options& o) {
  using S = typename Derived::Scalar;
  check_softmax_scalar<S>();
  const score_ref<S> x(scores.derived());
  masked_softmax_impl<Log, V>(where, x, mask, out, lse, lse_size, o);
}

}  // namespace detail

/// \brief Masked softmax of the rows of `options.scale * scores`, written to \p out, with the
/// variant \p variant (emask::tiled, emask::fused, or reference::naive from
/// emask/reference/softmax.hpp); every variant gives the same result up to rounding.
///
/// \tparam Derived any dense float or double expression; row-major storage (Matrix, Map,
///         Ref, blocks) is read in place, anything else is evaluated once into a temporary.
/// \param mask a mask expression evaluated for slice (options.b, options.h) at positions
///        [0, Lq) x [0, Lk) (shift it with mask.offset(q0, k0) for tiles, shards, cache steps);
///        or a bool_matrix keep-mask of shape Lq x Lk; or an additive_mask of shape Lq x Lk,
///        whose bias is added and whose entries <= lowest() are masked.
/// \param scores Lq x Lk scores (any dense float or double expression).
/// \param out Lq x Lk output; may be the storage of \p scores itself (in place).
/// \param options scale, tile, slice (b, h), streaming threshold (softmax_options).
/// \pre out has the shape of scores; options.scale finite; options.tile_q, options.tile_k >= 1.
/// Masked entries are 0, fully masked rows are all 0.
template <class Variant, class Derived, class Mask,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
void masked_softmax(Variant, const Eigen::MatrixBase<Derived>& scores, const Mask& mask,
                    Eigen::Ref<row_matrix<typename Derived::Scalar>> out,
                    const softmax_options& options = {}) {
  detail::masked_softmax_entry<false, Variant>("masked_softmax", scores, mask, out, nullptr,
                                               nullptr, options);
}

/// \brief Same, and writes the log-sum-exp of every row (in units of scale * scores) to
/// \p lse (Lq entries; -infinity for a fully masked row), for merging partial results.
template <class Variant, class Derived, class Mask,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
void masked_softmax(Variant, const Eigen::MatrixBase<Derived>& scores, const Mask& mask,
                    Eigen::Ref<row_matrix<typename Derived::Scalar>> out,
                    detail::lse_ref<typename Derived::Scalar> lse,
                    const softmax_options& options = {}) {
  const Index n = lse.size();
  detail::masked_softmax_entry<false, Variant>("masked_softmax", scores, mask, out, lse.data(), &n,
                                               options);
}

/// \brief Masked softmax returned by value.
template <class Variant, class Derived, class Mask,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
row_matrix<typename Derived::Scalar> masked_softmax(Variant variant,
                                                    const Eigen::MatrixBase<Derived>& scores,
                                                    const Mask& mask,
                                                    const softmax_options& options = {}) {
  row_matrix<typename Derived::Scalar> out(scores.rows(), scores.cols());
  masked_softmax(variant, scores, mask, out, options);
  return out;
}

/// \brief Masked log-softmax of the rows of `options.scale * scores`, written to \p out:
/// kept entries are `scale * score - lse(row)`, masked entries and fully masked rows are
/// -infinity (a stored constant; never computed). Arguments as masked_softmax.
template <class Variant, class Derived, class Mask,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
void masked_log_softmax(Variant, const Eigen::MatrixBase<Derived>& scores, const Mask& mask,
                        Eigen::Ref<row_matrix<typename Derived::Scalar>> out,
                        const softmax_options& options = {}) {
  detail::masked_softmax_entry<true, Variant>("masked_log_softmax", scores, mask, out, nullptr,
                                              nullptr, options);
}

/// \brief Same, and writes the log-sum-exp of every row to \p lse (Lq entries).
template <class Variant, class Derived, class Mask,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
void masked_log_softmax(Variant, const Eigen::MatrixBase<Derived>& scores, const Mask& mask,
                        Eigen::Ref<row_matrix<typename Derived::Scalar>> out,
                        detail::lse_ref<typename Derived::Scalar> lse,
                        const softmax_options& options = {}) {
  const Index n = lse.size();
  detail::masked_softmax_entry<true, Variant>("masked_log_softmax", scores, mask, out, lse.data(),
                                              &n, options);
}

/// \brief Masked log-softmax returned by value.
template <class Variant, class Derived, class Mask,
          std::enable_if_t<is_kernel_variant_v<Variant>, int> = 0>
row_matrix<typename Derived::Scalar> masked_log_softmax(Variant variant,
                                                        const Eigen::MatrixBase<Derived>& scores,
                                                        const Mask& mask,
                                                        const softmax_options& options = {}) {
  row_matrix<typename Derived::Scalar> out(scores.rows(), scores.cols());
  masked_log_softmax(variant, scores, mask, out, options);
  return out;
}

// The default variant, emask::tiled: the same argument lists without the tag.

/// \brief Masked softmax with the default variant (emask::tiled).
template <class Derived, class Mask>
void masked_softmax(const Eigen::MatrixBase<Derived>& scores, const Mask& mask,
                    Eigen::Ref<row_matrix<typename Derived::Scalar>> out,
                    const softmax_options& options = {}) {
  masked_softmax(tiled, scores, mask, out, options);
}

/// \brief Masked softmax and log-sum-exp with the default variant (emask::tiled).
template <class Derived, class Mask>
void masked_softmax(const Eigen::MatrixBase<Derived>& scores, const Mask& mask,
                    Eigen::Ref<row_matrix<typename Derived::Scalar>> out,
                    detail::lse_ref<typename Derived::Scalar> lse,
                    const softmax_options& options = {}) {
  masked_softmax(tiled, scores, mask, out, lse, options);
}

/// \brief Masked softmax by value with the default variant (emask::tiled).
template <class Derived, class Mask>
row_matrix<typename Derived::Scalar> masked_softmax(const Eigen::MatrixBase<Derived>& scores,
                                                    const Mask& mask,
                                                    const softmax_options& options = {}) {
  return masked_softmax(tiled, scores, mask, options);
}

/// \brief Masked log-softmax with the default variant (emask::tiled).
template <class Derived, class Mask>
void masked_log_softmax(const Eigen::MatrixBase<Derived>& scores, const Mask& mask,
                        Eigen::Ref<row_matrix<typename Derived::Scalar>> out,
                        const softmax_options& options = {}) {
  masked_log_softmax(tiled, scores, mask, out, options);
}

/// \brief Masked log-softmax and log-sum-exp with the default variant (emask::tiled).
template <class Derived, class Mask>
void masked_log_softmax(const Eigen::MatrixBase<Derived>& scores, const Mask& mask,
                        Eigen::Ref<row_matrix<typename Derived::Scalar>> out,
                        detail::lse_ref<typename Derived::Scalar> lse,
                        const softmax_options& options = {}) {
  masked_log_softmax(tiled, scores, mask, out, lse, options);
}

/// \brief Masked log-softmax by value with the default variant (emask::tiled).
template <class Derived, class Mask>
row_matrix<typename Derived::Scalar> masked_log_softmax(const Eigen::MatrixBase<Derived>& scores,
                                                        const Mask& mask,
                                                        const softmax_options& options = {}) {
  return masked_log_softmax(tiled, scores, mask, options);
}

EMASK_NAMESPACE_END
