// libFuzzer harness over the emask kernels: masked_softmax, masked_log_softmax (naive, fused,
// tiled) and masked_attention (naive, tiled, decode), float and double.
//
// The input bytes are decoded, in order, into: the shapes (Lq, Lk <= 48, D, Dv <= 24), offsets,
// the batch entry, the kernel options (scale, tiles, chunk), a random mask expression tree over
// the builders (tests/fuzz/random_masks.hpp), and the values: each score or Q/K element is one
// byte picking a special value (+-inf, NaN, +-1e38, denormals, 0, +-88, ...) or a small float
// built from the following bytes. An exhausted input reads as zeros, so every input is valid.
//
// Asserted (abort = finding):
// - no crash, no sanitizer report (build with -fsanitize=fuzzer,address,undefined);
// - a fully masked row is exactly zero (log-softmax: -inf) with lse = -inf;
// - a masked entry is exactly 0 (log-softmax: -inf) in a row whose kept scores are finite;
// - a row whose kept (scaled) scores are all finite has no NaN, and its probabilities sum to one
//   within 1e-3 (float) / 1e-9 (double); attention rows: the all-ones last column of V comes
//   out as 1 within the same tolerance when the row's Q, its kept K rows are moderate (|x| <=
//   1e3) and finite, no NaN appears, and every output lies within max |v| of its column (a
//   convex combination of V rows; V holds values up to 1e38, near float's largest).
//
// Build and run: bash tools/ci/fuzz.sh (or see the comment there).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include <emask/kernels/attention.hpp>
#include <emask/kernels/softmax.hpp>
#include "../kernel_variants.hpp"

#include "byte_source.hpp"
#include "random_masks.hpp"

namespace {

using emask::Index;
using emask::row_matrix;
using emask_fuzz::byte_source;
using emask_fuzz::special_value;

[[noreturn]] void finding(const char* what, int variant, Index row, double a, double b) {
  std::fprintf(stderr, "FINDING: %s (variant %d, row %ld): %.17g %.17g\n", what, variant,
               static_cast<long>(row), a, b);
  std::abort();
}

bool is_neg_inf(double x) { return x < 0 && std::isinf(x); }

template <class S>
void fuzz_softmax(const emask_rel::dyn_mask& mask, const emask::bool_matrix& keep,
                  const row_matrix<double>& xd, double scale, Index tile, Index b) {
  const row_matrix<S> x = xd.cast<S>();
  const Index lq = x.rows(), lk = x.cols();
  row_matrix<S> out(lq, lk);
  Eigen::Matrix<S, Eigen::Dynamic, 1> lse(lq);
  const double tol = sizeof(S) == 4 ? 1e-3 : 1e-9;
  // Rows whose kept scores, scaled in S, are finite.
  std::vector<char> finite(static_cast<std::size_t>(lq), 1), empty(static_cast<std::size_t>(lq), 1);
  for (Index i = 0; i < lq; ++i)
    for (Index j = 0; j < lk; ++j)
      if (keep(i, j)) {
        empty[static_cast<std::size_t>(i)] = 0;
        const S t = static_cast<S>(scale) * x(i, j);
        if (!std::isfinite(t)) finite[static_cast<std::size_t>(i)] = 0;
      }
  // Variant agreement: a row whose kept scaled scores are each moderate (|s| <= 50) or certainly
  // -inf must come out the same from every variant (within tol); all -inf: zeros, lse -inf.
  enum row_kind : char { other, comparable, all_neg_inf };
  std::vector<char> kind(static_cast<std::size_t>(lq), other);
  for (Index i = 0; i < lq; ++i) {
    bool any = false, moderate = false, ok = true;
    for (Index j = 0; j < lk; ++j) {
      if (!keep(i, j)) continue;
      any = true;
      const double xs = static_cast<double>(x(i, j));
      const bool neg_inf = std::isinf(xs) && ((xs < 0 && scale > 0) || (xs > 0 && scale < 0));
      const bool mod = std::isfinite(xs) && std::abs(scale * xs) <= 50;
      moderate = moderate || mod;
      ok = ok && (neg_inf || mod);
    }
    if (any && ok) kind[static_cast<std::size_t>(i)] = moderate ? comparable : all_neg_inf;
  }
  row_matrix<S> first_out(lq, lk);
  Eigen::Matrix<S, Eigen::Dynamic, 1> first_lse(lq);
  const emask_test::softmax_variant variants[] = {emask_test::softmax_variant::naive,
                                                  emask_test::softmax_variant::fused,
                                                  emask_test::softmax_variant::tiled};
  for (int log = 0; log < 2; ++log) {
    for (int v = 0; v < 3; ++v) {
      emask_test::softmax_options o;
      o.scale = scale;
      o.variant = variants[v];
      o.tile_q = o.tile_k = tile;
      o.slice.b = b;
      if (log) {
        emask_test::masked_log_softmax(x, mask, out, lse, o);
      } else {
        emask_test::masked_softmax(x, mask, out, lse, o);
      }
      for (Index i = 0; i < lq; ++i) {
        const auto r = static_cast<std::size_t>(i);
        if (empty[r]) {
          if (!is_neg_inf(lse(i))) finding("fully masked row: lse not -inf", v, i, lse(i), 0);
          for (Index j = 0; j < lk; ++j) {
            const bool ok = log ? is_neg_inf(out(i, j)) : out(i, j) == S(0);
            if (!ok) finding("fully masked row not zero", v, i, out(i, j), j);
          }
          continue;
        }
        if (!finite[r]) continue;
        double sum = 0;
        for (Index j = 0; j < lk; ++j) {
          const double y = out(i, j);
          if (!keep(i, j)) {
            if (!(log ? is_neg_inf(y) : y == 0.0)) finding("masked entry not zero", v, i, y, j);
            continue;
          }
          if (std::isnan(y)) finding("NaN in a row with finite kept scores", v, i, y, j);
          sum += log ? std::exp(y) : y;
        }
        if (!(std::abs(sum - 1.0) <= tol)) finding("probabilities do not sum to one", v, i, sum, 0);
        if (std::isnan(lse(i))) finding("NaN lse in a finite row", v, i, lse(i), 0);
      }
      // The agreement oracle, against the first variant (naive).
      for (Index i = 0; i < lq; ++i) {
        const char k = kind[static_cast<std::size_t>(i)];
        if (k == all_neg_inf) {
          if (!is_neg_inf(lse(i))) finding("all -inf kept scores: lse not -inf", v, i, lse(i), 0);
          for (Index j = 0; j < lk; ++j)
            if (!(log ? is_neg_inf(out(i, j)) : out(i, j) == S(0)))
              finding("all -inf kept scores: row not empty", v, i, out(i, j), j);
        } else if (k == comparable && v > 0) {
          for (Index j = 0; j < lk; ++j) {
            const double a = out(i, j), r = first_out(i, j);
            const bool same = (log && is_neg_inf(a) && is_neg_inf(r)) ||
                              std::abs(a - r) <= tol * (1 + std::abs(r));
            if (!same) finding("softmax variants disagree", v, i, a, r);
          }
          if (!(std::abs(static_cast<double>(lse(i) - first_lse(i))) <=
                tol * (1 + std::abs(static_cast<double>(first_lse(i))))))
            finding("softmax variants disagree on lse", v, i, lse(i), first_lse(i));
        }
      }
      if (v == 0) {
        first_out = out;
        first_lse = lse;
      }
    }
  }
}

template <class S>
void fuzz_attention(const emask_rel::dyn_mask& mask, const emask::bool_matrix& keep,
                    const row_matrix<double>& qd, const row_matrix<double>& kd,
                    const row_matrix<double>& vd, const emask_test::attention_options& base) {
  const row_matrix<S> q = qd.cast<S>(), k = kd.cast<S>(), v = vd.cast<S>();
  const Index lq = q.rows(), lk = k.rows(), dv = v.cols();
  row_matrix<S> out(lq, dv);
  Eigen::Matrix<S, Eigen::Dynamic, 1> lse(lq);
  const double tol = sizeof(S) == 4 ? 1e-3 : 1e-9;
  auto moderate = [](const auto& row) {
    for (Index c = 0; c < row.size(); ++c)
      if (!(std::abs(static_cast<double>(row(c))) <= 1e3)) return false;
    return true;
  };
  std::vector<char> tame(static_cast<std::size_t>(lq), 1), empty(static_cast<std::size_t>(lq), 1);
  std::vector<S> vmax(static_cast<std::size_t>(dv), S(0));  // max |v| per column, over all keys
  for (Index j = 0; j < lk; ++j)
    for (Index c = 0; c < dv; ++c)
      vmax[static_cast<std::size_t>(c)] =
          std::max(vmax[static_cast<std::size_t>(c)], std::abs(v(j, c)));
  for (Index i = 0; i < lq; ++i) {
    if (!moderate(q.row(i))) tame[static_cast<std::size_t>(i)] = 0;
    for (Index j = 0; j < lk; ++j)
      if (keep(i, j)) {
        empty[static_cast<std::size_t>(i)] = 0;
        if (!moderate(k.row(j))) tame[static_cast<std::size_t>(i)] = 0;
      }
  }
  // Variant agreement: rows whose kept scores are each moderate (|scale| sum |q||k| <= 50, every
  // term finite) or certainly -inf (one -inf term of the right sign, no +inf or NaN term, the
  // others small) must come out the same from every variant; all -inf: zeros, lse -inf.
  const double sc = base.scale ? *base.scale : 1.0 / std::sqrt(static_cast<double>(q.cols()));
  std::vector<char> kind(static_cast<std::size_t>(lq), 0);  // 0 other, 1 comparable, 2 all -inf
  for (Index i = 0; i < lq; ++i) {
    bool any = false, moderate = false, ok = sc > 0 && base.softcap == 0 && base.alibi.empty();
    for (Index j = 0; j < lk && ok; ++j) {
      if (!keep(i, j)) continue;
      any = true;
      double mag = 0;
      int neg = 0, bad = 0;
      for (Index c = 0; c < q.cols(); ++c) {
        const double a = static_cast<double>(q(i, c)) * sc, b = static_cast<double>(k(j, c));
        const double t = a * b;
        if (std::isnan(t) || (std::isinf(t) && t > 0) || !std::isfinite(a)) {
          ++bad;
        } else if (std::isinf(t)) {
          // A subnormal q (or q * scale) may round to 0 in S in one variant's order of
          // operations (0 * inf = NaN) and not in another's: only normal factors count as -inf.
          const S qs = static_cast<S>(q(i, c)), as = static_cast<S>(qs * static_cast<S>(sc));
          const S tiny = std::numeric_limits<S>::min();
          if (std::abs(qs) < tiny || std::abs(as) < tiny) ++bad;
          ++neg;
        } else {
          mag += std::abs(t);
        }
      }
      const bool mod = bad == 0 && neg == 0 && mag <= 50;
      const bool neg_inf = bad == 0 && neg > 0 && mag <= 1e30;
      moderate = moderate || mod;
      ok = mod || neg_inf;
    }
    if (any && ok) kind[static_cast<std::size_t>(i)] = moderate ? 1 : 2;
  }
  row_matrix<S> first_out(lq, dv);
  Eigen::Matrix<S, Eigen::Dynamic, 1> first_lse(lq);
  const emask_test::attention_variant variants[] = {emask_test::attention_variant::naive,
                                                    emask_test::attention_variant::tiled,
                                                    emask_test::attention_variant::decode};
  for (int vi = 0; vi < 3; ++vi) {
    emask_test::attention_options o = base;
    o.variant = variants[vi];
    emask_test::masked_attention(q, k, v, mask, out, lse, o);
    for (Index i = 0; i < lq; ++i) {
      const char kd = kind[static_cast<std::size_t>(i)];
      if (kd == 2) {
        if (!is_neg_inf(lse(i)))
          finding("attention: all -inf kept: lse not -inf", vi, i, lse(i), 0);
        for (Index c = 0; c < dv; ++c)
          if (!(out(i, c) == S(0)))
            finding("attention: all -inf kept: row not zero", vi, i, out(i, c), c);
      } else if (kd == 1 && vi > 0) {
        for (Index c = 0; c < dv; ++c) {
          const double bound = tol * (1 + static_cast<double>(vmax[static_cast<std::size_t>(c)]));
          if (!(std::abs(static_cast<double>(out(i, c) - first_out(i, c))) <= bound))
            finding("attention variants disagree", vi, i, out(i, c), first_out(i, c));
        }
        if (!(std::abs(static_cast<double>(lse(i) - first_lse(i))) <=
              tol * (1 + std::abs(static_cast<double>(first_lse(i))))))
          finding("attention variants disagree on lse", vi, i, lse(i), first_lse(i));
      }
    }
    if (vi == 0) {
      first_out = out;
      first_lse = lse;
    }
    for (Index i = 0; i < lq; ++i) {
      const auto r = static_cast<std::size_t>(i);
      if (empty[r]) {
        if (!is_neg_inf(lse(i)))
          finding("attention: fully masked row lse not -inf", vi, i, lse(i), 0);
        for (Index c = 0; c < dv; ++c)
          if (!(out(i, c) == S(0)))
            finding("attention: fully masked row not zero", vi, i, out(i, c), c);
        continue;
      }
      if (!tame[r]) continue;
      // The output is a convex combination of kept V rows: finite and within max |v|.
      for (Index c = 0; c < dv; ++c) {
        if (std::isnan(out(i, c)))
          finding("attention: NaN in a row with finite scores", vi, i, out(i, c), c);
        const double bound = static_cast<double>(vmax[static_cast<std::size_t>(c)]);
        if (!(std::abs(static_cast<double>(out(i, c))) <= bound * (1 + 4 * tol)))
          finding("attention: output outside [-max|v|, max|v|]", vi, i, out(i, c), bound);
      }
      // The last column of V is all ones: it carries the sum of the probabilities.
      if (!(std::abs(static_cast<double>(out(i, dv - 1)) - 1.0) <= tol))
        finding("attention: probabilities do not sum to one", vi, i, out(i, dv - 1), 0);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  byte_source s(data, size);
  const Index lq = s.between(0, 48), lk = s.between(0, 48);
  const Index q_off = s.coin(0.25) ? s.between(0, 40) : 0;
  const Index k_off = s.coin(0.25) ? s.between(0, 40) : 0;
  const Index batch = s.between(1, 3), b = s.between(0, batch - 1);
  const double scales[] = {1.0, 0.125, -1.0, 2.0, 1e-3, 0.0, 1e30, 0.5};
  const double scale = scales[s.between(0, 7)];
  const Index tile = s.between(1, 40);
  const emask_rel::extent e{batch, q_off + lq, k_off + lk};
  const emask_rel::tree t = emask_rel::make_tree(s, e, static_cast<int>(s.between(0, 3)));
  const emask::bool_matrix keep = emask_rel::reference_keep(t.ref, b, q_off, k_off, lq, lk);
  const emask::bool_matrix got = emask::materialize(t.mask.offset(q_off, k_off), lq, lk, b, 0);
  if (!(got == keep).all()) finding("mask differs from its reference predicate", -1, 0, 0, 0);
  const emask_rel::dyn_mask shifted = emask_rel::dyn_mask::wrap(t.mask.offset(q_off, k_off));

  const bool do_double = s.coin(0.3);
  row_matrix<double> x(lq, lk);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = special_value(s, true);
  fuzz_softmax<float>(shifted, keep, x, scale, tile, b);
  if (do_double) fuzz_softmax<double>(shifted, keep, x, scale, tile, b);

  const Index d = s.between(1, 24), dv = s.between(1, 24);
  row_matrix<double> q(lq, d), k(lk, d), v(lk, dv);
  for (Index i = 0; i < q.size(); ++i) q.data()[i] = special_value(s, true);
  for (Index i = 0; i < k.size(); ++i) k.data()[i] = special_value(s, true);
  // V stays finite (the naive variant multiplies P V densely: documented in attention.hpp).
  for (Index i = 0; i < v.size(); ++i) v.data()[i] = special_value(s, false);
  for (Index j = 0; j < lk; ++j) v(j, dv - 1) = 1.0;
  emask_test::attention_options o;
  if (!s.coin(0.5)) o.scale = 0.25;  // else unset: 1 / sqrt(D)
  o.softcap = s.coin(0.2) ? 30.0 : 0.0;
  o.tile_q = s.between(1, 40);
  o.tile_k = s.between(1, 40);
  o.decode_chunk = s.between(1, 64);
  o.slice = {b, 0};
  o.threads = 1;
  if (s.coin(0.5)) {
    fuzz_attention<float>(shifted, keep, q, k, v, o);
  } else {
    o.q_offset = q_off;
    o.k_offset = k_off;
    fuzz_attention<float>(t.mask, keep, q, k, v, o);
  }
  if (do_double) {
    o.q_offset = 0;
    o.k_offset = 0;
    fuzz_attention<double>(shifted, keep, q, k, v, o);
  }
  return 0;
}
