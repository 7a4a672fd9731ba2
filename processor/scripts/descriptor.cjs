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
  addFullDuplexMessages(protobuf, root);
  root.resolveAll();
  return root.toJSON();
}

/**
 * The protos shipped with @grpc/grpc-js-xds predate Envoy's FULL_DUPLEX_STREAMED body mode (Envoy 1.34). Its parts
 * of envoy/service/ext_proc/v3/external_processor.proto and processing_mode.proto are added here, with Envoy's field
 * numbers: `ProcessingRequest.protocol_config` (11, sent in the first message of a stream), `ProtocolConfiguration`,
 * `BodySendMode.FULL_DUPLEX_STREAMED` (4) and `BodyMutation.streamed_response` (3). Left as they are when the
 * loaded protos already have them.
 */
function addFullDuplexMessages(protobuf, root) {
  const extProc = root.lookup('envoy.service.ext_proc.v3');
  if (!extProc) return;
  const mode = root.lookupEnum('envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode');
  if (mode.values.FULL_DUPLEX_STREAMED === undefined) mode.add('FULL_DUPLEX_STREAMED', 4);
  const modeType = '.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode';
  // fromJSON: proto3 types, like the file they belong to.
  if (!extProc.get('ProtocolConfiguration')) {
    extProc.add(
      protobuf.Type.fromJSON('ProtocolConfiguration', {
        fields: {
          requestBodyMode: { type: modeType, id: 1 },
          responseBodyMode: { type: modeType, id: 2 },
          sendBodyWithoutWaitingForHeaderResponse: { type: 'bool', id: 3 },
        },
      }),
    );
  }
  const request = root.lookupType('envoy.service.ext_proc.v3.ProcessingRequest');
  if (!request.fields.protocolConfig) request.add(new protobuf.Field('protocolConfig', 11, 'ProtocolConfiguration'));
  if (!extProc.get('StreamedBodyResponse')) {
    extProc.add(
      protobuf.Type.fromJSON('StreamedBodyResponse', {
        fields: { body: { type: 'bytes', id: 1 }, endOfStream: { type: 'bool', id: 2 } },
      }),
    );
  }
  const bodyMutation = root.lookupType('envoy.service.ext_proc.v3.BodyMutation');
  if (!bodyMutation.fields.streamedResponse) {
    const field = new protobuf.Field('streamedResponse', 3, 'StreamedBodyResponse');
    bodyMutation.add(field);
    bodyMutation.oneofs.mutation.add(field);
  }
}

module.exports = { buildDescriptor, EXT_PROC_PROTO };
