// A variant tag the kernel does not have is a compile error: attention has no fused variant.
// expected-error: emask::masked_attention: the variant is emask::tiled
#include <emask/emask.hpp>
int main() {
  const emask::row_matrix<float> q = emask::row_matrix<float>::Zero(2, 4);
  emask::row_matrix<float> o(2, 4);
  emask::masked_attention(emask::decode, q, q, q, emask::causal(), o);
#ifdef EMASK_SHOULD_FAIL
  emask::masked_attention(emask::fused, q, q, q, emask::causal(), o);
#endif
  return o.rows() == 2 ? 0 : 1;
}
