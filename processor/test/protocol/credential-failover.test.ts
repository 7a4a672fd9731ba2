/**
 * A backend whose token endpoint accepts the connection and never answers: each request is answered 503 within
 * the credential timeout, the failures open the backend's breaker, later requests fail over to the next
 * priority, and once the endpoint answers again the half-open probe recovers the backend.
 */
import { AUTH_FACTORIES } from '../../src/auth';
import { azureEntraAuthWith } from '../../src/auth/azure';
import type { ExchangeResult } from '../support/envoy-client';
import { openAIBackend, route, startTestProcessor, testConfig, type TestProcessor } from '../support/processor-harness';
import { startTokenServer, type TokenServer } from '../support/token-server';

const TIMEOUT_MS = 300;
/** Generous for 2 shared cores, far below "never". */
const MARGIN_MS = 1000;
const OPEN_MS = 400;
const SECRET = 'entra-client-secret-do-not-print';

describe('credential failure through the processor', () => {
  let tokens: TokenServer;
  let processor: TestProcessor;
  beforeAll(async () => {
    tokens = await startTokenServer('silent');
    processor = await startTestProcessor(
      testConfig({
        backends: [
          openAIBackend('azure', {
            schema: { name: 'AzureOpenAI', apiVersion: '2025-01-01-preview' },
            auth: {
              type: 'AzureEntra',
              tenantId: 'tenant-1',
              clientId: 'client-1',
              clientSecret: { secretName: 'entra', key: 'secret' },
            },
          }),
          openAIBackend('openai'),
        ],
        routes: [
          route(
            ['gpt-4o'],
            [
              { backend: 'azure', weight: 1, priority: 0 },
              { backend: 'openai', weight: 1, priority: 1 },
            ],
          ),
        ],
        circuitBreaker: { failureThreshold: 2, openDurationMs: OPEN_MS },
      }),
      {
        secrets: { entra: { secret: SECRET } },
        compile: {
          authFactories: {
            ...AUTH_FACTORIES,
            AzureEntra: azureEntraAuthWith({ authority: tokens.url, timeoutMs: TIMEOUT_MS }),
          },
        },
      },
    );
  });
  afterAll(async () => {
    await processor.close();
    await tokens.close();
  });

  async function send(): Promise<{
    result: ExchangeResult;
    backend: string | undefined;
    authorization: string | undefined;
    ms: number;
  }> {
    let backend: string | undefined;
    let authorization: string | undefined;
    const start = performance.now();
    const result = await processor.client.exchange(
      { path: '/v1/chat/completions', body: '{"model":"gpt-4o","messages":[]}' },
      (request) => {
        backend = request.headers['x-ai-gateway-backend'];
        authorization = request.headers.authorization;
        return {
          status: 200,
          headers: { 'content-type': 'application/json' },
          body: '{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}',
        };
      },
    );
    return { result, backend, authorization, ms: performance.now() - start };
  }

  it(
    'answers 503 within the timeout, fails over to the next priority, and recovers when the ' + 'endpoint answers',
    async () => {
      // Two concurrent requests share the one hung token request; both end at the timeout.
      const failed = await Promise.all([send(), send()]);
      expect(tokens.requests).toBe(1);
      for (const { result, backend, ms } of failed) {
        expect(result.immediate).toBe(true);
        expect(result.status).toBe(503);
        expect(JSON.parse(result.body.toString())).toEqual({
          error: {
            message: 'the gateway could not authenticate to backend "azure"',
            type: 'server_error',
            param: null,
            code: 'backend_auth_error',
          },
        });
        expect(result.body.toString()).not.toContain(SECRET);
        expect(backend).toBeUndefined(); // never sent upstream
        expect(ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
      }

      // The threshold (2) is reached: the breaker is open and the next priority serves.
      for (let i = 0; i < 3; i++) {
        const { result, backend, ms } = await send();
        expect(result.status).toBe(200);
        expect(backend).toBe('openai');
        expect(ms).toBeLessThan(MARGIN_MS);
      }
      expect(tokens.requests).toBe(1);

      // Still hung when the breaker half-opens: the probe fails within the timeout and opens it again.
      await new Promise((resolve) => setTimeout(resolve, OPEN_MS + 50));
      const probe = await send();
      expect(probe.result.status).toBe(503);
      expect(probe.ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
      expect(tokens.requests).toBe(2); // the timed-out request did not poison the source: a new one was made
      expect((await send()).backend).toBe('openai');

      // The token endpoint answers again: the next probe gets a token and closes the breaker.
      tokens.mode = 'ok';
      await new Promise((resolve) => setTimeout(resolve, OPEN_MS + 50));
      const recovered = await send();
      expect(recovered.result.status).toBe(200);
      expect(recovered.backend).toBe('azure');
      expect(recovered.authorization).toBe('Bearer token-3');
      const after = await send();
      expect(after.backend).toBe('azure');
      expect(after.authorization).toBe('Bearer token-3'); // cached
    },
    15_000,
  );
});

describe('a static credential that cannot be read', () => {
  let processor: TestProcessor;
  beforeAll(async () => {
    processor = await startTestProcessor(
      testConfig({
        backends: [
          openAIBackend('keyless', { auth: { type: 'APIKey', secret: { secretName: 'absent', key: 'api-key' } } }),
          openAIBackend('openai'),
        ],
        routes: [
          route(
            ['gpt-4o'],
            [
              { backend: 'keyless', weight: 1, priority: 0 },
              { backend: 'openai', weight: 1, priority: 1 },
            ],
          ),
        ],
        circuitBreaker: { failureThreshold: 2, openDurationMs: 60_000 },
      }),
    );
  });
  afterAll(() => processor.close());

  it('is a failure of its backend too: after the threshold the next priority serves', async () => {
    const backends: Array<string | undefined> = [];
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      let backend: string | undefined;
      const result = await processor.client.exchange(
        { path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' },
        (request) => {
          backend = request.headers['x-ai-gateway-backend'];
          return { status: 200, headers: { 'content-type': 'application/json' }, body: '{}' };
        },
      );
      statuses.push(result.status);
      backends.push(backend);
    }
    expect(statuses).toEqual([503, 503, 200, 200]);
    expect(backends).toEqual([undefined, undefined, 'openai', 'openai']);
  });
});
