/// \file
/// \brief Causal (look-ahead) masks, top-left and bottom-right aligned, and the strict variant.
///
/// Row q keeps the keys k <= q + diagonal (k < q + diagonal when strict). Top-left alignment
/// (PyTorch `is_causal`) has diagonal 0: query i sees keys 0..i. Bottom-right alignment
/// (FlashAttention >= 2.1, KV-cache decoding) has diagonal Lk - Lq: the last query sees every
/// key. Positions are absolute; see mask_base::offset for tiles, shards and cache steps.
#pragma once

#include <vector>

#include "emask/core/index_list.hpp"
#include "emask/detail/interval_mask.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Causal mask: row q keeps keys k <= q + diagonal (k < q + diagonal when strict).
/// One diagonal for every batch entry, or one per batch entry (variable-length KV caches).
class causal : public detail::interval_mask<causal> {
 public:
  /// \brief Top-left aligned, diagonal 0: query i keeps keys 0..i (PyTorch `is_causal`).
  causal() : diagonal_{0} {}

  /// \brief Causal with an explicit diagonal: row q keeps keys k <= q + diagonal. A diagonal
  /// beyond +-emask::unbounded is stored as +-emask::unbounded: every position is at most
  /// unbounded, so the mask keeps everything (nothing) as the exact diagonal would.
  static causal with_diagonal(Index diagonal) { return causal(std::vector<Index>{diagonal}); }

  /// \brief Bottom-right aligned (FlashAttention >= 2.1, KV cache): query i keeps keys
  /// 0..i + (k_len - q_len), so the last query keeps every key.
  ///
  /// The mask remembers the lengths it was built for: a call that asks it about a query at or
  /// beyond q_len or a key at or beyond k_len (a mask built for a 10-key cache reused on 12
  /// keys, which would silently ignore keys 10 and 11) raises emask::error naming both. A call
  /// over part of the positions (a key shard through k_offset, a query tile) is fine. For a
  /// fixed alignment whatever the lengths, use with_diagonal(k_len - q_len).
  /// \pre q_len >= 0, k_len >= 0.
  static causal bottom_right(Index q_len, Index k_len) {
    if (q_len < 0) detail::fail_argument("causal::bottom_right", "q_len", q_len, ">= 0");
    if (k_len < 0) detail::fail_argument("causal::bottom_right", "k_len", k_len, ">= 0");
    causal c = with_diagonal(k_len - q_len);
    c.q_len_ = q_len;
    c.k_len_ = k_len;
    return c;
  }

  /// \brief Bottom-right aligned per batch entry: sequence b has q_lens[b] queries over
  /// k_lens[b] keys (variable-length KV caches).
  static causal bottom_right(const index_list& q_lens, const index_list& k_lens) {
    if (q_lens.size() != k_lens.size() || q_lens.size() == 0) {
      detail::fail_argument("causal::bottom_right", "k_lens",
                            detail::concat(k_lens.size(), " entries"), q_lens.size(),
                            " entries (one per entry of q_lens, at least one)");
    }
    std::vector<Index> diag(q_lens.size());
    for (std::size_t i = 0; i < diag.size(); ++i) {
      if (q_lens[i] < 0)
        detail::fail_element("causal::bottom_right", "q_lens", i, q_lens[i], ">= 0");
      if (k_lens[i] < 0)
        detail::fail_element("causal::bottom_right", "k_lens", i, k_lens[i], ">= 0");
      diag[i] = k_lens[i] - q_lens[i];
    }
    return causal(std::move(diag));
  }

  /// \brief The same alignment without the diagonal: no query attends to its own position.
  /// With top-left alignment row 0 keeps nothing (a fully masked row, defined as zeros).
  causal strict() const {
    causal c = *this;
    c.strict_ = true;
    return c;
  }

  /// \brief True when the diagonal is excluded.
  bool is_strict() const noexcept { return strict_; }
  /// \brief The diagonal of batch entry \p b.
  Index diagonal(Index b = 0) const { return detail::per_batch_value(diagonal_, b); }

  /// \brief Kept keys [lo, hi) of row q of batch entry b (detail::interval_mask contract).
  detail::row_bounds bounds(Index b, Index q) const {
    const Index hi = q + diagonal(b) + (strict_ ? 0 : 1);
    return detail::make_bounds(0, hi);
  }
  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where) const {
    detail::check_batch(where, "causal diagonals", diagonal_.size(), r);
    detail::check_positions(where, r);
    if (k_len_ >= 0 && (r.q_end > q_len_ || r.k_end > k_len_))
      detail::fail_argument(where, "mask",
                            detail::concat("causal::bottom_right(", q_len_, ", ", k_len_, ")"),
                            "lengths covering the call's positions: queries [", r.q_begin, ", ",
                            r.q_end, "), keys [", r.k_begin, ", ", r.k_end,
                            ") (build it for the call's lengths, or use causal::with_diagonal)");
  }
  /// \brief The query and key lengths of bottom_right(q_len, k_len); -1 for other causal masks.
  Index q_len() const noexcept { return q_len_; }
  /// \brief See q_len().
  Index k_len() const noexcept { return k_len_; }

 private:
  explicit causal(std::vector<Index> diag) : diagonal_(std::move(diag)) {
    for (Index& d : diagonal_) d = d > unbounded ? unbounded : (d < -unbounded ? -unbounded : d);
  }
  std::vector<Index> diagonal_;
  bool strict_ = false;
  Index q_len_ = -1, k_len_ = -1;  // bottom_right(q_len, k_len): the lengths it is valid for
};

EMASK_NAMESPACE_END
