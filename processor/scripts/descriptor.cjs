/**
 * Compiles the ext_proc and grpc.health.v1 protos into one protobufjs JSON descriptor. Used by the build
 * (which writes it to generated/) and, in development only, by src/grpc/descriptor.ts when the generated
 * file is missing.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ENTRY_FILES = ['envoy/service/ext_proc/v3/external_processor.proto'];

function includeDirs() {
  const xdsDeps = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')) + '/deps';
  const protobufjsRoot = path.dirname(require.resolve('protobufjs/package.json'));
  return [
    ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((dir) => path.join(xdsDeps, dir)),
    protobufjsRoot,
  ];
}

function buildDescriptor() {
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
  root.loadSync([...ENTRY_FILES, path.join(__dirname, '..', 'proto', 'health.proto')], { keepCase: false });
  root.resolveAll();
  return root.toJSON();
}

module.exports = { buildDescriptor };
