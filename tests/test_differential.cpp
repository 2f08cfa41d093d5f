// Differential tests: every kernel variant (masked_softmax / masked_log_softmax naive, fused,
// tiled; masked_attention naive, tiled, decode) on 10^4 random cases each (fixed seeds), in
// float and in double, against a plain float64 reference written here.
//
// Each variant runs on every case: softmax in float and double (masked_softmax on even cases,
// masked_log_softmax on odd ones), attention in float on even cases and double on odd ones.
// A case draws Lq, Lk = floor(300 u^3) (0..300, skewed small), D = 1 + floor(255 u^3), Dv,
// a batch entry, absolute offsets, and a mask: a builder value of its own type, a builder
// and'ed with causal, or a random expression tree (&, |, !) over builders (causal both
// alignments and strict, sliding_window, chunked, prefix_lm, key_padding, query_padding,
// key_flags, document, dense arrays). The mask is first compared with an independent
// predicate (materialize); the reference uses that predicate. One reference serves every
// variant and both scalar types (inputs are drawn as floats, so the double inputs are equal).
// Masked scores are overwritten with NaN, +-inf, +-1e38 or denormals in 30% of softmax cases.
//
// Error bounds (eps = machine epsilon of the scalar under test; see the comments at the
// checks): softmax p: |p - p_ref| <= 2 (4 eps max|s| + (Lk + 8) eps) p_ref + 2 min_normal;
// log-softmax and lse: |l - l_ref| <= 2 (4 eps max|s| + (Lk + 8) eps + eps |l_ref|);
// attention out: |o - o_ref| <= 2 max|v| (2 c_s + 2 (Lk + 8) eps) with the score error
// c_s = eps ((D + 4) A + 2 |alibi|), A = scale * max_j sum_d |q_d k_jd|.
// Masked entries (exact 0 / -inf) and fully masked rows (zeros, lse = -inf) are checked exactly.
//
// EMASK_DIFF_CASES overrides the number of cases (the sanitizer CI row may lower it).
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <emask/kernels/attention.hpp>
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
using dmat = row_matrix<double>;
using fmat = row_matrix<float>;

constexpr double inf = std::numeric_limits<double>::infinity();

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define EMASK_REL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define EMASK_REL_SANITIZED 1
#endif
#endif

/// 10^4 cases per variant; 2000 under sanitizers (about 10x slower); EMASK_DIFF_CASES overrides.
long case_count() {
  if (const char* e = std::getenv("EMASK_DIFF_CASES")) {
    const long n = std::strtol(e, nullptr, 10);
    if (n > 0) return n;
  }
#if defined(EMASK_REL_SANITIZED)
  return 2000;
#else
  return 10000;
#endif
}

Index skewed_len(splitmix& r, Index hi) {
  const double u = r.uniform();
  return static_cast<Index>(static_cast<double>(hi + 1) * u * u * u * 0.99999);
}

/// Tallies of one kernel variant: cases run and the first failure, described.
struct tally {
  long cases = 0;
  long failures = 0;
  std::string first;
  void fail(const std::string& what) {
    if (failures++ == 0) first = what;
  }
};

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

// ------------------------------------------------------------------------------------------
// Softmax
// ------------------------------------------------------------------------------------------
struct softmax_ref {
  dmat p, logp;
  Eigen::VectorXd lse;
  Eigen::VectorXd smax;  // max |scale * x| over kept keys of the row
  Eigen::VectorXi kept;
};

softmax_ref reference_softmax(const dmat& x, const emask::bool_matrix& keep, double scale) {
  const Index lq = x.rows(), lk = x.cols();
  softmax_ref r{dmat::Zero(lq, lk), dmat::Constant(lq, lk, -inf),
                Eigen::VectorXd::Constant(lq, -inf), Eigen::VectorXd::Zero(lq),
                Eigen::VectorXi::Zero(lq)};
  for (Index i = 0; i < lq; ++i) {
    double m = -inf;
    for (Index j = 0; j < lk; ++j)
      if (keep(i, j)) {
        const double s = scale * x(i, j);
        m = std::max(m, s);
        r.smax(i) = std::max(r.smax(i), std::abs(s));
        ++r.kept(i);
      }
    if (r.kept(i) == 0) continue;
    double sum = 0;
    for (Index j = 0; j < lk; ++j)
      if (keep(i, j)) sum += std::exp(scale * x(i, j) - m);
    const double l = m + std::log(sum);
    r.lse(i) = l;
    for (Index j = 0; j < lk; ++j)
      if (keep(i, j)) {
        r.p(i, j) = std::exp(scale * x(i, j) - l);
        r.logp(i, j) = scale * x(i, j) - l;
      }
  }
  return r;
}

template <class S, bool Log>
void check_softmax_output(const row_matrix<S>& out, const Eigen::Matrix<S, Eigen::Dynamic, 1>& lse,
                          const softmax_ref& ref, const emask::bool_matrix& keep, tally& t,
                          const std::string& what) {
  const double eps = std::numeric_limits<S>::epsilon();
  const double tiny = 2.0 * static_cast<double>(std::numeric_limits<S>::min());
  const Index lq = out.rows(), lk = out.cols();
  for (Index i = 0; i < lq; ++i) {
    // Score error 2 eps |s| (rounding of scale * x and of scale to S), doubled for the max
    // subtraction; exp and the sum of Lk terms add (Lk + 8) eps relative; factor 2 of margin.
    const double base = 4 * eps * ref.smax(i) + static_cast<double>(lk + 8) * eps;
    if (ref.kept(i) == 0) {
      if (!(lse(i) == -std::numeric_limits<S>::infinity()))
        return t.fail(what + ": fully masked row " + std::to_string(i) + " lse = " + fmt(lse(i)));
    } else if (!(std::abs(lse(i) - ref.lse(i)) <= 2 * (base + eps * std::abs(ref.lse(i))))) {
      return t.fail(what + ": row " + std::to_string(i) + " lse " + fmt(lse(i)) + " vs " +
                    fmt(ref.lse(i)));
    }
    for (Index j = 0; j < lk; ++j) {
      const double y = static_cast<double>(out(i, j));
      if (!keep(i, j)) {
        const bool ok = Log ? (y == -inf) : (y == 0.0 && !std::signbit(y));
        if (!ok)
          return t.fail(what + ": masked entry (" + std::to_string(i) + "," + std::to_string(j) +
                        ") = " + fmt(y));
        continue;
      }
      const double want = Log ? ref.logp(i, j) : ref.p(i, j);
      const double tol = Log ? 2 * (base + eps * std::abs(want)) : 2 * base * want + tiny;
      if (!(std::abs(y - want) <= tol))
        return t.fail(what + ": entry (" + std::to_string(i) + "," + std::to_string(j) +
                      ") = " + fmt(y) + ", reference " + fmt(want) + ", bound " + fmt(tol));
    }
  }
}

template <class S, class Mask>
void run_softmax_variants(const Mask& mask, const dmat& xd, const softmax_ref& ref,
                          const emask::bool_matrix& keep, double scale, Index b, bool log,
                          splitmix& r, tally* tallies, const std::string& what) {
  const row_matrix<S> x = xd.cast<S>();
  row_matrix<S> out(x.rows(), x.cols());
  Eigen::Matrix<S, Eigen::Dynamic, 1> lse(x.rows());
  const emask_test::softmax_variant variants[] = {emask_test::softmax_variant::naive,
                                                  emask_test::softmax_variant::fused,
                                                  emask_test::softmax_variant::tiled};
  for (int v = 0; v < 3; ++v) {
    emask_test::softmax_options o;
    o.scale = scale;
    o.variant = variants[v];
    o.tile_q = o.tile_k = r.coin(0.5) ? 1 + skewed_len(r, 80) : 128;
    o.slice.b = b;
    o.stream_bytes = r.coin(0.2) ? 0 : o.stream_bytes;
    const std::string w = what + " variant " + std::to_string(v) + " tile " +
                          std::to_string(o.tile_q) + (sizeof(S) == 4 ? " float" : " double");
    out.setConstant(S(123));
    lse.setConstant(S(123));
    if (!log) {
      emask_test::masked_softmax(x, mask, out, lse, o);
      check_softmax_output<S, false>(out, lse, ref, keep, tallies[v], "softmax " + w);
    } else {
      emask_test::masked_log_softmax(x, mask, out, lse, o);
      check_softmax_output<S, true>(out, lse, ref, keep, tallies[v], "log_softmax " + w);
    }
  }
}

// ------------------------------------------------------------------------------------------
// Attention
// ------------------------------------------------------------------------------------------
struct attn_ref {
  dmat out;
  Eigen::VectorXd lse;
  Eigen::VectorXd a;      // scale * max_j sum_d |q_d k_jd| over kept keys
  Eigen::VectorXd alibi;  // max |ALiBi term| over kept keys
  Eigen::VectorXi kept;
};

attn_ref reference_attention(const dmat& q, const dmat& k, const dmat& v,
                             const emask::bool_matrix& keep, double scale, double softcap,
                             double slope, Index alibi_shift) {
  const Index lq = q.rows(), lk = k.rows();
  attn_ref r{dmat::Zero(lq, v.cols()), Eigen::VectorXd::Constant(lq, -inf),
             Eigen::VectorXd::Zero(lq), Eigen::VectorXd::Zero(lq), Eigen::VectorXi::Zero(lq)};
  std::vector<double> s(static_cast<std::size_t>(lk));
  for (Index i = 0; i < lq; ++i) {
    double m = -inf;
    for (Index j = 0; j < lk; ++j) {
      if (!keep(i, j)) continue;
      double x = scale * q.row(i).dot(k.row(j));
      r.a(i) = std::max(r.a(i), scale * (q.row(i).cwiseAbs().dot(k.row(j).cwiseAbs())));
      if (softcap > 0) x = softcap * std::tanh(x / softcap);
      const double al = slope * static_cast<double>(alibi_shift + j - i);
      r.alibi(i) = std::max(r.alibi(i), std::abs(al));
      x += al;
      s[static_cast<std::size_t>(j)] = x;
      m = std::max(m, x);
      ++r.kept(i);
    }
    if (r.kept(i) == 0) continue;
    double sum = 0;
    for (Index j = 0; j < lk; ++j)
      if (keep(i, j)) sum += std::exp(s[static_cast<std::size_t>(j)] - m);
    for (Index j = 0; j < lk; ++j)
      if (keep(i, j)) r.out.row(i) += std::exp(s[static_cast<std::size_t>(j)] - m) / sum * v.row(j);
    r.lse(i) = m + std::log(sum);
  }
  return r;
}

template <class S>
void check_attention_output(const row_matrix<S>& out,
                            const Eigen::Matrix<S, Eigen::Dynamic, 1>& lse, const attn_ref& ref,
                            Index d, Index lk, double vmax, tally& t, const std::string& what) {
  const double eps = std::numeric_limits<S>::epsilon();
  for (Index i = 0; i < out.rows(); ++i) {
    if (ref.kept(i) == 0) {
      if (!(lse(i) == -std::numeric_limits<S>::infinity()))
        return t.fail(what + ": fully masked row " + std::to_string(i) + " lse = " + fmt(lse(i)));
      for (Index c = 0; c < out.cols(); ++c)
        if (!(out(i, c) == S(0)))
          return t.fail(what + ": fully masked row " + std::to_string(i) +
                        " out = " + fmt(out(i, c)));
      continue;
    }
    // Score error: a D-term dot product ((D + 4) eps A), the ALiBi addition (2 eps |alibi|).
    const double cs = eps * (static_cast<double>(d + 4) * ref.a(i) + 2 * ref.alibi(i));
    // Probabilities: relative error 2 cs (score and max) + (Lk + 8) eps (exp, sum, division);
    // the weighted sum of Lk values adds (Lk + 8) eps max|v|. Factor 2 of margin.
    const double sum_err = static_cast<double>(lk + 8) * eps;
    const double tol_out =
        2 * vmax * (2 * cs + 2 * sum_err) + 4 * static_cast<double>(std::numeric_limits<S>::min());
    const double tol_lse = 2 * (2 * cs + sum_err + eps * std::abs(ref.lse(i)));
    if (!(std::abs(static_cast<double>(lse(i)) - ref.lse(i)) <= tol_lse))
      return t.fail(what + ": row " + std::to_string(i) + " lse " + fmt(lse(i)) + " vs " +
                    fmt(ref.lse(i)) + ", bound " + fmt(tol_lse));
    for (Index c = 0; c < out.cols(); ++c) {
      const double y = static_cast<double>(out(i, c)), want = ref.out(i, c);
      if (!(std::abs(y - want) <= tol_out))
        return t.fail(what + ": out(" + std::to_string(i) + "," + std::to_string(c) +
                      ") = " + fmt(y) + ", reference " + fmt(want) + ", bound " + fmt(tol_out));
    }
  }
}

struct attn_case {
  dmat q, k, v;
  std::optional<double> scale;  // unset: 1 / sqrt(D)
  double softcap = 0, slope = 0;
  Index q_off = 0, k_off = 0, b = 0, heads = 1, head = 0;
  bool mask_offset = false;  // pass mask.offset(...) instead of options offsets
};

template <class S, class Mask>
void run_attention_variants(const Mask& mask, const attn_case& c, const attn_ref& ref, splitmix& r,
                            tally* tallies, const std::string& what) {
  const row_matrix<S> q = c.q.cast<S>(), k = c.k.cast<S>(), v = c.v.cast<S>();
  row_matrix<S> out(q.rows(), v.cols());
  Eigen::Matrix<S, Eigen::Dynamic, 1> lse(q.rows());
  const double vmax = v.size() ? static_cast<double>(v.cwiseAbs().maxCoeff()) : 0.0;
  const emask_test::attention_variant variants[] = {emask_test::attention_variant::naive,
                                                    emask_test::attention_variant::tiled,
                                                    emask_test::attention_variant::decode};
  for (int vi = 0; vi < 3; ++vi) {
    emask_test::attention_options o;
    o.variant = variants[vi];
    o.scale = c.scale;
    o.softcap = c.softcap;
    if (c.slope != 0) {
      o.alibi.assign(static_cast<std::size_t>(c.heads), 0.0);
      o.alibi[static_cast<std::size_t>(c.head)] = c.slope;
    }
    o.slice = {c.b, c.head};
    o.threads = 1;  // thread counts are test_metamorphic's subject; one thread here is fastest
    o.tile_q = r.coin(0.5) ? 1 + skewed_len(r, 70) : 128;
    o.tile_k = r.coin(0.5) ? 1 + skewed_len(r, 70) : 128;
    o.decode_chunk = r.coin(0.6) ? 1 + skewed_len(r, 200) : 512;
    const std::string w = what + " variant " + std::to_string(vi) + " tile_q " +
                          std::to_string(o.tile_q) + " tile_k " + std::to_string(o.tile_k) +
                          " chunk " + std::to_string(o.decode_chunk) +
                          (sizeof(S) == 4 ? " float" : " double");
    out.setConstant(S(123));
    lse.setConstant(S(123));
    if (c.mask_offset) {
      // (through dyn_mask: one instantiation of the kernels for every offset mask)
      emask_test::masked_attention(
          q, k, v, emask_rel::dyn_mask::wrap(mask.offset(c.q_off, c.k_off)), out, lse, o);
    } else {
      o.q_offset = c.q_off;
      o.k_offset = c.k_off;
      emask_test::masked_attention(q, k, v, mask, out, lse, o);
    }
    check_attention_output<S>(out, lse, ref, q.cols(), k.rows(), vmax, tallies[vi],
                              "attention " + w);
  }
}

// ------------------------------------------------------------------------------------------
// Case generation
// ------------------------------------------------------------------------------------------
struct sizes {
  Index lq, lk, q_off, k_off, batch, b;
};

sizes draw_sizes(splitmix& r) {
  sizes s{};
  s.lq = skewed_len(r, 300);
  s.lk = skewed_len(r, 300);
  s.q_off = r.coin(0.3) ? skewed_len(r, 60) : 0;
  s.k_off = r.coin(0.3) ? skewed_len(r, 60) : 0;
  s.batch = r.between(1, 3);
  s.b = r.between(0, s.batch - 1);
  return s;
}

/// Calls f(mask, ref, description) with a mask drawn in one of three forms.
template <class F>
void with_random_mask(splitmix& r, const sizes& s, F&& f) {
  const emask_rel::extent e{s.batch, s.q_off + s.lq, s.k_off + s.lk};
  const Index form = r.between(0, 5);
  if (form <= 1) {  // a builder of its own type
    emask_rel::leaf l = emask_rel::make_leaf(r, e);
    std::visit([&](const auto& m) { f(m, l.ref, l.what); }, l.mask);
  } else if (form == 2) {  // a builder and'ed with causal (a static composition)
    emask_rel::leaf l = emask_rel::make_leaf(r, e);
    const emask_rel::ref_fn lr = l.ref;
    const emask_rel::ref_fn ref = [lr](Index b, Index q, Index k) { return k <= q && lr(b, q, k); };
    // The composition is the library's and_mask<Builder, causal>, seen through dyn_mask (so
    // the kernels are not instantiated once more per builder).
    std::visit(
        [&](const auto& m) {
          f(emask_rel::dyn_mask::wrap(m & emask::causal()), ref, "(" + l.what + ") & causal()");
        },
        l.mask);
  } else {  // a random expression tree
    emask_rel::tree t = emask_rel::make_tree(r, e, static_cast<int>(r.between(1, 3)));
    f(t.mask, t.ref, t.what);
  }
}

/// The mask agrees with its reference predicate on the slice a kernel will see.
template <class Mask>
bool mask_matches(const Mask& mask, const emask_rel::ref_fn& ref, const sizes& s,
                  emask::bool_matrix& keep) {
  keep = emask_rel::reference_keep(ref, s.b, s.q_off, s.k_off, s.lq, s.lk);
  const emask::bool_matrix got =
      emask::materialize(mask.offset(s.q_off, s.k_off), s.lq, s.lk, s.b, 0);
  return (got == keep).all();
}

double draw_scale(splitmix& r) {
  switch (r.between(0, 4)) {
    case 0: return 1.0;
    case 1: return 0.125;
    case 2: return -0.7;
    case 3: return 0.01 + 3 * r.uniform();
    default: return 0.5;
  }
}

/// A float-representable normal value with standard deviation sd.
double fnormal(splitmix& r, double sd) {
  return static_cast<double>(static_cast<float>(sd * r.normal()));
}

}  // namespace

TEST_CASE("differential: masked_softmax and masked_log_softmax, every variant, float and double",
          "[differential][softmax]") {
  const long n = case_count();
#if EMASK_HAS_OPENMP
  // The cases are small: one thread avoids OpenMP start-up and spinning on a shared machine.
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(1);
#endif
  tally t[3];
  long mask_mismatch = 0;
  std::string first_mismatch;
  long fully_masked_rows = 0, poisoned = 0;
  splitmix r(0x5EED50F7ull);
  for (long c = 0; c < n; ++c) {
    const sizes s = draw_sizes(r);
    with_random_mask(
        r, s, [&](const auto& mask, const emask_rel::ref_fn& ref, const std::string& what) {
          emask::bool_matrix keep;
          if (!mask_matches(mask, ref, s, keep)) {
            if (mask_mismatch++ == 0) first_mismatch = what;
            return;
          }
          const double sd = r.coin(0.2) ? 30.0 : (r.coin(0.3) ? 0.01 : 2.0);
          const double scale = draw_scale(r);
          dmat x(s.lq, s.lk);
          for (Index i = 0; i < s.lq; ++i)
            for (Index j = 0; j < s.lk; ++j) x(i, j) = fnormal(r, sd);
          const softmax_ref ref_out = reference_softmax(x, keep, scale);
          // Masked scores may hold anything: the result must not change (the NaN policy).
          if (r.coin(0.3)) {
            ++poisoned;
            const double junk[] = {std::nan(""), inf, -inf, 1e38, -1e38, 1e-40};
            for (Index i = 0; i < s.lq; ++i)
              for (Index j = 0; j < s.lk; ++j)
                if (!keep(i, j) && r.coin(0.5)) x(i, j) = junk[r.between(0, 5)];
          }
          for (Index i = 0; i < s.lq; ++i) fully_masked_rows += ref_out.kept(i) == 0 ? 1 : 0;
          const std::string w = "case " + std::to_string(c) + " Lq " + std::to_string(s.lq) +
                                " Lk " + std::to_string(s.lk) + " offsets " +
                                std::to_string(s.q_off) + "," + std::to_string(s.k_off) + " b " +
                                std::to_string(s.b) + " scale " + fmt(scale) + " mask " + what;
          const auto shifted = mask.offset(s.q_off, s.k_off);
          // masked_softmax on even cases, masked_log_softmax on odd ones; float and double both.
          const bool log = (c % 2) == 1;
          run_softmax_variants<float>(shifted, x, ref_out, keep, scale, s.b, log, r, t, w);
          run_softmax_variants<double>(shifted, x, ref_out, keep, scale, s.b, log, r, t, w);
          for (auto& x_ : t) ++x_.cases;
        });
  }
  INFO("first mask mismatch: " << first_mismatch);
  CHECK(mask_mismatch == 0);
  const char* names[] = {"naive", "fused", "tiled"};
  for (int v = 0; v < 3; ++v) {
    INFO("softmax variant " << names[v] << ": " << t[v].cases << " cases, " << t[v].failures
                            << " failures; first: " << t[v].first);
    CHECK(t[v].failures == 0);
    CHECK(t[v].cases == n - mask_mismatch);
  }
  // The generator reaches the cases that matter.
  CHECK(fully_masked_rows > 0);
  CHECK(poisoned > 0);
#if EMASK_HAS_OPENMP
  omp_set_num_threads(saved_threads);
#endif
}

TEST_CASE("differential: masked_attention naive, tiled and decode, float and double",
          "[differential][attention]") {
  const long n = case_count();
  tally t[3];
  long mask_mismatch = 0, fully_masked_rows = 0, softcapped = 0, alibi = 0;
  std::string first_mismatch;
  splitmix r(0xA77E5710ull);
  for (long c = 0; c < n; ++c) {
    const sizes s = draw_sizes(r);
    with_random_mask(
        r, s, [&](const auto& mask, const emask_rel::ref_fn& ref, const std::string& what) {
          emask::bool_matrix keep;
          if (!mask_matches(mask, ref, s, keep)) {
            if (mask_mismatch++ == 0) first_mismatch = what;
            return;
          }
          attn_case ac;
          const Index d = 1 + skewed_len(r, 255);
          const Index dv = r.coin(0.5) ? d : 1 + skewed_len(r, 100);
          const double sd = r.coin(0.2) ? 3.0 : 1.0;
          ac.q.resize(s.lq, d);
          ac.k.resize(s.lk, d);
          ac.v.resize(s.lk, dv);
          for (Index i = 0; i < ac.q.size(); ++i) ac.q.data()[i] = fnormal(r, sd);
          for (Index i = 0; i < ac.k.size(); ++i) ac.k.data()[i] = fnormal(r, sd);
          for (Index i = 0; i < ac.v.size(); ++i) ac.v.data()[i] = fnormal(r, 1.0);
          if (!r.coin(0.6)) ac.scale = 0.05 + r.uniform();
          const double eff_scale = ac.scale ? *ac.scale : 1.0 / std::sqrt(static_cast<double>(d));
          ac.softcap = r.coin(0.15) ? 1.0 + 30 * r.uniform() : 0.0;
          ac.heads = r.between(1, 4);
          ac.head = r.between(0, ac.heads - 1);
          ac.slope = r.coin(0.15) ? std::ldexp(1.0, -static_cast<int>(r.between(1, 8))) : 0.0;
          softcapped += ac.softcap > 0 ? 1 : 0;
          alibi += ac.slope != 0 ? 1 : 0;
          ac.q_off = s.q_off;
          ac.k_off = s.k_off;
          ac.b = s.b;
          ac.mask_offset = r.coin(0.5);
          // ALiBi uses the options' positions (0 when the offsets are in the mask).
          const Index shift = ac.mask_offset ? 0 : s.k_off - s.q_off;
          const attn_ref ref_out =
              reference_attention(ac.q, ac.k, ac.v, keep, eff_scale, ac.softcap, ac.slope, shift);
          for (Index i = 0; i < s.lq; ++i) fully_masked_rows += ref_out.kept(i) == 0 ? 1 : 0;
          const std::string w =
              "case " + std::to_string(c) + " Lq " + std::to_string(s.lq) + " Lk " +
              std::to_string(s.lk) + " D " + std::to_string(d) + " Dv " + std::to_string(dv) +
              " offsets " + std::to_string(s.q_off) + "," + std::to_string(s.k_off) +
              (ac.mask_offset ? " (mask.offset)" : " (options)") + " b " + std::to_string(s.b) +
              " softcap " + fmt(ac.softcap) + " slope " + fmt(ac.slope) + " mask " + what;
          // float on even cases, double on odd ones (5000 cases each by default).
          if (c % 2 == 0) {
            run_attention_variants<float>(mask, ac, ref_out, r, t, w);
          } else {
            run_attention_variants<double>(mask, ac, ref_out, r, t, w);
          }
          for (auto& x_ : t) ++x_.cases;
        });
  }
  INFO("first mask mismatch: " << first_mismatch);
  CHECK(mask_mismatch == 0);
  const char* names[] = {"naive", "tiled", "decode"};
  for (int v = 0; v < 3; ++v) {
    INFO("attention variant " << names[v] << ": " << t[v].cases << " cases, " << t[v].failures
                              << " failures; first: " << t[v].first);
    CHECK(t[v].failures == 0);
    CHECK(t[v].cases == n - mask_mismatch);
  }
  CHECK(fully_masked_rows > 0);
  CHECK(softcapped > 0);
  CHECK(alibi > 0);
}
