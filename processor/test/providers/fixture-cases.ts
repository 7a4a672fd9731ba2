/**
 * The reference translation cases (`../shared/fixtures/translation-cases`) for the provider backends, with
 * the backend configuration the fixtures README describes and the README's normalization rules.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BackendConfig } from '@ai-gateway-constructs/processor-config';
import type { TranslationContext, ClientApi, Operation } from '../../src/translate/types';

export interface CaseMeta {
  name: string;
  backend: string;
  path: string;
  expPath?: string;
  expRawQuery?: string;
  responseType?: string;
  responseStatus?: string;
  responseHeaders?: string;
  expStatus: number;
  expRequestHeaders?: Record<string, string>;
  nonExpectedRequestHeaders?: string[];
  requestHeaders?: Record<string, string>;
}

export interface FixtureCase {
  folder: string;
  meta: CaseMeta;
  dir: string;
  read(file: string): Buffer | undefined;
}

/** Backends of the provider cases, configured as the fixtures README says. */
export const FIXTURE_BACKENDS: Record<string, BackendConfig> = {
  openai: {
    name: 'openai',
    schema: { name: 'OpenAI', pathPrefix: '/v1' },
    endpoint: { hostname: 'api.openai.com', port: 443, tls: true },
  },
  'aws-bedrock': {
    name: 'aws-bedrock',
    schema: { name: 'AWSBedrock' },
    endpoint: { hostname: 'bedrock-runtime.us-east-1.amazonaws.com', port: 443, tls: true },
    auth: {
      type: 'AWSSigV4',
      region: 'us-east-1',
      credentials: {
        source: 'Secret',
        secret: { secretName: 'aws-credentials', key: 'credentials' },
        profile: 'default',
      },
      perRequestCredentials: true,
    },
  },
  'azure-openai': {
    name: 'azure-openai',
    schema: { name: 'AzureOpenAI', apiVersion: '2025-01-01-preview' },
    endpoint: { hostname: 'example.openai.azure.com', port: 443, tls: true },
  },
  'gcp-vertexai': {
    name: 'gcp-vertexai',
    schema: { name: 'GCPVertexAI', projectId: 'gcp-project-name', region: 'gcp-region' },
    endpoint: { hostname: 'gcp-region-aiplatform.googleapis.com', port: 443, tls: true },
  },
  'gcp-anthropicai': {
    name: 'gcp-anthropicai',
    schema: {
      name: 'GCPAnthropic',
      projectId: 'gcp-project-name',
      region: 'gcp-region',
      anthropicVersion: 'vertex-2023-10-16',
    },
    endpoint: { hostname: 'gcp-region-aiplatform.googleapis.com', port: 443, tls: true },
  },
  'aws-anthropic': {
    name: 'aws-anthropic',
    schema: { name: 'AWSAnthropic', anthropicVersion: 'bedrock-2023-05-31' },
    endpoint: { hostname: 'bedrock-runtime.us-east-1.amazonaws.com', port: 443, tls: true },
  },
  anthropic: {
    name: 'anthropic',
    schema: { name: 'Anthropic', version: '2023-06-01' },
    endpoint: { hostname: 'api.anthropic.com', port: 443, tls: true },
    auth: { type: 'APIKey', secret: { secretName: 'anthropic', key: 'apiKey' } },
  },
};

const PROVIDER_BACKENDS = new Set([
  'aws-bedrock',
  'azure-openai',
  'gcp-vertexai',
  'gcp-anthropicai',
  'aws-anthropic',
  'anthropic',
]);

/** Cases served by provider translators: provider backends, and the Anthropic endpoint on OpenAI backends. */
export function providerCases(casesDir: string): FixtureCase[] {
  return fs
    .readdirSync(casesDir)
    .filter((folder) => fs.existsSync(path.join(casesDir, folder, 'meta.json')))
    .sort()
    .map((folder) => {
      const dir = path.join(casesDir, folder);
      const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as CaseMeta;
      return {
        folder,
        meta,
        dir,
        read: (file: string) =>
          fs.existsSync(path.join(dir, file)) ? fs.readFileSync(path.join(dir, file)) : undefined,
      };
    })
    .filter(
      ({ meta }) =>
        PROVIDER_BACKENDS.has(meta.backend) || (meta.backend === 'openai' && meta.path.startsWith('/anthropic/')),
    );
}

export function clientApiOf(requestPath: string): {
  api: ClientApi;
  operation: Operation;
  subpath: string;
  query: string;
} {
  const q = requestPath.indexOf('?');
  const pathOnly = q === -1 ? requestPath : requestPath.slice(0, q);
  const query = q === -1 ? '' : requestPath.slice(q);
  if (pathOnly.startsWith('/anthropic/v1/')) {
    const subpath = pathOnly.slice('/anthropic/v1'.length);
    return {
      api: 'Anthropic',
      operation: subpath === '/messages/count_tokens' ? 'count_tokens' : 'messages',
      subpath,
      query,
    };
  }
  const subpath = pathOnly.slice('/v1'.length);
  const operation: Operation =
    subpath === '/chat/completions'
      ? 'chat'
      : subpath === '/completions'
        ? 'completions'
        : subpath === '/embeddings'
          ? 'embeddings'
          : subpath === '/responses'
            ? 'responses'
            : 'other';
  return { api: 'OpenAI', operation, subpath, query };
}

export const FIXED_REQUEST_ID = '8a5c2a3e-4f1b-4c3d-9e2f-0123456789ab';

export function contextFor(fixture: FixtureCase, body: Record<string, unknown>): TranslationContext {
  const { api, operation, subpath, query } = clientApiOf(fixture.meta.path);
  const model = typeof body.model === 'string' ? body.model : '';
  return {
    api,
    operation,
    subpath,
    query,
    requestModel: model,
    upstreamModel: model,
    backend: FIXTURE_BACKENDS[fixture.meta.backend],
    stream: body.stream === true,
    forceStreamUsage: false,
    requestId: FIXED_REQUEST_ID,
    nowSeconds: 1731679200,
  };
}

/** `x-response-headers` style "k:v,k:v" (values may contain ":"). */
export function parseResponseHeaders(spec: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (!spec) return headers;
  for (const pair of spec.split(',')) {
    const colon = pair.indexOf(':');
    if (colon > 0) headers[pair.slice(0, colon).trim().toLowerCase()] = pair.slice(colon + 1).trim();
  }
  return headers;
}

export function upstreamContentType(responseType: string | undefined): string {
  switch (responseType) {
    case 'sse':
    case 'sse-gzip':
      return 'text/event-stream';
    case 'aws-event-stream':
      return 'application/vnd.amazon.eventstream';
    default:
      return 'application/json';
  }
}

/** The upstream response body as the translator sees it (after content decoding). */
export function upstreamBody(fixture: FixtureCase): Buffer {
  return (
    fixture.read('upstream-response.wire.eventstream') ??
    fixture.read('upstream-response.wire.sse') ??
    fixture.read('upstream-response.json') ??
    fixture.read('upstream-response.txt') ??
    Buffer.alloc(0)
  );
}

const UUID = /[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/g;
const CREATED = /"created":\s*\d+/g;

/** The README's normalization: UUIDs and `created` values replaced on both sides. */
export function normalizeText(text: string): string {
  return text.replace(UUID, '<UUID4-replaced>').replace(CREATED, '"created":123');
}

/** JSON comparison form: normalized, and (for upstream requests) null-valued keys dropped like absent ones. */
export function normalizeJson(text: string, dropNulls: boolean): unknown {
  const value = JSON.parse(normalizeText(text));
  return dropNulls ? withoutNulls(value) : value;
}

function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = withoutNulls(v);
    return out;
  }
  return value;
}

export function seededChunks(bytes: Buffer, seed: number, maxSize: number): Buffer[] {
  let s = seed >>> 0;
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length;) {
    s = (s * 1664525 + 1013904223) >>> 0;
    const size = 1 + (s % maxSize);
    chunks.push(bytes.subarray(i, i + size));
    i += size;
  }
  return chunks;
}
