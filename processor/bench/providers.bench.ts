/**
 * Provider translation benchmark (part of `npm run bench:processor`, or `npx tsx bench/providers.bench.ts`).
 *
 * 1. Server CPU per request of the built processor (dist/main.js) against a null processor on the same gRPC
 *    stack, separate processes, concurrency 16, CPU from /proc/<pid>/stat over the measured window only:
 *    OpenAI passthrough (baseline), OpenAI chat -> Anthropic, OpenAI chat -> Bedrock Converse with SigV4,
 *    and their streaming variants (50 SSE events / 50 eventstream frames).
 * 2. In-process: eventstream decoding throughput with both CRC checks (node:zlib crc32 and the table
 *    fallback), and translation (+ signing) CPU per request relative to the OpenAI passthrough translator.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  CONFIG_VERSION,
  PROCESSOR_NODE_OPTIONS,
  type BackendConfig,
  type ProcessorConfig,
} from '@ai-gateway-constructs/processor-config';
import { crc32Table, encodeEventStreamMessage, EventStreamDecoder } from '../src/eventstream';
import { awsSigV4Auth } from '../src/auth/aws';
import { findTranslator } from '../src/translate/registry';
import type { TranslationContext } from '../src/translate/types';
import { EnvoyClient } from '../test/support/envoy-client';
import {
  buildNullProcessor,
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
const CONCURRENCY = 16;
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 5000);
const WARMUP_MS = 700;
const ROUNDS = 5;

// ---------- request and response bodies ----------

function chatBody(model: string, contentBytes: number, stream: boolean): string {
  const body = {
    model,
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: '' },
    ],
    max_tokens: 256,
    temperature: 0.2,
    stream,
  };
  const fixed = JSON.stringify(body).length;
  body.messages[1].content = 'lorem ipsum dolor sit amet '
    .repeat(Math.ceil(contentBytes / 27))
    .slice(0, Math.max(0, contentBytes - fixed));
  return JSON.stringify(body);
}

const ANSWER = 'Hello! How can I help you today? '.repeat(8);

const OPENAI_JSON = JSON.stringify({
  id: 'chatcmpl-123',
  object: 'chat.completion',
  created: 1731618222,
  model: 'gpt-4o-2024-08-06',
  choices: [{ index: 0, message: { role: 'assistant', content: ANSWER }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 352, completion_tokens: 72, total_tokens: 424 },
});

const ANTHROPIC_JSON = JSON.stringify({
  id: 'msg_123',
  type: 'message',
  role: 'assistant',
  model: 'claude-sonnet-4',
  content: [{ type: 'text', text: ANSWER }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 352, output_tokens: 72, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 },
});

const CONVERSE_JSON = JSON.stringify({
  output: { message: { role: 'assistant', content: [{ text: ANSWER }] } },
  stopReason: 'end_turn',
  usage: { inputTokens: 352, outputTokens: 72, totalTokens: 424 },
  metrics: { latencyMs: 412 },
});

function openAIChunks(count: number): string[] {
  const chunks: string[] = [];
  for (let i = 0; i < count - 1; i++) {
    chunks.push(
      'data: ' +
        JSON.stringify({
          id: 'chatcmpl-123',
          object: 'chat.completion.chunk',
          created: 1731618222,
          model: 'gpt-4o',
          choices: [{ index: 0, delta: { content: `token${i} ` }, finish_reason: null }],
        }) +
        '\n\n',
    );
  }
  chunks.push(
    'data: ' +
      JSON.stringify({
        id: 'chatcmpl-123',
        object: 'chat.completion.chunk',
        created: 1731618222,
        model: 'gpt-4o',
        choices: [],
        usage: { prompt_tokens: 20, completion_tokens: 49, total_tokens: 69 },
      }) +
      '\n\ndata: [DONE]\n\n',
  );
  return chunks;
}

function anthropicEvents(count: number): string[] {
  const event = (type: string, data: unknown) => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
  const out = [
    event('message_start', {
      type: 'message_start',
      message: {
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model: 'claude',
        content: [],
        usage: { input_tokens: 20, output_tokens: 1 },
      },
    }) +
      event('content_block_start', {
        type: 'content_block_start',
        index: 0,
        content_block: { type: 'text', text: '' },
      }),
  ];
  for (let i = 0; i < count - 2; i++)
    out.push(
      event('content_block_delta', {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'text_delta', text: `token${i} ` },
      }),
    );
  out.push(
    event('content_block_stop', { type: 'content_block_stop', index: 0 }) +
      event('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { output_tokens: 49 },
      }) +
      event('message_stop', { type: 'message_stop' }),
  );
  return out;
}

function converseFrames(count: number): Buffer[] {
  const frame = (type: string, payload: unknown) =>
    encodeEventStreamMessage(
      { ':event-type': type, ':content-type': 'application/json', ':message-type': 'event' },
      Buffer.from(JSON.stringify({ ...(payload as object), p: 'abcdefghijklmnopqrstuvwxyz' })),
    );
  const out = [frame('messageStart', { role: 'assistant' })];
  for (let i = 0; i < count - 3; i++)
    out.push(frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: `token${i} ` } }));
  out.push(
    Buffer.concat([
      frame('contentBlockStop', { contentBlockIndex: 0 }),
      frame('messageStop', { stopReason: 'end_turn' }),
    ]),
  );
  out.push(
    frame('metadata', { usage: { inputTokens: 20, outputTokens: 49, totalTokens: 69 }, metrics: { latencyMs: 300 } }),
  );
  return out;
}

// ---------- scenarios ----------

interface Scenario {
  name: string;
  model: string;
  stream: boolean;
  body: string;
  contentType: string;
  chunks: Buffer[];
  extraResponseHeaders: Record<string, string>;
  encoded: EncodedExchange;
}

function scenario(
  name: string,
  model: string,
  stream: boolean,
  contentType: string,
  chunks: (string | Buffer)[],
  extra: Record<string, string> = {},
): Scenario {
  const body = chatBody(model, 1536, stream);
  const bodies = chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c));
  const requestHeaders = clientRequestHeaders(body);
  const responseHeaders: Record<string, string> = {
    ':status': '200',
    'content-type': contentType,
    date: 'Thu, 14 Nov 2024 21:03:42 GMT',
    ...extra,
    ...(stream ? {} : { 'content-length': String(bodies[0].length) }),
  };
  return {
    name,
    model,
    stream,
    body,
    contentType,
    chunks: bodies,
    extraResponseHeaders: extra,
    encoded: encodeExchange(requestHeaders, body, responseHeaders, bodies),
  };
}

const ALL_SCENARIOS = [
  scenario('openai passthrough', 'gpt-4o', false, 'application/json', [OPENAI_JSON]),
  scenario('anthropic', 'claude-sonnet-4', false, 'application/json', [ANTHROPIC_JSON]),
  scenario('bedrock + sigv4', 'bedrock-claude', false, 'application/json', [CONVERSE_JSON], {
    'x-amzn-requestid': 'r-1',
  }),
  scenario('openai sse 50', 'gpt-4o', true, 'text/event-stream', openAIChunks(50)),
  scenario('anthropic sse 50', 'claude-sonnet-4', true, 'text/event-stream', anthropicEvents(50)),
  scenario('bedrock stream 50', 'bedrock-claude', true, 'application/vnd.amazon.eventstream', converseFrames(50), {
    'x-amzn-requestid': 'r-1',
  }),
];

const ONLY = process.env.BENCH_SCENARIOS?.split(',');
const SCENARIOS = ONLY ? ALL_SCENARIOS.filter((s) => ONLY.includes(s.name)) : ALL_SCENARIOS;

function benchConfig(): ProcessorConfig {
  const endpoint = (hostname: string) => ({ hostname, port: 443, tls: true });
  const backends: BackendConfig[] = [
    {
      name: 'openai',
      schema: { name: 'OpenAI', pathPrefix: '/v1' },
      endpoint: endpoint('api.openai.com'),
      auth: { type: 'APIKey', secret: { secretName: 'openai', key: 'apiKey' } },
    },
    {
      name: 'anthropic',
      schema: { name: 'Anthropic', version: '2023-06-01' },
      endpoint: endpoint('api.anthropic.com'),
      auth: { type: 'APIKey', secret: { secretName: 'anthropic', key: 'apiKey' } },
    },
    {
      name: 'bedrock',
      schema: { name: 'AWSBedrock' },
      endpoint: endpoint('bedrock-runtime.us-east-1.amazonaws.com'),
      auth: {
        type: 'AWSSigV4',
        region: 'us-east-1',
        credentials: { source: 'Secret', secret: { secretName: 'aws', key: 'credentials' }, profile: 'default' },
        perRequestCredentials: true,
      },
    },
  ];
  const rule = (model: string, backend: string) => ({
    models: [{ type: 'Exact' as const, value: model }],
    backends: [{ backend, weight: 1, priority: 0 }],
  });
  return {
    version: CONFIG_VERSION,
    maxRequestBodyBytes: 4 * 1024 * 1024,
    backends,
    routes: [
      {
        name: 'bench/providers',
        endpoints: [{ api: 'OpenAI', pathPrefix: '/v1' }],
        hostnames: [],
        rules: [rule('gpt-4o', 'openai'), rule('claude-sonnet-4', 'anthropic'), rule('bedrock-claude', 'bedrock')],
        requiredHeaders: [],
      },
    ],
    costs: [],
    circuitBreaker: { failureThreshold: 5, openDurationMs: 30000 },
  };
}

// ---------- driving ----------

async function cpuPerRequest(
  client: grpc.Client,
  pid: number,
  s: Scenario,
  ms: number,
): Promise<{ cpuUs: number; requests: number }> {
  let requests = 0;
  const before = cpuTicks(pid);
  const deadline = performance.now() + ms;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await exchange(client, s.encoded);
      requests += 1;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { cpuUs: (((cpuTicks(pid) - before) / CLK_TCK) * 1e6) / requests, requests };
}

/** Before measuring: the scenario is routed, translated and counted (not answered locally). */
async function verify(address: string, s: Scenario): Promise<void> {
  const client = new EnvoyClient(address);
  try {
    const result = await client.exchange({ path: '/v1/chat/completions', body: s.body }, () => ({
      status: 200,
      headers: { 'content-type': s.contentType, ...s.extraResponseHeaders },
      body: s.chunks,
    }));
    const total = result.metadata['io.envoy.ai_gateway']?.llm_total_token;
    if (result.immediate || result.status !== 200 || typeof total !== 'number' || total === 0) {
      throw new Error(`${s.name}: not translated and counted (status ${result.status}, total ${String(total)})`);
    }
    if (
      s.model === 'bedrock-claude' &&
      !result.upstreamRequest?.headers.authorization?.startsWith('AWS4-HMAC-SHA256')
    ) {
      throw new Error(`${s.name}: not signed`);
    }
  } finally {
    client.close();
  }
}

function startProcess(args: string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...PROCESSOR_NODE_OPTIONS, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    child.stdout.once('data', () => resolve(child));
  });
}

interface ServerResult {
  null: number;
  ours: number;
  nullRate: number;
  oursRate: number;
}

async function serverBench(): Promise<Map<string, ServerResult>> {
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-provider-bench-'));
  const nullProcessor = await buildNullProcessor(work);
  const secret = (name: string, key: string, value: string) => {
    fs.mkdirSync(path.join(work, 'secrets', name), { recursive: true });
    fs.writeFileSync(path.join(work, 'secrets', name, key), value);
  };
  secret('openai', 'apiKey', 'sk-bench\n');
  secret('anthropic', 'apiKey', 'sk-ant-bench\n');
  secret('aws', 'credentials', '[default]\naws_access_key_id=AKIABENCH\naws_secret_access_key=bench-secret\n');
  fs.writeFileSync(path.join(work, 'config.json'), JSON.stringify(benchConfig()));

  const results = new Map<string, ServerResult>();
  const servers: { which: 'null' | 'ours'; child: ChildProcess; client: grpc.Client }[] = [];
  try {
    for (const which of ['null', 'ours'] as const) {
      const address = `127.0.0.1:${await freePort()}`;
      const args =
        which === 'null'
          ? [nullProcessor, address]
          : [
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
            ];
      const child = await startProcess(args);
      if (which === 'ours') for (const s of SCENARIOS) await verify(address, s);
      servers.push({ which, child, client: new grpc.Client(address, grpc.credentials.createInsecure()) });
    }
    // Both servers stay up; rounds alternate between them so load from elsewhere hits both alike.
    for (const s of SCENARIOS) {
      const samples: Record<'null' | 'ours', number[]> = { null: [], ours: [] };
      const rates: Record<'null' | 'ours', number[]> = { null: [], ours: [] };
      for (const server of servers) await cpuPerRequest(server.client, server.child.pid!, s, WARMUP_MS);
      for (let round = 0; round < ROUNDS; round++) {
        for (const server of servers) {
          const { cpuUs, requests } = await cpuPerRequest(server.client, server.child.pid!, s, MEASURE_MS / ROUNDS);
          samples[server.which].push(cpuUs);
          rates[server.which].push(requests / (MEASURE_MS / ROUNDS / 1000));
        }
      }
      results.set(s.name, {
        null: median(samples.null),
        ours: median(samples.ours),
        nullRate: median(rates.null),
        oursRate: median(rates.ours),
      });
    }
  } finally {
    for (const server of servers) {
      server.client.close();
      await stopProcess(server.child);
    }
    fs.rmSync(work, { recursive: true, force: true });
  }
  return results;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// ---------- in-process ----------

function timeLoop(fn: () => void, ms: number): number {
  for (let i = 0; i < 200; i++) fn();
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
  }
  return ((performance.now() - start) * 1000) / n;
}

async function timeLoopAsync(fn: () => Promise<void>, ms: number): Promise<number> {
  for (let i = 0; i < 200; i++) await fn();
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    for (let i = 0; i < 50; i++) await fn();
    n += 50;
  }
  return ((performance.now() - start) * 1000) / n;
}

function eventstreamThroughput(): {
  nativeMBs: number;
  tableMBs: number;
  frames: number;
  bytes: number;
  input: string;
} {
  const capture = path.resolve(
    ROOT,
    '..',
    '..',
    'shared',
    'fixtures',
    'bedrock',
    'converse-stream-real-claude.eventstream',
  );
  const real = fs.existsSync(capture);
  const unit = real ? fs.readFileSync(capture) : Buffer.concat(converseFrames(25));
  const stream = Buffer.concat(Array.from({ length: 200 }, () => unit));
  const chunks: Buffer[] = [];
  for (let i = 0; i < stream.length; i += 4096) chunks.push(stream.subarray(i, i + 4096));
  let frames = 0;
  const decodeAll = () => {
    const decoder = new EventStreamDecoder();
    for (const chunk of chunks) frames += decoder.push(chunk).length;
    decoder.end();
  };
  const us = timeLoop(decodeAll, 1500);
  const nativeMBs = stream.length / us;
  const tableUs = timeLoop(() => crc32Table(stream), 800);
  // Table CRC touches every byte once more per check (prelude + message), so add it to the framing cost.
  const tableMBs = stream.length / (us + tableUs);
  return {
    nativeMBs,
    tableMBs,
    frames,
    bytes: stream.length,
    input: real ? 'the real Bedrock capture (25 frames, 4,870 bytes) x 200' : 'synthetic ConverseStream frames',
  };
}

async function translationCpu(): Promise<Record<string, number>> {
  const backend = (b: BackendConfig['schema'], hostname: string): BackendConfig => ({
    name: 'b',
    schema: b,
    endpoint: { hostname, port: 443, tls: true },
  });
  const ctx = (b: BackendConfig, model: string): TranslationContext => ({
    api: 'OpenAI',
    operation: 'chat',
    subpath: '/chat/completions',
    query: '',
    requestModel: model,
    upstreamModel: model,
    backend: b,
    stream: false,
    forceStreamUsage: false,
    requestId: 'r',
    nowSeconds: 1,
  });
  const openai = backend({ name: 'OpenAI', pathPrefix: '/v1' }, 'api.openai.com');
  const anthropic = backend({ name: 'Anthropic', version: '2023-06-01' }, 'api.anthropic.com');
  const bedrock = backend({ name: 'AWSBedrock' }, 'bedrock-runtime.us-east-1.amazonaws.com');
  const body = chatBody('m', 1536, false);
  const one = (b: BackendConfig, responseJson: string) => () => {
    const translator = findTranslator('OpenAI', 'chat', b.schema.name)!(ctx(b, 'm'));
    const upstream = translator.request(JSON.parse(body) as Record<string, unknown>);
    JSON.stringify(upstream.body);
    const response = translator.response();
    response.head(200, { 'content-type': 'application/json' });
    response.body(Buffer.from(responseJson), true);
  };
  const signer = awsSigV4Auth(
    {
      type: 'AWSSigV4',
      region: 'us-east-1',
      credentials: { source: 'Secret', secret: { secretName: 'a', key: 'b' }, profile: 'default' },
      perRequestCredentials: false,
    },
    bedrock,
    { read: () => '[default]\naws_access_key_id=AKIABENCH\naws_secret_access_key=bench-secret\n' } as never,
  );
  const bedrockOnly = one(bedrock, CONVERSE_JSON);
  return {
    'openai passthrough': timeLoop(one(openai, OPENAI_JSON), 1000),
    anthropic: timeLoop(one(anthropic, ANTHROPIC_JSON), 1000),
    bedrock: timeLoop(bedrockOnly, 1000),
    'bedrock + sigv4': await timeLoopAsync(async () => {
      bedrockOnly();
      await signer.apply({
        method: 'POST',
        hostname: 'bedrock-runtime.us-east-1.amazonaws.com',
        path: '/model/m/converse',
        headers: {},
        body: Buffer.from(body),
      });
    }, 1000),
  };
}

async function main(): Promise<void> {
  console.log(`provider translation benchmark (node ${process.version}, ${os.cpus().length} cores)`);
  const es = eventstreamThroughput();
  console.log(
    `\neventstream decode of ${es.input} (prelude + message CRC32 checked, 4 KB chunks, ` +
      `${(es.bytes / 1e6).toFixed(2)} MB per pass):`,
  );
  console.log(`  zlib.crc32: ${es.nativeMBs.toFixed(0)} MB/s   table CRC fallback: ${es.tableMBs.toFixed(0)} MB/s`);

  const cpu = await translationCpu();
  console.log(
    '\nin-process translation, 1.5 KB chat request + JSON answer (µs per request, ratio to the ' +
      'OpenAI passthrough translator):',
  );
  for (const [name, us] of Object.entries(cpu))
    console.log(
      `  ${name.padEnd(20)} ${us.toFixed(1).padStart(7)} µs  ${(us / cpu['openai passthrough']).toFixed(2)}x`,
    );

  const server = await serverBench();
  console.log(
    `\nserver CPU per request, concurrency ${CONCURRENCY}, median of ${ROUNDS} alternating ` +
      `rounds, ${MEASURE_MS} ms per scenario and server (ours vs null processor, separate ` +
      `processes):`,
  );
  console.log(
    `  ${'scenario'.padEnd(20)}${'null µs'.padStart(9)}${'ours µs'.padStart(9)}${'ours/null'.padStart(11)}` +
      `${'vs passthrough'.padStart(16)}${'null req/s'.padStart(12)}${'ours req/s'.padStart(12)}`,
  );
  const passthrough = server.get('openai passthrough');
  const passthroughSse = server.get('openai sse 50');
  for (const [name, row] of server) {
    const base = name.includes('50') ? passthroughSse : passthrough;
    const vsPassthrough = base ? `${(row.ours / base.ours).toFixed(2)}x` : '-';
    console.log(
      `  ${name.padEnd(20)}${row.null.toFixed(1).padStart(9)}` +
        `${row.ours.toFixed(1).padStart(9)}${`${(row.ours / row.null).toFixed(2)}x`.padStart(11)}` +
        `${vsPassthrough.padStart(16)}${row.nullRate.toFixed(0).padStart(12)}${row.oursRate.toFixed(0).padStart(12)}`,
    );
  }
  const ratio = (name: string) => {
    const row = server.get(name);
    return row ? row.ours / row.null : undefined;
  };
  const checks: [string, number | undefined, number][] = [
    ['eventstream decode >= 300 MB/s (zlib.crc32)', es.nativeMBs, 300],
    ['translated request (anthropic) <= 1.8x null CPU', ratio('anthropic'), 1.8],
    ['translated request with SigV4 (bedrock) <= 2.0x null CPU', ratio('bedrock + sigv4'), 2.0],
  ];
  console.log('\ntargets:');
  for (const [label, value, limit] of checks) {
    if (value === undefined) continue;
    const ok = label.includes('MB/s') ? value >= limit : value <= limit;
    console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${label} (${value.toFixed(2)})`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
