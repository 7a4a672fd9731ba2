import {
  openAIChatToGemini,
  openAIChatToGeminiBackend,
  openAIEmbeddingsToVertexBackend,
  toolCallId,
} from '../../src/providers/gemini';
import { openAIToAzure } from '../../src/providers/azure';
import type { BackendConfig } from '@ai-gateway-constructs/processor-config';
import { TranslationError, type TranslationContext } from '../../src/translate/types';

const vertex: BackendConfig = {
  name: 'vertex',
  schema: { name: 'GCPVertexAI', projectId: 'p', region: 'r' },
  endpoint: { hostname: 'r-aiplatform.googleapis.com', port: 443, tls: true },
};

function context(overrides: Partial<TranslationContext> = {}): TranslationContext {
  return {
    api: 'OpenAI',
    operation: 'chat',
    subpath: '/chat/completions',
    query: '',
    requestModel: 'gemini',
    upstreamModel: 'gemini-2.5-pro',
    backend: vertex,
    stream: false,
    forceStreamUsage: false,
    requestId: 'req-1',
    nowSeconds: 1000,
    ...overrides,
  };
}

describe('OpenAI chat -> Gemini request', () => {
  it('maps messages, tool calls and results (by name), media, generation settings and tool choice', () => {
    const body = openAIChatToGemini({
      messages: [
        { role: 'system', content: 'sys' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'see' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AA' } },
            { type: 'image_url', image_url: { url: 'gs://b/cat.jpg' } },
          ],
        },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 'lookup', arguments: '{"k":"v"}' } }],
        },
        { role: 'tool', tool_call_id: 'c1', content: '{"found":true}' },
        { role: 'assistant', content: 'done' },
      ],
      max_tokens: 20,
      temperature: 1.5,
      stop: ['x'],
      seed: 7,
      n: 2,
      response_format: { type: 'json_schema', json_schema: { name: 's', schema: { type: 'object' } } },
      reasoning_effort: 'low',
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }],
      tool_choice: { type: 'function', function: { name: 'lookup' } },
    });
    expect(body).toEqual({
      contents: [
        {
          role: 'user',
          parts: [
            { text: 'see' },
            { inlineData: { mimeType: 'image/png', data: 'AA' } },
            { fileData: { mimeType: 'image/jpeg', fileUri: 'gs://b/cat.jpg' } },
          ],
        },
        { role: 'model', parts: [{ functionCall: { name: 'lookup', args: { k: 'v' } } }] },
        { role: 'user', parts: [{ functionResponse: { name: 'lookup', response: { found: true } } }] },
        { role: 'model', parts: [{ text: 'done' }] },
      ],
      tools: [{ functionDeclarations: [{ name: 'lookup', parameters: { type: 'object' } }] }],
      toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['lookup'] } },
      generationConfig: {
        maxOutputTokens: 20,
        temperature: 1.5,
        stopSequences: ['x'],
        seed: 7,
        candidateCount: 2,
        responseMimeType: 'application/json',
        responseJsonSchema: { type: 'object' },
        thinkingConfig: { thinkingBudget: 1024, includeThoughts: true },
      },
      systemInstruction: { parts: [{ text: 'sys' }] },
    });
  });

  it('rejects a tool result without a matching call, and bad ranges', () => {
    expect(() => openAIChatToGemini({ messages: [{ role: 'tool', tool_call_id: 'nope', content: 'x' }] })).toThrow(
      TranslationError,
    );
    expect(() => openAIChatToGemini({ messages: [], temperature: 3 })).toThrow(
      /temperature must be a number between 0 and 2/,
    );
    expect(() => openAIChatToGemini({ messages: [], logprobs: true })).toThrow(/parameter "logprobs" is not supported/);
  });
});

describe('Gemini -> OpenAI', () => {
  it('counts thoughts as reasoning and completion tokens, and keeps thought text apart', () => {
    const response = openAIChatToGeminiBackend(context()).response();
    response.head(200, { 'content-type': 'application/json' });
    const out = JSON.parse(
      response
        .body(
          Buffer.from(
            JSON.stringify({
              candidates: [
                {
                  content: { role: 'model', parts: [{ text: 'plan', thought: true }, { text: 'answer' }] },
                  finishReason: 'MAX_TOKENS',
                },
              ],
              usageMetadata: {
                promptTokenCount: 10,
                candidatesTokenCount: 5,
                thoughtsTokenCount: 20,
                cachedContentTokenCount: 4,
                totalTokenCount: 35,
              },
            }),
          ),
          true,
        )
        .toString(),
    );
    expect(out.choices).toEqual([
      {
        index: 0,
        finish_reason: 'length',
        message: { role: 'assistant', content: 'answer', reasoning_content: 'plan' },
      },
    ]);
    expect(out.usage).toEqual({
      prompt_tokens: 10,
      completion_tokens: 25,
      total_tokens: 35,
      completion_tokens_details: { reasoning_tokens: 20 },
      prompt_tokens_details: { cached_tokens: 4 },
    });
    expect(response.usage).toEqual({ input: 10, output: 25, total: 35, cachedInput: 4, reasoning: 20 });
  });

  it('streams function calls with indexes and deterministic UUID ids, usage chunk last', () => {
    const ctx = context({ stream: true });
    const translator = openAIChatToGeminiBackend(ctx);
    const ask = { messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true } };
    expect(translator.request(ask).path).toBe(
      '/v1/projects/p/locations/r/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse',
    );
    const response = translator.response();
    response.head(200, { 'content-type': 'text/event-stream' });
    const sse =
      'data: ' +
      JSON.stringify({
        responseId: 'r1',
        candidates: [
          {
            content: {
              role: 'model',
              parts: [{ functionCall: { name: 'a', args: { x: 1 } } }, { functionCall: { name: 'b', args: {} } }],
            },
            finishReason: 'STOP',
          },
        ],
      }) +
      '\n\n' +
      'data: ' +
      JSON.stringify({ responseId: 'r1', usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 2 } }) +
      '\n\n';
    const out = response.body(Buffer.from(sse), true).toString().trim().split('\n\n');
    expect(JSON.parse(out[0].slice(6)).choices[0]).toEqual({
      index: 0,
      delta: {
        role: 'assistant',
        tool_calls: [
          { index: 0, id: toolCallId('req-1', 0), function: { arguments: '{"x":1}', name: 'a' }, type: 'function' },
          { index: 1, id: toolCallId('req-1', 1), function: { arguments: '{}', name: 'b' }, type: 'function' },
        ],
      },
      finish_reason: 'tool_calls',
    });
    expect(toolCallId('req-1', 0)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(JSON.parse(out[1].slice(6)).usage).toEqual({
      prompt_tokens: 3,
      completion_tokens: 2,
      total_tokens: 5,
      completion_tokens_details: {},
      prompt_tokens_details: {},
    });
    expect(out[2]).toBe('data: [DONE]');

    const quiet = openAIChatToGeminiBackend(ctx);
    quiet.request({ ...ask, stream_options: undefined });
    const quietResponse = quiet.response();
    quietResponse.head(200, { 'content-type': 'text/event-stream' });
    const quietOut = quietResponse.body(Buffer.from(sse), true).toString().trim().split('\n\n');
    expect(quietOut).toEqual([out[0], 'data: [DONE]']);
    expect(quietResponse.usage).toEqual({ input: 3, output: 2, total: 5, cachedInput: 0, reasoning: 0 });
  });
});

describe('embeddings', () => {
  it('returns base64 float32 embeddings when the client asks (the openai SDK default)', () => {
    const translator = openAIEmbeddingsToVertexBackend(context({ operation: 'embeddings', subpath: '/embeddings' }));
    expect(translator.request({ model: 'e', input: ['a'], encoding_format: 'base64' }).body).toEqual({
      instances: [{ content: 'a' }],
      parameters: {},
    });
    const response = translator.response();
    response.head(200, { 'content-type': 'application/json' });
    const out = JSON.parse(
      response
        .body(
          Buffer.from(
            JSON.stringify({ predictions: [{ embeddings: { values: [0.5, -1.25], statistics: { token_count: 2 } } }] }),
          ),
          true,
        )
        .toString(),
    );
    const decoded = Buffer.from(out.data[0].embedding, 'base64');
    expect([decoded.readFloatLE(0), decoded.readFloatLE(4)]).toEqual([0.5, -1.25]);
    expect(response.usage).toMatchObject({ input: 2, total: 2 });
  });

  it('rejects token-array inputs with 422', () => {
    expect(() => openAIEmbeddingsToVertexBackend(context()).request({ input: [[1, 2]] })).toThrow(/input\[0\]/);
    expect(() => openAIEmbeddingsToVertexBackend(context()).request({ input: [1, 2] })).toThrow(
      expect.objectContaining({ status: 422, param: 'input[0]' }),
    );
  });

  const instance = { content: 'What is life?', task_type: 'RETRIEVAL_DOCUMENT', title: 'Life' };
  it.each([
    ['a string', 'a', [{ content: 'a' }]],
    ['one instance object (documented by Vertex)', instance, [instance]],
    ['an instance object without the optional fields', { content: 'b' }, [{ content: 'b' }]],
    ['an array of strings', ['a', 'b'], [{ content: 'a' }, { content: 'b' }]],
    ['an array of instance objects', [instance, { content: 'b', task_type: 'RETRIEVAL_QUERY' }], null],
    ['strings and instance objects mixed', ['a', instance], [{ content: 'a' }, instance]],
  ])('sends every input shape as Vertex instances: %s', (_name, input, instances) => {
    const upstream = openAIEmbeddingsToVertexBackend(context({ operation: 'embeddings' })).request({
      model: 'text-embedding-005',
      input,
      dimensions: 256,
    });
    expect(upstream.path).toBe('/v1/projects/p/locations/r/publishers/google/models/gemini-2.5-pro:predict');
    expect(upstream.body).toEqual({ instances: instances ?? input, parameters: { outputDimensionality: 256 } });
  });

  it.each([
    ['an empty array', [], 'input'],
    ['nothing', undefined, 'input'],
    ['an instance without content', { task_type: 'CLUSTERING' }, 'input'],
    ['an instance with a non-string title', [{ content: 'a', title: 5 }], 'input[0]'],
    ['an instance with a non-string task type', { content: 'a', task_type: ['CLUSTERING'] }, 'input'],
  ])('answers 400 naming the input for %s', (_name, input, param) => {
    expect(() => openAIEmbeddingsToVertexBackend(context()).request({ input })).toThrow(
      expect.objectContaining({ status: 400, param }),
    );
  });
});

describe('Azure OpenAI paths', () => {
  const azure: BackendConfig = {
    name: 'az',
    schema: { name: 'AzureOpenAI', apiVersion: '2025-01-01-preview' },
    endpoint: { hostname: 'x.openai.azure.com', port: 443, tls: true },
  };
  it('puts the deployment and api-version in the path, keeping other query parameters', () => {
    const ctx = context({ backend: azure, upstreamModel: 'gpt-4o deploy', query: '?api-version=old&foo=bar' });
    expect(openAIToAzure(ctx).request({ model: 'gemini', messages: [] })).toMatchObject({
      path: '/openai/deployments/gpt-4o%20deploy/chat/completions?api-version=2025-01-01-preview&foo=bar',
      body: { model: 'gpt-4o deploy' },
    });
    expect(
      openAIToAzure(context({ backend: azure, operation: 'other', subpath: '/responses' })).request({ model: 'm' })
        .path,
    ).toBe('/openai/responses?api-version=2025-01-01-preview');
  });
});
