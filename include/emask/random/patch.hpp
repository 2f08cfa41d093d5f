/// \file
/// \brief MAE random patch masking (He et al. 2022, "Masked Autoencoders Are Scalable Vision
/// Learners", random_masking): per sample keep exactly int(L * (1 - mask_ratio)) patches chosen
/// by an argsort of uniform noise.
///
/// For sample s: ids_shuffle = noise_argsort(purpose::mae_noise, L, {seed, s}) (ascending noise,
/// ties by index); ids_keep = the first len_keep entries; ids_restore = the inverse permutation
/// of ids_shuffle; the mask is true (kept, visible) at ids_keep. MAE's own mask (1 = removed) is
/// available by name through mae_removed().
#pragma once

#include <cstdint>
#include <vector>

#include "emask/core/polarity.hpp"
#include "emask/detail/ieee.hpp"
#include "emask/detail/threads.hpp"
#include "emask/random/distributions.hpp"
#include "emask/random/tokens.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Result of random patch masking of a batch.
struct mae_result {
  token_matrix ids_keep;     ///< [batch, len_keep] indices of the kept patches, noise order
  token_matrix ids_restore;  ///< [batch, L] position of each patch in the shuffled order
  token_matrix ids_shuffle;  ///< [batch, L] patches in ascending-noise order
  bool_matrix kept;          ///< [batch, L] emask convention: true = kept (visible to the encoder)
};

/// \brief Number of kept patches: int(num_patches * (1 - mask_ratio)), truncated as MAE does.
/// \pre 0 <= num_patches < 2^31, 0 <= mask_ratio < 1.
inline Index mae_keep_count(Index num_patches, double mask_ratio) {
  if (num_patches < 0 || num_patches > (Index{1} << 31) - 1)
    detail::fail_argument("mae_keep_count", "num_patches", num_patches, "a count in [0, 2^31)");
  if (detail::is_nan(mask_ratio) || !(mask_ratio >= 0.0 && mask_ratio < 1.0))
    detail::fail_argument("mae_keep_count", "mask_ratio", mask_ratio, "a ratio in [0, 1)");
  return static_cast<Index>(static_cast<double>(num_patches) * (1.0 - mask_ratio));
}

/// \brief MAE random masking of \p batch samples of \p num_patches patches; row b is sample
/// at.sample + b of seed at.seed.
inline mae_result mae_random_masking(Index batch, Index num_patches, double mask_ratio = 0.75,
                                     random_address at = {}) {
  const char* where = "mae_random_masking";
  if (batch < 0) detail::fail_argument(where, "batch", batch, ">= 0");
  if (num_patches < 1 || num_patches > (Index{1} << 31) - 1)
    detail::fail_argument(where, "num_patches", num_patches, "a count in [1, 2^31)");
  if (detail::is_nan(mask_ratio) || !(mask_ratio >= 0.0 && mask_ratio < 1.0))
    detail::fail_argument(where, "mask_ratio", mask_ratio, "a ratio in [0, 1)");
  const Index keep = static_cast<Index>(static_cast<double>(num_patches) * (1.0 - mask_ratio));
  if (keep < 1)
    detail::fail_argument(where, "mask_ratio", mask_ratio,
                          detail::concat("a ratio that keeps at least one of ", num_patches,
                                         " patches (int(L * (1 - ratio)) = 0)"));
  mae_result r{token_matrix(batch, keep), token_matrix(batch, num_patches),
               token_matrix(batch, num_patches), bool_matrix::Constant(batch, num_patches, false)};
  detail::region_errors failure;  // an allocation failure of noise_argsort reaches the caller
#if EMASK_HAS_OPENMP
#pragma omp parallel for schedule(static) if (batch > 1 && batch * num_patches >= 16384)
#endif
  for (Index b = 0; b < batch; ++b)
    failure.run([&] {
      const std::vector<std::uint32_t> order =
          noise_argsort(purpose::mae_noise, static_cast<std::uint32_t>(num_patches),
                        {at.seed, at.sample + static_cast<std::uint64_t>(b)});
      for (Index j = 0; j < num_patches; ++j) {
        const auto p = static_cast<Index>(order[static_cast<std::size_t>(j)]);
        r.ids_shuffle(b, j) = static_cast<token_id>(p);
        r.ids_restore(b, p) = static_cast<token_id>(j);
        if (j < keep) {
          r.ids_keep(b, j) = static_cast<token_id>(p);
          r.kept(b, p) = true;
        }
      }
    });
  failure.rethrow();
  return r;
}

/// \brief MAE's mask convention, by name: 1 where the patch is removed (masked out), 0 where it
/// is kept, as a float (or \p Scalar) matrix [batch, L] like MAE's returned `mask`.
template <class Scalar = float>
row_matrix<Scalar> mae_removed(const mae_result& r) {
  return (!r.kept).template cast<Scalar>().matrix();
}

EMASK_NAMESPACE_END
