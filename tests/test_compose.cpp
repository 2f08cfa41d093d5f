// Composition: entry-wise logic against brute force, tile answers never wrong, random
// compositions of every builder, key-span rules of and / or / not.
#include <vector>

#include "mask_testing.hpp"

using namespace emask;
using emask_test::check_mask;
using emask_test::predicate;
using emask_test::rng;

TEST_CASE("and, or, not match boolean logic of their operands", "[compose]") {
  const Index L = 12;
  const auto c = causal();
  const auto w = sliding_window(3, 1);
  const auto p = key_padding::from_lengths({9, 12}, L);
  const auto ch = chunked(4);
  const predicate rc = [](Index, Index, Index q, Index k) { return k <= q; };
  const predicate rw = [](Index, Index, Index q, Index k) { return q - 3 <= k && k <= q + 1; };
  const predicate rp = [](Index b, Index, Index, Index k) { return k < (b == 0 ? 9 : 12); };
  const predicate rch = [](Index, Index, Index q, Index k) { return q / 4 == k / 4; };
  check_mask(
      c & w, [&](Index b, Index h, Index q, Index k) { return rc(b, h, q, k) && rw(b, h, q, k); },
      2, 1, L, L);
  check_mask(
      c | w, [&](Index b, Index h, Index q, Index k) { return rc(b, h, q, k) || rw(b, h, q, k); },
      2, 1, L, L);
  check_mask(
      !c, [&](Index b, Index h, Index q, Index k) { return !rc(b, h, q, k); }, 1, 1, L, L);
  check_mask(
      !(c & p) | ch,
      [&](Index b, Index h, Index q, Index k) {
        return !(rc(b, h, q, k) && rp(b, h, q, k)) || rch(b, h, q, k);
      },
      2, 1, L, L);
  check_mask(
      intersect(c, unite(w, complement(ch))),
      [&](Index b, Index h, Index q, Index k) {
        return rc(b, h, q, k) && (rw(b, h, q, k) || !rch(b, h, q, k));
      },
      1, 1, L, L);
  // Double complement folds back to the operand type.
  static_assert(std::is_same<decltype(!!c), causal>::value, "!!mask is the mask");
}

TEST_CASE("composition tile logic is exact where the rules say so", "[compose]") {
  const auto c = causal();
  const auto anti = !causal();
  // causal & !causal is empty everywhere; the conservative rule may say partial on diagonal
  // tiles but must say empty wherever either side is empty.
  const auto both = c & anti;
  CHECK(both.tile(0, 0, 0, 4, 4, 8) == tile_state::empty);  // causal side empty
  CHECK(both.tile(0, 0, 4, 8, 0, 4) == tile_state::empty);  // !causal side empty
  const auto either = c | anti;
  CHECK(either.tile(0, 0, 0, 4, 0, 4) == tile_state::partial);  // both partial: conservative
  CHECK(either.tile(0, 0, 4, 8, 0, 4) == tile_state::full);
  CHECK((!c).tile(0, 0, 0, 4, 4, 8) == tile_state::full);
}

namespace {
// A random builder with its brute-force predicate.
struct any_mask {
  std::function<bool(Index, Index, Index, Index)> ref;
  int kind;
};
}  // namespace

TEST_CASE("random compositions of every builder against brute force", "[compose]") {
  rng r(2024);
  for (int trial = 0; trial < 60; ++trial) {
    const Index B = r.between(1, 2), Lq = r.between(1, 14), Lk = r.between(1, 14);
    const Index w_l = r.between(0, 4), w_r = r.between(0, 3), chunk = r.between(1, 5),
                pre = r.between(0, 6);
    const Index dq = r.between(0, 3), dk = r.between(0, 3);
    std::vector<Index> len;
    for (Index b = 0; b < B; ++b) len.push_back(r.between(0, Lk));
    std::vector<std::int64_t> seg;
    std::int64_t id = 0;
    for (Index i = 0; i < std::max(Lq, Lk); ++i) {
      if (r.coin(0.25)) ++id;
      seg.push_back(id);
    }
    const Index S = std::max(Lq, Lk);
    const auto c = causal::bottom_right(Lq, Lk);
    const auto w = sliding_window(w_l, w_r).offset(dq, dk);
    const auto kp = key_padding::from_lengths(index_list(len), Lk);
    const auto ch = chunked(chunk);
    const auto pl = prefix_lm(pre);
    const auto doc = document::from_segment_ids(id_table(seg));
    const predicate rc = [=](Index, Index, Index q, Index k) { return k <= q + Lk - Lq; };
    const predicate rw = [=](Index, Index, Index q, Index k) {
      return q + dq - w_l <= k + dk && k + dk <= q + dq + w_r;
    };
    const predicate rk = [=](Index b, Index, Index, Index k) {
      return k < len[static_cast<std::size_t>(b)];
    };
    const predicate rch = [=](Index, Index, Index q, Index k) { return q / chunk == k / chunk; };
    const predicate rpl = [=](Index, Index, Index q, Index k) { return k < pre || k <= q; };
    const predicate rdoc = [=](Index, Index, Index q, Index k) {
      return seg[static_cast<std::size_t>(q)] == seg[static_cast<std::size_t>(k)];
    };
    (void)S;
    const std::uint64_t seed = r.next();
    switch (trial % 6) {
      case 0:
        check_mask(
            c & w & kp,
            [&](Index b, Index h, Index q, Index k) {
              return rc(b, h, q, k) && rw(b, h, q, k) && rk(b, h, q, k);
            },
            B, 1, Lq, Lk, seed);
        break;
      case 1:
        check_mask((ch & c) | !kp,
                   [&](Index b, Index h, Index q, Index k) {
                     return (rch(b, h, q, k) && rc(b, h, q, k)) || !rk(b, h, q, k);
                   },
                   B, 1, Lq, Lk, seed);
        break;
      case 2:
        check_mask(
            pl & kp & !w,
            [&](Index b, Index h, Index q, Index k) {
              return rpl(b, h, q, k) && rk(b, h, q, k) && !rw(b, h, q, k);
            },
            B, 1, Lq, Lk, seed);
        break;
      case 3:
        check_mask(
            doc & causal(),
            [&](Index b, Index h, Index q, Index k) { return rdoc(b, h, q, k) && k <= q; }, 1, 1,
            Lq, Lk, seed);
        break;
      case 4:
        check_mask((doc | w) & kp,
                   [&](Index b, Index h, Index q, Index k) {
                     return (rdoc(b, h, q, k) || rw(b, h, q, k)) && rk(b, h, q, k);
                   },
                   B, 1, Lq, Lk, seed);
        break;
      default: {
        const bool_matrix dense = materialize(c & w, Lq, Lk);
        check_mask(
            as_mask(dense) | (ch & kp),
            [&](Index b, Index h, Index q, Index k) {
              return (rc(b, h, q, k) && rw(b, h, q, k)) || (rch(b, h, q, k) && rk(b, h, q, k));
            },
            B, 1, Lq, Lk, seed);
      }
    }
  }
}

TEST_CASE("analytic builders give exact tiles on random problems", "[tiles]") {
  // check_mask requires equality with brute force for exact_tiles masks; run it over many random
  // shapes, offsets and parameters.
  rng r(99);
  for (int trial = 0; trial < 40; ++trial) {
    const Index Lq = r.between(1, 40), Lk = r.between(1, 40), dq = r.between(0, 50),
                dk = r.between(0, 50);
    const Index diag = r.between(-10, 10), left = r.between(0, 9), right = r.between(0, 9);
    const Index chunk = r.between(1, 9), pre = r.between(0, 30);
    const bool strict = r.coin();
    const std::uint64_t seed = r.next();
    const causal c = strict ? causal::with_diagonal(diag).strict() : causal::with_diagonal(diag);
    check_mask(
        c.offset(dq, dk),
        [&](Index, Index, Index q, Index k) {
          return strict ? (k + dk) < (q + dq) + diag : (k + dk) <= (q + dq) + diag;
        },
        1, 1, Lq, Lk, seed);
    check_mask(
        sliding_window(left, right, diag).offset(dq, dk),
        [&](Index, Index, Index q, Index k) {
          const Index p = q + dq + diag, kk = k + dk;
          return p - left <= kk && kk <= p + right;
        },
        1, 1, Lq, Lk, seed);
    check_mask(
        chunked(chunk).offset(dq, dk),
        [&](Index, Index, Index q, Index k) { return (q + dq) / chunk == (k + dk) / chunk; }, 1, 1,
        Lq, Lk, seed);
    check_mask(
        prefix_lm(pre).offset(dq, dk),
        [&](Index, Index, Index q, Index k) { return k + dk < pre || k + dk <= q + dq; }, 1, 1, Lq,
        Lk, seed);
    check_mask(
        !chunked(chunk), [&](Index, Index, Index q, Index k) { return q / chunk != k / chunk; }, 1,
        1, Lq, Lk, seed);
  }
}

TEST_CASE("mask traits recognise masks and nothing else", "[traits]") {
  static_assert(is_mask_v<causal>, "builders are masks");
  static_assert(is_mask_v<decltype(causal() & !chunked(2) | key_padding::from_lengths({1}, 2))>,
                "compositions are masks");
  static_assert(is_mask_v<bit_mask>, "packed masks are masks");
  static_assert(!is_mask_v<bool_matrix>, "a raw array needs as_mask()");
  static_assert(!is_mask_v<drop_mask>, "a drop mask is not a keep mask");
  static_assert(!is_mask_v<int>, "nor is anything else");
#if EMASK_HAS_CONCEPTS
  static_assert(mask_expression<causal> && mask_expression<offset_mask<document>>);
  static_assert(!mask_expression<additive_mask<float>>);
#endif
  CHECK(causal::exact_tiles);
  CHECK_FALSE(decltype(causal() & chunked(2))::exact_tiles);
}
