#!/usr/bin/env bash
# The run command: installs what is needed, builds, and runs the whole system in one process
# (stockpile-local: five level services and the catalogue) with demo data. Ctrl-C stops it.
#   STOCKPILE_DEMO_REGIONS  region prefixes to fill with demo warehouses (default 4201, Wuhan;
#                           "42" is all of Hubei, ~28,700 warehouses, a few minutes)
#   STOCKPILE_DATA_DIR      where the databases live (default .local-data in the repository)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/install-deps.sh"
bash "$root/scripts/build.sh"
bin="$root/.build/bin"
data="${STOCKPILE_DATA_DIR:-$root/.local-data}"
regions="${STOCKPILE_DEMO_REGIONS:-4201}"
host=127.0.0.1

"$bin/stockpile-local" --data-dir "$data" --host "$host" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
trap 'exit 0' INT TERM

for port in 7501 7502 7503 7504 7505 7510; do
  for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then break; fi
    kill -0 $pid 2>/dev/null || { echo "run: stockpile-local stopped" >&2; exit 1; }
    sleep 0.1
  done
done

echo "run: loading demo data for regions $regions (idempotent: a second run changes nothing)"
"$bin/stockpile-demo" --regions="$regions" --quiet \
  --target="province=$host:7501,city=$host:7502,county=$host:7503,township=$host:7504,village=$host:7505"

cat <<EOT

Stockpile is running with demo data. In another terminal:
  export PATH="$bin:\$PATH" STOCKPILE_SERVER=$host:7503     # the county level service
  stockctl warehouse list --region 4201
  stockctl balance list --region 420102 --skip-zero
  stockctl shortages --region 4201
  stockctl receive --warehouse 420102-W001 --item SH-0001 --quantity 20 --note "donation"
  stockctl expiring --within-days 90 --region 420102
  stockctl rotate --warehouse 420102-W001 --item MD-0004 --new-lot L2029 --new-expiry 2029-12-31
  stockctl --server $host:7505 expiring --within-days 30      # village level
Metrics: http://$host:9501/metrics .. :9505 (levels), :9510 (catalogue). Ctrl-C stops.
EOT
wait $pid
