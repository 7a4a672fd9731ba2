/**
 * The Responses API through the local data plane (Envoy Gateway's route matching, ext_proc with the real processor)
 * with the official `openai` SDK, on every backend that does not speak it: the Anthropic API, Bedrock Converse and
 * InvokeModel, Vertex Gemini and Vertex Anthropic, and OpenAI-compatible servers that speak only Chat Completions.
 * Each provider receives exactly the body the equivalent chat completion produces (the translation composes with the
 * chat translators), the SDK reads the fake's text and usage, streamed and not, and the tokens count against a token
 * budget like a chat completion's.
 */
import OpenAI from 'openai';
import { randomBytes } from 'node:crypto';
import { answerText, DEFAULT_USAGE } from './support/fake-providers';
import { describeScenario, HELLO, leakedClientCredentials, openAIClient } from './support/clients';
import { clusterMode, startScenario, type RunningScenario } from './support/harness';
import type { RecordedRequest } from './support/recording-server';
import { redisUrlForTests } from '../support/redis';
import { budgetScenario, PREFIX_VARIANTS, PROVIDER_CASES, providersScenario } from './support/scenarios';

jest.setTimeout(60_000);

/**
 * Backends that do not speak the Responses API: the gateway translates it (for OpenAI-compatible and self-hosted
 * servers, which speak only Chat Completions unless `servesResponsesApi` says otherwise, into Chat Completions).
 */
const TRANSLATED = new Set([
  'anthropic',
  'awsBedrock',
  'awsAnthropic',
  'gcpVertexAI',
  'gcpAnthropic',
  'openAICompatible (/openai/v1)',
  'kubernetesService (/api/v1)',
]);

const EXPECTED_USAGE = {
  input_tokens: DEFAULT_USAGE.input,
  input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
  output_tokens: DEFAULT_USAGE.output,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: DEFAULT_USAGE.input + DEFAULT_USAGE.output,
};

async function lastRequest(run: RunningScenario, fake: keyof RunningScenario['fakes']): Promise<RecordedRequest> {
  const records = await run.fakes[fake].records();
  expect(records.length).toBeGreaterThan(0);
  const last = records[records.length - 1];
  expect({ rejected: last.rejected }).toEqual({ rejected: undefined });
  // A backend without credentials receives the client's own key (as chat completions do); every other must not.
  if (fake === 'vllm') expect(last.headers.authorization).toMatch(/^Bearer /);
  else expect(leakedClientCredentials(last)).toEqual([]);
  return last;
}

const variant = PREFIX_VARIANTS[0];

describeScenario(`providers ${variant.name}`, () => {
  let run: RunningScenario;
  let openai: OpenAI;

  beforeAll(async () => {
    run = await startScenario(providersScenario(variant));
    openai = openAIClient(`${run.gatewayUrl}${variant.pathPrefix}`);
  });
  afterAll(() => run?.close());
  beforeEach(async () => {
    await Promise.all(Object.values(run.fakes).map((fake) => fake.clear()));
  });

  describe.each(PROVIDER_CASES.filter((c) => TRANSLATED.has(c.factory)).map((c) => [c.factory, c] as const))(
    '%s',
    (_factory, testCase) => {
      const expectedText = answerText(testCase.fake, testCase.upstreamModel);

      it('responses.create reaches the provider as the equivalent chat completion does', async () => {
        await openai.chat.completions.create({
          model: testCase.model,
          messages: [{ role: 'system', content: 'Be brief.' }, ...HELLO],
          max_completion_tokens: 64,
        });
        const chat = await lastRequest(run, testCase.fake);
        const response = await openai.responses.create({
          model: testCase.model,
          instructions: 'Be brief.',
          input: HELLO,
          max_output_tokens: 64,
        });
        const upstream = await lastRequest(run, testCase.fake);
        expect(upstream.path).toBe(testCase.upstreamPath);
        expect(JSON.parse(upstream.body)).toEqual(JSON.parse(chat.body));
        expect(response.object).toBe('response');
        expect(response.status).toBe('completed');
        expect(response.model).toBe(testCase.model);
        expect(response.output_text).toBe(expectedText);
        expect(response.usage).toEqual(EXPECTED_USAGE);
      });

      it('responses.stream: the Responses events, usage in response.completed', async () => {
        await openai.chat.completions.create({
          model: testCase.model,
          messages: HELLO,
          max_completion_tokens: 64,
          stream: true,
          stream_options: { include_usage: true },
        });
        const chat = await lastRequest(run, testCase.fake);
        const stream = openai.responses.stream({ model: testCase.model, input: 'Say hello', max_output_tokens: 64 });
        const deltas: string[] = [];
        const types: string[] = [];
        stream.on('event', (event) => types.push(event.type));
        stream.on('response.output_text.delta', (event) => deltas.push(event.delta));
        const response = await stream.finalResponse();
        const upstream = await lastRequest(run, testCase.fake);
        expect(upstream.path).toBe(testCase.upstreamStreamPath);
        expect(JSON.parse(upstream.body)).toEqual(JSON.parse(chat.body));
        expect(deltas.join('')).toBe(expectedText);
        expect(types.slice(0, 2)).toEqual(['response.created', 'response.in_progress']);
        expect(types.at(-1)).toBe('response.completed');
        expect(response.output_text).toBe(expectedText);
        expect(response.usage).toEqual(EXPECTED_USAGE);
      });

      it('stateful requests are refused naming the parameter; no provider is called', async () => {
        const error = await openai.responses
          .create({ model: testCase.model, input: 'Say hello', store: true })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(OpenAI.UnprocessableEntityError);
        expect((error as InstanceType<typeof OpenAI.APIError>).param).toBe('store');
        expect(await run.fakes[testCase.fake].records()).toEqual([]);
      });
    },
  );
});

const redisUrl = clusterMode() ? undefined : redisUrlForTests();

describeScenario('responses budgets', () => {
  it('Responses tokens count against a route budget as chat tokens do (Bedrock Converse)', async () => {
    const namespace = `responses-${randomBytes(4).toString('hex')}`;
    const limit = 50;
    const cost = DEFAULT_USAGE.input + DEFAULT_USAGE.output;
    const run = await startScenario(budgetScenario(namespace, { routeTokens: limit }), { redisUrl });
    try {
      const openai = openAIClient(`${run.gatewayUrl}/v1`);
      let admitted = 0;
      for (let i = 0; i < 10; i++) {
        const request = { model: 'model-b', input: 'Say hello', max_output_tokens: 16 };
        const outcome = await (
          i % 2 === 0 ? openai.responses.create(request) : openai.responses.stream(request).finalResponse()
        ).catch((e: unknown) => e);
        if (outcome instanceof OpenAI.RateLimitError) break;
        expect(outcome).toMatchObject({ status: 'completed', usage: EXPECTED_USAGE });
        admitted++;
      }
      // Tokens are charged at the end of each answer: the request admitted just below the limit may overshoot it.
      expect(admitted * cost).toBeGreaterThanOrEqual(limit);
      expect(admitted * cost).toBeLessThanOrEqual(limit + cost);
    } finally {
      await run.close();
    }
  });
});
