/**
 * Images and audio end to end (issue 16): the official `openai` SDK (`images.generate`, `images.edit`,
 * `audio.transcriptions.create`, `audio.translations.create`) through the processor, driven like Envoy by the HTTP
 * front, against a fake OpenAI and a fake Azure OpenAI that check the exact upstream request: the multipart body
 * byte for byte as the SDK wrote it (or with only its `model` value replaced under a model name override), the
 * provider's path and credential. Usage is charged from the answers' `usage` objects and streamed events; whisper's
 * duration usage charges nothing.
 */
import type { ServerResponse } from 'node:http';
import OpenAI, { toFile } from 'openai';
import { CONFIG_VERSION, type ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import type { ExchangeResult } from '../support/envoy-client';
import { startFakeProvider, type FakeProvider, type RecordedRequest } from '../support/fake-provider';
import { startHttpFront, type HttpFront } from '../support/http-front';
import { startTestProcessor, type TestProcessor } from '../support/processor-harness';

/** A 0.1 s silent 16 kHz mono WAV file. */
function silentWav(): Buffer {
  const samples = 1600;
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + samples * 2, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(16000, 24);
  header.writeUInt32LE(32000, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(samples * 2, 40);
  return Buffer.concat([header, Buffer.alloc(samples * 2)]);
}

const WAV = silentWav();
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

const TOKENS_USAGE = {
  type: 'tokens',
  input_tokens: 14,
  input_token_details: { audio_tokens: 11, text_tokens: 3 },
  output_tokens: 9,
  total_tokens: 23,
};
const IMAGE_USAGE = {
  input_tokens: 50,
  input_tokens_details: { text_tokens: 40, image_tokens: 10 },
  output_tokens: 272,
  total_tokens: 322,
};

/** The parts of a multipart body, read with Node's own parser (the fake provider's view). */
async function formOf(request: RecordedRequest): Promise<FormData> {
  return new Response(request.body, {
    headers: { 'content-type': String(request.headers['content-type']) },
  }).formData();
}

function answer(request: RecordedRequest, res: ServerResponse): void {
  const json = (body: unknown): void => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const path = request.path;
  const body = request.body.toString('latin1');
  if (path.includes('/audio/transcriptions') && body.includes('name="stream"\r\n\r\ntrue')) {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(`data: ${JSON.stringify({ type: 'transcript.text.delta', delta: 'Hello' })}\n\n`);
    res.end(`data: ${JSON.stringify({ type: 'transcript.text.done', text: 'Hello', usage: TOKENS_USAGE })}\n\n`);
    return;
  }
  if (path.includes('/audio/')) {
    if (body.includes('whisper')) return json({ text: 'Hello', usage: { type: 'duration', seconds: 1 } });
    return json({ text: 'Hello', usage: TOKENS_USAGE });
  }
  if (path.includes('/images/')) {
    return json({ created: 1736890000, data: [{ b64_json: PNG.toString('base64') }], usage: IMAGE_USAGE });
  }
  res.writeHead(404).end();
}

describe('images and audio through the data plane with the official OpenAI SDK', () => {
  let provider: FakeProvider;
  let processor: TestProcessor;
  let front: HttpFront;
  let results: ExchangeResult[];
  let openai: OpenAI;

  beforeAll(async () => {
    provider = await startFakeProvider(answer);
    const endpoint = { hostname: '127.0.0.1', port: provider.port, tls: false };
    const rule = (model: string, backend: string, modelNameOverride?: string) => ({
      models: [{ type: 'Exact' as const, value: model }],
      backends: [{ backend, weight: 1, priority: 0, ...(modelNameOverride && { modelNameOverride }) }],
    });
    const config: ProcessorConfig = {
      version: CONFIG_VERSION,
      maxRequestBodyBytes: 1024 * 1024,
      backends: [
        {
          name: 'openai',
          schema: { name: 'OpenAI', pathPrefix: '/v1' },
          endpoint,
          auth: { type: 'APIKey', secret: { secretName: 'openai', key: 'apiKey' } },
        },
        {
          name: 'azure',
          schema: { name: 'AzureOpenAI', apiVersion: '2025-04-01-preview' },
          endpoint,
          auth: { type: 'APIKey', secret: { secretName: 'azure', key: 'apiKey' } },
        },
        { name: 'bedrock', schema: { name: 'AWSBedrock' }, endpoint },
      ],
      routes: [
        {
          name: 'default/media',
          endpoints: [{ api: 'OpenAI', pathPrefix: '/v1' }],
          hostnames: [],
          rules: [
            rule('gpt-4o-transcribe', 'openai'),
            rule('whisper-1', 'openai'),
            rule('transcribe-latest', 'openai', 'gpt-4o-mini-transcribe'),
            rule('gpt-image-1', 'openai'),
            rule('azure-transcribe', 'azure', 'my-transcribe-deployment'),
            rule('azure-image', 'azure', 'my-image-deployment'),
            rule('bedrock-model', 'bedrock'),
          ],
          requiredHeaders: [],
          // Not served unless a route opts in: they reach OpenAI-schema backends with the platform's credential.
          passthroughEndpoints: [
            '/images/generations',
            '/images/edits',
            '/audio/transcriptions',
            '/audio/translations',
          ].map((path) => ({ path, methods: ['POST' as const] })),
        },
      ],
      costs: [
        { metadataKey: 'input', type: 'InputToken' },
        { metadataKey: 'output', type: 'OutputToken' },
        { metadataKey: 'total', type: 'TotalToken' },
      ],
      circuitBreaker: { failureThreshold: 100, openDurationMs: 1000 },
    };
    processor = await startTestProcessor(config, {
      secrets: { openai: { apiKey: 'sk-openai' }, azure: { apiKey: 'azure-key' } },
    });
    front = await startHttpFront({ client: processor.client, config, onResult: (result) => results.push(result) });
    openai = new OpenAI({ baseURL: `${front.url}/v1`, apiKey: 'client-key', maxRetries: 0 });
  });
  beforeEach(() => {
    results = [];
  });
  afterAll(async () => {
    await front.close();
    await processor.close();
    await provider.close();
  });

  const lastRequest = () => provider.requests.at(-1)!;
  const charged = () => {
    const metadata = results[0].metadata['io.envoy.ai_gateway'] ?? {};
    return { input: metadata.input ?? 0, output: metadata.output ?? 0, total: metadata.total ?? 0 };
  };

  it('transcription: the SDK form reaches OpenAI byte for byte, and its token usage is charged', async () => {
    const transcription = await openai.audio.transcriptions.create({
      file: await toFile(WAV, 'speech.wav', { type: 'audio/wav' }),
      model: 'gpt-4o-transcribe',
      language: 'en',
      response_format: 'json',
    });
    expect(transcription).toEqual({ text: 'Hello', usage: TOKENS_USAGE });
    const upstream = lastRequest();
    expect(upstream.path).toBe('/v1/audio/transcriptions');
    expect(upstream.headers.authorization).toBe('Bearer sk-openai');
    expect(results[0].upstreamRequest!.body.equals(upstream.body)).toBe(true);
    const form = await formOf(upstream);
    expect([...form.keys()].sort()).toEqual(['file', 'language', 'model', 'response_format']);
    expect(form.get('model')).toBe('gpt-4o-transcribe');
    expect(Buffer.from(await (form.get('file') as Blob).arrayBuffer()).equals(WAV)).toBe(true);
    expect(charged()).toEqual({ input: 14, output: 9, total: 23 });
  });

  it('transcription under a model name override: only the model value changes', async () => {
    await openai.audio.transcriptions.create({
      file: await toFile(WAV, 'speech.wav', { type: 'audio/wav' }),
      model: 'transcribe-latest',
    });
    const upstream = lastRequest();
    const form = await formOf(upstream);
    expect(form.get('model')).toBe('gpt-4o-mini-transcribe');
    expect(Buffer.from(await (form.get('file') as Blob).arrayBuffer()).equals(WAV)).toBe(true);
    const sent = results[0].upstreamRequest!;
    expect(Number(sent.headers['content-length'])).toBe(upstream.body.length);
    // The SDK's bytes with the one value swapped.
    const original = upstream.body.toString('latin1').replace('gpt-4o-mini-transcribe', 'transcribe-latest');
    expect(original.length).toBe(upstream.body.length - 'gpt-4o-mini-transcribe'.length + 'transcribe-latest'.length);
    expect(charged()).toEqual({ input: 14, output: 9, total: 23 });
  });

  it('streamed transcription: the events pass through and transcript.text.done usage is charged', async () => {
    const stream = await openai.audio.transcriptions.create({
      file: await toFile(WAV, 'speech.wav', { type: 'audio/wav' }),
      model: 'gpt-4o-transcribe',
      stream: true,
    });
    const events: string[] = [];
    for await (const event of stream) events.push(event.type);
    expect(events).toEqual(['transcript.text.delta', 'transcript.text.done']);
    expect(results[0].streamed).toBe(true);
    expect(charged()).toEqual({ input: 14, output: 9, total: 23 });
  });

  it('whisper-1 (billed by duration) and translations: forwarded, nothing charged', async () => {
    const transcription = await openai.audio.transcriptions.create({
      file: await toFile(WAV, 'speech.wav', { type: 'audio/wav' }),
      model: 'whisper-1',
    });
    expect(transcription.text).toBe('Hello');
    expect(charged()).toEqual({ input: 0, output: 0, total: 0 });
    results = [];
    const translation = await openai.audio.translations.create({
      file: await toFile(WAV, 'speech.wav', { type: 'audio/wav' }),
      model: 'whisper-1',
    });
    expect(translation.text).toBe('Hello');
    expect(lastRequest().path).toBe('/v1/audio/translations');
    expect(charged()).toEqual({ input: 0, output: 0, total: 0 });
  });

  it('image generation (JSON) and edits (multipart): forwarded unchanged, image token usage charged', async () => {
    const generated = await openai.images.generate({ model: 'gpt-image-1', prompt: 'a red dot', size: '1024x1024' });
    expect(generated.usage).toEqual(IMAGE_USAGE);
    expect(lastRequest().path).toBe('/v1/images/generations');
    expect(JSON.parse(lastRequest().body.toString())).toEqual({
      model: 'gpt-image-1',
      prompt: 'a red dot',
      size: '1024x1024',
    });
    expect(charged()).toEqual({ input: 50, output: 272, total: 322 });
    results = [];
    await openai.images.edit({
      model: 'gpt-image-1',
      image: [await toFile(PNG, 'a.png', { type: 'image/png' }), await toFile(PNG, 'b.png', { type: 'image/png' })],
      prompt: 'make it blue',
    });
    expect(lastRequest().path).toBe('/v1/images/edits');
    const form = await formOf(lastRequest());
    expect(form.getAll('image[]')).toHaveLength(2);
    expect(form.get('prompt')).toBe('make it blue');
    expect(charged()).toEqual({ input: 50, output: 272, total: 322 });
  });

  it('Azure OpenAI: the deployment path and api-version, the api-key, the override in the model value', async () => {
    await openai.audio.transcriptions.create({
      file: await toFile(WAV, 'speech.wav', { type: 'audio/wav' }),
      model: 'azure-transcribe',
    });
    let upstream = lastRequest();
    expect(upstream.path).toBe(
      '/openai/deployments/my-transcribe-deployment/audio/transcriptions?api-version=2025-04-01-preview',
    );
    expect(upstream.headers['api-key']).toBe('azure-key');
    expect(upstream.headers.authorization).toBeUndefined();
    expect((await formOf(upstream)).get('model')).toBe('my-transcribe-deployment');
    expect(charged()).toEqual({ input: 14, output: 9, total: 23 });
    results = [];
    await openai.images.generate({ model: 'azure-image', prompt: 'a red dot' });
    upstream = lastRequest();
    expect(upstream.path).toBe(
      '/openai/deployments/my-image-deployment/images/generations?api-version=2025-04-01-preview',
    );
    expect(JSON.parse(upstream.body.toString())).toEqual({ model: 'my-image-deployment', prompt: 'a red dot' });
    expect(charged()).toEqual({ input: 50, output: 272, total: 322 });
  });

  it('answers malformed forms, forms on JSON endpoints and backends without media 400 (OpenAI schema)', async () => {
    const count = provider.requests.length;
    const post = (path: string, body: string, contentType: string) =>
      fetch(`${front.url}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body });
    const cases: Array<[Response, string]> = [
      [
        await post(
          '/v1/audio/transcriptions',
          '--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1',
          'multipart/form-data; boundary=b',
        ),
        'invalid_multipart',
      ],
      [await post('/v1/audio/transcriptions', 'x', 'multipart/form-data'), 'invalid_multipart'],
      [
        await post(
          '/v1/chat/completions',
          '--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--b--',
          'multipart/form-data; boundary=b',
        ),
        'invalid_body',
      ],
      [
        await post(
          '/v1/audio/transcriptions',
          '--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nbedrock-model\r\n--b--',
          'multipart/form-data; boundary=b',
        ),
        'unsupported_operation',
      ],
      [
        await post(
          '/v1/audio/transcriptions',
          '--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n.\r\n--b--',
          'multipart/form-data; boundary=b',
        ),
        'missing_model',
      ],
    ];
    for (const [response, code] of cases) {
      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: { code: string; message: string; type: string } };
      expect(body.error).toMatchObject({ code, type: 'invalid_request_error' });
    }
    expect(provider.requests.length).toBe(count);
  });
});
