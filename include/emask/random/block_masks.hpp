/// \file
/// \brief Masks over a grid of image patches for masked image modelling: BEiT blockwise masking,
/// SimMIM random mask patches and data2vec 2.0 inverse block masking. Every mask is per sample
/// (row b is sample at.sample + b) and true = masked, the papers' convention (1 = masked).
///
/// - **BEiT** (Bao et al. 2022, "BEiT: BERT Pre-Training of Image Transformers"; microsoft/unilm
///   beit/masking_generator.py, MaskingGenerator): rectangles of log-uniform aspect ratio and
///   uniform area are added by rejection sampling until num_masking_patches patches are masked or
///   ten attempts in a row fail. Same algorithm, including the strict `w < width, h < height`
///   test, Python's round-half-even and the inclusive randint. Differences: the uniforms come from
///   32-bit Philox words (w * 2^-32) instead of Python's 53-bit random(); `a + (b - a) u` is one
///   fma; exp and log are detail::portable_exp / portable_log (the same bits everywhere).
/// - **SimMIM** (Xie et al. 2022; microsoft/SimMIM data/data_simmim.py, MaskGenerator):
///   mask_count = ceil(rand_size^2 * mask_ratio) mask patches chosen uniformly (the smallest
///   Philox noise keys instead of np.random.permutation), each repeated scale x scale times.
/// - **data2vec 2.0** (Baevski et al. 2023; facebookresearch/fairseq
///   fairseq/data/data_utils.py, compute_block_mask_2d, the default path: inverse_mask,
///   require_same_masks, no mask_dropout, no expand_adjcent, no non_overlapping): block centres
///   drawn with replacement, expanded to mask_length x mask_length blocks clamped at the borders,
///   the count equalised to exactly int(L * (1 - mask_prob)) per sample, then inverted so that
///   the blocks are what stays visible. fairseq's equalisation is per sample (its target does not
///   depend on the other rows), so each row here depends only on its own sample id.
///
/// docs/random.md gives every draw (purpose, index, word) so that the masks can be reproduced.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "emask/config.hpp"

#include "emask/detail/ieee.hpp"
#include "emask/detail/portable_math.hpp"
#include "emask/detail/threads.hpp"
#include "emask/random/distributions.hpp"
#include "emask/random/tokens.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Masks over a height x width patch grid, one row per sample: [batch, height * width],
/// patch (i, j) at column i * width + j (row-major, as a flattened ViT patch sequence).
struct patch_grid_mask {
  /// true = masked (hidden from the encoder and predicted): the papers' `1 = masked`. This is
  /// the opposite of emask's keep convention; kept() gives that one.
  bool_matrix masked;
  Index height = 0;  ///< rows of the patch grid
  Index width = 0;   ///< columns of the patch grid

  /// \brief emask's convention, true = kept (visible): the complement of masked.
  bool_matrix kept() const { return !masked; }
  /// \brief Sample \p b as a height x width grid, true = masked.
  bool_matrix grid(Index b) const {
    if (b < 0 || b >= masked.rows())
      detail::fail_argument("patch_grid_mask::grid", "b", b, "a row in [0, ", masked.rows(), ")");
    bool_matrix g(height, width);
    for (Index i = 0; i < height; ++i)
      for (Index j = 0; j < width; ++j) g(i, j) = masked(b, i * width + j);
    return g;
  }
  /// \brief Number of masked patches of each sample.
  Eigen::Matrix<Index, Eigen::Dynamic, 1> counts() const {
    return masked.cast<Index>().rowwise().sum().matrix();
  }
};

// ---------------------------------------------------------------------------------------------
// BEiT

/// \brief Options of BEiT blockwise masking. The defaults are BEiT's ImageNet pre-training
/// (224 / 16 = 14 x 14 patches, 75 masked, blocks of at least 16 patches, aspect in [0.3, 1/0.3]).
struct beit_mask_options {
  Index height = 14;                     ///< rows of the patch grid
  Index width = 14;                      ///< columns of the patch grid
  Index num_masking_patches = 75;        ///< the budget: masking stops when it is reached
  Index min_num_patches = 16;            ///< smallest block area drawn
  std::optional<Index> max_num_patches;  ///< largest block area; unset: num_masking_patches
  double min_aspect = 0.3;               ///< smallest aspect ratio h / w
  std::optional<double> max_aspect;      ///< largest aspect ratio; unset: 1 / min_aspect
};

namespace detail {
/// A Philox word as a double in [0, 1): w * 2^-32. Exact.
constexpr double unit_from_word(std::uint32_t w) noexcept {
  return static_cast<double>(w) * (1.0 / 4294967296.0);
}

/// round_half_even(sqrt(x)) if it is the same for every x' within 2^-38 (relative) of x, else -1.
/// BEiT's h and w are round(sqrt(area * a)) and round(sqrt(area / a)), monotone in a; when both
/// answers are clear for a = std::exp(t) they are those of a = portable_exp(t), since the two lie
/// within 2^-39 of each other (portable_exp is within 3 ulps of e^t, and any libm's exp far
/// closer than 2^-40). The margin, 2^-28 of the root, leaves a factor 2^9 of slack. So std::exp
/// only skips portable_exp; it never decides a draw.
inline double round_sqrt_if_clear(double x) noexcept {
  const double r = std::sqrt(x);
  const double f = std::floor(r);
  const double d = r - f;  // exact
  if (std::fabs(d - 0.5) <= r * 0x1p-28) return -1.0;
  return d < 0.5 ? f : f + 1.0;
}

/// BEiT's constants for one call.
struct beit_plan {
  Index height, width, target, min_patches, max_patches;
  double log_lo, log_span;  // log(min_aspect), log(max_aspect) - log(min_aspect)
};

/// One BEiT mask into m (height * width bools, all false on entry); returns the masked count.
/// Attempt a (counted across the whole sample) reads the word stream (seed, sample, beit_block,
/// a): word 0 -> area, word 1 -> aspect, then bounded() for top and for left.
inline Index beit_one(const beit_plan& p, bool* m, std::uint64_t seed,
                      std::uint64_t sample) noexcept {
  const auto height = static_cast<double>(p.height), width = static_cast<double>(p.width);
  const auto lo = static_cast<double>(p.min_patches);
  Index count = 0;
  std::uint32_t attempt = 0;
  while (count < p.target) {
    const Index max_mask = (std::min)(p.target - count, p.max_patches);
    const double span = static_cast<double>(max_mask) - lo;  // exact: integers below 2^31
    Index delta = 0;
    for (int k = 0; k < 10 && delta == 0; ++k) {  // BEiT's _mask: ten attempts
      word_stream s(seed, sample, purpose::beit_block, attempt++);
      // random.uniform(a, b) = a + (b - a) * u, as one correctly rounded fma
      const double area = std::fma(span, unit_from_word(s.next()), lo);
      const double log_aspect = std::fma(p.log_span, unit_from_word(s.next()), p.log_lo);
      // h = round(sqrt(area * aspect)), w = round(sqrt(area / aspect)) with aspect =
      // portable_exp(log_aspect), in [1e-4, 1e4] (area in [0, 2^31): no overflow, no NaN).
      // std::exp (about 5x faster) answers when no half-integer is near either square root.
      const double guess = std::exp(log_aspect);
      double hd = round_sqrt_if_clear(area * guess), wd = round_sqrt_if_clear(area / guess);
      if (hd < 0.0 || wd < 0.0) {
        const double aspect = portable_exp(log_aspect);
        hd = round_half_even(std::sqrt(area * aspect));
        wd = round_half_even(std::sqrt(area / aspect));
      }
      if (!(wd < width && hd < height)) continue;  // strict, as BEiT
      const auto h = static_cast<Index>(hd), w = static_cast<Index>(wd);
      const auto top = static_cast<Index>(bounded(s, static_cast<std::uint32_t>(p.height - h + 1)));
      const auto left = static_cast<Index>(bounded(s, static_cast<std::uint32_t>(p.width - w + 1)));
      Index already = 0;
      for (Index i = top; i < top + h; ++i) {
        const bool* row = m + i * p.width;
        for (Index j = left; j < left + w; ++j) already += row[j] ? 1 : 0;
      }
      const Index fresh = h * w - already;
      if (fresh > 0 && fresh <= max_mask) {
        for (Index i = top; i < top + h; ++i) std::fill_n(m + i * p.width + left, w, true);
        delta = fresh;
      }
    }
    if (delta == 0) break;  // ten failed attempts: BEiT stops below the budget
    count += delta;
  }
  return count;
}

inline beit_plan check_beit(const char* where, Index batch, const beit_mask_options& o) {
  if (batch < 0) fail_argument(where, "batch", batch, ">= 0");
  if (o.height < 1 || o.height > 16384)
    fail_argument(where, "options.height", o.height, "a grid side in [1, 16384]");
  if (o.width < 1 || o.width > 16384)
    fail_argument(where, "options.width", o.width, "a grid side in [1, 16384]");
  const Index big = (Index{1} << 31) - 1;
  if (o.num_masking_patches < 0 || o.num_masking_patches > big)
    fail_argument(where, "options.num_masking_patches", o.num_masking_patches,
                  "a count in [0, 2^31)");
  if (o.min_num_patches < 0 || o.min_num_patches > big)
    fail_argument(where, "options.min_num_patches", o.min_num_patches, "a count in [0, 2^31)");
  const Index max_patches = o.max_num_patches ? *o.max_num_patches : o.num_masking_patches;
  if (o.max_num_patches && (*o.max_num_patches < 1 || *o.max_num_patches > big))
    fail_argument(where, "options.max_num_patches", *o.max_num_patches,
                  "a count in [1, 2^31) (unset for num_masking_patches)");
  const auto aspect_ok = [](double a) { return !is_nan(a) && a >= 1e-4 && a <= 1e4; };
  if (!aspect_ok(o.min_aspect))
    fail_argument(where, "options.min_aspect", o.min_aspect, "an aspect ratio in [1e-4, 1e4]");
  const double max_aspect = o.max_aspect ? *o.max_aspect : 1.0 / o.min_aspect;
  if (!aspect_ok(max_aspect))
    fail_argument(where, "options.max_aspect", max_aspect,
                  "an aspect ratio in [1e-4, 1e4] (unset for 1 / min_aspect)");
  const double log_lo = portable_log(o.min_aspect);
  return {o.height,
          o.width,
          o.num_masking_patches,
          o.min_num_patches,
          max_patches,
          log_lo,
          portable_log(max_aspect) - log_lo};
}
}  // namespace detail

/// \brief BEiT blockwise masking of \p batch images; row b is sample at.sample + b.
///
/// Per sample, while fewer than num_masking_patches patches are masked: max_mask =
/// min(num_masking_patches - count, max_num_patches); up to ten attempts, each drawing area ~
/// U(min_num_patches, max_mask) and aspect = exp(U(log min_aspect, log max_aspect)), h =
/// round(sqrt(area * aspect)), w = round(sqrt(area / aspect)); if w < width and h < height, top
/// and left are uniform in [0, height - h] and [0, width - w], and the rectangle is masked if it
/// adds between 1 and max_mask new patches. When ten attempts in a row add nothing, the mask is
/// returned as it is (possibly below the budget, as BEiT). The count never exceeds the budget.
inline patch_grid_mask beit_block_mask(Index batch, const beit_mask_options& options = {},
                                       random_address at = {}) {
  const detail::beit_plan plan = detail::check_beit("beit_block_mask", batch, options);
  const Index cells = plan.height * plan.width;
  patch_grid_mask r{bool_matrix::Constant(batch, cells, false), plan.height, plan.width};
#if EMASK_HAS_OPENMP
#pragma omp parallel for schedule(static) if (batch >= 64)
#endif
  for (Index b = 0; b < batch; ++b)
    detail::beit_one(plan, r.masked.data() + b * cells, at.seed,
                     at.sample + static_cast<std::uint64_t>(b));
  return r;
}

// ---------------------------------------------------------------------------------------------
// SimMIM

/// \brief Options of SimMIM masking (the defaults are SimMIM's Swin pre-training: 192 px images,
/// 32 px mask patches, 4 px model patches, 60 % masked).
struct simmim_mask_options {
  Index input_size = 192;      ///< image side in pixels (square images, as SimMIM)
  Index mask_patch_size = 32;  ///< side of a mask patch in pixels; divides input_size
  Index model_patch_size = 4;  ///< side of a model patch in pixels; divides mask_patch_size
  double mask_ratio = 0.6;     ///< fraction of mask patches masked (rounded up)
};

namespace detail {
struct simmim_plan {
  Index rand_size, scale, mask_count;
};
inline simmim_plan check_simmim(const char* where, const simmim_mask_options& o) {
  if (o.input_size < 1 || o.input_size > 65536)
    fail_argument(where, "options.input_size", o.input_size, "a size in [1, 65536]");
  if (o.mask_patch_size < 1 || o.input_size % o.mask_patch_size != 0)
    fail_argument(where, "options.mask_patch_size", o.mask_patch_size,
                  "a positive divisor of input_size = ", o.input_size);
  if (o.model_patch_size < 1 || o.mask_patch_size % o.model_patch_size != 0)
    fail_argument(where, "options.model_patch_size", o.model_patch_size,
                  "a positive divisor of mask_patch_size = ", o.mask_patch_size);
  check_probability(where, "options.mask_ratio", o.mask_ratio);
  const Index rand_size = o.input_size / o.mask_patch_size;
  const Index tokens = rand_size * rand_size;
  // int(np.ceil(token_count * mask_ratio)): one rounded product, then ceil
  const auto count = static_cast<Index>(std::ceil(static_cast<double>(tokens) * o.mask_ratio));
  return {rand_size, o.mask_patch_size / o.model_patch_size, (std::min)(count, tokens)};
}
}  // namespace detail

/// \brief Number of masked mask patches: ceil((input_size / mask_patch_size)^2 * mask_ratio).
inline Index simmim_mask_count(const simmim_mask_options& options = {}) {
  return detail::check_simmim("simmim_mask_count", options).mask_count;
}

/// \brief SimMIM masking of \p batch images, at model-patch granularity: [batch, G * G] with
/// G = input_size / model_patch_size; row b is sample at.sample + b. Mask patch q of the
/// rand_size x rand_size grid (rand_size = input_size / mask_patch_size) is masked iff its key
/// (packed_word(seed, s, simmim_noise, q) << 32) | q is among the mask_count smallest; each mask
/// patch covers scale x scale model patches (scale = mask_patch_size / model_patch_size).
inline patch_grid_mask simmim_mask(Index batch, const simmim_mask_options& options = {},
                                   random_address at = {}) {
  const char* where = "simmim_mask";
  if (batch < 0) detail::fail_argument(where, "batch", batch, ">= 0");
  const detail::simmim_plan p = detail::check_simmim(where, options);
  const Index side = p.rand_size * p.scale, tokens = p.rand_size * p.rand_size;
  patch_grid_mask r{bool_matrix::Constant(batch, side * side, false), side, side};
  detail::region_errors failure;  // an allocation failure reaches the caller
#if EMASK_HAS_OPENMP
#pragma omp parallel for schedule(static) if (batch > 1 && batch * side * side >= 16384)
#endif
  for (Index b = 0; b < batch; ++b)
    failure.run([&] {
      const std::uint64_t s = at.sample + static_cast<std::uint64_t>(b);
      const auto n = static_cast<std::size_t>(tokens);
      std::vector<std::uint32_t> words(n);
      detail::fill_packed_words(at.seed, s, purpose::simmim_noise, 0, n, words.data());
      std::vector<std::uint64_t> keys(n);
      for (std::size_t q = 0; q < n; ++q)
        keys[q] = detail::noise_key(words[q], static_cast<std::uint32_t>(q));
      std::vector<unsigned char> flag(n, 0);
      detail::mark_smallest(keys, static_cast<std::size_t>(p.mask_count), flag.data());
      bool* row = r.masked.data() + b * side * side;
      for (Index i = 0; i < side; ++i)
        for (Index j = 0; j < side; ++j)
          row[i * side + j] =
              flag[static_cast<std::size_t>((i / p.scale) * p.rand_size + j / p.scale)] != 0;
    });
  failure.rethrow();
  return r;
}

// ---------------------------------------------------------------------------------------------
// data2vec 2.0

/// \brief Options of data2vec 2.0 inverse block masking (the defaults are data2vec 2.0's image
/// pre-training: 224 / 16 = 14 x 14 patches, 80 % masked, 3 x 3 blocks, adjust 0.07).
struct data2vec_mask_options {
  Index height = 14;               ///< rows of the patch grid (fairseq: sqrt(L), square)
  Index width = 14;                ///< columns of the patch grid
  double mask_prob = 0.8;          ///< fraction masked
  Index mask_length = 3;           ///< block side (> 1, as fairseq asserts)
  double mask_prob_adjust = 0.07;  ///< extra centres, compensating for overlapping blocks
  bool inverse_mask = true;        ///< blocks are what stays visible (data2vec 2.0)
  bool require_same_masks = true;  ///< equalise every sample to the same count
};

namespace detail {
struct data2vec_plan {
  Index height, width, cells, length, centres, target;
  bool inverse, same;
};

inline data2vec_plan check_data2vec(const char* where, Index batch,
                                    const data2vec_mask_options& o) {
  if (batch < 0) fail_argument(where, "batch", batch, ">= 0");
  if (o.height < 1 || o.height > 16384)
    fail_argument(where, "options.height", o.height, "a grid side in [1, 16384]");
  if (o.width < 1 || o.width > 16384)
    fail_argument(where, "options.width", o.width, "a grid side in [1, 16384]");
  check_probability(where, "options.mask_prob", o.mask_prob);
  if (o.mask_length < 2 || o.mask_length > 16384)
    fail_argument(where, "options.mask_length", o.mask_length, "a block side in [2, 16384]");
  if (is_nan(o.mask_prob_adjust) || !(o.mask_prob_adjust >= 0.0 && o.mask_prob_adjust <= 1.0))
    fail_argument(where, "options.mask_prob_adjust", o.mask_prob_adjust, "a value in [0, 1]");
  const Index cells = o.height * o.width;
  const auto L = static_cast<double>(cells);
  const double p = o.inverse_mask ? 1.0 - o.mask_prob : o.mask_prob;
  const auto area = static_cast<double>(o.mask_length) * static_cast<double>(o.mask_length);
  // int(L * ((mask_prob + mask_prob_adjust) / mask_length**2)): add, divide, multiply, truncate
  const double sum = p + o.mask_prob_adjust;
  const double per_cell = sum / area;
  const auto centres = static_cast<Index>(L * per_cell);
  const auto target = static_cast<Index>(L * p);  // final_target_len = int(L * mask_prob)
  return {o.height, o.width, cells,          o.mask_length,
          centres,  target,  o.inverse_mask, o.require_same_masks};
}

/// Flips the k cells with the smallest noise keys among the cells whose value is `from`.
/// Noise of cell c: packed word 2^33 + c of (seed, sample, data2vec_block).
inline void data2vec_flip(const data2vec_plan& p, bool* m, std::uint64_t seed, std::uint64_t sample,
                          bool from, Index k, std::vector<std::uint32_t>& words,
                          std::vector<std::uint64_t>& keys) {
  const auto n = static_cast<std::size_t>(p.cells);
  const std::uint64_t base = std::uint64_t{1} << 33;
  words.resize(n);
  fill_packed_words(seed, sample, purpose::data2vec_block, base, base + n, words.data());
  keys.clear();
  for (std::size_t c = 0; c < n; ++c)
    if (m[c] == from) keys.push_back(noise_key(words[c], static_cast<std::uint32_t>(c)));
  if (static_cast<std::size_t>(k) < keys.size())
    std::nth_element(keys.begin(), keys.begin() + (k - 1), keys.end());
  const std::size_t flips = (std::min)(static_cast<std::size_t>(k), keys.size());
  for (std::size_t j = 0; j < flips; ++j) m[static_cast<std::uint32_t>(keys[j])] = !from;
}

/// One data2vec 2.0 mask (before inversion it marks the blocks) into m, all false on entry.
inline void data2vec_one(const data2vec_plan& p, bool* m, std::uint64_t seed, std::uint64_t sample,
                         std::vector<std::uint32_t>& words, std::vector<std::uint64_t>& keys) {
  const Index offset = p.length / 2;
  for (Index c = 0; c < p.centres; ++c) {
    // torch.randint(0, L): one uniform centre per stream, with replacement
    word_stream s(seed, sample, purpose::data2vec_block, static_cast<std::uint32_t>(c));
    const auto centre = static_cast<Index>(bounded(s, static_cast<std::uint32_t>(p.cells)));
    const Index ci = centre / p.width, cj = centre % p.width;
    // rows ci - offset .. ci - offset + length - 1, clamped to the grid (fairseq clamps)
    const Index i0 = (std::max)(ci - offset, Index{0});
    const Index i1 = (std::min)(ci - offset + p.length - 1, p.height - 1);
    const Index j0 = (std::max)(cj - offset, Index{0});
    const Index j1 = (std::min)(cj - offset + p.length - 1, p.width - 1);
    for (Index i = i0; i <= i1; ++i)
      std::fill(m + i * p.width + j0, m + i * p.width + j1 + 1, true);
  }
  if (!p.same) return;
  Index n = 0;
  for (Index c = 0; c < p.cells; ++c) n += m[c] ? 1 : 0;
  if (n > p.target) data2vec_flip(p, m, seed, sample, true, n - p.target, words, keys);
  if (n < p.target) data2vec_flip(p, m, seed, sample, false, p.target - n, words, keys);
}
}  // namespace detail

/// \brief data2vec 2.0 inverse block masking (fairseq compute_block_mask_2d, default path) of
/// \p batch images; row b is sample at.sample + b.
///
/// With p = 1 - mask_prob (inverse_mask) or mask_prob: centres = int(L * ((p + mask_prob_adjust)
/// / mask_length^2)) cells drawn uniformly with replacement; each sets the mask_length x
/// mask_length block of rows and columns [c - mask_length / 2, c - mask_length / 2 +
/// mask_length) clamped to the grid. With require_same_masks the count of set cells becomes
/// exactly int(L * p): the surplus is cleared, or the shortfall set, at uniformly chosen cells.
/// With inverse_mask the result is the complement (the blocks stay visible), so exactly
/// L - int(L * (1 - mask_prob)) patches are masked.
inline patch_grid_mask data2vec_block_mask(Index batch, const data2vec_mask_options& options = {},
                                           random_address at = {}) {
  const detail::data2vec_plan p = detail::check_data2vec("data2vec_block_mask", batch, options);
  patch_grid_mask r{bool_matrix::Constant(batch, p.cells, false), p.height, p.width};
  detail::region_errors failure;  // an allocation failure reaches the caller
#if EMASK_HAS_OPENMP
#pragma omp parallel if (batch > 1 && batch * p.cells >= 16384)
#endif
  {
    std::vector<std::uint32_t> words;  // per-thread scratch of the equalisation
    std::vector<std::uint64_t> keys;
#if EMASK_HAS_OPENMP
#pragma omp for schedule(static)
#endif
    for (Index b = 0; b < batch; ++b)
      failure.run([&] {
        bool* row = r.masked.data() + b * p.cells;
        detail::data2vec_one(p, row, at.seed, at.sample + static_cast<std::uint64_t>(b), words,
                             keys);
        if (p.inverse)
          for (Index c = 0; c < p.cells; ++c) row[c] = !row[c];
      });
  }
  failure.rethrow();
  return r;
}

EMASK_NAMESPACE_END
