#!/usr/bin/env bash
# The catalogue's national-dataset measurements (docs/bench.md, "Catalogue with the national
# dataset"). Five stockpile-level instances (one per level, all of China) on 127.0.0.1:7601-7605,
# filled by stockpile-demo with a warehouse per region holding all 42 items, then a catalogue on
# 127.0.0.1:7600 following them, measured by stockpile-bench's catalogue modes.
#
#   tools/bench/national.sh levels    BUILD DIR   # start the five level services (background)
#   tools/bench/national.sh seed      BUILD DIR   # stockpile-demo --all --items-per-warehouse=all
#   tools/bench/national.sh load      BUILD DIR   # fresh catalogue + catalogue-load (time, RSS)
#   tools/bench/national.sh rollup    BUILD DIR   # catalogue-rollup, 1 client, 10 s
#   tools/bench/national.sh lag       BUILD DIR   # catalogue-lag, 5,000 receipts/s, ≤200 in flight, 60 s
#   tools/bench/national.sh backlog   BUILD DIR   # catalogue stopped, single receipts, catch-up
#   tools/bench/national.sh restart   BUILD DIR   # restart the catalogue on its store (reload time)
#   tools/bench/national.sh catchup-backlog BUILD DIR  # own county level, 300,000 single receipts
#   tools/bench/national.sh catchup   BUILD DIR   # fresh catalogue on it: catch-up entries/s
#   tools/bench/national.sh stop      BUILD DIR   # stop every process this script started
# BUILD is a build directory (RelWithDebInfo or Release), DIR holds databases, logs and pids
# (put it outside the repository: tens of GB).
set -euo pipefail

cmd=$1
bin=$(cd "$2" && pwd)/bin
dir=$3
mkdir -p "$dir"
host=127.0.0.1
levels=(province city county township village)
export STOCKPILE_INSECURE=1

level_port() { echo $((7601 + $1)); }
level_addrs() {
  local out="" i
  for i in 0 1 2 3 4; do out+="${out:+,}$host:$(level_port $i)"; done
  echo "$out"
}
all_provinces() {
  zcat "${REFERENCE_DATA:-/work/shared/data}/regions/provinces.csv.gz" | tail -n +2 | cut -d, -f1 |
    paste -sd, -
}
wait_port() {
  for _ in $(seq 1 600); do
    (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "national.sh: nothing listens on port $1" >&2
  return 1
}

start_catalogue() {  # extra flags...
  local sources="" i
  for i in 0 1 2 3 4; do
    sources+=" --source=${levels[$i]}=${levels[$i]}@$host:$(level_port $i)"
  done
  # shellcheck disable=SC2086
  "$bin/stockpile-catalogue" --db="$dir/catalogue" --listen=$host:7600 $sources "$@" \
    >>"$dir/catalogue.log" 2>&1 &
  echo $! >"$dir/catalogue.pid"
}

stop_pidfile() {
  [ -f "$1" ] || return 0
  local pid
  pid=$(cat "$1")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$1"
}

case $cmd in
  levels)
    regions=$(all_provinces)
    for i in 0 1 2 3 4; do
      "$bin/stockpile-level" --level="${levels[$i]}" --regions="$regions" \
        --db="$dir/${levels[$i]}" --listen=$host:"$(level_port $i)" \
        >>"$dir/${levels[$i]}.log" 2>&1 &
      echo $! >"$dir/${levels[$i]}.pid"
    done
    for i in 0 1 2 3 4; do wait_port "$(level_port $i)"; done
    echo "levels up: $(level_addrs)"
    ;;
  seed)
    targets=""
    for i in 0 1 2 3 4; do targets+="${targets:+,}${levels[$i]}=$host:$(level_port $i)"; done
    time "$bin/stockpile-demo" --all --items-per-warehouse=all --quotas=false --reserves=false \
      --concurrency="${CONCURRENCY:-32}" --target="$targets"
    ;;
  load)
    stop_pidfile "$dir/catalogue.pid"
    rm -rf "$dir/catalogue"
    uptime
    start_catalogue
    "$bin/stockpile-bench" --mode=catalogue-load --target=$host:7600 --levels="$(level_addrs)" \
      --pid="$(cat "$dir/catalogue.pid")" --timeout=1800s
    uptime
    ;;
  rollup)
    uptime
    "$bin/stockpile-bench" --mode=catalogue-rollup --target=$host:7600 --clients=1 \
      --duration=10s --pid="$(cat "$dir/catalogue.pid")"
    ;;
  lag)
    uptime
    "$bin/stockpile-bench" --mode=catalogue-lag --target=$host:7600 --levels="$(level_addrs)" \
      --rate="${RATE:-5000}" --clients="${CLIENTS:-200}" --duration="${DURATION:-60s}" \
      --warmup=5s --pid="$(cat "$dir/catalogue.pid")"
    uptime
    ;;
  backlog)
    stop_pidfile "$dir/catalogue.pid"
    # 300,000 single receipts (one change entry each) spread over the five levels.
    for i in 0 1 2 3 4; do
      "$bin/stockpile-bench" --target=$host:"$(level_port $i)" --mix=receive:100 --clients=16 \
        --ops="${BACKLOG_PER_LEVEL:-60000}" --warmup=0s --warehouses=20 --seed-quantity=1000 --setup-concurrency=8 \
        >/dev/null &
    done
    wait
    uptime
    start_catalogue
    "$bin/stockpile-bench" --mode=catalogue-load --target=$host:7600 --levels="$(level_addrs)" \
      --pid="$(cat "$dir/catalogue.pid")" --timeout=1800s
    uptime
    ;;
  restart)  # the catalogue with its store kept (start-up rebuilds memory from it)
    stop_pidfile "$dir/catalogue.pid"
    uptime
    start_catalogue
    "$bin/stockpile-bench" --mode=catalogue-load --target=$host:7600 --levels="$(level_addrs)" \
      --pid="$(cat "$dir/catalogue.pid")" --timeout=1800s
    uptime
    ;;
  catchup-backlog)  # a county instance of its own with ${BACKLOG:-300000} single receipts
    "$bin/stockpile-level" --level=county --regions=42 --db="$dir/catchup-level" \
      --listen=$host:7610 >>"$dir/catchup-level.log" 2>&1 &
    echo $! >"$dir/catchup-level.pid"
    wait_port 7610
    "$bin/stockpile-bench" --target=$host:7610 --mix=receive:100 --clients=64 \
      --ops="${BACKLOG:-300000}" --warmup=0s --warehouses=100
    ;;
  catchup)  # a fresh catalogue following only that instance: entries/s from the backlog
    # The level is stopped while the catalogue starts (its start-up is not part of the rate),
    # then started again: the catalogue reconnects and catches up while the bench watches.
    stop_pidfile "$dir/catchup-catalogue.pid"
    stop_pidfile "$dir/catchup-level.pid"
    rm -rf "$dir/catchup-catalogue"
    uptime
    "$bin/stockpile-catalogue" --db="$dir/catchup-catalogue" --listen=$host:7620 \
      --source=county-x=county@$host:7610 >>"$dir/catchup-catalogue.log" 2>&1 &
    echo $! >"$dir/catchup-catalogue.pid"
    wait_port 7620
    "$bin/stockpile-bench" --mode=catalogue-load --target=$host:7620 --levels=$host:7610 \
      --pid="$(cat "$dir/catchup-catalogue.pid")" --timeout=600s &
    bench=$!
    "$bin/stockpile-level" --level=county --regions=42 --db="$dir/catchup-level" \
      --listen=$host:7610 >>"$dir/catchup-level.log" 2>&1 &
    echo $! >"$dir/catchup-level.pid"
    wait $bench
    uptime
    ;;
  stop)
    stop_pidfile "$dir/catchup-catalogue.pid"
    stop_pidfile "$dir/catchup-level.pid"
    stop_pidfile "$dir/catalogue.pid"
    for l in "${levels[@]}"; do stop_pidfile "$dir/$l.pid"; done
    ;;
  *)
    echo "usage: $0 levels|seed|load|rollup|lag|backlog|restart|catchup-backlog|catchup|stop BUILD DIR" >&2
    exit 2
    ;;
esac
