// A drop-mask (true = ignore) is not a keep-mask: it cannot be materialized or composed.
// expected-error: conversion from .*drop_mask.* to .*bool_matrix
#include <emask/emask.hpp>
int main() {
  emask::bool_matrix flags = emask::bool_matrix::Constant(2, 3, false);
  const emask::drop_mask drop(flags);
  const emask::bool_matrix keep = emask::to_keep(drop);  // the named conversion compiles
#ifdef EMASK_SHOULD_FAIL
  const emask::bool_matrix wrong = drop;
  (void)wrong;
#endif
  return keep.all() ? 0 : 1;
}
