/**
 * Bedrock embeddings end to end: the official `openai` SDK (`embeddings.create`) through the processor (driven like
 * Envoy by the HTTP front) against a fake Bedrock that checks the exact InvokeModel body against the documented
 * shapes: Amazon Titan (`{inputText, dimensions}` -> `{embedding, inputTextTokenCount}`) and Cohere embed
 * (`{texts, input_type, output_dimension}` -> `{embeddings}`, tokens in `x-amzn-bedrock-input-token-count`). The
 * SDK gets OpenAI's embeddings shape with usage (floats and base64), the token metadata carries the input tokens,
 * and what Titan cannot do in one call is a 400 before anything reaches Bedrock.
 */
import OpenAI from 'openai';
import { CONFIG_VERSION, type ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import type { ExchangeResult } from '../support/envoy-client';
import { startFakeProvider, type FakeProvider } from '../support/fake-provider';
import { startHttpFront, type HttpFront } from '../support/http-front';
import { startTestProcessor, type TestProcessor } from '../support/processor-harness';
import { bedrockBackend } from '../support/test-backends';

/** Exactly representable in float32, so base64 round-trips compare equal. */
const TITAN_VECTOR = [0.5, -0.25, 0.125];
const cohereVector = (i: number) => [i + 0.5, -1, 0.75];

describe('Bedrock embeddings through the data plane with the official openai SDK', () => {
  let provider: FakeProvider;
  let processor: TestProcessor;
  let front: HttpFront;
  let results: ExchangeResult[];
  let openai: OpenAI;

  beforeAll(async () => {
    provider = await startFakeProvider((request, res) => {
      const body = JSON.parse(request.body.toString()) as { texts?: string[]; embedding_types?: string[] };
      if (request.path.startsWith('/model/amazon.titan-embed')) {
        res
          .writeHead(200, { 'content-type': 'application/json', 'x-amzn-bedrock-input-token-count': '5' })
          .end(JSON.stringify({ embedding: TITAN_VECTOR, inputTextTokenCount: 5 }));
        return;
      }
      if (request.path.startsWith('/model/cohere.embed')) {
        const embeddings = (body.texts ?? []).map((_, i) => cohereVector(i));
        const v4 = request.path.includes('embed-v4');
        res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-bedrock-input-token-count': '11' }).end(
          JSON.stringify({
            id: 'emb-1',
            texts: body.texts,
            response_type: v4 ? 'embeddings_by_type' : 'embeddings_floats',
            embeddings: v4 ? { float: embeddings } : embeddings,
          }),
        );
        return;
      }
      res.writeHead(404).end();
    });
    const endpoint = { hostname: '127.0.0.1', port: provider.port, tls: false };
    const config: ProcessorConfig = {
      version: CONFIG_VERSION,
      maxRequestBodyBytes: 1024 * 1024,
      backends: [bedrockBackend(endpoint)],
      routes: [
        {
          name: 'default/all',
          endpoints: [{ api: 'OpenAI', pathPrefix: '/v1' }],
          hostnames: [],
          rules: [
            {
              models: ['amazon.', 'cohere.', 'meta.'].map((value) => ({ type: 'Prefix' as const, value })),
              backends: [{ backend: 'bedrock', weight: 1, priority: 0 }],
            },
          ],
          requiredHeaders: [],
        },
      ],
      costs: [{ metadataKey: 'input_budget', type: 'InputToken' }],
      circuitBreaker: { failureThreshold: 100, openDurationMs: 1000 },
    };
    processor = await startTestProcessor(config, {
      secrets: { aws: { credentials: '[default]\naws_access_key_id=AKIAE2E\naws_secret_access_key=e2e-secret\n' } },
    });
    front = await startHttpFront({ client: processor.client, config, onResult: (result) => results.push(result) });
    openai = new OpenAI({ baseURL: `${front.url}/v1`, apiKey: 'client-key', maxRetries: 0 });
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
  const metadata = () => results[0].metadata['io.envoy.ai_gateway'];

  it('Titan V2: one text with dimensions, answered with the vector and usage, tokens in the metadata', async () => {
    const response = await openai.embeddings.create({
      model: 'amazon.titan-embed-text-v2:0',
      input: 'The quick brown fox',
      dimensions: 256,
      encoding_format: 'float',
    });
    expect(lastRequest().path).toBe('/model/amazon.titan-embed-text-v2:0/invoke');
    expect(lastRequest().headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIAE2E\//);
    expect(upstreamBody()).toEqual({ inputText: 'The quick brown fox', dimensions: 256 });
    expect(response).toEqual({
      object: 'list',
      model: 'amazon.titan-embed-text-v2:0',
      data: [{ object: 'embedding', index: 0, embedding: TITAN_VECTOR }],
      usage: { prompt_tokens: 5, total_tokens: 5 },
    });
    expect(metadata()).toMatchObject({ llm_input_token: 5, llm_total_token: 5, input_budget: 5 });
  });

  it('Titan: the SDK default (base64) is served by encoding the floats', async () => {
    // Without encoding_format the SDK asks for base64 and decodes it itself.
    const response = await openai.embeddings.create({ model: 'amazon.titan-embed-text-v2:0', input: ['one text'] });
    expect(upstreamBody()).toEqual({ inputText: 'one text' });
    expect(response.data[0].embedding).toEqual(TITAN_VECTOR);
  });

  it('Titan: more than one text is a 400 naming input and pointing at Cohere, nothing sent', async () => {
    const before = provider.requests.length;
    const error = await openai.embeddings
      .create({ model: 'amazon.titan-embed-text-v2:0', input: ['a', 'b'] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as Error).message).toContain('one text per request');
    expect((error as Error).message).toContain('Cohere');
    expect(provider.requests.length).toBe(before);
  });

  it('Cohere embed v3: a batch with the default input_type, the token count from the header', async () => {
    const response = await openai.embeddings.create({
      model: 'cohere.embed-english-v3',
      input: ['first document', 'second document'],
      encoding_format: 'float',
    });
    expect(lastRequest().path).toBe('/model/cohere.embed-english-v3/invoke');
    expect(upstreamBody()).toEqual({ texts: ['first document', 'second document'], input_type: 'search_document' });
    expect(response.data).toEqual([
      { object: 'embedding', index: 0, embedding: cohereVector(0) },
      { object: 'embedding', index: 1, embedding: cohereVector(1) },
    ]);
    expect(response.usage).toEqual({ prompt_tokens: 11, total_tokens: 11 });
    expect(metadata()).toMatchObject({ llm_input_token: 11, input_budget: 11 });
  });

  it("Cohere embed v4: the client's input_type and dimensions, embeddings by type", async () => {
    const response = await openai.embeddings.create({
      model: 'cohere.embed-v4:0',
      input: 'what is a fox?',
      dimensions: 512,
      input_type: 'search_query',
    } as OpenAI.EmbeddingCreateParams);
    expect(upstreamBody()).toEqual({ texts: ['what is a fox?'], input_type: 'search_query', output_dimension: 512 });
    expect(response.data[0].embedding).toEqual(cohereVector(0));
  });

  it.each([
    [
      '97 texts to Cohere',
      { model: 'cohere.embed-english-v3', input: Array.from({ length: 97 }, () => 'x') },
      400,
      'at most 96',
    ],
    ['dimensions on Embed v3', { model: 'cohere.embed-english-v3', input: 'x', dimensions: 256 }, 422, 'dimensions'],
    ['an image input_type', { model: 'cohere.embed-english-v3', input: 'x', input_type: 'image' }, 400, 'input_type'],
    ['token arrays', { model: 'amazon.titan-embed-text-v2:0', input: [[1, 2, 3]] }, 422, 'token arrays'],
    ['a chat model', { model: 'meta.llama3-70b-instruct-v1:0', input: 'x' }, 422, 'model'],
  ])('%s is refused before Bedrock', async (_label, params, status, text) => {
    const before = provider.requests.length;
    const error = await openai.embeddings.create({ encoding_format: 'float', ...params }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(status);
    expect((error as Error).message).toContain(text);
    expect(provider.requests.length).toBe(before);
  });
});
