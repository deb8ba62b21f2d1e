# SPDX-License-Identifier: Apache-2.0
# How the project's GoogleTest binaries become ctest tests.
#
# OPREG_TEST_PER_CASE (on by default): each case is a ctest test of its own, in a process of
# its own (Suite.Case, or Suite.Case<type> for a typed suite). Off (the sanitizer presets):
# a sanitizer's start and exit cost 0.2 s (TSan) to 0.5 s (ASan with LeakSanitizer) a
# process, more than most cases take, so each binary runs its cases in OPREG_TEST_SHARDS
# processes (GoogleTest's sharding), ctest tests named BINARY/SHARD that `ctest -j` runs side
# by side.
include(GoogleTest)
option(OPREG_TEST_PER_CASE "One ctest test per GoogleTest case (else a few per binary)" ON)
set(OPREG_TEST_SHARDS 2 CACHE STRING "Without OPREG_TEST_PER_CASE: processes per test binary")
if(NOT OPREG_TEST_SHARDS MATCHES "^[1-9][0-9]*$")
  message(FATAL_ERROR "OPREG_TEST_SHARDS must be a count of processes (got '${OPREG_TEST_SHARDS}')")
endif()

# OPREG_TEST_MATRIX: how much of the strategy x backend product the suites that take one run.
# quick (`make test`): the HTTP suites as integrations/http/CMakeLists.txt says, and under a
# sanitizer the reactor suites with every strategy on the first backend (epoll) but the
# direct and the hand-off strategy only on the others (io_uring, kqueue). full (`make
# check`): every strategy on every backend, in every preset.
set(OPREG_TEST_MATRIX quick CACHE STRING "Suites' strategy x backend matrix: quick (make test) or full (make check)")
set_property(CACHE OPREG_TEST_MATRIX PROPERTY STRINGS quick full)
if(NOT OPREG_TEST_MATRIX MATCHES "^(quick|full)$")
  message(FATAL_ERROR "OPREG_TEST_MATRIX must be quick or full (got '${OPREG_TEST_MATRIX}')")
endif()

# OPREG_TEST_CXX_FLAGS: compile flags for the GoogleTest binaries alone, after the build
# type's. The sanitizer presets set -O0: their typed suites instantiate every strategy on
# every backend, and compile in a third of -O1's time (clang ASan) or three fifths (gcc TSan),
# while the sanitizers instrument every access they make either way. The library, the
# server, the examples and the stress driver keep the build type's -O1: the HTTP attacks
# compare the parser's CPU costs, which -O0 distorts.
set(OPREG_TEST_CXX_FLAGS "" CACHE STRING "Extra compile flags for the GoogleTest binaries")
separate_arguments(opreg_test_cxx_flags UNIX_COMMAND "${OPREG_TEST_CXX_FLAGS}")

# opreg_add_gtests(TARGET LABELS): TARGET's cases under every label of the list LABELS.
# (gtest_discover_tests gives discovered tests one label only, CMake issue 17812: a test
# include file, read after the discovered list, sets them all.)
function(opreg_add_gtests target labels)
  target_compile_options(${target} PRIVATE ${opreg_test_cxx_flags})
  if(NOT OPREG_TEST_PER_CASE)
    math(EXPR last "${OPREG_TEST_SHARDS} - 1")
    foreach(shard RANGE ${last})
      add_test(NAME ${target}/${shard} COMMAND ${target} --gtest_brief=1)
      set_tests_properties(${target}/${shard} PROPERTIES LABELS "${labels}" TIMEOUT 1200
        ENVIRONMENT "GTEST_TOTAL_SHARDS=${OPREG_TEST_SHARDS};GTEST_SHARD_INDEX=${shard}")
    endforeach()
    return()
  endif()
  string(MAKE_C_IDENTIFIER "${target}_tests" test_list)
  gtest_discover_tests(${target} DISCOVERY_TIMEOUT 60 TEST_LIST ${test_list})
  set(include_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_labels.cmake")
  file(WRITE "${include_file}"
    "if(${test_list})\n  set_tests_properties(\${${test_list}} PROPERTIES LABELS \"${labels}\")\nendif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${include_file}")
endfunction()
