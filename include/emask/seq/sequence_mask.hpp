/// \file
/// \brief Sequence masks from lengths (tf.sequence_mask) and from values (Keras Masking,
/// mask_zero).
///
/// A [B, L, F] tensor is passed as a row-major matrix of B*L rows and F columns (row b*L + t is
/// time step t of sequence b), so a framework buffer maps without a copy.
#pragma once

#include <cstdint>

#include "emask/core/index_list.hpp"
#include "emask/core/polarity.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief tf.sequence_mask: a [B, maxlen] keep array with mask(b, t) = t < lengths[b].
/// As in TensorFlow a length above maxlen keeps the whole row; a negative length is an error
/// (TensorFlow silently returns an empty row).
/// \pre every length >= 0, maxlen >= 0.
inline bool_matrix sequence_mask(const index_list& lengths, Index maxlen) {
  if (maxlen < 0) detail::fail_argument("sequence_mask", "maxlen", maxlen, ">= 0");
  const Index B = static_cast<Index>(lengths.size());
  bool_matrix m(B, maxlen);
  for (Index b = 0; b < B; ++b) {
    const Index n = lengths[static_cast<std::size_t>(b)];
    if (n < 0) detail::fail_element("sequence_mask", "lengths", b, n, ">= 0");
    for (Index t = 0; t < maxlen; ++t) m(b, t) = t < n;
  }
  return m;
}

/// \brief tf.sequence_mask without maxlen: the width is the largest length.
inline bool_matrix sequence_mask(const index_list& lengths) {
  Index maxlen = 0;
  for (Index n : lengths.values()) maxlen = (std::max)(maxlen, n);
  return sequence_mask(lengths, maxlen);
}

namespace detail {
/// \p batch_name is how the caller's arguments give the batch ("batch", "lengths.size()").
inline Index time_steps(const char* where, Index rows, Index batch,
                        const char* batch_name = "batch") {
  if (batch < 1) fail_argument(where, batch_name, batch, ">= 1");
  if (rows % batch != 0)
    fail_argument(where, "x.rows()", rows, "a multiple of ", batch_name, " = ", batch,
                  " (x is [batch * time, features])");
  return rows / batch;
}
}  // namespace detail

/// \brief Keras `Masking(mask_value)`: time step t of sequence b is masked (false) when every one
/// of its features equals \p mask_value. \p x is [batch * time, features]; the result is
/// [batch, time]. NaN features never equal the mask value, so a NaN step is kept (as in Keras).
template <class Derived>
bool_matrix masking(const Eigen::MatrixBase<Derived>& x, Index batch,
                    typename Derived::Scalar mask_value = typename Derived::Scalar(0)) {
  const Index T = detail::time_steps("masking", x.rows(), batch);
  bool_matrix m(batch, T);
  for (Index b = 0; b < batch; ++b)
    for (Index t = 0; t < T; ++t) m(b, t) = (x.row(b * T + t).array() != mask_value).any();
  return m;
}

/// \brief Keras `Embedding(mask_zero=True)`: a token is kept when its id is not 0 (or not
/// \p pad_id). \p ids is [batch, time], any integer type (token_matrix, or int64 ids).
template <class Derived>
bool_matrix mask_zero(const Eigen::DenseBase<Derived>& ids, token_id pad_id = 0) {
  using Id = typename Derived::Scalar;
  static_assert(std::is_integral<Id>::value, "emask::mask_zero: pass integer token ids");
  return (ids.derived().array() != static_cast<Id>(pad_id));
}

EMASK_NAMESPACE_END
