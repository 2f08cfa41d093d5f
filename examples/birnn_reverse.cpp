// A bidirectional pass of a tiny Eigen RNN over a right-padded batch. The backward direction
// runs on reverse_padded(x, lengths), so it starts at each sequence's last real token; changing
// the padding changes no output at a real step. A plain full reversal would start in the padding
// and leak it into every backward state.
// ctest-pass: reverse_padded: padding leak 0
// ctest-pass: full reversal: padding leak [0-9.]*[1-9]
#include <cmath>
#include <emask/seq/reverse.hpp>
#include <emask/seq/sequence_mask.hpp>
#include <iostream>

using emask::Index;
using mat = emask::row_matrix<double>;

namespace {
// h_t = tanh(W x_t + U h_{t-1}); returns every state, [batch * time, hidden].
mat rnn(const mat& x, Index batch, const mat& W, const mat& U) {
  const Index T = x.rows() / batch, H = W.rows();
  mat states = mat::Zero(x.rows(), H);
  for (Index b = 0; b < batch; ++b) {
    Eigen::VectorXd h = Eigen::VectorXd::Zero(H);
    for (Index t = 0; t < T; ++t) {
      h = (W * x.row(b * T + t).transpose() + U * h).array().tanh().matrix();
      states.row(b * T + t) = h.transpose();
    }
  }
  return states;
}

mat full_reverse(const mat& x, Index batch) {
  const Index T = x.rows() / batch;
  mat out = x;
  for (Index b = 0; b < batch; ++b)
    for (Index t = 0; t < T; ++t) out.row(b * T + t) = x.row(b * T + T - 1 - t);
  return out;
}

// Largest change of a backward state at a real step when only the padding changes.
template <class Backward>
double leak(const mat& x, const mat& x_other_padding, const emask::bool_matrix& valid,
            Backward&& backward) {
  const mat a = backward(x), b = backward(x_other_padding);
  double worst = 0;
  const Index T = valid.cols();
  for (Index s = 0; s < valid.rows(); ++s)
    for (Index t = 0; t < T; ++t)
      if (valid(s, t))
        worst = std::max(worst, (a.row(s * T + t) - b.row(s * T + t)).cwiseAbs().maxCoeff());
  return worst;
}
}  // namespace

int main() {
  const Index batch = 2, T = 5, F = 3, H = 4;
  const emask::index_list lengths{5, 3};
  const emask::bool_matrix valid = emask::sequence_mask(lengths, T);
  mat W(H, F), U(H, H);
  for (Index i = 0; i < H; ++i) {
    for (Index j = 0; j < F; ++j) W(i, j) = std::sin(1.0 + static_cast<double>(i * F + j));
    for (Index j = 0; j < H; ++j) U(i, j) = 0.5 * std::cos(2.0 + static_cast<double>(i * H + j));
  }
  mat x(batch * T, F), x2;
  for (Index r = 0; r < batch * T; ++r)
    for (Index f = 0; f < F; ++f) x(r, f) = std::cos(0.3 * static_cast<double>(r * F + f));
  x2 = x;
  for (Index s = 0; s < batch; ++s)
    for (Index t = 0; t < T; ++t)
      if (!valid(s, t)) {
        x.row(s * T + t).setZero();
        x2.row(s * T + t).setConstant(7.0);  // other padding values
      }

  // Backward direction: run on the reversed valid prefix, then reverse the states back.
  const auto masked_backward = [&](const mat& in) {
    return emask::reverse_padded(rnn(emask::reverse_padded(in, lengths), batch, W, U), lengths);
  };
  const auto naive_backward = [&](const mat& in) {
    return full_reverse(rnn(full_reverse(in, batch), batch, W, U), batch);
  };
  const mat forward = rnn(x, batch, W, U);
  const mat backward = masked_backward(x);
  std::cout << "sequence 1 (length 3), forward | backward states at real steps:\n";
  for (Index t = 0; t < 3; ++t)
    std::cout << "  t=" << t << "  " << forward.row(T + t) << " | " << backward.row(T + t) << "\n";
  std::cout << "reverse_padded: padding leak " << leak(x, x2, valid, masked_backward) << "\n";
  std::cout << "full reversal: padding leak " << leak(x, x2, valid, naive_backward) << "\n";
}
