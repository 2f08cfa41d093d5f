// Tests of emask/seq/loss_grad.hpp and emask/seq/pooling_grad.hpp: hand-checked small cases,
// central finite differences of the forward (double), float against double, ignored / masked
// tokens and steps exactly 0, no counted token, -infinity logits, ties of max pooling, bad input.
//
// Bounds (stated once): finite differences in double with h = 1e-6 * max(1, |x|) agree with the
// analytic gradient g to |g - fd| <= 1e-6 * max(1, |fd|); float agrees with double to
// 1e-6 * (1 + |r|) (losses: probabilities times 1 / counted). Ignored entries must be exactly 0.
#include <cmath>
#include <cstdint>
#include <limits>

#include <emask/emask.hpp>
#include <emask/seq/loss_grad.hpp>
#include <emask/seq/pooling_grad.hpp>

#include "catch.hpp"

using emask::bool_matrix;
using emask::Index;
using emask::row_matrix;
using targets_t = Eigen::Array<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace {

row_matrix<double> random_matrix(Index r, Index c, std::uint64_t seed) {
  row_matrix<double> m(r, c);
  std::uint64_t s = seed;
  for (Index i = 0; i < r; ++i)
    for (Index j = 0; j < c; ++j) {
      std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      z ^= z >> 31;
      m(i, j) = -3 + 6 * static_cast<double>(z >> 11) * 0x1.0p-53;
    }
  return m;
}

/// Central differences of f over every entry of x, against g.
template <class F>
void check_fd(const row_matrix<double>& x, const row_matrix<double>& g, F&& f) {
  REQUIRE(g.rows() == x.rows());
  REQUIRE(g.cols() == x.cols());
  for (Index i = 0; i < x.rows(); ++i)
    for (Index j = 0; j < x.cols(); ++j) {
      const double h = 1e-6 * (std::max)(1.0, std::abs(x(i, j)));
      row_matrix<double> xp = x, xm = x;
      xp(i, j) += h;
      xm(i, j) -= h;
      const double fd = (f(xp) - f(xm)) / (2 * h);
      INFO("entry (" << i << ", " << j << "): g " << g(i, j) << ", fd " << fd);
      CHECK(std::abs(g(i, j) - fd) <= 1e-6 * (std::max)(1.0, std::abs(fd)));
    }
}

const emask::loss_reduction reductions[] = {emask::loss_reduction::none, emask::loss_reduction::sum,
                                            emask::loss_reduction::mean};

}  // namespace

TEST_CASE("loss gradients: hand-checked 3-class token", "[seq][backward]") {
  // logits [0, ln 2, 0]: p = [1/4, 1/2, 1/4]; target 1: p - onehot = [1/4, -1/2, 1/4].
  row_matrix<double> logits(2, 3);
  logits << 0, std::log(2.0), 0, 5, 5, 5;
  targets_t y(1, 2);
  y << 1, -100;  // second token ignored
  emask::loss_options o;
  o.reduction = emask::loss_reduction::sum;
  const row_matrix<double> g = emask::masked_cross_entropy_grad(logits, y, o);
  CHECK(std::abs(g(0, 0) - 0.25) <= 1e-15);
  CHECK(std::abs(g(0, 1) + 0.5) <= 1e-15);
  CHECK(std::abs(g(0, 2) - 0.25) <= 1e-15);
  CHECK((g.row(1).array() == 0).all());  // ignored: exactly 0
  const row_matrix<double> n = emask::masked_nll_grad(logits, y, o);
  CHECK(n(0, 1) == -1);
  CHECK(n.cwiseAbs().sum() == 1);
  // mean over 2 counted tokens halves it.
  y << 1, 2;
  o.reduction = emask::loss_reduction::mean;
  const row_matrix<double> gm = emask::masked_cross_entropy_grad(logits, y, o);
  CHECK(std::abs(gm(0, 1) + 0.25) <= 1e-15);
  CHECK(std::abs(gm(1, 2) - (1.0 / 3 - 1) / 2) <= 1e-15);
  CHECK(emask::masked_nll_grad(logits, y, o)(1, 2) == -0.5);
}

TEST_CASE("loss gradients: central finite differences, every overload and reduction",
          "[seq][backward]") {
  const Index B = 2, T = 3, V = 5;
  const row_matrix<double> logits = random_matrix(B * T, V, 1);
  targets_t y(B, T);
  y << 0, 4, -100, 2, 2, 1;
  bool_matrix keep(B, T);
  keep << true, false, true, true, true, true;
  for (const auto red : reductions) {
    emask::loss_options o;
    o.reduction = red;
    check_fd(
        logits, emask::masked_cross_entropy_grad(logits, y, o),
        [&](const row_matrix<double>& x) { return emask::masked_cross_entropy(x, y, o).value; });
    check_fd(logits, emask::masked_cross_entropy_grad(logits, y, keep, o),
             [&](const row_matrix<double>& x) {
               return emask::masked_cross_entropy(x, y, keep, o).value;
             });
    check_fd(logits, emask::masked_nll_grad(logits, y, o),
             [&](const row_matrix<double>& x) { return emask::masked_nll(x, y, o).value; });
    check_fd(logits, emask::masked_nll_grad(logits, y, keep, o),
             [&](const row_matrix<double>& x) { return emask::masked_nll(x, y, keep, o).value; });
    // Not counted: rows exactly 0 (token (0, 2) ignored, (0, 1) masked).
    const row_matrix<double> g = emask::masked_cross_entropy_grad(logits, y, keep, o);
    CHECK((g.row(2).array() == 0).all());
    CHECK((g.row(1).array() == 0).all());
    // float against double.
    const row_matrix<float> gf =
        emask::masked_cross_entropy_grad(logits.cast<float>().eval(), y, keep, o);
    CHECK(((gf.cast<double>() - g).array().abs() <= 1e-6 * (1 + g.array().abs())).all());
  }
  // A custom ignore index: tokens with target 2 do not count.
  emask::loss_options o;
  o.ignore_index = 2;
  targets_t y2 = y;
  y2(0, 2) = 3;
  const row_matrix<double> g = emask::masked_cross_entropy_grad(logits, y2, o);
  CHECK((g.row(3).array() == 0).all());
  CHECK((g.row(4).array() == 0).all());
  CHECK(g(2, 3) < 0);
  CHECK(std::abs(g.row(2).sum()) <= 1e-15);  // p - onehot sums to 0
}

TEST_CASE("loss gradients: no counted token, -infinity logits, NaN rules", "[seq][backward]") {
  const double inf = std::numeric_limits<double>::infinity();
  row_matrix<double> logits = random_matrix(3, 4, 9);
  targets_t y(1, 3);
  y << -100, -100, -100;
  for (const auto red : reductions) {
    emask::loss_options o;
    o.reduction = red;
    CHECK((emask::masked_cross_entropy_grad(logits, y, o).array() == 0).all());
    CHECK((emask::masked_nll_grad(logits, y, o).array() == 0).all());
  }
  // -inf logit, not the target: probability 0, gradient exactly 0; as the target: loss inf,
  // gradient p - 1 = -1 there (p = 0), the others their probabilities.
  logits(0, 1) = -inf;
  logits(1, 2) = -inf;
  y << 0, 2, -100;
  emask::loss_options o;
  o.reduction = emask::loss_reduction::sum;
  const row_matrix<double> g = emask::masked_cross_entropy_grad(logits, y, o);
  CHECK(g(0, 1) == 0);
  CHECK(g(1, 2) == -1);
  CHECK(!g.hasNaN());
#ifndef __FAST_MATH__  // the forward's loss (loss.hpp) relies on IEEE infinities
  CHECK(std::isinf(emask::masked_cross_entropy(logits, y, o).value));
#endif
  CHECK(std::abs(g.row(1).sum()) <= 1e-15);  // the others hold p summing to 1
  // Every logit -inf: the forward's loss is NaN, and so is the gradient row.
  logits.row(0).setConstant(-inf);
  const row_matrix<double> gn = emask::masked_cross_entropy_grad(logits, y, o);
#ifndef __FAST_MATH__  // the forward's loss (loss.hpp) relies on IEEE infinities
  CHECK(std::isnan(emask::masked_cross_entropy(logits, y, o).value));
#endif
  CHECK(gn.row(0).hasNaN());
  CHECK(!gn.row(1).hasNaN());
  // NaN logit: NaN row, like the loss; NLL's gradient never reads the values.
  logits.row(0).setConstant(std::numeric_limits<double>::quiet_NaN());
  CHECK(emask::masked_cross_entropy_grad(logits, y, o).row(0).hasNaN());
  CHECK(!emask::masked_nll_grad(logits, y, o).hasNaN());
}

TEST_CASE("loss gradients: bad input raises the forward's errors, named after the gradient",
          "[seq][backward]") {
  using Catch::Matchers::Contains;
  const row_matrix<double> logits = random_matrix(4, 3, 2);
  targets_t y(2, 2);
  y << 0, 3, 1, 2;
  REQUIRE_THROWS_WITH(emask::masked_cross_entropy_grad(logits, y),
                      Contains("masked_cross_entropy_grad") && Contains("targets(0, 1)"));
  REQUIRE_THROWS_WITH(emask::masked_nll_grad(logits, y),
                      Contains("masked_nll_grad") && Contains("targets(0, 1)"));
  y(0, 1) = 0;
  const bool_matrix bad_mask = bool_matrix::Constant(3, 2, true);
  REQUIRE_THROWS_WITH(emask::masked_cross_entropy_grad(logits, y, bad_mask), Contains("'mask'"));
  targets_t y3(3, 1);
  y3 << 0, 0, 0;
  REQUIRE_THROWS_WITH(emask::masked_nll_grad(logits, y3), Contains("masked_nll_grad"));
  emask::loss_options o;
  o.reduction = static_cast<emask::loss_reduction>(7);
  REQUIRE_THROWS_WITH(emask::masked_cross_entropy_grad(logits, y, o),
                      Contains("options.reduction"));
  const row_matrix<double> empty(4, 0);
  REQUIRE_THROWS_WITH(emask::masked_cross_entropy_grad(empty, y), Contains("logits.cols()"));
}

TEST_CASE("pooling gradients: hand-checked and finite differences", "[seq][backward]") {
  const Index B = 3, T = 4, F = 5;
  const row_matrix<double> x = random_matrix(B * T, F, 5);
  const row_matrix<double> d = random_matrix(B, F, 6);
  bool_matrix keep(B, T);
  keep << true, false, true, true,  //
      false, false, false, false,   // no kept step
      false, true, false, false;
  for (const auto how : {emask::pooling::sum, emask::pooling::mean, emask::pooling::max}) {
    INFO("pooling " << static_cast<int>(how));
    const row_matrix<double> g = emask::masked_pool_grad(x, keep, how, d);
    check_fd(x, g, [&](const row_matrix<double>& xs) {
      return (emask::masked_pool(xs, keep, how).array() * d.array()).sum();
    });
    for (Index b = 0; b < B; ++b)
      for (Index t = 0; t < T; ++t)
        if (!keep(b, t)) CHECK((g.row(b * T + t).array() == 0).all());  // exactly 0
  }
  // Hand-checked: sequence 0 keeps 3 steps (mean: d / 3), sequence 2 one step.
  const row_matrix<double> gm = emask::masked_mean_grad(x, keep, d);
  CHECK(gm(0, 0) == d(0, 0) / 3);
  CHECK(gm(9, 4) == d(2, 4));
  CHECK(emask::masked_sum_grad(x, keep, d)(3, 2) == d(0, 2));
  // max: ties go to the first kept step; a masked larger step never takes it.
  row_matrix<double> xt(4, 2);
  xt << 1, 7,  //
      2, 9,    // masked
      2, 7,    //
      2, 3;
  bool_matrix k1(1, 4);
  k1 << true, false, true, true;
  row_matrix<double> d1(1, 2);
  d1 << 10, 20;
  const row_matrix<double> gx = emask::masked_max_grad(xt, k1, d1);
  row_matrix<double> want = row_matrix<double>::Zero(4, 2);
  want(2, 0) = 10;  // first of the tied 2s among kept steps (step 1 is masked)
  want(0, 1) = 20;  // 7 at steps 0 and 2: the first
  CHECK(gx == want);
  // float matches double.
  const row_matrix<float> gf =
      emask::masked_mean_grad(x.cast<float>().eval(), keep, d.cast<float>().eval());
  CHECK(((gf.cast<double>() - gm).array().abs() <= 1e-6 * (1 + gm.array().abs())).all());
}

TEST_CASE("pooling gradients: bad input", "[seq][backward]") {
  using Catch::Matchers::Contains;
  const row_matrix<double> x = random_matrix(6, 2, 1);
  const bool_matrix keep = bool_matrix::Constant(2, 3, true);
  const row_matrix<double> d(2, 2), wrong(2, 3);
  REQUIRE_THROWS_WITH(emask::masked_max_grad(x, keep, wrong),
                      Contains("masked_max_grad") && Contains("'d_pooled'") && Contains("2 x 2"));
  REQUIRE_THROWS_WITH(emask::masked_sum_grad(x, bool_matrix::Constant(2, 4, true), d),
                      Contains("masked_sum_grad") && Contains("mask.cols()"));
  REQUIRE_THROWS_WITH(emask::masked_mean_grad(x, bool_matrix::Constant(4, 3, true), d),
                      Contains("masked_mean_grad"));
  REQUIRE_THROWS_WITH(emask::masked_pool_grad(x, keep, static_cast<emask::pooling>(9), d),
                      Contains("'how'"));
}
