#!/usr/bin/env bash
# The test command: installs what is needed, builds, and runs every test (unit, integration,
# fault) with ctest. Extra arguments go to ctest (e.g. -L unit, -R Ledger).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/install-deps.sh"
bash "$root/scripts/build.sh"
cd "$root/.build"
ctest --output-on-failure --timeout 600 -j"$(nproc)" "$@"
