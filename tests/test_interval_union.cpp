// Interval masks: the row form (interval_union_mask) and the column form (column_interval_mask,
// FlashMask) against brute force on random intervals (every tile answer exact), Paddle's
// documented startend_row_indices examples, the converters from every structured builder, a
// composition, the kernels against the materialized mask, and bad input.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <emask/kernels/attention.hpp>
#include <emask/masks/interval_union.hpp>

#include "kernel_variants.hpp"
#include "mask_testing.hpp"

using namespace emask;
using emask_test::check_mask;
using emask_test::rng;

namespace {

/// Random rows of up to per_row intervals in the flat layout, with empty slots anywhere, touching
/// intervals, empty rows and full rows.
struct row_data {
  std::vector<Index> starts, ends;
};

row_data random_rows(rng& r, Index slices, Index lq, Index lk, Index per_row) {
  row_data d;
  for (Index row = 0; row < slices * lq; ++row) {
    std::vector<Index> s(static_cast<std::size_t>(per_row)), e(s.size());
    const int kind = static_cast<int>(r.between(0, 9));
    Index at = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (kind == 0 || lk == 0) {  // an empty row: every slot empty, somewhere
        s[i] = e[i] = r.between(0, lk);
        continue;
      }
      if (kind == 1) {  // a full row in the first slot
        s[i] = i == 0 ? 0 : lk;
        e[i] = lk;
        continue;
      }
      if (r.coin(0.2)) {  // an empty slot
        s[i] = e[i] = r.between(0, lk);
        continue;
      }
      const Index gap = r.coin(0.25) ? 0 : r.between(0, (std::max)(Index(0), (lk - at) / 3));
      const Index st = (std::min)(lk, at + gap);
      const Index en = (std::min)(lk, st + r.between(0, (std::max)(Index(0), (lk - st) / 2 + 1)));
      s[i] = st;
      e[i] = en;
      if (en > st) at = en;
    }
    d.starts.insert(d.starts.end(), s.begin(), s.end());
    d.ends.insert(d.ends.end(), e.begin(), e.end());
  }
  return d;
}

/// Rows whose intervals sit at the same places, [i g + j0, (i + 1) g - j1) with g = Lk / per_row
/// and rare jitter j0, j1 in {0, 1}: whole blocks of 32 rows share hulls, so tile() decides them
/// from the block summaries (and one-off rows force the fallback).
row_data stripe_rows(rng& r, Index slices, Index lq, Index lk, Index per_row) {
  row_data d;
  const Index g = lk / per_row;
  for (Index row = 0; row < slices * lq; ++row)
    for (Index i = 0; i < per_row; ++i) {
      const Index j0 = r.coin(0.03) ? 1 : 0, j1 = r.coin(0.03) ? 1 : 0;
      const Index st = (std::min)(lk, i * g + j0);
      d.starts.push_back(st);
      d.ends.push_back((std::max)(st, (std::min)(lk, (i + 1) * g - 1 - j1)));
    }
  return d;
}

/// Brute force of the row form: some slot of the row holds k.
emask_test::predicate row_predicate(const row_data& d, slice_extents ex, Index lq, Index per_row) {
  return [=](Index b, Index h, Index q, Index k) {
    const Index s = (ex.batch == 1 ? 0 : b) * ex.heads + (ex.heads == 1 ? 0 : h);
    for (Index i = 0; i < per_row; ++i) {
      const auto at = static_cast<std::size_t>((s * lq + q) * per_row + i);
      if (d.starts[at] <= k && k < d.ends[at]) return true;
    }
    return false;
  };
}

struct column_data {
  std::vector<Index> lts, lte, uts, ute;
};

column_data random_columns(rng& r, Index slices, Index lq, Index lk) {
  column_data d;
  for (Index j = 0; j < slices * lk; ++j) {
    const auto pick = [&](std::vector<Index>& s, std::vector<Index>& e) {
      const int kind = static_cast<int>(r.between(0, 5));
      Index a = r.between(0, lq), b = r.between(0, lq);
      if (a > b) std::swap(a, b);
      if (kind == 0) a = b;          // empty
      if (kind == 1) a = 0;          // from the top
      if (kind == 2) b = lq;         // to the bottom
      if (kind == 3) a = 0, b = lq;  // the whole column
      s.push_back(a);
      e.push_back(b);
    };
    pick(d.lts, d.lte);
    pick(d.uts, d.ute);
  }
  return d;
}

/// Columns with the same two masked intervals [U0, U1) and [L0, L1) up to rare jitter: whole
/// blocks of 32 columns are decided from their summaries.
column_data stripe_columns(rng& r, Index slices, Index lq, Index lk) {
  column_data d;
  Index u0 = r.between(0, lq), u1 = r.between(0, lq), l0 = r.between(0, lq), l1 = r.between(0, lq);
  if (u0 > u1) std::swap(u0, u1);
  if (l0 > l1) std::swap(l0, l1);
  if (r.coin()) u0 = 0;
  if (r.coin()) l1 = lq;
  const auto jit = [&](Index v, Index lo, Index hi) {
    return r.coin(0.03) ? (std::max)(lo, (std::min)(hi, v + r.between(-1, 1))) : v;
  };
  for (Index j = 0; j < slices * lk; ++j) {
    const Index a = jit(u0, 0, u1), b = jit(u1, a, lq), c = jit(l0, 0, l1), e = jit(l1, c, lq);
    d.uts.push_back(a);
    d.ute.push_back(b);
    d.lts.push_back(c);
    d.lte.push_back(e);
  }
  return d;
}

emask_test::predicate column_predicate(const column_data& d, slice_extents ex, Index lk,
                                       bool causal, Index diag) {
  return [=](Index b, Index h, Index q, Index k) {
    if (causal && k > q + diag) return false;
    const Index s = (ex.batch == 1 ? 0 : b) * ex.heads + (ex.heads == 1 ? 0 : h);
    const auto at = static_cast<std::size_t>(s * lk + k);
    return !(d.lts[at] <= q && q < d.lte[at]) && !(d.uts[at] <= q && q < d.ute[at]);
  };
}

/// tile() on random rectangles (not only tilings), against brute force; exact answers.
template <class Mask>
void check_random_rectangles(const Mask& m, const emask_test::predicate& ref, Index B, Index H,
                             Index lq, Index lk, rng& r, int trials = 400) {
  if (lq == 0 || lk == 0) return;
  for (int t = 0; t < trials; ++t) {
    const Index b = r.between(0, B - 1), h = r.between(0, H - 1);
    // Half of them start on a block boundary, so whole blocks of 32 fall inside.
    const bool aligned = t % 2 == 0;
    const Index q0 = aligned && r.coin() ? 0 : r.between(0, lq - 1);
    const Index k0 = aligned && r.coin() ? 0 : r.between(0, lk - 1);
    const Index q1 = r.between(q0 + 1, lq), k1 = r.between(k0 + 1, lk);
    INFO("rectangle [" << q0 << ", " << q1 << ") x [" << k0 << ", " << k1 << ") b=" << b
                       << " h=" << h);
    REQUIRE(m.tile(b, h, q0, q1, k0, k1) == emask_test::brute_tile(ref, b, h, q0, q1, k0, k1));
  }
}

template <class A, class B>
void require_same(const A& a, const B& b, Index lq, Index lk, Index batch = 1, Index heads = 1) {
  for (Index bb = 0; bb < batch; ++bb)
    for (Index hh = 0; hh < heads; ++hh) {
      INFO("slice (" << bb << ", " << hh << ")");
      REQUIRE((materialize(a, lq, lk, bb, hh) == materialize(b, lq, lk, bb, hh)).all());
    }
}

// The start of every emask::error message: the function and the argument.
std::string prefix(const char* fn, const char* arg) {
  return std::string("emask::") + fn + ": argument '" + arg + "'";
}

template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const emask::error& e) {
    return e.what();
  }
  return "(no emask::error)";
}

}  // namespace

TEST_CASE("interval_union_mask: random unions of 1..4 intervals per row against brute force",
          "[interval_union]") {
  STATIC_REQUIRE(interval_union_mask::exact_tiles);
  rng r(15);
  const std::vector<std::pair<Index, Index>> shapes = {
      {1, 1}, {3, 5}, {5, 3}, {37, 41}, {70, 29}, {29, 70}, {100, 97}, {0, 4}, {4, 0}, {64, 64}};
  for (Index per_row = 1; per_row <= 4; ++per_row)
    for (const auto& shape : shapes) {
      const Index lq = shape.first, lk = shape.second;
      for (const slice_extents ex :
           {slice_extents{1, 1}, slice_extents{2, 1}, slice_extents{2, 3}}) {
        INFO("per_row " << per_row << " Lq " << lq << " Lk " << lk << " extents " << ex.batch << "x"
                        << ex.heads);
        for (const bool stripes : {false, true}) {
          const row_data d = stripes ? stripe_rows(r, ex.batch * ex.heads, lq, lk, per_row)
                                     : random_rows(r, ex.batch * ex.heads, lq, lk, per_row);
          const interval_union_mask m(d.starts, d.ends, lq, lk, per_row, ex);
          const auto ref = row_predicate(d, ex, lq, per_row);
          // A broadcast extent is asked with other batch entries and heads too.
          const Index B = ex.batch == 1 ? 2 : ex.batch, H = ex.heads == 1 ? 2 : ex.heads;
          check_mask(m, ref, B, H, lq, lk, r.next());
          check_random_rectangles(m, ref, B, H, lq, lk, r);
          // Seen from a shard: the same rows at absolute positions.
          if (lq > 3 && lk > 5) {
            check_mask(
                m.offset(3, 5),
                [&](Index b, Index h, Index q, Index k) { return ref(b, h, q + 3, k + 5); }, B, H,
                lq - 3, lk - 5);
          }
        }
      }
    }
}

TEST_CASE("interval_union_mask: runs are merged, hand-checked rows, memory is O(rows)",
          "[interval_union]") {
  // Row 0: [1, 3) and [3, 5) touch: one run [1, 5). Row 1: an empty slot first, then [0, 2) and
  // [4, 6). Row 2: empty. 3 rows x 2 slots over 6 keys.
  const interval_union_mask m({1, 3, 2, 0, 0, 0}, {3, 5, 2, 2, 0, 0}, 3, 6, 2);
  CHECK(m.runs(0) == 1);
  CHECK(m.run(0, 0).begin == 1);
  CHECK(m.run(0, 0).end == 5);
  CHECK(m.runs(1) == 1);
  CHECK(m.runs(2) == 0);
  bool_matrix want(3, 6);
  // clang-format off
  want << 0, 1, 1, 1, 1, 0,
          1, 1, 0, 0, 0, 0,
          0, 0, 0, 0, 0, 0;
  // clang-format on
  CHECK((materialize(m, 3, 6) == want).all());
  CHECK(m.keys(0, 0, 0, 0, 6).exact);
  CHECK(m.tile(0, 0, 0, 1, 1, 5) == tile_state::full);
  CHECK(m.tile(0, 0, 2, 3, 0, 6) == tile_state::empty);
  CHECK(m.tile(0, 0, 0, 2, 1, 2) == tile_state::full);
  // Two runs: keys() answers the hull, not exact.
  const interval_union_mask two({0, 4}, {2, 6}, 1, 6, 2);
  const key_span s = two.keys(0, 0, 0, 0, 6);
  CHECK(s.begin == 0);
  CHECK(s.end == 6);
  CHECK(!s.exact);
  CHECK(two.keys(0, 0, 0, 2, 4).empty());
  CHECK(two.keys(0, 0, 0, 1, 5).begin == 1);
  CHECK(two.keys(0, 0, 0, 1, 5).end == 5);
  CHECK(two.memory_bytes() < 1024);
}

TEST_CASE(
    "column_interval_mask: random column intervals, with and without causal, against "
    "brute force",
    "[interval_union][flashmask]") {
  STATIC_REQUIRE(column_interval_mask::exact_tiles);
  rng r(16);
  const std::vector<std::pair<Index, Index>> shapes = {
      {1, 1}, {3, 5}, {5, 3}, {41, 37}, {29, 70}, {70, 29}, {97, 100}, {0, 4}, {4, 0}, {64, 64}};
  for (const auto& shape : shapes) {
    const Index lq = shape.first, lk = shape.second;
    for (const slice_extents ex : {slice_extents{1, 1}, slice_extents{3, 1}, slice_extents{2, 2}}) {
      for (const bool stripes : {false, true}) {
        const column_data d = stripes ? stripe_columns(r, ex.batch * ex.heads, lq, lk)
                                      : random_columns(r, ex.batch * ex.heads, lq, lk);
        const column_interval_mask m(d.lts, d.lte, d.uts, d.ute, lq, lk, ex);
        const Index B = ex.batch == 1 ? 2 : ex.batch, H = ex.heads == 1 ? 2 : ex.heads;
        for (const Index diag : {Index(0), lk - lq, Index(-7), Index(5), Index(-1000)}) {
          for (const bool causal : {false, true}) {
            if (!causal && diag != 0) continue;
            INFO("Lq " << lq << " Lk " << lk << " extents " << ex.batch << "x" << ex.heads
                       << " causal " << causal << " diagonal " << diag);
            const column_interval_mask c = causal ? m.with_causal(diag) : m;
            CHECK(c.is_causal() == causal);
            const auto ref = column_predicate(d, ex, lk, causal, diag);
            check_mask(c, ref, B, H, lq, lk, r.next());
            check_random_rectangles(c, ref, B, H, lq, lk, r);
          }
        }
        CHECK(!m.with_causal(3).without_causal().is_causal());
      }
    }
  }
}

TEST_CASE("column_interval_mask::from_flashmask reads Paddle's documented startend_row_indices",
          "[interval_union][flashmask]") {
  // The examples of paddle.nn.functional.flashmask_attention's docstring, 10 x 10, one head.
  const auto from = [](std::vector<std::int32_t> v, Index columns, bool causal) {
    return column_interval_mask::from_flashmask(v.data(), 1, 1, 10, columns, 10, causal);
  };
  // (b) causal, LTS only: causal documents [0, 4), [4, 7), [7, 10).
  const auto b = from({4, 4, 4, 4, 7, 7, 7, 10, 10, 10}, 1, true);
  require_same(b, document::from_cu_seqlens({0, 4, 7, 10}) & causal(), 10, 10);
  // (d) causal: key 0 never masked, key j masked from row j + 3: one sink and a window of 3.
  const auto d = from({10, 4, 5, 6, 7, 8, 9, 10, 10, 10}, 1, true);
  require_same(d, sink_window(1, 3), 10, 10);
  // (e) causal (LTS, LTE): keys 0..3 masked for rows 4..6 only (a shared question).
  const auto e =
      from({4, 7, 4, 7, 4, 7, 4, 7, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10}, 2, true);
  check_mask(
      e, [](Index, Index, Index q, Index k) { return k <= q && !(k < 4 && q >= 4 && q < 7); }, 1, 1,
      10, 10);
  // (f) not causal (LTS, UTE): bidirectional documents [0, 4), [4, 7), [7, 10).
  const auto f = from({4, 0, 4, 0, 4, 0, 4, 0, 7, 4, 7, 4, 7, 4, 10, 7, 10, 7, 10, 7}, 2, false);
  require_same(f, document::from_cu_seqlens({0, 4, 7, 10}), 10, 10);
  // (g) not causal (LTS, LTE, UTS, UTE), rows by hand: rows 0..2 keep every key, rows 3..9 keep
  // keys 0..2 (key 3 masked for rows >= 3; key j >= 4 masked for rows [3, j) and [j, 10)).
  const auto g = from({10, 10, 0, 0, 10, 10, 0, 0, 10, 10, 0, 0, 3, 10, 0, 0, 4, 10, 3, 4,
                       5,  10, 3, 5, 6,  10, 3, 6, 7,  10, 3, 7, 8, 10, 3, 8, 9, 10, 3, 9},
                      4, false);
  const bool_matrix gm = materialize(g, 10, 10);
  for (Index q = 0; q < 10; ++q) CHECK(gm.row(q).count() == (q < 3 ? 10 : 3));
  // Paddle's window_size for causal: LTS[j] = min(j + w + 1, L): query i keeps keys i - w .. i.
  for (const Index w : {Index(0), Index(2), Index(5), Index(20)}) {
    std::vector<std::int32_t> lts(10);
    for (std::size_t j = 0; j < 10; ++j)
      lts[j] = static_cast<std::int32_t>((std::min)(static_cast<Index>(j) + w + 1, Index(10)));
    require_same(from(lts, 1, true), sliding_window(w, 0) & causal(), 10, 10);
  }
  // Batch 2, heads 1 broadcast; Lq != Lk: causal is bottom-right (diagonal Lk - Lq).
  std::vector<std::int32_t> two = {6, 6, 6, 6, 6, 6, 6, 6, 2, 2, 2, 2, 2, 2, 2, 2};
  const auto t = column_interval_mask::from_flashmask(two.data(), 2, 1, 8, 1, 6, true);
  CHECK(t.diagonal() == 2);
  check_mask(
      t, [](Index bb, Index, Index q, Index k) { return k <= q + 2 && q < (bb == 0 ? 6 : 2); }, 2,
      3, 6, 8);
}

TEST_CASE("to_interval_union and to_column_intervals reproduce every structured builder",
          "[interval_union][converters]") {
  struct shape {
    Index lq, lk;
  };
  for (const shape s : {shape{7, 7}, shape{5, 13}, shape{13, 5}, shape{70, 70}, shape{33, 90}}) {
    const Index lq = s.lq, lk = s.lk;
    INFO("Lq " << lq << " Lk " << lk);
    const auto both = [&](const auto& src, Index per_row_expected) {
      const interval_union_mask rows = to_interval_union(src, lq, lk);
      CHECK(rows.per_row() <= per_row_expected);
      require_same(rows, src, lq, lk);
      const column_interval_mask cols = to_column_intervals(src, lq, lk);
      require_same(cols, src, lq, lk);
      // The converted masks answer tiles exactly, so their tile maps equal the source's exact
      // map (a block mask stores exact states).
      const block_mask want = materialize_block_mask(src, lq, lk, 8, 8);
      const block_mask got_r = materialize_block_mask(rows, lq, lk, 8, 8);
      for (Index qt = 0; qt < want.q_tiles(); ++qt)
        for (Index kt = 0; kt < want.k_tiles(); ++kt) {
          const Index q0 = qt * 8, q1 = (std::min)(lq, q0 + 8), k0 = kt * 8,
                      k1 = (std::min)(lk, k0 + 8);
          REQUIRE(rows.tile(0, 0, q0, q1, k0, k1) == want.state(qt, kt));
          REQUIRE(cols.tile(0, 0, q0, q1, k0, k1) == want.state(qt, kt));
          REQUIRE(got_r.state(qt, kt) == want.state(qt, kt));
        }
    };
    both(causal(), 1);
    both(causal::bottom_right(lq, lk), 1);
    both(causal().strict(), 1);
    both(sliding_window(3, 1), 1);
    both(sliding_window::from_flash_attn(4, 0, lq, lk), 1);
    both(sliding_window::from_hf(5), 1);
    both(prefix_lm(4), 1);
    both(chunked(4), 1);
    both(chunked(4) & causal(), 1);
    const Index n = (std::max)(lq, lk);  // ids for every query and key position
    both(document::from_cu_seqlens({0, n / 3, n / 2, n}) & causal(), 1);
    both(document::from_cu_seqlens({0, n / 3, n / 2, n}), 1);
    // Two runs per row: sinks and a window.
    both(sink_window(2, 3), 2);
    // Intervals compose like any mask: a union with a window.
    both(prefix_lm(3) | sliding_window(1, 1), 2);
  }
  // Per batch entry and per head: extents ask the mask at every (b, h).
  const prefix_lm per_batch({2, 5, 0});
  const interval_union_mask pb = to_interval_union(per_batch, 9, 9, 0, {3, 1});
  const column_interval_mask pc = to_column_intervals(per_batch, 9, 9, {3, 1});
  require_same(pb, per_batch, 9, 9, 3, 1);
  require_same(pc, per_batch, 9, 9, 3, 1);
  const auto heads = per_head(std::vector<sliding_window>{
      sliding_window(0, 0), sliding_window(2, 0), sliding_window(9, 9)});
  require_same(to_interval_union(heads, 12, 12, 0, {1, 3}), heads, 12, 12, 1, 3);
  require_same(to_column_intervals(heads, 12, 12, {1, 3}), heads, 12, 12, 1, 3);
  // Ids that come back: row 0 of {0, 1, 0, 1, 0} keeps three runs of keys.
  const document repeat = document::from_segment_ids(std::vector<int>{0, 1, 0, 1, 0});
  const interval_union_mask rr = to_interval_union(repeat, 5, 5);
  CHECK(rr.per_row() == 3);
  CHECK(rr.runs(0) == 3);
  require_same(rr, repeat, 5, 5);
  // Ids {0, 1, 1, 0}: the columns of id 0 mask the middle rows [1, 3) (one run, not from row 0),
  // those of id 1 mask rows [0, 1) and [3, 4).
  const document middle = document::from_segment_ids(std::vector<int>{0, 1, 1, 0});
  const column_interval_mask mc = to_column_intervals(middle, 4, 4);
  require_same(mc, middle, 4, 4);
  CHECK(mc.masked_rows(0, false).begin == 1);
  CHECK(mc.masked_rows(0, false).end == 3);
  CHECK(mc.masked_rows(1, true).end == 1);
  CHECK(mc.masked_rows(1, false).begin == 3);
  // A fixed per_row pads the rows with empty slots.
  CHECK(to_interval_union(causal(), 4, 4, 3).per_row() == 3);
  require_same(to_interval_union(causal(), 4, 4, 3), causal(), 4, 4);
  // The column form converts back to the row form and the other way round.
  const auto cols = to_column_intervals(sink_window(1, 2) & prefix_lm(2), 20, 20);
  require_same(to_interval_union(cols, 20, 20), sink_window(1, 2) & prefix_lm(2), 20, 20);
}

TEST_CASE("interval masks compose with &, | and !", "[interval_union][compose]") {
  rng r(17);
  const Index lq = 40, lk = 45;
  const row_data d = random_rows(r, 1, lq, lk, 3);
  const interval_union_mask m(d.starts, d.ends, lq, lk, 3);
  const auto ref = row_predicate(d, {1, 1}, lq, 3);
  const column_data cd = random_columns(r, 1, lq, lk);
  const column_interval_mask c(cd.lts, cd.lte, cd.uts, cd.ute, lq, lk);
  const auto cref = column_predicate(cd, {1, 1}, lk, false, 0);
  check_mask(
      m & causal(), [&](Index b, Index h, Index q, Index k) { return ref(b, h, q, k) && k <= q; },
      1, 1, lq, lk);
  check_mask(
      m | c,
      [&](Index b, Index h, Index q, Index k) { return ref(b, h, q, k) || cref(b, h, q, k); }, 1, 1,
      lq, lk);
  check_mask(
      !c, [&](Index b, Index h, Index q, Index k) { return !cref(b, h, q, k); }, 1, 1, lq, lk);
}

TEST_CASE("interval masks in every attention variant equal their materialized keep-mask",
          "[interval_union][kernels]") {
  rng r(18);
  for (int trial = 0; trial < 6; ++trial) {
    const Index lq = r.between(1, 150), lk = r.between(1, 200), d = r.between(1, 24);
    const Index per_row = r.between(1, 4);
    const row_data rd = random_rows(r, 1, lq, lk, per_row);
    const interval_union_mask rows(rd.starts, rd.ends, lq, lk, per_row);
    const column_data cd = random_columns(r, 1, lq, lk);
    const column_interval_mask cols =
        column_interval_mask(cd.lts, cd.lte, cd.uts, cd.ute, lq, lk).with_causal(lk - lq);
    const row_matrix<float> q = emask_test::uniform_matrix<float>(r, lq, d),
                            k = emask_test::uniform_matrix<float>(r, lk, d),
                            v = emask_test::uniform_matrix<float>(r, lk, d);
    const auto run = [&](const auto& mask) {
      const bool_matrix keep = materialize(mask, lq, lk);
      for (auto variant :
           {emask_test::attention_variant::tiled, emask_test::attention_variant::decode,
            emask_test::attention_variant::naive})
        for (const Index tile : {Index(16), Index(64)}) {
          emask_test::attention_options o;
          o.variant = variant;
          o.tile_q = tile;
          o.tile_k = tile;
          row_matrix<float> want(lq, d), got(lq, d);
          lse_vector<float> lw(lq), lg(lq);
          emask_test::masked_attention(q, k, v, as_mask(keep), want, lw, o);
          emask_test::masked_attention(q, k, v, mask, got, lg, o);
          INFO("trial " << trial << " variant " << int(variant) << " tile " << tile);
          REQUIRE((got - want).cwiseAbs().maxCoeff() <= 1e-5f);
          for (Index i = 0; i < lq; ++i) {
            if (std::isinf(lw[i])) {
              REQUIRE(std::isinf(lg[i]));
            } else {
              REQUIRE(std::abs(lg[i] - lw[i]) <= 1e-5f * (1.0f + std::abs(lw[i])));
            }
          }
        }
      const row_matrix<float> x = emask_test::uniform_matrix<float>(r, lq, lk);
      row_matrix<float> want(lq, lk), got(lq, lk);
      emask::masked_softmax(x, keep, want);
      emask::masked_softmax(x, mask, got);
      REQUIRE((got - want).cwiseAbs().maxCoeff() <= 1e-6f);
      REQUIRE((keep || got.array() == 0.0f).all());
    };
    run(rows);
    run(cols);
  }
  // Batched [B, H] views: slice (b, h) of the masks, against each slice alone.
  const Index B = 2, H = 3, L = 50, D = 8;
  const row_data rd = random_rows(r, B * H, L, L, 2);
  const interval_union_mask m(rd.starts, rd.ends, L, L, 2, {B, H});
  std::vector<float> qb(static_cast<std::size_t>(B * H * L * D)), kb(qb.size()), vb(qb.size()),
      ob(qb.size());
  for (auto& x : qb) x = static_cast<float>(r.next() % 1000) / 500.0f - 1.0f;
  for (auto& x : kb) x = static_cast<float>(r.next() % 1000) / 500.0f - 1.0f;
  for (auto& x : vb) x = static_cast<float>(r.next() % 1000) / 500.0f - 1.0f;
  masked_attention(
      view_bhld<const float>(qb.data(), B, H, L, D), view_bhld<const float>(kb.data(), B, H, L, D),
      view_bhld<const float>(vb.data(), B, H, L, D), m, view_bhld<float>(ob.data(), B, H, L, D));
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h) {
      const auto at = static_cast<std::ptrdiff_t>((b * H + h) * L * D);
      using cmap = Eigen::Map<const row_matrix<float>>;
      row_matrix<float> alone(L, D);
      const bool_matrix keep = materialize(m, L, L, b, h);
      masked_attention(cmap(qb.data() + at, L, D), cmap(kb.data() + at, L, D),
                       cmap(vb.data() + at, L, D), as_mask(keep), alone);
      REQUIRE((alone - cmap(ob.data() + at, L, D)).cwiseAbs().maxCoeff() <= 1e-5f);
    }
}

TEST_CASE("interval masks: bad input names the function and the argument",
          "[interval_union][bad_input]") {
  const char* iu = "interval_union_mask";
  CHECK_THAT(message_of([] { interval_union_mask({0}, {1}, -1, 4); }),
             Catch::Matchers::StartsWith(prefix(iu, "q_len")));
  CHECK_THAT(message_of([] { interval_union_mask({0}, {1}, 1, -4); }),
             Catch::Matchers::StartsWith(prefix(iu, "k_len")));
  CHECK_THAT(message_of([] { interval_union_mask({0}, {1}, 1, 4, 0); }),
             Catch::Matchers::StartsWith(prefix(iu, "per_row")));
  CHECK_THAT(message_of([] {
               interval_union_mask({0, 1}, {1, 2}, 1, 4, 1);
             }),
             Catch::Matchers::StartsWith(prefix(iu, "starts")) &&
                 Catch::Matchers::Contains("2 entries, expected 1 entries"));
  CHECK_THAT(message_of([] {
               interval_union_mask({0}, {1, 2}, 1, 4, 1);
             }),
             Catch::Matchers::StartsWith(prefix(iu, "ends")));
  CHECK_THAT(message_of([] {
               interval_union_mask({0}, {1}, 1, 4, 1, {0, 1});
             }),
             Catch::Matchers::StartsWith(prefix(iu, "extents.batch")));
  CHECK_THAT(message_of([] { interval_union_mask({-1}, {1}, 1, 4); }),
             Catch::Matchers::StartsWith(prefix(iu, "starts[0]")));
  CHECK_THAT(message_of([] { interval_union_mask({5}, {5}, 1, 4); }),
             Catch::Matchers::StartsWith(prefix(iu, "starts[0]")));
  CHECK_THAT(message_of([] { interval_union_mask({2}, {1}, 1, 4); }),
             Catch::Matchers::StartsWith(prefix(iu, "ends[0]")));
  CHECK_THAT(message_of([] { interval_union_mask({0}, {5}, 1, 4); }),
             Catch::Matchers::StartsWith(prefix(iu, "ends[0]")));
  // Not sorted, overlapping.
  CHECK_THAT(message_of([] {
               interval_union_mask({2, 0}, {4, 1}, 1, 6, 2);
             }),
             Catch::Matchers::StartsWith(prefix(iu, "starts[1]")) &&
                 Catch::Matchers::Contains("sorted and disjoint"));
  CHECK_THAT(message_of([] {
               interval_union_mask({0, 2}, {3, 4}, 1, 6, 2);
             }),
             Catch::Matchers::StartsWith(prefix(iu, "starts[1]")));

  const char* ci = "column_interval_mask";
  CHECK_THAT(message_of([] {
               column_interval_mask({0}, {1}, {0}, {0}, 2, 1, {1, 0});
             }),
             Catch::Matchers::StartsWith(prefix(ci, "extents.heads")));
  CHECK_THAT(message_of([] {
               column_interval_mask({0, 0}, {1}, {0}, {0}, 2, 1);
             }),
             Catch::Matchers::StartsWith(prefix(ci, "lts")));
  CHECK_THAT(message_of([] {
               column_interval_mask({0}, {1}, {0}, {0, 1}, 2, 1);
             }),
             Catch::Matchers::StartsWith(prefix(ci, "ute")));
  CHECK_THAT(message_of([] { column_interval_mask({3}, {3}, {0}, {0}, 2, 1); }),
             Catch::Matchers::StartsWith(prefix(ci, "lts[0]")));
  CHECK_THAT(message_of([] { column_interval_mask({1}, {0}, {0}, {0}, 2, 1); }),
             Catch::Matchers::StartsWith(prefix(ci, "lte[0]")));
  CHECK_THAT(message_of([] { column_interval_mask({0}, {0}, {0}, {3}, 2, 1); }),
             Catch::Matchers::StartsWith(prefix(ci, "ute[0]")));

  const char* fm = "column_interval_mask::from_flashmask";
  std::vector<std::int32_t> v = {1, 2, 3, 4};
  CHECK_THAT(
      message_of([&] { column_interval_mask::from_flashmask(v.data(), 1, 1, 2, 4, 4, true); }),
      Catch::Matchers::StartsWith(prefix(fm, "columns")) &&
          Catch::Matchers::Contains("when causal"));
  CHECK_THAT(
      message_of([&] { column_interval_mask::from_flashmask(v.data(), 1, 1, 4, 1, 4, false); }),
      Catch::Matchers::StartsWith(prefix(fm, "columns")) &&
          Catch::Matchers::Contains("when not causal"));
  CHECK_THAT(
      message_of([&] { column_interval_mask::from_flashmask(nullptr, 1, 1, 4, 1, 4, true); }),
      Catch::Matchers::StartsWith(prefix(fm, "startend_row_indices")));
  CHECK_THAT(
      message_of([&] { column_interval_mask::from_flashmask(v.data(), 0, 1, 4, 1, 4, true); }),
      Catch::Matchers::StartsWith(prefix(fm, "batch")));
  CHECK_THAT(
      message_of([&] { column_interval_mask::from_flashmask(v.data(), 1, 1, 4, 1, 3, true); }),
      Catch::Matchers::StartsWith(prefix(fm, "startend_row_indices[3]")));
  std::vector<std::int32_t> reversed = {3, 1, 0, 0};  // LTS 3 > LTE 1
  CHECK_THAT(message_of([&] {
               column_interval_mask::from_flashmask(reversed.data(), 1, 1, 2, 2, 4, true);
             }),
             Catch::Matchers::StartsWith(prefix(fm, "startend_row_indices[1]")));

  // Converters.
  const document repeat = document::from_segment_ids(std::vector<int>{0, 1, 0, 1, 0, 1, 0});
  CHECK_THAT(message_of([&] { to_interval_union(repeat, 7, 7, 2); }),
             Catch::Matchers::StartsWith(prefix("to_interval_union", "per_row")) &&
                 Catch::Matchers::Contains("keeps 4 separate runs"));
  CHECK_THAT(message_of([&] { to_interval_union(causal(), 7, 7, -1); }),
             Catch::Matchers::StartsWith(prefix("to_interval_union", "per_row")));
  CHECK_THAT(message_of([&] { to_column_intervals(repeat, 7, 7); }),
             Catch::Matchers::StartsWith(prefix("to_column_intervals", "mask")) &&
                 Catch::Matchers::Contains("third masked run"));
  CHECK_THAT(message_of([&] { to_interval_union(causal::bottom_right(3, 5), 3, 6); }),
             Catch::Matchers::StartsWith(prefix("to_interval_union", "mask")));

  // A kernel asking beyond the mask's lengths or batch fails before writing its output.
  const interval_union_mask m({0, 0}, {3, 2}, 2, 3);
  const row_matrix<float> q = row_matrix<float>::Ones(2, 4), k = row_matrix<float>::Ones(4, 4);
  row_matrix<float> out = row_matrix<float>::Constant(2, 4, 7.0f);
  CHECK_THAT(message_of([&] { masked_attention(q, k, k, m, out); }),
             Catch::Matchers::StartsWith(prefix("masked_attention", "key positions")));
  CHECK((out.array() == 7.0f).all());
  const column_interval_mask c({0, 0, 0}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}, 2, 3, {1, 1});
  CHECK_THAT(message_of([&] { masked_attention(q, k, k, c, out); }),
             Catch::Matchers::StartsWith(prefix("masked_attention", "key positions")));
  CHECK((out.array() == 7.0f).all());
  const interval_union_mask two_batches({0, 0}, {3, 3}, 1, 3, 1, {2, 1});
  CHECK_THAT(message_of([&] { materialize(two_batches, 1, 3, 2); }),
             Catch::Matchers::StartsWith(prefix("materialize", "mask")) &&
                 Catch::Matchers::Contains("batch 2"));
}
