// Built with -fno-exceptions: a custom handler installed with set_error_handler sees the full
// message; it prints it and ends the program with std::exit(0) (it must not return).
#include <emask/emask.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

static_assert(EMASK_HAS_EXCEPTIONS == 0, "build this program with -fno-exceptions");

namespace {
[[noreturn]] void print_and_exit(const char* message) {
  std::printf("custom handler: %s\n", message);
  std::fflush(stdout);
  // Exit 0 only when the message is the one we expect.
  std::exit(std::strstr(message, "argument 'lengths[1]' = 9") ? 0 : 3);
}
}  // namespace

int main(int argc, char**) {
  const emask::error_handler previous = emask::set_error_handler(&print_and_exit);
  if (previous == nullptr || emask::get_error_handler() != &print_and_exit) {
    std::printf("set_error_handler did not install the handler\n");
    return 2;
  }
  const emask::Index bad = 8 + argc;  // 9, opaque to the optimizer
  const emask::key_padding p = emask::key_padding::from_lengths({2, bad}, 8);
  std::printf("UNREACHABLE: built a key_padding over %ld keys\n", static_cast<long>(p.k_len()));
  return 1;
}
