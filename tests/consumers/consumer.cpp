// A user of emask: a padded causal mask for a batch of two sequences, built, materialized and
// checked against its definition. Compiled by tools/check_consumers.sh with strict warnings.
#include <emask/emask.hpp>

#include <cstdio>

int main() {
  const Eigen::Index len = 6;
  const auto mask = emask::causal() & emask::key_padding::from_lengths({4, 6}, len);
  long errors = 0;
  long kept = 0;
  for (Eigen::Index b = 0; b < 2; ++b) {
    const emask::bool_matrix m = emask::materialize(mask, len, len, b);
    const Eigen::Index valid = b == 0 ? 4 : 6;
    for (Eigen::Index q = 0; q < len; ++q) {
      for (Eigen::Index k = 0; k < len; ++k) {
        const bool expected = k <= q && k < valid;
        if (m(q, k) != expected) ++errors;
        if (m(q, k)) ++kept;
      }
    }
  }
  // Sequence 0: rows keep 1,2,3,4,4,4 keys (18); sequence 1: 1..6 (21).
  if (errors != 0 || kept != 39) {
    std::printf("FAIL: %ld wrong entries, %ld kept (expected 39)\n", errors, kept);
    return 1;
  }
  std::printf("emask %d.%d.%d consumer OK\n", EMASK_VERSION_MAJOR, EMASK_VERSION_MINOR,
              EMASK_VERSION_PATCH);
  return 0;
}
