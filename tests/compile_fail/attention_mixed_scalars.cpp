// masked_attention computes in one scalar type: float inputs with a double out are refused.
// expected-error: q, k, v and out must have the same scalar type
#include <emask/emask.hpp>
int main() {
  const emask::row_matrix<float> q = emask::row_matrix<float>::Ones(2, 4);
#ifdef EMASK_SHOULD_FAIL
  emask::row_matrix<double> out(2, 4);
#else
  emask::row_matrix<float> out(2, 4);
#endif
  emask::masked_attention(q, q, q, emask::causal(), out);
  return out.rows() == 2 ? 0 : 1;
}
