#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian packages the build needs, only those missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libgtest-dev libbenchmark-dev libtbb-dev liburing-dev relacy-dev
  # opreg-bench's queue/ contenders, for that benchmark alone: the library keeps its own
  # queue (bench/README.md). moodycamel's ConcurrentQueue is required by opreg-bench,
  # Boost.Lockfree optional (without it, queue/boost_lockfree is not built).
  libconcurrentqueue-dev libboost-dev
  # the HTTP parser's fuzz targets (libFuzzer comes with clang's runtime)
  clang libclang-rt-14-dev
  # real clients for opreg-httpd's tests and the demo, and the demo's plot
  curl wrk nghttp2-client python3 gnuplot-nox
  # node's strict llhttp: the oracle of the HTTP framing differential test
  nodejs
  # standalone Asio (headers only, no Boost): examples/asio_echo
  libasio-dev
  # libuv: a host loop of the embedding tests (tests/reactor_embed_test.cpp)
  libuv1-dev
  # the API reference (make docs) and its zero-warning check (docs.reference)
  doxygen
)
# `deps.sh demo`: also the servers the demo compares against (rows are skipped without them).
if [ "${1:-}" = demo ]; then
  packages+=(nginx-light h2o python3-fastapi python3-uvicorn python3-uvloop python3-httptools)
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps: not a Debian-like system; install the equivalents of: ${packages[*]}" >&2
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages installed"
  exit 0
fi

echo "deps: missing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
else
  echo "deps: run this, then try again:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
