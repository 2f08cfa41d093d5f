# Compile-fail tests: each tests/compile_fail/*.cpp, compiled with -DEMASK_SHOULD_FAIL, must be
# rejected with the diagnostic its "// expected-error: <regex>" line names (a misuse the API is
# designed to reject at compile time). Matching the diagnostic, not only a failed compile, keeps
# an unrelated error (a typo, a missing include) from passing the test.
get_target_property(EMASK_EIGEN_INCLUDES Eigen3::Eigen INTERFACE_INCLUDE_DIRECTORIES)
set(EMASK_CF_FLAGS -std=c++17 -fsyntax-only -I${PROJECT_SOURCE_DIR}/include)
foreach(dir IN LISTS EMASK_EIGEN_INCLUDES)
  list(APPEND EMASK_CF_FLAGS -isystem ${dir})
endforeach()
file(GLOB EMASK_CF_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/compile_fail/*.cpp)
foreach(src IN LISTS EMASK_CF_SOURCES)
  get_filename_component(name ${src} NAME_WE)
  file(STRINGS ${src} expected REGEX "^// expected-error: ")
  list(LENGTH expected n_expected)
  if(NOT n_expected EQUAL 1)
    message(FATAL_ERROR "${src}: needs exactly one '// expected-error: <regex>' line")
  endif()
  string(REGEX REPLACE "^// expected-error: " "" expected "${expected}")
  add_test(NAME compile_fail:${name}
           COMMAND ${CMAKE_CXX_COMPILER} ${EMASK_CF_FLAGS} -DEMASK_SHOULD_FAIL ${src})
  set_tests_properties(compile_fail:${name} PROPERTIES PASS_REGULAR_EXPRESSION "${expected}")
endforeach()

# Must-compile checks: each tests/compile_pass/*.cpp must compile as is (emask headers under
# conditions users create, such as min and max macros defined before them).
file(GLOB EMASK_CP_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/compile_pass/*.cpp)
foreach(src IN LISTS EMASK_CP_SOURCES)
  get_filename_component(name ${src} NAME_WE)
  add_test(NAME compile_pass:${name} COMMAND ${CMAKE_CXX_COMPILER} ${EMASK_CF_FLAGS} ${src})
endforeach()
