/// \file
/// \brief Top-k block selection (MoBA, NSA's selected branch, a block form of DeepSeek's DSA):
/// per query block, the k key blocks with the highest scores among the causally allowed ones,
/// the query's own block (and optionally the first blocks and a local window) always among them,
/// then causal at token level. The selection is a mask expression whose tile answers are exact
/// and cost O(log k), so the tiled kernels visit only the chosen blocks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "emask/config.hpp"
#include "emask/core/mask.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/kernels/tensor_view.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief What a top-k block selection forces besides the query's own block, and where its
/// queries sit.
struct block_topk_options {
  /// The first n key blocks, kept by every query block (NSA's "initial block": 1).
  Index n_sink_blocks = 0;
  /// The `local_blocks` most recent key blocks up to and including the query's own block (NSA's
  /// "2 local blocks": 2). The own block is always kept, so 0 and 1 are the same.
  Index local_blocks = 1;
  /// Absolute position of query row 0 (decoding, a shard: k_len - q_len for the newest tokens).
  /// Pass the same q_offset to the kernel, which asks the mask about absolute positions.
  Index q_offset = 0;
};

namespace detail {

/// A score as an unsigned key with the same order (larger score, larger key): a bit-pattern map,
/// so the ranking is exact and the same under -ffast-math. -0 ranks as +0.
template <class S>
std::uint64_t score_rank(S x) noexcept {
  using U = typename ieee_layout<S>::bits;
  U u;
  std::memcpy(&u, &x, sizeof u);
  const U sign = static_cast<U>(~ieee_layout<S>::magnitude);
  if ((u & ieee_layout<S>::magnitude) == 0) u = 0;
  return static_cast<std::uint64_t>((u & sign) != 0 ? static_cast<U>(~u)
                                                    : static_cast<U>(u | sign));
}

/// Chooses the blocks of one query block (absolute block index \p qb) from \p row (k_blocks
/// scores, unit stride) and appends them, increasing, to \p out. \p forced and \p cand are
/// scratch.
template <class S>
void select_topk_row(const S* row, Index k_blocks, Index qb, Index top_k, Index n_sink, Index local,
                     std::vector<unsigned char>& forced,
                     std::vector<std::pair<std::uint64_t, Index>>& cand, std::vector<Index>& out) {
  const Index allowed = (std::min)(qb + 1, k_blocks);  // key block <= query block
  if (allowed <= 0) return;
  forced.assign(static_cast<std::size_t>(allowed), 0);
  Index n_forced = 0;
  auto force = [&](Index kb) {
    unsigned char& f = forced[static_cast<std::size_t>(kb)];
    n_forced += f ? 0 : 1;
    f = 1;
  };
  for (Index kb = 0; kb < (std::min)(n_sink, allowed); ++kb) force(kb);
  // The local window [qb - w + 1, qb], the own block included (w >= 1).
  const Index w = (std::max)(local, Index(1));
  for (Index kb = (std::max)(Index(0), qb - w + 1); kb < allowed; ++kb) force(kb);
  cand.clear();
  for (Index kb = 0; kb < allowed; ++kb) {
    const S s = row[kb];
    // -inf (and NaN, ranked as -inf) marks a block that is not a candidate, as in MoBA's gate.
    if (!forced[static_cast<std::size_t>(kb)] && !is_nan(s) && !is_neg_inf(s))
      cand.emplace_back(score_rank(s), kb);
  }
  const std::size_t room = static_cast<std::size_t>((std::max)(Index(0), top_k - n_forced));
  const auto better = [](const std::pair<std::uint64_t, Index>& a,
                         const std::pair<std::uint64_t, Index>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  if (cand.size() > room) {
    std::nth_element(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(room), cand.end(),
                     better);
    cand.resize(room);
  }
  for (const auto& c : cand) forced[static_cast<std::size_t>(c.second)] = 1;
  for (Index kb = 0; kb < allowed; ++kb)
    if (forced[static_cast<std::size_t>(kb)]) out.push_back(kb);
}

/// Query blocks touched by positions [q_offset, q_offset + q_len) in blocks of \p bs.
inline Index query_block_count(Index q_offset, Index q_len, Index bs) noexcept {
  return q_len > 0 ? (q_offset + q_len - 1) / bs - q_offset / bs + 1 : 0;
}

}  // namespace detail

/// \brief A top-k block selection and the mask over it.
///
/// Positions are cut into blocks of `block_size`: key block `j` holds keys
/// `[j * block_size, (j + 1) * block_size)`, query block `i` the query positions of the same
/// range (absolute positions, top-left aligned as causal(): query position p keeps keys <= p;
/// for decoding set options.q_offset). For every (batch, head, query block) the selection holds
/// the sorted list of chosen key blocks:
/// - candidates are the key blocks at or before the query block (`j <= i`, `j < k_blocks`);
/// - the query's own block, the first `n_sink_blocks` blocks and the `local_blocks` most recent
///   blocks are always chosen, and they count toward `top_k` (MoBA and NSA count them);
/// - the remaining places go to the highest scores, a lower block index first on equal scores;
///   a score of -inf or NaN (ranked as -inf) is never chosen by score;
/// so a query block has min(top_k, i + 1, k_blocks) blocks unless -inf or NaN scores leave fewer.
///
/// keep(b, h, q, k) = block(k) chosen for block(q) and k <= q, for q in [q_offset,
/// q_offset + q_len) and k in [0, k_len). Tile answers are exact, O(log top_k) per query block a
/// tile touches: a tile of a chosen block strictly below the diagonal is full, one of an unchosen
/// block empty, so with blocks that are the kernel's tiles (attention_options tile_q and tile_k
/// equal to block_size, or block_size a multiple of them) the tiled kernel computes only the
/// chosen blocks. An extent of 1 in batch or heads is broadcast.
class block_topk : public mask_base<block_topk> {
 public:
  /// tile() never answers partial for an empty or full tile
  static constexpr bool exact_tiles = true;

  /// \brief An empty selection (no positions); the factories build real ones.
  block_topk() = default;

  /// \brief Selection from block scores [batch, heads, query blocks, key blocks]: a view whose
  /// length is the number of query blocks touched by positions [q_offset, q_offset + q_len)
  /// (row i is absolute block q_offset / block_size + i) and whose dim is
  /// ceil(k_len / block_size). Scores of blocks after the query block are not read. A batch or
  /// head extent of 1 serves every batch entry or head.
  /// \pre top_k >= n_sink_blocks + max(local_blocks, 1) (the forced blocks count toward top_k),
  /// block_size >= 1, q_len, k_len >= 0.
  template <class S>
  static block_topk from_scores(const tensor_view<S>& scores, Index q_len, Index k_len, Index top_k,
                                Index block_size, const block_topk_options& options = {}) {
    using T = std::remove_const_t<S>;
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                  "emask::block_topk::from_scores: pass float or double scores");
    const char* where = "block_topk::from_scores";
    block_topk sel = prepare(where, q_len, k_len, top_k, block_size, options);
    check_scores(where, "scores", scores.length(), scores.dim(), sel);
    sel.fill(scores.data(), scores.batch(), scores.heads(), scores.stride_b(), scores.stride_h(),
             scores.stride_l());
    return sel;
  }

  /// \brief Selection from the block scores of one slice (query blocks x key blocks, see the
  /// overload above), shared by every batch entry and head.
  template <class Derived>
  static block_topk from_scores(const Eigen::DenseBase<Derived>& scores, Index q_len, Index k_len,
                                Index top_k, Index block_size,
                                const block_topk_options& options = {}) {
    using T = typename Derived::Scalar;
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                  "emask::block_topk::from_scores: pass float or double scores");
    const char* where = "block_topk::from_scores";
    block_topk sel = prepare(where, q_len, k_len, top_k, block_size, options);
    check_scores(where, "scores", scores.rows(), scores.cols(), sel);
    // Row-major storage binds without a copy; any other expression is evaluated once.
    const Eigen::Ref<const row_matrix<T>, 0, Eigen::OuterStride<>> s(scores.derived());
    sel.fill(s.data(), 1, 1, 0, 0, s.outerStride());
    return sel;
  }

  /// \brief MoBA's parameter-free gate, per query block: with K [batch, kv_heads, k_len, D]
  /// mean-pooled per key block, query block i scores key block j with mean(Q rows of i) .
  /// mean(K rows of j) (the mean over the block's tokens of MoBA's per-token gate), then
  /// from_scores() with top_k counting the own block, as MoBA does. Q is
  /// [batch, heads, q_len, D]; grouped-query K (kv_heads dividing heads) is read in place.
  /// \pre q and k have the same batch and dim, k.heads() divides q.heads().
  template <class SQ, class SK>
  static block_topk from_moba_gate(const tensor_view<SQ>& q, const tensor_view<SK>& k, Index top_k,
                                   Index block_size, const block_topk_options& options = {}) {
    const char* where = "block_topk::from_moba_gate";
    block_topk sel = prepare(where, q.length(), k.length(), top_k, block_size, options);
    const row_matrix<double> gate = gate_scores(where, q, k, block_size, options.q_offset);
    sel.fill(gate.data(), q.batch(), q.heads(), q.heads() * sel.q_blocks_ * sel.k_blocks_,
             sel.q_blocks_ * sel.k_blocks_, sel.k_blocks_);
    return sel;
  }

  /// \brief The gate from_moba_gate() ranks: [batch * heads * query blocks, key blocks], row
  /// (b * heads + h) * query blocks + i, every (i, j) computed (in double, in a fixed order).
  template <class SQ, class SK>
  static row_matrix<double> moba_gate(const tensor_view<SQ>& q, const tensor_view<SK>& k,
                                      Index block_size, Index q_offset = 0) {
    const char* where = "block_topk::moba_gate";
    if (block_size < 1) detail::fail_argument(where, "block_size", block_size, ">= 1");
    if (q_offset < 0 || q_offset > unbounded - q.length())
      detail::fail_argument(where, "q_offset", q_offset, ">= 0 and <= emask::unbounded - q_len");
    return gate_scores(where, q, k, block_size, q_offset);
  }

  /// \brief Positions per block.
  Index block_size() const noexcept { return bs_; }
  /// \brief Blocks per query block, the forced ones included.
  Index top_k() const noexcept { return top_k_; }
  /// \brief Forced first blocks.
  Index n_sink_blocks() const noexcept { return n_sink_; }
  /// \brief Forced most recent blocks (the own block included).
  Index local_blocks() const noexcept { return local_; }
  /// \brief Absolute position of query row 0.
  Index q_offset() const noexcept { return q_lo_; }
  /// \brief Query positions covered, from q_offset().
  Index q_len() const noexcept { return q_hi_ - q_lo_; }
  /// \brief Key positions covered, from 0.
  Index k_len() const noexcept { return k_len_; }
  /// \brief Absolute block index of query block row 0 (q_offset() / block_size()).
  Index first_q_block() const noexcept { return qb0_; }
  /// \brief Query blocks held (rows of the scores).
  Index q_blocks() const noexcept { return q_blocks_; }
  /// \brief Key blocks, ceil(k_len / block_size).
  Index k_blocks() const noexcept { return k_blocks_; }
  /// \brief Batch extent (1 = shared by every batch entry).
  Index batch() const noexcept { return batch_; }
  /// \brief Head extent (1 = shared by every head).
  Index heads() const noexcept { return heads_; }

  /// \brief Number of key blocks chosen for query block row \p i of slice (b, h).
  Index chosen_count(Index i, Index b = 0, Index h = 0) const {
    EMASK_ASSERT(i >= 0 && i < q_blocks_);
    const std::size_t r = static_cast<std::size_t>(slice(b, h) * q_blocks_ + i);
    return row_start_[r + 1] - row_start_[r];
  }
  /// \brief The key blocks chosen for query block row \p i of slice (b, h), increasing
  /// (chosen_count(i, b, h) entries).
  const Index* chosen_blocks(Index i, Index b = 0, Index h = 0) const {
    EMASK_ASSERT(i >= 0 && i < q_blocks_);
    return cols_.data() + row_start_[static_cast<std::size_t>(slice(b, h) * q_blocks_ + i)];
  }
  /// \brief The same as a vector.
  std::vector<Index> chosen(Index i, Index b = 0, Index h = 0) const {
    const Index* p = chosen_blocks(i, b, h);
    return std::vector<Index>(p, p + chosen_count(i, b, h));
  }

  // Mask-expression interface.
  /// \brief Whether pair (q, k) of batch entry b and head h is kept.
  bool keep(Index b, Index h, Index q, Index k) const {
    if (q < q_lo_ || q >= q_hi_ || k < 0 || k >= k_len_ || k > q) return false;
    const Index* first = row_begin(b, h, q / bs_);
    return std::binary_search(first, row_end(first, b, h, q / bs_), k / bs_);
  }

  /// \brief State of the tile [q0, q1) x [k0, k1): exact, two binary searches per query block
  /// the tile touches.
  tile_state tile(Index b, Index h, Index q0, Index q1, Index k0, Index k1) const {
    if (q0 >= q1 || k0 >= k1) return tile_state::empty;
    const Index a0 = (std::max)(q0, q_lo_), a1 = (std::min)(q1, q_hi_);
    const Index c0 = (std::max)(k0, Index(0)), c1 = (std::min)(k1, k_len_);
    if (a0 >= a1 || c0 >= c1) return tile_state::empty;
    bool all = a0 == q0 && a1 == q1 && c0 == k0 && c1 == k1;  // rows or keys outside: none kept
    bool any = false;
    const Index kb0 = c0 / bs_, kb1 = (c1 - 1) / bs_;
    for (Index qb = a0 / bs_; qb <= (a1 - 1) / bs_; ++qb) {
      const Index r0 = (std::max)(a0, qb * bs_), r1 = (std::min)(a1, (qb + 1) * bs_);
      const Index* first = row_begin(b, h, qb);
      const Index* last = row_end(first, b, h, qb);
      const Index* lo = std::lower_bound(first, last, kb0);
      const Index* hi = std::upper_bound(lo, last, kb1);
      // Some pair: the first key of the lowest chosen block, kept by the block's last row.
      if (lo != hi && (std::max)(c0, *lo * bs_) <= r1 - 1) any = true;
      // Every pair: every block of the tile chosen and every key at or before the first row.
      if (hi - lo != kb1 - kb0 + 1 || c1 - 1 > r0) all = false;
      if (any && !all) return tile_state::partial;
    }
    return any ? (all ? tile_state::full : tile_state::partial) : tile_state::empty;
  }

  /// \brief Keys of row q kept inside [k0, k1): exact when the chosen blocks there are
  /// consecutive, else their hull. O(log top_k).
  key_span keys(Index b, Index h, Index q, Index k0, Index k1) const {
    if (q < q_lo_ || q >= q_hi_) return detail::empty_span(k0);
    const Index c0 = (std::max)(k0, Index(0));
    const Index top = (std::min)((std::min)(k1, k_len_), q + 1);  // causal: k <= q
    if (c0 >= top) return detail::empty_span(k0);
    const Index* first = row_begin(b, h, q / bs_);
    const Index* last = row_end(first, b, h, q / bs_);
    const Index* lo = std::lower_bound(first, last, c0 / bs_);
    const Index* hi = std::upper_bound(lo, last, (top - 1) / bs_);
    if (lo == hi) return detail::empty_span(k0);
    const Index fb = *lo, lb = *(hi - 1);
    return {(std::max)(c0, fb * bs_), (std::min)(top, (lb + 1) * bs_), lb - fb == hi - lo - 1};
  }

  /// \brief Raises emask::error for a batch entry or head beyond the selection's extents (unless
  /// 1), query positions outside [q_offset, q_offset + q_len) or keys outside [0, k_len).
  void check(const region& r, const char* where) const {
    if (batch_ != 1 && (r.b_begin < 0 || r.b_end > batch_))
      detail::fail_argument(where, "block_topk batch", batch_, "1 or at least ", r.b_end,
                            " (the batch the selection is used with)");
    if (heads_ != 1 && (r.h_begin < 0 || r.h_end > heads_))
      detail::fail_argument(where, "block_topk heads", heads_, "1 or at least ", r.h_end,
                            " (the heads the selection is used with)");
    if (r.q_begin < r.q_end && (r.q_begin < q_lo_ || r.q_end > q_hi_))
      detail::fail_argument(where, "query positions",
                            detail::concat("[", r.q_begin, ", ", r.q_end, ")"), "a range inside [",
                            q_lo_, ", ", q_hi_, ") the selection was built for (q_offset ", q_lo_,
                            ", q_len ", q_hi_ - q_lo_, ")");
    if (r.k_begin < r.k_end && (r.k_begin < 0 || r.k_end > k_len_))
      detail::fail_argument(where, "key positions",
                            detail::concat("[", r.k_begin, ", ", r.k_end, ")"),
                            "a range inside [0, ", k_len_, ") the selection was built for");
  }

 private:
  static block_topk prepare(const char* where, Index q_len, Index k_len, Index top_k,
                            Index block_size, const block_topk_options& o) {
    if (top_k < 1) detail::fail_argument(where, "top_k", top_k, ">= 1");
    if (block_size < 1) detail::fail_argument(where, "block_size", block_size, ">= 1");
    if (q_len < 0 || q_len > unbounded)
      detail::fail_argument(where, "q_len", q_len, ">= 0 and <= emask::unbounded");
    if (k_len < 0 || k_len > unbounded)
      detail::fail_argument(where, "k_len", k_len, ">= 0 and <= emask::unbounded");
    if (o.n_sink_blocks < 0 || o.n_sink_blocks > unbounded)
      detail::fail_argument(where, "options.n_sink_blocks", o.n_sink_blocks,
                            ">= 0 and <= emask::unbounded");
    if (o.local_blocks < 0 || o.local_blocks > unbounded)
      detail::fail_argument(where, "options.local_blocks", o.local_blocks,
                            ">= 0 and <= emask::unbounded");
    if (o.q_offset < 0 || o.q_offset > unbounded - q_len)
      detail::fail_argument(where, "options.q_offset", o.q_offset,
                            ">= 0 and <= ", unbounded - q_len, " (emask::unbounded - q_len)");
    const Index forced = o.n_sink_blocks + (std::max)(o.local_blocks, Index(1));
    if (top_k < forced)
      detail::fail_argument(where, "top_k", top_k, ">= ", forced,
                            " (n_sink_blocks + max(local_blocks, 1): the forced blocks count "
                            "toward top_k)");
    block_topk sel;
    sel.bs_ = block_size;
    sel.top_k_ = top_k;
    sel.n_sink_ = o.n_sink_blocks;
    sel.local_ = o.local_blocks;
    sel.q_lo_ = o.q_offset;
    sel.q_hi_ = o.q_offset + q_len;
    sel.k_len_ = k_len;
    sel.qb0_ = o.q_offset / block_size;
    sel.q_blocks_ = detail::query_block_count(o.q_offset, q_len, block_size);
    sel.k_blocks_ = k_len / block_size + (k_len % block_size != 0 ? 1 : 0);
    return sel;
  }

  static void check_scores(const char* where, const char* arg, Index rows, Index cols,
                           const block_topk& sel) {
    if (rows != sel.q_blocks_)
      detail::fail_argument(where, arg, detail::concat(rows, " query-block rows"), sel.q_blocks_,
                            " (the blocks of ", sel.bs_, " touched by query positions [", sel.q_lo_,
                            ", ", sel.q_hi_, "))");
    if (cols != sel.k_blocks_)
      detail::fail_argument(where, arg, detail::concat(cols, " key-block columns"), sel.k_blocks_,
                            " (ceil(k_len ", sel.k_len_, " / block_size ", sel.bs_, "))");
  }

  /// Chooses the blocks of every row; slice (b, h) of the scores starts at
  /// data + b * sb + h * sh, its rows sl apart.
  template <class S>
  void fill(const S* data, Index batch, Index heads, Index sb, Index sh, Index sl) {
    batch_ = batch;
    heads_ = heads;
    row_start_.assign(1, 0);
    cols_.clear();
    cols_.reserve(static_cast<std::size_t>(batch * heads * q_blocks_ *
                                           (std::min)(top_k_, (std::max)(k_blocks_, Index(1)))));
    std::vector<unsigned char> forced;
    std::vector<std::pair<std::uint64_t, Index>> cand;
    for (Index b = 0; b < batch; ++b)
      for (Index h = 0; h < heads; ++h)
        for (Index i = 0; i < q_blocks_; ++i) {
          detail::select_topk_row(data + b * sb + h * sh + i * sl, k_blocks_, qb0_ + i, top_k_,
                                  n_sink_, local_, forced, cand, cols_);
          row_start_.push_back(static_cast<Index>(cols_.size()));
        }
  }

  template <class SQ, class SK>
  static row_matrix<double> gate_scores(const char* where, const tensor_view<SQ>& q,
                                        const tensor_view<SK>& k, Index bs, Index q_offset) {
    static_assert(std::is_floating_point<std::remove_const_t<SQ>>::value &&
                      std::is_floating_point<std::remove_const_t<SK>>::value,
                  "emask::block_topk: pass float or double queries and keys");
    if (k.batch() != q.batch())
      detail::fail_argument(where, "k", detail::concat(k.batch(), " batch entries"), q.batch(),
                            " (the batch of q)");
    if (k.dim() != q.dim())
      detail::fail_argument(where, "k", detail::concat("dim ", k.dim()), q.dim(),
                            " (the dim of q)");
    if (q.heads() > 0 && (k.heads() < 1 || q.heads() % k.heads() != 0))
      detail::fail_argument(where, "k", detail::concat(k.heads(), " heads"), "a divisor of the ",
                            q.heads(), " heads of q (grouped-query)");
    const Index B = q.batch(), H = q.heads(), D = q.dim(), lq = q.length(), lk = k.length();
    const Index nqb = detail::query_block_count(q_offset, lq, bs);
    const Index nkb = lk / bs + (lk % bs != 0 ? 1 : 0);
    row_matrix<double> gate = row_matrix<double>::Zero(B * H * nqb, nkb);
    row_matrix<double> kbar(nkb, D), qbar(nqb, D);
    for (Index b = 0; b < B; ++b)
      for (Index h = 0; h < H; ++h) {
        // Mean of the rows of each block, summed in row order (the same answer on every build).
        const auto block_means = [&](const auto& view, Index hv, Index len, Index first_pos,
                                     row_matrix<double>& means) {
          means.setZero();
          std::vector<Index> n(static_cast<std::size_t>(means.rows()), 0);
          for (Index t = 0; t < len; ++t) {
            const Index blk = (first_pos + t) / bs - first_pos / bs;
            const auto* row = view.slice_data(b, hv) + t * view.stride_l();
            for (Index c = 0; c < D; ++c) means(blk, c) += static_cast<double>(row[c]);
            ++n[static_cast<std::size_t>(blk)];
          }
          for (Index r = 0; r < means.rows(); ++r)
            if (n[static_cast<std::size_t>(r)] > 0)
              means.row(r) /= static_cast<double>(n[static_cast<std::size_t>(r)]);
        };
        block_means(q, h, lq, q_offset, qbar);
        block_means(k, h / (H / k.heads()), lk, Index(0), kbar);
        for (Index i = 0; i < nqb; ++i)
          for (Index j = 0; j < nkb; ++j) {
            double s = 0;
            for (Index c = 0; c < D; ++c) s += qbar(i, c) * kbar(j, c);
            gate((b * H + h) * nqb + i, j) = s;
          }
      }
    return gate;
  }

  Index slice(Index b, Index h) const noexcept {
    return (batch_ == 1 ? 0 : b) * heads_ + (heads_ == 1 ? 0 : h);
  }
  /// First chosen block of absolute query block qb of slice (b, h).
  const Index* row_begin(Index b, Index h, Index qb) const {
    EMASK_ASSERT(qb - qb0_ >= 0 && qb - qb0_ < q_blocks_);
    return cols_.data() + row_start_[static_cast<std::size_t>(slice(b, h) * q_blocks_ + qb - qb0_)];
  }
  const Index* row_end(const Index* first, Index b, Index h, Index qb) const {
    const std::size_t r = static_cast<std::size_t>(slice(b, h) * q_blocks_ + qb - qb0_);
    return first + (row_start_[r + 1] - row_start_[r]);
  }

  Index bs_ = 1, top_k_ = 1, n_sink_ = 0, local_ = 1;
  Index q_lo_ = 0, q_hi_ = 0, k_len_ = 0, qb0_ = 0, q_blocks_ = 0, k_blocks_ = 0;
  Index batch_ = 1, heads_ = 1;
  std::vector<Index> row_start_{0};  // [slice * q_blocks + i] -> first entry of cols_
  std::vector<Index> cols_;          // chosen key blocks, row after row, increasing
};

EMASK_NAMESPACE_END
