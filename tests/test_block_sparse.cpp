// Block-sparse interchange: export to FlexAttention / FA4 / BSR lists checked against a
// brute-force block map, hand-written goldens, round trips through the importers (tile answers
// and keep), the text printout, bad input, and the kernels on an imported mask.
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include <emask/core/block_sparse.hpp>
#include <emask/kernels/attention.hpp>
#include <emask/masks/block_sparse_mask.hpp>
#include "kernel_variants.hpp"

#include "mask_testing.hpp"

using namespace emask;
using Catch::Matchers::StartsWith;
using emask_test::check_mask;
using emask_test::rng;
using i32 = std::vector<std::int32_t>;

namespace {

// The block map by brute force: FlexAttention's create_block_mask pads with False and sums each
// block, so a block reaching past a length is never full.
template <class Mask>
std::vector<tile_state> brute_map(const Mask& m, Index B, Index H, Index lq, Index lk, Index qb,
                                  Index kb) {
  const Index qt_n = (lq + qb - 1) / qb, kt_n = (lk + kb - 1) / kb;
  std::vector<tile_state> out;
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index qt = 0; qt < qt_n; ++qt)
        for (Index kt = 0; kt < kt_n; ++kt) {
          Index kept = 0;
          for (Index q = qt * qb; q < std::min(lq, qt * qb + qb); ++q)
            for (Index k = kt * kb; k < std::min(lk, kt * kb + kb); ++k) kept += m.keep(b, h, q, k);
          out.push_back(kept == 0 ? tile_state::empty
                                  : (kept == qb * kb ? tile_state::full : tile_state::partial));
        }
  return out;
}

// One ordered pair (counts [rows], indices [rows, cols]) against the map: per row, the ids in
// state `want` first, increasing, then the others, increasing.
void check_ordered(const std::vector<tile_state>& map, Index slices, Index qt_n, Index kt_n,
                   bool transposed, tile_state want, const i32& counts, const i32& indices) {
  const Index rows = transposed ? kt_n : qt_n, cols = transposed ? qt_n : kt_n;
  REQUIRE(static_cast<Index>(counts.size()) == slices * rows);
  REQUIRE(static_cast<Index>(indices.size()) == slices * rows * cols);
  for (Index s = 0; s < slices; ++s)
    for (Index r = 0; r < rows; ++r) {
      std::vector<std::int32_t> expect;
      for (int pass = 0; pass < 2; ++pass)
        for (Index c = 0; c < cols; ++c) {
          const Index qt = transposed ? c : r, kt = transposed ? r : c;
          const bool is = map[static_cast<std::size_t>((s * qt_n + qt) * kt_n + kt)] == want;
          if (is == (pass == 0)) expect.push_back(static_cast<std::int32_t>(c));
        }
      Index n = 0;
      for (Index c = 0; c < cols; ++c) {
        const Index qt = transposed ? c : r, kt = transposed ? r : c;
        n += map[static_cast<std::size_t>((s * qt_n + qt) * kt_n + kt)] == want;
      }
      INFO("slice " << s << " row " << r << " transposed " << transposed);
      CHECK(counts[static_cast<std::size_t>(s * rows + r)] == n);
      const i32 got(indices.begin() + s * rows * cols + r * cols,
                    indices.begin() + s * rows * cols + (r + 1) * cols);
      CHECK(got == expect);
    }
}

template <class Imported>
std::vector<tile_state> states_of(const Imported& m) {
  std::vector<tile_state> out;
  for (Index b = 0; b < m.shape().batch; ++b)
    for (Index h = 0; h < m.shape().heads; ++h)
      for (Index qt = 0; qt < m.grid().q_tiles(); ++qt)
        for (Index kt = 0; kt < m.grid().k_tiles(); ++kt) out.push_back(m.state(qt, kt, b, h));
  return out;
}

// Export mask in every layout, check the lists against the brute-force map, import them back
// with and without the mask as mask_mod and compare keep, keys and tiles with brute force.
template <class Mask>
void round_trip(const Mask& mask, Index B, Index H, Index lq, Index lk, Index qb, Index kb) {
  INFO("B " << B << " H " << H << " Lq " << lq << " Lk " << lk << " blocks " << qb << "x" << kb);
  const std::vector<tile_state> map = brute_map(mask, B, H, lq, lk, qb, kb);
  const Index qt_n = (lq + qb - 1) / qb, kt_n = (lk + kb - 1) / kb;
  const slice_extents ext{B, H};

  const flex_block_mask f = to_flex_block_mask(mask, lq, lk, ext, qb, kb);
  CHECK(f.shape.q_blocks() == qt_n);
  CHECK(f.shape.kv_blocks() == kt_n);
  check_ordered(map, B * H, qt_n, kt_n, false, tile_state::partial, f.kv_num_blocks, f.kv_indices);
  check_ordered(map, B * H, qt_n, kt_n, false, tile_state::full, f.full_kv_num_blocks,
                f.full_kv_indices);
  check_ordered(map, B * H, qt_n, kt_n, true, tile_state::partial, f.q_num_blocks, f.q_indices);
  check_ordered(map, B * H, qt_n, kt_n, true, tile_state::full, f.full_q_num_blocks,
                f.full_q_indices);

  const fa4_block_sparse a = to_fa4_block_sparse(mask, lq, lk, ext, qb, kb);
  CHECK(a.mask_block_cnt == f.kv_num_blocks);
  CHECK(a.mask_block_idx == f.kv_indices);
  CHECK(a.full_block_cnt == f.full_kv_num_blocks);
  CHECK(a.full_block_idx == f.full_kv_indices);

  const bsr_block_sparse s = to_bsr_block_sparse(mask, lq, lk, ext, qb, kb);
  REQUIRE(static_cast<Index>(s.indptr.size()) == B * H * qt_n + 1);
  Index computed = 0;
  for (Index r = 0; r < B * H * qt_n; ++r) {
    Index j = s.indptr[static_cast<std::size_t>(r)];
    for (Index kt = 0; kt < kt_n; ++kt) {
      const tile_state st = map[static_cast<std::size_t>(r * kt_n + kt)];
      if (st == tile_state::empty) continue;
      ++computed;
      REQUIRE(j < s.indptr[static_cast<std::size_t>(r + 1)]);
      CHECK(s.indices[static_cast<std::size_t>(j)] == kt);
      CHECK(s.block_full[static_cast<std::size_t>(j)] == (st == tile_state::full ? 1 : 0));
      ++j;
    }
    CHECK(j == s.indptr[static_cast<std::size_t>(r + 1)]);
  }
  const double density = map.empty() ? 0.0 : double(computed) / double(map.size());
  CHECK(f.density() == Approx(density));
  CHECK(a.density() == Approx(density));
  CHECK(s.density() == Approx(density));
  CHECK(f.sparsity() == Approx(100.0 * (1.0 - density)));

  // Import with the mask as mask_mod: the same mask, exact tiles when the mask's are.
  const auto pred = [&](Index b, Index h, Index q, Index k) { return mask.keep(b, h, q, k); };
  const auto from_f = from_flex_block_mask(f, mask);
  CHECK(states_of(from_f) == map);
  check_mask(from_f, pred, B, H, lq, lk, 7);
  const auto from_a = from_fa4_block_sparse(a, mask);
  CHECK(states_of(from_a) == map);
  check_mask(from_a, pred, B, H, lq, lk, 8);
  const auto from_s = from_bsr_block_sparse(s, mask);
  CHECK(states_of(from_s) == map);
  check_mask(from_s, pred, B, H, lq, lk, 9);
  // Exporting the import gives the same lists.
  const flex_block_mask again = to_flex_block_mask(from_f, lq, lk, ext, qb, kb);
  CHECK(again.kv_num_blocks == f.kv_num_blocks);
  CHECK(again.kv_indices == f.kv_indices);
  CHECK(again.full_kv_num_blocks == f.full_kv_num_blocks);
  CHECK(again.full_kv_indices == f.full_kv_indices);

  // Without mask_mod a listed block is kept whole.
  const auto whole = [&](Index b, Index h, Index q, Index k) {
    return map[static_cast<std::size_t>(((b * H + h) * qt_n + q / qb) * kt_n + k / kb)] !=
           tile_state::empty;
  };
  check_mask(from_flex_block_mask(f), whole, B, H, lq, lk, 10);
  check_mask(from_fa4_block_sparse(a), whole, B, H, lq, lk, 11);
  check_mask(from_bsr_block_sparse(s), whole, B, H, lq, lk, 12);
}

bool_matrix random_keep(rng& g, Index lq, Index lk, double p) {
  bool_matrix m(lq, lk);
  for (Index q = 0; q < lq; ++q)
    for (Index k = 0; k < lk; ++k) m(q, k) = g.coin(p);
  return m;
}

}  // namespace

TEST_CASE("block_sparse: golden causal 4x4 in 2x2 blocks", "[block_sparse]") {
  const flex_block_mask f = to_flex_block_mask(causal(), 4, 4, {}, 2, 2);
  CHECK(f.shape.batch == 1);
  CHECK(f.shape.heads == 1);
  CHECK(f.shape.q_len == 4);
  CHECK(f.shape.k_len == 4);
  CHECK(f.shape.q_block == 2);
  CHECK(f.shape.kv_block == 2);
  // Blocks: (0,0) partial, (0,1) empty, (1,0) full, (1,1) partial.
  CHECK(f.kv_num_blocks == i32{1, 1});
  CHECK(f.kv_indices == i32{0, 1, 1, 0});
  CHECK(f.full_kv_num_blocks == i32{0, 1});
  CHECK(f.full_kv_indices == i32{0, 1, 0, 1});
  CHECK(f.q_num_blocks == i32{1, 1});
  CHECK(f.q_indices == i32{0, 1, 1, 0});
  CHECK(f.full_q_num_blocks == i32{1, 0});
  CHECK(f.full_q_indices == i32{1, 0, 0, 1});
  CHECK(f.density() == Approx(0.75));
  CHECK(f.sparsity() == Approx(25.0));

  const fa4_block_sparse a = to_fa4_block_sparse(causal(), 4, 4, {}, 2, 2);
  CHECK(a.mask_block_cnt == i32{1, 1});
  CHECK(a.mask_block_idx == i32{0, 1, 1, 0});
  CHECK(a.full_block_cnt == i32{0, 1});
  CHECK(a.full_block_idx == i32{0, 1, 0, 1});

  const bsr_block_sparse s = to_bsr_block_sparse(causal(), 4, 4, {}, 2, 2);
  CHECK(s.indptr == i32{0, 1, 3});
  CHECK(s.indices == i32{0, 0, 1});
  CHECK(s.block_full == std::vector<std::uint8_t>{0, 1, 0});

  block_string_options ascii;
  ascii.ascii = true;
  CHECK(to_string(f, ascii) ==
        "BlockMask(shape=(1, 1, 4, 4), block=(2, 2), sparsity=25.00%,\n(0, 0)\n++..\n##++\n)");
  CHECK(to_string(a, ascii) ==
        "BlockSparseTensors(shape=(1, 1, 4, 4), block=(2, 2), sparsity=25.00%,\n(0, 0)\n++..\n"
        "##++\n)");
  CHECK(to_string(s, ascii) ==
        "BSR(shape=(1, 1, 4, 4), block=(2, 2), sparsity=25.00%,\n(0, 0)\n++..\n##++\n)");
  CHECK(to_string(f) ==
        "BlockMask(shape=(1, 1, 4, 4), block=(2, 2), sparsity=25.00%,\n(0, 0)\n"
        "\u2591\u2591  \n\u2588\u2588\u2591\u2591\n)");
  std::ostringstream os;
  os << f;
  CHECK(os.str() == to_string(f));

  // Imported back without mask_mod: the diagonal blocks are kept whole.
  const auto whole = from_flex_block_mask(f);
  const bool_matrix keep = materialize(whole, 4, 4);
  bool_matrix expect_keep(4, 4);
  expect_keep << 1, 1, 0, 0,  //
      1, 1, 0, 0,             //
      1, 1, 1, 1,             //
      1, 1, 1, 1;
  CHECK((keep == expect_keep).all());
  CHECK(whole.state(0, 0) == tile_state::partial);
  CHECK(whole.state(0, 1) == tile_state::empty);
  CHECK(whole.state(1, 0) == tile_state::full);
  CHECK(whole.tile(0, 0, 0, 2, 0, 2) == tile_state::full);  // partial, kept whole
  CHECK(whole.tile(0, 0, 0, 4, 0, 4) == tile_state::partial);
  CHECK(whole.count(tile_state::partial) == 2);
  CHECK(whole.density() == Approx(0.75));
  // With causal as mask_mod: causal again.
  const auto exact = from_flex_block_mask(f, causal());
  CHECK((materialize(exact, 4, 4) == materialize(causal(), 4, 4)).all());
  CHECK(exact.tile(0, 0, 0, 2, 0, 2) == tile_state::partial);
  CHECK(exact.tile(0, 0, 1, 2, 0, 2) == tile_state::full);
}

TEST_CASE("block_sparse: golden ragged blocks are never full", "[block_sparse]") {
  // causal 3x3 in 2x2 blocks: (0,0) partial, (0,1) empty, (1,0) and (1,1) all kept but one row
  // short, so partial (FlexAttention pads with False).
  const flex_block_mask f = to_flex_block_mask(causal(), 3, 3, {}, 2, 2);
  CHECK(f.kv_num_blocks == i32{1, 2});
  CHECK(f.kv_indices == i32{0, 1, 0, 1});
  CHECK(f.full_kv_num_blocks == i32{0, 0});
  CHECK(f.full_kv_indices == i32{0, 1, 0, 1});
  CHECK(f.q_num_blocks == i32{2, 1});
  CHECK(f.q_indices == i32{0, 1, 1, 0});
  // keep_all 5x3 in 2x2 blocks: only (0,0) is full.
  const bsr_block_sparse s = to_bsr_block_sparse(keep_all(), 5, 3, {}, 2, 2);
  CHECK(s.indptr == i32{0, 2, 4, 6});
  CHECK(s.indices == i32{0, 1, 0, 1, 0, 1});
  CHECK(s.block_full == std::vector<std::uint8_t>{1, 0, 1, 0, 0, 0});
  // Default block size 128: one ragged block.
  const flex_block_mask d = to_flex_block_mask(keep_all(), 5, 7);
  CHECK(d.shape.q_block == 128);
  CHECK(d.shape.kv_block == 128);
  CHECK(d.kv_num_blocks == i32{1});
  CHECK(d.full_kv_num_blocks == i32{0});
  // Whole blocks of keep_all are full.
  const flex_block_mask w = to_flex_block_mask(keep_all(), 256, 128);
  CHECK(w.kv_num_blocks == i32{0, 0});
  CHECK(w.full_kv_num_blocks == i32{1, 1});
  CHECK(w.sparsity() == Approx(0.0));
}

TEST_CASE("block_sparse: empty shapes", "[block_sparse]") {
  const flex_block_mask f = to_flex_block_mask(causal(), 0, 5, {2, 3}, 2, 2);
  CHECK(f.kv_num_blocks.empty());
  CHECK(f.kv_indices.empty());
  CHECK(f.q_num_blocks == i32(18, 0));  // 2 x 3 slices x 3 key blocks, no query block
  CHECK(f.q_indices.empty());
  CHECK(f.density() == 0.0);
  const flex_block_mask g = to_flex_block_mask(causal(), 5, 0, {}, 2, 2);
  CHECK(g.kv_num_blocks == i32{0, 0, 0});
  CHECK(g.kv_indices.empty());
  const auto m = from_flex_block_mask(g);
  CHECK(m.tile(0, 0, 0, 5, 0, 0) == tile_state::empty);
  const bsr_block_sparse s = to_bsr_block_sparse(causal(), 0, 0, {}, 4, 4);
  CHECK(s.indptr == i32{0});
  CHECK(from_bsr_block_sparse(s).count(tile_state::empty) == 0);
  CHECK(to_string(s) == "BSR(shape=(1, 1, 0, 0), block=(4, 4), sparsity=100.00%,\n(0, 0)\n)");
}

TEST_CASE("block_sparse: round trips of causal, window, document, dense and per-head masks",
          "[block_sparse]") {
  rng g(2024);
  const std::vector<std::pair<Index, Index>> shapes = {
      {1, 1}, {4, 4}, {7, 5}, {5, 9}, {16, 16}, {13, 29}, {30, 11}, {0, 3}, {40, 70}};
  for (const auto& sh : shapes) {
    const Index lq = sh.first, lk = sh.second;
    for (int trial = 0; trial < 3; ++trial) {
      const Index qb = g.between(1, trial == 2 ? 16 : 6), kb = g.between(1, trial == 2 ? 16 : 6);
      round_trip(causal(), 1, 1, lq, lk, qb, kb);
      round_trip(causal::bottom_right(lq, lk), 1, 2, lq, lk, qb, kb);
      round_trip(sliding_window(3, 1), 2, 1, lq, lk, qb, kb);
      round_trip(to_mask(random_keep(g, lq, lk, 0.3)), 1, 1, lq, lk, qb, kb);
      round_trip(to_mask(random_keep(g, lq, lk, 0.97)), 1, 1, lq, lk, qb, kb);
      if (lq == lk && lq >= 4) {
        round_trip(document::from_cu_seqlens({0, lq / 3, lq - 1, lq}) & causal(), 1, 1, lq, lk, qb,
                   kb);
      }
      // B, H > 1: per-batch key padding and a window per head.
      const auto pad = key_padding::from_lengths({lk, lk / 2, 0}, lk);
      round_trip(
          pad & per_head(std::vector<sliding_window>{sliding_window(0, 0), sliding_window(2, 2),
                                                     sliding_window(unbounded, 0)}),
          3, 3, lq, lk, qb, kb);
    }
  }
}

TEST_CASE("block_sparse: FA4 compact index rows and unsorted lists are read", "[block_sparse]") {
  // causal 6x6 in 2x2 blocks, index rows 2 wide (<= 3 key blocks), ids out of order.
  fa4_block_sparse a;
  a.shape = block_sparse_shape{1, 1, 6, 6, 2, 2};
  a.mask_block_cnt = {1, 1, 1};
  a.mask_block_idx = {0, 0, 1, 0, 2, 0};
  a.full_block_cnt = {0, 1, 2};
  a.full_block_idx = {0, 0, 0, 0, 1, 0};
  const auto m = from_fa4_block_sparse(a, causal());
  check_mask(
      m, [](Index, Index, Index q, Index k) { return k <= q; }, 1, 1, 6, 6);
  bsr_block_sparse s;
  s.shape = a.shape;
  s.indptr = {0, 1, 3, 6};
  s.indices = {0, 1, 0, 2, 0, 1};
  s.block_full = {0, 0, 1, 0, 1, 1};
  check_mask(
      from_bsr_block_sparse(s, causal()), [](Index, Index, Index q, Index k) { return k <= q; }, 1,
      1, 6, 6);
  // Without flags every listed block is partial.
  s.block_full.clear();
  const auto p = from_bsr_block_sparse(s);
  CHECK(p.count(tile_state::partial) == 6);
  CHECK(p.count(tile_state::full) == 0);
  // Broadcast: a layout with batch = heads = 1 answers any batch entry and head.
  CHECK(p.keep(5, 7, 0, 0));
  p.check(region{0, 9, 0, 9, 0, 6, 0, 6}, "test");
}

TEST_CASE("block_sparse: to_string truncates large grids and many slices", "[block_sparse]") {
  block_string_options o;
  o.ascii = true;
  const flex_block_mask f = to_flex_block_mask(causal(), 100, 100, {2, 3}, 2, 2);  // 50x50 blocks
  const std::string s = to_string(f, o);
  std::istringstream in(s);
  std::string line;
  std::getline(in, line);
  CHECK(line == "BlockMask(shape=(2, 3, 100, 100), block=(2, 2), sparsity=49.00%,");
  std::getline(in, line);
  CHECK(line == "(0, 0)");
  Index grid_lines = 0;
  while (std::getline(in, line) && line[0] != '(') {
    ++grid_lines;
    CHECK(line.size() == 2 * 17);  // 50 blocks in cells of ceil(50 / 20) = 3: 17 cells
  }
  CHECK(grid_lines == 17);
  CHECK(s.find("(1, 0)\n") != std::string::npos);  // 4th slice drawn
  CHECK(s.find("(1, 1)\n") == std::string::npos);
  CHECK(s.find("... (2 more slices") != std::string::npos);
  o.limit = 0;
  o.rows = o.cols = unbounded;
  const std::string t = to_string(f, o);
  CHECK(t.find("(0, 0)") == std::string::npos);
  CHECK(t.find("... (6 more slices") != std::string::npos);
  // Uncompressed: one cell per block.
  o.limit = 1;
  const std::string u = to_string(to_flex_block_mask(causal(), 100, 100, {}, 2, 2), o);
  CHECK(u.find(std::string(2 * 49, '#') + "++\n") != std::string::npos);
}

TEST_CASE("block_sparse: bad input names the function and the argument", "[block_sparse]") {
  const auto starts = [](const std::string& what) { return StartsWith(what); };
  REQUIRE_THROWS_WITH(to_flex_block_mask(causal(), -1, 4),
                      starts("emask::to_flex_block_mask: argument 'q_len'"));
  REQUIRE_THROWS_WITH(to_flex_block_mask(causal(), 4, -2),
                      starts("emask::to_flex_block_mask: argument 'k_len'"));
  REQUIRE_THROWS_WITH(to_flex_block_mask(causal(), 4, 4, {}, 0),
                      starts("emask::to_flex_block_mask: argument 'q_block'"));
  REQUIRE_THROWS_WITH(to_fa4_block_sparse(causal(), 4, 4, {}, 2, -1),
                      starts("emask::to_fa4_block_sparse: argument 'kv_block'"));
  REQUIRE_THROWS_WITH(to_bsr_block_sparse(causal(), 4, 4, {0, 1}),
                      starts("emask::to_bsr_block_sparse: argument 'extents.batch'"));
  REQUIRE_THROWS_WITH(to_bsr_block_sparse(causal(), 4, 4, {1, 0}),
                      starts("emask::to_bsr_block_sparse: argument 'extents.heads'"));
  REQUIRE_THROWS_WITH(to_flex_block_mask(causal::bottom_right(3, 5), 4, 5),
                      starts("emask::to_flex_block_mask: argument '"));
  REQUIRE_THROWS_WITH(to_flex_block_mask(key_padding::from_lengths({1, 2}, 4), 4, 4, {3, 1}),
                      starts("emask::to_flex_block_mask: argument '"));

  const flex_block_mask good = to_flex_block_mask(causal(), 6, 6, {}, 2, 2);
  const auto bad_flex = [&](void (*edit)(flex_block_mask&), const std::string& what) {
    flex_block_mask f = good;
    edit(f);
    REQUIRE_THROWS_WITH(from_flex_block_mask(f),
                        starts("emask::from_flex_block_mask: argument '" + what + "'"));
    REQUIRE_THROWS_WITH(from_flex_block_mask(f, causal()),
                        starts("emask::from_flex_block_mask: argument '" + what + "'"));
    REQUIRE_THROWS_WITH(to_string(f), starts("emask::to_string: argument '" + what + "'"));
  };
  bad_flex([](flex_block_mask& f) { f.shape.batch = 0; }, "shape.batch");
  bad_flex([](flex_block_mask& f) { f.shape.heads = -1; }, "shape.heads");
  bad_flex([](flex_block_mask& f) { f.shape.q_len = -1; }, "shape.q_len");
  bad_flex([](flex_block_mask& f) { f.shape.k_len = -3; }, "shape.k_len");
  bad_flex([](flex_block_mask& f) { f.shape.q_block = 0; }, "shape.q_block");
  bad_flex([](flex_block_mask& f) { f.shape.kv_block = 0; }, "shape.kv_block");
  bad_flex([](flex_block_mask& f) { f.shape.q_block = 1; }, "kv_num_blocks");  // 6 rows now
  bad_flex([](flex_block_mask& f) { f.kv_num_blocks.pop_back(); }, "kv_num_blocks");
  bad_flex([](flex_block_mask& f) { f.kv_indices.push_back(0); }, "kv_indices");
  bad_flex([](flex_block_mask& f) { f.kv_num_blocks[1] = 4; }, "kv_num_blocks[1]");
  bad_flex([](flex_block_mask& f) { f.kv_num_blocks[2] = -1; }, "kv_num_blocks[2]");
  bad_flex([](flex_block_mask& f) { f.kv_indices[3] = 3; }, "kv_indices[3]");  // row 1: {1}
  bad_flex([](flex_block_mask& f) { f.kv_indices[3] = -1; }, "kv_indices[3]");
  bad_flex(
      [](flex_block_mask& f) {
        f.kv_num_blocks[1] = 2;
        f.kv_indices[4] = 1;  // row 1 lists block 1 twice
      },
      "kv_indices[4]");
  bad_flex(
      [](flex_block_mask& f) {
        f.full_kv_num_blocks[2] = 3;  // row 2: full {0, 1}, then 2 (partial) as full too
      },
      "full_kv_indices[8]");
  bad_flex([](flex_block_mask& f) { f.full_kv_indices.clear(); }, "full_kv_indices");
  bad_flex([](flex_block_mask& f) { f.full_kv_num_blocks.clear(); }, "full_kv_num_blocks");
  {
    flex_block_mask f = good;  // no full lists at all: fine
    f.full_kv_num_blocks.clear();
    f.full_kv_indices.clear();
    const auto m = from_flex_block_mask(f);
    CHECK(m.count(tile_state::full) == 0);
    CHECK(m.count(tile_state::partial) == 3);
  }

  const fa4_block_sparse a0 = to_fa4_block_sparse(causal(), 6, 6, {}, 2, 2);
  const auto bad_fa4 = [&](void (*edit)(fa4_block_sparse&), const std::string& what) {
    fa4_block_sparse a = a0;
    edit(a);
    REQUIRE_THROWS_WITH(from_fa4_block_sparse(a),
                        starts("emask::from_fa4_block_sparse: argument '" + what + "'"));
  };
  bad_fa4([](fa4_block_sparse& a) { a.mask_block_idx.resize(12, 0); }, "mask_block_idx");  // 4 wide
  bad_fa4([](fa4_block_sparse& a) { a.mask_block_idx.resize(8, 0); }, "mask_block_idx");
  bad_fa4([](fa4_block_sparse& a) { a.full_block_cnt[0] = 1; }, "full_block_idx[0]");
  bad_fa4([](fa4_block_sparse& a) { a.mask_block_cnt[0] = 4; }, "mask_block_cnt[0]");

  bsr_block_sparse s0 = to_bsr_block_sparse(causal(), 6, 6, {}, 2, 2);  // indptr 0 1 3 6
  const auto bad_bsr = [&](void (*edit)(bsr_block_sparse&), const std::string& what) {
    bsr_block_sparse s = s0;
    edit(s);
    REQUIRE_THROWS_WITH(from_bsr_block_sparse(s),
                        starts("emask::from_bsr_block_sparse: argument '" + what + "'"));
    REQUIRE_THROWS_WITH(to_string(s), starts("emask::to_string: argument '" + what + "'"));
  };
  bad_bsr([](bsr_block_sparse& s) { s.indptr.pop_back(); }, "indptr");
  bad_bsr([](bsr_block_sparse& s) { s.indptr[0] = 1; }, "indptr[0]");
  bad_bsr([](bsr_block_sparse& s) { s.indptr[2] = 0; }, "indptr[2]");
  bad_bsr([](bsr_block_sparse& s) { s.indptr[1] = 4; }, "indptr[1]");  // row 0: 4 > 3 blocks
  bad_bsr([](bsr_block_sparse& s) { s.indices.pop_back(); }, "indices");
  bad_bsr([](bsr_block_sparse& s) { s.indices[2] = 3; }, "indices[2]");
  bad_bsr([](bsr_block_sparse& s) { s.indices[2] = 0; }, "indices[2]");  // row 1: {0, 0}
  bad_bsr([](bsr_block_sparse& s) { s.block_full.pop_back(); }, "block_full");
  bad_bsr([](bsr_block_sparse& s) { s.block_full[4] = 2; }, "block_full[4]");

  REQUIRE_THROWS_WITH(block_sparse_mask<>(block_sparse_shape{1, 1, 4, 4, 2, 2},
                                          std::vector<tile_state>(3, tile_state::full)),
                      starts("emask::block_sparse_mask: argument 'states'"));
  REQUIRE_THROWS_WITH(
      block_sparse_mask<>(block_sparse_shape{1, 1, 4, 4, 2, 2},
                          std::vector<tile_state>{tile_state::full, tile_state::full,
                                                  static_cast<tile_state>(7), tile_state::full}),
      starts("emask::block_sparse_mask: argument 'states[2]'"));
  block_string_options o;
  o.rows = 0;
  REQUIRE_THROWS_WITH(to_string(good, o), starts("emask::to_string: argument 'options.rows'"));
  o.rows = 1;
  o.cols = -1;
  REQUIRE_THROWS_WITH(to_string(good, o), starts("emask::to_string: argument 'options.cols'"));
  o.cols = 1;
  o.limit = -1;
  REQUIRE_THROWS_WITH(to_string(good, o), starts("emask::to_string: argument 'options.limit'"));

  // A kernel asked beyond the layout: an error before any output is written.
  const auto m = from_flex_block_mask(good, causal());
  const row_matrix<float> q = row_matrix<float>::Ones(7, 4), k = row_matrix<float>::Ones(6, 4),
                          v = row_matrix<float>::Ones(6, 3);
  row_matrix<float> out = row_matrix<float>::Constant(7, 3, 5.f);
  REQUIRE_THROWS_WITH(masked_attention(q, k, v, m, out),
                      starts("emask::masked_attention: argument 'query positions'"));
  CHECK((out.array() == 5.f).all());
  attention_options heads;
  heads.slice = {0, 1};
  const auto two_heads = from_flex_block_mask(to_flex_block_mask(causal(), 6, 6, {1, 2}, 2, 2));
  const row_matrix<float> q6 = row_matrix<float>::Ones(6, 4);
  row_matrix<float> out6 = row_matrix<float>::Constant(6, 3, 5.f);
  masked_attention(q6, k, v, two_heads, out6, heads);  // head 1 exists
  heads.slice = {0, 2};
  out6.setConstant(5.f);
  REQUIRE_THROWS_WITH(masked_attention(q6, k, v, two_heads, out6, heads),
                      starts("emask::masked_attention: argument 'block-sparse heads'"));
  CHECK((out6.array() == 5.f).all());
}

// float only: the mask's tile answers do not depend on the scalar, and each instantiation of
// the three kernels costs compile time (the double kernels are tested in test_attention).
TEMPLATE_TEST_CASE("block_sparse: kernels on an imported mask agree with its materialization",
                   "[block_sparse][attention]", float) {
  using S = TestType;
  rng g(77);
  const Index B = 2, H = 3, lq = 37, lk = 53, D = 8, Dv = 5;
  const auto pad = key_padding::from_lengths({53, 30}, lk);
  const auto source =
      pad & per_head(std::vector<sliding_window>{sliding_window(9, 0, lk - lq),
                                                 sliding_window(unbounded, 0, lk - lq),
                                                 sliding_window(4, 4, lk - lq)});
  const flex_block_mask f = to_flex_block_mask(source, lq, lk, {B, H}, 16, 8);
  const auto with_mod = from_flex_block_mask(f, source);
  const auto whole = from_bsr_block_sparse(to_bsr_block_sparse(source, lq, lk, {B, H}, 16, 8));
  const row_matrix<S> q = emask_test::uniform_matrix<S>(g, lq, D, 2.0),
                      k = emask_test::uniform_matrix<S>(g, lk, D, 2.0),
                      v = emask_test::uniform_matrix<S>(g, lk, Dv);
  const double tol = std::is_same<S, float>::value ? 2e-5 : 1e-12;
  for (auto variant : {emask_test::attention_variant::naive, emask_test::attention_variant::tiled,
                       emask_test::attention_variant::decode}) {
    for (Index tile : {Index(7), Index(16), Index(64)}) {
      if (variant == emask_test::attention_variant::decode && tile != 7) continue;
      for (Index b = 0; b < B; ++b)
        for (Index h = 0; h < H; ++h) {
          emask_test::attention_options o;
          o.variant = variant;
          o.tile_q = tile;
          o.tile_k = tile;
          o.decode_chunk = 2 * tile;
          o.slice = {b, h};
          INFO("variant " << int(variant) << " tile " << tile << " b " << b << " h " << h);
          for (int which = 0; which < 2; ++which) {
            row_matrix<S> got(lq, Dv), want(lq, Dv);
            lse_vector<S> lse_got(lq), lse_want(lq);
            bool_matrix dense;
            if (which == 0) {
              emask_test::masked_attention(q, k, v, with_mod, got, lse_got, o);
              dense = materialize(with_mod, lq, lk, b, h);
              CHECK((dense == materialize(source, lq, lk, b, h)).all());
            } else {
              emask_test::masked_attention(q, k, v, whole, got, lse_got, o);
              dense = materialize(whole, lq, lk, b, h);
            }
            emask_test::masked_attention(q, k, v, dense, want, lse_want, o);
            CHECK((got - want).cwiseAbs().maxCoeff() <= S(tol));
            for (Index i = 0; i < lq; ++i) {
              const bool empty_row = !dense.row(i).any();
              if (empty_row) {
                CHECK(static_cast<double>(lse_got(i)) < -1e30);
                CHECK(static_cast<double>(lse_want(i)) < -1e30);
              } else {
                CHECK(std::abs(static_cast<double>(lse_got(i) - lse_want(i))) <= 4 * tol);
              }
            }
          }
        }
    }
  }
}
