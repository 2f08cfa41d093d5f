// masked_attention_decode over KV caches stored as float, bfloat16 and half, contiguous and
// paged: against a float64 reference computed on the stored (rounded) values, paged == contiguous
// bit for bit, 1 thread == 2 threads bit for bit, the native conversions against the portable
// ones, and every bad input by its message.
//
// Error bound of the reference comparisons: the kernel computes in float on the same rounded
// K and V as the reference. Scores differ by at most D u sum |q k| (< 3e-6 here: |q|, |k| <= 1,
// D <= 48, times the scale), the softmax of one chunk by about that relative, and the weighted
// sum of at most one chunk (512 keys) by chunk * u * max |v| (3e-5 with |v| <= 1), merged over
// <= 6 chunks; the tests allow 2e-4 absolute on outputs and on the log-sum-exp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include <emask/config.hpp>  // before the private header below
#include <emask/detail/ieee.hpp>
#include <emask/emask.hpp>
#include <emask/kernels/kv_cache.hpp>

#include "catch.hpp"
#include "mask_testing.hpp"

namespace {

using emask::Index;
using emask_test::rng;
using bf16 = Eigen::bfloat16;
using f16 = Eigen::half;

float uniform(rng& g, double amp = 1.0) {
  return static_cast<float>(amp * (static_cast<double>(g.next() >> 11) * 0x1.0p-53 * 2.0 - 1.0));
}

/// A decode problem: float queries, K and V rounded to T, a contiguous copy and paged copies.
template <class T>
struct problem {
  Index B, H, Hkv, D, Lq, cap;
  std::vector<std::int32_t> len;
  std::vector<float> q;       // [B, H, Lq, D]
  std::vector<T> k, v;        // [B, Hkv, cap, D], slots past a length hold NaN
  std::vector<float> kf, vf;  // the same, as float (exact)

  problem(std::vector<std::int32_t> lengths, Index heads, Index kv_heads, Index dim, Index lq,
          std::uint64_t seed)
      : B(static_cast<Index>(lengths.size())),
        H(heads),
        Hkv(kv_heads),
        D(dim),
        Lq(lq),
        cap(std::max<Index>(1, *std::max_element(lengths.begin(), lengths.end()))),
        len(std::move(lengths)) {
    rng g(seed);
    q.resize(static_cast<std::size_t>(B * H * Lq * D));
    for (auto& x : q) x = uniform(g);
    const std::size_t n = static_cast<std::size_t>(B * Hkv * cap * D);
    std::vector<float> a(n), c(n);
    for (Index b = 0; b < B; ++b)
      for (Index h = 0; h < Hkv; ++h)
        for (Index t = 0; t < cap; ++t)
          for (Index x = 0; x < D; ++x) {
            const std::size_t i = static_cast<std::size_t>(((b * Hkv + h) * cap + t) * D + x);
            const bool valid = t < len[static_cast<std::size_t>(b)];
            a[i] = valid ? uniform(g) : std::numeric_limits<float>::quiet_NaN();
            c[i] = valid ? uniform(g) : std::numeric_limits<float>::quiet_NaN();
          }
    k.resize(n);
    v.resize(n);
    emask::kv_convert(a.data(), static_cast<Index>(n), k.data());
    emask::kv_convert(c.data(), static_cast<Index>(n), v.data());
    kf.resize(n);
    vf.resize(n);
    emask::kv_convert(k.data(), static_cast<Index>(n), kf.data());
    emask::kv_convert(v.data(), static_cast<Index>(n), vf.data());
  }
  emask::kv_cache_view<T> contiguous() const {
    return emask::kv_cache_view<T>(k.data(), v.data(), B, Hkv, cap, D, len.data());
  }
  float kval(Index b, Index g, Index t, Index x) const {
    return kf[static_cast<std::size_t>(((b * Hkv + g) * cap + t) * D + x)];
  }
  float vval(Index b, Index g, Index t, Index x) const {
    return vf[static_cast<std::size_t>(((b * Hkv + g) * cap + t) * D + x)];
  }
};

/// Paged copy of a problem's cache: shuffled physical pages, unused pages and slots NaN.
template <class T>
struct paged_copy {
  std::vector<T> k, v;
  std::vector<std::int32_t> table;
  Index pages = 0, max_pages = 0, P;
  emask::kv_page_layout layout;

  paged_copy(const problem<T>& p, Index page_size, emask::kv_page_layout lay, std::uint64_t seed)
      : P(page_size), layout(lay) {
    rng g(seed);
    Index need = 0;
    for (auto n : p.len) {
      const Index np = (n + P - 1) / P;
      need += np;
      max_pages = std::max(max_pages, np);
    }
    max_pages += 1;  // a spare column, never read
    pages = need + 3;
    std::vector<std::int32_t> perm(static_cast<std::size_t>(pages));
    std::iota(perm.begin(), perm.end(), 0);
    for (Index i = pages - 1; i > 0; --i)
      std::swap(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(g.between(0, i))]);
    const std::size_t n = static_cast<std::size_t>(pages * P * p.Hkv * p.D);
    std::vector<float> nan(n, std::numeric_limits<float>::quiet_NaN());
    k.resize(n);
    v.resize(n);
    emask::kv_convert(nan.data(), static_cast<Index>(n), k.data());
    emask::kv_convert(nan.data(), static_cast<Index>(n), v.data());
    table.assign(static_cast<std::size_t>(p.B * max_pages), -7);  // garbage past the end
    const auto view0 = view(p);
    Index next = 0;
    for (Index b = 0; b < p.B; ++b) {
      const Index n_b = p.len[static_cast<std::size_t>(b)];
      for (Index lp = 0; lp < (n_b + P - 1) / P; ++lp)
        table[static_cast<std::size_t>(b * max_pages + lp)] =
            perm[static_cast<std::size_t>(next++)];
      for (Index t = 0; t < n_b; ++t) {
        const Index page = table[static_cast<std::size_t>(b * max_pages + t / P)];
        for (Index h = 0; h < p.Hkv; ++h)
          for (Index x = 0; x < p.D; ++x) {
            const std::size_t src =
                static_cast<std::size_t>(((b * p.Hkv + h) * p.cap + t) * p.D + x);
            const std::size_t dst = static_cast<std::size_t>(view0.offset(page, h, t % P) + x);
            k[dst] = p.k[src];
            v[dst] = p.v[src];
          }
      }
    }
  }
  emask::paged_kv_view<T> view(const problem<T>& p) const {
    return emask::paged_kv_view<T>(k.data(), v.data(), pages, P, p.Hkv, p.D, layout, table.data(),
                                   p.B, max_pages, p.len.data());
  }
};

struct result {
  std::vector<float> out;
  emask::row_matrix<float> lse;
};

template <class T, class Cache, class Mask>
result run(const problem<T>& p, const Cache& cache, const Mask& mask,
           const emask::attention_options& opt = {}) {
  result r;
  r.out.assign(static_cast<std::size_t>(p.B * p.H * p.Lq * p.D), -99.f);
  r.lse.resize(p.B * p.H, p.Lq);
  emask::masked_attention_decode(emask::view_bhld<const float>(p.q.data(), p.B, p.H, p.Lq, p.D),
                                 cache, mask, emask::view_bhld(r.out.data(), p.B, p.H, p.Lq, p.D),
                                 r.lse, opt);
  return r;
}

/// float64 reference on the rounded K and V. keep(b, h, qpos, k).
template <class T, class Keep>
result reference(const problem<T>& p, Keep keep, const emask::attention_options& opt = {}) {
  result r;
  r.out.assign(static_cast<std::size_t>(p.B * p.H * p.Lq * p.D), 0.f);
  r.lse.resize(p.B * p.H, p.Lq);
  const double scale = opt.scale ? *opt.scale : 1.0 / std::sqrt(static_cast<double>(p.D));
  const Index G = p.H / p.Hkv;
  for (Index b = 0; b < p.B; ++b)
    for (Index h = 0; h < p.H; ++h)
      for (Index i = 0; i < p.Lq; ++i) {
        const Index n = p.len[static_cast<std::size_t>(b)], qpos = n - p.Lq + i;
        std::vector<double> s(static_cast<std::size_t>(std::max<Index>(n, 1)));
        std::vector<bool> kept(s.size(), false);
        double mx = -std::numeric_limits<double>::infinity();
        for (Index j = 0; j < n; ++j) {
          if (!keep(b, h, qpos, j)) continue;
          double dot = 0;
          for (Index x = 0; x < p.D; ++x)
            dot += static_cast<double>(
                       p.q[static_cast<std::size_t>(((b * p.H + h) * p.Lq + i) * p.D + x)]) *
                   p.kval(b, h / G, j, x);
          double sc = scale * dot;
          if (opt.softcap > 0) sc = opt.softcap * std::tanh(sc / opt.softcap);
          if (!opt.alibi.empty())
            sc += opt.alibi[static_cast<std::size_t>(h)] * static_cast<double>(j - qpos);
          s[static_cast<std::size_t>(j)] = sc;
          kept[static_cast<std::size_t>(j)] = true;
          mx = std::max(mx, sc);
        }
        double sum = 0;
        std::vector<double> o(static_cast<std::size_t>(p.D), 0.0);
        for (Index j = 0; j < n; ++j) {
          if (!kept[static_cast<std::size_t>(j)]) continue;
          const double e = std::exp(s[static_cast<std::size_t>(j)] - mx);
          sum += e;
          for (Index x = 0; x < p.D; ++x)
            o[static_cast<std::size_t>(x)] += e * p.vval(b, h / G, j, x);
        }
        double lse = sum > 0 ? mx + std::log(sum) : -std::numeric_limits<double>::infinity();
        double fold = 1;
        if (!opt.sink_logit.empty()) {
          const double sk = opt.sink_logit[static_cast<std::size_t>(h)];
          const double tot = (sum > 0 ? std::exp(lse) : 0.0) + std::exp(sk);
          fold = sum > 0 ? std::exp(lse) / tot : 0.0;
          lse = std::log(tot);
        }
        for (Index x = 0; x < p.D; ++x)
          r.out[static_cast<std::size_t>(((b * p.H + h) * p.Lq + i) * p.D + x)] =
              sum > 0 ? static_cast<float>(fold * o[static_cast<std::size_t>(x)] / sum) : 0.f;
        r.lse(b * p.H + h, i) = static_cast<float>(lse);
      }
  return r;
}

template <class T>
void require_close(const problem<T>& p, const result& got, const result& ref, double tol = 2e-4) {
  double worst = 0;
  for (std::size_t i = 0; i < got.out.size(); ++i) {
    REQUIRE(emask::detail::is_finite(got.out[i]));
    worst = std::max(worst, std::abs(static_cast<double>(got.out[i]) - ref.out[i]));
  }
  CHECK(worst <= tol);
  for (Index r = 0; r < p.B * p.H; ++r)
    for (Index i = 0; i < p.Lq; ++i) {
      const float a = got.lse(r, i), e = ref.lse(r, i);
      if (emask::detail::is_neg_inf(e)) {
        REQUIRE(emask::detail::is_neg_inf(a));
      } else {
        REQUIRE(std::abs(static_cast<double>(a) - e) <=
                tol * std::max(1.0, std::abs(static_cast<double>(e))));
      }
    }
}

bool same_bits(const result& a, const result& b) {
  return a.out.size() == b.out.size() &&
         std::memcmp(a.out.data(), b.out.data(), a.out.size() * sizeof(float)) == 0 &&
         std::memcmp(a.lse.data(), b.lse.data(),
                     static_cast<std::size_t>(a.lse.size()) * sizeof(float)) == 0;
}

const std::vector<std::int32_t> mixed_lengths = {1, 0, 517, 3, 2999, 64, 1200, 0, 2, 513};

}  // namespace

TEST_CASE("kv_cache: native conversions equal the portable ones bit for bit", "[kernels][kv]") {
  // Every bfloat16 and half to float: exact, so bit-identical (a NaN stays a NaN).
  std::vector<std::uint16_t> all(65536);
  std::iota(all.begin(), all.end(), std::uint16_t(0));
  std::vector<bf16> b(65536);
  std::vector<f16> h(65536);
  for (std::size_t i = 0; i < all.size(); ++i) {
    b[i] = emask::detail::kv_from_raw<bf16>(all[i]);
    h[i] = emask::detail::kv_from_raw<f16>(all[i]);
  }
  std::vector<float> fb(65536), fh(65536);
  emask::kv_convert(b.data(), 65536, fb.data());
  emask::kv_convert(h.data(), 65536, fh.data());
  Index mismatches = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const float pb = emask::detail::bf16_to_float_portable(all[i]);
    const float ph = emask::detail::half_to_float_portable(all[i]);
    if (emask::detail::is_nan(pb)) {
      mismatches +=
          !emask::detail::is_nan(fb[i]) + !emask::detail::is_nan(static_cast<float>(b[i]));
    } else {
      mismatches += emask::detail::kv_float_bits(pb) != emask::detail::kv_float_bits(fb[i]);
      mismatches += pb != static_cast<float>(b[i]);  // Eigen's own conversion
    }
    if (emask::detail::is_nan(ph)) {
      mismatches +=
          !emask::detail::is_nan(fh[i]) + !emask::detail::is_nan(static_cast<float>(h[i]));
    } else {
      mismatches += emask::detail::kv_float_bits(ph) != emask::detail::kv_float_bits(fh[i]);
      mismatches += ph != static_cast<float>(h[i]);
    }
  }
  REQUIRE(mismatches == 0);

  // float to bfloat16 / half, round to nearest even: random bit patterns and edge cases.
  rng g(7);
  std::vector<float> x;
  for (int i = 0; i < 20000; ++i)
    x.push_back(emask::detail::kv_bits_float(static_cast<std::uint32_t>(g.next())));
  for (float e : {0.f,
                  -0.f,
                  1.f,
                  65504.f,
                  65519.f,
                  65520.f,
                  65536.f,
                  6.1035156e-05f,
                  5.96e-08f,
                  2.98e-08f,
                  2.99e-08f,
                  1e-40f,
                  -1e-40f,
                  3.3895314e38f,
                  3.4028235e38f,
                  std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::quiet_NaN(),
                  1.00390625f,
                  1.01171875f})
    x.push_back(e);
  const Index n = static_cast<Index>(x.size());
  std::vector<bf16> nb(x.size());
  std::vector<f16> nh(x.size());
  emask::kv_convert(x.data(), n, nb.data());
  emask::kv_convert(x.data(), n, nh.data());
  mismatches = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::uint16_t pb = emask::detail::float_to_bf16_portable(x[i]);
    const std::uint16_t ph = emask::detail::float_to_half_portable(x[i]);
    mismatches += pb != emask::detail::kv_raw(nb[i]);
    mismatches += ph != emask::detail::kv_raw(nh[i]);
    if (!emask::detail::is_nan(x[i])) {
      mismatches += pb != emask::detail::kv_raw(bf16(x[i]));  // Eigen: round to nearest even
      if (std::abs(x[i]) >= 1e-30f) mismatches += ph != emask::detail::kv_raw(f16(x[i]));
    } else {
      mismatches += !emask::detail::is_nan(emask::detail::bf16_to_float_portable(pb));
      mismatches += !emask::detail::is_nan(emask::detail::half_to_float_portable(ph));
    }
  }
  REQUIRE(mismatches == 0);
}

TEMPLATE_TEST_CASE(
    "masked_attention_decode: every dtype and layout against float64, paged == "
    "contiguous bit for bit",
    "[kernels][kv]", float, bf16, f16) {
  // D = 40: two 16-lane packets and a scalar tail; G = 2 query heads per KV head; Lq = 2.
  const problem<TestType> p({2, 0, 517, 3, 2999, 64, 1200, 0, 2, 513}, 4, 2, 40, 2, 11);
  const auto keep = [](Index, Index, Index q, Index k) { return k <= q; };
  emask::attention_options opt;
  opt.threads = 1;
  const result cont = run(p, p.contiguous(), emask::causal(), opt);
  require_close(p, cont, reference(p, keep));
  for (Index P : {1, 3, 16, 128}) {
    for (auto lay : {emask::kv_page_layout::hnd, emask::kv_page_layout::nhd}) {
      if (lay == emask::kv_page_layout::nhd && P != 16 && P != 3) continue;
      INFO("page size " << P << (lay == emask::kv_page_layout::hnd ? " hnd" : " nhd"));
      const paged_copy<TestType> pc(p, P, lay, static_cast<std::uint64_t>(100 + P));
      const result paged = run(p, pc.view(p), emask::causal(), opt);
      REQUIRE(same_bits(paged, cont));
    }
  }
  // Empty sequences: zeros and lse = -infinity.
  for (Index b : {1, 7})
    for (Index x = 0; x < p.H * p.Lq * p.D; ++x)
      REQUIRE(cont.out[static_cast<std::size_t>(b * p.H * p.Lq * p.D + x)] == 0.f);
}

TEMPLATE_TEST_CASE("masked_attention_decode: masks, softcap, ALiBi, sinks, GQA", "[kernels][kv]",
                   float, bf16, f16) {
  const problem<TestType> p({700, 0, 1, 33, 1500, 2}, 8, 2, 32, 1, 23);
  const paged_copy<TestType> pc(p, 16, emask::kv_page_layout::hnd, 5);
  emask::attention_options opt;
  opt.decode_chunk = 128;
  SECTION("sliding window and causal") {
    const auto m = emask::causal() & emask::sliding_window(100, 0);
    const auto keep = [](Index, Index, Index q, Index k) { return k <= q && k >= q - 100; };
    const result r = run(p, pc.view(p), m, opt);
    require_close(p, r, reference(p, keep, opt));
    REQUIRE(same_bits(r, run(p, p.contiguous(), m, opt)));
  }
  SECTION("a bool padding mask with holes (per-key flags)") {
    rng g(3);
    emask::bool_matrix keep_m(p.cap, p.cap);
    for (Index i = 0; i < p.cap; ++i)
      for (Index j = 0; j < p.cap; ++j) keep_m(i, j) = g.coin(0.7);
    keep_m.row(p.cap - 1).setConstant(false);  // the 1500-token sequence's row keeps nothing
    const auto keep = [&](Index, Index, Index q, Index k) { return keep_m(q, k); };
    const result r = run(p, pc.view(p), keep_m, opt);
    require_close(p, r, reference(p, keep, opt));
    REQUIRE(same_bits(r, run(p, p.contiguous(), keep_m, opt)));
    for (Index h = 0; h < p.H; ++h) REQUIRE(emask::detail::is_neg_inf(r.lse(4 * p.H + h, 0)));
  }
  SECTION("softcap, ALiBi, scale and sink logits") {
    opt.softcap = 2.5;
    opt.alibi = emask::alibi_slopes(p.H);
    opt.scale = 0.7;
    opt.sink_logit = {0.5, -1, 2, 0, 1, 1, -3, 0.25};
    const auto keep = [](Index, Index, Index q, Index k) { return k <= q; };
    const result r = run(p, pc.view(p), emask::causal(), opt);
    require_close(p, r, reference(p, keep, opt));
    REQUIRE(same_bits(r, run(p, p.contiguous(), emask::causal(), opt)));
    // An empty sequence with sinks: zeros, lse = the sink logit.
    REQUIRE(r.lse(1 * p.H + 2, 0) == 2.f);
  }
}

TEMPLATE_TEST_CASE("masked_attention_decode: six query rows per KV head, D = 83", "[kernels][kv]",
                   float, bf16, f16) {
  // G = 3 heads x Lq = 2 rows: register blocks of 4 and 2 rows; D = 83 = 64 + 16 + 3.
  const problem<TestType> p({300, 2, 0, 41}, 6, 2, 83, 2, 77);
  const paged_copy<TestType> pc(p, 7, emask::kv_page_layout::nhd, 13);
  emask::attention_options opt;
  opt.decode_chunk = 64;
  const auto keep = [](Index, Index, Index q, Index k) { return k <= q; };
  const result r = run(p, pc.view(p), emask::causal(), opt);
  require_close(p, r, reference(p, keep, opt));
  REQUIRE(same_bits(r, run(p, p.contiguous(), emask::causal(), opt)));
}

TEST_CASE("masked_attention_decode: 1 and 2 threads give the same bits; workspace reuse",
          "[kernels][kv]") {
  const problem<bf16> p(mixed_lengths, 4, 1, 48, 1, 99);
  const paged_copy<bf16> pc(p, 16, emask::kv_page_layout::hnd, 9);
  emask::attention_options opt;
  opt.decode_chunk = 96;
  opt.threads = 1;
  const result one = run(p, pc.view(p), emask::causal(), opt);
  opt.threads = 2;
  const result two = run(p, pc.view(p), emask::causal(), opt);
  REQUIRE(same_bits(one, two));
  // The reusable workspace: the same bits on the second call, no growth.
  emask::kv_decode_workspace ws;
  result r;
  r.out.assign(static_cast<std::size_t>(p.B * p.H * p.D), 0.f);
  r.lse.resize(p.B * p.H, 1);
  const auto qv = emask::view_bhld<const float>(p.q.data(), p.B, p.H, 1, p.D);
  const auto ov = emask::view_bhld(r.out.data(), p.B, p.H, 1, p.D);
  emask::masked_attention_decode(qv, pc.view(p), emask::causal(), ov, r.lse, opt, &ws);
  const Index bytes = ws.bytes();
  REQUIRE(ws.size() >= emask::kv_decode_workspace_size(pc.view(p), p.H, 1, opt) - 1);
  emask::masked_attention_decode(qv, pc.view(p), emask::causal(), ov, r.lse, opt, &ws);
  REQUIRE(ws.bytes() == bytes);
  REQUIRE(same_bits(r, one));
  // The same as masked_attention's decode variant on a float cache of the same (rounded) values.
  const problem<float> pf({900}, 4, 2, 32, 1, 5);
  const result mine = run(pf, pf.contiguous(), emask::causal(), opt);
  std::vector<float> out2(static_cast<std::size_t>(pf.H * pf.D));
  emask::masked_attention(
      emask::decode, emask::view_bhld<const float>(pf.q.data(), 1, pf.H, 1, pf.D),
      emask::view_bhld<const float>(pf.k.data(), 1, pf.Hkv, 900, pf.D),
      emask::view_bhld<const float>(pf.v.data(), 1, pf.Hkv, 900, pf.D),
      emask::causal::bottom_right(1, 900), emask::view_bhld(out2.data(), 1, pf.H, 1, pf.D), opt);
  for (std::size_t i = 0; i < out2.size(); ++i) REQUIRE(std::abs(out2[i] - mine.out[i]) < 1e-5f);
}

TEST_CASE("masked_attention_decode: a sum that overflows is recomputed with normalized weights",
          "[kernels][kv]") {
  // Every V entry 3e38 (finite in float and bfloat16): the unnormalized sum of 200 keys
  // overflows; the row must come back finite, close to 3e38.
  const Index n = 200, D = 16;
  std::vector<float> kf(static_cast<std::size_t>(n * D)), vf(kf.size(), 3e38f), q(D, 0.1f);
  for (std::size_t i = 0; i < kf.size(); ++i) kf[i] = static_cast<float>(i % 7) * 0.01f;
  std::vector<bf16> kb(kf.size()), vb(kf.size());
  emask::kv_convert(kf.data(), n * D, kb.data());
  emask::kv_convert(vf.data(), n * D, vb.data());
  const std::vector<std::int32_t> len = {static_cast<std::int32_t>(n)};
  std::vector<float> out(D);
  const auto qv = emask::view_bhld<const float>(q.data(), 1, 1, 1, D);
  emask::masked_attention_decode(
      qv, emask::kv_cache_view<float>(kf.data(), vf.data(), 1, 1, n, D, len.data()),
      emask::causal(), emask::view_bhld(out.data(), 1, 1, 1, D));
  for (float x : out) REQUIRE(std::abs(static_cast<double>(x) / 3e38 - 1.0) < 1e-5);
  emask::masked_attention_decode(
      qv, emask::kv_cache_view<bf16>(kb.data(), vb.data(), 1, 1, n, D, len.data()), emask::causal(),
      emask::view_bhld(out.data(), 1, 1, 1, D));
  const double stored = static_cast<double>(static_cast<float>(vb[0]));
  for (float x : out) REQUIRE(std::abs(static_cast<double>(x) / stored - 1.0) < 1e-5);
}

TEST_CASE("masked_attention_decode: bad input is reported by message, outputs untouched",
          "[kernels][kv]") {
  using Catch::Matchers::Contains;
  const problem<bf16> p({40, 7}, 2, 1, 16, 1, 1);
  std::vector<float> out(static_cast<std::size_t>(p.B * p.H * p.D), 5.f);
  const auto qv = emask::view_bhld<const float>(p.q.data(), p.B, p.H, 1, p.D);
  const auto ov = emask::view_bhld(out.data(), p.B, p.H, 1, p.D);
  const auto call = [&](const auto& cache) {
    emask::masked_attention_decode(qv, cache, emask::causal(), ov);
  };
  std::vector<std::int32_t> table = {3, 1, 0, 2, 4, 5};  // 2 sequences x 3 pages of 16
  std::vector<bf16> pool(static_cast<std::size_t>(6 * 16 * p.D));
  auto paged = [&](const std::vector<std::int32_t>& lens, Index pages = 6, Index P = 16) {
    return emask::paged_kv_view<bf16>(pool.data(), pool.data(), pages, P, 1, p.D,
                                      emask::kv_page_layout::hnd, table.data(), 2, 3, lens.data());
  };
  std::vector<std::int32_t> lens = {40, 7};
  REQUIRE_NOTHROW(call(paged(lens)));
  std::fill(out.begin(), out.end(), 5.f);
  table[1] = 6;
  REQUIRE_THROWS_WITH(call(paged(lens)),
                      Contains("masked_attention_decode") && Contains("block_table[0][1]") &&
                          Contains("sequence 0, logical page 1") && Contains("[0, 6)"));
  table[1] = 1;
  table[3] = -1;
  REQUIRE_THROWS_WITH(call(paged(lens)), Contains("block_table[1][0]") && Contains("= -1"));
  table[3] = 2;
  table[2] = 77;  // sequence 0 uses pages 0..2 (40 tokens)
  REQUIRE_THROWS_WITH(call(paged(lens)), Contains("block_table[0][2]"));
  table[2] = 0;
  const std::vector<std::int32_t> too_long = {49, 7};
  REQUIRE_THROWS_WITH(call(paged(too_long)), Contains("lengths[0]' = 49") &&
                                                 Contains("needs 4 pages") &&
                                                 Contains("the block table has 3"));
  const std::vector<std::int32_t> negative = {40, -2};
  REQUIRE_THROWS_WITH(call(paged(negative)), Contains("lengths[1]' = -2"));
  REQUIRE_THROWS_WITH(paged(lens, 6, 0), Contains("paged_kv_view") && Contains("page_size"));
  REQUIRE_THROWS_WITH(paged(lens, 6, 257), Contains("1 <= page_size <= 256"));
  REQUIRE_THROWS_WITH(paged(lens, -1), Contains("num_pages"));
  REQUIRE(std::all_of(out.begin(), out.end(), [](float x) { return x == 5.f; }));

  // Contiguous cache and shapes.
  const std::vector<std::int32_t> over = {41, 7};
  REQUIRE_THROWS_WITH(
      call(emask::kv_cache_view<bf16>(p.k.data(), p.v.data(), 2, 1, 40, p.D, over.data())),
      Contains("lengths[0]' = 41") && Contains("capacity 40"));
  const emask::kv_cache_view<bf16> good = p.contiguous();
  const emask::kv_cache_view<bf16> wrong_d(p.k.data(), p.v.data(), 2, 1, 20, 8, p.len.data());
  REQUIRE_THROWS_WITH(call(wrong_d), Contains("D = 8") && Contains("the D of q"));
  const emask::kv_cache_view<bf16> one_seq(p.k.data(), p.v.data(), 1, 1, 40, p.D, p.len.data());
  REQUIRE_THROWS_WITH(call(one_seq), Contains("the batch of q"));
  const problem<bf16> g3({5, 5}, 2, 1, 16, 1, 1);
  const emask::kv_cache_view<bf16> three(g3.k.data(), g3.v.data(), 2, 3, 1, 16, g3.len.data());
  REQUIRE_THROWS_WITH(call(three), Contains("divides the 2 query heads"));
  REQUIRE_THROWS_WITH(emask::masked_attention_decode(qv, good, emask::causal(),
                                                     emask::view_bhld(out.data(), p.B, p.H, 1, 8)),
                      Contains("'out'"));
  emask::row_matrix<float> lse(3, 1);
  REQUIRE_THROWS_WITH(emask::masked_attention_decode(qv, good, emask::causal(), ov, lse),
                      Contains("'lse'") && Contains("B*H rows"));
  emask::attention_options o;
  o.q_offset = 2;
  REQUIRE_THROWS_WITH(emask::masked_attention_decode(qv, good, emask::causal(), ov, o),
                      Contains("options.q_offset"));
  o = {};
  o.alibi = {1.0};
  REQUIRE_THROWS_WITH(emask::masked_attention_decode(qv, good, emask::causal(), ov, o),
                      Contains("options.alibi"));
  // Lq = 3 query rows need lengths 0 or >= 3.
  const std::vector<std::int32_t> short_len = {40, 2};
  std::vector<float> q3(static_cast<std::size_t>(2 * 2 * 3 * 16)), o3(q3.size());
  REQUIRE_THROWS_WITH(
      emask::masked_attention_decode(
          emask::view_bhld<const float>(q3.data(), 2, 2, 3, 16),
          emask::kv_cache_view<bf16>(p.k.data(), p.v.data(), 2, 1, 40, 16, short_len.data()),
          emask::causal(), emask::view_bhld(o3.data(), 2, 2, 3, 16)),
      Contains("lengths[1]' = 2") && Contains(">= Lq = 3"));
  // A mask that cannot answer for the cache's positions.
  emask::bool_matrix small(10, 10);
  small.setConstant(true);
  REQUIRE_THROWS_WITH(emask::masked_attention_decode(qv, good, small, ov),
                      Contains("masked_attention_decode") && Contains("positions"));
  REQUIRE(std::all_of(out.begin(), out.end(), [](float x) { return x == 5.f; }));
}
