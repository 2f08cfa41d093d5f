// Tests of emask/rl/dqn.hpp: masked max / argmax over Q (hand-checked, garbage at illegal
// actions ignored), masked epsilon-greedy (never leaves the legal set, epsilon = 0 is greedy,
// exploration rate and uniformity by chi-square with fixed seeds), masked TD targets for DQN and
// Double DQN against hand-computed values including terminal transitions, and the errors.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <emask/rl/dqn.hpp>

#include "catch.hpp"

using Catch::Matchers::Contains;
using emask::action_mask;
using emask::bool_matrix;
using emask::Index;
using emask::index_vector;
using emask::row_matrix;

namespace {
const double nan_d = std::numeric_limits<double>::quiet_NaN();

double chi2_critical(double dof) {  // p = 1e-3, Wilson-Hilferty
  const double z = 3.09, c = 2.0 / (9.0 * dof);
  return dof * std::pow(1.0 - c + z * std::sqrt(c), 3.0);
}
}  // namespace

TEMPLATE_TEST_CASE("dqn: masked max and argmax, hand-checked", "[rl][dqn]", float, double) {
  using S = TestType;
  row_matrix<S> q(3, 4);
  q << S(1), S(9), S(3), S(2),      //
      S(-5), S(-1), S(-7), S(100),  //
      S(0.5), S(0.5), S(0.25), S(0.5);
  bool_matrix legal(3, 4);
  legal << true, false, true, true,  //
      true, true, true, false,       //
      false, true, true, true;
  const index_vector a = emask::masked_q_argmax(q, legal);
  CHECK(a[0] == 2);
  CHECK(a[1] == 1);
  CHECK(a[2] == 1);  // tie 0.5 / 0.5 -> lowest legal index
  const auto v = emask::masked_q_max(q, legal);
  CHECK(v[0] == S(3));
  CHECK(v[1] == S(-1));
  CHECK(v[2] == S(0.5));
  // A NaN at an illegal action is never read.
  q(0, 1) = std::numeric_limits<S>::quiet_NaN();
  CHECK(emask::masked_q_argmax(q, legal)[0] == 2);
  // The action_mask overloads give the same.
  const action_mask m = action_mask::discrete(legal);
  CHECK(emask::masked_q_argmax(q, m) == a);
  CHECK(emask::masked_q_max(q, m) == emask::masked_q_max(q, legal));
}

TEST_CASE("dqn: masked max and argmax errors", "[rl][dqn]") {
  row_matrix<double> q = row_matrix<double>::Zero(2, 3);
  bool_matrix legal = bool_matrix::Constant(2, 3, true);
  q(1, 2) = nan_d;
  REQUIRE_THROWS_AS(emask::masked_q_argmax(q, legal), emask::error);
  REQUIRE_THROWS_WITH(emask::masked_q_argmax(q, legal), Contains("argument 'q[1, 2]' = nan"));
  REQUIRE_THROWS_WITH(emask::masked_q_max(q, legal), Contains("'q[1, 2]'"));
  q(1, 2) = 0.0;
  legal.row(1).setConstant(false);
  REQUIRE_THROWS_WITH(emask::masked_q_argmax(q, legal), Contains("no legal action in row 1"));
  REQUIRE_THROWS_WITH(emask::masked_q_max(q, legal), Contains("argument 'legal'"));
  REQUIRE_THROWS_WITH(emask::masked_q_max(q, bool_matrix::Constant(2, 4, true)),
                      Contains("argument 'q' = 2 x 3"));
  const action_mask md = action_mask::multi_discrete({1, 2}, bool_matrix::Constant(2, 3, true));
  REQUIRE_THROWS_WITH(emask::masked_q_argmax(q, md), Contains("a Discrete action mask"));
}

TEST_CASE("dqn: epsilon-greedy raises for a legal NaN in a row that explores", "[rl][dqn]") {
  // Found by the masks fuzzer: the exploring branch never looked at Q, so a NaN passed.
  row_matrix<double> q(1, 2);
  q << nan_d, 0.0;
  const bool_matrix legal = bool_matrix::Constant(1, 2, true);
  for (double eps : {0.0, 1.0})
    REQUIRE_THROWS_WITH(emask::masked_epsilon_greedy(q, legal, eps, {1, 2}),
                        Contains("argument 'q[0, 0]' = nan"));
  bool_matrix legal1 = legal;
  legal1(0, 0) = false;  // an illegal NaN is never read
  CHECK(emask::masked_epsilon_greedy(q, legal1, 1.0, {1, 2})(0) == 1);
}

TEST_CASE("dqn: epsilon-greedy never leaves the legal set", "[rl][dqn]") {
  std::mt19937 gen(3);
  const Index batch = 2000, n = 13;
  row_matrix<float> q(batch, n);
  bool_matrix legal(batch, n);
  Index illegal = 0, total = 0;
  for (std::uint64_t step = 0; step < 50; ++step) {
    for (Index b = 0; b < batch; ++b) {
      for (Index a = 0; a < n; ++a) {
        legal(b, a) = gen() % 4 == 0;
        // Illegal actions carry the largest value, or NaN: both must be ignored.
        q(b, a) = legal(b, a) ? float(gen() % 1000) * 1e-3f
                              : (a % 2 ? 1e9f : std::numeric_limits<float>::quiet_NaN());
      }
      if (!legal.row(b).any()) {
        const Index a = Index(gen() % n);
        legal(b, a) = true;
        q(b, a) = 0.0f;
      }
    }
    for (double eps : {0.0, 0.3, 1.0}) {
      const index_vector act = emask::masked_epsilon_greedy(q, legal, eps, {17, step});
      for (Index b = 0; b < batch; ++b, ++total) illegal += legal(b, act[b]) ? 0 : 1;
      if (eps == 0.0) CHECK(act == emask::masked_q_argmax(q, legal));
    }
  }
  CHECK(total == 50 * 3 * batch);
  CHECK(illegal == 0);
}

TEST_CASE("dqn: epsilon-greedy exploration rate and uniformity (chi-square)", "[rl][dqn]") {
  // Every row: 8 actions, legal {1, 2, 5, 6}, greedy action 5.
  const Index batch = 40000;
  row_matrix<double> one(1, 8);
  one << 0, 1, 2, 3, 4, 10, 6, 7;
  bool_matrix l1(1, 8);
  l1 << false, true, true, false, false, true, true, false;
  const row_matrix<double> q = one.replicate(batch, 1);
  const bool_matrix legal = l1.replicate(batch, 1);
  for (double eps : {0.2, 1.0}) {
    const index_vector a = emask::masked_epsilon_greedy(q, legal, eps, {2024, 1});
    std::vector<double> count(8, 0.0);
    for (Index b = 0; b < batch; ++b) count[static_cast<std::size_t>(a[b])] += 1.0;
    // Expected: eps / 4 on each legal action, plus 1 - eps on the greedy one.
    double chi2 = 0.0;
    for (Index k = 0; k < 8; ++k) {
      const double p = l1(0, k) ? eps / 4.0 + (k == 5 ? 1.0 - eps : 0.0) : 0.0;
      if (p == 0.0) {
        CHECK(count[static_cast<std::size_t>(k)] == 0.0);
        continue;
      }
      const double e = p * double(batch), o = count[static_cast<std::size_t>(k)];
      chi2 += (o - e) * (o - e) / e;
    }
    CHECK(chi2 < chi2_critical(3.0));
  }
  // Reproducible per (seed, step, row), different across steps.
  const index_vector a1 = emask::masked_epsilon_greedy(q, legal, 0.5, {9, 1});
  CHECK(emask::masked_epsilon_greedy(q, legal, 0.5, {9, 1}) == a1);
  CHECK(emask::masked_epsilon_greedy(q, legal, 0.5, {9, 2}) != a1);
  REQUIRE_THROWS_WITH(emask::masked_epsilon_greedy(q, legal, 1.5, {0, 0}),
                      Contains("argument 'epsilon' = 1.5"));
  REQUIRE_THROWS_WITH(emask::masked_epsilon_greedy(q, legal, nan_d, {0, 0}),
                      Contains("argument 'epsilon'"));
  bool_matrix empty = legal;
  empty.row(7).setConstant(false);
  REQUIRE_THROWS_WITH(emask::masked_epsilon_greedy(q, empty, 0.1, {0, 0}),
                      Contains("no legal action in row 7"));
}

TEMPLATE_TEST_CASE("dqn: TD targets, hand-checked with terminal transitions", "[rl][dqn]", float,
                   double) {
  using S = TestType;
  // Row 0: non-terminal, legal {0, 2}: max Q_target = 4 -> 1 + 0.5 * 4 = 3.
  // Row 1: terminal: target = reward, next Q (NaN) and the empty mask are not read.
  // Row 2: non-terminal, legal {1}: 0 + 0.5 * (-2) = -1.
  row_matrix<S> next_target(3, 3), next_online(3, 3);
  next_target << S(2), S(100), S(4),                    //
      std::numeric_limits<S>::quiet_NaN(), S(0), S(0),  //
      S(7), S(-2), S(9);
  next_online << S(5), S(0), S(1),  //
      S(0), S(0), S(0),             //
      S(0), S(3), S(0);
  bool_matrix next_legal(3, 3);
  next_legal << true, false, true,  //
      false, false, false,          //
      false, true, false;
  Eigen::Matrix<S, Eigen::Dynamic, 1> reward(3);
  reward << S(1), S(-1), S(0);
  Eigen::Array<bool, Eigen::Dynamic, 1> done(3);
  done << false, true, false;
  const auto y = emask::masked_td_target(reward, done, next_target, next_legal, 0.5);
  CHECK_THAT(double(y[0]), WithinAbs(3.0, 1e-6));
  CHECK(y[1] == S(-1));
  CHECK_THAT(double(y[2]), WithinAbs(-1.0, 1e-6));

  // Double DQN: row 0 argmax of the online Q over {0, 2} is action 0 -> 1 + 0.5 * 2 = 2.
  const auto yd =
      emask::masked_double_td_target(reward, done, next_online, next_target, next_legal, 0.5);
  CHECK_THAT(double(yd[0]), WithinAbs(2.0, 1e-6));
  CHECK(yd[1] == S(-1));
  CHECK_THAT(double(yd[2]), WithinAbs(-1.0, 1e-6));

  // 0/1 integer done flags and a row-vector reward are accepted.
  Eigen::Matrix<int, 1, 3> done_i;
  done_i << 0, 1, 0;
  const Eigen::Matrix<S, 1, 3> reward_row = reward.transpose();
  CHECK(emask::masked_td_target(reward_row, done_i, next_target, next_legal, 0.5) == y);
  // gamma = 0: targets are the rewards.
  CHECK(emask::masked_td_target(reward, done, next_target, next_legal, 0.0) == reward);
}

TEST_CASE("dqn: TD targets against a float64 reference on random data", "[rl][dqn]") {
  std::mt19937 gen(8);
  std::normal_distribution<double> normal;
  const Index batch = 500, n = 9;
  row_matrix<double> qt(batch, n), qo(batch, n);
  bool_matrix legal(batch, n);
  Eigen::VectorXd r(batch);
  Eigen::Array<bool, Eigen::Dynamic, 1> done(batch);
  for (Index b = 0; b < batch; ++b) {
    r[b] = normal(gen);
    done[b] = gen() % 5 == 0;
    for (Index a = 0; a < n; ++a) {
      qt(b, a) = normal(gen);
      qo(b, a) = normal(gen);
      legal(b, a) = gen() % 3 == 0;
    }
    if (!done[b] && !legal.row(b).any()) legal(b, 0) = true;
  }
  const Eigen::VectorXd y = emask::masked_td_target(r, done, qt, legal, 0.99);
  const Eigen::VectorXd yd = emask::masked_double_td_target(r, done, qo, qt, legal, 0.99);
  for (Index b = 0; b < batch; ++b) {
    double best = -1e300, dbl = 0.0, best_online = -1e300;
    for (Index a = 0; a < n; ++a)
      if (legal(b, a)) {
        best = std::max(best, qt(b, a));
        if (qo(b, a) > best_online) {
          best_online = qo(b, a);
          dbl = qt(b, a);
        }
      }
    CHECK(y[b] == (done[b] ? r[b] : r[b] + 0.99 * best));
    CHECK(yd[b] == (done[b] ? r[b] : r[b] + 0.99 * dbl));
    CHECK(yd[b] <= y[b]);  // Double DQN never bootstraps above the max
  }
}

TEST_CASE("dqn: TD target errors", "[rl][dqn]") {
  const row_matrix<double> q = row_matrix<double>::Zero(2, 3);
  bool_matrix legal = bool_matrix::Constant(2, 3, true);
  const Eigen::VectorXd r = Eigen::VectorXd::Zero(2);
  Eigen::Array<bool, Eigen::Dynamic, 1> done(2);
  done << false, false;
  REQUIRE_THROWS_WITH(emask::masked_td_target(r, done, q, legal, 1.5),
                      Contains("argument 'gamma' = 1.5"));
  REQUIRE_THROWS_WITH(emask::masked_td_target(Eigen::VectorXd::Zero(3), done, q, legal, 0.9),
                      Contains("argument 'reward'"));
  REQUIRE_THROWS_WITH(emask::masked_td_target(r, Eigen::VectorXi::Zero(1), q, legal, 0.9),
                      Contains("argument 'done'"));
  REQUIRE_THROWS_WITH(emask::masked_td_target(r, done, q, bool_matrix::Constant(2, 2, true), 0.9),
                      Contains("argument 'next_q' = 2 x 3"));
  legal.row(1).setConstant(false);  // non-terminal row without a legal next action
  REQUIRE_THROWS_WITH(emask::masked_td_target(r, done, q, legal, 0.9),
                      Contains("argument 'next_legal' = no legal action in row 1"));
  REQUIRE_THROWS_WITH(emask::masked_double_td_target(r, done, q, q, legal, 0.9),
                      Contains("no legal action in row 1"));
  done[1] = true;  // now terminal: fine
  CHECK(emask::masked_td_target(r, done, q, legal, 0.9)[1] == 0.0);
  row_matrix<double> qn = q;
  qn(0, 1) = nan_d;
  REQUIRE_THROWS_WITH(emask::masked_td_target(r, done, qn, legal, 0.9), Contains("'next_q[0, 1]'"));
  REQUIRE_THROWS_WITH(
      emask::masked_double_td_target(r, done, q, row_matrix<double>::Zero(2, 4), legal, 0.9),
      Contains("argument 'next_q'"));
}
