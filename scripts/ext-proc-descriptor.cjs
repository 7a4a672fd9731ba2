#!/usr/bin/env node
/**
 * Compiles Envoy's ext_proc service protos into one protobufjs JSON descriptor for the local data plane's ext_proc
 * filter, with the processor's proto compiler (processor/scripts/descriptor.cjs) given only the ext_proc entry.
 * `npm run build` runs this file to write build/lib/dataplane/ext-proc/descriptor.json next to the compiled filter;
 * without that file (tests, tsx) lib/dataplane/ext-proc/protocol.ts calls `buildExtProcDescriptor()` at load time.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { buildDescriptor, EXT_PROC_PROTO } = require('../processor/scripts/descriptor.cjs');

const OUTPUT = path.join(__dirname, '..', 'build', 'lib', 'dataplane', 'ext-proc', 'descriptor.json');

function buildExtProcDescriptor() {
  return buildDescriptor([EXT_PROC_PROTO]);
}

if (require.main === module) {
  fs.mkdirSync(path.dirname(OUTPUT), { recursive: true });
  fs.writeFileSync(OUTPUT, JSON.stringify(buildExtProcDescriptor()));
  process.stdout.write(`wrote ${path.relative(process.cwd(), OUTPUT)}\n`);
}

module.exports = { buildExtProcDescriptor };
