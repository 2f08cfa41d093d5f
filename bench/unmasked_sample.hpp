// The unmasked reference of masked sampling, shared by bench_rl and emask_perf: a plain
// vectorized softmax of each row (Eigen), then the inverse-CDF draw of one Philox uniform
// (the same draw as emask::masked_sample, so both do the same work but the mask).
#pragma once

#include <emask/random/distributions.hpp>
#include <emask/random/philox.hpp>
#include <emask/rl/action_mask.hpp>

namespace emask_bench {

inline emask::action_matrix unmasked_sample(const emask::row_matrix<float>& x,
                                            emask::random_address at, emask::row_matrix<float>& p) {
  using emask::Index;
  emask::action_matrix out(x.rows(), 1);
  for (Index b = 0; b < x.rows(); ++b) {
    auto row = p.row(b).array();
    const float m = x.row(b).maxCoeff();
    row = (x.row(b).array() - m).exp();
    double total = 0.0;
    for (Index a = 0; a < x.cols(); ++a) total += double(row[a]);
    emask::word_stream ws(at.seed, at.sample, emask::purpose::rl_sample, std::uint32_t(b));
    const std::uint32_t w0 = ws.next(), w1 = ws.next();
    const double target = emask::uniform_double(w0, w1) * total;
    double cum = 0.0;
    Index chosen = x.cols() - 1;
    for (Index a = 0; a < x.cols(); ++a) {
      cum += double(row[a]);
      if (cum > target) {
        chosen = a;
        break;
      }
    }
    out(b, 0) = chosen;
  }
  return out;
}

}  // namespace emask_bench
