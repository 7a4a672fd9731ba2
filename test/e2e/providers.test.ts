/**
 * Every ProviderBackend factory through the local data plane (Envoy Gateway's route matching, ext_proc with the
 * real processor, re-matching after the processor rewrote the path), with the official SDKs, for the default
 * `/v1` prefix and a custom one, on the OpenAI endpoint and the Anthropic endpoint, streaming and not. Each fake
 * provider checks its own auth; the test checks the provider's path, Host, body, that no client credential
 * reached it, and the translated answer the SDK returns.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { answerText, DEFAULT_USAGE } from './support/fake-providers';
import {
  anthropicClient,
  CLIENT_KEY,
  describeScenario,
  HELLO,
  leakedClientCredentials,
  openAIClient,
} from './support/clients';
import { startScenario, type RunningScenario } from './support/harness';
import type { RecordedRequest } from './support/recording-server';
import { PREFIX_VARIANTS, PROVIDER_CASES, providersScenario, type ProviderCase } from './support/scenarios';

jest.setTimeout(60_000);

/** Internal headers the gateway forwards on purpose (budgets read them from the request at stream end). */
const FORWARDED_INTERNAL_HEADERS = new Set(['x-ai-eg-model', 'x-ai-gateway-route']);

/** Backends the Anthropic Messages endpoint cannot serve (the processor has no translator for them). */
const NOT_ON_ANTHROPIC_ENDPOINT = new Set(['gcpVertexAI']);

async function lastRequestTo(run: RunningScenario, testCase: ProviderCase): Promise<RecordedRequest> {
  const records = await run.fakes[testCase.fake].records();
  expect(records.length).toBeGreaterThan(0);
  return records[records.length - 1];
}

function checkUpstream(request: RecordedRequest, testCase: ProviderCase, stream: boolean): Record<string, unknown> {
  expect({ rejected: request.rejected }).toEqual({ rejected: undefined });
  expect(request.path).toBe(stream ? testCase.upstreamStreamPath : testCase.upstreamPath);
  if (testCase.upstreamHost !== undefined) expect(request.headers.host).toBe(testCase.upstreamHost);
  // A backend without credentials receives the client's own key (passthrough); every other provider must not.
  if (testCase.fake === 'vllm') expect(request.headers.authorization).toBe(`Bearer ${CLIENT_KEY}`);
  else expect(leakedClientCredentials(request)).toEqual([]);
  // The routing header is the gateway's own: removed on the backend rule before the provider. The model and route
  // headers travel on, because budgets read them again at stream end (see the constructs' documentation); no other
  // internal header may reach a provider.
  expect(request.headers['x-ai-gateway-backend']).toBeUndefined();
  expect(
    Object.keys(request.headers).filter((name) => name.startsWith('x-ai') && !FORWARDED_INTERNAL_HEADERS.has(name)),
  ).toEqual([]);
  const body = JSON.parse(request.body) as Record<string, unknown>;
  expect(request.body).toContain('Say hello');
  // OpenAI-schema and Anthropic API bodies name the model; Bedrock, Vertex and Azure carry it in the path.
  if (typeof body.model === 'string') expect(body.model).toBe(testCase.upstreamModel);
  else expect(decodeURIComponent(request.path)).toContain(testCase.upstreamModel);
  return body;
}

for (const variant of PREFIX_VARIANTS) {
  describeScenario(`providers ${variant.name}`, () => {
    let run: RunningScenario;
    let openai: OpenAI;
    let anthropic: Anthropic;

    beforeAll(async () => {
      run = await startScenario(providersScenario(variant));
      openai = openAIClient(`${run.gatewayUrl}${variant.pathPrefix}`);
      anthropic = anthropicClient(`${run.gatewayUrl}${variant.anthropicPathPrefix.replace(/\/v1$/, '')}`);
    });
    afterAll(() => run?.close());
    beforeEach(async () => {
      await Promise.all(Object.values(run.fakes).map((fake) => fake.clear()));
    });

    describe.each(PROVIDER_CASES.map((c) => [c.factory, c] as const))('%s', (_factory, testCase) => {
      const expectedText = answerText(testCase.fake, testCase.upstreamModel);

      it(`openai SDK, ${variant.pathPrefix}/chat/completions`, async () => {
        const completion = await openai.chat.completions.create({
          model: testCase.model,
          messages: HELLO,
          max_tokens: 64,
        });
        expect(completion.choices[0].message.content).toBe(expectedText);
        expect(completion.choices[0].finish_reason).toBe('stop');
        expect(completion.usage).toMatchObject({
          prompt_tokens: DEFAULT_USAGE.input,
          completion_tokens: DEFAULT_USAGE.output,
          total_tokens: DEFAULT_USAGE.input + DEFAULT_USAGE.output,
        });
        checkUpstream(await lastRequestTo(run, testCase), testCase, false);
      });

      it(`openai SDK, ${variant.pathPrefix}/chat/completions, streaming`, async () => {
        const stream = openai.chat.completions.stream({
          model: testCase.model,
          messages: HELLO,
          max_tokens: 64,
          stream_options: { include_usage: true },
        });
        const deltas: string[] = [];
        stream.on('content', (delta) => deltas.push(delta));
        const completion = await stream.finalChatCompletion();
        expect(completion.choices[0].message.content).toBe(expectedText);
        expect(deltas.length).toBeGreaterThan(1);
        expect(completion.usage).toMatchObject({
          prompt_tokens: DEFAULT_USAGE.input,
          completion_tokens: DEFAULT_USAGE.output,
        });
        checkUpstream(await lastRequestTo(run, testCase), testCase, true);
      });

      if (NOT_ON_ANTHROPIC_ENDPOINT.has(testCase.factory)) {
        it(
          `@anthropic-ai/sdk, ${variant.anthropicPathPrefix}/messages: refused by the gateway, never ` +
            `sent to the provider`,
          async () => {
            const error = await anthropic.messages
              .create({ model: testCase.model, max_tokens: 64, messages: HELLO })
              .catch((e: unknown) => e);
            expect(error).toBeInstanceOf(Anthropic.APIError);
            const status = (error as InstanceType<typeof Anthropic.APIError>).status;
            expect(status).toBeGreaterThanOrEqual(400);
            expect(status).toBeLessThan(500);
            expect(await run.fakes[testCase.fake].records()).toEqual([]);
          },
        );
        return;
      }

      it(`@anthropic-ai/sdk, ${variant.anthropicPathPrefix}/messages`, async () => {
        const message = await anthropic.messages.create({ model: testCase.model, max_tokens: 64, messages: HELLO });
        expect(message.content).toEqual([expect.objectContaining({ type: 'text', text: expectedText })]);
        expect(message.usage).toMatchObject({ input_tokens: DEFAULT_USAGE.input, output_tokens: DEFAULT_USAGE.output });
        checkUpstream(await lastRequestTo(run, testCase), testCase, false);
      });

      it(`@anthropic-ai/sdk, ${variant.anthropicPathPrefix}/messages, streaming`, async () => {
        const stream = anthropic.messages.stream({ model: testCase.model, max_tokens: 64, messages: HELLO });
        const texts: string[] = [];
        stream.on('text', (text) => texts.push(text));
        const message = await stream.finalMessage();
        expect(texts.join('')).toBe(expectedText);
        expect(message.content).toEqual([expect.objectContaining({ type: 'text', text: expectedText })]);
        expect(message.usage.output_tokens).toBe(DEFAULT_USAGE.output);
        checkUpstream(await lastRequestTo(run, testCase), testCase, true);
      });
    });

    it('a model no rule serves gets the route JSON 404, and no provider is called', async () => {
      const error = await openai.chat.completions
        .create({ model: 'no-such-model', messages: HELLO })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.NotFoundError);
      for (const fake of Object.values(run.fakes)) expect(await fake.records()).toEqual([]);
    });
  });
}
