/// \file
/// \brief The mask as the attention kernels see it: one tile or one row at a time, through
/// four small functions. This is the only mask-typed step of a kernel call; the kernels
/// themselves are compiled once per scalar type, whatever the number of mask types a program
/// uses (a function-pointer call per tile or per row of a partial tile, never per element).
// IWYU pragma: private
#pragma once
#ifndef EMASK_CONFIG_INCLUDED
#error \
    "emask/detail/mask_tiles.hpp is private to emask: include a public header (such as <emask/emask.hpp>)"
#endif

#include <type_traits>
#include <utility>

#include "emask/core/mask.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

/// Whether Mask exposes its keep flags row by row (`const bool* keep_row(b, h, q)`).
template <class Mask, class = void>
struct has_keep_row : std::false_type {};
template <class Mask>
struct has_keep_row<
    Mask, std::void_t<decltype(std::declval<const Mask&>().keep_row(Index(0), Index(0), Index(0)))>>
    : std::true_type {};

/// A mask expression behind four function pointers (mask coordinates: batch b, head h, absolute
/// positions).
template <class S>
class mask_tiles {
 public:
  /// \p q_offset and \p k_offset are added to the positions the kernel asks about (and
  /// subtracted from the key spans it gets back): the kernel works in its own rows and columns.
  template <class Mask>
  explicit mask_tiles(const Mask& mask, Index q_offset = 0, Index k_offset = 0) noexcept
      : mask_(&mask),
        qo_(q_offset),
        ko_(k_offset),
        tile_(&tile_of<Mask>),
        keys_(&keys_of<Mask>),
        spans_(&spans_of<Mask>),
        flags_(&flags_of<Mask>) {}

  /// What the rectangle [q0, q1) x [k0, k1) holds.
  tile_state tile(Index b, Index h, Index q0, Index q1, Index k0, Index k1) const {
    return tile_(mask_, b, h, q0 + qo_, q1 + qo_, k0 + ko_, k1 + ko_);
  }
  /// The keys query q can keep inside [k0, k1).
  key_span keys(Index b, Index h, Index q, Index k0, Index k1) const {
    key_span s = keys_(mask_, b, h, q + qo_, k0 + ko_, k1 + ko_);
    s.begin -= ko_;
    s.end -= ko_;
    return s;
  }
  /// The key spans of queries [q0, q0 + nq) inside [k0, k1) in one call (a partial tile):
  /// lo[i], hi[i] relative to k0, 0 and 0 for an empty row. Returns whether every span is exact.
  bool spans(Index b, Index h, Index q0, Index nq, Index k0, Index k1, S* lo, S* hi) const {
    return spans_(mask_, b, h, q0 + qo_, nq, k0 + ko_, k1 + ko_, lo, hi);
  }
  /// f[j * stride] = 1 when query q keeps key k0 + j, else 0, for j < k1 - k0.
  void flags(Index b, Index h, Index q, Index k0, Index k1, S* f, Index stride) const {
    flags_(mask_, b, h, q + qo_, k0 + ko_, k1 + ko_, f, stride);
  }

 private:
  template <class Mask>
  static tile_state tile_of(const void* m, Index b, Index h, Index q0, Index q1, Index k0,
                            Index k1) {
    return static_cast<const Mask*>(m)->tile(b, h, q0, q1, k0, k1);
  }
  template <class Mask>
  static key_span keys_of(const void* m, Index b, Index h, Index q, Index k0, Index k1) {
    return static_cast<const Mask*>(m)->keys(b, h, q, k0, k1);
  }
  template <class Mask>
  static bool spans_of(const void* m, Index b, Index h, Index q0, Index nq, Index k0, Index k1,
                       S* lo, S* hi) {
    const Mask& mask = *static_cast<const Mask*>(m);
    bool exact = true;
    for (Index i = 0; i < nq; ++i) {
      const key_span s = mask.keys(b, h, q0 + i, k0, k1);
      lo[i] = s.empty() ? S(0) : static_cast<S>(s.begin - k0);
      hi[i] = s.empty() ? S(0) : static_cast<S>(s.end - k0);
      exact = exact && (s.exact || s.empty());
    }
    return exact;
  }
  template <class Mask>
  static void flags_of(const void* m, Index b, Index h, Index q, Index k0, Index k1, S* f,
                       Index stride) {
    const Mask& mask = *static_cast<const Mask*>(m);
    if constexpr (has_keep_row<Mask>::value) {
      const bool* row = mask.keep_row(b, h, q) + k0;
      if (stride == 1) {
        // The softmax rows: a unit-stride conversion the compiler vectorizes.
        for (Index j = 0; j < k1 - k0; ++j) f[j] = static_cast<S>(row[j]);
      } else {
        for (Index j = 0; j < k1 - k0; ++j) f[j * stride] = static_cast<S>(row[j]);
      }
    } else {
      if (stride == 1) {
        for (Index k = k0; k < k1; ++k) f[k - k0] = mask.keep(b, h, q, k) ? S(1) : S(0);
      } else {
        for (Index k = k0; k < k1; ++k) f[(k - k0) * stride] = mask.keep(b, h, q, k) ? S(1) : S(0);
      }
    }
  }

  const void* mask_;
  Index qo_, ko_;
  tile_state (*tile_)(const void*, Index, Index, Index, Index, Index, Index);
  key_span (*keys_)(const void*, Index, Index, Index, Index, Index);
  bool (*spans_)(const void*, Index, Index, Index, Index, Index, Index, S*, S*);
  void (*flags_)(const void*, Index, Index, Index, Index, Index, S*, Index);
};

}  // namespace detail
EMASK_NAMESPACE_END
