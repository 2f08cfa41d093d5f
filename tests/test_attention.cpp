// masked_attention: every variant against a float64 reference on random shapes and masks,
// fully masked rows, NaN handling, softcap and ALiBi, views and grouped-query heads, bad shapes.
#include <cmath>
#include <limits>
#include <vector>

#include <emask/config.hpp>  // before the private header below
#include <emask/detail/ieee.hpp>
#include <emask/kernels/attention.hpp>
#include "kernel_variants.hpp"

#include "mask_testing.hpp"

namespace {

using emask::Index;
using emask::row_matrix;
using emask_test::rng;
using dmat = row_matrix<double>;

struct ref_result {
  dmat out;
  Eigen::VectorXd lse;
};

/// Plain float64 attention: scores, softcap, ALiBi, then the mask predicate; empty rows zero.
template <class Keep>
ref_result reference(const dmat& q, const dmat& k, const dmat& v, Keep keep, double scale,
                     double softcap = 0, double slope = 0, Index q_off = 0, Index k_off = 0) {
  ref_result r{dmat::Zero(q.rows(), v.cols()),
               Eigen::VectorXd::Constant(q.rows(), -std::numeric_limits<double>::infinity())};
  for (Index i = 0; i < q.rows(); ++i) {
    std::vector<double> s(static_cast<std::size_t>(k.rows()));
    double mx = -std::numeric_limits<double>::infinity();
    bool any = false;
    for (Index j = 0; j < k.rows(); ++j) {
      if (!keep(q_off + i, k_off + j)) continue;
      double x = scale * q.row(i).dot(k.row(j));
      if (softcap > 0) x = softcap * std::tanh(x / softcap);
      x += slope * static_cast<double>((k_off + j) - (q_off + i));
      s[static_cast<std::size_t>(j)] = x;
      mx = any ? std::max(mx, x) : x;
      any = true;
    }
    if (!any) continue;
    double sum = 0;
    for (Index j = 0; j < k.rows(); ++j)
      if (keep(q_off + i, k_off + j)) sum += std::exp(s[static_cast<std::size_t>(j)] - mx);
    for (Index j = 0; j < k.rows(); ++j)
      if (keep(q_off + i, k_off + j))
        r.out.row(i) += std::exp(s[static_cast<std::size_t>(j)] - mx) / sum * v.row(j);
    r.lse(i) = mx + std::log(sum);
  }
  return r;
}

template <class S>
double tol() {
  return std::is_same<S, float>::value ? 2e-5 : 1e-11;
}

const emask_test::attention_variant all_variants[] = {emask_test::attention_variant::naive,
                                                      emask_test::attention_variant::tiled,
                                                      emask_test::attention_variant::decode};

const char* name_of(emask_test::attention_variant v) {
  return v == emask_test::attention_variant::naive   ? "naive"
         : v == emask_test::attention_variant::tiled ? "tiled"
                                                     : "decode";
}

/// Runs every variant (with small and default tiles) on mask m and compares with the reference.
template <class S, class Mask>
void check_all_variants(const Mask& m, Index lq, Index lk, Index d, Index dv, std::uint64_t seed,
                        emask_test::attention_options base = {}) {
  rng g(seed);
  const row_matrix<S> q = emask_test::uniform_matrix<S>(g, lq, d, 2.0),
                      k = emask_test::uniform_matrix<S>(g, lk, d, 2.0),
                      v = emask_test::uniform_matrix<S>(g, lk, dv);
  const double scale = base.scale ? *base.scale : 1.0 / std::sqrt(static_cast<double>(d));
  const double slope =
      base.alibi.empty() ? 0.0 : base.alibi[static_cast<std::size_t>(base.slice.h)];
  const ref_result ref = reference(
      q.template cast<double>(), k.template cast<double>(), v.template cast<double>(),
      [&](Index i, Index j) { return m.keep(base.slice.b, base.slice.h, i, j); }, scale,
      base.softcap, slope, base.q_offset, base.k_offset);
  for (auto variant : all_variants) {
    for (Index tile : {Index(7), Index(16), Index(128)}) {
      emask_test::attention_options o = base;
      o.variant = variant;
      o.tile_q = tile;
      o.tile_k = tile;
      o.decode_chunk = tile * 3;
      row_matrix<S> out(lq, dv);
      emask::lse_vector<S> lse(lq);
      out.setConstant(S(7));
      emask_test::masked_attention(q, k, v, m, out, lse, o);
      INFO("variant " << name_of(variant) << " tile " << tile << " Lq " << lq << " Lk " << lk
                      << " D " << d << " Dv " << dv);
      const double err =
          lq * dv > 0 ? (out.template cast<double>() - ref.out).cwiseAbs().maxCoeff() : 0.0;
      CHECK(err <= tol<S>());
      for (Index i = 0; i < lq; ++i) {
        if (emask::detail::is_inf(ref.lse(i))) {  // (bit test: also under -ffast-math)
          CHECK(static_cast<double>(lse(i)) < -1e300);
          CHECK((out.row(i).array() == S(0)).all());
        } else {
          CHECK(std::abs(static_cast<double>(lse(i)) - ref.lse(i)) <=
                4 * tol<S>() * (1 + std::abs(ref.lse(i))));
        }
      }
      if (variant == emask_test::attention_variant::decode) break;  // tiles do not matter there
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("masked_attention matches a float64 reference for every mask builder",
                   "[attention]", float, double) {
  using S = TestType;
  struct shape {
    Index lq, lk, d, dv;
  };
  const shape shapes[] = {{1, 1, 1, 1},     {37, 53, 5, 7},    {130, 129, 64, 64},
                          {3, 300, 16, 33}, {70, 20, 256, 12}, {129, 257, 32, 1}};
  std::uint64_t seed = 11;
  for (const shape& s : shapes) {
    SECTION("shape " + std::to_string(s.lq) + "x" + std::to_string(s.lk) + " D " +
            std::to_string(s.d)) {
      check_all_variants<S>(emask::causal(), s.lq, s.lk, s.d, s.dv, ++seed);
      check_all_variants<S>(emask::causal::bottom_right(s.lq, s.lk), s.lq, s.lk, s.d, s.dv, ++seed);
      check_all_variants<S>(emask::causal().strict(), s.lq, s.lk, s.d, s.dv, ++seed);
      check_all_variants<S>(emask::sliding_window(9, 3), s.lq, s.lk, s.d, s.dv, ++seed);
      check_all_variants<S>(emask::key_padding::from_lengths({s.lk * 3 / 4}, s.lk), s.lq, s.lk, s.d,
                            s.dv, ++seed);
      check_all_variants<S>(emask::prefix_lm(5), s.lq, s.lk, s.d, s.dv, ++seed);
      check_all_variants<S>(emask::chunked(8) & emask::causal(), s.lq, s.lk, s.d, s.dv, ++seed);
      check_all_variants<S>(emask::sliding_window(4, 0) | emask::prefix_lm(3), s.lq, s.lk, s.d,
                            s.dv, ++seed);
      check_all_variants<S>(!emask::causal(), s.lq, s.lk, s.d, s.dv, ++seed);
      check_all_variants<S>(emask::query_padding::from_lengths({s.lq / 2}, s.lq) & emask::causal(),
                            s.lq, s.lk, s.d, s.dv, ++seed);
      // A random dense mask: inexact key spans, partial tiles everywhere.
      rng g(seed);
      emask::bool_matrix keep(s.lq, s.lk);
      for (Index i = 0; i < s.lq; ++i)
        for (Index j = 0; j < s.lk; ++j) keep(i, j) = g.coin(0.3);
      check_all_variants<S>(emask::as_mask(keep), s.lq, s.lk, s.d, s.dv, ++seed);
    }
  }
}

TEST_CASE("masked_attention: document masks, offsets and the single-head batch/head selectors",
          "[attention]") {
  const auto doc = emask::document::from_cu_seqlens({0, 30, 31, 90}) & emask::causal();
  check_all_variants<double>(doc, 90, 90, 24, 24, 101);
  emask_test::attention_options o;
  o.q_offset = 40;
  o.k_offset = 10;
  check_all_variants<double>(emask::causal(), 50, 80, 16, 16, 102, o);
  const auto pad = emask::key_padding::from_lengths({70, 20, 50}, 80);
  o = {};
  o.slice.b = 1;
  check_all_variants<double>(pad, 33, 80, 8, 8, 103, o);
}

TEMPLATE_TEST_CASE("masked_attention: softcap and ALiBi against the reference", "[attention]",
                   float, double) {
  using S = TestType;
  emask_test::attention_options o;
  o.softcap = 5.0;
  check_all_variants<S>(emask::causal(), 70, 90, 32, 16, 201, o);
  o = {};
  o.alibi = emask::alibi_slopes(8, 8.0);
  o.slice.h = 3;
  check_all_variants<S>(emask::causal(), 70, 90, 32, 16, 202, o);
  o.softcap = 2.0;
  o.scale = 0.5;
  o.slice.h = 6;
  check_all_variants<S>(emask::sliding_window(20, 5), 100, 100, 16, 16, 203, o);
}

TEMPLATE_TEST_CASE("masked_attention: scale 0 means 0, negative scales are scales", "[attention]",
                   float, double) {
  using S = TestType;
  // scale 0: every kept score is 0, so each row is the plain mean of the kept V rows.
  const Index lq = 5, lk = 7, d = 3, dv = 2;
  row_matrix<S> q = row_matrix<S>::Random(lq, d), k = row_matrix<S>::Random(lk, d);
  row_matrix<S> v(lk, dv);
  for (Index j = 0; j < lk; ++j) {
    v(j, 0) = static_cast<S>(j);
    v(j, 1) = static_cast<S>(j * j);
  }
  for (auto variant : {emask_test::attention_variant::naive, emask_test::attention_variant::tiled,
                       emask_test::attention_variant::decode}) {
    emask_test::attention_options o;
    o.variant = variant;
    o.scale = 0.0;
    row_matrix<S> out(lq, dv);
    emask_test::masked_attention(q, k, v, emask::causal(), out, o);
    for (Index i = 0; i < lq; ++i) {
      // causal: query i keeps keys 0..i; mean of j is i / 2, of j^2 is i (2i + 1) / 6
      CHECK_THAT(double(out(i, 0)), Catch::Matchers::WithinAbs(i / 2.0, 1e-5));
      CHECK_THAT(double(out(i, 1)), Catch::Matchers::WithinAbs(i * (2.0 * i + 1) / 6.0, 1e-5));
    }
  }
  emask_test::attention_options o;
  o.scale = -0.7;
  check_all_variants<S>(emask::causal(), 40, 50, 16, 8, 204, o);
}

TEST_CASE("alibi_slopes follows ggml's max_bias schedule", "[attention]") {
  // 8 heads, max_bias 8: n = 8, m0 = 2^-1, slopes 2^-1 ... 2^-8 (the ALiBi paper's sequence).
  const auto s8 = emask::alibi_slopes(8, 8.0);
  REQUIRE(s8.size() == 8);
  for (int h = 0; h < 8; ++h)
    CHECK_THAT(s8[static_cast<std::size_t>(h)], WithinRel(std::pow(2.0, -(h + 1)), 1e-12));
  // 12 heads: n = 8; heads 8..11 use m1 = 2^-0.5 with odd powers 1, 3, 5, 7.
  const auto s12 = emask::alibi_slopes(12, 8.0);
  for (int h = 8; h < 12; ++h)
    CHECK_THAT(s12[static_cast<std::size_t>(h)],
               WithinRel(std::pow(2.0, -0.5 * (2 * (h - 8) + 1)), 1e-12));
  REQUIRE_THROWS_WITH(emask::alibi_slopes(0), Catch::Matchers::Contains("n_head"));
  REQUIRE_THROWS_WITH(emask::alibi_slopes(4, -1.0), Catch::Matchers::Contains("max_bias"));
  // An infinite max_bias gave slopes of 0 (ALiBi off without a word): an argument error.
  REQUIRE_THROWS_WITH(emask::alibi_slopes(4, std::numeric_limits<double>::infinity()),
                      Catch::Matchers::Contains("emask::alibi_slopes: argument 'max_bias' = inf"));
  // More heads than a vector holds (the power-of-two search overflowed before).
  REQUIRE_THROWS_WITH(emask::alibi_slopes(std::numeric_limits<Index>::max()),
                      Catch::Matchers::Contains("emask::alibi_slopes: argument 'n_head'"));
}

TEMPLATE_TEST_CASE("masked_attention: masked entries cannot leak, kept NaN poisons its row",
                   "[attention]", float, double) {
  using S = TestType;
  rng g(301);
  const Index L = 150, D = 16;
  row_matrix<S> q = emask_test::uniform_matrix<S>(g, L, D),
                k = emask_test::uniform_matrix<S>(g, L, D),
                v = emask_test::uniform_matrix<S>(g, L, D);
  const auto m = emask::key_padding::from_lengths({100}, L);
  for (auto variant : all_variants) {
    emask_test::attention_options o;
    o.variant = variant;
    o.softcap = 3.0;  // softcap before the mask: huge masked scores stay out
    o.tile_q = 32;
    o.tile_k = 32;
    row_matrix<S> clean(L, D), dirty(L, D);
    emask_test::masked_attention(q, k, v, m, clean, o);
    row_matrix<S> k2 = k, v2 = v;
    k2.bottomRows(50).setConstant(std::numeric_limits<S>::quiet_NaN());
    k2(120, 0) = std::numeric_limits<S>::infinity();
    k2(101, 3) = S(1e30);
    if (variant != emask_test::attention_variant::naive) {
      // Tiled and decode never read V rows that no query of a tile keeps (documented).
      v2.bottomRows(40).setConstant(std::numeric_limits<S>::infinity());
    }
    emask_test::masked_attention(q, k2, v2, m, dirty, o);
    INFO(name_of(variant));
    CHECK((clean.array() == dirty.array()).all());
#ifndef __FAST_MATH__  // a kept NaN is outside the contract of a -ffast-math build
    // A NaN in a kept score makes its row NaN and leaves the others alone.
    row_matrix<S> q3 = q;
    q3(5, 2) = std::numeric_limits<S>::quiet_NaN();
    row_matrix<S> out3(L, D);
    emask_test::masked_attention(q3, k, v, m, out3, o);
    CHECK(out3.row(5).array().isNaN().all());
    CHECK((out3.topRows(5).array() == clean.topRows(5).array()).all());
#endif
  }
}

TEMPLATE_TEST_CASE("masked_attention: values near the largest finite scalar do not overflow",
                   "[attention]", float, double) {
  // The tiled and decode variants accumulate unnormalized weights times V; with |v| within a
  // factor (kept keys) of max() that sum overflows although the exact output is bounded by
  // max |v|. Found by the fuzzer (inf, and NaN where columns mix signs); such rows are
  // recomputed with normalized weights.
  using S = TestType;
  rng g(77);
  const Index lq = 70, lk = 150, d = 8;
  const S big = std::numeric_limits<S>::max() / 4;
  const row_matrix<S> q = emask_test::uniform_matrix<S>(g, lq, d),
                      k = emask_test::uniform_matrix<S>(g, lk, d);
  row_matrix<S> v(lk, 4);
  for (Index j = 0; j < lk; ++j) {
    v(j, 0) = big;                        // exact output: big
    v(j, 1) = (j % 2 == 0) ? big : -big;  // mixed signs: finite, |out| <= big
    v(j, 2) = static_cast<S>(j);          // ordinary values beside them
    v(j, 3) = 1;                          // the sum of the probabilities
  }
  const auto mask =
      emask::causal::bottom_right(lq, lk) & emask::key_padding::from_lengths({140}, lk);
  row_matrix<S> ref(lq, 4);
  emask_test::attention_options o;
  o.variant = emask_test::attention_variant::naive;
  emask_test::masked_attention(q, k, v, mask, ref, o);
  for (auto variant : all_variants) {
    for (Index tile : {Index(1), Index(16), Index(64)}) {
      o.variant = variant;
      o.tile_q = tile;
      o.tile_k = tile;
      o.decode_chunk = tile;
      row_matrix<S> out(lq, 4);
      emask_test::masked_attention(q, k, v, mask, out, o);
      INFO(name_of(variant) << " tile " << tile);
      for (Index i = 0; i < lq; ++i) {
        for (Index c = 0; c < 4; ++c) REQUIRE(emask::detail::is_finite(out(i, c)));
        CHECK(std::abs(out(i, 0) / big - 1) <= 1e-5);
        CHECK(std::abs(out(i, 1)) <= big);
        CHECK(std::abs(out(i, 1) - ref(i, 1)) <= big * 1e-5);
        CHECK(std::abs(out(i, 2) - ref(i, 2)) <= 1e-3 * (1 + std::abs(ref(i, 2))));
        CHECK(std::abs(out(i, 3) - 1) <= 1e-5);
      }
    }
  }
}

TEMPLATE_TEST_CASE("masked_attention: batched views, interleaved layout, grouped-query heads",
                   "[attention]", float, double) {
  using S = TestType;
  rng g(401);
  const Index B = 2, H = 4, Lq = 45, Lk = 70, D = 12, Dv = 10;
  const auto pad = emask::key_padding::from_lengths({60, 33}, Lk);
  const auto mask = pad & emask::causal::bottom_right(Lq, Lk);
  for (Index hkv : {Index(4), Index(2), Index(1)}) {
    // q in [B, L, H, D] (interleaved), k and v in [B, Hkv, L, D], out in [B, L, H, Dv].
    std::vector<S> qb(static_cast<std::size_t>(B * Lq * H * D)),
        kb(static_cast<std::size_t>(B * hkv * Lk * D)),
        vb(static_cast<std::size_t>(B * hkv * Lk * Dv)),
        ob(static_cast<std::size_t>(B * Lq * H * Dv));
    for (auto* buf : {&qb, &kb, &vb})
      for (auto& x : *buf)
        x = static_cast<S>(static_cast<double>(g.next() >> 11) * 0x1.0p-53 * 2 - 1);
    const auto qv = emask::view_blhd<const S>(qb.data(), B, Lq, H, D);
    const auto kv = emask::view_bhld<const S>(kb.data(), B, hkv, Lk, D);
    const auto vv = emask::view_bhld<const S>(vb.data(), B, hkv, Lk, Dv);
    const auto ov = emask::view_blhd(ob.data(), B, Lq, H, Dv);
    for (auto variant : all_variants) {
      emask_test::attention_options o;
      o.variant = variant;
      o.tile_q = 16;
      o.tile_k = 16;
      o.decode_chunk = 20;
      o.alibi = emask::alibi_slopes(H, 4.0);
      row_matrix<S> lse(B * H, Lq);
      emask_test::masked_attention(qv, kv, vv, mask, ov, lse, o);
      for (Index b = 0; b < B; ++b)
        for (Index h = 0; h < H; ++h) {
          const dmat qs = qv.slice(b, h).template cast<double>();
          const dmat ks = kv.slice(b, h / (H / hkv)).template cast<double>();
          const dmat vs = vv.slice(b, h / (H / hkv)).template cast<double>();
          const ref_result r = reference(
              qs, ks, vs, [&](Index i, Index j) { return mask.keep(b, h, i, j); },
              1.0 / std::sqrt(double(D)), 0.0, o.alibi[static_cast<std::size_t>(h)]);
          INFO(name_of(variant) << " Hkv " << hkv << " b " << b << " h " << h);
          CHECK((ov.slice(b, h).template cast<double>() - r.out).cwiseAbs().maxCoeff() <= tol<S>());
          CHECK((lse.row(b * H + h).transpose().template cast<double>() - r.lse)
                    .cwiseAbs()
                    .maxCoeff() <= 1e-4);
        }
    }
  }
}

TEST_CASE("masked_attention: tiny and empty shapes", "[attention]") {
  row_matrix<float> q(0, 4), k(5, 4), v(5, 3), out(0, 3);
  emask_test::masked_attention(q, k, v, emask::causal(), out);  // nothing to do, no error
  row_matrix<float> q1 = row_matrix<float>::Ones(2, 4), k0(0, 4), v0(0, 3), out1(2, 3);
  emask::lse_vector<float> lse(2);
  for (auto variant : all_variants) {
    emask_test::attention_options o;
    o.variant = variant;
    out1.setConstant(5);
    emask_test::masked_attention(q1, k0, v0, emask::causal(), out1, lse, o);
    CHECK((out1.array() == 0.f).all());
    CHECK(lse(0) < -1e30f);
  }
}

TEST_CASE("masked_attention: bad shapes and options name the argument", "[attention]") {
  using Catch::Matchers::Contains;
  row_matrix<float> q(4, 8), k(6, 8), v(6, 5), out(4, 5);
  q.setZero();
  k.setZero();
  v.setZero();
  row_matrix<float> kbad(6, 7), vbad(5, 5), obad(4, 6);
  emask::lse_vector<float> lbad(3);
  REQUIRE_THROWS_WITH(emask_test::masked_attention(q, kbad, v, emask::causal(), out),
                      Contains("'k'"));
  REQUIRE_THROWS_WITH(emask_test::masked_attention(q, k, vbad, emask::causal(), out),
                      Contains("'v'"));
  REQUIRE_THROWS_WITH(emask_test::masked_attention(q, k, v, emask::causal(), obad),
                      Contains("'out'"));
  REQUIRE_THROWS_WITH(emask_test::masked_attention(q, k, v, emask::causal(), out, lbad),
                      Contains("'lse'"));
  emask_test::attention_options o;
  o.tile_q = 0;
  REQUIRE_THROWS_WITH(emask_test::masked_attention(q, k, v, emask::causal(), out, o),
                      Contains("options.tile_q"));
  o = {};
  o.alibi = {0.5};
  o.slice.h = 2;
  REQUIRE_THROWS_WITH(emask_test::masked_attention(q, k, v, emask::causal(), out, o),
                      Contains("options.alibi"));
  // The mask is checked once for the region it is asked about.
  const auto pad = emask::key_padding::from_lengths({3}, 5);  // built for 5 keys, used with 6
  REQUIRE_THROWS_AS(emask_test::masked_attention(q, k, v, pad, out), emask::error);

  std::vector<float> buf(2 * 3 * 4 * 8, 0.f), obuf(2 * 3 * 4 * 8, 0.f);
  const auto qv = emask::view_bhld<const float>(buf.data(), 2, 3, 4, 8);
  const auto kv2 = emask::view_bhld<const float>(buf.data(), 2, 2, 4, 8);  // 2 does not divide 3
  const auto ov = emask::view_bhld(obuf.data(), 2, 3, 4, 8);
  REQUIRE_THROWS_WITH(emask_test::masked_attention(qv, kv2, kv2, emask::causal(), ov),
                      Contains("'k'") && Contains("divides"));
  const auto kv1 = emask::view_bhld<const float>(buf.data(), 2, 1, 4, 8);
  const auto vv3 = emask::view_bhld<const float>(buf.data(), 2, 1, 3, 8);
  REQUIRE_THROWS_WITH(emask_test::masked_attention(qv, kv1, vv3, emask::causal(), ov),
                      Contains("'v'"));
  const auto ovbad = emask::view_bhld(obuf.data(), 2, 3, 3, 8);
  REQUIRE_THROWS_WITH(emask_test::masked_attention(qv, kv1, kv1, emask::causal(), ovbad),
                      Contains("'out'"));
  REQUIRE_THROWS_WITH(emask::view_bhld<float>(nullptr, 1, 1, 2, 2), Contains("'data'"));
  REQUIRE_THROWS_WITH(emask::view_bhld<float>(obuf.data(), 1, -1, 2, 2), Contains("'heads'"));
}

// The recipe of docs/kernels.md, "Left-padded batched decoding": B sequences left-padded to a
// cache of L + 1 slots (the new token in slot L), one query per sequence at slot L. The mask
// key_padding::from_ranges(L - n_b, L + 1) & causal::bottom_right(1, L + 1) must give, for every
// sequence, the attention of its query over its own unpadded keys.
TEMPLATE_TEST_CASE("recipe: left-padded batched decoding equals each sequence alone", "[attention]",
                   float, double) {
  using S = TestType;
  const Index B = 3, H = 2, L = 37, D = 16;
  const std::vector<Index> n = {36, 5, 0};  // tokens before the new one; the last has none
  rng g(77);
  const row_matrix<S> q = emask_test::uniform_matrix<S>(g, B * H, D, 2.0);
  const row_matrix<S> k = emask_test::uniform_matrix<S>(g, B * H * (L + 1), D, 2.0),
                      v = emask_test::uniform_matrix<S>(g, B * H * (L + 1), D);
  std::vector<Index> starts, ends;
  for (Index b = 0; b < B; ++b) {
    starts.push_back(L - n[static_cast<std::size_t>(b)]);
    ends.push_back(L + 1);
  }
  const auto mask =
      emask::key_padding::from_ranges(starts, ends, L + 1) & emask::causal::bottom_right(1, L + 1);
  const auto qv = emask::view_bhld<const S>(q.data(), B, H, 1, D);
  const auto kv = emask::view_bhld<const S>(k.data(), B, H, L + 1, D);
  const auto vv = emask::view_bhld<const S>(v.data(), B, H, L + 1, D);
  for (auto variant :
       {emask_test::attention_variant::tiled, emask_test::attention_variant::decode}) {
    row_matrix<S> out(B * H, D);
    emask_test::attention_options o;
    o.variant = variant;
    emask_test::masked_attention(qv, kv, vv, mask, emask::view_bhld(out.data(), B, H, 1, D), o);
    for (Index b = 0; b < B; ++b)
      for (Index h = 0; h < H; ++h) {
        const Index row = b * H + h, first = row * (L + 1) + starts[static_cast<std::size_t>(b)];
        const Index keys = L + 1 - starts[static_cast<std::size_t>(b)];
        row_matrix<S> alone(1, D);
        emask::masked_attention(q.row(row), k.middleRows(first, keys), v.middleRows(first, keys),
                                emask::causal::bottom_right(1, keys), alone);
        INFO("b=" << b << " h=" << h);
        CHECK((out.row(row) - alone).cwiseAbs().maxCoeff() <= S(tol<S>()));
      }
  }
}
