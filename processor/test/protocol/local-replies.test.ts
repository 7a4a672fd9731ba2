/**
 * Envoy's local replies in the response phase (`response.code_details` other than `via_upstream`): passed on as
 * Envoy made them, no tokens charged, and only an upstream connect failure or timeout counts against the backend.
 */
import { classifyResponse } from '../../src/extproc/local-replies';
import { openAIBackend, route, startTestProcessor, testConfig, type TestProcessor } from '../support/processor-harness';

const ZERO_TOKENS = {
  llm_input_token: 0,
  llm_output_token: 0,
  llm_total_token: 0,
  llm_cached_input_token: 0,
  llm_reasoning_token: 0,
};
const BREAKER = { failureThreshold: 1, openDurationMs: 150 };
const OPENAI_ERROR = JSON.stringify({
  error: { message: 'the provider broke', type: 'server_error', param: null, code: null },
});
const UF_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: remote connection failure';

/** One backend per test, so that breaker state and metrics series do not leak between tests. */
const BACKENDS = ['not-found', 'limited', 'refused', 'timed-out', 'broken', 'no-info', 'probed'];

describe('local replies from Envoy in the response phase', () => {
  let processor: TestProcessor;
  beforeAll(async () => {
    processor = await startTestProcessor(
      testConfig({
        backends: BACKENDS.map((name) => openAIBackend(name)),
        routes: BACKENDS.map((name) =>
          route([name], [{ backend: name, weight: 1, priority: 0 }], {
            name: `team/${name}`,
            endpoints: [
              { api: 'OpenAI', pathPrefix: '/v1' },
              { api: 'Anthropic', pathPrefix: '/anthropic/v1' },
            ],
          }),
        ),
        circuitBreaker: BREAKER,
      }),
    );
  });
  afterAll(() => processor.close());

  const isOpen = (backend: string) => processor.app.processor.breakers.isOpen(backend, BREAKER);

  /** Observations of the request-duration histogram for a backend, by error type. */
  async function durations(backend: string): Promise<Record<string, number>> {
    const text = await processor.app.metrics.registry.metrics();
    const out: Record<string, number> = {};
    for (const line of text.split('\n')) {
      if (
        !line.startsWith('gen_ai_server_request_duration_seconds_count{') ||
        !line.includes(`gen_ai_provider_name="${backend}"`)
      )
        continue;
      const errorType = /error_type="([^"]*)"/.exec(line)![1];
      out[errorType] = Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return out;
  }

  /** An Anthropic client on an OpenAI backend: a backend's answer is translated, so an untranslated body shows. */
  const anthropicRequest = (model: string) => ({
    path: '/anthropic/v1/messages',
    body: JSON.stringify({ model, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
  });

  it(
    'the router 404 after the re-match missed (route_not_found): unchanged, breaker and metrics ' +
      'untouched, 0 tokens',
    async () => {
      const result = await processor.client.exchange(anthropicRequest('not-found'), () => ({
        status: 404,
        codeDetails: 'route_not_found',
      }));
      expect(result.immediate).toBe(false);
      expect(result.status).toBe(404);
      expect(result.body.length).toBe(0);
      expect(result.responses.at(-1)).toMatchObject({ kind: 'responseHeaders' });
      expect(result.metadata['io.envoy.ai_gateway']).toEqual(ZERO_TOKENS);
      expect(isOpen('not-found')).toBe(false);
      expect(await durations('not-found')).toEqual({});
    },
  );

  it(
    'a 429 of the rate-limit filter (request_rate_limited): the client error, not a failure, the ' +
      'half-open probe slot is freed',
    async () => {
      // Open the breaker with a backend 500, then let the open period pass: the next request is the half-open probe.
      await processor.client.exchange(anthropicRequest('limited'), () => ({
        status: 500,
        headers: { 'content-type': 'application/json' },
        body: OPENAI_ERROR,
        codeDetails: 'via_upstream',
      }));
      expect(isOpen('limited')).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, BREAKER.openDurationMs + 20));
      expect(processor.app.processor.breakers.available('limited', BREAKER)).toBe(true);
      const before = await durations('limited');

      const result = await processor.client.exchange(anthropicRequest('limited'), () => {
        // The probe slot is taken while the request is out.
        expect(processor.app.processor.breakers.available('limited', BREAKER)).toBe(false);
        return { status: 429, headers: { 'x-envoy-ratelimited': 'true' }, codeDetails: 'request_rate_limited' };
      });
      expect(result.status).toBe(429);
      expect(result.headers['x-envoy-ratelimited']).toBe('true');
      // Envoy's empty body is replaced by the client's error (no budget in this config names itself).
      expect(JSON.parse(result.body.toString())).toEqual({
        type: 'error',
        error: { type: 'rate_limit_error', message: 'a budget of this gateway is used up' },
      });
      expect(result.metadata['io.envoy.ai_gateway']).toEqual(ZERO_TOKENS);
      // Neither a success (the breaker stays open) nor a failure (no new open period): the next request may probe.
      expect(isOpen('limited')).toBe(true);
      expect(processor.app.processor.breakers.available('limited', BREAKER)).toBe(true);
      expect(await durations('limited')).toEqual(before);
    },
  );

  it(
    'a 503 upstream connect failure (UF): unchanged, but the backend failed (breaker, metrics ' +
      'with the error type)',
    async () => {
      const result = await processor.client.exchange(anthropicRequest('refused'), () => ({
        status: 503,
        headers: { 'content-type': 'text/plain' },
        body: UF_BODY,
        codeDetails:
          'upstream_reset_before_response_started{remote_connection_failure,delayed_connect_error:_Connection_refused}',
      }));
      expect(result.status).toBe(503);
      expect(result.headers['content-type']).toBe('text/plain');
      expect(result.body.toString()).toBe(UF_BODY);
      expect(result.metadata['io.envoy.ai_gateway']).toEqual(ZERO_TOKENS);
      expect(isOpen('refused')).toBe(true);
      expect(await durations('refused')).toEqual({ upstream_reset_before_response_started: 1 });
    },
  );

  it('a 504 route timeout (UT): the backend failed', async () => {
    const result = await processor.client.exchange(anthropicRequest('timed-out'), () => ({
      status: 504,
      headers: { 'content-type': 'text/plain' },
      body: 'upstream request timeout',
      codeDetails: 'response_timeout',
    }));
    expect(result.status).toBe(504);
    expect(result.body.toString()).toBe('upstream request timeout');
    expect(isOpen('timed-out')).toBe(true);
    expect(await durations('timed-out')).toEqual({ response_timeout: 1 });
  });

  it('a backend 500 (via_upstream) is the backend answer, translated and counted as today', async () => {
    const result = await processor.client.exchange(anthropicRequest('broken'), () => ({
      status: 500,
      headers: { 'content-type': 'application/json' },
      body: OPENAI_ERROR,
      codeDetails: 'via_upstream',
    }));
    expect(result.status).toBe(500);
    expect(JSON.parse(result.body.toString())).toMatchObject({
      type: 'error',
      error: { message: 'the provider broke' },
    });
    expect(isOpen('broken')).toBe(true);
    expect(await durations('broken')).toEqual({ '': 1 });
  });

  it('without the attribute (a policy from before it was requested), a response is the backend answer', async () => {
    const result = await processor.client.exchange(anthropicRequest('no-info'), () => ({
      status: 404,
      headers: { 'content-type': 'application/json' },
      body: '{}',
    }));
    expect(result.status).toBe(404);
    expect(JSON.parse(result.body.toString())).toMatchObject({ type: 'error' });
    expect(await durations('no-info')).toEqual({ '': 1 });
  });

  it('a local reply to a streaming request leaves the body alone too (no event-stream mode override)', async () => {
    const result = await processor.client.exchange(
      { path: '/v1/chat/completions', body: '{"model":"probed","stream":true}' },
      () => ({
        status: 404,
        headers: { 'content-type': 'text/plain' },
        body: 'not here',
        codeDetails: 'route_not_found',
      }),
    );
    expect(result.streamed).toBe(false);
    expect(result.body.toString()).toBe('not here');
    expect(result.metadata['io.envoy.ai_gateway']).toEqual(ZERO_TOKENS);
  });
});

describe('classifying response code details', () => {
  it.each([
    [undefined, 'upstream'],
    ['via_upstream', 'upstream'],
    ['route_not_found', 'gateway'],
    ['request_rate_limited', 'gateway'],
    ['direct_response', 'gateway'],
    ['cluster_not_found', 'gateway'],
    ['jwt_authn_access_denied{Jwt_is_expired}', 'gateway'],
    ['upstream_reset_before_response_started{overflow}', 'gateway'],
    ['upstream_reset_before_response_started{overload_manager}', 'gateway'],
    ['upstream_reset_before_response_started{connection_timeout}', 'backendFailure'],
    ['upstream_reset_before_response_started{remote_reset}', 'backendFailure'],
    [
      'upstream_reset_before_response_started{local_connection_failure,TLS_error:' +
        '_268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED}',
      'backendFailure',
    ],
    ['response_timeout', 'backendFailure'],
    ['upstream_per_try_timeout', 'backendFailure'],
    ['no_healthy_upstream', 'backendFailure'],
  ])('%s: %s', (details, kind) => {
    expect(classifyResponse(details).kind).toBe(kind);
  });
});
