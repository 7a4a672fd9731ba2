/**
 * Table-driven end-to-end cases from `../shared/fixtures/translation-cases`: client request -> processor
 * (over real gRPC, driven like Envoy) -> fake upstream (checks path, query, headers and body) -> processor
 * -> client, compared after the fixture README's normalization, including the usage metadata.
 *
 * Each fixture backend name gets its own route, selected by host (`<backend>.cases.test`), with a rule
 * that matches any model. Test files pick the cases they cover and describe the backends they need:
 *
 *   defineTranslationCaseTests({ name, select: (c) => ..., backends: { openai: { backend: ... } } });
 *
 * Documented differences from the reference gateway (allowed by the fixtures README): errors the gateway
 * produces itself use OpenAI's error shape (`{"error":{message,type,param,code}}`) instead of the reference
 * envelope; such cases compare status, message (and code when the reference sets one). `/models` reports
 * `owned_by: "ai-gateway"` and the config load time as `created`; only ids and objects are compared.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import {
  CONFIG_VERSION,
  type BackendConfig,
  type CostConfig,
  type ProcessorConfig,
  type RouteConfig,
} from '@ai-gateway-constructs/processor-config';
import type { TokenUsage } from '../../src/translate/types';
import { usageFromOpenAI } from '../../src/translate/openai-usage';
import type { ExchangeResult, UpstreamRequest, UpstreamResponse } from './envoy-client';
import { expectedClientJson, expectedClientSse } from './fixture-deviations';
import { startTestProcessor, type TestProcessor } from './processor-harness';
import { describeWithShared } from './shared';

export interface CaseMeta {
  name: string;
  backend?: string;
  path: string;
  method?: string;
  expPath?: string;
  expRawQuery?: string;
  responseType?: string;
  responseStatus?: string;
  /** `key:value,key:value` */
  responseHeaders?: string;
  expStatus: number;
  expRequestHeaders?: Record<string, string>;
  nonExpectedRequestHeaders?: string[];
  requestHeaders?: Record<string, string>;
  expResponseHeaders?: Record<string, string>;
  expResponseBodyFunc?: { expected_body_contains?: string[]; expected_body_json?: { data?: Array<{ id: string }> } };
}

export interface TranslationCase {
  folder: string;
  dir: string;
  meta: CaseMeta;
  clientRequest: Buffer;
  upstreamRequestExpected?: unknown;
  /** The upstream body as it goes on the wire (already framed / encoded). */
  upstreamResponse?: { bytes: Buffer; chunks: Buffer[]; kind: 'json' | 'text' | 'sse' | 'eventstream' };
  /**
   * `text`: what the client must receive (support/fixture-deviations applied); `reference`: what the reference
   * gateway sends, whose usage the metadata must still carry.
   */
  clientResponseExpected?: { text: string; kind: 'json' | 'sse' | 'txt'; reference?: string };
}

export interface FixtureBackend {
  backend: BackendConfig;
  modelNameOverride?: string;
  /** Files to create at `<secrets-dir>/<secretName>/<key>`. */
  secrets?: Record<string, Record<string, string>>;
}

export interface TranslationCaseOptions {
  /** Shown in the describe block. */
  name: string;
  select(testCase: TranslationCase): boolean;
  /** By fixture backend name (meta.backend). */
  backends: Record<string, FixtureBackend>;
  /** Usage the metadata must carry; default: the OpenAI `usage` in the expected client response (JSON or SSE). */
  expectedUsage?(testCase: TranslationCase, result: ExchangeResult): TokenUsage | undefined;
  /** Extra costs (e.g. to force stream usage). */
  costs?: CostConfig[];
  /** Cost metadata values the case must produce, from the expected usage. */
  expectedCosts?(usage: TokenUsage): Record<string, number>;
  /** Relative to ../shared; default `fixtures/translation-cases`. */
  casesDir?: string;
}

const CASES_DIR = 'fixtures/translation-cases';

function readIf(dir: string, file: string): Buffer | undefined {
  const full = path.join(dir, file);
  return fs.existsSync(full) ? fs.readFileSync(full) : undefined;
}

/** SSE split into its blank-line-separated blocks: one upstream body message per event. */
export function splitSseBlocks(bytes: Buffer): Buffer[] {
  const text = bytes.toString('utf8');
  const blocks = text.split(/(?<=\n\n)/);
  return blocks.filter((b) => b.length > 0).map((b) => Buffer.from(b));
}

export function loadTranslationCases(dir: string): TranslationCase[] {
  return fs
    .readdirSync(dir)
    .filter((folder) => fs.existsSync(path.join(dir, folder, 'meta.json')))
    .sort()
    .map((folder) => {
      const caseDir = path.join(dir, folder);
      const meta = JSON.parse(fs.readFileSync(path.join(caseDir, 'meta.json'), 'utf8')) as CaseMeta;
      const clientRequest =
        readIf(caseDir, 'client-request.json') ?? readIf(caseDir, 'client-request.txt') ?? Buffer.alloc(0);
      const expectedUpstream = readIf(caseDir, 'upstream-request.expected.json');
      let upstreamResponse: TranslationCase['upstreamResponse'];
      const sse = readIf(caseDir, 'upstream-response.wire.sse');
      const eventstream = readIf(caseDir, 'upstream-response.wire.eventstream');
      const json = readIf(caseDir, 'upstream-response.json');
      const text = readIf(caseDir, 'upstream-response.txt');
      if (sse) {
        let chunks = splitSseBlocks(sse);
        if (meta.responseType === 'sse-gzip') chunks = splitEvery(zlib.gzipSync(sse), 61);
        upstreamResponse = { bytes: Buffer.concat(chunks), chunks, kind: 'sse' };
      } else if (eventstream) {
        upstreamResponse = { bytes: eventstream, chunks: splitEvery(eventstream, 97), kind: 'eventstream' };
      } else if (json) {
        const bytes = meta.responseType === 'gzip' ? zlib.gzipSync(json) : json;
        upstreamResponse = { bytes, chunks: [bytes], kind: 'json' };
      } else if (text) {
        upstreamResponse = { bytes: text, chunks: [text], kind: 'text' };
      }
      let clientResponseExpected: TranslationCase['clientResponseExpected'];
      for (const kind of ['json', 'sse', 'txt'] as const) {
        const bytes = readIf(caseDir, `client-response.expected.${kind}`);
        if (bytes) clientResponseExpected = { text: bytes.toString('utf8'), kind };
      }
      if (clientResponseExpected) clientResponseExpected.reference = clientResponseExpected.text;
      if (clientResponseExpected?.kind === 'json') {
        clientResponseExpected.text = expectedClientJson(folder, clientResponseExpected.text, json?.toString('utf8'));
      } else if (clientResponseExpected?.kind === 'sse') {
        clientResponseExpected.text = expectedClientSse(folder, clientResponseExpected.text);
      }
      return {
        folder,
        dir: caseDir,
        meta,
        clientRequest,
        upstreamRequestExpected: expectedUpstream ? JSON.parse(expectedUpstream.toString('utf8')) : undefined,
        upstreamResponse,
        clientResponseExpected,
      };
    });
}

/** Arbitrary chunk boundaries, as a network would cut a compressed stream. */
export function splitEvery(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  return chunks;
}

export function normalizeText(text: string): string {
  return text
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<UUID4-replaced>')
    .replace(/"created":\s*\d+/g, '"created":123');
}

function parseHeaderList(list: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!list) return out;
  for (const pair of list.split(',')) {
    const colon = pair.indexOf(':');
    if (colon > 0) out[pair.slice(0, colon).trim().toLowerCase()] = pair.slice(colon + 1).trim();
  }
  return out;
}

function contentTypeFor(kind: string | undefined): string {
  switch (kind) {
    case 'sse':
      return 'text/event-stream';
    case 'eventstream':
      return 'application/vnd.amazon.eventstream';
    case 'text':
      return 'text/plain';
    default:
      return 'application/json';
  }
}

export function hostFor(backend: string): string {
  return `${backend}.cases.test`;
}

/** The config: one route per fixture backend, selected by host, matching every model. */
export function caseConfig(
  backends: Record<string, FixtureBackend>,
  listedModels: string[],
  costs: CostConfig[] = [],
): ProcessorConfig {
  const routes: RouteConfig[] = Object.entries(backends).map(([fixtureName, fixture]) => ({
    name: `cases/${fixtureName}`,
    endpoints: [
      { api: 'OpenAI', pathPrefix: '/v1' },
      { api: 'Anthropic', pathPrefix: '/anthropic/v1' },
    ],
    hostnames: [hostFor(fixtureName)],
    rules: [
      {
        models: [
          ...listedModels.map((value) => ({ type: 'Exact' as const, value })),
          { type: 'RegularExpression' as const, value: '.*' },
        ],
        backends: [
          {
            backend: fixture.backend.name,
            weight: 1,
            priority: 0,
            ...(fixture.modelNameOverride ? { modelNameOverride: fixture.modelNameOverride } : {}),
          },
        ],
      },
    ],
    requiredHeaders: [],
    // The shared cases include image generation, which is not served without opting in.
    passthroughEndpoints: [{ path: '/images/generations', methods: ['POST'] }],
  }));
  const unique = new Map<string, BackendConfig>();
  for (const fixture of Object.values(backends)) unique.set(fixture.backend.name, fixture.backend);
  return {
    version: CONFIG_VERSION,
    maxRequestBodyBytes: 10 * 1024 * 1024,
    backends: [...unique.values()],
    routes,
    costs,
    circuitBreaker: { failureThreshold: 1000, openDurationMs: 1000 },
  };
}

/** OpenAI usage from a JSON body or the last usage chunk of an SSE body; undefined when none. */
export function openAIUsageOf(text: string): TokenUsage | undefined {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    try {
      return usageFromOpenAI((JSON.parse(trimmed) as { usage?: unknown }).usage);
    } catch {
      return undefined;
    }
  }
  let usage: TokenUsage | undefined;
  for (const line of trimmed.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    try {
      const found = usageFromOpenAI((JSON.parse(line.slice(6)) as { usage?: unknown }).usage);
      if (found) usage = found;
    } catch {
      // not JSON
    }
  }
  return usage;
}

/** The reference gateway's own error envelope or plain-text errors: compare semantically. */
function referenceErrorOf(
  testCase: TranslationCase,
): { message?: string; code?: string; contains?: string[] } | undefined {
  const expected = testCase.clientResponseExpected;
  const contains = testCase.meta.expResponseBodyFunc?.expected_body_contains;
  if (contains) return { contains: contains.filter((item) => !/^"(type|code)":/.test(item)) };
  if (!expected) return undefined;
  if (expected.kind === 'txt') return { message: expected.text.trim() };
  try {
    const parsed = JSON.parse(expected.text) as { type?: string; error?: { message?: string; code?: string } };
    if (parsed.type === 'error' && parsed.error) return { message: parsed.error.message, code: parsed.error.code };
  } catch {
    return undefined;
  }
  return undefined;
}

export function checkUpstreamRequest(testCase: TranslationCase, request: UpstreamRequest): void {
  const meta = testCase.meta;
  const [pathOnly, query = ''] = request.path.split(/\?(.*)/s);
  if (meta.expPath !== undefined) expect(pathOnly).toBe(meta.expPath);
  if (meta.expRawQuery !== undefined) expect(query).toBe(meta.expRawQuery);
  for (const [name, value] of Object.entries(meta.expRequestHeaders ?? {})) {
    expect({ [name]: request.headers[name.toLowerCase()] }).toEqual({ [name]: value });
  }
  for (const name of meta.nonExpectedRequestHeaders ?? []) expect(request.headers[name.toLowerCase()]).toBeUndefined();
  if (testCase.upstreamRequestExpected !== undefined) {
    expect(JSON.parse(request.body.toString('utf8'))).toEqual(testCase.upstreamRequestExpected);
  }
  if (request.body.length > 0) expect(request.headers['content-length']).toBe(String(request.body.length));
}

export function checkClientResponse(testCase: TranslationCase, result: ExchangeResult): void {
  const meta = testCase.meta;
  expect(result.status).toBe(meta.expStatus);
  const body = result.body.toString('utf8');
  if (result.headers['content-length'] !== undefined)
    expect(result.headers['content-length']).toBe(String(result.body.length));
  for (const [name, value] of Object.entries(meta.expResponseHeaders ?? {})) {
    expect(result.headers[name.toLowerCase()]).toBe(value);
  }
  const listed = meta.expResponseBodyFunc?.expected_body_json?.data;
  if (listed) {
    const parsed = JSON.parse(body) as { object: string; data: Array<{ id: string; object: string }> };
    expect(parsed.object).toBe('list');
    expect(parsed.data.map((m) => ({ id: m.id, object: m.object }))).toEqual(
      listed.map((m) => ({ id: m.id, object: 'model' })),
    );
    return;
  }
  const expected = testCase.clientResponseExpected;
  if (expected) {
    const exactMatch = (): boolean => {
      if (expected.kind === 'json') {
        try {
          expect(JSON.parse(normalizeText(body))).toEqual(JSON.parse(normalizeText(expected.text)));
          return true;
        } catch {
          return false;
        }
      }
      return normalizeText(body).trim() === normalizeText(expected.text).trim();
    };
    if (exactMatch()) return;
  }
  const reference = referenceErrorOf(testCase);
  if (reference && meta.expStatus >= 400) {
    const error = (JSON.parse(body) as { error?: { message?: string; code?: string | null } }).error;
    expect(error).toBeDefined();
    if (reference.message !== undefined) expect(error?.message).toContain(reference.message);
    if (reference.code !== undefined) expect(error?.code).toBe(reference.code);
    for (const item of reference.contains ?? []) expect(body).toContain(item);
    return;
  }
  // Report the real difference.
  if (expected?.kind === 'json')
    expect(JSON.parse(normalizeText(body))).toEqual(JSON.parse(normalizeText(expected.text)));
  else expect(normalizeText(body).trim()).toBe(normalizeText(expected?.text ?? '').trim());
}

export function fakeUpstreamFor(testCase: TranslationCase, seen: (request: UpstreamRequest) => void) {
  return (request: UpstreamRequest): UpstreamResponse => {
    seen(request);
    const meta = testCase.meta;
    const headers: Record<string, string> = {
      'content-type': contentTypeFor(testCase.upstreamResponse?.kind),
      ...parseHeaderList(meta.responseHeaders),
    };
    if (meta.responseType === 'gzip' || meta.responseType === 'sse-gzip') headers['content-encoding'] = 'gzip';
    const bytes = testCase.upstreamResponse?.bytes ?? Buffer.alloc(0);
    if (testCase.upstreamResponse?.kind !== 'sse' && testCase.upstreamResponse?.kind !== 'eventstream') {
      headers['content-length'] = String(bytes.length);
    }
    return {
      status: Number(meta.responseStatus ?? 200),
      headers,
      body: testCase.upstreamResponse?.chunks ?? [],
    };
  };
}

export function defineTranslationCaseTests(options: TranslationCaseOptions): void {
  describeWithShared(options.casesDir ?? CASES_DIR, options.name, (dir) => {
    const cases = loadTranslationCases(dir).filter((c) => options.select(c));
    const listedModels = [
      ...new Set(cases.flatMap((c) => c.meta.expResponseBodyFunc?.expected_body_json?.data?.map((m) => m.id) ?? [])),
    ];
    let processor: TestProcessor;
    const secrets: Record<string, Record<string, string>> = {};
    for (const fixture of Object.values(options.backends)) Object.assign(secrets, fixture.secrets ?? {});

    beforeAll(async () => {
      processor = await startTestProcessor(caseConfig(options.backends, listedModels, options.costs), { secrets });
    });
    afterAll(() => processor.close());

    it('selects at least one case', () => expect(cases.length).toBeGreaterThan(0));

    for (const testCase of cases) {
      it(`${testCase.folder}: ${testCase.meta.name}`, async () => {
        const meta = testCase.meta;
        let upstreamSeen: UpstreamRequest | undefined;
        const result = await processor.client.exchange(
          {
            method: meta.method ?? (testCase.clientRequest.length > 0 ? 'POST' : 'GET'),
            path: meta.path,
            authority: hostFor(meta.backend ?? 'none'),
            headers: meta.requestHeaders,
            body: (meta.method ?? 'POST') === 'GET' ? undefined : testCase.clientRequest,
          },
          fakeUpstreamFor(testCase, (request) => {
            upstreamSeen = request;
          }),
        );
        if (upstreamSeen) checkUpstreamRequest(testCase, upstreamSeen);
        else expect(meta.expPath).toBeUndefined();
        checkClientResponse(testCase, result);

        const metadata = result.metadata['io.envoy.ai_gateway'];
        expect(metadata).toBeDefined();
        for (const key of [
          'llm_input_token',
          'llm_output_token',
          'llm_total_token',
          'llm_cached_input_token',
          'llm_reasoning_token',
        ]) {
          expect(typeof metadata?.[key]).toBe('number');
        }
        const usage = options.expectedUsage
          ? options.expectedUsage(testCase, result)
          : result.status < 300
            ? openAIUsageOf(testCase.clientResponseExpected?.reference ?? result.body.toString('utf8'))
            : undefined;
        const expectedUsage = usage ?? { input: 0, output: 0, total: 0, cachedInput: 0, reasoning: 0 };
        expect(metadata).toMatchObject({
          llm_input_token: expectedUsage.input,
          llm_output_token: expectedUsage.output,
          llm_total_token: expectedUsage.total,
          llm_cached_input_token: expectedUsage.cachedInput,
          llm_reasoning_token: expectedUsage.reasoning,
          ...(options.expectedCosts?.(expectedUsage) ?? {}),
        });
      });
    }
  });
}
