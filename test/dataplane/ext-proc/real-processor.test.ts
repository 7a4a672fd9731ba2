/**
 * The ext_proc filter against the real processor (started in-process on a loopback port), with the settings our
 * constructs' EnvoyExtensionPolicy gives: an OpenAI passthrough, a streamed answer with usage, a local answer.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  createExtProcFilter,
  extProcSettingsFromPolicy,
  type ExtProcClients,
  type ExtProcSettings,
} from '../../../lib/dataplane/ext-proc';
import { ProcessorApp } from '../../../processor/src/app';
import {
  BACKEND_HEADER,
  CONFIG_VERSION,
  METADATA_NAMESPACE,
  MODEL_HEADER,
  type ProcessorConfig,
} from '@ai-gateway-constructs/processor-config';
import { silentLogger } from '../../../processor/src/log';
import { drive, fakeStream, newClients } from './support';

const CONFIG: ProcessorConfig = {
  version: CONFIG_VERSION,
  maxRequestBodyBytes: 1024 * 1024,
  backends: [
    {
      name: 'openai',
      schema: { name: 'OpenAI', pathPrefix: '/v1' },
      endpoint: { hostname: 'api.openai.example', port: 443, tls: true },
    },
  ],
  routes: [
    {
      name: 'team/chat',
      endpoints: [{ api: 'OpenAI', pathPrefix: '/v1' }],
      hostnames: [],
      rules: [
        { models: [{ type: 'Exact', value: 'gpt-4o' }], backends: [{ backend: 'openai', weight: 1, priority: 0 }] },
      ],
      requiredHeaders: [],
    },
  ],
  costs: [],
  circuitBreaker: { failureThreshold: 3, openDurationMs: 60_000 },
};

/** The extProc entry lib/processor.ts writes (see test/ai-gateway.test.ts). */
const SETTINGS: ExtProcSettings = extProcSettingsFromPolicy(
  {
    apiVersion: 'gateway.envoyproxy.io/v1alpha1',
    kind: 'EnvoyExtensionPolicy',
    metadata: { namespace: 'team', name: 'chat-processor' },
    spec: {
      targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'chat' }],
      extProc: [
        {
          backendRefs: [{ name: 'gw-processor', namespace: 'platform', port: 9002 }],
          processingMode: {
            request: { body: 'Buffered' },
            response: { body: 'Buffered', attributes: ['response.code_details'] },
            allowModeOverride: true,
          },
          messageTimeout: '10s',
          failOpen: false,
          metadata: { writableNamespaces: [METADATA_NAMESPACE] },
        },
      ],
    },
  },
  0,
);

function completion(usage: { prompt: number; completion: number }): string {
  return JSON.stringify({
    id: 'chatcmpl-1',
    object: 'chat.completion',
    model: 'gpt-4o',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Hello' }, finish_reason: 'stop' }],
    usage: {
      prompt_tokens: usage.prompt,
      completion_tokens: usage.completion,
      total_tokens: usage.prompt + usage.completion,
    },
  });
}

function eventStream(usage: { prompt: number; completion: number }): string[] {
  const chunk = (content: string) =>
    'data: ' +
    JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content } }] }) +
    '\n\n';
  const usageChunk = `data: ${JSON.stringify({
    id: 'c1',
    object: 'chat.completion.chunk',
    choices: [],
    usage: {
      prompt_tokens: usage.prompt,
      completion_tokens: usage.completion,
      total_tokens: usage.prompt + usage.completion,
    },
  })}\n\n`;
  const whole = chunk('Hel') + chunk('lo') + usageChunk + 'data: [DONE]\n\n';
  // Cut across event boundaries, as a network would.
  return [whole.slice(0, 40), whole.slice(40, 130), whole.slice(130, 260), whole.slice(260)];
}

describe('ext_proc filter with the real processor', () => {
  let dir: string;
  let app: ProcessorApp;
  let target: string;
  let clients: ExtProcClients;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ext-proc-real-'));
    const configFile = path.join(dir, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify(CONFIG));
    app = new ProcessorApp({
      config: configFile,
      secretsDir: undefined,
      listen: '127.0.0.1:0',
      admin: undefined,
      pollIntervalMs: 60_000,
      logger: silentLogger,
    });
    await app.start();
    target = `127.0.0.1:${app.listenPort}`;
    clients = newClients();
  });

  afterAll(async () => {
    clients.close();
    await app.drain(1000);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('OpenAI passthrough: the processor picks the backend, asks for a re-match, and reports the usage', async () => {
    const filter = createExtProcFilter(SETTINGS, target, clients);
    const request = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] };
    const stream = fakeStream({
      path: '/v1/chat/completions',
      body: JSON.stringify(request),
      headers: { 'content-type': 'application/json' },
    });
    const answer = completion({ prompt: 5, completion: 7 });
    const result = await drive(filter, stream, (upstream) => {
      expect(upstream.headers.get(BACKEND_HEADER)).toBe('openai');
      expect(upstream.headers.get(MODEL_HEADER)).toBe('gpt-4o');
      expect(upstream.headers.get(':path')).toBe('/v1/chat/completions');
      expect(JSON.parse(upstream.body.toString())).toMatchObject(request);
      expect(upstream.headers.get('content-length')).toBe(String(upstream.body.length));
      return {
        status: 200,
        headers: { 'content-type': 'application/json', 'content-length': String(answer.length) },
        chunks: [answer.slice(0, 50), answer.slice(50)],
      };
    });
    // The backend choice comes with clear_route_cache and a header mutation: the route is matched again.
    expect(stream.routeClears).toBe(1);
    expect(result.localReply).toBeUndefined();
    expect(result.status).toBe(200);
    expect(JSON.parse(result.body.toString())).toMatchObject({
      choices: [{ message: { content: 'Hello' } }],
      usage: { prompt_tokens: 5, completion_tokens: 7 },
    });
    expect(result.responseHeaders!.get('content-length')).toBe(String(result.body.length));
    expect(stream.dynamicMetadata.get(METADATA_NAMESPACE)).toMatchObject({
      llm_input_token: 5,
      llm_output_token: 7,
      llm_total_token: 12,
    });
  });

  it(
    'streamed answer: the processor switches the response to STREAMED and counts the usage ' + 'chunk by chunk',
    async () => {
      const filter = createExtProcFilter(SETTINGS, target, clients);
      const stream = fakeStream({
        body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      });
      const chunks = eventStream({ prompt: 9, completion: 3 });
      const result = await drive(filter, stream, {
        status: 200,
        headers: { 'content-type': 'text/event-stream' },
        chunks,
      });
      expect(result.localReply).toBeUndefined();
      // Each chunk went out as it came (STREAMED), not held until the end (BUFFERED).
      expect(result.passed).toHaveLength(chunks.length);
      expect(result.passed.slice(0, -1).every((chunk) => chunk.length > 0)).toBe(true);
      expect(result.body.toString()).toBe(chunks.join(''));
      expect(result.responseHeaders!.has('content-length')).toBe(false);
      expect(stream.dynamicMetadata.get(METADATA_NAMESPACE)).toMatchObject({
        llm_input_token: 9,
        llm_output_token: 3,
        llm_total_token: 12,
      });
    },
  );

  it('a model no rule serves: the processor answers locally through an immediate response', async () => {
    const filter = createExtProcFilter(SETTINGS, target, clients);
    const stream = fakeStream({ body: JSON.stringify({ model: 'unknown-model', messages: [] }) });
    const result = await drive(filter, stream, () => {
      throw new Error('the request must not reach the upstream');
    });
    expect(result.localReply?.status).toBeGreaterThanOrEqual(400);
    expect(result.localReply?.headers).toContainEqual(['content-type', 'application/json']);
    expect(JSON.parse(result.localReply!.body!.toString())).toHaveProperty('error');
    expect(result.localReply?.details).toMatch(/^[a-z_]+$/);
    expect(stream.routeClears).toBe(0);
  });
});
