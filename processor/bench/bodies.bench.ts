/**
 * `npx tsx processor/bench/bodies.bench.ts` (build first: `npm run build -w processor`): request bodies from 1 KB to
 * 20 MB, chat requests carrying a base64 image in an `image_url` part, through our processor (dist/main.js) and the
 * null processor, each in its own process, driven alternately by the same Envoy-like client.
 *
 * Per size: server CPU per request (utime + stime from /proc across the measured rounds), the ratio to the null, and
 * the peak RSS of each process while that size ran (VmHWM, reset before each size). One translated row (1 MB to an
 * Anthropic backend) is context without a target. Then, in this process, what reading a body costs by method: the
 * scan of the forwarded path, a full JSON.parse, and a byte loop over every byte (the least that checking every
 * string's contents would cost): the numbers behind leaving raw control characters in strings to the provider.
 *
 * BENCH_MEASURE_MS: measured time per size and server (default 3000, split in 6 alternating rounds). BENCH_ONLY: a
 * substring of the scenario names to run (e.g. `1 MB`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CONFIG_VERSION, PROCESSOR_NODE_OPTIONS, type ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import { scanJsonBody } from '../src/extproc/json-body';
import { EnvoyClient } from '../test/support/envoy-client';
import {
  benchWorkspace,
  clientRequestHeaders,
  CLK_TCK,
  cpuTicks,
  encodeExchange,
  exchange,
  freePort,
  stopProcess,
  type EncodedExchange,
} from './harness';

const ROOT = path.resolve(__dirname, '..');
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 3000);
const ROUNDS = 6;
const KB = 1024;
const MB = 1024 * 1024;
/** The Deployment's default memory limit. */
const MEMORY_LIMIT = 512 * MB;

interface Scenario extends EncodedExchange {
  name: string;
  bytes: number;
  concurrency: number;
  body: string;
  path: string;
  translated: boolean;
  response: { contentType: string; body: string };
}

/** Deterministic base64 "image" bytes (xorshift), so runs compare. */
function imageBase64(bytes: number): string {
  const raw = Buffer.allocUnsafe(Math.ceil((bytes * 3) / 4));
  let x = 0x9e3779b9;
  for (let i = 0; i < raw.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    raw[i] = x & 0xff;
  }
  return raw.toString('base64').slice(0, bytes);
}

/** An OpenAI chat request of `total` bytes: a question and a PNG data URL, as the OpenAI SDKs send it. */
function imageChatBody(model: string, total: number): string {
  const build = (image: string) =>
    JSON.stringify({
      model,
      messages: [
        { role: 'system', content: 'You are a helpful assistant that describes images.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in this image? Answer in one sentence.' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${image}`, detail: 'auto' } },
          ],
        },
      ],
      max_tokens: 300,
      temperature: 0.2,
      stream: false,
    });
  const fixed = build('').length;
  return build(imageBase64(Math.max(0, total - fixed)));
}

const OPENAI_RESPONSE = JSON.stringify({
  id: 'chatcmpl-123',
  object: 'chat.completion',
  created: 1731618222,
  model: 'gpt-4o-2024-08-06',
  choices: [
    { index: 0, message: { role: 'assistant', content: 'A cat asleep on a windowsill.' }, finish_reason: 'stop' },
  ],
  usage: { prompt_tokens: 1105, completion_tokens: 9, total_tokens: 1114 },
});

const ANTHROPIC_RESPONSE = JSON.stringify({
  id: 'msg_123',
  type: 'message',
  role: 'assistant',
  model: 'claude-sonnet-4',
  content: [{ type: 'text', text: 'A cat asleep on a windowsill.' }],
  stop_reason: 'end_turn',
  usage: { input_tokens: 1105, output_tokens: 9 },
});

function concurrencyFor(bytes: number): number {
  if (bytes <= 100 * KB) return 16;
  if (bytes <= MB) return 8;
  if (bytes <= 5 * MB) return 4;
  return 2;
}

function scenario(name: string, bytes: number, model: string, translated: boolean): Scenario {
  const body = imageChatBody(model, bytes);
  const response = translated ? ANTHROPIC_RESPONSE : OPENAI_RESPONSE;
  const requestPath = '/v1/chat/completions';
  return {
    name,
    bytes: Buffer.byteLength(body),
    concurrency: concurrencyFor(bytes),
    body,
    path: requestPath,
    translated,
    response: { contentType: 'application/json', body: response },
    ...encodeExchange(
      clientRequestHeaders(body, { 'x-tenant-id': 'acme' }),
      body,
      {
        ':status': '200',
        'content-type': 'application/json',
        'content-length': String(response.length),
        date: 'Thu, 14 Nov 2024 21:03:42 GMT',
      },
      [Buffer.from(response)],
    ),
  };
}

function benchConfig(): ProcessorConfig {
  return {
    version: CONFIG_VERSION,
    // AIRoute's default (lib/ai-route.ts).
    maxRequestBodyBytes: 50 * MB,
    backends: [
      {
        name: 'openai',
        schema: { name: 'OpenAI', pathPrefix: '/v1' },
        endpoint: { hostname: 'api.openai.com', port: 443, tls: true },
        auth: { type: 'APIKey', secret: { secretName: 'openai', key: 'apiKey' } },
      },
      {
        name: 'anthropic',
        schema: { name: 'Anthropic', version: '2023-06-01' },
        endpoint: { hostname: 'api.anthropic.com', port: 443, tls: true },
        auth: { type: 'APIKey', secret: { secretName: 'anthropic', key: 'apiKey' } },
      },
    ],
    routes: [
      {
        name: 'bench/chat',
        endpoints: [{ api: 'OpenAI', pathPrefix: '/v1' }],
        hostnames: [],
        rules: [
          { models: [{ type: 'Exact', value: 'gpt-4o' }], backends: [{ backend: 'openai', weight: 1, priority: 0 }] },
          {
            models: [{ type: 'Prefix', value: 'claude-' }],
            backends: [{ backend: 'anthropic', weight: 1, priority: 0 }],
          },
        ],
        requiredHeaders: ['x-tenant-id'],
      },
    ],
    costs: [{ metadataKey: 'weighted_tokens', type: 'CEL', expression: 'input_tokens + 4 * output_tokens' }],
    circuitBreaker: { failureThreshold: 5, openDurationMs: 30000 },
  };
}

// ---------- servers ----------

interface Server {
  name: string;
  child: ChildProcess;
  address: string;
}

/** Servers still running: stopped when the bench ends, also on an error. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

function startProcess(name: string, args: string[], address: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...PROCESSOR_NODE_OPTIONS, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.add(child);
    child.once('exit', () => children.delete(child));
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
    child.stdout.once('data', () => resolve({ name, child, address }));
  });
}

function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no ${field} for ${pid}`);
  return Number(match[1]);
}

/** Resets the process's peak RSS to its current RSS (Linux: clear_refs 5). */
function resetPeak(pid: number): void {
  fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** One exchange through EnvoyClient: routed, forwarded unchanged (or translated), counted. */
async function verify(address: string, s: Scenario, ours: boolean): Promise<void> {
  const client = new EnvoyClient(address);
  try {
    const result = await client.exchange(
      { path: s.path, body: s.body, headers: { 'x-tenant-id': 'acme' } },
      (request) => {
        if (ours && !s.translated && !request.body.equals(Buffer.from(s.body)))
          throw new Error(`${s.name}: the body was not forwarded unchanged`);
        if (ours && s.translated && request.path !== '/v1/messages')
          throw new Error(`${s.name}: not translated (${request.path})`);
        return { status: 200, headers: { 'content-type': s.response.contentType }, body: s.response.body };
      },
    );
    if (result.immediate || result.status !== 200) throw new Error(`${s.name}: not routed (status ${result.status})`);
    if (ours && typeof result.metadata['io.envoy.ai_gateway']?.weighted_tokens !== 'number')
      throw new Error(`${s.name}: no usage metadata`);
  } finally {
    client.close();
  }
}

async function load(
  client: grpc.Client,
  pid: number,
  s: Scenario,
  ms: number,
): Promise<{ requests: number; ticks: number }> {
  let requests = 0;
  const before = cpuTicks(pid);
  const deadline = performance.now() + ms;
  const worker = async (): Promise<void> => {
    // At least one request per worker, so the largest bodies are measured even in a short round.
    do {
      await exchange(client, s);
      requests += 1;
    } while (performance.now() < deadline);
  };
  await Promise.all(Array.from({ length: s.concurrency }, worker));
  return { requests, ticks: cpuTicks(pid) - before };
}

// ---------- reading a body, in this process ----------

function timePerCall(fn: () => unknown, minMs: number): number {
  fn();
  let calls = 0;
  const started = process.cpuUsage();
  const wall = performance.now();
  while (performance.now() - wall < minMs) {
    fn();
    calls += 1;
  }
  const used = process.cpuUsage(started);
  return (used.user + used.system) / calls;
}

function everyByteBelowSpace(raw: Buffer): number {
  let found = 0;
  for (let i = 0; i < raw.length; i++) if (raw[i] < 0x20) found += 1;
  return found;
}

// ---------- main ----------

interface Row {
  scenario: Scenario;
  cpuUs: Record<'null' | 'ours', number>;
  peakRssMb: Record<'null' | 'ours', number>;
  requests: Record<'null' | 'ours', number>;
}

async function main(): Promise<void> {
  const started = performance.now();
  // BENCH_MAIN_JS: another build of the processor (e.g. the one before a change) in place of dist/main.js.
  const mainJs = path.resolve(process.env.BENCH_MAIN_JS ?? path.join(ROOT, 'dist', 'main.js'));
  if (!fs.existsSync(mainJs)) throw new Error(`${mainJs} is missing: run \`npm run build -w processor\` first`);
  const { work, nullProcessor } = await benchWorkspace('aigw-bodies-bench-', ['openai', 'anthropic']);
  fs.writeFileSync(path.join(work, 'config.json'), JSON.stringify(benchConfig()));

  const sizes: Array<[string, number]> = [
    ['1 KB', KB],
    ['10 KB', 10 * KB],
    ['100 KB', 100 * KB],
    ['1 MB', MB],
    ['5 MB', 5 * MB],
    ['20 MB', 20 * MB],
  ];
  const scenarios = [
    ...sizes.map(([label, bytes]) => scenario(`${label} passthrough`, bytes, 'gpt-4o', false)),
    scenario('1 MB to Anthropic', MB, 'claude-sonnet-4', true),
  ].filter((s) => !process.env.BENCH_ONLY || s.name.includes(process.env.BENCH_ONLY));

  const servers = {
    null: await (async () => {
      const address = `127.0.0.1:${await freePort()}`;
      const flags = process.env.BENCH_NULL_NODE_FLAGS
        ? process.env.BENCH_NULL_NODE_FLAGS.split(' ').filter(Boolean)
        : [];
      return startProcess('null', [...flags, nullProcessor, address], address);
    })(),
    ours: await (async () => {
      const address = `127.0.0.1:${await freePort()}`;
      const args = [
        // BENCH_NODE_FLAGS (BENCH_NULL_NODE_FLAGS for the null): extra node flags, e.g. --cpu-prof.
        ...(process.env.BENCH_NODE_FLAGS ? process.env.BENCH_NODE_FLAGS.split(' ').filter(Boolean) : []),
        mainJs,
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
      ];
      return startProcess('ours', args, address);
    })(),
  };
  const which = ['null', 'ours'] as const;
  const idleRssMb = { null: 0, ours: 0 };
  for (const w of which) idleRssMb[w] = statusKb(servers[w].child.pid!, 'VmRSS') / 1024;
  const clients = {} as Record<'null' | 'ours', grpc.Client>;
  for (const w of which) {
    for (const s of scenarios) await verify(servers[w].address, s, w === 'ours');
    clients[w] = new grpc.Client(servers[w].address, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': -1,
      'grpc.max_receive_message_length': -1,
    });
  }

  const rows: Row[] = [];
  for (const s of scenarios) {
    const ticks = { null: 0, ours: 0 };
    const requests = { null: 0, ours: 0 };
    const peakRssMb = { null: 0, ours: 0 };
    for (const w of which) {
      await load(clients[w], servers[w].child.pid!, s, Math.min(500, MEASURE_MS / 4));
      resetPeak(servers[w].child.pid!);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const w of which) {
        const result = await load(clients[w], servers[w].child.pid!, s, MEASURE_MS / ROUNDS);
        ticks[w] += result.ticks;
        requests[w] += result.requests;
      }
    }
    for (const w of which) peakRssMb[w] = statusKb(servers[w].child.pid!, 'VmHWM') / 1024;
    const cpuUs = {
      null: ((ticks.null / CLK_TCK) * 1e6) / requests.null,
      ours: ((ticks.ours / CLK_TCK) * 1e6) / requests.ours,
    };
    rows.push({ scenario: s, cpuUs, peakRssMb, requests });
  }

  // A single 20 MB request at a time: the memory one such body costs.
  const largest = scenarios.find((s) => s.name === '20 MB passthrough');
  const single = { null: NaN, ours: NaN };
  for (const w of largest ? which : []) {
    const pid = servers[w].child.pid!;
    resetPeak(pid);
    for (let i = 0; i < 5; i++) await exchange(clients[w], largest!);
    single[w] = statusKb(pid, 'VmHWM') / 1024;
  }

  for (const w of which) {
    clients[w].close();
    await stopProcess(servers[w].child);
  }
  fs.rmSync(work, { recursive: true, force: true });

  // In this process, the servers stopped.
  const reading = [MB, 20 * MB].map((bytes) => {
    const raw = Buffer.from(imageChatBody('gpt-4o', bytes));
    const ms = 600;
    return {
      bytes,
      scan: timePerCall(() => scanJsonBody(raw), ms),
      parse: timePerCall(() => JSON.parse(raw.toString('utf8')), ms),
      loop: timePerCall(() => everyByteBelowSpace(raw), ms),
    };
  });

  // ---------- report ----------
  const pad = (text: string, width: number) => text.padStart(width);
  console.log(
    `request bodies (node ${process.version}, ${os.cpus().length} cores, ${MEASURE_MS} ms per size and server ` +
      `in ${ROUNDS} alternating rounds; idle RSS null ${idleRssMb.null.toFixed(0)} MB, ours ` +
      `${idleRssMb.ours.toFixed(0)} MB)`,
  );
  console.log(
    `${'scenario'.padEnd(22)}${pad('conc', 5)}${pad('null µs/req', 13)}${pad('ours µs/req', 13)}${pad('ratio', 7)}` +
      `${pad('ours extra', 12)}${pad('null peak', 11)}${pad('ours peak', 11)}${pad('requests', 10)}`,
  );
  for (const row of rows) {
    const { cpuUs, peakRssMb, requests } = row;
    console.log(
      `${row.scenario.name.padEnd(22)}${pad(String(row.scenario.concurrency), 5)}${pad(cpuUs.null.toFixed(0), 13)}` +
        `${pad(cpuUs.ours.toFixed(0), 13)}${pad(`${(cpuUs.ours / cpuUs.null).toFixed(2)}x`, 7)}` +
        `${pad(`${(cpuUs.ours - cpuUs.null).toFixed(0)} µs`, 12)}${pad(`${peakRssMb.null.toFixed(0)} MB`, 11)}` +
        `${pad(`${peakRssMb.ours.toFixed(0)} MB`, 11)}${pad(`${requests.null}/${requests.ours}`, 10)}`,
    );
  }
  if (largest) {
    console.log(
      `one 20 MB request at a time, after the runs above: peak RSS null ${single.null.toFixed(0)} MB, ours ` +
        `${single.ours.toFixed(0)} MB`,
    );
  }
  console.log('\nreading a body in this process (CPU µs per body; µs per MB):');
  for (const r of reading) {
    const perMb = (us: number) => `${us.toFixed(0)} (${(us / (r.bytes / MB)).toFixed(0)}/MB)`;
    console.log(
      `  ${`${r.bytes / MB} MB`.padEnd(6)} scan (forwarded path) ${perMb(r.scan)}; toString + JSON.parse ` +
        `${perMb(r.parse)}; a JS loop over every byte ${perMb(r.loop)}`,
    );
  }

  const oneMb = rows.find((r) => r.scenario.name === '1 MB passthrough');
  const large = rows.find((r) => r.scenario.name === '20 MB passthrough');
  const checks: Array<[string, boolean]> = [];
  if (oneMb) {
    const ratio = oneMb.cpuUs.ours / oneMb.cpuUs.null;
    checks.push([`1 MB passthrough CPU <= 1.5x null (${ratio.toFixed(2)}x)`, ratio <= 1.5]);
  }
  if (large) {
    checks.push([
      `20 MB passthrough works: ${large.requests.ours} requests, peak RSS ${large.peakRssMb.ours.toFixed(0)} MB at ` +
        `concurrency ${large.scenario.concurrency} within the ${MEMORY_LIMIT / MB} MiB default limit`,
      large.requests.ours > 0 && large.peakRssMb.ours * MB < MEMORY_LIMIT,
    ]);
  }
  console.log('\ntargets:');
  for (const [label, ok] of checks) console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${label}`);
  console.log(`\ntotal bench time ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
