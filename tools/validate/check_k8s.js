#!/usr/bin/env node
// Checks Kubernetes manifests offline. Every object is validated against the API schemas of
// the npm package kubernetes-models (Kubernetes 1.27); the Prometheus Operator's ServiceMonitor
// and PrometheusRule are checked structurally here. On top, the conventions of our chart:
// unique objects, selectors that match their pod templates, StatefulSets with a headless
// Service, hardened pods with resources and probes, NetworkPolicy ports that exist.
// Usage: node check_k8s.js FILE.yaml...   ("-" reads standard input)
'use strict';
const fs = require('fs');
const YAML = require('yaml');

const failures = [];
let source = '';
const fail = (obj, msg) => failures.push(`${source}: ${obj ? `${obj.kind}/${obj.metadata && obj.metadata.name}: ` : ''}${msg}`);

function modelFor(apiVersion, kind) {
  const dir = apiVersion.includes('/') ? apiVersion : `v1`;
  try {
    return require(`kubernetes-models/${dir}/${kind}`)[kind];
  } catch (e) {
    return null;
  }
}

function checkSchema(obj) {
  if (obj.apiVersion === 'monitoring.coreos.com/v1') return checkOperatorObject(obj);
  const Model = modelFor(obj.apiVersion, obj.kind);
  if (!Model) return fail(obj, `no schema for ${obj.apiVersion} ${obj.kind}`);
  try {
    new Model(obj).validate();
  } catch (e) {
    const details = (e.errors || []).map((x) => `${x.instancePath} ${x.message}`).join('; ');
    fail(obj, `schema: ${details || e.message}`);
  }
}

function checkOperatorObject(obj) {
  const spec = obj.spec || {};
  if (obj.kind === 'ServiceMonitor') {
    if (!spec.selector || typeof spec.selector !== 'object') fail(obj, 'spec.selector missing');
    if (!Array.isArray(spec.endpoints) || spec.endpoints.length === 0) fail(obj, 'spec.endpoints empty');
    for (const ep of spec.endpoints || []) {
      if (!ep.port && !ep.targetPort) fail(obj, 'endpoint without port');
      for (const r of ep.relabelings || []) {
        if (!r.targetLabel && r.action !== 'drop' && r.action !== 'keep') fail(obj, 'relabeling without targetLabel');
      }
    }
  } else if (obj.kind === 'PrometheusRule') {
    if (!Array.isArray(spec.groups) || spec.groups.length === 0) fail(obj, 'spec.groups empty');
    for (const g of spec.groups || []) {
      if (!g.name || !Array.isArray(g.rules)) fail(obj, 'group without name or rules');
      for (const r of g.rules || []) {
        if (!!r.alert === !!r.record) fail(obj, `rule in ${g.name} must have exactly one of alert/record`);
        if (typeof r.expr !== 'string' || !r.expr.trim()) fail(obj, `rule ${r.alert || r.record}: empty expr`);
        if (r.alert && !(r.labels && r.labels.severity)) fail(obj, `alert ${r.alert}: no severity label`);
      }
    }
  } else {
    fail(obj, `unknown monitoring.coreos.com kind ${obj.kind}`);
  }
}

const matches = (selector, labels) => Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v);

function podSpecOf(obj) {
  return ['StatefulSet', 'Deployment', 'DaemonSet'].includes(obj.kind) ? obj.spec.template.spec : null;
}

function checkWorkload(obj, all) {
  const spec = obj.spec;
  const podLabels = spec.template.metadata.labels;
  if (!matches(spec.selector.matchLabels, podLabels)) fail(obj, 'selector does not match the pod template labels');
  if (obj.kind === 'StatefulSet') {
    const svc = all.find((o) => o.kind === 'Service' && o.metadata.name === spec.serviceName);
    if (!svc) fail(obj, `serviceName ${spec.serviceName} names no Service`);
    else if (svc.spec.clusterIP !== 'None') fail(obj, `Service ${spec.serviceName} is not headless`);
    else if (!matches(svc.spec.selector, podLabels)) fail(obj, `Service ${spec.serviceName} does not select its pods`);
  }
  checkPodHardening(obj, podSpecOf(obj), (spec.volumeClaimTemplates || []).map((v) => v.metadata.name), true);
}

// Non-root, seccomp, read-only root, no capabilities, resources, mounts with volumes; servers
// (not jobs) also need gRPC probes.
function checkPodHardening(obj, pod, claimNames, serves) {
  const psc = pod.securityContext || {};
  if (psc.runAsNonRoot !== true) fail(obj, 'pod securityContext.runAsNonRoot must be true');
  if (!psc.seccompProfile || psc.seccompProfile.type !== 'RuntimeDefault') fail(obj, 'seccompProfile must be RuntimeDefault');
  const volumes = new Set([...(pod.volumes || []).map((v) => v.name), ...claimNames]);
  for (const c of pod.containers) {
    const where = `container ${c.name}`;
    const sc = c.securityContext || {};
    if (sc.readOnlyRootFilesystem !== true) fail(obj, `${where}: readOnlyRootFilesystem must be true`);
    if (sc.allowPrivilegeEscalation !== false) fail(obj, `${where}: allowPrivilegeEscalation must be false`);
    if (!(sc.capabilities && (sc.capabilities.drop || []).includes('ALL'))) fail(obj, `${where}: must drop ALL capabilities`);
    if (!(c.resources && c.resources.requests && c.resources.limits)) fail(obj, `${where}: resources.requests and limits needed`);
    if (serves && (!c.readinessProbe || !c.livenessProbe)) fail(obj, `${where}: readiness and liveness probes needed`);
    if (serves && /^stockpile/.test(c.command ? c.command[0] : '') && !(c.readinessProbe && c.readinessProbe.grpc)) {
      fail(obj, `${where}: Stockpile containers use gRPC health probes`);
    }
    for (const m of c.volumeMounts || []) if (!volumes.has(m.name)) fail(obj, `${where}: mount ${m.name} has no volume`);
  }
}

// A stockctl CronJob: a hardened pod whose --server names a StatefulSet pod through that
// StatefulSet's headless Service, and which every NetworkPolicy guarding that pod admits.
function checkCronJob(obj, all) {
  const template = obj.spec.jobTemplate.spec.template;
  checkPodHardening(obj, template.spec, [], false);
  for (const c of template.spec.containers) {
    const server = (c.args || []).find((a) => a.startsWith('--server='));
    if (!server) continue;
    const m = /^--server=([^.]+)-(\d+)\.([^.]+)\./.exec(server);
    const sts = m && all.find((o) => o.kind === 'StatefulSet' && o.metadata.name === m[1]);
    if (!sts || sts.spec.serviceName !== m[3] || Number(m[2]) >= (sts.spec.replicas || 1)) {
      fail(obj, `container ${c.name}: ${server} names no pod of a StatefulSet through its Service`);
      continue;
    }
    const podLabels = sts.spec.template.metadata.labels;
    for (const np of all.filter((o) => o.kind === 'NetworkPolicy' && matches(o.spec.podSelector.matchLabels, podLabels))) {
      const admitted = (np.spec.ingress || []).some((rule) => (rule.from || []).some((peer) =>
        peer.podSelector && !peer.namespaceSelector && matches(peer.podSelector.matchLabels, template.metadata.labels)));
      if (!admitted) fail(obj, `NetworkPolicy ${np.metadata.name} does not admit its pods to ${m[1]}`);
    }
  }
}

function checkNetworkPolicy(obj, all) {
  const pods = all.filter(podSpecOf).filter((w) => matches(obj.spec.podSelector.matchLabels, w.spec.template.metadata.labels));
  if (pods.length === 0) fail(obj, 'podSelector selects no workload');
  const named = new Set(pods.flatMap((w) => podSpecOf(w).containers.flatMap((c) => (c.ports || []).map((p) => p.name))));
  const numbers = new Set(pods.flatMap((w) => podSpecOf(w).containers.flatMap((c) => (c.ports || []).map((p) => p.containerPort))));
  for (const rule of obj.spec.ingress || []) {
    for (const p of rule.ports || []) {
      if (!(named.has(p.port) || numbers.has(p.port))) fail(obj, `port ${p.port} is not a port of the selected pods`);
    }
  }
}

function checkServiceSelects(obj, all) {
  if (!obj.spec.selector) return;
  const pods = all.filter(podSpecOf).filter((w) => matches(obj.spec.selector, w.spec.template.metadata.labels));
  if (pods.length === 0) fail(obj, 'selector selects no workload');
  const named = new Set(pods.flatMap((w) => podSpecOf(w).containers.flatMap((c) => (c.ports || []).map((p) => p.name))));
  for (const p of obj.spec.ports || []) {
    if (typeof p.targetPort === 'string' && !named.has(p.targetPort)) fail(obj, `targetPort ${p.targetPort} not found`);
  }
}

// The ConfigMap's shards.yaml: each shard's address is <pod>.<headless Service>.<ns>.svc (the
// only form the certificate's *.<release>-level-<level>.<ns>.svc SAN covers) on the port the
// pod listens on, and the same name the pod advertises where it advertises its DNS name.
function checkShardLayout(obj, all) {
  let layout;
  try {
    layout = YAML.parse(obj.data['shards.yaml']) || {};
  } catch (e) {
    return fail(obj, `shards.yaml: ${e.message}`);
  }
  for (const [level, shards] of Object.entries(layout)) {
    for (const [shard, entry] of Object.entries(shards || {})) {
      const where = `shards.yaml ${level}/${shard}`;
      const address = String((entry && entry.service) || '');
      const m = /^(([^.]+)-(\d+))\.([^.]+)\.([^.]+)\.svc:(\d+)$/.exec(address);
      if (!m) {
        fail(obj, `${where}: service "${address}" is not <pod>.<service>.<namespace>.svc:<port>`);
        continue;
      }
      const [, pod, stsName, ordinal, service, namespace, port] = m;
      const sts = all.find((o) => o.kind === 'StatefulSet' && o.metadata.name === stsName);
      if (!sts || sts.spec.serviceName !== service || Number(ordinal) >= (sts.spec.replicas || 1)) {
        fail(obj, `${where}: ${address} names no pod of a StatefulSet through its Service`);
        continue;
      }
      const args = sts.spec.template.spec.containers[0].args || [];
      const listen = args.find((a) => a.startsWith('--listen='));
      if (!listen || listen.split(':').pop() !== port) {
        fail(obj, `${where}: ${address} is not on the pod's gRPC port (${listen})`);
      }
      const advertise = args.find((a) => a.startsWith('--advertise='));
      if (advertise && advertise.includes('$(POD_NAME)')) {
        const advertised = advertise.slice('--advertise='.length)
          .replace('$(POD_NAME)', pod).replace('$(POD_NAMESPACE)', namespace);
        if (advertised !== address) fail(obj, `${where}: ${address} differs from the pod's ${advertise}`);
      }
    }
  }
}

function checkFile(file) {
  source = file;
  const text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  const docs = YAML.parseAllDocuments(text, { uniqueKeys: true });
  const all = [];
  for (const doc of docs) {
    if (doc.errors.length) {
      for (const e of doc.errors) fail(null, `YAML: ${e.message}`);
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue;
    if (!obj.apiVersion || !obj.kind || !obj.metadata || !obj.metadata.name) {
      fail(null, `document without apiVersion/kind/metadata.name: ${JSON.stringify(obj).slice(0, 80)}`);
      continue;
    }
    all.push(obj);
  }
  const seen = new Set();
  for (const obj of all) {
    const key = `${obj.kind}/${obj.metadata.namespace || ''}/${obj.metadata.name}`;
    if (seen.has(key)) fail(obj, 'defined twice');
    seen.add(key);
    // CronJob: the API's limit (its Jobs add 11 characters). StatefulSet: its pods carry
    // controller-revision-hash=<name>-<hash>, a label value of at most 63 characters.
    if (['CronJob', 'StatefulSet'].includes(obj.kind) && obj.metadata.name.length > 52) {
      fail(obj, `name has ${obj.metadata.name.length} characters, over 52`);
    }
    checkSchema(obj);
    if (podSpecOf(obj)) checkWorkload(obj, all);
    if (obj.kind === 'CronJob') checkCronJob(obj, all);
    if (obj.kind === 'ConfigMap' && obj.data && obj.data['shards.yaml']) checkShardLayout(obj, all);
    if (obj.kind === 'NetworkPolicy') checkNetworkPolicy(obj, all);
    if (obj.kind === 'Service') checkServiceSelects(obj, all);
    if (obj.kind === 'PodDisruptionBudget' && !all.some((w) => podSpecOf(w) && matches(obj.spec.selector.matchLabels, w.spec.template.metadata.labels))) {
      fail(obj, 'selector selects no workload');
    }
  }
  return all.length;
}

function main() {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error('usage: check_k8s.js FILE.yaml...');
    process.exit(2);
  }
  const counts = files.map((f) => `${f}: ${checkFile(f)} objects`);
  if (failures.length) {
    for (const f of failures) console.error(`check_k8s: ${f}`);
    process.exit(1);
  }
  for (const c of counts) console.log(`check_k8s: ${c} OK`);
}

main();
