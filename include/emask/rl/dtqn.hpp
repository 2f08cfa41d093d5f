/// \file
/// \brief DTQN history masks: causal self-attention over a rolling window of observations that
/// may cross episode boundaries.
///
/// A Deep Transformer Q-Network (Esslinger et al., 2022) attends over the last W observations.
/// When the window is filled from a stream of environment steps it can hold the end of one
/// episode and the start of the next; a position must then see only earlier positions of its
/// own episode. That is a document mask over episode ids composed with a top-left causal mask:
/// `document::from_segment_ids(episode_ids) & causal()`. Position t of row b keeps key s
/// when s <= t and episode_ids(b, s) == episode_ids(b, t).
///
/// Padding at the front of a window that is not full yet is handled the same way: mark the
/// first real observation as an episode start, and the padding forms an episode of its own that
/// no real position sees.
///
/// Feed the mask to masked_attention (batch entry b of the mask is row b of the ids), or to
/// masked_softmax with softmax_options::b = b.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "emask/core/compose.hpp"
#include "emask/core/polarity.hpp"
#include "emask/masks/causal.hpp"
#include "emask/masks/document.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief The type of a DTQN history mask: same episode and causal.
using dtqn_history_mask = and_mask<document, causal>;

namespace detail {
template <class Derived>
void check_flag_matrix(const char* where, const char* arg, const Eigen::DenseBase<Derived>& f) {
  using S = typename Derived::Scalar;
  static_assert(std::is_same<S, bool>::value || std::is_integral<S>::value,
                "emask::dtqn: pass boolean (or 0/1 integer) flags, [batch x window]");
  if (f.rows() < 1 || f.cols() < 1)
    fail_argument(where, arg, concat(f.rows(), " x ", f.cols()),
                  "at least one row and one position ([batch x window])");
}
}  // namespace detail

/// \brief Episode ids [batch x window] from episode-start flags: starts(b, t) true means the
/// observation at position t is the first of an episode. Ids count the starts seen so far in
/// the row (the positions before the first start have id 0).
template <class Derived>
Eigen::Array<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> episode_ids_from_starts(
    const Eigen::DenseBase<Derived>& starts) {
  detail::check_flag_matrix("episode_ids_from_starts", "starts", starts);
  Eigen::Array<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> ids(starts.rows(),
                                                                                  starts.cols());
  for (Index b = 0; b < starts.rows(); ++b) {
    std::int64_t id = 0;
    for (Index t = 0; t < starts.cols(); ++t) {
      if (t > 0 && static_cast<bool>(starts(b, t))) ++id;
      ids(b, t) = id;
    }
  }
  return ids;
}

/// \brief Episode ids [batch x window] from done flags: dones(b, t) true means the episode ends
/// with the observation at position t, so position t + 1 starts a new one.
template <class Derived>
Eigen::Array<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> episode_ids_from_dones(
    const Eigen::DenseBase<Derived>& dones) {
  detail::check_flag_matrix("episode_ids_from_dones", "dones", dones);
  Eigen::Array<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> ids(dones.rows(),
                                                                                  dones.cols());
  for (Index b = 0; b < dones.rows(); ++b) {
    std::int64_t id = 0;
    for (Index t = 0; t < dones.cols(); ++t) {
      ids(b, t) = id;
      if (static_cast<bool>(dones(b, t))) ++id;
    }
  }
  return ids;
}

/// \brief The DTQN self-attention mask from episode ids [batch x window] (one row per batch
/// entry, or one row shared by every entry). Position t keeps s <= t of the same episode.
/// Ids of one episode must be contiguous in the row for the fast key spans (ids from
/// episode_ids_from_starts / _from_dones are).
inline dtqn_history_mask make_dtqn_mask(const id_table& episode_ids) {
  if (episode_ids.rows() < 1 || episode_ids.cols() < 1)
    detail::fail_argument("make_dtqn_mask", "episode_ids",
                          detail::concat(episode_ids.rows(), " x ", episode_ids.cols()),
                          "at least one row and one position ([batch x window])");
  return dtqn_history_mask(document::from_segment_ids(episode_ids), causal());
}

/// \brief The DTQN mask from episode-start flags [batch x window] (see episode_ids_from_starts).
template <class Derived>
dtqn_history_mask dtqn_mask_from_starts(const Eigen::DenseBase<Derived>& starts) {
  detail::check_flag_matrix("dtqn_mask_from_starts", "starts", starts);  // errors name this call
  return make_dtqn_mask(id_table(episode_ids_from_starts(starts)));
}

/// \brief The DTQN mask from done flags [batch x window] (see episode_ids_from_dones).
template <class Derived>
dtqn_history_mask dtqn_mask_from_dones(const Eigen::DenseBase<Derived>& dones) {
  detail::check_flag_matrix("dtqn_mask_from_dones", "dones", dones);  // errors name this call
  return make_dtqn_mask(id_table(episode_ids_from_dones(dones)));
}

/// \brief Episode ids of a rolling window kept in a ring buffer: \p ring_dones holds the done
/// flags of the last W steps in ring order, \p head is the ring slot of the oldest step.
/// Returns the ids in chronological order (oldest first), one row per batch entry; \p head
/// has one entry per row (or one for all rows).
template <class Derived>
Eigen::Array<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> episode_ids_from_ring(
    const Eigen::DenseBase<Derived>& ring_dones, const index_list& head) {
  const char* where = "episode_ids_from_ring";
  detail::check_flag_matrix(where, "ring_dones", ring_dones);
  const Index rows = ring_dones.rows(), w = ring_dones.cols();
  if (head.size() != 1 && static_cast<Index>(head.size()) != rows)
    detail::fail_argument(where, "head", detail::concat(head.size(), " entries"), "1 or ", rows,
                          " entries (one per row of ring_dones)");
  bool_matrix ordered(rows, w);
  for (Index b = 0; b < rows; ++b) {
    const std::size_t hb = head.size() == 1 ? 0 : static_cast<std::size_t>(b);
    const Index h = head[hb];
    if (h < 0 || h >= w) detail::fail_element(where, "head", hb, h, "a ring slot in [0, ", w, ")");
    for (Index t = 0; t < w; ++t) ordered(b, t) = static_cast<bool>(ring_dones(b, (h + t) % w));
  }
  return episode_ids_from_dones(ordered);
}

EMASK_NAMESPACE_END
