// The NaN policy (docs/errors.md), for every kernel variant, float and double:
// 1. a NaN or an infinity at a masked position has no effect at all: the output is bit-identical
//    to the output with a finite value there;
// 2. a NaN at a kept position makes that row NaN (as PyTorch) and no other row: every kept entry
//    of the row is NaN, its masked entries stay exactly 0 (log-softmax: -inf), and every other
//    row is bit-identical to the clean result;
// 3. fully masked rows are exactly zero (log-softmax: -inf) with lse = -inf, never NaN.
// Attention: a NaN in K row j is a NaN score for every query that keeps key j: those rows are
// NaN, the others unchanged; NaN or infinity in K (and, for the tiled and decode variants, V)
// rows of keys no query keeps has no effect.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <emask/kernels/attention.hpp>
#include <emask/kernels/softmax.hpp>
#include "kernel_variants.hpp"

#include "catch.hpp"
#include "fuzz/random_masks.hpp"

namespace {

using emask::Index;
using emask::row_matrix;

template <class S>
bool same_bits(S a, S b) {
  return std::memcmp(&a, &b, sizeof(S)) == 0;
}

template <class S>
bool rows_identical(const row_matrix<S>& a, const row_matrix<S>& b, Index i) {
  for (Index j = 0; j < a.cols(); ++j)
    if (!same_bits(a(i, j), b(i, j))) return false;
  return true;
}

template <class S>
bool is_neg_inf(S x) {
  return std::isinf(x) && x < 0;
}

const emask_test::softmax_variant softmax_variants[] = {emask_test::softmax_variant::naive,
                                                        emask_test::softmax_variant::fused,
                                                        emask_test::softmax_variant::tiled};
const char* softmax_names[] = {"naive", "fused", "tiled"};
const emask_test::attention_variant attention_variants[] = {emask_test::attention_variant::naive,
                                                            emask_test::attention_variant::tiled,
                                                            emask_test::attention_variant::decode};
const char* attention_names[] = {"naive", "tiled", "decode"};

/// A mask with partial tiles, full tiles, empty tiles and fully masked rows: sliding window
/// and key padding, or'ed with a dense block, with query padding.
auto policy_mask(Index lq, Index lk) {
  emask::bool_matrix block = emask::bool_matrix::Constant(lq, lk, false);
  for (Index i = 0; i < lq / 3; ++i)
    for (Index j = lk / 2; j < lk - 4; ++j) block(i, j) = true;  // the last 4 keys: kept by nobody
  return ((emask::sliding_window(5, 3) & emask::key_padding::from_lengths({lk - 4}, lk)) |
          emask::to_mask(std::move(block))) &
         emask::query_padding::from_ranges({1}, {lq - 2}, lq);
}

template <class S, class Mask>
void softmax_policy(const Mask& mask, Index lq, Index lk, int variant, bool log, Index tile) {
  INFO("variant " << softmax_names[variant] << (log ? " log_softmax" : " softmax") << " tile "
                  << tile << (sizeof(S) == 4 ? " float" : " double"));
  const emask::bool_matrix keep = emask::materialize(mask, lq, lk);
  emask_rel::splitmix r(99);
  row_matrix<S> x(lq, lk);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<S>(3 * r.normal());
  emask_test::softmax_options o;
  o.variant = softmax_variants[variant];
  o.tile_q = o.tile_k = tile;
  o.scale = 0.7;
  auto run = [&](const row_matrix<S>& in, row_matrix<S>& out,
                 Eigen::Matrix<S, Eigen::Dynamic, 1>& lse) {
    out.resize(lq, lk);
    lse.resize(lq);
    if (log) {
      emask_test::masked_log_softmax(in, mask, out, lse, o);
    } else {
      emask_test::masked_softmax(in, mask, out, lse, o);
    }
  };
  row_matrix<S> clean, dirty;
  Eigen::Matrix<S, Eigen::Dynamic, 1> lse_clean, lse_dirty;
  run(x, clean, lse_clean);

  // 3. fully masked rows.
  Index empty_rows = 0;
  for (Index i = 0; i < lq; ++i) {
    if (keep.row(i).any()) continue;
    ++empty_rows;
    CHECK(is_neg_inf(lse_clean(i)));
    for (Index j = 0; j < lk; ++j) CHECK((log ? is_neg_inf(clean(i, j)) : clean(i, j) == S(0)));
  }
  CHECK(empty_rows >= 3);

  // 1. masked positions: NaN, +inf, -inf, huge, everywhere the mask drops.
  const S junk[] = {std::numeric_limits<S>::quiet_NaN(), std::numeric_limits<S>::infinity(),
                    -std::numeric_limits<S>::infinity(), std::numeric_limits<S>::max(),
                    std::numeric_limits<S>::lowest(),    std::numeric_limits<S>::denorm_min()};
  row_matrix<S> poisoned = x;
  Index n = 0;
  for (Index i = 0; i < lq; ++i)
    for (Index j = 0; j < lk; ++j)
      if (!keep(i, j)) poisoned(i, j) = junk[n++ % 6];
  run(poisoned, dirty, lse_dirty);
  Index same = 0;
  for (Index i = 0; i < lq; ++i)
    same += (rows_identical(clean, dirty, i) && same_bits(lse_clean(i), lse_dirty(i))) ? 1 : 0;
  CHECK(same == lq);

  // 2. one NaN at a kept position of row i0: row i0 NaN at its kept entries, masked entries
  // unchanged, other rows bit-identical. Rows with partial and full tiles both tried.
  for (Index i0 = 0; i0 < lq; ++i0) {
    Index j0 = -1;
    for (Index j = 0; j < lk; ++j)
      if (keep(i0, j)) {
        j0 = j;
        if (i0 % 2 == 0) break;  // first kept key on even rows, last on odd rows
      }
    if (j0 < 0) continue;
    row_matrix<S> y = x;
    y(i0, j0) = std::numeric_limits<S>::quiet_NaN();
    run(y, dirty, lse_dirty);
    INFO("NaN at kept (" << i0 << ", " << j0 << ")");
    Index other_rows_changed = 0, kept_not_nan = 0, masked_changed = 0;
    for (Index i = 0; i < lq; ++i) {
      if (i != i0) {
        other_rows_changed +=
            (rows_identical(clean, dirty, i) && same_bits(lse_clean(i), lse_dirty(i))) ? 0 : 1;
        continue;
      }
      for (Index j = 0; j < lk; ++j) {
        if (keep(i, j)) {
          kept_not_nan += std::isnan(dirty(i, j)) ? 0 : 1;
        } else {
          masked_changed += (log ? is_neg_inf(dirty(i, j)) : same_bits(dirty(i, j), S(0))) ? 0 : 1;
        }
      }
    }
    CHECK(other_rows_changed == 0);
    CHECK(kept_not_nan == 0);
    // Fused and tiled masked_softmax once wrote NaN here (a flagged run scaled by 1 / NaN).
    CHECK(masked_changed == 0);
    CHECK(std::isnan(lse_dirty(i0)));
  }
}

template <class S, class Mask>
void attention_policy(const Mask& mask, Index lq, Index lk, int variant, Index tile_q,
                      Index tile_k) {
  INFO("attention variant " << attention_names[variant] << " tiles " << tile_q << "x" << tile_k
                            << (sizeof(S) == 4 ? " float" : " double"));
  const Index d = 12, dv = 7;
  const emask::bool_matrix keep = emask::materialize(mask, lq, lk);
  emask_rel::splitmix r(7);
  row_matrix<S> q(lq, d), k(lk, d), v(lk, dv);
  for (Index i = 0; i < q.size(); ++i) q.data()[i] = static_cast<S>(r.normal());
  for (Index i = 0; i < k.size(); ++i) k.data()[i] = static_cast<S>(r.normal());
  for (Index i = 0; i < v.size(); ++i) v.data()[i] = static_cast<S>(r.normal());
  emask_test::attention_options o;
  o.variant = attention_variants[variant];
  o.tile_q = tile_q;
  o.tile_k = tile_k;
  o.decode_chunk = 9;
  row_matrix<S> clean(lq, dv), dirty(lq, dv);
  Eigen::Matrix<S, Eigen::Dynamic, 1> lse_clean(lq), lse_dirty(lq);
  emask_test::masked_attention(q, k, v, mask, clean, lse_clean, o);
  auto unchanged = [&](Index i) {
    return rows_identical(clean, dirty, i) && same_bits(lse_clean(i), lse_dirty(i));
  };

  // Fully masked rows.
  for (Index i = 0; i < lq; ++i) {
    if (keep.row(i).any()) continue;
    CHECK(is_neg_inf(lse_clean(i)));
    for (Index c = 0; c < dv; ++c) CHECK(same_bits(clean(i, c), S(0)));
  }

  // Keys that no query keeps: NaN / inf in K (every variant) and in V (tiled, decode: never
  // read; the naive variant documents that V of masked keys must be finite).
  {
    row_matrix<S> k2 = k, v2 = v;
    Index dead = 0;
    for (Index j = 0; j < lk; ++j) {
      if (keep.col(j).any()) continue;
      ++dead;
      k2.row(j).setConstant(j % 2 ? std::numeric_limits<S>::quiet_NaN()
                                  : std::numeric_limits<S>::infinity());
      if (variant != 0) v2.row(j).setConstant(std::numeric_limits<S>::quiet_NaN());
    }
    CHECK(dead > 0);
    emask_test::masked_attention(q, k2, v2, mask, dirty, lse_dirty, o);
    Index changed = 0;
    for (Index i = 0; i < lq; ++i) changed += unchanged(i) ? 0 : 1;
    CHECK(changed == 0);
  }

  // A NaN in the K row of a key that some queries keep: exactly those rows become NaN.
  for (Index j0 = 0; j0 < lk; j0 += 5) {
    if (!keep.col(j0).any()) continue;
    row_matrix<S> k2 = k;
    k2(j0, 3) = std::numeric_limits<S>::quiet_NaN();
    emask_test::masked_attention(q, k2, v, mask, dirty, lse_dirty, o);
    INFO("NaN in K row " << j0);
    Index wrong = 0;
    for (Index i = 0; i < lq; ++i) {
      if (keep(i, j0)) {
        for (Index c = 0; c < dv; ++c) wrong += std::isnan(dirty(i, c)) ? 0 : 1;
      } else {
        wrong += unchanged(i) ? 0 : 1;
      }
    }
    CHECK(wrong == 0);
  }

  // A NaN in Q row i0 makes row i0 NaN (if it keeps anything) and changes no other row.
  for (Index i0 = 0; i0 < lq; i0 += 4) {
    row_matrix<S> q2 = q;
    q2(i0, 0) = std::numeric_limits<S>::quiet_NaN();
    emask_test::masked_attention(q2, k, v, mask, dirty, lse_dirty, o);
    INFO("NaN in Q row " << i0);
    Index wrong = 0;
    for (Index i = 0; i < lq; ++i) {
      if (i == i0 && keep.row(i).any()) {
        for (Index c = 0; c < dv; ++c) wrong += std::isnan(dirty(i, c)) ? 0 : 1;
      } else {
        wrong += unchanged(i) ? 0 : 1;
      }
    }
    CHECK(wrong == 0);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("NaN policy: masked_softmax and masked_log_softmax, every variant",
                   "[nan][softmax]", float, double) {
  const Index lq = 37, lk = 45;
  const auto mask = policy_mask(lq, lk);
  for (int v = 0; v < 3; ++v)
    for (Index tile : {Index(1), Index(4), Index(16), Index(128)})
      for (bool log : {false, true}) softmax_policy<TestType>(mask, lq, lk, v, log, tile);
}

TEMPLATE_TEST_CASE("NaN policy: masked_softmax with a bool_matrix and an additive mask",
                   "[nan][softmax]", float, double) {
  const Index lq = 21, lk = 30;
  const emask::bool_matrix keep = emask::materialize(policy_mask(lq, lk), lq, lk);
  softmax_policy<TestType>(emask::as_mask(keep), lq, lk, 1, false, 8);
  // The bool_matrix and additive_mask overloads take the same path for every variant.
  emask_rel::splitmix r(3);
  row_matrix<TestType> x(lq, lk);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<TestType>(r.normal());
  const row_matrix<TestType> clean = emask_test::masked_softmax(x, keep);
  row_matrix<TestType> y = x;
  for (Index i = 0; i < lq; ++i)
    for (Index j = 0; j < lk; ++j)
      if (!keep(i, j)) y(i, j) = std::numeric_limits<TestType>::quiet_NaN();
  const row_matrix<TestType> dirty = emask_test::masked_softmax(y, keep);
  const row_matrix<TestType> additive = emask_test::masked_softmax(
      y, emask::materialize_additive<TestType>(emask::as_mask(keep), lq, lk));
  Index differ = 0;
  for (Index i = 0; i < lq; ++i) differ += rows_identical(clean, dirty, i) ? 0 : 1;
  CHECK(differ == 0);
  CHECK(((additive - clean).cwiseAbs().maxCoeff() <= 1e-6));
}

TEMPLATE_TEST_CASE("NaN policy: a NaN in an additive bias is a NaN score, not a masked entry",
                   "[nan][softmax]", float, double) {
  // Only bias values <= lowest() are masked (docs/errors.md): a NaN bias is not, so it propagates
  // like a kept NaN score (rule 2), as PyTorch's scores + attn_mask does, and to_keep agrees.
  using S = TestType;
  const S nan = std::numeric_limits<S>::quiet_NaN(), inf = std::numeric_limits<S>::infinity();
  const Index lq = 4, lk = 7;
  row_matrix<S> bias = row_matrix<S>::Zero(lq, lk);
  for (Index i = 0; i < lq; ++i) bias(i, lk - 1) = -inf;  // last key masked in every row
  bias(1, 3) = nan;
  bias(2, 2) = nan;
  for (Index k = 0; k < lk; ++k) bias(3, k) = -inf;  // row 3 fully masked
  const auto add = emask::to_additive(bias);
  const emask::bool_matrix keep = emask::to_keep(add);
  CHECK(keep(1, 3));
  CHECK(keep(2, 2));
  CHECK_FALSE(keep(1, lk - 1));
  CHECK(keep.row(3).count() == 0);
  row_matrix<S> x(lq, lk);
  for (Index i = 0; i < x.size(); ++i)
    x.data()[i] = static_cast<S>(0.25 * static_cast<double>(i % 5));
  row_matrix<S> clean_bias = bias;
  clean_bias(1, 3) = S(0);
  clean_bias(2, 2) = S(0);
  for (int v = 0; v < 3; ++v)
    for (bool log : {false, true}) {
      INFO("variant " << softmax_names[v] << (log ? " log-softmax" : " softmax"));
      emask_test::softmax_options o;
      o.variant = softmax_variants[v];
      row_matrix<S> out(lq, lk), ref(lq, lk);
      emask::lse_vector<S> lse(lq), ref_lse(lq);
      if (log) {
        emask_test::masked_log_softmax(x, add, out, lse, o);
        emask_test::masked_log_softmax(x, emask::to_additive(clean_bias), ref, ref_lse, o);
      } else {
        emask_test::masked_softmax(x, add, out, lse, o);
        emask_test::masked_softmax(x, emask::to_additive(clean_bias), ref, ref_lse, o);
      }
      for (Index i : {Index(1), Index(2)}) {
        for (Index k = 0; k + 1 < lk; ++k) CHECK(std::isnan(out(i, k)));
        CHECK((log ? is_neg_inf(out(i, lk - 1)) : out(i, lk - 1) == S(0)));
        CHECK(std::isnan(lse(i)));
      }
      CHECK(rows_identical(out, ref, 0));
      CHECK(rows_identical(out, ref, 3));
      CHECK(is_neg_inf(lse(3)));
    }
}

TEMPLATE_TEST_CASE("NaN policy: masked_attention, every variant", "[nan][attention]", float,
                   double) {
  const Index lq = 29, lk = 41;
  const auto mask = policy_mask(lq, lk);
  for (int v = 0; v < 3; ++v)
    for (Index t : {Index(1), Index(8), Index(128)})
      attention_policy<TestType>(mask, lq, lk, v, t, t);
}

// Rule 4 at its edges (issue 13, items 2-4): the variants agree when kept scores are -inf, equal
// to lowest(), or far below the row maximum.
namespace {
using emask_test::attention_variant;
using emask_test::softmax_variant;
constexpr attention_variant all_attention[] = {attention_variant::naive, attention_variant::tiled,
                                               attention_variant::decode};
constexpr softmax_variant all_softmax[] = {softmax_variant::naive, softmax_variant::fused,
                                           softmax_variant::tiled};
}  // namespace

TEMPLATE_TEST_CASE("rule 4: a row whose kept scores are all -inf is written like an empty row",
                   "[nan][rule4]", float, double) {
  using S = TestType;
  const S inf = std::numeric_limits<S>::infinity();
  // Row 0 keeps only -inf scores, row 1 keeps finite ones.
  row_matrix<S> x(2, 5);
  x << -inf, -inf, -inf, 7, 7, 1, -inf, 2, 3, 4;
  const auto mask = emask::key_padding::from_lengths({3}, 5);
  for (softmax_variant v : all_softmax) {
    emask_test::softmax_options o;
    o.variant = v;
    row_matrix<S> y(2, 5), ly(2, 5);
    emask::lse_vector<S> lse(2), llse(2);
    emask_test::masked_softmax(x, mask, y, lse, o);
    emask_test::masked_log_softmax(x, mask, ly, llse, o);
    INFO("softmax variant " << int(v));
    for (Index j = 0; j < 5; ++j) {
      CHECK(y(0, j) == S(0));
      CHECK(ly(0, j) == -inf);
    }
    CHECK(lse[0] == -inf);
    CHECK(llse[0] == -inf);
    CHECK(std::abs(y(1, 0) + y(1, 1) + y(1, 2) - S(1)) < S(1e-6));
  }
  // Attention: q = 1 against keys of -inf give -inf scores; key chunks of 4 so that one chunk of
  // the decode variant holds only -inf scores next to a chunk with finite ones.
  const Index lk = 11;
  row_matrix<S> q = row_matrix<S>::Ones(2, 1), k(lk, 1), v(lk, 2);
  for (Index j = 0; j < lk; ++j) {
    k(j, 0) = j < 8 ? -inf : S(0.25) * static_cast<S>(j);
    v(j, 0) = static_cast<S>(j);
    v(j, 1) = S(1);
  }
  for (attention_variant var : all_attention) {
    emask_test::attention_options o;
    o.variant = var;
    o.scale = 1.0;
    o.decode_chunk = 4;
    row_matrix<S> out0(1, 2), out1(1, 2);
    emask::lse_vector<S> l0(1), l1(1);
    // All -inf: keys [0, 8).
    emask_test::masked_attention(q.topRows(1), k.topRows(8), v.topRows(8),
                                 emask::sliding_window(emask::unbounded, emask::unbounded), out0,
                                 l0, o);
    // Two chunks of -inf, then finite scores.
    emask_test::masked_attention(
        q.topRows(1), k, v, emask::sliding_window(emask::unbounded, emask::unbounded), out1, l1, o);
    INFO("attention variant " << int(var));
    CHECK(out0(0, 0) == S(0));
    CHECK(out0(0, 1) == S(0));
    CHECK(l0[0] == -inf);
    // Only keys 8, 9, 10 carry weight.
    double w[3], sum = 0, num = 0;
    for (int j = 0; j < 3; ++j) {
      w[j] = std::exp(0.25 * (8 + j));
      sum += w[j];
      num += w[j] * (8 + j);
    }
    CHECK(std::abs(static_cast<double>(out1(0, 0)) - num / sum) < 1e-5);
    CHECK(std::abs(static_cast<double>(out1(0, 1)) - 1.0) < 1e-6);
    CHECK(std::abs(static_cast<double>(l1[0]) - std::log(sum)) < 1e-5);
  }
}

TEMPLATE_TEST_CASE("rule 4: a kept -inf or far-below score weighs exactly 0 on every build",
                   "[nan][rule4]", float, double) {
  using S = TestType;
  const S inf = std::numeric_limits<S>::infinity();
  const S huge = std::numeric_limits<S>::max() / 8;
  // Scores 0, -inf and (float) -100 / (double) -800: weights 1, 0 and a subnormal, flushed.
  const S far = sizeof(S) == 4 ? S(-100) : S(-800);
  row_matrix<S> q = row_matrix<S>::Ones(1, 1), k(3, 1), v(3, 1);
  k << 0, -inf, far;
  v << 1, huge, huge;
  for (attention_variant var : all_attention) {
    emask_test::attention_options o;
    o.variant = var;
    o.scale = 1.0;
    row_matrix<S> out(1, 1);
    emask::lse_vector<S> lse(1);
    emask_test::masked_attention(q, k, v, emask::causal::bottom_right(1, 3), out, lse, o);
    INFO("attention variant " << int(var));
    CHECK(out(0, 0) == S(1));
    CHECK(lse[0] == S(0));
  }
}

TEMPLATE_TEST_CASE("rule 4: a kept score equal to lowest() is a real score in every variant",
                   "[nan][rule4]", float, double) {
  using S = TestType;
  const S lowest = std::numeric_limits<S>::lowest();
  row_matrix<S> q = row_matrix<S>::Ones(1, 1), k = row_matrix<S>::Constant(3, 1, lowest), v(3, 1);
  v << 1, 2, 3;
  for (attention_variant var : all_attention) {
    emask_test::attention_options o;
    o.variant = var;
    o.scale = 1.0;
    row_matrix<S> out(1, 1);
    emask::lse_vector<S> lse(1);
    emask_test::masked_attention(q, k, v, emask::causal::bottom_right(1, 3), out, lse, o);
    INFO("attention variant " << int(var));
    CHECK(std::abs(out(0, 0) - S(2)) < S(1e-5));
    CHECK(lse[0] == lowest);  // lowest + log(3) rounds to lowest
  }
  // The merge keeps a shard whose log-sum-exp is lowest().
  row_matrix<S> acc(1, 1), part(1, 1);
  acc << 5;
  part << 7;
  emask::lse_vector<S> al(1), pl(1);
  al << -std::numeric_limits<S>::infinity();
  pl << lowest;
  emask::merge_attention_into(acc, al, part, pl);
  CHECK(acc(0, 0) == S(7));
  CHECK(al[0] == lowest);
}
