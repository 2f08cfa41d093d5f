/// \file
/// \brief Strided views of batched attention tensors: contiguous [B, H, L, D], interleaved
/// [B, L, H, D] (what a fused QKV projection produces), and any other strides.
///
/// A view never owns or copies memory: keep the buffer alive while the view is used. One (batch,
/// head) slice is an L x D row-major matrix with row stride `stride_l`; its elements along D are
/// contiguous. Grouped-query and multi-query attention need no copy either: pass K and V views
/// with fewer heads than Q (the KV head count must divide the query head count) and query head h
/// reads KV head h / (H_q / H_kv).
#pragma once

#include <string>
#include <type_traits>

#include "emask/core/polarity.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief A view of a 4-d tensor [batch, heads, length, dim] with arbitrary strides (in
/// elements) for batch, head and position, and unit stride along dim.
/// \tparam Scalar float or double, const-qualified for read-only views.
template <class Scalar>
class tensor_view {
  static_assert(std::is_floating_point<std::remove_const_t<Scalar>>::value,
                "emask::tensor_view: use float or double (const for read-only views)");

 public:
  using value_type = std::remove_const_t<Scalar>;  ///< Scalar without const
  /// \brief One (batch, head) slice: a row-major length x dim Map with an outer stride.
  using slice_type =
      Eigen::Map<std::conditional_t<std::is_const<Scalar>::value, const row_matrix<value_type>,
                                    row_matrix<value_type>>,
                 Eigen::Unaligned, Eigen::OuterStride<>>;

  tensor_view() = default;

  /// \brief A view with explicit strides (in elements).
  /// \pre all sizes >= 0, strides >= 0, stride_l >= dim unless length <= 1.
  tensor_view(Scalar* data, Index batch, Index heads, Index length, Index dim, Index stride_b,
              Index stride_h, Index stride_l)
      : data_(data),
        batch_(batch),
        heads_(heads),
        length_(length),
        dim_(dim),
        stride_b_(stride_b),
        stride_h_(stride_h),
        stride_l_(stride_l) {
    const char* where = "tensor_view";
    if (batch < 0) detail::fail_argument(where, "batch", batch, ">= 0");
    if (heads < 0) detail::fail_argument(where, "heads", heads, ">= 0");
    if (length < 0) detail::fail_argument(where, "length", length, ">= 0");
    if (dim < 0) detail::fail_argument(where, "dim", dim, ">= 0");
    if (stride_b < 0 || stride_h < 0 || stride_l < 0)
      detail::fail_argument(where, "strides",
                            detail::concat(stride_b, ", ", stride_h, ", ", stride_l),
                            "non-negative strides");
    if (length > 1 && stride_l < dim)
      detail::fail_argument(where, "stride_l", stride_l, ">= dim = ", dim,
                            " (rows must not overlap)");
    if (data == nullptr && batch * heads * length * dim > 0)
      detail::fail_argument(where, "data", "nullptr", "a buffer");
  }

  /// \brief Allows a mutable view where a read-only one is expected.
  template <class Other, std::enable_if_t<std::is_const<Scalar>::value &&
                                              std::is_same<const Other, Scalar>::value,
                                          int> = 0>
  tensor_view(const tensor_view<Other>& o)  // NOLINT(google-explicit-constructor)
      : data_(o.data()),
        batch_(o.batch()),
        heads_(o.heads()),
        length_(o.length()),
        dim_(o.dim()),
        stride_b_(o.stride_b()),
        stride_h_(o.stride_h()),
        stride_l_(o.stride_l()) {}

  /// \brief First element.
  Scalar* data() const noexcept { return data_; }
  /// \brief Batch size.
  Index batch() const noexcept { return batch_; }
  /// \brief Number of heads.
  Index heads() const noexcept { return heads_; }
  /// \brief Positions per head.
  Index length() const noexcept { return length_; }
  /// \brief Features per position.
  Index dim() const noexcept { return dim_; }
  /// \brief Elements between batch entries.
  Index stride_b() const noexcept { return stride_b_; }
  /// \brief Elements between heads.
  Index stride_h() const noexcept { return stride_h_; }
  /// \brief Elements between positions.
  Index stride_l() const noexcept { return stride_l_; }

  /// \brief Pointer to row 0 of slice (b, h).
  Scalar* slice_data(Index b, Index h) const noexcept {
    return data_ + b * stride_b_ + h * stride_h_;
  }
  /// \brief Slice (b, h) as a length x dim row-major map with row stride stride_l().
  slice_type slice(Index b, Index h) const {
    return slice_type(slice_data(b, h), length_, dim_, Eigen::OuterStride<>(row_stride()));
  }

 private:
  Index row_stride() const noexcept { return stride_l_ > 0 ? stride_l_ : dim_; }
  Scalar* data_ = nullptr;
  Index batch_ = 0, heads_ = 0, length_ = 0, dim_ = 0;
  Index stride_b_ = 0, stride_h_ = 0, stride_l_ = 0;
};

namespace detail {
/// "[B=.., H=.., L=.., D=..]" of a view, for messages.
template <class View>
std::string view_shape(const View& t) {
  return concat("[B=", t.batch(), ", H=", t.heads(), ", L=", t.length(), ", D=", t.dim(), "]");
}
}  // namespace detail

/// \brief View of a contiguous [batch, heads, length, dim] buffer (PyTorch SDPA's layout).
template <class Scalar>
tensor_view<Scalar> view_bhld(Scalar* data, Index batch, Index heads, Index length, Index dim) {
  return tensor_view<Scalar>(data, batch, heads, length, dim, heads * length * dim, length * dim,
                             dim);
}

/// \brief View of a contiguous [batch, length, heads, dim] buffer: the interleaved layout a
/// projection produces before the transpose (llama.cpp, FlashAttention's varlen input).
template <class Scalar>
tensor_view<Scalar> view_blhd(Scalar* data, Index batch, Index length, Index heads, Index dim) {
  return tensor_view<Scalar>(data, batch, heads, length, dim, length * heads * dim, dim,
                             heads * dim);
}

EMASK_NAMESPACE_END
