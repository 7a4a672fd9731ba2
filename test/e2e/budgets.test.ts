/**
 * Token budgets through the local data plane: Envoy Gateway's rate-limit descriptors built after ext_proc from the
 * re-matched route, request checks and stream-end token charges, counted in Redis (REDIS_URL; .ci/run starts one).
 * Every request here costs 20 tokens (the fakes report 12 input + 8 output) and requests are sequential, so the
 * overshoot beyond a budget is at most one request (tokens are charged at stream end).
 */
import { randomBytes } from 'node:crypto';
import { DEFAULT_USAGE } from './support/fake-providers';
import { HELLO, rawChat } from './support/clients';
import { redisUrlForTests } from '../support/redis';
import { clusterMode, startScenario, type RunningScenario } from './support/harness';
import { countersContaining } from './support/redis';
import { budgetScenario, type BudgetLimits } from './support/scenarios';

jest.setTimeout(90_000);

const COST = DEFAULT_USAGE.input + DEFAULT_USAGE.output;
const MAX_REQUESTS = 40;

const redisUrl = clusterMode() ? undefined : redisUrlForTests();
if (!redisUrl && !clusterMode()) {
  console.log(
    'test/e2e/budgets: REDIS_URL is not set; budgets count in the data plane memory and the ' +
      'Redis key checks are skipped',
  );
}

function uniqueNamespace(stem: string): string {
  return `${stem}-${randomBytes(4).toString('hex')}`;
}

async function withBudgets<T>(
  stem: string,
  limits: BudgetLimits,
  body: (run: RunningScenario, namespace: string) => Promise<T>,
): Promise<T> {
  const namespace = uniqueNamespace(stem);
  const run = await startScenario(budgetScenario(namespace, limits), { redisUrl });
  try {
    return await body(run, namespace);
  } finally {
    await run.close();
  }
}

/**
 * One chat request; streamed ones get their usage only because the processor asks the provider for it (the
 * fakes send the usage chunk only when `stream_options.include_usage` is set).
 */
function chat(run: RunningScenario, model: string, tenant?: string, stream = false) {
  return rawChat(
    `${run.gatewayUrl}/v1/chat/completions`,
    { model, messages: HELLO, ...(stream ? { stream: true } : {}) },
    tenant ? { 'x-tenant-id': tenant } : {},
  );
}

/** Sends requests (models in turn, every other one streamed) until the first 429; returns how many were admitted. */
async function admittedUntil429(
  run: RunningScenario,
  models: string[],
  tenant?: string,
): Promise<{ admitted: number }> {
  for (let i = 0; i < MAX_REQUESTS; i++) {
    const answer = await chat(run, models[i % models.length], tenant, i % 2 === 1);
    if (answer.status === 429) return { admitted: i };
    expect({ request: i, status: answer.status, body: answer.text.slice(0, 300) }).toEqual({
      request: i,
      status: 200,
      body: expect.any(String),
    });
  }
  throw new Error(`no 429 after ${MAX_REQUESTS} requests of ${COST} tokens`);
}

function expectWithinBudget(admittedTokens: number, limit: number): void {
  expect(admittedTokens).toBeGreaterThanOrEqual(limit);
  // Sequential requests: at most the one request admitted just below the limit overshoots it.
  expect(admittedTokens).toBeLessThanOrEqual(limit + COST);
}

async function acceptedRequests(run: RunningScenario): Promise<number> {
  const counts = await Promise.all(
    Object.values(run.fakes).map(async (fake) => (await fake.records()).filter((r) => !r.rejected).length),
  );
  return counts.reduce((a, b) => a + b, 0);
}

// Local only: these scenarios read the counters (Redis keys) and deploy budgets small enough to exhaust; the cluster
// run
// (scripts/e2e/kind.sh) deploys the example and the provider scenario, whose budgets are too large to exhaust in a
// test.
const describeLocal = clusterMode() ? describe.skip : describe;

describeLocal('token budgets', () => {
  it(
    'a route budget of N tokens over three backends admits N tokens (plus one request in ' +
      'flight), not 3N, in one Redis bucket',
    async () => {
      const limit = 100;
      await withBudgets('e2e-route', { routeTokens: limit }, async (run, namespace) => {
        const { admitted } = await admittedUntil429(run, ['model-a', 'model-b', 'model-c']);
        expectWithinBudget(admitted * COST, limit);
        // Every backend is now refused: one budget, not one per backend rule.
        for (const model of ['model-a', 'model-b', 'model-c']) expect((await chat(run, model)).status).toBe(429);
        // All three backends took part in spending the budget.
        expect((await run.fakes.openai.records()).length).toBeGreaterThan(0);
        expect((await run.fakes.bedrock.records()).length).toBeGreaterThan(0);
        expect((await run.fakes.vllm.records()).length).toBeGreaterThan(0);
        expect(await acceptedRequests(run)).toBe(admitted);
        if (redisUrl) {
          const counters = await countersContaining(redisUrl, `${namespace}/`);
          expect(counters).toHaveLength(1);
          expect(counters[0].value).toBe(admitted * COST);
          // envoyproxy/ratelimit's fixed window: the key ends with the start of the current hour.
          const windowStart = Number(counters[0].key.split('_').pop());
          expect(windowStart % 3600).toBe(0);
          expect(Date.now() / 1000 - windowStart).toBeLessThan(3600);
        }
      });
    },
  );

  it('with requests in flight, the overshoot is bounded by what was in flight when the budget ran out', async () => {
    const limit = 100;
    const inFlight = 5;
    await withBudgets('e2e-flight', { routeTokens: limit }, async (run, namespace) => {
      const models = ['model-a', 'model-b', 'model-c'];
      let admitted = 0;
      for (let wave = 0; wave < MAX_REQUESTS / inFlight; wave++) {
        const answers = await Promise.all(
          Array.from({ length: inFlight }, (_, i) => chat(run, models[(wave + i) % models.length])),
        );
        admitted += answers.filter((a) => a.status === 200).length;
        expect(answers.filter((a) => a.status !== 200 && a.status !== 429)).toEqual([]);
        if (answers.every((a) => a.status === 429)) break;
      }
      expect(admitted * COST).toBeGreaterThanOrEqual(limit);
      // Each wave is checked before any of its tokens are charged (at stream end): at most one wave overshoots.
      expect(admitted * COST).toBeLessThanOrEqual(limit + inFlight * COST);
      if (redisUrl) {
        const counters = await countersContaining(redisUrl, `${namespace}/`);
        expect(counters.map((c) => c.value)).toEqual([admitted * COST]);
      }
    });
  });

  it('an exhausted per-tenant budget answers 429 to that tenant only; other tenants pass', async () => {
    const limit = 60;
    await withBudgets('e2e-tenant', { tenantTokens: limit }, async (run, namespace) => {
      const { admitted } = await admittedUntil429(run, ['model-a', 'model-b'], 'acme');
      expectWithinBudget(admitted * COST, limit);
      const before = await acceptedRequests(run);
      expect((await chat(run, 'model-c', 'acme')).status).toBe(429);
      expect(await acceptedRequests(run)).toBe(before);
      expect((await chat(run, 'model-a', 'globex')).status).toBe(200);
      expect((await chat(run, 'model-c', 'initech')).status).toBe(200);
      // Requests without the identity header are refused by the processor (Envoy would not limit them).
      expect((await chat(run, 'model-a')).status).toBe(400);
      if (redisUrl) {
        const counters = await countersContaining(redisUrl, `${namespace}/`);
        const byTenant = (tenant: string) =>
          counters
            .filter((c) => c.key.includes(`_${tenant}_`) || c.key.includes(`_${tenant}`))
            .reduce((sum, c) => sum + c.value, 0);
        expect(byTenant('acme')).toBe(admitted * COST);
        expect(byTenant('globex')).toBe(COST);
        expect(byTenant('initech')).toBe(COST);
      }
    });
  });

  it('per-model route budgets and a per-tenant gateway budget stack', async () => {
    const perModel = 40;
    const perTenant = 100;
    await withBudgets('e2e-stack', { perModelTokens: perModel, tenantTokens: perTenant }, async (run) => {
      // model-a's own budget runs out first ...
      const a = await admittedUntil429(run, ['model-a'], 'acme');
      expectWithinBudget(a.admitted * COST, perModel);
      // ... while model-b still has its own,
      const b = await admittedUntil429(run, ['model-b'], 'acme');
      expect(b.admitted).toBeGreaterThan(0);
      const spent = (a.admitted + b.admitted) * COST;
      expect(spent).toBeGreaterThanOrEqual(perTenant);
      // and once the tenant's gateway budget is spent, a model with an untouched per-model budget is refused too.
      expect((await chat(run, 'model-c', 'acme')).status).toBe(429);
      // Another tenant has fresh budgets on both levels.
      expect((await chat(run, 'model-a', 'globex')).status).toBe(200);
      expect((await chat(run, 'model-c', 'globex')).status).toBe(200);
    });
  });
});
