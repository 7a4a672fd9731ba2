/**
 * The routing contract between the emitted HTTPRoutes and the processor, proven on the emitted YAML with a
 * model of Envoy Gateway's route ordering (test/support/eg-route-order.ts) and the processor's own translators:
 * the first match lands on the AIRoute's catch-all (where its EnvoyExtensionPolicy enables the processor), and the
 * match Envoy repeats after the processor rewrote the path lands on the chosen backend's rule, for every provider,
 * operation and path prefix, next to ordinary HTTPRoutes of the same Gateway.
 */
import { ApiObject, Chart, Testing } from 'cdk8s';
import type { Construct } from 'constructs';
import { CLIENT_CREDENTIAL_HEADERS } from '../processor/src/auth';
import { PER_REQUEST_CREDENTIAL_HEADER_NAMES } from '../processor/src/auth/aws';
import {
  BACKEND_HEADER,
  MODEL_HEADER,
  parseProcessorConfig,
  type BackendConfig,
} from '@ai-gateway-constructs/processor-config';
import { TRANSLATORS } from '../processor/src/translate/registry';
import type { ClientApi, Operation } from '../processor/src/translate/types';
import { AIGateway, AIRoute, Credentials, ModelMatch, ProviderBackend } from '../lib';
import { unstableHeaderReason } from '../lib/identity-headers';
import { outrankedPaths, prefixCovers, virtualHostsOf } from '../lib/route-precedence';
import { orderedEntries, selectEntry, type RouteEntry } from './support/eg-route-order';
import type { Manifest } from './support/manifests';
import { findAll, findOne, policyRoutes, synthAll } from './support/synth';

const apiKey = Credentials.apiKey({ secretName: 'key', key: 'k' });

const PROVIDERS: [string, (scope: Construct) => ProviderBackend][] = [
  ['openAI', (s) => ProviderBackend.openAI(s, 'B', { name: 'b', credentials: apiKey })],
  [
    'openAICompatible, Groq (/openai/v1)',
    (s) => ProviderBackend.openAICompatible(s, 'B', { name: 'b', baseUrl: 'https://api.groq.com/openai/v1' }),
  ],
  [
    'openAICompatible, /api/v1',
    (s) => ProviderBackend.openAICompatible(s, 'B', { name: 'b', baseUrl: 'https://llm.example.com/api/v1' }),
  ],
  [
    'openAICompatible, /v1beta/openai',
    (s) => ProviderBackend.openAICompatible(s, 'B', { name: 'b', baseUrl: 'https://gemini.example.com/v1beta/openai' }),
  ],
  [
    'openAICompatible, no path',
    (s) => ProviderBackend.openAICompatible(s, 'B', { name: 'b', baseUrl: 'http://llm.internal.example:8080' }),
  ],
  [
    'azureOpenAI',
    (s) =>
      ProviderBackend.azureOpenAI(s, 'B', {
        name: 'b',
        hostname: 'r.openai.azure.com',
        apiVersion: '2025-01-01-preview',
        credentials: apiKey,
      }),
  ],
  ['anthropic', (s) => ProviderBackend.anthropic(s, 'B', { name: 'b', credentials: apiKey })],
  [
    'awsBedrock',
    (s) =>
      ProviderBackend.awsBedrock(s, 'B', {
        name: 'b',
        region: 'us-east-1',
        credentials: Credentials.awsDefaultChain(),
      }),
  ],
  [
    'awsAnthropic',
    (s) =>
      ProviderBackend.awsAnthropic(s, 'B', {
        name: 'b',
        region: 'eu-west-1',
        credentials: Credentials.awsDefaultChain(),
      }),
  ],
  [
    'gcpVertexAI',
    (s) =>
      ProviderBackend.gcpVertexAI(s, 'B', {
        name: 'b',
        projectId: 'proj-1',
        region: 'us-central1',
        credentials: Credentials.gcpWorkloadIdentity(),
      }),
  ],
  [
    'gcpAnthropic',
    (s) =>
      ProviderBackend.gcpAnthropic(s, 'B', {
        name: 'b',
        projectId: 'proj-1',
        region: 'global',
        credentials: Credentials.gcpWorkloadIdentity(),
      }),
  ],
  ['kubernetesService (/v1)', (s) => ProviderBackend.kubernetesService(s, 'B', { serviceName: 'b', port: 8000 })],
  [
    'kubernetesService (/serve/v1)',
    (s) => ProviderBackend.kubernetesService(s, 'B', { serviceName: 'b', port: 8000, pathPrefix: '/serve/v1' }),
  ],
];

const ENDPOINTS: { pathPrefix: string; anthropicPathPrefix?: string }[] = [
  { pathPrefix: '/v1' },
  { pathPrefix: '/ai/v1' },
  { pathPrefix: '/v1', anthropicPathPrefix: '/anthropic/v1' },
  { pathPrefix: '/openai/v1', anthropicPathPrefix: '/v1' },
];

const SUBPATHS: Record<Operation, string> = {
  chat: '/chat/completions',
  completions: '/completions',
  embeddings: '/embeddings',
  responses: '/responses',
  other: '/images/generations',
  messages: '/messages',
  count_tokens: '/messages/count_tokens',
};

function bodyFor(operation: Operation, stream: boolean): Record<string, unknown> {
  const messages = [{ role: 'user', content: 'hi' }];
  switch (operation) {
    case 'chat':
      return { model: 'm-1', messages, stream };
    case 'completions':
      return { model: 'm-1', prompt: 'hi', stream };
    case 'embeddings':
      return { model: 'm-1', input: 'hi' };
    case 'responses':
      return { model: 'm-1', input: 'hi', stream };
    case 'other':
      return { model: 'm-1', prompt: 'a cat' };
    case 'messages':
      return { model: 'm-1', max_tokens: 16, messages, stream };
    case 'count_tokens':
      return { model: 'm-1', messages };
  }
}

/** Every upstream request the processor's translators make for `backend` from a client API. */
function upstreamRequests(
  api: ClientApi,
  backend: BackendConfig,
): { operation: Operation; stream: boolean; path: string; headers: string[] }[] {
  const requests: { operation: Operation; stream: boolean; path: string; headers: string[] }[] = [];
  for (const [operation, bySchema] of Object.entries(TRANSLATORS[api] ?? {}) as [Operation, Record<string, any>][]) {
    const factory = bySchema[backend.schema.name];
    if (!factory) continue;
    for (const stream of [false, true]) {
      const translator = factory({
        api,
        operation,
        subpath: SUBPATHS[operation],
        query: '',
        requestModel: 'm-1',
        // Bedrock embeds with embedding models only (Titan, Cohere embed).
        upstreamModel:
          operation === 'embeddings' && backend.schema.name === 'AWSBedrock'
            ? 'cohere.embed-english-v3'
            : 'us.anthropic.claude-sonnet-4-20250514-v1:0',
        backend,
        stream,
        forceStreamUsage: true,
        requestId: 'req-1',
        nowSeconds: 0,
      });
      const upstream = translator.request(bodyFor(operation, stream));
      requests.push({
        operation,
        stream,
        path: upstream.path,
        headers: [...Object.keys(upstream.setHeaders), ...upstream.removeHeaders],
      });
    }
  }
  return requests;
}

function build(
  provider: (scope: Construct) => ProviderBackend,
  endpoints: { pathPrefix: string; anthropicPathPrefix?: string },
) {
  const app = Testing.app();
  const chart = new Chart(app, 'platform', { namespace: 'platform' });
  const gateway = new AIGateway(chart, 'Gateway', { name: 'gw' });
  const backend = provider(chart);
  new AIRoute(chart, 'Chat', {
    name: 'chat',
    gateway,
    ...endpoints,
    rules: [{ models: [ModelMatch.prefix('m-')], backends: [{ backend }] }],
  });
  // An ordinary website on the same Gateway and host, with a catch-all of its own.
  new ApiObject(chart, 'Web', {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'web' },
    spec: {
      parentRefs: [{ name: 'gw' }],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: 'web', port: 80 }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/docs' } }], backendRefs: [{ name: 'docs', port: 80 }] },
      ],
    },
  });
  const manifests = synthAll(app);
  const config = parseProcessorConfig(JSON.parse(findOne(manifests, 'ConfigMap').data['config.json']));
  return { manifests, config, backend };
}

/** The pre-fix rule shape: backend rules matched the header on the endpoint prefixes only (and no other route). */
function oldShape(manifests: readonly Manifest[], endpointPrefixes: string[]): Manifest[] {
  return manifests
    .filter((m) => m.kind !== 'HTTPRoute' || m.metadata.name === 'chat')
    .map((m) => {
      if (m.kind !== 'HTTPRoute' || m.metadata.name !== 'chat') return m;
      const spec = (m as any).spec;
      const rules = spec.rules.map((rule: any) =>
        rule.backendRefs
          ? { ...rule, matches: rule.matches.filter((match: any) => endpointPrefixes.includes(match.path.value)) }
          : rule,
      );
      return { ...m, spec: { ...spec, rules } };
    });
}

const describeEntry = (entry: RouteEntry | undefined) =>
  entry ? `${entry.route} rule ${entry.rule}` : 'no route (Envoy 404 NR)';

describe('the routing contract', () => {
  describe.each(PROVIDERS)('%s', (_name, provider) => {
    it.each(
      ENDPOINTS.map(
        (e) =>
          [e.anthropicPathPrefix ? `${e.pathPrefix} + Anthropic ${e.anthropicPathPrefix}` : e.pathPrefix, e] as const,
      ),
    )('first match on the catch-all, re-match on the backend rule, for every operation (%s)', (_label, endpoints) => {
      const { manifests, config, backend } = build(provider, endpoints);
      const entries = orderedEntries(manifests, { namespace: 'platform', name: 'gw' });
      const route = findOne(manifests, 'HTTPRoute', 'chat');
      const catchAll = route.spec.rules.length - 1;
      expect(policyRoutes(manifests, findOne(manifests, 'EnvoyExtensionPolicy'))).toEqual(['platform/chat']);
      const entryName = config.backends[0].name;
      const apis: [ClientApi, string][] = [['OpenAI', endpoints.pathPrefix]];
      if (endpoints.anthropicPathPrefix) apis.push(['Anthropic', endpoints.anthropicPathPrefix]);
      let checked = 0;
      for (const [api, prefix] of apis) {
        for (const request of upstreamRequests(api, config.backends[0])) {
          const clientPath = `${prefix}${SUBPATHS[request.operation]}`;
          const what =
            `${api} ${request.operation}${request.stream ? ' (stream)' : ''}: ${clientPath} -> ` + `${request.path}`;
          // The processor only ever sends this backend paths below its upstream prefix (what the rule matches).
          expect({ what, under: prefixCovers(backend.upstreamPathPrefix, request.path.split('?')[0]) }).toEqual({
            what,
            under: true,
          });
          const first = selectEntry(entries, { host: 'ai.example.com', path: clientPath });
          expect({ what, first: describeEntry(first) }).toEqual({ what, first: `platform/chat rule ${catchAll}` });
          const second = selectEntry(entries, {
            host: 'ai.example.com',
            path: request.path,
            headers: { [BACKEND_HEADER]: entryName, [MODEL_HEADER]: 'm-1' },
          });
          expect({ what, second: describeEntry(second) }).toEqual({ what, second: 'platform/chat rule 0' });
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(0);
      // Ordinary routes keep serving everything else, without the processor.
      expect(describeEntry(selectEntry(entries, { host: 'ai.example.com', path: '/docs/intro' }))).toBe(
        'platform/web rule 1',
      );
      expect(describeEntry(selectEntry(entries, { host: 'ai.example.com', path: '/index.html' }))).toBe(
        'platform/web rule 0',
      );
    });
  });

  it('fails for the old rule shape where the provider path leaves the endpoint prefix (why the fix exists)', () => {
    const cases: [number, { pathPrefix: string }, string, string][] = [
      [7, { pathPrefix: '/v1' }, '/model/m/converse', 'no route (Envoy 404 NR)'],
      [5, { pathPrefix: '/v1' }, '/openai/deployments/m/chat/completions?api-version=x', 'no route (Envoy 404 NR)'],
      [1, { pathPrefix: '/v1' }, '/openai/v1/chat/completions', 'no route (Envoy 404 NR)'],
      [0, { pathPrefix: '/ai/v1' }, '/v1/chat/completions', 'no route (Envoy 404 NR)'],
      [0, { pathPrefix: '/v1' }, '/v1/chat/completions', 'platform/chat rule 0'],
    ];
    for (const [index, endpoints, upstreamPath, expected] of cases) {
      const { manifests, config } = build(PROVIDERS[index][1], endpoints);
      const old = orderedEntries(oldShape(manifests, [endpoints.pathPrefix]), { namespace: 'platform', name: 'gw' });
      const selected = selectEntry(old, {
        host: 'ai.example.com',
        path: upstreamPath,
        headers: { [BACKEND_HEADER]: config.backends[0].name },
      });
      const label = `${PROVIDERS[index][0]} ${upstreamPath}`;
      expect({ label, selected: describeEntry(selected) }).toEqual({ label, selected: expected });
    }
  });

  it('lets a deeper team prefix share the host with a route whose backends receive fixed paths elsewhere', () => {
    const app = Testing.app();
    const chart = new Chart(app, 'platform', { namespace: 'platform' });
    const gateway = new AIGateway(chart, 'Gateway', { name: 'gw' });
    const anthropic = ProviderBackend.anthropic(chart, 'Anthropic', { name: 'anthropic', credentials: apiKey });
    const vllm = ProviderBackend.kubernetesService(chart, 'Vllm', { serviceName: 'vllm', port: 8000 });
    new AIRoute(chart, 'Main', {
      name: 'main',
      gateway,
      rules: [{ models: [ModelMatch.prefix('claude-')], backends: [{ backend: anthropic }] }],
    });
    new AIRoute(chart, 'TeamB', {
      name: 'team-b',
      gateway,
      pathPrefix: '/v1/team-b',
      rules: [{ models: [ModelMatch.prefix('llama-')], backends: [{ backend: vllm }] }],
    });
    const manifests = synthAll(app);
    const config = parseProcessorConfig(JSON.parse(findOne(manifests, 'ConfigMap').data['config.json']));
    const entries = orderedEntries(manifests, { namespace: 'platform', name: 'gw' });
    const [main, teamB] = config.backends.map((b) => b.name);
    expect(describeEntry(selectEntry(entries, { host: 'h', path: '/v1/chat/completions' }))).toBe(
      'platform/main rule 1',
    );
    expect(describeEntry(selectEntry(entries, { host: 'h', path: '/v1/team-b/chat/completions' }))).toBe(
      'platform/team-b rule 1',
    );
    expect(
      describeEntry(selectEntry(entries, { host: 'h', path: '/v1/messages', headers: { [BACKEND_HEADER]: main } })),
    ).toBe('platform/main rule 0');
    // vLLM's prefix is /v1: the team route's client path /v1/team-b/x is forwarded as /v1/x.
    expect(
      describeEntry(
        selectEntry(entries, { host: 'h', path: '/v1/chat/completions', headers: { [BACKEND_HEADER]: teamB } }),
      ),
    ).toBe('platform/team-b rule 0');
  });

  it('keeps the route within Gateway API limits with 15 backends and two endpoints', () => {
    const app = Testing.app();
    const chart = new Chart(app, 'platform', { namespace: 'platform' });
    const gateway = new AIGateway(chart, 'Gateway', { name: 'gw' });
    const backends = Array.from({ length: 15 }, (_, i) => ({
      backend: ProviderBackend.awsBedrock(chart, `B${i}`, {
        name: `b${i}`,
        region: 'us-east-1',
        credentials: Credentials.awsDefaultChain(),
      }),
    }));
    new AIRoute(chart, 'Chat', {
      name: 'chat',
      gateway,
      anthropicPathPrefix: '/anthropic/v1',
      rules: [{ models: [ModelMatch.prefix('m')], backends }],
    });
    const route = findOne(synthAll(app), 'HTTPRoute');
    expect(route.spec.rules).toHaveLength(16);
    expect(route.spec.rules.reduce((n: number, rule: any) => n + rule.matches.length, 0)).toBe(15 * 4 + 2);
  });
});

describe('route precedence arithmetic', () => {
  const backend = (upstreamPrefix: string, matchPrefixes: string[]) => ({
    prop: 'p',
    name: 'b',
    upstreamPrefix,
    matchPrefixes,
  });

  it('matches PathPrefix segment by segment', () => {
    expect(prefixCovers('/v1', '/v1')).toBe(true);
    expect(prefixCovers('/v1', '/v1/chat')).toBe(true);
    expect(prefixCovers('/v1', '/v1beta/x')).toBe(false);
    expect(prefixCovers('/', '/anything')).toBe(true);
  });

  it('finds the header-less prefixes that out-rank a backend rule, and only those', () => {
    const bedrock = backend('/model', ['/v1', '/model', '/']);
    expect(outrankedPaths('/model/x', bedrock)).toBe('/model/x');
    expect(outrankedPaths('/model', bedrock)).toBeUndefined(); // equal length: the header wins
    expect(outrankedPaths('/', bedrock)).toBeUndefined();
    expect(outrankedPaths('/v1', bedrock)).toBeUndefined(); // no path in common
    // Without its upstream prefix match, any header-less prefix covering /model would win.
    expect(outrankedPaths('/model', backend('/model', ['/v1', '/']))).toBe('/model');
    const openai = backend('/v1', ['/v1', '/']);
    expect(outrankedPaths('/v1/team-b', openai)).toBe('/v1/team-b');
    expect(outrankedPaths('/v1', openai)).toBeUndefined();
    // When the processor forwards the client's path, deeper prefixes take those clients at the first match already;
    // only the path of translated (Anthropic -> OpenAI) requests can still be taken away.
    const forwarding = { ...openai, forwardsClientPath: true };
    expect(outrankedPaths('/v1/team-b', forwarding)).toBeUndefined();
    expect(outrankedPaths('/v1/chat', forwarding)).toBe('/v1/chat/completions');
    expect(outrankedPaths('/v1/chat/completions', forwarding)).toBe('/v1/chat/completions');
    expect(outrankedPaths('/', forwarding)).toBeUndefined();
  });

  it('places routes in the virtual hosts Envoy Gateway builds per listener', () => {
    const listeners = [{ name: 'http' }, { name: 'https', hostname: '*.example.com' }];
    expect(virtualHostsOf(listeners, [])).toEqual(['http|*', 'https|*.example.com']);
    expect(virtualHostsOf(listeners, ['ai.example.com', 'ai.other.org'])).toEqual([
      'http|ai.example.com',
      'http|ai.other.org',
      'https|ai.example.com',
    ]);
    expect(virtualHostsOf([{ name: 'http', hostname: 'ai.example.com' }], ['*.example.com'])).toEqual([
      'http|ai.example.com',
    ]);
  });
});

describe('identity headers', () => {
  it('include every header the processor sets or removes on the way to a provider', () => {
    const headers = new Set<string>([
      ...CLIENT_CREDENTIAL_HEADERS,
      ...PER_REQUEST_CREDENTIAL_HEADER_NAMES,
      BACKEND_HEADER,
      MODEL_HEADER,
      'content-length',
      'x-amz-date',
      'x-amz-security-token',
      'host',
    ]);
    for (const [, provider] of PROVIDERS) {
      const { config } = build(provider, { pathPrefix: '/v1', anthropicPathPrefix: '/anthropic/v1' });
      for (const api of ['OpenAI', 'Anthropic'] as const) {
        for (const request of upstreamRequests(api, config.backends[0])) request.headers.forEach((h) => headers.add(h));
      }
    }
    expect(headers).toContain('anthropic-version');
    expect([...headers].filter((h) => unstableHeaderReason(h) === undefined)).toEqual([]);
  });

  it('leave ordinary tenant headers alone', () => {
    expect(['x-tenant-id', 'x-team', 'x-user'].map(unstableHeaderReason)).toEqual([undefined, undefined, undefined]);
  });
});

describe('ordinary HTTPRoutes on an AIGateway', () => {
  it('are not enabled for the processor', () => {
    const { manifests } = build(PROVIDERS[0][1], { pathPrefix: '/v1' });
    expect(findAll(manifests, 'EnvoyExtensionPolicy').map((p) => policyRoutes(manifests, p))).toEqual([
      ['platform/chat'],
    ]);
  });
});
