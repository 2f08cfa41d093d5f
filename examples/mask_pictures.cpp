// Writes the PNG pictures of docs/masks.md: every builder and a few compositions, with tile
// boundaries where a tiled kernel would cut. Regenerate the docs pictures with
//   build/demo/examples/mask_pictures --out docs/img
// ctest-args: --out .
// ctest-pass: wrote 16 pictures
#include <cstring>
#include <emask/core/image.hpp>
#include <emask/emask.hpp>
#include <iostream>
#include <string>

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
  save("block_bidirectional", block_bidirectional(id_table({{-1, -1, -1, 0, 0, 0, 0, 0, -1, -1,
                                                            -1, -1, 1, 1, 1, 1, 1, 1, -1, -1,
                                                            -1, -1, -1, -1}})),
       24, 24, 8);
  std::cout << "wrote " << written << " pictures to " << dir << "\n";
}
