// Materialized forms: dense keep arrays, additive biases, drop-masks, bit-packed matrices and
// block masks, their round trips, the typed polarity, and the text rendering.
#include <limits>
#include <string>
#include <type_traits>

#include "mask_testing.hpp"

using namespace emask;
using emask_test::rng;

namespace {
bool_matrix random_bool(Index rows, Index cols, rng& r, double p = 0.5) {
  bool_matrix m(rows, cols);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) m(i, j) = r.coin(p);
  return m;
}
}  // namespace

TEST_CASE("materialize agrees with keep() for every entry", "[materialize]") {
  const auto m =
      (causal() & sliding_window(4, 0)) | (document::from_cu_seqlens({0, 5, 11}) & !causal());
  const bool_matrix a = materialize(m, 11, 11);
  for (Index q = 0; q < 11; ++q)
    for (Index k = 0; k < 11; ++k) REQUIRE(a(q, k) == m.keep(0, 0, q, k));
  CHECK(materialize(causal(), 0, 5).size() == 0);
  CHECK(materialize(causal(), 4, 0).size() == 0);
  REQUIRE_THROWS_WITH(materialize(causal(), -1, 5), Catch::Matchers::Contains("q_len"));
  REQUIRE_THROWS_WITH(materialize(causal(), 3, -5), Catch::Matchers::Contains("k_len"));
}

TEMPLATE_TEST_CASE("additive masks: 0 kept, fill masked, round trip to keep", "[additive]", float,
                   double) {
  using S = TestType;
  const auto m = causal() & key_padding::from_lengths({5}, 6);
  const bool_matrix keep = materialize(m, 4, 6);
  const additive_mask<S> bias = materialize_additive<S>(m, 4, 6);
  REQUIRE(bias.rows() == 4);
  REQUIRE(bias.cols() == 6);
  for (Index q = 0; q < 4; ++q)
    for (Index k = 0; k < 6; ++k) {
      if (keep(q, k)) {
        REQUIRE(bias.matrix()(q, k) == S(0));
      } else {
        REQUIRE(bias.matrix()(q, k) == -std::numeric_limits<S>::infinity());
      }
    }
  CHECK((to_keep(bias) == keep).all());
  // A finite fill (for -ffast-math builds, or frameworks that use finfo.min) round-trips too.
  const additive_mask<S> finite =
      materialize_additive<S>(m, 4, 6, 0, 0, std::numeric_limits<S>::lowest());
  CHECK(finite.fill() == std::numeric_limits<S>::lowest());
  CHECK((finite.matrix().array() > std::numeric_limits<S>::lowest() || !keep).all());
  CHECK((to_keep(finite) == keep).all());
  // A user bias with -1e4 fill: the threshold decides.
  row_matrix<S> user = row_matrix<S>::Zero(2, 2);
  user(0, 1) = S(-1e4);
  CHECK(to_keep(to_additive(user), S(-1e3)).count() == 3);
  CHECK(to_keep(to_additive(user)).count() == 4);
}

TEST_CASE("drop masks are a distinct type with named conversions", "[polarity]") {
  static_assert(!std::is_convertible<drop_mask, bool_matrix>::value,
                "a drop mask is not a keep mask");
  static_assert(!std::is_convertible<bool_matrix, drop_mask>::value, "conversion must be named");
  static_assert(!is_mask_v<drop_mask>, "a drop mask is not a mask expression");
  static_assert(!std::is_convertible<additive_mask<float>, bool_matrix>::value,
                "bias is not a keep mask");
  rng r(3);
  const bool_matrix keep = random_bool(5, 7, r);
  const drop_mask drop = to_drop(keep);
  for (Index i = 0; i < 5; ++i)
    for (Index j = 0; j < 7; ++j) REQUIRE(drop.flags()(i, j) == !keep(i, j));
  CHECK((to_keep(drop) == keep).all());
  CHECK((to_keep(materialize_drop(causal(), 3, 3)) == materialize(causal(), 3, 3)).all());
}

TEST_CASE("bit_mask: negative or absurd sizes are argument errors, checked first", "[bits]") {
  // The word vector was sized before the checks: std::length_error instead of emask::error.
  const Index max = std::numeric_limits<Index>::max();
  REQUIRE_THROWS_AS(bit_mask(-1, 5), emask::error);
  REQUIRE_THROWS_WITH(bit_mask(-1, 5), Catch::Matchers::Contains("argument 'rows' = -1"));
  REQUIRE_THROWS_WITH(bit_mask(3, -64), Catch::Matchers::Contains("argument 'cols' = -64"));
  REQUIRE_THROWS_AS(bit_mask(max, 64), emask::error);
  REQUIRE_THROWS_AS(bit_mask(16, max), emask::error);  // 2^61 words
  REQUIRE_THROWS_WITH(bit_mask(max, max), Catch::Matchers::Contains("emask::bit_mask:"));
  CHECK(bit_mask(0, max).rows() == 0);
  CHECK(bit_mask(max, 0).words().empty());
}

TEST_CASE("bit_mask packs 64 entries per word and round-trips", "[bits]") {
  rng r(11);
  for (Index cols : {1, 63, 64, 65, 130}) {
    const bool_matrix a = random_bool(3, cols, r);
    const bit_mask bits = bit_mask::from_bool(a);
    CHECK(bits.words_per_row() == (cols + 63) / 64);
    CHECK((bits.to_bool() == a).all());
    for (Index q = 0; q < 3; ++q) {
      CHECK(bits.row(q).count() == a.row(q).count());
      const Index k0 = r.between(0, cols - 1), k1 = r.between(k0, cols);
      CHECK(bits.row(q).count(k0, k1) == a.row(q).segment(k0, k1 - k0).count());
      for (Index k = 0; k < cols; ++k) REQUIRE(bits.row(q).test(k) == a(q, k));
    }
    // As a mask expression, the packed form answers like the dense one.
    emask_test::check_mask(
        bits, [&](Index, Index, Index q, Index k) { return a(q, k); }, 1, 1, 3, cols);
  }
  const auto m = document::from_cu_seqlens({0, 40, 70, 100}) & causal();
  const bit_mask packed = materialize_bits(m, 100, 100);
  CHECK((packed.to_bool() == materialize(m, 100, 100)).all());
  // Bit k of a row lives at bit k % 64 of word k / 64.
  CHECK(materialize_bits(causal(), 1, 70).words()[0] == 1u);
  CHECK(materialize_bits(causal().offset(65, 0), 1, 70).words()[1] == 3u);
}

TEST_CASE("block masks hold exact tile states and the non-empty key tiles", "[block]") {
  rng r(5);
  for (int trial = 0; trial < 20; ++trial) {
    const Index lq = r.between(1, 50), lk = r.between(1, 50), tq = r.between(1, 9),
                tk = r.between(1, 9);
    const auto m = sliding_window(r.between(0, 8), r.between(0, 3)) &
                   key_padding::from_lengths({r.between(0, lk)}, lk);
    const bool_matrix dense = materialize(m, lq, lk);
    const auto exact = as_mask(dense);
    const block_mask bm = materialize_block_mask(exact, lq, lk, tq, tk);
    REQUIRE(bm.q_tiles() == (lq + tq - 1) / tq);
    REQUIRE(bm.k_tiles() == (lk + tk - 1) / tk);
    Index nonempty = 0;
    for (Index qt = 0; qt < bm.q_tiles(); ++qt) {
      Index listed = 0;
      for (Index kt = 0; kt < bm.k_tiles(); ++kt) {
        const Index q0 = qt * tq, k0 = kt * tk;
        const auto block = dense.block(q0, k0, std::min(tq, lq - q0), std::min(tk, lk - k0));
        const tile_state truth = block.all()
                                     ? tile_state::full
                                     : (block.any() ? tile_state::partial : tile_state::empty);
        REQUIRE(bm.state(qt, kt) == truth);
        if (truth != tile_state::empty) {
          REQUIRE(bm.nonempty_tile(qt, listed) == kt);
          ++listed;
        }
      }
      REQUIRE(bm.nonempty_count(qt) == listed);
      nonempty += listed;
    }
    CHECK(bm.count(tile_state::empty) == bm.q_tiles() * bm.k_tiles() - nonempty);
    // The composed expression's block mask is exact too: its partial tiles are re-counted.
    const block_mask lazy = materialize_block_mask(m, lq, lk, tq, tk);
    for (Index qt = 0; qt < bm.q_tiles(); ++qt)
      for (Index kt = 0; kt < bm.k_tiles(); ++kt) REQUIRE(lazy.state(qt, kt) == bm.state(qt, kt));
  }
  // Causal 8x8 in 4x4 tiles: diagonal partial, below full, above empty.
  const block_mask c = materialize_block_mask(causal(), 8, 8, 4, 4);
  CHECK(c.state(0, 0) == tile_state::partial);
  CHECK(c.state(0, 1) == tile_state::empty);
  CHECK(c.state(1, 0) == tile_state::full);
  CHECK(c.state(1, 1) == tile_state::partial);
  CHECK(c.tile_density() == 0.75);
  REQUIRE_THROWS_WITH(materialize_block_mask(causal(), 8, 8, 0, 4),
                      Catch::Matchers::Contains("tile_q"));
  REQUIRE_THROWS_WITH(materialize_block_mask(causal(), 8, 8, 4, -1),
                      Catch::Matchers::Contains("tile_k"));
}

TEST_CASE("render draws glyphs, row counts, density and tile rules", "[render]") {
  const std::string s = render(sliding_window::from_hf(2), 4, 4, {0, 0, true});
  CHECK(s ==
        " k 0123\n 0 #...  1\n 1 ##..  2\n 2 .##.  2\n 3 ..##  2\nkept 7 of 16 (density 0.4375)\n");
  const std::string u = render(causal(), 2, 2);
  CHECK(u.find("\u25A0\u00B7") != std::string::npos);
  render_options opt;
  opt.ascii = true;
  opt.tile_q = 2;
  opt.tile_k = 2;
  opt.row_counts = false;
  opt.summary = false;
  CHECK(render(causal(), 4, 4, opt) ==
        " k 01|23\n 0 #.|..\n 1 ##|..\n   -----\n 2 ##|#.\n 3 ##|##\n");
  // Batch entry and head are chosen in the options.
  opt = render_options{};
  opt.ascii = true;
  opt.b = 1;
  CHECK(render(key_padding::from_lengths({1, 2}, 3), 1, 3, opt) ==
        " k 012\n 0 ##.  2\nkept 2 of 3 (density 0.666667)\n");
}
