/**
 * gRPC transport to the processors: one channel per processor target and authority (Envoy keeps one cluster,
 * hence one connection pool, per ext_proc service), one bidirectional `Process` stream per HTTP stream, and each
 * cluster's `max_requests` circuit breaker over the streams open through it.
 */
import * as grpc from '@grpc/grpc-js';
import {
  createExtProcCodec,
  PROCESS_METHOD_PATH,
  type DecodedResponse,
  type ExtProcCodec,
  type OutgoingRequest,
} from './protocol';
import { ClusterSlots } from '../slots';

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // A buffered body travels in one message; the listener's buffer limit bounds it, not gRPC.
  'grpc.max_receive_message_length': 512 * 1024 * 1024,
  'grpc.max_send_message_length': 512 * 1024 * 1024,
  'grpc.enable_channelz': 0,
  // Envoy tries a new connection for the next request rather than waiting out a long backoff: a processor that
  // (re)starts is used again within a second.
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
};

/** What a `Process` stream reports back. */
export interface ExtProcStreamHandler {
  onMessage(response: DecodedResponse): void;
  /** The processor (or the transport) ended the stream: `code` 0 is a clean close, anything else a gRPC error. */
  onClose(code: number, details: string): void;
}

/** The Envoy cluster a stream counts against, and its limit of streams open at once. */
export interface ExtProcClusterLimit {
  /** EG's cluster name, `envoyextensionpolicy/<ns>/<name>/extproc/<i>`. */
  readonly cluster: string;
  readonly maxParallelRequests: number;
}

/** What Envoy's gRPC client reports for a stream its cluster's circuit breaker refused (HTTP 503 → UNAVAILABLE). */
export const GRPC_UNAVAILABLE = 14;
const OVERFLOW_MESSAGE = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';

export interface ExtProcStream {
  send(request: OutgoingRequest): void;
  /**
   * Half-closes, then resets the stream (what Envoy's filter does when it is done with it); with `deferResetMs`
   * the reset waits that long, so the processor still reads what was sent (observability mode). Idempotent.
   */
  close(deferResetMs?: number): void;
}

/** The gRPC channels of the data plane's ext_proc filters, one per processor; `close()` when the data plane stops. */
export class ExtProcClients {
  private readonly clients = new Map<string, grpc.Client>();
  /** Streams open per cluster, as one proxy replica counts them. */
  private readonly openStreams = new ClusterSlots();
  private codecInstance: ExtProcCodec | undefined;
  private closed = false;

  /** `codec`: for tests that already hold one; by default the descriptor is loaded on first use. */
  constructor(codec?: ExtProcCodec) {
    this.codecInstance = codec;
  }

  get codec(): ExtProcCodec {
    return (this.codecInstance ??= createExtProcCodec());
  }

  /**
   * Opens one `Process` stream to `target` (`host:port`), with `authority` as its `:authority`. Over the cluster's
   * limit no stream is opened: the handler is told UNAVAILABLE, as Envoy's gRPC client reports an overflow.
   */
  open(target: string, authority: string, handler: ExtProcStreamHandler, limit?: ExtProcClusterLimit): ExtProcStream {
    if (this.closed) throw new Error('ext_proc: the gRPC clients are closed');
    const release = limit ? this.openStreams.acquire(limit.cluster, limit.maxParallelRequests) : () => undefined;
    if (!release) {
      queueMicrotask(() => handler.onClose(GRPC_UNAVAILABLE, OVERFLOW_MESSAGE));
      return { send: () => undefined, close: () => undefined };
    }
    let call: grpc.ClientDuplexStream<OutgoingRequest, DecodedResponse>;
    try {
      const codec = this.codec;
      call = this.client(target, authority).makeBidiStreamRequest(
        PROCESS_METHOD_PATH,
        (request: OutgoingRequest) => codec.serializeRequest(request),
        (bytes: Buffer) => codec.deserializeResponse(bytes),
      );
    } catch (error) {
      // No stream was opened (e.g. a target gRPC cannot parse, the codec failing to load): nothing will close it.
      release();
      throw error;
    }
    let ended = false;
    call.on('data', (response: DecodedResponse) => {
      if (!ended) handler.onMessage(response);
    });
    // Every call ends with exactly one status; errors are reported through it.
    call.on('error', () => undefined);
    call.on('status', (status: grpc.StatusObject) => {
      release();
      if (ended) return;
      ended = true;
      handler.onClose(status.code, status.details);
    });
    return {
      send(request) {
        if (!ended) call.write(request);
      },
      close(deferResetMs) {
        if (ended) return;
        ended = true;
        release();
        call.end();
        if (deferResetMs === undefined) call.cancel();
        else setTimeout(() => call.cancel(), deferResetMs).unref();
      },
    };
  }

  close(): void {
    this.closed = true;
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private client(target: string, authority: string): grpc.Client {
    const key = `${target}\u0000${authority}`;
    let client = this.clients.get(key);
    if (!client) {
      client = new grpc.Client(target, grpc.credentials.createInsecure(), {
        ...CHANNEL_OPTIONS,
        'grpc.default_authority': authority,
      });
      this.clients.set(key, client);
    }
    return client;
  }
}
