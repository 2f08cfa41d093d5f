/// \file
/// \brief Block-sparse interchange layouts: the block map of a mask as PyTorch FlexAttention's
/// BlockMask tensors, FlashAttention-4's block-sparse tensors and block-sparse-row (BSR) lists,
/// each a set of flat int32 vectors ready to copy into framework tensors, and their text
/// printout in the style of BlockMask's string form. masks/block_sparse_mask.hpp reads the same
/// layouts back as a mask expression.
///
/// The three layouts share one block map, cut from a block_mask: a block is empty (skipped),
/// partial (the kernel applies the mask_mod to it) or full (no mask test). A block that reaches
/// past q_len or k_len is never full, as in FlexAttention's create_block_mask (it pads the dense
/// mask with False to whole blocks before classifying them).
#pragma once

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "emask/core/block_mask.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief FlexAttention's default block size (`_DEFAULT_SPARSE_BLOCK_SIZE`), for queries and
/// keys.
inline constexpr Index default_sparse_block = 128;

/// \brief The problem a block-sparse layout describes: [batch, heads] slices (an extent of 1 is
/// broadcast) of q_len x k_len positions cut into q_block x kv_block blocks (the last row and
/// column of blocks may reach past the lengths).
struct block_sparse_shape {
  Index batch = 1;                       ///< batch entries (1 broadcasts)
  Index heads = 1;                       ///< heads (1 broadcasts)
  Index q_len = 0;                       ///< query positions
  Index k_len = 0;                       ///< key positions
  Index q_block = default_sparse_block;  ///< query positions per block (FlexAttention Q_BLOCK_SIZE)
  Index kv_block = default_sparse_block;  ///< key positions per block (FlexAttention KV_BLOCK_SIZE)

  /// \brief Rows of blocks, ceil(q_len / q_block).
  Index q_blocks() const noexcept { return tile_grid::count(q_len, q_block); }
  /// \brief Columns of blocks, ceil(k_len / kv_block).
  Index kv_blocks() const noexcept { return tile_grid::count(k_len, kv_block); }
  /// \brief Blocks over every slice, batch x heads x q_blocks() x kv_blocks().
  Index blocks() const noexcept { return batch * heads * q_blocks() * kv_blocks(); }
};

/// \brief PyTorch FlexAttention's BlockMask (torch.nn.attention.flex_attention), as
/// create_block_mask builds it, in flat row-major int32 vectors.
///
/// kv_num_blocks[b, h, i] counts the partial blocks of query block i and the row
/// kv_indices[b, h, i, :] lists them first, in increasing order, then every other key block in
/// increasing order (the stable argsort of `_dense_to_ordered`; readers use only the first
/// count entries). full_kv_* list the full blocks the same way. q_* and full_q_* are the
/// transposed lists (per key block, the query blocks) FlexAttention derives for the backward
/// pass. Pass each vector with its shape to torch (e.g. `torch.tensor(v).view(B, H, Q, KV)`) and
/// rebuild with `BlockMask.from_kv_blocks(kv_num_blocks, kv_indices, full_kv_num_blocks,
/// full_kv_indices, BLOCK_SIZE=(q_block, kv_block), mask_mod=..., seq_lengths=(q_len, k_len))`.
struct flex_block_mask {
  block_sparse_shape shape;                      ///< extents, lengths and block sizes
  std::vector<std::int32_t> kv_num_blocks;       ///< [B, H, Q]: partial blocks per query block
  std::vector<std::int32_t> kv_indices;          ///< [B, H, Q, KV]: partial ones first
  std::vector<std::int32_t> full_kv_num_blocks;  ///< [B, H, Q]: full blocks per query block
  std::vector<std::int32_t> full_kv_indices;     ///< [B, H, Q, KV]: full ones first
  std::vector<std::int32_t> q_num_blocks;        ///< [B, H, KV]: partial blocks per key block
  std::vector<std::int32_t> q_indices;           ///< [B, H, KV, Q]: partial ones first
  std::vector<std::int32_t> full_q_num_blocks;   ///< [B, H, KV]: full blocks per key block
  std::vector<std::int32_t> full_q_indices;      ///< [B, H, KV, Q]: full ones first

  /// \brief Fraction of the blocks that are computed (partial or full).
  double density() const;
  /// \brief FlexAttention's `sparsity()`: 100 x (1 - density()), the percentage of blocks
  /// skipped (FlexAttention divides by the positions instead of the blocks: the same when the
  /// lengths are multiples of the block sizes).
  double sparsity() const { return 100.0 * (1.0 - density()); }
};

/// \brief FlashAttention-4's block-sparse tensors (flash_attn/cute `BlockSparseTensorsTorch`):
/// the forward lists of FlexAttention's BlockMask under other names, with the same shapes,
/// order and padding (FA4's FlexAttention adapter passes kv_num_blocks as mask_block_cnt,
/// kv_indices as mask_block_idx, full_kv_* as full_block_*).
///
/// mask_block_* are the blocks the kernel applies its mask_mod to, full_block_* the ones it
/// does not. q_block is FA4's sparse_block_size_q (q_stage x tile_m: 128 on SM90, 256 on SM100
/// with two Q stages), kv_block its n_block_size (128). On import the index rows may be
/// narrower than kv_blocks() (FA4's compact form: [B, H, Q, W] with W <= KV).
struct fa4_block_sparse {
  block_sparse_shape shape;                  ///< extents, lengths and block sizes
  std::vector<std::int32_t> mask_block_cnt;  ///< [B, H, Q]: partial blocks per query block
  std::vector<std::int32_t> mask_block_idx;  ///< [B, H, Q, KV]: partial ones first
  std::vector<std::int32_t> full_block_cnt;  ///< [B, H, Q]: full blocks per query block
  std::vector<std::int32_t> full_block_idx;  ///< [B, H, Q, KV]: full ones first

  /// \brief Fraction of the blocks that are computed (partial or full).
  double density() const;
};

/// \brief Block-sparse-row lists (the indptr / indices of scipy.sparse.bsr_matrix) of the
/// non-empty blocks, the slices stacked: block row r = (b x heads + h) x q_blocks() + i, so the
/// lists are those of one bsr_matrix of shape (batch x heads x q_blocks() x q_block,
/// kv_blocks() x kv_block) with blocksize (q_block, kv_block).
struct bsr_block_sparse {
  block_sparse_shape shape;  ///< extents, lengths and block sizes
  std::vector<std::int32_t>
      indptr;  ///< [B x H x Q + 1]: row r's blocks are indices[indptr[r]:indptr[r + 1]]
  std::vector<std::int32_t>
      indices;  ///< [nnz]: key block of each non-empty block, increasing per row
  std::vector<std::uint8_t>
      block_full;  ///< [nnz] or empty: 1 for a full block, 0 for a partial one

  /// \brief Fraction of the blocks that are computed (listed).
  double density() const {
    const Index n = shape.blocks();
    return n <= 0 ? 0.0 : static_cast<double>(indices.size()) / static_cast<double>(n);
  }
};

/// \brief Options of to_string() for the block-sparse layouts (FlexAttention's
/// `to_string(grid_size=(20, 20), limit=4)`).
struct block_string_options {
  Index rows = 20;     ///< at most this many lines per slice; blocks are merged beyond
  Index cols = 20;     ///< at most this many cells per line; blocks are merged beyond
  Index limit = 4;     ///< slices drawn; the rest are summarized in one line
  bool ascii = false;  ///< '#', '+', '.' instead of the block glyphs
};

namespace detail {
inline double listed_density(const block_sparse_shape& s, const std::vector<std::int32_t>& a,
                             const std::vector<std::int32_t>& b) {
  const Index n = s.blocks();
  if (n <= 0) return 0.0;
  double listed = 0.0;
  for (std::int32_t c : a) listed += c;
  for (std::int32_t c : b) listed += c;
  return listed / static_cast<double>(n);
}

inline constexpr Index max_int32 = (std::numeric_limits<std::int32_t>::max)();

/// Checks a layout's shape for the public function \p where: extents >= 1, lengths >= 0, blocks
/// >= 1, block ids in int32 and every list addressable.
inline void check_block_sparse_shape(const char* where, const block_sparse_shape& s) {
  if (s.batch < 1) fail_argument(where, "shape.batch", s.batch, ">= 1 (1 broadcasts)");
  if (s.heads < 1) fail_argument(where, "shape.heads", s.heads, ">= 1 (1 broadcasts)");
  if (s.q_len < 0) fail_argument(where, "shape.q_len", s.q_len, ">= 0");
  if (s.k_len < 0) fail_argument(where, "shape.k_len", s.k_len, ">= 0");
  if (s.q_block < 1) fail_argument(where, "shape.q_block", s.q_block, ">= 1");
  if (s.kv_block < 1) fail_argument(where, "shape.kv_block", s.kv_block, ">= 1");
  if (s.q_blocks() > max_int32)
    fail_argument(where, "shape.q_block", s.q_block, "at most 2^31 - 1 query blocks (int32 ids)");
  if (s.kv_blocks() > max_int32)
    fail_argument(where, "shape.kv_block", s.kv_block, "at most 2^31 - 1 key blocks (int32 ids)");
  // Every list holds at most batch x heads x q_blocks x kv_blocks entries: keep that an Index.
  const Index limit = (std::numeric_limits<Index>::max)() / 8;
  Index n = s.batch;
  for (Index f : {s.heads, s.q_blocks(), s.kv_blocks()}) {
    if (f > 0 && n > limit / f)
      fail_argument(where, "shape",
                    concat(s.batch, " x ", s.heads, " x ", s.q_blocks(), " x ", s.kv_blocks()),
                    "a number of blocks that fits in memory");
    n *= f;
  }
}

/// The block map of the interchange layouts, [slice][q block][kv block].
struct block_map {
  block_sparse_shape shape;
  std::vector<tile_state> states;
};

/// The block map of \p mask: its block_mask's exact states, a block reaching past q_len or
/// k_len demoted from full to partial (FlexAttention pads with False before it classifies).
template <class Mask>
block_map block_map_of(const char* where, const Mask& mask, Index q_len, Index k_len,
                       slice_extents extents, Index q_block, Index kv_block) {
  static_assert(is_mask_v<Mask>, "emask: pass an emask mask expression (e.g. emask::causal())");
  block_map m;
  m.shape = block_sparse_shape{extents.batch, extents.heads, q_len, k_len, q_block, kv_block};
  if (extents.batch < 1)
    fail_argument(where, "extents.batch", extents.batch, ">= 1 (1 broadcasts)");
  if (extents.heads < 1)
    fail_argument(where, "extents.heads", extents.heads, ">= 1 (1 broadcasts)");
  if (q_len < 0) fail_argument(where, "q_len", q_len, ">= 0");
  if (k_len < 0) fail_argument(where, "k_len", k_len, ">= 0");
  if (q_block < 1) fail_argument(where, "q_block", q_block, ">= 1");
  if (kv_block < 1) fail_argument(where, "kv_block", kv_block, ">= 1");
  check_block_sparse_shape(where, m.shape);
  mask.check(region{0, extents.batch, 0, extents.heads, 0, q_len, 0, k_len}, where);
  const block_mask bm = materialize_block_mask(mask, q_len, k_len, q_block, kv_block, extents);
  const tile_grid& g = bm.grid();
  m.states.reserve(static_cast<std::size_t>(m.shape.blocks()));
  for (Index b = 0; b < extents.batch; ++b)
    for (Index h = 0; h < extents.heads; ++h)
      for (Index qt = 0; qt < g.q_tiles(); ++qt) {
        const bool short_rows = g.q_end(qt) - g.q_begin(qt) < q_block;
        for (Index kt = 0; kt < g.k_tiles(); ++kt) {
          tile_state st = bm.state(qt, kt, b, h);
          if (st == tile_state::full && (short_rows || g.k_end(kt) - g.k_begin(kt) < kv_block))
            st = tile_state::partial;
          m.states.push_back(st);
        }
      }
  return m;
}

/// FlexAttention's `_dense_to_ordered` of the blocks in state \p want: per row, their count,
/// and every block id of the row with those first, each part increasing (a stable argsort).
/// With \p transposed the rows are key blocks and the ids query blocks (q_num_blocks).
inline void ordered_lists(const block_map& m, tile_state want, bool transposed,
                          std::vector<std::int32_t>& counts, std::vector<std::int32_t>& indices) {
  const Index qt_n = m.shape.q_blocks(), kt_n = m.shape.kv_blocks();
  const Index slices = m.shape.batch * m.shape.heads;
  const Index rows = transposed ? kt_n : qt_n, cols = transposed ? qt_n : kt_n;
  counts.assign(static_cast<std::size_t>(slices * rows), 0);
  indices.assign(static_cast<std::size_t>(slices * rows * cols), 0);
  for (Index s = 0; s < slices; ++s)
    for (Index r = 0; r < rows; ++r) {
      const auto at = [&](Index c) {
        const Index qt = transposed ? c : r, kt = transposed ? r : c;
        return m.states[static_cast<std::size_t>((s * qt_n + qt) * kt_n + kt)];
      };
      std::int32_t* row = indices.data() + (s * rows + r) * cols;
      std::int32_t n = 0;
      for (Index c = 0; c < cols; ++c)
        if (at(c) == want) row[n++] = static_cast<std::int32_t>(c);
      counts[static_cast<std::size_t>(s * rows + r)] = n;
      for (Index c = 0; c < cols; ++c)
        if (at(c) != want) row[n++] = static_cast<std::int32_t>(c);
    }
}

/// Reads one (counts, indices) pair into \p states (rows of kv_blocks() entries, every entry
/// empty or set by an earlier pair): the first counts[r] ids of row r of \p indices (rows of
/// \p width entries) are marked \p as. Raises emask::error naming the array and the element.
inline void read_block_lists(const char* where, const block_sparse_shape& s,
                             const char* counts_name, const std::vector<std::int32_t>& counts,
                             const char* indices_name, const std::vector<std::int32_t>& indices,
                             Index width, tile_state as, const char* other_name,
                             std::vector<tile_state>& states) {
  const Index qt_n = s.q_blocks(), kt_n = s.kv_blocks();
  const Index rows = s.batch * s.heads * qt_n;
  for (Index r = 0; r < rows; ++r) {
    const std::int32_t c = counts[static_cast<std::size_t>(r)];
    if (c < 0 || c > width) fail_element(where, counts_name, r, c, "a count in [0, ", width, "]");
    for (Index j = 0; j < c; ++j) {
      const Index at = r * width + j;
      const std::int32_t kt = indices[static_cast<std::size_t>(at)];
      if (kt < 0 || kt >= kt_n)
        fail_element(where, indices_name, at, kt, "a key block in [0, ", kt_n, ") (one of the ", c,
                     " listed of row ", r, ")");
      tile_state& st = states[static_cast<std::size_t>(r * kt_n + kt)];
      if (st == as)
        fail_element(where, indices_name, at, kt, "a key block listed once per row (row ", r,
                     " lists it twice)");
      if (st != tile_state::empty)
        fail_element(where, indices_name, at, kt, "a key block not also listed in ", other_name,
                     " (row ", r, "; full and partial blocks are disjoint)");
      st = as;
    }
  }
}

/// The block map of a (partial, full) pair of count/index lists, validated for \p where: the
/// index rows are kv_blocks() wide, or (with \p compact) any width up to that. Empty full lists
/// mean no full block.
inline std::vector<tile_state> states_from_lists(
    const char* where, const block_sparse_shape& s, const char* pc_name,
    const std::vector<std::int32_t>& pc, const char* pi_name, const std::vector<std::int32_t>& pi,
    const char* fc_name, const std::vector<std::int32_t>& fc, const char* fi_name,
    const std::vector<std::int32_t>& fi, bool compact) {
  check_block_sparse_shape(where, s);
  const Index rows = s.batch * s.heads * s.q_blocks(), kt_n = s.kv_blocks();
  const auto width_of = [&](const char* c_name, const std::vector<std::int32_t>& c,
                            const char* i_name, const std::vector<std::int32_t>& i) {
    if (static_cast<Index>(c.size()) != rows)
      fail_argument(where, c_name, concat(c.size(), " entries"), rows,
                    " = batch x heads x ceil(q_len / q_block)");
    const Index n = static_cast<Index>(i.size());
    if (compact && rows > 0 && n % rows == 0 && n / rows <= kt_n) return n / rows;
    if (n != rows * kt_n)
      fail_argument(where, i_name, concat(i.size(), " entries"), rows * kt_n,
                    " = batch x heads x ceil(q_len / q_block) x ceil(k_len / kv_block)",
                    compact ? " (or a narrower whole number of entries per row)" : "");
    return kt_n;
  };
  const Index pw = width_of(pc_name, pc, pi_name, pi);
  const bool has_full = !fc.empty() || !fi.empty();
  const Index fw = has_full ? width_of(fc_name, fc, fi_name, fi) : 0;
  std::vector<tile_state> states(static_cast<std::size_t>(rows * kt_n), tile_state::empty);
  read_block_lists(where, s, pc_name, pc, pi_name, pi, pw, tile_state::partial, fi_name, states);
  if (has_full)
    read_block_lists(where, s, fc_name, fc, fi_name, fi, fw, tile_state::full, pi_name, states);
  return states;
}

/// The block map of BSR lists, validated for \p where.
inline std::vector<tile_state> states_from_bsr(const char* where, const bsr_block_sparse& m) {
  const block_sparse_shape& s = m.shape;
  check_block_sparse_shape(where, s);
  const Index rows = s.batch * s.heads * s.q_blocks(), kt_n = s.kv_blocks();
  if (static_cast<Index>(m.indptr.size()) != rows + 1)
    fail_argument(where, "indptr", concat(m.indptr.size(), " entries"), rows + 1,
                  " = batch x heads x ceil(q_len / q_block) + 1");
  if (m.indptr[0] != 0) fail_element(where, "indptr", 0, m.indptr[0], "0");
  for (Index r = 0; r < rows; ++r) {
    const std::int32_t a = m.indptr[static_cast<std::size_t>(r)];
    const std::int32_t e = m.indptr[static_cast<std::size_t>(r + 1)];
    if (e < a || e - a > kt_n)
      fail_element(where, "indptr", r + 1, e, "a value in [", a, ", ", a + kt_n, "] (row ", r,
                   " holds at most ", kt_n, " blocks)");
  }
  if (static_cast<Index>(m.indices.size()) != m.indptr.back())
    fail_argument(where, "indices", concat(m.indices.size(), " entries"), m.indptr.back(),
                  " = indptr[", rows, "]");
  if (!m.block_full.empty() && m.block_full.size() != m.indices.size())
    fail_argument(where, "block_full", concat(m.block_full.size(), " entries"),
                  "none, or one per entry of indices (", m.indices.size(), ")");
  std::vector<tile_state> states(static_cast<std::size_t>(rows * kt_n), tile_state::empty);
  for (Index r = 0; r < rows; ++r)
    for (Index j = m.indptr[static_cast<std::size_t>(r)];
         j < m.indptr[static_cast<std::size_t>(r + 1)]; ++j) {
      const std::int32_t kt = m.indices[static_cast<std::size_t>(j)];
      if (kt < 0 || kt >= kt_n)
        fail_element(where, "indices", j, kt, "a key block in [0, ", kt_n, ") (row ", r, ")");
      tile_state& st = states[static_cast<std::size_t>(r * kt_n + kt)];
      if (st != tile_state::empty)
        fail_element(where, "indices", j, kt, "a key block listed once per row (row ", r,
                     " lists it twice)");
      const std::uint8_t f = m.block_full.empty() ? 0 : m.block_full[static_cast<std::size_t>(j)];
      if (f > 1) fail_element(where, "block_full", j, static_cast<int>(f), "0 or 1");
      st = f ? tile_state::full : tile_state::partial;
    }
  return states;
}

/// The printout: a header line with the shape and the sparsity, then per slice a grid with two
/// characters per cell, a cell merging up to ceil(blocks / opt.rows) x ceil(blocks / opt.cols)
/// blocks: full glyph when all of them are full, blank when none is computed, shade otherwise.
inline std::string block_string(const char* where, const char* name, const block_sparse_shape& s,
                                const std::vector<tile_state>& states,
                                const block_string_options& opt) {
  if (opt.rows < 1) fail_argument(where, "options.rows", opt.rows, ">= 1");
  if (opt.cols < 1) fail_argument(where, "options.cols", opt.cols, ">= 1");
  if (opt.limit < 0) fail_argument(where, "options.limit", opt.limit, ">= 0");
  const Index qt_n = s.q_blocks(), kt_n = s.kv_blocks(), slices = s.batch * s.heads;
  Index computed = 0;
  for (tile_state t : states) computed += t != tile_state::empty ? 1 : 0;
  const double density =
      states.empty() ? 0.0 : static_cast<double>(computed) / static_cast<double>(states.size());
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.2f", 100.0 * (1.0 - density));
  std::string out = concat(name, "(shape=(", s.batch, ", ", s.heads, ", ", s.q_len, ", ", s.k_len,
                           "), block=(", s.q_block, ", ", s.kv_block, "), sparsity=", pct, "%,\n");
  const char* full_glyph = opt.ascii ? "##" : "\u2588\u2588";
  const char* partial_glyph = opt.ascii ? "++" : "\u2591\u2591";
  const char* empty_glyph = opt.ascii ? ".." : "  ";
  const auto step_of = [](Index n, Index m) { return n <= m ? Index(1) : (n - 1) / m + 1; };
  const Index rs = step_of(qt_n, opt.rows), cs = step_of(kt_n, opt.cols);
  for (Index sl = 0; sl < slices; ++sl) {
    if (sl == opt.limit) {
      out += concat("... (", slices - sl, " more slices; raise block_string_options::limit)\n");
      break;
    }
    out += concat("(", sl / s.heads, ", ", sl % s.heads, ")\n");
    for (Index r = 0; r < qt_n; r += rs) {
      for (Index c = 0; c < kt_n; c += cs) {
        bool any = false, all = true;
        for (Index qt = r; qt < (std::min)(qt_n, r + rs); ++qt)
          for (Index kt = c; kt < (std::min)(kt_n, c + cs); ++kt) {
            const tile_state t = states[static_cast<std::size_t>((sl * qt_n + qt) * kt_n + kt)];
            any = any || t != tile_state::empty;
            all = all && t == tile_state::full;
          }
        out += all ? full_glyph : (any ? partial_glyph : empty_glyph);
      }
      out += '\n';
    }
  }
  out += ")";
  return out;
}
}  // namespace detail

inline double flex_block_mask::density() const {
  return detail::listed_density(shape, kv_num_blocks, full_kv_num_blocks);
}
inline double fa4_block_sparse::density() const {
  return detail::listed_density(shape, mask_block_cnt, full_block_cnt);
}

/// \brief FlexAttention's BlockMask of \p mask over q_len x k_len positions of every slice of
/// \p extents, in blocks of q_block x kv_block (`create_block_mask(mask_mod, B, H, Q_LEN,
/// KV_LEN, BLOCK_SIZE=(q_block, kv_block))`, with full blocks separated). Cost: a
/// materialize_block_mask() plus O(blocks) for the lists.
template <class Mask>
flex_block_mask to_flex_block_mask(const Mask& mask, Index q_len, Index k_len,
                                   slice_extents extents = {}, Index q_block = default_sparse_block,
                                   Index kv_block = default_sparse_block) {
  const detail::block_map m =
      detail::block_map_of("to_flex_block_mask", mask, q_len, k_len, extents, q_block, kv_block);
  flex_block_mask f;
  f.shape = m.shape;
  detail::ordered_lists(m, tile_state::partial, false, f.kv_num_blocks, f.kv_indices);
  detail::ordered_lists(m, tile_state::full, false, f.full_kv_num_blocks, f.full_kv_indices);
  detail::ordered_lists(m, tile_state::partial, true, f.q_num_blocks, f.q_indices);
  detail::ordered_lists(m, tile_state::full, true, f.full_q_num_blocks, f.full_q_indices);
  return f;
}

/// \brief FlashAttention-4's block-sparse tensors of \p mask: the forward lists of
/// to_flex_block_mask() under FA4's names (q_block = FA4's sparse_block_size_q).
template <class Mask>
fa4_block_sparse to_fa4_block_sparse(const Mask& mask, Index q_len, Index k_len,
                                     slice_extents extents = {},
                                     Index q_block = default_sparse_block,
                                     Index kv_block = default_sparse_block) {
  const detail::block_map m =
      detail::block_map_of("to_fa4_block_sparse", mask, q_len, k_len, extents, q_block, kv_block);
  fa4_block_sparse f;
  f.shape = m.shape;
  detail::ordered_lists(m, tile_state::partial, false, f.mask_block_cnt, f.mask_block_idx);
  detail::ordered_lists(m, tile_state::full, false, f.full_block_cnt, f.full_block_idx);
  return f;
}

/// \brief Block-sparse-row lists of the non-empty blocks of \p mask, with a full flag per
/// block. Raises emask::error when more than 2^31 - 1 blocks are non-empty (int32 indptr).
template <class Mask>
bsr_block_sparse to_bsr_block_sparse(const Mask& mask, Index q_len, Index k_len,
                                     slice_extents extents = {},
                                     Index q_block = default_sparse_block,
                                     Index kv_block = default_sparse_block) {
  const char* where = "to_bsr_block_sparse";
  const detail::block_map m =
      detail::block_map_of(where, mask, q_len, k_len, extents, q_block, kv_block);
  const Index kt_n = m.shape.kv_blocks();
  const Index rows = m.shape.batch * m.shape.heads * m.shape.q_blocks();
  bsr_block_sparse f;
  f.shape = m.shape;
  f.indptr.reserve(static_cast<std::size_t>(rows + 1));
  f.indptr.push_back(0);
  for (Index r = 0; r < rows; ++r) {
    for (Index kt = 0; kt < kt_n; ++kt) {
      const tile_state st = m.states[static_cast<std::size_t>(r * kt_n + kt)];
      if (st == tile_state::empty) continue;
      f.indices.push_back(static_cast<std::int32_t>(kt));
      f.block_full.push_back(st == tile_state::full ? 1 : 0);
    }
    if (static_cast<Index>(f.indices.size()) > detail::max_int32)
      detail::fail_argument(where, "mask",
                            detail::concat("more than ", detail::max_int32, " non-empty blocks"),
                            "at most 2^31 - 1 (int32 indptr): use larger blocks");
    f.indptr.push_back(static_cast<std::int32_t>(f.indices.size()));
  }
  return f;
}

/// \brief The layout as text, in the style of FlexAttention's `str(block_mask)`: a header with
/// the shape, the block sizes and the sparsity (percentage of blocks skipped), then a grid per
/// slice, "██" for full blocks, "░░" for partial ones (a mask test per pair), blank for
/// skipped ones. FlexAttention draws every computed block as "██". Validates the lists.
inline std::string to_string(const flex_block_mask& m, const block_string_options& opt = {}) {
  const char* where = "to_string";
  return detail::block_string(
      where, "BlockMask", m.shape,
      detail::states_from_lists(where, m.shape, "kv_num_blocks", m.kv_num_blocks, "kv_indices",
                                m.kv_indices, "full_kv_num_blocks", m.full_kv_num_blocks,
                                "full_kv_indices", m.full_kv_indices, false),
      opt);
}
/// \brief FA4's tensors as text (see to_string(const flex_block_mask&, ...)).
inline std::string to_string(const fa4_block_sparse& m, const block_string_options& opt = {}) {
  const char* where = "to_string";
  return detail::block_string(
      where, "BlockSparseTensors", m.shape,
      detail::states_from_lists(where, m.shape, "mask_block_cnt", m.mask_block_cnt,
                                "mask_block_idx", m.mask_block_idx, "full_block_cnt",
                                m.full_block_cnt, "full_block_idx", m.full_block_idx, true),
      opt);
}
/// \brief BSR lists as text (see to_string(const flex_block_mask&, ...)).
inline std::string to_string(const bsr_block_sparse& m, const block_string_options& opt = {}) {
  return detail::block_string("to_string", "BSR", m.shape, detail::states_from_bsr("to_string", m),
                              opt);
}

/// \brief Writes to_string(m).
inline std::ostream& operator<<(std::ostream& os, const flex_block_mask& m) {
  return os << to_string(m);
}
/// \brief Writes to_string(m).
inline std::ostream& operator<<(std::ostream& os, const fa4_block_sparse& m) {
  return os << to_string(m);
}
/// \brief Writes to_string(m).
inline std::ostream& operator<<(std::ostream& os, const bsr_block_sparse& m) {
  return os << to_string(m);
}

EMASK_NAMESPACE_END
