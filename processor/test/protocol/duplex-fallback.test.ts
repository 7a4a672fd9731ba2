/**
 * Failing over within one request (FULL_DUPLEX_STREAMED mode, a rule with `fallback`): the processor sends the
 * request to the next priority itself (a fake Egress here) and its answer replaces the primary's.
 */
import type { BackendConfig, ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import { AttemptFailure, type AttemptResponse } from '../../src/fallback';
import { FakeEgress } from '../support/fake-egress';
import { duplexExchange, type DuplexOptions, type DuplexUpstream } from '../support/duplex-envoy';
import { openAIBackend, route, startTestProcessor, testConfig, type TestProcessor } from '../support/processor-harness';

const ENDPOINTS = [
  { api: 'OpenAI' as const, pathPrefix: '/v1' },
  { api: 'Anthropic' as const, pathPrefix: '/anthropic/v1' },
];
const TOKENS = 'io.envoy.ai_gateway';
const FALLBACK = { statuses: [500, 503], connectionFailures: true, timeouts: true, attemptTimeoutMs: 2000 };

const ANTHROPIC: BackendConfig = {
  name: 'claude',
  schema: { name: 'Anthropic', version: '2023-06-01' },
  endpoint: { hostname: 'api.anthropic.test', port: 443, tls: true },
};

const anthropicMessage = (input: number, output: number) =>
  JSON.stringify({
    id: 'msg_1',
    type: 'message',
    role: 'assistant',
    model: 'claude-x',
    content: [{ type: 'text', text: 'from the fallback' }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: input, output_tokens: output },
  });

function openAIStream(prompt: number, completion: number): string[] {
  const chunk = (content: string) =>
    `data: ${JSON.stringify({
      id: 'c1',
      object: 'chat.completion.chunk',
      model: 'gpt-4o',
      choices: [{ index: 0, delta: { content }, finish_reason: null }],
    })}\n\n`;
  const usage = `data: ${JSON.stringify({
    id: 'c1',
    object: 'chat.completion.chunk',
    model: 'gpt-4o',
    choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
  })}\n\n`;
  return [chunk('fall'), chunk('back'), usage, 'data: [DONE]\n\n'];
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function* body(parts: string[], gapMs = 0): AsyncGenerator<Buffer> {
  for (const part of parts) {
    if (gapMs) await delay(gapMs);
    yield Buffer.from(part);
  }
}

const json = (status: number, text: string): AttemptResponse => ({
  status,
  headers: { 'content-type': 'application/json', 'x-fallback': 'yes' },
  body: body([text]),
});

function config(): ProcessorConfig {
  const base = testConfig({
    backends: [
      openAIBackend('primary'),
      ANTHROPIC,
      openAIBackend('third'),
      // Its key's Secret is missing: every attempt to it is a credential failure.
      openAIBackend('locked', { auth: { type: 'APIKey', secret: { secretName: 'missing', key: 'apiKey' } } }),
    ],
    routes: [
      route(
        ['gpt-4o'],
        [
          { backend: 'primary', weight: 1, priority: 0 },
          { backend: 'claude', weight: 1, priority: 1, modelNameOverride: 'claude-x' },
          { backend: 'third', weight: 1, priority: 2 },
        ],
        { endpoints: ENDPOINTS },
      ),
      route(
        ['two'],
        [
          { backend: 'primary', weight: 1, priority: 0 },
          { backend: 'claude', weight: 1, priority: 1, modelNameOverride: 'claude-x' },
        ],
        { name: 'default/two', endpoints: ENDPOINTS },
      ),
      route(
        ['locked-next'],
        [
          { backend: 'primary', weight: 1, priority: 0 },
          { backend: 'locked', weight: 1, priority: 1 },
          { backend: 'third', weight: 1, priority: 2 },
        ],
        { name: 'default/locked', endpoints: ENDPOINTS },
      ),
    ],
    circuitBreaker: { failureThreshold: 1_000_000, openDurationMs: 1000 },
  });
  base.routes[0].rules[0].fallback = { ...FALLBACK, maxAttempts: 3 };
  base.routes[1].rules[0].fallback = { ...FALLBACK, maxAttempts: 2 };
  base.routes[2].rules[0].fallback = { ...FALLBACK, maxAttempts: 3 };
  return base;
}

const chat = (model: string, extra: Record<string, unknown> = {}) => ({
  path: '/v1/chat/completions',
  body: JSON.stringify({ model, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }], ...extra }),
});
const messages = (model: string) => ({
  path: '/anthropic/v1/messages',
  body: JSON.stringify({ model, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
});

const UNAVAILABLE: DuplexUpstream = {
  status: 503,
  headers: { 'content-type': 'application/json', 'x-primary': 'yes', 'retry-after': '3' },
  chunks: ['{"error":{"message":"overloaded"}}'],
};

describe('fallback within one request (FULL_DUPLEX_STREAMED)', () => {
  let processor: TestProcessor;
  let egress: FakeEgress;
  beforeAll(async () => {
    egress = new FakeEgress();
    processor = await startTestProcessor(config(), { egress });
  });
  afterAll(() => processor.close());
  beforeEach(() => {
    egress.calls.length = 0;
    egress.handlers = new Map();
  });

  const exchange = (request: { path: string; body: string }, reply: DuplexUpstream, options?: DuplexOptions) =>
    duplexExchange(processor.client, request, () => reply, options);

  async function fallbacks(labels: Record<string, string>): Promise<number> {
    const text = await processor.app.metrics.registry.metrics();
    for (const line of text.split('\n')) {
      if (!line.startsWith('ai_gateway_fallbacks_total{')) continue;
      if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
        return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return 0;
  }

  it("answers a 503 with the next priority's translated answer in place of the primary's", async () => {
    egress.handlers.set('claude', () => json(200, anthropicMessage(11, 4)));
    const before = await fallbacks({ from_backend: 'primary', to_backend: 'claude', reason: 'status' });
    // Envoy's chunk of the primary arrives after the fallback answered: no body answer may come before it.
    const result = await exchange(chat('gpt-4o'), { ...UNAVAILABLE, chunkDelayMs: 50 });
    expect(result.immediate).toBe(false);
    expect(result.status).toBe(200);
    expect(result.headers['x-primary']).toBeUndefined();
    expect(result.headers['retry-after']).toBeUndefined();
    expect(result.headers['x-fallback']).toBe('yes');
    expect(result.headers['content-type']).toBe('application/json');
    const answer = JSON.parse(result.body.toString());
    expect(answer).toMatchObject({
      object: 'chat.completion',
      choices: [{ message: { content: 'from the fallback' } }],
    });
    expect(result.metadata[TOKENS]).toMatchObject({ llm_input_token: 11, llm_output_token: 4, llm_total_token: 15 });
    expect(egress.calls).toHaveLength(1);
    const sent = egress.calls[0];
    expect(sent.request).toMatchObject({ backend: 'claude', method: 'POST', path: '/v1/messages' });
    expect(JSON.parse(sent.request.body.toString()).model).toBe('claude-x');
    expect(sent.timeoutMs).toBe(2000);
    expect(await fallbacks({ from_backend: 'primary', to_backend: 'claude', reason: 'status' })).toBe(before + 1);
  });

  it('streams an event stream from the fallback chunk by chunk, usage of that answer only', async () => {
    egress.handlers.set('claude', () => json(503, '{"type":"error","error":{"type":"overloaded_error"}}'));
    egress.handlers.set('third', () => ({
      status: 200,
      headers: { 'content-type': 'text/event-stream' },
      body: body(openAIStream(5, 2), 5),
    }));
    const result = await exchange(chat('gpt-4o', { stream: true, stream_options: { include_usage: true } }), {
      ...UNAVAILABLE,
      chunks: ['{"error":', '{"message":"overloaded"}}'],
    });
    expect(result.status).toBe(200);
    expect(result.headers['content-type']).toBe('text/event-stream');
    expect(result.body.toString()).toBe(openAIStream(5, 2).join(''));
    expect(result.chunks.length).toBeGreaterThan(1);
    expect(result.metadata[TOKENS]).toMatchObject({ llm_input_token: 5, llm_output_token: 2, llm_total_token: 7 });
    // No write carried other numbers than the answering attempt's (the failed ones charge nothing).
    for (const written of result.metadataWrites)
      expect([0, 7]).toContain((written[TOKENS] as { llm_total_token: number }).llm_total_token);
    expect(egress.calls.map((call) => call.request.backend)).toEqual(['claude', 'third']);
    expect(await fallbacks({ from_backend: 'claude', to_backend: 'third', reason: 'status' })).toBeGreaterThan(0);
  });

  it('moves past a fallback backend whose credential cannot be had', async () => {
    egress.handlers.set('third', () => json(200, '{"id":"c1","object":"chat.completion","choices":[]}'));
    const result = await exchange(chat('locked-next'), UNAVAILABLE);
    expect(result.status).toBe(200);
    expect(result.headers['x-fallback']).toBe('yes');
    // The locked backend never got a request (nothing could sign it); the next priority answered.
    expect(egress.calls.map((call) => call.request.backend)).toEqual(['third']);
    expect(await fallbacks({ from_backend: 'locked', to_backend: 'third', reason: 'credential' })).toBe(1);
  });

  it('resets the client response when a streamed fallback answer breaks off after it began', async () => {
    egress.handlers.set('claude', () => json(503, '{"type":"error","error":{"type":"overloaded_error"}}'));
    egress.handlers.set('third', () => ({
      status: 200,
      headers: { 'content-type': 'text/event-stream' },
      body: (async function* () {
        yield Buffer.from(openAIStream(5, 2)[0]);
        await delay(5);
        throw new AttemptFailure('connection_failure', 'backend "third" cut its answer short');
      })(),
    }));
    const result = await exchange(
      chat('gpt-4o', { stream: true }),
      { ...UNAVAILABLE, chunks: ['{"error":', '{"message":"overloaded"}}'] },
      { expectReset: true },
    );
    expect(result.status).toBe(200);
    // The part that came went out, and never with an end of stream: half an answer is not passed off as whole.
    expect(result.body.toString()).toBe(openAIStream(5, 2)[0]);
    expect(result.reset).toBe(true);
    const ends = result.answers.filter(
      (answer) =>
        (
          answer.message.responseBody as {
            response?: { bodyMutation?: { streamedResponse?: { endOfStream?: boolean } } };
          }
        )?.response?.bodyMutation?.streamedResponse?.endOfStream === true,
    );
    expect(ends).toEqual([]);
  });

  it('answers a 504 naming the backend when the answering attempt runs past its deadline mid-body', async () => {
    egress.handlers.set('claude', () => ({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: (async function* () {
        yield Buffer.from('{"id":"msg_1",');
        throw new AttemptFailure('timeout', 'backend "claude" did not answer within 2000 ms');
      })(),
    }));
    const result = await exchange(chat('two'), UNAVAILABLE);
    expect(result.status).toBe(504);
    expect(JSON.parse(result.body.toString()).error).toMatchObject({
      code: 'upstream_timeout',
      message: expect.stringContaining('"claude"'),
    });
    const text = await processor.app.metrics.registry.metrics();
    const failed = text
      .split('\n')
      .filter((line) => line.startsWith('gen_ai_server_request_duration_seconds_count{'))
      .filter((line) => line.includes('gen_ai_request_model="two"'));
    expect(failed.some((line) => line.includes('gen_ai_provider_name="primary"') && line.includes('failed_over'))).toBe(
      true,
    );
    expect(failed.some((line) => line.includes('gen_ai_provider_name="claude"') && line.includes('timeout'))).toBe(
      true,
    );
  });

  it("fails over from Envoy's connection-failure reply", async () => {
    egress.handlers.set('claude', () => json(200, anthropicMessage(2, 1)));
    const result = await exchange(chat('gpt-4o'), {
      status: 503,
      headers: { 'content-type': 'text/plain' },
      chunks: ['upstream connect error or disconnect/reset before headers'],
      codeDetails: 'upstream_reset_before_response_started{remote_connection_failure}',
    });
    expect(result.status).toBe(200);
    expect(JSON.parse(result.body.toString()).choices[0].message.content).toBe('from the fallback');
    expect(await fallbacks({ from_backend: 'primary', reason: 'connection_failure' })).toBeGreaterThan(0);
  });

  it('replaces a headers-only primary with an immediate response carrying the fallback answer', async () => {
    egress.handlers.set('claude', () => json(200, anthropicMessage(1, 1)));
    const result = await exchange(chat('gpt-4o'), { status: 503, headers: { 'x-primary': 'yes' } });
    expect(result.immediate).toBe(true);
    expect(result.status).toBe(200);
    expect(result.headers['x-primary']).toBeUndefined();
    expect(JSON.parse(result.body.toString()).choices[0].message.content).toBe('from the fallback');
    expect(result.metadata[TOKENS]).toMatchObject({ llm_total_token: 2 });
  });

  it("never fails over from a budget's 429", async () => {
    const result = await exchange(chat('gpt-4o'), {
      status: 429,
      headers: { 'x-ratelimit-limit': '10, 10;w=60', 'x-ratelimit-remaining': '0' },
      chunks: ['limited'],
      codeDetails: 'request_rate_limited',
    });
    expect(result.status).toBe(429);
    expect(JSON.parse(result.body.toString()).error).toMatchObject({ code: 'budget_exceeded' });
    expect(egress.calls).toHaveLength(0);
  });

  it('passes a status the rule does not list unchanged', async () => {
    const result = await exchange(chat('gpt-4o'), { status: 400, chunks: ['{"error":{"message":"bad"}}'] });
    expect(result.status).toBe(400);
    expect(egress.calls).toHaveLength(0);
  });

  it('answers the last error when every attempt fails: a gateway error naming the backend, in its schema', async () => {
    egress.handlers.set('claude', () => json(503, '{"type":"error","error":{"type":"overloaded_error"}}'));
    egress.handlers.set('third', () => {
      throw new AttemptFailure('connection_failure', 'backend "third" could not be reached (ECONNREFUSED)');
    });
    const openai = await exchange(chat('gpt-4o'), UNAVAILABLE);
    expect(openai.status).toBe(502);
    expect(openai.headers['x-primary']).toBeUndefined();
    expect(JSON.parse(openai.body.toString()).error).toMatchObject({
      code: 'upstream_connect_error',
      message: expect.stringContaining('"third"'),
    });
    expect(openai.metadata[TOKENS]).toMatchObject({ llm_total_token: 0 });

    egress.handlers.set('third', () => {
      throw new AttemptFailure('timeout', 'backend "third" did not answer within 2000 ms');
    });
    const anthropic = await exchange(messages('gpt-4o'), UNAVAILABLE);
    expect(anthropic.status).toBe(504);
    expect(JSON.parse(anthropic.body.toString())).toMatchObject({
      type: 'error',
      error: { type: 'api_error', message: expect.stringContaining('"third"') },
    });
  });

  it("translates the last attempt's own error answer when no attempt is left", async () => {
    egress.handlers.set('claude', () =>
      json(503, JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'busy too' } })),
    );
    const result = await exchange(chat('two'), UNAVAILABLE);
    expect(result.status).toBe(503);
    const error = JSON.parse(result.body.toString()).error;
    expect(error.message).toContain('busy too');
    expect(egress.calls).toHaveLength(1);
  });

  it('aborts the attempt in flight when the client goes away', async () => {
    let aborted: () => void = () => undefined;
    const abortedPromise = new Promise<void>((resolve) => (aborted = resolve));
    egress.handlers.set(
      'claude',
      (_request, signal) =>
        new Promise<AttemptResponse>((_resolve, reject) => {
          signal.addEventListener('abort', () => {
            aborted();
            reject(signal.reason);
          });
        }),
    );
    const result = await exchange(chat('gpt-4o'), UNAVAILABLE, { cancelAfterMs: 100 });
    expect(result.cancelled).toBe(true);
    const outcome = await Promise.race([abortedPromise.then(() => 'aborted'), delay(2000).then(() => 'not')]);
    expect(outcome).toBe('aborted');
  });

  it('never fails over when Envoy does not stream the response in FULL_DUPLEX_STREAMED mode', async () => {
    egress.handlers.set('claude', () => json(200, anthropicMessage(1, 1)));
    const result = await processor.client.exchange(chat('gpt-4o'), () => ({
      status: 503,
      headers: { 'content-type': 'application/json' },
      body: '{"error":{"message":"overloaded"}}',
    }));
    expect(result.status).toBe(503);
    expect(egress.calls).toHaveLength(0);
  });
});
