#!/usr/bin/env node
// Checks Prometheus rule files beyond what promtool does: every series an expression uses is
// one Stockpile exposes (catches typos promtool cannot), every alert has a severity label and
// summary/description annotations. With --from-prometheusrule FILE OUT, it instead writes the
// groups of the PrometheusRule objects in a rendered manifest to OUT for `promtool check rules`.
// Usage: node check_rules.js RULES.yml... | node check_rules.js --from-prometheusrule IN OUT
'use strict';
const fs = require('fs');
const YAML = require('yaml');
const { KNOWN_METRICS, metricNamesIn } = require('./metrics');

function extract(input, output) {
  const groups = YAML.parseAllDocuments(fs.readFileSync(input, 'utf8')).map((d) => d.toJS())
    .filter((o) => o && o.kind === 'PrometheusRule').flatMap((o) => o.spec.groups);
  if (groups.length === 0) {
    console.error(`check_rules: no PrometheusRule in ${input}`);
    process.exit(1);
  }
  fs.writeFileSync(output, YAML.stringify({ groups }));
}

function check(files) {
  const failures = [];
  let alerts = 0;
  for (const file of files) {
    const doc = YAML.parse(fs.readFileSync(file, 'utf8'), { uniqueKeys: true });
    for (const group of doc.groups || []) {
      for (const rule of group.rules || []) {
        const name = rule.alert || rule.record;
        for (const m of metricNamesIn(String(rule.expr))) {
          if (!KNOWN_METRICS.has(m)) failures.push(`${file}: ${name}: unknown metric ${m}`);
        }
        if (!rule.alert) continue;
        alerts += 1;
        if (!['critical', 'warning', 'info'].includes((rule.labels || {}).severity)) {
          failures.push(`${file}: ${name}: severity must be critical, warning or info`);
        }
        for (const a of ['summary', 'description']) {
          if (!(rule.annotations || {})[a]) failures.push(`${file}: ${name}: no ${a} annotation`);
        }
      }
    }
  }
  if (failures.length) {
    failures.forEach((f) => console.error(`check_rules: ${f}`));
    process.exit(1);
  }
  console.log(`check_rules: ${files.join(' ')}: OK (${alerts} alerts)`);
}

const args = process.argv.slice(2);
if (args[0] === '--from-prometheusrule') extract(args[1], args[2]);
else check(args);
