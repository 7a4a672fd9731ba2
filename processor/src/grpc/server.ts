import * as grpc from '@grpc/grpc-js';
import * as http2 from 'node:http2';
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
  /**
   * The stream ended: `cancelled` when Envoy (or the client) went away before the exchange finished. After a
   * half-close (`cancelled` false) a session may return a promise: answers it sends until the promise settles are
   * still written, then the call ends.
   */
  close(cancelled: boolean): void | Promise<void>;
  /**
   * False while the session answers at its own pace rather than once per message (Envoy's FULL_DUPLEX_STREAMED
   * response side, e.g. while a fallback attempt runs): unanswered messages then do not make the stream look stuck.
   * Absent: true.
   */
  readonly answersEachMessage?: boolean;
}

/**
 * The gRPC metadata of an ext_proc stream (grpc-js `Metadata`). Envoy (1.31 and later, with tracing on) puts the trace
 * context of its ext_proc call there; read only when the processor traces.
 */
export interface StreamMetadata {
  get(key: string): Array<string | Buffer>;
}

export interface ExtProcHandler {
  open(
    send: (response: OutgoingResponse) => void,
    fail: (error: Error) => void,
    metadata?: StreamMetadata,
    /**
     * Resolves once Envoy reads the answers written so far (at once when it keeps up, or when the stream ends): for a
     * session that produces answers from a source of its own (a fallback attempt) rather than from Envoy's messages.
     */
    writable?: () => Promise<void>,
  ): ExtProcStream;
}

/** Serving status for grpc.health.v1, with Watch subscribers. */
export class HealthStatus {
  private serving = false;
  private readonly listeners = new Set<(serving: boolean) => void>();
  private readonly enders = new Set<() => void>();

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

  /** `end` runs when the server shuts down (a Watch stream never ends by itself and would hold the drain open). */
  onShutdown(end: () => void): () => void {
    this.enders.add(end);
    return () => this.enders.delete(end);
  }

  /** Not serving, and every Watch stream ended. */
  shutdown(): void {
    this.set(false);
    for (const end of [...this.enders]) end();
    this.enders.clear();
  }
}

const SERVER_OPTIONS: grpc.ServerOptions = {
  // Envoy sends the whole buffered request body in one message; the configured body limit decides.
  'grpc.max_receive_message_length': 512 * 1024 * 1024,
  'grpc.max_send_message_length': 512 * 1024 * 1024,
  // Channelz bookkeeping costs CPU on every call and nothing reads it.
  'grpc.enable_channelz': 0,
};

/** One live ext_proc stream as the watchdog sees it. */
interface LiveStream {
  /** `Date.now()` of the last message received or answer written (or of the last drained write after a pause). */
  seen: number;
  /** Messages received and not answered yet (ext_proc answers each message once). */
  owed: number;
  /** Reading stopped because the peer does not read our answers. */
  blocked: boolean;
  /** Whether `owed` means anything: the session answers each message once (see ExtProcStream.answersEachMessage). */
  paced(): boolean;
  /** Ends the session as cancelled and resets the HTTP/2 stream. */
  expire(): void;
}

export interface StreamLifecycleOptions {
  /** A stream that has received no message for this long is closed as cancelled and reset; 0: never. */
  idleTimeoutMs: number;
  /**
   * While draining, a stream idle this long is closed too when it is stuck on our side: a message still
   * unanswered, or answers its peer does not read. A stream that answered everything and waits for Envoy's next
   * message (the upstream's answer to a long generation) is left to finish within the drain timeout.
   */
  drainIdleMs: number;
  /** Called once per stream the watchdog closes (for a metric). */
  onExpired?: () => void;
}

export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300_000;
export const DEFAULT_DRAIN_IDLE_MS = 5_000;

/**
 * The stuck-stream watchdog: every live ext_proc stream, swept on one unref'd timer (a quarter of the idle limit,
 * at most once a second), so a stream nobody will ever finish (its peer vanished without a reset grpc-js reports,
 * or it stopped reading our answers) is closed as cancelled instead of holding its session and the drain open.
 */
export class StreamLifecycle {
  private readonly live = new Set<LiveStream>();
  private draining = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: StreamLifecycleOptions) {
    this.schedule();
  }

  /** Streams the transport still holds open (a session may already be closed while its status is being sent). */
  get size(): number {
    return this.live.size;
  }

  track(stream: LiveStream): void {
    this.live.add(stream);
  }

  untrack(stream: LiveStream): void {
    this.live.delete(stream);
  }

  /** From now on stuck streams idle for `drainIdleMs` are closed as well; sweeps at once. */
  startDraining(): void {
    this.draining = true;
    this.schedule();
    this.sweep();
  }

  /**
   * Closes every live stream as cancelled and resets it (the drain deadline). grpc-js' forceShutdown does not do
   * this itself when channelz is off: it destroys only the sessions channelz tracks.
   */
  expireAll(): void {
    for (const stream of this.live) {
      this.live.delete(stream);
      stream.expire();
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  sweep(): void {
    const now = Date.now();
    const { idleTimeoutMs, drainIdleMs } = this.options;
    const idleBefore = idleTimeoutMs > 0 ? now - idleTimeoutMs : -Infinity;
    const stuckBefore = this.draining ? now - drainIdleMs : -Infinity;
    for (const stream of this.live) {
      if (
        stream.seen <= idleBefore ||
        (stream.seen <= stuckBefore && ((stream.owed > 0 && stream.paced()) || stream.blocked))
      ) {
        this.live.delete(stream);
        this.options.onExpired?.();
        stream.expire();
      }
    }
  }

  private schedule(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const { idleTimeoutMs, drainIdleMs } = this.options;
    const limits = [idleTimeoutMs, this.draining ? drainIdleMs : 0].filter((ms) => ms > 0);
    if (this.stopped || limits.length === 0) return;
    this.timer = setInterval(() => this.sweep(), Math.max(10, Math.min(1000, Math.floor(Math.min(...limits) / 4))));
    this.timer.unref();
  }
}

export interface GrpcServerOptions {
  /** The watchdog the ext_proc streams register with; default: the default idle limits. */
  lifecycle?: StreamLifecycle;
}

export function createGrpcServer(
  handler: ExtProcHandler,
  codecs: ExtProcCodecs,
  health: HealthStatus,
  options: GrpcServerOptions = {},
): grpc.Server {
  const server = new grpc.Server(SERVER_OPTIONS);
  const lifecycle =
    options.lifecycle ??
    new StreamLifecycle({ idleTimeoutMs: DEFAULT_STREAM_IDLE_TIMEOUT_MS, drainIdleMs: DEFAULT_DRAIN_IDLE_MS });

  const processDefinition: grpc.MethodDefinition<ProcessingRequest, OutgoingResponse> = {
    path: PROCESS_METHOD_PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: codecs.request.serialize,
    requestDeserialize: codecs.request.deserialize,
    responseSerialize: codecs.response.serialize,
    responseDeserialize: codecs.response.deserialize,
  };
  server.addService(
    { Process: processDefinition },
    {
      Process: (call: grpc.ServerDuplexStream<ProcessingRequest, OutgoingResponse>) =>
        serveProcess(call, handler, lifecycle),
    },
  );

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
    },
    {
      Check: (
        call: grpc.ServerUnaryCall<{ service?: string }, { status: number }>,
        callback: grpc.sendUnaryData<{ status: number }>,
      ) => callback(null, { status: statusFor(call.request.service) }),
      Watch: (call: grpc.ServerWritableStream<{ service?: string }, { status: number }>) => {
        const service = call.request.service;
        call.write({ status: statusFor(service) });
        const unsubscribe = health.subscribe(() => call.write({ status: statusFor(service) }));
        const unregister = health.onShutdown(() => call.end());
        const done = (): void => {
          unsubscribe();
          unregister();
        };
        call.on('cancelled', done);
        call.on('close', done);
      },
    },
  );
  return server;
}

/**
 * The HTTP/2 stream under a grpc-js server call (`call.call.stream` for a call without interceptors, as in
 * grpc-js 1.14's BaseServerInterceptingCall), or undefined when grpc-js hides it. A test pins that it is found.
 */
export function http2StreamOf(call: object): http2.Http2Stream | undefined {
  let inner: unknown = (call as { call?: unknown }).call;
  for (let depth = 0; depth < 4 && inner && typeof inner === 'object'; depth++) {
    const stream = (inner as { stream?: unknown }).stream;
    if (isHttp2Stream(stream)) return stream;
    inner = (inner as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

function isHttp2Stream(value: unknown): value is http2.Http2Stream {
  return (
    !!value &&
    typeof value === 'object' &&
    'rstCode' in value &&
    typeof (value as http2.Http2Stream).close === 'function' &&
    typeof (value as http2.Http2Stream).once === 'function'
  );
}

/**
 * Serves one ext_proc stream. The session ends exactly once: `close(false)` when Envoy half-closes,
 * `close(true)` when the stream is reset, the connection drops, the watchdog expires it or the session fails.
 *
 * grpc-js 1.14 does not report every reset: when Envoy resets the stream (RST_STREAM NO_ERROR, what Envoy sends
 * for a local reset) right after its message, while an answer is still queued, Node's HTTP/2 stream waits forever
 * for that write and never closes, so grpc-js emits neither 'cancelled' nor 'close', and a reset read together with
 * the first message is reported as a clean end. Node does emit 'aborted' on the HTTP/2 stream for every reset
 * before the exchange finished: that ends the session as cancelled and destroys the stream (dropping the queued
 * write), which lets grpc-js and the server's shutdown see it closed.
 *
 * Backpressure: when `call.write` reports a full buffer, reading stops until 'drain' (Envoy then stops sending
 * as its flow-control window fills), so answers never pile up; a peer that stops reading for the idle limit is
 * expired by the watchdog.
 */
function serveProcess(
  call: grpc.ServerDuplexStream<ProcessingRequest, OutgoingResponse>,
  handler: ExtProcHandler,
  lifecycle: StreamLifecycle,
): void {
  const transport = http2StreamOf(call);
  let closed = false;
  /** Answers are written until the session ends (or, after a half-close, until its last answer is out). */
  let writable = true;
  let paused = false;
  let drainWaiters: Array<() => void> = [];
  const releaseWriters = (): void => {
    const waiters = drainWaiters;
    drainWaiters = [];
    for (const resolve of waiters) resolve();
  };
  const finish = (cancelled: boolean): void | Promise<void> | false => {
    if (closed) return false;
    closed = true;
    if (cancelled) writable = false;
    // Whoever waits to write learns the stream is over (their writes are dropped from now on).
    if (cancelled) releaseWriters();
    return stream.close(cancelled);
  };
  const reset = (code: number): void => {
    if (transport) {
      if (!transport.destroyed) transport.close(code);
    } else {
      call.destroy();
    }
  };
  const live: LiveStream = {
    seen: Date.now(),
    owed: 0,
    blocked: false,
    paced: () => stream.answersEachMessage !== false,
    expire: () => {
      writable = false;
      releaseWriters();
      void finish(true);
      reset(http2.constants.NGHTTP2_CANCEL);
    },
  };
  const send = (response: OutgoingResponse): void => {
    if (!writable) return;
    if (live.owed > 0) live.owed -= 1;
    // A stream the processor is writing to is not idle (a fallback answer streams while Envoy has nothing left to
    // send), unless Envoy stopped reading: then the watchdog's clock runs from the last drain.
    if (!paused) live.seen = Date.now();
    if (!call.write(response) && !paused) {
      paused = true;
      live.blocked = true;
      call.pause();
    }
  };
  const fail = (): void => {
    lifecycle.untrack(live);
    writable = false;
    releaseWriters();
    if (finish(true) !== false) reset(http2.constants.NGHTTP2_INTERNAL_ERROR);
  };
  const whenWritable = (): Promise<void> =>
    !paused || !writable ? Promise.resolve() : new Promise<void>((resolve) => drainWaiters.push(resolve));
  const stream = handler.open(send, fail, call.metadata, whenWritable);
  lifecycle.track(live);
  const gone = (): void => {
    lifecycle.untrack(live);
    writable = false;
    releaseWriters();
    void finish(true);
  };
  if (transport) {
    transport.once('aborted', () => {
      gone();
      // A reset with a write still queued leaves Node's stream open forever: destroy it.
      process.nextTick(() => transport.destroy());
    });
    transport.once('close', gone);
  }
  call.on('data', (request: ProcessingRequest) => {
    live.seen = Date.now();
    live.owed += 1;
    stream.message(request);
  });
  call.on('drain', () => {
    if (!paused) return;
    paused = false;
    live.blocked = false;
    live.seen = Date.now();
    call.resume();
    releaseWriters();
  });
  call.on('end', () => {
    // Still tracked until the transport closes: a status that cannot be flushed is expired by the watchdog.
    const closing = finish(false);
    if (closing === false) return;
    const end = (): void => {
      if (!writable) return;
      writable = false;
      call.end();
    };
    if (closing) closing.then(end, end);
    else end();
  });
  call.on('cancelled', gone);
  call.on('error', gone);
  // Without the transport in view, the call's own close is the last sign of it.
  if (!transport) call.on('close', () => lifecycle.untrack(live));
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
