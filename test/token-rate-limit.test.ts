import { parseProcessorConfig } from '../processor/src/config/schema';
import { AIRoute, ClientIdentity, ModelMatch, ModelScope, RateLimitUnit, TokenCost, TokenRateLimit } from '../lib';
import { gatewayFixture } from './support/fixtures';
import { manifestProblems } from './support/manifests';
import { describeWithShared } from './support/shared';
import { findAll, findOne, synthAll } from './support/synth';

function withRoute() {
  const fixture = gatewayFixture();
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
  it('puts gateway budgets into one BackendTrafficPolicy on the Gateway, charged from the response metadata', () => {
    const { app, gateway, route } = withRoute();
    new TokenRateLimit(gateway, 'Tenant', {
      target: gateway,
      limit: 100_000,
      per: RateLimitUnit.HOUR,
      client: ClientIdentity.header('x-tenant-id'),
      shared: true,
    });
    new TokenRateLimit(gateway, 'Output', { target: gateway, limit: 5_000_000, per: RateLimitUnit.DAY, cost: TokenCost.outputTokens() });
    const all = synthAll(app);
    const policies = findAll(all, 'BackendTrafficPolicy');
    expect(policies.map((p) => p.metadata.name)).toEqual(['gw-budgets']);
    expect(policies[0].metadata.namespace).toBe('platform');
    expect((policies[0] as any).spec).toEqual({
      targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }],
      rateLimit: {
        type: 'Global',
        global: {
          rules: [
            {
              clientSelectors: [{ headers: [{ name: 'x-tenant-id', type: 'Distinct' }] }],
              limit: { requests: 100000, unit: 'Hour' },
              cost: costOf('llm_total_token'),
              shared: true,
            },
            { limit: { requests: 5000000, unit: 'Day' }, cost: costOf('llm_output_token') },
          ],
        },
      },
    });
    const config = parseProcessorConfig(JSON.parse(findOne(all, 'ConfigMap').data['config.json']));
    expect(config.costs).toEqual([
      { metadataKey: 'llm_output_token', type: 'OutputToken' },
      { metadataKey: 'llm_total_token', type: 'TotalToken' },
    ]);
    // The Distinct header of a per-client budget becomes mandatory on every route of the gateway.
    expect(config.routes.find((r) => r.name === `team/${route.routeName}`)!.requiredHeaders).toEqual(['x-tenant-id']);
  });

  it('merges route budgets with the route retries into the route BackendTrafficPolicy', () => {
    const fixture = gatewayFixture();
    const route = new AIRoute(fixture.team, 'Route', {
      name: 'chat',
      gateway: fixture.gateway,
      retry: { attempts: 1 },
      rules: [{ models: [ModelMatch.prefix('gpt-')], backends: [{ backend: fixture.openai }] }],
    });
    new TokenRateLimit(route, 'PerModel', { target: route, limit: 1000, per: RateLimitUnit.MINUTE, models: ModelScope.eachModel(), cost: TokenCost.inputTokens() });
    new TokenRateLimit(route, 'Gpt4o', {
      target: route,
      limit: 10,
      per: RateLimitUnit.SECOND,
      models: ModelScope.only('gpt-4o'),
      client: ClientIdentity.header('x-user'),
      cost: TokenCost.cachedInputTokens(),
    });
    const all = synthAll(fixture.app);
    const policy = findOne(all, 'BackendTrafficPolicy', 'chat');
    expect(policy.spec.targetRefs).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'chat' }]);
    expect(policy.spec.retry.numRetries).toBe(1);
    expect(policy.spec.mergeType).toBeUndefined();
    expect(policy.spec.rateLimit.global.rules).toEqual([
      { clientSelectors: [{ headers: [{ name: 'x-ai-eg-model', type: 'Distinct' }] }], limit: { requests: 1000, unit: 'Minute' }, cost: costOf('llm_input_token') },
      {
        clientSelectors: [{ headers: [{ name: 'x-user', type: 'Distinct' }, { name: 'x-ai-eg-model', type: 'Exact', value: 'gpt-4o' }] }],
        limit: { requests: 10, unit: 'Second' },
        cost: costOf('llm_cached_input_token'),
      },
    ]);
    const config = parseProcessorConfig(JSON.parse(findOne(all, 'ConfigMap').data['config.json']));
    expect(config.routes[0].requiredHeaders).toEqual(['x-user']);
  });

  it('merges route policies into the gateway policy when the gateway has budgets too', () => {
    const { app, gateway, route } = withRoute();
    new TokenRateLimit(route, 'Route', { target: route, limit: 1000, per: RateLimitUnit.HOUR });
    new TokenRateLimit(gateway, 'GatewayBudget', { target: gateway, limit: 5000, per: RateLimitUnit.HOUR });
    expect(findOne(synthAll(app), 'BackendTrafficPolicy', 'chat').spec.mergeType).toBe('StrategicMerge');
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
    expect(config.costs).toEqual([{ metadataKey: limit.metadataKey, type: 'CEL', expression: 'input_tokens + 4 * output_tokens' }]);
    expect(findOne(all, 'BackendTrafficPolicy').spec.rateLimit.global.rules[0].cost.response.metadata.key).toBe(limit.metadataKey);
  });

  it('accepts CEL costs written for uint or double token counts, like the processor', () => {
    const { route } = withRoute();
    for (const [id, expression] of [
      ['Uint', 'uint(3) * input_tokens'],
      ['Double', 'output_tokens * 1.5'],
      ['Conditional', 'model == "gpt-4o" ? total_tokens : 0'],
    ]) {
      expect(() => new TokenRateLimit(route, id, { target: route, limit: 1, per: RateLimitUnit.HOUR, cost: TokenCost.expression(expression) })).not.toThrow();
    }
  });

  describe('throws', () => {
    it.each([0, -5, 1.5])('if the limit is not positive (%p)', (limit) => {
      const { route } = withRoute();
      expect(() => new TokenRateLimit(route, 'Budget', { target: route, limit, per: RateLimitUnit.HOUR })).toThrow(
        new RegExp(`team/Route/Budget: invalid limit ${limit}: must be a positive integer number of tokens`.replace(/[.]/g, '\\.')),
      );
    });

    it('if a CEL cost does not parse', () => {
      const { route } = withRoute();
      expect(() => new TokenRateLimit(route, 'Budget', { target: route, limit: 1, per: RateLimitUnit.HOUR, cost: TokenCost.expression('input_tokens +') })).toThrow(
        /invalid cost "input_tokens \+": is not a valid CEL expression/,
      );
    });

    it('if a CEL cost uses an unknown variable', () => {
      const { route } = withRoute();
      expect(() => new TokenRateLimit(route, 'Budget', { target: route, limit: 1, per: RateLimitUnit.HOUR, cost: TokenCost.expression('prompt_tokens * 2') })).toThrow(
        /invalid cost "prompt_tokens \* 2": must produce a number, got unresolved attribute; variables are model, backend, input_tokens/,
      );
    });

    it('if a CEL cost is not a number', () => {
      const { route } = withRoute();
      expect(() => new TokenRateLimit(route, 'Budget', { target: route, limit: 1, per: RateLimitUnit.HOUR, cost: TokenCost.expression('model') })).toThrow(
        /invalid cost "model": must produce a number, got gpt-4o/,
      );
    });

    it('if the client header is not a header name', () => {
      const { route } = withRoute();
      expect(() => new TokenRateLimit(route, 'Budget', { target: route, limit: 1, per: RateLimitUnit.HOUR, client: ClientIdentity.header('X Tenant') })).toThrow(
        /invalid client "X Tenant": must be a lower-case HTTP header name/,
      );
    });
  });
});

describeWithShared('crds/jsonschema', 'TokenRateLimit manifests', (jsonschemaDir) => {
  it('validate for gateway and route budgets of every kind', () => {
    const { app, gateway, route } = withRoute();
    new TokenRateLimit(gateway, 'A', { target: gateway, limit: 1, per: RateLimitUnit.DAY, client: ClientIdentity.header('x-tenant-id'), shared: true });
    new TokenRateLimit(gateway, 'B', { target: gateway, limit: 2, per: RateLimitUnit.HOUR, models: ModelScope.only('gpt-4o'), shared: false });
    new TokenRateLimit(route, 'C', { target: route, limit: 3, per: RateLimitUnit.MINUTE, cost: TokenCost.expression('input_tokens + 4 * output_tokens') });
    new TokenRateLimit(route, 'D', { target: route, limit: 4, per: RateLimitUnit.SECOND, models: ModelScope.eachModel(), cost: TokenCost.cachedInputTokens() });
    expect(manifestProblems(synthAll(app), jsonschemaDir)).toEqual([]);
  });
});
