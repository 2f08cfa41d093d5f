/// \file
/// \brief Exact merge of partial attention results computed over disjoint key shards.
///
/// Attention over keys split into shards K = K_1 u ... u K_n can be computed shard by shard:
/// each shard gives its output O_i (softmax over its own keys, times V_i) and the log-sum-exp
/// lse_i of its scores per query row. The full result is
///   lse = log(sum_i exp(lse_i)),   O = sum_i exp(lse_i - lse) O_i,
/// exactly (up to rounding). A row that keeps no key of shard i has O_i = 0 and
/// lse_i = -infinity and contributes nothing. This is the reduction step of context-parallel and
/// ring attention: every rank computes masked_attention over the keys it holds (the mask seen at
/// the shard's key offset: mask.offset(0, k_offset) or attention_options::k_offset), returns
/// (O_i, lse_i), and the ranks combine them with merge_attention_into, in any grouping, e.g.
/// after an MPI_Allgather / ncclAllGather of the partials or step by step around the ring.
#pragma once

#include <algorithm>
#include <type_traits>
#include <vector>

#include "emask/config.hpp"
#include "emask/core/types.hpp"
#include "emask/detail/attn_common.hpp"
#include "emask/kernels/tensor_view.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

template <class S>
void merge_attention_rows(S* out, Index o_sl, S* lse, const S* part, Index p_sl, const S* part_lse,
                          Index rows, Index dv) {
  for (Index i = 0; i < rows; ++i)
    merge_lse_row(out + i * o_sl, lse[i], part + i * p_sl, part_lse[i], dv);
}

template <class DO, class DL, class DP, class DQ>
void merge_check(const char* where, const DO& out, const DL& lse, const DP& part, const DQ& plse) {
  if (lse.size() != out.rows())
    fail_argument(where, "lse", concat(lse.size(), " rows"), out.rows(), " (rows of out)");
  if (part.rows() != out.rows() || part.cols() != out.cols())
    fail_argument(where, "part_out", concat(part.rows(), "x", part.cols()), out.rows(), "x",
                  out.cols(), " (the shape of out)");
  if (plse.size() != out.rows())
    fail_argument(where, "part_lse", concat(plse.size(), " rows"), out.rows(), " (rows of out)");
}
}  // namespace detail

/// \brief Folds one partial result (part_out, part_lse) into the accumulator (out, lse), in
/// place: afterwards (out, lse) is the attention over the keys of both.
///
/// Start the accumulator from the first shard's result (or from out = 0, lse = -infinity).
/// Rows whose lse is -infinity kept no key and take no part; any other lse, lowest() included,
/// is a real row. Works under -ffast-math: -infinity is recognized by its bits, not by
/// infinity arithmetic.
/// \pre out and part_out have the same shape; lse and part_lse have out.rows() entries.
template <class DO, class DL, class DP, class DQ>
void merge_attention_into(const Eigen::MatrixBase<DO>& out, const Eigen::MatrixBase<DL>& lse,
                          const Eigen::MatrixBase<DP>& part_out,
                          const Eigen::MatrixBase<DQ>& part_lse) {
  using S = typename DO::Scalar;
  static_assert(std::is_floating_point<S>::value,
                "emask::merge_attention_into: use float or double");
  static_assert(std::is_same<S, typename DL::Scalar>::value &&
                    std::is_same<S, typename DP::Scalar>::value &&
                    std::is_same<S, typename DQ::Scalar>::value,
                "emask::merge_attention_into: all arguments must have the same scalar type");
  const char* where = "merge_attention_into";
  detail::merge_check(where, out, lse, part_out, part_lse);
  Eigen::Ref<row_matrix<S>> o(const_cast<Eigen::MatrixBase<DO>&>(out).derived());
  Eigen::Ref<lse_vector<S>> l(const_cast<Eigen::MatrixBase<DL>&>(lse).derived());
  Eigen::Ref<const row_matrix<S>> po(part_out.derived());
  Eigen::Ref<const lse_vector<S>> pl(part_lse.derived());
  detail::merge_attention_rows(o.data(), o.outerStride(), l.data(), po.data(), po.outerStride(),
                               pl.data(), o.rows(), o.cols());
}

/// \brief Merges the partial results of n >= 1 key shards into out and lse (same shapes as one
/// partial). Shards are folded in order 0, 1, ..., n-1. Every shard is checked before out and
/// lse are written: on a bad shard they are left untouched. The scalar type is that of \p out,
/// so braced lists of shards work too: `merge_attention({o1, o2}, {lse1, lse2}, out, lse)` (they
/// are copied into the vectors; pass vectors to avoid the copies).
template <class DO, class DL>
void merge_attention(const std::vector<row_matrix<typename DO::Scalar>>& parts,
                     const std::vector<lse_vector<typename DO::Scalar>>& lses,
                     const Eigen::MatrixBase<DO>& out, const Eigen::MatrixBase<DL>& lse) {
  using S = typename DO::Scalar;
  static_assert(std::is_same<S, typename DL::Scalar>::value,
                "emask::merge_attention: out and lse must have the same scalar type");
  const char* where = "merge_attention";
  if (parts.empty()) detail::fail_argument(where, "parts", "an empty list", "at least one shard");
  if (lses.size() != parts.size())
    detail::fail_argument(where, "lses", detail::concat(lses.size(), " entries"), parts.size(),
                          " (one per shard)");
  auto& o = const_cast<Eigen::MatrixBase<DO>&>(out);
  auto& l = const_cast<Eigen::MatrixBase<DL>&>(lse);
  const Index rows = parts[0].rows(), cols = parts[0].cols();
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].rows() != rows || parts[i].cols() != cols)
      detail::fail_argument(where, detail::concat("parts[", i, "]").c_str(),
                            detail::concat(parts[i].rows(), "x", parts[i].cols()), rows, "x", cols,
                            " (the shape of parts[0])");
    if (lses[i].size() != rows)
      detail::fail_argument(where, detail::concat("lses[", i, "]").c_str(),
                            detail::concat(lses[i].size(), " rows"), rows, " (rows of parts[", i,
                            "])");
  }
  if (o.rows() != rows || o.cols() != cols)
    detail::fail_argument(where, "out", detail::concat(o.rows(), "x", o.cols()), rows, "x", cols,
                          " (the shape of one partial)");
  if (l.size() != rows)
    detail::fail_argument(where, "lse", detail::concat(l.size(), " rows"), rows);
  o = parts[0];
  l = lses[0];
  Eigen::Ref<row_matrix<S>> ro(o.derived());
  Eigen::Ref<lse_vector<S>> rl(l.derived());
  for (std::size_t i = 1; i < parts.size(); ++i)
    detail::merge_attention_rows(ro.data(), ro.outerStride(), rl.data(), parts[i].data(),
                                 parts[i].outerStride(), lses[i].data(), rows, cols);
}

namespace detail {
/// S in a parameter that must not take part in deduction (C++20's std::type_identity_t).
template <class S>
struct same {
  using type = S;
};
template <class S>
using same_t = typename same<S>::type;

template <class S, class P>
void merge_check_batched(const char* where, const char* part_name, const tensor_view<S>& out,
                         const Eigen::Ref<row_matrix<std::remove_const_t<S>>>& lse,
                         const tensor_view<P>& part, const char* lse_name, Index lse_rows,
                         Index lse_cols) {
  const auto shape = [](const auto& t) { return view_shape(t); };
  if (part.batch() != out.batch() || part.heads() != out.heads() || part.length() != out.length() ||
      part.dim() != out.dim())
    fail_argument(where, part_name, shape(part), shape(out), " (the shape of out)");
  if (lse.rows() != out.batch() * out.heads() || lse.cols() != out.length())
    fail_argument(where, "lse", concat(lse.rows(), "x", lse.cols()), out.batch() * out.heads(), "x",
                  out.length(), " (B*H rows, L columns)");
  if (lse_rows != lse.rows() || lse_cols != lse.cols())
    fail_argument(where, lse_name, concat(lse_rows, "x", lse_cols), lse.rows(), "x", lse.cols(),
                  " (the shape of lse)");
}

template <class S, class P>
void merge_batched_rows(const tensor_view<S>& out, Eigen::Ref<row_matrix<S>>& lse,
                        const tensor_view<P>& part, const S* plse, Index plse_stride) {
  for (Index b = 0; b < out.batch(); ++b)
    for (Index h = 0; h < out.heads(); ++h) {
      const Index row = b * out.heads() + h;
      merge_attention_rows(out.data() + b * out.stride_b() + h * out.stride_h(), out.stride_l(),
                           lse.data() + row * lse.outerStride(),
                           part.data() + b * part.stride_b() + h * part.stride_h(), part.stride_l(),
                           plse + row * plse_stride, out.length(), out.dim());
    }
}
}  // namespace detail

/// \brief Batched merge_attention_into: folds the partial result of one key shard for every
/// (batch, head) of [B, H, L, Dv] views into (out, lse), in place. \p lse and \p part_lse are
/// (B*H) x L, row b*H + h (the batched masked_attention layout).
template <class S>
void merge_attention_into(const tensor_view<S>& out, Eigen::Ref<row_matrix<detail::same_t<S>>> lse,
                          const tensor_view<const detail::same_t<S>>& part_out,
                          const Eigen::Ref<const row_matrix<detail::same_t<S>>>& part_lse) {
  static_assert(!std::is_const<S>::value, "emask::merge_attention_into: out must be mutable");
  const char* where = "merge_attention_into";
  detail::merge_check_batched(where, "part_out", out, lse, part_out, "part_lse", part_lse.rows(),
                              part_lse.cols());
  detail::merge_batched_rows(out, lse, part_out, part_lse.data(), part_lse.outerStride());
}

/// \brief Batched merge_attention: merges n >= 1 key shards, each [B, H, L, Dv] with a
/// (B*H) x L log-sum-exp, into out and lse, folded in order 0, 1, ..., n-1. Every shard is
/// checked before out and lse are written.
template <class S>
void merge_attention(const std::vector<tensor_view<const S>>& parts,
                     const std::vector<row_matrix<S>>& lses, const tensor_view<S>& out,
                     Eigen::Ref<row_matrix<detail::same_t<S>>> lse) {
  static_assert(!std::is_const<S>::value, "emask::merge_attention: out must be mutable");
  const char* where = "merge_attention";
  if (parts.empty()) detail::fail_argument(where, "parts", "an empty list", "at least one shard");
  if (lses.size() != parts.size())
    detail::fail_argument(where, "lses", detail::concat(lses.size(), " entries"), parts.size(),
                          " (one per shard)");
  for (std::size_t i = 0; i < parts.size(); ++i)
    detail::merge_check_batched(where, detail::concat("parts[", i, "]").c_str(), out, lse, parts[i],
                                detail::concat("lses[", i, "]").c_str(), lses[i].rows(),
                                lses[i].cols());
  for (Index b = 0; b < out.batch(); ++b)
    for (Index h = 0; h < out.heads(); ++h) {
      const tensor_view<const S>& p0 = parts[0];
      const S* src = p0.data() + b * p0.stride_b() + h * p0.stride_h();
      S* dst = out.data() + b * out.stride_b() + h * out.stride_h();
      for (Index i = 0; i < out.length(); ++i)
        std::copy(src + i * p0.stride_l(), src + i * p0.stride_l() + out.dim(),
                  dst + i * out.stride_l());
    }
  lse = lses[0];
  for (std::size_t i = 1; i < parts.size(); ++i)
    detail::merge_batched_rows(out, lse, parts[i], lses[i].data(), lses[i].cols());
}

EMASK_NAMESPACE_END
