// Tests of emask/kernels/softmax_backward.hpp: hand-checked 3-element rows, central finite
// differences of the forward kernels (double), a plain double reference from the materialized
// keep mask, exact zeros at masked keys (NaN in dy there) and in fully masked rows, the sink
// gradient, variants agreeing, 1 thread == 2 threads bit for bit, aliasing, bad arguments.
//
// Bounds (stated once): finite differences in double with h = 1e-6 * max(1, |x|) agree with the
// analytic gradient g to |g - fd| <= 1e-6 * max(1, |fd|). A variant or the kernel in scalar S
// agrees with the double reference r to |g - r| <= tol(S) * (1 + |r|), tol(float) = 2e-5,
// tol(double) = 1e-12 (the same bound between two variants). Masked entries must be exactly 0.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <emask/emask.hpp>
#include <emask/kernels/softmax_backward.hpp>

#include "catch.hpp"

using emask::bool_matrix;
using emask::Index;
using emask::row_matrix;

namespace {

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

 private:
  std::uint64_t s_;
};

template <class S>
row_matrix<S> random_matrix(Index r, Index c, std::uint64_t seed, double lo = -3, double hi = 3) {
  test_rng g(seed);
  row_matrix<S> m(r, c);
  for (Index i = 0; i < r; ++i)
    for (Index j = 0; j < c; ++j) m(i, j) = static_cast<S>(g.uniform(lo, hi));
  return m;
}

bool_matrix random_keep(Index r, Index c, std::uint64_t seed, double p = 0.6) {
  test_rng g(seed);
  bool_matrix m(r, c);
  for (Index i = 0; i < r; ++i)
    for (Index j = 0; j < c; ++j) m(i, j) = g.uniform(0, 1) < p;
  return m;
}

template <class S>
double tol() {
  return std::is_same<S, float>::value ? 2e-5 : 1e-12;
}

/// Plain double backward from the keep mask: y, dy given; Log picks log-softmax.
row_matrix<double> reference_backward(bool log, const row_matrix<double>& y,
                                      const row_matrix<double>& dy, const bool_matrix& keep,
                                      double scale) {
  row_matrix<double> dx = row_matrix<double>::Zero(y.rows(), y.cols());
  for (Index q = 0; q < y.rows(); ++q) {
    double d = 0;
    for (Index k = 0; k < y.cols(); ++k)
      if (keep(q, k)) d += log ? dy(q, k) : y(q, k) * dy(q, k);
    for (Index k = 0; k < y.cols(); ++k)
      if (keep(q, k))
        dx(q, k) =
            log ? scale * (dy(q, k) - std::exp(y(q, k)) * d) : scale * y(q, k) * (dy(q, k) - d);
  }
  return dx;
}

template <class A, class B>
void check_close(const A& got, const B& want, double t) {
  REQUIRE(got.rows() == want.rows());
  REQUIRE(got.cols() == want.cols());
  for (Index i = 0; i < got.rows(); ++i)
    for (Index j = 0; j < got.cols(); ++j) {
      const double g = static_cast<double>(got(i, j)), w = static_cast<double>(want(i, j));
      INFO("entry (" << i << ", " << j << "): got " << g << ", want " << w);
      CHECK(std::abs(g - w) <= t * (1 + std::abs(w)));
    }
}

template <class A>
void check_masked_zero(const A& dx, const bool_matrix& keep) {
  for (Index i = 0; i < dx.rows(); ++i)
    for (Index j = 0; j < dx.cols(); ++j)
      if (!keep(i, j)) {
        INFO("masked entry (" << i << ", " << j << ") = " << dx(i, j));
        CHECK(dx(i, j) == 0);  // exactly 0, by design
      }
}

/// L(x) = sum over entries of w * forward(x) (masked entries of the log forward are excluded:
/// they are -inf constants).
template <class Mask>
double loss(bool log, const row_matrix<double>& x, const Mask& mask, const row_matrix<double>& w,
            const bool_matrix& keep, const emask::softmax_options& o) {
  const row_matrix<double> y =
      log ? emask::masked_log_softmax(x, mask, o) : emask::masked_softmax(x, mask, o);
  double l = 0;
  for (Index i = 0; i < y.rows(); ++i)
    for (Index j = 0; j < y.cols(); ++j)
      if (keep(i, j)) l += w(i, j) * y(i, j);
  return l;
}

template <class Mask>
void finite_difference_case(bool log, const Mask& mask, const bool_matrix& keep, Index q_len,
                            Index k_len, const emask::softmax_options& o, std::uint64_t seed) {
  const row_matrix<double> x = random_matrix<double>(q_len, k_len, seed);
  row_matrix<double> w = random_matrix<double>(q_len, k_len, seed + 1);
  const row_matrix<double> y =
      log ? emask::masked_log_softmax(x, mask, o) : emask::masked_softmax(x, mask, o);
  // dy = w at kept entries; NaN at masked ones (must not leak).
  row_matrix<double> dy = w;
  for (Index i = 0; i < q_len; ++i)
    for (Index j = 0; j < k_len; ++j)
      if (!keep(i, j)) dy(i, j) = std::numeric_limits<double>::quiet_NaN();
  const row_matrix<double> dx = log ? emask::masked_log_softmax_backward(y, dy, mask, o)
                                    : emask::masked_softmax_backward(y, dy, mask, o);
  check_masked_zero(dx, keep);
  for (Index i = 0; i < q_len; ++i)
    for (Index j = 0; j < k_len; ++j) {
      if (!keep(i, j)) continue;
      const double h = 1e-6 * (std::max)(1.0, std::abs(x(i, j)));
      row_matrix<double> xp = x, xm = x;
      xp(i, j) += h;
      xm(i, j) -= h;
      const double fd =
          (loss(log, xp, mask, w, keep, o) - loss(log, xm, mask, w, keep, o)) / (2 * h);
      INFO("log " << log << " entry (" << i << ", " << j << "): dx " << dx(i, j) << ", fd " << fd);
      CHECK(std::abs(dx(i, j) - fd) <= 1e-6 * (std::max)(1.0, std::abs(fd)));
    }
}

}  // namespace

TEST_CASE("softmax backward: hand-checked 3-element rows", "[kernels][backward]") {
  // y = [1/4, 1/2, 1/4], dy = [1, 2, 3]: sum y dy = 2, dx = y (dy - 2) = [-1/4, 0, 1/4].
  row_matrix<double> y(1, 3), dy(1, 3);
  y << 0.25, 0.5, 0.25;
  dy << 1, 2, 3;
  const bool_matrix all = bool_matrix::Constant(1, 3, true);
  row_matrix<double> dx = emask::masked_softmax_backward(y, dy, all);
  CHECK(std::abs(dx(0, 0) - (-0.25)) <= 1e-15);
  CHECK(std::abs(dx(0, 1) - (0.0)) <= 1e-15);
  CHECK(std::abs(dx(0, 2) - (0.25)) <= 1e-15);
  // scale 2 doubles it.
  emask::softmax_options o;
  o.scale = 2.0;
  dx = emask::masked_softmax_backward(y, dy, all, o);
  CHECK(std::abs(dx(0, 0) - (-0.5)) <= 1e-15);
  CHECK(std::abs(dx(0, 2) - (0.5)) <= 1e-15);
  // Key 2 masked, NaN in dy there: y = [1/3, 2/3, 0], sum = 1/3 + 4/3 = 5/3,
  // dx = [1/3 (1 - 5/3), 2/3 (2 - 5/3), 0] = [-2/9, 2/9, 0].
  bool_matrix keep(1, 3);
  keep << true, true, false;
  y << 1.0 / 3, 2.0 / 3, 0;
  dy << 1, 2, std::numeric_limits<double>::quiet_NaN();
  dx = emask::masked_softmax_backward(y, dy, keep);
  CHECK(std::abs(dx(0, 0) - (-2.0 / 9)) <= 1e-15);
  CHECK(std::abs(dx(0, 1) - (2.0 / 9)) <= 1e-15);
  CHECK(dx(0, 2) == 0);
  // Log-softmax: y = log [1/4, 1/2, 1/4], dy = [1, 2, 3]: sum dy = 6,
  // dx = dy - p * 6 = [-0.5, -1, 1.5].
  y << std::log(0.25), std::log(0.5), std::log(0.25);
  dy << 1, 2, 3;
  dx = emask::masked_log_softmax_backward(y, dy, all);
  CHECK(std::abs(dx(0, 0) - (-0.5)) <= 1e-14);
  CHECK(std::abs(dx(0, 1) - (-1.0)) <= 1e-14);
  CHECK(std::abs(dx(0, 2) - (1.5)) <= 1e-14);
  // Log, key 2 masked (y = -inf there, dy = inf): p = [1/3, 2/3], sum dy = 3, dx = [0, 0, 0].
  y << std::log(1.0 / 3), std::log(2.0 / 3), -std::numeric_limits<double>::infinity();
  dy << 1, 2, std::numeric_limits<double>::infinity();
  dx = emask::masked_log_softmax_backward(y, dy, keep);
  CHECK(std::abs(dx(0, 0) - (0.0)) <= 1e-14);
  CHECK(std::abs(dx(0, 1) - (0.0)) <= 1e-14);
  CHECK(dx(0, 2) == 0);
}

TEST_CASE("softmax backward: central finite differences of the forward (double)",
          "[kernels][backward]") {
  emask::softmax_options o;
  o.tile_q = 3;
  o.tile_k = 4;  // partial tiles
  for (const bool log : {false, true}) {
    o.scale = 0.7;
    {
      const auto m = emask::causal();
      finite_difference_case(log, m, emask::materialize(m, 7, 9), 7, 9, o, 11);
    }
    o.scale = -1.3;
    {
      const auto m = emask::sliding_window(2, 1);
      finite_difference_case(log, m, emask::materialize(m, 6, 10), 6, 10, o, 21);
    }
    o.scale.reset();
    {
      bool_matrix keep = random_keep(8, 11, 31);
      keep.row(3).setConstant(false);  // fully masked row
      finite_difference_case(log, keep, keep, 8, 11, o, 41);
      const emask::additive_mask<double> bias(
          keep.select(
              row_matrix<double>::Zero(8, 11),
              row_matrix<double>::Constant(8, 11, -std::numeric_limits<double>::infinity())),
          -std::numeric_limits<double>::infinity());
      finite_difference_case(log, bias, keep, 8, 11, o, 51);
    }
  }
}

TEMPLATE_TEST_CASE("softmax backward: every variant against a plain double reference",
                   "[kernels][backward]", float, double) {
  using S = TestType;
  const Index q_len = 37, k_len = 53;
  for (const bool log : {false, true}) {
    for (int m = 0; m < 3; ++m) {
      emask::softmax_options o;
      o.scale = m == 1 ? -0.5 : 1.25;
      o.tile_q = 8;
      o.tile_k = 16;
      o.q_offset = m == 2 ? 5 : 0;
      o.k_offset = m == 2 ? 2 : 0;
      bool_matrix keep = random_keep(q_len, k_len, 100 + static_cast<std::uint64_t>(m));
      keep.row(4).setConstant(false);
      const auto causal = emask::causal();
      const auto window = emask::sliding_window(9, 3);
      const row_matrix<S> x = random_matrix<S>(q_len, k_len, 7);
      row_matrix<S> dy = random_matrix<S>(q_len, k_len, 8);
      const auto run = [&](const auto& mask, const bool_matrix& kept) {
        const row_matrix<S> y =
            log ? emask::masked_log_softmax(x, mask, o) : emask::masked_softmax(x, mask, o);
        row_matrix<S> dyn = dy;
        for (Index i = 0; i < q_len; ++i)
          for (Index j = 0; j < k_len; ++j)
            if (!kept(i, j)) dyn(i, j) = std::numeric_limits<S>::quiet_NaN();
        const row_matrix<double> want = reference_backward(
            log, y.template cast<double>(), dy.template cast<double>(), kept, *o.scale);
        row_matrix<S> t(q_len, k_len), f(q_len, k_len), n(q_len, k_len);
        if (log) {
          emask::masked_log_softmax_backward(emask::tiled, y, dyn, mask, t, o);
          emask::masked_log_softmax_backward(emask::fused, y, dyn, mask, f, o);
          emask::masked_log_softmax_backward(emask::reference::naive, y, dyn, mask, n, o);
        } else {
          emask::masked_softmax_backward(emask::tiled, y, dyn, mask, t, o);
          emask::masked_softmax_backward(emask::fused, y, dyn, mask, f, o);
          emask::masked_softmax_backward(emask::reference::naive, y, dyn, mask, n, o);
        }
        for (const row_matrix<S>* g : {&t, &f, &n}) {
          check_close(*g, want, tol<S>());
          check_masked_zero(*g, kept);
        }
        check_close(t, f.template cast<double>(), tol<S>());  // variants agree
      };
      if (m == 0) run(keep, keep);
      if (m == 1) run(window, emask::materialize(window.offset(0, 0), q_len, k_len));
      if (m == 2) run(causal, emask::materialize(causal.offset(5, 2), q_len, k_len));
    }
  }
}

TEMPLATE_TEST_CASE("softmax backward: fully masked rows and -inf rows give zeros",
                   "[kernels][backward]", float, double) {
  using S = TestType;
  const S inf = std::numeric_limits<S>::infinity(), nan = std::numeric_limits<S>::quiet_NaN();
  bool_matrix keep = bool_matrix::Constant(3, 4, true);
  keep.row(1).setConstant(false);
  row_matrix<S> y = row_matrix<S>::Constant(3, 4, S(0.25));
  row_matrix<S> dy = row_matrix<S>::Constant(3, 4, S(1));
  dy.row(1).setConstant(nan);
  y.row(1).setConstant(nan);  // garbage in a masked row is never read into the result
  for (const auto* v : {"tiled", "fused", "naive"}) {
    INFO(v);
    row_matrix<S> dx = row_matrix<S>::Constant(3, 4, S(7));
    const std::string s = v;
    if (s == "tiled") emask::masked_softmax_backward(emask::tiled, y, dy, keep, dx);
    if (s == "fused") emask::masked_softmax_backward(emask::fused, y, dy, keep, dx);
    if (s == "naive") emask::masked_softmax_backward(emask::reference::naive, y, dy, keep, dx);
    CHECK((dx.row(1).array() == S(0)).all());
    CHECK((dx.row(0).array().abs() <= S(1e-6)).all());  // uniform dy: gradient 0
    // Log: a row whose kept log-probabilities are all -inf (the forward wrote it as empty).
    row_matrix<S> yl = row_matrix<S>::Constant(3, 4, std::log(S(0.25)));
    yl.row(2).setConstant(-inf);
    yl.row(1).setConstant(nan);
    if (s == "tiled") emask::masked_log_softmax_backward(emask::tiled, yl, dy, keep, dx);
    if (s == "fused") emask::masked_log_softmax_backward(emask::fused, yl, dy, keep, dx);
    if (s == "naive") emask::masked_log_softmax_backward(emask::reference::naive, yl, dy, keep, dx);
    CHECK((dx.row(1).array() == S(0)).all());
    CHECK((dx.row(2).array() == S(0)).all());
    CHECK((dx.row(0).array().abs() <= S(1e-6)).all());
  }
  // A forward row with every kept score -inf, through the forward.
  row_matrix<S> x = random_matrix<S>(2, 5, 3);
  x.row(0).setConstant(-inf);
  const bool_matrix all = bool_matrix::Constant(2, 5, true);
  const row_matrix<S> yl = emask::masked_log_softmax(x, all);
  const row_matrix<S> dx = emask::masked_log_softmax_backward(yl, row_matrix<S>::Ones(2, 5), all);
  CHECK((dx.row(0).array() == S(0)).all());
  CHECK(!dx.row(1).hasNaN());
}

TEST_CASE("softmax backward: the sink logit gradient by finite differences",
          "[kernels][backward]") {
  const Index q_len = 5, k_len = 7;
  const row_matrix<double> x = random_matrix<double>(q_len, k_len, 61);
  const row_matrix<double> w = random_matrix<double>(q_len, k_len, 62);
  bool_matrix keep = random_keep(q_len, k_len, 63);
  keep.row(2).setConstant(false);
  const double sink = 0.8;
  for (const bool log : {false, true}) {
    emask::softmax_options o;
    o.scale = 0.9;
    o.slice.h = 1;
    o.sink_logit = {5.0, sink};
    const row_matrix<double> y =
        log ? emask::masked_log_softmax(x, keep, o) : emask::masked_softmax(x, keep, o);
    row_matrix<double> dx(q_len, k_len), dx_plain(q_len, k_len);
    Eigen::VectorXd d_sink(q_len);
    if (log) {
      emask::masked_log_softmax_backward(y, w, keep, dx, d_sink, o);
      emask::masked_log_softmax_backward(y, w, keep, dx_plain, o);
    } else {
      emask::masked_softmax_backward(y, w, keep, dx, d_sink, o);
      emask::masked_softmax_backward(y, w, keep, dx_plain, o);
    }
    CHECK(dx == dx_plain);
    CHECK(d_sink(2) == 0);  // fully masked row: its output does not depend on the sink
    const auto at = [&](double s, const row_matrix<double>& xs) {
      emask::softmax_options os = o;
      os.sink_logit[1] = s;
      return loss(log, xs, keep, w, keep, os);
    };
    const double h = 1e-6;
    const double fd = (at(sink + h, x) - at(sink - h, x)) / (2 * h);
    INFO("log " << log << ": d_sink " << d_sink.sum() << ", fd " << fd);
    CHECK(std::abs(d_sink.sum() - fd) <= 1e-6 * (std::max)(1.0, std::abs(fd)));
    // dx with the sink, by finite differences too.
    for (Index i = 0; i < q_len; ++i)
      for (Index j = 0; j < k_len; ++j) {
        if (!keep(i, j)) continue;
        row_matrix<double> xp = x, xm = x;
        xp(i, j) += h;
        xm(i, j) -= h;
        const double fdx = (at(sink, xp) - at(sink, xm)) / (2 * h);
        CHECK(std::abs(dx(i, j) - fdx) <= 1e-6 * (std::max)(1.0, std::abs(fdx)));
      }
    // naive and fused give the same sink gradient.
    Eigen::VectorXd d_fused(q_len), d_naive(q_len);
    if (log) {
      emask::masked_log_softmax_backward(emask::fused, y, w, keep, dx, d_fused, o);
      emask::masked_log_softmax_backward(emask::reference::naive, y, w, keep, dx, d_naive, o);
    } else {
      emask::masked_softmax_backward(emask::fused, y, w, keep, dx, d_fused, o);
      emask::masked_softmax_backward(emask::reference::naive, y, w, keep, dx, d_naive, o);
    }
    for (Index i = 0; i < q_len; ++i) {
      CHECK(std::abs(d_fused(i) - d_sink(i)) <= 1e-12 * (1 + std::abs(d_sink(i))));
      CHECK(std::abs(d_naive(i) - d_sink(i)) <= 1e-12 * (1 + std::abs(d_sink(i))));
    }
  }
}

TEMPLATE_TEST_CASE("softmax backward: 1 thread and 2 threads agree bit for bit; in place",
                   "[kernels][backward]", float, double) {
  using S = TestType;
  const Index n = 256;  // 65536 entries: above the parallel threshold
  const row_matrix<S> x = random_matrix<S>(n, n, 71);
  const row_matrix<S> dy = random_matrix<S>(n, n, 72);
  const auto m = emask::sliding_window(100, 20) & emask::causal();
  for (const bool log : {false, true}) {
    emask::softmax_options o;
    o.scale = 0.5;
    const row_matrix<S> y =
        log ? emask::masked_log_softmax(x, m, o) : emask::masked_softmax(x, m, o);
    row_matrix<S> a(n, n), b(n, n);
    o.threads = 1;
    log ? emask::masked_log_softmax_backward(y, dy, m, a, o)
        : emask::masked_softmax_backward(y, dy, m, a, o);
    o.threads = 2;
    log ? emask::masked_log_softmax_backward(y, dy, m, b, o)
        : emask::masked_softmax_backward(y, dy, m, b, o);
    CHECK(std::memcmp(a.data(), b.data(), sizeof(S) * static_cast<std::size_t>(n * n)) == 0);
    // Streaming stores for the masked part (stream_bytes 0), and column-major inputs (copied
    // once into row-major): the same bits.
    emask::softmax_options os = o;
    os.stream_bytes = 0;
    const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> y_cm = y, dy_cm = dy;
    log ? emask::masked_log_softmax_backward(y_cm, dy_cm, m, b, os)
        : emask::masked_softmax_backward(y_cm, dy_cm, m, b, os);
    CHECK(b == a);
    // dx in the storage of dy, then of y: the same result.
    row_matrix<S> in = dy;
    log ? emask::masked_log_softmax_backward(y, in, m, in, o)
        : emask::masked_softmax_backward(y, in, m, in, o);
    CHECK(in == a);
    row_matrix<S> yy = y;
    log ? emask::masked_log_softmax_backward(yy, dy, m, yy, o)
        : emask::masked_softmax_backward(yy, dy, m, yy, o);
    CHECK(yy == a);
  }
}

TEST_CASE("softmax backward: bad arguments raise emask::error before any write",
          "[kernels][backward]") {
  using Catch::Matchers::Contains;
  const row_matrix<float> y = random_matrix<float>(4, 6, 1), dy = random_matrix<float>(4, 6, 2);
  row_matrix<float> dx = row_matrix<float>::Constant(4, 6, 7.f), wrong(3, 6);
  const auto m = emask::causal();
  const auto untouched = [&] { return (dx.array() == 7.f).all(); };
  REQUIRE_THROWS_WITH(emask::masked_softmax_backward(y, dy, m, wrong),
                      Contains("masked_softmax_backward") && Contains("'dx'") && Contains("4 x 6"));
  REQUIRE_THROWS_WITH(emask::masked_log_softmax_backward(y, dy, m, wrong),
                      Contains("masked_log_softmax_backward") && Contains("'dx'"));
  REQUIRE_THROWS_WITH(emask::masked_softmax_backward(y, wrong, m, dx), Contains("'dy'"));
  emask::softmax_options o;
  o.tile_q = 0;
  REQUIRE_THROWS_WITH(emask::masked_softmax_backward(y, dy, m, dx, o),
                      Contains("'options.tile_q'"));
  o = {};
  o.scale = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_THROWS_WITH(emask::masked_softmax_backward(y, dy, m, dx, o), Contains("'options.scale'"));
  o = {};
  o.scale = 1e39;  // finite as double, not as float
  REQUIRE_THROWS_WITH(emask::masked_softmax_backward(y, dy, m, dx, o), Contains("'options.scale'"));
  o = {};
  o.softcap = 30;
  REQUIRE_THROWS_WITH(emask::masked_softmax_backward(y, dy, m, dx, o),
                      Contains("'options.softcap'"));
  o = {};
  const row_matrix<double> zero_bias = row_matrix<double>::Zero(4, 6);
  o.score_mod = emask::additive_bias(zero_bias);
  REQUIRE_THROWS_WITH(emask::masked_log_softmax_backward(y, dy, m, dx, o),
                      Contains("'options.score_mod'"));
  o = {};
  o.threads = -1;
  REQUIRE_THROWS_WITH(emask::masked_softmax_backward(y, dy, m, dx, o),
                      Contains("'options.threads'"));
  o = {};
  Eigen::VectorXf d_sink(4), short_sink(3);
  REQUIRE_THROWS_WITH(emask::masked_softmax_backward(y, dy, m, dx, d_sink, o),
                      Contains("'options.sink_logit'"));
  o.sink_logit = {1.0};
  REQUIRE_THROWS_WITH(emask::masked_softmax_backward(y, dy, m, dx, short_sink, o),
                      Contains("'d_sink'"));
  o.slice.h = 1;
  REQUIRE_THROWS_WITH(emask::masked_softmax_backward(y, dy, m, dx, o),
                      Contains("'options.sink_logit'"));
  o = {};
  const bool_matrix small = bool_matrix::Constant(3, 6, true);
  REQUIRE_THROWS_WITH(emask::masked_softmax_backward(y, dy, small, dx), Contains("'mask'"));
  const emask::additive_mask<float> bias(row_matrix<float>::Zero(4, 6), -1e30f);
  o.q_offset = 1;
  REQUIRE_THROWS_WITH(emask::masked_softmax_backward(y, dy, bias, dx, o),
                      Contains("options.q_offset"));
  // Masks that cannot answer for the slice (mask.check, as the forward), in every variant.
  const auto pad = emask::key_padding::from_lengths({3, 6}, 6);
  o = {};
  o.slice.b = 2;
  REQUIRE_THROWS_WITH(emask::masked_softmax_backward(y, dy, pad, dx, o),
                      Contains("masked_softmax_backward") && Contains("key padding"));
  REQUIRE_THROWS_WITH(emask::masked_softmax_backward(emask::fused, y, dy, pad, dx, o),
                      Contains("key padding"));
  REQUIRE_THROWS_WITH(
      emask::masked_log_softmax_backward(emask::reference::naive, y, dy, pad, dx, o),
      Contains("masked_log_softmax_backward") && Contains("key padding"));
  const auto bits = emask::bit_mask::from_bool(bool_matrix::Constant(4, 5, true));
  REQUIRE_THROWS_WITH(emask::masked_softmax_backward(y, dy, bits, dx), Contains("key positions"));
  REQUIRE(untouched());
}
