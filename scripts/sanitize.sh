#!/usr/bin/env bash
# Builds everything with AddressSanitizer and UndefinedBehaviorSanitizer into .build-asan/
# (git-ignored) and runs ctest there; arguments go to ctest (say `-L unit`). Not part of CI:
# the build alone takes about an hour on 2 cores, and the tests about three times as long as
# in .build. The first memory error or undefined behaviour stops the process that hit it, so
# the test that started it fails and its output names the error.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CCACHE_DIR="${STOCKPILE_CCACHE_DIR:-${HOME:-/root}/.cache/stockpile/ccache}"
export CCACHE_BASEDIR="$root" CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}" CCACHE_NOHASHDIR=1
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
sanitizers="-fsanitize=address,undefined"
# GCC 12 reports uninitialized std::optional members inside the sanitizers' instrumentation
# that the normal build does not see (false positives); -Werror would stop the build on them.
cmake -S . -B .build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
  "-DCMAKE_CXX_FLAGS=$sanitizers -fno-omit-frame-pointer -Wno-maybe-uninitialized" \
  "-DCMAKE_EXE_LINKER_FLAGS=$sanitizers" "-DCMAKE_SHARED_LINKER_FLAGS=$sanitizers" >/dev/null
if ! cmake --build .build-asan -j"$(nproc)" >.build-asan/build.log 2>&1; then
  grep -vE '^\[[0-9]+/[0-9]+\] ' .build-asan/build.log | tail -n 200
  echo "sanitize: build FAILED (full log: .build-asan/build.log)" >&2
  exit 1
fi
# Leaks are not checked: channels the tools keep until exit on purpose would be reported.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
cd .build-asan
env -u STOCKPILE_INSECURE ctest -j"$(nproc)" --timeout 900 --output-on-failure "$@"
