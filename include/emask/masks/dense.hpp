/// \file
/// \brief A dense user array of keep flags as a mask expression (tile answers by scanning).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>

#include "emask/core/mask.hpp"

EMASK_NAMESPACE_BEGIN

namespace detail {
/// Scans of a row of bool flags eight at a time (a bool is one byte, 0 or 1).
struct bool_run {
  static constexpr std::uint64_t all_kept = 0x0101010101010101ull;
  static std::uint64_t load8(const bool* p) noexcept {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
  }
  /// Adds to any / all what r[k0, k1) holds.
  static void scan(const bool* r, Index k0, Index k1, bool& any, bool& all) noexcept {
    std::uint64_t ored = 0, anded = all_kept;
    Index k = k0;
    for (; k + 8 <= k1; k += 8) {
      const std::uint64_t w = load8(r + k);
      ored |= w;
      anded &= w;
    }
    for (; k < k1; ++k) {
      ored |= r[k] ? 1u : 0u;
      anded &= r[k] ? all_kept : 0u;
    }
    any = any || ored != 0;
    all = all && anded == all_kept;
  }
  /// The first kept flag of r[k0, k1), or k1.
  static Index first(const bool* r, Index k0, Index k1) noexcept {
    Index k = k0;
    while (k + 8 <= k1 && load8(r + k) == 0) k += 8;
    while (k < k1 && !r[k]) ++k;
    return k;
  }
  /// One past the last kept flag of r[k0, k1), or k0.
  static Index last_end(const bool* r, Index k0, Index k1) noexcept {
    Index k = k1;
    while (k - 8 >= k0 && load8(r + k - 8) == 0) k -= 8;
    while (k > k0 && !r[k - 1]) --k;
    return k;
  }
};
}  // namespace detail

/// \brief Keep flags from a [q_len, k_len] boolean array, shared by every batch entry and head,
/// or a contiguous [batch, heads, q_len, k_len] buffer in which batch or heads may be 1 and is
/// then broadcast (as PyTorch broadcasts attn_mask).
///
/// as_mask(keep) makes a view (like Eigen::Map: keep the array alive while the mask is used);
/// to_mask(keep) makes one that owns a copy (or the moved array).
class dense_mask : public mask_base<dense_mask> {
 public:
  /// tile() never answers partial for an empty or full tile
  static constexpr bool exact_tiles = true;

  /// \brief A view of \p data laid out [batch, heads, q_len, k_len], row-major and contiguous.
  dense_mask(const bool* data, Index batch, Index heads, Index q_len, Index k_len)
      : data_(data), batch_(batch), heads_(heads), q_len_(q_len), k_len_(k_len) {
    const char* where = "dense_mask";
    if (batch < 1) detail::fail_argument(where, "batch", batch, ">= 1 (1 broadcasts)");
    if (heads < 1) detail::fail_argument(where, "heads", heads, ">= 1 (1 broadcasts)");
    if (q_len < 0) detail::fail_argument(where, "q_len", q_len, ">= 0");
    if (k_len < 0) detail::fail_argument(where, "k_len", k_len, ">= 0");
    if (data == nullptr && batch * heads * q_len * k_len > 0)
      detail::fail_argument(where, "data", "nullptr", "a buffer of ", batch * heads * q_len * k_len,
                            " flags");
  }

  /// \brief Whether pair (q, k) of batch entry b and head h is kept.
  bool keep(Index b, Index h, Index q, Index k) const { return row(b, h, q)[k]; }

  /// \brief The keep flags of row q (k_len entries): kernels read them as a vector instead of
  /// asking keep() key by key.
  const bool* keep_row(Index b, Index h, Index q) const { return row(b, h, q); }

  /// \brief State of the tile [q0, q1) x [k0, k1): never full or empty when it is not.
  /// Eight flags per step.
  tile_state tile(Index b, Index h, Index q0, Index q1, Index k0, Index k1) const {
    bool any = false, all = true;
    for (Index q = q0; q < q1; ++q) {
      detail::bool_run::scan(row(b, h, q), k0, k1, any, all);
      if (any && !all) return tile_state::partial;
    }
    return any ? tile_state::full : tile_state::empty;
  }
  /// \brief Keys of row q that can be kept, inside [k0, k1) (eight flags per step).
  key_span keys(Index b, Index h, Index q, Index k0, Index k1) const {
    const bool* r = row(b, h, q);
    const Index first = detail::bool_run::first(r, k0, k1);
    if (first == k1) return detail::empty_span(k0);
    const Index end = detail::bool_run::last_end(r, first, k1);
    bool any = false, all = true;
    detail::bool_run::scan(r, first, end, any, all);
    return {first, end, all};
  }
  /// \brief Raises emask::error when the mask cannot answer for region r.
  void check(const region& r, const char* where) const {
    if (batch_ != 1 && (r.b_begin < 0 || r.b_end > batch_))
      detail::fail_argument(where, "dense mask batch", batch_, "1 or at least ", r.b_end);
    if (heads_ != 1 && (r.h_begin < 0 || r.h_end > heads_))
      detail::fail_argument(where, "dense mask heads", heads_, "1 or at least ", r.h_end);
    detail::check_range(where, "query positions", r.q_begin, r.q_end, q_len_);
    detail::check_range(where, "key positions", r.k_begin, r.k_end, k_len_);
  }

  /// \brief Query positions of the array.
  Index q_len() const noexcept { return q_len_; }
  /// \brief Key positions of the array.
  Index k_len() const noexcept { return k_len_; }

 private:
  friend dense_mask to_mask(bool_matrix keep);
  const bool* row(Index b, Index h, Index q) const {
    EMASK_ASSERT(q >= 0 && q < q_len_);
    const Index bb = batch_ == 1 ? 0 : b, hh = heads_ == 1 ? 0 : h;
    return data_ + ((bb * heads_ + hh) * q_len_ + q) * k_len_;
  }
  const bool* data_;
  Index batch_, heads_, q_len_, k_len_;
  std::shared_ptr<const bool_matrix> owner_;
};

/// \brief View of a [q_len, k_len] keep array as a mask for every batch entry and head; no copy.
/// \pre \p keep outlives the mask.
inline dense_mask as_mask(const bool_matrix& keep) {
  return dense_mask(keep.data(), 1, 1, keep.rows(), keep.cols());
}
/// \brief Deleted: a view of a temporary would dangle. Use to_mask() to own the array.
dense_mask as_mask(const bool_matrix&& keep) = delete;

/// \brief A mask that owns its [q_len, k_len] keep array: a copy of an lvalue, or the array
/// moved in (`to_mask(std::move(keep))`). Safe to keep after \p keep is gone.
inline dense_mask to_mask(bool_matrix keep) {
  auto owned = std::make_shared<const bool_matrix>(std::move(keep));
  dense_mask m(owned->data(), 1, 1, owned->rows(), owned->cols());
  m.owner_ = std::move(owned);
  return m;
}

EMASK_NAMESPACE_END
