// Renders every mask builder and a few compositions as text: the pictures of docs/masks.md.
// Run with --ascii for '#' and '.' glyphs.
// ctest-pass: == causal\(\) Lq=3 Lk=5 ==
// ctest-pass: == document::from_cu_seqlens\(\{0, 3, 5, 8\}\) & causal\(\) Lq=8 Lk=8 ==
#include <cstring>
#include <emask/emask.hpp>
#include <iostream>
#include <string>

namespace {
bool g_ascii = false;

template <class Mask>
void show(const std::string& title, const Mask& m, emask::Index lq, emask::Index lk,
          emask::Index b = 0, emask::Index tile = 0) {
  emask::render_options opt;
  opt.ascii = g_ascii;
  opt.b = b;
  opt.tile_q = tile;
  opt.tile_k = tile;
  std::cout << "== " << title << " Lq=" << lq << " Lk=" << lk
            << (b ? " b=" + std::to_string(b) : "") << " ==\n"
            << emask::render(m, lq, lk, opt) << "\n";
}
}  // namespace

int main(int argc, char** argv) {
  using namespace emask;
  for (int i = 1; i < argc; ++i) g_ascii = g_ascii || std::strcmp(argv[i], "--ascii") == 0;

  show("causal()", causal(), 3, 5);
  show("causal::bottom_right(3, 5)", causal::bottom_right(3, 5), 3, 5);
  show("sink_window(2, 3)", sink_window(2, 3), 7, 7);
  show("causal().strict()", causal().strict(), 5, 5);
  show("tree_mask({-1, 0, 0, 1, 1, 2}, 3)", tree_mask({-1, 0, 0, 1, 1, 2}, 3), 6, 9);
  {
    row_matrix<float> scores(4, 4);
    scores << 5, 9, 9, 9, 3, 9, 9, 9, 1, 7, 0, 9, 4, 4, 2, 0;
    show("block_topk::from_scores(scores, 8, 8, /*top_k*/ 2, /*block_size*/ 2)",
         block_topk::from_scores(scores, 8, 8, 2, 2), 8, 8, 0, 2);
  }
  show("block_bidirectional(id_table({{-1, 0, 0, 0, -1, 1, 1, -1}}))",
       block_bidirectional(id_table({{-1, 0, 0, 0, -1, 1, 1, -1}})), 8, 8);
  show("keep_all() & key_padding::from_lengths({4}, 6)",
       keep_all() & key_padding::from_lengths({4}, 6), 3, 6);
  show("sliding_window(2, 1)", sliding_window(2, 1), 6, 6);
  show("sliding_window::from_hf(3)", sliding_window::from_hf(3), 6, 6);
  show("sliding_window::from_llama_cpp(4, llama_swa_type::symmetric)",
       sliding_window::from_llama_cpp(4, llama_swa_type::symmetric), 6, 6);
  show("sliding_window::from_flash_attn(1, 0, 3, 6)", sliding_window::from_flash_attn(1, 0, 3, 6),
       3, 6);
  show("chunked(3) & causal()", chunked(3) & causal(), 7, 7);
  show("prefix_lm(3)", prefix_lm(3), 6, 6);
  show("key_padding::from_lengths({5, 3}, 6)", key_padding::from_lengths({5, 3}, 6), 3, 6, 1);
  show("key_padding::from_lengths_left({5, 3}, 6)", key_padding::from_lengths_left({5, 3}, 6), 3, 6,
       1);
  show("query_padding::from_lengths({4, 2}, 4) & key_padding::from_lengths({4, 2}, 4)",
       query_padding::from_lengths({4, 2}, 4) & key_padding::from_lengths({4, 2}, 4), 4, 4, 1);
  show("key_flags::from_tokens({{7, 0, 9, 4, 0}}, /*pad_id=*/0)",
       key_flags::from_tokens(id_table{{7, 0, 9, 4, 0}}, 0), 2, 5);
  show("document::from_cu_seqlens({0, 3, 5, 8}) & causal()",
       document::from_cu_seqlens({0, 3, 5, 8}) & causal(), 8, 8);
  show("document::from_segment_ids({{0, 0, 1, 1, 1, 2}})",
       document::from_segment_ids(id_table{{0, 0, 1, 1, 1, 2}}), 6, 6);
  show("causal().offset(4, 0)  (queries 4..6 of a longer sequence)", causal().offset(4, 0), 3, 7);
  show("!causal()", !causal(), 4, 4);
  show("causal() | sliding_window(0, 2)", causal() | sliding_window(0, 2), 5, 5);
  show("causal() & sliding_window(3, 0), tiles of 4", causal() & sliding_window(3, 0), 12, 12, 0,
       4);

  // Block mask of the last one: what a tiled kernel visits.
  const block_mask bm = materialize_block_mask(causal() & sliding_window(3, 0), 12, 12, 4, 4);
  std::cout << "block mask 4x4 tiles: " << bm.count(tile_state::full) << " full, "
            << bm.count(tile_state::partial) << " partial, " << bm.count(tile_state::empty)
            << " empty\n";
}
