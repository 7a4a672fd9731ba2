/**
 * Failing over through the processor's real HTTP egress (a development upstream override to a local server): the
 * attempt's request as the backend sees it, an event stream relayed as it arrives, a compressed answer, a backend
 * that cannot be reached, and a client that goes away while the attempt streams.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as zlib from 'node:zlib';
import { duplexExchange, type DuplexUpstream } from '../support/duplex-envoy';
import { startFakeProvider, writeSseEvents, type FakeProvider, type ProviderHandler } from '../support/fake-provider';
import { openAIBackend, route, startTestProcessor, testConfig, type TestProcessor } from '../support/processor-harness';

const TOKENS = 'io.envoy.ai_gateway';
const UNAVAILABLE: DuplexUpstream = { status: 503, headers: { 'x-primary': 'yes' }, chunks: ['busy'] };

function sse(prompt: number, completion: number): string {
  const chunk = (content: string) => {
    const event = { id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content } }] };
    return `data: ${JSON.stringify(event)}\n\n`;
  };
  const usage = `data: ${JSON.stringify({
    id: 'c1',
    object: 'chat.completion.chunk',
    choices: [],
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
  })}\n\n`;
  return chunk('over ') + chunk('http') + usage + 'data: [DONE]\n\n';
}

const completion = JSON.stringify({
  id: 'c1',
  object: 'chat.completion',
  choices: [{ index: 0, message: { role: 'assistant', content: 'gzipped' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 },
});

describe('fallback attempts over HTTP', () => {
  let provider: FakeProvider;
  let handler: ProviderHandler = (_request, res) => {
    res.writeHead(500).end();
  };
  let closedPort: number;
  let processor: TestProcessor;

  beforeAll(async () => {
    provider = await startFakeProvider((request, res) => handler(request, res));
    // A port nothing listens on (bound, then closed).
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    closedPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const config = testConfig({
      backends: [openAIBackend('first'), openAIBackend('second'), openAIBackend('gone')],
      routes: [
        route(
          ['gpt-4o'],
          [
            { backend: 'first', weight: 1, priority: 0 },
            { backend: 'second', weight: 1, priority: 1 },
          ],
        ),
        route(
          ['unreachable'],
          [
            { backend: 'first', weight: 1, priority: 0 },
            { backend: 'gone', weight: 1, priority: 1 },
          ],
          { name: 'default/unreachable' },
        ),
      ],
      circuitBreaker: { failureThreshold: 1_000_000, openDurationMs: 1000 },
    });
    for (const served of config.routes) {
      served.rules[0].fallback = {
        statuses: [503],
        connectionFailures: true,
        timeouts: true,
        maxAttempts: 2,
        attemptTimeoutMs: 3000,
      };
    }
    processor = await startTestProcessor(config, {
      egressOptions: {
        devUpstreams: new Map([
          ['second', new URL(`http://127.0.0.1:${provider.port}`)],
          ['gone', new URL(`http://127.0.0.1:${closedPort}`)],
        ]),
      },
    });
  });
  afterAll(async () => {
    await processor.close();
    await provider.close();
  });

  it('relays an event stream from the fallback backend as it arrives', async () => {
    handler = (_request, res) => void writeSseEvents(res, sse(5, 2));
    const before = provider.requests.length;
    const result = await duplexExchange(
      processor.client,
      {
        path: '/v1/chat/completions',
        body: JSON.stringify({ model: 'gpt-4o', stream: true, stream_options: { include_usage: true } }),
      },
      () => UNAVAILABLE,
    );
    expect(result.status).toBe(200);
    expect(result.headers['x-primary']).toBeUndefined();
    expect(result.body.toString()).toBe(sse(5, 2));
    expect(result.metadata[TOKENS]).toMatchObject({ llm_input_token: 5, llm_output_token: 2 });
    const seen = provider.requests[before];
    expect(seen).toMatchObject({ method: 'POST', path: '/v1/chat/completions' });
    expect(seen.headers.host).toBe('second.example.com');
    expect(JSON.parse(seen.body.toString()).model).toBe('gpt-4o');
  });

  it('forwards a compressed answer it passes through and counts it decoded', async () => {
    handler = (_request, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(zlib.gzipSync(completion));
    };
    const result = await duplexExchange(
      processor.client,
      { path: '/v1/chat/completions', body: JSON.stringify({ model: 'gpt-4o' }) },
      () => UNAVAILABLE,
    );
    expect(result.status).toBe(200);
    expect(result.headers['content-encoding']).toBe('gzip');
    expect(zlib.gunzipSync(result.body).toString()).toBe(completion);
    expect(result.metadata[TOKENS]).toMatchObject({ llm_total_token: 7 });
  });

  it('answers a 502 naming the fallback backend it could not reach', async () => {
    const result = await duplexExchange(
      processor.client,
      { path: '/v1/chat/completions', body: JSON.stringify({ model: 'unreachable' }) },
      () => UNAVAILABLE,
    );
    expect(result.status).toBe(502);
    expect(JSON.parse(result.body.toString()).error).toMatchObject({
      code: 'upstream_connect_error',
      message: expect.stringContaining('"gone"'),
    });
  });

  it('closes the attempt when the client goes away while it streams', async () => {
    let closed: () => void = () => undefined;
    const attemptClosed = new Promise<void>((resolve) => (closed = resolve));
    handler = (_request, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"index":0,"delta":{"content":"never ends"}}]}\n\n');
      res.on('close', () => closed());
    };
    const result = await duplexExchange(
      processor.client,
      { path: '/v1/chat/completions', body: JSON.stringify({ model: 'gpt-4o', stream: true }) },
      () => UNAVAILABLE,
      { cancelAfterMs: 150 },
    );
    expect(result.cancelled).toBe(true);
    const outcome = await Promise.race([
      attemptClosed.then(() => 'closed'),
      new Promise((resolve) => setTimeout(() => resolve('open'), 2000)),
    ]);
    expect(outcome).toBe('closed');
  });
});
