// Defects of the reliability review (issue 13) in the kernels: options checked in the kernel's
// scalar type, no partial writes from merge_attention, results independent of buffer alignment.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernel_variants.hpp"
#include "mask_testing.hpp"

namespace {
using Catch::Matchers::Contains;
using emask::Index;
using emask::row_matrix;

template <class S>
row_matrix<S> ramp(Index r, Index c, double step) {
  row_matrix<S> m(r, c);
  for (Index i = 0; i < r; ++i)
    for (Index j = 0; j < c; ++j)
      m(i, j) = static_cast<S>(std::sin(step * static_cast<double>(i * c + j + 1)));
  return m;
}
}  // namespace

TEST_CASE("attention options are checked in the kernel's scalar type (item 5)", "[options]") {
  const row_matrix<float> q = ramp<float>(4, 8, 0.3), k = ramp<float>(6, 8, 0.7),
                          v = ramp<float>(6, 8, 1.1);
  row_matrix<float> out = row_matrix<float>::Constant(4, 8, 7.0f);
  const auto m = emask::causal::bottom_right(4, 6);
  const auto bad = [&](const emask::attention_options& o, const char* arg) {
    for (auto var : {emask_test::attention_variant::tiled, emask_test::attention_variant::decode,
                     emask_test::attention_variant::naive}) {
      emask_test::attention_options t;
      static_cast<emask::attention_options&>(t) = o;
      t.variant = var;
      REQUIRE_THROWS_WITH(emask_test::masked_attention(q, k, v, m, out, t),
                          Contains("masked_attention") && Contains(arg));
      REQUIRE((out.array() == 7.0f).all());  // untouched
    }
  };
  emask::attention_options o;
  o.softcap = 1e39;  // finite as double, inf as float
  bad(o, "options.softcap");
  o = {};
  o.softcap = 1e-300;  // rounds to 0 as float: scale / softcap overflows
  bad(o, "options.softcap");
  o = {};
  o.scale = 1e300;
  bad(o, "options.scale");
  for (double slope : {std::nan(""), std::numeric_limits<double>::infinity(), 1e300}) {
    o = {};
    o.alibi = {slope};
    bad(o, "options.alibi[0]");
  }
  // In double the same values are fine where they are finite.
  const row_matrix<double> qd = q.cast<double>(), kd = k.cast<double>(), vd = v.cast<double>();
  row_matrix<double> od(4, 8);
  o = {};
  o.scale = 1e300;
  emask::masked_attention(qd, kd, vd, m, od, o);  // huge scores: a finite result or NaN, no error
  o = {};
  o.alibi = {1e300};
  REQUIRE_NOTHROW(emask::masked_attention(qd, kd, vd, m, od, o));
}

TEST_CASE("softmax scale is checked in the kernel's scalar type (item 5)", "[options]") {
  const row_matrix<float> x = ramp<float>(3, 5, 0.4);
  row_matrix<float> y = row_matrix<float>::Constant(3, 5, 7.0f);
  emask::softmax_options o;
  o.scale = 1e39;
  REQUIRE_THROWS_WITH(emask::masked_softmax(x, emask::causal(), y, o),
                      Contains("masked_softmax") && Contains("options.scale"));
  REQUIRE((y.array() == 7.0f).all());
  const row_matrix<double> xd = x.cast<double>();
  row_matrix<double> yd(3, 5);
  REQUIRE_NOTHROW(emask::masked_softmax(xd, emask::causal(), yd, o));
}

TEST_CASE("merge_attention checks every shard before it writes, and names it (item 13)",
          "[merge]") {
  std::vector<row_matrix<float>> parts{ramp<float>(3, 2, 0.1), ramp<float>(3, 2, 0.2),
                                       ramp<float>(2, 2, 0.3)};
  std::vector<emask::lse_vector<float>> lses(3, emask::lse_vector<float>::Zero(3));
  row_matrix<float> out = row_matrix<float>::Constant(3, 2, 7.0f);
  emask::lse_vector<float> lse = emask::lse_vector<float>::Constant(3, 7.0f);
  REQUIRE_THROWS_WITH(emask::merge_attention(parts, lses, out, lse),
                      Contains("merge_attention:") && Contains("parts[2]"));
  CHECK((out.array() == 7.0f).all());
  CHECK((lse.array() == 7.0f).all());
  parts[2] = ramp<float>(3, 2, 0.3);
  lses[1] = emask::lse_vector<float>::Zero(4);
  REQUIRE_THROWS_WITH(emask::merge_attention(parts, lses, out, lse), Contains("lses[1]"));
  CHECK((out.array() == 7.0f).all());
  lses[1] = emask::lse_vector<float>::Zero(3);
  REQUIRE_NOTHROW(emask::merge_attention(parts, lses, out, lse));
  // Equal lse: the plain average of the three shards.
  const row_matrix<float> avg = (parts[0] + parts[1] + parts[2]) / 3.0f;
  CHECK((out - avg).cwiseAbs().maxCoeff() < 1e-6f);
  CHECK(std::abs(lse[0] - std::log(3.0f)) < 1e-6f);
}

TEMPLATE_TEST_CASE("results do not depend on the buffers' alignment (item 8)", "[align]", float,
                   double) {
  using S = TestType;
  const Index rows = 9, cols = 131, d = 24;
  const auto mask = emask::sliding_window(40, 3) & emask::key_padding::from_lengths({120}, cols);
  // The same scores at every offset of a larger buffer, output likewise.
  std::vector<S> xbuf(static_cast<std::size_t>(rows * cols + 16)),
      ybuf(static_cast<std::size_t>(rows * cols + 16));
  const row_matrix<S> x = ramp<S>(rows, cols, 0.37);
  for (auto var : {emask_test::softmax_variant::tiled, emask_test::softmax_variant::fused,
                   emask_test::softmax_variant::naive}) {
    emask_test::softmax_options o;
    o.variant = var;
    row_matrix<S> ref(rows, cols);
    emask_test::masked_softmax(x, mask, ref, o);
    for (Index off = 1; off < 8; ++off) {
      Eigen::Map<row_matrix<S>> xm(xbuf.data() + off, rows, cols),
          ym(ybuf.data() + (8 - off), rows, cols);
      xm = x;
      emask_test::masked_softmax(xm, mask, ym, o);
      INFO("variant " << int(var) << " offset " << off);
      REQUIRE(std::memcmp(ym.data(), ref.data(), sizeof(S) * rows * cols) == 0);
    }
  }
  // Attention: q, k, v and out at every offset.
  const row_matrix<S> q = ramp<S>(rows, d, 0.3), k = ramp<S>(cols, d, 0.5),
                      v = ramp<S>(cols, d, 0.9);
  std::vector<S> qb(static_cast<std::size_t>(rows * d + 16)),
      kb(static_cast<std::size_t>(cols * d + 16)), vb(kb.size()), ob(qb.size());
  for (auto var : {emask_test::attention_variant::tiled, emask_test::attention_variant::decode,
                   emask_test::attention_variant::naive}) {
    emask_test::attention_options o;
    o.variant = var;
    row_matrix<S> ref(rows, d);
    emask_test::masked_attention(q, k, v, mask, ref, o);
    for (Index off = 1; off < 8; ++off) {
      Eigen::Map<row_matrix<S>> qm(qb.data() + off, rows, d), km(kb.data() + 8 - off, cols, d),
          vm(vb.data() + off, cols, d), om(ob.data() + (off + 3) % 8, rows, d);
      qm = q;
      km = k;
      vm = v;
      emask_test::masked_attention(qm, km, vm, mask, om, o);
      INFO("attention variant " << int(var) << " offset " << off);
      REQUIRE(std::memcmp(om.data(), ref.data(), sizeof(S) * rows * d) == 0);
    }
  }
}

TEST_CASE("kernel options at their extremes: a result or an emask::error, never UB",
          "[options][domain]") {
  const Index big = std::numeric_limits<Index>::max();
  const row_matrix<double> q = ramp<double>(3, 4, 0.3), k = ramp<double>(5, 4, 0.6);
  row_matrix<double> out(3, 4), want(3, 4), y(3, 5), ywant(3, 5);
  emask::masked_attention(q, k, k, emask::causal::bottom_right(3, 5), want);
  emask::masked_softmax(q * k.transpose(), emask::causal::bottom_right(3, 5), ywant);
  for (Index off : {big, big - 1, emask::unbounded, emask::unbounded - 2}) {
    emask::attention_options o;
    o.q_offset = off;
    REQUIRE_THROWS_WITH(emask::masked_attention(q, k, k, emask::causal(), out, o),
                        Contains("options.q_offset"));
    o = {};
    o.k_offset = off;
    REQUIRE_THROWS_WITH(emask::masked_attention(q, k, k, emask::causal(), out, o),
                        Contains("options.k_offset"));
    emask::softmax_options so;
    so.q_offset = off;
    REQUIRE_THROWS_WITH(emask::masked_softmax(q * k.transpose(), emask::causal(), y, so),
                        Contains("options.q_offset"));
  }
  // Large but representable offsets work: causal is the same at every shift of both.
  emask::attention_options far;
  far.q_offset = far.k_offset = emask::unbounded / 2;
  emask::masked_attention(q, k, k, emask::causal::with_diagonal(2), out, far);
  CHECK((out - want).cwiseAbs().maxCoeff() < 1e-12);
  // Thread counts: 1, a few, absurd (clamped; results never depend on it).
  for (int threads : {1, 2, 3, 1 << 30}) {
    emask::attention_options o;
    o.threads = threads;
    emask::masked_attention(q, k, k, emask::causal::bottom_right(3, 5), out, o);
    CHECK((out - want).cwiseAbs().maxCoeff() == 0);
    emask::softmax_options so;
    so.threads = threads;
    emask::masked_softmax(q * k.transpose(), emask::causal::bottom_right(3, 5), y, so);
    CHECK((y - ywant).cwiseAbs().maxCoeff() == 0);
  }
}
