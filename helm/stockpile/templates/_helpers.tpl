{{/* Names ------------------------------------------------------------------------------------ */}}

{{- define "stockpile.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name prefix of every object; the release name alone when it already contains the chart name. */}}
{{- define "stockpile.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 30 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 30 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 30 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "stockpile.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* A shard's backup CronJob: <fullname>-backup-<level>-<shard>. Kubernetes allows CronJob names
of at most 52 characters; a longer one is cut to 43 and gets "-" and 8 hex digits of the full
name's SHA-256, so two shards whose names share a long prefix still get CronJobs of their own.
Call with (dict "root" $ "level" "county" "shard" "a"). */}}
{{- define "stockpile.backupCronJobName" -}}
{{- $name := printf "%s-backup-%s-%s" (include "stockpile.fullname" .root) .level .shard -}}
{{- if le (len $name) 52 -}}
{{- $name -}}
{{- else -}}
{{- printf "%s-%s" ($name | trunc 43 | trimSuffix "-") ($name | sha256sum | trunc 8) -}}
{{- end -}}
{{- end -}}

{{- define "stockpile.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "stockpile.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels ----------------------------------------------------------------------------------- */}}

{{- define "stockpile.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stockpile.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "stockpile.labels" -}}
helm.sh/chart: {{ include "stockpile.chart" . }}
{{ include "stockpile.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: stockpile
{{- end -}}

{{/* Selector labels of one level shard. Call with (dict "root" $ "level" "county" "shard" "a"). */}}
{{- define "stockpile.levelSelectorLabels" -}}
{{ include "stockpile.selectorLabels" .root }}
app.kubernetes.io/component: level
stockpile.io/level: {{ .level }}
{{- if .shard }}
stockpile.io/shard: {{ .shard }}
{{- end }}
{{- end -}}

{{- define "stockpile.catalogueSelectorLabels" -}}
{{ include "stockpile.selectorLabels" . }}
app.kubernetes.io/component: catalogue
{{- end -}}

{{- define "stockpile.etcdSelectorLabels" -}}
{{ include "stockpile.selectorLabels" . }}
app.kubernetes.io/component: etcd
{{- end -}}

{{/* Values helpers --------------------------------------------------------------------------- */}}

{{- define "stockpile.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* etcd endpoints as the comma list the binaries take. */}}
{{- define "stockpile.etcdEndpoints" -}}
{{- if .Values.etcd.embedded.enabled -}}
{{- $fullname := include "stockpile.fullname" . -}}
{{- printf "%s-etcd:2379" $fullname -}}
{{- else -}}
{{- join "," .Values.etcd.endpoints -}}
{{- end -}}
{{- end -}}

{{/* A level's settings: levelDefaults overlaid with the level's own block (shards excluded). */}}
{{- define "stockpile.levelConfig" -}}
{{- $defaults := deepCopy .root.Values.levelDefaults -}}
{{- $own := omit (get .root.Values.levels .level) "shards" "enabled" -}}
{{- toYaml (mergeOverwrite $defaults (deepCopy $own)) -}}
{{- end -}}

{{/* Region code length of each level. */}}
{{- define "stockpile.levelCodeLength" -}}
{{- get (dict "province" 2 "city" 4 "county" 6 "township" 9 "village" 12) . -}}
{{- end -}}

{{/* The reference-data volume, or nothing when the data comes from the image. */}}
{{- define "stockpile.referenceDataVolume" -}}
{{- $rd := .Values.referenceData -}}
{{- if eq $rd.source "persistentVolumeClaim" -}}
- name: reference-data
  persistentVolumeClaim:
    claimName: {{ $rd.persistentVolumeClaim.claimName }}
    readOnly: true
{{- else if eq $rd.source "hostPath" -}}
- name: reference-data
  hostPath:
    path: {{ $rd.hostPath.path }}
    type: Directory
{{- end -}}
{{- end -}}

{{- define "stockpile.referenceDataMount" -}}
{{- if ne .Values.referenceData.source "image" -}}
- name: reference-data
  mountPath: /reference-data
  readOnly: true
{{- end -}}
{{- end -}}

{{- define "stockpile.referenceDataPath" -}}
{{- if eq .Values.referenceData.source "image" -}}
{{- .Values.referenceData.imagePath -}}
{{- else -}}
/reference-data
{{- end -}}
{{- end -}}

{{/* Environment every Stockpile container gets: its identity and the shared config. */}}
{{- define "stockpile.commonEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef: {fieldPath: metadata.namespace}
- name: POD_IP
  valueFrom:
    fieldRef: {fieldPath: status.podIP}
- name: STOCKPILE_ETCD_ENDPOINTS
  valueFrom:
    configMapKeyRef:
      name: {{ include "stockpile.fullname" . }}-config
      key: etcd-endpoints
{{- end -}}

{{/* TLS and token flags (docs/security.md). Call with (dict "root" $ "component" "level"|"catalogue"). */}}
{{- define "stockpile.securityArgs" -}}
{{- $s := .root.Values.security -}}
{{- if $s.insecure -}}
- --insecure
{{- else -}}
- --tls-cert=/etc/stockpile/tls/tls.crt
- --tls-key=/etc/stockpile/tls/tls.key
- --tls-ca=/etc/stockpile/tls/ca.crt
- --auth-key-file=/etc/stockpile/auth/token.key
- --health-listen=0.0.0.0:{{ $s.healthPort }}
{{- if eq .component "catalogue" }}
- --service-token-file=/etc/stockpile/auth/service.token
{{- if $s.catalogueRequireClientCert }}
- --tls-require-client-cert
{{- end }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* The certificate and token Secrets (TLS mode only); level pods get token.key alone. */}}
{{- define "stockpile.securityMounts" -}}
{{- if not .Values.security.insecure -}}
- {name: tls, mountPath: /etc/stockpile/tls, readOnly: true}
- {name: auth, mountPath: /etc/stockpile/auth, readOnly: true}
{{- end -}}
{{- end -}}

{{- define "stockpile.securityVolumes" -}}
{{- $s := .root.Values.security -}}
{{- if not $s.insecure -}}
- name: tls
  secret: {secretName: {{ $s.tlsSecretName }}, defaultMode: 0440}
- name: auth
  secret:
    secretName: {{ $s.authSecretName }}
    defaultMode: 0440
    items:
      - {key: token.key, path: token.key}
      {{- if eq .component "catalogue" }}
      - {key: service.token, path: service.token}
      {{- end }}
{{- end -}}
{{- end -}}

{{/* The plaintext health-only port (TLS mode), as a container port. */}}
{{- define "stockpile.healthPort" -}}
{{- if not .Values.security.insecure -}}
- {name: health, containerPort: {{ .Values.security.healthPort }}, protocol: TCP}
{{- end -}}
{{- end -}}

{{/* gRPC probes on the health service. Call with (dict "root" $ "port" 7500 "service" "").
With TLS they go to the plaintext health-only port: Kubernetes gRPC probes cannot speak TLS. */}}
{{- define "stockpile.grpcProbes" -}}
{{- $p := .root.Values.probes -}}
{{- $port := .port -}}
{{- if not .root.Values.security.insecure -}}
{{- $port = .root.Values.security.healthPort -}}
{{- end -}}
startupProbe:
  grpc: {port: {{ $port }}{{ with .service }}, service: {{ . | quote }}{{ end }}}
  periodSeconds: {{ $p.startup.periodSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
readinessProbe:
  grpc: {port: {{ $port }}{{ with .service }}, service: {{ . | quote }}{{ end }}}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
livenessProbe:
  grpc: {port: {{ $port }}}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
{{- end -}}

{{/* Validation: fails the render with every problem found in the values ---------------------- */}}

{{- define "stockpile.validateValues" -}}
{{- $errors := list -}}
{{- $anyLevel := false -}}
{{- range $level := list "province" "city" "county" "township" "village" -}}
{{- $cfg := get $.Values.levels $level -}}
{{- if and $cfg $cfg.enabled -}}
{{- $anyLevel = true -}}
{{- $errors = concat $errors (include "stockpile.validateLevel" (dict "level" $level "cfg" $cfg "fullname" (include "stockpile.fullname" $)) | fromYaml).errors -}}
{{- end -}}
{{- end -}}
{{- if not $anyLevel -}}
{{- $errors = append $errors "levels: enable at least one level" -}}
{{- end -}}
{{- $etcd := .Values.etcd -}}
{{- if and $etcd.embedded.enabled $etcd.endpoints -}}
{{- $errors = append $errors "etcd: set either etcd.endpoints or etcd.embedded.enabled, not both" -}}
{{- end -}}
{{- if and (not $etcd.embedded.enabled) (not $etcd.endpoints) -}}
{{- $errors = append $errors "etcd: no etcd: set etcd.endpoints or etcd.embedded.enabled=true" -}}
{{- end -}}
{{- if and $etcd.embedded.enabled (eq (mod (int $etcd.embedded.replicas) 2) 0) -}}
{{- $errors = append $errors (printf "etcd.embedded.replicas=%v: an etcd cluster needs an odd member count" $etcd.embedded.replicas) -}}
{{- end -}}
{{- $rd := .Values.referenceData -}}
{{- if and (eq $rd.source "persistentVolumeClaim") (not $rd.persistentVolumeClaim.claimName) -}}
{{- $errors = append $errors "referenceData: source persistentVolumeClaim needs persistentVolumeClaim.claimName" -}}
{{- end -}}
{{- if and (eq $rd.source "hostPath") (not $rd.hostPath.path) -}}
{{- $errors = append $errors "referenceData: source hostPath needs hostPath.path" -}}
{{- end -}}
{{- $sec := .Values.security -}}
{{- if and (not $sec.insecure) (or (not $sec.tlsSecretName) (not $sec.authSecretName)) -}}
{{- $errors = append $errors "security: insecure=false needs security.tlsSecretName and security.authSecretName" -}}
{{- end -}}
{{- /* Each pod's ports must differ: every enabled level's own (levelDefaults overlaid with the
level's grpcPort/metricsPort), the catalogue's, and with TLS the health port all of them share. */ -}}
{{- $portSets := list -}}
{{- range $level := list "province" "city" "county" "township" "village" -}}
{{- $own := get $.Values.levels $level -}}
{{- if and $own $own.enabled -}}
{{- $cfg := include "stockpile.levelConfig" (dict "root" $ "level" $level) | fromYaml -}}
{{- $portSets = append $portSets (dict "where" (printf "levels.%s" $level) "grpc" (int $cfg.grpcPort) "metrics" (int $cfg.metricsPort)) -}}
{{- end -}}
{{- end -}}
{{- if .Values.catalogue.enabled -}}
{{- $portSets = append $portSets (dict "where" "catalogue" "grpc" (int .Values.catalogue.grpcPort) "metrics" (int .Values.catalogue.metricsPort)) -}}
{{- end -}}
{{- range $p := $portSets -}}
{{- if eq $p.grpc $p.metrics -}}
{{- $errors = append $errors (printf "%s: grpcPort and metricsPort are both %d" $p.where $p.grpc) -}}
{{- end -}}
{{- if and (not $sec.insecure) (eq (int $sec.healthPort) $p.grpc) -}}
{{- $errors = append $errors (printf "%s: grpcPort %d collides with security.healthPort" $p.where $p.grpc) -}}
{{- end -}}
{{- if and (not $sec.insecure) (eq (int $sec.healthPort) $p.metrics) -}}
{{- $errors = append $errors (printf "%s: metricsPort %d collides with security.healthPort" $p.where $p.metrics) -}}
{{- end -}}
{{- end -}}
{{- if $errors -}}
{{- fail (printf "\n\nstockpile: invalid values:\n  - %s" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}

{{/* Returns YAML {errors: [...]} for one level: shard names, prefixes, and no overlap. */}}
{{- define "stockpile.validateLevel" -}}
{{- $errors := list -}}
{{- $maxLen := int (include "stockpile.levelCodeLength" .level) -}}
{{- $names := dict -}}
{{- $owner := dict -}}
{{- if not .cfg.shards -}}
{{- $errors = append $errors (printf "levels.%s: enabled but has no shards" .level) -}}
{{- end -}}
{{- range $shard := .cfg.shards -}}
{{- $where := printf "levels.%s.shards[%s]" $.level (toString $shard.name) -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$" (toString $shard.name)) -}}
{{- $errors = append $errors (printf "%s: name must be a DNS label of at most 15 characters" $where) -}}
{{- end -}}
{{- $sts := printf "%s-level-%s-%s" $.fullname $.level (toString $shard.name) -}}
{{- if gt (len $sts) 52 -}}
{{- $errors = append $errors (printf "%s: StatefulSet name %s has %d characters, over the 52 Kubernetes allows (its pods' controller-revision-hash label, <name>-<hash>, must fit in 63): shorten the shard name, the release name or fullnameOverride" $where $sts (len $sts)) -}}
{{- end -}}
{{- if hasKey $names (toString $shard.name) -}}
{{- $errors = append $errors (printf "%s: duplicate shard name" $where) -}}
{{- end -}}
{{- $_ := set $names (toString $shard.name) true -}}
{{- if not $shard.regions -}}
{{- $errors = append $errors (printf "%s: no regions" $where) -}}
{{- end -}}
{{- range $prefix := $shard.regions -}}
{{- $p := toString $prefix -}}
{{- if or (not (regexMatch "^[0-9]+$" $p)) (gt (len $p) $maxLen) -}}
{{- $errors = append $errors (printf "%s: region prefix %q must be 1-%d digits" $where $p $maxLen) -}}
{{- end -}}
{{- range $other, $otherShard := $owner -}}
{{- if or (hasPrefix $other $p) (hasPrefix $p $other) -}}
{{- $errors = append $errors (printf "%s: region prefix %q overlaps %q of shard %s (one writer per warehouse)" $where $p $other $otherShard) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $owner $p (toString $shard.name) -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "errors" $errors) -}}
{{- end -}}
