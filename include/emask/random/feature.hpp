/// \file
/// \brief Masked generative distillation (MGD, Yang et al. 2022) feature masks: a spatial mask
/// N x (H*W) and a channel mask N x C, each element dropped with probability lambda, and their
/// application to a feature map by zeroing the dropped features.
///
/// Element i of sample s is dropped iff bernoulli(lambda) fires on packed word i of
/// (seed, s, purpose::mgd_spatial) (spatial, i = h * W + w) or (seed, s, purpose::mgd_channel)
/// (channel, i = c); row r of a call at random_address{seed, sample} is sample s = sample + r.
/// The masks use emask's convention: true = kept.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "emask/core/polarity.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/random/distributions.hpp"

EMASK_NAMESPACE_BEGIN

namespace detail {
inline bool_matrix drop_flags(const char* where, Index n, Index width, double lambda,
                              random_address at, std::uint16_t purpose_id) {
  if (n < 0) fail_argument(where, "n", n, ">= 0");
  if (width < 0) fail_argument(where, "width", width, ">= 0");
  // The words of one row, and the n x width flags: storage that can exist at all.
  if (static_cast<std::size_t>(width) > std::vector<std::uint32_t>().max_size() / 2)
    fail_argument(where, "width", width, "at most ", std::vector<std::uint32_t>().max_size() / 2,
                  " positions per sample");
  if (width > 0 && n > (std::numeric_limits<Index>::max)() / width)
    fail_argument(where, "n", n, "at most ", (std::numeric_limits<Index>::max)() / width,
                  " samples of ", width, " positions (n x positions must fit in an Index)");
  if (detail::is_nan(lambda) || !(lambda >= 0.0 && lambda <= 1.0))
    fail_argument(where, "lambda", lambda, "a drop probability in [0, 1]");
  const bernoulli drop(lambda);
  bool_matrix keep(n, width);
  std::vector<std::uint32_t> words(static_cast<std::size_t>(width));
  for (Index s = 0; s < n; ++s) {
    fill_packed_words(at.seed, at.sample + static_cast<std::uint64_t>(s), purpose_id, 0,
                      static_cast<std::uint64_t>(width), words.data());
    for (Index i = 0; i < width; ++i) keep(s, i) = !drop(words[static_cast<std::size_t>(i)]);
  }
  return keep;
}
}  // namespace detail

/// \brief Spatial mask [n, height * width]: true = kept; each position dropped with probability
/// \p lambda. Row s is sample at.sample + s of seed at.seed.
inline bool_matrix mgd_spatial_mask(Index n, Index height, Index width, double lambda,
                                    random_address at = {}) {
  if (height < 0) detail::fail_argument("mgd_spatial_mask", "height", height, ">= 0");
  if (width < 0) detail::fail_argument("mgd_spatial_mask", "width", width, ">= 0");
  if (width > 0 && height > (std::numeric_limits<Index>::max)() / width)
    detail::fail_argument("mgd_spatial_mask", "height", height, "at most ",
                          (std::numeric_limits<Index>::max)() / width,
                          " (height * width = ", "the positions per sample must fit in an Index)");
  return detail::drop_flags("mgd_spatial_mask", n, height * width, lambda, at,
                            purpose::mgd_spatial);
}

/// \brief Channel mask [n, channels]: true = kept; each channel dropped with probability
/// \p lambda. Row s is sample at.sample + s of seed at.seed.
inline bool_matrix mgd_channel_mask(Index n, Index channels, double lambda,
                                    random_address at = {}) {
  if (channels < 0) detail::fail_argument("mgd_channel_mask", "channels", channels, ">= 0");
  return detail::drop_flags("mgd_channel_mask", n, channels, lambda, at, purpose::mgd_channel);
}

namespace detail {
template <class Scalar>
void apply_spatial(Eigen::Ref<row_matrix<Scalar>> features, Index channels,
                   const bool_matrix& spatial) {
  const char* where = "apply_spatial_mask";
  if (channels < 1) fail_argument(where, "channels", channels, ">= 1");
  if (spatial.rows() != features.rows() || spatial.cols() * channels != features.cols())
    fail_argument(where, "spatial", concat(spatial.rows(), "x", spatial.cols()),
                  concat(features.rows(), "x", features.cols() / channels, " (features ",
                         features.rows(), "x", features.cols(), " with ", channels, " channels)"));
  const Index hw = spatial.cols();
  for (Index s = 0; s < features.rows(); ++s)
    for (Index c = 0; c < channels; ++c)
      for (Index i = 0; i < hw; ++i)
        if (!spatial(s, i)) features(s, c * hw + i) = Scalar(0);
}

template <class Scalar>
void apply_channel(Eigen::Ref<row_matrix<Scalar>> features, const bool_matrix& channel) {
  const char* where = "apply_channel_mask";
  const Index channels = channel.cols();
  if (channel.rows() != features.rows() || channels < 1 || features.cols() % channels != 0)
    fail_argument(where, "channel", concat(channel.rows(), "x", channels),
                  concat(features.rows(), " rows and a channel count dividing ", features.cols()));
  const Index hw = features.cols() / channels;
  for (Index s = 0; s < features.rows(); ++s)
    for (Index c = 0; c < channels; ++c)
      if (!channel(s, c)) features.row(s).segment(c * hw, hw).setZero();
}
}  // namespace detail

/// \brief Zeroes the dropped positions of \p features, a row-major [n, channels * H * W] map
/// (NCHW, one sample per row), given a spatial keep-mask [n, H * W].
inline void apply_spatial_mask(Eigen::Ref<row_matrix<float>> features, Index channels,
                               const bool_matrix& spatial) {
  detail::apply_spatial<float>(features, channels, spatial);
}
/// \brief Double-precision form of apply_spatial_mask.
inline void apply_spatial_mask(Eigen::Ref<row_matrix<double>> features, Index channels,
                               const bool_matrix& spatial) {
  detail::apply_spatial<double>(features, channels, spatial);
}
/// \brief Zeroes the dropped channels of \p features [n, channels * H * W] given a channel
/// keep-mask [n, channels].
inline void apply_channel_mask(Eigen::Ref<row_matrix<float>> features, const bool_matrix& channel) {
  detail::apply_channel<float>(features, channel);
}
/// \brief Double-precision form of apply_channel_mask.
inline void apply_channel_mask(Eigen::Ref<row_matrix<double>> features,
                               const bool_matrix& channel) {
  detail::apply_channel<double>(features, channel);
}

EMASK_NAMESPACE_END
