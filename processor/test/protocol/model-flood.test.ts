/**
 * Client-chosen model names under prefix and regex rules: 50,000 distinct names through the real session leave
 * the metrics, the per-snapshot caches and the heap bounded (issue 11: /metrics was 198 MB at 10,000 names).
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import type { OutgoingResponse, ProcessingRequest } from '../../src/grpc/messages';
import { openAIBackend, route, startTestProcessor, testConfig, type TestProcessor } from '../support/processor-harness';
import { headerMap } from '../support/envoy-client';

const NAMES = 50_000;

/** `global.gc` when jest runs without --expose-gc. */
function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

describe('a flood of distinct client-chosen model names', () => {
  let processor: TestProcessor;
  beforeAll(async () => {
    processor = await startTestProcessor(
      testConfig({
        backends: [openAIBackend('openai'), openAIBackend('vllm')],
        routes: [
          route(['gpt-4o'], [{ backend: 'openai', weight: 1, priority: 0 }], {
            name: 'team/chat',
            rules: [
              {
                models: [{ type: 'Exact', value: 'gpt-4o' }],
                backends: [{ backend: 'openai', weight: 1, priority: 0 }],
              },
              {
                models: [{ type: 'Prefix', value: 'gpt-' }],
                backends: [{ backend: 'openai', weight: 1, priority: 0 }],
              },
              {
                models: [{ type: 'RegularExpression', value: 'llama-[0-9]+-.*' }],
                backends: [{ backend: 'vllm', weight: 1, priority: 0 }],
              },
            ],
          }),
        ],
      }),
    );
  });
  afterAll(() => processor.close());

  /** One buffered exchange, in-process (no gRPC): request headers, body, a 200 with usage, close. */
  function exchange(model: string): void {
    const sent: OutgoingResponse[] = [];
    const session = processor.app.processor.open((response) => sent.push(response));
    const body = Buffer.from(JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }));
    const messages: ProcessingRequest[] = [
      {
        request: 'requestHeaders',
        requestHeaders: {
          headers: headerMap({
            ':method': 'POST',
            ':path': '/v1/chat/completions',
            ':authority': 'gw',
            'content-length': String(body.length),
          }),
          endOfStream: false,
        },
      },
      { request: 'requestBody', requestBody: { body, endOfStream: true } },
      {
        request: 'responseHeaders',
        responseHeaders: {
          headers: headerMap({ ':status': '200', 'content-type': 'application/json' }),
          endOfStream: false,
        },
      },
      {
        request: 'responseBody',
        responseBody: {
          body: Buffer.from('{"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}'),
          endOfStream: true,
        },
      },
    ];
    for (const message of messages) session.message(message);
    void session.close(false);
    if (sent.length !== 4) throw new Error(`expected 4 answers for ${model}, got ${sent.length}`);
  }

  it(
    '50,000 distinct names: /metrics under 1 MB labelled by the configured matches, caches ' +
      'bounded by bytes, heap growth under 10 MB',
    async () => {
      const gc = collector();
      // Warm up: code paths compiled, the caches at their working size.
      for (let i = 0; i < 5000; i++) exchange(i % 2 ? `gpt-warm-${i}` : `llama-3-warm-${i}`);
      gc();
      const before = process.memoryUsage().heapUsed;

      for (let i = 0; i < NAMES; i++) {
        // Long-ish names (about 200 bytes): the flood's cost must not scale with what the client sends.
        const suffix = `${i}-${'x'.repeat(180)}`;
        exchange(i % 2 ? `gpt-${suffix}` : `llama-3-${suffix}`);
      }
      exchange('gpt-4o');

      gc();
      const growth = process.memoryUsage().heapUsed - before;
      expect(growth).toBeLessThan(10 * 1024 * 1024);

      const runtime = processor.app.processor.runtime();
      expect(runtime.requestAnswers.bytes).toBeLessThanOrEqual(1024 * 1024);
      expect(runtime.headerOptions.bytes).toBeLessThanOrEqual(512 * 1024);
      expect(runtime.usageMetadata.cachedBytes).toBeLessThanOrEqual(512 * 1024);

      const text = await processor.app.metrics.registry.metrics();
      expect(Buffer.byteLength(text)).toBeLessThan(1024 * 1024);
      const models = new Set<string>();
      for (const match of text.matchAll(/gen_ai_request_model="([^"]*)"/g)) models.add(match[1]);
      // The configured matches, never the client's names: the exact model, the prefix, the pattern.
      expect([...models].sort()).toEqual(['gpt-*', 'gpt-4o', 'llama-[0-9]+-.*']);
      expect(text).toMatch(
        /gen_ai_client_token_usage_count\{gen_ai_token_type="input",gen_ai_operation_name="chat",gen_ai_request_model="gpt-\*",gen_ai_provider_name="openai"\} 27500/,
      );
    },
    120_000,
  );
});
