/**
 * `npx tsx processor/bench/streams.bench.ts` (build first: `npm run build -w processor`): streams at scale. N open
 * SSE chat streams, each receiving one ext_proc response-body message per token at a realistic pace, against our
 * processor (dist/main.js) and the null processor, both running, in alternating rounds.
 *
 * - Load (N = 1,000, a chunk every 50 ms ± 20 % per stream): server CPU per chunk message and cores per 1,000
 *   streams from /proc/<pid>/stat over a window in which every stream is mid-response (opening and ending the
 *   streams is outside it), and the delay from writing a chunk to reading its answer (p50/p99; the processor's own
 *   share is ours minus null). The client reports the chunk rate it achieved against the intended one and how late
 *   it wrote chunks, so a saturated client shows instead of passing for a slow server.
 * - Memory (N = 10,000, a chunk every 2 s): RSS and JS heap per open stream after a full GC, the RSS with all
 *   streams open (after GC and peak) against the Deployment's default limit of 512 MiB.
 *
 * The client speaks gRPC over node:http2 directly (length-prefixed messages encoded once up front), not through
 * grpc-js, so that its per-message cost stays well below the servers'. Like Envoy, which opens one HTTP/2
 * connection per worker thread to the processor and multiplexes every ext_proc stream on it, it spreads the streams
 * over a few connections (BENCH_CONNECTIONS, default 4): the servers do not limit concurrent streams per
 * connection (grpc-js sets no SETTINGS_MAX_CONCURRENT_STREAMS unless `grpc.max_concurrent_streams` is given).
 *
 * Environment: BENCH_STREAMS, BENCH_INTERVAL_MS, BENCH_MEMORY_STREAMS, BENCH_MEMORY_INTERVAL_MS, BENCH_CONNECTIONS,
 * BENCH_WINDOW_MS, BENCH_ROUNDS, BENCH_ONLY=load|memory, BENCH_VERBOSE (each round), BENCH_PROVIDER=anthropic (an
 * OpenAI client's streams from an Anthropic backend: every event translated); BENCH_PROFILE_DIR and
 * BENCH_NODE_FLAGS as in processor.bench.ts.
 */
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as os from 'node:os';
import * as path from 'node:path';
import { METADATA_NAMESPACE, TOKEN_METADATA_KEYS, type ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import { ProcessorApp } from '../src/app';
import { extProcCodecs, PROCESS_METHOD_PATH } from '../src/grpc/codec';
import { loadProtoRoot } from '../src/grpc/descriptor';
import { BODY_MODE_STREAMED, type OutgoingResponse, type ProtoStruct } from '../src/grpc/messages';
import type { ExtProcHandler } from '../src/grpc/server';
import { silentLogger } from '../src/log';
import { nullHandler } from './null-processor';
import {
  benchConfig,
  benchWorkspace,
  chatBody,
  clientRequestHeaders,
  CLK_TCK,
  cpuTicks,
  encodeRequest,
  freePort,
  headerList,
  memoryAfterGc,
  percentile,
  processorArgs,
  startProcess,
  stopServer,
  type BenchServer,
} from './harness';

const codecs = extProcCodecs(loadProtoRoot());
const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const LOAD_STREAMS = env('BENCH_STREAMS', 1000);
const LOAD_INTERVAL_MS = env('BENCH_INTERVAL_MS', 50);
const MEMORY_STREAMS = env('BENCH_MEMORY_STREAMS', 10_000);
const MEMORY_INTERVAL_MS = env('BENCH_MEMORY_INTERVAL_MS', 2000);
const CONNECTIONS = env('BENCH_CONNECTIONS', 4);
const WINDOW_MS = env('BENCH_WINDOW_MS', 3000);
const ROUNDS = env('BENCH_ROUNDS', 5);
/** Chunks sent one at a time per server, across the rounds. */
const PING_PONGS = 5000;
/** After the last stream opened, before measuring: every stream is in its jittered chunk schedule. */
const SETTLE_MS = Math.max(1000, 2 * LOAD_INTERVAL_MS);
/** Each stream's chunk interval varies by this fraction either way, so streams never fall into lockstep. */
const JITTER = 0.2;
const MEMORY_LIMIT = 512 * 1024 * 1024;

// ---------- messages ----------

const CHUNK_VARIANTS = 64;
const WORDS = [' the', ' model', ' answers', ' with', ' one', ' token', ' per', ' chunk', ',', ' and', ' so', ' on.'];

/** One OpenAI chat.completion.chunk event as the API streams it with `stream_options.include_usage`. */
function chunkEvent(choices: unknown[], usage: unknown): string {
  return `data: ${JSON.stringify({
    id: 'chatcmpl-AQ8sJ3kVbGq2nWzS1fX5mT7yLpR0c',
    object: 'chat.completion.chunk',
    created: 1731618222,
    model: 'gpt-4o-2024-08-06',
    system_fingerprint: 'fp_45c6de4934',
    choices,
    usage,
  })}\n\n`;
}

function tokenChunk(i: number): Buffer {
  const content = WORDS[i % WORDS.length];
  return Buffer.from(chunkEvent([{ index: 0, delta: { content }, logprobs: null, finish_reason: null }], null));
}

/** A gRPC message on the wire: compression flag 0, 4-byte big-endian length, the message. */
function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

interface Frames {
  requestHeaders: Buffer;
  requestBody: Buffer;
  responseHeaders: Buffer;
  /** Events before the first token (Anthropic's message_start and content_block_start), answered before streaming. */
  intro?: Buffer;
  /** Token chunks (end_of_stream false), several variants. */
  chunks: Buffer[];
  /** The end of the content, then the usage and the end of the stream with end_of_stream. */
  finish: Buffer;
  last: Buffer;
}

/** The backend's API the streams come from (BENCH_PROVIDER): OpenAI passed through, or Anthropic translated. */
type Provider = 'openai' | 'anthropic';
const PROVIDER: Provider = process.env.BENCH_PROVIDER === 'anthropic' ? 'anthropic' : 'openai';
const PROVIDER_MODEL: Record<Provider, string> = { openai: 'gpt-4o', anthropic: 'claude-sonnet-4' };

function anthropicEvent(type: string, data: Record<string, unknown>): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
}

/** What an Anthropic Messages stream sends around its tokens, with the same usage as the OpenAI stream (352 + 180). */
function anthropicEvents(): { intro: string; token: (i: number) => string; finish: string; last: string } {
  return {
    intro:
      anthropicEvent('message_start', {
        message: {
          id: 'msg_01XFDUDYJgAACzvnptvVoYEL',
          type: 'message',
          role: 'assistant',
          model: 'claude-sonnet-4-20250514',
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: 352, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 },
        },
      }) + anthropicEvent('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    token: (i) =>
      anthropicEvent('content_block_delta', { index: 0, delta: { type: 'text_delta', text: WORDS[i % WORDS.length] } }),
    finish: anthropicEvent('content_block_stop', { index: 0 }),
    last:
      anthropicEvent('message_delta', {
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { output_tokens: 180 },
      }) + anthropicEvent('message_stop', {}),
  };
}

function streamFrames(): Frames {
  const body = JSON.stringify({ ...(JSON.parse(chatBody(1536, true)) as object), model: PROVIDER_MODEL[PROVIDER] });
  const responseBody = (chunk: Buffer | string, endOfStream: boolean) =>
    frame(encodeRequest({ responseBody: { body: Buffer.from(chunk), endOfStream } }));
  const anthropic = anthropicEvents();
  const events: Pick<Frames, 'intro' | 'chunks' | 'finish' | 'last'> =
    PROVIDER === 'anthropic'
      ? {
          intro: responseBody(anthropic.intro, false),
          chunks: Array.from({ length: CHUNK_VARIANTS }, (_, i) => responseBody(anthropic.token(i), false)),
          finish: responseBody(anthropic.finish, false),
          last: responseBody(anthropic.last, true),
        }
      : {
          chunks: Array.from({ length: CHUNK_VARIANTS }, (_, i) => responseBody(tokenChunk(i), false)),
          finish: responseBody(
            chunkEvent([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], null),
            false,
          ),
          last: responseBody(
            chunkEvent([], {
              prompt_tokens: 352,
              completion_tokens: 180,
              total_tokens: 532,
              prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
              completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0 },
            }) + 'data: [DONE]\n\n',
            true,
          ),
        };
  return {
    requestHeaders: frame(
      encodeRequest({
        requestHeaders: {
          headers: headerList(clientRequestHeaders(body, { 'x-forwarded-proto': 'https', 'x-tenant-id': 'acme' })),
          endOfStream: false,
        },
      }),
    ),
    requestBody: frame(encodeRequest({ requestBody: { body: Buffer.from(body), endOfStream: true } })),
    responseHeaders: frame(
      encodeRequest({
        responseHeaders: {
          headers: headerList({
            ':status': '200',
            'content-type': 'text/event-stream; charset=utf-8',
            date: 'Thu, 14 Nov 2024 21:03:42 GMT',
            'x-request-id': 'req_123',
            server: 'cloudflare',
          }),
          endOfStream: false,
        },
      }),
    ),
    ...events,
  };
}

/** The bench config plus an Anthropic backend for `claude-sonnet-4` on the same route. */
function streamsConfig(): ProcessorConfig {
  const config = benchConfig();
  config.backends.push({
    name: 'anthropic',
    schema: { name: 'Anthropic', version: '2023-06-01' },
    endpoint: { hostname: 'api.anthropic.com', port: 443, tls: true },
    auth: { type: 'APIKey', secret: { secretName: 'anthropic', key: 'apiKey' } },
  });
  config.routes[0].rules.push({
    models: [{ type: 'Exact', value: PROVIDER_MODEL.anthropic }],
    backends: [{ backend: 'anthropic', weight: 1, priority: 0 }],
  });
  return config;
}

// ---------- the client ----------

/** Answers read from one gRPC response stream, split into messages. */
class MessageReader {
  private buffered: Buffer = Buffer.alloc(0);

  constructor(private readonly onMessage: (message: Buffer) => void) {}

  push(data: Buffer): void {
    let bytes = this.buffered.length > 0 ? Buffer.concat([this.buffered, data]) : data;
    while (bytes.length >= 5) {
      const length = bytes.readUInt32BE(1);
      if (bytes.length < 5 + length) break;
      this.onMessage(bytes.subarray(5, 5 + length));
      bytes = bytes.subarray(5 + length);
    }
    this.buffered = bytes;
  }
}

/** What one server's streams did while recording. */
class Recorder {
  recording = false;
  chunksSent = 0;
  answers = 0;
  delaysMs: number[] = [];
  /** How late chunks were written against their schedule (the client's own lag). */
  lateMs: number[] = [];

  reset(): void {
    this.chunksSent = 0;
    this.answers = 0;
    this.delaysMs = [];
    this.lateMs = [];
  }
}

/** One ext_proc stream: routed, response headers answered, then one chunk per tick until stopped. */
class BenchStream {
  private readonly stream: http2.ClientHttp2Stream;
  private readonly sentAt: number[] = [];
  private answers = 0;
  private timer: NodeJS.Timeout | undefined;
  private due = 0;
  private chunkIndex = Math.floor(Math.random() * CHUNK_VARIANTS);
  private ended = false;
  private onStreaming!: () => void;
  private onLastAnswer!: (answer: Buffer) => void;
  private onFailure!: (error: Error) => void;
  readonly streaming: Promise<void>;
  private lastAnswer: Promise<Buffer> | undefined;
  private onPong: (() => void) | undefined;

  constructor(
    session: http2.ClientHttp2Session,
    private readonly frames: Frames,
    private readonly recorder: Recorder,
    private readonly intervalMs: number,
  ) {
    this.streaming = new Promise((resolve, reject) => {
      this.onStreaming = resolve;
      this.onFailure = reject;
    });
    this.stream = session.request(
      { ':method': 'POST', ':path': PROCESS_METHOD_PATH, 'content-type': 'application/grpc', te: 'trailers' },
      { endStream: false },
    );
    const reader = new MessageReader((message) => this.answer(message));
    this.stream.on('data', (data: Buffer) => reader.push(data));
    this.stream.on('error', (error: Error) => this.onFailure(error));
    this.stream.on('close', () => {
      if (!this.ended) this.onFailure(new Error(`stream closed early (${this.stream.rstCode})`));
    });
    this.stream.write(frames.requestHeaders);
  }

  /** Starts the chunk schedule at a random phase within one interval. */
  start(): void {
    this.due = performance.now() + Math.random() * this.intervalMs;
    this.timer = setTimeout(() => this.tick(), this.due - performance.now());
  }

  /** Stops the schedule and ends the response: the finish chunk, usage and [DONE]; resolves with the last answer. */
  finish(): Promise<Buffer> {
    clearTimeout(this.timer);
    this.lastAnswer = new Promise((resolve) => (this.onLastAnswer = resolve));
    this.send(this.frames.finish);
    this.send(this.frames.last);
    return this.lastAnswer;
  }

  /** One chunk, outside any schedule; resolves with the milliseconds until its answer. */
  ping(): Promise<number> {
    return new Promise((resolve) => {
      const sentAt = performance.now();
      this.onPong = () => resolve(performance.now() - sentAt);
      this.send(this.frames.chunks[this.chunkIndex++ % CHUNK_VARIANTS]);
    });
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.ended = true;
    this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  private tick(): void {
    const now = performance.now();
    const recorder = this.recorder;
    if (recorder.recording) {
      recorder.chunksSent += 1;
      recorder.lateMs.push(now - this.due);
    }
    this.send(this.frames.chunks[this.chunkIndex++ % CHUNK_VARIANTS]);
    this.due += this.intervalMs * (1 - JITTER + 2 * JITTER * Math.random());
    this.timer = setTimeout(() => this.tick(), Math.max(0, this.due - performance.now()));
  }

  private send(bytes: Buffer): void {
    this.sentAt.push(performance.now());
    this.stream.write(bytes);
  }

  private answer(message: Buffer): void {
    this.answers += 1;
    if (this.answers === 1) {
      this.stream.write(this.frames.requestBody);
    } else if (this.answers === 2) {
      this.stream.write(this.frames.responseHeaders);
    } else if (this.answers === 3) {
      const decoded = codecs.response.deserialize(message);
      if (decoded.modeOverride?.responseBodyMode !== BODY_MODE_STREAMED) {
        this.onFailure(new Error('response headers answered without switching to STREAMED'));
      } else if (this.frames.intro) {
        this.stream.write(this.frames.intro);
      } else {
        this.onStreaming();
      }
    } else if (this.answers === 4 && this.frames.intro) {
      this.onStreaming();
    } else {
      const sentAt = this.sentAt.shift()!;
      const recorder = this.recorder;
      if (recorder.recording) {
        recorder.answers += 1;
        recorder.delaysMs.push(performance.now() - sentAt);
      }
      const pong = this.onPong;
      this.onPong = undefined;
      pong?.();
      if (this.lastAnswer && this.sentAt.length === 0) {
        this.ended = true;
        this.stream.end();
        this.onLastAnswer(Buffer.from(message));
      }
    }
  }
}

function connect(address: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`, { maxSessionMemory: 1024, peerMaxConcurrentStreams: 1 << 30 });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

/** Opens `count` streams spread over the sessions; resolves when every one is streaming. */
async function openStreams(
  sessions: http2.ClientHttp2Session[],
  frames: Frames,
  recorder: Recorder,
  count: number,
  intervalMs: number,
): Promise<BenchStream[]> {
  const streams: BenchStream[] = [];
  // In batches, as Envoy's requests would arrive: not 10,000 routing decisions queued in one turn.
  const batch = 500;
  for (let i = 0; i < count; i += batch) {
    const opened = Array.from(
      { length: Math.min(batch, count - i) },
      (_, j) => new BenchStream(sessions[(i + j) % sessions.length], frames, recorder, intervalMs),
    );
    await Promise.all(opened.map((s) => s.streaming));
    streams.push(...opened);
  }
  return streams;
}

/** Ends every stream with its usage and [DONE]; for ours, checks the last answer carries the token metadata. */
async function finishStreams(streams: BenchStream[], expectMetadata: boolean): Promise<void> {
  const answers = await Promise.all(streams.map((s) => s.finish()));
  if (!expectMetadata) return;
  for (const answer of answers) {
    const metadata = codecs.response.deserialize(answer).dynamicMetadata as unknown as ProtoStruct | undefined;
    const tokens = metadata?.fields?.[METADATA_NAMESPACE]?.structValue?.fields?.[TOKEN_METADATA_KEYS.total];
    if (tokens?.numberValue !== 532)
      throw new Error(`the last answer does not carry the usage (${tokens?.numberValue})`);
  }
}

// ---------- measuring ----------

interface Window {
  ms: number;
  chunks: number;
  answers: number;
  cpuMicros: number;
  clientCpuMicros: number;
  delayP50Ms: number;
  delayP99Ms: number;
  /** How late the client wrote its chunks (p99): its own lag, which the delays include. */
  lateP99Ms: number;
  /** Share of the machine's CPU time in use (every process): near 100 %, delays are queueing for a core. */
  machineBusy: number;
}

/** Busy and total CPU time of the whole machine (/proc/stat), in clock ticks. */
function machineTicks(): { busy: number; total: number } {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((sum, n) => sum + n, 0);
  // idle and iowait
  return { busy: total - fields[3] - fields[4], total };
}

async function measure(pid: number, recorder: Recorder, ms: number): Promise<Window> {
  recorder.reset();
  recorder.recording = true;
  const ticks = cpuTicks(pid);
  const machine = machineTicks();
  const client = process.cpuUsage();
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const cpuMicros = ((cpuTicks(pid) - ticks) / CLK_TCK) * 1e6;
  const machineAfter = machineTicks();
  const clientUsage = process.cpuUsage(client);
  const elapsed = performance.now() - started;
  recorder.recording = false;
  return {
    ms: elapsed,
    chunks: recorder.chunksSent,
    answers: recorder.answers,
    cpuMicros,
    clientCpuMicros: clientUsage.user + clientUsage.system,
    delayP50Ms: percentile(recorder.delaysMs, 50),
    delayP99Ms: percentile(recorder.delaysMs, 99),
    lateP99Ms: percentile(recorder.lateMs, 99),
    machineBusy: (machineAfter.busy - machine.busy) / Math.max(1, machineAfter.total - machine.total),
  };
}

/**
 * Rounds together: CPU and counts summed; delay percentiles as the median of the rounds' (a pause of the shared
 * machine lands in one round of one server and would otherwise decide a pooled p99).
 */
function merge(windows: Window[]): Window {
  const sum = (read: (w: Window) => number) => windows.reduce((total, w) => total + read(w), 0);
  const median = (read: (w: Window) => number) => percentile(windows.map(read), 50);
  return {
    ms: sum((w) => w.ms),
    chunks: sum((w) => w.chunks),
    answers: sum((w) => w.answers),
    cpuMicros: sum((w) => w.cpuMicros),
    clientCpuMicros: sum((w) => w.clientCpuMicros),
    delayP50Ms: median((w) => w.delayP50Ms),
    delayP99Ms: median((w) => w.delayP99Ms),
    lateP99Ms: median((w) => w.lateP99Ms),
    machineBusy: median((w) => w.machineBusy),
  };
}

/** VmRSS and VmHWM (peak RSS) of a process, in bytes. */
function rssOf(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

interface Memory {
  streams: number;
  rssPerStream: number;
  heapPerStream: number;
  rssBefore: number;
  rssOpenAfterGc: number;
  rssOpenPeak: number;
  window: Window;
}

/** Memory with `count` streams open mid-response, against the same server's memory before they opened. */
async function memoryWithStreams(
  server: BenchServer,
  sessions: http2.ClientHttp2Session[],
  frames: Frames,
  count: number,
): Promise<Memory> {
  const recorder = new Recorder();
  const pid = server.child.pid!;
  // A first batch grows the heap and HTTP/2 buffers to their working size; twice GC, as in processor.bench.ts.
  for (const s of await openStreams(sessions, frames, recorder, 1000, MEMORY_INTERVAL_MS)) s.cancel();
  await new Promise((resolve) => setTimeout(resolve, 300));
  await memoryAfterGc(server);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const before = await memoryAfterGc(server);
  const streams = await openStreams(sessions, frames, recorder, count, MEMORY_INTERVAL_MS);
  for (const s of streams) s.start();
  // Every stream has had a chunk or two: its response state is live, not just its routing.
  const window = await measure(pid, recorder, 2 * MEMORY_INTERVAL_MS);
  const after = await memoryAfterGc(server);
  const { peak } = rssOf(pid);
  await finishStreams(streams, server.name === 'ours');
  return {
    streams: count,
    rssPerStream: (after.rss - before.rss) / count,
    heapPerStream: (after.heapUsed - before.heapUsed) / count,
    rssBefore: before.rss,
    rssOpenAfterGc: after.rss,
    rssOpenPeak: peak,
    window,
  };
}

/**
 * The handler alone, in this process: one chunk message decoded, handled and its answer encoded, in a stream that is
 * mid-response, without gRPC, sockets or other streams. What the processor's own code costs per chunk.
 */
async function handlerCostPerChunk(handler: ExtProcHandler, frames: Frames): Promise<number> {
  const decode = (framed: Buffer) => codecs.request.deserialize(framed.subarray(5));
  const send = (response: OutgoingResponse): void => {
    codecs.response.serialize(response);
  };
  const stream = handler.open(send, () => {});
  const opening = [frames.requestHeaders, frames.requestBody, frames.responseHeaders];
  if (frames.intro) opening.push(frames.intro);
  for (const message of opening) stream.message(decode(message));
  await new Promise((resolve) => setImmediate(resolve));
  const one = (i: number) => stream.message(decode(frames.chunks[i % CHUNK_VARIANTS]));
  for (let i = 0; i < 50_000; i++) one(i);
  const count = 500_000;
  const before = process.cpuUsage();
  for (let i = 0; i < count; i++) one(i);
  const used = process.cpuUsage(before);
  void stream.close(true);
  return (used.user + used.system) / count;
}

// ---------- main ----------

type Which = 'null' | 'ours';
const BOTH: readonly Which[] = ['null', 'ours'];

async function main(): Promise<void> {
  const totalStart = performance.now();
  const { work, nullProcessor } = await benchWorkspace('aigw-bench-streams-', ['openai', 'anthropic']);
  fs.writeFileSync(path.join(work, 'config.json'), JSON.stringify(streamsConfig()));
  const frames = streamFrames();

  const servers: Record<Which, BenchServer> = {
    null: await (async () => {
      const address = `127.0.0.1:${await freePort()}`;
      const profile = process.env.BENCH_PROFILE_DIR
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`, '--cpu-prof-name=null.cpuprofile']
        : [];
      return startProcess('null', [...profile, nullProcessor, address], address, { gcHook: true });
    })(),
    ours: await (async () => {
      const { args, address } = await processorArgs(work);
      return startProcess('ours', args, address, { gcHook: true });
    })(),
  };
  const sessions = {} as Record<Which, http2.ClientHttp2Session[]>;
  for (const which of BOTH)
    sessions[which] = await Promise.all(Array.from({ length: CONNECTIONS }, () => connect(servers[which].address)));

  // BENCH_ONLY=load|memory: one part.
  const only = process.env.BENCH_ONLY;
  const load = only === 'memory' ? undefined : await runLoad(servers, sessions, frames);
  const pingPong = only === 'memory' ? undefined : await runPingPong(sessions, frames);
  const memory = {} as Record<Which, Memory>;
  if (only !== 'load') {
    for (const which of BOTH)
      memory[which] = await memoryWithStreams(servers[which], sessions[which], frames, MEMORY_STREAMS);
  }

  for (const which of BOTH) {
    for (const session of sessions[which]) session.close();
    await stopServer(servers[which]);
  }
  // After the servers: this process has the machine to itself again.
  const app = new ProcessorApp({
    config: path.join(work, 'config.json'),
    secretsDir: path.join(work, 'secrets'),
    listen: '127.0.0.1:0',
    admin: undefined,
    pollIntervalMs: 60_000,
    logger: silentLogger,
  });
  const handlerCost = {
    null: await handlerCostPerChunk(nullHandler, frames),
    ours: await handlerCostPerChunk(app.processor, frames),
  };
  fs.rmSync(work, { recursive: true, force: true });

  console.log(
    `streams benchmark (node ${process.version}, ${os.cpus().length} cores, ${CONNECTIONS} HTTP/2 connections ` +
      `per server; ${PROVIDER === 'anthropic' ? 'Anthropic events translated to OpenAI chunks' : 'OpenAI chunks'})`,
  );
  const checks: Array<[string, boolean]> = [];
  if (load) checks.push(...reportLoad(load));
  if (pingPong) {
    const at = (which: Which, p: number) => percentile(pingPong[which], p).toFixed(3);
    const line = (which: Which) => `${which} p50 ${at(which, 50)} ms, p99 ${at(which, 99)} ms`;
    const added = (p: number) => ((percentile(pingPong.ours, p) - percentile(pingPong.null, p)) * 1000).toFixed(0);
    console.log(
      `one stream, one chunk at a time (${PING_PONGS} chunks per server): ${line('null')}; ${line('ours')} ` +
        `(added p50 ${added(50)} µs, p99 ${added(99)} µs)`,
    );
  }
  console.log(
    `handler alone, in the bench process (a chunk message decoded, handled, its answer encoded; no gRPC): null ` +
      `${handlerCost.null.toFixed(2)} µs, ours ${handlerCost.ours.toFixed(2)} µs ` +
      `(+${(handlerCost.ours - handlerCost.null).toFixed(2)} µs)`,
  );
  if (only !== 'load') checks.push(...reportMemory(memory));
  console.log('\ntargets:');
  for (const [label, ok] of checks) console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${label}`);
  console.log(`\ntotal bench time ${((performance.now() - totalStart) / 1000).toFixed(1)} s`);
}

/** N streams, a chunk per interval each; rounds alternate between the servers. */
async function runLoad(
  servers: Record<Which, BenchServer>,
  sessions: Record<Which, http2.ClientHttp2Session[]>,
  frames: Frames,
): Promise<Record<Which, Window>> {
  const windows: Record<Which, Window[]> = { null: [], ours: [] };
  for (let round = 0; round <= ROUNDS; round++) {
    for (const which of BOTH) {
      const recorder = new Recorder();
      const streams = await openStreams(sessions[which], frames, recorder, LOAD_STREAMS, LOAD_INTERVAL_MS);
      for (const s of streams) s.start();
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      const window = await measure(servers[which].child.pid!, recorder, WINDOW_MS);
      // Round 0 warms both servers up (JIT, heap, buffers) and is not counted.
      if (round > 0) windows[which].push(window);
      if (process.env.BENCH_VERBOSE)
        console.log(
          `round ${round} ${which}: ${(window.cpuMicros / window.answers).toFixed(1)} µs/chunk, delay p50 ` +
            `${window.delayP50Ms.toFixed(3)} p99 ${window.delayP99Ms.toFixed(3)} ms, client late p99 ` +
            `${window.lateP99Ms.toFixed(2)} ms, machine busy ${(window.machineBusy * 100).toFixed(0)}%`,
        );
      await finishStreams(streams, which === 'ours');
    }
  }
  return { null: merge(windows.null), ours: merge(windows.ours) };
}

/**
 * One stream, one chunk at a time (the next written when the answer to the last is read), alternating between the
 * servers in rounds: the delay a chunk meets with no other traffic, so no queueing behind other streams' chunks.
 */
async function runPingPong(
  sessions: Record<Which, http2.ClientHttp2Session[]>,
  frames: Frames,
): Promise<Record<Which, number[]>> {
  const streams = {} as Record<Which, BenchStream>;
  for (const which of BOTH) [streams[which]] = await openStreams(sessions[which], frames, new Recorder(), 1, 0);
  const delays: Record<Which, number[]> = { null: [], ours: [] };
  for (let round = 0; round <= ROUNDS; round++) {
    for (const which of BOTH) {
      for (let i = 0; i < PING_PONGS / ROUNDS; i++) {
        const ms = await streams[which].ping();
        if (round > 0) delays[which].push(ms);
      }
    }
  }
  await Promise.all(BOTH.map((which) => finishStreams([streams[which]], which === 'ours')));
  return delays;
}

function reportLoad(load: Record<Which, Window>): Array<[string, boolean]> {
  const intended = (LOAD_STREAMS * 1000) / LOAD_INTERVAL_MS;
  console.log(
    `load: ${LOAD_STREAMS} open streams, a chunk every ${LOAD_INTERVAL_MS} ms ±${JITTER * 100}% each ` +
      `(${intended.toFixed(0)} chunks/s intended), ${ROUNDS} rounds of ${WINDOW_MS} ms per server, alternating`,
  );
  const columns: Array<[string, number, (w: Window) => string]> = [
    ['chunks/s', 10, (w) => ((w.chunks * 1000) / w.ms).toFixed(0)],
    ['of plan', 9, (w) => `${(((w.chunks * 1000) / w.ms / intended) * 100).toFixed(1)}%`],
    ['CPU µs/chunk', 14, (w) => (w.cpuMicros / w.answers).toFixed(1)],
    ['cores/1k streams', 18, (w) => (((w.cpuMicros / 1000 / w.ms) * 1000) / LOAD_STREAMS).toFixed(3)],
    ['delay p50 ms', 14, (w) => w.delayP50Ms.toFixed(3)],
    ['p99 ms', 9, (w) => w.delayP99Ms.toFixed(3)],
    ['client late p99', 17, (w) => `${w.lateP99Ms.toFixed(2)} ms`],
    ['client CPU', 12, (w) => `${((w.clientCpuMicros / 1000 / w.ms) * 100).toFixed(0)}%`],
    ['machine busy', 14, (w) => `${(w.machineBusy * 100).toFixed(0)}%`],
  ];
  console.log(`${'server'.padEnd(7)}${columns.map(([name, width]) => name.padStart(width)).join('')}`);
  for (const which of BOTH)
    console.log(`${which.padEnd(7)}${columns.map(([, width, cell]) => cell(load[which]).padStart(width)).join('')}`);
  console.log("(delays: the median over the rounds of each round's p50 and p99)");
  const busiest = Math.max(load.null.machineBusy, load.ours.machineBusy);
  if (busiest > 0.9)
    console.log(
      `the machine was saturated (${(busiest * 100).toFixed(0)}% busy): delays include waiting for a core, ` +
        'rerun on a quiet machine',
    );
  const perChunk = (which: Which) => load[which].cpuMicros / load[which].answers;
  const { null: base, ours } = load;
  console.log(
    `processor's own share: +${(perChunk('ours') - perChunk('null')).toFixed(1)} µs CPU per chunk ` +
      `(${(perChunk('ours') / perChunk('null')).toFixed(2)}x null); added delay p50 ` +
      `${((ours.delayP50Ms - base.delayP50Ms) * 1000).toFixed(0)} µs, p99 ` +
      `${((ours.delayP99Ms - base.delayP99Ms) * 1000).toFixed(0)} µs`,
  );
  const achieved = (ours.chunks * 1000) / ours.ms / intended;
  return [
    [`client kept its schedule (ours ${(achieved * 100).toFixed(1)}% of the intended chunk rate)`, achieved >= 0.97],
    [`<= 30 µs CPU per chunk message (${perChunk('ours').toFixed(1)})`, perChunk('ours') <= 30],
  ];
}

function reportMemory(memory: Record<Which, Memory>): Array<[string, boolean]> {
  console.log(
    `\nmemory: ${MEMORY_STREAMS} open streams mid-response (a chunk every ${MEMORY_INTERVAL_MS} ms each), after GC`,
  );
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
  for (const which of BOTH) {
    const m = memory[which];
    console.log(
      `  ${which.padEnd(5)} per stream: RSS ${(m.rssPerStream / 1024).toFixed(1)} KB, JS heap ` +
        `${(m.heapPerStream / 1024).toFixed(1)} KB; RSS before ${mib(m.rssBefore)}, open ${mib(m.rssOpenAfterGc)} ` +
        `after GC, peak ${mib(m.rssOpenPeak)}; ${((m.window.cpuMicros / 1000 / m.window.ms) * 100).toFixed(0)}% ` +
        `of a core at ${((m.window.chunks * 1000) / m.window.ms).toFixed(0)} chunks/s, delay p50 ` +
        `${m.window.delayP50Ms.toFixed(2)} ms, p99 ${m.window.delayP99Ms.toFixed(2)} ms`,
    );
  }
  const ours = memory.ours;
  return [
    [
      `${MEMORY_STREAMS} open streams within 512 MiB (peak RSS ${mib(ours.rssOpenPeak)})`,
      ours.rssOpenPeak <= MEMORY_LIMIT,
    ],
  ];
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
