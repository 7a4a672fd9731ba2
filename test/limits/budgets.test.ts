import { Chart, Testing } from 'cdk8s';
import { Construct } from 'constructs';
import { ModelMatch } from '../../lib/model-match';
import { missingRateLimitRedisError, unservedModelError } from '../../lib/limits/budgets';
import { synthRegistry } from '../../lib/limits/registry';

function budgetInApp(): Construct {
  return new Construct(new Chart(Testing.app(), 'platform', { namespace: 'platform' }), 'Budget');
}

describe('missingRateLimitRedisError', () => {
  it('is undefined when the app has a RateLimitRedis, in any chart', () => {
    const budget = budgetInApp();
    const registry = synthRegistry(budget);
    registry.register('RateLimitRedis', new Construct(new Chart(budget.node.root, 'redis'), 'Redis'));
    expect(missingRateLimitRedisError(budget, 'target', 'platform/Gateway', registry)).toBeUndefined();
  });

  it('is undefined in a partial build, which may leave the RateLimitRedis out', () => {
    const budget = budgetInApp();
    const registry = synthRegistry(budget);
    registry.markPartial();
    expect(registry.partial).toBe(true);
    expect(missingRateLimitRedisError(budget, 'target', 'platform/Gateway', registry)).toBeUndefined();
  });

  it('throws if there are budgets but no RateLimitRedis', () => {
    const budget = budgetInApp();
    expect(missingRateLimitRedisError(budget, 'target', 'platform/Gateway', synthRegistry(budget))?.message).toBe(
      'platform/Budget: invalid target "platform/Gateway": is a token budget, but the app has no RateLimitRedis: ' +
        'Envoy Gateway enforces ' +
        'budgets with its rate-limit service, which runs only with a Redis, so this budget would never be enforced; ' +
        'add ' +
        'RateLimitRedis.inCluster() (or RateLimitRedis.external() for a Redis Envoy Gateway already uses) and ' +
        'install Envoy Gateway ' +
        'with its helmValues',
    );
  });
});

describe('unservedModelError', () => {
  const routes = [
    { route: 'team/Chat', matches: [ModelMatch.exact('gpt-4o'), ModelMatch.prefix('claude-')] },
    { route: 'team/Embed', matches: [ModelMatch.regex('text-embedding-3-(small|large)')] },
  ];

  it('is undefined when a rule serves the model', () => {
    for (const model of ['gpt-4o', 'claude-sonnet-4', 'text-embedding-3-small']) {
      expect(unservedModelError(budgetInApp(), 'models', model, routes)).toBeUndefined();
    }
  });

  it('throws if ModelScope.only names a model no rule serves', () => {
    expect(unservedModelError(budgetInApp(), 'models', 'gpt-4o-mini', routes)?.message).toBe(
      'platform/Budget: invalid models "gpt-4o-mini": no rule the budget covers serves this model (the rules match ' +
        'Exact(gpt-4o) of ' +
        'team/Chat, Prefix(claude-) of team/Chat, RegularExpression(text-embedding-3-(small|large)) of team/Embed), ' +
        'so it would never ' +
        'count a request; name a model a rule serves, or use ModelScope.eachModel()',
    );
  });

  it('throws if ModelScope.only is used where no route is covered, and shortens long lists', () => {
    expect(unservedModelError(budgetInApp(), 'models', 'gpt-4o', [])?.message).toBe(
      'platform/Budget: invalid models "gpt-4o": no rule the budget covers serves this model (the budget covers no ' +
        'AIRoute), so it ' +
        'would never count a request; name a model a rule serves, or use ModelScope.eachModel()',
    );
    const many = [{ route: 'team/Chat', matches: Array.from({ length: 10 }, (_, i) => ModelMatch.exact(`m${i}`)) }];
    expect(unservedModelError(budgetInApp(), 'models', 'x', many)?.message).toContain(
      'Exact(m7) of team/Chat, and 2 more), so it would never count a request',
    );
  });
});
