/// \file
/// \brief A small line plot written as PNG, for the examples' learning curves: a white plot
/// area with a frame, light gridlines at "nice" ticks (1, 2 or 5 times a power of ten), tick
/// labels in a built-in 3x5 pixel font (digits, '.', '-', and k / M for thousands / millions),
/// and up to a handful of colored series (solid, dashed or dotted, anti-aliased, 2.5 px wide).
/// There is no text beyond the tick numbers: say in the program's output which color is which.
///
/// Built on emask's PNG pieces in emask/core/image.hpp (emask::detail::rgb_image, png_chunk,
/// put_u32), so it needs nothing but emask and the standard library. The file is compressed
/// (Up filter, then fixed-Huffman deflate with run matches: about 45 KB for 720 x 420 instead of
/// the 900 KB of emask::detail::encode_png's stored blocks, which also accepts the image that
/// draw_line_plot returns). Not part of the library: a helper that examples include as
/// "line_plot.hpp".
///
///   std::vector<plot::series> s = {{x, y_masked, {31, 119, 180}},
///                                  {x, y_penalty, {214, 39, 40}, plot::dashed}};
///   if (!plot::write_line_plot("curve.png", s, 0.0, 1.0)) { /* bad input or unwritable */ }
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <emask/core/image.hpp>
#include <emask/detail/ieee.hpp>

namespace plot {

/// \brief How a series' line is drawn.
enum line_style : unsigned char { solid, dashed, dotted };

/// \brief One curve: points (x[i], y[i]) joined in order. A NaN y breaks the line there; y outside
/// [y_min, y_max] is clipped at the plot frame.
struct series {
  std::vector<double> x;            ///< x of each point (the x axis spans all series' x)
  std::vector<double> y;            ///< y of each point, same length as x
  std::array<std::uint8_t, 3> rgb;  ///< line color
  line_style style = solid;         ///< solid, dashed or dotted
};

/// \brief Size of the picture in pixels.
struct plot_options {
  int width = 720;   ///< whole picture, including margins
  int height = 420;  ///< whole picture, including margins
};

namespace detail {

using color = std::array<std::uint8_t, 3>;

/// 3x5 glyphs, one row per entry, bit 2 = left column.
struct glyph {
  char c;
  std::uint8_t rows[5];
};
constexpr glyph font[] = {{'0', {7, 5, 5, 5, 7}}, {'1', {2, 6, 2, 2, 7}}, {'2', {7, 1, 7, 4, 7}},
                          {'3', {7, 1, 7, 1, 7}}, {'4', {5, 5, 7, 1, 1}}, {'5', {7, 4, 7, 1, 7}},
                          {'6', {7, 4, 7, 5, 7}}, {'7', {7, 1, 1, 1, 1}}, {'8', {7, 5, 7, 5, 7}},
                          {'9', {7, 5, 7, 1, 7}}, {'.', {0, 0, 0, 0, 2}}, {'-', {0, 0, 7, 0, 0}},
                          {'k', {4, 5, 6, 5, 5}}, {'M', {5, 7, 7, 5, 5}}};

struct canvas {
  emask::detail::rgb_image img;
  int w = 0, h = 0;
  canvas(int width, int height) : w(width), h(height) {
    img.width = width;
    img.height = height;
    img.pixels.assign(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3u, 255);
  }
  void set(int x, int y, const color& c) {
    if (x >= 0 && y >= 0 && x < w && y < h) img.set(x, y, c);
  }
  void fill_rect(int x0, int y0, int x1, int y1, const color& c) {
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) set(x, y, c);
  }
  /// Text in the 3x5 font scaled by \p s; (x, y) is the top left corner.
  void text(int x, int y, const std::string& str, int s, const color& c) {
    for (char ch : str) {
      for (const glyph& g : font) {
        if (g.c != ch) continue;
        for (int r = 0; r < 5; ++r)
          for (int col = 0; col < 3; ++col)
            if (g.rows[r] & (4 >> col))
              fill_rect(x + col * s, y + r * s, x + col * s + s - 1, y + r * s + s - 1, c);
      }
      x += 4 * s;
    }
  }
  static int text_width(const std::string& str, int s) {
    return str.empty() ? 0 : static_cast<int>(str.size()) * 4 * s - s;
  }
};

/// 1, 2 or 5 times a power of ten, about range / target.
inline double nice_step(double range, int target) {
  const double raw = range / double(target);
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / p;
  return (f < 1.5 ? 1.0 : (f < 3.5 ? 2.0 : (f < 7.5 ? 5.0 : 10.0))) * p;
}

/// A tick value as text: k / M suffixes for whole thousands / millions, otherwise as many
/// decimals as the step needs.
inline std::string tick_label(double v, double step) {
  char buf[64];
  if (std::fabs(v) < step * 1e-6) v = 0.0;  // 0, not -0 or 1e-17 from the tick arithmetic
  const double a = std::fabs(v);
  if (a == 0.0)  // exact: set just above
    std::snprintf(buf, sizeof buf, "0");
  else if (step >= 1e6 && std::fmod(a, 1e6) < 0.5)
    std::snprintf(buf, sizeof buf, "%.0fM", v / 1e6);
  else if (step >= 1e3 && std::fmod(a, 1e3) < 0.5)
    std::snprintf(buf, sizeof buf, "%.0fk", v / 1e3);
  else {
    const int decimals = step >= 1.0 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, a < step * 1e-9 ? 0.0 : v);
  }
  return buf;
}

}  // namespace detail

/// \brief Draws the series into an RGB image (white background, frame, grid, tick labels).
/// The x axis spans the smallest to the largest x of all series; the y axis is [y_min, y_max].
/// Returns an empty image (width 0) for bad input: y_max <= y_min (or NaN), a series whose x
/// and y differ in length, no finite x at all, or a picture smaller than 120 x 80.
inline emask::detail::rgb_image draw_line_plot(const std::vector<series>& s, double y_min,
                                               double y_max, const plot_options& o = {}) {
  using detail::color;
  if (!(y_max > y_min) || emask::detail::is_nan(y_min) || emask::detail::is_nan(y_max) ||
      !emask::detail::is_finite(y_max - y_min) || o.width < 120 || o.height < 80 ||
      o.width > 8000 || o.height > 8000)
    return {};
  double x_min = 0.0, x_max = 0.0;
  bool any = false;
  for (const series& c : s) {
    if (c.x.size() != c.y.size()) return {};
    for (double x : c.x) {
      if (!emask::detail::is_finite(x)) continue;
      x_min = any ? (std::min)(x_min, x) : x;
      x_max = any ? (std::max)(x_max, x) : x;
      any = true;
    }
  }
  if (!any) return {};
  if (!(x_max > x_min)) {
    x_min -= 1.0;
    x_max += 1.0;
  }

  const int scale = 2;  // font scale
  const int left = 56, right = 20, top = 16, bottom = 34;
  const int pw = o.width - left - right, ph = o.height - top - bottom;
  detail::canvas cv(o.width, o.height);
  const color frame{64, 64, 64}, grid{225, 225, 225}, label{48, 48, 48};
  auto px = [&](double x) { return double(left) + (x - x_min) / (x_max - x_min) * double(pw - 1); };
  auto py = [&](double y) { return double(top) + (y_max - y) / (y_max - y_min) * double(ph - 1); };

  // Gridlines and tick labels.
  const double xs = detail::nice_step(x_max - x_min, 6);
  for (double t = std::ceil(x_min / xs - 1e-9) * xs; t <= x_max + 1e-9 * xs; t += xs) {
    const int x = static_cast<int>(std::lround(px(t)));
    cv.fill_rect(x, top, x, top + ph - 1, grid);
    cv.fill_rect(x, top + ph, x, top + ph + 4, frame);
    const std::string l = detail::tick_label(t, xs);
    cv.text(x - detail::canvas::text_width(l, scale) / 2, top + ph + 9, l, scale, label);
  }
  const double ys = detail::nice_step(y_max - y_min, 5);
  for (double t = std::ceil(y_min / ys - 1e-9) * ys; t <= y_max + 1e-9 * ys; t += ys) {
    const int y = static_cast<int>(std::lround(py(t)));
    cv.fill_rect(left, y, left + pw - 1, y, grid);
    cv.fill_rect(left - 5, y, left - 1, y, frame);
    const std::string l = detail::tick_label(t, ys);
    cv.text(left - 9 - detail::canvas::text_width(l, scale), y - 5 * scale / 2, l, scale, label);
  }

  // Series: per series a coverage buffer (the maximum coverage of the brush over the line, so
  // overlapping stamps do not darken), then blended over the picture.
  const double radius = 1.25;
  std::vector<float> cover(static_cast<std::size_t>(pw) * static_cast<std::size_t>(ph));
  for (const series& c : s) {
    std::fill(cover.begin(), cover.end(), 0.0f);
    auto stamp = [&](double cx, double cy) {
      const int x0 = static_cast<int>(std::floor(cx - radius - 1.0));
      const int y0 = static_cast<int>(std::floor(cy - radius - 1.0));
      for (int y = y0; y <= y0 + static_cast<int>(2.0 * radius + 3.0); ++y)
        for (int x = x0; x <= x0 + static_cast<int>(2.0 * radius + 3.0); ++x) {
          if (x < left || y < top || x >= left + pw || y >= top + ph) continue;
          const double d = std::hypot(double(x) - cx, double(y) - cy);
          const double a = (std::min)(1.0, (std::max)(0.0, radius + 0.5 - d));
          float& f = cover[static_cast<std::size_t>(y - top) * static_cast<std::size_t>(pw) +
                           static_cast<std::size_t>(x - left)];
          f = (std::max)(f, static_cast<float>(a));
        }
    };
    double arc = 0.0;  // length drawn so far: the dash pattern runs along the whole line
    for (std::size_t i = 0; i + 1 < c.x.size(); ++i) {
      const double xa = c.x[i], ya = c.y[i], xb = c.x[i + 1], yb = c.y[i + 1];
      if (!emask::detail::is_finite(xa) || !emask::detail::is_finite(ya) ||
          !emask::detail::is_finite(xb) || !emask::detail::is_finite(yb))
        continue;
      // Clamp far-away values so the pixel arithmetic stays small (the frame clips the rest).
      const double span = y_max - y_min;
      const double ax = px(xa), bx = px(xb);
      const double ay = py((std::min)(y_max + span, (std::max)(y_min - span, ya)));
      const double by = py((std::min)(y_max + span, (std::max)(y_min - span, yb)));
      const double len = std::hypot(bx - ax, by - ay);
      const int n = (std::max)(1, static_cast<int>(std::ceil(len * 2.0)));
      for (int k = 0; k <= n; ++k) {
        const double t = double(k) / double(n);
        const double at = arc + t * len;
        const bool on = c.style == solid || (c.style == dashed && std::fmod(at, 14.0) < 8.0) ||
                        (c.style == dotted && std::fmod(at, 7.0) < 2.0);
        if (on) stamp(ax + t * (bx - ax), ay + t * (by - ay));
      }
      arc += len;
    }
    for (int y = 0; y < ph; ++y)
      for (int x = 0; x < pw; ++x) {
        const float a = cover[static_cast<std::size_t>(y) * static_cast<std::size_t>(pw) +
                              static_cast<std::size_t>(x)];
        if (a <= 0.0f) continue;
        const auto at = static_cast<std::size_t>((y + top) * o.width + (x + left)) * 3u;
        for (std::size_t ch = 0; ch < 3; ++ch) {
          const double v =
              (1.0 - double(a)) * double(cv.img.pixels[at + ch]) + double(a) * double(c.rgb[ch]);
          cv.img.pixels[at + ch] = static_cast<std::uint8_t>(std::lround(v));
        }
      }
  }

  // Frame last, over the lines' ends.
  cv.fill_rect(left - 1, top - 1, left + pw, top - 1, frame);
  cv.fill_rect(left - 1, top + ph, left + pw, top + ph, frame);
  cv.fill_rect(left - 1, top - 1, left - 1, top + ph, frame);
  cv.fill_rect(left + pw, top - 1, left + pw, top + ph, frame);
  return cv.img;
}

namespace detail {
/// Deflate bit sink (RFC 1951 section 3.1.1): data elements LSB first, Huffman codes MSB first.
struct bit_writer {
  std::vector<std::uint8_t> out;
  std::uint32_t acc = 0;
  int n = 0;
  void put(std::uint32_t bits, int count) {
    acc |= bits << n;
    n += count;
    for (; n >= 8; n -= 8, acc >>= 8) out.push_back(static_cast<std::uint8_t>(acc & 0xFFu));
  }
  void code(std::uint32_t c, int len) {  // a Huffman code, most significant bit first
    std::uint32_t r = 0;
    for (int i = 0; i < len; ++i) r = (r << 1) | ((c >> i) & 1u);
    put(r, len);
  }
  void literal(std::uint32_t v) {  // the fixed literal/length code (RFC 1951 section 3.2.6)
    if (v < 144)
      code(0x30u + v, 8);
    else if (v < 256)
      code(0x190u + (v - 144), 9);
    else if (v < 280)
      code(v - 256, 7);
    else
      code(0xC0u + (v - 280), 8);
  }
  /// A match of \p len bytes (3..258) at distance 1: a run of the previous byte.
  void run(int len) {
    static constexpr int base[29] = {3,  4,  5,  6,   7,   8,   9,   10,  11, 13,
                                     15, 17, 19, 23,  27,  31,  35,  43,  51, 59,
                                     67, 83, 99, 115, 131, 163, 195, 227, 258};
    static constexpr int extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
    int i = 28;
    while (base[i] > len) --i;
    literal(static_cast<std::uint32_t>(257 + i));
    put(static_cast<std::uint32_t>(len - base[i]), extra[i]);
    code(0, 5);  // distance code 0: distance 1
  }
};

/// PNG bytes of \p img, compressed: every row with filter 2 (Up: the difference to the row
/// above, mostly zeros in a plot), then one fixed-Huffman deflate block whose only matches are
/// runs of the previous byte. Far smaller than emask::detail::encode_png's stored blocks for a
/// plot; any PNG reader decodes it. Chunks and CRC from emask/core/image.hpp.
inline std::vector<std::uint8_t> encode_png_compressed(const emask::detail::rgb_image& img) {
  const auto stride = static_cast<std::size_t>(img.width) * 3u;
  const auto rows = static_cast<std::size_t>(img.height);
  std::vector<std::uint8_t> raw;
  raw.reserve(rows * (stride + 1));
  for (std::size_t y = 0; y < rows; ++y) {
    raw.push_back(2);
    for (std::size_t i = 0; i < stride; ++i) {
      const std::uint8_t up = y > 0 ? img.pixels[(y - 1) * stride + i] : std::uint8_t{0};
      raw.push_back(static_cast<std::uint8_t>(img.pixels[y * stride + i] - up));
    }
  }
  bit_writer w;
  w.out = {0x78, 0x01};  // zlib header: deflate, 32 KiB window, no dictionary
  w.put(1, 1);           // BFINAL
  w.put(1, 2);           // BTYPE 01: fixed Huffman codes
  for (std::size_t i = 0; i < raw.size();) {
    std::size_t len = 0;
    while (i > 0 && i + len < raw.size() && len < 258 && raw[i + len] == raw[i - 1]) ++len;
    if (len >= 3) {
      w.run(static_cast<int>(len));
      i += len;
    } else {
      w.literal(raw[i++]);
    }
  }
  w.literal(256);  // end of block
  if (w.n > 0) w.put(0, 8 - w.n);
  std::uint32_t a = 1, b = 0;  // Adler-32 of the uncompressed data
  for (std::uint8_t v : raw) {
    a = (a + v) % 65521u;
    b = (b + a) % 65521u;
  }
  emask::detail::put_u32(w.out, (b << 16) | a);

  std::vector<std::uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<std::uint8_t> ihdr;
  emask::detail::put_u32(ihdr, static_cast<std::uint32_t>(img.width));
  emask::detail::put_u32(ihdr, static_cast<std::uint32_t>(img.height));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit RGB, deflate, adaptive filters, no interlace
  emask::detail::png_chunk(out, "IHDR", ihdr);
  emask::detail::png_chunk(out, "IDAT", w.out);
  emask::detail::png_chunk(out, "IEND", {});
  return out;
}
}  // namespace detail

/// \brief Writes draw_line_plot(s, y_min, y_max, o) as a PNG file (compressed, see
/// detail::encode_png_compressed). Returns false (and writes nothing) for bad input, false if
/// the file cannot be written; never throws.
inline bool write_line_plot(const std::string& path, const std::vector<series>& s, double y_min,
                            double y_max, const plot_options& o = {}) {
  const emask::detail::rgb_image img = draw_line_plot(s, y_min, y_max, o);
  if (img.width == 0) return false;
  const std::vector<std::uint8_t> bytes = detail::encode_png_compressed(img);
  std::ofstream f(path, std::ios::binary);
  if (!f) return false;
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(f);
}

}  // namespace plot
