import { parseProcessorConfig } from '@ai-gateway-constructs/processor-config';
import { Chart, Testing } from 'cdk8s';
import type { Construct } from 'constructs';
import {
  AIGateway,
  AIRoute,
  ClientIdentity,
  Credentials,
  GatewayReference,
  ModelMatch,
  ModelScope,
  ProviderBackend,
  RateLimitRedis,
  RateLimitUnit,
  TokenCost,
  TokenRateLimit,
} from '../lib';
import { gatewayFixture } from './support/fixtures';
import { manifestProblems } from './support/manifests';
import { describeWithShared } from './support/shared';
import { findAll, findOne, synthAll } from './support/synth';

/** Budgets need a RateLimitRedis in the app; an external one emits no objects. */
function withRedis(scope: Construct): void {
  RateLimitRedis.external(scope, 'Redis', { url: 'redis.example:6379' });
}

function withRoute() {
  const fixture = gatewayFixture();
  withRedis(fixture.platform);
  const route = new AIRoute(fixture.team, 'Route', {
    name: 'chat',
    gateway: fixture.gateway,
    rules: [{ models: [ModelMatch.prefix('gpt-')], backends: [{ backend: fixture.openai }] }],
  });
  return { ...fixture, route };
}

const costOf = (key: string) => ({
  request: { from: 'Number', number: 0 },
  response: { from: 'Metadata', metadata: { namespace: 'io.envoy.ai_gateway', key } },
});

describe('TokenRateLimit', () => {
  it(
    'puts every budget of an AIGateway and its routes into the gateway BackendTrafficPolicy, ' +
      'scoped by the route header',
    () => {
      const { app, team, gateway, anthropic, route } = withRoute();
      new TokenRateLimit(gateway, 'Tenant', {
        target: gateway,
        limit: 100_000,
        per: RateLimitUnit.HOUR,
        client: ClientIdentity.unverifiedHeader('x-tenant-id'),
        shared: true,
      });
      new TokenRateLimit(gateway, 'Output', {
        target: gateway,
        limit: 5_000_000,
        per: RateLimitUnit.DAY,
        cost: TokenCost.outputTokens(),
      });
      new TokenRateLimit(route, 'Own', {
        target: route,
        limit: 10,
        per: RateLimitUnit.MINUTE,
        models: ModelScope.eachModel(),
      });
      new AIRoute(team, 'Later', {
        name: 'later',
        gateway,
        rules: [{ models: [ModelMatch.prefix('claude-')], backends: [{ backend: anthropic }] }],
      });
      const all = synthAll(app);
      const policies = findAll(all, 'BackendTrafficPolicy');
      // Budgets alone never put rate limits into a route-level policy: the routes' policy (here the processor's one
      // of the namespace) holds the circuit breaker of their backends and merges into the gateway's, keeping the
      // gateway's rules as they are.
      expect(policies.map((p) => p.metadata.name)).toEqual(['gw-processor-platform', 'gw-budgets']);
      expect(Object.keys((policies[0] as any).spec).sort()).toEqual(['circuitBreaker', 'mergeType', 'targetSelectors']);
      expect(policies[1].metadata.namespace).toBe('platform');
      expect((policies[1] as any).spec).toEqual({
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }],
        rateLimit: {
          type: 'Global',
          global: {
            rules: [
              {
                // One bucket across every AIRoute (per tenant); only the processor sets the route header (the gateway
                // strips it from clients), so ordinary HTTPRoutes on the Gateway are neither counted nor limited.
                clientSelectors: [
                  {
                    headers: [
                      { name: 'x-ai-gateway-route', type: 'RegularExpression', value: '.+' },
                      { name: 'x-tenant-id', type: 'Distinct' },
                    ],
                  },
                ],
                limit: { requests: 100000, unit: 'Hour' },
                cost: costOf('llm_total_token'),
                shared: true,
                xRateLimitHeaders: 'DraftVersion03',
              },
              {
                // Not shared: one bucket per AIRoute, whatever the number of its backends, matches and hostnames.
                clientSelectors: [{ headers: [{ name: 'x-ai-gateway-route', type: 'Distinct' }] }],
                limit: { requests: 5000000, unit: 'Day' },
                cost: costOf('llm_output_token'),
                shared: true,
                xRateLimitHeaders: 'DraftVersion03',
              },
              {
                // A route budget: that route's requests only, one bucket per model.
                clientSelectors: [
                  {
                    headers: [
                      { name: 'x-ai-gateway-route', type: 'Exact', value: 'team/chat' },
                      { name: 'x-ai-eg-model', type: 'Distinct' },
                    ],
                  },
                ],
                limit: { requests: 10, unit: 'Minute' },
                cost: costOf('llm_total_token'),
                shared: true,
                xRateLimitHeaders: 'DraftVersion03',
              },
            ],
          },
        },
      });
      const config = parseProcessorConfig(JSON.parse(findOne(all, 'ConfigMap').data['config.json']));
      expect(config.costs).toEqual([
        { metadataKey: 'llm_output_token', type: 'OutputToken' },
        { metadataKey: 'llm_total_token', type: 'TotalToken' },
      ]);
      // The route header value is the route's name in the processor config, which the processor sends.
      expect(config.routes.map((r) => r.name)).toContain('team/chat');
      // The Distinct header of a per-client budget becomes mandatory on every route of the gateway.
      expect(config.routes.find((r) => r.name === `team/${route.routeName}`)!.requiredHeaders).toEqual(['x-tenant-id']);
    },
  );

  it('merges a route policy (retries) into the gateway policy, keeping the gateway rules as they are', () => {
    const fixture = gatewayFixture();
    withRedis(fixture.platform);
    const route = new AIRoute(fixture.team, 'Route', {
      name: 'chat',
      gateway: fixture.gateway,
      retry: { attempts: 1 },
      rules: [{ models: [ModelMatch.prefix('gpt-')], backends: [{ backend: fixture.openai }] }],
    });
    new TokenRateLimit(route, 'Gpt4o', {
      target: route,
      limit: 10,
      per: RateLimitUnit.SECOND,
      models: ModelScope.only('gpt-4o'),
      client: ClientIdentity.unverifiedHeader('x-user'),
      cost: TokenCost.cachedInputTokens(),
    });
    const all = synthAll(fixture.app);
    const policy = findOne(all, 'BackendTrafficPolicy', 'chat');
    expect(policy.spec).toEqual({
      targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'chat' }],
      // Without a rate limit of its own, a merging route policy keeps the gateway's rules with their names, so each
      // budget keeps one bucket on every route.
      mergeType: 'StrategicMerge',
      circuitBreaker: { maxConnections: 20000, maxPendingRequests: 20000, maxParallelRequests: 20000 },
      retry: expect.objectContaining({ numRetries: 1 }),
    });
    expect(findOne(all, 'BackendTrafficPolicy', 'gw-budgets').spec.rateLimit.global.rules).toEqual([
      {
        clientSelectors: [
          {
            headers: [
              { name: 'x-ai-gateway-route', type: 'Exact', value: 'team/chat' },
              { name: 'x-user', type: 'Distinct' },
              { name: 'x-ai-eg-model', type: 'Exact', value: 'gpt-4o' },
            ],
          },
        ],
        limit: { requests: 10, unit: 'Second' },
        cost: costOf('llm_cached_input_token'),
        shared: true,
        xRateLimitHeaders: 'DraftVersion03',
      },
    ]);
    const config = parseProcessorConfig(JSON.parse(findOne(all, 'ConfigMap').data['config.json']));
    expect(config.routes[0].requiredHeaders).toEqual(['x-user']);
  });

  it('merges a route policy into the gateway policy even while the gateway has none (a user may add one)', () => {
    const fixture = gatewayFixture();
    withRedis(fixture.platform);
    new AIRoute(fixture.team, 'Route', {
      name: 'chat',
      gateway: fixture.gateway,
      retry: { attempts: 1 },
      rules: [{ models: [ModelMatch.prefix('gpt-')], backends: [{ backend: fixture.openai }] }],
    });
    const policy = findOne(synthAll(fixture.app), 'BackendTrafficPolicy', 'chat');
    expect(policy.spec.mergeType).toBe('StrategicMerge');
    expect(policy.spec.rateLimit).toBeUndefined();
  });

  it('merges a route on a Gateway it does not manage into whatever policy that Gateway carries', () => {
    const app = Testing.app();
    const team = new Chart(app, 'team', { namespace: 'team' });
    withRedis(team);
    const openai = ProviderBackend.openAI(team, 'OpenAI', {
      name: 'openai',
      credentials: Credentials.apiKey({ secretName: 'openai', key: 'k' }),
    });
    const route = new AIRoute(team, 'Route', {
      name: 'chat',
      gateway: GatewayReference.fromName('shared', 'infra'),
      rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend: openai }] }],
    });
    new TokenRateLimit(route, 'Budget', {
      target: route,
      limit: 10,
      per: RateLimitUnit.MINUTE,
      models: ModelScope.eachModel(),
    });
    const policy = findOne(synthAll(app), 'BackendTrafficPolicy');
    expect(policy.spec.mergeType).toBe('StrategicMerge');
    // The route's own policy applies to this route only: no route header needed.
    expect(policy.spec.rateLimit.global.rules).toEqual([
      {
        clientSelectors: [{ headers: [{ name: 'x-ai-eg-model', type: 'Distinct' }] }],
        limit: { requests: 10, unit: 'Minute' },
        cost: costOf('llm_total_token'),
        shared: true,
        xRateLimitHeaders: 'DraftVersion03',
      },
    ]);
  });

  it('keys a budget on a JWT claim header of the gateway with ClientIdentity.header', () => {
    const app = Testing.app();
    const platform = new Chart(app, 'platform', { namespace: 'platform' });
    withRedis(platform);
    const gateway = new AIGateway(platform, 'Gateway', {
      name: 'gw',
      jwt: {
        issuer: 'https://login.example.com',
        jwksUri: 'https://login.example.com/jwks.json',
        claimToHeaders: { tenant: 'x-tenant-id' },
      },
    });
    const openai = ProviderBackend.openAI(platform, 'OpenAI', {
      name: 'openai',
      credentials: Credentials.apiKey({ secretName: 'openai', key: 'k' }),
    });
    const route = new AIRoute(platform, 'Route', {
      name: 'chat',
      gateway,
      rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend: openai }] }],
    });
    new TokenRateLimit(platform, 'GatewayBudget', {
      target: gateway,
      limit: 1,
      per: RateLimitUnit.HOUR,
      client: ClientIdentity.header('x-tenant-id'),
      shared: true,
    });
    new TokenRateLimit(platform, 'RouteBudget', {
      target: route,
      limit: 1,
      per: RateLimitUnit.HOUR,
      client: ClientIdentity.header('x-tenant-id'),
    });
    const rules = findOne(synthAll(app), 'BackendTrafficPolicy', 'gw-budgets').spec.rateLimit.global.rules;
    expect(rules.map((rule: any) => rule.clientSelectors[0].headers[1])).toEqual([
      { name: 'x-tenant-id', type: 'Distinct' },
      { name: 'x-tenant-id', type: 'Distinct' },
    ]);
  });

  it('registers CEL costs under a deterministic generated key', () => {
    const { app, route } = withRoute();
    const limit = new TokenRateLimit(route, 'Weighted', {
      target: route,
      limit: 1000,
      per: RateLimitUnit.HOUR,
      cost: TokenCost.expression('input_tokens + 4 * output_tokens'),
    });
    expect(limit.metadataKey).toMatch(/^llm_cel_[0-9a-f]{12}$/);
    expect(limit.metadataKey).toBe(TokenCost.expression('input_tokens + 4 * output_tokens').metadataKey);
    const all = synthAll(app);
    const config = parseProcessorConfig(JSON.parse(findOne(all, 'ConfigMap').data['config.json']));
    expect(config.costs).toEqual([
      { metadataKey: limit.metadataKey, type: 'CEL', expression: 'input_tokens + 4 * output_tokens' },
    ]);
    expect(
      findOne(all, 'BackendTrafficPolicy', 'gw-budgets').spec.rateLimit.global.rules[0].cost.response.metadata.key,
    ).toBe(limit.metadataKey);
  });

  it('accepts CEL costs written for uint or double token counts, like the processor', () => {
    const { route } = withRoute();
    for (const [id, expression] of [
      ['Uint', 'uint(3) * input_tokens'],
      ['Double', 'output_tokens * 1.5'],
      ['Conditional', 'model == "gpt-4o" ? total_tokens : 0'],
    ]) {
      expect(
        () =>
          new TokenRateLimit(route, id, {
            target: route,
            limit: 1,
            per: RateLimitUnit.HOUR,
            cost: TokenCost.expression(expression),
          }),
      ).not.toThrow();
    }
  });

  describe('throws', () => {
    it('if a route on a Gateway not managed here already holds the 256 budgets its BackendTrafficPolicy takes', () => {
      const app = Testing.app();
      const team = new Chart(app, 'team', { namespace: 'team' });
      withRedis(team);
      const openai = ProviderBackend.openAI(team, 'OpenAI', {
        name: 'openai',
        credentials: Credentials.apiKey({ secretName: 'openai', key: 'k' }),
      });
      const route = new AIRoute(team, 'Route', {
        name: 'chat',
        gateway: GatewayReference.fromName('shared', 'infra'),
        rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend: openai }] }],
      });
      for (let i = 0; i < 256; i++)
        new TokenRateLimit(route, `Budget${i}`, { target: route, limit: 1000 + i, per: RateLimitUnit.HOUR });
      expect(
        () => new TokenRateLimit(route, 'OneTooMany', { target: route, limit: 1, per: RateLimitUnit.MINUTE }),
      ).toThrow(/team\/Route\/OneTooMany: invalid target "team\/Route": the route already holds 256 budgets/);
    });

    it('if the gateway already holds the 256 budgets one BackendTrafficPolicy takes', () => {
      const { gateway, route } = withRoute();
      for (let i = 0; i < 255; i++)
        new TokenRateLimit(gateway, `Budget${i}`, {
          target: gateway,
          limit: 1000 + i,
          per: RateLimitUnit.HOUR,
          shared: true,
        });
      new TokenRateLimit(route, 'Last', { target: route, limit: 1, per: RateLimitUnit.HOUR });
      expect(
        () => new TokenRateLimit(route, 'OneTooMany', { target: route, limit: 1, per: RateLimitUnit.MINUTE }),
      ).toThrow(
        /team\/Route\/OneTooMany: invalid target "team\/Route": the AIGateway platform\/Gateway already holds 256 budgets of its own and its routes, the most Envoy Gateway's BackendTrafficPolicy takes/,
      );
    });

    it.each([0, -5, 1.5])('if the limit is not positive (%p)', (limit) => {
      const { route } = withRoute();
      expect(() => new TokenRateLimit(route, 'Budget', { target: route, limit, per: RateLimitUnit.HOUR })).toThrow(
        new RegExp(
          `team/Route/Budget: invalid limit ${limit}: must be a positive integer number of tokens`.replace(
            /[.]/g,
            '\\.',
          ),
        ),
      );
    });

    it('if a CEL cost does not parse', () => {
      const { route } = withRoute();
      expect(
        () =>
          new TokenRateLimit(route, 'Budget', {
            target: route,
            limit: 1,
            per: RateLimitUnit.HOUR,
            cost: TokenCost.expression('input_tokens +'),
          }),
      ).toThrow(/invalid cost "input_tokens \+": is not a valid CEL expression/);
    });

    it('if a CEL cost uses an unknown variable', () => {
      const { route } = withRoute();
      expect(
        () =>
          new TokenRateLimit(route, 'Budget', {
            target: route,
            limit: 1,
            per: RateLimitUnit.HOUR,
            cost: TokenCost.expression('prompt_tokens * 2'),
          }),
      ).toThrow(
        /invalid cost "prompt_tokens \* 2": must produce a number, got unresolved attribute; variables are model, backend, input_tokens/,
      );
    });

    it('if a CEL cost is not a number', () => {
      const { route } = withRoute();
      expect(
        () =>
          new TokenRateLimit(route, 'Budget', {
            target: route,
            limit: 1,
            per: RateLimitUnit.HOUR,
            cost: TokenCost.expression('model'),
          }),
      ).toThrow(/invalid cost "model": must produce a number, got gpt-4o/);
    });

    it('if the client header is not a header name', () => {
      const { route } = withRoute();
      expect(
        () =>
          new TokenRateLimit(route, 'Budget', {
            target: route,
            limit: 1,
            per: RateLimitUnit.HOUR,
            client: ClientIdentity.unverifiedHeader('X Tenant'),
          }),
      ).toThrow(/invalid client "X Tenant": must be a lower-case HTTP header name/);
    });

    it('if the client header is a credential the processor replaces (ClientIdentity.header("authorization"))', () => {
      const { route } = withRoute();
      expect(
        () =>
          new TokenRateLimit(route, 'Budget', {
            target: route,
            limit: 1,
            per: RateLimitUnit.HOUR,
            client: ClientIdentity.header('authorization'),
          }),
      ).toThrow(
        /team\/Route\/Budget: invalid client "authorization": cannot identify clients: it is a client credential header: the processor removes it and sets the provider credential before the budget is counted/,
      );
    });

    it.each([
      ['x-api-key', /client credential header/],
      ['api-key', /client credential header/],
      ['x-ai-gateway-backend', /set by the processor to the chosen backend/],
      ['x-ai-eg-model', /ModelScope.eachModel/],
      ['x-ai-gateway-route', /per-route budgets/],
      ['x-request-id', /new id for every request/],
      ['x-forwarded-proto', /set by Envoy/],
      ['x-forwarded-for', /appended to by Envoy/],
      ['x-forwarded-client-cert', /removed by Envoy/],
      ['anthropic-version', /set by the processor for Anthropic backends/],
      ['content-length', /rewritten by the processor/],
      ['content-type', /the processor rewrites/],
      ['host', /rewritten to the provider host/],
      ['x-amz-date', /SigV4/],
      ['x-amz-security-token', /SigV4/],
      ['x-aigw-aws-access-key-id', /per-request credentials/],
      ['x-envoy-original-path', /Envoy-internal/],
    ])('if the client header is %s, which the gateway rewrites or removes', (header, reason) => {
      const { gateway, route } = withRoute();
      expect(
        () =>
          new TokenRateLimit(route, 'Budget', {
            target: route,
            limit: 1,
            per: RateLimitUnit.HOUR,
            client: ClientIdentity.unverifiedHeader(header),
          }),
      ).toThrow(new RegExp(`invalid client "${header}": cannot identify clients: it .*${reason.source}`));
      expect(
        () =>
          new TokenRateLimit(gateway, 'Budget', {
            target: gateway,
            limit: 1,
            per: RateLimitUnit.HOUR,
            client: ClientIdentity.unverifiedHeader(header),
          }),
      ).toThrow(/cannot identify clients/);
    });

    it('if ClientIdentity.header names a header the gateway does not set from a JWT claim', () => {
      const { route } = withRoute();
      expect(
        () =>
          new TokenRateLimit(route, 'Budget', {
            target: route,
            limit: 1,
            per: RateLimitUnit.HOUR,
            client: ClientIdentity.header('x-tenant-id'),
          }),
      ).toThrow(
        /team\/Route\/Budget: invalid client "x-tenant-id": ClientIdentity.header\(\) needs a header the gateway sets from a verified JWT claim \(AIGateway jwt.claimToHeaders; it authenticates nobody\); clients can send any value in other headers: map a claim to it, use ClientIdentity.jwtClaim\(\), or choose ClientIdentity.unverifiedHeader\('x-tenant-id'\) explicitly/,
      );
    });

    it('if ClientIdentity.header is used on a Gateway the app does not manage', () => {
      const app = Testing.app();
      const team = new Chart(app, 'team', { namespace: 'team' });
      withRedis(team);
      const openai = ProviderBackend.openAI(team, 'OpenAI', {
        name: 'openai',
        credentials: Credentials.apiKey({ secretName: 'openai', key: 'k' }),
      });
      const route = new AIRoute(team, 'Route', {
        gateway: GatewayReference.fromName('shared', 'infra'),
        rules: [{ models: [ModelMatch.exact('m')], backends: [{ backend: openai }] }],
      });
      expect(
        () =>
          new TokenRateLimit(route, 'Budget', {
            target: route,
            limit: 1,
            per: RateLimitUnit.HOUR,
            client: ClientIdentity.header('x-team'),
          }),
      ).toThrow(
        /invalid client "x-team": ClientIdentity.header\(\) needs a header the AIGateway sets from a JWT claim, but the route's gateway is not an AIGateway of this app/,
      );
      expect(
        () =>
          new TokenRateLimit(route, 'Ok', {
            target: route,
            limit: 1,
            per: RateLimitUnit.HOUR,
            client: ClientIdentity.unverifiedHeader('x-team'),
          }),
      ).not.toThrow();
    });

    it('if a backend of the target changes the client header, whichever comes first', () => {
      const { team, platform, gateway, route } = withRoute();
      const tagged = ProviderBackend.openAICompatible(platform, 'Tagged', {
        name: 'tagged',
        baseUrl: 'https://llm.example.com/v1',
        headerMutation: { set: { 'X-Team': 'shared' } },
      });
      const other = new AIRoute(team, 'Other', {
        name: 'other',
        gateway,
        rules: [{ models: [ModelMatch.exact('tagged')], backends: [{ backend: tagged }] }],
      });
      expect(
        () =>
          new TokenRateLimit(other, 'Budget', {
            target: other,
            limit: 1,
            per: RateLimitUnit.HOUR,
            client: ClientIdentity.unverifiedHeader('x-team'),
          }),
      ).toThrow(
        /team\/Other\/Budget: invalid client "x-team": cannot identify clients: the headerMutation of backend "tagged" \(route team\/Other\) changes it before budgets read it/,
      );
      expect(
        () =>
          new TokenRateLimit(gateway, 'Budget', {
            target: gateway,
            limit: 1,
            per: RateLimitUnit.HOUR,
            client: ClientIdentity.unverifiedHeader('x-team'),
          }),
      ).toThrow(/the headerMutation of backend "tagged"/);
      new TokenRateLimit(gateway, 'Other', {
        target: gateway,
        limit: 1,
        per: RateLimitUnit.HOUR,
        client: ClientIdentity.unverifiedHeader('x-other'),
      });
      const removing = ProviderBackend.openAICompatible(platform, 'Removing', {
        name: 'removing',
        baseUrl: 'https://llm2.example.com/v1',
        headerMutation: { remove: ['x-other'] },
      });
      expect(
        () =>
          new AIRoute(team, 'Late', {
            gateway,
            rules: [{ models: [ModelMatch.exact('late')], backends: [{ backend: removing }] }],
          }),
      ).toThrow(
        /team\/Late: invalid rules\[0\].backends\[0\].backend "removing": its headerMutation changes "x-other", which the gateway budget platform\/Gateway\/Other identifies clients by; budgets read it after the change/,
      );
      void route;
    });

    it('if the client is not a ClientIdentity', () => {
      const { route } = withRoute();
      expect(
        () =>
          new TokenRateLimit(route, 'Budget', {
            target: route,
            limit: 1,
            per: RateLimitUnit.HOUR,
            client: { header: 'x-tenant-id' } as unknown as ClientIdentity,
          }),
      ).toThrow(
        /team\/Route\/Budget: invalid client \{"header":"x-tenant-id"\}: must be created with ClientIdentity.jwtClaim\/consumer\/apiKey\/header\/unverifiedHeader/,
      );
    });

    it('if a route budget is not shared', () => {
      const { route } = withRoute();
      expect(
        () => new TokenRateLimit(route, 'Budget', { target: route, limit: 1, per: RateLimitUnit.HOUR, shared: false }),
      ).toThrow(
        /team\/Route\/Budget: invalid shared false: a route budget always counts one bucket for the whole AIRoute/,
      );
    });
  });
});

describe('TokenRateLimit contributions to the gateway model', () => {
  const configOf = (gateway: AIGateway) => parseProcessorConfig(JSON.parse(gateway.processor.configJson()));
  const headersByRoute = (gateway: AIGateway) =>
    Object.fromEntries(configOf(gateway).routes.map((r) => [r.name, r.requiredHeaders]));

  it(
    "requires a gateway budget's client header on every route, also those attached after it, " +
      "and a route budget's on its route only",
    () => {
      const { team, gateway, anthropic, route } = withRoute();
      new TokenRateLimit(gateway, 'Tenant', {
        target: gateway,
        limit: 10,
        per: RateLimitUnit.HOUR,
        client: ClientIdentity.unverifiedHeader('x-tenant-id'),
      });
      const later = new AIRoute(team, 'Later', {
        name: 'later',
        gateway,
        requiredHeaders: ['x-team'],
        rules: [{ models: [ModelMatch.prefix('claude-')], backends: [{ backend: anthropic }] }],
      });
      new TokenRateLimit(later, 'User', {
        target: later,
        limit: 10,
        per: RateLimitUnit.HOUR,
        client: ClientIdentity.unverifiedHeader('x-user'),
      });
      expect(headersByRoute(gateway)).toEqual({
        [`team/${route.routeName}`]: ['x-tenant-id'],
        'team/later': ['x-team', 'x-tenant-id', 'x-user'],
      });
    },
  );

  it('renders the processor config and the budget policy again after a later route or budget (no stale cache)', () => {
    const { app, team, gateway, anthropic } = withRoute();
    const before = gateway.processor.configJson();
    expect(gateway.hasBudgets).toBe(false);
    const routePolicy = () => findOne(synthAll(app), 'BackendTrafficPolicy', 'gw-processor-platform').spec;
    // Only the routes' policy (their backends' circuit breaker), merging into a gateway policy there is none of yet.
    expect(findAll(synthAll(app), 'BackendTrafficPolicy').map((p) => p.metadata.name)).toEqual([
      'gw-processor-platform',
    ]);
    expect(routePolicy().mergeType).toBe('StrategicMerge');
    const later = new AIRoute(team, 'Later', {
      name: 'later',
      gateway,
      rules: [{ models: [ModelMatch.prefix('claude-')], backends: [{ backend: anthropic }] }],
    });
    new TokenRateLimit(later, 'Budget', {
      target: later,
      limit: 10,
      per: RateLimitUnit.HOUR,
      cost: TokenCost.inputTokens(),
    });
    expect(gateway.processor.configJson()).not.toBe(before);
    expect(configOf(gateway).routes.map((r) => r.name)).toEqual(['team/chat', 'team/later']);
    expect(configOf(gateway).costs).toEqual([{ metadataKey: 'llm_input_token', type: 'InputToken' }]);
    expect(gateway.hasBudgets).toBe(true);
    const policy = findOne(synthAll(app), 'BackendTrafficPolicy', 'gw-budgets');
    expect(routePolicy().mergeType).toBe('StrategicMerge');
    expect(policy.spec.rateLimit.global.rules.map((r: any) => r.clientSelectors[0].headers[0])).toEqual([
      { name: 'x-ai-gateway-route', type: 'Exact', value: 'team/later' },
    ]);
  });

  it('throws for a target that is neither an AIGateway nor an AIRoute', () => {
    const { team } = withRoute();
    const notATarget = new Chart(team, 'Other');
    expect(
      () => new TokenRateLimit(team, 'Budget', { target: notATarget as any, limit: 10, per: RateLimitUnit.HOUR }),
    ).toThrow('team/Budget: invalid target "team/Other": must be an AIGateway or an AIRoute');
  });
});

describeWithShared('crds/jsonschema', 'TokenRateLimit manifests', (jsonschemaDir) => {
  it('validate for gateway and route budgets of every kind', () => {
    const { app, gateway, route } = withRoute();
    new TokenRateLimit(gateway, 'A', {
      target: gateway,
      limit: 1,
      per: RateLimitUnit.DAY,
      client: ClientIdentity.unverifiedHeader('x-tenant-id'),
      shared: true,
    });
    new TokenRateLimit(gateway, 'B', {
      target: gateway,
      limit: 2,
      per: RateLimitUnit.HOUR,
      models: ModelScope.only('gpt-4o'),
      shared: false,
    });
    new TokenRateLimit(route, 'C', {
      target: route,
      limit: 3,
      per: RateLimitUnit.MINUTE,
      cost: TokenCost.expression('input_tokens + 4 * output_tokens'),
    });
    new TokenRateLimit(route, 'D', {
      target: route,
      limit: 4,
      per: RateLimitUnit.SECOND,
      models: ModelScope.eachModel(),
      cost: TokenCost.cachedInputTokens(),
    });
    expect(manifestProblems(synthAll(app), jsonschemaDir)).toEqual([]);
  });
});
