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

#include <algorithm>
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
using leaf_variant =
    std::variant<emask::causal, emask::sliding_window, emask::chunked, emask::prefix_lm,
                 emask::key_padding, emask::query_padding, emask::key_flags, emask::document,
                 emask::dense_mask, emask::sink_window, emask::block_bidirectional,
                 emask::interval_union_mask, emask::column_interval_mask, emask::block_topk,
                 emask::tree_mask>;

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
  switch (r.between(0, 17)) {
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
    case 12: {  // sink window
      const Index n_sink = small_len(r, 8), window = small_len(r, 40);
      return {emask::sink_window(n_sink, window),
              [n_sink, window](Index, Index q, Index k) {
                return k <= q && (k < n_sink || q - k < window);
              },
              "sink_window(" + str(n_sink) + "," + str(window) + ")"};
    }
    case 13: {  // bidirectional groups over causal, one row per batch entry
      const Index len = std::max(QA, KA);
      auto ids = std::make_shared<std::vector<std::int64_t>>();
      std::int64_t next = 0;
      for (Index b = 0; b < B; ++b) {
        Index p = 0;
        while (p < len) {
          const Index run = 1 + small_len(r, 12);
          const std::int64_t id = r.coin(0.4) ? -1 : next++;
          for (Index i = 0; i < run && p < len; ++i, ++p) ids->push_back(id);
        }
      }
      Eigen::Matrix<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> t(B, len);
      for (Index i = 0; i < B * len; ++i) t.data()[i] = (*ids)[static_cast<std::size_t>(i)];
      return {emask::block_bidirectional(emask::id_table(t)),
              [ids, len](Index b, Index q, Index k) {
                const std::int64_t gq = (*ids)[static_cast<std::size_t>(b * len + q)];
                const std::int64_t gk = (*ids)[static_cast<std::size_t>(b * len + k)];
                return k <= q || (gq >= 0 && gq == gk);
              },
              "block_bidirectional"};
    }
    case 14: {  // row intervals: up to 3 per row, per batch entry
      const Index per_row = 1 + r.between(0, 2);
      std::vector<Index> starts, ends;
      for (Index b = 0; b < B; ++b)
        for (Index q = 0; q < QA; ++q) {
          Index at = 0;
          for (Index i = 0; i < per_row; ++i) {
            const Index a = std::min(KA, at + small_len(r, 20));
            const Index e2 = std::min(KA, a + small_len(r, 30));
            starts.push_back(a);
            ends.push_back(e2);
            at = e2 + 1;
          }
        }
      auto keep = std::make_shared<std::vector<bool>>(static_cast<std::size_t>(B * QA * KA), false);
      for (std::size_t row = 0; row < static_cast<std::size_t>(B * QA); ++row)
        for (Index i = 0; i < per_row; ++i) {
          const std::size_t slot =
              row * static_cast<std::size_t>(per_row) + static_cast<std::size_t>(i);
          for (Index k = starts[slot]; k < ends[slot]; ++k)
            (*keep)[row * static_cast<std::size_t>(KA) + static_cast<std::size_t>(k)] = true;
        }
      return {emask::interval_union_mask(emask::index_list(starts), emask::index_list(ends), QA, KA,
                                         per_row, {B, 1}),
              [keep, QA, KA](Index b, Index q, Index k) {
                return (*keep)[static_cast<std::size_t>((b * QA + q) * KA + k)];
              },
              "interval_union_mask(per_row " + str(per_row) + ")"};
    }
    case 15: {  // FlashMask column intervals, maybe causal
      std::vector<Index> lts, lte, uts, ute;
      for (Index b = 0; b < B; ++b)
        for (Index k = 0; k < KA; ++k) {
          const Index a = r.between(0, QA), c = r.between(0, QA);
          lts.push_back(std::min(a, c));
          lte.push_back(std::max(a, c));
          const Index u = r.coin(0.5) ? 0 : r.between(0, QA);
          uts.push_back(0);
          ute.push_back(u);
        }
      emask::column_interval_mask m(emask::index_list(lts), emask::index_list(lte),
                                    emask::index_list(uts), emask::index_list(ute), QA, KA, {B, 1});
      const bool causal = r.coin(0.5);
      const Index diag = r.between(-3, 3);
      if (causal) m = m.with_causal(diag);
      auto cols = std::make_shared<std::vector<Index>>();
      for (std::size_t i = 0; i < lts.size(); ++i) {
        cols->push_back(lts[i]);
        cols->push_back(lte[i]);
        cols->push_back(ute[i]);
      }
      return {m,
              [cols, KA, causal, diag](Index b, Index q, Index k) {
                const std::size_t c = static_cast<std::size_t>(b * KA + k) * 3;
                const bool lower = (*cols)[c] <= q && q < (*cols)[c + 1];
                const bool upper = q < (*cols)[c + 2];
                return !lower && !upper && (!causal || k <= q + diag);
              },
              std::string("column_interval_mask") + (causal ? ".with_causal()" : "")};
    }
    case 16: {  // top-k blocks from random scores (the chosen lists are the data)
      const Index bs = 1 + small_len(r, 16);
      const Index nqb = (QA + bs - 1) / bs, nkb = (KA + bs - 1) / bs;
      emask::row_matrix<float> scores(nqb, nkb);
      for (Index i = 0; i < scores.size(); ++i)
        scores.data()[i] = static_cast<float>(r.between(0, 5));  // ties on purpose
      const Index top_k = 1 + small_len(r, 6);
      const emask::block_topk sel = emask::block_topk::from_scores(scores, QA, KA, top_k, bs);
      auto chosen = std::make_shared<std::vector<std::vector<Index>>>();
      for (Index i = 0; i < sel.q_blocks(); ++i) chosen->push_back(sel.chosen(i));
      return {sel,
              [chosen, bs](Index, Index q, Index k) {
                if (k > q) return false;
                const auto& c = (*chosen)[static_cast<std::size_t>(q / bs)];
                return std::find(c.begin(), c.end(), k / bs) != c.end();
              },
              "block_topk(block " + str(bs) + ", top " + str(top_k) + ")"};
    }
    case 17: {  // speculative-decoding tree: QA draft tokens after KA - QA committed ones
      if (KA < QA) return make_leaf(r, e);
      const Index T = QA, P = KA - QA;
      auto parents = std::make_shared<std::vector<Index>>();
      for (Index i = 0; i < T; ++i)
        parents->push_back(i == 0 || r.coin(0.2) ? -1 : r.between(0, i - 1));
      return {emask::tree_mask(emask::index_list(*parents), P),
              [parents, P](Index, Index q, Index k) {
                if (k < P) return true;
                for (Index a = q; a >= 0; a = (*parents)[static_cast<std::size_t>(a)])
                  if (a == k - P) return true;
                return false;
              },
              "tree_mask(P " + str(P) + ")"};
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
