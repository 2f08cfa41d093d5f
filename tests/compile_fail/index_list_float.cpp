// Lengths are integers: a floating-point Eigen vector does not convert to an index_list.
// expected-error: conver.*VectorXf.* to .*index_list
#include <emask/emask.hpp>
int main() {
  Eigen::VectorXi ok(1);
  ok << 2;
  const auto m = emask::key_padding::from_lengths(ok, 3);
#ifdef EMASK_SHOULD_FAIL
  Eigen::VectorXf bad(1);
  bad << 2.f;
  const auto m2 = emask::key_padding::from_lengths(bad, 3);
  (void)m2;
#endif
  return m.keep(0, 0, 0, 1) ? 0 : 1;
}
