#!/usr/bin/env bash
# Offline validation of Stockpile's deployment files (ctest: DeployValidation, label integration).
#   Prometheus: promtool check config / check rules / test rules, metric names in rules
#   YAML:       yamllint (tools/validate/yamllint.yaml) on sources and every rendered stream
#   Helm:       values.yaml (+ test overlays and helm/stockpile/ci/*-values.yaml) against
#               values.schema.json (ajv); templates rendered by helmrender (Go text/template +
#               sprig + Helm's functions) with default, HA and ci/ values; validateValues must
#               reject the bad overlays
#   Kubernetes: every rendered object and `kubectl kustomize deploy/k8s` checked against the API
#               schemas of kubernetes-models (+ our conventions); deploy/k8s must equal the chart
#   Grafana:    dashboard JSON checks; copies in the chart identical to the sources
#   Docker:     apt package names exist; stage/user/binaries present; build-info commit ARG
#   helm:       `helm lint` and `helm template` when a helm binary is on PATH
# Usage: validate_deploy.sh [--regenerate-k8s]   (the flag rewrites deploy/k8s from the chart)
# Needs: node + npm (installs tools/validate/node_modules with `npm ci` when missing), go and
# the Debian Go packages of scripts/deps/deploy.txt, promtool, yamllint, kubectl.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
chart="$root/helm/stockpile"
work="$(mktemp -d "${TMPDIR:-/tmp}/stockpile-validate.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$root"

passed=0
failed=0
failed_names=()
start=$SECONDS

# step NAME COMMAND...: runs a check, prints its output only when it fails.
step() {
  local name="$1"; shift
  if "$@" >"$work/step.log" 2>&1; then
    passed=$((passed + 1))
    printf 'PASS  %s\n' "$name"
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    printf 'FAIL  %s\n' "$name"
    sed 's/^/      /' "$work/step.log"
  fi
}

# expect_failure NAME PATTERN COMMAND...: the command must fail and print PATTERN.
expect_failure() {
  local name="$1" pattern="$2"; shift 2
  if "$@" >"$work/neg.log" 2>&1; then
    echo "expected a failure but the command succeeded: $*"
    return 1
  fi
  grep -qE -- "$pattern" "$work/neg.log" || { echo "failed without /$pattern/:"; cat "$work/neg.log"; return 1; }
}

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "validate_deploy: '$1' not found ($2)"
  failed=$((failed + 1)); failed_names+=("tool $1")
  return 1
}

need node "apt: nodejs" && need npm "apt: npm"
need promtool "apt: prometheus (scripts/deps/core.txt)"
need yamllint "apt: yamllint"
need go "apt: golang-go (scripts/deps/deploy.txt)"
need kubectl "kubectl (preinstalled; Debian: kubernetes-client)"

# ---- node packages: npm ci from the committed lock file ---------------------------------------
if [ ! -d "$here/node_modules/kubernetes-models" ] || [ ! -d "$here/node_modules/ajv" ]; then
  step "npm ci (tools/validate)" npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
fi

# ---- Prometheus --------------------------------------------------------------------------------
step "promtool check config" promtool check config deploy/prometheus/prometheus.yml
step "promtool check rules" promtool check rules deploy/prometheus/rules.yml
step "promtool test rules" promtool test rules deploy/prometheus/rules_test.yml
step "rule metric names, severities, annotations" node "$here/check_rules.js" deploy/prometheus/rules.yml

# ---- Grafana and the chart's copies ------------------------------------------------------------
step "grafana dashboard" node "$here/check_grafana.js" deploy/grafana/stockpile.json
step "chart copy of rules.yml is current" cmp deploy/prometheus/rules.yml "$chart/files/rules.yml"
step "chart copy of the dashboard is current" cmp deploy/grafana/stockpile.json "$chart/dashboards/stockpile.json"

# ---- YAML sources ------------------------------------------------------------------------------
step "yamllint sources" yamllint -c "$here/yamllint.yaml" deploy/prometheus "$chart/Chart.yaml" \
  "$chart/values.yaml" "$chart/ci" deploy/k8s "$here/testdata" "$here/yamllint.yaml"

# ---- values against the schema -----------------------------------------------------------------
step "values.yaml matches values.schema.json" node "$here/check_values.js" "$chart"
step "values-ha.yaml matches values.schema.json" node "$here/check_values.js" "$chart" "$here/testdata/values-ha.yaml"
step "values-no-catalogue.yaml matches values.schema.json" \
  node "$here/check_values.js" "$chart" "$here/testdata/values-no-catalogue.yaml"
# The chart's ci/ overlays (what `ct lint`/`ct install` would use): each checked and rendered.
ci_values=("$chart"/ci/*-values.yaml)
[ -e "${ci_values[0]}" ] || ci_values=()
for v in "${ci_values[@]}"; do
  step "ci/$(basename "$v") matches values.schema.json" node "$here/check_values.js" "$chart" "$v"
done
step "schema rejects values-bad-schema.yaml" expect_failure schema "additional properties" \
  node "$here/check_values.js" "$chart" "$here/testdata/values-bad-schema.yaml"
step "schema rejects an H outside the minute of a backup schedule" expect_failure schedule \
  '/levelDefaults/backups/schedule must match pattern' \
  node "$here/check_values.js" "$chart" "$here/testdata/values-bad-schedule.yaml"
step "schema rejects a PodDisruptionBudget maxUnavailable of \"one\"" expect_failure pdb \
  '/podDisruptionBudget/maxUnavailable must match a schema in anyOf' \
  node "$here/check_values.js" "$chart" "$here/testdata/values-bad-probes-pdb.yaml"
step "schema rejects a health service the level does not register" expect_failure health-service \
  '/levels/county/healthService must be equal to one of the allowed values' \
  node "$here/check_values.js" "$chart" "$here/testdata/values-bad-probes-pdb.yaml"

# ---- render the chart --------------------------------------------------------------------------
render="$work/helmrender"
build_renderer() {
  (cd "$here/helmrender" && GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= go build -o "$render" .)
}
step "build helmrender (Go text/template + sprig)" build_renderer

render_and_check() {  # NAME VALUES-FILE(or empty)
  local out="$work/render-$1.yaml"
  "$render" ${2:+-f "$2"} -name stockpile -namespace stockpile "$chart" >"$out" || return 1
  yamllint -c "$here/yamllint.yaml" "$out" || return 1
  node "$here/check_k8s.js" "$out"
}
if [ -x "$render" ]; then
  step "render default values + k8s schemas + yamllint" render_and_check default ""
  step "render values-ha.yaml + k8s schemas + yamllint" render_and_check ha "$here/testdata/values-ha.yaml"
  for v in "${ci_values[@]}"; do
    step "render ci/$(basename "$v") + k8s schemas + yamllint" \
      render_and_check "ci-$(basename "$v" .yaml)" "$v"
  done
  # The insecure overlay must take effect: --insecure on every server, no TLS flags or Secrets.
  check_insecure_render() {
    local out="$work/render-ci-insecure-values.yaml"
    [ -s "$out" ] || { echo "no render of ci/insecure-values.yaml"; return 1; }
    local servers insecure
    servers=$(grep -cE '^ +command: \["stockpile-(level|catalogue)"\]$' "$out")
    insecure=$(grep -cE '^ +- --insecure$' "$out")
    echo "servers: $servers, --insecure: $insecure"
    [ "$servers" -gt 0 ] && [ "$servers" -eq "$insecure" ] &&
      ! grep -nE -- '--tls-cert=|--auth-key-file=|secretName: stockpile-(tls|auth)' "$out"
  }
  step "ci/insecure-values.yaml renders plaintext servers without Secrets" check_insecure_render
  # Four eyes is the operator's choice: on in values-ha.yaml only.
  check_second_approver() {
    grep -qE '^ +- --require-second-approver$' "$work/render-ha.yaml" &&
      ! grep -q -- '--require-second-approver' "$work/render-default.yaml"
  }
  step "catalogue.requireSecondApprover passes --require-second-approver" check_second_approver
  # Backups on a volume of their own where backupStorage.size is set (county in values-ha.yaml),
  # beside the database otherwise.
  check_backup_volume() {
    grep -qE '^ +- --backup-dir=/backups$' "$work/render-ha.yaml" &&
      grep -qE '^ +name: backups$' "$work/render-ha.yaml" &&
      grep -qE '^ +- --backup-dir=/data/backups$' "$work/render-ha.yaml" &&
      ! grep -q -- '--backup-dir=/backups' "$work/render-default.yaml" &&
      ! grep -qE '^ +name: backups$' "$work/render-default.yaml"
  }
  step "levels.<level>.backupStorage gives backups a volume of their own" check_backup_volume
  # Scheduled backups: a CronJob per level shard (default values), each retried pod under the
  # Job's own request id; the level keeps backups.keep of them.
  check_backup_jobs() {
    local out="$work/render-default.yaml" shards jobs
    shards=$(grep -cE '^ +command: \["stockpile-level"\]$' "$out")
    jobs=$(grep -cE '^kind: CronJob$' "$out")
    echo "level shards: $shards, backup CronJobs: $jobs"
    [ "$shards" -gt 0 ] && [ "$shards" -eq "$jobs" ] &&
      [ "$(grep -cE '^ +- --backup-keep=8$' "$out")" -eq "$shards" ] &&
      [ "$(grep -cE '^ +- --request-id=scheduled-\$\(JOB_NAME\)$' "$out")" -eq "$jobs" ] &&
      [ "$(grep -cE '^ +- --token-file=/etc/stockpile/auth/service.token$' "$out")" -eq "$jobs" ] &&
      ! grep -q -- '--token-file' "$work/render-ci-insecure-values.yaml"
  }
  step "levels.<level>.backups schedules a backup CronJob per shard" check_backup_jobs
  # "H" as the minute: each shard's own minute, a number, not the same for all of them.
  check_backup_minutes() {
    local minutes
    minutes=$(grep -E '^  schedule: ' "$work/render-default.yaml" | awk '{print $2}' | tr -d '"')
    echo "backup minutes:" $minutes
    ! echo "$minutes" | grep -qvE '^([0-9]|[1-5][0-9])$' &&
      [ "$(echo "$minutes" | sort -u | wc -l)" -gt 1 ]
  }
  step "an H minute gives each shard's backups a minute of its own" check_backup_minutes
  # values-ha.yaml: county backups every 3 hours, 16 kept; one shard restored through extraArgs.
  check_backup_overrides() {
    local out="$work/render-ha.yaml"
    grep -qE '^ +schedule: "?0 \*/3 \* \* \*"?$' "$out" &&
      grep -qE '^ +- --backup-keep=16$' "$out" &&
      [ "$(grep -cE '^ +- "?--restore-from=/backups/backup-20261204T021700.000Z-seq1822"?$' "$out")" -eq 1 ]
  }
  step "a level's backups and a shard's --restore-from reach the render" check_backup_overrides
  sed -E 's/--server=stockpile-level-county-a-0\./--server=stockpile-level-county-z-0./' \
    "$work/render-default.yaml" >"$work/render-bad-backup-job.yaml"
  step "check_k8s rejects a backup job aimed at no level pod" expect_failure backup-job \
    'names no pod of a StatefulSet' node "$here/check_k8s.js" "$work/render-bad-backup-job.yaml"
  # values-ha.yaml gives the county level its own grpcPort (7520): shards.yaml must say it too.
  sed -E 's/(service: stockpile-level-county-north-0\.stockpile-level-county\.stockpile\.svc):7520$/\1:7500/' \
    "$work/render-ha.yaml" >"$work/render-bad-shard-port.yaml"
  step "check_k8s rejects a shards.yaml address off the level's own port" expect_failure shard-port \
    "county/north: .* is not on the pod's gRPC port" node "$here/check_k8s.js" "$work/render-bad-shard-port.yaml"
  check_chart_rules() {
    node "$here/check_rules.js" --from-prometheusrule "$work/render-ha.yaml" "$work/chart-rules.yml" &&
      promtool check rules "$work/chart-rules.yml" &&
      grep -q 'vector(43200)' "$work/chart-rules.yml"
  }
  step "PrometheusRule of the chart passes promtool, threshold from values" check_chart_rules
  # CatalogueNoLeader fires when no catalogue series exists: only where the chart runs one.
  check_rules_without_catalogue() {
    render_and_check no-catalogue "$here/testdata/values-no-catalogue.yaml" || return 1
    grep -qE '^ +- alert: CatalogueNoLeader$' "$work/render-ha.yaml" &&
      grep -qE '^ +- alert: CatalogueInstanceDown$' "$work/render-no-catalogue.yaml" &&
      ! grep -nE 'alert: CatalogueNoLeader' "$work/render-no-catalogue.yaml"
  }
  step "catalogue.enabled=false leaves CatalogueNoLeader out of the PrometheusRule" \
    check_rules_without_catalogue
  step "validateValues rejects overlapping shards and even etcd" expect_failure overlap \
    'overlaps "42" of shard a.*|odd member count' "$render" -f "$here/testdata/values-bad-overlap.yaml" "$chart"
  step "validateValues rejects bad etcd/prefix/reference data" expect_failure etcd \
    'not both' "$render" -f "$here/testdata/values-bad-etcd.yaml" "$chart"
  step "validateValues rejects a level's ports on the health port or on each other" expect_failure ports \
    'levels.county: grpcPort 7700 collides with security.healthPort' \
    "$render" -f "$here/testdata/values-bad-ports.yaml" "$chart"
  step "render values-long-names.yaml: distinct CronJobs and StatefulSets of at most 52" \
    render_and_check long-names "$here/testdata/values-long-names.yaml"
  step "validateValues rejects StatefulSet names over 52 characters" expect_failure names \
    'southcentral-01 has 61 characters, over the 52 Kubernetes allows' \
    "$render" -f "$here/testdata/values-bad-names.yaml" "$chart"
  step "check_k8s rejects bad manifests" expect_failure k8s 'must be integer' \
    node "$here/check_k8s.js" "$here/testdata/bad-manifests.yaml"

  # ---- deploy/k8s: generated from the chart, rendered by kustomize ------------------------------
  generate_k8s() {  # OUT-DIR
    "$render" -f "$here/testdata/values-k8s.yaml" -name stockpile -namespace stockpile "$chart" \
      >"$work/render-k8s.yaml" && node "$here/gen_k8s.js" "$work/render-k8s.yaml" "$1"
  }
  if [ "${1:-}" = "--regenerate-k8s" ]; then
    rm -rf deploy/k8s && generate_k8s deploy/k8s
  fi
  step "deploy/k8s equals the chart's default render" \
    bash -c "$(declare -f generate_k8s); render='$render' here='$here' chart='$chart' work='$work';
             generate_k8s '$work/k8s' >/dev/null && diff -ru deploy/k8s '$work/k8s'"
fi
kustomize_and_check() {  # DIR NAME
  kubectl kustomize "$1" >"$work/kustomize-$2.yaml" &&
    yamllint -c "$here/yamllint.yaml" "$work/kustomize-$2.yaml" &&
    node "$here/check_k8s.js" "$work/kustomize-$2.yaml"
}
step "kubectl kustomize deploy/k8s + k8s schemas" kustomize_and_check deploy/k8s main
step "kubectl kustomize deploy/k8s/monitoring + checks" kustomize_and_check deploy/k8s/monitoring monitoring

# ---- Docker ------------------------------------------------------------------------------------
step "Dockerfile packages and structure" bash "$here/check_dockerfile.sh"
# Without the commit passed to cmake, images report stockpile_build_info{commit="unknown"}.
sed 's/ -DSTOCKPILE_GIT_COMMIT="${STOCKPILE_GIT_COMMIT}"//' deploy/docker/Dockerfile \
  >"$work/Dockerfile.no-commit"
step "check_dockerfile rejects a build without the commit" expect_failure dockerfile \
  'does not pass -DSTOCKPILE_GIT_COMMIT' bash "$here/check_dockerfile.sh" "$work/Dockerfile.no-commit"

# ---- real helm, where installed ----------------------------------------------------------------
if command -v helm >/dev/null 2>&1; then
  step "helm lint" helm lint "$chart" -f "$here/testdata/values-ha.yaml"
  helm_template() {
    helm template stockpile "$chart" -f "$here/testdata/values-ha.yaml" >"$work/helm.yaml" &&
      node "$here/check_k8s.js" "$work/helm.yaml"
  }
  step "helm template + k8s schemas" helm_template
else
  echo "SKIP  helm lint / helm template (no helm binary on PATH)"
fi

echo
echo "validate_deploy: $((SECONDS - start)) s"
if [ "$failed" -gt 0 ]; then
  printf 'validate_deploy: failed: %s\n' "${failed_names[@]}"
fi
echo "validate: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
