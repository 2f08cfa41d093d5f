/// \file
/// \brief reverse_padded: reverse only the valid prefix of each sequence (tf.reverse_sequence).
///
/// For the backward direction of a bidirectional RNN over a right-padded batch: step t < len of
/// sequence b becomes step len - 1 - t; padded steps stay where they are, so the backward pass
/// starts at the last real token and never reads padding before it.
#pragma once

#include "emask/core/index_list.hpp"
#include "emask/core/polarity.hpp"
#include "emask/seq/sequence_mask.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Returns x with the first lengths[b] steps of each sequence b reversed. \p x is
/// [batch * time, features], batch = lengths.size(). Applying it twice gives x back.
/// \pre 0 <= lengths[b] <= time.
template <class Derived>
row_matrix<typename Derived::Scalar> reverse_padded(const Eigen::MatrixBase<Derived>& x,
                                                    const index_list& lengths) {
  const Index B = static_cast<Index>(lengths.size());
  if (B < 1)
    detail::fail_argument("reverse_padded", "lengths", "an empty list",
                          "one length per sequence (at least one)");
  const Index T = detail::time_steps("reverse_padded", x.rows(), B, "lengths.size()");
  for (Index b = 0; b < B; ++b) {
    const Index n = lengths[static_cast<std::size_t>(b)];
    if (n < 0 || n > T)
      detail::fail_element("reverse_padded", "lengths", b, n, "a length in [0, ", T, "]");
  }
  row_matrix<typename Derived::Scalar> out = x;
  for (Index b = 0; b < B; ++b) {
    const Index n = lengths[static_cast<std::size_t>(b)];
    for (Index t = 0; t < n; ++t) out.row(b * T + t) = x.row(b * T + n - 1 - t);
  }
  return out;
}

EMASK_NAMESPACE_END
