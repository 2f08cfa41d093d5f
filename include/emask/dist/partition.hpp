/// \file
/// \brief Sequence sharding for context-parallel attention: contiguous and zigzag shard layouts,
/// the map between a rank's local rows and global positions, and planning from a mask's tile
/// answers (which (query chunk, key chunk) pairs are empty, the work of each rank, the
/// imbalance). Pure C++, no MPI: emask/dist/ring_attention.hpp runs the plan over MPI.
///
/// Layouts (S positions, R ranks):
/// - contiguous: the sequence is cut into R chunks; rank r holds chunk r.
/// - zigzag: the sequence is cut into 2R chunks; rank r holds chunk r and chunk 2R-1-r, in that
///   order (its local rows are chunk r followed by chunk 2R-1-r). For a causal mask every rank
///   then gets one early and one late chunk, so the kept pairs are spread evenly (the load
///   balancing of Megatron-LM's context parallelism and of Striped/zigzag ring attention, e.g.
///   zhuzilin/ring-flash-attention `zigzag_ring_flash_attn_func`; Brandon et al. 2023, "Striped
///   Attention", discuss the same imbalance).
/// Chunk sizes follow numpy.array_split: with n chunks, chunk i has floor(S / n) positions plus
/// one for the first S mod n chunks, so chunk sizes differ by at most 1 (a zigzag rank's local
/// length can therefore differ from another's by up to 2). S < n gives empty chunks.
///
/// Work is counted in kept (query, key) pairs at tile granularity: a (query chunk, key chunk)
/// pair is asked as a whole; an empty one costs 0, a full one its area; a partial one is split
/// in halves along the tile grid (tiles start at the chunk's first position, as the tiled kernel
/// lays them) until the pieces are tiles, and a partial tile is counted fully (the tiled kernel
/// computes it whole). This models the cost of emask's tiled kernel, which skips empty tiles.
#pragma once

#include <algorithm>
#include <vector>

#include "emask/config.hpp"
#include "emask/core/mask.hpp"
#include "emask/core/types.hpp"
#include "emask/error.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief How a sequence is split over ranks (see the file comment).
enum class shard_layout {
  contiguous,  ///< rank r holds chunk r of R
  zigzag       ///< rank r holds chunks r and 2R-1-r of 2R (balances causal masks)
};

/// \brief A half-open range [begin, end) of global sequence positions.
struct seq_chunk {
  Index begin = 0;  ///< first position
  Index end = 0;    ///< one past the last position
  /// \brief Number of positions.
  constexpr Index size() const noexcept { return end > begin ? end - begin : 0; }
  /// \brief True when the chunk holds no position.
  constexpr bool empty() const noexcept { return end <= begin; }
};

/// \brief Where a global position lives: its rank and its row in that rank's local shard.
struct shard_row {
  int rank = 0;   ///< owning rank
  Index row = 0;  ///< local row in the rank's shard
};

/// \brief A sequence of seq_len positions split over \p ranks ranks in a shard_layout.
///
/// Every rank holds local_length(r) rows: its chunks one after the other, in chunk order
/// (chunk(r, 0) first). global_position() and locate() map between the two numberings.
class shard_plan {
 public:
  /// \brief seq_len positions over ranks ranks.
  /// \pre seq_len >= 0, ranks >= 1, layout one of shard_layout's values.
  shard_plan(Index seq_len, int ranks, shard_layout layout = shard_layout::zigzag)
      : seq_len_(seq_len), ranks_(ranks), layout_(layout) {
    const char* where = "shard_plan";
    if (seq_len < 0) detail::fail_argument(where, "seq_len", seq_len, ">= 0");
    if (ranks < 1) detail::fail_argument(where, "ranks", ranks, ">= 1");
    if (layout != shard_layout::contiguous && layout != shard_layout::zigzag)
      detail::fail_argument(where, "layout", static_cast<int>(layout),
                            "shard_layout::contiguous or shard_layout::zigzag");
    n_ = static_cast<Index>(ranks) * chunks_per_rank();
    base_ = seq_len / n_;
    rem_ = seq_len % n_;
  }

  /// \brief Positions of the whole sequence.
  Index seq_len() const noexcept { return seq_len_; }
  /// \brief Number of ranks.
  int ranks() const noexcept { return ranks_; }
  /// \brief The layout.
  shard_layout layout() const noexcept { return layout_; }
  /// \brief Chunks each rank holds: 1 (contiguous) or 2 (zigzag).
  int chunks_per_rank() const noexcept { return layout_ == shard_layout::zigzag ? 2 : 1; }
  /// \brief Chunks of the whole sequence: ranks() * chunks_per_rank().
  Index chunk_count() const noexcept { return n_; }

  /// \brief Global chunk \p i of chunk_count() (numpy.array_split sizes).
  seq_chunk global_chunk(Index i) const {
    if (i < 0 || i >= n_)
      detail::fail_argument("shard_plan::global_chunk", "i", i, "0 <= i < ", n_);
    return {chunk_start(i), chunk_start(i + 1)};
  }
  /// \brief Chunk \p c (0 or 1 for zigzag, 0 for contiguous) of rank \p r, global positions.
  seq_chunk chunk(int r, int c) const {
    check_rank("shard_plan::chunk", r);
    if (c < 0 || c >= chunks_per_rank())
      detail::fail_argument("shard_plan::chunk", "c", c, "0 <= c < ", chunks_per_rank());
    const Index i = global_index(r, c);
    return {chunk_start(i), chunk_start(i + 1)};
  }
  /// \brief The chunks of rank \p r in local order.
  std::vector<seq_chunk> chunks(int r) const {
    std::vector<seq_chunk> out;
    out.reserve(static_cast<std::size_t>(chunks_per_rank()));
    for (int c = 0; c < chunks_per_rank(); ++c) out.push_back(chunk(r, c));
    return out;
  }
  /// \brief Local row of the first position of chunk \p c of rank \p r.
  Index local_begin(int r, int c) const {
    const seq_chunk first = chunk(r, 0);  // checks r
    if (c < 0 || c >= chunks_per_rank())
      detail::fail_argument("shard_plan::local_begin", "c", c, "0 <= c < ", chunks_per_rank());
    return c == 0 ? Index(0) : first.size();
  }
  /// \brief Rows rank \p r holds: the sum of its chunk sizes.
  Index local_length(int r) const {
    Index n = 0;
    for (int c = 0; c < chunks_per_rank(); ++c) n += chunk(r, c).size();
    return n;
  }
  /// \brief The largest local_length over the ranks (the size of a ring buffer).
  Index max_local_length() const {
    Index m = 0;
    for (int r = 0; r < ranks_; ++r) m = (std::max)(m, local_length(r));
    return m;
  }
  /// \brief Global position of local row \p row of rank \p r.
  /// \pre 0 <= row < local_length(r).
  Index global_position(int r, Index row) const {
    const char* where = "shard_plan::global_position";
    check_rank(where, r);
    if (row < 0 || row >= local_length(r))
      detail::fail_argument(where, "row", row, "0 <= row < local_length(", r,
                            ") = ", local_length(r));
    const seq_chunk c0 = chunk(r, 0);
    return row < c0.size() ? c0.begin + row : chunk(r, 1).begin + (row - c0.size());
  }
  /// \brief The rank and local row of global position \p pos.
  /// \pre 0 <= pos < seq_len().
  shard_row locate(Index pos) const {
    if (pos < 0 || pos >= seq_len_)
      detail::fail_argument("shard_plan::locate", "pos", pos, "0 <= pos < seq_len = ", seq_len_);
    // Chunks [0, rem) have base + 1 positions, the others base (base >= 1 past the first part).
    const Index big = rem_ * (base_ + 1);
    const Index i = pos < big ? pos / (base_ + 1) : rem_ + (pos - big) / base_;
    const Index off = pos - chunk_start(i);
    const Index R = ranks_;
    if (layout_ == shard_layout::contiguous) return {static_cast<int>(i), off};
    if (i < R) return {static_cast<int>(i), off};
    const int r = static_cast<int>(2 * R - 1 - i);
    return {r, chunk(r, 0).size() + off};
  }

 private:
  Index chunk_start(Index i) const noexcept { return i * base_ + (std::min)(i, rem_); }
  Index global_index(int r, int c) const noexcept {
    return c == 0 ? Index(r) : 2 * Index(ranks_) - 1 - r;
  }
  void check_rank(const char* where, int r) const {
    if (r < 0 || r >= ranks_) detail::fail_argument(where, "r", r, "0 <= r < ranks = ", ranks_);
  }

  Index seq_len_;
  int ranks_;
  shard_layout layout_;
  Index n_ = 1, base_ = 0, rem_ = 0;
};

/// \brief The batch entries and heads a plan asks the mask about: [b_begin, b_end) x
/// [h_begin, h_end). The default is the single (0, 0). A pair is empty only when it is empty
/// for every one of them.
struct head_range {
  Index b_begin = 0;  ///< first batch entry
  Index b_end = 1;    ///< one past the last batch entry
  Index h_begin = 0;  ///< first head
  Index h_end = 1;    ///< one past the last head
};

namespace detail {
inline void check_head_range(const char* where, const head_range& hr) {
  if (hr.b_begin < 0 || hr.b_end < hr.b_begin)
    fail_argument(where, "heads.b_begin, heads.b_end", concat(hr.b_begin, ", ", hr.b_end),
                  "0 <= b_begin <= b_end");
  if (hr.h_begin < 0 || hr.h_end < hr.h_begin)
    fail_argument(where, "heads.h_begin, heads.h_end", concat(hr.h_begin, ", ", hr.h_end),
                  "0 <= h_begin <= h_end");
}

/// pair_state without argument checks (callers checked the mask's region once).
template <class Mask>
tile_state pair_state_unchecked(const Mask& mask, const seq_chunk& q, const seq_chunk& k,
                                const head_range& hr) {
  if (q.empty() || k.empty()) return tile_state::empty;
  bool any = false, all = true, none = true;
  for (Index b = hr.b_begin; b < hr.b_end; ++b)
    for (Index h = hr.h_begin; h < hr.h_end; ++h) {
      none = false;
      const tile_state s = mask.tile(b, h, q.begin, q.end, k.begin, k.end);
      any = any || s != tile_state::empty;
      all = all && s == tile_state::full;
      if (any && !all) return tile_state::partial;
    }
  if (none) return tile_state::empty;
  return any ? tile_state::full : tile_state::empty;
}

/// Kept pairs of [q0, q1) x [k0, k1) at tile granularity (see the file comment); q0 - origin
/// and k0 - origin are multiples of \p tile.
template <class Mask>
Index kept_estimate(const Mask& m, Index b, Index h, Index q0, Index q1, Index k0, Index k1,
                    Index tile) {
  const tile_state s = m.tile(b, h, q0, q1, k0, k1);
  const Index area = (q1 - q0) * (k1 - k0);
  if (s == tile_state::empty) return 0;
  if (s == tile_state::full) return area;
  const Index tq = (q1 - q0 + tile - 1) / tile, tk = (k1 - k0 + tile - 1) / tile;
  if (tq <= 1 && tk <= 1) return area;  // a partial tile is computed whole
  const Index qm = tq > 1 ? q0 + (tq / 2) * tile : q1;
  const Index km = tk > 1 ? k0 + (tk / 2) * tile : k1;
  Index n = kept_estimate(m, b, h, q0, qm, k0, km, tile);
  if (km < k1) n += kept_estimate(m, b, h, q0, qm, km, k1, tile);
  if (qm < q1) {
    n += kept_estimate(m, b, h, qm, q1, k0, km, tile);
    if (km < k1) n += kept_estimate(m, b, h, qm, q1, km, k1, tile);
  }
  return n;
}

/// Work of one chunk pair summed over the head range (no checks).
template <class Mask>
Index pair_work_unchecked(const Mask& mask, const seq_chunk& q, const seq_chunk& k,
                          const head_range& hr, Index tile) {
  if (q.empty() || k.empty()) return 0;
  Index n = 0;
  for (Index b = hr.b_begin; b < hr.b_end; ++b)
    for (Index h = hr.h_begin; h < hr.h_end; ++h)
      n += kept_estimate(mask, b, h, q.begin, q.end, k.begin, k.end, tile);
  return n;
}

template <class Mask>
void check_plan_mask(const char* where, const shard_plan& plan, const Mask& mask,
                     const head_range& hr) {
  static_assert(is_mask_v<Mask>,
                "emask: pass an emask mask expression (a builder such as emask::causal)");
  check_head_range(where, hr);
  region r;
  r.b_begin = hr.b_begin;
  r.b_end = hr.b_end;
  r.h_begin = hr.h_begin;
  r.h_end = hr.h_end;
  r.q_begin = 0;
  r.q_end = plan.seq_len();
  r.k_begin = 0;
  r.k_end = plan.seq_len();
  mask.check(r, where);
}
}  // namespace detail

/// \brief Tile answer of the mask over the rectangle q x k (global positions), combined over
/// the heads of \p heads: empty when it is empty for each, full when full for each, otherwise
/// partial. A pair with an empty chunk, or an empty head range, is empty. Exact when the mask's
/// tile answers are (Mask::exact_tiles); otherwise it may say partial for an empty pair, never
/// empty for a pair that keeps something.
template <class Mask>
tile_state pair_state(const Mask& mask, const seq_chunk& q, const seq_chunk& k,
                      const head_range& heads = {}) {
  static_assert(is_mask_v<Mask>,
                "emask::pair_state: pass an emask mask expression (a builder such as "
                "emask::causal)");
  const char* where = "pair_state";
  detail::check_head_range(where, heads);
  if (q.begin < 0 || q.end < q.begin)
    detail::fail_argument(where, "q", detail::concat("[", q.begin, ", ", q.end, ")"),
                          "0 <= begin <= end");
  if (k.begin < 0 || k.end < k.begin)
    detail::fail_argument(where, "k", detail::concat("[", k.begin, ", ", k.end, ")"),
                          "0 <= begin <= end");
  if (!q.empty() && !k.empty()) {
    region r;
    r.b_begin = heads.b_begin;
    r.b_end = heads.b_end;
    r.h_begin = heads.h_begin;
    r.h_end = heads.h_end;
    r.q_begin = q.begin;
    r.q_end = q.end;
    r.k_begin = k.begin;
    r.k_end = k.end;
    mask.check(r, where);
  }
  return detail::pair_state_unchecked(mask, q, k, heads);
}

/// \brief The pair states a query rank meets against one key rank: entry
/// qc * chunks_per_rank() + kc is pair_state(chunk(q_rank, qc), chunk(k_rank, kc)).
template <class Mask>
std::vector<tile_state> pair_states(const shard_plan& plan, const Mask& mask, int q_rank,
                                    int k_rank, const head_range& heads = {}) {
  const char* where = "pair_states";
  if (q_rank < 0 || q_rank >= plan.ranks())
    detail::fail_argument(where, "q_rank", q_rank, "0 <= q_rank < ", plan.ranks());
  if (k_rank < 0 || k_rank >= plan.ranks())
    detail::fail_argument(where, "k_rank", k_rank, "0 <= k_rank < ", plan.ranks());
  detail::check_plan_mask(where, plan, mask, heads);
  std::vector<tile_state> out;
  for (int qc = 0; qc < plan.chunks_per_rank(); ++qc)
    for (int kc = 0; kc < plan.chunks_per_rank(); ++kc)
      out.push_back(detail::pair_state_unchecked(mask, plan.chunk(q_rank, qc),
                                                 plan.chunk(k_rank, kc), heads));
  return out;
}

/// \brief What one rank does over a whole ring (its query chunks against every key chunk).
struct rank_work {
  Index pairs = 0;        ///< (query chunk, key chunk) pairs: chunks_per_rank()^2 * ranks()
  Index empty_pairs = 0;  ///< of them, empty by the mask's tile answer (skipped)
  Index work = 0;         ///< kept (query, key) pairs at tile granularity, summed over the heads
};

/// \brief The work of every rank of a plan under a mask (plan_work).
struct work_plan {
  std::vector<rank_work> ranks;  ///< entry r: rank r
  Index tile = 64;               ///< the tile side the work was counted with

  /// \brief Pairs over all ranks.
  Index pairs() const noexcept {
    Index n = 0;
    for (const rank_work& w : ranks) n += w.pairs;
    return n;
  }
  /// \brief Empty (skipped) pairs over all ranks.
  Index empty_pairs() const noexcept {
    Index n = 0;
    for (const rank_work& w : ranks) n += w.empty_pairs;
    return n;
  }
  /// \brief Work over all ranks.
  Index total_work() const noexcept {
    Index n = 0;
    for (const rank_work& w : ranks) n += w.work;
    return n;
  }
  /// \brief Largest work of a rank.
  Index max_work() const noexcept {
    Index n = 0;
    for (const rank_work& w : ranks) n = (std::max)(n, w.work);
    return n;
  }
  /// \brief max_work() / mean work (1 when there is no work): 1 is perfect balance; the
  /// slowest rank sets the time of a ring step, so this is the slowdown against perfect balance.
  double imbalance() const noexcept {
    const Index total = total_work();
    if (total == 0 || ranks.empty()) return 1.0;
    return static_cast<double>(max_work()) * static_cast<double>(ranks.size()) /
           static_cast<double>(total);
  }
};

/// \brief Plans a whole ring: for every rank, its pairs, the pairs the mask's tile answers make
/// empty (the ones ring_attention skips) and its work (kept pairs at \p tile granularity; see
/// the file comment), asked at the heads of \p heads and global positions [0, seq_len).
/// \pre tile >= 1; the mask answers for [0, seq_len) x [0, seq_len) and the heads.
template <class Mask>
work_plan plan_work(const shard_plan& plan, const Mask& mask, const head_range& heads = {},
                    Index tile = 64) {
  const char* where = "plan_work";
  if (tile < 1) detail::fail_argument(where, "tile", tile, ">= 1");
  detail::check_plan_mask(where, plan, mask, heads);
  work_plan wp;
  wp.tile = tile;
  wp.ranks.resize(static_cast<std::size_t>(plan.ranks()));
  for (int r = 0; r < plan.ranks(); ++r) {
    rank_work& w = wp.ranks[static_cast<std::size_t>(r)];
    for (int s = 0; s < plan.ranks(); ++s)
      for (int qc = 0; qc < plan.chunks_per_rank(); ++qc)
        for (int kc = 0; kc < plan.chunks_per_rank(); ++kc) {
          const seq_chunk q = plan.chunk(r, qc), k = plan.chunk(s, kc);
          ++w.pairs;
          if (detail::pair_state_unchecked(mask, q, k, heads) == tile_state::empty)
            ++w.empty_pairs;
          else
            w.work += detail::pair_work_unchecked(mask, q, k, heads, tile);
        }
  }
  return wp;
}

EMASK_NAMESPACE_END
