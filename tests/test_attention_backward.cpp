// masked_attention_backward: finite differences in double (every entry of q, k, v and the sink
// logits) on causal, sliding window, padding, dense, additive and grouped-query problems with
// ALiBi, softcap, scale and offsets; tiled against naive in float and double; masked keys and
// fully masked rows; thread-count determinism; key shards; bad input by message.
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include <emask/kernels/attention_backward.hpp>
#include <emask/reference/attention.hpp>
#include <emask/reference/attention_backward.hpp>

#include "mask_testing.hpp"

namespace {

using emask::Index;
using emask::row_matrix;
using emask_test::rng;
using emask_test::uniform_matrix;
using dmat = row_matrix<double>;
using dvec = Eigen::VectorXd;

/// Finite differences: central, step h = 1e-5 on entries of magnitude <= 1. The truncation
/// error is O(h^2 f''') ~ 1e-10 and the rounding error ~ 1e-16 / h ~ 1e-11, so every gradient
/// entry must match within 1e-7 relative to the largest gradient entry (and 1e-7 absolute).
constexpr double fd_h = 1e-5;
constexpr double fd_tol = 1e-7;

double max_abs(const dmat& m) { return m.size() ? m.cwiseAbs().maxCoeff() : 0.0; }

void check_close(const dmat& got, const dmat& want, double rel, const char* what) {
  INFO(what);
  REQUIRE(got.rows() == want.rows());
  REQUIRE(got.cols() == want.cols());
  REQUIRE(got.allFinite());
  const double bound = rel * (std::max)(1.0, max_abs(want));
  const double err = got.size() ? (got - want).cwiseAbs().maxCoeff() : 0.0;
  INFO("max error " << err << " bound " << bound);
  CHECK(err <= bound);
}

/// One-head problem: forward, loss L = sum(dout .* out), finite differences of L.
template <class Mask>
struct head_problem {
  dmat q, k, v, dout;
  Mask mask;
  emask::attention_options opt;

  double loss(const dmat& qq, const dmat& kk, const dmat& vv) const {
    dmat out(qq.rows(), vv.cols());
    emask::masked_attention(emask::reference::naive, qq, kk, vv, mask, out, opt);
    return (out.array() * dout.array()).sum();
  }
  void forward(dmat& out, dvec& lse) const {
    out.resize(q.rows(), v.cols());
    lse.resize(q.rows());
    emask::masked_attention(q, k, v, mask, out, lse, opt);
  }
  dmat fd(int which) const {
    const dmat& x = which == 0 ? q : which == 1 ? k : v;
    dmat g(x.rows(), x.cols());
    for (Index i = 0; i < x.rows(); ++i)
      for (Index c = 0; c < x.cols(); ++c) {
        dmat xp = x, xm = x;
        xp(i, c) += fd_h;
        xm(i, c) -= fd_h;
        const double lp = which == 0   ? loss(xp, k, v)
                          : which == 1 ? loss(q, xp, v)
                                       : loss(q, k, xp);
        const double lm = which == 0   ? loss(xm, k, v)
                          : which == 1 ? loss(q, xm, v)
                                       : loss(q, k, xm);
        g(i, c) = (lp - lm) / (2 * fd_h);
      }
    return g;
  }
  /// Both variants against finite differences.
  void check() const {
    dmat out;
    dvec lse;
    forward(out, lse);
    const dmat gq = fd(0), gk = fd(1), gv = fd(2);
    dmat dq(q.rows(), q.cols()), dk(k.rows(), k.cols()), dv(v.rows(), v.cols());
    emask::masked_attention_backward(q, k, v, mask, opt, out, lse, dout, dq, dk, dv);
    check_close(dq, gq, fd_tol, "tiled dq");
    check_close(dk, gk, fd_tol, "tiled dk");
    check_close(dv, gv, fd_tol, "tiled dv");
    dmat nq(q.rows(), q.cols()), nk(k.rows(), k.cols()), nv(v.rows(), v.cols());
    emask::masked_attention_backward(emask::reference::naive, q, k, v, mask, opt, out, lse, dout,
                                     nq, nk, nv);
    check_close(nq, gq, fd_tol, "naive dq");
    check_close(nk, gk, fd_tol, "naive dk");
    check_close(nv, gv, fd_tol, "naive dv");
  }
};

template <class Mask>
head_problem<Mask> make_head(std::uint64_t seed, Index lq, Index lk, Index d, Index dv,
                             const Mask& mask, const emask::attention_options& opt = {}) {
  rng g(seed);
  head_problem<Mask> p{uniform_matrix<double>(g, lq, d),
                       uniform_matrix<double>(g, lk, d),
                       uniform_matrix<double>(g, lk, dv),
                       uniform_matrix<double>(g, lq, dv),
                       mask,
                       opt};
  // Tiles that divide neither length (rounded up to the SIMD block, several tiles each).
  p.opt.tile_q = 5;
  p.opt.tile_k = 3;
  return p;
}

emask::bool_matrix random_keep(rng& g, Index lq, Index lk, double p) {
  emask::bool_matrix m(lq, lk);
  for (Index i = 0; i < lq; ++i)
    for (Index j = 0; j < lk; ++j) m(i, j) = g.coin(p);
  return m;
}

}  // namespace

TEST_CASE("attention backward: finite differences, one head", "[kernels][backward]") {
  SECTION("causal, D != Dv") { make_head(1, 19, 19, 3, 5, emask::causal()).check(); }
  SECTION("sliding window with scale") {
    emask::attention_options o;
    o.scale = 0.7;
    make_head(2, 21, 21, 4, 2, emask::sliding_window(4, 0), o).check();
  }
  SECTION("key padding") {
    make_head(3, 17, 23, 3, 3, emask::key_padding::from_lengths({15}, 23)).check();
  }
  SECTION("bool_matrix with fully masked rows and unkept keys") {
    rng g(4);
    emask::bool_matrix m = random_keep(g, 18, 20, 0.5);
    m.row(3).setConstant(false);
    m.row(11).setConstant(false);
    m.col(7).setConstant(false);
    make_head(5, 18, 20, 3, 4, m).check();
  }
  SECTION("additive bias (a relative-position bias and -inf entries)") {
    rng g(6);
    row_matrix<double> bias = uniform_matrix<double>(g, 16, 18, 2.0);
    for (Index i = 0; i < 16; ++i)
      for (Index j = i + 3; j < 18; ++j) bias(i, j) = -std::numeric_limits<double>::infinity();
    make_head(7, 16, 18, 3, 3, emask::additive_mask<double>(bias, 0.0)).check();
  }
  SECTION("ALiBi and softcap") {
    emask::attention_options o;
    o.alibi = {0.25};
    o.softcap = 1.5;
    o.scale = 2.0;
    make_head(8, 19, 19, 4, 3, emask::causal(), o).check();
  }
  SECTION("decode-like: Lq < Lk, bottom-right causal, offsets, ALiBi") {
    emask::attention_options o;
    o.q_offset = 3;
    o.k_offset = 3;
    o.alibi = {0.5};
    make_head(9, 5, 26, 3, 4, emask::causal::with_diagonal(26 - 5), o).check();
  }
}

TEST_CASE("attention backward: finite differences, sinks", "[kernels][backward]") {
  auto p = make_head(10, 18, 18, 3, 3, emask::causal());
  p.opt.sink_logit = {0.4};
  // Row 0 keeps no key but the sink: zeros, lse = sink.
  p.mask = emask::causal::with_diagonal(-1);
  dmat out;
  dvec lse;
  p.forward(out, lse);
  dmat dq(18, 3), dk(18, 3), dv(18, 3);
  Eigen::VectorXd dsink(1), nsink(1);
  emask::masked_attention_backward(p.q, p.k, p.v, p.mask, p.opt, out, lse, p.dout, dq, dk, dv,
                                   dsink);
  check_close(dq, p.fd(0), fd_tol, "dq");
  check_close(dk, p.fd(1), fd_tol, "dk");
  check_close(dv, p.fd(2), fd_tol, "dv");
  auto ps = p;
  ps.opt.sink_logit = {0.4 + fd_h};
  const double lp = ps.loss(p.q, p.k, p.v);
  ps.opt.sink_logit = {0.4 - fd_h};
  const double lm = ps.loss(p.q, p.k, p.v);
  CHECK(std::abs(dsink(0) - (lp - lm) / (2 * fd_h)) <= fd_tol);
  emask::masked_attention_backward(emask::reference::naive, p.q, p.k, p.v, p.mask, p.opt, out, lse,
                                   p.dout, dq, dk, dv, nsink);
  CHECK(std::abs(nsink(0) - dsink(0)) <= 1e-12);
}

namespace {

/// A batched problem [B, H, L, D] with grouped-query heads, in double.
struct batched_problem {
  Index b, h, hkv, lq, lk, d, dv;
  std::vector<double> q, k, v, dout, out, dq, dk, dv_;
  dmat lse;
  emask::attention_options opt;

  batched_problem(std::uint64_t seed, Index b_, Index h_, Index hkv_, Index lq_, Index lk_,
                  Index d_, Index dv__)
      : b(b_), h(h_), hkv(hkv_), lq(lq_), lk(lk_), d(d_), dv(dv__) {
    rng g(seed);
    auto fill = [&](std::vector<double>& x, Index n) {
      x.resize(static_cast<std::size_t>(n));
      for (auto& e : x) e = static_cast<double>(g.next() >> 11) * 0x1.0p-53 * 2.0 - 1.0;
    };
    fill(q, b * h * lq * d);
    fill(k, b * hkv * lk * d);
    fill(v, b * hkv * lk * dv);
    fill(dout, b * h * lq * dv);
    out.assign(static_cast<std::size_t>(b * h * lq * dv), 0.0);
    dq.assign(q.size(), 0.0);
    dk.assign(k.size(), 0.0);
    dv_.assign(v.size(), 0.0);
    lse.resize(b * h, lq);
  }
  template <class Mask>
  double loss(const std::vector<double>& qq, const std::vector<double>& kk,
              const std::vector<double>& vv, const Mask& mask) const {
    std::vector<double> o(out.size());
    emask::masked_attention(emask::reference::naive, emask::view_bhld(qq.data(), b, h, lq, d),
                            emask::view_bhld(kk.data(), b, hkv, lk, d),
                            emask::view_bhld(vv.data(), b, hkv, lk, dv), mask,
                            emask::view_bhld(o.data(), b, h, lq, dv), opt);
    double s = 0;
    for (std::size_t i = 0; i < o.size(); ++i) s += o[i] * dout[i];
    return s;
  }
  template <class Mask>
  void forward(const Mask& mask) {
    emask::masked_attention(emask::view_bhld(q.data(), b, h, lq, d),
                            emask::view_bhld(k.data(), b, hkv, lk, d),
                            emask::view_bhld(v.data(), b, hkv, lk, dv), mask,
                            emask::view_bhld(out.data(), b, h, lq, dv), lse, opt);
  }
  template <class V, class Mask>
  void backward(V variant, const Mask& mask) {
    emask::masked_attention_backward(
        variant, emask::view_bhld(q.data(), b, h, lq, d), emask::view_bhld(k.data(), b, hkv, lk, d),
        emask::view_bhld(v.data(), b, hkv, lk, dv), mask, opt,
        emask::view_bhld(out.data(), b, h, lq, dv), lse,
        emask::view_bhld(dout.data(), b, h, lq, dv), emask::view_bhld(dq.data(), b, h, lq, d),
        emask::view_bhld(dk.data(), b, hkv, lk, d), emask::view_bhld(dv_.data(), b, hkv, lk, dv));
  }
};

dmat as_mat(const std::vector<double>& x) {
  return Eigen::Map<const dmat>(x.data(), 1, static_cast<Index>(x.size()));
}

}  // namespace

TEST_CASE("attention backward: finite differences, grouped-query batch", "[kernels][backward]") {
  batched_problem p(11, 2, 4, 2, 9, 11, 3, 2);
  p.opt.alibi = emask::alibi_slopes(4);
  p.opt.tile_q = 4;
  p.opt.tile_k = 4;
  const auto mask = emask::causal::bottom_right(9, 11) & emask::sliding_window(6, 0, 2);
  p.forward(mask);
  auto fd = [&](std::vector<double>& x) {
    std::vector<double> g(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double keep = x[i];
      x[i] = keep + fd_h;
      const double lp = p.loss(p.q, p.k, p.v, mask);
      x[i] = keep - fd_h;
      const double lm = p.loss(p.q, p.k, p.v, mask);
      x[i] = keep;
      g[i] = (lp - lm) / (2 * fd_h);
    }
    return as_mat(g);
  };
  const dmat gq = fd(p.q), gk = fd(p.k), gv = fd(p.v);
  p.backward(emask::tiled, mask);
  check_close(as_mat(p.dq), gq, fd_tol, "tiled dq");
  check_close(as_mat(p.dk), gk, fd_tol, "tiled dk");
  check_close(as_mat(p.dv_), gv, fd_tol, "tiled dv");
  p.backward(emask::reference::naive, mask);
  check_close(as_mat(p.dq), gq, fd_tol, "naive dq");
  check_close(as_mat(p.dk), gk, fd_tol, "naive dk");
  check_close(as_mat(p.dv_), gv, fd_tol, "naive dv");
}

TEMPLATE_TEST_CASE("attention backward: tiled agrees with naive", "[kernels][backward]", float,
                   double) {
  using S = TestType;
  using mat = row_matrix<S>;
  // Relative to the largest entry: double 1e-11, float 2e-4 (sums of ~100 products of O(1)).
  const double tol = std::is_same<S, float>::value ? 2e-4 : 1e-11;
  rng g(12);
  const Index lq = 70, lk = 90, d = 16, dv = 24;
  const mat q = uniform_matrix<S>(g, lq, d), k = uniform_matrix<S>(g, lk, d);
  const mat v = uniform_matrix<S>(g, lk, dv), dout = uniform_matrix<S>(g, lq, dv);
  auto run = [&](const auto& mask, emask::attention_options opt) {
    mat out(lq, dv);
    emask::lse_vector<S> lse(lq);
    emask::masked_attention(q, k, v, mask, out, lse, opt);
    mat dq(lq, d), dk(lk, d), dvv(lk, dv), nq(lq, d), nk(lk, d), nv(lk, dv);
    emask::masked_attention_backward(q, k, v, mask, opt, out, lse, dout, dq, dk, dvv);
    emask::masked_attention_backward(emask::reference::naive, q, k, v, mask, opt, out, lse, dout,
                                     nq, nk, nv);
    check_close(dq.template cast<double>(), nq.template cast<double>(), tol, "dq");
    check_close(dk.template cast<double>(), nk.template cast<double>(), tol, "dk");
    check_close(dvv.template cast<double>(), nv.template cast<double>(), tol, "dv");
  };
  emask::attention_options opt;
  run(emask::causal(), opt);
  opt.tile_q = 7;
  opt.tile_k = 13;
  run(emask::sliding_window(20, 5), opt);
  opt.softcap = 3.0;
  opt.alibi = {0.1};
  run(emask::causal::bottom_right(lq, lk), opt);
  emask::bool_matrix m = random_keep(g, lq, lk, 0.3);
  m.row(5).setConstant(false);
  run(m, opt);
  opt.sink_logit = {0.5};
  run(emask::key_padding::from_lengths({60}, lk), opt);
}

TEST_CASE("attention backward: masked keys and fully masked rows", "[kernels][backward]") {
  rng g(13);
  const Index lq = 40, lk = 45, d = 8, dv = 6;
  row_matrix<float> q = uniform_matrix<float>(g, lq, d), k = uniform_matrix<float>(g, lk, d);
  row_matrix<float> v = uniform_matrix<float>(g, lk, dv), dout = uniform_matrix<float>(g, lq, dv);
  emask::bool_matrix m = random_keep(g, lq, lk, 0.4);
  m.row(0).setConstant(false);
  m.row(17).setConstant(false);
  m.col(2).setConstant(false);
  m.col(30).setConstant(false);
  // Values no kept pair reads may be anything: they must not reach the gradients.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  q.row(17).setConstant(nan);
  dout.row(17).setConstant(nan);
  k.row(30).setConstant(std::numeric_limits<float>::infinity());
  v.row(30).setConstant(nan);
  row_matrix<float> out(lq, dv);
  emask::lse_vector<float> lse(lq);
  emask::masked_attention(q, k, v, m, out, lse);
  REQUIRE(emask::detail::is_neg_inf(lse(17)));
  row_matrix<float> dq(lq, d), dk(lk, d), dvv(lk, dv);
  dq.setConstant(nan);  // overwritten, not accumulated
  dk.setConstant(nan);
  dvv.setConstant(nan);
  emask::masked_attention_backward(q, k, v, m, {}, out, lse, dout, dq, dk, dvv);
  CHECK(dq.allFinite());
  CHECK(dk.allFinite());
  CHECK(dvv.allFinite());
  CHECK((dq.row(0).array() == 0.0f).all());  // exact: nothing kept
  CHECK((dq.row(17).array() == 0.0f).all());
  CHECK((dk.row(2).array() == 0.0f).all());
  CHECK((dk.row(30).array() == 0.0f).all());
  CHECK((dvv.row(2).array() == 0.0f).all());
  CHECK((dvv.row(30).array() == 0.0f).all());
  CHECK(dq.row(1).cwiseAbs().maxCoeff() > 0.0f);
}

TEST_CASE("attention backward: bit-identical for 1 and 2 threads", "[kernels][backward]") {
  // (B, Hkv) = (1, 1): two passes with 2 threads, the fused scheme with 1; (2, 2): fused both.
  for (Index bb : {1, 2}) {
    batched_problem p(14, bb, 2 * bb, bb, 75, 83, 16, 8);
    p.opt.tile_q = 16;
    p.opt.tile_k = 16;
    p.opt.softcap = 2.0;
    const auto mask = emask::causal::bottom_right(75, 83);
    p.forward(mask);
    p.opt.threads = 1;
    p.backward(emask::tiled, mask);
    const auto dq1 = p.dq, dk1 = p.dk, dv1 = p.dv_;
    p.opt.threads = 2;
    p.backward(emask::tiled, mask);
    CHECK(std::memcmp(dq1.data(), p.dq.data(), dq1.size() * sizeof(double)) == 0);
    CHECK(std::memcmp(dk1.data(), p.dk.data(), dk1.size() * sizeof(double)) == 0);
    CHECK(std::memcmp(dv1.data(), p.dv_.data(), dv1.size() * sizeof(double)) == 0);
  }
}

TEST_CASE("attention backward: the sum over key shards is the whole gradient",
          "[kernels][backward]") {
  // Each shard's backward takes the merged out and lse of the whole row (ring attention):
  // dq adds up, dk and dv are those of the shard's keys.
  rng g(15);
  const Index lq = 30, lk = 50, split = 23, d = 5, dv = 4;
  const dmat q = uniform_matrix<double>(g, lq, d), k = uniform_matrix<double>(g, lk, d);
  const dmat v = uniform_matrix<double>(g, lk, dv), dout = uniform_matrix<double>(g, lq, dv);
  const auto mask = emask::causal::bottom_right(lq, lk);
  emask::attention_options opt;
  opt.alibi = {0.3};
  dmat out(lq, dv);
  dvec lse(lq);
  emask::masked_attention(q, k, v, mask, out, lse, opt);
  dmat dq(lq, d), dk(lk, d), dvv(lk, dv);
  emask::masked_attention_backward(q, k, v, mask, opt, out, lse, dout, dq, dk, dvv);
  dmat dq1(lq, d), dq2(lq, d), dk1(split, d), dk2(lk - split, d), dv1(split, dv),
      dv2(lk - split, dv);
  emask::masked_attention_backward(q, k.topRows(split), v.topRows(split), mask, opt, out, lse, dout,
                                   dq1, dk1, dv1);
  emask::attention_options o2 = opt;
  o2.k_offset = split;
  emask::masked_attention_backward(q, k.bottomRows(lk - split), v.bottomRows(lk - split), mask, o2,
                                   out, lse, dout, dq2, dk2, dv2);
  check_close(dq1 + dq2, dq, 1e-12, "dq");
  check_close(dk1, dk.topRows(split), 1e-12, "dk shard 1");
  check_close(dk2, dk.bottomRows(lk - split), 1e-12, "dk shard 2");
  check_close(dv1, dvv.topRows(split), 1e-12, "dv shard 1");
  check_close(dv2, dvv.bottomRows(lk - split), 1e-12, "dv shard 2");
}

TEST_CASE("attention backward: bad input", "[kernels][backward]") {
  using Catch::Matchers::Contains;
  const dmat q = dmat::Ones(4, 3), k = dmat::Ones(5, 3), v = dmat::Ones(5, 2);
  const dmat out = dmat::Zero(4, 2), dout = dmat::Zero(4, 2);
  const dvec lse = dvec::Zero(4);
  dmat dq = dmat::Constant(4, 3, 7.0), dk = dmat::Constant(5, 3, 7.0),
       dv = dmat::Constant(5, 2, 7.0);
  const emask::causal c;
  const emask::attention_options o;
  auto call = [&](const dmat& qq, const dmat& kk, const dmat& vv, const dmat& oo, const dvec& ll,
                  const dmat& dd, dmat& gq, dmat& gk, dmat& gv,
                  const emask::attention_options& op) {
    emask::masked_attention_backward(qq, kk, vv, c, op, oo, ll, dd, gq, gk, gv);
  };
  dmat bq(4, 2), bk(4, 3), bv(5, 3);
  REQUIRE_THROWS_WITH(call(q, dmat::Ones(5, 2), v, out, lse, dout, dq, dk, dv, o),
                      Contains("masked_attention_backward") && Contains("'k'"));
  REQUIRE_THROWS_WITH(call(q, k, dmat::Ones(4, 2), out, lse, dout, dq, dk, dv, o), Contains("'v'"));
  REQUIRE_THROWS_WITH(call(q, k, v, dmat::Zero(4, 3), lse, dout, dq, dk, dv, o), Contains("'out'"));
  REQUIRE_THROWS_WITH(call(q, k, v, out, dvec::Zero(3), dout, dq, dk, dv, o), Contains("'lse'"));
  REQUIRE_THROWS_WITH(call(q, k, v, out, lse, dmat::Zero(3, 2), dq, dk, dv, o), Contains("'dout'"));
  REQUIRE_THROWS_WITH(call(q, k, v, out, lse, dout, bq, dk, dv, o), Contains("'dq'"));
  REQUIRE_THROWS_WITH(call(q, k, v, out, lse, dout, dq, bk, dv, o), Contains("'dk'"));
  REQUIRE_THROWS_WITH(call(q, k, v, out, lse, dout, dq, dk, bv, o), Contains("'dv'"));
  emask::attention_options om;
  const row_matrix<double> zero_bias = dmat::Zero(4, 5);
  om.score_mod = emask::additive_bias(zero_bias);
  REQUIRE_THROWS_WITH(call(q, k, v, out, lse, dout, dq, dk, dv, om),
                      Contains("options.score_mod") && Contains("no derivative"));
  emask::attention_options ot;
  ot.tile_q = 0;
  REQUIRE_THROWS_WITH(call(q, k, v, out, lse, dout, dq, dk, dv, ot),
                      Contains("masked_attention_backward") && Contains("options.tile_q"));
  emask::attention_options oa;
  oa.alibi = {0.1, 0.2};
  oa.slice.h = 1;
  oa.softcap = -1;
  REQUIRE_THROWS_WITH(call(q, k, v, out, lse, dout, dq, dk, dv, oa), Contains("options.softcap"));
  dvec ds(1);
  REQUIRE_THROWS_WITH(
      emask::masked_attention_backward(q, k, v, c, o, out, lse, dout, dq, dk, dv, ds),
      Contains("'dsink'") && Contains("sink_logit"));
  emask::attention_options os;
  os.sink_logit = {0.1};
  dvec ds2(2);
  REQUIRE_THROWS_WITH(
      emask::masked_attention_backward(q, k, v, c, os, out, lse, dout, dq, dk, dv, ds2),
      Contains("'dsink'"));
  // Outputs untouched by every failed call.
  CHECK((dq.array() == 7.0).all());
  CHECK((dk.array() == 7.0).all());
  CHECK((dv.array() == 7.0).all());
  // Batched: grouped heads must divide, dk must have the KV heads.
  std::vector<double> buf(4 * 3 * 8 * 8, 0.0), gbuf(4 * 3 * 8 * 8, 0.0);
  dmat blse = dmat::Zero(4, 8);
  auto V = [&](Index hh) { return emask::view_bhld(buf.data(), 1, hh, 8, 3); };
  auto G = [&](Index hh) { return emask::view_bhld(gbuf.data(), 1, hh, 8, 3); };
  REQUIRE_THROWS_WITH(
      emask::masked_attention_backward(V(4), V(3), V(3), c, o, V(4), blse, V(4), G(4), G(3), G(3)),
      Contains("'k'") && Contains("divides"));
  REQUIRE_THROWS_WITH(
      emask::masked_attention_backward(V(4), V(2), V(2), c, o, V(4), blse, V(4), G(4), G(4), G(2)),
      Contains("'dk'"));
  REQUIRE_THROWS_WITH(emask::masked_attention_backward(V(4), V(2), V(2), c, o, V(4),
                                                       dmat::Zero(3, 8), V(4), G(4), G(2), G(2)),
                      Contains("'lse'"));
  CHECK(std::all_of(gbuf.begin(), gbuf.end(), [](double x) { return x == 0.0; }));
}
