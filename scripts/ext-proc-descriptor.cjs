#!/usr/bin/env node
/**
 * Compiles Envoy's ext_proc service protos (from @grpc/grpc-js-xds, a dev dependency) into one protobufjs JSON
 * descriptor for the local data plane's ext_proc filter. `npm run build` runs this file to write
 * build/lib/dataplane/ext-proc/descriptor.json next to the compiled filter; without that file (tests, tsx)
 * lib/dataplane/ext-proc/protocol.ts calls `buildExtProcDescriptor()` at load time instead.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ENTRY = 'envoy/service/ext_proc/v3/external_processor.proto';
const OUTPUT = path.join(__dirname, '..', 'build', 'lib', 'dataplane', 'ext-proc', 'descriptor.json');

function includeDirs() {
  const deps = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  const protobufjsRoot = path.dirname(require.resolve('protobufjs/package.json'));
  return [...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((dir) => path.join(deps, dir)), protobufjsRoot];
}

function buildExtProcDescriptor() {
  const protobuf = require('protobufjs');
  const dirs = includeDirs();
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (path.isAbsolute(target)) return target;
    for (const dir of dirs) {
      const candidate = path.join(dir, target);
      if (fs.existsSync(candidate)) return candidate;
    }
    return target;
  };
  root.loadSync(ENTRY, { keepCase: false });
  root.resolveAll();
  return root.toJSON();
}

if (require.main === module) {
  fs.mkdirSync(path.dirname(OUTPUT), { recursive: true });
  fs.writeFileSync(OUTPUT, JSON.stringify(buildExtProcDescriptor()));
  process.stdout.write(`wrote ${path.relative(process.cwd(), OUTPUT)}\n`);
}

module.exports = { buildExtProcDescriptor };
