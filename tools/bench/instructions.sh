#!/usr/bin/env bash
# Instructions per level-service thread for one fixed stockpile-bench workload, counted by
# valgrind's callgrind: the measure for comparing two builds on a VM whose speed drifts by
# ±15-30 % from minute to minute (CPU time and calls/s move with the VM; instruction counts
# move ±1-3 % between runs of the same build). Not a throughput figure: the service runs
# ~50x slower under callgrind, so groups are smaller than at full speed.
#
#   tools/bench/instructions.sh BUILD [bench flags ...]
#   tools/bench/instructions.sh .build --clients=1 --mix=receive:100 --batch=1000 --ops=20
#   tools/bench/instructions.sh .build --clients=4 --mix=receive:100 --ops=4000
#
# BUILD is a build directory (RelWithDebInfo); the bench flags default to the first example.
# Prints, per thread of the level service that did work, its instructions in millions, named
# by what it ran (writer, syncer, answerer, RocksDB flush, gRPC, start-up). Needs valgrind.
set -euo pipefail

bin=$(cd "$1" && pwd)/bin
shift
flags=("$@")
[ ${#flags[@]} -gt 0 ] || flags=(--clients=1 --mix=receive:100 --batch=1000 --ops=20)
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is not installed" >&2; exit 2; }

dir=$(mktemp -d)
level_pid=
cleanup() {
  [ -n "$level_pid" ] && kill -TERM "$level_pid" 2>/dev/null && wait "$level_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
export STOCKPILE_INSECURE=1

valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$dir/callgrind.%p" \
  "$bin/stockpile-level" --level=county --regions=42 --db="$dir/db" --listen=127.0.0.1:0 \
  --port-file="$dir/port" >"$dir/level.log" 2>&1 &
level_pid=$!
for _ in $(seq 1200); do [ -s "$dir/port" ] && break; sleep 0.1; done
[ -s "$dir/port" ] || { echo "instructions.sh: the level service did not start" >&2; exit 1; }

"$bin/stockpile-bench" --target="127.0.0.1:$(cat "$dir/port")" --warmup=0s --timeout=300s \
  "${flags[@]}" | grep -E '^(ops|  cpu)' || true
kill -TERM "$level_pid"
wait "$level_pid" 2>/dev/null || true
level_pid=

# Callgrind numbers the main thread 1 (start-up: reference data, opening the database); every
# other thread is named by the loop its part file shows it ran.
role() {
  local f=$1
  if [[ $f == *-01 ]]; then echo start-up
  elif grep -q 'LevelCore::WriterLoop' "$f"; then echo writer
  elif grep -q 'LevelCore::SyncerLoop' "$f"; then echo syncer
  elif grep -q 'LevelCore::AnswererLoop' "$f"; then echo answerer
  elif grep -q 'FlushJob::Run' "$f"; then echo rocksdb-flush
  elif grep -q 'CompactionJob::Run' "$f"; then echo rocksdb-compaction
  elif grep -q 'grpc' "$f"; then echo grpc
  else echo other
  fi
}
echo "thread               instructions (millions)"
for f in "$dir"/callgrind.*-*; do
  total=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
  [ "${total:-0}" -ge 1000000 ] || continue
  awk -v role="$(role "$f")" -v n="$total" 'BEGIN { printf "%-20s %12.1f\n", role, n / 1e6 }'
done | sort -k2 -nr
