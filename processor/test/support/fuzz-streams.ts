/**
 * Streamed responses for the fuzz suites, from the shared fixtures (`../shared/fixtures`): SSE from OpenAI,
 * Anthropic and Gemini, and AWS eventstream from Bedrock (a recorded ConverseStream and a reference vector), each
 * with the client request that leads to it and the processor config that serves it (one route per backend,
 * selected by host, as in support/translation-cases).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import { FIXTURE_BACKENDS } from '../providers/fixture-cases';
import type { ClientApi } from '../../src/translate/types';
import {
  caseConfig,
  hostFor,
  loadTranslationCases,
  normalizeText,
  splitSseBlocks,
  splitEvery,
  type FixtureBackend,
} from './translation-cases';
import type { ExchangeOutcome, ExchangeSpec, UpstreamReply } from './session-driver';

export interface StreamFixture {
  name: string;
  /** The client's API and whether the processor translates the stream (false: it passes through, only counted). */
  clientApi: ClientApi;
  translated: boolean;
  kind: 'sse' | 'eventstream';
  request: { path: string; authority: string; body: Buffer; headers?: Record<string, string> };
  status: number;
  headers: Record<string, string>;
  /** The body as the upstream sends it (compressed when `encoding` is set). */
  wire: Buffer;
  /** The natural framing: one chunk per SSE event or eventstream frame (or compressed flush). */
  naturalChunks: Buffer[];
  /** The uncompressed body. */
  plain: Buffer;
  encoding?: 'gzip';
}

export const STREAM_BACKENDS: Record<string, FixtureBackend> = {
  openai: { backend: FIXTURE_BACKENDS.openai },
  anthropic: { backend: FIXTURE_BACKENDS.anthropic, secrets: { anthropic: { apiKey: 'anthropic-api-key' } } },
  'gcp-vertexai': {
    backend: {
      ...FIXTURE_BACKENDS['gcp-vertexai'],
      auth: { type: 'BearerToken', secret: { secretName: 'gcp-token', key: 'token' } },
    },
    secrets: { 'gcp-token': { token: 'fake-gcp-auth-token' } },
  },
  'gcp-anthropicai': {
    backend: {
      ...FIXTURE_BACKENDS['gcp-anthropicai'],
      auth: { type: 'BearerToken', secret: { secretName: 'gcp-token', key: 'token' } },
    },
  },
  'aws-bedrock': {
    backend: FIXTURE_BACKENDS['aws-bedrock'],
    secrets: {
      'aws-credentials': { credentials: '[default]\naws_access_key_id=AKIAFUZZ\naws_secret_access_key=fuzz-secret\n' },
    },
  },
};

export function streamConfig(): { config: ProcessorConfig; secrets: Record<string, Record<string, string>> } {
  const secrets: Record<string, Record<string, string>> = {};
  for (const fixture of Object.values(STREAM_BACKENDS)) Object.assign(secrets, fixture.secrets ?? {});
  return { config: caseConfig(STREAM_BACKENDS, []), secrets };
}

/** Eventstream frames by their total-length prelude. */
export function eventstreamFrames(bytes: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  let offset = 0;
  while (offset + 4 <= bytes.length) {
    const length = bytes.readUInt32BE(offset);
    if (length < 16 || offset + length > bytes.length) break;
    frames.push(bytes.subarray(offset, offset + length));
    offset += length;
  }
  if (offset < bytes.length) frames.push(bytes.subarray(offset));
  return frames;
}

const STREAM_CASES = ['23-', '25-', '26-', '28-', '50-', '51-'];

/** The stream fixtures, from `../shared/fixtures` (`sharedDir`). */
export function loadStreamFixtures(sharedDir: string): StreamFixture[] {
  const fixtures: StreamFixture[] = [];
  const cases = loadTranslationCases(path.join(sharedDir, 'fixtures', 'translation-cases')).filter((c) =>
    STREAM_CASES.some((p) => c.folder.startsWith(p)),
  );
  for (const testCase of cases) {
    const meta = testCase.meta;
    const dir = testCase.dir;
    const sse = path.join(dir, 'upstream-response.wire.sse');
    const eventstream = path.join(dir, 'upstream-response.realistic-headers.eventstream');
    const clientApi: ClientApi = meta.path.startsWith('/anthropic/') ? 'Anthropic' : 'OpenAI';
    const backend = meta.backend!;
    const translated =
      !(backend === 'openai' && clientApi === 'OpenAI') && !(backend === 'anthropic' && clientApi === 'Anthropic');
    const request = {
      path: meta.path,
      authority: hostFor(backend),
      body: testCase.clientRequest,
      headers: meta.requestHeaders,
    };
    if (fs.existsSync(sse)) {
      const plain = fs.readFileSync(sse);
      const gzip = meta.responseType === 'sse-gzip';
      const naturalChunks = gzip ? splitEvery(zlib.gzipSync(plain), 61) : splitSseBlocks(plain);
      fixtures.push({
        name: testCase.folder,
        clientApi,
        translated,
        kind: 'sse',
        request,
        status: 200,
        headers: { 'content-type': 'text/event-stream', ...(gzip ? { 'content-encoding': 'gzip' } : {}) },
        wire: Buffer.concat(naturalChunks),
        naturalChunks,
        plain,
        ...(gzip ? { encoding: 'gzip' as const } : {}),
      });
    } else if (fs.existsSync(eventstream)) {
      const plain = fs.readFileSync(eventstream);
      fixtures.push({
        name: testCase.folder,
        clientApi,
        translated,
        kind: 'eventstream',
        request,
        status: 200,
        headers: { 'content-type': 'application/vnd.amazon.eventstream' },
        wire: plain,
        naturalChunks: eventstreamFrames(plain),
        plain,
      });
    }
  }
  const real = fs.readFileSync(path.join(sharedDir, 'fixtures', 'bedrock', 'converse-stream-real-claude.eventstream'));
  fixtures.push({
    name: 'bedrock/converse-stream-real-claude',
    clientApi: 'OpenAI',
    translated: true,
    kind: 'eventstream',
    request: {
      path: '/v1/chat/completions',
      authority: hostFor('aws-bedrock'),
      body: Buffer.from(
        JSON.stringify({
          model: 'claude-sonnet-4',
          stream: true,
          messages: [{ role: 'user', content: 'cosine of 7?' }],
        }),
      ),
    },
    status: 200,
    headers: { 'content-type': 'application/vnd.amazon.eventstream' },
    wire: real,
    naturalChunks: eventstreamFrames(real),
    plain: real,
  });
  const cassette = path.join(sharedDir, 'fixtures', 'openai-cassettes', 'extracted', 'chat-streaming-detailed-usage');
  const sseBytes = fs.readFileSync(path.join(cassette, 'response.sse'));
  fixtures.push({
    name: 'openai-cassettes/chat-streaming-detailed-usage',
    clientApi: 'OpenAI',
    translated: false,
    kind: 'sse',
    request: {
      path: '/v1/chat/completions',
      authority: hostFor('openai'),
      body: fs.readFileSync(path.join(cassette, 'request.json')),
    },
    status: 200,
    headers: { 'content-type': 'text/event-stream; charset=utf-8' },
    wire: sseBytes,
    naturalChunks: splitSseBlocks(sseBytes),
    plain: sseBytes,
  });
  return fixtures;
}

/** The exchange for a fixture with the upstream body in `chunks` (and optional cut / trailers). */
export function streamExchange(
  fixture: StreamFixture,
  chunks: Buffer[],
  options: Partial<UpstreamReply> & { deadlineMs?: number } = {},
): ExchangeSpec {
  const { deadlineMs, ...reply } = options;
  return {
    path: fixture.request.path,
    authority: fixture.request.authority,
    headers: fixture.request.headers,
    body: fixture.request.body,
    deadlineMs,
    upstream: () => ({ status: fixture.status, headers: fixture.headers, chunks, ...reply }),
  };
}

/** What must not change when the same stream arrives cut differently: the client's bytes, headers and the charge. */
export function streamSummary(outcome: ExchangeOutcome): Record<string, unknown> {
  const headers = { ...(outcome.responseHeaders ?? {}) };
  return {
    immediate: outcome.immediate
      ? { status: outcome.immediate.status, body: normalizeText(outcome.immediate.body.toString('utf8')) }
      : undefined,
    streamed: outcome.streamed,
    headers,
    body: normalizeText(outcome.clientBody.toString('utf8')),
    usage: outcome.metadata['io.envoy.ai_gateway'],
    extraAnswers: outcome.extraAnswers,
  };
}
