#!/usr/bin/env node
// Validates chart values against values.schema.json the way Helm does: the chart's values.yaml
// with each given file merged over it (maps key by key, null deletes), then JSON Schema draft-07.
// Usage: node check_values.js CHART_DIR [values-file...]
'use strict';
const fs = require('fs');
const path = require('path');
const YAML = require('yaml');
const Ajv = require('ajv');

function merge(dst, src) {
  for (const [k, v] of Object.entries(src || {})) {
    if (v === null) delete dst[k];
    else if (isMap(v) && isMap(dst[k])) merge(dst[k], v);
    else dst[k] = v;
  }
  return dst;
}
const isMap = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const load = (file) => YAML.parse(fs.readFileSync(file, 'utf8'), { uniqueKeys: true }) || {};

function main() {
  const [chartDir, ...overlays] = process.argv.slice(2);
  if (!chartDir) {
    console.error('usage: check_values.js CHART_DIR [values-file...]');
    process.exit(2);
  }
  const schema = JSON.parse(fs.readFileSync(path.join(chartDir, 'values.schema.json'), 'utf8'));
  const values = overlays.reduce((acc, f) => merge(acc, load(f)), load(path.join(chartDir, 'values.yaml')));
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  const validate = ajv.compile(schema);
  const label = overlays.length ? overlays.join(' + ') : 'values.yaml';
  if (!validate(values)) {
    for (const e of validate.errors) {
      console.error(`check_values: ${label}: ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
    }
    process.exit(1);
  }
  console.log(`check_values: ${label}: OK`);
}

main();
