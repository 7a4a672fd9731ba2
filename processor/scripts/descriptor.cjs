/**
 * Compiles protos into one protobufjs JSON descriptor, resolving imports against Envoy's API protos (shipped in
 * @grpc/grpc-js-xds) and protobufjs' own google/protobuf files. By default the ext_proc and grpc.health.v1 protos:
 * used by the build (which writes them to generated/) and, in development only, by src/grpc/descriptor.ts when the
 * generated file is missing. The library's scripts/ext-proc-descriptor.cjs passes its own entry files.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const EXT_PROC_PROTO = 'envoy/service/ext_proc/v3/external_processor.proto';
const PROCESSOR_ENTRY_FILES = [EXT_PROC_PROTO, path.join(__dirname, '..', 'proto', 'health.proto')];

function includeDirs() {
  const xdsDeps = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  const protobufjsRoot = path.dirname(require.resolve('protobufjs/package.json'));
  return [
    ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((dir) => path.join(xdsDeps, dir)),
    protobufjsRoot,
  ];
}

/** `entryFiles`: absolute paths, or paths relative to the include directories. */
function buildDescriptor(entryFiles = PROCESSOR_ENTRY_FILES) {
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
  root.loadSync(entryFiles, { keepCase: false });
  root.resolveAll();
  return root.toJSON();
}

module.exports = { buildDescriptor, EXT_PROC_PROTO };
