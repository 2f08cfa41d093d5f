/// \file
/// \brief Tree masks for speculative decoding (Medusa, EAGLE, SpecInfer, Sequoia): T draft
/// tokens after P committed ones, each with a parent; a draft token keeps the committed prefix,
/// its ancestors and itself.
///
/// The packed layouts engines exchange these masks in (FlashInfer's packbits, TensorRT-LLM's
/// spec_decoding_packed_mask) are in masks/tree_packing.hpp.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "emask/config.hpp"
#include "emask/core/bits.hpp"
#include "emask/core/index_list.hpp"
#include "emask/core/mask.hpp"
#include "emask/core/types.hpp"
#include "emask/error.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief The attention mask of a tree of T draft tokens after P committed tokens.
///
/// Draft token i has parent `parents[i]`: another draft token, or -1 when it attaches to the
/// committed prefix (a root; a forest has several). Query row i (0 <= i < T) is draft token i;
/// key position k < P is committed token k and key position P + j is draft token j, so a call
/// has at most T query rows and P + T keys. Row i keeps key k when
///
///     k < P  or  (k - P) is i or an ancestor of i.
///
/// The ancestor-or-self sets are stored as T rows of T bits (core/bits.hpp layout), built once
/// in O(T^2 / 64) words of memory and time; keep() is one bit test, keys() and tile() count bits
/// a word at a time: a tile costs O(rows x (keys / 64 + 1)) and its answer is exact. Tiles over
/// the prefix are full, so the kernels run the committed cache at dense speed.
///
/// Parents may come in any order (a child before its parent is fine); the constructor checks
/// that they form a forest and names the index of an out-of-range parent or of a cycle.
class tree_mask : public mask_base<tree_mask> {
 public:
  static constexpr bool exact_tiles = true;  ///< whether tile() answers are exact

  /// \brief The empty tree: no draft token, no prefix.
  tree_mask() = default;

  /// \brief A tree of `parents.size()` draft tokens after \p prefix_length committed ones;
  /// `parents[i]` is the parent of draft token i, or -1 for a root attached to the prefix.
  /// \pre prefix_length >= 0; every parents[i] in [-1, T), not i; no cycle;
  /// prefix_length + T <= emask::unbounded.
  tree_mask(const index_list& parents, Index prefix_length)
      : parents_(parents.values()), prefix_(prefix_length) {
    build("tree_mask");
  }

  /// \brief The tree whose ancestor-or-self sets are the rows of \p draft_keep (T x T: row i
  /// keeps column j when draft token i attends to draft token j), e.g. a mask read back from
  /// unpack_spec_decoding_mask(). Recovers the parents: the parent of i is the member of row i
  /// with the most members besides i.
  /// \pre draft_keep is square; every row is the row of its parent plus its own diagonal bit
  /// (a root's row is its diagonal bit alone); prefix_length >= 0.
  template <class Derived>
  static tree_mask from_ancestor_matrix(const Eigen::DenseBase<Derived>& draft_keep,
                                        Index prefix_length) {
    static_assert(std::is_same<typename Derived::Scalar, bool>::value,
                  "from_ancestor_matrix takes a bool keep array: compare a numeric array with 0 "
                  "first (keep != 0)");
    const char* where = "tree_mask::from_ancestor_matrix";
    if (draft_keep.rows() != draft_keep.cols())
      detail::fail_argument(where, "draft_keep",
                            detail::concat(draft_keep.rows(), " x ", draft_keep.cols()),
                            "a square T x T array (one row and one column per draft token)");
    if (prefix_length < 0) detail::fail_argument(where, "prefix_length", prefix_length, ">= 0");
    const Index t = draft_keep.rows();
    std::vector<Index> count(static_cast<std::size_t>(t), 0);
    for (Index i = 0; i < t; ++i) {
      if (!draft_keep(i, i))
        detail::fail_element(where, "draft_keep", i, row_text(draft_keep, i),
                             "a row that keeps its own draft token ", i, " (the diagonal)");
      for (Index j = 0; j < t; ++j) count[static_cast<std::size_t>(i)] += draft_keep(i, j) ? 1 : 0;
    }
    std::vector<Index> parents(static_cast<std::size_t>(t), -1);
    for (Index i = 0; i < t; ++i) {
      Index parent = -1;
      for (Index j = 0; j < t; ++j)
        if (j != i && draft_keep(i, j) &&
            (parent < 0 ||
             count[static_cast<std::size_t>(j)] > count[static_cast<std::size_t>(parent)]))
          parent = j;
      // Row i must be its parent's row plus i: then the counts fall by one per step up, so the
      // parent links cannot cycle.
      bool ok = parent < 0 ||
                count[static_cast<std::size_t>(parent)] == count[static_cast<std::size_t>(i)] - 1;
      for (Index j = 0; ok && parent >= 0 && j < t; ++j)
        ok = j == i || draft_keep(i, j) == draft_keep(parent, j);
      if (!ok)
        detail::fail_element(where, "draft_keep", i, row_text(draft_keep, i),
                             "the row of a tree: its parent's row (here row ", parent,
                             ") plus its own token");
      parents[static_cast<std::size_t>(i)] = parent;
    }
    return tree_mask(parents, prefix_length, where);
  }

  /// \brief Number of draft tokens T (the query rows).
  Index draft_length() const noexcept { return t_; }
  /// \brief Number of committed tokens P before the draft.
  Index prefix_length() const noexcept { return prefix_; }
  /// \brief Number of keys, P + T.
  Index key_length() const noexcept { return prefix_ + t_; }
  /// \brief The parent of every draft token (-1 for a root).
  const std::vector<Index>& parents() const noexcept { return parents_; }
  /// \brief The parent of draft token \p i (-1 for a root).
  Index parent(Index i) const {
    EMASK_ASSERT(i >= 0 && i < t_);
    return parents_[static_cast<std::size_t>(i)];
  }
  /// \brief Depth of draft token \p i: 0 for a root, parent's depth + 1 otherwise.
  Index depth(Index i) const {
    EMASK_ASSERT(i >= 0 && i < t_);
    return depth_[static_cast<std::size_t>(i)];
  }
  /// \brief The position id of every draft token, P + depth(i): the rotary (RoPE) position an
  /// engine gives it, as if its path were the sequence (TensorRT-LLM's
  /// spec_decoding_position_offsets are the depths).
  std::vector<Index> positions() const {
    std::vector<Index> out(depth_.size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = prefix_ + depth_[i];
    return out;
  }
  /// \brief Whether draft token \p a is draft token \p i or one of its ancestors.
  bool is_ancestor_or_self(Index a, Index i) const {
    EMASK_ASSERT(a >= 0 && a < t_);
    return ancestors(i).test(a);
  }
  /// \brief The ancestor-or-self set of draft token \p i: T bits, bit j set when token i keeps
  /// draft token j.
  bit_row ancestors(Index i) const {
    EMASK_ASSERT(i >= 0 && i < t_);
    return bit_row(words_.data() + i * wpr_, t_);
  }
  /// \brief The draft block of the mask, T x T (row i keeps column j when j is i or an
  /// ancestor of i): the part engines exchange, the prefix being kept by every row.
  bool_matrix draft_keep() const {
    bool_matrix out(t_, t_);
    for (Index i = 0; i < t_; ++i)
      for (Index j = 0; j < t_; ++j) out(i, j) = ancestors(i).test(j);
    return out;
  }

  /// \brief Whether draft token q keeps key position k.
  bool keep(Index, Index, Index q, Index k) const {
    if (k < prefix_) return true;
    return k - prefix_ < t_ && ancestors(q).test(k - prefix_);
  }

  /// \brief Kept keys of row q inside [k0, k1): the prefix run, then the ancestors; exact when
  /// they are one run.
  key_span keys(Index, Index, Index q, Index k0, Index k1) const {
    if (k0 >= k1) return detail::empty_span(k0);
    const bit_row row = ancestors(q);
    const Index d0 = (k0 > prefix_ ? k0 : prefix_) - prefix_;
    const Index d1 = (k1 < prefix_ + t_ ? k1 : prefix_ + t_) - prefix_;
    if (k0 < prefix_) {
      const Index prefix_end = k1 < prefix_ ? k1 : prefix_;
      const Index last = d0 < d1 ? row.last_end(d0, d1) : d0;
      if (last == d0) return {k0, prefix_end, true};
      const Index end = prefix_ + last;
      return {k0, end, (prefix_end - k0) + row.count(d0, last) == end - k0};
    }
    if (d0 >= d1) return detail::empty_span(k0);
    const key_span s = row.span(d0, d1);
    if (s.empty()) return detail::empty_span(k0);
    return {prefix_ + s.begin, prefix_ + s.end, s.exact};
  }

  /// \brief State of the tile [q0, q1) x [k0, k1), exact: prefix columns are kept by every row,
  /// draft columns are counted a word at a time per row.
  tile_state tile(Index, Index, Index q0, Index q1, Index k0, Index k1) const {
    if (q1 <= q0 || k1 <= k0) return tile_state::empty;
    const bool has_prefix = k0 < prefix_;
    const bool past_end = k1 > prefix_ + t_;  // keys no draft token keeps
    const Index d0 = (k0 > prefix_ ? k0 : prefix_) - prefix_;
    const Index d1 = (k1 < prefix_ + t_ ? k1 : prefix_ + t_) - prefix_;
    const Index width = d1 > d0 ? d1 - d0 : 0;
    if (width == 0)
      return has_prefix ? (past_end ? tile_state::partial : tile_state::full) : tile_state::empty;
    bool any = has_prefix, all = !past_end;
    for (Index q = q0; q < q1; ++q) {
      const Index n = ancestors(q).count(d0, d1);
      any = any || n > 0;
      all = all && n == width;
      if (any && !all) return tile_state::partial;
    }
    return any ? tile_state::full : tile_state::empty;
  }

  /// \brief Raises emask::error unless the call's query rows lie in [0, T) and its keys in
  /// [0, P + T); any batch entry and head.
  void check(const region& r, const char* where) const {
    detail::check_range(where, "query positions", r.q_begin, r.q_end, t_);
    detail::check_range(where, "key positions", r.k_begin, r.k_end, prefix_ + t_);
  }

 private:
  tree_mask(std::vector<Index> parents, Index prefix_length, const char* where)
      : parents_(std::move(parents)), prefix_(prefix_length) {
    build(where);
  }

  template <class Derived>
  static std::string row_text(const Eigen::DenseBase<Derived>& keep, Index i) {
    std::string s = "row {";
    Index shown = 0;
    for (Index j = 0; j < keep.cols(); ++j) {
      if (!keep(i, j)) continue;
      if (shown == 16) {
        s += ", ...";
        break;
      }
      s += detail::concat(shown ? ", " : "", j);
      ++shown;
    }
    return s + "}";
  }

  // Checks the parents, computes depths and the ancestor bits. Parents are walked up with a
  // state per token (0 unseen, 1 on the current path, 2 done), so each token is visited once.
  void build(const char* where) {
    if (prefix_ < 0) detail::fail_argument(where, "prefix_length", prefix_, ">= 0");
    const Index t = static_cast<Index>(parents_.size());
    if (t > unbounded - prefix_)
      detail::fail_argument(where, "parents", detail::concat(t, " entries"), "at most ",
                            unbounded - prefix_, " (prefix_length + T <= emask::unbounded)");
    for (Index i = 0; i < t; ++i) {
      const Index p = parents_[static_cast<std::size_t>(i)];
      if (p < -1 || p >= t)
        detail::fail_element(where, "parents", i, p, "a draft token index in [0, ", t,
                             ") or -1 (attached to the prefix)");
      if (p == i)
        detail::fail_element(where, "parents", i, p,
                             "another token's index or -1 (a token cannot be its own parent)");
    }
    const Index wpr = t / 64 + (t % 64 != 0 ? 1 : 0);
    const std::size_t limit = std::vector<std::uint64_t>().max_size();
    if (wpr != 0 && static_cast<std::size_t>(t) > limit / static_cast<std::size_t>(wpr))
      detail::fail_argument(where, "parents", detail::concat(t, " entries"),
                            "a tree whose T x T ancestor bits fit in a vector (", limit,
                            " 64-bit words)");
    std::vector<signed char> state(static_cast<std::size_t>(t), 0);
    std::vector<Index> depth(static_cast<std::size_t>(t), 0), order, path;
    order.reserve(static_cast<std::size_t>(t));
    for (Index i = 0; i < t; ++i) {
      Index j = i;
      path.clear();
      while (j != -1 && state[static_cast<std::size_t>(j)] == 0) {
        state[static_cast<std::size_t>(j)] = 1;
        path.push_back(j);
        j = parents_[static_cast<std::size_t>(j)];
      }
      if (j != -1 && state[static_cast<std::size_t>(j)] == 1) fail_cycle(where, j);
      Index d = j == -1 ? -1 : depth[static_cast<std::size_t>(j)];
      for (auto it = path.rbegin(); it != path.rend(); ++it) {
        depth[static_cast<std::size_t>(*it)] = ++d;
        state[static_cast<std::size_t>(*it)] = 2;
        order.push_back(*it);
      }
    }
    // Parents come before children in `order`: a row is its parent's row plus its own bit.
    std::vector<std::uint64_t> words(static_cast<std::size_t>(t * wpr), 0);
    for (const Index i : order) {
      std::uint64_t* row = words.data() + i * wpr;
      const Index p = parents_[static_cast<std::size_t>(i)];
      if (p >= 0)
        for (Index w = 0; w < wpr; ++w) row[w] = words[static_cast<std::size_t>(p * wpr + w)];
      row[i >> 6] |= std::uint64_t{1} << (i & 63);
    }
    t_ = t;
    wpr_ = wpr;
    depth_ = std::move(depth);
    words_ = std::move(words);
  }

  // Names the smallest index on the cycle through \p start and spells the cycle out.
  [[noreturn]] void fail_cycle(const char* where, Index start) const {
    Index smallest = start;
    for (Index j = parents_[static_cast<std::size_t>(start)]; j != start;
         j = parents_[static_cast<std::size_t>(j)])
      smallest = j < smallest ? j : smallest;
    std::string cycle = detail::concat(smallest);
    Index steps = 0;
    for (Index j = parents_[static_cast<std::size_t>(smallest)];; ++steps) {
      if (steps == 16) {
        cycle += " -> ...";
        break;
      }
      cycle += detail::concat(" -> ", j);
      if (j == smallest) break;
      j = parents_[static_cast<std::size_t>(j)];
    }
    detail::fail_element(where, "parents", smallest, parents_[static_cast<std::size_t>(smallest)],
                         "a forest, but following the parents from ", smallest, " loops: ", cycle);
  }

  std::vector<Index> parents_;
  Index prefix_ = 0;
  Index t_ = 0;
  Index wpr_ = 0;  // 64-bit words per ancestor row
  std::vector<Index> depth_;
  std::vector<std::uint64_t> words_;  // T rows of wpr_ words: the ancestor-or-self bits
};

EMASK_NAMESPACE_END
