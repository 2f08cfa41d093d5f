// Tests of emask/rl/policy.hpp: masked logits, probabilities, log-probabilities, entropy,
// log_prob of given actions and argmax against hand-computed cases and a float64 reference of
// the renormalized legal distribution; the sb3-contrib compatibility mode; sampling frequencies
// by chi-square with fixed seeds; no illegal action over 10^6 draws with random masks; the
// errors (shapes, illegal actions, NaN logits at legal positions).
//
// Tolerance: a probability, log-probability or entropy computed in scalar S is within
// tol(S) * (1 + |reference|) of the float64 reference, tol(float) = 2e-5, tol(double) = 1e-11.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <emask/rl/policy.hpp>

#include "catch.hpp"

#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

using Catch::Matchers::Contains;
using emask::action_mask;
using emask::action_matrix;
using emask::action_space;
using emask::bool_matrix;
using emask::Index;
using emask::mask_fill;
using emask::row_matrix;

namespace {

template <class S>
double tol() {
  return std::is_same<S, float>::value ? 2e-5 : 1e-11;
}

/// float64 reference: per (row, sub-space), the softmax of the legal logits.
struct reference {
  row_matrix<double> probs, log_probs;
  row_matrix<double> entropy;  // [batch x sub-spaces]
};

reference compute_reference(const row_matrix<double>& logits, const action_mask& m) {
  const action_space& sp = m.space();
  reference r;
  r.probs = row_matrix<double>::Zero(logits.rows(), logits.cols());
  r.log_probs = row_matrix<double>::Constant(logits.rows(), logits.cols(),
                                             -std::numeric_limits<double>::infinity());
  r.entropy = row_matrix<double>::Zero(logits.rows(), sp.sub_spaces());
  for (Index b = 0; b < logits.rows(); ++b)
    for (Index i = 0; i < sp.sub_spaces(); ++i) {
      double mx = -std::numeric_limits<double>::infinity();
      for (Index j = sp.offset(i); j < sp.offset(i + 1); ++j)
        if (m.flat()(b, j)) mx = std::max(mx, logits(b, j));
      double z = 0.0;
      for (Index j = sp.offset(i); j < sp.offset(i + 1); ++j)
        if (m.flat()(b, j)) z += std::exp(logits(b, j) - mx);
      for (Index j = sp.offset(i); j < sp.offset(i + 1); ++j)
        if (m.flat()(b, j)) {
          r.probs(b, j) = std::exp(logits(b, j) - mx) / z;
          r.log_probs(b, j) = logits(b, j) - mx - std::log(z);
          r.entropy(b, i) -= r.probs(b, j) * r.log_probs(b, j);
        }
    }
  return r;
}

action_mask random_mask(const action_space& sp, Index batch, double p_legal, std::mt19937& gen) {
  std::bernoulli_distribution coin(p_legal);
  std::uniform_int_distribution<Index> pick(0, 1 << 20);
  bool_matrix legal(batch, sp.width());
  for (Index b = 0; b < batch; ++b)
    for (Index i = 0; i < sp.sub_spaces(); ++i) {
      bool any = false;
      for (Index a = 0; a < sp.size(i); ++a) any |= (legal(b, sp.offset(i) + a) = coin(gen));
      if (!any) legal(b, sp.offset(i) + pick(gen) % sp.size(i)) = true;
    }
  return action_mask(sp, legal);
}

row_matrix<double> random_logits(Index rows, Index cols, std::mt19937& gen, double sd = 2.0) {
  std::normal_distribution<double> normal(0.0, sd);
  row_matrix<double> x(rows, cols);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = normal(gen);
  return x;
}

/// Chi-square critical value at p = 1e-3 by the Wilson-Hilferty approximation.
double chi2_critical(double dof) {
  const double z = 3.09, c = 2.0 / (9.0 * dof);
  return dof * std::pow(1.0 - c + z * std::sqrt(c), 3.0);
}

}  // namespace

TEST_CASE("policy: hand-computed Discrete case", "[rl][policy]") {
  row_matrix<double> logits(1, 4);
  logits << 1.0, 2.0, 3.0, 4.0;
  bool_matrix legal(1, 4);
  legal << true, false, true, false;
  const action_mask m = action_mask::discrete(legal);

  const row_matrix<double> ml = emask::masked_logits(logits, m);
  CHECK(ml(0, 0) == 1.0);
  CHECK(ml(0, 2) == 3.0);
  CHECK(std::isinf(ml(0, 1)));
  CHECK(ml(0, 1) < 0);
  const row_matrix<double> ml8 = emask::masked_logits(logits, m, mask_fill::sb3_compatible);
  CHECK(ml8(0, 1) == -1e8);
  CHECK(ml8(0, 3) == -1e8);
  CHECK(ml8(0, 2) == 3.0);

  // p = e^1 / (e^1 + e^3), e^3 / (e^1 + e^3) = 1 / (1 + e^2), e^2 / (1 + e^2).
  const double p0 = 1.0 / (1.0 + std::exp(2.0)), p2 = 1.0 - p0;
  const row_matrix<double> p = emask::masked_probs(logits, m);
  CHECK_THAT(p(0, 0), WithinAbs(p0, 1e-15));
  CHECK_THAT(p(0, 2), WithinAbs(p2, 1e-15));
  CHECK(p(0, 1) == 0.0);
  CHECK(p(0, 3) == 0.0);
  const row_matrix<double> lp = emask::masked_log_probs(logits, m);
  CHECK_THAT(lp(0, 0), WithinAbs(std::log(p0), 1e-14));
  CHECK_THAT(lp(0, 2), WithinAbs(std::log(p2), 1e-14));
  CHECK(std::isinf(lp(0, 1)));

  const double h = -(p0 * std::log(p0) + p2 * std::log(p2));
  CHECK_THAT(emask::masked_entropy(logits, m)[0], WithinAbs(h, 1e-14));
  CHECK(emask::masked_argmax(logits, m)(0, 0) == 2);  // 4.0 at action 3 is illegal

  Eigen::Matrix<int, 1, 1> a;
  a << 2;
  CHECK_THAT(emask::masked_log_prob(logits, m, a)[0], WithinAbs(std::log(p2), 1e-14));
  a << 3;
  REQUIRE_THROWS_AS(emask::masked_log_prob(logits, m, a), emask::error);
  REQUIRE_THROWS_WITH(emask::masked_log_prob(logits, m, a),
                      Contains("argument 'actions[0, 0]' = 3"));
  REQUIRE_THROWS_WITH(emask::masked_log_prob(logits, m, a), Contains("a legal action"));
  a << 4;
  REQUIRE_THROWS_WITH(emask::masked_log_prob(logits, m, a), Contains("an action in [0, 4)"));
}

TEST_CASE("policy: -infinity logits at legal actions (defects the masks fuzzer found)",
          "[rl][policy]") {
  const double inf = std::numeric_limits<double>::infinity();
  row_matrix<double> logits(1, 3);
  logits << 0.0, -inf, 1.0;
  const action_mask all = action_mask::discrete(bool_matrix::Constant(1, 3, true));
  // A legal -inf beside finite logits: probability exactly 0, entropy of the other two (it was
  // NaN: 0 * -inf).
  const row_matrix<double> p = emask::masked_probs(logits, all);
  CHECK(p(0, 1) == 0.0);
  const double p0 = 1.0 / (1.0 + std::exp(1.0)), p2 = 1.0 - p0;
  CHECK_THAT(emask::masked_entropy(logits, all)[0],
             WithinAbs(-(p0 * std::log(p0) + p2 * std::log(p2)), 1e-14));
  CHECK_THAT(emask::masked_entropy(logits, all, mask_fill::sb3_compatible)[0],
             WithinAbs(-(p0 * std::log(p0) + p2 * std::log(p2)), 1e-14));
  // -inf on every legal action raises in both fill modes (sb3 used to hand the row to the
  // illegal -1e8 entries).
  bool_matrix legal(1, 3);
  legal << true, true, false;
  row_matrix<double> dead(1, 3);
  dead << -inf, -inf, 0.0;
  const action_mask m = action_mask::discrete(legal);
  for (mask_fill fill : {mask_fill::negative_infinity, mask_fill::sb3_compatible}) {
    REQUIRE_THROWS_WITH(emask::masked_probs(dead, m, fill),
                        Contains("argument 'logits'") && Contains("in row 0, sub-space 0"));
    REQUIRE_THROWS_WITH(emask::masked_entropy(dead, m, fill), Contains("argument 'logits'"));
  }
}

TEST_CASE("policy: hand-computed MultiDiscrete and MultiBinary cases", "[rl][policy]") {
  // nvec = {2, 3}; sub-space 0 has both actions legal, sub-space 1 only actions 0 and 2.
  row_matrix<double> logits(1, 5);
  logits << 0.0, std::log(3.0), 5.0, 100.0, 5.0;
  bool_matrix legal(1, 5);
  legal << true, true, true, false, true;
  const action_mask m = action_mask::multi_discrete({2, 3}, legal);
  const row_matrix<double> p = emask::masked_probs(logits, m);
  CHECK_THAT(p(0, 0), WithinAbs(0.25, 1e-15));
  CHECK_THAT(p(0, 1), WithinAbs(0.75, 1e-15));
  CHECK_THAT(p(0, 2), WithinAbs(0.5, 1e-15));
  CHECK(p(0, 3) == 0.0);
  CHECK_THAT(p(0, 4), WithinAbs(0.5, 1e-15));

  const row_matrix<double> h = emask::masked_entropy_per_space(logits, m);
  const double h0 = -(0.25 * std::log(0.25) + 0.75 * std::log(0.75)), h1 = std::log(2.0);
  CHECK_THAT(h(0, 0), WithinAbs(h0, 1e-14));
  CHECK_THAT(h(0, 1), WithinAbs(h1, 1e-14));
  CHECK_THAT(emask::masked_entropy(logits, m)[0], WithinAbs(h0 + h1, 1e-14));

  action_matrix a(1, 2);
  a << 1, 2;
  const row_matrix<double> lps = emask::masked_log_prob_per_space(logits, m, a);
  CHECK_THAT(lps(0, 0), WithinAbs(std::log(0.75), 1e-14));
  CHECK_THAT(lps(0, 1), WithinAbs(std::log(0.5), 1e-14));
  CHECK_THAT(emask::masked_log_prob(logits, m, a)[0], WithinAbs(std::log(0.375), 1e-14));
  a << 1, 1;
  REQUIRE_THROWS_WITH(emask::masked_log_prob(logits, m, a), Contains("'actions[0, 1]' = 1"));
  REQUIRE_THROWS_WITH(emask::masked_log_prob(logits, m, a), Contains("sub-space 1"));

  const action_matrix am = emask::masked_argmax(logits, m);
  CHECK(am(0, 0) == 1);
  CHECK(am(0, 1) == 0);  // tie 5.0 / 5.0 goes to the lower index; 100.0 is illegal

  // MultiBinary(2): bit 0 forced to 1, bit 1 free with logits (0, 0).
  row_matrix<float> lb(1, 4);
  lb << 3.0f, -1.0f, 0.0f, 0.0f;
  bool_matrix mb(1, 4);
  mb << false, true, true, true;
  const action_mask bm = action_mask::multi_binary(mb);
  const row_matrix<float> pb = emask::masked_probs(lb, bm);
  CHECK(pb(0, 0) == 0.0f);
  CHECK(pb(0, 1) == 1.0f);
  CHECK_THAT(pb(0, 2), WithinAbs(0.5, 1e-7));
  CHECK_THAT(emask::masked_entropy(lb, bm)[0], WithinAbs(std::log(2.0), 1e-6));
  const action_matrix sb = emask::masked_sample(lb, bm, {1, 2});
  CHECK(sb(0, 0) == 1);
}

TEMPLATE_TEST_CASE("policy: float64 reference on random MultiDiscrete masks", "[rl][policy]", float,
                   double) {
  using S = TestType;
  std::mt19937 gen(1234);
  const action_space sp = action_space::multi_discrete({3, 7, 1, 12, 2});
  const Index batch = 64;
  const action_mask m = random_mask(sp, batch, 0.5, gen);
  row_matrix<double> x = random_logits(batch, sp.width(), gen);
  const row_matrix<S> xs = x.template cast<S>();
  const reference ref = compute_reference(xs.template cast<double>(), m);

  const row_matrix<S> p = emask::masked_probs(xs, m);
  const row_matrix<S> lp = emask::masked_log_probs(xs, m);
  const row_matrix<S> h = emask::masked_entropy_per_space(xs, m);
  const action_matrix am = emask::masked_argmax(xs, m);
  const action_matrix draws = emask::masked_sample(xs, m, {99, 0});
  const row_matrix<S> lpa = emask::masked_log_prob_per_space(xs, m, draws);
  for (Index b = 0; b < batch; ++b) {
    for (Index j = 0; j < sp.width(); ++j) {
      if (m.flat()(b, j)) {
        CHECK_THAT(double(p(b, j)), WithinAbs(ref.probs(b, j), tol<S>() * (1 + ref.probs(b, j))));
        CHECK_THAT(double(lp(b, j)),
                   WithinAbs(ref.log_probs(b, j), tol<S>() * (1 + std::abs(ref.log_probs(b, j)))));
      } else {
        CHECK(p(b, j) == S(0));  // exactly zero, not merely small
        CHECK(std::isinf(lp(b, j)));
      }
    }
    for (Index i = 0; i < sp.sub_spaces(); ++i) {
      // Each sub-space is its own distribution: probabilities sum to 1.
      CHECK_THAT(double(p.row(b).segment(sp.offset(i), sp.size(i)).sum()),
                 WithinAbs(1.0, 10 * tol<S>()));
      CHECK_THAT(double(h(b, i)), WithinAbs(ref.entropy(b, i), tol<S>() * (1 + ref.entropy(b, i))));
      // Entropy is within [0, log(#legal)].
      CHECK(double(h(b, i)) <= std::log(double(m.legal_count(b, i))) + 1e-5);
      CHECK(double(h(b, i)) >= -1e-6);
      const Index a = draws(b, i);
      REQUIRE(m.legal(b, i, a));
      CHECK_THAT(double(lpa(b, i)),
                 WithinAbs(ref.log_probs(b, sp.offset(i) + a),
                           tol<S>() * (1 + std::abs(ref.log_probs(b, sp.offset(i) + a)))));
      // argmax is the legal action of largest reference probability.
      Index best = -1;
      for (Index k = 0; k < sp.size(i); ++k)
        if (m.legal(b, i, k) && (best < 0 || xs(b, sp.offset(i) + k) > xs(b, sp.offset(i) + best)))
          best = k;
      CHECK(am(b, i) == best);
    }
  }
  // Joint quantities are the sums over sub-spaces.
  const Eigen::Matrix<S, Eigen::Dynamic, 1> hs = emask::masked_entropy(xs, m);
  const Eigen::Matrix<S, Eigen::Dynamic, 1> lps = emask::masked_log_prob(xs, m, draws);
  for (Index b = 0; b < batch; ++b) {
    CHECK_THAT(double(hs[b]), WithinAbs(ref.entropy.row(b).sum(), 20 * tol<S>()));
    CHECK_THAT(double(lps[b]),
               WithinAbs(double(lpa.row(b).sum()), 20 * tol<S>() * (1 + std::abs(double(lps[b])))));
  }
}

TEMPLATE_TEST_CASE("policy: sb3-contrib compatibility mode", "[rl][policy]", float, double) {
  using S = TestType;
  std::mt19937 gen(77);
  const action_space sp = action_space::multi_discrete({4, 6});
  const action_mask m = random_mask(sp, 16, 0.4, gen);
  const row_matrix<S> x = random_logits(16, sp.width(), gen).template cast<S>();
  const row_matrix<S> p = emask::masked_probs(x, m);
  const row_matrix<S> p8 = emask::masked_probs(x, m, mask_fill::sb3_compatible);
  const row_matrix<S> lp = emask::masked_log_probs(x, m);
  const row_matrix<S> lp8 = emask::masked_log_probs(x, m, mask_fill::sb3_compatible);
  for (Index b = 0; b < 16; ++b)
    for (Index j = 0; j < sp.width(); ++j) {
      CHECK_THAT(double(p8(b, j)), WithinAbs(double(p(b, j)), 1e-6));
      if (m.flat()(b, j)) {
        CHECK_THAT(double(lp8(b, j)), WithinAbs(double(lp(b, j)), 1e-5));
      } else {
        // sb3: log_softmax of -1e8 is finite, about -1e8 - logsumexp(legal logits).
        CHECK(std::isfinite(lp8(b, j)));
        CHECK_THAT(double(lp8(b, j)), WithinRel(-1e8, 1e-6));
      }
    }
  const auto h = emask::masked_entropy(x, m),
             h8 = emask::masked_entropy(x, m, mask_fill::sb3_compatible);
  for (Index b = 0; b < 16; ++b) CHECK_THAT(double(h8[b]), WithinAbs(double(h[b]), 1e-5));
  REQUIRE_THROWS_WITH(emask::masked_probs(x, m, static_cast<mask_fill>(9)),
                      Contains("argument 'fill'"));
}

TEST_CASE("policy: sampling frequencies match the probabilities (chi-square)", "[rl][policy]") {
  // 40000 rows with identical logits and mask: every row draws from its own Philox stream.
  const Index n_draws = 40000;
  row_matrix<double> one(1, 6);
  one << 0.3, -1.0, 2.0, 50.0, 0.0, 1.5;
  bool_matrix legal1(1, 6);
  legal1 << true, true, true, false, true, true;
  const row_matrix<double> logits = one.replicate(n_draws, 1);
  const action_mask m = action_mask::discrete(legal1.replicate(n_draws, 1));
  const row_matrix<double> p = emask::masked_probs(one, action_mask::discrete(legal1));
  for (std::uint64_t seed : {1ull, 2ull, 3ull}) {
    const action_matrix a = emask::masked_sample(logits, m, {seed, 5});
    std::vector<double> count(6, 0.0);
    for (Index b = 0; b < n_draws; ++b) count[static_cast<std::size_t>(a(b, 0))] += 1.0;
    CHECK(count[3] == 0.0);
    double chi2 = 0.0;
    for (Index j = 0; j < 6; ++j) {
      if (j == 3) continue;
      const double e = p(0, j) * double(n_draws);
      chi2 +=
          (count[static_cast<std::size_t>(j)] - e) * (count[static_cast<std::size_t>(j)] - e) / e;
    }
    CHECK(chi2 < chi2_critical(4.0));
  }
  // MultiDiscrete: each sub-space has its own frequencies; float logits.
  const action_space sp = action_space::multi_discrete({3, 4});
  row_matrix<float> lf(1, 7);
  lf << 1.0f, 0.0f, -0.5f, 0.2f, 0.2f, 9.0f, -2.0f;
  bool_matrix lm(1, 7);
  lm << true, true, true, true, true, false, true;
  const row_matrix<float> pf = emask::masked_probs(lf, action_mask(sp, lm));
  const action_matrix a = emask::masked_sample(row_matrix<float>(lf.replicate(n_draws, 1)),
                                               action_mask(sp, lm.replicate(n_draws, 1)), {42, 0});
  for (Index i = 0; i < 2; ++i) {
    std::vector<double> count(static_cast<std::size_t>(sp.size(i)), 0.0);
    for (Index b = 0; b < n_draws; ++b) count[static_cast<std::size_t>(a(b, i))] += 1.0;
    double chi2 = 0.0, dof = -1.0;
    for (Index k = 0; k < sp.size(i); ++k) {
      const double e = double(pf(0, sp.offset(i) + k)) * double(n_draws);
      if (e == 0.0) {
        CHECK(count[static_cast<std::size_t>(k)] == 0.0);
        continue;
      }
      chi2 +=
          (count[static_cast<std::size_t>(k)] - e) * (count[static_cast<std::size_t>(k)] - e) / e;
      dof += 1.0;
    }
    CHECK(chi2 < chi2_critical(dof));
  }
}

TEST_CASE("policy: sampling is reproducible and addressed by (seed, step, row)", "[rl][policy]") {
  std::mt19937 gen(5);
  const action_space sp = action_space::discrete(10);
  const action_mask m = random_mask(sp, 200, 0.7, gen);
  const row_matrix<double> x = random_logits(200, 10, gen, 0.5);
  const action_matrix a = emask::masked_sample(x, m, {7, 3});
  CHECK(emask::masked_sample(x, m, {7, 3}) == a);
  CHECK(emask::masked_sample(x, m, {7, 4}) != a);
  CHECK(emask::masked_sample(x, m, {8, 3}) != a);
  // Row b's draw does not depend on the other rows: recompute the first 50 rows alone.
  const action_mask m50 = action_mask::discrete(bool_matrix(m.flat().topRows(50)));
  CHECK(emask::masked_sample(row_matrix<double>(x.topRows(50)), m50, {7, 3}) == a.topRows(50));
}

TEST_CASE("policy: masked_sample is the inverse-CDF draw from masked_probs", "[rl][policy]") {
  // The actions must be exactly those drawn from masked_probs with row b's Philox stream
  // (seed, step, rl_sample, b), whatever the thread count.
  std::mt19937 gen(11);
  const action_space sp = action_space::multi_discrete({7, 64, 3});
  const Index batch = 1000;
  const action_mask m = random_mask(sp, batch, 0.5, gen);
  const row_matrix<float> x = random_logits(batch, sp.width(), gen, 3.0).cast<float>();
  const std::uint64_t seed = 2024, step = 9;
  const row_matrix<float> p = emask::masked_probs(x, m);
  action_matrix expected(batch, sp.sub_spaces());
  for (Index b = 0; b < batch; ++b) {
    emask::word_stream words(seed, step, emask::purpose::rl_sample, std::uint32_t(b));
    for (Index i = 0; i < sp.sub_spaces(); ++i) {
      const std::uint32_t w0 = words.next(), w1 = words.next();
      const double u = emask::uniform_double(w0, w1);
      double total = 0;
      for (Index a = 0; a < sp.size(i); ++a) total += double(p(b, sp.offset(i) + a));
      double cum = 0;
      Index chosen = -1;
      for (Index a = 0; a < sp.size(i) && chosen < 0; ++a) {
        cum += double(p(b, sp.offset(i) + a));
        if (cum > u * total) chosen = a;
      }
      REQUIRE(chosen >= 0);  // rounding at the very end of a row never happens here
      expected(b, i) = chosen;
    }
  }
  CHECK(emask::masked_sample(x, m, {seed, step}) == expected);
#if EMASK_HAS_OPENMP
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    CHECK(emask::masked_sample(x, m, {seed, step}) == expected);
  }
  omp_set_num_threads(saved);
#endif
  // An error in a late row names that row.
  row_matrix<float> bad = x;
  const Index row = 777;
  Index legal_col = 0;
  while (!m.flat()(row, sp.offset(1) + legal_col)) ++legal_col;
  bad(row, sp.offset(1) + legal_col) = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_WITH(emask::masked_sample(bad, m, {seed, step}), Contains("row 777, sub-space 1"));
}

TEST_CASE("policy: no illegal action over 10^6 draws with random masks", "[rl][policy]") {
  // 1000 rows x 3 sub-spaces per call (small enough to stay on one thread), 334 calls; masks
  // from raw generator bits with legal-probability 1/2 or 1/8, logits from a fixed pool.
  std::mt19937 gen(2024);
  const action_space sp = action_space::multi_discrete({5, 17, 2});
  const Index batch = 1000;
  const row_matrix<double> pool = random_logits(batch, sp.width(), gen, 4.0);
  row_matrix<float> x(batch, sp.width());
  bool_matrix legal(batch, sp.width());
  Index draws = 0, illegal = 0;
  for (std::uint64_t step = 0; draws < 1000000; ++step) {
    const std::uint32_t sparse = step % 2 ? 7u : 1u;
    for (Index b = 0; b < batch; ++b) {
      std::uint32_t bits = gen(), used = 0;
      for (Index j = 0; j < sp.width(); ++j) {
        if (used + 3 > 32) {
          bits = gen();
          used = 0;
        }
        legal(b, j) = ((bits >> used) & sparse) == 0;
        used += 3;
      }
      for (Index i = 0; i < sp.sub_spaces(); ++i)
        if (!legal.row(b).segment(sp.offset(i), sp.size(i)).any())
          legal(b, sp.offset(i) + Index(gen() % std::uint32_t(sp.size(i)))) = true;
    }
    const action_mask m(sp, legal);
    // Garbage at masked positions must never matter: huge logits, NaN, +infinity.
    const float garbage[3] = {std::numeric_limits<float>::quiet_NaN(), 1e30f,
                              std::numeric_limits<float>::infinity()};
    for (Index b = 0; b < batch; ++b)
      for (Index j = 0; j < sp.width(); ++j)
        x(b, j) = legal(b, j) ? float(pool((b + Index(step)) % batch, j)) : garbage[j % 3];
    const action_matrix a = emask::masked_sample(x, m, {31337, step});
    for (Index b = 0; b < batch; ++b)
      for (Index i = 0; i < sp.sub_spaces(); ++i) {
        illegal += legal(b, sp.offset(i) + a(b, i)) ? 0 : 1;
        ++draws;
      }
  }
  CHECK(draws >= 1000000);
  CHECK(illegal == 0);
}

TEST_CASE("policy: errors name the argument, the row and the sub-space", "[rl][policy]") {
  const action_mask m = action_mask::multi_discrete({2, 3}, bool_matrix::Constant(2, 5, true));
  const row_matrix<double> bad_shape(2, 4);
  REQUIRE_THROWS_AS(emask::masked_probs(bad_shape, m), emask::error);
  REQUIRE_THROWS_WITH(emask::masked_probs(bad_shape, m), Contains("argument 'logits' = 2 x 4"));
  REQUIRE_THROWS_WITH(emask::masked_sample(bad_shape, m, {0, 0}), Contains("2 x 5"));
  REQUIRE_THROWS_WITH(emask::masked_argmax(bad_shape, m), Contains("argument 'logits'"));
  REQUIRE_THROWS_WITH(emask::masked_logits(bad_shape, m), Contains("argument 'logits'"));

  row_matrix<double> x = row_matrix<double>::Zero(2, 5);
  x(1, 3) = std::numeric_limits<double>::quiet_NaN();  // legal position, row 1, sub-space 1
  REQUIRE_THROWS_WITH(emask::masked_probs(x, m), Contains("row 1, sub-space 1"));
  REQUIRE_THROWS_WITH(emask::masked_log_probs(x, m), Contains("argument 'logits'"));
  REQUIRE_THROWS_WITH(emask::masked_sample(x, m, {0, 0}), Contains("row 1, sub-space 1"));
  REQUIRE_THROWS_WITH(emask::masked_entropy(x, m), Contains("row 1, sub-space 1"));
  REQUIRE_THROWS_WITH(emask::masked_argmax(x, m), Contains("'logits[1, 3]'"));
  REQUIRE_THROWS_WITH(emask::masked_probs(x, m, mask_fill::sb3_compatible),
                      Contains("row 1, sub-space 1"));
  // +infinity at a legal position, and -infinity on every legal action, are errors too.
  x(1, 3) = std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_WITH(emask::masked_probs(x, m), Contains("row 1, sub-space 1"));
  x(1, 3) = 0.0;
  x(0, 0) = x(0, 1) = -std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_WITH(emask::masked_probs(x, m), Contains("row 0, sub-space 0"));

  // NaN at a masked position is never read.
  bool_matrix legal = bool_matrix::Constant(2, 5, true);
  legal(1, 3) = false;
  const action_mask m2 = action_mask::multi_discrete({2, 3}, legal);
  row_matrix<double> y = row_matrix<double>::Zero(2, 5);
  y(1, 3) = std::numeric_limits<double>::quiet_NaN();
  const row_matrix<double> p = emask::masked_probs(y, m2);
  CHECK(p(1, 3) == 0.0);
  CHECK_THAT(p(1, 2), WithinAbs(0.5, 1e-15));
  CHECK(emask::masked_argmax(y, m2)(1, 1) == 0);

  // Actions of the wrong shape.
  const action_matrix wrong(2, 3);
  REQUIRE_THROWS_WITH(emask::masked_log_prob(y, m2, wrong), Contains("argument 'actions' = 2 x 3"));
  action_matrix neg(2, 2);
  neg << 0, 0, -1, 0;
  REQUIRE_THROWS_WITH(emask::masked_log_prob(y, m2, neg), Contains("'actions[1, 0]' = -1"));
}

TEST_CASE("policy: Discrete actions as a row vector", "[rl][policy]") {
  row_matrix<double> x(3, 2);
  x << 0.0, 0.0, 1.0, 1.0, 2.0, 2.0;
  const action_mask m = action_mask::all_legal(action_space::discrete(2), 3);
  Eigen::Matrix<int, 1, 3> row;
  row << 0, 1, 0;
  const auto lp = emask::masked_log_prob(x, m, row);
  for (Index b = 0; b < 3; ++b) CHECK_THAT(lp[b], WithinAbs(std::log(0.5), 1e-15));
  Eigen::VectorXi col(3);
  col << 1, 1, 0;
  CHECK_THAT(emask::masked_log_prob(x, m, col)[2], WithinAbs(std::log(0.5), 1e-15));
}

TEST_CASE("policy: samples do not depend on the thread count", "[rl][policy]") {
  // 3000 x 40 is above the kernels' parallel threshold, so OpenMP builds run it on threads.
  std::mt19937 gen(99);
  const action_space sp = action_space::multi_discrete({10, 30});
  const action_mask m = random_mask(sp, 3000, 0.5, gen);
  const row_matrix<float> x = random_logits(3000, sp.width(), gen).cast<float>();
#if EMASK_HAS_OPENMP
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const action_matrix one = emask::masked_sample(x, m, {5, 6});
  omp_set_num_threads(2);
  const action_matrix two = emask::masked_sample(x, m, {5, 6});
  omp_set_num_threads(saved);
  CHECK(one == two);
#else
  CHECK(emask::masked_sample(x, m, {5, 6}) == emask::masked_sample(x, m, {5, 6}));
#endif
}

TEST_CASE("policy: an empty batch gives empty results", "[rl][policy]") {
  const action_mask m = action_mask::multi_discrete({2, 3}, bool_matrix(0, 5));
  const row_matrix<double> x(0, 5);
  CHECK(emask::masked_probs(x, m).rows() == 0);
  CHECK(emask::masked_log_probs(x, m, mask_fill::sb3_compatible).rows() == 0);
  const action_matrix a = emask::masked_sample(x, m, {1, 1});
  CHECK(a.rows() == 0);
  CHECK(a.cols() == 2);
  CHECK(emask::masked_entropy(x, m).size() == 0);
  CHECK(emask::masked_argmax(x, m).rows() == 0);
  CHECK(emask::masked_log_prob(x, m, action_matrix(0, 2)).size() == 0);
}

TEST_CASE("policy: log-prob gradient against central differences", "[rl][policy]") {
  std::mt19937 gen(4);
  const action_space sp = action_space::multi_discrete({4, 6});
  const action_mask m = random_mask(sp, 8, 0.5, gen);
  row_matrix<double> x = random_logits(8, sp.width(), gen);
  const action_matrix a = emask::masked_sample(x, m, {3, 0});
  const row_matrix<double> g = emask::masked_log_prob_grad(x, m, a);
  const double h = 1e-6;
  for (Index b = 0; b < 8; ++b)
    for (Index j = 0; j < sp.width(); ++j) {
      if (!m.flat()(b, j)) {
        CHECK(g(b, j) == 0.0);  // masked logits receive no gradient
        continue;
      }
      row_matrix<double> xp = x, xm = x;
      xp(b, j) += h;
      xm(b, j) -= h;
      const double fd =
          (emask::masked_log_prob(xp, m, a)[b] - emask::masked_log_prob(xm, m, a)[b]) / (2 * h);
      CHECK_THAT(g(b, j), WithinAbs(fd, 1e-6));
    }
  // Each sub-space's gradient sums to 0 (onehot minus a distribution).
  for (Index b = 0; b < 8; ++b)
    for (Index i = 0; i < 2; ++i)
      CHECK_THAT(g.row(b).segment(sp.offset(i), sp.size(i)).sum(), WithinAbs(0.0, 1e-12));
  // An illegal given action raises, naming its row and sub-space.
  Index bad_row = -1, bad_action = -1;
  for (Index b = 0; b < 8 && bad_row < 0; ++b)
    for (Index j = 0; j < 4; ++j)
      if (!m.legal(b, 0, j)) {
        bad_row = b;
        bad_action = j;
        break;
      }
  REQUIRE(bad_row >= 0);
  action_matrix bad = a;
  bad(bad_row, 0) = bad_action;
  REQUIRE_THROWS_WITH(emask::masked_log_prob_grad(x, m, bad),
                      Contains("'actions[" + std::to_string(bad_row) + ", 0]'"));
  REQUIRE_THROWS_WITH(emask::masked_log_prob_grad(x, m, action_matrix(8, 3)),
                      Contains("argument 'actions'"));
}
