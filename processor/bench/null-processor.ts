/**
 * The baseline for the benchmark: the same gRPC stack (grpc-js, the same precompiled descriptor and
 * codecs, the same health service) answering every ext_proc message with a bare CONTINUE. The only
 * protocol work it does is the one Envoy needs for streaming: switch event streams to STREAMED.
 */
import * as grpc from '@grpc/grpc-js';
import { extProcCodecs } from '../src/grpc/codec';
import { loadProtoRoot } from '../src/grpc/descriptor';
import { BODY_MODE_STREAMED, type ProcessingRequest, type ProcessingResponse } from '../src/grpc/messages';
import { bindServer, createGrpcServer, HealthStatus, type ExtProcHandler } from '../src/grpc/server';

const handler: ExtProcHandler = {
  open(send) {
    return {
      message(request: ProcessingRequest) {
        switch (request.request) {
          case 'requestHeaders':
            return send({ requestHeaders: {} });
          case 'requestBody':
            return send({ requestBody: {} });
          case 'responseHeaders': {
            const response: ProcessingResponse = { responseHeaders: {} };
            const stream = request.responseHeaders?.headers?.headers?.some(
              (h) => h.key === 'content-type' && Buffer.from(h.rawValue ?? []).toString().startsWith('text/event-stream'),
            );
            if (stream) response.modeOverride = { responseBodyMode: BODY_MODE_STREAMED };
            return send(response);
          }
          case 'responseBody':
            return send({ responseBody: {} });
          case 'requestTrailers':
            return send({ requestTrailers: {} });
          case 'responseTrailers':
            return send({ responseTrailers: {} });
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
  const server: grpc.Server = createGrpcServer(handler, extProcCodecs(loadProtoRoot()), health);
  await bindServer(server, process.argv[2] ?? '127.0.0.1:0');
  health.set(true);
  process.stdout.write('null processor ready\n');
  process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
}

void main();
