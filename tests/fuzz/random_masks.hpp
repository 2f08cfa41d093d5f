// Random mask compositions for the reliability tests and the fuzz harness.
//
// Every generated mask comes with an independent reference predicate written from the builders'
// documented definitions (not from their keep()), so a test can check the mask and the kernels
// against plain loops. Masks are produced in two forms:
// - a concrete builder value (std::variant of the builder types), so kernels run on the real
//   types with their own tile and key-span answers;
// - a type-erased `dyn_mask` (a user-defined mask through the public mask_base interface) whose
//   nodes wrap builders and the library's own compositions `a & b`, `a | b`, `!a`, so random
//   expression trees of any shape cost no template instantiations per shape.
// Randomness comes from a `Source` with between(lo, hi), coin(p) and uniform(): the tests use
// a seeded generator, the fuzz harness decodes its input bytes.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <emask/emask.hpp>

namespace emask_rel {

using emask::Index;

/// splitmix64; portable across compilers and standard libraries.
class splitmix {
 public:
  explicit splitmix(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  Index between(Index lo, Index hi) {
    return lo + static_cast<Index>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  bool coin(double p = 0.5) { return uniform() < p; }
  /// Standard normal (Box-Muller on our own uniforms: portable).
  double normal() {
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  std::uint64_t s_;
};

/// Reference predicate over absolute positions: keep(b, q, k) (masks here ignore the head).
using ref_fn = std::function<bool(Index b, Index q, Index k)>;

// ------------------------------------------------------------------------------------------
// Type-erased mask
// ------------------------------------------------------------------------------------------
struct dyn_node {
  virtual ~dyn_node() = default;
  virtual bool keep(Index b, Index h, Index q, Index k) const = 0;
  virtual emask::tile_state tile(Index b, Index h, Index q0, Index q1, Index k0,
                                 Index k1) const = 0;
  virtual emask::key_span keys(Index b, Index h, Index q, Index k0, Index k1) const = 0;
  virtual void check(const emask::region& r, const char* where) const = 0;
};

template <class M>
struct dyn_leaf final : dyn_node {
  explicit dyn_leaf(M m_) : m(std::move(m_)) {}
  bool keep(Index b, Index h, Index q, Index k) const override { return m.keep(b, h, q, k); }
  emask::tile_state tile(Index b, Index h, Index q0, Index q1, Index k0, Index k1) const override {
    return m.tile(b, h, q0, q1, k0, k1);
  }
  emask::key_span keys(Index b, Index h, Index q, Index k0, Index k1) const override {
    return m.keys(b, h, q, k0, k1);
  }
  void check(const emask::region& r, const char* where) const override { m.check(r, where); }
  M m;
};

/// A mask expression defined through the public mask_base interface.
class dyn_mask : public emask::mask_base<dyn_mask> {
 public:
  static constexpr bool exact_tiles = false;
  dyn_mask() = default;
  template <class M>
  static dyn_mask wrap(const M& m) {
    dyn_mask d;
    d.n_ = std::make_shared<const dyn_leaf<M>>(m);
    return d;
  }
  bool keep(Index b, Index h, Index q, Index k) const { return n_->keep(b, h, q, k); }
  emask::tile_state tile(Index b, Index h, Index q0, Index q1, Index k0, Index k1) const {
    return n_->tile(b, h, q0, q1, k0, k1);
  }
  emask::key_span keys(Index b, Index h, Index q, Index k0, Index k1) const {
    return n_->keys(b, h, q, k0, k1);
  }
  void check(const emask::region& r, const char* where) const { n_->check(r, where); }

 private:
  std::shared_ptr<const dyn_node> n_;
};

// ------------------------------------------------------------------------------------------
// Leaves
// ------------------------------------------------------------------------------------------
using leaf_variant = std::variant<emask::causal, emask::sliding_window, emask::chunked,
                                  emask::prefix_lm, emask::key_padding, emask::query_padding,
                                  emask::key_flags, emask::document, emask::dense_mask>;

struct leaf {
  leaf_variant mask;
  ref_fn ref;
  std::string what;
};

/// The extent a generated mask must answer for: batch entries [0, batch), absolute query
/// positions [0, q_abs) and key positions [0, k_abs).
struct extent {
  Index batch = 1;
  Index q_abs = 0;
  Index k_abs = 0;
};

inline std::string str(Index v) { return std::to_string(v); }

template <class Source>
Index small_len(Source& r, Index hi) {
  // Skewed toward small values.
  const double u = r.uniform();
  return std::min<Index>(hi, static_cast<Index>(static_cast<double>(hi + 1) * u * u));
}

template <class Source>
leaf make_leaf(Source& r, const extent& e) {
  const Index QA = e.q_abs, KA = e.k_abs, B = e.batch;
  switch (r.between(0, 11)) {
    case 0: {  // causal top-left, maybe strict
      const bool strict = r.coin(0.3);
      emask::causal c = emask::causal();
      if (strict) c = c.strict();
      return {c, [strict](Index, Index q, Index k) { return strict ? k < q : k <= q; },
              strict ? "causal.strict()" : "causal()"};
    }
    case 1: {  // causal bottom-right, maybe strict
      const bool strict = r.coin(0.3);
      emask::causal c = emask::causal::bottom_right(QA, KA);
      if (strict) c = c.strict();
      const Index d = KA - QA;
      return {c, [strict, d](Index, Index q, Index k) { return strict ? k < q + d : k <= q + d; },
              std::string("causal::bottom_right(") + str(QA) + "," + str(KA) + ")" +
                  (strict ? ".strict()" : "")};
    }
    case 2: {  // causal with a diagonal per batch entry (variable-length caches)
      std::vector<Index> ql(static_cast<std::size_t>(B)), kl(static_cast<std::size_t>(B));
      for (Index b = 0; b < B; ++b) {
        ql[static_cast<std::size_t>(b)] = r.between(0, QA);
        kl[static_cast<std::size_t>(b)] = r.between(0, KA);
      }
      const emask::causal c = emask::causal::bottom_right(ql, kl);
      return {c,
              [ql, kl](Index b, Index q, Index k) {
                const auto i = static_cast<std::size_t>(b);
                return k <= q + kl[i] - ql[i];
              },
              "causal::bottom_right(per batch)"};
    }
    case 3: {  // sliding window
      const Index left = r.coin(0.15) ? emask::unbounded : small_len(r, 40);
      const Index right = r.coin(0.15) ? emask::unbounded : small_len(r, 40);
      const Index diag = r.between(-20, 20) + (r.coin(0.3) ? KA - QA : 0);
      const emask::sliding_window w(left, right, diag);
      return {w,
              [left, right, diag](Index, Index q, Index k) {
                const bool lo_ok = left >= emask::unbounded || k >= q + diag - left;
                const bool hi_ok = right >= emask::unbounded || k <= q + diag + right;
                return lo_ok && hi_ok;
              },
              "sliding_window(" + str(left) + "," + str(right) + "," + str(diag) + ")"};
    }
    case 4: {  // chunked
      const Index c = 1 + small_len(r, 63);
      return {emask::chunked(c), [c](Index, Index q, Index k) { return q / c == k / c; },
              "chunked(" + str(c) + ")"};
    }
    case 5: {  // prefix LM, one value or per batch entry
      if (r.coin()) {
        const Index p = r.between(0, KA + 2);
        return {emask::prefix_lm(p), [p](Index, Index q, Index k) { return k < p || k <= q; },
                "prefix_lm(" + str(p) + ")"};
      }
      std::vector<Index> p(static_cast<std::size_t>(B));
      for (auto& x : p) x = r.between(0, KA);
      return {emask::prefix_lm(emask::index_list(p)),
              [p](Index b, Index q, Index k) {
                const Index pb = p[static_cast<std::size_t>(b)];
                return k < pb || k <= q;
              },
              "prefix_lm(per batch)"};
    }
    case 6: {  // key padding: right, left or ranges
      std::vector<Index> s(static_cast<std::size_t>(B)), t(static_cast<std::size_t>(B));
      const Index kind = r.between(0, 2);
      for (Index b = 0; b < B; ++b) {
        const auto i = static_cast<std::size_t>(b);
        if (kind == 2) {
          s[i] = r.between(0, KA);
          t[i] = r.between(s[i], KA);
        } else {
          const Index len = r.coin(0.1) ? 0 : r.between(0, KA);
          s[i] = kind == 0 ? 0 : KA - len;
          t[i] = kind == 0 ? len : KA;
        }
      }
      emask::key_padding kp = emask::key_padding::from_ranges(s, t, KA);
      if (kind == 0) {
        std::vector<Index> len = t;
        kp = emask::key_padding::from_lengths(len, KA);
      } else if (kind == 1) {
        std::vector<Index> len(static_cast<std::size_t>(B));
        for (std::size_t i = 0; i < len.size(); ++i) len[i] = KA - s[i];
        kp = emask::key_padding::from_lengths_left(len, KA);
      }
      return {kp,
              [s, t](Index b, Index, Index k) {
                const auto i = static_cast<std::size_t>(b);
                return s[i] <= k && k < t[i];
              },
              "key_padding(kind " + str(kind) + ")"};
    }
    case 7: {  // query padding (fully masked rows)
      std::vector<Index> s(static_cast<std::size_t>(B)), t(static_cast<std::size_t>(B));
      for (Index b = 0; b < B; ++b) {
        const auto i = static_cast<std::size_t>(b);
        s[i] = r.between(0, QA);
        t[i] = r.between(s[i], QA);
      }
      return {emask::query_padding::from_ranges(s, t, QA),
              [s, t](Index b, Index q, Index) {
                const auto i = static_cast<std::size_t>(b);
                return s[i] <= q && q < t[i];
              },
              "query_padding"};
    }
    case 8: {  // key flags from a keep array or from pad tokens
      const double density = r.uniform();
      auto keep = std::make_shared<emask::bool_matrix>(B, KA);
      for (Index b = 0; b < B; ++b)
        for (Index k = 0; k < KA; ++k) (*keep)(b, k) = r.coin(density);
      emask::key_flags kf = emask::key_flags::from_keep(*keep);
      if (r.coin(0.3)) {
        Eigen::Array<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> ids(B, KA);
        for (Index b = 0; b < B; ++b)
          for (Index k = 0; k < KA; ++k) ids(b, k) = (*keep)(b, k) ? 7 + (k % 5) : 0;
        kf = emask::key_flags::from_tokens(emask::id_table(ids), 0);
      }
      return {kf, [keep](Index b, Index, Index k) { return (*keep)(b, k); }, "key_flags"};
    }
    case 9: {  // document mask: segment ids (self), from cu_seqlens, or separate q/k ids
      const Index kind = r.between(0, 2);
      if (kind == 1) {
        const Index n = std::max(QA, KA);
        std::vector<Index> cu{0};
        while (cu.back() < n) cu.push_back(std::min(n, cu.back() + 1 + small_len(r, 40)));
        if (cu.size() < 2 || r.coin(0.2)) cu.push_back(n);  // an empty document at the end
        auto ids = std::make_shared<std::vector<Index>>(static_cast<std::size_t>(n));
        for (std::size_t d = 0; d + 1 < cu.size(); ++d)
          for (Index p = cu[d]; p < cu[d + 1]; ++p) (*ids)[static_cast<std::size_t>(p)] = Index(d);
        return {emask::document::from_cu_seqlens(cu),
                [ids](Index, Index q, Index k) {
                  return (*ids)[static_cast<std::size_t>(q)] == (*ids)[static_cast<std::size_t>(k)];
                },
                "document::from_cu_seqlens"};
      }
      const Index n = std::max(QA, KA);
      using table = Eigen::Array<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
      const Index rows = r.coin(0.3) ? 1 : B;
      auto qi = std::make_shared<table>(rows, kind == 0 ? n : QA);
      auto ki = std::make_shared<table>(rows, kind == 0 ? n : KA);
      const Index docs = 1 + small_len(r, 6);
      for (Index b = 0; b < rows; ++b) {
        std::int64_t id = 0;
        for (Index p = 0; p < qi->cols(); ++p) {
          if (r.coin(0.1)) id = static_cast<std::int64_t>(r.between(0, docs));
          (*qi)(b, p) = id;
        }
        for (Index p = 0; p < ki->cols(); ++p) {
          if (r.coin(0.1)) id = static_cast<std::int64_t>(r.between(0, docs));
          (*ki)(b, p) = id;
        }
      }
      if (kind == 0) {
        return {emask::document::from_segment_ids(emask::id_table(*qi)),
                [qi](Index b, Index q, Index k) {
                  const Index rb = qi->rows() == 1 ? 0 : b;
                  return (*qi)(rb, q) == (*qi)(rb, k);
                },
                "document::from_segment_ids(self)"};
      }
      return {emask::document::from_segment_ids(emask::id_table(*qi), emask::id_table(*ki)),
              [qi, ki](Index b, Index q, Index k) {
                const Index rb = qi->rows() == 1 ? 0 : b;
                return (*qi)(rb, q) == (*ki)(rb, k);
              },
              "document::from_segment_ids(q, k)"};
    }
    case 10: {  // query flags
      auto keep = std::make_shared<emask::bool_matrix>(B, QA);
      const double density = r.uniform();
      for (Index b = 0; b < B; ++b)
        for (Index q = 0; q < QA; ++q) (*keep)(b, q) = r.coin(density);
      // query_flags is not in the variant (kept small): express it as a dense array.
      emask::bool_matrix dense(QA, KA);
      const Index bb = 0;
      for (Index q = 0; q < QA; ++q)
        for (Index k = 0; k < KA; ++k) dense(q, k) = (*keep)(bb, q);
      auto owned = std::make_shared<emask::bool_matrix>(dense);
      return {emask::to_mask(emask::bool_matrix(dense)),
              [owned](Index, Index q, Index k) { return (*owned)(q, k); }, "dense(query rows)"};
    }
    default: {  // dense random array (shared by every batch entry)
      auto keep = std::make_shared<emask::bool_matrix>(QA, KA);
      const double density = r.coin(0.2) ? (r.coin() ? 0.0 : 1.0) : r.uniform();
      // Blocky structure sometimes, so tiles can be full or empty.
      const Index block = r.coin(0.5) ? 1 : 1 + small_len(r, 32);
      for (Index q = 0; q < QA; ++q)
        for (Index k = 0; k < KA; ++k) {
          (*keep)(q, k) = (q / block + k / block) % 3 == 0 ? true : false;
        }
      if (block == 1)
        for (Index q = 0; q < QA; ++q)
          for (Index k = 0; k < KA; ++k) (*keep)(q, k) = r.coin(density);
      return {emask::to_mask(emask::bool_matrix(*keep)),
              [keep](Index, Index q, Index k) { return (*keep)(q, k); },
              "dense(block " + str(block) + ")"};
    }
  }
}

/// A random expression tree: a type-erased mask and its reference.
struct tree {
  dyn_mask mask;
  ref_fn ref;
  std::string what;
};

template <class Source>
tree make_tree(Source& r, const extent& e, int depth) {
  const Index op = depth <= 0 ? 0 : r.between(0, 4);
  if (op == 0 || op == 4) {
    leaf l = make_leaf(r, e);
    dyn_mask m = std::visit([](const auto& x) { return dyn_mask::wrap(x); }, l.mask);
    return {m, l.ref, l.what};
  }
  if (op == 3) {
    tree a = make_tree(r, e, depth - 1);
    ref_fn ra = a.ref;
    return {dyn_mask::wrap(!a.mask), [ra](Index b, Index q, Index k) { return !ra(b, q, k); },
            "!(" + a.what + ")"};
  }
  tree a = make_tree(r, e, depth - 1), c = make_tree(r, e, depth - 1);
  ref_fn ra = a.ref, rc = c.ref;
  if (op == 1)
    return {dyn_mask::wrap(a.mask & c.mask),
            [ra, rc](Index b, Index q, Index k) { return ra(b, q, k) && rc(b, q, k); },
            "(" + a.what + " & " + c.what + ")"};
  return {dyn_mask::wrap(a.mask | c.mask),
          [ra, rc](Index b, Index q, Index k) { return ra(b, q, k) || rc(b, q, k); },
          "(" + a.what + " | " + c.what + ")"};
}

/// The reference keep matrix of rows [q_off, q_off + lq) and keys [k_off, k_off + lk).
inline emask::bool_matrix reference_keep(const ref_fn& ref, Index b, Index q_off, Index k_off,
                                         Index lq, Index lk) {
  emask::bool_matrix m(lq, lk);
  for (Index i = 0; i < lq; ++i)
    for (Index j = 0; j < lk; ++j) m(i, j) = ref(b, q_off + i, k_off + j);
  return m;
}

}  // namespace emask_rel
