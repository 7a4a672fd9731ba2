/**
 * The ext_proc stream lifecycle over real gRPC: streams reset right after their first message end their session
 * (as cancelled) and let the server shut down, writes respect backpressure, the stuck-stream watchdog closes
 * idle streams, and the drain ends as soon as every stream is done.
 */
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as os from 'node:os';
import * as path from 'node:path';
import { ProcessorApp } from '../../src/app';
import { extProcCodecs, HEALTH_NOT_SERVING, HEALTH_SERVING, PROCESS_METHOD_PATH } from '../../src/grpc/codec';
import { loadProtoRoot } from '../../src/grpc/descriptor';
import type { OutgoingResponse, ProcessingRequest } from '../../src/grpc/messages';
import {
  bindServer,
  createGrpcServer,
  HealthStatus,
  http2StreamOf,
  StreamLifecycle,
  type ExtProcHandler,
} from '../../src/grpc/server';
import { silentLogger } from '../../src/log';
import { EnvoyClient } from '../support/envoy-client';
import { testConfig } from '../support/processor-harness';
import { FIRST_MESSAGE, grpcFrame, http2EarlyCancels, rawEarlyCancels } from './early-cancel';

const codecs = extProcCodecs(loadProtoRoot());

async function waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A handler that records what the server tells each session; `answer` decides the reply to each message. */
class RecordingHandler implements ExtProcHandler {
  opened = 0;
  messages = 0;
  readonly closes: boolean[] = [];
  constructor(
    private readonly answer: (request: ProcessingRequest) => OutgoingResponse | undefined = () => ({
      requestHeaders: { response: {} },
    }),
    /** The sessions' `answersEachMessage` (undefined: not declared, i.e. true). */
    private readonly answersEachMessage?: boolean,
  ) {}

  open(send: (response: OutgoingResponse) => void): ReturnType<ExtProcHandler['open']> {
    this.opened += 1;
    let closed = false;
    return {
      message: (request) => {
        this.messages += 1;
        const response = this.answer(request);
        if (response) send(response);
      },
      close: (cancelled) => {
        if (closed) throw new Error('a session was closed twice');
        closed = true;
        this.closes.push(cancelled);
      },
      answersEachMessage: this.answersEachMessage,
    };
  }

  get live(): number {
    return this.opened - this.closes.length;
  }
}

interface Served {
  server: grpc.Server;
  port: number;
  address: string;
  lifecycle: StreamLifecycle;
  stop(): Promise<void>;
}

const servers: Served[] = [];
afterEach(async () => {
  for (const served of servers.splice(0)) await served.stop();
});

async function serve(handler: ExtProcHandler, idle = { idleTimeoutMs: 60_000, drainIdleMs: 5_000 }): Promise<Served> {
  const lifecycle = new StreamLifecycle(idle);
  const health = new HealthStatus();
  const server = createGrpcServer(handler, codecs, health, { lifecycle });
  const port = await bindServer(server, '127.0.0.1:0');
  health.set(true);
  const served: Served = {
    server,
    port,
    address: `127.0.0.1:${port}`,
    lifecycle,
    stop: async () => {
      lifecycle.stop();
      server.forceShutdown();
    },
  };
  servers.push(served);
  return served;
}

/** tryShutdown's completion time, bounded by `limitMs` (then forced): how long the open streams hold the server. */
async function shutdownTime(server: grpc.Server, limitMs: number): Promise<{ ms: number; completed: boolean }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve({ ms: Date.now() - started, completed: false });
    }, limitMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve({ ms: Date.now() - started, completed: true });
    });
  });
}

describe('streams reset right after their first message', () => {
  it.each([
    ['CANCEL', http2.constants.NGHTTP2_CANCEL],
    ['NO_ERROR (as Envoy resets)', http2.constants.NGHTTP2_NO_ERROR],
  ])(
    'read together with HEADERS and DATA (RST_STREAM %s): every session ends once, as cancelled',
    async (_name, code) => {
      const handler = new RecordingHandler();
      const served = await serve(handler);
      await rawEarlyCancels(served.port, 800, { code });
      await waitFor(() => handler.opened > 0 && handler.live === 0, 'every session to close');
      expect(handler.closes.every((cancelled) => cancelled)).toBe(true);
      expect(await shutdownTime(served.server, 3000)).toMatchObject({ completed: true });
    },
  );

  it(
    'sent by a node:http2 client in the same tick (RST_STREAM NO_ERROR while the answer is ' +
      'queued): sessions end, the server can shut down',
    async () => {
      const handler = new RecordingHandler();
      const served = await serve(handler);
      const client = await http2EarlyCancels(served.address, 2000);
      await waitFor(() => handler.opened === 2000 && handler.live === 0, 'every session to close');
      expect(handler.closes.filter((cancelled) => !cancelled)).toHaveLength(0);
      expect(served.lifecycle.size).toBe(0);
      // Before: Node's HTTP/2 streams stayed open forever (the queued answer was never written), holding the server.
      const shutdown = await shutdownTime(served.server, 3000);
      client.close();
      expect(shutdown.completed).toBe(true);
      expect(shutdown.ms).toBeLessThan(1000);
    },
    30_000,
  );

  it('10,000 early cancels against the real processor leave no session open, and the drain ends at once', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-lifecycle-'));
    const configFile = path.join(dir, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify(testConfig()));
    const app = new ProcessorApp({
      config: configFile,
      secretsDir: dir,
      listen: '127.0.0.1:0',
      admin: undefined,
      pollIntervalMs: 60_000,
      logger: silentLogger,
    });
    await app.start();
    try {
      const address = `127.0.0.1:${app.listenPort}`;
      const cancels = await http2EarlyCancels(address, 7900);
      for (let i = 0; i < 3; i++)
        await rawEarlyCancels(app.listenPort, 700, { code: http2.constants.NGHTTP2_NO_ERROR, settleMs: 50 });
      await waitFor(() => app.processor.activeStreams === 0, 'no session left open');
      // The processor still serves.
      const client = new EnvoyClient(address);
      const result = await client.exchange({ path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' }, () => ({
        status: 200,
        body: '{}',
      }));
      client.close();
      expect(result.status).toBe(200);
      // The early-cancelling connection stays open, as Envoy's would: its streams must not hold the drain.
      const started = Date.now();
      expect(await app.drain(10_000)).toBe(true);
      expect(Date.now() - started).toBeLessThan(1000);
      cancels.close();
    } finally {
      await app.drain(100);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('the HTTP/2 stream under a grpc-js call is found (the reset signal depends on it)', async () => {
    let transport: http2.Http2Stream | undefined;
    let seen = false;
    const probe = new grpc.Server();
    probe.addService(
      {
        Process: {
          path: PROCESS_METHOD_PATH,
          requestStream: true,
          responseStream: true,
          requestSerialize: codecs.request.serialize,
          requestDeserialize: codecs.request.deserialize,
          responseSerialize: codecs.response.serialize,
          responseDeserialize: codecs.response.deserialize,
        },
      },
      {
        Process: (call: grpc.ServerDuplexStream<ProcessingRequest, OutgoingResponse>) => {
          transport = http2StreamOf(call);
          seen = true;
          call.end();
        },
      },
    );
    const port = await bindServer(probe, '127.0.0.1:0');
    const client = new EnvoyClient(`127.0.0.1:${port}`);
    const stream = client.openStream();
    stream.send(FIRST_MESSAGE);
    await waitFor(() => seen, 'the call');
    client.close();
    probe.forceShutdown();
    expect(transport).toBeDefined();
    expect(typeof transport!.close).toBe('function');
  });
});

describe('backpressure', () => {
  it('stops reading while answers cannot be written, and expires a peer that never reads', async () => {
    const body = Buffer.alloc(64 * 1024, 'x');
    const handler = new RecordingHandler(() => ({ requestBody: { response: { bodyMutation: { body } } } }));
    const served = await serve(handler, { idleTimeoutMs: 400, drainIdleMs: 5000 });
    // A client that sends 2,000 messages and never reads an answer (its receive window stays closed).
    const session = http2.connect(`http://${served.address}`, { settings: { initialWindowSize: 0 } });
    session.on('error', () => {});
    const request = session.request({
      ':method': 'POST',
      ':path': PROCESS_METHOD_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    request.on('error', () => {});
    request.pause();
    const reset = new Promise<number>((resolve) => request.once('close', () => resolve(request.rstCode ?? -1)));
    const frame = grpcFrame({ requestBody: { body: Buffer.from('{}'), endOfStream: false } });
    let written = 0;
    const writeMore = (): void => {
      while (written < 2000) {
        written += 1;
        if (!request.write(frame)) {
          request.once('drain', writeMore);
          return;
        }
      }
    };
    writeMore();
    await waitFor(() => handler.closes.length === 1, 'the stalled stream to be expired', 5000);
    expect(handler.closes).toEqual([true]);
    // Answers piled up to the write buffer's bound, then reading stopped: not one answer per message sent.
    expect(handler.messages).toBeLessThan(100);
    expect(await reset).toBe(http2.constants.NGHTTP2_CANCEL);
    session.destroy();
  }, 20_000);

  it('makes a session producing answers of its own wait while Envoy does not read them (writable)', async () => {
    // Like a fallback answer relayed from the processor's own upstream: one message in, many answers out.
    const body = Buffer.alloc(64 * 1024, 'z');
    let produced = 0;
    let closed = false;
    const served = await serve(
      {
        open: (send, _fail, _metadata, writable) => ({
          message() {
            void (async () => {
              while (!closed && produced < 400) {
                send({ requestBody: { response: { bodyMutation: { body } } } });
                produced += 1;
                await writable!();
              }
            })();
          },
          close() {
            closed = true;
          },
        }),
      },
      { idleTimeoutMs: 60_000, drainIdleMs: 5000 },
    );
    // A peer whose receive window stays closed: nothing it is sent is ever read.
    const session = http2.connect(`http://${served.address}`, { settings: { initialWindowSize: 0 } });
    session.on('error', () => {});
    const request = session.request({
      ':method': 'POST',
      ':path': PROCESS_METHOD_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    request.on('error', () => {});
    request.pause();
    request.write(grpcFrame({ requestBody: { body: Buffer.from('{}'), endOfStream: false } }));
    await waitFor(() => produced > 0, 'the first answer');
    await new Promise((resolve) => setTimeout(resolve, 500));
    // The producer waits once the write buffer is full, instead of piling up all 400 answers (25 MiB) in memory.
    expect(produced).toBeLessThan(100);
    session.destroy();
    await waitFor(() => closed, 'the session to be closed once the peer is gone');
  }, 20_000);

  it('keeps serving a peer that reads slowly', async () => {
    const body = Buffer.alloc(32 * 1024, 'y');
    const handler = new RecordingHandler(() => ({ requestBody: { response: { bodyMutation: { body } } } }));
    const served = await serve(handler, { idleTimeoutMs: 2000, drainIdleMs: 5000 });
    const client = new EnvoyClient(served.address);
    const stream = client.openStream();
    for (let i = 0; i < 200; i++) stream.send({ requestBody: { body: Buffer.from('{}'), endOfStream: false } });
    let answers = 0;
    for (; answers < 200; answers++) {
      await stream.next();
      if (answers % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(answers).toBe(200);
    expect(handler.messages).toBe(200);
    expect(handler.closes).toEqual([]);
    stream.end();
    await waitFor(() => handler.closes.length === 1, 'the half-close');
    expect(handler.closes).toEqual([false]);
    client.close();
  }, 20_000);
});

describe('half-close', () => {
  it(
    'writes the answers a session still sends until the promise its close returned settles, ' + 'then ends the call',
    async () => {
      let sendLater!: (response: OutgoingResponse) => void;
      const closes: boolean[] = [];
      const served = await serve({
        open: (send) => {
          sendLater = send;
          return {
            message() {},
            close: (cancelled) => {
              closes.push(cancelled);
              return new Promise<void>((resolve) =>
                setTimeout(() => {
                  send({ requestBody: { response: { bodyMutation: { body: Buffer.from('late answer') } } } });
                  resolve();
                }, 100),
              );
            },
          };
        },
      });
      const client = new EnvoyClient(served.address);
      const stream = client.openStream();
      stream.send(FIRST_MESSAGE);
      await waitFor(() => sendLater !== undefined, 'the session');
      stream.end();
      const answer = await stream.next();
      expect(answer.kind).toBe('requestBody');
      expect(closes).toEqual([false]);
      await expect(stream.next()).rejects.toThrow('stream ended');
      // After the call ended, nothing more is written.
      sendLater({ requestHeaders: { response: {} } });
      client.close();
    },
  );
});

describe('the stuck-stream watchdog', () => {
  it('closes a stream with no message for the idle limit as cancelled and resets it; active streams stay', async () => {
    const handler = new RecordingHandler(() => undefined);
    const served = await serve(handler, { idleTimeoutMs: 300, drainIdleMs: 5000 });
    const client = new EnvoyClient(served.address);
    const idle = client.openStream();
    idle.send(FIRST_MESSAGE);
    const active = client.openStream();
    active.send(FIRST_MESSAGE);
    await waitFor(() => handler.messages === 2, 'both first messages');
    const started = Date.now();
    const ticker = setInterval(() => active.send({ requestBody: { body: Buffer.from('x'), endOfStream: false } }), 50);
    try {
      await waitFor(() => handler.closes.length === 1, 'the idle stream to be closed', 3000);
      expect(handler.closes).toEqual([true]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(200);
      await expect(idle.next()).rejects.toThrow();
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(handler.closes).toHaveLength(1);
    } finally {
      clearInterval(ticker);
    }
    active.end();
    await waitFor(() => handler.closes.length === 2, 'the active stream to end');
    expect(handler.closes[1]).toBe(false);
    client.close();
  });

  it('with idle limit 0 never expires a stream', async () => {
    const handler = new RecordingHandler(() => undefined);
    const served = await serve(handler, { idleTimeoutMs: 0, drainIdleMs: 5000 });
    const client = new EnvoyClient(served.address);
    const stream = client.openStream();
    stream.send(FIRST_MESSAGE);
    await waitFor(() => handler.messages === 1, 'the message');
    await new Promise((resolve) => setTimeout(resolve, 300));
    stream.send(FIRST_MESSAGE);
    await waitFor(() => handler.messages === 2, 'the second message');
    expect(handler.closes).toEqual([]);
    stream.end();
    await waitFor(() => handler.closes.length === 1, 'the half-close');
    expect(handler.closes).toEqual([false]);
    client.close();
  });

  it(
    'while draining closes streams stuck on our side after the drain idle limit, not those ' + 'waiting on Envoy',
    async () => {
      // Request headers are answered; a request body message is never answered (a stuck session).
      const handler = new RecordingHandler((request) =>
        request.requestHeaders ? { requestHeaders: { response: {} } } : undefined,
      );
      const served = await serve(handler, { idleTimeoutMs: 60_000, drainIdleMs: 300 });
      const client = new EnvoyClient(served.address);
      const waiting = client.openStream();
      waiting.send(FIRST_MESSAGE);
      await waiting.next();
      const stuck = client.openStream();
      stuck.send({ requestBody: { body: Buffer.from('{}'), endOfStream: true } });
      await waitFor(() => handler.messages === 2, 'both messages');
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(handler.closes).toEqual([]);
      const started = Date.now();
      served.lifecycle.startDraining();
      await waitFor(() => handler.closes.length === 1, 'the stuck stream to be closed', 3000);
      expect(handler.closes).toEqual([true]);
      expect(Date.now() - started).toBeLessThan(1000);
      await expect(stuck.next()).rejects.toThrow();
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(handler.closes).toHaveLength(1);
      waiting.end();
      await waitFor(() => handler.closes.length === 2, 'the waiting stream to end');
      expect(handler.closes[1]).toBe(false);
      client.close();
    },
  );

  it('while draining leaves a stream answering at its own pace (a duplex response) to the deadline', async () => {
    // Like a fallback attempt in FULL_DUPLEX_STREAMED mode: Envoy's body chunks get no answer of their own.
    const handler = new RecordingHandler(() => undefined, false);
    const served = await serve(handler, { idleTimeoutMs: 60_000, drainIdleMs: 200 });
    const client = new EnvoyClient(served.address);
    const stream = client.openStream();
    stream.send({ responseBody: { body: Buffer.from('{}'), endOfStream: true } });
    await waitFor(() => handler.messages === 1, 'the message');
    served.lifecycle.startDraining();
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(handler.closes).toEqual([]);
    served.lifecycle.expireAll();
    await waitFor(() => handler.closes.length === 1, 'the close at the deadline');
    expect(handler.closes).toEqual([true]);
    client.close();
  });

  it('at the drain deadline closes every stream left as cancelled', async () => {
    const handler = new RecordingHandler(() => undefined);
    const served = await serve(handler, { idleTimeoutMs: 0, drainIdleMs: 60_000 });
    const client = new EnvoyClient(served.address);
    const stream = client.openStream();
    stream.send(FIRST_MESSAGE);
    await waitFor(() => handler.messages === 1, 'the message');
    served.lifecycle.expireAll();
    await waitFor(() => handler.closes.length === 1, 'the close');
    expect(handler.closes).toEqual([true]);
    await expect(stream.next()).rejects.toThrow();
    client.close();
  });
});

describe('the app drain', () => {
  let dir: string;
  let configFile: string;
  const apps: ProcessorApp[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-drain-'));
    configFile = path.join(dir, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify(testConfig()));
  });
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.drain(100);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function startApp(
    options: { streamIdleTimeoutMs?: number; drainIdleMs?: number } = {},
  ): Promise<{ app: ProcessorApp; address: string }> {
    const app = new ProcessorApp({
      config: configFile,
      secretsDir: dir,
      listen: '127.0.0.1:0',
      admin: undefined,
      pollIntervalMs: 60_000,
      logger: silentLogger,
      ...options,
    });
    apps.push(app);
    await app.start();
    return { app, address: `127.0.0.1:${app.listenPort}` };
  }

  it('lets a stream waiting on the upstream run past the drain idle limit (long generations are not cut)', async () => {
    const { app, address } = await startApp({ streamIdleTimeoutMs: 60_000, drainIdleMs: 200 });
    const client = new EnvoyClient(address);
    let upstreamReached!: () => void;
    const reached = new Promise<void>((resolve) => (upstreamReached = resolve));
    const inFlight = client.exchange({ path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' }, async () => {
      upstreamReached();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      return {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: '{"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}',
      };
    });
    await reached;
    const started = Date.now();
    const draining = app.drain(10_000);
    const result = await inFlight;
    expect(result.status).toBe(200);
    expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({ llm_total_token: 2 });
    expect(await draining).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    client.close();
  });

  it('resolves as soon as the last in-flight stream finishes', async () => {
    const { app, address } = await startApp();
    const client = new EnvoyClient(address);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const inFlight = client.exchange({ path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' }, async () => {
      await released;
      return {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: '{"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}',
      };
    });
    await waitFor(() => app.processor.activeStreams === 1, 'the stream');
    const draining = app.drain(10_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    release();
    expect((await inFlight).status).toBe(200);
    expect(await draining).toBe(true);
    expect(Date.now() - started).toBeLessThan(1000);
    client.close();
  });

  it(
    'shutdown: not ready at once, keeps accepting streams during the delay, then drains and ' +
      'ends health Watch streams',
    async () => {
      const { app, address } = await startApp();
      const health = new grpc.Client(address, grpc.credentials.createInsecure());
      const statuses: number[] = [];
      const watch = health.makeServerStreamRequest(
        '/grpc.health.v1.Health/Watch',
        codecs.healthRequest.serialize,
        codecs.healthResponse.deserialize,
        {},
      );
      watch.on('data', (response: { status: number }) => statuses.push(response.status));
      watch.on('error', () => {});
      const watchEnded = new Promise<void>((resolve) => watch.on('status', () => resolve()));
      await waitFor(() => statuses.length === 1, 'the first Watch answer');

      let drainStarted = false;
      const started = Date.now();
      const stopped = app.shutdown(800, 5000, () => (drainStarted = true));
      expect(app.health.isServing).toBe(false);
      await waitFor(() => statuses.length === 2, 'NOT_SERVING on the Watch');
      expect(statuses).toEqual([HEALTH_SERVING, HEALTH_NOT_SERVING]);

      // During the delay a new stream on a new connection is served.
      const late = new EnvoyClient(address);
      const result = await late.exchange({ path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' }, () => ({
        status: 200,
        body: '{}',
      }));
      expect(result.status).toBe(200);
      late.close();
      expect(drainStarted).toBe(false);

      expect(await stopped).toBe(true);
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(750);
      expect(elapsed).toBeLessThan(2500);
      await watchEnded;
      health.close();
      // After the drain the listener is closed.
      const refused = new EnvoyClient(address);
      await expect(
        refused.exchange({ path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' }, () => ({ status: 200 })),
      ).rejects.toThrow();
      refused.close();
    },
  );

  it('skipShutdownDelay starts the drain at once', async () => {
    const { app } = await startApp();
    const started = Date.now();
    const stopped = app.shutdown(60_000, 5000);
    setTimeout(() => app.skipShutdownDelay(), 100);
    expect(await stopped).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
