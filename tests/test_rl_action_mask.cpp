// Tests of emask/rl/action_mask.hpp: action spaces (Discrete, MultiDiscrete, MultiBinary), the
// flat layout split per sub-space as sb3-contrib does, the array and callback builders, and the
// errors (width != sum(nvec), a (row, sub-space) with no legal action, bad sizes).
#include <cstdint>
#include <limits>

#include <emask/rl/action_mask.hpp>

#include "catch.hpp"

using Catch::Matchers::Contains;
using emask::action_mask;
using emask::action_space;
using emask::bool_matrix;
using emask::Index;

TEST_CASE("action_space: sizes, offsets and width", "[rl][action_mask]") {
  const action_space d = action_space::discrete(5);
  CHECK(d.type() == action_space::kind::discrete);
  CHECK(d.sub_spaces() == 1);
  CHECK(d.size(0) == 5);
  CHECK(d.width() == 5);

  const action_space md = action_space::multi_discrete({3, 1, 4});
  CHECK(md.type() == action_space::kind::multi_discrete);
  CHECK(md.sub_spaces() == 3);
  CHECK(md.offset(0) == 0);
  CHECK(md.offset(1) == 3);
  CHECK(md.offset(2) == 4);
  CHECK(md.offset(3) == 8);
  CHECK(md.width() == 8);

  const action_space mb = action_space::multi_binary(3);
  CHECK(mb.type() == action_space::kind::multi_binary);
  CHECK(mb.sub_spaces() == 3);
  CHECK(mb.width() == 6);
  CHECK(mb.offset(2) == 4);
  CHECK(mb == action_space::multi_discrete({2, 2, 2}));
  CHECK(mb != md);

  REQUIRE_THROWS_WITH(action_space::discrete(0), Contains("'n' = 0"));
  REQUIRE_THROWS_WITH(action_space::multi_discrete({3, 0}), Contains("'nvec[1]' = 0"));
  REQUIRE_THROWS_WITH(action_space::multi_discrete(std::vector<int>{}), Contains("'nvec'"));
  REQUIRE_THROWS_WITH(action_space::multi_binary(-1), Contains("'k' = -1"));
  // The flat width sum(nvec) overflowed (and MultiBinary(k) sized its vector before checking).
  const Index max = std::numeric_limits<Index>::max();
  REQUIRE_THROWS_WITH(action_space::multi_discrete({max, 2}),
                      Contains("emask::action_space::multi_discrete: argument 'nvec[1]' = 2"));
  REQUIRE_THROWS_AS(action_space::multi_discrete({max / 2, max / 2, 2}), emask::error);
  CHECK(action_space::multi_discrete({max - 2, 2}).width() == max);
  REQUIRE_THROWS_WITH(action_space::multi_binary(max),
                      Contains("emask::action_space::multi_binary: argument 'k'"));
}

TEST_CASE("action_mask: Discrete from an array, counts and queries", "[rl][action_mask]") {
  bool_matrix legal(2, 4);
  legal << true, false, true, false,  //
      false, false, false, true;
  const action_mask m = action_mask::discrete(legal);
  CHECK(m.batch() == 2);
  CHECK(m.width() == 4);
  CHECK(m.sub_spaces() == 1);
  CHECK(m.legal(0, 0));
  CHECK_FALSE(m.legal(0, 1));
  CHECK(m.legal(1, 3));
  CHECK(m.legal_count(0) == 2);
  CHECK(m.legal_count(1) == 1);
  CHECK((m.flat() == legal).all());

  // 0/1 integer arrays are accepted too.
  Eigen::Array<int, 2, 4, Eigen::RowMajor> ints;
  ints << 1, 0, 1, 0,  //
      0, 0, 0, 1;
  CHECK((action_mask::discrete(ints).flat() == legal).all());
}

TEST_CASE("action_mask: MultiDiscrete split per sub-space as sb3-contrib", "[rl][action_mask]") {
  // nvec = {2, 3}: columns 0-1 are sub-space 0, columns 2-4 are sub-space 1.
  bool_matrix legal(2, 5);
  legal << true, false, false, true, true,  //
      true, true, true, false, false;
  const action_mask m = action_mask::multi_discrete({2, 3}, legal);
  CHECK(m.legal(0, 0, 0));
  CHECK_FALSE(m.legal(0, 0, 1));
  CHECK_FALSE(m.legal(0, 1, 0));
  CHECK(m.legal(0, 1, 1));
  CHECK(m.legal(0, 1, 2));
  CHECK(m.legal_count(0, 0) == 1);
  CHECK(m.legal_count(0, 1) == 2);
  CHECK(m.legal_count(1, 0) == 2);
  CHECK(m.legal_count(1, 1) == 1);
  const bool_matrix s1 = m.sub_mask(1);
  REQUIRE(s1.rows() == 2);
  REQUIRE(s1.cols() == 3);
  CHECK((s1 == legal.middleCols(2, 3)).all());

  // The sub-space view is a mask expression over (row, action of the sub-space).
  const auto view = m.sub_space_view(1);
  for (Index b = 0; b < 2; ++b)
    for (Index a = 0; a < 3; ++a) CHECK(view.keep(b, 0, b, a) == legal(b, 2 + a));
}

TEST_CASE("action_mask: MultiBinary has one two-way mask per bit", "[rl][action_mask]") {
  // Bit 0 must be 1 (column 0 "bit = 0" masked), bit 1 is free.
  bool_matrix legal(1, 4);
  legal << false, true, true, true;
  const action_mask m = action_mask::multi_binary(legal);
  CHECK(m.space().type() == action_space::kind::multi_binary);
  CHECK(m.sub_spaces() == 2);
  CHECK_FALSE(m.legal(0, 0, 0));
  CHECK(m.legal(0, 0, 1));
  CHECK(m.legal_count(0, 1) == 2);
  bool_matrix odd(1, 3);
  odd << true, true, true;
  REQUIRE_THROWS_WITH(action_mask::multi_binary(odd), Contains("argument 'legal'"));
  REQUIRE_THROWS_WITH(action_mask::multi_binary(odd), Contains("even number"));
}

TEST_CASE("action_mask: from a legality callback", "[rl][action_mask]") {
  const action_space sp = action_space::multi_discrete({3, 2});
  // (row, sub-space, action) form: row b forbids action b of sub-space 0.
  const action_mask m = action_mask::from_callback(
      sp, 3, [](Index b, Index i, Index a) { return !(i == 0 && a == b); });
  for (Index b = 0; b < 3; ++b) {
    for (Index a = 0; a < 3; ++a) CHECK(m.legal(b, 0, a) == (a != b));
    CHECK(m.legal_count(b, 1) == 2);
  }
  // (row, flat column) form.
  const action_mask f = action_mask::from_callback(
      action_space::discrete(6), 2, [](Index b, Index j) { return (j + b) % 2 == 0; });
  CHECK(f.legal(0, 0));
  CHECK_FALSE(f.legal(0, 1));
  CHECK(f.legal(1, 1));
  CHECK(f.legal_count(1) == 3);
  // The callback can make a sub-space empty: error names row and sub-space.
  REQUIRE_THROWS_WITH(action_mask::from_callback(
                          sp, 3, [](Index b, Index i, Index) { return !(b == 2 && i == 1); }),
                      Contains("row 2, sub-space 1"));
  REQUIRE_THROWS_WITH(action_mask::from_callback(sp, -1, [](Index, Index) { return true; }),
                      Contains("'batch' = -1"));
}

TEST_CASE("action_mask: all_legal", "[rl][action_mask]") {
  const action_mask m = action_mask::all_legal(action_space::multi_binary(3), 4);
  CHECK(m.batch() == 4);
  CHECK(m.width() == 6);
  CHECK(m.flat().all());
}

TEST_CASE("action_mask: errors name the argument, the row and the sub-space", "[rl][action_mask]") {
  bool_matrix legal = bool_matrix::Constant(3, 5, true);
  // Width does not match sum(nvec) = 6.
  REQUIRE_THROWS_AS(action_mask::multi_discrete({2, 4}, legal), emask::error);
  REQUIRE_THROWS_WITH(action_mask::multi_discrete({2, 4}, legal), Contains("argument 'legal'"));
  REQUIRE_THROWS_WITH(action_mask::multi_discrete({2, 4}, legal), Contains("3 x 6"));
  // Row 1 has no legal action in sub-space 1 (columns 2-4).
  legal(1, 2) = legal(1, 3) = legal(1, 4) = false;
  REQUIRE_THROWS_WITH(action_mask::multi_discrete({2, 3}, legal),
                      Contains("no legal action in row 1, sub-space 1"));
  // Sub-space 0 of the same row still has legal actions: fine with nvec {3, 2}? No: columns 3-4
  // (sub-space 1) are empty in row 1.
  REQUIRE_THROWS_WITH(action_mask::multi_discrete({3, 2}, legal), Contains("row 1, sub-space 1"));
  // A Discrete row with no legal action.
  bool_matrix d = bool_matrix::Constant(2, 3, true);
  d.row(0).setConstant(false);
  REQUIRE_THROWS_WITH(action_mask::discrete(d), Contains("row 0, sub-space 0"));
  REQUIRE_THROWS_WITH(action_mask::discrete(bool_matrix(2, 0)), Contains("argument 'legal'"));
  REQUIRE_THROWS_WITH(action_mask(action_space::discrete(4), bool_matrix::Constant(1, 3, true)),
                      Contains("the width sum(nvec)"));
}

TEST_CASE("action_mask: an empty batch is valid", "[rl][action_mask]") {
  const action_mask m = action_mask::discrete(bool_matrix(0, 4));
  CHECK(m.batch() == 0);
  CHECK(m.width() == 4);
}
