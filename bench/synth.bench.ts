/**
 * Synth benchmark: N routes on one gateway, each with 2 backends and 1 token budget, constructed and synthesized
 * to YAML in memory (all validation included). Prints time, objects/s and the 1000/100 time ratio.
 * Run: npm run bench:synth
 */
import { performance } from 'node:perf_hooks';
import { App, Chart } from 'cdk8s';
import {
  AIGateway,
  AIRoute,
  AllowedRoutes,
  ClientIdentity,
  Credentials,
  ModelMatch,
  ProviderBackend,
  RateLimitRedis,
  RateLimitUnit,
  TokenRateLimit,
} from '../lib';

const SIZES = [10, 100, 1000];
const RUNS = 5;

function build(routes: number): App {
  const app = new App({ outdir: 'bench-out' });
  const platform = new Chart(app, 'platform', { namespace: 'platform' });
  const team = new Chart(app, 'team', { namespace: 'team' });
  const gateway = new AIGateway(platform, 'Gateway', {
    name: 'gw',
    allowedRoutes: AllowedRoutes.fromNamespaces('team'),
  });
  // Budgets need a RateLimitRedis in the app; an external one emits no objects.
  RateLimitRedis.external(platform, 'Redis', { url: 'redis.example:6379' });
  // Every route its own per-tenant bucket: one gateway budget that is not shared.
  new TokenRateLimit(platform, 'TenantBudget', {
    target: gateway,
    limit: 100_000,
    per: RateLimitUnit.HOUR,
    client: ClientIdentity.unverifiedHeader('x-tenant-id'),
  });
  for (let i = 0; i < routes; i++) {
    const primary = ProviderBackend.openAI(platform, `Primary${i}`, {
      name: `primary-${i}`,
      credentials: Credentials.apiKey({ secretName: `key-${i % 10}`, key: 'api-key' }),
    });
    const secondary = ProviderBackend.openAICompatible(platform, `Secondary${i}`, {
      name: `secondary-${i}`,
      baseUrl: `https://llm-${i}.example.com/v1`,
    });
    const route = new AIRoute(team, `Route${i}`, {
      name: `route-${i}`,
      gateway,
      rules: [
        {
          models: [ModelMatch.exact(`model-${i}`)],
          backends: [
            { backend: primary, weight: 3 },
            { backend: secondary, weight: 1 },
          ],
        },
      ],
    });
    // Every tenth route a budget of its own (an AIGateway holds at most 256 budgets: one BackendTrafficPolicy).
    if (i % 10 === 0)
      new TokenRateLimit(route, 'Budget', {
        target: route,
        limit: 10_000,
        per: RateLimitUnit.HOUR,
        client: ClientIdentity.unverifiedHeader('x-tenant-id'),
      });
  }
  return app;
}

interface Sample {
  wallMs: number;
  cpuMs: number;
  objects: number;
}

function measure(routes: number): Sample {
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const app = build(routes);
  const yaml = app.synthYaml();
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  const objects = yaml.split(/^---$/m).filter((doc) => doc.trim().length > 0).length;
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000, objects };
}

// The machine is shared with other jobs: rounds interleave the sizes so load changes hit all of them alike, and
// the best of the rounds is the run least disturbed. CPU time (this process, including GC threads) is printed too.
const best = (values: number[]) => Math.min(...values);

measure(10); // warm-up: module loading and JIT
const samples = new Map<number, Sample[]>(SIZES.map((size) => [size, []]));
for (let round = 0; round < RUNS; round++) {
  for (const size of SIZES) samples.get(size)!.push(measure(size));
}

console.log(
  `synth benchmark: best of ${RUNS} interleaved rounds, construct + validate + synthYaml (node ${process.version})`,
);
console.log('routes  objects  wall ms  cpu ms  objects/s');
const wall = new Map<number, number>();
const cpu = new Map<number, number>();
for (const size of SIZES) {
  const runs = samples.get(size)!;
  wall.set(size, best(runs.map((r) => r.wallMs)));
  cpu.set(size, best(runs.map((r) => r.cpuMs)));
  const objects = runs[0].objects;
  const row = [
    String(size).padStart(6),
    String(objects).padStart(7),
    wall.get(size)!.toFixed(0).padStart(7),
    cpu.get(size)!.toFixed(0).padStart(6),
    Math.round((objects / wall.get(size)!) * 1000)
      .toString()
      .padStart(9),
  ];
  console.log(row.join('  '));
}
const ratio = wall.get(1000)! / wall.get(100)!;
const cpuRatio = cpu.get(1000)! / cpu.get(100)!;
console.log(
  `time ratio 1000/100 routes: ${ratio.toFixed(2)} wall, ${cpuRatio.toFixed(2)} cpu (target <= 11); ` +
    `1000 routes: ${(wall.get(1000)! / 1000).toFixed(2)} s (target <= 3 s)`,
);
