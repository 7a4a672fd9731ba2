/**
 * count_tokens end to end: the official `@anthropic-ai/sdk` (`messages.countTokens`) through the processor (driven
 * like Envoy by the HTTP front) against fake providers that check the exact upstream body against the documented
 * shapes: Bedrock's CountTokens (`{input: {converse: {...}}}` on AWSBedrock, `{input: {invokeModel: {body}}}` with the
 * base64 InvokeModel body on AWSAnthropic -> `{inputTokens}`) and Vertex Gemini's countTokens
 * (`{contents, systemInstruction, tools}` -> `{totalTokens}`). The SDK gets `{input_tokens}`, provider errors in
 * Anthropic's shape, and nothing is charged.
 */
import Anthropic from '@anthropic-ai/sdk';
import { CONFIG_VERSION, type ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import type { ExchangeResult } from '../support/envoy-client';
import { startFakeProvider, type FakeProvider } from '../support/fake-provider';
import { startHttpFront, type HttpFront } from '../support/http-front';
import { startTestProcessor, type TestProcessor } from '../support/processor-harness';
import { bedrockBackend, bedrockInvokeBackend, prefixRule, vertexBackend } from '../support/test-backends';

const SCHEMA = { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] };
const REQUEST: Anthropic.MessageCountTokensParams = {
  model: '',
  system: 'You are terse.',
  messages: [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: [{ type: 'tool_use', id: 'tu_1', name: 'get_weather', input: { city: 'Paris' } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'tu_1', content: 'Sunny, 21C' }] },
  ],
  tools: [{ name: 'get_weather', description: 'Current weather', input_schema: SCHEMA }],
};

describe('count_tokens through the data plane with the official Anthropic SDK', () => {
  let provider: FakeProvider;
  let processor: TestProcessor;
  let front: HttpFront;
  let results: ExchangeResult[];
  let anthropic: Anthropic;

  beforeAll(async () => {
    provider = await startFakeProvider((request, res) => {
      if (request.path.includes('/models/gemini-refused')) {
        res
          .writeHead(400, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { code: 400, message: 'bad contents', status: 'INVALID_ARGUMENT' } }));
        return;
      }
      if (request.path.endsWith(':countTokens')) {
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ totalTokens: 31, totalBillableCharacters: 97, promptTokensDetails: [] }));
        return;
      }
      if (request.path.startsWith('/model/us.')) {
        res
          .writeHead(400, {
            'content-type': 'application/json',
            'x-amzn-errortype': 'ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/',
          })
          .end(JSON.stringify({ message: "The provided model doesn't support counting tokens." }));
        return;
      }
      if (request.path.endsWith('/count-tokens')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ inputTokens: 42 }));
        return;
      }
      res.writeHead(404).end();
    });
    const endpoint = { hostname: '127.0.0.1', port: provider.port, tls: false };
    const config: ProcessorConfig = {
      version: CONFIG_VERSION,
      maxRequestBodyBytes: 1024 * 1024,
      backends: [
        bedrockBackend(endpoint),
        bedrockInvokeBackend(endpoint, 'bedrock-invoke', 'us-east-1'),
        vertexBackend(endpoint),
      ],
      routes: [
        {
          name: 'default/all',
          endpoints: [{ api: 'Anthropic', pathPrefix: '/anthropic/v1' }],
          hostnames: [],
          rules: [
            prefixRule('anthropic.', 'bedrock'),
            prefixRule('us.', 'bedrock'),
            prefixRule('gemini-', 'vertex'),
            {
              models: [{ type: 'Exact' as const, value: 'claude-haiku-invoke' }],
              backends: [
                {
                  backend: 'bedrock-invoke',
                  weight: 1,
                  priority: 0,
                  modelNameOverride: 'anthropic.claude-haiku-4-5-20251001-v1:0',
                },
              ],
            },
          ],
          requiredHeaders: [],
        },
      ],
      costs: [{ metadataKey: 'input_budget', type: 'InputToken' }],
      circuitBreaker: { failureThreshold: 100, openDurationMs: 1000 },
    };
    processor = await startTestProcessor(config, {
      secrets: {
        aws: { credentials: '[default]\naws_access_key_id=AKIAE2E\naws_secret_access_key=e2e-secret\n' },
        gcp: { token: 'ya29.e2e' },
      },
    });
    front = await startHttpFront({ client: processor.client, config, onResult: (result) => results.push(result) });
    anthropic = new Anthropic({ baseURL: `${front.url}/anthropic`, apiKey: 'client-key', maxRetries: 0 });
  });
  beforeEach(() => {
    results = [];
  });
  afterAll(async () => {
    await front.close();
    await processor.close();
    await provider.close();
  });

  const lastRequest = () => provider.requests.at(-1)!;
  const upstreamBody = () => JSON.parse(lastRequest().body.toString()) as unknown;

  it('Bedrock: CountTokens with the Converse form, answered as input_tokens, nothing charged', async () => {
    const model = 'anthropic.claude-sonnet-4-5-20250929-v1:0';
    const counted = await anthropic.messages.countTokens({ ...REQUEST, model });
    expect(counted).toEqual({ input_tokens: 42 });
    expect(lastRequest().path).toBe(`/model/${model}/count-tokens`);
    expect(lastRequest().headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIAE2E\//);
    expect(upstreamBody()).toEqual({
      input: {
        converse: {
          system: [{ text: 'You are terse.' }],
          messages: [
            { role: 'user', content: [{ text: 'Weather in Paris?' }] },
            {
              role: 'assistant',
              content: [{ toolUse: { toolUseId: 'tu_1', name: 'get_weather', input: { city: 'Paris' } } }],
            },
            {
              role: 'user',
              content: [{ toolResult: { toolUseId: 'tu_1', content: [{ text: 'Sunny, 21C' }] } }],
            },
          ],
          toolConfig: {
            tools: [
              { toolSpec: { name: 'get_weather', description: 'Current weather', inputSchema: { json: SCHEMA } } },
            ],
          },
        },
      },
    });
    expect(results[0].metadata['io.envoy.ai_gateway']?.input_budget ?? 0).toBe(0);
  });

  it('Bedrock: thinking counts too (additionalModelRequestFields)', async () => {
    await anthropic.messages.countTokens({
      model: 'anthropic.claude-sonnet-4-5-20250929-v1:0',
      messages: [{ role: 'user', content: 'hi' }],
      thinking: { type: 'enabled', budget_tokens: 2048 },
    });
    expect(upstreamBody()).toEqual({
      input: {
        converse: {
          messages: [{ role: 'user', content: [{ text: 'hi' }] }],
          additionalModelRequestFields: { thinking: { type: 'enabled', budget_tokens: 2048 } },
        },
      },
    });
  });

  it('Bedrock InvokeModel (AWSAnthropic): CountTokens with the InvokeModel body, base64, SigV4-signed', async () => {
    const counted = await anthropic.messages.countTokens({ ...REQUEST, model: 'claude-haiku-invoke' });
    expect(counted).toEqual({ input_tokens: 42 });
    const model = 'anthropic.claude-haiku-4-5-20251001-v1:0';
    expect(lastRequest().path).toBe(`/model/${model}/count-tokens`);
    expect(lastRequest().headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIAE2E\/\d{8}\/us-east-1\/bedrock\/aws4_request, SignedHeaders=/,
    );
    const body = upstreamBody() as { input: { invokeModel: { body: string } } };
    expect(Object.keys(body)).toEqual(['input']);
    expect(Object.keys(body.input)).toEqual(['invokeModel']);
    // A blob in AWS's JSON protocol: base64 of the InvokeModel body Claude on Bedrock reads.
    expect(body.input.invokeModel.body).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(JSON.parse(Buffer.from(body.input.invokeModel.body, 'base64').toString())).toEqual({
      anthropic_version: 'bedrock-2023-05-31',
      max_tokens: 1,
      system: REQUEST.system,
      messages: REQUEST.messages,
      tools: REQUEST.tools,
    });
    expect(results[0].metadata['io.envoy.ai_gateway']?.input_budget ?? 0).toBe(0);
  });

  it("Bedrock's refusal reaches the SDK as an Anthropic error with Bedrock's status and message", async () => {
    const error = await anthropic.messages
      .countTokens({ ...REQUEST, model: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    expect((error as Error).message).toContain("doesn't support counting tokens");
  });

  it('Vertex Gemini: countTokens with contents, systemInstruction and tools, answered as input_tokens', async () => {
    const counted = await anthropic.messages.countTokens({ ...REQUEST, model: 'gemini-2.5-pro' });
    expect(counted).toEqual({ input_tokens: 31 });
    expect(lastRequest().path).toBe(
      '/v1/projects/proj/locations/europe-west4/publishers/google/models/gemini-2.5-pro:countTokens',
    );
    expect(lastRequest().headers.authorization).toBe('Bearer ya29.e2e');
    const body = upstreamBody() as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['contents', 'systemInstruction', 'tools']);
    expect(body.systemInstruction).toEqual({ parts: [{ text: 'You are terse.' }] });
    expect(body.contents).toEqual([
      { role: 'user', parts: [{ text: 'Weather in Paris?' }] },
      { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }] },
      {
        role: 'user',
        parts: [{ functionResponse: { name: 'get_weather', response: { content: 'Sunny, 21C' } } }],
      },
    ]);
    expect(body.tools).toEqual([
      { functionDeclarations: [{ name: 'get_weather', description: 'Current weather', parameters: SCHEMA }] },
    ]);
  });

  it("Vertex's error reaches the SDK in Anthropic's shape", async () => {
    const error = await anthropic.messages
      .countTokens({ ...REQUEST, model: 'gemini-refused' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    expect((error as Error).message).toContain('bad contents');
  });
});
