# Tests that need special builds, included by tests/CMakeLists.txt.
#
# The -fno-exceptions path (tests/consumers/no_exceptions): with the default handler a bad
# argument prints its message on stderr and aborts; a handler installed with set_error_handler
# sees the message. The same programs are built with g++ and clang++ by .ci/run.
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  set(_emask_ne ${CMAKE_CURRENT_SOURCE_DIR}/consumers/no_exceptions)

  add_executable(no_exceptions_abort ${_emask_ne}/abort_default.cpp)
  target_compile_options(no_exceptions_abort PRIVATE -fno-exceptions)

  # Exceptions on, but emask told not to use them.
  add_executable(no_exceptions_macro_abort ${_emask_ne}/abort_default.cpp)
  target_compile_definitions(no_exceptions_macro_abort PRIVATE EMASK_NO_EXCEPTIONS)

  add_executable(no_exceptions_handler ${_emask_ne}/custom_handler.cpp)
  target_compile_options(no_exceptions_handler PRIVATE -fno-exceptions)

  foreach(t IN ITEMS no_exceptions_abort no_exceptions_macro_abort no_exceptions_handler)
    target_link_libraries(${t} PRIVATE emask::emask emask_dev_flags)
  endforeach()

  foreach(t IN ITEMS no_exceptions_abort no_exceptions_macro_abort)
    add_test(NAME ${t} COMMAND ${CMAKE_COMMAND} -DPROGRAM=$<TARGET_FILE:${t}>
             "-DEXPECT=emask::causal::bottom_right: argument 'q_len' = -1, expected >= 0"
             -P ${_emask_ne}/expect_abort.cmake)
  endforeach()
  # Exits 0 only when its handler saw the expected message.
  add_test(NAME no_exceptions_handler COMMAND no_exceptions_handler)
  set_tests_properties(no_exceptions_handler PROPERTIES
    FAIL_REGULAR_EXPRESSION "UNREACHABLE")
endif()

# The row kernels with EMASK_NO_SIMD: the packet loops of detail/simd.hpp run on scalars, so the
# whole softmax suite must pass without Eigen's packets (and without the x86 intrinsics).
# A build variant like -march=native or -ffast-math, so a CI row builds it (row_major, portable;
# native, with AVX-512) and the README test command does not: it is the heaviest file compiled
# a second time.
option(EMASK_TEST_NO_SIMD "Also build the softmax tests with EMASK_NO_SIMD (test_softmax_no_simd)" OFF)
if(EMASK_TEST_NO_SIMD)
  emask_add_test_program(test_softmax_no_simd ${CMAKE_CURRENT_SOURCE_DIR}/test_softmax.cpp)
  target_compile_definitions(test_softmax_no_simd PRIVATE EMASK_NO_SIMD)
endif()
