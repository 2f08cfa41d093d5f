/// \file
/// \brief reference::naive for masked_softmax and masked_log_softmax: materialize the additive
/// bias of the slice (O(Lq * Lk) extra), add it, softmax. The plain reference the tests compare
/// the tiled and fused variants with. Use masked_softmax(reference::naive, ...).
#pragma once

#include <limits>

#include "emask/core/materialize.hpp"
#include "emask/kernels/softmax.hpp"

EMASK_NAMESPACE_BEGIN
namespace detail {

template <>
struct softmax_kernel<reference::naive_t> {
  template <bool Log, class S, class Mask>
  static void run(const score_ref<S>& x, const Mask& mask, Eigen::Ref<row_matrix<S>> out, S* lse,
                  S scale, Index b, Index h, int threads) {
    const additive_mask<S> bias =
        materialize_additive<S>(mask, x.rows(), x.cols(), b, h, std::numeric_limits<S>::lowest());
    softmax_additive<Log>(x, bias.matrix(), out, lse, scale, threads);
  }
};

}  // namespace detail
EMASK_NAMESPACE_END
