#!/usr/bin/env bash
# Checks that every C++ source in the repository is formatted by .clang-format (Google, 100
# columns), as CONVENTIONS.md asks (ctest: SourceFormat, label lint). Prints where each file
# differs and the command that fixes them.
# Usage: check_format.sh [file ...]   (default: every tracked *.cc and *.h)
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
formatter="${CLANG_FORMAT:-clang-format}"
if ! command -v "$formatter" >/dev/null; then
  echo "check_format: $formatter is not installed (apt-get install clang-format)" >&2
  exit 2
fi
if [ $# -gt 0 ]; then
  files=("$@")
elif [ -d .git ]; then
  mapfile -t files < <(git ls-files '*.cc' '*.h')
else
  mapfile -t files < <(find services tools tests -name node_modules -prune -o \
    \( -name '*.cc' -o -name '*.h' \) -print | sort)
fi
if [ ${#files[@]} -eq 0 ]; then
  echo "check_format: no C++ sources found under $root" >&2
  exit 2
fi
# One clang-format process for all files; each difference is reported as file:line.
if "$formatter" --style=file --dry-run --Werror --ferror-limit=3 "${files[@]}" 2>"${TMPDIR:-/tmp}/check_format.$$"; then
  rm -f "${TMPDIR:-/tmp}/check_format.$$"
  echo "check_format: ${#files[@]} files formatted ($("$formatter" --version))"
  exit 0
fi
report="${TMPDIR:-/tmp}/check_format.$$"
grep -E '^[^ ].*: (error|warning):' "$report" | head -60
mapfile -t unformatted < <(grep -oE '^[^:]+:[0-9]+:[0-9]+: (error|warning)' "$report" | cut -d: -f1 | sort -u)
rm -f "$report"
echo "check_format: ${#unformatted[@]} of ${#files[@]} files differ from .clang-format." >&2
echo "Fix with: $formatter -i ${unformatted[*]}" >&2
exit 1
