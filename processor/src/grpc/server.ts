import * as grpc from '@grpc/grpc-js';
import {
  EXT_PROC_SERVICE,
  HEALTH_NOT_SERVING,
  HEALTH_SERVICE,
  HEALTH_SERVICE_UNKNOWN,
  HEALTH_SERVING,
  PROCESS_METHOD_PATH,
  type ExtProcCodecs,
} from './codec';
import type { OutgoingResponse, ProcessingRequest } from './messages';

/** One ext_proc stream (= one HTTP request passing through Envoy). */
export interface ExtProcStream {
  message(request: ProcessingRequest): void;
  /** The stream ended: `cancelled` when Envoy (or the client) went away before the exchange finished. */
  close(cancelled: boolean): void;
}

export interface ExtProcHandler {
  open(send: (response: OutgoingResponse) => void, fail: (error: Error) => void): ExtProcStream;
}

/** Serving status for grpc.health.v1, with Watch subscribers. */
export class HealthStatus {
  private serving = false;
  private readonly listeners = new Set<(serving: boolean) => void>();

  get isServing(): boolean {
    return this.serving;
  }

  set(serving: boolean): void {
    if (serving === this.serving) return;
    this.serving = serving;
    for (const listener of this.listeners) listener(serving);
  }

  subscribe(listener: (serving: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

const SERVER_OPTIONS: grpc.ServerOptions = {
  // Envoy sends the whole buffered request body in one message; the configured body limit decides.
  'grpc.max_receive_message_length': 512 * 1024 * 1024,
  'grpc.max_send_message_length': 512 * 1024 * 1024,
  // Channelz bookkeeping costs CPU on every call and nothing reads it.
  'grpc.enable_channelz': 0,
};

export function createGrpcServer(handler: ExtProcHandler, codecs: ExtProcCodecs, health: HealthStatus): grpc.Server {
  const server = new grpc.Server(SERVER_OPTIONS);

  const processDefinition: grpc.MethodDefinition<ProcessingRequest, OutgoingResponse> = {
    path: PROCESS_METHOD_PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: codecs.request.serialize,
    requestDeserialize: codecs.request.deserialize,
    responseSerialize: codecs.response.serialize,
    responseDeserialize: codecs.response.deserialize,
  };
  server.addService({ Process: processDefinition } as grpc.ServiceDefinition, {
    Process: (call: grpc.ServerDuplexStream<ProcessingRequest, OutgoingResponse>) => serveProcess(call, handler),
  });

  const statusFor = (service: string | undefined): number => {
    if (service && service !== EXT_PROC_SERVICE) return HEALTH_SERVICE_UNKNOWN;
    return health.isServing ? HEALTH_SERVING : HEALTH_NOT_SERVING;
  };
  server.addService(
    {
      Check: {
        path: `/${HEALTH_SERVICE}/Check`,
        requestStream: false,
        responseStream: false,
        requestSerialize: codecs.healthRequest.serialize,
        requestDeserialize: codecs.healthRequest.deserialize,
        responseSerialize: codecs.healthResponse.serialize,
        responseDeserialize: codecs.healthResponse.deserialize,
      },
      Watch: {
        path: `/${HEALTH_SERVICE}/Watch`,
        requestStream: false,
        responseStream: true,
        requestSerialize: codecs.healthRequest.serialize,
        requestDeserialize: codecs.healthRequest.deserialize,
        responseSerialize: codecs.healthResponse.serialize,
        responseDeserialize: codecs.healthResponse.deserialize,
      },
    } as grpc.ServiceDefinition,
    {
      Check: (
        call: grpc.ServerUnaryCall<{ service?: string }, { status: number }>,
        callback: grpc.sendUnaryData<{ status: number }>,
      ) => callback(null, { status: statusFor(call.request.service) }),
      Watch: (call: grpc.ServerWritableStream<{ service?: string }, { status: number }>) => {
        const service = call.request.service;
        call.write({ status: statusFor(service) });
        const unsubscribe = health.subscribe(() => call.write({ status: statusFor(service) }));
        call.on('cancelled', unsubscribe);
        call.on('close', unsubscribe);
      },
    },
  );
  return server;
}

function serveProcess(call: grpc.ServerDuplexStream<ProcessingRequest, OutgoingResponse>, handler: ExtProcHandler): void {
  let closed = false;
  const send = (response: OutgoingResponse): void => {
    if (!closed) call.write(response);
  };
  const fail = (error: Error): void => {
    if (closed) return;
    closed = true;
    stream.close(true);
    call.destroy(error);
  };
  const stream = handler.open(send, fail);
  call.on('data', (request: ProcessingRequest) => stream.message(request));
  call.on('end', () => {
    if (closed) return;
    closed = true;
    stream.close(false);
    call.end();
  });
  call.on('cancelled', () => {
    if (closed) return;
    closed = true;
    stream.close(true);
  });
  call.on('error', () => {
    if (closed) return;
    closed = true;
    stream.close(true);
  });
}

/** Binds `host:port` or `unix:/path`; resolves with the bound port (0 for unix sockets). */
export function bindServer(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error) reject(error);
      else resolve(port);
    });
  });
}
