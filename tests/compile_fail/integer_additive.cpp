// An additive bias must be floating point: an integer one cannot hold -infinity.
// expected-error: emask::additive_mask: use float or double
#include <emask/emask.hpp>
int main() {
  const auto bias = emask::materialize_additive<float>(emask::causal(), 2, 2);
#ifdef EMASK_SHOULD_FAIL
  const auto bad = emask::materialize_additive<int>(emask::causal(), 2, 2);
  (void)bad;
#endif
  return bias.rows() == 2 ? 0 : 1;
}
