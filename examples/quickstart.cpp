// The README's quick start: compose a mask, look at it, materialize it.
// ctest-pass: kept 8 of 20.*row 3 keeps 2 keys
#include <emask/emask.hpp>
#include <iostream>

int main() {
  using namespace emask;
  // Two padded sequences, causal attention, and a sliding window of 3 keys (Hugging Face style).
  const auto mask = causal() & sliding_window::from_hf(3) & key_padding::from_lengths({5, 3}, 5);
  std::cout << render(mask, 4, 5, {/*b=*/1, /*h=*/0, /*ascii=*/true});
  const bool_matrix keep = materialize(mask, 4, 5, /*b=*/1);                     // true = keep
  const additive_mask<float> bias = materialize_additive<float>(mask, 4, 5, 1);  // 0 / -inf
  std::cout << "row 3 keeps " << keep.row(3).count() << " keys; bias(3,0) = " << bias.matrix()(3, 0)
            << "\n";
}
