// A variant tag the kernel does not have is a compile error: softmax has no decode variant.
// expected-error: emask::masked_softmax: the variant is emask::tiled, emask::fused
#include <emask/emask.hpp>
int main() {
  const emask::row_matrix<float> x = emask::row_matrix<float>::Zero(2, 3);
  emask::row_matrix<float> y = emask::masked_softmax(emask::fused, x, emask::causal());
#ifdef EMASK_SHOULD_FAIL
  y = emask::masked_softmax(emask::decode, x, emask::causal());
#endif
  return y.rows() == 2 ? 0 : 1;
}
