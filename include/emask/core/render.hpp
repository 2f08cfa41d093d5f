/// \file
/// \brief Text rendering of a mask for docs and debugging: one glyph per entry, the kept
/// count per row and the overall density.
#pragma once

#include <sstream>
#include <string>

#include "emask/core/materialize.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Options of render().
struct render_options {
  Index b = 0;             ///< batch entry to draw
  Index h = 0;             ///< head to draw
  bool ascii = false;      ///< '#' and '.' instead of the Unicode glyphs
  bool row_counts = true;  ///< kept count at the end of each row
  bool summary = true;     ///< a last line with the kept total and the density
  Index tile_q = 0;        ///< draw a rule every tile_q rows (0: none)
  Index tile_k = 0;        ///< draw a separator every tile_k columns (0: none)
};

/// \brief Draws slice (b, h) of \p mask for q_len queries and k_len keys: "■" (ASCII "#") for
/// kept, "·" (ASCII ".") for masked, a column ruler, per-row kept counts and the density.
template <class Mask, std::enable_if_t<is_mask_v<Mask>, int> = 0>
std::string render(const Mask& mask, Index q_len, Index k_len, const render_options& opt = {}) {
  const bool_matrix keep = detail::materialize_keep("render", mask, q_len, k_len, opt.b, opt.h);
  const char* kept_glyph = opt.ascii ? "#" : "\u25A0";
  const char* masked_glyph = opt.ascii ? "." : "\u00B7";
  const char* rule_glyph = opt.ascii ? "-" : "\u2500";
  const int label = static_cast<int>(std::to_string(q_len > 0 ? q_len - 1 : 0).size());
  std::ostringstream os;
  const auto pad = [&](const std::string& s) {
    os << std::string(static_cast<std::size_t>(label) + 1 -
                          std::min<std::size_t>(s.size(), static_cast<std::size_t>(label) + 1),
                      ' ')
       << s;
  };
  // Column ruler: the last digit of every key position.
  pad("k");
  os << ' ';
  for (Index k = 0; k < k_len; ++k) {
    if (opt.tile_k > 0 && k > 0 && k % opt.tile_k == 0) os << '|';
    os << static_cast<char>('0' + k % 10);
  }
  os << '\n';
  Index total = 0;
  for (Index q = 0; q < q_len; ++q) {
    if (opt.tile_q > 0 && q > 0 && q % opt.tile_q == 0) {
      pad("");
      os << ' ';
      for (Index k = 0; k < k_len + (opt.tile_k > 0 ? (k_len - 1) / opt.tile_k : 0); ++k)
        os << rule_glyph;
      os << '\n';
    }
    pad(std::to_string(q));
    os << ' ';
    Index n = 0;
    for (Index k = 0; k < k_len; ++k) {
      if (opt.tile_k > 0 && k > 0 && k % opt.tile_k == 0) os << '|';
      os << (keep(q, k) ? kept_glyph : masked_glyph);
      n += keep(q, k) ? 1 : 0;
    }
    total += n;
    if (opt.row_counts) os << "  " << n;
    os << '\n';
  }
  if (opt.summary) {
    const Index cells = q_len * k_len;
    os << "kept " << total << " of " << cells << " (density "
       << (cells ? static_cast<double>(total) / static_cast<double>(cells) : 0.0) << ")\n";
  }
  return os.str();
}

EMASK_NAMESPACE_END
