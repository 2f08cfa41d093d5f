// Draws 8 BEiT blockwise masks (14 x 14 patches of a 224 px image, 75 masked) and 8 SimMIM
// masks (48 x 48 model patches of a 192 px image, 32 px mask patches, 60 % masked) into one PNG,
// beit_simmim_masks.png, in the directory given as the first argument (default docs/img).
// Dark = visible patch, light = masked patch; every mask has a dark frame.
// ctest-args: .
// ctest-pass: BEiT, 14 x 14 patches, budget 75: masked( 7[0-5])+
// ctest-pass: SimMIM, 48 x 48 model patches: masked( 1408)+
// ctest-pass: wrote .*beit_simmim_masks.png
#include <emask/core/image.hpp>
#include <emask/masks/dense.hpp>
#include <emask/random/block_masks.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  using emask::Index;
  const std::string dir = argc > 1 ? argv[1] : "docs/img";
  const Index n = 8;

  // Row b of each result is sample b of seed 2024: the same masks on every machine.
  const emask::patch_grid_mask beit = emask::beit_block_mask(n, {}, {2024});
  const emask::patch_grid_mask simmim = emask::simmim_mask(n, {}, {2024});

  std::printf("BEiT, 14 x 14 patches, budget 75: masked");
  for (Index b = 0; b < n; ++b) std::printf(" %ld", static_cast<long>(beit.counts()(b)));
  std::printf("\nSimMIM, 48 x 48 model patches: masked");
  for (Index b = 0; b < n; ++b) std::printf(" %ld", static_cast<long>(simmim.counts()(b)));
  std::printf("\n\nBEiT mask 0 (x = masked):\n");
  const emask::bool_matrix first = beit.grid(0);
  for (Index i = 0; i < first.rows(); ++i) {
    for (Index j = 0; j < first.cols(); ++j) std::printf("%c", first(i, j) ? 'x' : '.');
    std::printf("\n");
  }

  // The layout: two rows of 8 framed slots, 50 x 50 cells each (a 48 x 48 SimMIM mask, or a
  // BEiT mask with every patch drawn 3 x 3, plus a 1-cell frame), 2 cells apart. In the picture
  // true (kept, visible) is dark: the frame and the visible patches.
  const Index slot = 50, gap = 2;
  emask::bool_matrix layout =
      emask::bool_matrix::Constant(2 * slot + gap, n * slot + (n - 1) * gap, false);
  for (Index b = 0; b < n; ++b) {
    const Index left = b * (slot + gap);
    for (Index row = 0; row < 2; ++row) {
      const Index top = row * (slot + gap);
      const Index side = row == 0 ? 3 * 14 + 2 : slot;  // framed BEiT mask: 44 cells
      const Index in = (slot - side) / 2;               // centred in the slot
      layout.block(top + in, left + in, side, side).setConstant(true);
      for (Index i = 0; i < side - 2; ++i)
        for (Index j = 0; j < side - 2; ++j) {
          const bool masked = row == 0 ? beit.masked(b, (i / 3) * 14 + j / 3)
                                       : simmim.masked(b, i * simmim.width + j);
          layout(top + in + 1 + i, left + in + 1 + j) = !masked;
        }
    }
  }
  emask::image_options opt;
  opt.cell = 1;  // pixels per cell (the PNG is stored uncompressed: 1 keeps it near 130 KB)
  const std::string path = dir + "/beit_simmim_masks.png";
  emask::write_png(emask::as_mask(layout), layout.rows(), layout.cols(), path, opt);
  std::printf("\nwrote %s (%ld x %ld cells, dark = visible, light = masked)\n", path.c_str(),
              static_cast<long>(layout.rows()), static_cast<long>(layout.cols()));
  return 0;
}
