// Image writers: PNG structure (signature, IHDR, CRC-32, zlib stored blocks, Adler-32) decoded
// here and compared pixel by pixel with the mask; PGM bytes; SVG runs.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include <emask/core/image.hpp>

#include "mask_testing.hpp"

using namespace emask;

namespace {
std::uint32_t be32(const std::vector<std::uint8_t>& d, std::size_t i) {
  return (std::uint32_t{d[i]} << 24) | (std::uint32_t{d[i + 1]} << 16) |
         (std::uint32_t{d[i + 2]} << 8) | d[i + 3];
}

// Decodes the PNGs emask writes (8-bit RGB, filter 0, stored deflate blocks); checks every CRC.
struct decoded {
  std::uint32_t width = 0, height = 0;
  std::vector<std::uint8_t> rgb;
};
decoded decode_png(const std::vector<std::uint8_t>& png) {
  const std::vector<std::uint8_t> sig = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  REQUIRE(std::equal(sig.begin(), sig.end(), png.begin()));
  decoded out;
  std::vector<std::uint8_t> z;
  std::size_t i = 8;
  bool ended = false;
  while (i < png.size()) {
    const std::uint32_t n = be32(png, i);
    const std::string type(png.begin() + static_cast<std::ptrdiff_t>(i + 4),
                           png.begin() + static_cast<std::ptrdiff_t>(i + 8));
    REQUIRE(detail::crc32(png.data() + i + 4, n + 4) == be32(png, i + 8 + n));
    if (type == "IHDR") {
      out.width = be32(png, i + 8);
      out.height = be32(png, i + 12);
      REQUIRE(png[i + 16] == 8);  // bit depth
      REQUIRE(png[i + 17] == 2);  // RGB
    } else if (type == "IDAT") {
      z.insert(z.end(), png.begin() + static_cast<std::ptrdiff_t>(i + 8),
               png.begin() + static_cast<std::ptrdiff_t>(i + 8 + n));
    } else if (type == "IEND") {
      ended = true;
    }
    i += 12 + n;
  }
  REQUIRE(ended);
  REQUIRE(z.size() > 6);
  REQUIRE(((z[0] << 8) | z[1]) % 31 == 0);  // zlib header check bits
  std::vector<std::uint8_t> raw;
  std::size_t p = 2;
  for (;;) {
    const bool last = z[p] & 1;
    REQUIRE((z[p] >> 1) == 0);  // stored block
    const std::size_t len = z[p + 1] | (std::size_t{z[p + 2]} << 8);
    const std::size_t nlen = z[p + 3] | (std::size_t{z[p + 4]} << 8);
    REQUIRE((len ^ nlen) == 0xFFFF);
    raw.insert(raw.end(), z.begin() + static_cast<std::ptrdiff_t>(p + 5),
               z.begin() + static_cast<std::ptrdiff_t>(p + 5 + len));
    p += 5 + len;
    if (last) break;
  }
  std::uint32_t a = 1, b = 0;
  for (std::uint8_t v : raw) {
    a = (a + v) % 65521u;
    b = (b + a) % 65521u;
  }
  REQUIRE(be32(z, p) == ((b << 16) | a));
  const std::size_t stride = out.width * 3 + 1;
  REQUIRE(raw.size() == stride * out.height);
  for (std::uint32_t y = 0; y < out.height; ++y) {
    REQUIRE(raw[y * stride] == 0);  // filter type 0
    out.rgb.insert(out.rgb.end(), raw.begin() + static_cast<std::ptrdiff_t>(y * stride + 1),
                   raw.begin() + static_cast<std::ptrdiff_t>((y + 1) * stride));
  }
  return out;
}
}  // namespace

TEST_CASE("crc32 matches the standard check value", "[image]") {
  const std::string s = "123456789";
  CHECK(detail::crc32(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()) == 0xCBF43926u);
}

TEST_CASE("PNG pixels match the mask cell by cell", "[image]") {
  const auto m = document::from_cu_seqlens({0, 5, 9, 13}) & causal();
  image_options opt;
  opt.cell = 3;
  opt.grid = false;
  const decoded img = decode_png(to_png(m, 13, 13, opt));
  REQUIRE(img.width == 39);
  REQUIRE(img.height == 39);
  const bool_matrix keep = materialize(m, 13, 13);
  for (Index y = 0; y < 39; ++y)
    for (Index x = 0; x < 39; ++x) {
      const std::size_t i = static_cast<std::size_t>((y * 39 + x) * 3);
      const bool dark = img.rgb[i] == detail::kept_rgb[0] && img.rgb[i + 2] == detail::kept_rgb[2];
      REQUIRE(dark == keep(y / 3, x / 3));
    }
  // Large enough to need several stored blocks (> 65535 bytes of scanlines).
  opt.cell = 8;
  const decoded big = decode_png(to_png(causal(), 40, 40, opt));
  CHECK(big.width == 320);
  // Tile boundaries are drawn in red on cell borders.
  opt.tile_q = 4;
  opt.tile_k = 4;
  const decoded tiles = decode_png(to_png(causal(), 8, 8, opt));
  const std::size_t at = static_cast<std::size_t>((1 * 64 + 32) * 3);  // x = 32 is a tile edge
  CHECK(tiles.rgb[at] == detail::tile_rgb[0]);
  REQUIRE_THROWS_WITH(to_png(causal(), 2, 2, image_options{0, 0, 0}),
                      Catch::Matchers::Contains("cell"));
}

TEST_CASE("PGM and SVG writers", "[image]") {
  const std::string path = "emask_test_image.pgm";
  image_options opt;
  opt.cell = 1;
  write_pgm(causal(), 3, 4, path, opt);
  std::ifstream f(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const std::string header = "P5\n4 3\n255\n";
  REQUIRE(bytes.size() == header.size() + 12);
  CHECK(bytes.substr(0, header.size()) == header);
  CHECK(static_cast<unsigned char>(bytes[header.size() + 0]) == 0);    // (0,0) kept: black
  CHECK(static_cast<unsigned char>(bytes[header.size() + 1]) == 255);  // (0,1) masked: white
  std::remove(path.c_str());
  // One rectangle per run of kept keys: causal 4x4 has 4 runs; window & chunk has more.
  const std::string svg = to_svg(causal(), 4, 4);
  std::size_t rects = 0;
  for (std::size_t p = svg.find("fill=\"#1f4e79\""); p != std::string::npos;
       p = svg.find("fill=\"#1f4e79\"", p + 1))
    ++rects;
  CHECK(rects == 4);
  CHECK(svg.rfind("<svg", 0) == 0);
  REQUIRE_THROWS_WITH(write_png(causal(), 2, 2, "/nonexistent-dir/x.png"),
                      Catch::Matchers::Contains("path"));
}
