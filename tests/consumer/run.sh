#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The installed package as its users meet it: find_package and pkg-config on the static
# install, a C++23, a -fno-exceptions and a C++17 consumer, a plugin on the static library, the shared library
# (built, installed, found, its exports and SONAME checked), a refused incompatible version,
# opreg embedded with FetchContent (only the library built), and examples/ built on its own
# against the install and checked with real clients. Each step says what it checks; the first
# failure stops the run with its reason.
# usage: tests/consumer/run.sh STATIC_PREFIX WORK_DIR   (from the source tree's root)
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 STATIC_PREFIX WORK_DIR" >&2; exit 2; }
src=$(pwd) prefix=$(realpath "$1") work=$2
cxx=${CXX:-c++} jobs=${JOBS:-2}
here=tests/consumer
rm -rf "$work"
mkdir -p "$work"
work=$(realpath "$work")

step() { echo "== consumer: $* =="; }
fail() { echo "consumer: FAILED: $*" >&2; exit 1; }
configure() { cmake -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log" >&2; fail "configure: $*"; }; }

step "find_package(opreg 0.1) on the static install"
configure -S "$here" -B "$work/static" -DCMAKE_PREFIX_PATH="$prefix"
cmake --build "$work/static" --parallel "$jobs"
"$work/static/consumer"
# consumer-tbb is built where the package has oneTBB's part (opreg-tbb.pc): there it must run.
if ls "$prefix"/lib*/pkgconfig/opreg-tbb.pc >/dev/null 2>&1; then
  [ -x "$work/static/consumer-tbb" ] || fail "the package has opreg::tbb, but consumer-tbb was not built"
  "$work/static/consumer-tbb"
else
  echo "SKIP consumer-tbb: this package was built without oneTBB (OPREG_WITH_TBB=OFF)"
fi

step "find_package(opreg 0.2) is refused: while the major is 0, a minor release may break the API"
if cmake -S "$here" -B "$work/incompatible" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
     -DOPREG_VERSION_WANTED=0.2 >"$work/incompatible.log" 2>&1; then
  fail "find_package(opreg 0.2) accepted opreg $(sed -n 's/^Version: //p' "$prefix"/lib*/pkgconfig/opreg.pc)"
fi
grep -q 'requested version "0.2"' "$work/incompatible.log" ||
  { cat "$work/incompatible.log" >&2; fail "refused, but not for its version"; }

step "the licence is installed and declared"
cmp -s "$src/LICENSE" "$prefix/share/doc/opreg/LICENSE" || fail "no share/doc/opreg/LICENSE in $prefix"
grep -qx 'License: Apache-2.0' "$prefix"/lib*/pkgconfig/opreg.pc || fail "opreg.pc declares no licence"
grep -q 'set(opreg_LICENSE "Apache-2.0")' "$prefix"/lib*/cmake/opreg/opregConfig.cmake ||
  fail "opregConfig.cmake declares no licence"

export PKG_CONFIG_PATH="$(dirname "$(ls "$prefix"/lib*/pkgconfig/opreg.pc)")"
flags=$(pkg-config --cflags --libs opreg)
step "pkg-config opreg sets no language standard: $flags"
case " $flags " in *" -std="*) fail "opreg.pc forces a standard: $flags" ;; esac

step "a C++23 program, through pkg-config"
# shellcheck disable=SC2086  # flags are words
"$cxx" -std=c++23 -O2 "$here/main.cpp" $flags -o "$work/consumer-c++23"
"$work/consumer-c++23"

step "a program built without exceptions (-fno-exceptions)"
# shellcheck disable=SC2086
"$cxx" -std=c++20 -O2 -fno-exceptions "$here/main.cpp" $flags -o "$work/consumer-no-exceptions"
"$work/consumer-no-exceptions"

step "a C++17 program is told, in words, that opreg requires C++20"
# shellcheck disable=SC2086
if "$cxx" -std=c++17 -c "$here/cxx17.cpp" $(pkg-config --cflags opreg) -o "$work/cxx17.o" \
     2>"$work/cxx17.log"; then
  fail "a C++17 program compiled"
fi
first=$(grep -m1 'error' "$work/cxx17.log" || true)
case "$first" in *"opreg requires C++20"*) echo "$first" ;;
  *) cat "$work/cxx17.log" >&2; fail "the first error is not opreg's: $first" ;; esac

step "a plugin (a shared object) on the static library, loaded with dlopen"
# shellcheck disable=SC2086
"$cxx" -std=c++20 -O2 -shared -fPIC "$here/plugin.cpp" $flags -o "$work/plugin.so"
got=$(python3 -c "import ctypes,sys; print(ctypes.CDLL(sys.argv[1]).plugin_arm_and_dispatch())" \
      "$work/plugin.so")
[ "$got" = 5 ] || fail "plugin_arm_and_dispatch() returned $got, expected 5"
echo "plugin: ok"

step "the shared library: build and install the library alone"
configure -S "$src" -B "$work/shared-build" -DBUILD_SHARED_LIBS=ON -DOPREG_BUILD_TESTS=OFF \
  -DOPREG_BUILD_STRESS=OFF -DOPREG_BUILD_BENCH=OFF -DOPREG_BUILD_INTEGRATIONS=OFF \
  -DOPREG_BUILD_EXAMPLES=OFF
cmake --build "$work/shared-build" --parallel "$jobs"
cmake --install "$work/shared-build" --prefix "$work/shared-prefix" >/dev/null
so=$(ls "$work"/shared-prefix/lib*/libopreg.so.*.*.* | head -1)
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
version=$(sed -n 's/^Version: //p' "$work"/shared-prefix/lib*/pkgconfig/opreg.pc)
[ "$soname" = "libopreg.so.${version%.*}" ] || fail "SONAME $soname for version $version"
exports=$(nm -D --defined-only --demangle "$so" | awk '{ $1 = ""; $2 = ""; print }')
grep -q 'opreg::to_string(opreg::errc)' <<<"$exports" || fail "opreg::to_string(errc) not exported"
grep -q 'opreg::detail::make_epoll_poller' <<<"$exports" || fail "make_epoll_poller not exported"
if grep -q 'epoll_poller::' <<<"$exports"; then fail "backend internals exported (visibility)"; fi
echo "$(basename "$so"): SONAME $soname, $(wc -l <<<"$exports") symbols exported"

step "find_package(opreg) on the shared install"
configure -S "$here" -B "$work/shared" -DCMAKE_PREFIX_PATH="$work/shared-prefix"
cmake --build "$work/shared" --parallel "$jobs"
"$work/shared/consumer"
ldd "$work/shared/consumer" | grep -q "$soname" || fail "consumer does not use $soname"

step "FetchContent: opreg embedded builds the library only (no tests, no GoogleTest, no oneTBB)"
configure -S "$here/subproject" -B "$work/embedded" -DOPREG_SOURCE_DIR="$src"
cmake --build "$work/embedded" --parallel "$jobs"
"$work/embedded/embedder"
built=$(find "$work/embedded" -name 'opreg-*' -type f -perm -u+x | wc -l)
[ "$built" -eq 0 ] || fail "embedding built $built opreg programs"

step "examples/ built on their own against the static install, checked with real clients"
configure -S "$src/examples" -B "$work/examples" -DCMAKE_PREFIX_PATH="$prefix"
cmake --build "$work/examples" --parallel "$jobs"
python3 "$src/examples/tests/clients.py" --bin-dir "$work/examples" ||
  fail "the examples built against the install failed their client checks"

echo "== consumer: all checks passed =="
