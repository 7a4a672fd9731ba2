/**
 * Images and audio through the local data plane (issue 16): the official `openai` SDK
 * (`audio.transcriptions.create` with a generated WAV file, streamed and not, `audio.translations.create`,
 * `images.generate`, `images.edit`) against the fake OpenAI and Azure OpenAI, which parse each form as the provider
 * does and check its fields. Tokens are charged from the answers' `usage` into a route budget's Redis counter;
 * whisper's duration usage charges nothing.
 */
import { randomBytes } from 'node:crypto';
import { toFile } from 'openai';
import { DEFAULT_USAGE } from './support/fake-providers';
import { CLIENT_KEY, describeScenario, leakedClientCredentials, openAIClient } from './support/clients';
import { redisUrlForTests } from '../support/redis';
import { clusterMode, startScenario, type RunningScenario } from './support/harness';
import type { RecordedRequest } from './support/recording-server';
import { countersContaining } from './support/redis';
import { FAKE_CREDENTIALS, mediaScenario } from './support/scenarios';

jest.setTimeout(90_000);

const COST = DEFAULT_USAGE.input + DEFAULT_USAGE.output;
const redisUrl = clusterMode() ? undefined : redisUrlForTests();

/**
 * A silent 16-bit mono WAV at 11025 Hz whose every byte is below 0x80 (sizes and rates chosen for it): the fakes
 * record bodies as text, so the file arrives there byte for byte.
 */
function silentWav(): Buffer {
  const dataBytes = 2048;
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(11025, 24);
  header.writeUInt32LE(22050, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(dataBytes, 40);
  const wav = Buffer.concat([header, Buffer.alloc(dataBytes)]);
  if (wav.some((byte) => byte >= 0x80)) throw new Error('the WAV must be ASCII-safe');
  return wav;
}

const WAV = silentWav();

async function formOf(request: RecordedRequest): Promise<FormData> {
  return new Response(Buffer.from(request.body, 'utf8'), {
    headers: { 'content-type': request.headers['content-type'] },
  }).formData();
}

// A random namespace per run: local only (a cluster run deploys its scenarios beforehand, see describeScenario).
describeScenario('media', () => {
  const namespace = `e2e-media-${randomBytes(4).toString('hex')}`;
  let run: RunningScenario;
  let charged = 0;

  beforeAll(async () => {
    run = await startScenario(mediaScenario(namespace), { redisUrl });
  });
  afterAll(() => run?.close());
  beforeEach(async () => {
    await Promise.all(Object.values(run.fakes).map((fake) => fake.clear()));
  });

  const openai = () => openAIClient(`${run.gatewayUrl}/v1`);
  async function lastAccepted(fake: 'openai' | 'azure'): Promise<RecordedRequest> {
    const records = await run.fakes[fake].records();
    expect(records.map((r) => r.rejected)).toEqual(records.map(() => undefined));
    expect(records.length).toBeGreaterThan(0);
    const request = records[records.length - 1];
    expect(leakedClientCredentials(request)).toEqual([]);
    expect(request.headers.authorization ?? '').not.toContain(CLIENT_KEY);
    return request;
  }
  /** The route budget's counter: what every request so far charged. */
  async function expectCharged(tokens: number): Promise<void> {
    charged += tokens;
    if (!redisUrl) return;
    // Charged at stream end, after the answer reached the client.
    for (let i = 0; i < 50; i++) {
      const counters = await countersContaining(redisUrl, `${namespace}/`);
      const total = counters.reduce((sum, c) => sum + c.value, 0);
      if (total === charged) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect((await countersContaining(redisUrl, `${namespace}/`)).reduce((sum, c) => sum + c.value, 0)).toBe(charged);
  }

  it('transcription on OpenAI: the form as the SDK sent it, its token usage charged', async () => {
    const transcription = await openai().audio.transcriptions.create({
      file: await toFile(WAV, 'speech.wav', { type: 'audio/wav' }),
      model: 'gpt-4o-transcribe',
      language: 'en',
    });
    expect(transcription.text).toBe('Hello from openai (gpt-4o-transcribe)');
    expect(transcription.usage).toMatchObject({ type: 'tokens', total_tokens: COST });
    const request = await lastAccepted('openai');
    expect(request.path).toBe('/v1/audio/transcriptions');
    expect(request.headers.authorization).toBe(`Bearer ${FAKE_CREDENTIALS.openaiKey}`);
    const form = await formOf(request);
    expect([...form.keys()].sort()).toEqual(['file', 'language', 'model']);
    expect(form.get('model')).toBe('gpt-4o-transcribe');
    expect(Buffer.from(await (form.get('file') as Blob).arrayBuffer()).equals(WAV)).toBe(true);
    await expectCharged(COST);
  });

  it('streamed transcription: the events reach the SDK, transcript.text.done usage is charged', async () => {
    const stream = await openai().audio.transcriptions.create({
      file: await toFile(WAV, 'speech.wav', { type: 'audio/wav' }),
      model: 'gpt-4o-transcribe',
      stream: true,
    });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types).toEqual(['transcript.text.delta', 'transcript.text.delta', 'transcript.text.done']);
    expect((await formOf(await lastAccepted('openai'))).get('stream')).toBe('true');
    await expectCharged(COST);
  });

  it('whisper-1 transcription and translation: forwarded, nothing charged', async () => {
    const transcription = await openai().audio.transcriptions.create({
      file: await toFile(WAV, 'speech.wav', { type: 'audio/wav' }),
      model: 'whisper-1',
    });
    expect(transcription.text).toBe('Hello from openai (whisper-1)');
    const translation = await openai().audio.translations.create({
      file: await toFile(WAV, 'speech.wav', { type: 'audio/wav' }),
      model: 'whisper-1',
    });
    expect(translation.text).toBe('Hello from openai (whisper-1)');
    expect((await lastAccepted('openai')).path).toBe('/v1/audio/translations');
    await expectCharged(0);
  });

  it('image generation and edits on OpenAI: forwarded, image token usage charged', async () => {
    const generated = await openai().images.generate({ model: 'gpt-image-1', prompt: 'a red dot', size: '1024x1024' });
    expect(generated.usage).toMatchObject({ total_tokens: COST });
    let request = await lastAccepted('openai');
    expect(request.path).toBe('/v1/images/generations');
    expect(JSON.parse(request.body)).toEqual({ model: 'gpt-image-1', prompt: 'a red dot', size: '1024x1024' });
    await expectCharged(COST);
    await openai().images.edit({
      model: 'gpt-image-1',
      image: await toFile(Buffer.from('not really a png'), 'a.png', { type: 'image/png' }),
      prompt: 'make it blue',
    });
    request = await lastAccepted('openai');
    expect(request.path).toBe('/v1/images/edits');
    const form = await formOf(request);
    expect(form.get('model')).toBe('gpt-image-1');
    expect(form.get('prompt')).toBe('make it blue');
    await expectCharged(COST);
  });

  it('Azure OpenAI: the deployment path, the api-key, the overridden model in the form and the JSON body', async () => {
    const transcription = await openai().audio.transcriptions.create({
      file: await toFile(WAV, 'speech.wav', { type: 'audio/wav' }),
      model: 'azure-transcribe',
    });
    expect(transcription.text).toBe('Hello from azure (transcribe-deployment)');
    let request = await lastAccepted('azure');
    expect(request.path).toBe(
      `/openai/deployments/transcribe-deployment/audio/transcriptions?api-version=${FAKE_CREDENTIALS.azureApiVersion}`,
    );
    expect(request.headers['api-key']).toBe(FAKE_CREDENTIALS.azureKey);
    const form = await formOf(request);
    expect(form.get('model')).toBe('transcribe-deployment');
    expect(Buffer.from(await (form.get('file') as Blob).arrayBuffer()).equals(WAV)).toBe(true);
    await expectCharged(COST);
    await openai().images.generate({ model: 'azure-image', prompt: 'a red dot' });
    request = await lastAccepted('azure');
    expect(request.path).toBe(
      `/openai/deployments/image-deployment/images/generations?api-version=${FAKE_CREDENTIALS.azureApiVersion}`,
    );
    expect(JSON.parse(request.body)).toEqual({ model: 'image-deployment', prompt: 'a red dot' });
    await expectCharged(COST);
  });

  it('a malformed form is answered 400 in the OpenAI error schema and never reaches a provider', async () => {
    const response = await fetch(`${run.gatewayUrl}/v1/audio/transcriptions`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=b', authorization: `Bearer ${CLIENT_KEY}` },
      body: '--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1',
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('invalid_multipart');
    expect(await run.fakes.openai.records()).toEqual([]);
    await expectCharged(0);
  });
});
