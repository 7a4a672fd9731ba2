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
  RateLimitUnit,
  TokenRateLimit,
} from '../lib';

const SIZES = [10, 100, 1000];
const RUNS = 3;

function build(routes: number): App {
  const app = new App({ outdir: 'bench-out' });
  const platform = new Chart(app, 'platform', { namespace: 'platform' });
  const team = new Chart(app, 'team', { namespace: 'team' });
  const gateway = new AIGateway(platform, 'Gateway', { name: 'gw', allowedRoutes: AllowedRoutes.fromNamespaces('team') });
  for (let i = 0; i < routes; i++) {
    const primary = ProviderBackend.openAI(platform, `Primary${i}`, {
      name: `primary-${i}`,
      credentials: Credentials.apiKey({ secretName: `key-${i % 10}`, key: 'api-key' }),
    });
    const secondary = ProviderBackend.openAICompatible(platform, `Secondary${i}`, { name: `secondary-${i}`, baseUrl: `https://llm-${i}.example.com/v1` });
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
    new TokenRateLimit(route, 'Budget', { target: route, limit: 100_000, per: RateLimitUnit.HOUR, client: ClientIdentity.header('x-tenant-id') });
  }
  return app;
}

function measure(routes: number): { ms: number; objects: number } {
  const start = performance.now();
  const app = build(routes);
  const yaml = app.synthYaml();
  const ms = performance.now() - start;
  const objects = yaml.split(/^---$/m).filter((doc) => doc.trim().length > 0).length;
  return { ms, objects };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

measure(10); // warm-up: module loading and JIT
const results = new Map<number, number>();
console.log(`synth benchmark: median of ${RUNS} runs, construct + validate + synthYaml (node ${process.version})`);
console.log('routes  objects  time (ms)  objects/s');
for (const size of SIZES) {
  const runs = Array.from({ length: RUNS }, () => measure(size));
  const ms = median(runs.map((r) => r.ms));
  results.set(size, ms);
  const objects = runs[0].objects;
  console.log(`${String(size).padStart(6)}  ${String(objects).padStart(7)}  ${ms.toFixed(0).padStart(9)}  ${Math.round((objects / ms) * 1000).toString().padStart(9)}`);
}
const ratio = results.get(1000)! / results.get(100)!;
console.log(`time ratio 1000/100 routes: ${ratio.toFixed(2)} (target <= 11); 1000 routes: ${(results.get(1000)! / 1000).toFixed(2)} s (target <= 3 s)`);
