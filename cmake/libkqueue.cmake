# SPDX-License-Identifier: Apache-2.0
# The kqueue configuration on Linux: libkqueue (kqueue/kevent on epoll, eventfd, timerfd,
# signalfd; BSD-2-Clause) built from its read-only source into this build tree, for the
# kqueue backend to be built and tested here. Defines opreg_libkqueue_archive and
# opreg_libkqueue_include (the dirs of <sys/event.h>) and the target libkqueue_build.
include(ExternalProject)

if(NOT EXISTS "${OPREG_LIBKQUEUE_SOURCE}/CMakeLists.txt")
  message(FATAL_ERROR "OPREG_LIBKQUEUE: no libkqueue source at '${OPREG_LIBKQUEUE_SOURCE}' "
                      "(set OPREG_LIBKQUEUE_SOURCE, or configure without OPREG_LIBKQUEUE)")
endif()

set(opreg_libkqueue_dir "${CMAKE_BINARY_DIR}/libkqueue")
set(opreg_libkqueue_archive "${opreg_libkqueue_dir}/libkqueue.a")
set(opreg_libkqueue_include "${opreg_libkqueue_dir}/include" "${OPREG_LIBKQUEUE_SOURCE}/include")
# Instrumented as this tree is, so that TSan sees libkqueue's own synchronisation, and by
# the same compiler family (one sanitizer runtime: gcc's and clang's do not mix).
string(REPLACE ";" " " opreg_libkqueue_cflags "${opreg_sanitize_flags}")
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  set(opreg_libkqueue_cc clang)
else()
  set(opreg_libkqueue_cc gcc)
endif()
ExternalProject_Add(libkqueue_build
  SOURCE_DIR "${OPREG_LIBKQUEUE_SOURCE}"
  BINARY_DIR "${opreg_libkqueue_dir}"
  CMAKE_ARGS
    -G Ninja
    -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_C_COMPILER=${opreg_libkqueue_cc}
    -DENABLE_TESTING=NO
    -DENABLE_SHARED=OFF
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON
    "-DCMAKE_C_FLAGS=${opreg_libkqueue_cflags} -fno-omit-frame-pointer"
  BUILD_COMMAND ${CMAKE_COMMAND} --build <BINARY_DIR> --target kqueue_static
  INSTALL_COMMAND ""
  BUILD_BYPRODUCTS "${opreg_libkqueue_archive}"
  LOG_CONFIGURE ON
  LOG_BUILD ON
  LOG_OUTPUT_ON_FAILURE ON)
