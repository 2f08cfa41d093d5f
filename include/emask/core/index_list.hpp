/// \file
/// \brief index_list and id_table: the integer inputs of the builders (lengths, offsets, ids).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "emask/core/mask.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief A list of integers (lengths, starts, prefix sizes, cu_seqlens), copied from a braced
/// list, a std::vector of any integer type, or an integer Eigen vector.
class index_list {
 public:
  /// \brief From a braced list: `{3, 5, 2}`.
  index_list(std::initializer_list<Index> values) : values_(values) {}
  /// \brief From a std::vector of any integer type.
  template <class Int, std::enable_if_t<std::is_integral<Int>::value, int> = 0>
  index_list(const std::vector<Int>& values) : values_(values.begin(), values.end()) {}
  /// \brief From an integer Eigen vector or matrix (read row by row).
  /// Constrained to integer scalars, so it never competes with overloads taking other arrays.
  template <class Derived,
            std::enable_if_t<std::is_integral<typename Derived::Scalar>::value &&
                                 !std::is_same<typename Derived::Scalar, bool>::value,
                             int> = 0>
  index_list(const Eigen::DenseBase<Derived>& values) {
    values_.reserve(static_cast<std::size_t>(values.size()));
    for (Index i = 0; i < values.rows(); ++i)
      for (Index j = 0; j < values.cols(); ++j) values_.push_back(static_cast<Index>(values(i, j)));
  }

  /// \brief The values.
  const std::vector<Index>& values() const noexcept { return values_; }
  /// \brief Number of values.
  std::size_t size() const noexcept { return values_.size(); }
  /// \brief Value \p i.
  Index operator[](std::size_t i) const { return values_[i]; }

 private:
  std::vector<Index> values_;
};

/// \brief A row-major table of integer ids, [rows x cols]: token ids or segment ids with one
/// row per batch entry. Built from any integer Eigen matrix (a vector counts as one row), a
/// std::vector (one row) or a braced list of rows.
class id_table {
 public:
  /// \brief An empty table.
  id_table() = default;
  /// \brief From braced rows: `{{1, 1, 2}, {3, 3, 3}}`; rows must have equal lengths.
  id_table(std::initializer_list<std::initializer_list<std::int64_t>> rows) {
    rows_ = static_cast<Index>(rows.size());
    cols_ = rows.size() ? static_cast<Index>(rows.begin()->size()) : 0;
    for (const auto& row : rows) {
      if (static_cast<Index>(row.size()) != cols_) {
        detail::fail_argument("id_table", "rows", concat_sizes(rows), "rows of equal length");
      }
      ids_.insert(ids_.end(), row.begin(), row.end());
    }
  }
  /// \brief One row from a std::vector of any integer type.
  template <class Int, std::enable_if_t<std::is_integral<Int>::value, int> = 0>
  id_table(const std::vector<Int>& row)
      : ids_(row.begin(), row.end()), rows_(1), cols_(static_cast<Index>(row.size())) {}
  /// \brief From an integer Eigen matrix [rows, cols]; a column vector counts as one row.
  /// Constrained to integer scalars, so it never competes with overloads taking other arrays.
  template <class Derived,
            std::enable_if_t<std::is_integral<typename Derived::Scalar>::value &&
                                 !std::is_same<typename Derived::Scalar, bool>::value,
                             int> = 0>
  id_table(const Eigen::DenseBase<Derived>& ids) {
    const bool column_vector = Derived::ColsAtCompileTime == 1;
    rows_ = column_vector ? 1 : ids.rows();
    cols_ = column_vector ? ids.rows() : ids.cols();
    ids_.reserve(static_cast<std::size_t>(ids.size()));
    if (column_vector) {
      for (Index i = 0; i < ids.rows(); ++i) ids_.push_back(static_cast<std::int64_t>(ids(i, 0)));
    } else {
      for (Index i = 0; i < ids.rows(); ++i)
        for (Index j = 0; j < ids.cols(); ++j) ids_.push_back(static_cast<std::int64_t>(ids(i, j)));
    }
  }

  /// \brief Number of rows (sequences).
  Index rows() const noexcept { return rows_; }
  /// \brief Number of columns (positions).
  Index cols() const noexcept { return cols_; }
  /// \brief Id at row \p r, column \p c.
  std::int64_t operator()(Index r, Index c) const {
    EMASK_ASSERT(r >= 0 && r < rows_ && c >= 0 && c < cols_);
    return ids_[static_cast<std::size_t>(r * cols_ + c)];
  }
  /// \brief All ids, row-major.
  const std::vector<std::int64_t>& data() const noexcept { return ids_; }

 private:
  static std::string concat_sizes(std::initializer_list<std::initializer_list<std::int64_t>> rows) {
    std::string s = "row lengths";
    for (const auto& r : rows) s += " " + std::to_string(r.size());
    return s;
  }
  std::vector<std::int64_t> ids_;
  Index rows_ = 0;
  Index cols_ = 0;
};

EMASK_NAMESPACE_END
