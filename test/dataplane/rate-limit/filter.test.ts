/** The ratelimit HTTP filter: when it reads the route and headers, what it answers, what it charges at stream end. */
import { HeaderMap, type HttpFilter, type LocalReply } from '../../../lib/dataplane/filter';
import {
  createRateLimitFilter,
  rateLimitRulesFromPolicy,
  RateLimitService,
  type RateLimitRule,
} from '../../../lib/dataplane/rate-limit';
import { type CounterStore, MemoryCounterStore } from '../../../lib/dataplane/rate-limit/store';
import { testStream, type TestStream } from './stream';

const LISTENER = 'ai/gw/http';

function rules(name: string, list: unknown[]): RateLimitRule[] {
  return rateLimitRulesFromPolicy({
    metadata: { namespace: 'ai', name },
    spec: { rateLimit: { global: { rules: list } } },
  });
}

const tokenBudget = (name: string, requests: number, shared = true) =>
  rules(name, [
    {
      clientSelectors: [{ headers: [{ name: 'x-tenant', type: 'Distinct' }] }],
      limit: { requests, unit: 'Hour' },
      shared,
      cost: {
        request: { from: 'Number', number: 0 },
        response: { from: 'Metadata', metadata: { namespace: 'io.ai-gateway', key: 'tokens' } },
      },
    },
  ]);

const route = (name: string, rateLimitRules: RateLimitRule[]) => ({ name, rateLimitRules });

async function run(filter: HttpFilter, stream: TestStream, tokens?: number): Promise<LocalReply | undefined> {
  const result = await filter.decodeHeaders!(stream, false);
  const reply = result.action === 'localReply' ? result.reply : undefined;
  if (tokens !== undefined) stream.dynamicMetadata.set('io.ai-gateway', { tokens });
  await filter.onStreamComplete!(stream);
  return reply;
}

describe('createRateLimitFilter', () => {
  let store: MemoryCounterStore;
  let service: RateLimitService;

  beforeEach(() => {
    store = new MemoryCounterStore();
    service = new RateLimitService(store);
  });

  it(
    'charges token costs at stream end and answers 429 (RL, request_rate_limited) once the ' + 'budget is spent',
    async () => {
      const filter = createRateLimitFilter(service, LISTENER);
      const budgetRoute = route('httproute/ai/chat/rule/0/match/0/*', tokenBudget('budget', 100));
      const request = () => testStream({ route: budgetRoute, headers: [['x-tenant', 'acme']] });
      expect(await run(filter, request(), 60)).toBeUndefined();
      expect(await run(filter, request(), 40)).toBeUndefined(); // count 100 = limit: the next check still passes
      expect(await run(filter, request(), 1)).toBeUndefined(); // 101 now
      const stream = request();
      const reply = await run(filter, stream, 5);
      expect(reply).toMatchObject({ status: 429, details: 'request_rate_limited', flag: 'RL' });
      expect(stream.responseFlags.has('RL')).toBe(true);
      // EG disables x-envoy-ratelimited unless the listener enables Envoy headers; draft-03 headers are on.
      expect(Object.fromEntries(reply?.headers ?? [])).toEqual({
        'x-ratelimit-limit': '100, 100;w=3600',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': expect.stringMatching(/^\d+$/),
      });
      // Another tenant has its own bucket.
      expect(
        await run(filter, testStream({ route: budgetRoute, headers: [['x-tenant', 'other']] }), 1),
      ).toBeUndefined();
    },
  );

  it(
    'adds x-envoy-ratelimited only when Envoy headers are enabled, and no x-ratelimit headers ' + 'when disabled',
    async () => {
      const filter = createRateLimitFilter(service, LISTENER, {
        enableEnvoyHeaders: true,
        disableRateLimitHeaders: true,
      });
      const r = route('r', rules('p', [{ limit: { requests: 0, unit: 'Second' } }]));
      expect((await run(filter, testStream({ route: r })))?.headers).toEqual([['x-envoy-ratelimited', 'true']]);
    },
  );

  it('adds the x-ratelimit headers to a forwarded response', async () => {
    const filter = createRateLimitFilter(service, LISTENER);
    const stream = testStream({ route: route('r', rules('p', [{ limit: { requests: 5, unit: 'Minute' } }])) });
    await filter.decodeHeaders!(stream, false);
    const headers = new HeaderMap([[':status', '200']]);
    void filter.encodeHeaders!(stream, headers, false);
    expect(headers.get('x-ratelimit-limit')).toBe('5, 5;w=60');
    expect(headers.get('x-ratelimit-remaining')).toBe('4');
  });

  it('a rule with xRateLimitHeaders Off keeps its limit out of the headers; Week windows are 604800 s', async () => {
    const filter = createRateLimitFilter(service, LISTENER);
    const r = route(
      'r',
      rules('p', [
        { limit: { requests: 5, unit: 'Week' } },
        { limit: { requests: 3, unit: 'Minute' }, xRateLimitHeaders: 'Off' },
      ]),
    );
    const stream = testStream({ route: r });
    await filter.decodeHeaders!(stream, false);
    const headers = new HeaderMap([[':status', '200']]);
    void filter.encodeHeaders!(stream, headers, false);
    // The tightest descriptor (3/min, 2 left) has headers off: Envoy then adds none at all.
    expect(headers.has('x-ratelimit-limit')).toBe(false);
    const weekOnly = testStream({
      route: route(
        'w',
        rules('p', [
          { limit: { requests: 5, unit: 'Week' } },
          { limit: { requests: 9, unit: 'Minute' }, xRateLimitHeaders: 'Off' },
        ]),
      ),
    });
    await filter.decodeHeaders!(weekOnly, false);
    const weekHeaders = new HeaderMap([[':status', '200']]);
    void filter.encodeHeaders!(weekOnly, weekHeaders, false);
    expect(weekHeaders.get('x-ratelimit-limit')).toBe('5, 5;w=604800');
  });

  it('reads the route when its decodeHeaders runs (after ext_proc re-routed), not the first match', async () => {
    const filter = createRateLimitFilter(service, LISTENER);
    const stream = testStream({ route: route('catch-all', []), headers: [['x-tenant', 'acme']] });
    stream.setRoute(
      route(
        'backend-a',
        rules('p', [
          {
            clientSelectors: [{ headers: [{ name: 'x-tenant', type: 'Distinct' }] }],
            limit: { requests: 0, unit: 'Hour' },
          },
        ]),
      ),
    );
    expect(await run(filter, stream)).toMatchObject({ status: 429 });
  });

  it(
    'builds stream-done descriptors from the request headers as they are at stream end, on the ' +
      'route saved at decode',
    async () => {
      const filter = createRateLimitFilter(service, LISTENER);
      const budgetRoute = route('r', tokenBudget('budget', 10));
      const stream = testStream({ route: budgetRoute, headers: [['x-tenant', 'acme']] });
      await filter.decodeHeaders!(stream, false);
      stream.setRoute(route('elsewhere', []));
      stream.requestHeaders.set('x-tenant', 'renamed');
      stream.dynamicMetadata.set('io.ai-gateway', { tokens: 11 });
      await filter.onStreamComplete!(stream);
      // The charge went to 'renamed' (headers at stream end) under the saved route's rule.
      expect(await run(filter, testStream({ route: budgetRoute, headers: [['x-tenant', 'renamed']] }))).toMatchObject({
        status: 429,
      });
      expect(await run(filter, testStream({ route: budgetRoute, headers: [['x-tenant', 'acme']] }))).toBeUndefined();
    },
  );

  it('charges nothing at stream end when the identity header was removed or the cost metadata is missing', async () => {
    const filter = createRateLimitFilter(service, LISTENER);
    const budgetRoute = route('r', tokenBudget('budget', 10));
    const removed = testStream({ route: budgetRoute, headers: [['x-tenant', 'acme']] });
    await filter.decodeHeaders!(removed, false);
    removed.requestHeaders.remove('x-tenant');
    removed.dynamicMetadata.set('io.ai-gateway', { tokens: 50 });
    await filter.onStreamComplete!(removed);
    await run(filter, testStream({ route: budgetRoute, headers: [['x-tenant', 'acme']] })); // no metadata at all
    expect(await run(filter, testStream({ route: budgetRoute, headers: [['x-tenant', 'acme']] }), 10)).toBeUndefined();
    // Exactly 10.
    expect(await run(filter, testStream({ route: budgetRoute, headers: [['x-tenant', 'acme']] }))).toBeUndefined();
  });

  it('one shared bucket across every route of the policy; non-shared rules count per route', async () => {
    const filter = createRateLimitFilter(service, LISTENER);
    const shared = tokenBudget('budget', 100);
    const perRoute = tokenBudget('budget', 100, false);
    for (const backend of ['a', 'b', 'c'])
      await run(filter, testStream({ route: route(`backend-${backend}`, shared), headers: [['x-tenant', 't']] }), 40);
    expect(
      await run(filter, testStream({ route: route('backend-a', shared), headers: [['x-tenant', 't']] })),
    ).toMatchObject({ status: 429 });
    for (const backend of ['a', 'b', 'c'])
      await run(filter, testStream({ route: route(`backend-${backend}`, perRoute), headers: [['x-tenant', 't']] }), 40);
    expect(
      await run(filter, testStream({ route: route('backend-a', perRoute), headers: [['x-tenant', 't']] })),
    ).toBeUndefined();
  });

  it('uses the route’s own IR listener as the non-shared domain when listeners share a port', async () => {
    const filter = createRateLimitFilter(service, LISTENER);
    const perRoute = rules('p', [{ limit: { requests: 5, unit: 'Hour' } }]);
    await run(filter, testStream({ route: { name: 'r', rateLimitRules: perRoute, listenerName: 'ai/gw/other' } }));
    const keys = [...(store as unknown as { counters: Map<string, unknown> }).counters.keys()];
    expect(keys).toEqual([expect.stringMatching(/^ai\/gw\/other_r_r_rule-0-match--1_rule-0-match--1_\d+$/)]);
  });

  it('runs domains in EG filter order; after a 429 later domains neither check nor charge', async () => {
    const filter = createRateLimitFilter(service, LISTENER);
    // Domains: "ai/a-first" < "ai/gw/http" (listener) < "ai/z-last".
    const first = rules('a-first', [{ limit: { requests: 1, unit: 'Hour' }, shared: true }]);
    const last = rules('z-last', [
      { limit: { requests: 100, unit: 'Hour' }, shared: true, cost: { response: { from: 'Number', number: 7 } } },
    ]);
    const r = route('r', [...last, ...first]);
    expect(await run(filter, testStream({ route: r }))).toBeUndefined();
    expect(await run(filter, testStream({ route: r }))).toMatchObject({ status: 429 });
    const zKeys = [...(store as unknown as { counters: Map<string, { count: number }> }).counters.entries()].filter(
      ([k]) => k.startsWith('ai/z-last_'),
    );
    // Request-time hit (1) + stream-done cost (7) of the first request only.
    expect(zKeys.map(([, v]) => v.count)).toEqual([8]);
  });

  it(
    'fails open on a service error by default (EG failClosed: false), and answers 500 RLSE when ' + 'failClosed',
    async () => {
      const broken: CounterStore = {
        incrementAndGet: () => Promise.reject(new Error('redis down')),
        close: async () => undefined,
      };
      const r = route('r', rules('p', [{ limit: { requests: 0, unit: 'Hour' } }]));
      expect(
        await run(createRateLimitFilter(new RateLimitService(broken), LISTENER), testStream({ route: r })),
      ).toBeUndefined();
      expect(
        await run(
          createRateLimitFilter(new RateLimitService(broken), LISTENER, { failClosed: true }),
          testStream({ route: r }),
        ),
      ).toMatchObject({
        status: 500,
        details: 'rate_limiter_error',
        flag: 'RLSE',
      });
      const slow: CounterStore = {
        incrementAndGet: () => new Promise((resolve) => setTimeout(() => resolve(1000), 200)),
        close: async () => undefined,
      };
      expect(
        await run(
          createRateLimitFilter(new RateLimitService(slow), LISTENER, { timeoutMs: 20, failClosed: true }),
          testStream({ route: r }),
        ),
      ).toMatchObject({ status: 500 });
    },
  );

  it('charges nothing at stream end when the stream ends while its request-time call is in flight', async () => {
    let release: (count: number) => void = () => undefined;
    let charges = 0;
    let calls = 0;
    const gated: CounterStore = {
      incrementAndGet: (_key, hits) => {
        charges += hits;
        return ++calls === 1 ? new Promise((resolve) => (release = resolve)) : Promise.resolve(charges);
      },
      close: async () => undefined,
    };
    const filter = createRateLimitFilter(new RateLimitService(gated), LISTENER, { timeoutMs: 5000 });
    const stream = testStream({ route: route('r', tokenBudget('budget', 100)), headers: [['x-tenant', 't']] });
    stream.dynamicMetadata.set('io.ai-gateway', { tokens: 30 });
    const decoding = filter.decodeHeaders!(stream, false);
    await filter.onStreamComplete!(stream); // the client went away mid-call
    release(0);
    await decoding;
    expect(charges).toBe(0); // the request-time check (0 hits) only; no stream-done charge of 30
  });

  it('does nothing at stream end for a request it never decoded (an earlier filter answered)', async () => {
    const filter = createRateLimitFilter(service, LISTENER);
    const stream = testStream({ route: route('r', tokenBudget('budget', 1)), headers: [['x-tenant', 't']] });
    stream.dynamicMetadata.set('io.ai-gateway', { tokens: 5 });
    await filter.onStreamComplete!(stream);
    expect(
      await run(filter, testStream({ route: route('r', tokenBudget('budget', 1)), headers: [['x-tenant', 't']] })),
    ).toBeUndefined();
  });
});
