// Sequence utilities against brute force and hand-checked cases, with their bad-input errors.
#include <cmath>
#include <limits>

#include <emask/seq/loss.hpp>
#include <emask/seq/pooling.hpp>
#include <emask/seq/reverse.hpp>
#include <emask/seq/sequence_mask.hpp>

#include "mask_testing.hpp"

using namespace emask;
using emask_test::rng;

namespace {
template <class S>
row_matrix<S> random_matrix(Index rows, Index cols, rng& r) {
  row_matrix<S> m(rows, cols);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j)
      m(i, j) = static_cast<S>(static_cast<double>(r.between(-1000, 1000)) / 250.0);
  return m;
}
}  // namespace

TEST_CASE("sequence_mask matches tf.sequence_mask", "[seq]") {
  bool_matrix expected(3, 4);
  // clang-format off
  expected << 1, 0, 0, 0,
              1, 1, 1, 0,
              1, 1, 1, 1;
  // clang-format on
  CHECK((sequence_mask({1, 3, 6}, 4) == expected).all());  // length 6 > maxlen keeps the row
  CHECK(sequence_mask({1, 3, 2}).cols() == 3);
  CHECK(sequence_mask({0, 0}).cols() == 0);
  CHECK(sequence_mask({2, 0}, 3).row(1).count() == 0);
  REQUIRE_THROWS_WITH(sequence_mask({2, -1}, 3), Catch::Matchers::Contains("lengths[1]"));
  REQUIRE_THROWS_WITH(sequence_mask({2}, -3), Catch::Matchers::Contains("maxlen"));
}

TEST_CASE("masking by value matches Keras Masking; mask_zero masks id 0", "[seq]") {
  row_matrix<float> x(6, 2);  // batch 2, time 3, features 2
  // clang-format off
  x << 1, 2,   0, 0,   0, 3,
       0, 0,   5, 0,   0, 0;
  // clang-format on
  bool_matrix expected(2, 3);
  // clang-format off
  expected << 1, 0, 1,
              0, 1, 0;
  // clang-format on
  CHECK((masking(x, 2) == expected).all());
  row_matrix<float> y = x;
  y(1, 0) = std::numeric_limits<float>::quiet_NaN();  // NaN never equals the mask value
  CHECK(masking(y, 2)(0, 1));
  CHECK(masking(x, 2, 5.0f).all());          // no step has every feature equal to 5
  CHECK(masking(x, 2, 5.0f)(1, 1) == true);  // (5, 0) is not all-5
  Eigen::Array<std::int32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> ids(2, 3);
  ids << 4, 0, 9, 0, 0, 1;
  bool_matrix mz(2, 3);
  mz << 1, 0, 1, 0, 0, 1;
  CHECK((mask_zero(ids) == mz).all());
  // pad_id is a token_id; int32 token matrices and int64 ids both work
  token_matrix tok(2, 3);
  tok << 4, 7, 9, 7, 0, 1;
  CHECK((mask_zero(tok, token_id{7}) == (tok != 7)).all());
  const Eigen::Array<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> ids64 =
      ids.cast<std::int64_t>();
  CHECK((mask_zero(ids64, 9) == (ids64 != 9)).all());
  REQUIRE_THROWS_WITH(masking(x, 4), Catch::Matchers::Contains("x.rows()"));
  REQUIRE_THROWS_WITH(masking(x, 0), Catch::Matchers::Contains("batch"));
}

TEMPLATE_TEST_CASE("masked pooling against brute force", "[seq]", float, double) {
  using S = TestType;
  rng r(17);
  const Index B = 4, T = 5, F = 3;
  const row_matrix<S> x = random_matrix<S>(B * T, F, r);
  const bool_matrix mask = sequence_mask({3, 0, 5, 1}, T);
  const row_matrix<S> sum = masked_sum(x, mask), mean = masked_mean(x, mask),
                      mx = masked_max(x, mask);
  for (Index b = 0; b < B; ++b)
    for (Index f = 0; f < F; ++f) {
      double s = 0, m = -1e300;
      Index n = 0;
      for (Index t = 0; t < T; ++t)
        if (mask(b, t)) {
          s += static_cast<double>(x(b * T + t, f));
          m = std::max(m, static_cast<double>(x(b * T + t, f)));
          ++n;
        }
      CHECK_THAT(static_cast<double>(sum(b, f)), WithinAbs(s, 1e-5));
      CHECK_THAT(static_cast<double>(mean(b, f)),
                 WithinAbs(n ? s / static_cast<double>(n) : 0.0, 1e-5));
      CHECK_THAT(static_cast<double>(mx(b, f)), WithinAbs(n ? m : 0.0, 0.0));
    }
  // The fully masked sequence pools to exactly 0 everywhere (not NaN, not -inf).
  CHECK((sum.row(1).array() == S(0)).all());
  CHECK((mean.row(1).array() == S(0)).all());
  CHECK((mx.row(1).array() == S(0)).all());
  REQUIRE_THROWS_WITH(masked_mean(x, sequence_mask({1, 2}, T)),
                      Catch::Matchers::Contains("x.rows()"));
  REQUIRE_THROWS_WITH(masked_sum(x, sequence_mask({1, 2, 3, 4}, 4)),
                      Catch::Matchers::Contains("mask.cols()"));
}

TEMPLATE_TEST_CASE("masked cross-entropy and NLL against a double reference", "[seq]", float,
                   double) {
  using S = TestType;
  rng r(23);
  const Index B = 3, T = 4, V = 7;
  const row_matrix<S> logits = random_matrix<S>(B * T, V, r);
  Eigen::Array<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> y(B, T);
  // clang-format off
  y << 1, 6, -100, 0,
       3, -100, -100, -100,
       2, 2, 5, 4;
  // clang-format on
  const bool_matrix mask = sequence_mask({4, 4, 3}, T);  // the last token of sequence 2 is padding
  double total = 0;
  Index n = 0;
  row_matrix<double> expected = row_matrix<double>::Zero(B, T);
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < T; ++t) {
      if (y(b, t) == -100 || !mask(b, t)) continue;
      double lse = 0;
      for (Index v = 0; v < V; ++v) lse += std::exp(static_cast<double>(logits(b * T + t, v)));
      expected(b, t) =
          std::log(lse) - static_cast<double>(logits(b * T + t, static_cast<Index>(y(b, t))));
      total += expected(b, t);
      ++n;
    }
  loss_options opt;
  const auto mean = masked_cross_entropy(logits, y, mask, opt);
  CHECK(mean.counted == n);
  CHECK(n == 7);
  CHECK_THAT(static_cast<double>(mean.value), WithinRel(total / static_cast<double>(n), 1e-5));
  opt.reduction = loss_reduction::sum;
  CHECK_THAT(static_cast<double>(masked_cross_entropy(logits, y, mask, opt).value),
             WithinRel(total, 1e-5));
  opt.reduction = loss_reduction::none;
  const auto none = masked_cross_entropy(logits, y, mask, opt);
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < T; ++t)
      CHECK_THAT(static_cast<double>(none.per_token(b, t)), WithinAbs(expected(b, t), 1e-5));
  // NLL of log-softmax equals cross-entropy of the logits.
  row_matrix<S> log_probs(B * T, V);
  for (Index i = 0; i < B * T; ++i) {
    const S m = logits.row(i).maxCoeff();
    log_probs.row(i) =
        logits.row(i).array() - (m + std::log((logits.row(i).array() - m).exp().sum()));
  }
  opt.reduction = loss_reduction::mean;
  CHECK_THAT(static_cast<double>(masked_nll(log_probs, y, mask, opt).value),
             WithinRel(total / static_cast<double>(n), 1e-5));
  // The mask is an overload: without it every token counts, an all-true mask changes nothing,
  // and the options default to PyTorch's mean.
  const bool_matrix all = bool_matrix::Constant(B, T, true);
  CHECK(masked_cross_entropy(logits, y, all, opt).value ==
        masked_cross_entropy(logits, y, opt).value);
  CHECK(masked_cross_entropy(logits, y, mask).value == mean.value);
  CHECK(masked_cross_entropy(logits, y).counted == 8);  // 7 and the padded last token
  CHECK(masked_nll(log_probs, y, all).value == masked_nll(log_probs, y).value);
  CHECK(masked_nll(log_probs, y, mask).counted == 7);
  // Large logits stay finite (stable log-sum-exp).
  row_matrix<S> big = logits.array() * S(1000);
  CHECK(std::isfinite(static_cast<double>(masked_cross_entropy(big, y, mask, opt).value)));
  // No counted token: 0, not NaN.
  Eigen::Array<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> all_ignored =
      decltype(all_ignored)::Constant(B, T, -100);
  CHECK(masked_cross_entropy(logits, all_ignored).value == S(0));
  // Bad targets name the token.
  y(2, 1) = 7;
  REQUIRE_THROWS_WITH(masked_cross_entropy(logits, y),
                      Catch::Matchers::Contains("targets(2, 1)' = 7"));
  y(2, 1) = 2;
  y(1, 1) = -5;
  REQUIRE_THROWS_WITH(masked_cross_entropy(logits, y), Catch::Matchers::Contains("targets(1, 1)"));
  const bool_matrix wrong = sequence_mask({1, 1}, T);
  y(1, 1) = -100;
  REQUIRE_THROWS_WITH(masked_cross_entropy(logits, y, wrong, opt),
                      Catch::Matchers::Contains("mask"));
}

TEST_CASE("reverse_padded reverses the valid prefix only (tf.reverse_sequence)", "[seq]") {
  row_matrix<double> x(8, 1);  // batch 2, time 4
  // clang-format off
  x << 1, 2, 3, 0,
       5, 6, 0, 0;
  // clang-format on
  row_matrix<double> expected(8, 1);
  // clang-format off
  expected << 3, 2, 1, 0,
              6, 5, 0, 0;
  // clang-format on
  CHECK(reverse_padded(x, {3, 2}) == expected);
  CHECK(reverse_padded(reverse_padded(x, {3, 2}), {3, 2}) == x);
  CHECK(reverse_padded(x, {0, 4}).topRows(4) == x.topRows(4));
  REQUIRE_THROWS_WITH(reverse_padded(x, {5, 1}), Catch::Matchers::Contains("lengths[0]' = 5"));
  REQUIRE_THROWS_WITH(reverse_padded(x, {1, 1, 1}), Catch::Matchers::Contains("x.rows()"));
  // It has no 'batch' argument: the messages name lengths.
  REQUIRE_THROWS_WITH(reverse_padded(x, {1, 1, 1}),
                      Catch::Matchers::Contains("a multiple of lengths.size() = 3"));
  REQUIRE_THROWS_WITH(reverse_padded(x, emask::index_list(std::vector<Index>{})),
                      Catch::Matchers::Contains("emask::reverse_padded: argument 'lengths'"));
}

TEST_CASE("seq: enum options outside their enumerators are argument errors", "[seq]") {
  row_matrix<double> x = row_matrix<double>::Ones(4, 3);  // batch 2, time 2
  const bool_matrix mask = bool_matrix::Constant(2, 2, true);
  REQUIRE_THROWS_AS(masked_pool(x, mask, static_cast<pooling>(7)), emask::error);
  REQUIRE_THROWS_WITH(masked_pool(x, mask, static_cast<pooling>(7)),
                      Catch::Matchers::Contains("emask::masked_pool: argument 'how' = 7"));
  Eigen::Array<int, 2, 2, Eigen::RowMajor> y;
  y << 0, 1, 2, 0;
  loss_options o;
  o.reduction = static_cast<loss_reduction>(7);
  REQUIRE_THROWS_WITH(
      masked_cross_entropy(x, y, o),
      Catch::Matchers::Contains("emask::masked_cross_entropy: argument 'options.reduction' = 7"));
  REQUIRE_THROWS_WITH(masked_nll(x, y, mask, o),
                      Catch::Matchers::Contains("emask::masked_nll: argument 'options.reduction'"));
}
