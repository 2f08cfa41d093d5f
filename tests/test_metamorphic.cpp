// Metamorphic tests of the kernels (relations between runs, no reference needed):
// 1. permuting the keys together with their mask columns leaves the output unchanged (softmax:
//    the output columns move with them);
// 2. adding masked keys with any scores (huge, infinite, NaN) changes nothing;
// 3. key shards computed separately and merged by log-sum-exp equal the whole;
// 4. splitting the batch (one call per sequence and head) equals the whole batched call;
// 5. 1 and 2 threads give identical bits (when built with OpenMP).
// Every relation is checked for every variant, in float and double. "Unchanged" allows the
// rounding of a different summation order: |a - b| <= 64 eps (1 + |b|) for outputs in [-4, 4];
// relations that involve no reordering (4, 5) are bit-identical.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include <emask/kernels/attention.hpp>
#include <emask/kernels/merge.hpp>
#include <emask/kernels/softmax.hpp>
#include "kernel_variants.hpp"

#include "catch.hpp"
#include "fuzz/random_masks.hpp"

#if EMASK_HAS_OPENMP
#include <omp.h>
#endif

namespace {

using emask::Index;
using emask::row_matrix;
using emask_rel::splitmix;

template <class S>
using vec = Eigen::Matrix<S, Eigen::Dynamic, 1>;

const emask_test::attention_variant attention_variants[] = {emask_test::attention_variant::naive,
                                                            emask_test::attention_variant::tiled,
                                                            emask_test::attention_variant::decode};
const emask_test::softmax_variant softmax_variants[] = {emask_test::softmax_variant::naive,
                                                        emask_test::softmax_variant::fused,
                                                        emask_test::softmax_variant::tiled};

template <class S>
row_matrix<S> normal_matrix(splitmix& r, Index rows, Index cols) {
  row_matrix<S> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<S>(r.normal());
  return m;
}

template <class S>
double tol() {
  return 64 * static_cast<double>(std::numeric_limits<S>::epsilon());
}

/// Largest |a - b| / (1 + |b|) over entries where b is finite; +inf when a and b disagree on
/// which entries are finite or on the value of a non-finite entry.
template <class A, class B>
double max_rel_diff(const A& a, const B& b) {
  double worst = 0;
  for (Index i = 0; i < a.rows(); ++i)
    for (Index j = 0; j < a.cols(); ++j) {
      const double x = static_cast<double>(a(i, j)), y = static_cast<double>(b(i, j));
      if (std::isfinite(y)) {
        if (!std::isfinite(x)) return std::numeric_limits<double>::infinity();
        worst = std::max(worst, std::abs(x - y) / (1 + std::abs(y)));
      } else if (!(x == y)) {
        return std::numeric_limits<double>::infinity();
      }
    }
  return worst;
}

template <class A, class B>
bool same_bits(const A& a, const B& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
  for (Index i = 0; i < a.rows(); ++i)
    for (Index j = 0; j < a.cols(); ++j) {
      const auto x = a(i, j), y = b(i, j);
      if (std::memcmp(&x, &y, sizeof x) != 0) return false;
    }
  return true;
}

emask::bool_matrix random_keep(splitmix& r, Index lq, Index lk) {
  emask::bool_matrix keep(lq, lk);
  const double density = 0.1 + 0.8 * r.uniform();
  for (Index i = 0; i < keep.size(); ++i) keep.data()[i] = r.coin(density);
  if (lq > 2) keep.row(1).setConstant(false);  // a fully masked row
  return keep;
}

}  // namespace

TEMPLATE_TEST_CASE("metamorphic: permuting keys with their mask columns", "[metamorphic]", float,
                   double) {
  using S = TestType;
  splitmix r(11);
  for (int trial = 0; trial < 30; ++trial) {
    const Index lq = r.between(1, 70), lk = r.between(1, 150), d = r.between(1, 40),
                dv = r.between(1, 9);
    const emask::bool_matrix keep = random_keep(r, lq, lk);
    std::vector<Index> perm(static_cast<std::size_t>(lk));
    std::iota(perm.begin(), perm.end(), Index(0));
    for (Index i = lk - 1; i > 0; --i)
      std::swap(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(r.between(0, i))]);
    emask::bool_matrix pkeep(lq, lk);
    for (Index j = 0; j < lk; ++j) pkeep.col(j) = keep.col(perm[static_cast<std::size_t>(j)]);
    INFO("trial " << trial << " Lq " << lq << " Lk " << lk << " D " << d);
    // softmax: columns move with the keys
    const row_matrix<S> x = normal_matrix<S>(r, lq, lk);
    row_matrix<S> px(lq, lk);
    for (Index j = 0; j < lk; ++j) px.col(j) = x.col(perm[static_cast<std::size_t>(j)]);
    for (auto v : softmax_variants) {
      emask_test::softmax_options o;
      o.variant = v;
      o.tile_q = o.tile_k = r.between(1, 40);
      const row_matrix<S> a = emask_test::masked_softmax(x, emask::as_mask(keep), o);
      const row_matrix<S> b = emask_test::masked_softmax(px, emask::as_mask(pkeep), o);
      row_matrix<S> pa(lq, lk);
      for (Index j = 0; j < lk; ++j) pa.col(j) = a.col(perm[static_cast<std::size_t>(j)]);
      CHECK(max_rel_diff(b, pa) <= tol<S>());
    }
    // attention: K and V rows move with the mask columns
    const row_matrix<S> q = normal_matrix<S>(r, lq, d), k = normal_matrix<S>(r, lk, d),
                        v = normal_matrix<S>(r, lk, dv);
    row_matrix<S> pk(lk, d), pv(lk, dv);
    for (Index j = 0; j < lk; ++j) {
      pk.row(j) = k.row(perm[static_cast<std::size_t>(j)]);
      pv.row(j) = v.row(perm[static_cast<std::size_t>(j)]);
    }
    for (auto variant : attention_variants) {
      emask_test::attention_options o;
      o.variant = variant;
      o.tile_q = r.between(1, 40);
      o.tile_k = r.between(1, 40);
      o.decode_chunk = r.between(1, 50);
      row_matrix<S> a(lq, dv), b(lq, dv);
      vec<S> la(lq), lb(lq);
      emask_test::masked_attention(q, k, v, emask::as_mask(keep), a, la, o);
      emask_test::masked_attention(q, pk, pv, emask::as_mask(pkeep), b, lb, o);
      CHECK(max_rel_diff(b, a) <= tol<S>());
      CHECK(max_rel_diff(lb, la) <= tol<S>());
    }
  }
}

TEMPLATE_TEST_CASE("metamorphic: adding masked keys with any scores changes nothing",
                   "[metamorphic]", float, double) {
  using S = TestType;
  splitmix r(12);
  const S junk[] = {std::numeric_limits<S>::quiet_NaN(), std::numeric_limits<S>::infinity(),
                    -std::numeric_limits<S>::infinity(), std::numeric_limits<S>::max(),
                    std::numeric_limits<S>::lowest(),    S(1e30)};
  for (int trial = 0; trial < 30; ++trial) {
    const Index lq = r.between(1, 60), lk = r.between(0, 120), extra = r.between(1, 70);
    const Index d = r.between(1, 32), dv = r.between(1, 8);
    INFO("trial " << trial << " Lq " << lq << " Lk " << lk << " extra " << extra);
    // The extra keys go at random positions among the real ones; the mask is the real mask
    // there and false on the extra columns (a key nobody keeps).
    const emask::bool_matrix keep = random_keep(r, lq, lk);
    std::vector<Index> where(static_cast<std::size_t>(lk + extra), -1);  // -1: extra key
    {
      std::vector<char> is_extra(static_cast<std::size_t>(lk + extra), 0);
      for (Index e = 0; e < extra; ++e) is_extra[static_cast<std::size_t>(e)] = 1;
      for (Index i = lk + extra - 1; i > 0; --i)
        std::swap(is_extra[static_cast<std::size_t>(i)],
                  is_extra[static_cast<std::size_t>(r.between(0, i))]);
      Index next = 0;
      for (std::size_t p = 0; p < is_extra.size(); ++p) where[p] = is_extra[p] ? -1 : next++;
    }
    const Index n = lk + extra;
    emask::bool_matrix big_keep = emask::bool_matrix::Constant(lq, n, false);
    for (Index p = 0; p < n; ++p)
      if (where[static_cast<std::size_t>(p)] >= 0)
        big_keep.col(p) = keep.col(where[static_cast<std::size_t>(p)]);
    // softmax: junk scores in the extra columns (and in masked entries of real columns)
    const row_matrix<S> x = normal_matrix<S>(r, lq, lk);
    row_matrix<S> bx(lq, n);
    for (Index p = 0; p < n; ++p) {
      const Index j = where[static_cast<std::size_t>(p)];
      for (Index i = 0; i < lq; ++i)
        bx(i, p) = j >= 0 ? (keep(i, j) ? x(i, j) : junk[(i + p) % 6]) : junk[(i * 7 + p) % 6];
    }
    for (auto v : softmax_variants) {
      emask_test::softmax_options o;
      o.variant = v;
      o.tile_q = o.tile_k = r.between(1, 40);
      vec<S> la(lq), lb(lq);
      row_matrix<S> a(lq, lk), b(lq, n);
      emask_test::masked_softmax(x, emask::as_mask(keep), a, la, o);
      emask_test::masked_softmax(bx, emask::as_mask(big_keep), b, lb, o);
      row_matrix<S> sel(lq, lk);
      for (Index p = 0; p < n; ++p)
        if (where[static_cast<std::size_t>(p)] >= 0)
          sel.col(where[static_cast<std::size_t>(p)]) = b.col(p);
      CHECK(max_rel_diff(sel, a) <= tol<S>());
      CHECK(max_rel_diff(lb, la) <= tol<S>());
      for (Index p = 0; p < n; ++p)
        if (where[static_cast<std::size_t>(p)] < 0) CHECK((b.col(p).array() == S(0)).all());
    }
    // attention: extra K rows full of junk (V finite: see attention.hpp)
    const row_matrix<S> q = normal_matrix<S>(r, lq, d), k = normal_matrix<S>(r, lk, d),
                        v = normal_matrix<S>(r, lk, dv);
    row_matrix<S> bk(n, d), bv(n, dv);
    for (Index p = 0; p < n; ++p) {
      const Index j = where[static_cast<std::size_t>(p)];
      if (j >= 0) {
        bk.row(p) = k.row(j);
        bv.row(p) = v.row(j);
      } else {
        bk.row(p).setConstant(junk[p % 6]);
        bv.row(p).setConstant(S(1e6));
      }
    }
    for (auto variant : attention_variants) {
      emask_test::attention_options o;
      o.variant = variant;
      o.tile_q = r.between(1, 40);
      o.tile_k = r.between(1, 40);
      o.decode_chunk = r.between(1, 50);
      row_matrix<S> a(lq, dv), b(lq, dv);
      vec<S> la(lq), lb(lq);
      emask_test::masked_attention(q, k, v, emask::as_mask(keep), a, la, o);
      emask_test::masked_attention(q, bk, bv, emask::as_mask(big_keep), b, lb, o);
      CHECK(max_rel_diff(b, a) <= tol<S>());
      CHECK(max_rel_diff(lb, la) <= tol<S>());
    }
  }
}

TEMPLATE_TEST_CASE("metamorphic: key shards merged by log-sum-exp equal the whole", "[metamorphic]",
                   float, double) {
  using S = TestType;
  splitmix r(13);
  for (int trial = 0; trial < 40; ++trial) {
    const Index lq = r.between(1, 60), lk = r.between(1, 200), d = r.between(1, 32),
                dv = r.between(1, 8);
    const emask_rel::extent e{1, lq, lk};
    const emask_rel::tree t = emask_rel::make_tree(r, e, static_cast<int>(r.between(0, 2)));
    INFO("trial " << trial << " Lq " << lq << " Lk " << lk << " mask " << t.what);
    const row_matrix<S> q = normal_matrix<S>(r, lq, d), k = normal_matrix<S>(r, lk, d),
                        v = normal_matrix<S>(r, lk, dv);
    // shard cut points
    std::vector<Index> cuts{0};
    while (cuts.back() < lk)
      cuts.push_back(std::min(lk, cuts.back() + r.between(1, std::max<Index>(1, lk / 2))));
    for (auto variant : attention_variants) {
      emask_test::attention_options o;
      o.variant = variant;
      o.tile_q = r.between(1, 40);
      o.tile_k = r.between(1, 40);
      o.decode_chunk = r.between(1, 50);
      row_matrix<S> whole(lq, dv);
      vec<S> lwhole(lq);
      emask_test::masked_attention(q, k, v, t.mask, whole, lwhole, o);
      std::vector<row_matrix<S>> parts;
      std::vector<vec<S>> lses;
      for (std::size_t s = 0; s + 1 < cuts.size(); ++s) {
        const Index k0 = cuts[s], n = cuts[s + 1] - cuts[s];
        row_matrix<S> part(lq, dv);
        vec<S> lpart(lq);
        emask_test::attention_options os = o;
        os.k_offset = k0;  // the shard's keys are positions [k0, k0 + n)
        const row_matrix<S> ks = k.middleRows(k0, n), vs = v.middleRows(k0, n);
        emask_test::masked_attention(q, ks, vs, t.mask, part, lpart, os);
        parts.push_back(part);
        lses.push_back(lpart);
      }
      row_matrix<S> merged(lq, dv);
      vec<S> lmerged(lq);
      emask::merge_attention(parts, lses, merged, lmerged);
      CHECK(max_rel_diff(merged, whole) <= tol<S>());
      CHECK(max_rel_diff(lmerged, lwhole) <= tol<S>());
    }
  }
}

TEMPLATE_TEST_CASE("metamorphic: splitting the batch equals the whole", "[metamorphic]", float,
                   double) {
  using S = TestType;
  splitmix r(14);
  const Index B = 3, H = 4, Hkv = 2, lq = 37, lk = 53, d = 16, dv = 8;
  std::vector<S> qb(static_cast<std::size_t>(B * H * lq * d)),
      kb(static_cast<std::size_t>(B * Hkv * lk * d)),
      vb(static_cast<std::size_t>(B * Hkv * lk * dv)),
      ob(static_cast<std::size_t>(B * H * lq * dv));
  for (auto* buf : {&qb, &kb, &vb})
    for (auto& x : *buf) x = static_cast<S>(r.normal());
  const auto mask = emask::key_padding::from_lengths({53, 20, 0}, lk) &
                    emask::causal::bottom_right({37, 30, 37}, {53, 40, 53});
  for (auto variant : attention_variants) {
    emask_test::attention_options o;
    o.variant = variant;
    o.tile_q = 8;
    o.tile_k = 16;
    o.decode_chunk = 11;
    row_matrix<S> lse(B * H, lq);
    // q and out interleaved [B, L, H, D] (a fused projection); k, v contiguous [B, Hkv, L, D]
    const auto qv = emask::view_blhd<const S>(qb.data(), B, lq, H, d);
    const auto kv = emask::view_bhld<const S>(kb.data(), B, Hkv, lk, d);
    const auto vv = emask::view_bhld<const S>(vb.data(), B, Hkv, lk, dv);
    const auto ov = emask::view_blhd<S>(ob.data(), B, lq, H, dv);
    emask_test::masked_attention(qv, kv, vv, mask, ov, lse, o);
    for (Index b = 0; b < B; ++b)
      for (Index h = 0; h < H; ++h) {
        INFO("variant " << static_cast<int>(variant) << " b " << b << " h " << h);
        emask_test::attention_options os = o;
        os.slice = {b, h};
        row_matrix<S> one(lq, dv);
        vec<S> lone(lq);
        const row_matrix<S> qs = qv.slice(b, h), ks = kv.slice(b, h / (H / Hkv)),
                            vs = vv.slice(b, h / (H / Hkv));
        emask_test::masked_attention(qs, ks, vs, mask, one, lone, os);
        const row_matrix<S> whole = ov.slice(b, h);
        CHECK(same_bits(one, whole));
        CHECK(same_bits(lone.transpose(), lse.row(b * H + h)));
      }
  }
}

#if EMASK_HAS_OPENMP
TEMPLATE_TEST_CASE("metamorphic: 1 and 2 threads give identical bits", "[metamorphic][threads]",
                   float, double) {
  using S = TestType;
  splitmix r(15);
  const Index B = 2, H = 3, lq = 150, lk = 260, d = 32, dv = 16;
  std::vector<S> qb(static_cast<std::size_t>(B * H * lq * d)),
      kb(static_cast<std::size_t>(B * H * lk * d)), vb(static_cast<std::size_t>(B * H * lk * dv)),
      o1(static_cast<std::size_t>(B * H * lq * dv)), o2 = o1;
  for (auto* buf : {&qb, &kb, &vb})
    for (auto& x : *buf) x = static_cast<S>(r.normal());
  const auto mask = emask::sliding_window(40, 5) | emask::prefix_lm(17);
  for (auto variant : attention_variants) {
    emask_test::attention_options o;
    o.variant = variant;
    o.tile_q = 16;
    o.decode_chunk = 64;
    row_matrix<S> l1(B * H, lq), l2(B * H, lq);
    const auto q = emask::view_bhld<const S>(qb.data(), B, H, lq, d);
    const auto k = emask::view_bhld<const S>(kb.data(), B, H, lk, d);
    const auto v = emask::view_bhld<const S>(vb.data(), B, H, lk, dv);
    o.threads = 1;
    emask_test::masked_attention(q, k, v, mask, emask::view_bhld<S>(o1.data(), B, H, lq, dv), l1,
                                 o);
    o.threads = 2;
    emask_test::masked_attention(q, k, v, mask, emask::view_bhld<S>(o2.data(), B, H, lq, dv), l2,
                                 o);
    INFO("variant " << static_cast<int>(variant));
    CHECK(std::memcmp(o1.data(), o2.data(), o1.size() * sizeof(S)) == 0);
    CHECK(same_bits(l1, l2));
  }
  // softmax: threads come from the OpenMP runtime; the problem is above the parallel threshold
  const row_matrix<S> x = normal_matrix<S>(r, 300, 300);
  const int saved = omp_get_max_threads();
  for (auto v : softmax_variants) {
    emask_test::softmax_options o;
    o.variant = v;
    o.tile_q = o.tile_k = 32;
    omp_set_num_threads(1);
    const row_matrix<S> a = emask_test::masked_softmax(x, mask, o);
    omp_set_num_threads(2);
    const row_matrix<S> b = emask_test::masked_softmax(x, mask, o);
    CHECK(same_bits(a, b));
  }
  omp_set_num_threads(saved);
}
#endif
