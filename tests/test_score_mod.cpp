// Score modifiers (core/score_mod.hpp), softcap in masked_softmax, and materialized masks
// (bool_matrix, drop_mask, additive_mask) taken directly by the kernels: every ready modifier and
// a user callable against a float64 reference in every attention and softmax variant, batched
// heads, offsets, composition order, -inf from a modifier dropping a pair exactly like the mask,
// NaN following the NaN policy, T5 bucket goldens, bad input.
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <emask/kernels/attention.hpp>
#include <emask/kernels/softmax.hpp>
#include "kernel_variants.hpp"

#include "mask_testing.hpp"

namespace {

using emask::Index;
using emask::row_matrix;
using emask_test::rng;
using dmat = row_matrix<double>;
using mod_fn = std::function<double(double s, Index b, Index h, Index q, Index k)>;
using keep_fn = std::function<bool(Index q, Index k)>;

const double inf = std::numeric_limits<double>::infinity();

double uniform(rng& g, double amp) {
  return (static_cast<double>(g.next() >> 11) * 0x1.0p-53 * 2 - 1) * amp;
}

template <class S>
double tol() {
  return std::is_same<S, float>::value ? 3e-5 : 1e-11;
}

/// Plain float64 attention of one head, the modifier's formula `mod` after scale and softcap.
struct ref_result {
  dmat out;
  Eigen::VectorXd lse;
};
ref_result reference(const dmat& q, const dmat& k, const dmat& v, const keep_fn& keep,
                     const mod_fn& mod, Index b, Index h, double scale, double softcap, Index q_off,
                     Index k_off) {
  ref_result r{dmat::Zero(q.rows(), v.cols()), Eigen::VectorXd::Constant(q.rows(), -inf)};
  for (Index i = 0; i < q.rows(); ++i) {
    std::vector<double> s(static_cast<std::size_t>(k.rows()), -inf);
    double mx = -inf;
    for (Index j = 0; j < k.rows(); ++j) {
      if (!keep(q_off + i, k_off + j)) continue;
      double x = scale * q.row(i).dot(k.row(j));
      if (softcap > 0) x = softcap * std::tanh(x / softcap);
      x = mod(x, b, h, q_off + i, k_off + j);
      s[static_cast<std::size_t>(j)] = x;
      mx = std::max(mx, x);
    }
    if (mx == -inf) continue;
    double sum = 0;
    for (Index j = 0; j < k.rows(); ++j) sum += std::exp(s[static_cast<std::size_t>(j)] - mx);
    for (Index j = 0; j < k.rows(); ++j)
      r.out.row(i) += std::exp(s[static_cast<std::size_t>(j)] - mx) / sum * v.row(j);
    r.lse(i) = mx + std::log(sum);
  }
  return r;
}

/// Random q (lq x d), k and v (lk x d) in [-1, 1].
template <class S>
struct qkv {
  row_matrix<S> q, k, v;
  qkv(rng& g, Index lq, Index lk, Index d)
      : q(emask_test::uniform_matrix<S>(g, lq, d)),
        k(emask_test::uniform_matrix<S>(g, lk, d)),
        v(emask_test::uniform_matrix<S>(g, lk, d)) {}
};

const emask_test::attention_variant attention_variants[] = {emask_test::attention_variant::naive,
                                                            emask_test::attention_variant::tiled,
                                                            emask_test::attention_variant::decode};

/// Options of \p variant with 8 x 8 tiles, so that small problems cross tile boundaries.
emask_test::attention_options small_tiles(emask_test::attention_variant variant) {
  emask_test::attention_options o;
  o.variant = variant;
  o.tile_q = 8;
  o.tile_k = 8;
  return o;
}

struct case_t {
  std::string name;
  emask::score_mod mod;
  mod_fn formula;  // what the modifier computes, written from its formula
};

constexpr Index B = 2, H = 4, HKV = 2;

/// The ready modifiers and a user callable, each with its formula. \p dense holds the dense
/// bias [B, H, Lq, Lk] (absolute positions), \p pad a [B, 1, 1, Lk] padding bias.
std::vector<case_t> cases(const std::vector<double>& dense, const std::vector<float>& pad,
                          Index lq_abs, Index lk_abs, const Eigen::MatrixXd& t5_table) {
  const std::vector<double> slopes = emask::alibi_slopes(H);
  const std::vector<double> hb = {0.5, -1.25, 2.0, 0.0};
  std::vector<case_t> c;
  c.push_back(
      {"alibi causal", emask::alibi_bias(slopes), [=](double s, Index, Index h, Index q, Index k) {
         return s + slopes[static_cast<std::size_t>(h)] * static_cast<double>(k - q);
       }});
  c.push_back({"alibi symmetric", emask::alibi_bias(slopes, emask::alibi_form::symmetric),
               [=](double s, Index, Index h, Index q, Index k) {
                 return s -
                        slopes[static_cast<std::size_t>(h)] * std::abs(static_cast<double>(q - k));
               }});
  c.push_back({"head bias", emask::head_bias(hb), [=](double s, Index, Index h, Index, Index) {
                 return s + hb[static_cast<std::size_t>(h)];
               }});
  for (const bool bidir : {true, false})
    c.push_back(
        {bidir ? "t5 bidirectional" : "t5 causal", emask::t5_relative_bias(t5_table, bidir, 20),
         [=](double s, Index, Index h, Index q, Index k) {
           return s + t5_table(emask::t5_relative_bucket(k - q, bidir, t5_table.rows(), 20), h);
         }});
  c.push_back({"dense [B, H, Lq, Lk]", emask::additive_bias(dense.data(), B, H, lq_abs, lk_abs),
               [=, &dense](double s, Index b, Index h, Index q, Index k) {
                 return s +
                        dense[static_cast<std::size_t>(((b * H + h) * lq_abs + q) * lk_abs + k)];
               }});
  c.push_back(
      {"padding [B, 1, 1, Lk] with lowest()", emask::additive_bias(pad.data(), B, 1, 1, lk_abs),
       [=, &pad](double s, Index b, Index, Index, Index k) {
         const float x = pad[static_cast<std::size_t>(b * lk_abs + k)];
         return s + (x <= std::numeric_limits<float>::lowest() ? -inf : static_cast<double>(x));
       }});
  const auto wave = [](auto s, Index b, Index h, Index q, Index k) {
    using S = decltype(s);
    return s * S(0.75) +
           static_cast<S>(std::sin(0.3 * static_cast<double>(q - k) + static_cast<double>(b + h)));
  };
  c.push_back(
      {"user callable", emask::score_mod(wave), [=](double s, Index b, Index h, Index q, Index k) {
         return s * 0.75 + std::sin(0.3 * static_cast<double>(q - k) + static_cast<double>(b + h));
       }});
  c.push_back({"composed: head bias then alibi",
               emask::head_bias(hb).then(emask::alibi_bias(slopes)),
               [=](double s, Index, Index h, Index q, Index k) {
                 return s + hb[static_cast<std::size_t>(h)] +
                        slopes[static_cast<std::size_t>(h)] * static_cast<double>(k - q);
               }});
  return c;
}

}  // namespace

TEMPLATE_TEST_CASE(
    "score_mod: every ready modifier and a callable, every attention variant, "
    "batched grouped-query heads with offsets, against float64",
    "[score_mod]", float, double) {
  using S = TestType;
  rng g(20261203);
  const Index lq = 37, lk = 53, d = 16, dv = 8, q_off = 11, k_off = 3;
  const Index lq_abs = q_off + lq, lk_abs = k_off + lk;
  std::vector<double> dense(static_cast<std::size_t>(B * H * lq_abs * lk_abs));
  for (double& x : dense) x = uniform(g, 2);
  std::vector<float> pad(static_cast<std::size_t>(B * lk_abs), 0.25f);
  for (Index k = 0; k < 6; ++k)
    pad[static_cast<std::size_t>(lk_abs - 1 - k)] = std::numeric_limits<float>::lowest();
  pad[static_cast<std::size_t>(lk_abs + 20)] = -inf;
  Eigen::MatrixXd t5(8, H);
  for (Index r = 0; r < t5.rows(); ++r)
    for (Index c = 0; c < H; ++c) t5(r, c) = uniform(g, 3);

  std::vector<S> q(static_cast<std::size_t>(B * H * lq * d)),
      k(static_cast<std::size_t>(B * HKV * lk * d)), v(static_cast<std::size_t>(B * HKV * lk * dv));
  for (S& x : q) x = static_cast<S>(uniform(g, 1));
  for (S& x : k) x = static_cast<S>(uniform(g, 1));
  for (S& x : v) x = static_cast<S>(uniform(g, 1));
  const auto qv = emask::view_bhld(q.data(), B, H, lq, d);
  const auto kv = emask::view_bhld(k.data(), B, HKV, lk, d);
  const auto vv = emask::view_bhld(v.data(), B, HKV, lk, dv);
  const keep_fn window = [](Index qq, Index kk) { return kk <= qq && qq - kk < 40; };
  const emask::sliding_window window_mask(39, 0);

  for (const case_t& c : cases(dense, pad, lq_abs, lk_abs, t5)) {
    for (const auto variant : attention_variants) {
      for (const double softcap : {0.0, 3.0}) {
        INFO(c.name << ", variant " << static_cast<int>(variant) << ", softcap " << softcap);
        emask_test::attention_options o;
        o.variant = variant;
        o.score_mod = c.mod;
        o.softcap = softcap;
        o.q_offset = q_off;
        o.k_offset = k_off;
        o.tile_q = 8;
        o.tile_k = 16;
        o.decode_chunk = 7;
        std::vector<S> out(static_cast<std::size_t>(B * H * lq * dv), S(7));
        row_matrix<S> lse(B * H, lq);
        emask_test::masked_attention(qv, kv, vv, window_mask,
                                     emask::view_bhld(out.data(), B, H, lq, dv), lse, o);
        for (Index b = 0; b < B; ++b)
          for (Index h = 0; h < H; ++h) {
            const auto slice = [&](const std::vector<S>& buf, Index heads, Index len, Index dim,
                                   Index hh) {
              return Eigen::Map<const row_matrix<S>>(buf.data() + ((b * heads + hh) * len) * dim,
                                                     len, dim)
                  .template cast<double>()
                  .eval();
            };
            const dmat qd = slice(q, H, lq, d, h), kd = slice(k, HKV, lk, d, h / (H / HKV)),
                       vd = slice(v, HKV, lk, dv, h / (H / HKV));
            const ref_result r =
                reference(qd, kd, vd, window, c.formula, b, h, 0.25, softcap, q_off, k_off);
            const dmat got = slice(out, H, lq, dv, h);
            INFO("b " << b << " h " << h);
            CHECK((got - r.out).cwiseAbs().maxCoeff() <= tol<S>() * 10);
            for (Index i = 0; i < lq; ++i) {
              const double want = r.lse(i), have = static_cast<double>(lse(b * H + h, i));
              if (std::isinf(want)) {
                CHECK(have == want);
                CHECK(got.row(i).isZero(0));
              } else {
                CHECK(std::abs(have - want) <= tol<S>() * 10 * (1 + std::abs(want)));
              }
            }
          }
      }
    }
  }
}

TEMPLATE_TEST_CASE("score_mod and softcap in masked_softmax / masked_log_softmax, every variant",
                   "[score_mod][softmax]", float, double) {
  using S = TestType;
  rng g(7);
  const Index lq = 29, lk = 71, q_off = 5, k_off = 0;
  const row_matrix<S> x = emask_test::uniform_matrix<S>(g, lq, lk, 4.0);
  const std::vector<double> slopes = {0.3, 0.7};
  const keep_fn keep = [](Index qq, Index kk) { return kk <= qq + 20; };
  const emask::sliding_window mask(emask::unbounded, 20);
  for (const double softcap : {0.0, 2.5})
    for (const bool sym : {false, true})
      for (const auto variant :
           {emask_test::softmax_variant::naive, emask_test::softmax_variant::fused,
            emask_test::softmax_variant::tiled}) {
        INFO("softcap " << softcap << " symmetric " << sym << " variant "
                        << static_cast<int>(variant));
        emask_test::softmax_options o;
        o.variant = variant;
        o.scale = 0.5;
        o.softcap = softcap;
        o.score_mod = emask::alibi_bias(
            slopes, sym ? emask::alibi_form::symmetric : emask::alibi_form::causal);
        o.slice.h = 1;
        o.q_offset = q_off;
        o.k_offset = k_off;
        o.tile_q = 8;
        o.tile_k = 16;
        const auto [y, ly, lse] = emask_test::softmax_and_log_softmax(x, mask, o);
        for (Index i = 0; i < lq; ++i) {
          std::vector<double> s(static_cast<std::size_t>(lk), -inf);
          double mx = -inf;
          for (Index j = 0; j < lk; ++j) {
            if (!keep(q_off + i, k_off + j)) continue;
            double t = 0.5 * static_cast<double>(x(i, j));
            if (softcap > 0) t = softcap * std::tanh(t / softcap);
            const double rel = static_cast<double>((k_off + j) - (q_off + i));
            t += sym ? -0.7 * std::abs(rel) : 0.7 * rel;
            s[static_cast<std::size_t>(j)] = t;
            mx = std::max(mx, t);
          }
          double sum = 0;
          for (const double t : s) sum += std::exp(t - mx);
          const double l = mx + std::log(sum);
          CHECK(std::abs(static_cast<double>(lse(i)) - l) <= tol<S>() * (1 + std::abs(l)));
          double row_sum = 0;
          for (Index j = 0; j < lk; ++j) {
            const double t = s[static_cast<std::size_t>(j)];
            if (t == -inf) {
              CHECK(y(i, j) == S(0));  // masked: exactly zero
              CHECK(ly(i, j) == -std::numeric_limits<S>::infinity());
              continue;
            }
            CHECK(std::abs(static_cast<double>(y(i, j)) - std::exp(t - l)) <= tol<S>());
            CHECK(std::abs(static_cast<double>(ly(i, j)) - (t - l)) <=
                  tol<S>() * (1 + std::abs(t - l)));
            row_sum += static_cast<double>(y(i, j));
          }
          CHECK(std::abs(row_sum - 1) <= tol<S>() * 10);
        }
      }
}

TEMPLATE_TEST_CASE("score_mod: a modifier returning -inf drops its pair exactly like the mask",
                   "[score_mod]", float, double) {
  using S = TestType;
  rng g(3);
  const Index lq = 45, lk = 45, d = 8;
  const qkv<S> data(g, lq, lk, d);
  const row_matrix<S>&q = data.q, &k = data.k, &v = data.v;
  const emask::score_mod as_causal([](auto s, Index, Index, Index qq, Index kk) {
    return kk <= qq ? s : -std::numeric_limits<decltype(s)>::infinity();
  });
  for (const auto variant : attention_variants) {
    const emask_test::attention_options plain = small_tiles(variant);
    emask_test::attention_options modded = plain;
    modded.score_mod = as_causal;
    row_matrix<S> o1(lq, d), o2(lq, d);
    Eigen::Matrix<S, Eigen::Dynamic, 1> l1(lq), l2(lq);
    emask_test::masked_attention(q, k, v, emask::causal(), o1, l1, plain);
    emask_test::masked_attention(q, k, v, emask::keep_all(), o2, l2, modded);
    CHECK((o1 - o2).cwiseAbs().maxCoeff() <= static_cast<S>(tol<S>()));
    CHECK((l1 - l2).cwiseAbs().maxCoeff() <= static_cast<S>(tol<S>() * 10));
    // Every key dropped by the modifier: an empty row (zeros, lse -inf), as with a mask.
    modded.score_mod = emask::score_mod(
        [](auto, Index, Index, Index, Index) { return -std::numeric_limits<double>::infinity(); });
    emask_test::masked_attention(q, k, v, emask::keep_all(), o2, l2, modded);
    CHECK(o2.isZero(0));
    CHECK((l2.array() == -std::numeric_limits<S>::infinity()).all());
  }
  // Softmax: the dropped entries are exactly 0, the rest as with the causal mask.
  const row_matrix<S> x = emask_test::uniform_matrix<S>(g, lq, lk, 3.0);
  for (const auto variant : {emask_test::softmax_variant::naive, emask_test::softmax_variant::fused,
                             emask_test::softmax_variant::tiled}) {
    emask_test::softmax_options plain;
    plain.variant = variant;
    emask_test::softmax_options modded = plain;
    modded.score_mod = as_causal;
    row_matrix<S> y1(lq, lk), y2(lq, lk);
    emask_test::masked_softmax(x, emask::causal(), y1, plain);
    emask_test::masked_softmax(x, emask::keep_all(), y2, modded);
    for (Index i = 0; i < lq; ++i)
      for (Index j = i + 1; j < lk; ++j) CHECK(y2(i, j) == S(0));
    CHECK((y1 - y2).cwiseAbs().maxCoeff() <= static_cast<S>(tol<S>()));
  }
}

TEMPLATE_TEST_CASE("score_mod: NaN from a modifier follows the NaN policy", "[score_mod]", float,
                   double) {
  using S = TestType;
  rng g(5);
  const Index lq = 20, lk = 20, d = 4;
  const qkv<S> data(g, lq, lk, d);
  const row_matrix<S>&q = data.q, &k = data.k, &v = data.v;
  // NaN at (7, 3) (kept by causal) and at (2, 9) (dropped by causal).
  const emask::score_mod nan_at([](auto s, Index, Index, Index qq, Index kk) {
    using T = decltype(s);
    return (qq == 7 && kk == 3) || (qq == 2 && kk == 9) ? std::numeric_limits<T>::quiet_NaN() : s;
  });
  for (const auto variant : attention_variants) {
    emask_test::attention_options o = small_tiles(variant);
    row_matrix<S> clean(lq, d), dirty(lq, d);
    emask_test::masked_attention(q, k, v, emask::causal(), clean, o);
    o.score_mod = nan_at;
    emask_test::masked_attention(q, k, v, emask::causal(), dirty, o);
    for (Index i = 0; i < lq; ++i) {
      INFO("variant " << static_cast<int>(variant) << " row " << i);
      if (i == 7)
        CHECK(dirty.row(i).array().isNaN().all());
      else
        CHECK(dirty.row(i) == clean.row(i));  // row 2's NaN is at a dropped pair: no effect
    }
  }
}

TEST_CASE("t5_relative_bucket: goldens from the published formula", "[score_mod]") {
  // Bidirectional, 32 buckets, max_distance 128: 16 per direction, 8 exact.
  // -200: 8 + int(ln(200/8) / ln(128/8) * 8) = 8 + int(9.29) = 17 -> capped at 15.
  CHECK(emask::t5_relative_bucket(-200, true, 32, 128) == 15);
  // -20: 8 + int(ln(2.5) / ln(16) * 8) = 8 + int(2.64) = 10.
  CHECK(emask::t5_relative_bucket(-20, true, 32, 128) == 10);
  CHECK(emask::t5_relative_bucket(-7, true, 32, 128) == 7);
  CHECK(emask::t5_relative_bucket(-8, true, 32, 128) == 8);  // ln(1) = 0: the first log bucket
  CHECK(emask::t5_relative_bucket(0, true, 32, 128) == 0);
  CHECK(emask::t5_relative_bucket(3, true, 32, 128) == 19);  // 16 + 3
  // +10: 16 + 8 + int(ln(1.25) / ln(16) * 8) = 16 + 8 + int(0.64) = 24.
  CHECK(emask::t5_relative_bucket(10, true, 32, 128) == 24);
  // +100: 16 + 8 + int(ln(12.5) / ln(16) * 8) = 16 + 8 + int(7.29) = 31.
  CHECK(emask::t5_relative_bucket(100, true, 32, 128) == 31);
  CHECK(emask::t5_relative_bucket(1000000, true, 32, 128) == 31);
  // Causal, 32 buckets: 16 exact; keys after the query share bucket 0.
  // -200: 16 + int(ln(200/16) / ln(128/16) * 16) = 16 + int(19.43) = 35 -> capped at 31.
  CHECK(emask::t5_relative_bucket(-200, false, 32, 128) == 31);
  // -20: 16 + int(ln(1.25) / ln(8) * 16) = 16 + int(1.72) = 17.
  CHECK(emask::t5_relative_bucket(-20, false, 32, 128) == 17);
  CHECK(emask::t5_relative_bucket(-5, false, 32, 128) == 5);
  CHECK(emask::t5_relative_bucket(5, false, 32, 128) == 0);
  CHECK(emask::t5_relative_bucket(std::numeric_limits<Index>::min(), true, 32, 128) == 15);
  CHECK(emask::t5_relative_bucket(std::numeric_limits<Index>::max(), false, 32, 128) == 0);
}

TEST_CASE("score_mod: composition applies in order, and 1 and 2 threads give the same bits",
          "[score_mod]") {
  rng g(9);
  const Index l = 200, d = 16;
  const row_matrix<float> q = emask_test::uniform_matrix<float>(g, l, d),
                          k = emask_test::uniform_matrix<float>(g, l, d),
                          v = emask_test::uniform_matrix<float>(g, l, d);
  const emask::score_mod plus(
      [](auto s, Index, Index, Index, Index) { return s + decltype(s)(1); });
  const emask::score_mod times(
      [](auto s, Index, Index, Index, Index) { return s * decltype(s)(2); });
  const row_matrix<float> x = emask_test::uniform_matrix<float>(g, 3, 4);
  row_matrix<float> y(3, 4);
  emask::softmax_options o;
  o.score_mod = plus.then(times);  // (s + 1) * 2
  emask::masked_log_softmax(x, emask::keep_all(), y, o);
  row_matrix<float> y2(3, 4);
  emask::softmax_options o2;
  o2.scale = 2.0;  // 2 s + 2: the constant cancels in log-softmax
  emask::masked_log_softmax(x, emask::keep_all(), y2, o2);
  CHECK((y - y2).cwiseAbs().maxCoeff() <= 1e-5f);
  o.score_mod = times.then(plus);  // 2 s + 1: the same log-softmax, a different lse
  Eigen::VectorXf l1(3), l2(3);
  emask::masked_log_softmax(x, emask::keep_all(), y, l1, o);
  o.score_mod = plus.then(times);
  emask::masked_log_softmax(x, emask::keep_all(), y, l2, o);
  CHECK(((l2 - l1).array() - 1.0f).abs().maxCoeff() <= 1e-5f);

  emask::attention_options a;
  a.score_mod =
      emask::alibi_bias({0.125}, emask::alibi_form::symmetric).then(emask::head_bias({1.0}));
  a.tile_q = 16;
  row_matrix<float> o1(l, d), o2m(l, d);
  a.threads = 1;
  emask::masked_attention(q, k, v, emask::causal(), o1, a);
  a.threads = 2;
  emask::masked_attention(q, k, v, emask::causal(), o2m, a);
  CHECK(o1 == o2m);
}

TEST_CASE(
    "score_mod: bad input raises emask::error naming the function and argument, outputs "
    "untouched",
    "[score_mod][bad_input]") {
  const auto message = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const emask::error& e) {
      return e.what();
    }
    return "<no error>";
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(message([&] {
          (void)emask::alibi_bias({0.5, nan});
        }).find("emask::alibi_bias: argument 'slopes[1]'") == 0);
  CHECK(message([&] {
          (void)emask::head_bias({1e39});
        }).find("emask::head_bias: argument 'bias[0]'") == 0);
  CHECK(message([&] {
          (void)emask::t5_relative_bias(Eigen::MatrixXd::Zero(2, 1), true);
        }).find("emask::t5_relative_bias: argument 'table'") == 0);
  CHECK(message([&] {
          (void)emask::t5_relative_bias(Eigen::MatrixXd::Zero(32, 1), true, 8);
        }).find("emask::t5_relative_bias: argument 'max_distance'") == 0);
  CHECK(message([&] {
          (void)emask::t5_relative_bucket(1, false, 32, 16);
        }).find("emask::t5_relative_bucket: argument 'max_distance'") == 0);
  const std::vector<float> bias(12, 0.f);
  CHECK(message([&] {
          (void)emask::additive_bias(bias.data(), 1, 1, 0, 12);
        }).find("emask::additive_bias: argument 'q_len'") == 0);

  const row_matrix<float> q = row_matrix<float>::Ones(4, 2), k = q, v = q;
  row_matrix<float> out = row_matrix<float>::Constant(4, 2, 7.f);
  emask::attention_options o;
  o.slice.h = 2;  // head 2: the two slopes do not cover it
  o.score_mod = emask::alibi_bias({0.5, 0.25});
  const std::string m1 =
      message([&] { emask::masked_attention(q, k, v, emask::causal(), out, o); });
  CHECK(m1.find("emask::masked_attention: argument 'options.score_mod' = alibi_bias of 2 heads") ==
        0);
  CHECK((out.array() == 7.f).all());
  o.slice.h = 0;
  o.q_offset = 10;  // the 1 x 12 bias covers query position 0 only... broadcast: fine
  o.score_mod = emask::additive_bias(bias.data(), 1, 1, 3, 12);  // 3 query positions, call needs 14
  const std::string m2 =
      message([&] { emask::masked_attention(q, k, v, emask::causal(), out, o); });
  CHECK(m2.find("emask::masked_attention: argument 'options.score_mod' = additive_bias [B=1, H=1, "
                "Lq=3, Lk=12]") == 0);
  CHECK((out.array() == 7.f).all());
  row_matrix<float> y = row_matrix<float>::Constant(4, 4, 7.f);
  emask::softmax_options so;
  so.softcap = nan;
  CHECK(message([&] {
          emask::masked_softmax(row_matrix<float>::Ones(4, 4), emask::causal(), y, so);
        }).find("emask::masked_softmax: argument 'options.softcap'") == 0);
  so.softcap = 1e39;  // finite as double, not as float
  CHECK(message([&] {
          emask::masked_softmax(row_matrix<float>::Ones(4, 4), emask::causal(), y, so);
        }).find("emask::masked_softmax: argument 'options.softcap'") == 0);
  CHECK((y.array() == 7.f).all());
}

TEMPLATE_TEST_CASE(
    "masked_attention and masked_softmax take bool_matrix, drop_mask and "
    "additive_mask directly, in every variant",
    "[score_mod][materialized]", float, double) {
  using S = TestType;
  rng g(11);
  const Index lq = 23, lk = 41, d = 8;
  const qkv<S> data(g, lq, lk, d);
  const row_matrix<S>&q = data.q, &k = data.k, &v = data.v;
  emask::bool_matrix keep(lq, lk);
  for (Index i = 0; i < lq; ++i)
    for (Index j = 0; j < lk; ++j) keep(i, j) = i != 4 && g.coin(0.6);  // row 4 keeps nothing
  // A Hugging Face style bias: finite values where kept, finfo.min where masked.
  row_matrix<S> bias(lq, lk);
  for (Index i = 0; i < lq; ++i)
    for (Index j = 0; j < lk; ++j)
      bias(i, j) = keep(i, j) ? static_cast<S>(uniform(g, 1)) : std::numeric_limits<S>::lowest();
  const dmat qd = q.template cast<double>(), kd = k.template cast<double>(),
             vd = v.template cast<double>();
  const keep_fn kf = [&](Index i, Index j) { return keep(i, j); };
  const mod_fn add = [&](double s, Index, Index, Index i, Index j) {
    return s + static_cast<double>(bias(i, j));
  };
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const ref_result plain = reference(
      qd, kd, vd, kf, [](double s, Index, Index, Index, Index) { return s; }, 0, 0, scale, 0, 0, 0);
  const ref_result biased = reference(qd, kd, vd, kf, add, 0, 0, scale, 0, 0, 0);
  for (const auto variant : attention_variants) {
    INFO("variant " << static_cast<int>(variant));
    const emask_test::attention_options o = small_tiles(variant);
    row_matrix<S> o1(lq, d), o2(lq, d), o3(lq, d), o4(lq, d);
    Eigen::Matrix<S, Eigen::Dynamic, 1> l1(lq), l4(lq);
    emask_test::masked_attention(q, k, v, keep, o1, l1, o);
    emask_test::masked_attention(q, k, v, emask::as_mask(keep), o2, o);
    emask_test::masked_attention(q, k, v, emask::to_drop(keep), o3, o);
    CHECK(o1 == o2);
    CHECK(o1 == o3);
    CHECK((o1.template cast<double>() - plain.out).cwiseAbs().maxCoeff() <= tol<S>() * 10);
    CHECK(o1.row(4).isZero(0));
    CHECK(l1(4) == -std::numeric_limits<S>::infinity());
    emask_test::masked_attention(q, k, v, emask::to_additive(bias), o4, l4, o);
    CHECK((o4.template cast<double>() - biased.out).cwiseAbs().maxCoeff() <= tol<S>() * 10);
    CHECK(o4.row(4).isZero(0));
    CHECK(l4(4) == -std::numeric_limits<S>::infinity());
    for (Index i = 0; i < lq; ++i)
      if (i != 4)
        CHECK(std::abs(static_cast<double>(l4(i)) - biased.lse(i)) <=
              tol<S>() * 10 * (1 + std::abs(biased.lse(i))));
  }
  // Batched views: the bool_matrix is shared by every batch entry and head.
  std::vector<S> qb(static_cast<std::size_t>(2 * lq * d)), kb(static_cast<std::size_t>(2 * lk * d)),
      vb(static_cast<std::size_t>(2 * lk * d)), ob(static_cast<std::size_t>(2 * lq * d));
  for (Index h = 0; h < 2; ++h) {
    Eigen::Map<row_matrix<S>>(qb.data() + h * lq * d, lq, d) = q;
    Eigen::Map<row_matrix<S>>(kb.data() + h * lk * d, lk, d) = k;
    Eigen::Map<row_matrix<S>>(vb.data() + h * lk * d, lk, d) = v;
  }
  emask::masked_attention(emask::view_bhld<const S>(qb.data(), 1, 2, lq, d),
                          emask::view_bhld<const S>(kb.data(), 1, 2, lk, d),
                          emask::view_bhld<const S>(vb.data(), 1, 2, lk, d), emask::to_drop(keep),
                          emask::view_bhld(ob.data(), 1, 2, lq, d));
  row_matrix<S> single(lq, d);
  emask::masked_attention(q, k, v, keep, single);
  for (Index h = 0; h < 2; ++h)
    CHECK(Eigen::Map<const row_matrix<S>>(ob.data() + h * lq * d, lq, d) == single);

  // Softmax: a drop_mask gives the bits of its keep-mask.
  const row_matrix<S> x = emask_test::uniform_matrix<S>(g, lq, lk, 3.0);
  row_matrix<S> y1(lq, lk), y2(lq, lk);
  emask::masked_softmax(x, keep, y1);
  emask::masked_softmax(x, emask::to_drop(keep), y2);
  CHECK(y1 == y2);
  // A keep-mask of the wrong shape is an error naming masked_attention, out untouched.
  row_matrix<S> untouched = row_matrix<S>::Constant(lq, d, S(7));
  bool raised = false;
  try {
    emask::masked_attention(
        q, k, v, emask::bool_matrix(emask::bool_matrix::Constant(lq, lk - 1, true)), untouched);
  } catch (const emask::error& e) {
    raised = std::string(e.what()).find("emask::masked_attention") == 0;
  }
  CHECK(raised);
  CHECK((untouched.array() == S(7)).all());
}

TEMPLATE_TEST_CASE(
    "merge_attention over [B, H] views: shards merge into the unsharded batched "
    "result",
    "[merge][batched]", float, double) {
  using S = TestType;
  rng g(13);
  const Index b_n = 2, h_n = 3, lq = 9, lk = 40, d = 8;
  std::vector<S> q(static_cast<std::size_t>(b_n * h_n * lq * d)),
      k(static_cast<std::size_t>(b_n * h_n * lk * d)), v(k.size());
  for (S& x : q) x = static_cast<S>(uniform(g, 1));
  for (S& x : k) x = static_cast<S>(uniform(g, 1));
  for (S& x : v) x = static_cast<S>(uniform(g, 1));
  const auto qv = emask::view_bhld<const S>(q.data(), b_n, h_n, lq, d);
  const emask::sliding_window mask(20, 0);
  emask::attention_options o;
  o.q_offset = lk - lq;  // the queries are the last lq positions
  std::vector<S> whole(q.size());
  row_matrix<S> whole_lse(b_n * h_n, lq);
  emask::masked_attention(qv, emask::view_bhld<const S>(k.data(), b_n, h_n, lk, d),
                          emask::view_bhld<const S>(v.data(), b_n, h_n, lk, d), mask,
                          emask::view_bhld(whole.data(), b_n, h_n, lq, d), whole_lse, o);
  // Three key shards [0, 13), [13, 27), [27, 40): views into K and V with the full strides.
  const Index cuts[] = {0, 13, 27, lk};
  std::vector<std::vector<S>> outs(3, std::vector<S>(q.size()));
  std::vector<row_matrix<S>> lses(3, row_matrix<S>(b_n * h_n, lq));
  std::vector<emask::tensor_view<const S>> parts;
  for (int s = 0; s < 3; ++s) {
    const Index k0 = cuts[s], n = cuts[s + 1] - cuts[s];
    emask::attention_options os = o;
    os.k_offset = k0;
    const emask::tensor_view<const S> ks(k.data() + k0 * d, b_n, h_n, n, d, h_n * lk * d, lk * d,
                                         d);
    const emask::tensor_view<const S> vs(v.data() + k0 * d, b_n, h_n, n, d, h_n * lk * d, lk * d,
                                         d);
    emask::masked_attention(
        qv, ks, vs, mask,
        emask::view_bhld(outs[static_cast<std::size_t>(s)].data(), b_n, h_n, lq, d),
        lses[static_cast<std::size_t>(s)], os);
    parts.push_back(
        emask::view_bhld<const S>(outs[static_cast<std::size_t>(s)].data(), b_n, h_n, lq, d));
  }
  std::vector<S> merged(q.size(), S(0));
  row_matrix<S> merged_lse(b_n * h_n, lq);
  emask::merge_attention(parts, lses, emask::view_bhld(merged.data(), b_n, h_n, lq, d), merged_lse);
  const double t = std::is_same<S, float>::value ? 1e-5 : 1e-12;
  for (std::size_t i = 0; i < q.size(); ++i)
    CHECK(std::abs(static_cast<double>(merged[i] - whole[i])) <= t);
  CHECK((merged_lse - whole_lse).cwiseAbs().maxCoeff() <= static_cast<S>(t * 10));
  // The same by folding one shard at a time.
  std::vector<S> acc = outs[0];
  row_matrix<S> acc_lse = lses[0];
  for (std::size_t s = 1; s < 3; ++s)
    emask::merge_attention_into(emask::view_bhld(acc.data(), b_n, h_n, lq, d), acc_lse, parts[s],
                                lses[s]);
  CHECK(acc == merged);
  CHECK(acc_lse == merged_lse);
  // A shard of the wrong shape: an error naming it, nothing written.
  std::vector<S> before = merged;
  parts[2] = emask::view_bhld<const S>(outs[2].data(), b_n, h_n, lq - 1, d);
  bool raised = false;
  try {
    emask::merge_attention(parts, lses, emask::view_bhld(merged.data(), b_n, h_n, lq, d),
                           merged_lse);
  } catch (const emask::error& e) {
    raised = std::string(e.what()).find("emask::merge_attention: argument 'parts[2]'") == 0;
  }
  CHECK(raised);
  CHECK(merged == before);
}
