/**
 * Anthropic clients' count_tokens through the local data plane with the official `@anthropic-ai/sdk`, on the backends
 * whose own token-counting API the gateway translates to: Bedrock's CountTokens (the Converse form for Converse
 * models, the InvokeModel body for Claude on InvokeModel) and Vertex AI Gemini's countTokens. The fakes answer a
 * count derived from the body they received, so the count the SDK reads shows the provider's answer came back, and
 * each upstream request is checked against the provider's documented shape (path, SigV4 or OAuth, body).
 */
import Anthropic from '@anthropic-ai/sdk';
import { countedTokens } from './support/fake-providers';
import { anthropicClient, describeScenario, leakedClientCredentials } from './support/clients';
import { startScenario, type RunningScenario } from './support/harness';
import type { RecordedRequest } from './support/recording-server';
import { PREFIX_VARIANTS, PROVIDER_CASES, providersScenario, type ProviderCase } from './support/scenarios';

jest.setTimeout(60_000);

const variant = PREFIX_VARIANTS[0];
const caseOf = (factory: string): ProviderCase => PROVIDER_CASES.find((c) => c.factory === factory)!;

const REQUEST = {
  system: 'Count carefully.',
  messages: [{ role: 'user' as const, content: 'How many tokens is this?' }],
  tools: [
    {
      name: 'get_weather',
      description: 'the weather in a city',
      input_schema: { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] },
    },
  ],
};

async function onlyRequest(run: RunningScenario, testCase: ProviderCase): Promise<RecordedRequest> {
  const records = await run.fakes[testCase.fake].records();
  expect(records).toHaveLength(1);
  const [request] = records;
  expect({ rejected: request.rejected }).toEqual({ rejected: undefined });
  expect(leakedClientCredentials(request)).toEqual([]);
  if (testCase.upstreamHost !== undefined) expect(request.headers.host).toBe(testCase.upstreamHost);
  return request;
}

describeScenario('count_tokens on Bedrock and Vertex AI', () => {
  let run: RunningScenario;
  let anthropic: Anthropic;

  beforeAll(async () => {
    run = await startScenario(providersScenario(variant));
    anthropic = anthropicClient(`${run.gatewayUrl}${variant.anthropicPathPrefix.replace(/\/v1$/, '')}`);
  });
  afterAll(() => run?.close());
  beforeEach(async () => {
    await Promise.all(Object.values(run.fakes).map((fake) => fake.clear()));
  });

  it('Bedrock Converse models: CountTokens with the Converse form', async () => {
    const testCase = caseOf('awsBedrock');
    const counted = await anthropic.messages.countTokens({ model: testCase.model, ...REQUEST });
    const upstream = await onlyRequest(run, testCase);
    expect(upstream.path).toBe(`/model/${testCase.upstreamModel}/count-tokens`);
    expect(upstream.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=/);
    expect(JSON.parse(upstream.body)).toEqual({
      input: {
        converse: {
          system: [{ text: 'Count carefully.' }],
          messages: [{ role: 'user', content: [{ text: 'How many tokens is this?' }] }],
          toolConfig: {
            tools: [
              {
                toolSpec: {
                  name: 'get_weather',
                  description: 'the weather in a city',
                  inputSchema: { json: REQUEST.tools[0].input_schema },
                },
              },
            ],
          },
        },
      },
    });
    expect(counted).toEqual({ input_tokens: countedTokens(upstream.body) });
  });

  it('Claude on Bedrock InvokeModel: CountTokens with the InvokeModel body', async () => {
    const testCase = caseOf('awsAnthropic');
    const counted = await anthropic.messages.countTokens({ model: testCase.model, ...REQUEST });
    const upstream = await onlyRequest(run, testCase);
    expect(upstream.path).toBe(`/model/${testCase.upstreamModel}/count-tokens`);
    const body = JSON.parse(upstream.body) as { input: { invokeModel: { body: string } } };
    expect(Object.keys(body.input)).toEqual(['invokeModel']);
    const invoke = JSON.parse(Buffer.from(body.input.invokeModel.body, 'base64').toString('utf8'));
    expect(invoke).toEqual({
      anthropic_version: 'bedrock-2023-05-31',
      max_tokens: 1,
      system: REQUEST.system,
      messages: REQUEST.messages,
      tools: REQUEST.tools,
    });
    expect(counted).toEqual({ input_tokens: countedTokens(upstream.body) });
  });

  it('Vertex AI Gemini: countTokens with the generateContent fields', async () => {
    const testCase = caseOf('gcpVertexAI');
    const counted = await anthropic.messages.countTokens({ model: testCase.model, ...REQUEST });
    const upstream = await onlyRequest(run, testCase);
    expect(upstream.path).toBe(testCase.upstreamPath.replace(':generateContent', ':countTokens'));
    expect(upstream.headers.authorization).toMatch(/^Bearer /);
    const body = JSON.parse(upstream.body);
    expect(body.contents).toEqual([{ role: 'user', parts: [{ text: 'How many tokens is this?' }] }]);
    expect(body.systemInstruction).toEqual({ parts: [{ text: 'Count carefully.' }] });
    expect(body.tools[0].functionDeclarations[0]).toMatchObject({ name: 'get_weather' });
    expect(body.generationConfig).toBeUndefined();
    expect(counted).toEqual({ input_tokens: countedTokens(upstream.body) });
  });
});
