/**
 * Config load benchmark: how long the processor takes to load the config of a gateway with 1,000 and 10,000 routes
 * (each route: an OpenAI and an OpenAI-compatible backend with API keys, 1-3 model matches, no hostnames), stored
 * plain (`config.json`) and as the gzip bundle large gateways get (`config.manifest.json` + parts), and the memory
 * the loaded config holds.
 *
 * Each run is a fresh child process (a cold load, as at pod start): read + decode (bundle: sha256 checks + gunzip),
 * JSON.parse, zod validation (parseProcessorConfig), compileRuntime (router, backends, authenticators reading their
 * Secret files). Runs are interleaved across sizes and forms; medians are printed. RSS is measured in the child
 * after its imports (baseline) and after the load, once garbage is collected (`--expose-gc`).
 *
 * Run: npx tsx bench/config-load.bench.ts [runs]   (from processor/)
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  CONFIG_VERSION,
  decodeConfigBundle,
  encodeConfigBundle,
  isConfigBundleManifest,
  MANIFEST_KEY,
  parseConfigBundleManifest,
  parseProcessorConfig,
  PROCESSOR_NODE_OPTIONS,
  type BackendConfig,
  type ProcessorConfig,
  type RouteConfig,
} from '@ai-gateway-constructs/processor-config';
import { SecretReader } from '../src/auth/secrets';
import { nodeBundleCodec } from '../src/config/load';
import { compileRuntime } from '../src/config/runtime';

/** What lib/processor.ts puts in one ConfigMap part (MAX_CONFIG_PART_BYTES). */
const MAX_PART_BYTES = 1024 * 1024 - 16 * 1024;
const SIZES = [1_000, 10_000];
const SECRETS = 10;
/** Extra V8 flags for the loading process, e.g. BENCH_NODE_FLAGS=--max-semi-space-size=32. */
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter((flag) => flag !== '');

/** The config synth emits for `routes` AIRoutes on one gateway (same names and shapes as lib/ writes). */
export function generateConfig(routes: number): ProcessorConfig {
  const backends: BackendConfig[] = [];
  const routeConfigs: RouteConfig[] = [];
  for (let i = 0; i < routes; i++) {
    const auth = { type: 'APIKey' as const, secret: { secretName: `key-${i % SECRETS}`, key: 'api-key' } };
    const primary = `primary-${i}.platform.route-${i}.team`;
    const secondary = `secondary-${i}.platform.route-${i}.team`;
    backends.push(
      {
        name: primary,
        schema: { name: 'OpenAI', pathPrefix: '/v1' },
        endpoint: { hostname: 'api.openai.com', port: 443, tls: true },
        auth,
      },
      {
        name: secondary,
        schema: { name: 'OpenAI', pathPrefix: '/v1' },
        endpoint: { hostname: `llm-${i}.example.com`, port: 443, tls: true },
        auth,
      },
    );
    const models = [
      { type: 'Exact' as const, value: `model-${i}` },
      { type: 'Prefix' as const, value: `family-${i}-` },
      { type: 'Exact' as const, value: `model-${i}-mini` },
    ].slice(0, 1 + (i % 3));
    routeConfigs.push({
      name: `team/route-${i}`,
      endpoints: [{ api: 'OpenAI', pathPrefix: '/v1' }],
      hostnames: [],
      rules: [
        {
          models,
          backends: [
            { backend: primary, weight: 3, priority: 0 },
            { backend: secondary, weight: 1, priority: 0 },
          ],
        },
      ],
      requiredHeaders: [],
    });
  }
  return {
    version: CONFIG_VERSION,
    maxRequestBodyBytes: 50 * 1024 * 1024,
    backends,
    routes: routeConfigs,
    costs: [],
    circuitBreaker: { failureThreshold: 5, openDurationMs: 30_000 },
  };
}

interface Sample {
  readMs: number;
  parseMs: number;
  validateMs: number;
  compileMs: number;
  totalMs: number;
  /** CPU time of the load (user + system, GC threads included): steadier than wall time on a busy machine. */
  cpuMs: number;
  baselineRssMb: number;
  loadedRssMb: number;
  /** Highest RSS of the process, during the load (its temporaries included). */
  peakRssMb: number;
  heapUsedMb: number;
}

/** Reads, decodes, parses, validates and compiles the config; its temporaries are garbage once this returns. */
function load(file: string, secretsDir: string) {
  const start = performance.now();
  const text = fs.readFileSync(file, 'utf8');
  let read = performance.now();
  let document: unknown = JSON.parse(text);
  let parsed = performance.now();
  if (isConfigBundleManifest(document)) {
    // The manifest's parse counts as reading; the decompressed config.json is what "JSON.parse" measures.
    const manifest = parseConfigBundleManifest(document);
    const dir = path.dirname(file);
    const json = decodeConfigBundle(manifest, (key) => fs.readFileSync(path.join(dir, key)), nodeBundleCodec);
    const configText = Buffer.from(json.buffer, json.byteOffset, json.length).toString('utf8');
    read = performance.now();
    document = JSON.parse(configText);
    parsed = performance.now();
  }
  const config = parseProcessorConfig(document);
  const validated = performance.now();
  const runtime = compileRuntime(config, new SecretReader(secretsDir), { nowSeconds: 0 });
  const compiled = performance.now();
  return {
    runtime,
    readMs: read - start,
    parseMs: parsed - read,
    validateMs: validated - parsed,
    compileMs: compiled - validated,
    totalMs: compiled - start,
  };
}

/** One cold load, in this (child) process. */
function loadOnce(file: string, secretsDir: string): Sample {
  global.gc?.();
  const baselineRss = process.memoryUsage().rss;
  const cpuStart = process.cpuUsage();
  const { runtime, ...times } = load(file, secretsDir);
  const cpu = process.cpuUsage(cpuStart);
  global.gc?.();
  const memory = process.memoryUsage();
  if (runtime.router === undefined) throw new Error('no router');
  return {
    ...times,
    cpuMs: (cpu.user + cpu.system) / 1000,
    baselineRssMb: baselineRss / 2 ** 20,
    loadedRssMb: memory.rss / 2 ** 20,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    heapUsedMb: memory.heapUsed / 2 ** 20,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

interface Case {
  routes: number;
  form: 'plain' | 'bundle';
  file: string;
  bytes: number;
}

function prepare(root: string): Case[] {
  const secretsDir = path.join(root, 'secrets');
  for (let s = 0; s < SECRETS; s++) {
    fs.mkdirSync(path.join(secretsDir, `key-${s}`), { recursive: true });
    fs.writeFileSync(path.join(secretsDir, `key-${s}`, 'api-key'), `sk-test-${s}`);
  }
  const cases: Case[] = [];
  for (const routes of SIZES) {
    const json = Buffer.from(JSON.stringify(generateConfig(routes)));
    const plainDir = path.join(root, `plain-${routes}`);
    fs.mkdirSync(plainDir);
    fs.writeFileSync(path.join(plainDir, 'config.json'), json);
    cases.push({ routes, form: 'plain', file: path.join(plainDir, 'config.json'), bytes: json.length });
    const bundle = encodeConfigBundle(json, nodeBundleCodec, { maxPartBytes: MAX_PART_BYTES });
    const bundleDir = path.join(root, `bundle-${routes}`);
    fs.mkdirSync(bundleDir);
    fs.writeFileSync(path.join(bundleDir, MANIFEST_KEY), JSON.stringify(bundle.manifest));
    for (const part of bundle.parts) fs.writeFileSync(path.join(bundleDir, part.key), part.data);
    const compressed = bundle.parts.reduce((sum, part) => sum + part.data.length, 0);
    cases.push({ routes, form: 'bundle', file: path.join(bundleDir, MANIFEST_KEY), bytes: compressed });
    console.log(
      `${routes} routes: config.json ${(json.length / 1024).toFixed(0)} KiB ` +
        `(${(json.length / routes).toFixed(0)} B/route), ` +
        `gzip ${(compressed / 1024).toFixed(0)} KiB in ${bundle.parts.length} part(s) ` +
        `(${(json.length / compressed).toFixed(1)}x smaller)`,
    );
  }
  return cases;
}

function runChild(file: string, secretsDir: string): Sample {
  const result = spawnSync(
    process.execPath,
    [
      ...process.execArgv,
      ...PROCESSOR_NODE_OPTIONS,
      ...NODE_FLAGS,
      '--expose-gc',
      __filename,
      '--child',
      file,
      secretsDir,
    ],
    { encoding: 'utf8', maxBuffer: 1024 * 1024 },
  );
  if (result.status !== 0) throw new Error(`child failed: ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as Sample;
}

function main(): void {
  const runs = Number(process.argv[2] ?? 5);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-config-load-'));
  try {
    const cases = prepare(root);
    const samples = new Map<Case, Sample[]>(cases.map((c) => [c, []]));
    for (let run = 0; run < runs; run++) {
      for (const c of cases) samples.get(c)!.push(runChild(c.file, path.join(root, 'secrets')));
    }
    console.log(
      `\nmedian of ${runs} cold loads (each in a fresh process)\n` +
        'routes  form    stored KiB  read+decode ms  JSON.parse ms  zod ms  compile ms  total ms  cpu ms  ' +
        'RSS MiB (base -> loaded, peak)  heap MiB',
    );
    for (const c of cases) {
      const s = samples.get(c)!;
      const m = (key: keyof Sample) => median(s.map((x) => x[key]));
      console.log(
        `${String(c.routes).padStart(6)}  ${c.form.padEnd(6)}  ${(c.bytes / 1024).toFixed(0).padStart(10)}  ` +
          `${m('readMs').toFixed(1).padStart(14)}  ${m('parseMs').toFixed(1).padStart(13)}  ` +
          `${m('validateMs').toFixed(1).padStart(6)}  ${m('compileMs').toFixed(1).padStart(10)}  ` +
          `${m('totalMs').toFixed(1).padStart(8)}  ${m('cpuMs').toFixed(0).padStart(6)}  ` +
          `${m('baselineRssMb').toFixed(0).padStart(11)} -> ` +
          `${m('loadedRssMb').toFixed(0).padStart(3)}, ${m('peakRssMb').toFixed(0).padEnd(11)}  ` +
          `${m('heapUsedMb').toFixed(0).padStart(8)}`,
      );
    }
    const big = cases.filter((c) => c.routes === 10_000).map((c) => samples.get(c)!);
    const worst = (key: keyof Sample) => Math.max(...big.map((s) => median(s.map((x) => x[key]))));
    console.log(
      `\n10,000 routes: load ${worst('totalMs').toFixed(0)} ms wall, ${worst('cpuMs').toFixed(0)} ms CPU at most ` +
        `across forms (target <= 1000 ms)` +
        `${NODE_FLAGS.length > 0 ? `, with ${NODE_FLAGS.join(' ')}` : ''}`,
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') {
  process.stdout.write(`${JSON.stringify(loadOnce(process.argv[3], process.argv[4]))}\n`);
} else if (require.main === module) {
  main();
}
