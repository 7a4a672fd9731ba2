/** Every request the processor answers itself, and the request-side header rules. */
import type { ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import type { ExchangeResult, Upstream } from '../support/envoy-client';
import { openAIBackend, route, startTestProcessor, testConfig, type TestProcessor } from '../support/processor-harness';

const neverCalled: Upstream = () => {
  throw new Error('the request must not reach the upstream');
};

const okUpstream: Upstream = () => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: '{"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}',
});

function errorOf(result: ExchangeResult): { message: string; type: string; code: string | null; param: string | null } {
  expect(result.headers['content-type']).toBe('application/json');
  return (
    JSON.parse(result.body.toString()) as {
      error: { message: string; type: string; code: string | null; param: string | null };
    }
  ).error;
}

const ZERO_METADATA = {
  llm_input_token: 0,
  llm_output_token: 0,
  llm_total_token: 0,
  llm_cached_input_token: 0,
  llm_reasoning_token: 0,
};

const config: ProcessorConfig = testConfig({
  maxRequestBodyBytes: 2048,
  backends: [
    openAIBackend('openai', { auth: { type: 'APIKey', secret: { secretName: 'openai', key: 'apiKey' } } }),
    openAIBackend('open-model'),
    openAIBackend('missing-secret', { auth: { type: 'BearerToken', secret: { secretName: 'absent', key: 'token' } } }),
  ],
  routes: [
    route(['gpt-4o', 'gpt-4o-mini'], [{ backend: 'openai', weight: 1, priority: 0 }], {
      name: 'team/chat',
      endpoints: [
        { api: 'OpenAI', pathPrefix: '/v1' },
        { api: 'Anthropic', pathPrefix: '/anthropic/v1' },
      ],
      requiredHeaders: [],
    }),
    route(['budgeted'], [{ backend: 'open-model', weight: 1, priority: 0 }], {
      name: 'team/budgeted',
      requiredHeaders: ['x-tenant-id'],
    }),
    route(['open-model'], [{ backend: 'open-model', weight: 1, priority: 0, modelNameOverride: 'upstream-name' }], {
      name: 'team/open',
    }),
    route(['locked'], [{ backend: 'missing-secret', weight: 1, priority: 0 }], { name: 'team/locked' }),
    route(['other-host-model'], [{ backend: 'open-model', weight: 1, priority: 0 }], {
      name: 'team/other',
      hostnames: ['*.internal.example'],
    }),
  ],
  costs: [{ metadataKey: 'weighted', type: 'CEL', expression: 'input_tokens + 2 * output_tokens' }],
});

describe('errors answered by the processor', () => {
  let processor: TestProcessor;
  beforeAll(async () => {
    processor = await startTestProcessor(config, { secrets: { openai: { apiKey: 'sk-secret-value\n' } } });
  });
  afterAll(() => processor.close());

  it('unknown path: 404 with an OpenAI error and zero usage metadata (costs included)', async () => {
    const result = await processor.client.exchange({ path: '/unknown', body: '{"prompt":"hello"}' }, neverCalled);
    expect(result.immediate).toBe(true);
    expect(result.status).toBe(404);
    expect(errorOf(result)).toEqual({
      message: 'unsupported path: /unknown',
      type: 'invalid_request_error',
      code: 'unsupported_path',
      param: null,
    });
    expect(result.metadata['io.envoy.ai_gateway']).toEqual({ ...ZERO_METADATA, weighted: 0 });
  });

  it.each([
    ['/v1/../admin'],
    ['/v1/./chat/completions'],
    ['/v1/%2e%2E/admin'],
    ['/v1/files%2F..%2Fadmin'],
    ['/v1/a%5C..%5Cb'],
  ])('a path that could climb out of the backend prefix (%s): 400', async (path) => {
    const result = await processor.client.exchange({ path, body: '{"model":"gpt-4o"}' }, neverCalled);
    expect(result.status).toBe(400);
    expect(errorOf(result)).toMatchObject({ code: 'invalid_path' });
  });

  it('the bare API prefix is an unknown path too', async () => {
    const result = await processor.client.exchange({ path: '/v1', body: '{"model":"gpt-4o"}' }, neverCalled);
    expect(result.status).toBe(404);
  });

  it('malformed JSON: 400 naming the path and the parse error', async () => {
    const result = await processor.client.exchange(
      { path: '/v1/chat/completions', body: '{"model": "x", "messages": [invalid' },
      neverCalled,
    );
    expect(result.status).toBe(400);
    const error = errorOf(result);
    expect(error.message).toMatch(/^malformed request: failed to parse JSON for \/v1\/chat\/completions: /);
    expect(error.code).toBe('invalid_json');
  });

  it('a JSON body that is not an object: 400', async () => {
    const result = await processor.client.exchange({ path: '/v1/chat/completions', body: '[1,2]' }, neverCalled);
    expect(result.status).toBe(400);
    expect(errorOf(result).message).toContain('must be a JSON object');
  });

  it.each([['{"messages":[]}'], ['{"model":"","messages":[]}'], ['{"model":42}']])(
    'missing model (%s): 400 with param "model"',
    async (body) => {
      const result = await processor.client.exchange({ path: '/v1/chat/completions', body }, neverCalled);
      expect(result.status).toBe(400);
      expect(errorOf(result)).toMatchObject({ code: 'missing_model', param: 'model' });
    },
  );

  it.each([['gpt-4o\r\nx-injected: 1'], ['gpt-4o\u0000'], ['gpt-4o\t'], ['\u007f']])(
    'a model name with control characters (%j): 400',
    async (model) => {
      const result = await processor.client.exchange(
        { path: '/v1/chat/completions', body: JSON.stringify({ model }) },
        neverCalled,
      );
      expect(result.status).toBe(400);
      expect(errorOf(result)).toMatchObject({
        code: 'invalid_model',
        param: 'model',
        message: 'the model name must not contain control characters',
      });
    },
  );

  it.each([
    ['257 ASCII bytes', `gpt-4o${'x'.repeat(251)}`],
    ['258 UTF-8 bytes in 129 characters', '\u00e9'.repeat(129)],
    ['1,000 bytes', 'g'.repeat(1000)],
  ])('a model name over 256 bytes (%s): 400 in the OpenAI schema, before routing', async (_, model) => {
    const result = await processor.client.exchange(
      { path: '/v1/chat/completions', body: JSON.stringify({ model }) },
      neverCalled,
    );
    expect(result.status).toBe(400);
    expect(errorOf(result)).toEqual({
      code: 'invalid_model',
      type: 'invalid_request_error',
      param: 'model',
      message: 'the model name must be at most 256 bytes long',
    });
    expect(result.metadata['io.envoy.ai_gateway']).toMatchObject(ZERO_METADATA);
  });

  it(
    'a model name over 256 bytes on an Anthropic endpoint: 400 in the Anthropic schema; 256 ' + 'bytes is still routed',
    async () => {
      const result = await processor.client.exchange(
        { path: '/anthropic/v1/messages', body: JSON.stringify({ model: `claude-${'x'.repeat(250)}`, max_tokens: 1 }) },
        neverCalled,
      );
      expect(result.status).toBe(400);
      expect(JSON.parse(result.body.toString())).toEqual({
        type: 'error',
        error: { type: 'invalid_request_error', message: 'the model name must be at most 256 bytes long' },
      });
      const atBound = await processor.client.exchange(
        { path: '/v1/chat/completions', body: JSON.stringify({ model: 'm'.repeat(256) }) },
        neverCalled,
      );
      expect(atBound.status).toBe(404);
      expect(errorOf(atBound).code).toBe('model_not_found');
    },
  );

  it('unknown model: 404 listing the models served on this endpoint and host', async () => {
    const result = await processor.client.exchange(
      { path: '/v1/chat/completions', body: '{"model":"gpt-3"}' },
      neverCalled,
    );
    expect(result.status).toBe(404);
    const error = errorOf(result);
    expect(error.code).toBe('model_not_found');
    expect(error.message).toBe(
      'the model `gpt-3` does not exist or is not served here; available models: gpt-4o, ' +
        'gpt-4o-mini, budgeted, open-model, locked',
    );
  });

  it('a request without a body: 400', async () => {
    const result = await processor.client.exchange({ method: 'POST', path: '/v1/chat/completions' }, neverCalled);
    expect(result.status).toBe(400);
    expect(errorOf(result).code).toBe('missing_body');
  });

  it('body over the limit: 413, from Content-Length before the body arrives', async () => {
    const stream = processor.client.openStream();
    stream.send({
      requestHeaders: {
        headers: {
          headers: [
            { key: ':method', rawValue: Buffer.from('POST') },
            { key: ':path', rawValue: Buffer.from('/v1/chat/completions') },
            { key: 'content-length', rawValue: Buffer.from('4096') },
          ],
        },
      },
    });
    const response = await stream.next();
    stream.end();
    expect(response.kind).toBe('immediateResponse');
    expect((response.message.immediateResponse as { status: { code: number } }).status.code).toBe(413);
  });

  it('body over the limit: 413, from the body itself', async () => {
    const body = JSON.stringify({ model: 'gpt-4o', padding: 'x'.repeat(3000) });
    const result = await processor.client.exchange(
      { path: '/v1/chat/completions', body, headers: { 'content-length': '10' } },
      neverCalled,
    );
    expect(result.status).toBe(413);
    expect(errorOf(result)).toMatchObject({
      code: 'request_too_large',
      message: 'request body exceeds the limit of 2048 bytes',
    });
  });

  it('a route with a per-client budget rejects requests without its header: 400', async () => {
    const missing = await processor.client.exchange(
      { path: '/v1/chat/completions', body: '{"model":"budgeted"}' },
      neverCalled,
    );
    expect(missing.status).toBe(400);
    expect(errorOf(missing)).toMatchObject({
      code: 'missing_required_header',
      message: 'missing required header: x-tenant-id',
    });
    const present = await processor.client.exchange(
      { path: '/v1/chat/completions', body: '{"model":"budgeted"}', headers: { 'x-tenant-id': 'acme' } },
      okUpstream,
    );
    expect(present.status).toBe(200);
  });

  it('hostnames restrict routes: a model on another host is unknown here and served there', async () => {
    const here = await processor.client.exchange(
      { path: '/v1/chat/completions', body: '{"model":"other-host-model"}' },
      neverCalled,
    );
    expect(here.status).toBe(404);
    const there = await processor.client.exchange(
      { path: '/v1/chat/completions', body: '{"model":"other-host-model"}', authority: 'api.internal.example:8443' },
      okUpstream,
    );
    expect(there.status).toBe(200);
  });

  it('Anthropic endpoint errors use the Anthropic error shape', async () => {
    const result = await processor.client.exchange(
      { path: '/anthropic/v1/messages', body: '{"model":"nope","max_tokens":1}' },
      neverCalled,
    );
    expect(result.status).toBe(404);
    expect(JSON.parse(result.body.toString())).toEqual({
      type: 'error',
      error: { type: 'not_found_error', message: expect.stringContaining('the model `nope` does not exist') },
    });
    const unknownPath = await processor.client.exchange({ path: '/anthropic/v1/complete', body: '{}' }, neverCalled);
    expect(JSON.parse(unknownPath.body.toString())).toEqual({
      type: 'error',
      error: { type: 'not_found_error', message: 'unsupported path: /anthropic/v1/complete' },
    });
  });

  it(
    'a backend whose credential file is missing: 503 (a backend failure) without the secret ' +
      'path details leaking content',
    async () => {
      const result = await processor.client.exchange(
        { path: '/v1/chat/completions', body: '{"model":"locked"}' },
        neverCalled,
      );
      expect(result.status).toBe(503);
      expect(errorOf(result)).toMatchObject({
        code: 'backend_auth_error',
        message: 'the gateway could not authenticate to backend "missing-secret"',
      });
    },
  );

  it('GET /v1/models lists the exact model names from the config; other methods get 405', async () => {
    const result = await processor.client.exchange({ method: 'GET', path: '/v1/models' }, neverCalled);
    expect(result.status).toBe(200);
    const list = JSON.parse(result.body.toString()) as {
      object: string;
      data: Array<{ id: string; object: string; owned_by: string; created: number }>;
    };
    expect(list.object).toBe('list');
    expect(list.data.map((m) => m.id)).toEqual(['gpt-4o', 'gpt-4o-mini', 'budgeted', 'open-model', 'locked']);
    expect(list.data[0]).toMatchObject({
      object: 'model',
      owned_by: 'ai-gateway',
      created: processor.app.processor.runtime().loadedAtSeconds,
    });
    const post = await processor.client.exchange({ method: 'POST', path: '/v1/models', body: '{}' }, neverCalled);
    expect(post.status).toBe(405);
  });
});

describe('request mutations', () => {
  let processor: TestProcessor;
  beforeAll(async () => {
    processor = await startTestProcessor(config, { secrets: { openai: { apiKey: 'sk-secret-value\n' } } });
  });
  afterAll(() => processor.close());

  it(
    'overwrites client-sent routing headers, clears the route cache and swaps client ' +
      'credentials for the backend key',
    async () => {
      const result = await processor.client.exchange(
        {
          path: '/v1/chat/completions',
          body: '{"model":"gpt-4o"}',
          headers: {
            'x-ai-eg-model': 'spoofed',
            'x-ai-gateway-backend': 'spoofed',
            authorization: 'Bearer client',
            'x-api-key': 'client',
            'api-key': 'client',
          },
        },
        (request) => {
          expect(request.headers['x-ai-eg-model']).toBe('gpt-4o');
          expect(request.headers['x-ai-gateway-backend']).toBe('openai');
          expect(request.headers.authorization).toBe('Bearer sk-secret-value');
          expect(request.headers['x-api-key']).toBeUndefined();
          expect(request.headers['api-key']).toBeUndefined();
          return okUpstream(request);
        },
      );
      expect(result.clearedRouteCache).toBe(true);
      expect(result.status).toBe(200);
      expect(result.metadata['io.envoy.ai_gateway']).toEqual({
        llm_input_token: 1,
        llm_output_token: 2,
        llm_total_token: 3,
        llm_cached_input_token: 0,
        llm_reasoning_token: 0,
        weighted: 5,
      });
    },
  );

  it('keeps client credentials for a backend without auth, and fixes Content-Length for a rewritten body', async () => {
    const result = await processor.client.exchange(
      {
        path: '/v1/chat/completions?x=1',
        body: '{"model":"open-model","stream":false}',
        headers: { authorization: 'Bearer client' },
      },
      (request) => {
        expect(request.path).toBe('/v1/chat/completions?x=1');
        expect(request.headers.authorization).toBe('Bearer client');
        expect(JSON.parse(request.body.toString())).toEqual({ model: 'upstream-name', stream: false });
        expect(request.headers['content-length']).toBe(String(request.body.length));
        expect(request.headers['x-ai-eg-model']).toBe('open-model');
        return okUpstream(request);
      },
    );
    expect(result.status).toBe(200);
  });

  it('reads header values from `value` when `raw_value` is empty', async () => {
    const stream = processor.client.openStream();
    stream.send({
      requestHeaders: {
        headers: {
          headers: [
            { key: ':method', value: 'POST' },
            { key: ':path', value: '/nowhere' },
          ],
        },
      },
    });
    const response = await stream.next();
    stream.end();
    const body = (response.message.immediateResponse as { body: Uint8Array }).body;
    expect(Buffer.from(body).toString()).toContain('unsupported path: /nowhere');
  });
});
