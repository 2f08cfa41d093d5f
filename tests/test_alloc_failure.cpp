// An allocation that fails inside a kernel's OpenMP region reaches the caller as std::bad_alloc
// (issue 13, item 10): an exception may not leave a parallel region, so without care the process
// terminates. tests/failing_new.hpp replaces the global operator new with one that fails, when
// armed, for one request size only (the per-thread row buffers of the softmax kernels).

#include <emask/emask.hpp>

#include "catch.hpp"
#include "failing_new.hpp"

using armed = emask_test::failing_new_armed;

TEST_CASE("softmax: an allocation failure in the parallel region reaches the caller", "[alloc]") {
  using emask::Index;
  // Large enough for the parallel path; an odd row length makes the buffer size unique.
  const Index rows = 64, cols = 1031;
  emask::row_matrix<float> x = emask::row_matrix<float>::Random(rows, cols), y(rows, cols);
  // Scattered keys: the tiled variant needs its per-thread flag buffers too.
  const emask::bool_matrix keep = emask::row_matrix<float>::Random(rows, cols).array() > 0.0f;
  const auto mask = emask::as_mask(keep);
  const auto bias = emask::materialize_additive<float>(mask, rows, cols);
  for (int variant = 0; variant < 3; ++variant) {
    INFO("variant " << variant);
    {
      armed a(static_cast<std::size_t>(cols) * sizeof(float));
      if (variant == 0) REQUIRE_THROWS_AS(emask::masked_softmax(x, mask, y), std::bad_alloc);
      if (variant == 1)
        REQUIRE_THROWS_AS(emask::masked_softmax(emask::fused, x, mask, y), std::bad_alloc);
      if (variant == 2) REQUIRE_THROWS_AS(emask::masked_softmax(x, bias, y), std::bad_alloc);
    }
    // Disarmed, the same call works.
    emask::masked_softmax(x, mask, y);
    CHECK(std::abs(y.row(5).sum() - 1.0f) < 1e-4f);
  }
}
