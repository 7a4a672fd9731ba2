import { parseProcessorConfig } from '@ai-gateway-constructs/processor-config';
import type { Construct } from 'constructs';
import {
  AIGateway,
  AIRoute,
  ApiKey,
  ClientIdentity,
  Consumer,
  GatewayReference,
  ModelMatch,
  Money,
  PriceCatalog,
  RateLimitRedis,
  RateLimitUnit,
  SpendLimit,
  TokenCost,
  TokenRateLimit,
} from '../lib';
import { gatewayFixture } from './support/fixtures';
import { findAll, findOne, synthAll } from './support/synth';

function withRedis(scope: Construct): void {
  RateLimitRedis.external(scope, 'Redis', { url: 'redis.example:6379' });
}

/** A gateway with a route serving gpt-4o (exact) and claude-3-5-haiku* (prefix), and Redis. */
function setup(gatewayProps: { prices?: PriceCatalog } = {}) {
  const fixture = gatewayFixture();
  withRedis(fixture.platform);
  const gateway = gatewayProps.prices
    ? new AIGateway(fixture.platform, 'Priced', { name: 'priced', prices: gatewayProps.prices })
    : fixture.gateway;
  const route = new AIRoute(fixture.platform, 'Chat', {
    name: 'chat',
    gateway,
    rules: [
      { models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: fixture.openai }] },
      { models: [ModelMatch.prefix('claude-3-5-haiku')], backends: [{ backend: fixture.anthropic }] },
    ],
  });
  return { ...fixture, gateway, route };
}

function processorConfig(manifests: ReturnType<typeof synthAll>, gateway = 'gw') {
  const map = findAll(manifests, 'ConfigMap').find((m) => m.metadata.name === `${gateway}-processor-config`) as any;
  return parseProcessorConfig(JSON.parse(map.data['config.json']));
}

function budgetRules(manifests: ReturnType<typeof synthAll>, gateway = 'gw'): any[] {
  return findOne(manifests, 'BackendTrafficPolicy', `${gateway}-budgets`).spec.rateLimit.global.rules;
}

const moneyCost = (key: string) => ({
  request: { from: 'Number', number: 0 },
  response: { from: 'Metadata', metadata: { namespace: 'io.envoy.ai_gateway', key } },
});

describe('SpendLimit', () => {
  it('counts money in micro-dollars for $500 per 30 days, prices the charged models and requires prices', () => {
    const { app, platform, gateway } = setup();
    const limit = new SpendLimit(platform, 'Monthly', {
      target: gateway,
      limit: Money.usd(500),
      per: RateLimitUnit.THIRTY_DAYS,
      shared: true,
    });
    expect(limit.metadataKey).toBe('llm_cost_picousd_1e6');
    expect(limit.picoUsdPerUnit).toBe(1_000_000);
    const all = synthAll(app);
    expect(budgetRules(all)).toEqual([
      {
        clientSelectors: [{ headers: [{ name: 'x-ai-gateway-route', type: 'RegularExpression', value: '.+' }] }],
        limit: { requests: 500_000_000, unit: 'Month' },
        cost: moneyCost('llm_cost_picousd_1e6'),
        shared: true,
        xRateLimitHeaders: 'DraftVersion03',
      },
    ]);
    const config = processorConfig(all);
    expect(config.costs).toEqual([{ metadataKey: 'llm_cost_picousd_1e6', type: 'Price', picoUsdPerUnit: 1_000_000 }]);
    // Only the models the route can send upstream: gpt-4o exactly, and the catalog's models the prefix admits.
    expect(config.prices).toEqual([
      {
        model: 'claude-3-5-haiku-20241022',
        input: 800_000,
        cachedInput: 80_000,
        cacheWrite: 1_000_000,
        cacheWrite1h: 1_600_000,
        output: 4_000_000,
      },
      { model: 'gpt-4o', input: 2_500_000, cachedInput: 1_250_000, output: 10_000_000 },
    ]);
    expect(config.routes[0].priceRequired).toBe(true);
    expect(config.routes[0].consumerRequired).toBeUndefined();
    expect(config.budgets).toEqual([
      {
        name: 'platform/Monthly',
        costKey: 'llm_cost_picousd_1e6',
        limit: 500_000_000,
        unit: 'MONTH',
        shadow: false,
      },
    ]);
  });

  it.each([
    [Money.usd(50), 100_000, 500_000_000],
    [Money.usd(1000), 1_000_000, 1_000_000_000],
    [Money.usd(4294.967295), 10_000_000, 429_496_729],
    [Money.usd(5000), 10_000_000, 500_000_000],
    [Money.usd(0.000001), 1, 1_000_000],
    [Money.usd(1_000_000_000), 1_000_000_000_000, 1_000_000_000],
  ])(
    'picks the finest unit in which %s is at most the 1e9 units Envoy charges one request',
    (money, picoUsdPerUnit, units) => {
      const { app, platform, gateway } = setup();
      const limit = new SpendLimit(platform, 'Limit', { target: gateway, limit: money, per: RateLimitUnit.DAY });
      expect(limit.picoUsdPerUnit).toBe(picoUsdPerUnit);
      expect(budgetRules(synthAll(app))[0].limit.requests).toBe(units);
    },
  );

  it('emits shadow mode and can turn the X-RateLimit headers off', () => {
    const { app, platform, gateway, route } = setup();
    new SpendLimit(platform, 'Watch', {
      target: route,
      limit: Money.usd(10),
      per: RateLimitUnit.WEEK,
      shadow: true,
      rateLimitHeaders: false,
    });
    const all = synthAll(app);
    expect(budgetRules(all)[0]).toMatchObject({
      limit: { requests: 1_000_000_000, unit: 'Week' },
      shadowMode: true,
      xRateLimitHeaders: 'Off',
    });
    expect(processorConfig(all).budgets).toEqual([
      {
        name: 'platform/Watch',
        costKey: 'llm_cost_picousd_1e4',
        limit: 1_000_000_000,
        unit: 'WEEK',
        route: 'platform/chat',
        shadow: true,
      },
    ]);
    void gateway;
  });

  it('prices by the model sent upstream (modelNameOverride) with a catalog extended by with()', () => {
    const fixture = gatewayFixture();
    withRedis(fixture.platform);
    const gateway = new AIGateway(fixture.platform, 'Priced', {
      name: 'priced',
      prices: PriceCatalog.defaults().with({ 'my-model-v2': { input: 1.5, output: 6, reasoning: 12 } }),
    });
    new AIRoute(fixture.platform, 'Chat', {
      name: 'chat',
      gateway,
      rules: [
        {
          models: [ModelMatch.exact('my-model')],
          backends: [{ backend: fixture.openai, modelNameOverride: 'my-model-v2' }],
        },
      ],
    });
    new SpendLimit(fixture.platform, 'Limit', { target: gateway, limit: Money.usd(1), per: RateLimitUnit.DAYS_365 });
    const all = synthAll(fixture.app);
    expect(processorConfig(all, 'priced').prices).toEqual([
      { model: 'my-model-v2', input: 1_500_000, output: 6_000_000, reasoning: 12_000_000 },
    ]);
    expect(budgetRules(all, 'priced')[0].limit).toEqual({ requests: 1_000_000_000, unit: 'Year' });
  });

  it('carries cache-write prices into the processor config, in pico-dollars per token', () => {
    const fixture = gatewayFixture();
    withRedis(fixture.platform);
    const gateway = new AIGateway(fixture.platform, 'Priced', {
      name: 'priced',
      prices: PriceCatalog.of({
        'claude-x': { input: 3, cachedInput: 0.3, cacheWrite: 3.75, cacheWrite1h: 6, output: 15 },
        'claude-y': { input: 2, cacheWrite: 2.5, output: 10 },
      }),
    });
    new AIRoute(fixture.platform, 'Chat', {
      name: 'chat',
      gateway,
      rules: [{ models: [ModelMatch.prefix('claude-')], backends: [{ backend: fixture.anthropic }] }],
    });
    new SpendLimit(fixture.platform, 'Limit', { target: gateway, limit: Money.usd(1), per: RateLimitUnit.DAY });
    expect(processorConfig(synthAll(fixture.app), 'priced').prices).toEqual([
      {
        model: 'claude-x',
        input: 3_000_000,
        cachedInput: 300_000,
        cacheWrite: 3_750_000,
        cacheWrite1h: 6_000_000,
        output: 15_000_000,
      },
      { model: 'claude-y', input: 2_000_000, cacheWrite: 2_500_000, output: 10_000_000 },
    ]);
  });

  describe('throws', () => {
    it('once per unpriced model a money budget covers, naming it', () => {
      const fixture = gatewayFixture();
      withRedis(fixture.platform);
      new AIRoute(fixture.platform, 'Chat', {
        name: 'chat',
        gateway: fixture.gateway,
        rules: [
          { models: [ModelMatch.exact('house-model')], backends: [{ backend: fixture.openai }] },
          {
            models: [ModelMatch.exact('house-alias')],
            backends: [{ backend: fixture.openai, modelNameOverride: 'house-model' }],
          },
        ],
      });
      new SpendLimit(fixture.platform, 'Limit', {
        target: fixture.gateway,
        limit: Money.usd(100),
        per: RateLimitUnit.DAY,
      });
      expect(() => synthAll(fixture.app)).toThrow(
        'platform/Limit: invalid limit ["house-model"]: a money budget covers "house-model" (route platform/chat), ' +
          'which the price catalog does not price, so its spend could not be charged; add it with ' +
          "PriceCatalog.defaults().with({ ... }) in the gateway's prices",
      );
    });

    it('if no model the budget covers has a price', () => {
      const fixture = gatewayFixture();
      withRedis(fixture.platform);
      new AIRoute(fixture.platform, 'Chat', {
        name: 'chat',
        gateway: fixture.gateway,
        rules: [{ models: [ModelMatch.prefix('house-')], backends: [{ backend: fixture.openai }] }],
      });
      new SpendLimit(fixture.platform, 'Limit', {
        target: fixture.gateway,
        limit: Money.usd(1),
        per: RateLimitUnit.DAY,
      });
      expect(() => synthAll(fixture.app)).toThrow(
        /platform\/Limit: invalid limit "no priced model": a money budget covers no route with a model the price catalog prices/,
      );
    });

    it('if the limit exceeds 1e9 units even counted in whole dollars', () => {
      const { platform, gateway } = setup();
      expect(
        () =>
          new SpendLimit(platform, 'Huge', {
            target: gateway,
            limit: Money.usd(5_000_000_000),
            per: RateLimitUnit.THIRTY_DAYS,
          }),
      ).toThrow(
        'platform/Huge: invalid limit "$5000000000": cannot be represented: counted in whole dollars it exceeds ' +
          '1,000,000,000 units, the most Envoy charges one request (a budget must be able to charge a request that ' +
          'uses it up)',
      );
    });

    it('if the limit is not Money or is zero', () => {
      const { platform, gateway } = setup();
      expect(
        () => new SpendLimit(platform, 'Tokens', { target: gateway, limit: 5 as any, per: RateLimitUnit.DAY }),
      ).toThrow('platform/Tokens: invalid limit 5: must be created with Money.usd()');
      expect(
        () => new SpendLimit(platform, 'Zero', { target: gateway, limit: Money.usd(0), per: RateLimitUnit.DAY }),
      ).toThrow('platform/Zero: invalid limit "$0": must be more than $0');
    });

    it('if the window is not a RateLimitUnit', () => {
      const { platform, gateway } = setup();
      expect(
        () => new SpendLimit(platform, 'Bad', { target: gateway, limit: Money.usd(1), per: 'Month' as any }),
      ).toThrow(
        'platform/Bad: invalid per "Month": must be a RateLimitUnit (SECOND ... DAY, WEEK, THIRTY_DAYS, DAYS_365)',
      );
    });
  });
});

describe('Money and PriceCatalog', () => {
  it('reject amounts and prices that are not exact to the micro-dollar', () => {
    expect(() => Money.usd(0.0000001)).toThrow('Money.usd(1e-7): must be a non-negative number of US dollars');
    expect(() => Money.usd(-1)).toThrow('Money.usd(-1)');
    expect(() => PriceCatalog.of({ m: { input: 0.0000001, output: 1 } })).toThrow(
      'PriceCatalog: the input price of "m" (1e-7) must be a non-negative number of US dollars per million tokens',
    );
    expect(() => PriceCatalog.of({ m: { input: 1 } as any })).toThrow('PriceCatalog: "m" needs an output price');
    expect(() => PriceCatalog.of({ m: { input: 1, output: 1, cacheWrite1h: -2 } })).toThrow(
      'PriceCatalog: the cacheWrite1h price of "m" (-2) must be a non-negative number',
    );
  });

  it('overrides, extends and removes defaults', () => {
    const catalog = PriceCatalog.defaults()
      .with({ 'gpt-4o': { input: 2, output: 8 } })
      .without('gpt-4o-mini');
    expect(catalog._price('gpt-4o')).toEqual({ model: 'gpt-4o', input: 2_000_000, output: 8_000_000 });
    expect(catalog.models).not.toContain('gpt-4o-mini');
    expect(PriceCatalog.defaults().models).toContain('gpt-4o-mini');
    expect(PriceCatalog.DEFAULTS_DATE).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  it('defaults price Claude cache writes: 1.25 times input for 5 minutes, twice input for an hour', () => {
    const catalog = PriceCatalog.defaults();
    expect(catalog._price('claude-sonnet-4-20250514')).toEqual({
      model: 'claude-sonnet-4-20250514',
      input: 3_000_000,
      cachedInput: 300_000,
      cacheWrite: 3_750_000,
      cacheWrite1h: 6_000_000,
      output: 15_000_000,
    });
    expect(catalog._price('claude-3-haiku-20240307')).toMatchObject({ cacheWrite: 300_000, cacheWrite1h: 500_000 });
    // Bedrock lists only 5-minute writes for these models.
    expect(catalog._price('anthropic.claude-opus-4-20250514-v1:0')).toEqual({
      model: 'anthropic.claude-opus-4-20250514-v1:0',
      input: 15_000_000,
      cachedInput: 1_500_000,
      cacheWrite: 18_750_000,
      output: 75_000_000,
    });
    // Claude Haiku 3 is listed at $0.30 / $0.50 (not 1.25 times $0.25); every other Claude model follows the ratios.
    for (const model of catalog.models.filter((m) => m.includes('claude') && m !== 'claude-3-haiku-20240307')) {
      const price = catalog._price(model)!;
      expect([model, price.cacheWrite! * 4]).toEqual([model, price.input * 5]);
      if (price.cacheWrite1h !== undefined) expect([model, price.cacheWrite1h]).toEqual([model, price.input * 2]);
    }
  });

  it('defaults cover OpenAI, Anthropic, Bedrock and Gemini models', () => {
    const models = PriceCatalog.defaults().models;
    for (const model of [
      'gpt-4o',
      'claude-sonnet-4-20250514',
      'anthropic.claude-3-7-sonnet-20250219-v1:0',
      'gemini-2.5-flash',
    ]) {
      expect(models).toContain(model);
    }
  });
});

describe('consumer budgets', () => {
  it('share one rule per cost, money unit and window, reading each consumer limit from metadata', () => {
    const { app, platform, gateway } = setup();
    new Consumer(platform, 'Big', {
      target: gateway,
      keys: [ApiKey.fromSecret('big-keys', ['big'])],
      budgets: [{ limit: Money.usd(500), per: RateLimitUnit.THIRTY_DAYS }],
    });
    new Consumer(platform, 'Small', {
      target: gateway,
      keys: [ApiKey.fromSecret('small-keys', ['small'])],
      budgets: [
        { limit: Money.usd(600), per: RateLimitUnit.THIRTY_DAYS, name: 'small monthly' },
        { limit: 1_000_000, per: RateLimitUnit.DAY, cost: TokenCost.outputTokens() },
      ],
    });
    new Consumer(platform, 'Free', { target: gateway, keys: [ApiKey.fromSecret('free-keys', ['free'])] });
    const all = synthAll(app);
    expect(budgetRules(all)).toEqual([
      {
        clientSelectors: [
          {
            headers: [
              { name: 'x-ai-gateway-route', type: 'RegularExpression', value: '.+' },
              { name: 'x-ai-gateway-limit-consumer-usd-1e6-month', type: 'Distinct' },
            ],
          },
        ],
        limit: {
          requests: 4_294_967_295,
          unit: 'Month',
          fromMetadata: { namespace: 'io.envoy.ai_gateway', key: 'consumer_usd_1e6_month' },
        },
        cost: moneyCost('llm_cost_picousd_1e6'),
        shared: true,
        xRateLimitHeaders: 'DraftVersion03',
      },
      {
        clientSelectors: [
          {
            headers: [
              { name: 'x-ai-gateway-route', type: 'RegularExpression', value: '.+' },
              { name: 'x-ai-gateway-limit-consumer-llm-output-token-day', type: 'Distinct' },
            ],
          },
        ],
        limit: {
          requests: 4_294_967_295,
          unit: 'Day',
          fromMetadata: { namespace: 'io.envoy.ai_gateway', key: 'consumer_llm_output_token_day' },
        },
        cost: moneyCost('llm_output_token'),
        shared: true,
        xRateLimitHeaders: 'DraftVersion03',
      },
    ]);
    const config = processorConfig(all);
    // Only consumers with a budget in a rule are in it: the processor sets the rule's header for them alone.
    const usd = { metadataKey: 'consumer_usd_1e6_month', header: 'x-ai-gateway-limit-consumer-usd-1e6-month' };
    const output = {
      metadataKey: 'consumer_llm_output_token_day',
      header: 'x-ai-gateway-limit-consumer-llm-output-token-day',
    };
    expect(config.consumers!.entries.map((c) => [c.id, c.limits])).toEqual([
      ['big', [{ budget: 'platform/Big/budgets[0]', ...usd, requestsPerUnit: 500_000_000, unit: 'MONTH' }]],
      [
        'small',
        [
          { budget: 'small monthly', ...usd, requestsPerUnit: 600_000_000, unit: 'MONTH' },
          { budget: 'platform/Small/budgets[1]', ...output, requestsPerUnit: 1_000_000, unit: 'DAY' },
        ],
      ],
      ['free', []],
    ]);
    expect(config.budgets).toEqual([
      {
        name: 'platform/Gateway/consumer budgets (usd_1e6 per month)',
        costKey: 'llm_cost_picousd_1e6',
        limit: 4_294_967_295,
        unit: 'MONTH',
        limitMetadataKey: 'consumer_usd_1e6_month',
        shadow: false,
      },
      {
        name: 'platform/Gateway/consumer budgets (llm_output_token per day)',
        costKey: 'llm_output_token',
        limit: 4_294_967_295,
        unit: 'DAY',
        limitMetadataKey: 'consumer_llm_output_token_day',
        shadow: false,
      },
    ]);
    expect(config.costs.map((c) => c.metadataKey)).toEqual(['llm_cost_picousd_1e6', 'llm_output_token']);
    expect(config.routes[0]).toMatchObject({ consumerRequired: true, priceRequired: true });
  });

  it("get a rule per money unit, so changing one consumer's limit never rescales another's count", () => {
    const rulesFor = (bLimit: number) => {
      const { app, platform, gateway } = setup();
      new Consumer(platform, 'A', {
        target: gateway,
        keys: [ApiKey.fromSecret('a-keys', ['a'])],
        budgets: [{ limit: Money.usd(500), per: RateLimitUnit.THIRTY_DAYS }],
      });
      new Consumer(platform, 'B', {
        target: gateway,
        keys: [ApiKey.fromSecret('b-keys', ['b'])],
        budgets: [{ limit: Money.usd(bLimit), per: RateLimitUnit.THIRTY_DAYS }],
      });
      const config = processorConfig(synthAll(app));
      const limitOf = (id: string) => config.consumers!.entries.find((c) => c.id === id)!.limits;
      return { a: limitOf('a'), b: limitOf('b'), costs: config.costs };
    };
    const before = rulesFor(700);
    const raised = rulesFor(5000);
    // A's own limit and the rule counting it (its metadata key and cost unit) do not depend on B's limit.
    expect(raised.a[0]).toEqual(before.a[0]);
    expect(before.a[0]).toMatchObject({ metadataKey: 'consumer_usd_1e6_month', requestsPerUnit: 500_000_000 });
    // B above $1,000 moves to a rule of its own, counted in tens of micro-dollars.
    expect(raised.b[0]).toMatchObject({
      metadataKey: 'consumer_usd_1e7_month',
      requestsPerUnit: 500_000_000,
    });
    expect(raised.costs.map((c) => c.metadataKey)).toEqual(['llm_cost_picousd_1e6', 'llm_cost_picousd_1e7']);
  });

  it("of a route's consumers are scoped to the route", () => {
    const { app, platform, route } = setup();
    new Consumer(platform, 'Team', {
      target: route,
      keys: [ApiKey.fromSecret('team-keys', ['team'])],
      budgets: [{ limit: 100_000, per: RateLimitUnit.HOUR }],
    });
    const rule = budgetRules(synthAll(app))[0];
    expect(rule.clientSelectors[0].headers[0]).toEqual({
      name: 'x-ai-gateway-route',
      type: 'Exact',
      value: 'platform/chat',
    });
    expect(rule.limit.fromMetadata.key).toMatch(/^consumer_llm_total_token_hour_r[0-9a-f]{8}$/);
  });

  it('on a Gateway not managed by an AIGateway go into the route policy without a route selector', () => {
    const fixture = gatewayFixture();
    withRedis(fixture.platform);
    const route = new AIRoute(fixture.platform, 'Chat', {
      name: 'chat',
      gateway: GatewayReference.fromName('eg', 'platform'),
      rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: fixture.openai }] }],
    });
    new Consumer(fixture.platform, 'Team', {
      target: route,
      keys: [ApiKey.fromSecret('team-keys', ['team'])],
      budgets: [{ limit: Money.usd(20), per: RateLimitUnit.WEEK }],
    });
    const all = synthAll(fixture.app);
    const rules = findOne(all, 'BackendTrafficPolicy', 'chat').spec.rateLimit.global.rules;
    expect(rules[0].clientSelectors).toEqual([
      {
        headers: [
          { name: expect.stringMatching(/^x-ai-gateway-limit-consumer-usd-1e5-week-r[0-9a-f]{8}$/), type: 'Distinct' },
        ],
      },
    ]);
    expect(findOne(all, 'SecurityPolicy', 'chat-api-keys').spec.apiKeyAuth.credentialRefs).toEqual([
      { group: '', kind: 'Secret', name: 'team-keys' },
    ]);
  });

  describe('throws', () => {
    it('for shadow mode, explaining why', () => {
      const { platform, gateway } = setup();
      expect(
        () =>
          new Consumer(platform, 'Team', {
            target: gateway,
            keys: [ApiKey.fromSecret('team-keys', ['team'])],
            budgets: [{ limit: Money.usd(5), per: RateLimitUnit.DAY, shadow: true }],
          }),
      ).toThrow(
        "platform/Team: invalid budgets[0].shadow true: a consumer's own budget reaches Envoy as a per-request " +
          "limit (limit.fromMetadata), and Envoy's rate-limit service enforces every request carrying its own limit " +
          'whatever the shadow mode',
      );
    });

    it('for two budgets of one cost and window', () => {
      const { platform, gateway } = setup();
      expect(
        () =>
          new Consumer(platform, 'Team', {
            target: gateway,
            keys: [ApiKey.fromSecret('team-keys', ['team'])],
            budgets: [
              { limit: Money.usd(5), per: RateLimitUnit.DAY },
              { limit: Money.usd(6), per: RateLimitUnit.DAY },
            ],
          }),
      ).toThrow('platform/Team: invalid budgets[1].per "Day": budgets[0] already limits the same cost per Day');
    });

    it('for a money budget that does not fit uint32', () => {
      const { platform, gateway } = setup();
      expect(
        () =>
          new Consumer(platform, 'Team', {
            target: gateway,
            keys: [ApiKey.fromSecret('team-keys', ['team'])],
            budgets: [{ limit: Money.usd(4_300_000_000), per: RateLimitUnit.DAY }],
          }),
      ).toThrow('platform/Team: invalid budgets[0].limit "$4300000000": cannot be represented');
    });

    it('for a token budget that is not a positive integer, or a cost on a money budget', () => {
      const { platform, gateway } = setup();
      const keys = [ApiKey.fromSecret('team-keys', ['team'])];
      expect(
        () => new Consumer(platform, 'A', { target: gateway, keys, budgets: [{ limit: 1.5, per: RateLimitUnit.DAY }] }),
      ).toThrow('platform/A: invalid budgets[0].limit 1.5: must be Money.usd(...) or a positive integer');
      expect(
        () =>
          new Consumer(platform, 'B', {
            target: gateway,
            keys,
            budgets: [{ limit: Money.usd(1), per: RateLimitUnit.DAY, cost: TokenCost.inputTokens() }],
          }),
      ).toThrow('platform/B: invalid budgets[0].cost "llm_input_token": only applies to token limits');
    });

    it('without a RateLimitRedis', () => {
      const fixture = gatewayFixture();
      new AIRoute(fixture.platform, 'Chat', {
        name: 'chat',
        gateway: fixture.gateway,
        rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: fixture.openai }] }],
      });
      new Consumer(fixture.platform, 'Team', {
        target: fixture.gateway,
        keys: [ApiKey.fromSecret('team-keys', ['team'])],
        budgets: [{ limit: 10, per: RateLimitUnit.DAY }],
      });
      expect(() => synthAll(fixture.app)).toThrow(
        /platform\/Team: invalid budgets "platform\/Gateway": is a token budget, but the app has no RateLimitRedis/,
      );
    });
  });
});

describe('ClientIdentity', () => {
  it('consumer() counts per consumer and requires a consumer instead of a header', () => {
    const { app, platform, gateway, route } = setup();
    new Consumer(platform, 'Team', { target: gateway, keys: [ApiKey.fromSecret('team-keys', ['team'])] });
    new TokenRateLimit(platform, 'PerConsumer', {
      target: route,
      limit: 1000,
      per: RateLimitUnit.MINUTE,
      client: ClientIdentity.consumer(),
    });
    new TokenRateLimit(platform, 'PerKey', {
      target: gateway,
      limit: 1000,
      per: RateLimitUnit.MINUTE,
      client: ClientIdentity.apiKey(),
    });
    const all = synthAll(app);
    expect(budgetRules(all).map((r) => r.clientSelectors[0].headers[1])).toEqual([
      { name: 'x-ai-gateway-consumer', type: 'Distinct' },
      { name: 'x-ai-gateway-client-id', type: 'Distinct' },
    ]);
    const config = processorConfig(all);
    expect(config.routes[0].requiredHeaders).toEqual([]);
    expect(config.routes[0].consumerRequired).toBe(true);
  });

  it.each([
    ['consumer', ClientIdentity.consumer(), 'per consumer'],
    ['apiKey', ClientIdentity.apiKey(), 'per API key'],
  ])('%s() throws on a gateway that authenticates nobody', (name, client, per) => {
    const { app, platform, gateway } = setup();
    new TokenRateLimit(platform, 'Budget', { target: gateway, limit: 10, per: RateLimitUnit.DAY, client });
    expect(() => synthAll(app)).toThrow(
      `platform/Budget: invalid client "ClientIdentity.${name}()": counts ${per}, but the gateway platform/Gateway ` +
        'authenticates nobody: attach a Consumer with keys to it, or count by a header clients choose with ' +
        'ClientIdentity.unverifiedHeader(...) explicitly',
    );
  });

  it("jwtClaim() maps the claim to a gateway-owned header the gateway strips from clients' requests", () => {
    const fixture = gatewayFixture();
    withRedis(fixture.platform);
    const gateway = new AIGateway(fixture.platform, 'Jwt', {
      name: 'jwt-gw',
      jwt: { issuer: 'https://login.example.com', jwksUri: 'https://login.example.com/jwks.json' },
    });
    new AIRoute(fixture.platform, 'Chat', {
      name: 'chat',
      gateway,
      rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: fixture.openai }] }],
    });
    new TokenRateLimit(fixture.platform, 'PerTeam', {
      target: gateway,
      limit: 1000,
      per: RateLimitUnit.DAY,
      client: ClientIdentity.jwtClaim('org.team'),
    });
    const all = synthAll(fixture.app);
    expect(findOne(all, 'SecurityPolicy', 'jwt-gw-jwt').spec.jwt.providers[0].claimToHeaders).toEqual([
      { claim: 'org.team', header: 'x-ai-gateway-claim-org-team' },
    ]);
    expect(findOne(all, 'ClientTrafficPolicy', 'jwt-gw-client').spec.headers.earlyRequestHeaders.remove).toContain(
      'x-ai-gateway-claim-org-team',
    );
    expect(budgetRules(all, 'jwt-gw')[0].clientSelectors[0].headers[1]).toEqual({
      name: 'x-ai-gateway-claim-org-team',
      type: 'Distinct',
    });
    expect(processorConfig(all, 'jwt-gw').routes[0].requiredHeaders).toEqual(['x-ai-gateway-claim-org-team']);
  });

  it("jwtClaim() headers count against the ClientTrafficPolicy's list of stripped headers", () => {
    const fixture = gatewayFixture();
    withRedis(fixture.platform);
    const gateway = new AIGateway(fixture.platform, 'Jwt', {
      name: 'jwt-gw',
      jwt: {
        issuer: 'https://login.example.com',
        jwksUri: 'https://login.example.com/jwks.json',
        claimToHeaders: Object.fromEntries(Array.from({ length: 59 }, (_, i) => [`c${i}`, `x-c${i}`])),
      },
    });
    new AIRoute(fixture.platform, 'Chat', {
      name: 'chat',
      gateway,
      rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: fixture.openai }] }],
    });
    new TokenRateLimit(fixture.platform, 'PerTeam', {
      target: gateway,
      limit: 10,
      per: RateLimitUnit.DAY,
      client: ClientIdentity.jwtClaim('team'),
    });
    expect(() => synthAll(fixture.app)).toThrow(
      'platform/Jwt: invalid jwt.claimToHeaders "60 claims": maps 60 claims; at most 59 fit beside the ' +
        "gateway's 5 own headers in the ClientTrafficPolicy field spec.headers.earlyRequestHeaders.remove",
    );
  });

  it('jwtClaim() throws on a gateway without JWT authentication, and for a bad claim name', () => {
    const { platform, gateway } = setup();
    expect(
      () =>
        new TokenRateLimit(platform, 'PerTeam', {
          target: gateway,
          limit: 10,
          per: RateLimitUnit.DAY,
          client: ClientIdentity.jwtClaim('team'),
        }),
    ).toThrow(
      'platform/PerTeam: invalid client "ClientIdentity.jwtClaim(\'team\')": the AIGateway platform/Gateway ' +
        'verifies no JWT (set its jwt prop), so there is no claim to count by',
    );
    expect(() => ClientIdentity.jwtClaim('a b')).toThrow('ClientIdentity.jwtClaim("a b"): must be a claim name');
  });
});

describe('RateLimitUnit', () => {
  it('names the long windows honestly and maps them to Envoy Gateway units', () => {
    expect(
      [RateLimitUnit.WEEK, RateLimitUnit.THIRTY_DAYS, RateLimitUnit.DAYS_365].map((u) => [u.name, u.seconds]),
    ).toEqual([
      ['Week', 604_800],
      ['Month', 2_592_000],
      ['Year', 31_536_000],
    ]);
  });
});
