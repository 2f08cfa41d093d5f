/// \file
/// \brief Conditional (autoregressive) MultiDiscrete action masks: the legal values of head i
/// depend on the values chosen for heads 0..i-1, and a head may be unused for some prefixes.
///
/// The policy is the chain rule pi(a) = prod_i pi_i(a_i | a_<i), where pi_i is the softmax of
/// head i's logits restricted to the values legal given the prefix a_<i (Huang and Ontanon,
/// "A Closer Look at Invalid Action Masking in Policy Gradient Algorithms", 2020, section 5,
/// and the autoregressive action heads of AlphaStar, Vinyals et al. 2019: action type first,
/// then its arguments). Logits are [batch x sum(nvec)] in the flat MultiDiscrete layout of
/// action_mask: the network emits every head's logits at once, and only the mask of head i
/// depends on a_<i (sb3-contrib's MaskableMultiCategoricalDistribution with a per-prefix mask;
/// rl_games' multi-discrete heads). Sampling goes head by head; log_prob and entropy are sums
/// over the heads the chosen prefix uses; an unused head is written as conditional_unused (-1)
/// and contributes nothing.
///
/// The rule (which values are legal, which heads are used) is either a conditional_table (per
/// head i a table of prod_{j<i} n_j prefixes x n_i flags, shared by the batch or per row) or a
/// pair of callables (conditional_from_callback). conditional_table::from_joint and
/// conditional_to_joint convert between a joint mask over the flattened space (flat index
/// sum_i a_i prod_{j>i} n_j) and the factorized rule.
///
/// Where emask differs from the references: sb3-contrib has no conditional masks (the user
/// recomputes the whole flat mask per step); emask reports a used head without a legal value at
/// a reached prefix as emask::error (naming the row, the head and the prefix) instead of
/// producing NaN, and never reads the logits of an unused head or of a masked value.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "emask/rl/policy.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief The value of an unused head in an action matrix (the prefix does not use the head).
inline constexpr Index conditional_unused = -1;

/// \brief The values chosen for heads 0..size()-1 (conditional_unused for an unused head), as
/// passed to the callables of a conditional rule. A view: valid during the call only.
class action_prefix {
 public:
  /// \brief A view of \p n values at \p data.
  constexpr action_prefix(const Index* data, Index n) noexcept : data_(data), n_(n) {}
  /// \brief Number of heads already chosen (the head being decided is head size()).
  constexpr Index size() const noexcept { return n_; }
  /// \brief The value of head \p j < size(), or conditional_unused.
  Index operator[](Index j) const {
    EMASK_ASSERT(j >= 0 && j < n_);
    return data_[j];
  }
  /// \brief The values, contiguous.
  constexpr const Index* data() const noexcept { return data_; }

 private:
  const Index* data_;
  Index n_;
};

/// \brief The default "used" callable of conditional_from_callback: every head is used.
struct all_heads_used {
  /// \brief Always true.
  constexpr bool operator()(Index, Index, action_prefix) const noexcept { return true; }
};

/// \brief A conditional rule given by callables: `legal(b, i, prefix, a)` (row, head, prefix =
/// values of heads 0..i-1, value of head i) and `used(b, i, prefix)` (whether head i is used
/// at all after this prefix), both returning something convertible to bool. They are called only
/// for prefixes that are reached (by sampling or by the given actions), and must be pure: the
/// same arguments give the same answer. Build one with conditional_from_callback.
template <class Legal, class Used = all_heads_used>
class conditional_callback {
 public:
  /// \brief The rule over \p space with the two callables.
  conditional_callback(action_space space, Legal legal, Used used)
      : space_(std::move(space)), legal_(std::move(legal)), used_(std::move(used)) {}
  /// \brief The MultiDiscrete space: head i has space().size(i) values.
  const action_space& space() const noexcept { return space_; }
  /// \brief Number of heads.
  Index heads() const noexcept { return space_.sub_spaces(); }
  /// \brief The legality callable.
  const Legal& legal_fn() const noexcept { return legal_; }
  /// \brief The used-head callable.
  const Used& used_fn() const noexcept { return used_; }

 private:
  action_space space_;
  Legal legal_;
  Used used_;
};

/// \brief A conditional rule in which every head is used: `legal(b, i, prefix, a)`.
template <class Legal>
conditional_callback<std::decay_t<Legal>> conditional_from_callback(const action_space& space,
                                                                    Legal&& legal) {
  static_assert(
      std::is_invocable_r_v<bool, const std::decay_t<Legal>&, Index, Index, action_prefix, Index>,
      "emask::conditional_from_callback: pass a callable legal(Index b, Index i, "
      "emask::action_prefix prefix, Index a) returning bool");
  return {space, std::forward<Legal>(legal), all_heads_used{}};
}

/// \brief A conditional rule with unused heads: `legal(b, i, prefix, a)` and `used(b, i,
/// prefix)`; legal is not called for an unused head.
template <class Legal, class Used>
conditional_callback<std::decay_t<Legal>, std::decay_t<Used>> conditional_from_callback(
    const action_space& space, Legal&& legal, Used&& used) {
  static_assert(
      std::is_invocable_r_v<bool, const std::decay_t<Legal>&, Index, Index, action_prefix, Index>,
      "emask::conditional_from_callback: pass a callable legal(Index b, Index i, "
      "emask::action_prefix prefix, Index a) returning bool");
  static_assert(std::is_invocable_r_v<bool, const std::decay_t<Used>&, Index, Index, action_prefix>,
                "emask::conditional_from_callback: pass a callable used(Index b, Index i, "
                "emask::action_prefix prefix) returning bool");
  return {space, std::forward<Legal>(legal), std::forward<Used>(used)};
}

/// \brief A conditional rule as lookup tables. For head i, prefixes(i) = prod_{j<i} n_j rows
/// (prefix index p = sum_{j<i} a_j prod_{j<l<i} n_l, an unused head counting as 0) of n_i
/// legal flags (true = legal), and one used flag per prefix. Either shared by every batch row
/// or one set of tables per row. Starts with everything legal and used.
///
/// Rows of prefixes that are never reached (an earlier value is illegal, or an unused earlier
/// head has a nonzero value in the index) are never read and may hold anything.
class conditional_table {
 public:
  /// \brief Tables for \p batch rows (row b of a call reads table row b). \pre batch >= 0.
  conditional_table(action_space space, Index batch) : space_(std::move(space)) {
    if (batch < 0) detail::fail_argument("conditional_table", "batch", batch, ">= 0");
    allocate("conditional_table", batch, false);
  }
  /// \brief One set of tables read by every row of a call, whatever the batch.
  static conditional_table shared(action_space space) {
    conditional_table t(std::move(space), tag{});
    t.allocate("conditional_table::shared", 1, true);
    return t;
  }

  /// \brief The rule of a joint mask [batch x prod(nvec)] (flat index sum_i a_i prod_{j>i}
  /// n_j), one set of tables per row: value a of head i is legal after prefix p iff some
  /// completion of (p, a) is jointly legal; every head is used. Every row needs a legal joint
  /// action. conditional_to_joint gives the joint mask back exactly.
  template <class Derived>
  static conditional_table from_joint(const action_space& space,
                                      const Eigen::DenseBase<Derived>& joint) {
    conditional_table t(space, tag{});
    t.allocate("conditional_table::from_joint", joint.rows(), false);
    t.fill_from_joint("conditional_table::from_joint", joint);
    return t;
  }
  /// \brief Same for a joint mask of one row [1 x prod(nvec)], shared by every batch row.
  template <class Derived>
  static conditional_table shared_from_joint(const action_space& space,
                                             const Eigen::DenseBase<Derived>& joint) {
    const char* where = "conditional_table::shared_from_joint";
    if (joint.rows() != 1)
      detail::fail_argument(where, "joint", detail::concat(joint.rows(), " x ", joint.cols()),
                            "one row (a joint mask shared by the batch)");
    conditional_table t(space, tag{});
    t.allocate(where, 1, true);
    t.fill_from_joint(where, joint);
    return t;
  }

  /// \brief The MultiDiscrete space.
  const action_space& space() const noexcept { return space_; }
  /// \brief Number of heads.
  Index heads() const noexcept { return space_.sub_spaces(); }
  /// \brief Whether one set of tables serves every row.
  bool is_shared() const noexcept { return shared_; }
  /// \brief Number of table rows: the batch, or 1 when shared.
  Index rows() const noexcept { return rows_; }
  /// \brief Number of prefixes of head \p i: prod_{j<i} n_j (1 for head 0).
  Index prefixes(Index i) const {
    if (i < 0 || i >= heads())
      detail::fail_argument("conditional_table::prefixes", "i", i, "a head in [0, ", heads(), ")");
    return prefixes_[static_cast<std::size_t>(i)];
  }
  /// \brief Legal flags of head \p i for table row \p r: [prefixes(i) x n_i], row p = prefix p.
  Eigen::Block<bool_matrix> legal(Index r, Index i) {
    check_ri(r, i);
    return legal_[static_cast<std::size_t>(i)].block(r * prefixes(i), 0, prefixes(i),
                                                     space_.size(i));
  }
  /// \brief Legal flags of head \p i for table row \p r (read only).
  Eigen::Block<const bool_matrix> legal(Index r, Index i) const {
    check_ri(r, i);
    return legal_[static_cast<std::size_t>(i)].block(r * prefixes(i), 0, prefixes(i),
                                                     space_.size(i));
  }
  /// \brief Used flags of head \p i for table row \p r: [1 x prefixes(i)].
  Eigen::Block<bool_matrix> used(Index r, Index i) {
    check_ri(r, i);
    return used_[static_cast<std::size_t>(i)].block(r, 0, 1, prefixes(i));
  }
  /// \brief Used flags of head \p i for table row \p r (read only).
  Eigen::Block<const bool_matrix> used(Index r, Index i) const {
    check_ri(r, i);
    return used_[static_cast<std::size_t>(i)].block(r, 0, 1, prefixes(i));
  }
  /// \brief The prefix index of head \p i for the values \p prefix of heads 0..i-1
  /// (conditional_unused counts as 0). \pre every value is in [-1, n_j).
  Index prefix_index(Index i, const Index* prefix) const {
    Index p = 0;
    for (Index j = 0; j < i; ++j) p = p * space_.size(j) + (prefix[j] < 0 ? 0 : prefix[j]);
    return p;
  }

  /// \brief The n_i legal flags of head \p i, table row \p r, prefix \p p, or nullptr when the
  /// head is unused there (what the conditional functions read; no checks).
  const bool* head_flags(Index r, Index i, Index p) const noexcept {
    const auto si = static_cast<std::size_t>(i);
    const Index row = r * prefixes_[si] + p;
    if (!used_[si].data()[row]) return nullptr;
    return legal_[si].data() + row * space_.size(i);
  }

 private:
  struct tag {};
  conditional_table(action_space space, tag) : space_(std::move(space)) {}

  void check_ri(Index r, Index i) const {
    if (i < 0 || i >= heads())
      detail::fail_argument("conditional_table", "i", i, "a head in [0, ", heads(), ")");
    if (r < 0 || r >= rows_)
      detail::fail_argument("conditional_table", "r", r, "a table row in [0, ", rows_,
                            shared_ ? ") (a shared table has one row: 0)" : ")");
  }

  void allocate(const char* where, Index rows, bool shared) {
    shared_ = shared;
    rows_ = rows;
    const Index k = space_.sub_spaces();
    const Index big = (std::numeric_limits<Index>::max)() / 4;
    prefixes_.assign(static_cast<std::size_t>(k), 1);
    Index p = 1;
    for (Index i = 0; i < k; ++i) {
      prefixes_[static_cast<std::size_t>(i)] = p;
      const Index n = space_.size(i);
      if (p > big / n || (rows > 0 && p * n > big / rows))
        detail::fail_argument(where, "space", detail::concat("nvec with prefixes of head ", i),
                              "tables whose size prod_{j<=i} n_j x rows fits in an Index");
      if (i + 1 < k) p *= n;
    }
    legal_.clear();
    used_.clear();
    for (Index i = 0; i < k; ++i) {
      const Index pi = prefixes_[static_cast<std::size_t>(i)];
      legal_.push_back(bool_matrix::Constant(rows * pi, space_.size(i), true));
      used_.push_back(bool_matrix::Constant(rows, pi, true));
    }
  }

  template <class Derived>
  void fill_from_joint(const char* where, const Eigen::DenseBase<Derived>& joint_in) {
    using T = typename Derived::Scalar;
    static_assert(std::is_same<T, bool>::value || std::is_integral<T>::value,
                  "emask::conditional_table::from_joint: pass boolean (or 0/1 integer) flags");
    const Index k = space_.sub_spaces();
    const Index last = k - 1;
    const Index total = prefixes_[static_cast<std::size_t>(last)] * space_.size(last);
    if (joint_in.cols() != total)
      detail::fail_argument(where, "joint", detail::concat(joint_in.rows(), " x ", joint_in.cols()),
                            "rows x ", total, " (prod(nvec) columns)");
    for (Index r = 0; r < rows_; ++r) {
      bool any = false;
      for (Index j = 0; j < total && !any; ++j) any = joint_in(r, j) != T(0);
      if (!any)
        detail::fail_argument(where, "joint", detail::concat("no legal joint action in row ", r),
                              "at least one legal joint action in every row");
    }
    // Level i (head i's table, prefixes(i) x n_i flattened) is the OR of level i + 1 over the
    // values of head i + 1; the last level is the joint mask itself.
    for (Index r = 0; r < rows_; ++r) {
      bool* lv = legal_[static_cast<std::size_t>(last)].data() + r * total;
      for (Index j = 0; j < total; ++j) lv[j] = joint_in(r, j) != T(0);
      for (Index i = last - 1; i >= 0; --i) {
        const Index size = prefixes_[static_cast<std::size_t>(i)] * space_.size(i);
        const Index next = space_.size(i + 1);
        const bool* up = legal_[static_cast<std::size_t>(i + 1)].data() + r * size * next;
        bool* out = legal_[static_cast<std::size_t>(i)].data() + r * size;
        for (Index q = 0; q < size; ++q) {
          bool any = false;
          for (Index a = 0; a < next; ++a) any = any || up[q * next + a];
          out[q] = any;
        }
      }
    }
  }

  action_space space_;
  bool shared_ = false;
  Index rows_ = 0;
  std::vector<Index> prefixes_;
  std::vector<bool_matrix> legal_;  // head i: [rows * prefixes(i) x n_i]
  std::vector<bool_matrix> used_;   // head i: [rows x prefixes(i)]
};

/// \brief Whether R is a conditional rule (conditional_table or conditional_callback).
template <class R>
struct is_conditional_rule : std::false_type {};
/// \brief conditional_table is a rule.
template <>
struct is_conditional_rule<conditional_table> : std::true_type {};
/// \brief conditional_callback is a rule.
template <class L, class U>
struct is_conditional_rule<conditional_callback<L, U>> : std::true_type {};

/// \brief The legal flags of every head at given prefixes, in the flat layout: what
/// conditional_masks_at returns.
struct conditional_step_masks {
  bool_matrix legal;  ///< [batch x sum(nvec)], true = legal at the row's prefix; all false on
                      ///< an unused head
  bool_matrix used;   ///< [batch x heads], true = the head is used at the row's prefix
};

namespace detail {

template <class Rule>
void check_rule_type() {
  static_assert(is_conditional_rule<Rule>::value,
                "emask::conditional_*: pass a conditional_table or the result of "
                "conditional_from_callback as the rule");
}

/// Rows a rule can serve: a per-row table only its own batch.
inline void check_rule_batch(const char* where, const conditional_table& t, Index batch) {
  if (!t.is_shared() && t.rows() != batch)
    fail_argument(where, "rule", concat("a table of ", t.rows(), " rows"), "a table of ", batch,
                  " rows (the batch) or a shared table");
}
template <class L, class U>
void check_rule_batch(const char*, const conditional_callback<L, U>&, Index) {}

/// Head i's legal flags of row b after \p prefix (n_i values written to \p out); returns
/// whether the head is used (an unused head writes all false). \p pidx is the table index.
inline bool rule_head(const conditional_table& t, Index b, Index i, const Index*, Index pidx,
                      bool* out) {
  const Index n = t.space().size(i);
  const bool* f = t.head_flags(t.is_shared() ? 0 : b, i, pidx);
  if (f == nullptr) {
    std::memset(out, 0, static_cast<std::size_t>(n) * sizeof(bool));
    return false;
  }
  std::memcpy(out, f, static_cast<std::size_t>(n) * sizeof(bool));
  return true;
}
template <class L, class U>
bool rule_head(const conditional_callback<L, U>& c, Index b, Index i, const Index* prefix, Index,
               bool* out) {
  const Index n = c.space().size(i);
  const action_prefix pre(prefix, i);
  if (!static_cast<bool>(c.used_fn()(b, i, pre))) {
    for (Index a = 0; a < n; ++a) out[a] = false;
    return false;
  }
  for (Index a = 0; a < n; ++a) out[a] = static_cast<bool>(c.legal_fn()(b, i, pre, a));
  return true;
}

/// The table index after head i: p * n_i + a (a = 0 for an unused head). Unsigned, so that a
/// callback rule over a space too large for tables (whose index nobody reads) cannot overflow.
inline Index next_prefix_index(Index p, Index n, Index a) noexcept {
  return static_cast<Index>(static_cast<std::uint64_t>(p) * static_cast<std::uint64_t>(n) +
                            static_cast<std::uint64_t>(a < 0 ? 0 : a));
}

/// "(a_0, a_1, ...)" for error messages; "() (head 0)" for the empty prefix.
inline std::string prefix_text(const Index* prefix, Index i) {
  if (i == 0) return "()";
  std::string s = "(";
  for (Index j = 0; j < i; ++j) s += concat(j ? ", " : "", prefix[j]);
  return s + ")";
}

[[noreturn]] inline void fail_dead_head(const char* where, Index b, Index i, const Index* prefix) {
  fail_argument(
      where, "rule",
      concat("no legal value of head ", i, " in row ", b, " after prefix ", prefix_text(prefix, i)),
      "at least one legal value of every used head at every reached prefix");
}

inline bool any_flag(const bool* f, Index n) noexcept {
  bool any = false;
  for (Index a = 0; a < n; ++a) any = any || f[a];
  return any;
}

template <class S>
void check_conditional_logits(const char* where, Index rows, Index cols, const action_space& sp) {
  check_policy_scalar<S>();
  if (cols != sp.width())
    fail_argument(where, "logits", concat(rows, " x ", cols), "batch x ", sp.width(),
                  " (sum(nvec) of the rule's space)");
  if (rows > Index(0xFFFFFFFF))
    fail_argument(where, "logits", concat(rows, " rows"), "at most 2^32 - 1 rows");
}

/// The per-head masks of every row at given prefixes: legal[i] is [batch x n_i] (all false on
/// an unused head), used is [batch x heads], canon the actions with -1 at unused heads.
struct head_masks {
  std::vector<bool_matrix> legal;
  bool_matrix used;
  action_matrix canon;
};

/// Checks the given actions against the rule (shape, range, legality at their own prefix, dead
/// heads) and returns the masks at those prefixes. An unused head accepts -1 or any value in
/// [0, n_i) and is canonicalized to -1.
template <class Rule, class DerivedA>
head_masks masks_at_actions(const char* where, const Rule& rule, Index batch,
                            const Eigen::DenseBase<DerivedA>& actions) {
  static_assert(std::is_integral<typename DerivedA::Scalar>::value,
                "emask::conditional_*: pass integer actions, [batch x heads]");
  const action_space& sp = rule.space();
  const Index k = sp.sub_spaces();
  if (actions.rows() != batch || actions.cols() != k)
    fail_argument(where, "actions", concat(actions.rows(), " x ", actions.cols()), batch, " x ", k,
                  " (batch x heads)");
  head_masks m;
  m.used.resize(batch, k);
  m.canon.resize(batch, k);
  for (Index i = 0; i < k; ++i) m.legal.emplace_back(batch, sp.size(i));
  for (Index b = 0; b < batch; ++b) {
    Index* pre = m.canon.data() + b * k;
    Index pidx = 0;
    for (Index i = 0; i < k; ++i) {
      const Index n = sp.size(i);
      bool* f = m.legal[static_cast<std::size_t>(i)].data() + b * n;
      const bool used = rule_head(rule, b, i, pre, pidx, f);
      m.used(b, i) = used;
      const auto raw = static_cast<Index>(actions(b, i));
      const bool in_range = raw >= 0 && raw < n;
      if (!used) {
        if (!(in_range || raw == -1))
          fail_element(where, "actions", concat(b, ", ", i), raw, "-1 or a value in [0, ", n,
                       ") at head ", i, ", which prefix ", prefix_text(pre, i), " leaves unused");
        pre[i] = conditional_unused;
        pidx = next_prefix_index(pidx, n, 0);
        continue;
      }
      if (!any_flag(f, n)) fail_dead_head(where, b, i, pre);
      if (!in_range)
        fail_element(where, "actions", concat(b, ", ", i), raw, "a value in [0, ", n, ") of head ",
                     i);
      const Index a = raw;
      if (!f[a])
        fail_element(where, "actions", concat(b, ", ", i), raw, "a legal value of head ", i,
                     " after prefix ", prefix_text(pre, i));
      pre[i] = a;
      pidx = next_prefix_index(pidx, n, a);
    }
  }
  return m;
}

/// Softmax (Log = false) or log-softmax (Log = true) of head i's logit block under its masks,
/// into out [batch x n_i]. Rows where the head is unused are left as the kernel writes them and
/// must be ignored; rows where it is used are checked (non-finite log-sum-exp -> error naming
/// row, head and prefix). \p prefixes holds the rows' values of heads 0..i-1 (stride heads).
template <bool Log, class S>
void head_softmax(const char* where,
                  const Eigen::Ref<const row_matrix<S>, 0, Eigen::OuterStride<>>& x,
                  const action_space& sp, Index i, const bool_matrix& hm, const bool_matrix& used,
                  const action_matrix& prefixes, mask_fill fill, row_matrix<S>& out) {
  const Index batch = x.rows(), off = sp.offset(i), n = sp.size(i);
  Eigen::Matrix<S, Eigen::Dynamic, 1> lse(batch);
  const softmax_options o;
  Eigen::Ref<row_matrix<S>> y(out.middleCols(off, n));
  if (fill == mask_fill::negative_infinity) {
    if (Log)
      masked_log_softmax(fused, x.middleCols(off, n), as_mask(hm), y, lse, o);
    else
      masked_softmax(fused, x.middleCols(off, n), as_mask(hm), y, lse, o);
  } else {
    // sb3-contrib: where(legal, logits, -1e8), then an ordinary softmax of the head. -infinity
    // on every legal value would hand the head to the -1e8 entries: an error, as in policy.hpp.
    for (Index b = 0; b < batch; ++b) {
      if (!used(b, i)) continue;
      bool live = false;
      for (Index a = 0; a < n; ++a)
        live = live || (hm(b, a) && !(x(b, off + a) < std::numeric_limits<S>::lowest()));
      if (!live)
        fail_argument(
            where, "logits",
            concat("-infinity at every legal value in row ", b, ", head ", i, " after prefix ",
                   prefix_text(prefixes.data() + b * sp.sub_spaces(), i)),
            finite_logits_expected);
    }
    const row_matrix<S> filled =
        hm.select(x.middleCols(off, n).array(), static_cast<S>(sb3_mask_value)).matrix();
    const bool_matrix all = bool_matrix::Constant(batch, n, true);
    if (Log)
      masked_log_softmax(fused, filled, as_mask(all), y, lse, o);
    else
      masked_softmax(fused, filled, as_mask(all), y, lse, o);
  }
  for (Index b = 0; b < batch; ++b)
    if (used(b, i) && !is_finite(lse[b]))
      fail_argument(where, "logits",
                    concat("a non-finite log-sum-exp (", lse[b], ") in row ", b, ", head ", i,
                           " after prefix ", prefix_text(prefixes.data() + b * sp.sub_spaces(), i)),
                    finite_logits_expected);
}

/// Log-probabilities of every head at the given prefixes plus the masks: the shared first half
/// of log_prob, entropy and their gradients.
template <bool Log, class Rule, class Derived, class DerivedA>
head_masks conditional_softmax_at(const char* where, const Eigen::MatrixBase<Derived>& logits,
                                  const Rule& rule, const Eigen::DenseBase<DerivedA>& actions,
                                  mask_fill fill, row_matrix<typename Derived::Scalar>& out) {
  using S = typename Derived::Scalar;
  check_rule_type<Rule>();
  const action_space& sp = rule.space();
  check_conditional_logits<S>(where, logits.rows(), logits.cols(), sp);
  check_fill(where, fill);
  check_rule_batch(where, rule, logits.rows());
  head_masks m = masks_at_actions(where, rule, logits.rows(), actions);
  const Eigen::Ref<const row_matrix<S>, 0, Eigen::OuterStride<>> x(logits.derived());
  out.resize(x.rows(), x.cols());
  if (x.rows() == 0) return m;  // no column blocks of an empty buffer
  for (Index i = 0; i < sp.sub_spaces(); ++i)
    head_softmax<Log, S>(where, x, sp, i, m.legal[static_cast<std::size_t>(i)], m.used, m.canon,
                         fill, out);
  return m;
}

template <class Rule, class Derived, class DerivedA>
row_matrix<typename Derived::Scalar> conditional_log_prob_heads(
    const char* where, const Eigen::MatrixBase<Derived>& logits, const Rule& rule,
    const Eigen::DenseBase<DerivedA>& actions, mask_fill fill) {
  using S = typename Derived::Scalar;
  row_matrix<S> lp;
  const head_masks m = conditional_softmax_at<true>(where, logits, rule, actions, fill, lp);
  const action_space& sp = rule.space();
  row_matrix<S> out = row_matrix<S>::Zero(logits.rows(), sp.sub_spaces());
  for (Index b = 0; b < logits.rows(); ++b)
    for (Index i = 0; i < sp.sub_spaces(); ++i)
      if (m.used(b, i)) out(b, i) = lp(b, sp.offset(i) + m.canon(b, i));
  return out;
}

template <class Rule, class Derived, class DerivedA>
row_matrix<typename Derived::Scalar> conditional_entropy_heads(
    const char* where, const Eigen::MatrixBase<Derived>& logits, const Rule& rule,
    const Eigen::DenseBase<DerivedA>& actions, mask_fill fill) {
  using S = typename Derived::Scalar;
  row_matrix<S> lp;
  const head_masks m = conditional_softmax_at<true>(where, logits, rule, actions, fill, lp);
  const action_space& sp = rule.space();
  row_matrix<S> out = row_matrix<S>::Zero(logits.rows(), sp.sub_spaces());
  for (Index b = 0; b < logits.rows(); ++b)
    for (Index i = 0; i < sp.sub_spaces(); ++i) {
      if (!m.used(b, i)) continue;
      const bool* f = m.legal[static_cast<std::size_t>(i)].data() + b * sp.size(i);
      S h = S(0);
      for (Index a = 0; a < sp.size(i); ++a) {
        const S l = lp(b, sp.offset(i) + a);
        // A legal -infinity logit has p = 0 and adds nothing (never 0 * -inf).
        if (f[a] && !is_neg_inf(l)) h -= std::exp(l) * l;  // bits: -ffast-math safe
      }
      out(b, i) = h;
    }
  return out;
}

/// Depth-first walk over the complete actions a rule allows for row b: leaf(a) for each, with
/// -1 at unused heads. A used head without a legal value at a reached prefix raises.
template <class Rule, class Leaf>
void walk_rule(const char* where, const Rule& rule, Index b, Index i, Index pidx, Index* a,
               bool* flags, Leaf& leaf) {
  const action_space& sp = rule.space();
  if (i == sp.sub_spaces()) {
    leaf(static_cast<const Index*>(a));
    return;
  }
  const Index n = sp.size(i);
  bool* f = flags + sp.offset(i);  // one slice per level: deeper levels do not overwrite it
  if (!rule_head(rule, b, i, a, pidx, f)) {
    a[i] = conditional_unused;
    walk_rule(where, rule, b, i + 1, next_prefix_index(pidx, n, 0), a, flags, leaf);
    return;
  }
  if (!any_flag(f, n)) fail_dead_head(where, b, i, a);
  for (Index v = 0; v < n; ++v) {
    if (!f[v]) continue;
    a[i] = v;
    walk_rule(where, rule, b, i + 1, next_prefix_index(pidx, n, v), a, flags, leaf);
  }
}

/// prod(nvec), or a named error when it does not fit in an Index.
inline Index joint_size(const char* where, const action_space& sp) {
  Index total = 1;
  for (Index i = 0; i < sp.sub_spaces(); ++i) {
    if (total > (std::numeric_limits<Index>::max)() / sp.size(i))
      fail_argument(where, "space", "nvec with prod(nvec) beyond an Index",
                    "a joint space prod(nvec) that fits in an Index");
    total *= sp.size(i);
  }
  return total;
}

}  // namespace detail

/// \brief Samples a complete action per row, head by head, [batch x heads]: head i of row b is
/// drawn from the softmax of its logits over the values legal after the row's sampled prefix,
/// or written as conditional_unused (-1) when the prefix leaves it unused.
///
/// Draws: row b reads the Philox word stream (at.seed, at.sample, purpose::rl_conditional,
/// index = b); head i always uses words 2i and 2i + 1 (used or not), which form a 53-bit
/// uniform u (uniform_double), and the value is the first legal one whose cumulative
/// probability exceeds u times the head's total (masked_sample's inverse CDF). The rows of a
/// call share the sample id (the step) as in masked_sample: the first k rows alone draw what
/// they draw in the batch. Never returns an illegal value.
/// \param logits [batch x sum(nvec)], float or double; \param rule a conditional_table or
/// conditional_from_callback(...); \param at {seed, step}.
template <class Derived, class Rule>
action_matrix conditional_sample(const Eigen::MatrixBase<Derived>& logits, const Rule& rule,
                                 random_address at) {
  using S = typename Derived::Scalar;
  const char* where = "conditional_sample";
  detail::check_rule_type<Rule>();
  const action_space& sp = rule.space();
  detail::check_conditional_logits<S>(where, logits.rows(), logits.cols(), sp);
  detail::check_rule_batch(where, rule, logits.rows());
  const Index batch = logits.rows(), k = sp.sub_spaces();
  action_matrix actions = action_matrix::Constant(batch, k, conditional_unused);
  if (batch == 0) return actions;
  const Eigen::Ref<const row_matrix<S>, 0, Eigen::OuterStride<>> x(logits.derived());

  // The uniforms of every (row, head) first: one stream per row, words 2i and 2i + 1.
  std::vector<double> u(static_cast<std::size_t>(batch * k));
  const bool threads = batch * sp.width() >= detail::softmax_parallel_threshold;
#if EMASK_HAS_OPENMP
#pragma omp parallel for schedule(static) if (threads)
#else
  (void)threads;
#endif
  for (Index b = 0; b < batch; ++b) {
    word_stream words(at.seed, at.sample, purpose::rl_conditional, static_cast<std::uint32_t>(b));
    for (Index i = 0; i < k; ++i) {
      const std::uint32_t w0 = words.next();
      const std::uint32_t w1 = words.next();
      u[static_cast<std::size_t>(b * k + i)] = uniform_double(w0, w1);
    }
  }

  row_matrix<S> probs(batch, sp.width());
  bool_matrix used(batch, k);
  std::vector<Index> pidx(static_cast<std::size_t>(batch), 0);
  bool_matrix hm;
  for (Index i = 0; i < k; ++i) {
    const Index n = sp.size(i), off = sp.offset(i);
    hm.resize(batch, n);
    // The rule's answers at each row's prefix (serial: a callback need not be thread-safe).
    for (Index b = 0; b < batch; ++b) {
      const Index* pre = actions.data() + b * k;
      bool* f = hm.data() + b * n;
      const bool u_i = detail::rule_head(rule, b, i, pre, pidx[static_cast<std::size_t>(b)], f);
      used(b, i) = u_i;
      if (u_i && !detail::any_flag(f, n)) detail::fail_dead_head(where, b, i, pre);
    }
    detail::head_softmax<false, S>(where, x, sp, i, hm, used, actions, mask_fill::negative_infinity,
                                   probs);
#if EMASK_HAS_OPENMP
#pragma omp parallel for schedule(static) if (threads)
#endif
    for (Index b = 0; b < batch; ++b) {
      Index& p = pidx[static_cast<std::size_t>(b)];
      if (!used(b, i)) {
        p = detail::next_prefix_index(p, n, 0);  // an unused head counts as 0 in the table index
        continue;
      }
      const Index a = detail::sample_row(probs.data() + b * sp.width() + off, hm.data() + b * n, n,
                                         u[static_cast<std::size_t>(b * k + i)]);
      actions(b, i) = a;
      p = detail::next_prefix_index(p, n, a);
    }
  }
  return actions;
}

/// \brief Log-probability of the given actions per (row, head), [batch x heads]: log pi_i(a_i |
/// a_<i) at used heads, 0 at unused ones. An unused head accepts conditional_unused (-1) or any
/// value in [0, n_i) and ignores it; a used head needs a value legal after the row's prefix
/// (else emask::error naming actions[row, head]).
/// \param logits [batch x sum(nvec)], the flat MultiDiscrete layout of the rule's space
/// \param rule a conditional_table or a conditional_callback
/// \param actions [batch x heads], e.g. from conditional_sample
/// \param fill mask_fill::negative_infinity, or sb3_compatible (-1e8 fills, as sb3-contrib).
template <class Derived, class Rule, class DerivedA>
row_matrix<typename Derived::Scalar> conditional_log_prob_per_head(
    const Eigen::MatrixBase<Derived>& logits, const Rule& rule,
    const Eigen::DenseBase<DerivedA>& actions, mask_fill fill = mask_fill::negative_infinity) {
  return detail::conditional_log_prob_heads("conditional_log_prob_per_head", logits, rule, actions,
                                            fill);
}

/// \brief Log-probability of the given complete actions, one per row: the sum over used heads
/// of log pi_i(a_i | a_<i), i.e. log pi(a) of the chain rule. Arguments as
/// conditional_log_prob_per_head.
template <class Derived, class Rule, class DerivedA>
Eigen::Matrix<typename Derived::Scalar, Eigen::Dynamic, 1> conditional_log_prob(
    const Eigen::MatrixBase<Derived>& logits, const Rule& rule,
    const Eigen::DenseBase<DerivedA>& actions, mask_fill fill = mask_fill::negative_infinity) {
  return detail::conditional_log_prob_heads("conditional_log_prob", logits, rule, actions, fill)
      .rowwise()
      .sum();
}

/// \brief Entropy of each used head given the row's prefix, [batch x heads] (0 at unused
/// heads): -sum over legal a of p log p of head i's distribution after a_<i.
template <class Derived, class Rule, class DerivedA>
row_matrix<typename Derived::Scalar> conditional_entropy_per_head(
    const Eigen::MatrixBase<Derived>& logits, const Rule& rule,
    const Eigen::DenseBase<DerivedA>& actions, mask_fill fill = mask_fill::negative_infinity) {
  return detail::conditional_entropy_heads("conditional_entropy_per_head", logits, rule, actions,
                                           fill);
}

/// \brief Entropy at the given (usually sampled) prefixes, one per row: the sum over used heads
/// of H(pi_i(. | a_<i)). Its expectation over a ~ pi is the joint entropy H(pi) (chain rule),
/// so it is an unbiased one-sample estimate of it (sb3-contrib sums per-head entropies the same
/// way for independent heads).
template <class Derived, class Rule, class DerivedA>
Eigen::Matrix<typename Derived::Scalar, Eigen::Dynamic, 1> conditional_entropy(
    const Eigen::MatrixBase<Derived>& logits, const Rule& rule,
    const Eigen::DenseBase<DerivedA>& actions, mask_fill fill = mask_fill::negative_infinity) {
  return detail::conditional_entropy_heads("conditional_entropy", logits, rule, actions, fill)
      .rowwise()
      .sum();
}

/// \brief Gradient of conditional_log_prob with respect to the logits, [batch x sum(nvec)]:
/// in head i's block onehot(a_i) - p_i at the values legal after the row's prefix when head i
/// is used, exactly 0 elsewhere (masked values and unused heads). The legal sets depend on the
/// actions only, not on the logits, so this is the exact gradient of log pi(a).
template <class Derived, class Rule, class DerivedA>
row_matrix<typename Derived::Scalar> conditional_log_prob_grad(
    const Eigen::MatrixBase<Derived>& logits, const Rule& rule,
    const Eigen::DenseBase<DerivedA>& actions) {
  using S = typename Derived::Scalar;
  row_matrix<S> g;
  const detail::head_masks m = detail::conditional_softmax_at<false>(
      "conditional_log_prob_grad", logits, rule, actions, mask_fill::negative_infinity, g);
  const action_space& sp = rule.space();
  for (Index b = 0; b < logits.rows(); ++b)
    for (Index i = 0; i < sp.sub_spaces(); ++i) {
      const Index off = sp.offset(i), n = sp.size(i);
      const bool* f = m.legal[static_cast<std::size_t>(i)].data() + b * n;
      if (!m.used(b, i)) {
        for (Index a = 0; a < n; ++a) g(b, off + a) = S(0);
        continue;
      }
      // Write a clean 0 (not -0.0) at masked values.
      for (Index a = 0; a < n; ++a) g(b, off + a) = f[a] ? S(-g(b, off + a)) : S(0);
      g(b, off + m.canon(b, i)) += S(1);
    }
  return g;
}

/// \brief The legal flags of every head at the given prefixes (flat layout) and which heads are
/// used: what an sb3-contrib style rollout buffer stores per step. The actions are checked as
/// in conditional_log_prob. \p actions is [batch x heads].
template <class Rule, class DerivedA>
conditional_step_masks conditional_masks_at(const Rule& rule,
                                            const Eigen::DenseBase<DerivedA>& actions) {
  const char* where = "conditional_masks_at";
  detail::check_rule_type<Rule>();
  detail::check_rule_batch(where, rule, actions.rows());
  const detail::head_masks m = detail::masks_at_actions(where, rule, actions.rows(), actions);
  const action_space& sp = rule.space();
  conditional_step_masks out{bool_matrix(actions.rows(), sp.width()), m.used};
  for (Index i = 0; i < sp.sub_spaces(); ++i)
    if (actions.rows() > 0)
      out.legal.middleCols(sp.offset(i), sp.size(i)) = m.legal[static_cast<std::size_t>(i)];
  return out;
}

/// \brief The joint index of each row's action: sum_i a_i prod_{j>i} n_j, an unused head
/// (conditional_unused) counting as 0. \p actions is [batch x heads] with values in [-1, n_i).
template <class DerivedA>
index_vector joint_action_index(const action_space& space,
                                const Eigen::DenseBase<DerivedA>& actions) {
  const char* where = "joint_action_index";
  static_assert(std::is_integral<typename DerivedA::Scalar>::value,
                "emask::joint_action_index: pass integer actions, [batch x heads]");
  detail::joint_size(where, space);
  if (actions.cols() != space.sub_spaces())
    detail::fail_argument(where, "actions", detail::concat(actions.rows(), " x ", actions.cols()),
                          "batch x ", space.sub_spaces(), " (batch x heads)");
  index_vector out(actions.rows());
  for (Index b = 0; b < actions.rows(); ++b) {
    Index j = 0;
    for (Index i = 0; i < space.sub_spaces(); ++i) {
      const auto a = static_cast<Index>(actions(b, i));
      if (a < -1 || a >= space.size(i))
        detail::fail_element(where, "actions", detail::concat(b, ", ", i), a,
                             "-1 or a value in [0, ", space.size(i), ")");
      j = j * space.size(i) + (a < 0 ? 0 : a);
    }
    out[b] = j;
  }
  return out;
}

/// \brief The joint mask of a rule, [batch x prod(nvec)]: true at the joint index of every
/// complete action the rule allows (an unused head counts as value 0, so each allowed action has
/// exactly one column). Walks the reachable prefixes; a used head without a legal value at a
/// reached prefix raises emask::error naming the row, the head and the prefix, so this also
/// validates a rule. \pre batch >= 0 (a per-row table needs its own batch).
template <class Rule>
bool_matrix conditional_to_joint(const Rule& rule, Index batch) {
  const char* where = "conditional_to_joint";
  detail::check_rule_type<Rule>();
  if (batch < 0) detail::fail_argument(where, "batch", batch, ">= 0");
  detail::check_rule_batch(where, rule, batch);
  const action_space& sp = rule.space();
  const Index total = detail::joint_size(where, sp);
  if (batch > 0 && total > (std::numeric_limits<Index>::max)() / batch)
    detail::fail_argument(where, "batch", batch, "a batch x prod(nvec) that fits in an Index");
  bool_matrix joint = bool_matrix::Constant(batch, total, false);
  std::vector<Index> a(static_cast<std::size_t>(sp.sub_spaces()));
  Eigen::Array<bool, Eigen::Dynamic, 1> flags(sp.width());
  for (Index b = 0; b < batch; ++b) {
    bool* row = joint.data() + b * total;
    auto leaf = [&](const Index* act) {
      Index j = 0;
      for (Index i = 0; i < sp.sub_spaces(); ++i) j = j * sp.size(i) + (act[i] < 0 ? 0 : act[i]);
      row[j] = true;
    };
    detail::walk_rule(where, rule, b, 0, 0, a.data(), flags.data(), leaf);
  }
  return joint;
}

EMASK_NAMESPACE_END
