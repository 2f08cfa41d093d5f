// as_mask views its argument and never copies: a view of a temporary would dangle, so
// as_mask(rvalue) is deleted. to_mask() owns the array.
// expected-error: deleted function.*as_mask
#include <emask/masks/dense.hpp>
int main() {
  emask::bool_matrix keep = emask::bool_matrix::Constant(2, 3, true);
  const emask::dense_mask view = emask::as_mask(keep);
  const emask::dense_mask owned = emask::to_mask(emask::bool_matrix::Constant(2, 3, true));
#ifdef EMASK_SHOULD_FAIL
  const emask::dense_mask dangling = emask::as_mask(emask::bool_matrix::Constant(2, 3, true));
  (void)dangling;
#endif
  return view.keep(0, 0, 1, 2) && owned.keep(0, 0, 1, 2) ? 0 : 1;
}
