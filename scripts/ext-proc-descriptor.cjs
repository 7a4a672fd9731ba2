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
  return withFullDuplexFields(buildDescriptor([EXT_PROC_PROTO]));
}

/**
 * The protos in @grpc/grpc-js-xds predate Envoy 1.34's FULL_DUPLEX_STREAMED support; the fields Envoy added for it
 * (numbers from envoy/service/ext_proc/v3/external_processor.proto and
 * envoy/extensions/filters/http/ext_proc/v3/processing_mode.proto) are added to the compiled descriptor here, each
 * only where it is missing, so newer protos need no change.
 */
function withFullDuplexFields(descriptor) {
  const service = descriptor.nested.envoy.nested.service.nested.ext_proc.nested.v3.nested;
  const mode = descriptor.nested.envoy.nested.extensions.nested.filters.nested.http.nested.ext_proc.nested.v3.nested;
  const bodySendMode = mode.ProcessingMode.nested.BodySendMode.values;
  bodySendMode.FULL_DUPLEX_STREAMED ??= 4;
  bodySendMode.GRPC ??= 5;
  const modeType = 'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode';
  service.ProtocolConfiguration ??= {
    fields: {
      requestBodyMode: { type: modeType, id: 1 },
      responseBodyMode: { type: modeType, id: 2 },
      sendBodyWithoutWaitingForHeaderResponse: { type: 'bool', id: 3 },
    },
  };
  service.ProcessingRequest.fields.protocolConfig ??= { type: 'ProtocolConfiguration', id: 11 };
  service.StreamedBodyResponse ??= {
    fields: { body: { type: 'bytes', id: 1 }, endOfStream: { type: 'bool', id: 2 } },
  };
  const bodyMutation = service.BodyMutation;
  if (!bodyMutation.fields.streamedResponse) {
    bodyMutation.fields.streamedResponse = { type: 'StreamedBodyResponse', id: 3 };
    bodyMutation.oneofs.mutation.oneof.push('streamedResponse');
  }
  return descriptor;
}

if (require.main === module) {
  fs.mkdirSync(path.dirname(OUTPUT), { recursive: true });
  fs.writeFileSync(OUTPUT, JSON.stringify(buildExtProcDescriptor()));
  process.stdout.write(`wrote ${path.relative(process.cwd(), OUTPUT)}\n`);
}

module.exports = { buildExtProcDescriptor };
