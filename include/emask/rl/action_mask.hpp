/// \file
/// \brief Action masks for reinforcement learning: Discrete, MultiDiscrete and MultiBinary
/// action spaces, one flat keep-mask [batch x sum(nvec)] (true = legal action).
///
/// The layout is the one of sb3-contrib's MaskablePPO: a MultiDiscrete space with sizes
/// nvec = {n_0, n_1, ...} has one flat mask row of width n_0 + n_1 + ... whose columns
/// [off_i, off_i + n_i) belong to sub-space i; a MultiBinary(k) space is MultiDiscrete with
/// nvec = {2, 2, ..., 2} (each bit is its own two-way choice: column 2i allows bit i = 0,
/// column 2i + 1 allows bit i = 1). A Discrete(n) space is the special case nvec = {n}.
///
/// Every (row, sub-space) of an action_mask has at least one legal action: construction
/// checks it and raises emask::error naming the row and the sub-space.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "emask/core/index_list.hpp"
#include "emask/core/polarity.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/masks/dense.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Integer action indices, [batch x sub-spaces], row-major.
using action_matrix = Eigen::Matrix<Index, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// \brief One integer action (or count) per batch row.
using index_vector = Eigen::Matrix<Index, Eigen::Dynamic, 1>;

/// \brief The shape of an action space: sizes of its sub-spaces and their column offsets in the
/// flat mask. Discrete(n) has one sub-space of size n; MultiBinary(k) has k sub-spaces of size 2.
class action_space {
 public:
  /// \brief The kind of space, as in Gymnasium.
  enum class kind : unsigned char { discrete, multi_discrete, multi_binary };

  /// \brief Discrete(n). \pre n >= 1.
  static action_space discrete(Index n) {
    if (n < 1) detail::fail_argument("action_space::discrete", "n", n, ">= 1 action");
    return action_space(kind::discrete, std::vector<Index>{n});
  }
  /// \brief MultiDiscrete(nvec). \pre nvec non-empty, every entry >= 1.
  static action_space multi_discrete(const index_list& nvec) {
    const char* where = "action_space::multi_discrete";
    if (nvec.size() == 0)
      detail::fail_argument(where, "nvec", "an empty list", "at least one sub-space");
    Index width = 0;
    for (std::size_t i = 0; i < nvec.size(); ++i) {
      if (nvec[i] < 1) detail::fail_element(where, "nvec", i, nvec[i], ">= 1 action");
      if (nvec[i] > (std::numeric_limits<Index>::max)() - width)
        detail::fail_element(where, "nvec", i, nvec[i], "at most ",
                             (std::numeric_limits<Index>::max)() - width,
                             " (the flat width sum(nvec) must fit in an Index)");
      width += nvec[i];
    }
    return action_space(kind::multi_discrete, nvec.values());
  }
  /// \brief MultiBinary(k): k two-way choices, flat mask width 2k. \pre k >= 1.
  static action_space multi_binary(Index k) {
    if (k < 1) detail::fail_argument("action_space::multi_binary", "k", k, ">= 1 bit");
    if (static_cast<std::size_t>(k) > std::vector<Index>().max_size() ||
        k > (std::numeric_limits<Index>::max)() / 2)
      detail::fail_argument("action_space::multi_binary", "k", k, "at most ",
                            std::vector<Index>().max_size(),
                            " bits (one sub-space per bit, flat width 2k)");
    return action_space(kind::multi_binary, std::vector<Index>(static_cast<std::size_t>(k), 2));
  }

  /// \brief Discrete, MultiDiscrete or MultiBinary.
  kind type() const noexcept { return kind_; }
  /// \brief Number of sub-spaces (1 for Discrete, k for MultiBinary(k)).
  Index sub_spaces() const noexcept { return static_cast<Index>(nvec_.size()); }
  /// \brief Number of actions of sub-space \p i.
  Index size(Index i) const {
    EMASK_ASSERT(i >= 0 && i < sub_spaces());
    return nvec_[static_cast<std::size_t>(i)];
  }
  /// \brief First column of sub-space \p i in the flat mask.
  Index offset(Index i) const {
    EMASK_ASSERT(i >= 0 && i <= sub_spaces());
    return offsets_[static_cast<std::size_t>(i)];
  }
  /// \brief Width of the flat mask and of flat logits: sum(nvec).
  Index width() const noexcept { return offsets_.back(); }
  /// \brief The sub-space sizes.
  const std::vector<Index>& nvec() const noexcept { return nvec_; }

  /// \brief Same kind and same sub-space sizes.
  friend bool operator==(const action_space& a, const action_space& b) {
    return a.nvec_ == b.nvec_;
  }
  /// \brief Not operator==.
  friend bool operator!=(const action_space& a, const action_space& b) { return !(a == b); }

 private:
  action_space(kind k, std::vector<Index> nvec) : kind_(k), nvec_(std::move(nvec)) {
    offsets_.reserve(nvec_.size() + 1);
    offsets_.push_back(0);
    for (Index n : nvec_) offsets_.push_back(offsets_.back() + n);
  }
  kind kind_;
  std::vector<Index> nvec_;
  std::vector<Index> offsets_;
};

namespace detail {
/// Index of the largest value among the legal entries of a row (ties: lowest index), or -1 when
/// no entry is legal; *nan_at is set to a legal NaN position (or -1). One pass with selects
/// instead of branches on the (unpredictable) legal flags.
template <class RowX, class RowL>
Index legal_argmax(const RowX& x, const RowL& legal, Index* nan_at) {
  using S = typename RowX::Scalar;
  const Index n = x.size();
  S best = -std::numeric_limits<S>::infinity();
  Index best_i = -1, first_legal = -1, nan_i = -1;
  for (Index a = n - 1; a >= 0; --a) {
    const bool l = legal(a);
    const S v = x(a);
    nan_i = (l && is_nan(v)) ? a : nan_i;
    first_legal = l ? a : first_legal;
    // Backwards with >=: among equal maxima the lowest index wins.
    const bool better = l && v >= best;
    best = better ? v : best;
    best_i = better ? a : best_i;
  }
  *nan_at = nan_i;
  if (nan_i >= 0) return -1;
  return best_i >= 0 ? best_i : first_legal;
}
}  // namespace detail

/// \brief A validated action mask: flat keep flags [batch x space.width()], true = legal, with
/// at least one legal action in every (row, sub-space).
class action_mask {
 public:
  /// \brief Wraps \p legal (true = legal) for \p space.
  /// \pre legal.cols() == space.width(); every (row, sub-space) has a legal action. Raises
  /// emask::error naming the row and sub-space otherwise.
  action_mask(action_space space, bool_matrix legal)
      : space_(std::move(space)), legal_(std::move(legal)) {
    validate("action_mask");
  }

  /// \brief From any boolean (or 0/1 integer) Eigen array or matrix of keep flags.
  template <class Derived>
  static action_mask from_array(const action_space& space, const Eigen::DenseBase<Derived>& legal) {
    return action_mask(space, to_flags(legal));
  }
  /// \brief Discrete(legal.cols()) from an array [batch x n].
  template <class Derived>
  static action_mask discrete(const Eigen::DenseBase<Derived>& legal) {
    if (legal.cols() < 1)
      detail::fail_argument("action_mask::discrete", "legal",
                            detail::concat(legal.rows(), " x ", legal.cols()),
                            "at least one action column");
    return action_mask(action_space::discrete(legal.cols()), to_flags(legal));
  }
  /// \brief MultiDiscrete(nvec) from a flat array [batch x sum(nvec)].
  template <class Derived>
  static action_mask multi_discrete(const index_list& nvec,
                                    const Eigen::DenseBase<Derived>& legal) {
    return action_mask(action_space::multi_discrete(nvec), to_flags(legal));
  }
  /// \brief MultiBinary(legal.cols() / 2) from a flat array [batch x 2k]: column 2i allows bit
  /// i = 0, column 2i + 1 allows bit i = 1.
  template <class Derived>
  static action_mask multi_binary(const Eigen::DenseBase<Derived>& legal) {
    if (legal.cols() < 2 || legal.cols() % 2 != 0)
      detail::fail_argument("action_mask::multi_binary", "legal",
                            detail::concat(legal.rows(), " x ", legal.cols()),
                            "an even number >= 2 of columns (two per bit)");
    return action_mask(action_space::multi_binary(legal.cols() / 2), to_flags(legal));
  }

  /// \brief From a legality callback: `legal(b, i, a)` (row, sub-space, action within the
  /// sub-space) or `legal(b, j)` (row, flat column) returning something convertible to bool.
  /// \pre batch >= 0.
  template <class Legal>
  static action_mask from_callback(const action_space& space, Index batch, Legal&& legal) {
    if (batch < 0) detail::fail_argument("action_mask::from_callback", "batch", batch, ">= 0");
    bool_matrix flags(batch, space.width());
    for (Index b = 0; b < batch; ++b) {
      for (Index i = 0; i < space.sub_spaces(); ++i) {
        for (Index a = 0; a < space.size(i); ++a) {
          if constexpr (std::is_invocable_v<Legal&, Index, Index, Index>) {
            flags(b, space.offset(i) + a) = static_cast<bool>(legal(b, i, a));
          } else {
            static_assert(std::is_invocable_v<Legal&, Index, Index>,
                          "emask::action_mask::from_callback: pass a callable legal(b, i, a) "
                          "(row, sub-space, action) or legal(b, j) (row, flat column)");
            flags(b, space.offset(i) + a) = static_cast<bool>(legal(b, space.offset(i) + a));
          }
        }
      }
    }
    return action_mask(space, std::move(flags));
  }

  /// \brief Every action legal, for \p batch rows.
  static action_mask all_legal(const action_space& space, Index batch) {
    if (batch < 0) detail::fail_argument("action_mask::all_legal", "batch", batch, ">= 0");
    return action_mask(space, bool_matrix::Constant(batch, space.width(), true));
  }

  /// \brief The action space the mask is laid out for.
  const action_space& space() const noexcept { return space_; }
  /// \brief Number of rows (environments, time steps).
  Index batch() const noexcept { return legal_.rows(); }
  /// \brief Width of the flat mask, sum(nvec).
  Index width() const noexcept { return legal_.cols(); }
  /// \brief Number of sub-spaces.
  Index sub_spaces() const noexcept { return space_.sub_spaces(); }
  /// \brief The flat keep flags [batch x width], true = legal.
  const bool_matrix& flat() const noexcept { return legal_; }

  /// \brief Whether action \p a of sub-space \p i is legal in row \p b.
  bool legal(Index b, Index i, Index a) const {
    EMASK_ASSERT(a >= 0 && a < space_.size(i));
    return legal_(b, space_.offset(i) + a);
  }
  /// \brief Whether action \p a is legal in row \p b of a Discrete mask (sub-space 0).
  bool legal(Index b, Index a) const { return legal(b, 0, a); }

  /// \brief Number of legal actions of sub-space \p i in row \p b (>= 1).
  Index legal_count(Index b, Index i = 0) const {
    return static_cast<Index>(legal_.row(b).segment(space_.offset(i), space_.size(i)).count());
  }
  /// \brief The keep flags of sub-space \p i, [batch x nvec[i]] (a copy).
  bool_matrix sub_mask(Index i) const {
    if (legal_.rows() == 0) return bool_matrix(0, space_.size(i));  // no block of a null buffer
    return legal_.middleCols(space_.offset(i), space_.size(i));
  }
  /// \brief Sub-space \p i as a mask expression over (row, action): a view of flat() shifted by
  /// the sub-space's column offset. Keep this action_mask alive while the view is used.
  offset_mask<dense_mask> sub_space_view(Index i) const {
    return as_mask(legal_).offset(0, space_.offset(i));
  }

 private:
  template <class Derived>
  static bool_matrix to_flags(const Eigen::DenseBase<Derived>& legal) {
    using S = typename Derived::Scalar;
    static_assert(std::is_same<S, bool>::value || std::is_integral<S>::value,
                  "emask::action_mask: pass boolean (or 0/1 integer) flags; compare "
                  "floating-point masks first, e.g. (m.array() > 0.5)");
    if constexpr (std::is_same<S, bool>::value) {
      return legal.derived();
    } else {
      return legal.derived().array() != S(0);
    }
  }

  void validate(const char* where) const {
    if (legal_.cols() != space_.width())
      detail::fail_argument(where, "legal", detail::concat(legal_.rows(), " x ", legal_.cols()),
                            legal_.rows(), " x ", space_.width(),
                            " (the width sum(nvec) of the action space)");
    for (Index b = 0; b < legal_.rows(); ++b)
      for (Index i = 0; i < space_.sub_spaces(); ++i)
        if (!legal_.row(b).segment(space_.offset(i), space_.size(i)).any())
          detail::fail_argument(where, "legal",
                                detail::concat("no legal action in row ", b, ", sub-space ", i,
                                               " (", space_.size(i), " actions, all masked)"),
                                "at least one legal action in every (row, sub-space)");
  }

  action_space space_;
  bool_matrix legal_;
};

EMASK_NAMESPACE_END
