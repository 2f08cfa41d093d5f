/// \file
/// \brief Pictures of masks: PNG (written by emask itself, no library), PGM and SVG, with
/// optional tile boundaries. For docs, notebooks and debugging.
#pragma once

#include <array>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "emask/core/materialize.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Options of the image writers.
struct image_options {
  Index b = 0;       ///< batch entry to draw
  Index h = 0;       ///< head to draw
  Index cell = 8;    ///< pixels per mask entry (PNG, PGM) or SVG units per entry
  Index tile_q = 0;  ///< draw a boundary every tile_q rows (0: none)
  Index tile_k = 0;  ///< draw a boundary every tile_k columns (0: none)
  bool grid = true;  ///< thin lines between cells when cell >= 4
};

namespace detail {
/// RGB picture of a mask: kept cells dark, masked cells light, tile boundaries in red.
struct rgb_image {
  Index width = 0, height = 0;
  std::vector<std::uint8_t> pixels;  // row-major RGB
  void set(Index x, Index y, std::array<std::uint8_t, 3> c) {
    const auto i = static_cast<std::size_t>((y * width + x) * 3);
    pixels[i] = c[0];
    pixels[i + 1] = c[1];
    pixels[i + 2] = c[2];
  }
};

inline constexpr std::array<std::uint8_t, 3> kept_rgb{31, 78, 121};
inline constexpr std::array<std::uint8_t, 3> masked_rgb{238, 238, 238};
inline constexpr std::array<std::uint8_t, 3> grid_rgb{255, 255, 255};
inline constexpr std::array<std::uint8_t, 3> tile_rgb{214, 39, 40};

/// Checks the cell size of a picture of q_len x k_len entries: cell >= 1, the picture's width and
/// height (k_len * cell, q_len * cell) fit in an Index and, for a raster of \p bytes_per_pixel
/// (0: none, SVG), its bytes fit in a vector. Before any product is computed.
inline void check_picture(const char* where, Index q_len, Index k_len, Index cell,
                          Index bytes_per_pixel) {
  if (cell < 1) fail_argument(where, "cell", cell, ">= 1");
  if (q_len < 0) fail_argument(where, "q_len", q_len, ">= 0");
  if (k_len < 0) fail_argument(where, "k_len", k_len, ">= 0");
  const Index big = (std::max)(q_len, k_len);
  const Index limit = (std::numeric_limits<Index>::max)() / 4;
  if (big > 0 && cell > limit / big)
    fail_argument(where, "cell", cell, "at most ", limit / big, " (a ", q_len, " x ", k_len,
                  " picture must stay below ", limit, " units a side)");
  if (bytes_per_pixel > 0 && q_len > 0 && k_len > 0) {
    const auto max_bytes =
        static_cast<double>(std::vector<std::uint8_t>().max_size()) / static_cast<double>(4);
    const double bytes = static_cast<double>(q_len) * static_cast<double>(k_len) *
                         static_cast<double>(cell) * static_cast<double>(cell) *
                         static_cast<double>(bytes_per_pixel);
    if (bytes > max_bytes)
      fail_argument(where, "cell", cell, "a cell size whose ", q_len * cell, " x ", k_len * cell,
                    " picture fits in memory (", bytes, " bytes asked)");
  }
}

/// \p where names the public function called (to_png, write_png).
template <class Mask>
rgb_image draw(const char* where, const Mask& mask, Index q_len, Index k_len,
               const image_options& opt) {
  check_picture(where, q_len, k_len, opt.cell, 3);
  const bool_matrix keep = materialize_keep(where, mask, q_len, k_len, opt.b, opt.h);
  rgb_image img;
  img.width = k_len * opt.cell;
  img.height = q_len * opt.cell;
  img.pixels.assign(static_cast<std::size_t>(img.width * img.height * 3), 0);
  for (Index y = 0; y < img.height; ++y)
    for (Index x = 0; x < img.width; ++x) {
      const Index q = y / opt.cell, k = x / opt.cell;
      const bool edge = opt.grid && opt.cell >= 4 && (x % opt.cell == 0 || y % opt.cell == 0);
      const bool tile_edge =
          (opt.tile_k > 0 && k % opt.tile_k == 0 && k > 0 && x % opt.cell == 0) ||
          (opt.tile_q > 0 && q % opt.tile_q == 0 && q > 0 && y % opt.cell == 0);
      img.set(x, y,
              tile_edge ? tile_rgb : (edge ? grid_rgb : (keep(q, k) ? kept_rgb : masked_rgb)));
    }
  return img;
}

inline std::uint32_t crc32(const std::uint8_t* data, std::size_t n, std::uint32_t crc = 0) {
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

inline void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
}

inline void png_chunk(std::vector<std::uint8_t>& out, const char* type,
                      const std::vector<std::uint8_t>& data) {
  put_u32(out, static_cast<std::uint32_t>(data.size()));
  const std::size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put_u32(out, crc32(out.data() + start, out.size() - start));
}

/// PNG bytes of an RGB image: filter 0 per row, zlib stream of stored (uncompressed) blocks.
inline std::vector<std::uint8_t> encode_png(const rgb_image& img) {
  std::vector<std::uint8_t> raw;
  raw.reserve(static_cast<std::size_t>(img.height * (img.width * 3 + 1)));
  for (Index y = 0; y < img.height; ++y) {
    raw.push_back(0);
    const auto row = img.pixels.begin() + static_cast<std::ptrdiff_t>(y * img.width * 3);
    raw.insert(raw.end(), row, row + static_cast<std::ptrdiff_t>(img.width * 3));
  }
  std::vector<std::uint8_t> z = {0x78, 0x01};
  std::uint32_t a = 1, b = 0;  // Adler-32
  for (std::uint8_t v : raw) {
    a = (a + v) % 65521u;
    b = (b + a) % 65521u;
  }
  std::size_t pos = 0;
  do {
    const std::size_t n = std::min<std::size_t>(65535, raw.size() - pos);
    const bool last = pos + n == raw.size();
    z.push_back(last ? 1 : 0);
    z.push_back(static_cast<std::uint8_t>(n & 0xFF));
    z.push_back(static_cast<std::uint8_t>(n >> 8));
    z.push_back(static_cast<std::uint8_t>(~n & 0xFF));
    z.push_back(static_cast<std::uint8_t>((~n >> 8) & 0xFF));
    z.insert(z.end(), raw.begin() + static_cast<std::ptrdiff_t>(pos),
             raw.begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
  } while (pos < raw.size());
  put_u32(z, (b << 16) | a);

  std::vector<std::uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<std::uint8_t> ihdr;
  put_u32(ihdr, static_cast<std::uint32_t>(img.width));
  put_u32(ihdr, static_cast<std::uint32_t>(img.height));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit RGB, deflate, filter 0, no interlace
  png_chunk(out, "IHDR", ihdr);
  png_chunk(out, "IDAT", z);
  png_chunk(out, "IEND", {});
  return out;
}

inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes,
                        const char* where) {
  std::ofstream f(path, std::ios::binary);
  if (!f) fail_argument(where, "path", path, "a writable file path");
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) fail_argument(where, "path", path, "a file that can be written completely");
}
}  // namespace detail

/// \brief PNG bytes of slice (b, h) of \p mask: kept entries dark blue, masked light grey, tile
/// boundaries red. Written by emask itself (stored deflate blocks), readable by any viewer.
template <class Mask, std::enable_if_t<is_mask_v<Mask>, int> = 0>
std::vector<std::uint8_t> to_png(const Mask& mask, Index q_len, Index k_len,
                                 const image_options& opt = {}) {
  return detail::encode_png(detail::draw("to_png", mask, q_len, k_len, opt));
}

/// \brief Writes the PNG of to_png(...) to \p path. A path that cannot be written raises
/// emask::error.
template <class Mask, std::enable_if_t<is_mask_v<Mask>, int> = 0>
void write_png(const Mask& mask, Index q_len, Index k_len, const std::string& path,
               const image_options& opt = {}) {
  detail::write_bytes(path, detail::encode_png(detail::draw("write_png", mask, q_len, k_len, opt)),
                      "write_png");
}

/// \brief Writes a binary PGM (P5) of slice (b, h): kept entries black, masked white.
template <class Mask, std::enable_if_t<is_mask_v<Mask>, int> = 0>
void write_pgm(const Mask& mask, Index q_len, Index k_len, const std::string& path,
               const image_options& opt = {}) {
  detail::check_picture("write_pgm", q_len, k_len, opt.cell, 1);
  const bool_matrix keep = detail::materialize_keep("write_pgm", mask, q_len, k_len, opt.b, opt.h);
  const std::string header =
      detail::concat("P5\n", k_len * opt.cell, " ", q_len * opt.cell, "\n255\n");
  std::vector<std::uint8_t> bytes(header.begin(), header.end());
  for (Index y = 0; y < q_len * opt.cell; ++y)
    for (Index x = 0; x < k_len * opt.cell; ++x)
      bytes.push_back(keep(y / opt.cell, x / opt.cell) ? 0 : 255);
  detail::write_bytes(path, bytes, "write_pgm");
}

/// \brief An SVG document of slice (b, h): one rectangle per run of kept entries, tile
/// boundaries as red lines.
template <class Mask, std::enable_if_t<is_mask_v<Mask>, int> = 0>
std::string to_svg(const Mask& mask, Index q_len, Index k_len, const image_options& opt = {}) {
  detail::check_picture("to_svg", q_len, k_len, opt.cell, 0);
  detail::check_slice("to_svg", q_len, k_len, opt.b, opt.h);
  mask.check(detail::slice_region(q_len, k_len, opt.b, opt.h), "to_svg");
  const Index c = opt.cell;
  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << k_len * c << "\" height=\""
     << q_len * c << "\" shape-rendering=\"crispEdges\">\n"
     << "<rect width=\"100%\" height=\"100%\" fill=\"#eeeeee\"/>\n";
  detail::for_each_kept_run(mask, q_len, k_len, opt.b, opt.h, [&](Index q, Index begin, Index end) {
    os << "<rect x=\"" << begin * c << "\" y=\"" << q * c << "\" width=\"" << (end - begin) * c
       << "\" height=\"" << c << "\" fill=\"#1f4e79\"/>\n";
  });
  for (Index k = opt.tile_k; opt.tile_k > 0 && k < k_len; k += opt.tile_k)
    os << "<line x1=\"" << k * c << "\" y1=\"0\" x2=\"" << k * c << "\" y2=\"" << q_len * c
       << "\" stroke=\"#d62728\"/>\n";
  for (Index q = opt.tile_q; opt.tile_q > 0 && q < q_len; q += opt.tile_q)
    os << "<line x1=\"0\" y1=\"" << q * c << "\" x2=\"" << k_len * c << "\" y2=\"" << q * c
       << "\" stroke=\"#d62728\"/>\n";
  os << "</svg>\n";
  return os.str();
}

EMASK_NAMESPACE_END
