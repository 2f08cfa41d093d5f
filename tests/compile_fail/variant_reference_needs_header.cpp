// reference::naive needs its header: the umbrella does not compile the references.
// expected-error: include <emask/reference/softmax.hpp> for reference::naive
#include <emask/emask.hpp>
#ifndef EMASK_SHOULD_FAIL
#include <emask/reference/softmax.hpp>
#endif
int main() {
  const emask::row_matrix<float> x = emask::row_matrix<float>::Zero(2, 3);
  const emask::row_matrix<float> y =
      emask::masked_softmax(emask::reference::naive, x, emask::causal());
  return y.rows() == 2 ? 0 : 1;
}
