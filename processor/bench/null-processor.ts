/**
 * The baseline for the benchmark: the same gRPC stack (grpc-js, the same precompiled descriptor and
 * codecs, the same health service) answering every ext_proc message with a bare CONTINUE, encoded once
 * (as the processor does for its constant answers). The only protocol work it does is the one Envoy needs
 * for streaming: switch event streams to STREAMED. The benches start it with the processor's V8 options
 * (PROCESSOR_NODE_OPTIONS), so both run on one runtime.
 */
import * as grpc from '@grpc/grpc-js';
import { extProcCodecs } from '../src/grpc/codec';
import { loadProtoRoot } from '../src/grpc/descriptor';
import { encodeProcessingResponse } from '../src/grpc/encode';
import { BODY_MODE_STREAMED, type ProcessingRequest } from '../src/grpc/messages';
import { bindServer, createGrpcServer, HealthStatus, type ExtProcHandler } from '../src/grpc/server';

const CONTINUE = {
  requestHeaders: encodeProcessingResponse({ requestHeaders: {} }),
  requestBody: encodeProcessingResponse({ requestBody: {} }),
  responseHeaders: encodeProcessingResponse({ responseHeaders: {} }),
  streamedResponseHeaders: encodeProcessingResponse({
    responseHeaders: {},
    modeOverride: { responseBodyMode: BODY_MODE_STREAMED },
  }),
  responseBody: encodeProcessingResponse({ responseBody: {} }),
  requestTrailers: encodeProcessingResponse({ requestTrailers: {} }),
  responseTrailers: encodeProcessingResponse({ responseTrailers: {} }),
};

export const nullHandler: ExtProcHandler = {
  open(send) {
    return {
      message(request: ProcessingRequest) {
        switch (request.request) {
          case 'requestHeaders':
          case 'requestBody':
          case 'responseBody':
          case 'requestTrailers':
          case 'responseTrailers':
            return send(CONTINUE[request.request]);
          case 'responseHeaders': {
            const stream = request.responseHeaders?.headers?.headers?.some(
              (h) =>
                h.key === 'content-type' &&
                Buffer.from(h.rawValue ?? [])
                  .toString()
                  .startsWith('text/event-stream'),
            );
            return send(stream ? CONTINUE.streamedResponseHeaders : CONTINUE.responseHeaders);
          }
          default:
            return undefined;
        }
      },
      close() {},
    };
  },
};

async function main(): Promise<void> {
  const health = new HealthStatus();
  const server: grpc.Server = createGrpcServer(nullHandler, extProcCodecs(loadProtoRoot()), health);
  await bindServer(server, process.argv[2] ?? '127.0.0.1:0');
  health.set(true);
  process.stdout.write('null processor ready\n');
  process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
}

// The bench also imports the handler to measure it in-process.
if (require.main === module) void main();
