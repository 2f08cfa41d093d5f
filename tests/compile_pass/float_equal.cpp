// emask compiles where users turn -Wfloat-equal into an error: its exact comparisons (an empty
// row's sum of 0, a maximum of -infinity) are intentional and silenced inside its namespace.
// Instantiates the kernels, the maskers and the RL helpers that compare floats.
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic error "-Wfloat-equal"
#endif
#include <emask/emask.hpp>
#include <emask/reference.hpp>

int main() {
  using namespace emask;
  const row_matrix<float> x = row_matrix<float>::Zero(3, 4);
  row_matrix<float> o(3, 4);
  lse_vector<float> l(3);
  masked_softmax(x, causal(), o, l);
  masked_softmax(fused, x, causal(), o, l);
  masked_softmax(reference::naive, x, causal(), o, l);
  masked_log_softmax(x, causal(), o, l);
  masked_attention(x, x, x, causal(), o, l);
  masked_attention(decode, x, x, x, causal(), o, l);
  masked_attention(reference::naive, x, x, x, causal(), o, l);
  merge_attention({o, o}, {l, l}, o, l);
  const row_matrix<double> xd = row_matrix<double>::Zero(2, 3);
  row_matrix<double> od(2, 3);
  masked_softmax(xd, causal(), od);
  masked_attention(xd, xd, xd, causal(), od);
  const bool_matrix legal = bool_matrix::Constant(2, 3, true);
  const auto a = masked_q_argmax(xd, legal);
  const Eigen::VectorXd reward = Eigen::VectorXd::Zero(2), done = Eigen::VectorXd::Ones(2);
  const Eigen::VectorXd y = masked_td_target(reward, done, xd, legal, 0.9);
  return static_cast<int>(a.size() + y.size()) > 100 ? 1 : 0;
}
