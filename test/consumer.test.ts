import { parseProcessorConfig } from '@ai-gateway-constructs/processor-config';
import type { Construct } from 'constructs';
import { AIGateway, AIRoute, ApiKey, Consumer, ModelMatch, RateLimitRedis, RateLimitUnit } from '../lib';
import { gatewayFixture } from './support/fixtures';
import { manifestProblems } from './support/manifests';
import { describeWithShared } from './support/shared';
import { findAll, findOne, synthAll } from './support/synth';

function withRedis(scope: Construct): void {
  RateLimitRedis.external(scope, 'Redis', { url: 'redis.example:6379' });
}

/** The gateway fixture with a route serving gpt-4o (exact) and claude models by prefix, and Redis. */
function setup() {
  const fixture = gatewayFixture();
  withRedis(fixture.platform);
  const route = new AIRoute(fixture.platform, 'Chat', {
    name: 'chat',
    gateway: fixture.gateway,
    anthropicPathPrefix: '/anthropic/v1',
    rules: [
      { models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: fixture.openai }] },
      { models: [ModelMatch.prefix('claude-3-5-haiku')], backends: [{ backend: fixture.anthropic }] },
    ],
  });
  return { ...fixture, route };
}

function config(manifests: ReturnType<typeof synthAll>) {
  const map = findAll(manifests, 'ConfigMap').find((m) => m.metadata.name === 'gw-processor-config') as any;
  return parseProcessorConfig(JSON.parse(map.data['config.json']));
}

describe('Consumer', () => {
  it('authenticates the consumers of a gateway with one apiKeyAuth SecurityPolicy on the Gateway', () => {
    const { app, platform, gateway } = setup();
    new Consumer(platform, 'TeamA', {
      target: gateway,
      keys: [ApiKey.fromSecret('team-a-keys', ['team-a-ci', 'team-a-laptop'])],
      models: [ModelMatch.exact('gpt-4o')],
    });
    new Consumer(platform, 'TeamB', {
      target: gateway,
      consumerId: 'team-b',
      keys: [ApiKey.fromSecret('team-b-keys', ['team-b'])],
    });
    const all = synthAll(app);
    expect(findOne(all, 'SecurityPolicy').metadata.name).toBe('gw-api-keys');
    expect(findOne(all, 'SecurityPolicy').spec).toEqual({
      targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }],
      apiKeyAuth: {
        credentialRefs: [
          { group: '', kind: 'Secret', name: 'team-a-keys' },
          { group: '', kind: 'Secret', name: 'team-b-keys' },
        ],
        extractFrom: [{ headers: ['authorization'] }, { headers: ['x-api-key'] }],
        forwardClientIDHeader: 'x-ai-gateway-client-id',
        sanitize: true,
      },
    });
    const processorConfig = config(all);
    expect(processorConfig.consumers).toEqual({
      clientIdHeader: 'x-ai-gateway-client-id',
      entries: [
        {
          id: 'teama',
          clientIds: ['team-a-ci', 'team-a-laptop'],
          models: [{ type: 'Exact', value: 'gpt-4o' }],
          limits: [],
        },
        { id: 'team-b', clientIds: ['team-b'], limits: [] },
      ],
    });
    expect(processorConfig.routes[0].consumerRequired).toBe(true);
    expect(processorConfig.routes[0].requiredHeaders).toEqual([]);
    // Consumers without budgets need no budget policy.
    expect(gateway.hasBudgets).toBe(false);
    expect(findAll(all, 'BackendTrafficPolicy').map((p) => p.metadata.name)).toEqual(['gw-processor']);
  });

  it("counts consumers' own budgets as the gateway's budgets", () => {
    const { platform, gateway } = setup();
    new Consumer(platform, 'Team', {
      target: gateway,
      keys: [ApiKey.fromSecret('team-keys', ['team'])],
      budgets: [{ limit: 1000, per: RateLimitUnit.DAY }],
    });
    expect(gateway.hasBudgets).toBe(true);
  });

  it('puts JWT and API keys into one SecurityPolicy, reading keys from x-api-key only', () => {
    const fixture = setup();
    const { app, platform } = fixture;
    const gateway = new AIGateway(platform, 'Jwt', {
      name: 'jwt-gw',
      jwt: { issuer: 'https://login.example.com', jwksUri: 'https://login.example.com/jwks.json' },
    });
    new Consumer(platform, 'App', { target: gateway, keys: [ApiKey.fromSecret('app-keys', ['app'])] });
    const policy = findOne(synthAll(app), 'SecurityPolicy', 'jwt-gw-jwt');
    expect(policy.spec.jwt.providers[0].issuer).toBe('https://login.example.com');
    expect(policy.spec.apiKeyAuth).toEqual({
      credentialRefs: [{ group: '', kind: 'Secret', name: 'app-keys' }],
      extractFrom: [{ headers: ['x-api-key'] }],
      forwardClientIDHeader: 'x-ai-gateway-client-id',
      sanitize: true,
    });
  });

  it("gives a route's consumers a route SecurityPolicy repeating the gateway's JWT and consumers", () => {
    const fixture = gatewayFixture();
    const { app, platform } = fixture;
    const gateway = new AIGateway(platform, 'Jwt', {
      name: 'jwt-gw',
      jwt: {
        issuer: 'https://login.example.com',
        jwksUri: 'https://login.example.com/jwks.json',
        claimToHeaders: { tenant: 'x-tenant' },
      },
    });
    const route = new AIRoute(platform, 'Chat', {
      name: 'chat',
      gateway,
      rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: fixture.openai }] }],
    });
    const other = new AIRoute(platform, 'Other', {
      name: 'other',
      gateway,
      rules: [{ models: [ModelMatch.exact('gpt-4o-mini')], backends: [{ backend: fixture.openai }] }],
    });
    new Consumer(platform, 'Everyone', { target: gateway, keys: [ApiKey.fromSecret('all-keys', ['all'])] });
    new Consumer(platform, 'ChatOnly', { target: route, keys: [ApiKey.fromSecret('chat-keys', ['chat-1'])] });
    const all = synthAll(app);
    const policy = findOne(all, 'SecurityPolicy', 'chat-api-keys');
    expect(policy.metadata.namespace).toBe('platform');
    expect(policy.spec).toEqual({
      targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'chat' }],
      jwt: findOne(all, 'SecurityPolicy', 'jwt-gw-jwt').spec.jwt,
      apiKeyAuth: {
        credentialRefs: [
          { group: '', kind: 'Secret', name: 'all-keys' },
          { group: '', kind: 'Secret', name: 'chat-keys' },
        ],
        extractFrom: [{ headers: ['x-api-key'] }],
        forwardClientIDHeader: 'x-ai-gateway-client-id',
        sanitize: true,
      },
    });
    expect(findOne(all, 'SecurityPolicy', 'jwt-gw-jwt').spec.apiKeyAuth.credentialRefs).toEqual([
      { group: '', kind: 'Secret', name: 'all-keys' },
    ]);
    expect(findAll(all, 'SecurityPolicy')).toHaveLength(2);
    void other;
  });

  describe("Envoy's own 401 in the clients' error schema", () => {
    const override = (all: ReturnType<typeof synthAll>, name: string) =>
      findOne(all, 'BackendTrafficPolicy', name).spec.responseOverride;
    // The one policy of the namespace that the processor keeps for routes with the default traffic settings.
    const shared = (all: ReturnType<typeof synthAll>) =>
      (findAll(all, 'BackendTrafficPolicy') as any[]).filter((p) => p.spec.targetSelectors !== undefined);

    it("is added to every AIRoute's policy once the gateway has consumers, matching only Envoy's plain 401", () => {
      const { app, platform, gateway, openai } = setup();
      const other = new AIRoute(platform, 'Other', {
        name: 'other',
        gateway,
        pathPrefix: '/other/v1',
        rules: [{ models: [ModelMatch.exact('gpt-4o-mini')], backends: [{ backend: openai }] }],
      });
      new Consumer(platform, 'Team', { target: gateway, keys: [ApiKey.fromSecret('team-keys', ['team'])] });
      const all = synthAll(app);
      const expected = [
        {
          match: {
            statusCodes: [{ type: 'Value', value: 401 }],
            responseHeaders: [{ name: 'content-type', value: { type: 'Prefix', value: 'text/plain' } }],
          },
          source: 'Local',
          response: {
            contentType: 'application/json',
            body: {
              type: 'Inline',
              inline:
                '{"type":"error","error":{"type":"authentication_error","message":"missing or invalid API key",' +
                '"param":null,"code":"invalid_api_key"}}',
            },
          },
        },
      ];
      // Both routes have the default traffic settings: the processor's shared policy of the namespace selects them
      // and carries the override. Without JWT no 403 rule: the processor's own 403s are JSON anyway, and no other
      // Envoy filter answers 403. No gateway-level policy: ordinary HTTPRoutes keep Envoy's plain 401.
      expect(shared(all)).toHaveLength(1);
      expect(shared(all)[0].spec.responseOverride).toEqual(expected);
      expect(findAll(all, 'BackendTrafficPolicy')).toHaveLength(1);
      // A route with settings of its own keeps its own policy, with the override.
      const retrying = new AIRoute(platform, 'Retrying', {
        name: 'retrying',
        gateway,
        pathPrefix: '/retrying/v1',
        retry: { attempts: 2 },
        rules: [{ models: [ModelMatch.exact('gpt-4o-mini')], backends: [{ backend: openai }] }],
      });
      expect(override(synthAll(app), 'retrying')).toEqual(expected);
      void other;
      void retrying;
    });

    it('names the token with JWT, and both with JWT and consumers', () => {
      const fixture = gatewayFixture();
      const { app, platform } = fixture;
      const gateway = new AIGateway(platform, 'Jwt', {
        name: 'jwt-gw',
        jwt: { issuer: 'https://login.example.com', jwksUri: 'https://login.example.com/jwks.json' },
      });
      const route = (id: string, name: string) =>
        new AIRoute(platform, id, {
          name,
          gateway,
          pathPrefix: `/${name}/v1`,
          rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: fixture.openai }] }],
        });
      route('Tokens', 'tokens');
      const body = () => JSON.parse(shared(synthAll(app))[0].spec.responseOverride[0].response.body.inline);
      expect(body().error).toEqual({
        type: 'authentication_error',
        message: 'missing or invalid token',
        param: null,
        code: 'invalid_token',
      });
      // With JWT, jwt_authn's own 403 (another audience) too.
      expect(shared(synthAll(app))[0].spec.responseOverride[1]).toEqual({
        match: {
          statusCodes: [{ type: 'Value', value: 403 }],
          responseHeaders: [{ name: 'content-type', value: { type: 'Prefix', value: 'text/plain' } }],
        },
        source: 'Local',
        response: {
          contentType: 'application/json',
          body: {
            type: 'Inline',
            inline:
              '{"type":"error","error":{"type":"permission_error","message":"the token\'s audience is not accepted ' +
              'here","param":null,"code":"token_audience_not_allowed"}}',
          },
        },
      });
      // Once a route of the namespace takes keys too, the shared policy names both.
      const keyed = route('Keyed', 'keyed');
      new Consumer(platform, 'App', { target: keyed, keys: [ApiKey.fromSecret('app-keys', ['app'])] });
      expect(body().error.message).toBe('missing or invalid API key or token');
      expect(body().error.code).toBe('invalid_api_key');
    });

    it("covers a route consumer's own SecurityPolicy on a gateway that authenticates nobody else", () => {
      const { app, platform, gateway, route, openai } = setup();
      new AIRoute(platform, 'Open', {
        name: 'open',
        gateway,
        pathPrefix: '/open/v1',
        rules: [{ models: [ModelMatch.exact('gpt-4o-mini')], backends: [{ backend: openai }] }],
      });
      new Consumer(platform, 'ChatOnly', { target: route, keys: [ApiKey.fromSecret('chat-keys', ['chat-1'])] });
      const all = synthAll(app);
      // The namespace's shared policy carries it (a route without authentication never gets an Envoy 401 to replace).
      expect(JSON.parse(shared(all)[0].spec.responseOverride[0].response.body.inline).error.message).toBe(
        'missing or invalid API key',
      );
    });
  });

  describe('throws', () => {
    const keys = (secret: string, ...ids: string[]) => [ApiKey.fromSecret(secret, ids)];

    it('if a consumer id is used twice on one gateway', () => {
      const { platform, gateway, route } = setup();
      new Consumer(platform, 'A', { target: gateway, consumerId: 'team', keys: keys('a-keys', 'a') });
      expect(
        () => new Consumer(platform, 'B', { target: route, consumerId: 'team', keys: keys('b-keys', 'b') }),
      ).toThrow(
        'platform/B: invalid consumerId "team": is already the id of consumer platform/A; consumer ids are unique ' +
          'per gateway',
      );
    });

    it('if a client id is used twice', () => {
      const { platform, gateway } = setup();
      new Consumer(platform, 'A', { target: gateway, keys: keys('a-keys', 'shared') });
      expect(() => new Consumer(platform, 'B', { target: gateway, keys: keys('b-keys', 'shared') })).toThrow(
        'platform/B: invalid keys "shared": client id "shared" is already a key of consumer platform/A; Envoy ' +
          "Gateway would authenticate it as the first Secret's only: use another data key",
      );
      expect(() => new Consumer(platform, 'C', { target: gateway, keys: keys('c-keys', 'c', 'c') })).toThrow(
        'platform/C: invalid keys[0].clientIds[1] "c": is listed twice',
      );
    });

    it('if a Secret reference is invalid', () => {
      const { platform, gateway } = setup();
      expect(() => new Consumer(platform, 'A', { target: gateway, keys: keys('Bad_Name', 'a') })).toThrow(
        'platform/A: invalid keys[0].secretName "Bad_Name": must be a Secret name (a DNS subdomain)',
      );
      expect(() => new Consumer(platform, 'B', { target: gateway, keys: keys('b-keys', 'a b') })).toThrow(
        'platform/B: invalid keys[0].clientIds[0] "a b": must be a Secret data key',
      );
      expect(() => new Consumer(platform, 'C', { target: gateway, keys: keys('c-keys') })).toThrow(
        'platform/C: invalid keys[0].clientIds []: must list the data keys (client ids) of the Secret',
      );
      expect(() => new Consumer(platform, 'D', { target: gateway, keys: [] })).toThrow(
        'platform/D: invalid keys []: a consumer needs at least one ApiKey.fromSecret(...)',
      );
      expect(
        () =>
          new Consumer(platform, 'E', {
            target: gateway,
            keys: [ApiKey.fromSecret('e-keys', ['e'], { namespace: 'team' })],
          }),
      ).toThrow(
        'platform/E: invalid keys[0].namespace "team": the SecurityPolicy authenticating this consumer is in ' +
          'namespace "platform", and Envoy Gateway reads key Secrets of other namespaces only with a ReferenceGrant',
      );
    });

    it('if the consumer id or target is invalid', () => {
      const { platform, gateway } = setup();
      expect(
        () => new Consumer(platform, 'A', { target: gateway, consumerId: 'Team A', keys: keys('a', 'a') }),
      ).toThrow('platform/A: invalid consumerId "Team A": must be 1-63 lower-case letters');
      expect(() => new Consumer(platform, 'B', { target: platform as any, keys: keys('b', 'b') })).toThrow(
        'platform/B: invalid target "platform": must be an AIGateway or an AIRoute',
      );
      expect(
        () => new Consumer(platform, 'C', { target: gateway, keys: keys('c', 'c'), models: ['gpt-4o' as any] }),
      ).toThrow('platform/C: invalid models[0] "gpt-4o": must be created with ModelMatch.exact/prefix/regex');
    });

    it("if a route's policy would repeat gateway consumers' Secrets of another namespace", () => {
      const fixture = gatewayFixture();
      const route = new AIRoute(fixture.team, 'Chat', {
        name: 'chat',
        gateway: fixture.gateway,
        rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: fixture.openai }] }],
      });
      new Consumer(fixture.platform, 'All', { target: fixture.gateway, keys: keys('all-keys', 'all') });
      new Consumer(fixture.team, 'Own', { target: route, keys: keys('own-keys', 'own') });
      expect(() => synthAll(fixture.app)).toThrow(
        /team\/Own: invalid target "team\/Chat": the route's SecurityPolicy \(namespace "team"\) replaces the gateway's/,
      );
    });
  });
});

describeWithShared('crds/jsonschema', 'Consumer manifests', (jsonschemaDir) => {
  it('validate with JWT, gateway consumers and a route consumer (SecurityPolicies, responseOverride)', () => {
    const fixture = gatewayFixture();
    const gateway = new AIGateway(fixture.platform, 'Jwt', {
      name: 'jwt-gw',
      jwt: { issuer: 'https://login.example.com', jwksUri: 'https://login.example.com/jwks.json' },
    });
    const route = new AIRoute(fixture.platform, 'Chat', {
      name: 'chat',
      gateway,
      rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: fixture.openai }] }],
    });
    new Consumer(fixture.platform, 'All', { target: gateway, keys: [ApiKey.fromSecret('all-keys', ['all'])] });
    new Consumer(fixture.platform, 'Own', { target: route, keys: [ApiKey.fromSecret('own-keys', ['own'])] });
    const all = synthAll(fixture.app);
    const policies = (findAll(all, 'BackendTrafficPolicy') as any[]).filter(
      (p) => p.spec.targetSelectors !== undefined,
    );
    expect(policies.map((p) => p.spec.responseOverride.length)).toEqual([2]);
    expect(manifestProblems(all, jsonschemaDir)).toEqual([]);
  });
});
