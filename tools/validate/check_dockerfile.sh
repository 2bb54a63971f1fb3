#!/usr/bin/env bash
# Checks deploy/docker/Dockerfile without a Docker engine: every apt package it installs by name
# exists in Debian (apt-cache show), the build-stage list derived from scripts/deps/core.txt is
# installable, the final stage runs as uid 10001, the five binaries are copied, and the build
# stage's ARG STOCKPILE_GIT_COMMIT reaches the cmake configure line (build info commit).
# Usage: check_dockerfile.sh [DOCKERFILE]   (default deploy/docker/Dockerfile)
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dockerfile="${1:-$root/deploy/docker/Dockerfile}"
status=0
problem() { echo "check_dockerfile: $*" >&2; status=1; }

if ! command -v apt-cache >/dev/null; then
  echo "check_dockerfile: apt-cache not found, package names not checked"
else
  # Runtime packages: the words after `apt-get install ... --no-install-recommends` up to `&&`.
  runtime=$(awk '/apt-get install -y --no-install-recommends \\$/{f=1;next} f&&/&&/{f=0} f' "$dockerfile" \
    | tr -d '\\' | tr -s ' \t' '\n' | grep -v '^$')
  [ -n "$runtime" ] || problem "found no runtime package list in $dockerfile"
  # Build packages: core.txt minus the excluded names, exactly as the Dockerfile computes them.
  excluded=$(grep -o "grep -vxE '[^']*'" "$dockerfile" | sed "s/grep -vxE '//; s/'$//")
  build=$(sed 's/#.*//' "$root/scripts/deps/core.txt" | tr -s ' \t' '\n' | grep -v '^$' | grep -vxE "$excluded")
  for pkg in $runtime $build; do
    apt-cache show --no-all-versions "$pkg" >/dev/null 2>&1 || problem "package $pkg not found by apt-cache"
  done
  echo "check_dockerfile: $(echo $runtime | wc -w) runtime and $(echo $build | wc -w) build packages exist"
fi

grep -q '^FROM debian:${DEBIAN_RELEASE} AS build' "$dockerfile" || problem "build stage is not debian:bookworm"
grep -q '^FROM debian:${DEBIAN_RELEASE}-slim AS runtime' "$dockerfile" || problem "final stage is not bookworm-slim"
grep -q '^ARG DEBIAN_RELEASE=bookworm$' "$dockerfile" || problem "DEBIAN_RELEASE must default to bookworm"
grep -q '^USER 10001:10001$' "$dockerfile" || problem "final stage must run as uid 10001"
grep -q 'DSTOCKPILE_BUILD_TESTS=OFF' "$dockerfile" || problem "build must turn tests off"
for bin in stockpile-level stockpile-catalogue stockpile-local stockctl stockpile-bench; do
  grep -q "$bin" "$dockerfile" || problem "binary $bin is not built/copied"
done
# The build stage as logical lines (continuations joined): ARG STOCKPILE_GIT_COMMIT is declared in
# it (an ARG before the first FROM would not reach RUN) and, after that, the RUN line that
# configures with cmake passes it as -DSTOCKPILE_GIT_COMMIT.
build_stage=$(awk '
  /^FROM / { in_build = ($0 ~ / AS build$/) }
  !in_build { next }
  { line = line $0 }
  /\\$/ { sub(/\\$/, " ", line); next }
  { print line; line = "" }' "$dockerfile")
arg_at=$(grep -nE '^ARG STOCKPILE_GIT_COMMIT(=|$)' <<<"$build_stage" | head -n1 | cut -d: -f1)
configure_at=$(grep -nE '^RUN .*cmake -S ' <<<"$build_stage" | head -n1 | cut -d: -f1)
if [ -z "$arg_at" ]; then
  problem "build stage has no ARG STOCKPILE_GIT_COMMIT (stockpile_build_info{commit} would be unknown)"
elif [ -z "$configure_at" ]; then
  problem "build stage has no RUN line configuring with cmake -S"
elif [ "$arg_at" -gt "$configure_at" ]; then
  problem "ARG STOCKPILE_GIT_COMMIT comes after the cmake configure line"
elif ! sed -n "${configure_at}p" <<<"$build_stage" \
    | grep -qE -- '-DSTOCKPILE_GIT_COMMIT="?\$\{?STOCKPILE_GIT_COMMIT\}?"?( |$)'; then
  problem "the cmake configure line does not pass -DSTOCKPILE_GIT_COMMIT=\${STOCKPILE_GIT_COMMIT}"
fi
[ -f "$root/deploy/docker/Dockerfile.dockerignore" ] || problem "deploy/docker/Dockerfile.dockerignore missing"
[ $status -eq 0 ] && echo "check_dockerfile: OK"
exit $status
