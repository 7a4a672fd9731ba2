/** Rules from policies, the gateway/route merge, and the descriptors a request produces (Envoy's actions). */
import { HeaderMap } from '../../../lib/dataplane/filter';
import {
  buildRouteRateLimits,
  counterKey,
  hitsFromFormat,
  mergeRateLimitRules,
  pathSeparatedPrefixRegex,
  populateDescriptor,
  rateLimitRulesFromPolicy,
  type RateLimitRule,
  unitSeconds,
} from '../../../lib/dataplane/rate-limit';

function policy(name: string, rules: unknown[], extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'gateway.envoyproxy.io/v1alpha1',
    kind: 'BackendTrafficPolicy',
    metadata: { namespace: 'ai', name },
    spec: { rateLimit: { type: 'Global', global: { rules } }, ...extra },
  };
}

const rule = (selectors: unknown[], more: Record<string, unknown> = {}) => ({
  clientSelectors: selectors,
  limit: { requests: 10, unit: 'Minute' },
  ...more,
});

function descriptorsFor(
  rules: RateLimitRule[],
  headers: [string, string][],
  options: { address?: string; metadata?: Record<string, Record<string, unknown>>; onStreamDone?: boolean } = {},
) {
  const requestHeaders = new HeaderMap([
    [':method', 'POST'],
    [':path', '/v1/chat/completions'],
  ]);
  for (const [name, value] of headers) {
    if (name.startsWith(':')) requestHeaders.set(name, value);
    else requestHeaders.add(name, value);
  }
  const out: Record<string, unknown[]> = {};
  for (const [domain, rateLimits] of buildRouteRateLimits('ai/gw/http', 'httproute/ai/chat/rule/0/match/0/*', rules)) {
    out[domain] = rateLimits
      .filter((rl) => rl.applyOnStreamDone === (options.onStreamDone ?? false))
      .map((rl) =>
        populateDescriptor(rl, {
          headers: requestHeaders,
          downstreamAddress: options.address ?? '10.1.2.3',
          dynamicMetadata: new Map(Object.entries(options.metadata ?? {})),
        }),
      )
      .filter((d) => d !== undefined);
  }
  return out;
}

describe('rateLimitRulesFromPolicy', () => {
  it('names rules <ns>/<policy>/rule/<i> and keeps shared, costs, shadow mode and the unit', () => {
    const rules = rateLimitRulesFromPolicy(
      policy('budgets', [
        rule([{ headers: [{ name: 'x-tenant', type: 'Distinct' }] }], {
          shared: true,
          limit: { requests: 1000, unit: 'Week' },
          cost: {
            request: { from: 'Number', number: 0 },
            response: { from: 'Metadata', metadata: { namespace: 'io.ai-gateway', key: 'tokens' } },
          },
        }),
        rule([{ methods: [{ value: 'GET' }, { value: 'POST', invert: true }] }], { shadowMode: true }),
      ]),
    );
    expect(rules.map((r) => r.name)).toEqual(['ai/budgets/rule/0', 'ai/budgets/rule/1']);
    expect(rules[0]).toMatchObject({
      shared: true,
      limit: { requests: 1000, unit: 'Week' },
      requestCost: { number: 0 },
      responseCost: { metadataNamespace: 'io.ai-gateway', metadataKey: 'tokens' },
      headerMatches: [{ name: 'x-tenant', distinct: true }],
    });
    expect(rules[1]).toMatchObject({
      shared: false,
      shadowMode: true,
      methodMatches: [{ exact: 'GET' }, { exact: 'POST', invert: true }],
    });
  });

  it.each([
    [{ headers: [{ name: 'x', type: 'Distinct', invert: true }] }, /invert is not applicable/],
    [{ headers: [{ name: 'x', type: 'Distinct', value: 'v' }] }, /takes no value/],
    [{ headers: [{ name: 'x', type: 'RegularExpression', value: '(' }] }, /invalid regular expression/],
    [{ sourceCIDR: { value: '10.0.0.0/33' } }, /not a valid CIDR/],
    [{}, /at least one of headers, methods, path, sourceCIDR or queryParams/],
  ])('rejects what EG rejects: %j', (selector, message) => {
    expect(() => rateLimitRulesFromPolicy(policy('bad', [rule([selector])]))).toThrow(message);
  });

  it('rejects units EG 1.9 does not allow and limits outside uint32', () => {
    expect(() => rateLimitRulesFromPolicy(policy('bad', [{ limit: { requests: 1, unit: 'Fortnight' } }]))).toThrow(
      /limit.unit must be one of Second, Minute, Hour, Day, Week, Month, Year/,
    );
    expect(() => rateLimitRulesFromPolicy(policy('bad', [{ limit: { requests: 2 ** 32, unit: 'Hour' } }]))).toThrow(
      /between 0 and 4294967295/,
    );
  });

  it('returns no rules for a policy without a rate limit', () => {
    expect(
      rateLimitRulesFromPolicy({
        metadata: { namespace: 'ai', name: 'timeouts' },
        spec: { timeout: { http: { requestTimeout: '1s' } } },
      }),
    ).toEqual([]);
  });
});

describe('mergeRateLimitRules (EG gateway + route policy)', () => {
  const gateway = rateLimitRulesFromPolicy(
    policy('gw', [
      rule([{ headers: [{ name: 'a', type: 'Distinct' }] }]),
      rule([{ headers: [{ name: 'b', type: 'Distinct' }] }]),
    ]),
  );
  const route = rateLimitRulesFromPolicy(policy('route', [rule([{ headers: [{ name: 'c', type: 'Distinct' }] }])]));

  it('without mergeType the route policy replaces the gateway policy', () => {
    expect(mergeRateLimitRules(gateway, route).map((r) => r.name)).toEqual(['ai/route/rule/0']);
    expect(mergeRateLimitRules(gateway, undefined)).toEqual([]);
  });

  it('StrategicMerge stacks both, route rules first (apimachinery list order)', () => {
    expect(mergeRateLimitRules(gateway, route, 'StrategicMerge').map((r) => r.name)).toEqual([
      'ai/route/rule/0',
      'ai/gw/rule/0',
      'ai/gw/rule/1',
    ]);
  });

  it('StrategicMerge without a route rate limit keeps the gateway rules; JSONMerge replaces the list', () => {
    expect(mergeRateLimitRules(gateway, undefined, 'StrategicMerge').map((r) => r.name)).toEqual([
      'ai/gw/rule/0',
      'ai/gw/rule/1',
    ]);
    expect(mergeRateLimitRules(gateway, route, 'JSONMerge').map((r) => r.name)).toEqual(['ai/route/rule/0']);
  });

  it('a shared gateway rule merged behind route rules gets another descriptor index, so another bucket', () => {
    const sharedGateway = rateLimitRulesFromPolicy(
      policy('gw', [rule([{ headers: [{ name: 'x-tenant', type: 'Distinct' }] }], { shared: true })]),
    );
    const sharedRoute = rateLimitRulesFromPolicy(
      policy('route', [rule([{ headers: [{ name: 'x-tenant', type: 'Distinct' }] }], { shared: true })]),
    );
    const alone = descriptorsFor(sharedGateway, [['x-tenant', 't1']]);
    const merged = descriptorsFor(mergeRateLimitRules(sharedGateway, sharedRoute, 'StrategicMerge'), [
      ['x-tenant', 't1'],
    ]);
    expect(alone['ai/gw']).toEqual([
      {
        entries: [
          { key: 'ai/gw/rule/0', value: 'ai/gw/rule/0' },
          { key: 'rule-0-match-0', value: 't1' },
        ],
      },
    ]);
    expect(merged['ai/gw']).toEqual([
      {
        entries: [
          { key: 'ai/gw/rule/0', value: 'ai/gw/rule/0' },
          { key: 'rule-1-match-0', value: 't1' },
        ],
      },
    ]);
  });
});

describe('descriptors (Envoy rate-limit actions on a request)', () => {
  it(
    'non-shared rules key on the route name in the listener domain; shared ones on the rule in ' + 'the policy domain',
    () => {
      const rules = rateLimitRulesFromPolicy(
        policy('p', [
          rule([{ headers: [{ name: 'x-tenant', type: 'Distinct' }] }]),
          rule([{ headers: [{ name: 'x-tenant', type: 'Distinct' }] }], { shared: true }),
        ]),
      );
      expect(descriptorsFor(rules, [['x-tenant', 'acme']])).toEqual({
        'ai/gw/http': [
          {
            entries: [
              { key: 'httproute/ai/chat/rule/0/match/0/*', value: 'httproute/ai/chat/rule/0/match/0/*' },
              { key: 'rule-0-match-0', value: 'acme' },
            ],
          },
        ],
        'ai/p': [
          {
            entries: [
              { key: 'ai/p/rule/1', value: 'ai/p/rule/1' },
              { key: 'rule-0-match-0', value: 'acme' },
            ],
          },
        ],
      });
    },
  );

  it('a missing Distinct header drops the descriptor (no limit), and only the first value is used', () => {
    const rules = rateLimitRulesFromPolicy(
      policy('p', [rule([{ headers: [{ name: 'x-tenant', type: 'Distinct' }] }], { shared: true })]),
    );
    expect(descriptorsFor(rules, [])['ai/p']).toEqual([]);
    expect(
      descriptorsFor(rules, [
        ['x-tenant', 'a'],
        ['x-tenant', 'b'],
      ])['ai/p'],
    ).toEqual([
      {
        entries: [
          { key: 'ai/p/rule/0', value: 'ai/p/rule/0' },
          { key: 'rule-0-match-0', value: 'a' },
        ],
      },
    ]);
  });

  it('Exact, RegularExpression (whole value) and inverted header matches', () => {
    const rules = rateLimitRulesFromPolicy(
      policy('p', [
        rule(
          [
            {
              headers: [
                { name: 'x-plan', value: 'free' },
                { name: 'x-region', type: 'RegularExpression', value: 'eu-.*' },
                { name: 'x-admin', value: 'yes', invert: true },
              ],
            },
          ],
          { shared: true },
        ),
      ]),
    );
    const hit = (headers: [string, string][]) => descriptorsFor(rules, headers)['ai/p'].length;
    expect(
      hit([
        ['x-plan', 'free'],
        ['x-region', 'eu-west'],
      ]),
    ).toBe(1);
    expect(
      hit([
        ['x-plan', 'free'],
        ['x-region', 'us-eu-west'],
      ]),
    ).toBe(0); // anchored: the regex must match all of it
    expect(
      hit([
        ['x-plan', 'free'],
        ['x-region', 'eu-west'],
        ['x-admin', 'yes'],
      ]),
    ).toBe(0);
    expect(
      hit([
        ['x-plan', 'pro'],
        ['x-region', 'eu-west'],
      ]),
    ).toBe(0);
    expect(
      descriptorsFor(rules, [
        ['x-plan', 'free'],
        ['x-region', 'eu-1'],
      ])['ai/p'][0],
    ).toEqual({
      entries: [
        { key: 'ai/p/rule/0', value: 'ai/p/rule/0' },
        { key: 'rule-0-match-0', value: 'rule-0-match-0' },
        { key: 'rule-0-match-1', value: 'rule-0-match-1' },
        { key: 'rule-0-match-2', value: 'rule-0-match-2' },
      ],
    });
  });

  it('methods are OR-ed into one descriptor per method, sharing the bucket; path prefixes are segment-aware', () => {
    const rules = rateLimitRulesFromPolicy(
      policy('p', [
        rule([{ methods: [{ value: 'GET' }, { value: 'POST' }], path: { type: 'PathPrefix', value: '/v1/chat' } }], {
          shared: true,
        }),
      ]),
    );
    expect(pathSeparatedPrefixRegex('/v1.x/')).toBe('^/v1\\.x(/.*|\\?.*|#.*|;.*|$)');
    const post = descriptorsFor(rules, [[':path', '/v1/chat/completions?stream=true']])['ai/p'];
    expect(post).toEqual([
      {
        entries: [
          { key: 'ai/p/rule/0', value: 'ai/p/rule/0' },
          { key: 'rule-0-method', value: 'rule-0-method' },
          { key: 'rule-0-path', value: 'rule-0-path' },
        ],
      },
    ]);
    expect(descriptorsFor(rules, [[':path', '/v1/chatter']])['ai/p']).toEqual([]);
    expect(
      descriptorsFor(rules, [
        [':method', 'PUT'],
        [':path', '/v1/chat'],
      ])['ai/p'],
    ).toEqual([]);
  });

  it(
    'sourceCIDR: Exact shares one bucket per CIDR, Distinct adds the client IP; outside the ' + 'CIDR no descriptor',
    () => {
      const rules = rateLimitRulesFromPolicy(
        policy('p', [
          rule([{ sourceCIDR: { value: '10.0.0.0/8', type: 'Distinct' } }], { shared: true }),
          rule([{ sourceCIDR: { value: '10.0.0.0/8', invert: true } }], { shared: true }),
        ]),
      );
      expect(descriptorsFor(rules, [], { address: '::ffff:10.9.8.7' })['ai/p']).toEqual([
        {
          entries: [
            { key: 'ai/p/rule/0', value: 'ai/p/rule/0' },
            { key: 'masked_remote_address', value: '10.0.0.0/8' },
            { key: 'remote_address', value: '10.9.8.7' },
          ],
        },
      ]);
      expect(descriptorsFor(rules, [], { address: '192.168.1.1' })['ai/p']).toEqual([
        {
          entries: [
            { key: 'ai/p/rule/1', value: 'ai/p/rule/1' },
            { key: 'masked_remote_address', value: 'invert:10.0.0.0/8' },
          ],
        },
      ]);
    },
  );

  it('a rule without selectors applies to every request (rule-<k>-match--1)', () => {
    const rules = rateLimitRulesFromPolicy(policy('p', [{ limit: { requests: 5, unit: 'Second' } }]));
    expect(descriptorsFor(rules, [])['ai/gw/http']).toEqual([
      {
        entries: [
          { key: 'httproute/ai/chat/rule/0/match/0/*', value: 'httproute/ai/chat/rule/0/match/0/*' },
          { key: 'rule-0-match--1', value: 'rule-0-match--1' },
        ],
      },
    ]);
  });

  it(
    'request cost 0 is a per-descriptor addend of 0; a response cost comes from dynamic ' + 'metadata at stream end',
    () => {
      const rules = rateLimitRulesFromPolicy(
        policy('p', [
          rule([{ headers: [{ name: 'x-tenant', type: 'Distinct' }] }], {
            shared: true,
            cost: {
              request: { from: 'Number', number: 0 },
              response: { from: 'Metadata', metadata: { namespace: 'io.ai', key: 'tokens' } },
            },
          }),
        ]),
      );
      expect(descriptorsFor(rules, [['x-tenant', 't']])['ai/p'][0]).toMatchObject({ hitsAddend: 0 });
      expect(
        descriptorsFor(rules, [['x-tenant', 't']], { onStreamDone: true, metadata: { 'io.ai': { tokens: 42 } } })[
          'ai/p'
        ][0],
      ).toMatchObject({ hitsAddend: 42 });
      // Missing or non-numeric metadata: Envoy logs "Invalid hits_addend" and sends no descriptor (nothing is charged).
      expect(descriptorsFor(rules, [['x-tenant', 't']], { onStreamDone: true })['ai/p']).toEqual([]);
      expect(
        descriptorsFor(rules, [['x-tenant', 't']], { onStreamDone: true, metadata: { 'io.ai': { tokens: 'many' } } })[
          'ai/p'
        ],
      ).toEqual([]);
    },
  );

  it('hits from a format: numbers truncate, numeric strings parse, out of [0, 1e9] is invalid', () => {
    const md = (v: unknown) => new Map([['ns', { k: v }]]);
    expect(hitsFromFormat('%DYNAMIC_METADATA(ns:k)%', md(12.9))).toBe(12);
    expect(hitsFromFormat('%DYNAMIC_METADATA(ns:k)%', md(' 7 '))).toBe(7);
    expect(hitsFromFormat('%DYNAMIC_METADATA(ns:k)%', md(-1))).toBeUndefined();
    expect(hitsFromFormat('%DYNAMIC_METADATA(ns:k)%', md(1e9 + 1))).toBeUndefined();
    expect(hitsFromFormat('%DYNAMIC_METADATA(ns:k)%', md(true))).toBeUndefined();
    expect(hitsFromFormat('%DYNAMIC_METADATA(ns:k:inner)%', new Map([['ns', { k: { inner: 3 } }]]))).toBe(3);
  });
});

describe('windows and counter keys (envoyproxy/ratelimit)', () => {
  it.each([
    ['Second', 1],
    ['Minute', 60],
    ['Hour', 3600],
    ['Day', 86_400],
    ['Week', 604_800],
    ['Month', 2_592_000],
    ['Year', 31_536_000],
  ] as const)('%s windows are %i s long and aligned to the unix epoch', (unit, seconds) => {
    expect(unitSeconds(unit)).toBe(seconds);
    const now = 1_765_000_123;
    const start = Math.floor(now / seconds) * seconds;
    expect(
      counterKey(
        'ai/p',
        [
          { key: 'ai/p/rule/0', value: 'ai/p/rule/0' },
          { key: 'rule-0-match-0', value: 'acme' },
        ],
        unit,
        now,
      ),
    ).toBe(`ai/p_ai/p/rule/0_ai/p/rule/0_rule-0-match-0_acme_${start}`);
  });
});
