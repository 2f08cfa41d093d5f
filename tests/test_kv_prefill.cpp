// masked_attention_prefill: new queries over a float / bfloat16 / half KV cache, contiguous or
// paged. Against masked_attention (float caches and converted values: bit for bit), a float64
// reference on the rounded values, paged == contiguous bit for bit, the bf16 dot path within its
// bound, empty sequences, sinks, threads, and every bad input.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

#include <emask/kernels/kv_prefill.hpp>
#include <emask/masks/causal.hpp>
#include <emask/masks/padding.hpp>
#include <emask/masks/window.hpp>

#include "catch.hpp"

namespace {

using emask::Index;
using emask::row_matrix;
using bf16 = Eigen::bfloat16;
using half = Eigen::half;

/// Deterministic values in [-1, 1).
std::vector<float> values(std::size_t n, std::uint64_t seed) {
  std::vector<float> x(n);
  std::uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& e : x) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    e = static_cast<float>(static_cast<double>(s >> 11) * 0x1.0p-53 * 2.0 - 1.0);
  }
  return x;
}

/// A batch of sequences: float queries and a contiguous cache of T (and its float values).
template <class T>
struct problem {
  Index b, h, hkv, lq, cap, d;
  std::vector<std::int32_t> lengths;
  std::vector<float> q;
  std::vector<T> k, v;        // [B, Hkv, cap, D]
  std::vector<float> kf, vf;  // the stored values as float
  problem(Index b_, Index h_, Index hkv_, Index lq_, Index d_, std::vector<std::int32_t> lens,
          std::uint64_t seed)
      : b(b_), h(h_), hkv(hkv_), lq(lq_), cap(0), d(d_), lengths(std::move(lens)) {
    for (auto n : lengths) cap = std::max<Index>(cap, n);
    q = values(static_cast<std::size_t>(b * h * lq * d), seed);
    kf = values(static_cast<std::size_t>(b * hkv * cap * d), seed + 1);
    vf = values(static_cast<std::size_t>(b * hkv * cap * d), seed + 2);
    for (auto& x : q) x *= 2.0f;
    k.resize(kf.size());
    v.resize(vf.size());
    if constexpr (std::is_same<T, float>::value) {
      k = kf;
      v = vf;
    } else {  // rounded, and kf, vf hold the stored values
      emask::kv_convert(kf.data(), static_cast<Index>(kf.size()), k.data());
      emask::kv_convert(vf.data(), static_cast<Index>(vf.size()), v.data());
      emask::kv_convert(static_cast<const T*>(k.data()), static_cast<Index>(k.size()), kf.data());
      emask::kv_convert(static_cast<const T*>(v.data()), static_cast<Index>(v.size()), vf.data());
    }
  }
  emask::kv_cache_view<T> cache() const {
    return emask::kv_cache_view<T>(k.data(), v.data(), b, hkv, cap, d, lengths.data());
  }
  emask::tensor_view<const float> qv() const {
    return emask::view_bhld<const float>(q.data(), b, h, lq, d);
  }
};

/// The same keys in a paged pool: pages shuffled, \p layout, page size \p P.
template <class T>
struct paged_copy {
  std::vector<T> kp, vp;
  std::vector<std::int32_t> table;
  Index pages = 0, max_pages = 0;
  emask::paged_kv_view<T> view;
  paged_copy(const problem<T>& pr, Index P, emask::kv_page_layout layout)
      : view(make(pr, P, layout)) {}

 private:
  emask::paged_kv_view<T> make(const problem<T>& pr, Index P, emask::kv_page_layout layout) {
    max_pages = (pr.cap + P - 1) / P;
    pages = pr.b * max_pages + 3;  // a few unused pages
    std::vector<std::int32_t> ids(static_cast<std::size_t>(pages));
    std::iota(ids.begin(), ids.end(), 0);
    std::uint64_t s = 12345 + static_cast<std::uint64_t>(P);
    for (Index i = pages - 1; i > 0; --i) {  // Fisher-Yates with an LCG: any fixed shuffle
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      std::swap(ids[static_cast<std::size_t>(i)],
                ids[static_cast<std::size_t>((s >> 33) % static_cast<std::uint64_t>(i + 1))]);
    }
    table.assign(static_cast<std::size_t>(pr.b * max_pages), 0);
    kp.assign(static_cast<std::size_t>(pages * P * pr.hkv * pr.d), T(0.0f));
    vp.assign(kp.size(), T(0.0f));
    emask::paged_kv_view<T> tmp(kp.data(), vp.data(), pages, P, pr.hkv, pr.d, layout, table.data(),
                                pr.b, max_pages, pr.lengths.data());
    for (Index b = 0; b < pr.b; ++b)
      for (Index p = 0; p < max_pages; ++p)
        table[static_cast<std::size_t>(b * max_pages + p)] =
            ids[static_cast<std::size_t>(b * max_pages + p)];
    for (Index b = 0; b < pr.b; ++b)
      for (Index g = 0; g < pr.hkv; ++g)
        for (Index j = 0; j < pr.lengths[static_cast<std::size_t>(b)]; ++j) {
          const Index page = table[static_cast<std::size_t>(b * max_pages + j / P)];
          const Index dst = tmp.offset(page, g, j % P);
          const Index src = ((b * pr.hkv + g) * pr.cap + j) * pr.d;
          std::copy(pr.k.begin() + src, pr.k.begin() + src + pr.d, kp.begin() + dst);
          std::copy(pr.v.begin() + src, pr.v.begin() + src + pr.d, vp.begin() + dst);
        }
    return tmp;
  }
};

/// masked_attention (tiled) on the float values, sequence by sequence: the expected bits.
template <class T, class Mask>
std::vector<float> expected(const problem<T>& pr, const Mask& mask, emask::attention_options opt) {
  std::vector<float> out(pr.q.size(), 0.0f);
  for (Index b = 0; b < pr.b; ++b) {
    const Index n = pr.lengths[static_cast<std::size_t>(b)];
    if (n == 0) continue;
    opt.q_offset = n - pr.lq;
    for (Index h = 0; h < pr.h; ++h) {
      const Index g = h / (pr.h / pr.hkv);
      Eigen::Map<const row_matrix<float>> Q(pr.q.data() + (b * pr.h + h) * pr.lq * pr.d, pr.lq,
                                            pr.d);
      Eigen::Map<const row_matrix<float>> K(pr.kf.data() + (b * pr.hkv + g) * pr.cap * pr.d, n,
                                            pr.d);
      Eigen::Map<const row_matrix<float>> V(pr.vf.data() + (b * pr.hkv + g) * pr.cap * pr.d, n,
                                            pr.d);
      Eigen::Map<row_matrix<float>> O(out.data() + (b * pr.h + h) * pr.lq * pr.d, pr.lq, pr.d);
      opt.slice.b = b;
      opt.slice.h = h;
      if (!opt.sink_logit.empty()) {
        emask::attention_options o1 = opt;
        o1.sink_logit = {opt.sink_logit[static_cast<std::size_t>(h)]};
        o1.slice.h = 0;
        if (!opt.alibi.empty()) o1.alibi = {opt.alibi[static_cast<std::size_t>(h)]};
        emask::masked_attention(emask::tiled, Q, K, V, mask, O, o1);
      } else {
        emask::masked_attention(emask::tiled, Q, K, V, mask, O, opt);
      }
    }
  }
  return out;
}

/// Plain float64 attention on the stored values (causal & window given as a predicate).
template <class T, class Keep>
std::vector<double> reference(const problem<T>& pr, Keep keep) {
  std::vector<double> out(pr.q.size(), 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(pr.d));
  for (Index b = 0; b < pr.b; ++b) {
    const Index n = pr.lengths[static_cast<std::size_t>(b)];
    for (Index h = 0; h < pr.h; ++h) {
      const Index g = h / (pr.h / pr.hkv);
      for (Index i = 0; i < pr.lq && n > 0; ++i) {
        const Index qp = n - pr.lq + i;
        std::vector<double> s(static_cast<std::size_t>(n), 0.0);
        double mx = -std::numeric_limits<double>::infinity();
        for (Index j = 0; j < n; ++j) {
          if (!keep(qp, j)) continue;
          double x = 0;
          for (Index c = 0; c < pr.d; ++c)
            x +=
                double(pr.q[static_cast<std::size_t>(((b * pr.h + h) * pr.lq + i) * pr.d + c)]) *
                double(pr.kf[static_cast<std::size_t>(((b * pr.hkv + g) * pr.cap + j) * pr.d + c)]);
          s[static_cast<std::size_t>(j)] = x * scale;
          mx = std::max(mx, x * scale);
        }
        double sum = 0;
        for (Index j = 0; j < n; ++j)
          if (keep(qp, j)) sum += std::exp(s[static_cast<std::size_t>(j)] - mx);
        for (Index j = 0; j < n; ++j) {
          if (!keep(qp, j)) continue;
          const double w = std::exp(s[static_cast<std::size_t>(j)] - mx) / sum;
          for (Index c = 0; c < pr.d; ++c)
            out[static_cast<std::size_t>(((b * pr.h + h) * pr.lq + i) * pr.d + c)] +=
                w *
                double(pr.vf[static_cast<std::size_t>(((b * pr.hkv + g) * pr.cap + j) * pr.d + c)]);
        }
      }
    }
  }
  return out;
}

template <class Cache, class Mask>
std::vector<float> prefill(const problem<emask::detail::kv_storage_t<Cache>>& pr,
                           const Cache& cache, const Mask& mask,
                           const emask::attention_options& opt) {
  std::vector<float> out(pr.q.size(), -7.0f);
  emask::masked_attention_prefill(pr.qv(), cache, mask,
                                  emask::view_bhld(out.data(), pr.b, pr.h, pr.lq, pr.d), opt);
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double w = 0;
  for (std::size_t i = 0; i < a.size(); ++i) w = std::max(w, std::abs(double(a[i]) - b[i]));
  return w;
}

template <class T>
void check_storage_type() {
  // 3 sequences (one empty), GQA 4 / 2, Lq = 21, tiles that divide nothing.
  problem<T> pr(4, 4, 2, 21, 40, {300, 21, 0, 173}, 7);
  const auto mask = emask::causal() & emask::sliding_window(90, 0);
  emask::attention_options opt;
  opt.tile_q = 16;
  opt.tile_k = 40;
  opt.threads = 1;
  const auto keep = [](Index q, Index k) { return k <= q && k >= q - 90; };
  const std::vector<double> ref = reference(pr, keep);
  // The float-convert path: masked_attention's bits on the converted values.
  const std::vector<float> want = expected(pr, mask, opt);
  std::vector<float> conv(pr.q.size(), -7.0f);
  emask::detail::prefill_attention("test", pr.qv(), pr.cache().source(), pr.hkv, pr.d, pr.d,
                                   std::vector<Index>(pr.lengths.begin(), pr.lengths.end()), mask,
                                   opt, emask::view_bhld(conv.data(), pr.b, pr.h, pr.lq, pr.d),
                                   nullptr, 0, /*dot=*/false);
  CHECK(conv == want);
  CHECK(max_abs_diff(conv, ref) < 2e-6);
  // The public entry (the bf16 dot path where the build has it).
  const std::vector<float> got = prefill(pr, pr.cache(), mask, opt);
  if (emask::detail::prefill_uses_bf16_dot_v<T>) {
    // Q and P rounded to bfloat16: |error| <= 2^-8 (|scale q| . |k| max |v| + max |v|), here
    // |scale q . k| <= 2 sqrt(D) / sqrt(D) ... bounded by 2^-8 * 2 * 3 = 0.023; observed ~2e-3.
    CHECK(max_abs_diff(got, ref) < 2.5e-2);
  } else {
    CHECK(got == want);
  }
  // Empty sequence: zeros.
  for (Index i = 0; i < pr.h * pr.lq * pr.d; ++i)
    CHECK(got[static_cast<std::size_t>(2 * pr.h * pr.lq * pr.d + i)] == 0.0f);
  // Paged == contiguous, bit for bit, for page sizes that divide nothing and both layouts.
  for (const Index P : {Index(1), Index(3), Index(16), Index(128)})
    for (const auto layout : {emask::kv_page_layout::hnd, emask::kv_page_layout::nhd}) {
      const paged_copy<T> pc(pr, P, layout);
      CHECK(prefill(pr, pc.view, mask, opt) == got);
    }
  // 2 threads == 1 thread.
  emask::attention_options two = opt;
  two.threads = 2;
  CHECK(prefill(pr, pr.cache(), mask, two) == got);
}

}  // namespace

TEST_CASE("prefill over float, bfloat16 and half caches, contiguous and paged", "[kernels][kv]") {
  SECTION("float") { check_storage_type<float>(); }
  SECTION("bfloat16") { check_storage_type<bf16>(); }
  SECTION("half") { check_storage_type<half>(); }
}

TEST_CASE("prefill: log-sum-exp, sinks, softcap, ALiBi and a bool_matrix", "[kernels][kv]") {
  problem<half> pr(2, 2, 1, 9, 16, {33, 9}, 3);
  emask::attention_options opt;
  opt.threads = 1;
  opt.softcap = 5.0;
  opt.alibi = {0.25, 0.0625};
  opt.sink_logit = {0.5, -1.0};
  const auto mask = emask::causal();
  const std::vector<float> want = expected(pr, mask, opt);
  row_matrix<float> lse(pr.b * pr.h, pr.lq);
  std::vector<float> out(pr.q.size());
  emask::masked_attention_prefill(pr.qv(), pr.cache(), mask,
                                  emask::view_bhld(out.data(), pr.b, pr.h, pr.lq, pr.d), lse, opt);
  CHECK(out == want);
  // lse against masked_attention's, sequence 0 head 1 (sink folded in both).
  {
    emask::attention_options o1 = opt;
    o1.q_offset = 33 - 9;
    o1.alibi = {opt.alibi[1]};
    o1.sink_logit = {opt.sink_logit[1]};
    Eigen::Map<const row_matrix<float>> Q(pr.q.data() + 1 * pr.lq * pr.d, pr.lq, pr.d);
    Eigen::Map<const row_matrix<float>> K(pr.kf.data(), 33, pr.d), V(pr.vf.data(), 33, pr.d);
    row_matrix<float> O(pr.lq, pr.d);
    Eigen::VectorXf l(pr.lq);
    emask::masked_attention(emask::tiled, Q, K, V, mask, O, l, o1);
    CHECK(lse.row(1).transpose() == l);
  }
  // A bool_matrix keep-mask (b = 0 asked at logical positions) equals its expression.
  emask::bool_matrix keep(33, 33);
  for (Index i = 0; i < 33; ++i)
    for (Index j = 0; j < 33; ++j) keep(i, j) = j <= i && (i + j) % 3 != 0;
  problem<half> one(1, 2, 1, 9, 16, {33}, 5);
  emask::attention_options plain;
  plain.threads = 1;
  const std::vector<float> a = prefill(one, one.cache(), keep, plain);
  const std::vector<float> b = expected(one, emask::as_mask(keep), plain);
  CHECK(a == b);
  // A query row that keeps nothing: zeros, never NaN.
  emask::bool_matrix none = keep;
  none.row(33 - 9 + 4).setConstant(false);
  const std::vector<float> c = prefill(one, one.cache(), none, plain);
  for (Index hh = 0; hh < 2; ++hh)
    for (Index x = 0; x < 16; ++x)
      CHECK(c[static_cast<std::size_t>((hh * 9 + 4) * 16 + x)] == 0.0f);
}

TEST_CASE("prefill: bad input names the argument", "[kernels][kv]") {
  using Catch::Matchers::Contains;
  problem<bf16> pr(2, 2, 1, 4, 8, {10, 3}, 1);  // sequence 1 is shorter than Lq
  std::vector<float> out(pr.q.size(), 5.0f);
  const auto ov = emask::view_bhld(out.data(), pr.b, pr.h, pr.lq, pr.d);
  CHECK_THROWS_WITH(emask::masked_attention_prefill(pr.qv(), pr.cache(), emask::causal(), ov),
                    Contains("masked_attention_prefill") && Contains("lengths[1]"));
  CHECK(std::all_of(out.begin(), out.end(), [](float x) { return x == 5.0f; }));
  problem<bf16> ok(2, 2, 1, 4, 8, {10, 4}, 1);
  emask::attention_options off;
  off.q_offset = 1;
  CHECK_THROWS_WITH(emask::masked_attention_prefill(ok.qv(), ok.cache(), emask::causal(), ov, off),
                    Contains("options.q_offset"));
  row_matrix<float> lse(3, 4);
  CHECK_THROWS_WITH(emask::masked_attention_prefill(ok.qv(), ok.cache(), emask::causal(), ov, lse),
                    Contains("lse") && Contains("B*H rows"));
  std::vector<float> small(ok.q.size() / 2);
  CHECK_THROWS_WITH(
      emask::masked_attention_prefill(ok.qv(), ok.cache(), emask::causal(),
                                      emask::view_bhld(small.data(), 1, ok.h, ok.lq, ok.d)),
      Contains("out"));
  // A block table entry out of range names the sequence and the page.
  paged_copy<bf16> pc(ok, 4, emask::kv_page_layout::hnd);
  pc.table[1] = 999;
  const emask::paged_kv_view<bf16> bad(pc.kp.data(), pc.vp.data(), pc.pages, 4, ok.hkv, ok.d,
                                       emask::kv_page_layout::hnd, pc.table.data(), ok.b,
                                       pc.max_pages, ok.lengths.data());
  CHECK_THROWS_WITH(emask::masked_attention_prefill(ok.qv(), bad, emask::causal(), ov),
                    Contains("block_table[0][1]") && Contains("sequence 0"));
  CHECK(std::all_of(out.begin(), out.end(), [](float x) { return x == 5.0f; }));
}
