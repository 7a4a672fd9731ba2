/**
 * Issue 14 end to end: consumers with API keys (SecurityPolicy apiKeyAuth in the local data plane), money budgets
 * per consumer from one rate-limit rule (`limit.fromMetadata` written by the processor), a per-key budget stacked on
 * them, consumer models, spoofed identity headers, shadow mode and the processor's spend metrics, with the official
 * OpenAI and Anthropic SDKs and the counters in Redis (REDIS_URL; without it the data plane counts in memory and the
 * Redis checks are skipped).
 *
 * Every request costs what the fakes report (DEFAULT_USAGE: 12 input + 8 output tokens) at GOVERNANCE_PRICES:
 * $0.0044 (4400 micro-dollars) on gpt-4o-mini. Money is charged at stream end and checked before the request, so a
 * budget of L micro-dollars admits exactly floor(L / cost) + 1 sequential requests (the last one overshoots).
 */
import { randomBytes } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { DEFAULT_USAGE } from './support/fake-providers';
import { HELLO } from './support/clients';
import { clusterMode, startScenario, type RunningScenario } from './support/harness';
import { countersContaining } from './support/redis';
import {
  CONSUMER_KEYS,
  GOVERNANCE_BUDGETS_USD,
  GOVERNANCE_PRICES,
  governanceScenario,
  PER_KEY_TOKENS,
  SHADOW_BUDGET_USD,
  shadowBudgetScenario,
  type ConsumerName,
} from './support/scenarios';
import { redisUrlForTests } from '../support/redis';
import { Money } from '../../lib';
import { moneyUnitFor } from '../../lib/money';

jest.setTimeout(60_000);

const redisUrl = clusterMode() ? undefined : redisUrlForTests();
if (!redisUrl && !clusterMode()) {
  console.log('test/e2e/governance: REDIS_URL is not set; budgets count in memory and the Redis checks are skipped');
}

/** Micro-dollars of one request of DEFAULT_USAGE on `model` (prices in USD per million tokens). */
function microUsdPerRequest(model: keyof typeof GOVERNANCE_PRICES): number {
  const price = GOVERNANCE_PRICES[model];
  return DEFAULT_USAGE.input * price.input + DEFAULT_USAGE.output * price.output;
}

const MINI_COST = microUsdPerRequest('gpt-4o-mini');
const HAIKU_COST = microUsdPerRequest('claude-3-5-haiku-20241022');
const TOKENS = DEFAULT_USAGE.input + DEFAULT_USAGE.output;

/** Requests a budget of `limit` admits when each costs `cost` (checked before, charged after each request). */
const admittedBy = (limit: number, cost: number) => Math.floor(limit / cost) + 1;

function keyOf(consumer: ConsumerName, clientId: string): string {
  return (CONSUMER_KEYS[consumer] as Record<string, string>)[clientId];
}

function openai(run: RunningScenario, apiKey: string, prefix = '/v1', headers: Record<string, string> = {}): OpenAI {
  return new OpenAI({
    baseURL: `${run.gatewayUrl}${prefix}`,
    apiKey,
    maxRetries: 0,
    timeout: 20_000,
    defaultHeaders: headers,
  });
}

function anthropic(run: RunningScenario, apiKey: string): Anthropic {
  return new Anthropic({ baseURL: `${run.gatewayUrl}/anthropic`, apiKey, maxRetries: 0, timeout: 20_000 });
}

function chat(client: OpenAI, model = 'gpt-4o-mini') {
  return client.chat.completions.create({ model, messages: HELLO, max_tokens: 16 });
}

/** A streamed chat request read to its end; returns the usage of the last chunk. */
async function streamedChat(client: OpenAI, model = 'gpt-4o-mini') {
  const stream = await client.chat.completions.create({
    model,
    messages: HELLO,
    max_tokens: 16,
    stream: true,
    stream_options: { include_usage: true },
  });
  let usage: OpenAI.CompletionUsage | null | undefined;
  for await (const chunk of stream) usage = chunk.usage ?? usage;
  return usage;
}

function message(client: Anthropic, model = 'claude-haiku') {
  return client.messages.create({ model, max_tokens: 16, messages: HELLO });
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected an error, got ${JSON.stringify(value).slice(0, 200)}`);
    },
    (error: unknown) => error,
  );
}

/**
 * Requests the data plane completed (its access log): an entry is written once the stream is done, after the
 * rate-limit filter charged the response's cost, which Envoy does at stream end, after the client has its answer.
 */
let completedStreams = 0;
const countCompletions = {
  dataPlane: {
    accessLog: () => {
      completedStreams++;
    },
  },
};

/** Sends one request and waits until the data plane charged it, so the next request is checked against it. */
async function charged<T>(send: () => Promise<T>): Promise<T> {
  const before = completedStreams;
  try {
    return await send();
  } finally {
    await settled(() => completedStreams, before + 1);
  }
}

/** Calls `send` (each charged before the next) until it fails; returns how many calls succeeded and the error. */
async function untilRefused(
  send: (i: number) => Promise<unknown>,
  max = 20,
): Promise<{ admitted: number; error: unknown }> {
  for (let i = 0; i < max; i++) {
    const error = await charged(() => send(i)).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (error !== undefined) return { admitted: i, error };
  }
  throw new Error(`still admitted after ${max} requests`);
}

const THIRTY_DAYS_S = 2_592_000;

/**
 * Sum of the Redis counters (money units or tokens) whose key holds `_<value>_` and whose window (the key's last
 * field, its start) is a multiple of `windowSeconds`: the budgets a value is counted in here differ in their windows.
 */
async function counted(
  run: RunningScenario,
  namespace: string,
  value: string,
  windowSeconds = THIRTY_DAYS_S,
): Promise<number> {
  const counters = await countersContaining(run.redisUrl!, namespace);
  return counters
    .filter((c) => c.key.includes(`_${value}_`) && Number(c.key.split('_').pop()) % windowSeconds === 0)
    .reduce((sum, c) => sum + c.value, 0);
}

/** Units per micro-dollar of the rule that counts `consumer`'s own money budget (the unit follows its own limit). */
function unitsPerMicroUsd(consumer: keyof typeof GOVERNANCE_BUDGETS_USD): number {
  return 1_000_000 / moneyUnitFor(Money.usd(GOVERNANCE_BUDGETS_USD[consumer])._picoUsd)!.picoUsdPerUnit;
}

/**
 * Reads until `read()` gives `expected`, for at most 5 s, and returns the last value read: Envoy charges a response's
 * cost at stream end, which may land just after the client has read the answer.
 */
async function settled<T>(read: () => Promise<T> | T, expected: T): Promise<T> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const value = await read();
    if (value === expected || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** What the processor's metrics say `consumer` spent, in micro-dollars. */
async function spentMicroUsd(run: RunningScenario, consumer: ConsumerName): Promise<number> {
  return Math.round(sample(await metrics(run), 'ai_gateway_consumer_spend_usd_total', { consumer }) * 1e6);
}

async function metrics(run: RunningScenario): Promise<string> {
  const processors = run.processors!.processors;
  const texts = await Promise.all(
    processors.map(async (p) => (await fetch(`http://${p.adminAddress}/metrics`)).text()),
  );
  return texts.join('\n');
}

/** The value of the sample of `name` whose labels include every `labels` pair (0 when there is none). */
function sample(text: string, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf('}');
    const labelText = line.slice(name.length + 1, close);
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) {
      total += Number(line.slice(close + 1).trim());
    }
  }
  return total;
}

async function allRecords(run: RunningScenario) {
  return [...(await run.fakes.openai.records()), ...(await run.fakes.anthropic.records())];
}

const uniqueNamespace = (stem: string) => `${stem}-${randomBytes(4).toString('hex')}`;

// Local only: a cluster run deploys neither these Secrets nor budgets small enough to exhaust.
const describeLocal = clusterMode() ? describe.skip : describe;

describeLocal('governance: consumers, keys and money budgets', () => {
  const namespace = uniqueNamespace('e2e-gov');
  const processorLog: string[] = [];
  let run: RunningScenario;

  beforeAll(async () => {
    run = await startScenario(governanceScenario(namespace), {
      redisUrl,
      ...countCompletions,
      processorLog: (line) => {
        if (processorLog.length < 10_000) processorLog.push(line);
      },
    });
  });
  afterAll(() => run?.close());
  beforeEach(async () => {
    await Promise.all(Object.values(run.fakes).map((fake) => fake.clear()));
  });

  it('an OpenAI client (Authorization: Bearer) and an Anthropic client (x-api-key) both authenticate', async () => {
    const spendBy = async (model: string) =>
      sample(await metrics(run), 'ai_gateway_consumer_spend_usd_total', {
        consumer: 'team-a',
        gen_ai_request_model: model,
      });
    const before = { mini: await spendBy('gpt-4o-mini'), haiku: await spendBy('claude-3-5-haiku-20241022') };
    const { data: completion, response } = await openai(run, keyOf('team-a', 'team-a-openai'))
      .chat.completions.create({ model: 'gpt-4o-mini', messages: HELLO, max_tokens: 16 })
      .withResponse();
    expect(completion.usage).toMatchObject({ prompt_tokens: DEFAULT_USAGE.input });
    // Answers carry the consumer's budget as draft-03 headers: its own limit (micro-dollars) and the 30-day window.
    const teamALimit = GOVERNANCE_BUDGETS_USD['team-a'] * 1e6;
    expect(response.headers.get('x-ratelimit-limit')).toBe(`${teamALimit}, ${teamALimit};w=2592000`);
    expect(Number(response.headers.get('x-ratelimit-remaining'))).toBeLessThanOrEqual(teamALimit);
    const reply = await message(anthropic(run, keyOf('team-a', 'team-a-anthropic')));
    expect(reply.usage).toMatchObject({ input_tokens: DEFAULT_USAGE.input, output_tokens: DEFAULT_USAGE.output });
    const [toOpenAI] = await run.fakes.openai.records();
    const [toAnthropic] = await run.fakes.anthropic.records();
    for (const [request, clientId] of [
      [toOpenAI, 'team-a-openai'],
      [toAnthropic, 'team-a-anthropic'],
    ] as const) {
      expect(request.rejected).toBeUndefined();
      expect(request.headers['x-ai-gateway-consumer']).toBe('team-a');
      // apiKeyAuth's client id stays on the request (per-key budgets read it again at stream end)...
      expect(request.headers['x-ai-gateway-client-id']).toBe(clientId);
      // ... and the key itself never reaches the provider (sanitize).
      const keys = Object.values(CONSUMER_KEYS).flatMap((k) => Object.values(k) as string[]);
      expect(Object.entries(request.headers).filter(([, v]) => keys.some((key) => v.includes(key)))).toEqual([]);
    }
    // Spend per consumer and model: the Anthropic answer priced as the model sent upstream.
    expect((await spendBy('gpt-4o-mini')) - before.mini).toBeCloseTo(MINI_COST / 1e6, 9);
    expect((await spendBy('claude-3-5-haiku-20241022')) - before.haiku).toBeCloseTo(HAIKU_COST / 1e6, 9);
  });

  it('a missing or wrong key gets 401 from both SDKs, in their schemas, and nothing reaches a provider', async () => {
    // Envoy's api_key_auth answers before the processor; the route's responseOverride reshapes its plain-text 401.
    const expected = {
      type: 'error',
      error: {
        type: 'authentication_error',
        message: 'missing or invalid API key',
        param: null,
        code: 'invalid_api_key',
      },
    };
    for (const apiKey of ['sk-not-a-key', `${keyOf('team-a', 'team-a-openai')}x`]) {
      const openaiError = await failure(chat(openai(run, apiKey)));
      expect(openaiError).toBeInstanceOf(OpenAI.AuthenticationError);
      const denied = openaiError as InstanceType<typeof OpenAI.AuthenticationError>;
      expect(denied.status).toBe(401);
      expect(denied.message).toBe('401 missing or invalid API key');
      expect(denied.code).toBe('invalid_api_key');
      expect(denied.type).toBe('authentication_error');
      const anthropicError = await failure(message(anthropic(run, apiKey)));
      expect(anthropicError).toBeInstanceOf(Anthropic.AuthenticationError);
      expect((anthropicError as InstanceType<typeof Anthropic.AuthenticationError>).error).toEqual(expected);
    }
    const noKey = await fetch(`${run.gatewayUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: HELLO }),
    });
    expect(noKey.status).toBe(401);
    expect(noKey.headers.get('content-type')).toBe('application/json');
    expect(await noKey.json()).toEqual(expected);
    expect(await allRecords(run)).toEqual([]);
  });

  it('a model the consumer may not use gets 403 (PermissionDeniedError) naming the model', async () => {
    const error = await failure(chat(openai(run, keyOf('team-a', 'team-a-openai')), 'gpt-4o'));
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError);
    const denied = error as InstanceType<typeof OpenAI.PermissionDeniedError>;
    expect(denied.status).toBe(403);
    expect(denied.code).toBe('model_not_allowed');
    expect(denied.message).toContain('gpt-4o');
    const anthropicError = await failure(message(anthropic(run, keyOf('team-a', 'team-a-anthropic')), 'gpt-4o'));
    expect(anthropicError).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect((anthropicError as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({
      type: 'error',
      error: { type: 'permission_error', message: expect.stringContaining('gpt-4o') },
    });
    expect(await allRecords(run)).toEqual([]);
    // A consumer without a model list may use it.
    await chat(openai(run, keyOf('team-d', 'team-d-app')), 'gpt-4o');
    expect(await run.fakes.openai.records()).toHaveLength(1);
  });

  it('spoofed consumer and client-id headers are replaced: the request is charged to the key owner', async () => {
    const spentBefore = (await spentMicroUsd(run, 'team-a')) * unitsPerMicroUsd('team-a');
    if (redisUrl) expect(await settled(() => counted(run, namespace, 'team-a'), spentBefore)).toBe(spentBefore);
    const spoofed = { 'x-ai-gateway-consumer': 'other-team', 'x-ai-gateway-client-id': 'team-b-openai' };
    await chat(openai(run, keyOf('team-a', 'team-a-openai'), '/v1', spoofed));
    const [request] = await run.fakes.openai.records();
    expect(request.headers['x-ai-gateway-consumer']).toBe('team-a');
    expect(request.headers['x-ai-gateway-client-id']).toBe('team-a-openai');
    if (redisUrl) {
      const expected = spentBefore + MINI_COST * unitsPerMicroUsd('team-a');
      expect(await settled(() => counted(run, namespace, 'team-a'), expected)).toBe(expected);
      expect(await counted(run, namespace, 'other-team')).toBe(0);
    }
    // Without a key the spoofed headers authenticate nobody.
    const anonymous = await fetch(`${run.gatewayUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...spoofed },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: HELLO }),
    });
    expect(anonymous.status).toBe(401);
    expect(await run.fakes.openai.records()).toHaveLength(1);
  });

  it(
    'two consumers with different 30-day money budgets: the small one runs out with a 429 in its SDK shape, ' +
      'the other keeps working',
    async () => {
      const smallLimit = Math.round(GOVERNANCE_BUDGETS_USD['team-b'] * 1e6);
      const teamB = openai(run, keyOf('team-b', 'team-b-openai'));
      // Every other request streamed: a stream is charged at its end like a buffered answer.
      const { admitted, error } = await untilRefused(async (i) =>
        expect(await (i % 2 === 1 ? streamedChat(teamB) : chat(teamB).then((c) => c.usage))).toMatchObject({
          total_tokens: TOKENS,
        }),
      );
      expect(admitted).toBe(admittedBy(smallLimit, MINI_COST));
      expect(error).toBeInstanceOf(OpenAI.RateLimitError);
      const limited = error as InstanceType<typeof OpenAI.RateLimitError>;
      expect(limited.code).toBe('budget_exceeded');
      expect(limited.message).toContain('team-b monthly');
      // The window end: the 30-day window counted from the Unix epoch (x-ratelimit-reset counts whole seconds from
      // the second the rate-limit service answered in; should the processor see the 429 in the next second, the end
      // it names is one second late).
      const windowEnd = (Math.floor(Date.now() / 2_592_000_000) + 1) * 2_592_000_000;
      const named = /until (\S+) \(UTC\), when its window ends/.exec(limited.message);
      expect(named).not.toBeNull();
      expect([windowEnd, windowEnd + 1000]).toContain(Date.parse(named![1]));
      expect(limited.headers?.get('x-ratelimit-remaining')).toBe('0');
      // The consumer's other key, through the Anthropic SDK: the same budget, in Anthropic's error shape.
      const anthropicError = await failure(message(anthropic(run, keyOf('team-b', 'team-b-anthropic'))));
      expect(anthropicError).toBeInstanceOf(Anthropic.RateLimitError);
      expect((anthropicError as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({
        type: 'error',
        error: { type: 'rate_limit_error', message: expect.stringContaining('team-b monthly') },
      });
      const openAIRequests = (await run.fakes.openai.records()).length;
      expect(openAIRequests).toBe(admitted);
      expect(await run.fakes.anthropic.records()).toEqual([]);
      // team-a (a $500 budget in the same rule) keeps working on both APIs.
      await chat(openai(run, keyOf('team-a', 'team-a-openai')));
      await message(anthropic(run, keyOf('team-a', 'team-a-anthropic')));
      expect(await run.fakes.openai.records()).toHaveLength(openAIRequests + 1);
      if (redisUrl) {
        // One counter per consumer in the unit of its own limit (tens of pico-dollars for $0.01, micro-dollars for
        // $500), charged the priced upstream model.
        const teamB = admitted * MINI_COST * unitsPerMicroUsd('team-b');
        expect(unitsPerMicroUsd('team-b')).toBe(100_000);
        expect(await settled(() => counted(run, namespace, 'team-b'), teamB)).toBe(teamB);
        // team-a's spend so far, gpt-4o-mini and claude-haiku (priced as claude-3-5-haiku-20241022) answers.
        const teamA = await spentMicroUsd(run, 'team-a');
        expect(unitsPerMicroUsd('team-a')).toBe(1);
        expect(await settled(() => counted(run, namespace, 'team-a'), teamA)).toBe(teamA);
        expect(teamA).toBeGreaterThanOrEqual(2 * MINI_COST + 2 * HAIKU_COST);
      }
      const text = await metrics(run);
      expect(sample(text, 'ai_gateway_budget_rejections_total', { budget: 'team-b monthly', consumer: 'team-b' })).toBe(
        2,
      );
      expect(sample(text, 'ai_gateway_consumer_spend_usd_total', { consumer: 'team-b' })).toBeCloseTo(
        (admitted * MINI_COST) / 1e6,
        9,
      );
      expect(sample(text, 'ai_gateway_consumer_spend_usd_total', { consumer: 'team-a' })).toBeGreaterThan(0);
      expect(sample(text, 'ai_gateway_consumer_tokens_total', { consumer: 'team-b' })).toBe(admitted * TOKENS);
      // One log line for the consumer running out (not one per rejection).
      const exhaustion = processorLog.filter((line) => line.includes('budget used up') && line.includes('team-b'));
      expect(exhaustion).toHaveLength(1);
      expect(exhaustion[0]).toContain('"budget":"team-b monthly"');
    },
  );

  it('a consumer budget and a per-key budget stack: whichever runs out first refuses', async () => {
    const consumerLimit = Math.round(GOVERNANCE_BUDGETS_USD['team-c'] * 1e6);
    // What team-c spent before (in other tests), as the processor counted it and Redis holds it.
    const spent = await spentMicroUsd(run, 'team-c');
    if (redisUrl) {
      const units = spent * unitsPerMicroUsd('team-c');
      expect(await settled(() => counted(run, namespace, 'team-c'), units)).toBe(units);
    }
    const ci = openai(run, keyOf('team-c', 'team-c-ci'), '/keyed/v1');
    const laptop = openai(run, keyOf('team-c', 'team-c-laptop'), '/keyed/v1');
    // The ci key's own token budget runs out first ...
    const first = await untilRefused(() => chat(ci));
    expect(first.admitted).toBe(admittedBy(PER_KEY_TOKENS, TOKENS));
    expect(first.error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((first.error as Error).message).toContain('PerKey');
    // ... the laptop key has its own, but shares the consumer's money budget, which runs out next.
    const moneyLeft = consumerLimit - spent - first.admitted * MINI_COST;
    expect(moneyLeft).toBeGreaterThan(0);
    const moneyLeftAdmits = admittedBy(moneyLeft, MINI_COST);
    expect(moneyLeftAdmits).toBeGreaterThan(0);
    expect(moneyLeftAdmits).toBeLessThan(admittedBy(PER_KEY_TOKENS, TOKENS));
    const second = await untilRefused(() => chat(laptop));
    expect(second.admitted).toBe(moneyLeftAdmits);
    expect(second.error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((second.error as Error).message).toContain('team-c monthly');
    if (redisUrl) {
      const expectations: [string, number, number][] = [
        ['team-c-ci', first.admitted * TOKENS, 3_600],
        ['team-c-laptop', second.admitted * TOKENS, 3_600],
        [
          'team-c',
          (spent + (first.admitted + second.admitted) * MINI_COST) * unitsPerMicroUsd('team-c'),
          THIRTY_DAYS_S,
        ],
      ];
      for (const [value, expected, window] of expectations) {
        expect({ value, counted: await settled(() => counted(run, namespace, value, window), expected) }).toEqual({
          value,
          counted: expected,
        });
      }
    }
    const text = await metrics(run);
    expect(sample(text, 'ai_gateway_budget_rejections_total', { budget: 'team-c monthly', consumer: 'team-c' })).toBe(
      1,
    );
  });
});

describeLocal('governance: shadow mode', () => {
  it('a shadow-mode budget blocks nothing but counts what it would have rejected', async () => {
    const namespace = uniqueNamespace('e2e-shadow');
    const run = await startScenario(shadowBudgetScenario(namespace), { redisUrl, ...countCompletions });
    try {
      const client = openai(run, keyOf('team-a', 'team-a-openai'));
      const requests = admittedBy(Math.round(SHADOW_BUDGET_USD * 1e6), MINI_COST) + 2;
      for (let i = 0; i < requests; i++) await charged(() => chat(client));
      expect(await run.fakes.openai.records()).toHaveLength(requests);
      // The rule's statistics (envoyproxy/ratelimit's, in hits: units of 10 pico-dollars, since $0.005 does not fit
      // uint32 in pico-dollars). Each request is checked before (cost 0) and charged at stream end; what was charged
      // past the limit counts as over the limit and as shadow-mode hits, and rejected nothing.
      const unitsPerRequest = MINI_COST * 1e5;
      const stats = () => [...run.dataPlane!.rateLimitStats().entries()].filter(([key]) => key.includes(namespace));
      expect(await settled(() => stats()[0]?.[1].totalHits, requests * unitsPerRequest)).toBe(
        requests * unitsPerRequest,
      );
      expect(stats()).toHaveLength(1);
      const [, watch] = stats()[0];
      const pastLimit = requests - admittedBy(Math.round(SHADOW_BUDGET_USD * 1e6), MINI_COST);
      expect(watch.overLimit).toBeGreaterThanOrEqual(pastLimit * unitsPerRequest);
      expect(watch.shadowMode).toBe(watch.overLimit);
      if (redisUrl) {
        expect(await settled(() => counted(run, namespace, 'team-a', 86_400), requests * unitsPerRequest)).toBe(
          requests * unitsPerRequest,
        );
      }
      const text = await metrics(run);
      expect(sample(text, 'ai_gateway_budget_rejections_total', {})).toBe(0);
      expect(sample(text, 'ai_gateway_consumer_spend_usd_total', { consumer: 'team-a' })).toBeCloseTo(
        (requests * MINI_COST) / 1e6,
        9,
      );
    } finally {
      await run.close();
    }
  });
});
