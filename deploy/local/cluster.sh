#!/usr/bin/env bash
# A real local cluster: etcd and separate processes on loopback — five level services (two
# county instances splitting China's provinces, to show sharding) and the catalogue, all
# registered in etcd. Plaintext and without tokens (local development) unless STOCKPILE_TLS=1.
#
#   deploy/local/cluster.sh start     # start everything, wait until it serves
#   STOCKPILE_TLS=1 deploy/local/cluster.sh start
#                                     # the same with TLS and bearer tokens: a CA, certificates
#                                     # and a token key are made in $dir/tls (kept across
#                                     # restarts); every listener is TLS, level services require
#                                     # client certificates (mutual TLS), every call a token
#   deploy/local/cluster.sh status    # which processes run, and in which mode
#   deploy/local/cluster.sh backup    # a backup of every level instance, under
#                                     # $dir/backups/<instance> (the newest 8 kept)
#   deploy/local/cluster.sh stop      # SIGTERM each (SIGKILL after 10 s), etcd last
#
# `start` records its mode in $dir/mode; status, backup and stop use the recorded mode, so
# STOCKPILE_TLS=1 need not be given again after a TLS start.
#
# Environment: STOCKPILE_BIN (default .build/bin), STOCKPILE_CLUSTER_DIR (default .local-cluster),
# STOCKPILE_REFERENCE_DATA (default ../shared/data), STOCKPILE_PORT_OFFSET (added to every port;
# default 0). Ports (offset 0): etcd 2379/2380; gRPC 7501 province, 7502 city, 7503 county-a,
# 7504 county-b, 7505 township, 7506 village, 7510 catalogue; metrics 9501..9506 and 9510
# (the layout of deploy/prometheus/prometheus.yml). Prometheus scrapes /metrics over plain HTTP
# in both modes (metrics carry no stock-changing capability).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${STOCKPILE_BIN:-$root/.build/bin}"
dir="${STOCKPILE_CLUSTER_DIR:-$root/.local-cluster}"
ref="${STOCKPILE_REFERENCE_DATA:-$root/../shared/data}"
off="${STOCKPILE_PORT_OFFSET:-0}"
host=127.0.0.1
etcd_port=$((2379 + off))
etcd_peer=$((2380 + off))
tls="$dir/tls"
# TLS mode: `start` takes it from STOCKPILE_TLS and records it; every other command uses the
# mode the cluster was started in (STOCKPILE_TLS only for a cluster started without the record).
mode_file="$dir/mode"
if [ "${1:-}" != start ] && [ -f "$mode_file" ]; then
  tls_mode="$(cat "$mode_file")"
else
  tls_mode="${STOCKPILE_TLS:-0}"
fi

# A CA, one certificate for every service (server and client use: the catalogue presents it to
# the level services), a client certificate for stockctl, the token key and the catalogue's
# service token. Made once; an existing set is reused.
make_tls() {
  [ -f "$tls/service.token" ] && return 0
  mkdir -p "$tls"
  chmod 700 "$tls"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -keyout "$tls/ca.key" -out "$tls/ca.pem" -days 30 \
    -subj /CN=stockpile-local-ca -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  leaf service serverAuth,clientAuth
  leaf stockctl clientAuth
  openssl rand -hex 32 >"$tls/token.key"
  chmod 600 "$tls"/*.key
  "$bin/stockctl" token issue --key "$tls/token.key" --subject catalogue --role service \
    --ttl 720h >"$tls/service.token"
  "$bin/stockctl" token issue --key "$tls/token.key" --subject local-admin --role admin \
    --ttl 24h >"$tls/admin.token"
}

leaf() {  # name extendedKeyUsage
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n%s\nextendedKeyUsage=%s\n' \
    keyUsage=critical,digitalSignature "$2" >"$tls/$1.ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$tls/$1.key" \
    -out "$tls/$1.csr" -subj "/CN=$1" 2>/dev/null
  openssl x509 -req -in "$tls/$1.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
    -out "$tls/$1.pem" -days 30 -extfile "$tls/$1.ext" 2>/dev/null
}

# Security flags of a process: TLS + tokens, or --insecure.
security_flags() {  # level|catalogue
  if [ "$tls_mode" != 1 ]; then
    echo --insecure
    return
  fi
  echo --tls-cert="$tls/service.pem" --tls-key="$tls/service.key" --tls-ca="$tls/ca.pem" \
    --auth-key-file="$tls/token.key"
  if [ "$1" = catalogue ]; then echo --service-token-file="$tls/service.token"; fi
}

provinces() {  # provinces whose code is below / at or above 44 (the two county shards)
  zcat "$ref/regions/provinces.csv.gz" | tail -n +2 | cut -d, -f1 |
    awk -v op="$1" '(op == "lt" && $1 < 44) || (op == "ge" && $1 >= 44)' | paste -sd, -
}

# name level regions grpc_port metrics_port
instances() {
  local all
  all="$(provinces lt),$(provinces ge)"
  echo "province province $all 7501 9501"
  echo "city city $all 7502 9502"
  echo "county-a county $(provinces lt) 7503 9503"
  echo "county-b county $(provinces ge) 7504 9504"
  echo "township township $all 7505 9505"
  echo "village village $all 7506 9506"
}

wait_port() {  # port seconds name
  for _ in $(seq 1 $(($2 * 10))); do
    (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "cluster: $3 did not open port $1; see $dir/$3.log" >&2
  return 1
}

# Our own process bound its port: it wrote its port file, and is still running. A port that
# merely answers may be another program's that took it first (this one then failed to bind).
wait_served() {  # name seconds
  local pid
  pid=$(cat "$dir/$1.pid")
  for _ in $(seq 1 $(($2 * 10))); do
    [ -s "$dir/$1.port" ] && kill -0 "$pid" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "cluster: $1 is not serving; see $dir/$1.log" >&2
  return 1
}

spawn() {  # name command...
  local name=$1
  shift
  "$@" >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

start() {
  mkdir -p "$dir"
  if [ "$tls_mode" = 1 ]; then make_tls; fi
  if [ "$tls_mode" = 1 ]; then echo 1; else echo 0; fi >"$mode_file"
  spawn etcd etcd --name local --data-dir "$dir/etcd" \
    --listen-client-urls "http://$host:$etcd_port" --advertise-client-urls "http://$host:$etcd_port" \
    --listen-peer-urls "http://$host:$etcd_peer" --initial-advertise-peer-urls "http://$host:$etcd_peer" \
    --initial-cluster "local=http://$host:$etcd_peer"
  wait_port "$etcd_port" 20 etcd
  kill -0 "$(cat "$dir/etcd.pid")" 2>/dev/null || { echo "cluster: etcd exited; see $dir/etcd.log" >&2; return 1; }
  while read -r name level regions grpc metrics; do
    rm -f "$dir/$name.port"
    spawn "$name" "$bin/stockpile-level" --level="$level" --regions="$regions" \
      --db="$dir/$name-db" --reference-data="$ref" $(security_flags level) \
      --listen="$host:$((grpc + off))" --metrics-listen="$host:$((metrics + off))" \
      --port-file="$dir/$name.port" \
      --etcd-endpoints="$host:$etcd_port" --instance-id="$name" --etcd-ttl=5 \
      --backup-dir="$dir/backups/$name" --backup-keep=8
  done < <(instances)
  rm -f "$dir/catalogue.port"
  spawn catalogue "$bin/stockpile-catalogue" --db="$dir/catalogue-db" --reference-data="$ref" \
    --listen="$host:$((7510 + off))" --metrics-listen="$host:$((9510 + off))" \
    --port-file="$dir/catalogue.port" \
    --etcd-endpoints="$host:$etcd_port" --instance-id=catalogue $(security_flags catalogue)
  while read -r name _; do wait_served "$name" 60; done < <(instances)
  wait_served catalogue 60
  echo "cluster: running (logs and databases in $dir)"
  while read -r name level _ grpc _; do
    printf '  %-9s %-9s %s:%d\n' "$name" "$level" "$host" $((grpc + off))
  done < <(instances)
  printf '  %-9s %-9s %s:%d\n  %-9s %-9s %s:%d\n' catalogue "" "$host" $((7510 + off)) \
    etcd "" "$host" "$etcd_port"
  if [ "$tls_mode" = 1 ]; then print_tls_help; fi
}

print_tls_help() {
  cat <<EOF
cluster: TLS and bearer tokens on (certificates and keys in $tls). Point stockctl at it:
  export STOCKPILE_TLS_CA=$tls/ca.pem STOCKPILE_TLS_CERT=$tls/stockctl.pem \\
         STOCKPILE_TLS_KEY=$tls/stockctl.key
  stockctl token issue --key $tls/token.key --subject wang.li --role staff --scope 420102 \\
    --ttl 8h > ~/.stockpile-token
  export STOCKPILE_TOKEN_FILE=~/.stockpile-token
  stockctl --server $host:$((7506 + off)) ...      (catalogue: --catalogue $host:$((7510 + off)))
  (an admin token for creating warehouses and quotas: $tls/admin.token)
EOF
}

stop_one() {
  local pidfile="$dir/$1.pid"
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

stop() {
  stop_one catalogue
  while read -r name _; do stop_one "$name"; done < <(instances)
  stop_one etcd
  echo "cluster: stopped"
}

status() {
  if [ "$tls_mode" = 1 ]; then
    echo "  mode: TLS and bearer tokens (certificates, keys and tokens in $tls)"
  else
    echo "  mode: plaintext, no tokens"
  fi
  for name in etcd catalogue $(instances | cut -d' ' -f1); do
    if [ -f "$dir/$name.pid" ] && kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null; then
      echo "  $name: running (pid $(cat "$dir/$name.pid"))"
    else
      echo "  $name: stopped"
    fi
  done
}

# stockctl backup against every level instance; in TLS mode with the admin token.
backup() {
  local flags=() failed=0 out
  if [ "$tls_mode" = 1 ]; then
    flags=(--tls-ca "$tls/ca.pem" --tls-cert "$tls/stockctl.pem" --tls-key "$tls/stockctl.key"
           --token-file "$tls/admin.token")
  fi
  while read -r name _ _ grpc _; do
    if out=$("$bin/stockctl" --server="$host:$((grpc + off))" --timeout=600 "${flags[@]}" backup 2>&1)
    then
      printf '  %-9s %s\n' "$name" "$(sed -n 's/^backup: *//p' <<<"$out")"
    else
      printf '  %-9s FAILED: %s\n' "$name" "$out"
      failed=1
    fi
  done < <(instances)
  return "$failed"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  backup) backup ;;
  *) echo "usage: $0 start|stop|status|backup" >&2; exit 1 ;;
esac
