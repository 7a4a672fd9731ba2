/**
 * `npx tsx processor/bench/routing.bench.ts`: the cost of routing with many rules. Configs of 1 / 100 / 1,000 /
 * 10,000 routes on one endpoint, one rule each, a mix of exact, prefix and regex matches (the last rule a regex).
 * Two requests per config: a model that only the LAST rule accepts (a 1.5 KB chat request with a JSON answer), and
 * a model no rule accepts (the processor answers 404 itself). Our built processor (dist/main.js) and the null
 * processor run at once and the same Envoy-like client alternates between them in short rounds; the ratio is
 * CPU per request, ours over null. Also: the router alone in this process (µs per lookup, memo hits and misses,
 * against the linear scan it replaced) and the processor's cold start with each config (load included).
 *
 * Env: BENCH_NO_BUILD=1 skips the build, BENCH_MEASURE_MS per scenario and server (default 2000),
 * BENCH_RULES=1,100 picks rule counts.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  CONFIG_VERSION,
  parseProcessorConfig,
  type ModelMatch,
  type ProcessorConfig,
} from '@ai-gateway-constructs/processor-config';
import { ProcessorApp } from '../src/app';
import type { ExtProcHandler } from '../src/grpc/server';
import { silentLogger } from '../src/log';
import { findRule, Router } from '../src/routing/router';
import { EnvoyClient } from '../test/support/envoy-client';
import { nullHandler } from './null-processor';
import {
  benchWorkspace,
  clientRequestHeaders,
  encodeExchange,
  encodeRequest,
  freePort,
  handlerCpuMicros,
  headerList,
  load,
  openRawStream,
  percentile,
  startProcess,
  stopServer as stop,
  type BenchServer as Server,
  type EncodedExchange,
} from './harness';

const ROOT = path.resolve(__dirname, '..');
const CONCURRENCY = 16;
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 2000);
const WARMUP_MS = 500;
/**
 * Each rule count starts a new processor while the null has been serving since the first: a fresh process runs
 * unoptimized code for its first seconds (about 3x its steady cost), so after it starts both servers serve this long
 * before any scenario is measured. Cold start is measured on its own below.
 */
const PROCESS_WARMUP_MS = 2500;
const ROUNDS = 6;
const RULE_COUNTS = (process.env.BENCH_RULES ?? '1,100,1000,10000').split(',').map(Number);
const TARGET_RATIO = 1.4;

// ---------- configs ----------

/** Rule `i` of `count`: the last is a regex, then a prefix, an exact name, a regex, ... going backwards. */
function modelMatch(i: number, count: number): ModelMatch {
  switch ((count - 1 - i) % 3) {
    case 0:
      return { type: 'RegularExpression', value: `family-${i}-[a-z0-9]+` };
    case 1:
      return { type: 'Prefix', value: `team-${i}-` };
    default:
      return { type: 'Exact', value: `model-${i}` };
  }
}

/** The model that only the last rule accepts. */
const lastRuleModel = (count: number): string => `family-${count - 1}-mini`;
const UNKNOWN_MODEL = 'no-such-model';

function routingConfig(count: number): ProcessorConfig {
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
    routes: Array.from({ length: count }, (_, i) => ({
      name: `bench/route-${i}`,
      endpoints: [{ api: 'OpenAI' as const, pathPrefix: '/v1' }],
      hostnames: [],
      rules: [{ models: [modelMatch(i, count)], backends: [{ backend: 'openai', weight: 1, priority: 0 }] }],
      requiredHeaders: [],
    })),
    costs: [{ metadataKey: 'total_tokens', type: 'TotalToken' }],
    circuitBreaker: { failureThreshold: 5, openDurationMs: 30000 },
  };
}

// ---------- requests ----------

function chatBody(model: string): string {
  const body = {
    model,
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'lorem ipsum dolor sit amet '.repeat(52) },
    ],
    temperature: 0.2,
  };
  return JSON.stringify(body);
}

const JSON_RESPONSE = JSON.stringify({
  id: 'chatcmpl-123',
  object: 'chat.completion',
  created: 1731618222,
  model: 'gpt-4o-2024-08-06',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello! '.repeat(40) }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 352, completion_tokens: 72, total_tokens: 424 },
});

function routedExchange(model: string): EncodedExchange {
  const body = chatBody(model);
  return encodeExchange(
    clientRequestHeaders(body),
    body,
    { ':status': '200', 'content-type': 'application/json', 'content-length': String(JSON_RESPONSE.length) },
    [Buffer.from(JSON_RESPONSE)],
  );
}

/**
 * The unknown model: request headers and body only, as Envoy sends them before the processor's 404 (the null
 * processor answers the same two messages with CONTINUE).
 */
function unknownModelExchange(): EncodedExchange {
  const body = chatBody(UNKNOWN_MODEL);
  return {
    requestHeaders: encodeRequest({
      requestHeaders: { headers: headerList(clientRequestHeaders(body)), endOfStream: false },
    }),
    requestBody: encodeRequest({ requestBody: { body: Buffer.from(body), endOfStream: true } }),
    responseHeaders: Buffer.alloc(0),
    responseBodies: [],
  };
}

/** Like harness `exchange`, for an exchange without a response: headers, body, then the stream ends. */
function requestOnly(client: grpc.Client, e: EncodedExchange): Promise<void> {
  return new Promise((resolve, reject) => {
    const call = openRawStream(client);
    let received = 0;
    call.on('data', () => {
      received += 1;
      if (received === 1) call.write(e.requestBody);
      else if (received === 2) {
        call.end();
        resolve();
      }
    });
    call.on('error', reject);
    call.write(e.requestHeaders);
  });
}

/** Before measuring: the last rule's model is routed, the unknown one answered 404 by the processor. */
async function verify(address: string, count: number): Promise<void> {
  const client = new EnvoyClient(address);
  try {
    const routed = await client.exchange(
      { path: '/v1/chat/completions', body: chatBody(lastRuleModel(count)) },
      () => ({
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON_RESPONSE,
      }),
    );
    if (routed.immediate || routed.status !== 200) throw new Error(`${count} rules: not routed (${routed.status})`);
    const unknown = await client.exchange({ path: '/v1/chat/completions', body: chatBody(UNKNOWN_MODEL) }, () => {
      throw new Error('the unknown model reached the upstream');
    });
    if (!unknown.immediate || unknown.status !== 404) throw new Error(`${count} rules: unknown model not 404`);
  } finally {
    client.close();
  }
}

// ---------- in process ----------

/** One exchange through a handler in this process (decode, handle, encode; no gRPC): µs of CPU. */
function handlerCost(handler: ExtProcHandler, e: EncodedExchange): number {
  const messages = [e.requestHeaders, e.requestBody, ...(e.responseBodies.length ? [e.responseHeaders] : [])];
  return handlerCpuMicros(handler, [...messages, ...e.responseBodies], 5_000, 30_000);
}

interface LookupCost {
  loadMs: number;
  routerBuildMs: number;
  hitUs: number;
  missUs: number;
  linearUs: number;
  /** handlerCost of both scenarios, ours and null. */
  handler: { routed: number; unknown: number; nullRouted: number; nullUnknown: number };
}

/** The router alone: config parse, Router build, and µs per lookup of the last rule's model. */
function lookupCost(file: string, count: number): LookupCost {
  let started = performance.now();
  const config = parseProcessorConfig(JSON.parse(fs.readFileSync(file, 'utf8')));
  const loadMs = performance.now() - started;
  started = performance.now();
  const router = new Router(config);
  const routerBuildMs = performance.now() - started;
  const model = lastRuleModel(count);
  const perLookup = (lookups: number, lookup: (i: number) => unknown): number => {
    for (let i = 0; i < Math.min(lookups, 1000); i++) lookup(i);
    const before = process.cpuUsage();
    for (let i = 0; i < lookups; i++) lookup(i);
    const used = process.cpuUsage(before);
    return (used.user + used.system) / lookups;
  };
  const match = () => router.match('/v1/chat/completions', 'gateway.example.com', 'POST')!;
  const hitUs = perLookup(200_000, () => findRule(match().rules, model));
  // Names the memo has not seen: the index itself (the regex still runs for the one candidate rule).
  const missUs = perLookup(100_000, (i) => findRule(match().rules, `${model}${i}`));
  // The scan this replaced: every rule's matchers in order.
  const rules = match().rules;
  const linearUs = perLookup(Math.max(20, Math.floor(2_000_000 / count)), () => {
    for (const rule of rules) if (rule.match(model) !== undefined) return rule;
    return undefined;
  });
  if (findRule(rules, model)?.rule !== rules[rules.length - 1]) throw new Error('the last rule did not match');
  const app = new ProcessorApp({
    config: file,
    secretsDir: path.join(path.dirname(file), 'secrets'),
    listen: '127.0.0.1:0',
    admin: undefined,
    pollIntervalMs: 60_000,
    logger: silentLogger,
  });
  const handler = {
    routed: handlerCost(app.processor, routedExchange(model)),
    unknown: handlerCost(app.processor, unknownModelExchange()),
    nullRouted: handlerCost(nullHandler, routedExchange(model)),
    nullUnknown: handlerCost(nullHandler, unknownModelExchange()),
  };
  return { loadMs, routerBuildMs, hitUs, missUs, linearUs, handler };
}

// ---------- main ----------

interface Row {
  rules: number;
  scenario: string;
  nullUs: number;
  oursUs: number;
  nullP50: number;
  oursP50: number;
}

async function main(): Promise<void> {
  const totalStart = performance.now();
  if (!process.env.BENCH_NO_BUILD)
    execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  const { work, nullProcessor } = await benchWorkspace('aigw-bench-routing-', ['openai']);

  const nullAddress = `127.0.0.1:${await freePort()}`;
  const nullServer = await startProcess('null', [nullProcessor, nullAddress], nullAddress);
  const nullClient = new grpc.Client(nullAddress, grpc.credentials.createInsecure());
  const rows: Row[] = [];
  const inProcess = new Map<number, LookupCost & { configBytes: number; coldStartMs: number }>();
  const unknown = unknownModelExchange();

  for (const count of RULE_COUNTS) {
    const file = path.join(work, `config-${count}.json`);
    fs.writeFileSync(file, JSON.stringify(routingConfig(count)));
    const address = `127.0.0.1:${await freePort()}`;
    const args = [
      path.join(ROOT, 'dist', 'main.js'),
      ...['--config', file, '--secrets-dir', path.join(work, 'secrets'), '--listen', address],
      ...['--admin', `127.0.0.1:${await freePort()}`, '--log-level', 'warn'],
    ];
    const ours: Server = await startProcess('ours', args, address);
    await verify(address, count);
    const oursClient = new grpc.Client(address, grpc.credentials.createInsecure());
    const servers = [
      { which: 'null' as const, client: nullClient, pid: nullServer.child.pid! },
      { which: 'ours' as const, client: oursClient, pid: ours.child.pid! },
    ];
    const scenarios = [
      {
        name: 'last rule',
        run: (s: (typeof servers)[number], ms: number) =>
          load(s.client, s.pid, routedExchange(lastRuleModel(count)), CONCURRENCY, ms),
      },
      {
        name: 'unknown model (404)',
        run: (s: (typeof servers)[number], ms: number) => load(s.client, s.pid, unknown, CONCURRENCY, ms, requestOnly),
      },
    ];
    for (const server of servers) await scenarios[0].run(server, PROCESS_WARMUP_MS);
    for (const scenario of scenarios) {
      const totals = {
        null: { requests: 0, cpu: 0, latencies: [] as number[] },
        ours: { requests: 0, cpu: 0, latencies: [] as number[] },
      };
      for (const server of servers) await scenario.run(server, WARMUP_MS);
      for (let round = 0; round < ROUNDS; round++) {
        for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
          const result = await scenario.run(server, MEASURE_MS / ROUNDS);
          totals[server.which].requests += result.requests;
          totals[server.which].cpu += result.cpuMicros;
          totals[server.which].latencies.push(...result.latenciesMs);
        }
      }
      rows.push({
        rules: count,
        scenario: scenario.name,
        nullUs: totals.null.cpu / totals.null.requests,
        oursUs: totals.ours.cpu / totals.ours.requests,
        nullP50: percentile(totals.null.latencies, 50),
        oursP50: percentile(totals.ours.latencies, 50),
      });
    }
    oursClient.close();
    await stop(ours);
    inProcess.set(count, {
      ...lookupCost(file, count),
      configBytes: fs.statSync(file).size,
      coldStartMs: ours.readyMs,
    });
  }
  nullClient.close();
  await stop(nullServer);
  fs.rmSync(work, { recursive: true, force: true });

  // ---------- report ----------
  console.log(
    `routing benchmark (node ${process.version}, ${os.cpus().length} cores, concurrency ${CONCURRENCY}, ` +
      `${MEASURE_MS} ms per scenario and server, ${ROUNDS} alternating rounds)`,
  );
  console.log(
    `${'rules'.padStart(6)}  ${'scenario'.padEnd(20)}${'null µs/req'.padStart(12)}${'ours µs/req'.padStart(12)}` +
      `${'ratio'.padStart(7)}${'p50 null'.padStart(10)}${'p50 ours'.padStart(10)}`,
  );
  for (const row of rows) {
    console.log(
      `${String(row.rules).padStart(6)}  ${row.scenario.padEnd(20)}${row.nullUs.toFixed(1).padStart(12)}` +
        `${row.oursUs.toFixed(1).padStart(12)}${`${(row.oursUs / row.nullUs).toFixed(2)}x`.padStart(7)}` +
        `${row.nullP50.toFixed(3).padStart(10)}${row.oursP50.toFixed(3).padStart(10)}`,
    );
  }
  console.log("\nin process, per rule count (last rule's model; µs of CPU per router.match + findRule):");
  console.log(
    `${'rules'.padStart(6)}${'config'.padStart(10)}${'parse ms'.padStart(10)}${'router ms'.padStart(11)}` +
      `${'cold start'.padStart(12)}${'memo hit'.padStart(10)}${'memo miss'.padStart(11)}${'linear scan'.padStart(13)}`,
  );
  for (const [count, cost] of inProcess) {
    console.log(
      `${String(count).padStart(6)}${`${(cost.configBytes / 1024).toFixed(0)} KB`.padStart(10)}` +
        `${cost.loadMs.toFixed(1).padStart(10)}${cost.routerBuildMs.toFixed(1).padStart(11)}` +
        `${`${cost.coldStartMs.toFixed(0)} ms`.padStart(12)}${cost.hitUs.toFixed(2).padStart(10)}` +
        `${cost.missUs.toFixed(2).padStart(11)}${cost.linearUs.toFixed(1).padStart(13)}`,
    );
  }
  console.log('\nhandler alone, in this process (decode, handle, encode one exchange; no gRPC), µs: ours / null');
  console.log(`${'rules'.padStart(6)}${'last rule'.padStart(22)}${'unknown model (404)'.padStart(24)}`);
  for (const [count, { handler }] of inProcess) {
    const cell = (ours: number, base: number) =>
      `${ours.toFixed(1)} / ${base.toFixed(1)} (${(ours / base).toFixed(2)}x)`;
    console.log(
      `${String(count).padStart(6)}${cell(handler.routed, handler.nullRouted).padStart(22)}` +
        `${cell(handler.unknown, handler.nullUnknown).padStart(24)}`,
    );
  }
  const largest = rows.filter((row) => row.rules === Math.max(...RULE_COUNTS));
  console.log('\ntargets:');
  for (const row of largest) {
    const ratio = row.oursUs / row.nullUs;
    console.log(
      `  ${ratio <= TARGET_RATIO ? 'PASS' : 'FAIL'}  ${row.rules} rules, ${row.scenario}: ` +
        `CPU <= ${TARGET_RATIO}x null (${ratio.toFixed(2)}x)`,
    );
  }
  console.log(`\ntotal bench time ${((performance.now() - totalStart) / 1000).toFixed(1)} s`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
