import { Chart, Duration, Testing } from 'cdk8s';
import { parseProcessorConfig } from '@ai-gateway-constructs/processor-config';
import {
  AIGateway,
  AIRoute,
  AllowedRoutes,
  type AIRouteRule,
  Credentials,
  GatewayReference,
  ModelMatch,
  ProviderBackend,
} from '../lib';
import { gatewayFixture } from './support/fixtures';
import { manifestProblems } from './support/manifests';
import { describeWithShared } from './support/shared';
import { findAll, findOne, policyRoutes, synthAll } from './support/synth';

function configOf(all: ReturnType<typeof synthAll>, configMapName?: string) {
  return parseProcessorConfig(JSON.parse(findOne(all, 'ConfigMap', configMapName).data['config.json']));
}

describe('AIRoute', () => {
  it(
    'emits one HTTPRoute rule per backend matching the backend header on the endpoint prefixes, ' +
      'the upstream prefix and /, plus a 404 catch-all',
    () => {
      const { app, team, gateway, openai, anthropic } = gatewayFixture();
      new AIRoute(team, 'Route', {
        name: 'chat',
        gateway,
        hostnames: ['ai.example.com'],
        anthropicPathPrefix: '/anthropic/v1',
        rules: [
          { models: [ModelMatch.exact('claude-sonnet-4')], backends: [{ backend: anthropic }] },
          { models: [ModelMatch.prefix('gpt-')], backends: [{ backend: openai }] },
        ],
      });
      const all = synthAll(app);
      const route = findOne(all, 'HTTPRoute', 'chat');
      expect(route.metadata.namespace).toBe('team');
      expect(route.spec.parentRefs).toEqual([
        { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw', namespace: 'platform' },
      ]);
      expect(route.spec.hostnames).toEqual(['ai.example.com']);
      expect(route.spec.rules).toHaveLength(3);
      const anthropicHeader = [{ type: 'Exact', name: 'x-ai-gateway-backend', value: 'anthropic.platform.chat.team' }];
      expect(route.spec.rules[0]).toEqual({
        matches: [
          { path: { type: 'PathPrefix', value: '/v1' }, headers: anthropicHeader },
          { path: { type: 'PathPrefix', value: '/anthropic/v1' }, headers: anthropicHeader },
          { path: { type: 'PathPrefix', value: '/v1/messages' }, headers: anthropicHeader },
          { path: { type: 'PathPrefix', value: '/' }, headers: anthropicHeader },
        ],
        filters: [
          { type: 'URLRewrite', urlRewrite: { hostname: 'api.anthropic.com' } },
          { type: 'RequestHeaderModifier', requestHeaderModifier: { remove: ['x-ai-gateway-backend'] } },
        ],
        backendRefs: [{ group: 'gateway.envoyproxy.io', kind: 'Backend', name: 'anthropic', namespace: 'platform' }],
        timeouts: { request: '60s' },
      });
      // OpenAI's upstream prefix is /v1, already an endpoint prefix.
      expect(route.spec.rules[1].matches.map((m: any) => m.path.value)).toEqual(['/v1', '/anthropic/v1', '/']);
      expect(route.spec.rules[2]).toEqual({
        matches: [
          { path: { type: 'PathPrefix', value: '/v1' } },
          { path: { type: 'PathPrefix', value: '/anthropic/v1' } },
        ],
        filters: [
          {
            type: 'ExtensionRef',
            extensionRef: {
              group: 'gateway.envoyproxy.io',
              kind: 'HTTPRouteFilter',
              name: 'gw-processor-platform-not-found',
            },
          },
        ],
      });
      // The gateway processor's 404 filter of the route's namespace (filters are referenced from their namespace).
      const notFound = findOne(all, 'HTTPRouteFilter', 'gw-processor-platform-not-found');
      expect(notFound.metadata.namespace).toBe('team');
      expect(notFound.spec.directResponse.statusCode).toBe(404);
      expect(notFound.spec.directResponse.contentType).toBe('application/json');
      expect(JSON.parse(notFound.spec.directResponse.body.inline)).toMatchObject({
        error: { code: 'model_not_found' },
      });
    },
  );

  it('contributes its rules, endpoints and per-route backend entries to the gateway processor config', () => {
    const { app, team, gateway, openai, anthropic } = gatewayFixture();
    new AIRoute(team, 'Route', {
      name: 'chat',
      gateway,
      requiredHeaders: ['x-team'],
      anthropicPathPrefix: '/anthropic/v1',
      rules: [
        {
          models: [ModelMatch.exact('claude-sonnet-4')],
          backends: [
            { backend: anthropic, weight: 70, modelNameOverride: 'claude-sonnet-4-20250514' },
            { backend: openai, weight: 30, priority: 1 },
          ],
        },
      ],
    });
    const config = configOf(synthAll(app));
    expect(config.routes).toEqual([
      {
        name: 'team/chat',
        endpoints: [
          { api: 'OpenAI', pathPrefix: '/v1' },
          { api: 'Anthropic', pathPrefix: '/anthropic/v1' },
        ],
        hostnames: [],
        rules: [
          {
            models: [{ type: 'Exact', value: 'claude-sonnet-4' }],
            backends: [
              {
                backend: 'anthropic.platform.chat.team',
                weight: 70,
                priority: 0,
                modelNameOverride: 'claude-sonnet-4-20250514',
              },
              { backend: 'openai.platform.chat.team', weight: 30, priority: 1 },
            ],
          },
        ],
        requiredHeaders: ['x-team'],
      },
    ]);
    expect(config.backends.map((b) => [b.name, b.endpoint.hostname])).toEqual([
      ['anthropic.platform.chat.team', 'api.anthropic.com'],
      ['openai.platform.chat.team', 'api.openai.com'],
    ]);
  });

  it('generates a ReferenceGrant when the route and the backend live in different namespaces', () => {
    const { app, team, platform, gateway, openai } = gatewayFixture();
    new AIRoute(team, 'A', {
      name: 'a',
      gateway,
      rules: [{ models: [ModelMatch.exact('a')], backends: [{ backend: openai }] }],
    });
    new AIRoute(team, 'B', {
      name: 'b',
      gateway,
      rules: [{ models: [ModelMatch.exact('b')], backends: [{ backend: openai }] }],
    });
    new AIRoute(platform, 'C', {
      name: 'c',
      gateway,
      rules: [{ models: [ModelMatch.exact('c')], backends: [{ backend: openai }] }],
    });
    const grants = findAll(synthAll(app), 'ReferenceGrant').filter((g: any) => g.spec.from[0].kind === 'HTTPRoute');
    expect(grants).toHaveLength(1);
    expect(grants[0]).toMatchObject({
      metadata: { name: 'ai-backends-from-team', namespace: 'platform' },
      spec: {
        from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'team' }],
        to: [{ group: 'gateway.envoyproxy.io', kind: 'Backend', name: 'openai' }],
      },
    });
  });

  it('shares ReferenceGrants among backends: up to 16 names each, per route namespace and kind', () => {
    const { app, team, platform, openai } = gatewayFixture();
    const other = new Chart(app, 'other', { namespace: 'other' });
    const gateway = new AIGateway(platform, 'Wide', {
      name: 'wide',
      allowedRoutes: AllowedRoutes.fromNamespaces('team', 'other'),
    });
    const backends = Array.from({ length: 19 }, (_, i) =>
      ProviderBackend.openAI(platform, `B${i}`, {
        name: `b${i}`,
        credentials: Credentials.apiKey({ secretName: 'openai', key: 'api-key' }),
      }),
    );
    const route = (scope: Chart, name: string, backend: ProviderBackend) =>
      new AIRoute(scope, name, {
        name,
        gateway,
        rules: [{ models: [ModelMatch.exact(name)], backends: [{ backend }] }],
      });
    backends.forEach((backend, i) => route(team, `r${i}`, backend));
    route(team, 'again', backends[3]); // a second route for one backend adds no name
    route(other, 'o', openai);
    const vllm = ProviderBackend.kubernetesService(platform, 'Vllm', { serviceName: 'vllm', port: 8000 });
    route(team, 'local', vllm);
    const grants = findAll(synthAll(app), 'ReferenceGrant').filter((g: any) => g.spec.from[0].kind === 'HTTPRoute');
    const summary = grants.map((g: any) => ({
      name: g.metadata.name,
      namespace: g.metadata.namespace,
      from: g.spec.from.map((f: any) => f.namespace),
      to: g.spec.to.map((t: any) => `${t.kind}/${t.name}`),
    }));
    const names = (from: number, to: number) => backends.slice(from, to).map((b) => `Backend/${b.backendName}`);
    expect(summary).toEqual(
      expect.arrayContaining([
        { name: 'ai-backends-from-team', namespace: 'platform', from: ['team'], to: names(0, 16) },
        { name: 'ai-backends-2-from-team', namespace: 'platform', from: ['team'], to: names(16, 19) },
        { name: 'ai-backends-from-other', namespace: 'platform', from: ['other'], to: ['Backend/openai'] },
        { name: 'ai-services-from-team', namespace: 'platform', from: ['team'], to: ['Service/vllm'] },
      ]),
    );
    expect(summary).toHaveLength(4);
  });

  it('mounts the credential Secrets of its backends into the processor', () => {
    const { app, team, gateway, openai, anthropic } = gatewayFixture();
    new AIRoute(team, 'Route', {
      gateway,
      rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend: openai }, { backend: anthropic }] }],
    });
    const pod = (findOne(synthAll(app), 'Deployment') as any).spec.template.spec;
    expect(pod.containers[0].volumeMounts).toEqual(
      expect.arrayContaining([
        { mountPath: '/etc/ai-gateway/secrets/openai', name: 'secret-openai', readOnly: true },
        { mountPath: '/etc/ai-gateway/secrets/anthropic', name: 'secret-anthropic', readOnly: true },
      ]),
    );
    expect(pod.volumes).toEqual(expect.arrayContaining([{ name: 'secret-openai', secret: { secretName: 'openai' } }]));
  });

  it('sets the request timeout and merges retries into its BackendTrafficPolicy', () => {
    const { app, team, gateway, openai } = gatewayFixture();
    new AIRoute(team, 'Route', {
      name: 'chat',
      gateway,
      requestTimeout: Duration.minutes(5),
      retry: { attempts: 3, statusCodes: [429, 503], perTryTimeout: Duration.seconds(90) },
      rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend: openai }] }],
    });
    const all = synthAll(app);
    expect(findOne(all, 'HTTPRoute').spec.rules[0].timeouts).toEqual({ request: '300s' });
    expect(findOne(all, 'BackendTrafficPolicy', 'chat').spec).toEqual({
      targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'chat' }],
      // Merged into whatever Gateway-level policy there is (none of ours here, a user's perhaps).
      mergeType: 'StrategicMerge',
      // Envoy's limits on the backends' clusters: by default the processor's (2 replicas x 10,000 streams).
      circuitBreaker: { maxConnections: 20000, maxPendingRequests: 20000, maxParallelRequests: 20000 },
      retry: {
        numRetries: 3,
        retryOn: {
          triggers: ['connect-failure', 'refused-stream', 'reset', 'retriable-status-codes'],
          httpStatusCodes: [429, 503],
        },
        perRetry: { timeout: '90s' },
      },
    });
  });

  it('rewrites Host for every provider outside the cluster, TLS or not', () => {
    const { app, team, platform, gateway } = gatewayFixture();
    const plain = ProviderBackend.openAICompatible(platform, 'Plain', {
      name: 'plain',
      baseUrl: 'http://llm.internal.example:8080/v1',
    });
    new AIRoute(team, 'Route', {
      name: 'plain',
      gateway,
      rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend: plain }] }],
    });
    const all = synthAll(app);
    expect(findOne(all, 'HTTPRoute').spec.rules[0].filters[0]).toEqual({
      type: 'URLRewrite',
      urlRewrite: { hostname: 'llm.internal.example' },
    });
    expect(findOne(all, 'Backend', 'plain').spec).toEqual({
      endpoints: [{ fqdn: { hostname: 'llm.internal.example', port: 8080 } }],
    });
    const backends = findAll(all, 'Backend') as unknown as {
      metadata: { name: string };
      spec: { tls?: { sni: string } };
    }[];
    expect(backends.map((b) => [b.metadata.name, b.spec.tls?.sni])).toEqual([
      ['openai', 'api.openai.com'],
      ['anthropic', 'api.anthropic.com'],
      ['plain', undefined],
    ]);
  });

  it('leaves the gateway untouched when a route fails validation', () => {
    const { team, gateway, openai } = gatewayFixture();
    const foreign = ProviderBackend.openAI(team, 'Foreign', {
      credentials: Credentials.apiKey({ secretName: 'team-key', key: 'k' }),
    });
    const rules = (backend: ProviderBackend): AIRouteRule[] => [
      { models: [ModelMatch.exact('gpt-4o')], backends: [{ backend }] },
    ];
    expect(() => new AIRoute(team, 'Broken', { gateway, rules: rules(foreign) })).toThrow(/credentials.namespace/);
    expect(() => new AIRoute(team, 'Fixed', { gateway, rules: rules(openai) })).not.toThrow();
  });

  it('allows the same model on other hosts or paths of the gateway', () => {
    const { team, gateway, openai } = gatewayFixture();
    const rules: AIRouteRule[] = [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }];
    new AIRoute(team, 'A', { gateway, hostnames: ['a.example.com'], rules });
    new AIRoute(team, 'B', { gateway, hostnames: ['b.example.com'], rules });
    expect(() => new AIRoute(team, 'C', { gateway, pathPrefix: '/team-c/v1', rules })).not.toThrow();
  });

  it('attaches to an existing Gateway with its own processor selecting the HTTPRoute', () => {
    const app = Testing.app();
    const team = new Chart(app, 'team', { namespace: 'team' });
    const openai = ProviderBackend.openAI(team, 'OpenAI', {
      name: 'openai',
      credentials: Credentials.apiKey({ secretName: 'openai', key: 'k' }),
    });
    const route = new AIRoute(team, 'Route', {
      name: 'chat',
      gateway: GatewayReference.fromName('shared', 'infra'),
      rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
    });
    const all = synthAll(app);
    expect(findOne(all, 'HTTPRoute').spec.parentRefs).toEqual([
      { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'shared', namespace: 'infra' },
    ]);
    expect(policyRoutes(all, findOne(all, 'EnvoyExtensionPolicy'))).toEqual(['team/chat']);
    expect(findOne(all, 'EnvoyExtensionPolicy').metadata).toMatchObject({ name: 'chat-processor', namespace: 'team' });
    expect(findOne(all, 'NetworkPolicy').spec.ingress[0].from[0].podSelector.matchLabels).toEqual({
      'gateway.envoyproxy.io/owning-gateway-name': 'shared',
      'gateway.envoyproxy.io/owning-gateway-namespace': 'infra',
    });
    expect(route.processor.serviceName).toBe('chat-processor');
    expect(findAll(all, 'Gateway')).toEqual([]);
    expect(configOf(all).routes.map((r) => r.name)).toEqual(['team/chat']);
  });

  describe('throws', () => {
    it('if the route has no rules', () => {
      const { team, gateway } = gatewayFixture();
      expect(() => new AIRoute(team, 'Route', { gateway, rules: [] })).toThrow(
        /team\/Route: invalid rules \[\]: a route needs at least one rule with backends/,
      );
    });

    it('if a rule has no backends', () => {
      const { team, gateway } = gatewayFixture();
      expect(
        () => new AIRoute(team, 'Route', { gateway, rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [] }] }),
      ).toThrow(/team\/Route: invalid rules\[0\].backends \[\]: a rule without backends cannot serve its models/);
    });

    it('if a weight is negative', () => {
      const { team, gateway, openai } = gatewayFixture();
      expect(
        () =>
          new AIRoute(team, 'Route', {
            gateway,
            rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend: openai, weight: -1 }] }],
          }),
      ).toThrow(/team\/Route: invalid rules\[0\].backends\[0\].weight -1: must be a non-negative integer/);
    });

    it('if all weights of a rule are zero', () => {
      const { team, gateway, openai } = gatewayFixture();
      expect(
        () =>
          new AIRoute(team, 'Route', {
            gateway,
            rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend: openai, weight: 0 }] }],
          }),
      ).toThrow(/invalid rules\[0\].backends \[0\]: at least one weight must be positive/);
    });

    it('if a model match is duplicated within the route', () => {
      const { team, gateway, openai, anthropic } = gatewayFixture();
      expect(
        () =>
          new AIRoute(team, 'Route', {
            gateway,
            rules: [
              { models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] },
              { models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: anthropic }] },
            ],
          }),
      ).toThrow(/invalid rules\[1\].models\[0\] "Exact\(gpt-4o\)": duplicates the match of rules\[0\]/);
    });

    it('if a model match is shadowed by an earlier rule', () => {
      const { team, gateway, openai, anthropic } = gatewayFixture();
      expect(
        () =>
          new AIRoute(team, 'Route', {
            gateway,
            rules: [
              { models: [ModelMatch.prefix('gpt-')], backends: [{ backend: openai }] },
              { models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: anthropic }] },
            ],
          }),
      ).toThrow(
        /invalid rules\[1\].models\[0\] "Exact\(gpt-4o\)": is shadowed by Prefix\(gpt-\) of rules\[0\], which is tried first/,
      );
    });

    it('if another route on the same gateway, path and hosts matches the same model', () => {
      const { team, platform, gateway, openai } = gatewayFixture();
      new AIRoute(platform, 'First', {
        gateway,
        rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
      });
      expect(
        () =>
          new AIRoute(team, 'Second', {
            gateway,
            hostnames: ['ai.example.com'],
            rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
          }),
      ).toThrow(
        /team\/Second: invalid rules.models "Exact\(gpt-4o\)": overlaps Exact\(gpt-4o\) of route platform\/First on the same gateway, path "\/v1" and hosts; a request would be routed ambiguously/,
      );
    });

    it('if another route on the same gateway has an overlapping prefix', () => {
      const { team, gateway, openai } = gatewayFixture();
      new AIRoute(team, 'First', {
        gateway,
        rules: [{ models: [ModelMatch.prefix('gpt-4')], backends: [{ backend: openai }] }],
      });
      expect(
        () =>
          new AIRoute(team, 'Second', {
            gateway,
            rules: [{ models: [ModelMatch.prefix('gpt-')], backends: [{ backend: openai }] }],
          }),
      ).toThrow(/invalid rules.models "Prefix\(gpt-\)": overlaps Prefix\(gpt-4\) of route team\/First/);
    });

    it('if a regular expression does not compile', () => {
      const { team, gateway, openai } = gatewayFixture();
      expect(
        () =>
          new AIRoute(team, 'Route', {
            gateway,
            rules: [{ models: [ModelMatch.regex('gpt-(4')], backends: [{ backend: openai }] }],
          }),
      ).toThrow(
        /team\/Route: invalid rules\[0\].models\[0\] "RegularExpression\(gpt-\(4\)": is not a regular expression RE2 can run \(missing closing \)/,
      );
    });

    it.each([
      ['a backreference', '(gpt)-\\1', 'invalid escape sequence'],
      ['a lookahead', '(?=gpt)gpt-.*', 'invalid or unsupported Perl syntax'],
      ['a lookbehind', '.*(?<=-mini)', 'invalid named capture'],
    ])('if a regular expression uses syntax RE2 cannot run: %s', (_what, pattern, reason) => {
      const { team, gateway, openai } = gatewayFixture();
      expect(
        () =>
          new AIRoute(team, 'Route', {
            gateway,
            rules: [{ models: [ModelMatch.regex(pattern)], backends: [{ backend: openai }] }],
          }),
      ).toThrow(
        `team/Route: invalid rules[0].models[0] ${JSON.stringify(`RegularExpression(${pattern})`)}: ` +
          `is not a regular expression RE2 can run (${reason}`,
      );
    });

    it('if an exact model is shadowed by an earlier RE2 regular expression (RE2 syntax such as (?i) and \\pL)', () => {
      const { team, gateway, openai } = gatewayFixture();
      expect(
        () =>
          new AIRoute(team, 'Route', {
            gateway,
            rules: [
              { models: [ModelMatch.regex('(?i)CLAUDE-\\pL+')], backends: [{ backend: openai }] },
              { models: [ModelMatch.exact('claude-opus')], backends: [{ backend: openai }] },
            ],
          }),
      ).toThrow(
        /invalid rules\[1\].models\[0\] "Exact\(claude-opus\)": is shadowed by RegularExpression\(\(\?i\)CLAUDE-\\pL\+\) of rules\[0\]/,
      );
    });

    it('if the route uses more backends than an HTTPRoute has rules for', () => {
      const { team, platform, gateway } = gatewayFixture();
      const backends = Array.from({ length: 16 }, (_, i) => ({
        backend: ProviderBackend.openAICompatible(platform, `B${i}`, { baseUrl: `https://llm${i}.example.com/v1` }),
      }));
      expect(
        () => new AIRoute(team, 'Route', { gateway, rules: [{ models: [ModelMatch.prefix('m')], backends }] }),
      ).toThrow(/invalid rules "16 backends": an HTTPRoute holds at most 16 rules/);
    });

    it('if the gateway does not admit routes from the route namespace', () => {
      const app = Testing.app();
      const gateway = new AIGateway(new Chart(app, 'platform', { namespace: 'platform' }), 'Gateway', { name: 'gw' });
      const other = new Chart(app, 'other', { namespace: 'other' });
      const backend = ProviderBackend.openAICompatible(other, 'Vllm', { baseUrl: 'http://vllm:8000' });
      expect(
        () =>
          new AIRoute(other, 'Route', {
            gateway,
            rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend }] }],
          }),
      ).toThrow(
        /other\/Route: invalid namespace "other": the gateway "platform\/gw" does not admit routes from this namespace; widen its allowedRoutes/,
      );
    });

    it('if a credential Secret is in another namespace than the processor', () => {
      const { team, gateway } = gatewayFixture();
      const teamBackend = ProviderBackend.openAI(team, 'TeamOpenAI', {
        credentials: Credentials.apiKey({ secretName: 'team-key', key: 'k' }),
      });
      expect(
        () =>
          new AIRoute(team, 'Route', {
            gateway,
            rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend: teamBackend }] }],
          }),
      ).toThrow(
        /team\/TeamOpenAI: invalid credentials.namespace "team": Secret "team-key" must be in namespace "platform" where the processor runs \(pods cannot mount Secrets of other namespaces\)/,
      );
      const explicit = ProviderBackend.openAI(team, 'Explicit', {
        credentials: Credentials.apiKey({ secretName: 'key', key: 'k', namespace: 'elsewhere' }),
      });
      expect(
        () =>
          new AIRoute(team, 'Route2', {
            gateway,
            rules: [{ models: [ModelMatch.exact('n')], backends: [{ backend: explicit }] }],
          }),
      ).toThrow(/invalid credentials.namespace "elsewhere"/);
    });

    it('if the route name is over the Kubernetes limit', () => {
      const { team, gateway, openai } = gatewayFixture();
      expect(
        () =>
          new AIRoute(team, 'Route', {
            name: 'r'.repeat(64),
            gateway,
            rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend: openai }] }],
          }),
      ).toThrow(/team\/Route: invalid name "r{64}": is 64 characters long; Kubernetes allows at most 63 here/);
    });

    it('if a timeout is not a positive whole number of milliseconds', () => {
      const { team, gateway, openai } = gatewayFixture();
      const rules = [{ models: [ModelMatch.exact('m')], backends: [{ backend: openai }] }];
      expect(() => new AIRoute(team, 'Route', { gateway, requestTimeout: Duration.seconds(0), rules })).toThrow(
        /team\/Route: invalid requestTimeout "0ms": must be a positive whole number of milliseconds/,
      );
      expect(
        () =>
          new AIRoute(team, 'Retry', { gateway, retry: { attempts: 1, perTryTimeout: Duration.millis(1.5) }, rules }),
      ).toThrow(/team\/Retry: invalid retry.perTryTimeout "1.5ms": must be a positive whole number of milliseconds/);
    });

    it('if its own processor would get a Service name that does not start with a letter', () => {
      const app = Testing.app();
      const team = new Chart(app, 'team', { namespace: 'team' });
      const openai = ProviderBackend.openAI(team, 'OpenAI', {
        name: 'openai',
        credentials: Credentials.apiKey({ secretName: 'openai', key: 'k' }),
      });
      expect(
        () =>
          new AIRoute(team, 'Route', {
            name: '1chat',
            gateway: GatewayReference.fromName('shared', 'infra'),
            rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend: openai }] }],
          }),
      ).toThrow(
        /team\/Route\/Processor: invalid name "1chat": the processor Service would be named "1chat-processor", but Service names must start with a letter/,
      );
    });

    it(
      'if another route on the same listener and host has a catch-all prefix that out-ranks a ' +
        'backend rule of this route',
      () => {
        const { team, platform, gateway } = gatewayFixture();
        const bedrock = ProviderBackend.awsBedrock(platform, 'Bedrock', {
          name: 'bedrock',
          region: 'us-east-1',
          credentials: Credentials.awsDefaultChain(),
        });
        new AIRoute(team, 'Tools', {
          gateway,
          pathPrefix: '/model/tools',
          rules: [{ models: [ModelMatch.exact('tool')], backends: [{ backend: bedrock }] }],
        });
        expect(
          () =>
            new AIRoute(team, 'Chat', {
              gateway,
              rules: [{ models: [ModelMatch.exact('nova')], backends: [{ backend: bedrock }] }],
            }),
        ).toThrow(
          /team\/Chat: invalid rules\[0\].backends\[0\].backend "bedrock": after the processor rewrites a request for this backend to "\/model\/tools" or below, Envoy re-matches it and the catch-all PathPrefix "\/model\/tools" of route team\/Tools \(listener http host \*\) out-ranks this backend's rule \(a longer path prefix wins\); give the routes different hostnames or that route another path prefix/,
        );
        // On other hosts the routes never share a virtual host.
        expect(
          () =>
            new AIRoute(team, 'Elsewhere', {
              gateway,
              hostnames: ['ai.example.com'],
              rules: [{ models: [ModelMatch.exact('nova')], backends: [{ backend: bedrock }] }],
            }),
        ).not.toThrow();
      },
    );

    it('if its catch-all prefix would out-rank a backend rule of another route on the same listener and host', () => {
      const { team, platform, gateway, openai } = gatewayFixture();
      const bedrock = ProviderBackend.awsBedrock(platform, 'Bedrock', {
        name: 'bedrock',
        region: 'us-east-1',
        credentials: Credentials.awsDefaultChain(),
      });
      new AIRoute(team, 'Chat', {
        gateway,
        hostnames: ['ai.example.com'],
        rules: [{ models: [ModelMatch.exact('nova')], backends: [{ backend: bedrock }] }],
      });
      // A route without hostnames lands in the `*` virtual host: never compared with the ai.example.com one.
      expect(
        () =>
          new AIRoute(team, 'Anywhere', {
            gateway,
            pathPrefix: '/model/any',
            rules: [{ models: [ModelMatch.exact('any')], backends: [{ backend: openai }] }],
          }),
      ).not.toThrow();
      expect(
        () =>
          new AIRoute(team, 'Tools', {
            gateway,
            hostnames: ['ai.example.com'],
            pathPrefix: '/model/tools',
            rules: [{ models: [ModelMatch.exact('tool')], backends: [{ backend: openai }] }],
          }),
      ).toThrow(
        /team\/Tools: invalid pathPrefix "\/model\/tools": out-ranks the rule of backend "bedrock" of route team\/Chat \(listener http host ai.example.com\) for its upstream paths "\/model\/tools" and below/,
      );
      expect(
        () =>
          new AIRoute(team, 'Messages', {
            gateway,
            hostnames: ['ai.example.com'],
            anthropicPathPrefix: '/model/x',
            rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend: openai }] }],
          }),
      ).toThrow(/team\/Messages: invalid anthropicPathPrefix "\/model\/x": out-ranks the rule of backend "bedrock"/);
    });

    it(
      'only for paths the processor sends: a deeper prefix under an OpenAI pass-through is fine ' +
        'unless a translated path falls under it',
      () => {
        const { team, platform, gateway, openai } = gatewayFixture();
        const vllm = ProviderBackend.kubernetesService(platform, 'Vllm', { serviceName: 'vllm', port: 8000 });
        new AIRoute(team, 'Main', {
          gateway,
          anthropicPathPrefix: '/anthropic/v1',
          rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
        });
        expect(
          () =>
            new AIRoute(team, 'TeamB', {
              gateway,
              pathPrefix: '/v1/team-b',
              rules: [{ models: [ModelMatch.exact('llama')], backends: [{ backend: vllm }] }],
            }),
        ).not.toThrow();
        // Anthropic requests to the OpenAI backend go to /v1/chat/completions, which a /v1/chat catch-all would take.
        expect(
          () =>
            new AIRoute(team, 'ChatOnly', {
              gateway,
              pathPrefix: '/v1/chat',
              rules: [{ models: [ModelMatch.exact('qwen')], backends: [{ backend: vllm }] }],
            }),
        ).toThrow(
          /invalid pathPrefix "\/v1\/chat": out-ranks the rule of backend "openai" of route team\/Main \(listener http host \*\) for its upstream paths "\/v1\/chat\/completions"/,
        );
      },
    );

    it('if two routes of the app on the same Gateway it does not manage conflict', () => {
      const app = Testing.app();
      const team = new Chart(app, 'team', { namespace: 'team' });
      const bedrock = ProviderBackend.awsBedrock(team, 'Bedrock', {
        name: 'bedrock',
        region: 'us-east-1',
        credentials: Credentials.awsDefaultChain(),
      });
      new AIRoute(team, 'A', {
        gateway: GatewayReference.fromName('shared', 'infra'),
        rules: [{ models: [ModelMatch.exact('nova')], backends: [{ backend: bedrock }] }],
      });
      expect(
        () =>
          new AIRoute(team, 'B', {
            gateway: GatewayReference.fromName('shared', 'infra'),
            pathPrefix: '/model/b',
            rules: [{ models: [ModelMatch.exact('b')], backends: [{ backend: bedrock }] }],
          }),
      ).toThrow(
        /team\/B: invalid pathPrefix "\/model\/b": out-ranks the rule of backend "bedrock" of route team\/A \(listener \* host \*\)/,
      );
      expect(
        () =>
          new AIRoute(team, 'C', {
            gateway: GatewayReference.fromName('other', 'infra'),
            pathPrefix: '/model/c',
            rules: [{ models: [ModelMatch.exact('c')], backends: [{ backend: bedrock }] }],
          }),
      ).not.toThrow();
    });

    it(
      'if two routes with their own processors share a path prefix and host on a Gateway the app ' + 'does not manage',
      () => {
        const app = Testing.app();
        const team = new Chart(app, 'team', { namespace: 'team' });
        const openai = ProviderBackend.openAI(team, 'OpenAI', {
          name: 'openai',
          credentials: Credentials.apiKey({ secretName: 'openai', key: 'k' }),
        });
        const shared = GatewayReference.fromName('shared', 'infra');
        new AIRoute(team, 'A', {
          name: 'a',
          gateway: shared,
          hostnames: ['ai.example.com'],
          rules: [{ models: [ModelMatch.exact('a')], backends: [{ backend: openai }] }],
        });
        expect(
          () =>
            new AIRoute(team, 'B', {
              name: 'b',
              gateway: shared,
              hostnames: ['ai.example.com'],
              rules: [{ models: [ModelMatch.exact('b')], backends: [{ backend: openai }] }],
            }),
        ).toThrow(
          /team\/B: invalid pathPrefix "\/v1": is also the path prefix of route team\/A \(listener \* host ai.example.com\), which has its own processor: Envoy sends the requests of both routes to the older route's processor/,
        );
        expect(
          () =>
            new AIRoute(team, 'C', {
              name: 'c',
              gateway: shared,
              hostnames: ['other.example.com'],
              rules: [{ models: [ModelMatch.exact('c')], backends: [{ backend: openai }] }],
            }),
        ).not.toThrow();
      },
    );

    it('if a backend base URL path is not a clean path prefix', () => {
      const { platform } = gatewayFixture();
      expect(() =>
        ProviderBackend.openAICompatible(platform, 'Odd', { baseUrl: 'https://llm.example.com/a//v1' }),
      ).toThrow(
        /platform\/Odd: invalid pathPrefix "\/a\/\/v1": must be a path starting with "\/" without a trailing "\/", "\/\/", "." or ".." segments/,
      );
    });

    it('if the path prefix is not a clean path', () => {
      const { team, gateway, openai } = gatewayFixture();
      expect(
        () =>
          new AIRoute(team, 'Route', {
            gateway,
            pathPrefix: 'v1/',
            rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend: openai }] }],
          }),
      ).toThrow(/invalid pathPrefix "v1\/": must be a path starting with "\/"/);
    });
  });
});

describe('AIRoute passthroughEndpoints (the endpoint allowlist)', () => {
  const gptRule = (backend: ProviderBackend): AIRouteRule[] => [
    { models: [ModelMatch.prefix('gpt-')], backends: [{ backend }] },
  ];

  it(
    "emits the opted-in endpoints into the route's processor config (methods default to POST), " +
      'and nothing for routes that do not opt in',
    () => {
      const { app, team, gateway, openai } = gatewayFixture();
      new AIRoute(team, 'Images', {
        name: 'images',
        gateway,
        pathPrefix: '/images-api/v1',
        passthroughEndpoints: [{ path: '/moderations' }, { path: '/vector_stores/', methods: ['POST', 'PATCH'] }],
        rules: gptRule(openai),
      });
      new AIRoute(team, 'Chat', {
        name: 'chat',
        gateway,
        rules: [{ models: [ModelMatch.prefix('o')], backends: [{ backend: openai }] }],
      });
      const routes = configOf(synthAll(app)).routes;
      expect(routes.find((r) => r.name === 'team/images')!.passthroughEndpoints).toEqual([
        { path: '/moderations', methods: ['POST'] },
        { path: '/vector_stores/', methods: ['POST', 'PATCH'] },
      ]);
      expect(routes.find((r) => r.name === 'team/chat')).not.toHaveProperty('passthroughEndpoints');
    },
  );

  it('leaves the HTTPRoute unchanged: every path under the prefix already reaches the processor, which decides', () => {
    const build = (passthroughEndpoints?: { path: string }[]) => {
      const { app, team, gateway, openai } = gatewayFixture();
      new AIRoute(team, 'Route', { name: 'chat', gateway, passthroughEndpoints, rules: gptRule(openai) });
      return findOne(synthAll(app), 'HTTPRoute', 'chat').spec;
    };
    expect(build([{ path: '/audio/speech' }])).toEqual(build());
  });

  describe('throws, naming the construct, the prop and the value', () => {
    it.each([
      ['moderations', 'must start with "/"'],
      ['/v1/..;/admin', 'must not contain ";"'],
      ['/%2e%2e/admin', 'must not contain percent-encoding'],
      ['/files/../admin', 'must not contain "." or ".." segments'],
      ['/files\\x', 'must not contain a backslash'],
      ['/files/*', 'must not contain "*": write a prefix as a path ending in "/", e.g. "/files/"'],
      ['/files//x', 'must not contain empty segments'],
      ['/chat/completions', 'is already served on every route (POST /chat/completions)'],
    ])('for the path %j', (path, reason) => {
      const { team, gateway, openai } = gatewayFixture();
      expect(
        () =>
          new AIRoute(team, 'Route', {
            gateway,
            passthroughEndpoints: [{ path: '/moderations' }, { path }],
            rules: gptRule(openai),
          }),
      ).toThrow(`team/Route: invalid passthroughEndpoints[1].path ${JSON.stringify(path)}: ${reason}`);
    });

    it('for a method without a body, an empty or repeated method list, and a repeated path', () => {
      const route = (passthroughEndpoints: unknown) => () => {
        const { team, gateway, openai } = gatewayFixture();
        return new AIRoute(team, 'Route', {
          gateway,
          passthroughEndpoints: passthroughEndpoints as any,
          rules: gptRule(openai),
        });
      };
      expect(route([{ path: '/files/', methods: ['POST', 'DELETE'] }])).toThrow(
        'team/Route: invalid passthroughEndpoints[0].methods[1] "DELETE": must be one of POST, PUT, ' +
          'PATCH: the processor picks the backend by the JSON body\'s "model"',
      );
      expect(route([{ path: '/files/', methods: ['GET'] }])).toThrow(
        'invalid passthroughEndpoints[0].methods[0] "GET": must be one of POST, PUT, PATCH',
      );
      expect(route([{ path: '/files/', methods: [] }])).toThrow(
        'team/Route: invalid passthroughEndpoints[0].methods []: must list at least one method',
      );
      expect(route([{ path: '/files/', methods: ['POST', 'POST'] }])).toThrow(
        'team/Route: invalid passthroughEndpoints[0].methods[1] "POST": is listed twice',
      );
      expect(route([{ path: '/audio/speech' }, { path: '/audio/speech', methods: ['PUT'] }])).toThrow(
        'team/Route: invalid passthroughEndpoints[1].path "/audio/speech": duplicates ' +
          'passthroughEndpoints[0]; list its methods once',
      );
    });

    it('when no backend of the route speaks the OpenAI schema', () => {
      const { team, gateway, anthropic, openai } = gatewayFixture();
      expect(
        () =>
          new AIRoute(team, 'Route', {
            gateway,
            passthroughEndpoints: [{ path: '/moderations' }],
            rules: [{ models: [ModelMatch.exact('claude-sonnet-4')], backends: [{ backend: anthropic }] }],
          }),
      ).toThrow('team/Route: invalid passthroughEndpoints ["/moderations"]: no backend of this route can serve them');
      const vllm = ProviderBackend.kubernetesService(team, 'Vllm', { serviceName: 'vllm', port: 8000 });
      expect(
        () =>
          new AIRoute(team, 'Mixed', {
            gateway,
            pathPrefix: '/mixed/v1',
            passthroughEndpoints: [{ path: '/score' }],
            rules: [
              { models: [ModelMatch.exact('claude-sonnet-4')], backends: [{ backend: anthropic }] },
              {
                models: [ModelMatch.exact('bge-reranker')],
                backends: [{ backend: vllm }, { backend: openai, priority: 1 }],
              },
            ],
          }),
      ).not.toThrow();
    });
  });
});

describeWithShared('crds/jsonschema', 'AIRoute manifests', (jsonschemaDir) => {
  it('validate with retries, Anthropic endpoint, hostnames, in-cluster backends and an existing gateway', () => {
    const { app, team, gateway, openai, anthropic } = gatewayFixture();
    const vllm = ProviderBackend.kubernetesService(team, 'Vllm', { serviceName: 'vllm', port: 8000 });
    new AIRoute(team, 'Route', {
      gateway,
      hostnames: ['ai.example.com', '*.ai.example.com'],
      anthropicPathPrefix: '/anthropic/v1',
      retry: { attempts: 2, perTryTimeout: Duration.millis(1500) },
      rules: [
        { models: [ModelMatch.regex('claude-.*')], backends: [{ backend: anthropic }] },
        {
          models: [ModelMatch.prefix('gpt-')],
          backends: [
            { backend: openai, weight: 3 },
            { backend: vllm, weight: 1, priority: 1 },
          ],
        },
      ],
    });
    new AIRoute(team, 'Elsewhere', {
      gateway: AIGateway.fromGatewayName('shared', 'infra'),
      rules: [{ models: [ModelMatch.exact('llama')], backends: [{ backend: vllm }] }],
    });
    expect(manifestProblems(synthAll(app), jsonschemaDir)).toEqual([]);
  });
});
