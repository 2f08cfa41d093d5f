// Composition operators are constrained to mask types: `causal() & 3` must not compile.
// expected-error: (no match for|invalid operands).*causal.*int
#include <emask/emask.hpp>
int main() {
  const auto m = emask::causal() & emask::sliding_window(1, 0);
#ifdef EMASK_SHOULD_FAIL
  const auto bad = emask::causal() & 3;
  (void)bad;
#endif
  return m.keep(0, 0, 0, 0) ? 0 : 1;
}
