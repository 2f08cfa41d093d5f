// The learned sink logit (kernel_options::sink_logit): in every attention and softmax variant
// against a float64 reference, batched per-head sinks, a fully masked row (zeros, lse = s), a
// huge sink, the sink on exactly one key shard merging into the whole, the NaN policy, bad input.
#include <cmath>
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

const double inf = std::numeric_limits<double>::infinity();

template <class S>
double tol() {
  return std::is_same<S, float>::value ? 3e-5 : 1e-11;
}

/// Softmax of the kept scores of one row with a sink logit s: the probabilities and the lse.
struct sink_row {
  std::vector<double> p;
  double lse;
};
sink_row reference_row(const std::vector<double>& x, const std::vector<bool>& kept, double s) {
  double mx = s;
  for (std::size_t j = 0; j < x.size(); ++j)
    if (kept[j]) mx = std::max(mx, x[j]);
  double sum = std::exp(s - mx);
  for (std::size_t j = 0; j < x.size(); ++j)
    if (kept[j]) sum += std::exp(x[j] - mx);
  sink_row r{std::vector<double>(x.size(), 0.0), mx + std::log(sum)};
  for (std::size_t j = 0; j < x.size(); ++j)
    if (kept[j]) r.p[j] = std::exp(x[j] - r.lse);
  return r;
}

const emask_test::attention_variant attention_variants[] = {emask_test::attention_variant::naive,
                                                            emask_test::attention_variant::tiled,
                                                            emask_test::attention_variant::decode};

}  // namespace

TEMPLATE_TEST_CASE("sink_logit: every attention variant, batched per-head sinks, against float64",
                   "[sink]", float, double) {
  using S = TestType;
  rng g(41);
  const Index B = 2, H = 4, HKV = 2, lq = 19, lk = 33, d = 8;
  std::vector<S> q(static_cast<std::size_t>(B * H * lq * d)),
      k(static_cast<std::size_t>(B * HKV * lk * d)), v(k.size());
  for (S& x : q) x = static_cast<S>(static_cast<double>(g.between(-1000, 1000)) / 700.0);
  for (S& x : k) x = static_cast<S>(static_cast<double>(g.between(-1000, 1000)) / 700.0);
  for (S& x : v) x = static_cast<S>(static_cast<double>(g.between(-1000, 1000)) / 1000.0);
  const std::vector<double> sinks = {0.5, -2.0, 3.0, 100.0};  // 100: every row's mass goes there
  // Strictly causal with the queries at the end: the first query of sequence... keeps keys
  // before it; a key padding of 0 for batch entry 1 makes its rows fully masked.
  const auto mask = emask::causal().strict() & emask::key_padding::from_lengths({lk, 0}, lk);
  for (const auto variant : attention_variants) {
    emask_test::attention_options o;
    o.variant = variant;
    o.sink_logit = sinks;
    o.tile_q = 8;
    o.tile_k = 8;
    o.decode_chunk = 5;
    o.q_offset = lk - lq;
    std::vector<S> out(q.size(), S(7));
    row_matrix<S> lse(B * H, lq);
    emask_test::masked_attention(emask::view_bhld<const S>(q.data(), B, H, lq, d),
                                 emask::view_bhld<const S>(k.data(), B, HKV, lk, d),
                                 emask::view_bhld<const S>(v.data(), B, HKV, lk, d), mask,
                                 emask::view_bhld(out.data(), B, H, lq, d), lse, o);
    for (Index b = 0; b < B; ++b)
      for (Index h = 0; h < H; ++h)
        for (Index i = 0; i < lq; ++i) {
          INFO("variant " << static_cast<int>(variant) << " b " << b << " h " << h << " i " << i);
          const Index kvh = h / (H / HKV), qpos = lk - lq + i;
          std::vector<double> x(static_cast<std::size_t>(lk));
          std::vector<bool> kept(static_cast<std::size_t>(lk));
          for (Index j = 0; j < lk; ++j) {
            double dot = 0;
            for (Index c = 0; c < d; ++c)
              dot +=
                  static_cast<double>(q[static_cast<std::size_t>(((b * H + h) * lq + i) * d + c)]) *
                  static_cast<double>(
                      k[static_cast<std::size_t>(((b * HKV + kvh) * lk + j) * d + c)]);
            x[static_cast<std::size_t>(j)] = dot / std::sqrt(static_cast<double>(d));
            kept[static_cast<std::size_t>(j)] = j < qpos && b == 0;
          }
          const sink_row r = reference_row(x, kept, sinks[static_cast<std::size_t>(h)]);
          CHECK(std::abs(static_cast<double>(lse(b * H + h, i)) - r.lse) <=
                tol<S>() * (1 + std::abs(r.lse)));
          for (Index c = 0; c < d; ++c) {
            double want = 0;
            for (Index j = 0; j < lk; ++j)
              want += r.p[static_cast<std::size_t>(j)] *
                      static_cast<double>(
                          v[static_cast<std::size_t>(((b * HKV + kvh) * lk + j) * d + c)]);
            const S got = out[static_cast<std::size_t>(((b * H + h) * lq + i) * d + c)];
            CHECK(std::abs(static_cast<double>(got) - want) <= tol<S>());
            if (b == 1) CHECK(got == S(0));  // fully masked: zeros, lse = the sink
          }
          if (b == 1)
            CHECK(static_cast<double>(lse(b * H + h, i)) ==
                  static_cast<double>(static_cast<S>(sinks[static_cast<std::size_t>(h)])));
        }
  }
}

TEMPLATE_TEST_CASE("sink_logit: masked_softmax and masked_log_softmax, every variant", "[sink]",
                   float, double) {
  using S = TestType;
  rng g(43);
  const Index lq = 13, lk = 29;
  const row_matrix<S> x = emask_test::uniform_matrix<S>(g, lq, lk, 4.0);
  const emask::sliding_window mask(6, 0);  // row 0 keeps key 0 only
  for (const double s : {-1.5, 0.0, 2.0, 100.0})
    for (const auto variant :
         {emask_test::softmax_variant::naive, emask_test::softmax_variant::fused,
          emask_test::softmax_variant::tiled}) {
      INFO("sink " << s << " variant " << static_cast<int>(variant));
      emask_test::softmax_options o;
      o.variant = variant;
      o.sink_logit = {9.0, s};
      o.slice.h = 1;
      o.scale = 0.5;
      o.tile_q = 4;
      o.tile_k = 8;
      const auto [y, ly, lse] = emask_test::softmax_and_log_softmax(x, mask, o);
      for (Index i = 0; i < lq; ++i) {
        std::vector<double> xs(static_cast<std::size_t>(lk));
        std::vector<bool> kept(static_cast<std::size_t>(lk));
        for (Index j = 0; j < lk; ++j) {
          xs[static_cast<std::size_t>(j)] = 0.5 * static_cast<double>(x(i, j));
          kept[static_cast<std::size_t>(j)] = j <= i && i - j <= 6;
        }
        const sink_row r = reference_row(xs, kept, s);
        CHECK(std::abs(static_cast<double>(lse(i)) - r.lse) <= tol<S>() * (1 + std::abs(r.lse)));
        double sum = 0;
        for (Index j = 0; j < lk; ++j) {
          const double p = r.p[static_cast<std::size_t>(j)];
          if (!kept[static_cast<std::size_t>(j)]) {
            CHECK(y(i, j) == S(0));
            CHECK(ly(i, j) == -std::numeric_limits<S>::infinity());
            continue;
          }
          CHECK(std::abs(static_cast<double>(y(i, j)) - p) <= tol<S>());
          const double lp = xs[static_cast<std::size_t>(j)] - r.lse;
          CHECK(std::abs(static_cast<double>(ly(i, j)) - lp) <= tol<S>() * (1 + std::abs(lp)));
          sum += static_cast<double>(y(i, j));
        }
        // The sink takes the rest of the mass.
        CHECK(std::abs(sum + std::exp(s - r.lse) - 1) <= tol<S>() * 10);
      }
    }
}

TEMPLATE_TEST_CASE("sink_logit: on exactly one key shard, the merge equals the whole", "[sink]",
                   float, double) {
  using S = TestType;
  rng g(47);
  const Index lq = 10, lk = 50, d = 8, cut = 21;
  const row_matrix<S> q = emask_test::uniform_matrix<S>(g, lq, d),
                      k = emask_test::uniform_matrix<S>(g, lk, d),
                      v = emask_test::uniform_matrix<S>(g, lk, d);
  const auto mask = emask::causal::bottom_right(lq, lk);
  emask::attention_options o;
  o.sink_logit = {1.25};
  row_matrix<S> whole(lq, d), a(lq, d), bpart(lq, d);
  emask::lse_vector<S> lw(lq), la(lq), lb(lq);
  emask::masked_attention(q, k, v, mask, whole, lw, o);
  // The sink is a key with a zero value row: it belongs to one shard, as every key does.
  emask::attention_options first = o, second = o;
  second.sink_logit.clear();
  second.k_offset = cut;
  emask::masked_attention(q, k.topRows(cut), v.topRows(cut), mask, a, la, first);
  emask::masked_attention(q, k.bottomRows(lk - cut), v.bottomRows(lk - cut), mask, bpart, lb,
                          second);
  emask::merge_attention_into(a, la, bpart, lb);
  CHECK((a - whole).cwiseAbs().maxCoeff() <= static_cast<S>(tol<S>()));
  CHECK((la - lw).cwiseAbs().maxCoeff() <= static_cast<S>(tol<S>() * 10));
}

TEST_CASE("sink_logit: NaN policy and bad input", "[sink][bad_input]") {
  const row_matrix<float> q = row_matrix<float>::Ones(4, 2), k = q, v = q;
  row_matrix<float> out = row_matrix<float>::Constant(4, 2, 7.f);
  const auto message = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const emask::error& e) {
      return e.what();
    }
    return "<no error>";
  };
  emask::attention_options o;
  o.sink_logit = {0.5};
  o.slice.h = 1;  // one entry does not cover head 1
  CHECK(message([&] {
          emask::masked_attention(q, k, v, emask::causal(), out, o);
        }).find("emask::masked_attention: argument 'options.sink_logit' = 1 entries") == 0);
  o.slice.h = 0;
  o.sink_logit = {std::numeric_limits<double>::quiet_NaN()};
  CHECK(message([&] {
          emask::masked_attention(q, k, v, emask::causal(), out, o);
        }).find("emask::masked_attention: argument 'options.sink_logit[0]'") == 0);
  o.sink_logit = {1e39};  // finite as double, not as float
  CHECK(message([&] {
          emask::masked_attention(q, k, v, emask::causal(), out, o);
        }).find("emask::masked_attention: argument 'options.sink_logit[0]'") == 0);
  CHECK((out.array() == 7.f).all());
  row_matrix<float> y = row_matrix<float>::Constant(4, 4, 7.f);
  emask::softmax_options so;
  so.sink_logit = {std::numeric_limits<double>::infinity()};
  CHECK(message([&] {
          emask::masked_softmax(row_matrix<float>::Ones(4, 4), emask::causal(), y, so);
        }).find("emask::masked_softmax: argument 'options.sink_logit[0]'") == 0);
  CHECK((y.array() == 7.f).all());

  // A NaN kept score: its row is NaN at the kept entries, masked entries stay exactly 0, other
  // rows are untouched by it.
  row_matrix<float> x = row_matrix<float>::Zero(4, 4);
  x(2, 1) = std::numeric_limits<float>::quiet_NaN();
  so.sink_logit = {0.25};
  emask::masked_softmax(x, emask::causal(), y, so);
  CHECK(std::isnan(y(2, 0)));
  CHECK(y(2, 3) == 0.f);
  CHECK(std::abs(y(1, 0) - 1.f / (2.f + std::exp(0.25f))) <= 1e-6f);
  row_matrix<float> qn = q;
  qn(2, 0) = std::numeric_limits<float>::quiet_NaN();
  o.sink_logit = {0.25};
  emask::masked_attention(qn, k, v, emask::causal(), out, o);
  CHECK(out.row(2).array().isNaN().all());
  CHECK(out.row(1).allFinite());
}
