/// \file
/// \brief The vocabulary every emask header shares, at the bottom floor (it includes only
/// config.hpp): sizes, the "no limit" bound, the storage types, token ids, the address of a
/// random draw and the tile answer.
#pragma once

#include <cstdint>
#include <limits>

#include "emask/config.hpp"

EMASK_NAMESPACE_BEGIN

/// \brief Sizes, positions and lengths: Eigen's signed index type.
using Index = Eigen::Index;

/// \brief A bound that is never reached: use it for an unbounded window side.
inline constexpr Index unbounded = (std::numeric_limits<Index>::max)() / 8;

/// \brief The materialized keep-mask: row-major, true = keep. Apply it with select().
using bool_matrix = Eigen::Array<bool, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// \brief A row-major matrix of scalars, the storage of scores and biases.
template <class Scalar>
using row_matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// \brief A column vector of per-row values (the log-sum-exp of one head).
template <class Scalar>
using lse_vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

/// \brief A token id (the element type of token_matrix).
using token_id = std::int32_t;

/// \brief Token ids [batch, length], int32, row-major (one row per sequence).
using token_matrix = Eigen::Array<token_id, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// \brief Where a random draw comes from: the Philox key (seed) and the first sample id.
/// Row b of a batched call draws as sample `sample + b` (in rl/, `sample` is the step and row b is
/// the index of the draw within it).
struct random_address {
  std::uint64_t seed = 0;    ///< the Philox key
  std::uint64_t sample = 0;  ///< the sample id of the first row (row b draws as sample + b)
};

/// \brief What a rectangle of (query, key) positions holds.
enum class tile_state : unsigned char {
  empty = 0,    ///< no pair is kept: a kernel skips the tile
  partial = 1,  ///< some pairs are kept, or the mask cannot tell cheaply
  full = 2      ///< every pair is kept: a kernel drops the mask test
};

EMASK_NAMESPACE_END
