#!/usr/bin/env bash
# Configures and builds everything into .build/ (git-ignored). The compiler cache lives outside
# the clone ($STOCKPILE_CCACHE_DIR, default ~/.cache/stockpile/ccache) with paths relative to the
# clone, so a fresh clone on the same machine rebuilds from the cache.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CCACHE_DIR="${STOCKPILE_CCACHE_DIR:-${HOME:-/root}/.cache/stockpile/ccache}"
export CCACHE_BASEDIR="$root" CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}" CCACHE_NOHASHDIR=1
build_type="${STOCKPILE_BUILD_TYPE:-RelWithDebInfo}"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B .build -G Ninja -DCMAKE_BUILD_TYPE="$build_type" "${launcher[@]}" "$@" >/dev/null
mkdir -p .build
if ! cmake --build .build -j"$(nproc)" >.build/build.log 2>&1; then
  grep -vE '^\[[0-9]+/[0-9]+\] ' .build/build.log | tail -n 200
  echo "build: FAILED (full log: .build/build.log)" >&2
  exit 1
fi
echo "build: ok ($(grep -cE '^\[[0-9]+/[0-9]+\] Building' .build/build.log) files compiled)"
