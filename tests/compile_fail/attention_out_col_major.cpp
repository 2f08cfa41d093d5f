// masked_attention writes row-major outputs: a column-major out is refused in one line.
// expected-error: out must be row-major
#include <emask/emask.hpp>
int main() {
  const emask::row_matrix<float> q = emask::row_matrix<float>::Ones(2, 4);
#ifdef EMASK_SHOULD_FAIL
  Eigen::MatrixXf out(2, 4);  // column-major
#else
  emask::row_matrix<float> out(2, 4);
#endif
  emask::masked_attention(q, q, q, emask::causal(), out);
  return out.rows() == 2 ? 0 : 1;
}
