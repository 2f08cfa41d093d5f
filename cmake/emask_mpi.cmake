# The optional MPI part of emask (emask/dist/ring_attention.hpp, issue 18), included by the root
# CMakeLists.txt. EMASK_MPI picks how MPI is looked for:
#   AUTO (default)  find_package(MPI COMPONENTS CXX QUIET): emask::mpi exists when MPI is found
#   ON              MPI is required: configuring fails without it
#   OFF             MPI is not looked for; no emask::mpi, no MPI tests or examples
# emask::emask never depends on MPI. emask::mpi = emask::emask + MPI::MPI_CXX (C bindings only:
# MPI_CXX_SKIP_MPICXX, the C++ bindings are deprecated since MPI-2.2 and removed in MPI-3).
#
# Defines, when MPI is found and wanted:
#   target emask_mpi / alias emask::mpi
#   EMASK_MPI_FOUND                       TRUE
#   emask_add_mpi_test(NAME n NP p TARGET t [ARGS ...] [LABELS ...])
#       a ctest case running `mpiexec -n p [--oversubscribe] t ARGS` on this host (see below)
#   EMASK_MPI_RUN_TESTS                   FALSE in sanitizer builds (see below)

set(EMASK_MPI AUTO CACHE STRING
  "emask::mpi (context-parallel attention over MPI): AUTO = when MPI is found, ON = require MPI, OFF = never look")
set_property(CACHE EMASK_MPI PROPERTY STRINGS AUTO ON OFF)

set(EMASK_MPI_FOUND FALSE)
set(EMASK_MPI_RUN_TESTS FALSE)
string(TOUPPER "${EMASK_MPI}" _emask_mpi_mode)
if(_emask_mpi_mode STREQUAL "AUTO")
  set(_emask_mpi_want TRUE)
  set(_emask_mpi_required "")
elseif(EMASK_MPI)
  set(_emask_mpi_want TRUE)
  set(_emask_mpi_required REQUIRED)
else()
  set(_emask_mpi_want FALSE)
endif()

if(_emask_mpi_want)
  if(NOT DEFINED MPI_CXX_SKIP_MPICXX)
    set(MPI_CXX_SKIP_MPICXX TRUE)
  endif()
  find_package(MPI COMPONENTS CXX QUIET ${_emask_mpi_required})
  if(MPI_CXX_FOUND AND TARGET MPI::MPI_CXX)
    set(EMASK_MPI_FOUND TRUE)
  elseif(_emask_mpi_required)
    message(FATAL_ERROR "emask: EMASK_MPI=ON but no MPI for C++ was found (Debian: apt-get install "
      "libopenmpi-dev openmpi-bin). -DEMASK_MPI=AUTO builds without the MPI part.")
  endif()
endif()

if(NOT EMASK_MPI_FOUND)
  if(_emask_mpi_want AND PROJECT_IS_TOP_LEVEL)
    message(STATUS "emask: MPI not found: no emask::mpi, no MPI tests or examples "
      "(Debian: apt-get install libopenmpi-dev openmpi-bin)")
  endif()
  return()
endif()

add_library(emask_mpi INTERFACE)
add_library(emask::mpi ALIAS emask_mpi)
target_link_libraries(emask_mpi INTERFACE emask MPI::MPI_CXX)
if(PROJECT_IS_TOP_LEVEL)
  message(STATUS "emask: emask::mpi with MPI ${MPI_CXX_VERSION} (${MPIEXEC_EXECUTABLE})")
endif()

# The MPI tests and examples run under mpiexec on this host only. Open MPI needs:
#   --oversubscribe          more ranks (4) than cores (2 on CI)
#   OMPI_ALLOW_RUN_AS_ROOT*  containers run as root; mpirun refuses root without them (the
#                            variables are ignored when not root, so they are always set)
#   pml ob1, btl self,vader  shared memory between the ranks of one host, no network probing
#                            (and no UCX transport, which may warn in containers)
#   vader single copy none   cross-memory attach (CMA) needs ptrace rights that a container may
#                            lack: copy through the shared-memory segment instead
#   OMP_NUM_THREADS=1        one thread per rank: the ranks already share the cores
# Sanitizer builds do not run them: Open MPI's allocations at exit trip LeakSanitizer.
set(EMASK_MPIEXEC_FLAGS "" CACHE STRING "Extra mpiexec flags of emask's MPI tests (before the program)")
set(_emask_mpi_env OMP_NUM_THREADS=1)
execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE _emask_mpiexec_version
  ERROR_VARIABLE _emask_mpiexec_version RESULT_VARIABLE _emask_mpiexec_rc TIMEOUT 20)
if(_emask_mpiexec_version MATCHES "Open MPI|OpenRTE")
  set(_emask_mpi_flags --oversubscribe)
  list(APPEND _emask_mpi_env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none)
else()
  set(_emask_mpi_flags "")  # MPICH's Hydra oversubscribes by default
endif()
set(EMASK_MPI_TEST_ENVIRONMENT "${_emask_mpi_env}" CACHE INTERNAL "")
set(EMASK_MPI_LAUNCH_FLAGS "${_emask_mpi_flags}" CACHE INTERNAL "")

if(NOT (EMASK_SANITIZE OR CMAKE_CXX_FLAGS MATCHES "-fsanitize="))
  set(EMASK_MPI_RUN_TESTS TRUE)
elseif(PROJECT_IS_TOP_LEVEL)
  message(STATUS "emask: sanitizer build: the MPI tests and examples are not built "
    "(Open MPI trips LeakSanitizer)")
endif()

# emask_add_mpi_test(NAME <ctest name> NP <ranks> TARGET <executable target> [ARGS <args>...]
#                    [LABELS <labels>...])
function(emask_add_mpi_test)
  cmake_parse_arguments(arg "" "NAME;NP;TARGET" "ARGS;LABELS" ${ARGN})
  separate_arguments(_extra UNIX_COMMAND "${EMASK_MPIEXEC_FLAGS}")
  add_test(NAME ${arg_NAME}
    COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${arg_NP} ${EMASK_MPI_LAUNCH_FLAGS}
            ${_extra} ${MPIEXEC_PREFLAGS} $<TARGET_FILE:${arg_TARGET}> ${MPIEXEC_POSTFLAGS}
            ${arg_ARGS})
  set(labels mpi ${arg_LABELS})
  # PROCESSORS: ctest -j2 runs a 4-rank case alone instead of beside another program.
  set_tests_properties(${arg_NAME} PROPERTIES ENVIRONMENT "${EMASK_MPI_TEST_ENVIRONMENT}"
    TIMEOUT 120 LABELS "${labels}" PROCESSORS ${arg_NP})
endfunction()
