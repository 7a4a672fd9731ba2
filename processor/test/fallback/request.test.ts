import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BackendConfig } from '@ai-gateway-constructs/processor-config';
import { SecretReader } from '../../src/auth/secrets';
import { compileRuntime, type RuntimeConfig } from '../../src/config/runtime';
import { decideOnBody, decideOnHeaders, type RoutingDecision } from '../../src/extproc/request-route';
import { CredentialFailure, prepareUpstream, type BodyRead } from '../../src/extproc/upstream-request';
import { attemptRequest, fallbackRouting } from '../../src/fallback';
import type { HttpHeaders } from '../../src/grpc/messages';
import { silentLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { Processor } from '../../src/processor';
import { openAIBackend, route, testConfig } from '../support/processor-harness';

const ANTHROPIC: BackendConfig = {
  name: 'claude',
  schema: { name: 'Anthropic', version: '2023-06-01' },
  endpoint: { hostname: 'api.anthropic.test', port: 443, tls: true },
  auth: { type: 'APIKey', secret: { secretName: 'claude', key: 'apiKey' } },
};

function headers(values: Record<string, string>): HttpHeaders {
  return {
    headers: { headers: Object.entries(values).map(([key, value]) => ({ key, rawValue: Buffer.from(value) })) },
    endOfStream: false,
  };
}

describe('attemptRequest', () => {
  let dir: string;
  let runtime: RuntimeConfig;
  let processor: Processor;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fallback-request-'));
    fs.mkdirSync(path.join(dir, 'claude'));
    fs.writeFileSync(path.join(dir, 'claude', 'apiKey'), 'sk-ant-secret');
    const config = testConfig({
      backends: [openAIBackend('openai'), ANTHROPIC],
      routes: [
        route(
          ['gpt-4o'],
          [
            { backend: 'openai', weight: 1, priority: 0 },
            { backend: 'claude', weight: 1, priority: 1, modelNameOverride: 'claude-sonnet-4-5' },
          ],
        ),
      ],
    });
    config.routes[0].rules[0].fallback = {
      statuses: [503],
      connectionFailures: true,
      timeouts: true,
      maxAttempts: 2,
      attemptTimeoutMs: 5000,
    };
    runtime = compileRuntime(config, new SecretReader(dir), { nowSeconds: 0, logger: silentLogger });
    processor = new Processor(runtime, new Metrics({ defaultMetrics: false }), silentLogger);
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function routed(body: object): { read: BodyRead; decision: RoutingDecision; raw: Buffer } {
    const read = decideOnHeaders(
      runtime,
      headers({
        ':method': 'POST',
        ':path': '/v1/chat/completions',
        ':authority': 'gateway.example.com',
        'content-type': 'application/json',
        'x-request-id': 'req-1',
        'x-envoy-expected-rq-timeout-ms': '60000',
        'x-ai-gateway-backend': 'spoofed',
        connection: 'keep-alive',
      }),
    );
    if (read.kind !== 'readBody') throw new Error(`expected a body read, got ${read.kind}`);
    const raw = Buffer.from(JSON.stringify(body));
    const decision = decideOnBody(runtime, read, raw, processor.breakers);
    if (decision.kind !== 'routed') throw new Error(`expected a routed request, got ${decision.kind}`);
    return { read, decision, raw };
  }

  it("translates the client's request for the fallback backend, signed with that backend's credential", async () => {
    const { read, decision, raw } = routed({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] });
    expect(decision.backend.config.name).toBe('openai');
    const fallback = fallbackRouting(runtime, decision, runtime.config.routes[0].rules[0].backends[1]);
    if (fallback.kind !== 'routed') throw new Error('expected the fallback to be routed');
    expect(fallback.upstreamModel).toBe('claude-sonnet-4-5');
    const prepared = prepareUpstream(processor, runtime, read, fallback);
    if (prepared.kind !== 'prepared') throw new Error('expected a prepared request');
    prepared.exchange.withdraw();
    const request = await attemptRequest(runtime, read, prepared, raw);
    if (request instanceof CredentialFailure) throw request.cause;
    expect(request.backend).toBe('claude');
    expect(request.method).toBe('POST');
    expect(request.path).toBe('/v1/messages');
    expect(request.headers).toMatchObject({
      host: 'api.anthropic.test',
      'x-api-key': 'sk-ant-secret',
      'anthropic-version': '2023-06-01',
      'x-request-id': 'req-1',
    });
    // Connection-level, Envoy-internal and routing headers never leave the processor.
    for (const name of Object.keys(request.headers)) {
      expect(name).not.toMatch(/^(:|x-envoy-|x-ai-gateway-backend$|x-ai-gateway-model$|connection$|content-length$)/);
    }
    const body = JSON.parse(request.body.toString()) as { model: string; messages: unknown[]; max_tokens: number };
    expect(body.model).toBe('claude-sonnet-4-5');
    expect(body.messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }]);
  });

  it('refuses a fallback whose model has no price on a route that serves only priced models', () => {
    const { decision } = routed({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] });
    const priced = {
      ...decision,
      rule: {
        ...decision.rule,
        rule: { ...decision.rule.rule, route: { ...decision.rule.rule.route, priceRequired: true } },
      },
    };
    const priceless = { ...runtime, governance: { ...runtime.governance, prices: new Map([['gpt-4o', {} as never]]) } };
    const refused = fallbackRouting(priceless, priced, runtime.config.routes[0].rules[0].backends[1]);
    expect(refused.kind).toBe('reject');
    if (refused.kind === 'reject') {
      expect(refused.error.status).toBe(400);
      expect(refused.error.message).toMatch(/fallback backend "claude" serves `claude-sonnet-4-5`, which has no price/);
    }
  });
});
