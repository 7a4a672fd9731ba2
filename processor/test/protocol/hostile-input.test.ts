/**
 * Bounds on what clients and upstreams control, through real gRPC: nesting depth, header bytes, inflated size,
 * bytes after the end of compressed data, and messages after the exchange was answered.
 */
import * as zlib from 'node:zlib';
import { MAX_INFLATED_BYTES } from '../../src/encoding';
import { MAX_JSON_DEPTH } from '../../src/extproc/json-body';
import { MAX_REQUEST_HEADER_BYTES } from '../../src/extproc/request-route';
import { openAIBackend, route, startTestProcessor, testConfig, type TestProcessor } from '../support/processor-harness';
import { headerMap } from '../support/envoy-client';

const USAGE_JSON = '{"id":"x","usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}}';

function nested(depth: number): string {
  return (
    `{"model":"gpt-4o","messages":[{"role":"user","content":` +
    `"hi"}],"metadata":${'['.repeat(depth)}${']'.repeat(depth)}}`
  );
}

describe('bounds on hostile input', () => {
  let processor: TestProcessor;
  beforeAll(async () => {
    processor = await startTestProcessor(
      testConfig({
        backends: [openAIBackend('openai')],
        routes: [
          route(['gpt-4o'], [{ backend: 'openai', weight: 1, priority: 0 }]),
          route(['gpt-4o'], [{ backend: 'openai', weight: 1, priority: 0 }], {
            name: 'default/anthropic',
            endpoints: [{ api: 'Anthropic', pathPrefix: '/anthropic/v1' }],
          }),
        ],
      }),
    );
  });
  afterAll(() => processor.close());

  const neverUpstream = () => {
    throw new Error('must not reach the backend');
  };

  it.each([
    ['OpenAI passthrough', '/v1/chat/completions'],
    ['Anthropic client translated to OpenAI', '/anthropic/v1/messages'],
  ])('a body nested 20,000 deep is a 400 in the client schema, not a 500 (%s)', async (_name, path) => {
    const body = nested(20_000).replace(
      '"messages":[{"role":"user","content":"hi"}]',
      '"max_tokens":5,"messages":[{"role":"user","content":"hi"}]',
    );
    const result = await processor.client.exchange({ path, body }, neverUpstream);
    expect(result.status).toBe(400);
    const error = JSON.parse(result.body.toString());
    if (path.startsWith('/anthropic'))
      expect(error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    else expect(error.error).toMatchObject({ code: 'invalid_json' });
    expect(result.body.toString()).toContain(`deeper than ${MAX_JSON_DEPTH} levels`);
  });

  it('nesting up to the limit is accepted and forwarded', async () => {
    // The top-level object is depth 1, so MAX_JSON_DEPTH - 1 arrays inside it reach the limit exactly.
    const body = nested(MAX_JSON_DEPTH - 1);
    const result = await processor.client.exchange({ path: '/v1/chat/completions', body }, (req) => {
      expect(req.body.toString()).toBe(body);
      return { status: 200, headers: { 'content-type': 'application/json' }, body: USAGE_JSON };
    });
    expect(result.status).toBe(200);
    const over = await processor.client.exchange(
      { path: '/v1/chat/completions', body: nested(MAX_JSON_DEPTH) },
      neverUpstream,
    );
    expect(over.status).toBe(400);
  });

  it('brackets inside strings do not count as nesting', async () => {
    const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: '['.repeat(10_000) + '"\\' }] });
    const result = await processor.client.exchange({ path: '/v1/chat/completions', body }, () => ({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: USAGE_JSON,
    }));
    expect(result.status).toBe(200);
  });

  it('request headers beyond the byte bound are a 431', async () => {
    const result = await processor.client.exchange(
      {
        path: '/v1/chat/completions',
        body: '{"model":"gpt-4o"}',
        headers: { 'x-padding': 'p'.repeat(MAX_REQUEST_HEADER_BYTES) },
      },
      neverUpstream,
    );
    expect(result.status).toBe(431);
    expect(JSON.parse(result.body.toString()).error).toMatchObject({ code: 'request_headers_too_large' });
  });

  // The 512 MiB bombs, measured in a child process by the kernel's high-water mark, are in
  // test/fuzz/compression.test.ts.
  it('a gzip bomb from the upstream is answered 502 without inflating it, memory bounded', async () => {
    const bomb = zlib.gzipSync(Buffer.alloc(4 * MAX_INFLATED_BYTES, 0x20), { level: 9 });
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    try {
      const result = await processor.client.exchange(
        { path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' },
        () => ({
          status: 200,
          headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
          body: bomb,
        }),
      );
      expect(result.status).toBe(502);
      expect(JSON.parse(result.body.toString()).error).toMatchObject({ code: 'upstream_decode_error' });
      expect(result.body.toString()).toContain(`inflates beyond ${MAX_INFLATED_BYTES} bytes`);
      expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({ llm_total_token: 0 });
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(peak - before).toBeLessThan(100 * 1024 * 1024);
  }, 30_000);

  it.each([
    ['deflate', zlib.deflateSync],
    ['br', zlib.brotliCompressSync],
  ])('a %s body with bytes after its end is answered and counted', async (encoding, compress) => {
    const body = Buffer.concat([compress(Buffer.from(USAGE_JSON)), Buffer.from('trailing bytes after the end')]);
    const result = await processor.client.exchange(
      { path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' },
      () => ({
        status: 200,
        headers: { 'content-type': 'application/json', 'content-encoding': encoding },
        body,
      }),
    );
    expect(result.status).toBe(200);
    expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({
      llm_input_token: 5,
      llm_output_token: 6,
      llm_total_token: 11,
    });
  });

  it('a body that is not valid in its declared encoding is a 502, not a hang', async () => {
    const result = await processor.client.exchange(
      { path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' },
      () => ({
        status: 200,
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: Buffer.from('definitely not gzip'),
      }),
    );
    expect(result.status).toBe(502);
    expect(JSON.parse(result.body.toString()).error).toMatchObject({ code: 'upstream_decode_error' });
  });

  it('after a 413 further body messages pass unchanged instead of each getting another 413', async () => {
    const stream = processor.client.openStream();
    stream.send({ requestHeaders: { headers: headerMap({ ':method': 'POST', ':path': '/v1/chat/completions' }) } });
    expect((await stream.next()).kind).toBe('requestHeaders');
    stream.send({ requestBody: { body: Buffer.alloc(1024 * 1024 + 1, 0x20), endOfStream: false } });
    const first = await stream.next();
    expect(first.kind).toBe('immediateResponse');
    expect((first.message.immediateResponse as { status: { code: number } }).status.code).toBe(413);
    stream.send({ requestBody: { body: Buffer.from('more'), endOfStream: false } });
    stream.send({ requestBody: { body: Buffer.from('and the end'), endOfStream: true } });
    expect((await stream.next()).kind).toBe('requestBody');
    expect((await stream.next()).kind).toBe('requestBody');
    stream.end();
  });

  it('messages out of protocol order are each answered once, with a neutral answer', async () => {
    const stream = processor.client.openStream();
    stream.send({ responseBody: { body: Buffer.from('x'), endOfStream: false } });
    stream.send({ responseHeaders: { headers: headerMap({ ':status': '200' }) } });
    stream.send({ requestBody: { body: Buffer.from('{"model":"gpt-4o"}'), endOfStream: true } });
    stream.send({ requestTrailers: { trailers: headerMap({ a: '1' }) } });
    const kinds = [];
    for (let i = 0; i < 4; i++) kinds.push((await stream.next()).kind);
    expect(kinds).toEqual(['responseBody', 'responseHeaders', 'requestBody', 'requestTrailers']);
    stream.end();
  });

  it.each([
    ['an OpenAI client (passthrough)', '/v1/chat/completions', '{"model":"gpt-4o","stream":true}'],
    [
      'an Anthropic client (translated from OpenAI)',
      '/anthropic/v1/messages',
      '{"model":"gpt-4o","stream":true,"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}',
    ],
  ])(
    'a 2xx in a framing the translator does not read is a 502 in the client schema, never raw bytes (%s)',
    async (_name, path, body) => {
      const eventstreamBytes = Buffer.from([0, 0, 0, 16, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 1, 2, 3, 4]);
      const result = await processor.client.exchange({ path, body }, () => ({
        status: 200,
        headers: { 'content-type': 'application/vnd.amazon.eventstream' },
        body: eventstreamBytes,
      }));
      expect(result.status).toBe(502);
      expect(result.streamed).toBe(false);
      const error = JSON.parse(result.body.toString());
      if (path.startsWith('/anthropic')) {
        expect(error).toMatchObject({
          type: 'error',
          error: { message: expect.stringContaining('application/vnd.amazon.eventstream') },
        });
      } else {
        expect(error.error).toMatchObject({ code: 'unexpected_content_type' });
      }
      expect(result.body.includes(eventstreamBytes)).toBe(false);
    },
  );

  it.each([
    ['an OpenAI client (passthrough, usage scanner)', '/v1/chat/completions', '{"model":"gpt-4o","stream":true}'],
    [
      'an Anthropic client (translated, SSE parser)',
      '/anthropic/v1/messages',
      '{"model":"gpt-4o","stream":true,"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}',
    ],
  ])(
    'a streamed gzip bomb in 16 KiB chunks (one endless line) stays bounded in memory (%s)',
    async (_name, path, body) => {
      const bomb = zlib.gzipSync(Buffer.alloc(192 * 1024 * 1024, 0x61), { level: 9 });
      const chunks: Buffer[] = [];
      for (let at = 0; at < bomb.length; at += 16 * 1024) chunks.push(bomb.subarray(at, at + 16 * 1024));
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
      try {
        const result = await processor.client.exchange({ path, body }, () => ({
          status: 200,
          headers: { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' },
          body: chunks,
        }));
        expect(result.status).toBe(200);
        expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({ llm_total_token: 0 });
      } finally {
        clearInterval(sampler);
      }
      peak = Math.max(peak, process.memoryUsage().rss);
      expect(peak - before).toBeLessThan(150 * 1024 * 1024);
    },
    60_000,
  );

  it('a response in a content encoding the gateway cannot read is a 502, not an uncounted answer', async () => {
    const result = await processor.client.exchange(
      { path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' },
      () => ({
        status: 200,
        headers: { 'content-type': 'application/json', 'content-encoding': 'zstd' },
        body: Buffer.from('(zstd bytes)'),
      }),
    );
    expect(result.status).toBe(502);
    expect(JSON.parse(result.body.toString()).error).toMatchObject({ code: 'upstream_decode_error' });
  });

  it.each([
    ['gzip, deflate, br, zstd', 'gzip, deflate, br'],
    ['zstd;q=1.0, gzip;q=0.5, *;q=0.1', 'gzip;q=0.5'],
    ['zstd', undefined],
  ])(
    'accept-encoding %j reaches the provider as %j (codings the gateway can read for usage)',
    async (sent, expected) => {
      const result = await processor.client.exchange(
        { path: '/v1/chat/completions', body: '{"model":"gpt-4o"}', headers: { 'accept-encoding': sent } },
        (req) => {
          expect(req.headers['accept-encoding']).toBe(expected);
          return { status: 200, headers: { 'content-type': 'application/json' }, body: USAGE_JSON };
        },
      );
      expect(result.status).toBe(200);
    },
  );

  it(
    'every x-ai-eg-*/x-aigw-* header a client sends is ' + 'removed before the provider (the gateway sets its own)',
    async () => {
      const headers = {
        'x-aigw-foo': '1',
        'x-ai-eg-bar': '2',
        'x-aigw-aws-region': 'us-east-1',
        'x-ai-eg-model': 'spoofed',
      };
      const result = await processor.client.exchange(
        { path: '/v1/chat/completions', body: '{"model":"gpt-4o"}', headers },
        (req) => {
          const internal = Object.keys(req.headers).filter(
            (name) => name.startsWith('x-aigw-') || name.startsWith('x-ai-eg-'),
          );
          expect(internal).toEqual(['x-ai-eg-model']);
          expect(req.headers['x-ai-eg-model']).toBe('gpt-4o');
          return { status: 200, headers: { 'content-type': 'application/json' }, body: USAGE_JSON };
        },
      );
      expect(result.status).toBe(200);
    },
  );

  it('a 405 names the allowed methods in its Allow header', async () => {
    const result = await processor.client.exchange({ path: '/v1/chat/completions', method: 'GET' }, neverUpstream);
    expect(result.status).toBe(405);
    expect(result.headers.allow).toBe('POST');
  });

  it("a 431 on an Anthropic endpoint is in Anthropic's error schema", async () => {
    const padding = { 'x-padding': 'p'.repeat(MAX_REQUEST_HEADER_BYTES) };
    const result = await processor.client.exchange(
      { path: '/anthropic/v1/messages', body: '{"model":"gpt-4o"}', headers: padding },
      neverUpstream,
    );
    expect(result.status).toBe(431);
    expect(JSON.parse(result.body.toString())).toMatchObject({ type: 'error' });
  });
});
