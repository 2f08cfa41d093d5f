// Tests of emask/kernels/softmax.hpp: every variant against a plain float64 reference over every
// mask builder, compositions and offsets; exact zeros at masked entries; fully masked rows;
// log-softmax and log-sum-exp consistency; NaN policy; thread-count independence; bad arguments.
//
// Tolerances (stated once, used everywhere): a probability or a log-probability p computed in
// scalar S differs from the float64 reference r by at most tol(S) * (1 + |r|), with
// tol(float) = 2e-5 and tol(double) = 1e-11. Masked entries must be exactly 0 (-infinity for
// log-softmax), not merely close.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <emask/config.hpp>  // before the private header below
#include <emask/detail/ieee.hpp>
#include <emask/emask.hpp>
#include <emask/kernels/softmax.hpp>
#include "kernel_variants.hpp"

#include "catch.hpp"

#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

using emask::bool_matrix;
using emask::Index;
using emask::row_matrix;
using emask_test::softmax_options;
using emask_test::softmax_variant;

namespace {

/// splitmix64, so the test data is the same everywhere.
class test_rng {
 public:
  explicit test_rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform(double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(next() >> 11) * 0x1.0p-53;
  }
  Index between(Index lo, Index hi) {
    return lo + static_cast<Index>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }

 private:
  std::uint64_t s_;
};

template <class S>
double tol() {
  return std::is_same<S, float>::value ? 2e-5 : 1e-11;
}

template <class S>
row_matrix<S> random_scores(Index rows, Index cols, std::uint64_t seed) {
  test_rng r(seed);
  row_matrix<S> x(rows, cols);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) x(i, j) = static_cast<S>(r.uniform(-4.0, 4.0));
  return x;
}

/// keep(b, h, q, k) of every entry, straight from the predicate (independent of materialize()).
template <class Mask>
bool_matrix keep_of(const Mask& m, Index lq, Index lk, Index b = 0, Index h = 0) {
  bool_matrix keep(lq, lk);
  for (Index q = 0; q < lq; ++q)
    for (Index k = 0; k < lk; ++k) keep(q, k) = m.keep(b, h, q, k);
  return keep;
}

/// Plain float64 reference: softmax, log-softmax and log-sum-exp of scale * x over kept keys.
struct reference {
  row_matrix<double> p, logp;
  Eigen::VectorXd lse;
  std::vector<bool> empty;
};

template <class S>
reference softmax_reference(const row_matrix<S>& xs, const bool_matrix& keep, double scale,
                            const row_matrix<double>* bias = nullptr) {
  const row_matrix<double> x = xs.template cast<double>();
  reference r;
  r.p = row_matrix<double>::Zero(x.rows(), x.cols());
  r.logp = row_matrix<double>::Zero(x.rows(), x.cols());
  r.lse = Eigen::VectorXd::Zero(x.rows());
  r.empty.assign(static_cast<std::size_t>(x.rows()), true);
  for (Index q = 0; q < x.rows(); ++q) {
    double m = -1e300;
    for (Index k = 0; k < x.cols(); ++k) {
      if (!keep(q, k)) continue;
      const double v = scale * x(q, k) + (bias ? (*bias)(q, k) : 0.0);
      m = std::max(m, v);
      r.empty[static_cast<std::size_t>(q)] = false;
    }
    if (r.empty[static_cast<std::size_t>(q)]) continue;
    double sum = 0;
    for (Index k = 0; k < x.cols(); ++k)
      if (keep(q, k)) sum += std::exp(scale * x(q, k) + (bias ? (*bias)(q, k) : 0.0) - m);
    r.lse(q) = m + std::log(sum);
    for (Index k = 0; k < x.cols(); ++k) {
      if (!keep(q, k)) continue;
      const double v = scale * x(q, k) + (bias ? (*bias)(q, k) : 0.0);
      r.logp(q, k) = v - r.lse(q);
      r.p(q, k) = std::exp(r.logp(q, k));
    }
  }
  return r;
}

// Bit-pattern tests: they stay true when the tests are built with -ffast-math (the fast_math
// CI row), where std::isinf may be folded to false.
bool is_neg_inf(double v) { return emask::detail::is_inf(v) && v < 0; }

/// Compares softmax, log-softmax and their log-sum-exp with the reference. Returns nothing:
/// every property is a CHECK with the largest error reported.
template <class S>
void check_result(const reference& ref, const bool_matrix& keep, const row_matrix<S>& p,
                  const row_matrix<S>& logp, const Eigen::Matrix<S, Eigen::Dynamic, 1>& lse_p,
                  const Eigen::Matrix<S, Eigen::Dynamic, 1>& lse_l) {
  const double t = tol<S>();
  double worst_p = 0, worst_l = 0, worst_lse = 0, worst_sum = 0;
  Index bad_zero = 0, bad_neg_inf = 0, bad_empty = 0;
  for (Index q = 0; q < p.rows(); ++q) {
    const bool empty = ref.empty[static_cast<std::size_t>(q)];
    double sum = 0;
    for (Index k = 0; k < p.cols(); ++k) {
      if (keep(q, k)) {
        worst_p = std::max(worst_p, std::abs(p(q, k) - ref.p(q, k)) / (1 + std::abs(ref.p(q, k))));
        worst_l = std::max(worst_l,
                           std::abs(logp(q, k) - ref.logp(q, k)) / (1 + std::abs(ref.logp(q, k))));
        sum += static_cast<double>(p(q, k));
      } else {
        bad_zero += p(q, k) != S(0) ? 1 : 0;
        bad_neg_inf += is_neg_inf(static_cast<double>(logp(q, k))) ? 0 : 1;
      }
    }
    if (empty) {
      bad_empty +=
          (is_neg_inf(static_cast<double>(lse_p(q))) && is_neg_inf(static_cast<double>(lse_l(q))))
              ? 0
              : 1;
    } else {
      worst_sum = std::max(worst_sum, std::abs(sum - 1.0));
      worst_lse = std::max(worst_lse, std::abs(lse_p(q) - ref.lse(q)) / (1 + std::abs(ref.lse(q))));
      worst_lse = std::max(worst_lse, std::abs(lse_l(q) - ref.lse(q)) / (1 + std::abs(ref.lse(q))));
    }
  }
  CHECK(worst_p <= t);
  CHECK(worst_l <= t);
  CHECK(worst_lse <= t);
  CHECK(worst_sum <= t * 10);  // a sum of up to a few hundred terms
  CHECK(bad_zero == 0);
  CHECK(bad_neg_inf == 0);
  CHECK(bad_empty == 0);
}

const softmax_variant all_variants[] = {softmax_variant::naive, softmax_variant::fused,
                                        softmax_variant::tiled};

const char* variant_name(softmax_variant v) {
  switch (v) {
    case softmax_variant::naive: return "naive";
    case softmax_variant::fused: return "fused";
    default: return "tiled";
  }
}

/// Runs every variant (and several tile sizes for tiled) with \p mask on random Lq x Lk scores
/// and compares with the reference computed from \p keep.
template <class S, class Mask>
void check_all_variants(const std::string& name, const Mask& mask, const bool_matrix& keep,
                        Index b = 0, Index h = 0, std::uint64_t seed = 7, double scale = 0.7) {
  const Index lq = keep.rows(), lk = keep.cols();
  const row_matrix<S> x = random_scores<S>(lq, lk, seed);
  const reference ref = softmax_reference(x, keep, scale);
  // (variant, tile, streaming stores for the masked part)
  struct config {
    softmax_variant v;
    Index tile;
    bool stream;
  };
  const config configs[] = {
      {softmax_variant::naive, 128, false}, {softmax_variant::fused, 128, false},
      {softmax_variant::fused, 128, true},  {softmax_variant::tiled, 1, false},
      {softmax_variant::tiled, 3, true},    {softmax_variant::tiled, 16, false},
      {softmax_variant::tiled, 128, false}};
  for (const config& c : configs) {
    {
      const softmax_variant v = c.v;
      const Index tile = c.tile;
      INFO(name << " Lq=" << lq << " Lk=" << lk << " variant=" << variant_name(v)
                << " tile=" << tile << " stream=" << c.stream);
      softmax_options o;
      o.scale = scale;
      o.variant = v;
      o.tile_q = o.tile_k = tile;
      o.stream_bytes = c.stream ? 0 : emask::unbounded;
      o.slice = {b, h};
      row_matrix<S> p(lq, lk), logp(lq, lk);
      Eigen::Matrix<S, Eigen::Dynamic, 1> lse_p(lq), lse_l(lq);
      emask_test::masked_softmax(x, mask, p, lse_p, o);
      emask_test::masked_log_softmax(x, mask, logp, lse_l, o);
      check_result(ref, keep, p, logp, lse_p, lse_l);
    }
  }
}

struct shape {
  Index lq, lk;
};
const shape shapes[] = {{1, 1}, {1, 9}, {7, 13}, {13, 7}, {37, 50}, {50, 37}, {130, 70}};

}  // namespace

TEST_CASE("masked_softmax: hand-checked small cases", "[softmax]") {
  row_matrix<double> x(3, 3);
  x << 1, 2, 3, 1, 2, 3, 0, 0, 0;
  const auto p = emask_test::masked_softmax(x, emask::causal());
  const double e1 = std::exp(1.0), e2 = std::exp(2.0), e3 = std::exp(3.0);
  CHECK_THAT(p(0, 0), WithinAbs(1.0, 1e-15));
  CHECK(p(0, 1) == 0.0);
  CHECK(p(0, 2) == 0.0);
  CHECK_THAT(p(1, 0), WithinAbs(e1 / (e1 + e2), 1e-15));  // 0.2689414213699951
  CHECK_THAT(p(1, 0), WithinAbs(0.2689414213699951, 1e-15));
  CHECK_THAT(p(1, 1), WithinAbs(e2 / (e1 + e2), 1e-15));
  CHECK(p(1, 2) == 0.0);
  for (Index k = 0; k < 3; ++k) CHECK_THAT(p(2, k), WithinAbs(1.0 / 3.0, 1e-15));

  // log-softmax of row 1 with scale 2: [2, 4] - log(e^2 + e^4).
  softmax_options o;
  o.scale = 2.0;
  const auto lp = emask_test::masked_log_softmax(x, emask::causal(), o);
  CHECK_THAT(lp(1, 0), WithinAbs(2.0 - std::log(std::exp(2.0) + std::exp(4.0)), 1e-14));
  CHECK(is_neg_inf(static_cast<double>(lp(1, 2))));
  CHECK(lp(1, 2) < 0);
  (void)e3;

  // Strict causal: row 0 keeps nothing, so it is zeros with log-sum-exp -infinity.
  row_matrix<double> out(3, 3);
  Eigen::VectorXd lse(3);
  emask_test::masked_softmax(x, emask::causal().strict(), out, lse);
  CHECK(out.row(0).isZero(0));
  CHECK(is_neg_inf(static_cast<double>(lse(0))));
  CHECK(lse(0) < 0);
  CHECK_THAT(out(1, 0), WithinAbs(1.0, 1e-15));
  CHECK_THAT(lse(1), WithinAbs(1.0, 1e-15));  // log(e^1)
  CHECK_THAT(lse(2), WithinAbs(std::log(2.0), 1e-15));
}

TEMPLATE_TEST_CASE("masked_softmax: every variant matches the float64 reference on every builder",
                   "[softmax]", float, double) {
  using S = TestType;
  for (const shape& sh : shapes) {
    const Index lq = sh.lq, lk = sh.lk;
    {
      const auto m = emask::causal();
      check_all_variants<S>("causal top-left", m, keep_of(m, lq, lk));
    }
    {
      const auto m = emask::causal::bottom_right(lq, lk);
      check_all_variants<S>("causal bottom-right", m, keep_of(m, lq, lk));
    }
    {
      const auto m = emask::causal().strict();
      check_all_variants<S>("causal strict", m, keep_of(m, lq, lk));
    }
    {
      const auto m = emask::causal::bottom_right(lq, lk).strict();
      check_all_variants<S>("causal bottom-right strict", m, keep_of(m, lq, lk));
    }
    {
      const emask::sliding_window m(3, 2);
      check_all_variants<S>("sliding_window(3, 2)", m, keep_of(m, lq, lk));
    }
    {
      const auto m = emask::sliding_window::from_flash_attn(4, 0, lq, lk);
      check_all_variants<S>("sliding_window flash (4, 0)", m, keep_of(m, lq, lk));
    }
    {
      const emask::chunked m(5);
      check_all_variants<S>("chunked(5)", m, keep_of(m, lq, lk));
    }
    {
      const emask::prefix_lm m(4);
      check_all_variants<S>("prefix_lm(4)", m, keep_of(m, lq, lk));
    }
    {
      const auto m = emask::key_padding::from_lengths({lk, (lk * 2) / 3, 0}, lk);
      for (Index b = 0; b < 3; ++b)
        check_all_variants<S>("key_padding b=" + std::to_string(b), m, keep_of(m, lq, lk, b), b);
    }
    {
      const auto m = emask::query_padding::from_lengths({(lq + 1) / 2}, lq);
      check_all_variants<S>("query_padding", m, keep_of(m, lq, lk));
    }
    {
      test_rng r(11);
      bool_matrix flags(2, lk);
      for (Index k = 0; k < lk; ++k) {
        flags(0, k) = r.uniform(0, 1) < 0.6;
        flags(1, k) = k % 4 != 1;
      }
      const auto m = emask::key_flags::from_keep(flags);
      check_all_variants<S>("key_flags b=1", m, keep_of(m, lq, lk, 1), 1);
    }
    {
      std::vector<std::int64_t> qid(static_cast<std::size_t>(lq)),
          kid(static_cast<std::size_t>(lk));
      for (Index i = 0; i < lq; ++i) qid[static_cast<std::size_t>(i)] = i / 4;
      for (Index i = 0; i < lk; ++i) kid[static_cast<std::size_t>(i)] = (i / 3) % 5;
      const auto m = emask::document::from_segment_ids(emask::id_table(qid), emask::id_table(kid));
      check_all_variants<S>("document", m, keep_of(m, lq, lk));
    }
    {
      test_rng r(5);
      bool_matrix keep(lq, lk);
      for (Index q = 0; q < lq; ++q)
        for (Index k = 0; k < lk; ++k) keep(q, k) = r.uniform(0, 1) < 0.5;
      if (lq > 2) keep.row(2).setConstant(false);  // one fully masked row
      check_all_variants<S>("dense as_mask", emask::as_mask(keep), keep);
      check_all_variants<S>("bool_matrix", keep, keep);
      const auto bits = emask::bit_mask::from_bool(keep);
      check_all_variants<S>("bit_mask", bits, keep);
    }
    {
      const auto m = emask::causal() & emask::key_padding::from_lengths({(lk + 1) / 2}, lk);
      check_all_variants<S>("causal & key_padding", m, keep_of(m, lq, lk));
    }
    {
      const auto m = emask::sliding_window(2, 0) | emask::prefix_lm(3);
      check_all_variants<S>("window | prefix", m, keep_of(m, lq, lk));
    }
    {
      const auto m = !emask::causal();
      check_all_variants<S>("!causal", m, keep_of(m, lq, lk));
    }
    {
      const auto m = emask::chunked(6) | (emask::sliding_window(0, 0) & !emask::causal());
      check_all_variants<S>("chunked | (diag & !causal)", m, keep_of(m, lq, lk));
    }
    {
      const auto m = emask::causal().offset(5, 0);
      check_all_variants<S>("causal offset (5, 0)", m, keep_of(m, lq, lk));
    }
    {
      const auto m = emask::sliding_window(6, 1).offset(3, 9);
      check_all_variants<S>("window offset (3, 9)", m, keep_of(m, lq, lk));
    }
    {
      const auto m = (emask::causal() & emask::chunked(8)).offset(10, 4);
      check_all_variants<S>("(causal & chunked) offset", m, keep_of(m, lq, lk));
    }
  }
}

TEMPLATE_TEST_CASE("masked_softmax: per-head masks use options.h, offsets into a larger mask",
                   "[softmax]", float, double) {
  using S = TestType;
  const auto m = emask::per_head(std::vector<emask::sliding_window>{
      emask::sliding_window(1, 0), emask::sliding_window(4, 0), emask::sliding_window(9, 0)});
  for (Index h = 0; h < 3; ++h)
    check_all_variants<S>("per_head h=" + std::to_string(h), m, keep_of(m, 40, 40, 0, h), 0, h);

  // A bit_mask bigger than the scores, seen from offset (2, 3).
  test_rng r(3);
  bool_matrix big(25, 31);
  for (Index q = 0; q < 25; ++q)
    for (Index k = 0; k < 31; ++k) big(q, k) = r.uniform(0, 1) < 0.3;
  const auto bits = emask::bit_mask::from_bool(big);
  const bool_matrix keep = big.block(2, 3, 20, 25);
  check_all_variants<S>("bit_mask offset (2, 3)", bits.offset(2, 3), keep);
}

TEMPLATE_TEST_CASE("masked_softmax: negative, zero and large scales", "[softmax]", float, double) {
  using S = TestType;
  const auto m = (emask::causal() & emask::sliding_window(20, 0)) | emask::chunked(9);
  for (double scale : {-0.5, 0.0, 3.0}) {
    INFO("scale " << scale);
    check_all_variants<S>("scale", m, keep_of(m, 45, 61), 0, 0, 13, scale);
  }
}

TEMPLATE_TEST_CASE("masked_softmax: additive masks add their bias and mask entries <= lowest",
                   "[softmax]", float, double) {
  using S = TestType;
  const Index lq = 23, lk = 41;
  test_rng r(9);
  row_matrix<S> bias(lq, lk);
  bool_matrix keep(lq, lk);
  for (Index q = 0; q < lq; ++q)
    for (Index k = 0; k < lk; ++k) {
      const double u = r.uniform(0, 1);
      keep(q, k) = u > 0.4 && q != 5;  // row 5 fully masked
      const S fill =
          (k % 2) ? -std::numeric_limits<S>::infinity() : std::numeric_limits<S>::lowest();
      bias(q, k) = keep(q, k) ? static_cast<S>(r.uniform(-2, 1)) : fill;  // ALiBi-like bias
    }
  const row_matrix<double> bias_d = bias.template cast<double>().unaryExpr(
      [](double v) { return emask::detail::is_finite(v) && v > -1e30 ? v : 0.0; });
  const row_matrix<S> x = random_scores<S>(lq, lk, 4);
  const double scale = 1.3;
  const reference ref = softmax_reference(x, keep, scale, &bias_d);
  const auto add = emask::to_additive(bias);
  for (softmax_variant v : all_variants) {
    INFO("variant " << variant_name(v));
    softmax_options o;
    o.scale = scale;
    o.variant = v;
    row_matrix<S> p(lq, lk), logp(lq, lk);
    Eigen::Matrix<S, Eigen::Dynamic, 1> lse_p(lq), lse_l(lq);
    emask_test::masked_softmax(x, add, p, lse_p, o);
    emask_test::masked_log_softmax(x, add, logp, lse_l, o);
    check_result(ref, keep, p, logp, lse_p, lse_l);
  }
  // The additive form of a mask expression gives the same result as the expression.
  const auto m = emask::causal() & emask::key_padding::from_lengths({30}, lk);
  const auto a = emask::materialize_additive<S>(m, lq, lk);
  const row_matrix<S> p1 = emask_test::masked_softmax(x, a), p2 = emask_test::masked_softmax(x, m);
  CHECK((p1 - p2).cwiseAbs().maxCoeff() <= static_cast<S>(tol<S>()));
}

TEMPLATE_TEST_CASE("masked_softmax: a kept -infinity or underflowing score gets exactly 0",
                   "[softmax]", float, double) {
  // Found by the masks fuzzer: Eigen's vectorized exp clamps its argument, so without AVX a
  // kept -inf score got 2.9e-39 (float) instead of 0. Results below the smallest normal are 0.
  using S = TestType;
  const S inf = std::numeric_limits<S>::infinity();
  row_matrix<S> x(2, 19);
  for (Index k = 0; k < 19; ++k) {
    x(0, k) = S(k % 3);
    x(1, k) = S(0);
  }
  x(0, 4) = -inf;
  x(1, 7) = -inf;
  x(1, 8) = S(-2000);  // far below: e^-2000 underflows in both types
  for (softmax_variant v : all_variants) {
    INFO("variant " << variant_name(v));
    softmax_options o;
    o.variant = v;
    const row_matrix<S> p = emask_test::masked_softmax(x, emask::causal::bottom_right(2, 19), o);
    CHECK(p(0, 4) == S(0));
    CHECK(p(1, 7) == S(0));
    CHECK(p(1, 8) == S(0));
    CHECK(std::abs(static_cast<double>(p.row(1).sum()) - 1.0) <= 1e-6);
    const row_matrix<S> lp =
        emask_test::masked_log_softmax(x, emask::causal::bottom_right(2, 19), o);
    CHECK(is_neg_inf(static_cast<double>(lp(1, 7))));
  }
}

TEMPLATE_TEST_CASE("masked_softmax: NaN and infinity policy", "[softmax]", float, double) {
  using S = TestType;
  const Index lq = 6, lk = 20;
  const S nan = std::numeric_limits<S>::quiet_NaN(), inf = std::numeric_limits<S>::infinity();
  row_matrix<S> x = random_scores<S>(lq, lk, 21);
  const auto mask = emask::causal();
  const row_matrix<S> clean = emask_test::masked_softmax(x, mask);
  // Masked positions: NaN and +-infinity have no effect.
  for (Index q = 0; q < lq; ++q)
    for (Index k = q + 1; k < lk; ++k) x(q, k) = (k % 3 == 0) ? nan : ((k % 3 == 1) ? inf : -inf);
      // A NaN at a kept position of row 4 poisons that row only. (Not with -ffast-math, where a
      // kept NaN is outside the contract; masked NaN and infinities must still change nothing.)
#ifndef __FAST_MATH__
  x(4, 2) = nan;
  constexpr bool kept_nan = true;
#else
  constexpr bool kept_nan = false;
#endif
  for (softmax_variant v : all_variants) {
    INFO("variant " << variant_name(v));
    softmax_options o;
    o.variant = v;
    const row_matrix<S> p = emask_test::masked_softmax(x, mask, o);
    const row_matrix<S> lp = emask_test::masked_log_softmax(x, mask, o);
    for (Index q = 0; q < lq; ++q) {
      for (Index k = 0; k < lk; ++k) {
        if (k > q) {
          CHECK(p(q, k) == S(0));
          CHECK(is_neg_inf(static_cast<double>(lp(q, k))));
        } else if (q == 4 && kept_nan) {
          CHECK(emask::detail::is_nan(p(q, k)));
          CHECK(emask::detail::is_nan(lp(q, k)));
        } else {
          CHECK_THAT(static_cast<double>(p(q, k)),
                     WithinAbs(static_cast<double>(clean(q, k)), tol<S>()));
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("masked_softmax: inputs as Map, block, column-major, expression; in place",
                   "[softmax]", float, double) {
  using S = TestType;
  const Index lq = 17, lk = 29;
  const auto mask = emask::sliding_window(5, 3) & emask::key_padding::from_lengths({25}, lk);
  const row_matrix<S> big = random_scores<S>(lq + 4, lk + 6, 31);
  const row_matrix<S> x = big.block(2, 3, lq, lk);
  softmax_options naive;
  naive.variant = softmax_variant::naive;
  const row_matrix<S> expected = emask_test::masked_softmax(x, mask, naive);
  const S t = static_cast<S>(tol<S>());
  for (softmax_variant v : all_variants) {
    INFO("variant " << variant_name(v));
    softmax_options o;
    o.variant = v;
    // A block of a larger row-major matrix (outer stride != cols), written into a block.
    row_matrix<S> out_big = row_matrix<S>::Constant(lq + 4, lk + 6, S(9));
    emask_test::masked_softmax(big.block(2, 3, lq, lk), mask, out_big.block(1, 2, lq, lk), o);
    CHECK((out_big.block(1, 2, lq, lk) - expected).cwiseAbs().maxCoeff() <= t);
    CHECK(out_big(0, 0) == S(9));  // nothing outside the block is written
    CHECK(out_big(lq + 1, lk + 2) == S(9));
    // A Map with an outer stride.
    Eigen::Map<const row_matrix<S>, 0, Eigen::OuterStride<>> map(
        big.data() + 2 * big.cols() + 3, lq, lk, Eigen::OuterStride<>(big.cols()));
    CHECK((emask_test::masked_softmax(map, mask, o) - expected).cwiseAbs().maxCoeff() <= t);
    // Column-major storage and a lazy expression are evaluated once.
    const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> col = x;
    CHECK((emask_test::masked_softmax(col, mask, o) - expected).cwiseAbs().maxCoeff() <= t);
    CHECK((emask_test::masked_softmax(x * S(0.5) + x * S(0.5), mask, o) - expected)
              .cwiseAbs()
              .maxCoeff() <= t);
    // In place: out is the storage of scores.
    row_matrix<S> inplace = x;
    emask_test::masked_softmax(inplace, mask, inplace, o);
    CHECK((inplace - expected).cwiseAbs().maxCoeff() <= t);
    row_matrix<S> inplace_log = x;
    emask_test::masked_log_softmax(inplace_log, mask, inplace_log, o);
    const row_matrix<S> expected_log = emask_test::masked_log_softmax(x, mask, o);
    CHECK((inplace_log.array() == expected_log.array()).all());
  }
}

TEST_CASE("masked_softmax: rows sum to one and log-softmax is consistent on a large problem",
          "[softmax]") {
  const Index lq = 300, lk = 520;
  const row_matrix<float> x = random_scores<float>(lq, lk, 77);
  const auto mask =
      emask::causal::bottom_right(lq, lk) & emask::key_padding::from_lengths({400}, lk);
  for (softmax_variant v : all_variants) {
    INFO("variant " << variant_name(v));
    softmax_options o;
    o.variant = v;
    o.scale = 0.125;
    row_matrix<float> p(lq, lk), lp(lq, lk);
    Eigen::VectorXf lse(lq);
    emask_test::masked_softmax(x, mask, p, lse, o);
    emask_test::masked_log_softmax(x, mask, lp, o);
    double worst_sum = 0, worst_log = 0, worst_lse = 0;
    for (Index q = 0; q < lq; ++q) {
      worst_sum = std::max(worst_sum, std::abs(static_cast<double>(p.row(q).sum()) - 1.0));
      for (Index k = 0; k < lk; ++k) {
        if (!mask.keep(0, 0, q, k)) continue;
        worst_log =
            std::max(worst_log, std::abs(std::exp(static_cast<double>(lp(q, k))) - p(q, k)));
        worst_lse = std::max(worst_lse,
                             std::abs(static_cast<double>(lp(q, k)) - (0.125 * x(q, k) - lse(q))));
      }
    }
    CHECK(worst_sum <= 1e-5);
    CHECK(worst_log <= 1e-6);
    CHECK(worst_lse <= 1e-5);
  }
}

TEST_CASE("masked_softmax: results do not depend on the thread count", "[softmax][threads]") {
#if EMASK_HAS_OPENMP
  const Index lq = 333, lk = 401;
  const row_matrix<float> x = random_scores<float>(lq, lk, 5);
  test_rng r(8);
  bool_matrix keep(lq, lk);
  for (Index q = 0; q < lq; ++q)
    for (Index k = 0; k < lk; ++k) keep(q, k) = r.uniform(0, 1) < 0.7;
  const auto dense = emask::as_mask(keep);
  const auto structured = (emask::causal() & emask::sliding_window(100, 0)) | emask::prefix_lm(7);
  const int saved = omp_get_max_threads();
  for (softmax_variant v : all_variants) {
    INFO("variant " << variant_name(v));
    softmax_options o;
    o.variant = v;
    o.tile_q = o.tile_k = 64;
    o.stream_bytes = 0;
    row_matrix<float> p1(lq, lk), p2(lq, lk), l1(lq, lk), l2(lq, lk), d1(lq, lk), d2(lq, lk);
    Eigen::VectorXf e1(lq), e2(lq);
    omp_set_num_threads(1);
    emask_test::masked_softmax(x, structured, p1, e1, o);
    emask_test::masked_log_softmax(x, structured, l1, o);
    emask_test::masked_softmax(x, dense, d1, o);
    omp_set_num_threads(2);
    emask_test::masked_softmax(x, structured, p2, e2, o);
    emask_test::masked_log_softmax(x, structured, l2, o);
    emask_test::masked_softmax(x, dense, d2, o);
    CHECK((p1.array() == p2.array()).all());
    CHECK((l1.array() == l2.array()).all());
    CHECK((d1.array() == d2.array()).all());
    CHECK((e1.array() == e2.array()).all());
    // options.threads instead of the OpenMP default: the same bits.
    row_matrix<float> p3(lq, lk);
    Eigen::VectorXf e3(lq);
    o.threads = 2;
    omp_set_num_threads(1);
    emask_test::masked_softmax(x, structured, p3, e3, o);
    CHECK((p1.array() == p3.array()).all());
    CHECK((e1.array() == e3.array()).all());
  }
  omp_set_num_threads(saved);
#else
  SUCCEED("built without OpenMP: the kernels run on the calling thread");
#endif
}

TEMPLATE_TEST_CASE("masked_softmax: options.q_offset and k_offset equal mask.offset", "[softmax]",
                   float, double) {
  using S = TestType;
  const Index lq = 37, lk = 53;
  const row_matrix<S> x = random_scores<S>(lq, lk, 11);
  const auto m = (emask::causal() & emask::sliding_window(20, 3)) | emask::prefix_lm(4);
  for (softmax_variant v : all_variants) {
    INFO("variant " << variant_name(v));
    softmax_options shifted, plain;
    shifted.variant = plain.variant = v;
    shifted.tile_q = shifted.tile_k = plain.tile_q = plain.tile_k = 16;
    shifted.q_offset = 30;
    shifted.k_offset = 11;
    row_matrix<S> a(lq, lk), b(lq, lk);
    Eigen::Matrix<S, Eigen::Dynamic, 1> la(lq), lb(lq);
    emask_test::masked_softmax(x, m, a, la, shifted);
    emask_test::masked_softmax(x, m.offset(30, 11), b, lb, plain);
    CHECK((a.array() == b.array()).all());
    CHECK(((la.array() == lb.array()) || (la.array() != la.array())).all());
    // and it is a different problem from the unshifted one (the window moved)
    emask_test::masked_softmax(x, m, b, lb, plain);
    CHECK((a.array() != b.array()).any());
  }
}

TEMPLATE_TEST_CASE("masked_softmax: results do not depend on the buffers' alignment",
                   "[softmax][alignment]", float, double) {
  // The row kernels (detail/simd.hpp) compute every element with the same packet code whatever
  // its lane (partial head and tail packets go through a padded buffer) and sum with
  // accumulators assigned by index, so every element, every sum and every lse is the same bit
  // pattern whatever the address of the scores and of the output (Eigen's own loops peel
  // unaligned heads with scalar code, whose exp differs from the packet exp in the last bits).
  using S = TestType;
  const Index lq = 37, lk = 203;  // odd lengths: runs of every length modulo the packet
  test_rng r(21);
  bool_matrix keep(lq, lk);
  for (Index q = 0; q < lq; ++q)
    for (Index k = 0; k < lk; ++k) keep(q, k) = r.uniform(0, 1) < 0.6;
  const auto dense = emask::as_mask(keep);
  const auto structured = (emask::causal() & emask::sliding_window(150, 0)) | emask::prefix_lm(5);
  const auto pad = emask::key_padding::from_lengths({lk - 17}, lk);
  const row_matrix<S> x = random_scores<S>(lq, lk, 23);
  // Every shift of the rows inside one buffer, up to a whole AVX-512 register.
  const Index shifts = 64 / static_cast<Index>(sizeof(S));
  std::vector<S> xin(static_cast<std::size_t>(lq * lk + shifts)),
      yout(static_cast<std::size_t>(lq * lk + shifts));
  for (softmax_variant v : all_variants) {
    for (int log : {0, 1}) {
      for (int which = 0; which < 3; ++which) {
        INFO("variant " << variant_name(v) << (log ? ", log-softmax" : "") << ", mask " << which);
        softmax_options o;
        o.variant = v;
        o.tile_q = o.tile_k = 32;
        o.stream_bytes = 0;
        row_matrix<S> first;
        Eigen::Matrix<S, Eigen::Dynamic, 1> first_lse;
        for (Index shift = 0; shift < shifts; ++shift) {
          Eigen::Map<row_matrix<S>> xs(xin.data() + shift, lq, lk);
          Eigen::Map<row_matrix<S>> ys(yout.data() + (shifts - 1 - shift), lq, lk);
          xs = x;
          Eigen::Matrix<S, Eigen::Dynamic, 1> lse(lq);
          const auto run = [&](const auto& mask) {
            if (log)
              emask_test::masked_log_softmax(xs, mask, ys, lse, o);
            else
              emask_test::masked_softmax(xs, mask, ys, lse, o);
          };
          if (which == 0) run(dense);
          if (which == 1) run(structured);
          if (which == 2) run(pad);
          if (shift == 0) {
            first = ys;
            first_lse = lse;
            continue;
          }
          INFO("shift " << shift);
          // Bit-for-bit (NaN-free data): == on every entry, -infinity included. Under
          // -ffast-math the compiler may reassociate log-softmax's two subtractions in one
          // packet path and not the other: that build promises no bit identity there.
#if defined(__FAST_MATH__)
          if (log) continue;
#endif
          CHECK((ys.array() == first.array()).all());
          CHECK((lse.array() == first_lse.array()).all());
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("masked_log_softmax: huge equal scores keep log p = -log(kept)", "[softmax]",
                   float, double) {
  // (s - m) - log(sum), never s - (m + log(sum)): with |m| near 1e30 the second form absorbs
  // log(sum) and every entry came out 0 (found by the kernels fuzzer).
  using S = TestType;
  for (const double big : {1e30, -1e30, 3e37}) {
    const row_matrix<S> x = row_matrix<S>::Constant(3, 37, static_cast<S>(big));
    const auto mask = emask::key_padding::from_lengths({10}, 37);
    for (softmax_variant v : all_variants) {
      softmax_options o;
      o.variant = v;
      const row_matrix<S> lp = emask_test::masked_log_softmax(x, mask, o);
      for (Index k = 0; k < 10; ++k)
        CHECK_THAT(double(lp(1, k)), Catch::Matchers::WithinAbs(-std::log(10.0), 1e-6));
    }
  }
}

TEST_CASE("masked_softmax: empty problems", "[softmax]") {
  const row_matrix<float> x0(0, 5), x1(4, 0);
  CHECK(emask_test::masked_softmax(x0, emask::causal()).rows() == 0);
  row_matrix<float> out(4, 0);
  Eigen::VectorXf lse(4);
  emask_test::masked_softmax(x1, emask::causal(), out, lse);
  for (Index q = 0; q < 4; ++q) CHECK(is_neg_inf(static_cast<double>(lse(q))));
}

TEST_CASE("masked_softmax: bad arguments raise emask::error naming the argument", "[softmax]") {
  using Catch::Matchers::Contains;
  const row_matrix<float> x = random_scores<float>(4, 6, 1);
  row_matrix<float> out(4, 6), wrong(3, 6);
  Eigen::VectorXf lse(4), short_lse(2);
  const auto m = emask::causal();
  REQUIRE_THROWS_AS(emask_test::masked_softmax(x, m, wrong), emask::error);
  REQUIRE_THROWS_WITH(emask_test::masked_softmax(x, m, wrong),
                      Contains("'out'") && Contains("4 x 6"));
  REQUIRE_THROWS_WITH(emask_test::masked_log_softmax(x, m, wrong), Contains("masked_log_softmax"));
  REQUIRE_THROWS_WITH(emask_test::masked_softmax(x, m, out, short_lse), Contains("'lse'"));
  softmax_options o;
  o.tile_q = o.tile_k = 0;
  REQUIRE_THROWS_WITH(emask_test::masked_softmax(x, m, out, o), Contains("'options.tile_q'"));
  o = softmax_options{};
  o.scale = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_THROWS_WITH(emask_test::masked_softmax(x, m, out, o), Contains("'options.scale'"));
  o = softmax_options{};
  o.slice.b = -1;
  REQUIRE_THROWS_WITH(emask_test::masked_softmax(x, m, out, o), Contains("'options.slice.b'"));
  o = softmax_options{};
  o.slice.h = -2;
  REQUIRE_THROWS_WITH(emask_test::masked_softmax(x, m, out, o), Contains("'options.slice.h'"));
  o = softmax_options{};
  o.stream_bytes = -1;
  REQUIRE_THROWS_WITH(emask_test::masked_softmax(x, m, out, o), Contains("'options.stream_bytes'"));
  // An unknown variant no longer exists at run time: tests/compile_fail/variant_*.cpp.
  // Materialized masks of the wrong shape.
  const bool_matrix keep = bool_matrix::Constant(4, 5, true);
  REQUIRE_THROWS_WITH(emask_test::masked_softmax(x, keep, out),
                      Contains("'mask'") && Contains("4 x 5"));
  const auto add = emask::to_additive(row_matrix<float>(row_matrix<float>::Zero(5, 6)));
  REQUIRE_THROWS_WITH(emask_test::masked_softmax(x, add, out), Contains("'mask'"));
  // Masks that cannot answer for the slice: batch entry out of range, too few key positions.
  const auto pad = emask::key_padding::from_lengths({3, 6}, 6);
  o = softmax_options{};
  o.slice.b = 2;
  REQUIRE_THROWS_WITH(emask_test::masked_softmax(x, pad, out, o), Contains("key padding"));
  const auto bits = emask::bit_mask::from_bool(bool_matrix::Constant(4, 5, true));
  REQUIRE_THROWS_WITH(emask_test::masked_softmax(x, bits, out), Contains("key positions"));
  REQUIRE_THROWS_WITH(emask_test::masked_softmax(x, bits.offset(0, 1), out),
                      Contains("masked_softmax"));
}
