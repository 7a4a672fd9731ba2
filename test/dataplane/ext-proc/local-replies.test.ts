/**
 * End to end through the local data plane and the real processor: the synthesized EnvoyExtensionPolicy asks for
 * `response.code_details`, so the processor sees a backend's answer (`via_upstream`) and translates it, and sees
 * the rate-limit filter's 429 (`request_rate_limited`) as Envoy's own reply: passed on untranslated, not held
 * against the backend, no tokens charged.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Chart, Testing } from 'cdk8s';
import {
  AIGateway,
  AIRoute,
  Credentials,
  ModelMatch,
  ModelScope,
  ProviderBackend,
  RateLimitRedis,
  RateLimitUnit,
  TokenRateLimit,
} from '../../../lib';
import type { KubeObject } from '../../../lib/dataplane/model';
import { startDataPlane, type RunningDataPlane } from '../../../lib/dataplane/server';
import { translate } from '../../../lib/dataplane/translate';
import { ProcessorApp } from '../../../processor/src/app';
import { silentLogger } from '../../../processor/src/log';

const BUDGET_TOKENS = 10;
const USAGE = { prompt_tokens: 8, completion_tokens: 7, total_tokens: 15 };

function manifests(): KubeObject[] {
  const chart = new Chart(Testing.app(), 'local-replies', { namespace: 'ai' });
  // Budgets need a RateLimitRedis in the app; an external one emits no objects.
  RateLimitRedis.external(chart, 'Redis', { url: 'redis.example:6379' });
  const gateway = new AIGateway(chart, 'Gateway', { name: 'gw' });
  const openai = ProviderBackend.openAI(chart, 'OpenAI', {
    name: 'openai',
    credentials: Credentials.apiKey({ secretName: 'openai', key: 'apiKey' }),
  });
  const unreachable = ProviderBackend.openAI(chart, 'Unreachable', {
    name: 'unreachable',
    credentials: Credentials.apiKey({ secretName: 'openai', key: 'apiKey' }),
  });
  const route = new AIRoute(chart, 'Chat', {
    name: 'chat',
    gateway,
    anthropicPathPrefix: '/anthropic/v1',
    rules: [
      { models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] },
      { models: [ModelMatch.exact('gpt-4o-mini')], backends: [{ backend: unreachable }] },
    ],
  });
  new TokenRateLimit(chart, 'Budget', {
    target: route,
    limit: BUDGET_TOKENS,
    per: RateLimitUnit.HOUR,
    models: ModelScope.only('gpt-4o'),
  });
  return Testing.synth(chart) as KubeObject[];
}

function post(
  address: string,
  pathname: string,
  body: unknown,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const url = new URL(address);
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: pathname,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

describe('Envoy local replies through the data plane and the real processor', () => {
  let dir: string;
  let processor: ProcessorApp;
  let upstream: http.Server;
  let upstreamCalls = 0;
  let dataPlane: RunningDataPlane;
  let address: string;
  let backendName: string;
  let unreachableName: string;

  beforeAll(async () => {
    const objects = manifests();
    const [deployment] = translate(objects).processors;
    const backends = (JSON.parse(deployment.configJson) as { backends: { name: string }[] }).backends.map(
      (backend) => backend.name,
    );
    backendName = backends.find((name) => name.startsWith('openai.'))!;
    unreachableName = backends.find((name) => name.startsWith('unreachable.'))!;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ext-proc-local-replies-'));
    fs.writeFileSync(path.join(dir, 'config.json'), deployment.configJson);
    fs.mkdirSync(path.join(dir, 'secrets', 'openai'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'secrets', 'openai', 'apiKey'), 'sk-test');
    processor = new ProcessorApp({
      config: path.join(dir, 'config.json'),
      secretsDir: path.join(dir, 'secrets'),
      listen: '127.0.0.1:0',
      admin: undefined,
      pollIntervalMs: 60_000,
      logger: silentLogger,
    });
    await processor.start();

    upstream = http.createServer((req, res) => {
      upstreamCalls += 1;
      req.resume();
      req.on('end', () => {
        const answer = JSON.stringify({
          id: 'chatcmpl-1',
          object: 'chat.completion',
          created: 1,
          model: 'gpt-4o',
          choices: [{ index: 0, message: { role: 'assistant', content: 'Hello' }, finish_reason: 'stop' }],
          usage: USAGE,
        });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
        res.end(answer);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const upstreamPort = (upstream.address() as { port: number }).port;
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    dataPlane = await startDataPlane({
      objects,
      backendOverrides: {
        'ai/openai': `http://127.0.0.1:${upstreamPort}`,
        'ai/unreachable': `http://127.0.0.1:${closedPort}`,
      },
      services: (namespace, name, port) =>
        namespace === deployment.namespace && name === deployment.serviceName && port === deployment.servicePort
          ? `127.0.0.1:${processor.listenPort}`
          : undefined,
    });
    address = dataPlane.address('ai', 'gw', 80);
  });

  afterAll(async () => {
    await dataPlane?.close();
    await new Promise<void>((resolve) => upstream?.close(() => resolve()));
    await processor?.drain(1000);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Observations of the processor's request-duration histogram for a backend. */
  async function backendObservations(name = backendName): Promise<number> {
    const text = await processor.metrics.registry.metrics();
    return text
      .split('\n')
      .filter(
        (line) =>
          line.startsWith('gen_ai_server_request_duration_seconds_count{') &&
          line.includes(`gen_ai_provider_name="${name}"`),
      )
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  }

  it('translates the backend answer, then answers the rate-limit 429 as a budget error in its schema', async () => {
    const request = { model: 'gpt-4o', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] };
    const answered = await post(address, '/anthropic/v1/messages', request);
    expect(answered.status).toBe(200);
    // The OpenAI answer reached the Anthropic client in Anthropic's shape.
    expect(JSON.parse(answered.body)).toMatchObject({
      type: 'message',
      role: 'assistant',
      usage: { input_tokens: 8, output_tokens: 7 },
    });
    expect(upstreamCalls).toBe(1);
    expect(await backendObservations()).toBe(1);

    // 15 tokens were charged against a budget of 10 when the stream ended: the next request is over the limit.
    let limited = await post(address, '/anthropic/v1/messages', request);
    for (let attempt = 0; limited.status === 200 && attempt < 20; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      limited = await post(address, '/anthropic/v1/messages', request);
    }
    expect(limited.status).toBe(429);
    // Envoy's bodiless reply, which the processor recognizes as a budget rejection (code details
    // `request_rate_limited`) and answers in the client's schema, naming the budget; not a translated backend error.
    expect(JSON.parse(limited.body)).toEqual({
      type: 'error',
      error: { type: 'rate_limit_error', message: expect.stringMatching(/^budget "local-replies\/Budget" is used up/) },
    });
    expect(upstreamCalls).toBe(1);
    // Not the backend's failure, not the backend's response.
    expect(processor.processor.breakers.isOpen(backendName, { failureThreshold: 1, openDurationMs: 1 })).toBe(false);
    expect(await backendObservations()).toBe(1);
  });

  it(
    "an unreachable backend (503 UF): Envoy's reply passes untranslated, and it is the " + "backend's failure",
    async () => {
      const result = await post(address, '/anthropic/v1/messages', {
        model: 'gpt-4o-mini',
        max_tokens: 16,
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(result.status).toBe(503);
      expect(result.headers['content-type']).toBe('text/plain');
      expect(result.body).toMatch(/^upstream connect error or disconnect\/reset before headers/);
      expect(processor.processor.breakers.isOpen(unreachableName, { failureThreshold: 1, openDurationMs: 1 })).toBe(
        true,
      );
      expect(await backendObservations(unreachableName)).toBe(1);
    },
  );
});
