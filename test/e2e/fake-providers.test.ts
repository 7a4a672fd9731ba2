/**
 * The fake providers refuse what the real providers refuse, so the end-to-end tests that pass through them prove
 * the gateway sent the right credentials: wrong keys, a missing anthropic-version, a wrong api-version, a SigV4
 * signature over other bytes or another host, an unknown GCP subject token; and request bodies the providers document
 * otherwise (cache marks, thinking budgets, JSON output formats, embedding inputs), while answering the documented
 * extras (cache usage, thinking, JSON, vectors) to those that ask.
 */
import * as http from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { crc32, encodeEventStreamFrame } from './support/eventstream';
import { FAKE_CREDENTIALS } from './support/credentials';
import {
  CACHE_USAGE,
  fakeEmbedding,
  jsonAnswer,
  THOUGHT,
  THOUGHT_SIGNATURE,
  THOUGHT_TOKENS,
} from './support/fake-providers';
import { startFakes, type StartedFakes } from './support/fakes';
import { Sha256 } from './support/sigv4';

const BEDROCK_HOST = `bedrock-runtime.${FAKE_CREDENTIALS.awsRegion}.amazonaws.com`;
const CONVERSE_PATH = '/model/us.amazon.nova-pro-v1:0/converse';
const CONVERSE_BODY = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'Say hello' }] }] });

async function signedHeaders(
  secretAccessKey: string,
  body: string,
  path = CONVERSE_PATH,
): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    credentials: { accessKeyId: FAKE_CREDENTIALS.aws.accessKeyId, secretAccessKey },
    region: FAKE_CREDENTIALS.awsRegion,
    service: 'bedrock',
    sha256: Sha256,
    applyChecksum: false,
  });
  const signed = await signer.sign({
    method: 'POST',
    protocol: 'https:',
    hostname: BEDROCK_HOST,
    path,
    query: {},
    headers: { host: BEDROCK_HOST },
    body,
  });
  return signed.headers;
}

describe('fake providers check what they receive', () => {
  let fakes: StartedFakes;
  beforeAll(async () => {
    fakes = await startFakes();
  });
  afterAll(() => fakes.close());

  const post = (url: string, headers: Record<string, string>, body: unknown) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

  it('OpenAI: the right bearer key is answered, another is 401', async () => {
    expect(
      (
        await post(
          `${fakes.fakes.openai.url}/v1/chat/completions`,
          { authorization: `Bearer ${FAKE_CREDENTIALS.openaiKey}` },
          chat,
        )
      ).status,
    ).toBe(200);
    expect(
      (await post(`${fakes.fakes.openai.url}/v1/chat/completions`, { authorization: 'Bearer sk-wrong' }, chat)).status,
    ).toBe(401);
    expect(
      (
        await post(
          `${fakes.fakes.groq.url}/v1/chat/completions`,
          { authorization: `Bearer ${FAKE_CREDENTIALS.groqKey}` },
          chat,
        )
      ).status,
    ).toBe(404);
  });

  it('Anthropic: x-api-key and anthropic-version are required, authorization is refused', async () => {
    const url = `${fakes.fakes.anthropic.url}/v1/messages`;
    const message = { model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };
    const good = { 'x-api-key': FAKE_CREDENTIALS.anthropicKey, 'anthropic-version': '2023-06-01' };
    expect((await post(url, good, message)).status).toBe(200);
    expect((await post(url, { 'x-api-key': FAKE_CREDENTIALS.anthropicKey }, message)).status).toBe(400);
    expect((await post(url, { ...good, authorization: 'Bearer x' }, message)).status).toBe(401);
    expect((await post(url, good, { ...message, max_tokens: undefined })).status).toBe(400);
  });

  it('Azure OpenAI: api-key and api-version', async () => {
    const base = `${fakes.fakes.azure.url}/openai/deployments/d1/chat/completions`;
    expect(
      (
        await post(
          `${base}?api-version=${FAKE_CREDENTIALS.azureApiVersion}`,
          { 'api-key': FAKE_CREDENTIALS.azureKey },
          chat,
        )
      ).status,
    ).toBe(200);
    expect((await post(`${base}?api-version=2023-01-01`, { 'api-key': FAKE_CREDENTIALS.azureKey }, chat)).status).toBe(
      400,
    );
    expect(
      (
        await post(
          `${base}?api-version=${FAKE_CREDENTIALS.azureApiVersion}`,
          { authorization: `Bearer ${FAKE_CREDENTIALS.azureKey}` },
          chat,
        )
      ).status,
    ).toBe(401);
  });

  /** node:http, because fetch does not let a caller set Host (which SigV4 signs). */
  const postRaw = (url: string, headers: Record<string, string>, body: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(
        url,
        { method: 'POST', headers: { 'content-type': 'application/json', ...headers } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  it('Bedrock: a valid SigV4 signature is answered; another secret, other bytes or another host is 403', async () => {
    const url = `${fakes.fakes.bedrock.url}${CONVERSE_PATH}`;
    const post = async (u: string, headers: Record<string, string>, body: string) => ({
      status: await postRaw(u, headers, body),
    });
    const good = await signedHeaders(FAKE_CREDENTIALS.aws.secretAccessKey, CONVERSE_BODY);
    expect((await post(url, good, CONVERSE_BODY)).status).toBe(200);
    expect((await post(url, await signedHeaders('not-the-secret', CONVERSE_BODY), CONVERSE_BODY)).status).toBe(403);
    expect((await post(url, good, CONVERSE_BODY.replace('hello', 'HELLO'))).status).toBe(403);
    expect((await post(url, { ...good, host: 'bedrock-runtime.eu-west-1.amazonaws.com' }, CONVERSE_BODY)).status).toBe(
      403,
    );
    const reasons = fakes.fakes.bedrock.requests.map((r) => r.rejected);
    expect(reasons).toEqual([
      undefined,
      'bedrock: signature does not match',
      'bedrock: signature does not match',
      'bedrock: signature does not match',
    ]);
  });

  it(
    'GCP: the token endpoint hands out the access token only for the workload subject token; ' +
      'Vertex wants that token',
    async () => {
      const form = (subject: string) =>
        fetch(`${fakes.gcpToken.url}/v1/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
            subject_token: subject,
            scope: 'https://www.googleapis.com/auth/cloud-platform',
          }).toString(),
        });
      const granted = await form(FAKE_CREDENTIALS.gcpSubjectToken);
      expect(granted.status).toBe(200);
      expect(((await granted.json()) as { access_token: string }).access_token).toBe(FAKE_CREDENTIALS.gcpAccessToken);
      expect((await form('someone-else')).status).toBe(401);
      const path =
        `/v1/projects/${FAKE_CREDENTIALS.gcpProject}/locations/${FAKE_CREDENTIALS.gcpRegion}` +
        `/publishers/google/models/gemini-2.5-flash:generateContent`;
      const body = { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] };
      expect(
        (
          await post(
            `${fakes.fakes.vertex.url}${path}`,
            { authorization: `Bearer ${FAKE_CREDENTIALS.gcpAccessToken}` },
            body,
          )
        ).status,
      ).toBe(200);
      expect(
        (await post(`${fakes.fakes.vertex.url}${path}`, { authorization: 'Bearer ya29.other' }, body)).status,
      ).toBe(401);
    },
  );

  it('Anthropic: cache marks, thinking, JSON outputs as documented; cache usage, thinking, JSON back', async () => {
    const url = `${fakes.fakes.anthropic.url}/v1/messages`;
    const headers = { 'x-api-key': FAKE_CREDENTIALS.anthropicKey, 'anthropic-version': '2023-06-01' };
    const message = {
      model: 'claude',
      max_tokens: 4096,
      system: [{ type: 'text', text: 'manual', cache_control: { type: 'ephemeral', ttl: '1h' } }],
      messages: [{ role: 'user', content: 'hi' }],
      thinking: { type: 'enabled', budget_tokens: 2048 },
      output_config: { format: { type: 'json_schema', schema: { type: 'object' } } },
    };
    const answer = await post(url, headers, message);
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({
      content: [
        { type: 'thinking', thinking: THOUGHT, signature: THOUGHT_SIGNATURE },
        { type: 'text', text: jsonAnswer('anthropic', 'claude') },
      ],
      usage: { cache_read_input_tokens: CACHE_USAGE.read, cache_creation_input_tokens: CACHE_USAGE.write },
    });
    const refused = async (body: unknown) => (await post(url, headers, body)).status;
    expect(
      await refused({ ...message, system: [{ type: 'text', text: 'm', cache_control: { type: 'forever' } }] }),
    ).toBe(400);
    expect(await refused({ ...message, thinking: { type: 'enabled', budget_tokens: 512 } })).toBe(400);
    expect(await refused({ ...message, thinking: { type: 'enabled', budget_tokens: 4096 } })).toBe(400);
    expect(await refused({ ...message, output_config: { format: { type: 'json_object' } } })).toBe(400);
  });

  /** A signed POST to the fake Bedrock, its status and JSON answer. */
  async function bedrock(path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const text = JSON.stringify(body);
    const headers = await signedHeaders(FAKE_CREDENTIALS.aws.secretAccessKey, text, path);
    return new Promise((resolve, reject) => {
      const req = http.request(
        `${fakes.fakes.bedrock.url}${path}`,
        { method: 'POST', headers: { 'content-type': 'application/json', ...headers } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }),
          );
        },
      );
      req.on('error', reject);
      req.end(text);
    });
  }

  it('Bedrock: Converse cachePoint, thinking, outputConfig as documented; Titan and Cohere embeddings', async () => {
    const converse = {
      inferenceConfig: { maxTokens: 4096 },
      messages: [{ role: 'user', content: [{ text: 'hi' }, { cachePoint: { type: 'default' } }] }],
      additionalModelRequestFields: { thinking: { type: 'enabled', budget_tokens: 2048 } },
    };
    const answered = await bedrock(CONVERSE_PATH, converse);
    expect(answered.status).toBe(200);
    expect(answered.json).toMatchObject({
      output: { message: { content: [{ reasoningContent: { reasoningText: { text: THOUGHT } } }, {}] } },
      usage: { cacheReadInputTokens: CACHE_USAGE.read, cacheWriteInputTokens: CACHE_USAGE.write },
    });
    const refusedConverse = [
      { messages: [{ role: 'user', content: [{ text: 'hi', cache_control: { type: 'ephemeral' } }] }] },
      { messages: [{ role: 'user', content: [{ text: 'hi' }, { cachePoint: { type: 'ephemeral' } }] }] },
      { ...converse, additionalModelRequestFields: { thinking: { type: 'enabled', budget_tokens: 9000 } } },
      { ...converse, outputConfig: { textFormat: { type: 'json_schema', structure: { jsonSchema: { schema: {} } } } } },
    ];
    for (const body of refusedConverse) expect((await bedrock(CONVERSE_PATH, body)).status).toBe(400);

    const titan = '/model/amazon.titan-embed-text-v2:0/invoke';
    expect(await bedrock(titan, { inputText: 'a fox', dimensions: 256 })).toEqual({
      status: 200,
      json: { embedding: fakeEmbedding(0), inputTextTokenCount: 2 },
    });
    expect((await bedrock(titan, { texts: ['a fox'] })).status).toBe(400);
    expect((await bedrock(titan, { inputText: 'a fox', dimensions: 300 })).status).toBe(400);
    const cohere = '/model/cohere.embed-english-v3/invoke';
    expect(await bedrock(cohere, { texts: ['a', 'b c'], input_type: 'search_query' })).toMatchObject({
      status: 200,
      json: { embeddings: [fakeEmbedding(0), fakeEmbedding(1)] },
    });
    expect((await bedrock(cohere, { texts: ['a'] })).status).toBe(400);
    expect(
      (await bedrock(cohere, { texts: Array.from({ length: 97 }, () => 'a'), input_type: 'clustering' })).status,
    ).toBe(400);
  });

  it('Vertex AI: predict instances as documented; thinkingConfig answered with thoughts', async () => {
    const base =
      `${fakes.fakes.vertex.url}/v1/projects/${FAKE_CREDENTIALS.gcpProject}/locations/${FAKE_CREDENTIALS.gcpRegion}` +
      '/publishers/google/models';
    const headers = { authorization: `Bearer ${FAKE_CREDENTIALS.gcpAccessToken}` };
    const predict = (body: unknown) => post(`${base}/text-embedding-005:predict`, headers, body);
    const good = await predict({
      instances: [{ content: 'a fox', task_type: 'RETRIEVAL_DOCUMENT', title: 'Foxes' }, { content: 'dogs' }],
    });
    expect(good.status).toBe(200);
    expect(await good.json()).toMatchObject({
      predictions: [
        { embeddings: { values: fakeEmbedding(0), statistics: { token_count: 2 } } },
        { embeddings: { values: fakeEmbedding(1), statistics: { token_count: 1 } } },
      ],
    });
    expect((await predict({ instances: [{ content: 'a', title: 'no task type' }] })).status).toBe(400);
    expect((await predict({ instances: [{ content: 'a', task_type: 'SUMMARY' }] })).status).toBe(400);
    expect((await predict({ instances: [] })).status).toBe(400);
    expect((await predict({ input: 'a' })).status).toBe(400);
    const thinking = await post(`${base}/gemini-2.5-flash:generateContent`, headers, {
      contents: [{ role: 'user', parts: [{ text: 'hi' }] }],
      generationConfig: { thinkingConfig: { thinkingBudget: 1024, includeThoughts: true } },
    });
    expect(await thinking.json()).toMatchObject({
      candidates: [{ content: { parts: [{ text: THOUGHT, thought: true }, {}] } }],
      usageMetadata: { thoughtsTokenCount: THOUGHT_TOKENS },
    });
  });

  it('eventstream frames carry valid CRCs (CRC-32 check value, prelude and message)', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    const frame = encodeEventStreamFrame({ ':event-type': 'messageStop' }, Buffer.from('{}'));
    expect(frame.readUInt32BE(0)).toBe(frame.length);
    expect(frame.readUInt32BE(8)).toBe(crc32(frame.subarray(0, 8)));
    expect(frame.readUInt32BE(frame.length - 4)).toBe(crc32(frame.subarray(0, frame.length - 4)));
  });
});
