#!/usr/bin/env node
// Checks a Grafana 10 dashboard JSON for what an import needs and what our conventions add:
// schemaVersion ~38, a datasource variable used by every panel and target, unique panel ids,
// sane grid positions, defined template variables, only known metric names, and PromQL that
// parses (each expression is handed to `promtool check rules` inside a throwaway rule file).
// Usage: node check_grafana.js deploy/grafana/stockpile.json
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const YAML = require('yaml');
const { KNOWN_METRICS, metricNamesIn } = require('./metrics');

const failures = [];
const fail = (msg) => failures.push(msg);

function checkVariables(dash) {
  const vars = (dash.templating && dash.templating.list) || [];
  const ds = vars.find((v) => v.name === 'datasource');
  if (!ds || ds.type !== 'datasource' || ds.query !== 'prometheus') {
    fail('templating needs a variable "datasource" of type datasource with query "prometheus"');
  }
  for (const v of vars) {
    if (v.type === 'query' && (!v.datasource || v.datasource.uid !== '${datasource}')) {
      fail(`variable ${v.name}: its datasource must be \${datasource}`);
    }
  }
  return new Set(vars.map((v) => v.name));
}

function allPanels(dash) {
  const out = [];
  for (const p of dash.panels || []) {
    out.push(p);
    for (const inner of p.panels || []) out.push(inner); // collapsed rows nest their panels
  }
  return out;
}

function checkPanel(p, ids, varNames, exprs) {
  const where = `panel ${p.id} "${p.title}"`;
  if (!Number.isInteger(p.id)) fail(`${where}: id must be an integer`);
  if (ids.has(p.id)) fail(`${where}: duplicate panel id`);
  ids.add(p.id);
  const g = p.gridPos || {};
  if (![g.x, g.y, g.w, g.h].every(Number.isInteger) || g.x < 0 || g.w < 1 || g.x + g.w > 24) {
    fail(`${where}: gridPos ${JSON.stringify(g)} does not fit the 24-column grid`);
  }
  if (p.type === 'row') return;
  if (!p.title) fail(`panel ${p.id}: no title`);
  if (!p.datasource || p.datasource.uid !== '${datasource}') fail(`${where}: datasource must be \${datasource}`);
  const targets = p.targets || [];
  if (targets.length === 0) fail(`${where}: no targets`);
  const refIds = new Set();
  for (const t of targets) {
    if (!t.datasource || t.datasource.uid !== '${datasource}') {
      fail(`${where} target ${t.refId}: datasource must be \${datasource}`);
    }
    if (refIds.has(t.refId)) fail(`${where}: duplicate refId ${t.refId}`);
    refIds.add(t.refId);
    if (typeof t.expr !== 'string' || !t.expr.trim()) fail(`${where} target ${t.refId}: empty expr`);
    for (const m of t.expr.matchAll(/\$\{?(\w+)/g)) {
      if (!m[1].startsWith('__') && !varNames.has(m[1])) fail(`${where}: undefined variable $${m[1]}`);
    }
    for (const name of metricNamesIn(t.expr)) {
      if (!KNOWN_METRICS.has(name)) fail(`${where}: unknown metric ${name}`);
    }
    exprs.push({ where: `${where} ${t.refId}`, expr: t.expr });
  }
}

// Replaces Grafana's variables by values Prometheus accepts, then lets promtool parse them all.
function checkPromQL(exprs) {
  const which = spawnSync('promtool', ['--version']);
  if (which.error) {
    console.log('check_grafana: promtool not found, PromQL syntax not checked');
    return;
  }
  const rules = exprs.map((e, i) => ({
    record: `dashboard:expr_${i}`,
    expr: e.expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m').replace(/\$\{?\w+\}?/g, '.*'),
  }));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grafana-check-'));
  const file = path.join(dir, 'exprs.yml');
  fs.writeFileSync(file, YAML.stringify({ groups: [{ name: 'dashboard', rules }] }));
  const res = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
  if (res.status !== 0) fail(`PromQL does not parse:\n${res.stdout}${res.stderr}`);
  fs.rmSync(dir, { recursive: true, force: true });
}

function main() {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: check_grafana.js DASHBOARD.json');
    process.exit(2);
  }
  let dash;
  try {
    dash = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    console.error(`check_grafana: ${file}: ${e.message}`);
    process.exit(1);
  }
  if (!(dash.schemaVersion >= 36 && dash.schemaVersion <= 39)) {
    fail(`schemaVersion ${dash.schemaVersion}: Grafana 10 writes 36-39`);
  }
  for (const key of ['uid', 'title']) if (!dash[key]) fail(`dashboard has no ${key}`);
  if (dash.id !== null && dash.id !== undefined) fail('dashboard id must be null for import');
  const varNames = checkVariables(dash);
  const ids = new Set();
  const exprs = [];
  const panels = allPanels(dash);
  for (const p of panels) checkPanel(p, ids, varNames, exprs);
  checkPromQL(exprs);
  if (failures.length) {
    for (const f of failures) console.error(`check_grafana: ${file}: ${f}`);
    process.exit(1);
  }
  console.log(`check_grafana: ${file}: OK (${panels.length} panels, ${exprs.length} queries)`);
}

main();
