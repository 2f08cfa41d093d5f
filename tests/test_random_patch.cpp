// MAE random patch masking and MGD feature masks.
#include <emask/random/feature.hpp>
#include <emask/random/patch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <vector>

#include "catch.hpp"

using namespace emask;
using Catch::Matchers::Contains;

TEST_CASE("mae_random_masking golden output", "[random][mae]") {
  const mae_result r = mae_random_masking(2, 8, 0.75, {2024});
  token_matrix keep(2, 2), restore(2, 8);
  keep << 5, 6, 4, 2;
  restore << 4, 3, 2, 7, 5, 0, 1, 6,  //
      4, 2, 1, 6, 0, 7, 3, 5;
  CHECK((r.ids_keep == keep).all());
  CHECK((r.ids_restore == restore).all());
}

TEST_CASE("mae_random_masking: permutations, counts and conventions", "[random][mae]") {
  const Index B = 64, L = 196;
  const mae_result r = mae_random_masking(B, L, 0.75, {11, 300});
  const Index keep = mae_keep_count(L, 0.75);
  CHECK(keep == 49);
  REQUIRE(r.ids_keep.cols() == 49);
  for (Index b = 0; b < B; ++b) {
    std::set<std::int32_t> seen;
    for (Index j = 0; j < L; ++j) seen.insert(r.ids_shuffle(b, j));
    CHECK(seen.size() == static_cast<std::size_t>(L));
    bool inverse = true;
    for (Index j = 0; j < L; ++j) inverse = inverse && r.ids_restore(b, r.ids_shuffle(b, j)) == j;
    CHECK(inverse);
    CHECK(r.kept.row(b).count() == keep);
    for (Index j = 0; j < keep; ++j) CHECK(r.kept(b, r.ids_keep(b, j)));
    // noise order: ascending noise words
    for (Index j = 1; j < L; ++j) {
      const auto p0 = static_cast<std::uint32_t>(r.ids_shuffle(b, j - 1));
      const auto p1 = static_cast<std::uint32_t>(r.ids_shuffle(b, j));
      const std::uint64_t s = 300 + static_cast<std::uint64_t>(b);
      REQUIRE(detail::noise_key(packed_word(11, s, purpose::mae_noise, p0), p0) <
              detail::noise_key(packed_word(11, s, purpose::mae_noise, p1), p1));
    }
  }
  SECTION("MAE's 1 = removed view") {
    const row_matrix<float> removed = mae_removed(r);
    CHECK(removed.rows() == B);
    CHECK(removed.sum() == static_cast<float>(B * (L - keep)));
    for (Index b = 0; b < B; ++b)
      for (Index p = 0; p < L; ++p) CHECK(removed(b, p) == (r.kept(b, p) ? 0.0f : 1.0f));
    const row_matrix<double> d = mae_removed<double>(r);
    CHECK(d.cast<float>() == removed);
  }
  SECTION("every patch equally likely to be kept") {
    const mae_result big = mae_random_masking(4000, 16, 0.75, {3});
    for (Index p = 0; p < 16; ++p) {
      const double kept = static_cast<double>(big.kept.col(p).count());
      CHECK(std::abs(kept - 4000 * 0.25) < 4 * std::sqrt(4000 * 0.25 * 0.75));
    }
  }
  SECTION("batch split") {
    const mae_result a = mae_random_masking(10, L, 0.75, {11, 310});
    CHECK((a.ids_keep == r.ids_keep.middleRows(10, 10)).all());
  }
  SECTION("truncation as int(L * (1 - ratio))") {
    CHECK(mae_keep_count(10, 0.75) == 2);  // 2.5 -> 2
    CHECK(mae_keep_count(10, 0.0) == 10);
    CHECK(mae_keep_count(0, 0.5) == 0);
  }
  SECTION("a negative or oversized patch count is an argument error") {
    // mae_keep_count(-5, 0.5) returned -2.
    REQUIRE_THROWS_WITH(mae_keep_count(-5, 0.5),
                        Contains("emask::mae_keep_count: argument 'num_patches' = -5"));
    REQUIRE_THROWS_AS(mae_keep_count(std::numeric_limits<Index>::max(), 0.0), emask::error);
  }
}

TEST_CASE("mae errors name the argument", "[random][mae][errors]") {
  REQUIRE_THROWS_WITH(mae_random_masking(2, 3, 0.75),
                      Contains("mask_ratio") && Contains("at least one"));
  REQUIRE_THROWS_WITH(mae_random_masking(2, 10, 1.0), Contains("mask_ratio"));
  REQUIRE_THROWS_WITH(mae_random_masking(2, 10, -0.1), Contains("mask_ratio"));
  REQUIRE_THROWS_WITH(mae_random_masking(2, 0, 0.5), Contains("num_patches"));
  REQUIRE_THROWS_WITH(mae_random_masking(-1, 10, 0.5), Contains("batch"));
}

TEST_CASE("mgd feature masks", "[random][mgd]") {
  SECTION("golden") {
    const bool_matrix s = mgd_spatial_mask(2, 2, 3, 0.5, {2024});
    const bool_matrix c = mgd_channel_mask(2, 4, 0.5, {2024});
    CHECK((s.cast<int>() == (Eigen::Array<int, 2, 6, Eigen::RowMajor>() << 0, 0, 0, 1, 1, 0,  //
                             0, 1, 1, 1, 0, 0)
                                .finished())
              .all());
    CHECK((c.cast<int>() ==
           (Eigen::Array<int, 2, 4, Eigen::RowMajor>() << 1, 1, 0, 0, 1, 1, 1, 1).finished())
              .all());
  }
  SECTION("drop rate within 4 sigma and extremes") {
    const double lambda = 0.65;
    const bool_matrix s = mgd_spatial_mask(64, 32, 32, lambda, {1});
    const double n = static_cast<double>(s.size());
    const double dropped = n - static_cast<double>(s.count());
    CHECK(std::abs(dropped - n * lambda) < 4 * std::sqrt(n * lambda * (1 - lambda)));
    CHECK(mgd_channel_mask(8, 256, 0.0, {1}).all());
    CHECK_FALSE(mgd_channel_mask(8, 256, 1.0, {1}).any());
    // spatial and channel draws are independent purposes
    CHECK_FALSE((mgd_spatial_mask(4, 1, 64, 0.5, {1}) == mgd_channel_mask(4, 64, 0.5, {1})).all());
  }
  SECTION("apply to an NCHW feature map") {
    const Index N = 3, C = 4, H = 2, W = 5;
    row_matrix<float> f = row_matrix<float>::Constant(N, C * H * W, 2.0f);
    const bool_matrix s = mgd_spatial_mask(N, H, W, 0.5, {4});
    apply_spatial_mask(f, C, s);
    for (Index n = 0; n < N; ++n)
      for (Index c = 0; c < C; ++c)
        for (Index i = 0; i < H * W; ++i) CHECK(f(n, c * H * W + i) == (s(n, i) ? 2.0f : 0.0f));
    row_matrix<double> g = row_matrix<double>::Constant(N, C * H * W, 1.0);
    const bool_matrix ch = mgd_channel_mask(N, C, 0.5, {4});
    apply_channel_mask(g, ch);
    for (Index n = 0; n < N; ++n)
      for (Index c = 0; c < C; ++c)
        CHECK(g.row(n).segment(c * H * W, H * W).sum() == (ch(n, c) ? double(H * W) : 0.0));
  }
  SECTION("errors name the argument") {
    REQUIRE_THROWS_WITH(mgd_spatial_mask(2, 3, 3, 1.5), Contains("lambda"));
    REQUIRE_THROWS_WITH(mgd_channel_mask(2, 3, -0.5), Contains("lambda"));
    REQUIRE_THROWS_WITH(mgd_spatial_mask(2, -3, 3, 0.5), Contains("height"));
    row_matrix<float> f(2, 12);
    REQUIRE_THROWS_WITH(apply_spatial_mask(f, 4, bool_matrix::Constant(2, 4, true)),
                        Contains("spatial"));
    REQUIRE_THROWS_WITH(apply_channel_mask(f, bool_matrix::Constant(2, 5, true)),
                        Contains("channel"));
    REQUIRE_THROWS_WITH(apply_spatial_mask(f, 0, bool_matrix::Constant(2, 4, true)),
                        Contains("channels"));
  }
}
