/**
 * Governance over real gRPC: consumers from the client id apiKeyAuth forwards, their headers and limit metadata in
 * the answer that routes the request, who may call what, money costs priced by the upstream model, and Envoy's
 * budget 429s answered in the client's schema.
 */
import { CLIENT_ID_HEADER, CONSUMER_HEADER, type ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import type { Logger } from '../../src/log';
import { structToObject, type UpstreamResponse } from '../support/envoy-client';
import { openAIBackend, startTestProcessor, testConfig, type TestProcessor } from '../support/processor-harness';

const ENDPOINTS = [
  { api: 'OpenAI' as const, pathPrefix: '/v1' },
  { api: 'Anthropic' as const, pathPrefix: '/anthropic/v1' },
];

function governedConfig(): ProcessorConfig {
  return testConfig({
    backends: [openAIBackend('openai')],
    routes: [
      {
        name: 'team/chat',
        endpoints: ENDPOINTS,
        hostnames: [],
        requiredHeaders: [],
        consumerRequired: true,
        priceRequired: true,
        rules: [
          {
            models: [{ type: 'Exact', value: 'gpt-4o' }],
            backends: [{ backend: 'openai', weight: 1, priority: 0, modelNameOverride: 'gpt-4o-2024' }],
          },
          { models: [{ type: 'Exact', value: 'unpriced' }], backends: [{ backend: 'openai', weight: 1, priority: 0 }] },
        ],
      },
      {
        name: 'open/chat',
        endpoints: ENDPOINTS,
        hostnames: [],
        requiredHeaders: [],
        rules: [
          { models: [{ type: 'Prefix', value: 'open-' }], backends: [{ backend: 'openai', weight: 1, priority: 0 }] },
        ],
      },
    ],
    costs: [{ metadataKey: 'usd_micro', type: 'Price', picoUsdPerUnit: 1_000_000 }],
    prices: [{ model: 'gpt-4o-2024', input: 2_500_000, output: 10_000_000, cachedInput: 1_250_000 }],
    consumers: {
      clientIdHeader: CLIENT_ID_HEADER,
      entries: [
        {
          id: 'alice',
          clientIds: ['alice-key', 'alice-key-2'],
          limits: [
            {
              budget: 'alice/monthly',
              metadataKey: 'consumer_usd_month',
              header: 'x-ai-gateway-limit-consumer-usd-month',
              requestsPerUnit: 500_000_000,
              unit: 'MONTH',
            },
          ],
        },
        { id: 'bob', clientIds: ['bob-key'], models: [{ type: 'Prefix', value: 'open-' }], limits: [] },
      ],
    },
    budgets: [
      {
        name: 'team/monthly-spend',
        costKey: 'usd_micro',
        limit: 4_294_967_295,
        unit: 'MONTH',
        route: 'team/chat',
        limitMetadataKey: 'consumer_usd_month',
        shadow: false,
      },
      { name: 'gateway/daily-tokens', costKey: 'llm_total_token', limit: 100_000, unit: 'DAY', shadow: false },
    ],
  });
}

const chat = (model: string, headers: Record<string, string> = {}) => ({
  path: '/v1/chat/completions',
  headers,
  body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
});
const messages = (model: string, headers: Record<string, string> = {}) => ({
  path: '/anthropic/v1/messages',
  headers,
  body: JSON.stringify({ model, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
});

/** 1,000 input (400 cached), 300 output: 5,000 micro-dollars at the gpt-4o-2024 price. */
const completion = (): UpstreamResponse => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    id: 'c1',
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content: 'hello' }, finish_reason: 'stop' }],
    usage: {
      prompt_tokens: 1000,
      completion_tokens: 300,
      total_tokens: 1300,
      prompt_tokens_details: { cached_tokens: 400 },
    },
  }),
});

const budgetReply = (limit: string): UpstreamResponse => ({
  status: 429,
  headers: {
    'x-envoy-ratelimited': 'true',
    'x-ratelimit-limit': limit,
    'x-ratelimit-remaining': '0',
    'x-ratelimit-reset': '3600',
  },
  codeDetails: 'request_rate_limited',
});

function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('governance over ext_proc', () => {
  let processor: TestProcessor;
  const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
  const logger: Logger = {
    error() {},
    info() {},
    debug() {},
    warn(fields, message) {
      warnings.push({ fields: fields as Record<string, unknown>, message });
    },
  };
  beforeAll(async () => {
    processor = await startTestProcessor(governedConfig(), { logger, pollIntervalMs: 100 });
  });
  afterAll(() => processor.close());

  it("sets the consumer header, keeps the client id, writes the consumer's limits in the routing answer", async () => {
    for (let i = 0; i < 2; i++) {
      // The second time the encoded answer comes from the cache.
      const result = await processor.client.exchange(
        chat('gpt-4o', { [CLIENT_ID_HEADER]: 'alice-key', [CONSUMER_HEADER]: 'mallory' }),
        completion,
      );
      expect(result.status).toBe(200);
      expect(result.upstreamRequest!.headers[CONSUMER_HEADER]).toBe('alice');
      // The header the consumer-budget rule keys on: alice has that budget.
      expect(result.upstreamRequest!.headers['x-ai-gateway-limit-consumer-usd-month']).toBe('alice');
      // Kept: Envoy keys per-key budgets on it again when it charges the response at stream end.
      expect(result.upstreamRequest!.headers[CLIENT_ID_HEADER]).toBe('alice-key');
      expect(JSON.parse(result.upstreamRequest!.body.toString()).model).toBe('gpt-4o-2024');
      // The limit travels in the request-body answer, before Envoy computes the rate-limit descriptors.
      const routing = result.responses.find((r) => r.kind === 'requestBody')!;
      expect(structToObject(routing.message.dynamicMetadata as never)).toEqual({
        'io.envoy.ai_gateway': { consumer_usd_month: { requests_per_unit: 500_000_000, unit: 'MONTH' } },
      });
      // Money priced by the upstream model: 600 * 2.5 + 400 * 1.25 + 300 * 10 micro-dollars per thousand tokens.
      expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({
        usd_micro: 5000,
        llm_input_token: 1000,
        consumer_usd_month: { requests_per_unit: 500_000_000, unit: 'MONTH' },
      });
    }
    const text = await processor.app.metrics.registry.metrics();
    const labels = { consumer: 'alice', gen_ai_request_model: 'gpt-4o-2024', gen_ai_provider_name: 'openai' };
    expect(metricValue(text, 'ai_gateway_consumer_spend_usd_total', labels)).toBeCloseTo(0.01, 12);
    expect(
      metricValue(text, 'ai_gateway_consumer_tokens_total', { ...labels, gen_ai_token_type: 'cached_input' }),
    ).toBe(800);
  });

  it('answers 401 without a client id and 403 for one no consumer owns, in the client schema', async () => {
    const missing = await processor.client.exchange(chat('gpt-4o'), completion);
    expect(missing.status).toBe(401);
    expect(JSON.parse(missing.body.toString())).toEqual({
      error: {
        message: 'this route requires the API key of a registered consumer',
        type: 'authentication_error',
        param: null,
        code: 'missing_api_key',
      },
    });
    const unknown = await processor.client.exchange(messages('gpt-4o', { [CLIENT_ID_HEADER]: 'eve-key' }), completion);
    expect(unknown.status).toBe(403);
    expect(JSON.parse(unknown.body.toString())).toEqual({
      type: 'error',
      error: { type: 'permission_error', message: 'the API key does not belong to a consumer of this route' },
    });
    const anthropicMissing = await processor.client.exchange(messages('gpt-4o'), completion);
    expect(JSON.parse(anthropicMissing.body.toString()).error.type).toBe('authentication_error');
  });

  it("refuses models outside a consumer's list with 403", async () => {
    const result = await processor.client.exchange(chat('gpt-4o', { [CLIENT_ID_HEADER]: 'bob-key' }), completion);
    expect(result.status).toBe(403);
    expect(JSON.parse(result.body.toString()).error).toMatchObject({
      type: 'permission_error',
      code: 'model_not_allowed',
      param: 'model',
    });
    const allowed = await processor.client.exchange(
      chat('open-x', { [CLIENT_ID_HEADER]: 'bob-key', 'x-ai-gateway-limit-consumer-usd-month': 'alice' }),
      completion,
    );
    expect(allowed.status).toBe(200);
    expect(allowed.upstreamRequest!.headers[CONSUMER_HEADER]).toBe('bob');
    // bob is not in the consumer-budget rule: its header is removed, so he cannot spend from alice's bucket.
    expect(allowed.upstreamRequest!.headers['x-ai-gateway-limit-consumer-usd-month']).toBeUndefined();
    // The first answer cached in this processor (alice's are rewritten for the model override): the apiKeyAuth client
    // id does not keep an answer out of the cache, its removal is part of the consumer's answer.
    expect(processor.app.processor.runtime().requestAnswers.bytes).toBeGreaterThan(0);
    // bob has no limits of his own: no limit metadata (and no descriptor in the rule).
    expect(allowed.metadata['io.envoy.ai_gateway']).not.toHaveProperty('consumer_usd_month');
  });

  it('answers 400 model_not_priced on a priceRequired route before the provider', async () => {
    let reached = false;
    const result = await processor.client.exchange(chat('unpriced', { [CLIENT_ID_HEADER]: 'alice-key' }), () => {
      reached = true;
      return completion();
    });
    expect(reached).toBe(false);
    expect(result.status).toBe(400);
    expect(JSON.parse(result.body.toString()).error).toMatchObject({
      type: 'invalid_request_error',
      code: 'model_not_priced',
    });
  });

  it('removes a spoofed consumer header and the client id for requests without a known consumer', async () => {
    const result = await processor.client.exchange(
      chat('open-x', { [CONSUMER_HEADER]: 'alice', [CLIENT_ID_HEADER]: 'eve-key' }),
      completion,
    );
    expect(result.status).toBe(200);
    expect(result.upstreamRequest!.headers[CONSUMER_HEADER]).toBeUndefined();
    expect(result.upstreamRequest!.headers[CLIENT_ID_HEADER]).toBeUndefined();
    const text = await processor.app.metrics.registry.metrics();
    expect(
      metricValue(text, 'ai_gateway_consumer_tokens_total', {
        consumer: '(none)',
        gen_ai_request_model: 'open-*',
        gen_ai_token_type: 'input',
      }),
    ).toBe(1000);
  });

  it("exports a budget's used share from the rate-limit headers Envoy adds to the backend's answers", async () => {
    const withUse = (limit: string, remaining: string) => () => {
      const reply = completion();
      return {
        ...reply,
        headers: { ...reply.headers, 'x-ratelimit-limit': limit, 'x-ratelimit-remaining': remaining },
      };
    };
    const used = async () =>
      metricValue(await processor.app.metrics.registry.metrics(), 'ai_gateway_budget_used_ratio', {
        budget: 'alice/monthly',
        consumer: 'alice',
      });
    const ok = await processor.client.exchange(
      chat('gpt-4o', { [CLIENT_ID_HEADER]: 'alice-key' }),
      withUse('500000000, 500000000;w=2592000', '100000000'),
    );
    expect(ok.status).toBe(200);
    expect(await used()).toBe(0.8);
    // An answer to an earlier check (less used) arriving later does not lower it.
    await processor.client.exchange(
      chat('gpt-4o', { [CLIENT_ID_HEADER]: 'alice-key' }),
      withUse('500000000, 500000000;w=2592000', '400000000'),
    );
    expect(await used()).toBe(0.8);
    const daily = await processor.client.exchange(chat('open-x'), withUse('100000, 100000;w=86400', '90000'));
    expect(daily.status).toBe(200);
    const text = await processor.app.metrics.registry.metrics();
    expect(
      metricValue(text, 'ai_gateway_budget_used_ratio', { budget: 'gateway/daily-tokens', consumer: '(none)' }),
    ).toBe(0.1);
    // The client's answer is the backend's, headers included.
    expect(daily.headers['x-ratelimit-remaining']).toBe('90000');
  });

  it('puts a share into the window of the check, not of the answer that came after the window ended', async () => {
    const checkedAt = Date.UTC(2026, 11, 6, 23, 59, 50);
    const clock = jest.spyOn(Date, 'now').mockReturnValue(checkedAt);
    try {
      const late = await processor.client.exchange(chat('open-x', { [CLIENT_ID_HEADER]: 'bob-key' }), () => {
        // The answer arrives 30 s later, in the next day's window.
        clock.mockReturnValue(checkedAt + 30_000);
        const reply = completion();
        return {
          ...reply,
          headers: { ...reply.headers, 'x-ratelimit-limit': '100000, 100000;w=86400', 'x-ratelimit-remaining': '5000' },
        };
      });
      expect(late.status).toBe(200);
      // The share belongs to the day that ended: the next day's gauge has no series from it.
      const text = await processor.app.metrics.registry.metrics();
      expect(text).not.toMatch(/ai_gateway_budget_used_ratio\{budget="gateway\/daily-tokens",consumer="bob"\}/);
    } finally {
      clock.mockRestore();
    }
  });

  it("replaces Envoy's budget 429 with the client's error naming the budget and its window end", async () => {
    const before = Date.now();
    const openai = await processor.client.exchange(chat('gpt-4o', { [CLIENT_ID_HEADER]: 'alice-key' }), () =>
      budgetReply('500000000, 500000000;w=2592000'),
    );
    expect(openai.status).toBe(429);
    expect(openai.headers).toMatchObject({
      'content-type': 'application/json',
      'x-envoy-ratelimited': 'true',
      'x-ratelimit-limit': '500000000, 500000000;w=2592000',
      'x-ratelimit-reset': '3600',
    });
    const error = JSON.parse(openai.body.toString()).error;
    expect(error).toMatchObject({ type: 'rate_limit_exceeded', code: 'budget_exceeded', param: null });
    expect(error.message).toMatch(/^budget "alice\/monthly" is used up until (\S+) \(UTC\), when its window ends$/);
    const until = Date.parse(/until (\S+) /.exec(error.message)![1]);
    expect(until).toBeGreaterThanOrEqual(before + 3_600_000 - 1000);
    expect(until).toBeLessThanOrEqual(Date.now() + 3_600_000 + 1000);
    expect(openai.metadata['io.envoy.ai_gateway']).toMatchObject({ llm_total_token: 0, usd_micro: 0 });

    const anthropic = await processor.client.exchange(messages('gpt-4o', { [CLIENT_ID_HEADER]: 'alice-key-2' }), () =>
      budgetReply('500000000, 500000000;w=2592000'),
    );
    expect(anthropic.status).toBe(429);
    expect(JSON.parse(anthropic.body.toString())).toEqual({
      type: 'error',
      error: { type: 'rate_limit_error', message: error.message },
    });

    const daily = await processor.client.exchange(chat('open-x'), () => budgetReply('100000, 100000;w=86400'));
    expect(JSON.parse(daily.body.toString()).error.message).toMatch(/^budget "gateway\/daily-tokens" is used up/);

    const text = await processor.app.metrics.registry.metrics();
    expect(
      metricValue(text, 'ai_gateway_budget_rejections_total', { budget: 'alice/monthly', consumer: 'alice' }),
    ).toBe(2);
    expect(
      metricValue(text, 'ai_gateway_budget_rejections_total', { budget: 'gateway/daily-tokens', consumer: '(none)' }),
    ).toBe(1);
    // A budget that refuses is used up (it was 80% used before).
    expect(metricValue(text, 'ai_gateway_budget_used_ratio', { budget: 'alice/monthly', consumer: 'alice' })).toBe(1);
    // One line per consumer, budget and window, not one per rejection.
    const exhausted = warnings.filter((w) => w.message.startsWith('budget used up'));
    expect(exhausted.map((w) => [w.fields.consumer, w.fields.budget])).toEqual([
      ['alice', 'alice/monthly'],
      [undefined, 'gateway/daily-tokens'],
    ]);
  });

  it('recognizes the rejection by its code details alone, or by x-envoy-ratelimited without them', async () => {
    // Envoy Gateway drops x-envoy-ratelimited unless the ClientTrafficPolicy enables Envoy headers.
    const byDetails = await processor.client.exchange(chat('open-x'), () => ({
      status: 429,
      headers: { 'x-ratelimit-limit': '100000, 100000;w=86400' },
      codeDetails: 'request_rate_limited',
    }));
    expect(JSON.parse(byDetails.body.toString()).error.message).toMatch(/^budget "gateway\/daily-tokens" is used up/);
    const byHeader = await processor.client.exchange(chat('open-x'), () => ({
      status: 429,
      headers: { 'x-envoy-ratelimited': 'true' },
    }));
    expect(JSON.parse(byHeader.body.toString()).error).toMatchObject({ code: 'budget_exceeded' });
    // A local rate limit (another filter) is left alone.
    const local = await processor.client.exchange(chat('open-x'), () => ({
      status: 429,
      headers: { 'content-type': 'text/plain' },
      body: 'local_rate_limited',
      codeDetails: 'local_rate_limited',
    }));
    expect(local.body.toString()).toBe('local_rate_limited');
  });

  it("passes a provider's own 429 through unchanged", async () => {
    const body = JSON.stringify({ error: { message: 'slow down', type: 'requests', param: null, code: null } });
    const result = await processor.client.exchange(chat('open-x'), () => ({
      status: 429,
      headers: { 'content-type': 'application/json', 'retry-after': '2' },
      body,
      codeDetails: 'via_upstream',
    }));
    expect(result.status).toBe(429);
    expect(result.body.toString()).toBe(body);
    expect(result.headers['retry-after']).toBe('2');
  });

  it('swaps consumers on reload', async () => {
    const next = governedConfig();
    next.consumers!.entries = next.consumers!.entries.filter((c) => c.id !== 'alice');
    processor.writeConfig(next);
    const deadline = Date.now() + 5000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await processor.client.exchange(chat('gpt-4o', { [CLIENT_ID_HEADER]: 'alice-key' }), completion))
        .status;
      if (status === 403) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(status).toBe(403);
  });
});

describe('without consumers', () => {
  let processor: TestProcessor;
  beforeAll(async () => {
    processor = await startTestProcessor(testConfig());
  });
  afterAll(() => processor.close());

  it('still removes consumer and client-id headers a client sent, and writes no limit metadata', async () => {
    const result = await processor.client.exchange(
      chat('gpt-4o', { [CONSUMER_HEADER]: 'alice', [CLIENT_ID_HEADER]: 'alice-key' }),
      completion,
    );
    expect(result.status).toBe(200);
    expect(result.upstreamRequest!.headers[CONSUMER_HEADER]).toBeUndefined();
    expect(result.upstreamRequest!.headers[CLIENT_ID_HEADER]).toBeUndefined();
    const routing = result.responses.find((r) => r.kind === 'requestBody')!;
    expect(routing.message.dynamicMetadata).toBeFalsy();
  });
});
