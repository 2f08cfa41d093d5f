// Writes the PNG pictures of docs/masks.md: every builder and a few compositions, with tile
// boundaries where a tiled kernel would cut. Regenerate the docs pictures with
//   build/demo/examples/mask_pictures --out docs/img
// ctest-args: --out .
// ctest-pass: wrote 19 pictures
#include <cmath>
#include <cstdint>
#include <cstring>
#include <emask/core/image.hpp>
#include <emask/emask.hpp>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  using namespace emask;
  std::string dir = ".";
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--out") == 0) dir = argv[i + 1];
  int written = 0;
  const auto save = [&](const std::string& name, const auto& mask, Index lq, Index lk,
                        Index tile = 0, Index b = 0) {
    image_options opt;
    opt.cell = lq <= 16 ? 12 : 6;
    opt.tile_q = tile;
    opt.tile_k = tile;
    opt.b = b;
    write_png(mask, lq, lk, dir + "/" + name + ".png", opt);
    ++written;
  };
  save("causal_top_left_3x5", causal(), 3, 5);
  save("causal_bottom_right_3x5", causal::bottom_right(3, 5), 3, 5);
  save("causal_strict", causal().strict(), 8, 8);
  save("sliding_window_hf4", sliding_window::from_hf(4), 16, 16);
  save("sliding_window_symmetric", sliding_window::from_llama_cpp(6, llama_swa_type::symmetric), 16,
       16);
  save("chunked4_causal", chunked(4) & causal(), 16, 16, 4);
  save("prefix_lm5", prefix_lm(5), 12, 12);
  save("key_padding_left", key_padding::from_lengths_left({12, 7}, 12), 12, 12, 0, 1);
  save("query_key_padding",
       query_padding::from_lengths({9, 12}, 12) & key_padding::from_lengths({9, 12}, 12), 12, 12);
  save("document_causal", document::from_cu_seqlens({0, 10, 16, 28, 32}) & causal(), 32, 32, 8);
  save("causal_tiles", causal(), 32, 32, 8);
  save("window_tiles", causal() & sliding_window(7, 0), 32, 32, 8);
  save("prefix_or_window", prefix_lm(4) | sliding_window(2, 2), 16, 16);
  save("bottom_right_decode_step", causal::bottom_right(4, 16), 4, 16);
  save("sink_window_4_6", sink_window(4, 6), 24, 24, 8);
  save("tree_mask", tree_mask({-1, -1, 0, 0, 1, 2, 2, 3, 4, 7}, 12), 10, 22, 4);
  {
    // NSA-style: blocks of 4, top 4 including 1 sink block and 2 local blocks.
    row_matrix<float> scores(12, 12);
    for (Index i = 0; i < scores.size(); ++i)
      scores.data()[i] = std::sin(1.7f * static_cast<float>(i));
    block_topk_options o;
    o.n_sink_blocks = 1;
    o.local_blocks = 2;
    save("block_topk", block_topk::from_scores(scores, 48, 48, 4, 4, o), 48, 48, 4);
  }
  {
    // FlashMask column form: a question [0, 8) and two answers; keys 8..15 masked for 16..23.
    std::vector<std::int32_t> se;  // [1, 1, 24, 2]: (LTS, LTE) per key column
    for (Index j = 0; j < 24; ++j) {
      se.push_back(j >= 8 && j < 16 ? 16 : 24);
      se.push_back(24);
    }
    save("flashmask_shared_question",
         column_interval_mask::from_flashmask(se.data(), 1, 1, 24, 2, 24, true), 24, 24, 8);
  }
  save("block_bidirectional",
       block_bidirectional(id_table({{-1, -1, -1, 0, 0, 0, 0,  0,  -1, -1, -1, -1,
                                      1,  1,  1,  1, 1, 1, -1, -1, -1, -1, -1, -1}})),
       24, 24, 8);
  std::cout << "wrote " << written << " pictures to " << dir << "\n";
}
