#!/usr/bin/env node
// Generates deploy/k8s (plain manifests + kustomization) from the Helm chart rendered with
// testdata/values-k8s.yaml, so the two never drift: the validation regenerates into a temp dir
// and fails on any difference. Helm's bookkeeping (helm.sh/chart, managed-by, config checksums,
// the release namespace) is dropped; kustomize sets the namespace.
// Usage: node gen_k8s.js RENDERED.yaml OUT_DIR
'use strict';
const fs = require('fs');
const path = require('path');
const YAML = require('yaml');

const HEADER = '# Generated from helm/stockpile by tools/validate/gen_k8s.js (default values). Do not edit:\n' +
  '# change the chart, then run `bash tools/validate/validate_deploy.sh --regenerate-k8s`.\n';

// Which file each object goes to; monitoring objects need the Prometheus Operator's CRDs.
function fileFor(obj) {
  const component = (obj.metadata.labels || {})['app.kubernetes.io/component'];
  if (obj.apiVersion === 'monitoring.coreos.com/v1') return 'monitoring/monitoring.yaml';
  if (obj.kind === 'NetworkPolicy' || obj.kind === 'PodDisruptionBudget') return 'policies.yaml';
  if (obj.kind === 'ConfigMap' && obj.metadata.name.endsWith('-dashboard')) return 'grafana-dashboard.yaml';
  if (component) return `${component}.yaml`;
  return 'common.yaml';
}

function stripHelm(node) {
  if (Array.isArray(node)) return node.forEach(stripHelm);
  if (!node || typeof node !== 'object') return;
  for (const key of ['labels', 'annotations']) {
    const map = node[key];
    if (map && typeof map === 'object' && !Array.isArray(map)) {
      delete map['helm.sh/chart'];
      delete map['app.kubernetes.io/managed-by'];
      delete map['checksum/config'];
      if (Object.keys(map).length === 0) delete node[key];
    }
  }
  Object.values(node).forEach(stripHelm);
}

function main() {
  const [rendered, outDir] = process.argv.slice(2);
  const docs = YAML.parseAllDocuments(fs.readFileSync(rendered, 'utf8')).map((d) => d.toJS()).filter(Boolean);
  const files = {};
  for (const obj of docs) {
    delete obj.metadata.namespace;
    stripHelm(obj);
    (files[fileFor(obj)] = files[fileFor(obj)] || []).push(obj);
  }
  fs.mkdirSync(path.join(outDir, 'monitoring'), { recursive: true });
  for (const [name, objs] of Object.entries(files)) {
    const body = objs.map((o) => YAML.stringify(o, { lineWidth: 0 })).join('---\n');
    fs.writeFileSync(path.join(outDir, name), HEADER + body);
  }
  const main = Object.keys(files).filter((f) => !f.startsWith('monitoring/')).sort();
  fs.writeFileSync(path.join(outDir, 'kustomization.yaml'), HEADER + YAML.stringify({
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    namespace: 'stockpile',
    resources: main,
  }));
  fs.writeFileSync(path.join(outDir, 'monitoring', 'kustomization.yaml'), HEADER +
    '# Apply only where the Prometheus Operator CRDs (ServiceMonitor, PrometheusRule) exist.\n' +
    YAML.stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      namespace: 'stockpile',
      resources: ['monitoring.yaml'],
    }));
  console.log(`gen_k8s: wrote ${Object.keys(files).length} manifest files to ${outDir}`);
}

main();
