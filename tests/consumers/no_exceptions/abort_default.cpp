// Built with -fno-exceptions (or -DEMASK_NO_EXCEPTIONS): a bad argument reaches the default
// handler, which must print the message on stderr and abort. Checked by expect_abort.cmake and
// tools/check_no_exceptions.sh.
#include <emask/emask.hpp>

#include <cstdio>

static_assert(EMASK_HAS_EXCEPTIONS == 0, "build this program with -fno-exceptions");

int main(int argc, char**) {
  std::printf("calling causal::bottom_right with q_len = -1\n");
  std::fflush(stdout);
  // argc keeps the value opaque to the optimizer.
  const emask::causal c = emask::causal::bottom_right(-argc, 4);
  std::printf("UNREACHABLE: returned diagonal %ld\n", static_cast<long>(c.diagonal()));
  return 0;
}
