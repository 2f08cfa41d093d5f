/// \file
/// \brief Chunked attention: a query keeps only the keys of its own chunk.
///
/// Positions are cut into chunks [c*C, (c+1)*C); query q keeps key k when both lie in the same
/// chunk (Llama 4's local layers; llama.cpp LLAMA_SWA_TYPE_CHUNKED). Compose with causal for
/// causal attention inside each chunk: `chunked(C) & causal()`.
#pragma once

#include "emask/config.hpp"
#include "emask/detail/interval_mask.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Keeps (q, k) when q / C == k / C (absolute positions, C the chunk size).
class chunked : public detail::interval_mask<chunked> {
 public:
  /// \pre chunk_size >= 1.
  explicit chunked(Index chunk_size) : size_(chunk_size) {
    if (chunk_size < 1) detail::fail_argument("chunked", "chunk_size", chunk_size, ">= 1");
  }
  /// \brief Positions per chunk.
  Index chunk_size() const noexcept { return size_; }

  /// \brief Kept keys [lo, hi) of row q of batch entry b (detail::interval_mask contract).
  detail::row_bounds bounds(Index, Index q) const {
    EMASK_ASSERT(q >= 0);
    const Index lo = (q / size_) * size_;
    return {lo, lo + size_};
  }
  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where) const {
    if (r.q_begin < 0) detail::fail_argument(where, "query positions", r.q_begin, ">= 0");
    detail::check_positions(where, r);
  }

 private:
  Index size_;
};

EMASK_NAMESPACE_END
