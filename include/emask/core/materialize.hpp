/// \file
/// \brief Materialization of a mask expression for one (batch, head) slice: a dense keep
/// array, or an additive bias. Bit-packed and block forms are in bits.hpp and block_mask.hpp.
#pragma once

#include <limits>

#include "emask/core/mask.hpp"
#include "emask/core/polarity.hpp"

EMASK_NAMESPACE_BEGIN

namespace detail {
inline void check_slice(const char* where, Index q_len, Index k_len, Index b, Index h) {
  if (q_len < 0) fail_argument(where, "q_len", q_len, ">= 0");
  if (k_len < 0) fail_argument(where, "k_len", k_len, ">= 0");
  if (b < 0) fail_argument(where, "b", b, ">= 0");
  if (h < 0) fail_argument(where, "h", h, ">= 0");
}
inline region slice_region(Index q_len, Index k_len, Index b, Index h) {
  return region{b, b + 1, h, h + 1, 0, q_len, 0, k_len};
}

/// Calls f(begin, end) for every maximal run of kept keys of row q inside [k0, k1), using the
/// key span: an exact span is one run, an inexact one is refined with keep().
template <class Mask, class F>
void for_each_kept_run_in(const Mask& m, Index b, Index h, Index q, Index k0, Index k1, F&& f) {
  if (k0 >= k1) return;
  const key_span s = m.keys(b, h, q, k0, k1);
  if (s.empty()) return;
  if (s.exact) {
    f(s.begin, s.end);
    return;
  }
  Index k = s.begin;
  while (k < s.end) {
    while (k < s.end && !m.keep(b, h, q, k)) ++k;
    const Index start = k;
    while (k < s.end && m.keep(b, h, q, k)) ++k;
    if (k > start) f(start, k);
  }
}

/// Calls f(q, begin, end) for every maximal run of kept keys of every row.
template <class Mask, class F>
void for_each_kept_run(const Mask& m, Index q_len, Index k_len, Index b, Index h, F&& f) {
  for (Index q = 0; q < q_len; ++q)
    for_each_kept_run_in(m, b, h, q, 0, k_len, [&](Index begin, Index end) { f(q, begin, end); });
}

/// materialize() for the public function \p where (render, the image writers, ...), so that
/// an error names the function the user called.
template <class Mask>
bool_matrix materialize_keep(const char* where, const Mask& mask, Index q_len, Index k_len, Index b,
                             Index h) {
  detail::check_slice(where, q_len, k_len, b, h);
  mask.check(detail::slice_region(q_len, k_len, b, h), where);
  bool_matrix out = bool_matrix::Constant(q_len, k_len, false);
  detail::for_each_kept_run(mask, q_len, k_len, b, h, [&](Index q, Index begin, Index end) {
    out.row(q).segment(begin, end - begin).setConstant(true);
  });
  return out;
}
}  // namespace detail

/// \brief The [q_len, k_len] keep array of slice (b, h) of \p mask: true = keep.
template <class Mask, std::enable_if_t<is_mask_v<Mask>, int> = 0>
bool_matrix materialize(const Mask& mask, Index q_len, Index k_len, Index b = 0, Index h = 0) {
  return detail::materialize_keep("materialize", mask, q_len, k_len, b, h);
}

/// \brief The [q_len, k_len] additive bias of slice (b, h): 0 where kept, \p fill where masked.
/// The default fill is -infinity; pass a finite value (e.g. lowest()) for code built with
/// -ffast-math or for frameworks that use finfo.min.
template <class Scalar, class Mask, std::enable_if_t<is_mask_v<Mask>, int> = 0>
additive_mask<Scalar> materialize_additive(const Mask& mask, Index q_len, Index k_len, Index b = 0,
                                           Index h = 0,
                                           Scalar fill = -std::numeric_limits<Scalar>::infinity()) {
  static_assert(!std::is_integral<Scalar>::value,
                "emask::materialize_additive: use float or double as the bias scalar");
  detail::check_slice("materialize_additive", q_len, k_len, b, h);
  mask.check(detail::slice_region(q_len, k_len, b, h), "materialize_additive");
  row_matrix<Scalar> bias = row_matrix<Scalar>::Constant(q_len, k_len, fill);
  detail::for_each_kept_run(mask, q_len, k_len, b, h, [&](Index q, Index begin, Index end) {
    bias.row(q).segment(begin, end - begin).setZero();
  });
  return additive_mask<Scalar>(std::move(bias), fill);
}

/// \brief The drop-mask (true = ignore) of slice (b, h), for APIs in PyTorch's convention.
template <class Mask, std::enable_if_t<is_mask_v<Mask>, int> = 0>
drop_mask materialize_drop(const Mask& mask, Index q_len, Index k_len, Index b = 0, Index h = 0) {
  return to_drop(detail::materialize_keep("materialize_drop", mask, q_len, k_len, b, h));
}

EMASK_NAMESPACE_END
