/**
 * What the processor benchmarks share: Envoy-like message encoding and exchanges, the bench config, starting the
 * servers (our processor and the null one) and reading their CPU ticks and memory, ports, stopping.
 */
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { build } from 'esbuild';
import { CONFIG_VERSION, PROCESSOR_NODE_OPTIONS, type ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import type * as grpc from '@grpc/grpc-js';
import { extProcCodecs, PROCESS_METHOD_PATH } from '../src/grpc/codec';
import { loadProtoRoot } from '../src/grpc/descriptor';
import type { OutgoingResponse, ProcessingRequest } from '../src/grpc/messages';
import type { ExtProcHandler } from '../src/grpc/server';

const ROOT = path.resolve(__dirname, '..');
export const CLK_TCK = Number(execSync('getconf CLK_TCK').toString().trim());
const codecs = extProcCodecs(loadProtoRoot());
const identity = (b: Buffer): Buffer => b;

export function encodeRequest(message: ProcessingRequest): Buffer {
  return codecs.request.serialize(message);
}

export function headerList(entries: Record<string, string>) {
  return { headers: Object.entries(entries).map(([key, value]) => ({ key, rawValue: Buffer.from(value) })) };
}

/** What Envoy forwards for an OpenAI SDK's chat request through the gateway, plus `extra`. */
export function clientRequestHeaders(body: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ':method': 'POST',
    ':path': '/v1/chat/completions',
    ':authority': 'gateway.example.com',
    ':scheme': 'https',
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    accept: 'application/json',
    'user-agent': 'OpenAI/Python 1.54.0',
    authorization: 'Bearer client-key',
    'x-forwarded-for': '10.0.0.7',
    'x-request-id': '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
    ...extra,
  };
}

/** A chat request body of about `contentBytes` bytes. */
export function chatBody(contentBytes: number, stream: boolean): string {
  const base = {
    model: 'gpt-4o',
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: '' },
    ],
    temperature: 0.2,
    stream,
  };
  const fixed = JSON.stringify(base).length;
  base.messages[1].content = 'lorem ipsum dolor sit amet '
    .repeat(Math.ceil(contentBytes / 27))
    .slice(0, Math.max(0, contentBytes - fixed));
  return JSON.stringify(base);
}

/** Encodes one request's messages as Envoy sends them; the last response body chunk ends the stream. */
export function encodeExchange(
  requestHeaders: Record<string, string>,
  body: string,
  responseHeaders: Record<string, string>,
  responseBodies: Buffer[],
): EncodedExchange {
  return {
    requestHeaders: encodeRequest({ requestHeaders: { headers: headerList(requestHeaders), endOfStream: false } }),
    requestBody: encodeRequest({ requestBody: { body: Buffer.from(body), endOfStream: true } }),
    responseHeaders: encodeRequest({ responseHeaders: { headers: headerList(responseHeaders), endOfStream: false } }),
    responseBodies: responseBodies.map((chunk, i) =>
      encodeRequest({ responseBody: { body: chunk, endOfStream: i === responseBodies.length - 1 } }),
    ),
  };
}

/** One request's ext_proc messages, encoded once up front. */
export interface EncodedExchange {
  requestHeaders: Buffer;
  requestBody: Buffer;
  responseHeaders: Buffer;
  responseBodies: Buffer[];
}

/** An ext_proc stream that sends and receives encoded messages as they are. */
export function openRawStream(client: grpc.Client): grpc.ClientDuplexStream<Buffer, Buffer> {
  return client.makeBidiStreamRequest(PROCESS_METHOD_PATH, identity, identity);
}

/** One request: headers, body, response headers, response body chunks (pipelined), like Envoy. */
export function exchange(client: grpc.Client, e: EncodedExchange): Promise<void> {
  return new Promise((resolve, reject) => {
    const call = openRawStream(client);
    const total = 3 + e.responseBodies.length;
    let received = 0;
    call.on('data', () => {
      received += 1;
      if (received === 1) call.write(e.requestBody);
      else if (received === 2) call.write(e.responseHeaders);
      else if (received === 3) for (const chunk of e.responseBodies) call.write(chunk);
      else if (received === total) {
        call.end();
        resolve();
      }
    });
    call.on('error', reject);
    call.write(e.requestHeaders);
  });
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** utime + stime of a process, in clock ticks. */
export function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  child.removeAllListeners('exit');
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/**
 * A fresh temp folder for one bench run, holding the null processor (built) and an API key `sk-bench` under
 * `secrets/<name>/apiKey` for each name (the bench configs read their keys there).
 */
export async function benchWorkspace(
  prefix: string,
  secretNames: readonly string[],
): Promise<{ work: string; nullProcessor: string }> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const nullProcessor = await buildNullProcessor(work);
  for (const name of secretNames) {
    fs.mkdirSync(path.join(work, 'secrets', name), { recursive: true });
    fs.writeFileSync(path.join(work, 'secrets', name, 'apiKey'), 'sk-bench\n');
  }
  return { work, nullProcessor };
}

/** Bundles bench/null-processor.ts to `<dir>/null.js`, built like dist/main.js (minified). */
export async function buildNullProcessor(dir: string): Promise<string> {
  const outfile = path.join(dir, 'null.js');
  await build({
    entryPoints: [path.join(__dirname, 'null-processor.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    minify: true,
    external: ['../../scripts/descriptor.cjs'],
    logLevel: 'warning',
  });
  return outfile;
}

/** The processor config every bench scenario runs with: one OpenAI backend, one route, a CEL cost. */
export function benchConfig(): ProcessorConfig {
  return {
    version: CONFIG_VERSION,
    maxRequestBodyBytes: 4 * 1024 * 1024,
    backends: [
      {
        name: 'openai',
        schema: { name: 'OpenAI', pathPrefix: '/v1' },
        endpoint: { hostname: 'api.openai.com', port: 443, tls: true },
        auth: { type: 'APIKey', secret: { secretName: 'openai', key: 'apiKey' } },
      },
    ],
    routes: [
      {
        name: 'bench/chat',
        endpoints: [{ api: 'OpenAI', pathPrefix: '/v1' }],
        hostnames: [],
        rules: [
          {
            models: [
              { type: 'Exact', value: 'gpt-4o' },
              { type: 'Prefix', value: 'gpt-4o-' },
            ],
            backends: [{ backend: 'openai', weight: 1, priority: 0 }],
          },
        ],
        requiredHeaders: ['x-tenant-id'],
      },
    ],
    costs: process.env.BENCH_NO_CEL
      ? [{ metadataKey: 'total_tokens', type: 'TotalToken' }]
      : [{ metadataKey: 'weighted_tokens', type: 'CEL', expression: 'input_tokens + 4 * output_tokens' }],
    circuitBreaker: { failureThreshold: 5, openDurationMs: 30000 },
  };
}

/**
 * Node arguments that run our processor (dist/main.js) on a free port with `<work>/config.json` and
 * `<work>/secrets`. BENCH_PROFILE_DIR=<dir> writes a V8 CPU profile of each run; BENCH_NODE_FLAGS adds node flags
 * (e.g. --heap-prof), BENCH_OURS_ARGS processor flags.
 */
export async function processorArgs(work: string): Promise<{ args: string[]; address: string }> {
  const address = `127.0.0.1:${await freePort()}`;
  return {
    address,
    args: [
      ...(process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : []),
      ...(process.env.BENCH_NODE_FLAGS ? process.env.BENCH_NODE_FLAGS.split(' ') : []),
      path.join(ROOT, 'dist', 'main.js'),
      '--config',
      path.join(work, 'config.json'),
      '--secrets-dir',
      path.join(work, 'secrets'),
      '--listen',
      address,
      '--admin',
      `127.0.0.1:${await freePort()}`,
      '--log-level',
      'warn',
      ...(process.env.BENCH_OURS_ARGS ? process.env.BENCH_OURS_ARGS.split(' ') : []),
    ],
  };
}

export interface LoadResult {
  requests: number;
  cpuMicros: number;
  latenciesMs: number[];
}

/**
 * `concurrency` clients repeating exchange `e` for `ms` (`run`: the whole exchange unless told otherwise); the
 * server's CPU from /proc over that window.
 */
export async function load(
  client: grpc.Client,
  pid: number,
  e: EncodedExchange,
  concurrency: number,
  ms: number,
  run: (client: grpc.Client, e: EncodedExchange) => Promise<void> = exchange,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let requests = 0;
  const ticksBefore = cpuTicks(pid);
  const deadline = performance.now() + ms;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const started = performance.now();
      await run(client, e);
      latencies.push(performance.now() - started);
      requests += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const cpuMicros = ((cpuTicks(pid) - ticksBefore) / CLK_TCK) * 1e6;
  return { requests, cpuMicros, latenciesMs: latencies };
}

/** A server process under test (ours or the null processor). */
export interface BenchServer {
  name: string;
  child: ChildProcess;
  address: string;
  readyMs: number;
  memoryFile: string;
}

/** Starts a server process; resolves at its ready line. `gcHook`: preload bench/gc-hook.cjs (see memoryAfterGc). */
export function startProcess(
  name: string,
  args: string[],
  address: string,
  options: { gcHook?: boolean } = {},
): Promise<BenchServer> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const memoryFile = path.join(os.tmpdir(), `aigw-bench-memory-${name}-${process.pid}.json`);
    const hook = options.gcHook ? ['--expose-gc', '--require', path.join(__dirname, 'gc-hook.cjs')] : [];
    const child = spawn(process.execPath, [...PROCESSOR_NODE_OPTIONS, ...hook, ...args], {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, BENCH_MEMORY_FILE: memoryFile },
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
    child.stdout.once('data', () =>
      resolve({ name, child, address, readyMs: performance.now() - started, memoryFile }),
    );
  });
}

export async function stopServer(server: BenchServer): Promise<void> {
  await stopProcess(server.child);
  fs.rmSync(server.memoryFile, { force: true });
}

/** RSS after a full GC in the server (bench/gc-hook.cjs answers SIGUSR2 by writing its memory usage). */
export async function memoryAfterGc(server: BenchServer): Promise<{ rss: number; heapUsed: number }> {
  fs.rmSync(server.memoryFile, { force: true });
  server.child.kill('SIGUSR2');
  const deadline = Date.now() + 5000;
  while (!fs.existsSync(server.memoryFile) || fs.statSync(server.memoryFile).size === 0) {
    if (Date.now() > deadline) throw new Error(`${server.name}: no memory report`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
  const usage = JSON.parse(fs.readFileSync(server.memoryFile, 'utf8')) as { rss: number; heapUsed: number };
  return { rss: usage.rss, heapUsed: usage.heapUsed };
}

/**
 * µs of CPU per exchange through `handler` in this process (each message decoded, handled, its answer encoded; no
 * gRPC), after `warmup` exchanges.
 */
export function handlerCpuMicros(handler: ExtProcHandler, messages: Buffer[], warmup: number, count: number): number {
  const send = (response: OutgoingResponse): void => {
    codecs.response.serialize(response);
  };
  const one = (): void => {
    const stream = handler.open(send, () => {});
    for (const message of messages) stream.message(codecs.request.deserialize(message));
    void stream.close(false);
  };
  for (let i = 0; i < warmup; i++) one();
  const before = process.cpuUsage();
  for (let i = 0; i < count; i++) one();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / count;
}
