import { Chart, Duration, Testing } from 'cdk8s';
import { parseProcessorConfig } from '@ai-gateway-constructs/processor-config';
import {
  AIRoute,
  type AIRouteProps,
  type AIRouteRule,
  Credentials,
  Fallback,
  type FallbackOptions,
  GatewayReference,
  ModelMatch,
  ProviderBackend,
} from '../lib';
import { gatewayFixture, type GatewayFixture } from './support/fixtures';
import { manifestProblems } from './support/manifests';
import { sharedPath } from './support/shared';
import { findAll, findOne, policyRoutes, synthAll } from './support/synth';

function configOf(all: ReturnType<typeof synthAll>, configMapName?: string) {
  return parseProcessorConfig(JSON.parse(findOne(all, 'ConfigMap', configMapName).data['config.json']));
}

/** The fixture with a third backend, an OpenAI-compatible server, for rules with three priorities. */
function fixture(): GatewayFixture & { groq: ProviderBackend } {
  const base = gatewayFixture();
  const groq = ProviderBackend.openAICompatible(base.platform, 'Groq', {
    name: 'groq',
    baseUrl: 'https://api.groq.com/openai/v1',
    credentials: Credentials.apiKey({ secretName: 'groq', key: 'api-key' }),
  });
  return { ...base, groq };
}

/** A rule serving `gpt-` from OpenAI at priority 0 and Anthropic at priority 1, with `fallback`. */
function failoverRule(f: GatewayFixture, fallback: Fallback | undefined = Fallback.onFailure()): AIRouteRule {
  return {
    models: [ModelMatch.prefix('gpt-')],
    backends: [
      { backend: f.openai, priority: 0 },
      { backend: f.anthropic, priority: 1, modelNameOverride: 'claude-sonnet-4' },
    ],
    fallback,
  };
}

const FULL_DUPLEX_LABEL = 'ai-gateway-constructs.io/processor-full-duplex';
const PROCESSOR_LABEL = 'ai-gateway-constructs.io/processor';

describe('AIRoute fallback', () => {
  it("writes each rule's fallback into the processor config, defaults resolved", () => {
    const f = fixture();
    new AIRoute(f.team, 'Route', {
      name: 'chat',
      gateway: f.gateway,
      requestTimeout: Duration.seconds(90),
      rules: [
        failoverRule(f),
        {
          models: [ModelMatch.prefix('llama-')],
          backends: [
            { backend: f.groq, priority: 0 },
            { backend: f.openai, priority: 2, weight: 3 },
            { backend: f.anthropic, priority: 5 },
            // Weight 0: never chosen, so no priority of its own to fall back to.
            { backend: f.groq, priority: 9, weight: 0 },
          ],
          fallback: Fallback.onFailure({
            statusCodes: [503, 408],
            connectionFailures: false,
            maxAttempts: 2,
            attemptTimeout: Duration.millis(2500),
          }),
        },
        { models: [ModelMatch.prefix('claude-')], backends: [{ backend: f.anthropic }] },
      ],
    });
    const config = configOf(synthAll(f.app));
    const rules = config.routes.find((r) => r.name === 'team/chat')!.rules;
    expect(rules[0].fallback).toEqual({
      statuses: [429, 500, 502, 503, 504],
      connectionFailures: true,
      timeouts: true,
      maxAttempts: 2,
      attemptTimeoutMs: 90_000,
    });
    expect(rules[1].fallback).toEqual({
      statuses: [503, 408],
      connectionFailures: false,
      timeouts: true,
      maxAttempts: 2,
      attemptTimeoutMs: 2500,
    });
    expect(rules[2].fallback).toBeUndefined();
    expect(rules[2]).not.toHaveProperty('fallback');
  });

  it('tries one backend per distinct weighted priority by default, at most 5', () => {
    const f = fixture();
    const priorities = (count: number) =>
      Array.from({ length: count }, (_, p) => ({ backend: [f.openai, f.anthropic, f.groq][p % 3], priority: p }));
    new AIRoute(f.team, 'Route', {
      name: 'chat',
      gateway: f.gateway,
      rules: [
        { models: [ModelMatch.prefix('a-')], backends: priorities(3), fallback: Fallback.onFailure() },
        { models: [ModelMatch.prefix('b-')], backends: priorities(7), fallback: Fallback.onFailure() },
      ],
    });
    const rules = configOf(synthAll(f.app)).routes[0].rules;
    expect(rules.map((rule) => rule.fallback?.maxAttempts)).toEqual([3, 5]);
  });

  it(
    'puts a route with a fallback rule under a second EnvoyExtensionPolicy of the processor, streaming responses ' +
      'full duplex, and leaves the other routes of the namespace under the first',
    () => {
      const f = fixture();
      new AIRoute(f.team, 'Chat', { name: 'chat', gateway: f.gateway, rules: [failoverRule(f)] });
      new AIRoute(f.team, 'Other', {
        name: 'other',
        gateway: f.gateway,
        pathPrefix: '/other/v1',
        rules: [{ models: [ModelMatch.prefix('gpt-')], backends: [{ backend: f.openai }] }],
      });
      // A fallback route with retries of its own keeps its own traffic policy, as without a fallback.
      new AIRoute(f.platform, 'Local', {
        name: 'local',
        gateway: f.gateway,
        pathPrefix: '/local/v1',
        retry: { attempts: 1 },
        rules: [failoverRule(f)],
      });
      const all = synthAll(f.app);
      const policies = findAll(all, 'EnvoyExtensionPolicy') as any[];
      expect(policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual([
        'team/gw-processor-platform-full-duplex',
        'team/gw-processor-platform',
        'platform/gw-processor-full-duplex',
      ]);
      expect(policies.map((p) => policyRoutes(all, p))).toEqual([['team/chat'], ['team/other'], ['platform/local']]);

      const [duplex, normal] = policies;
      // The same policy but for the response side and the mode override Envoy would ignore.
      expect(duplex.spec.extProc[0].processingMode).toEqual({
        request: { body: 'Buffered' },
        response: { body: 'FullDuplexStreamed', attributes: ['response.code_details'] },
      });
      expect(duplex.spec.extProc[0].failOpen).toBe(false);
      const { processingMode: duplexMode, ...duplexRest } = duplex.spec.extProc[0];
      const { processingMode: normalMode, ...normalRest } = normal.spec.extProc[0];
      expect(duplexRest).toEqual(normalRest);
      expect(normalMode.response.body).toBe('Buffered');
      expect(normalMode.allowModeOverride).toBe(true);
      expect(duplexMode).not.toHaveProperty('allowModeOverride');
      expect(duplex.spec.targetSelectors).toEqual([
        {
          group: 'gateway.networking.k8s.io',
          kind: 'HTTPRoute',
          matchLabels: { [FULL_DUPLEX_LABEL]: 'gw-processor.platform' },
        },
      ]);
      expect(duplex.metadata.labels).toEqual(normal.metadata.labels);

      // Each route carries one of the two processor labels, never both.
      const labels = Object.fromEntries(
        findAll(all, 'HTTPRoute').map((r: any) => [`${r.metadata.namespace}/${r.metadata.name}`, r.metadata.labels]),
      );
      expect(labels).toEqual({
        'team/chat': {
          [FULL_DUPLEX_LABEL]: 'gw-processor.platform',
          'ai-gateway-constructs.io/traffic-policy': 'gw-processor.platform',
        },
        'team/other': {
          [PROCESSOR_LABEL]: 'gw-processor.platform',
          'ai-gateway-constructs.io/traffic-policy': 'gw-processor.platform',
        },
        'platform/local': { [FULL_DUPLEX_LABEL]: 'gw-processor.platform' },
      });
      // The 404 filter and the grant are shared by both kinds of route.
      expect(findAll(all, 'HTTPRouteFilter').map((r) => `${r.metadata.namespace}/${r.metadata.name}`)).toEqual([
        'team/gw-processor-platform-not-found',
        'platform/gw-processor-not-found',
      ]);
      expect(
        findAll(all, 'ReferenceGrant').filter((g: any) => g.metadata.name.startsWith('gw-processor')),
      ).toHaveLength(1);
    },
  );

  it('gives a route on a Gateway it does not manage a full-duplex policy of its own processor', () => {
    const app = Testing.app();
    const chart = new Chart(app, 'team', { namespace: 'team' });
    const openai = ProviderBackend.openAI(chart, 'OpenAI', {
      name: 'openai',
      credentials: Credentials.apiKey({ secretName: 'openai', key: 'api-key' }),
    });
    const anthropic = ProviderBackend.anthropic(chart, 'Anthropic', {
      name: 'anthropic',
      credentials: Credentials.apiKey({ secretName: 'anthropic', key: 'api-key' }),
    });
    new AIRoute(chart, 'Route', {
      name: 'chat',
      gateway: GatewayReference.fromName('shared', 'infra'),
      rules: [
        {
          models: [ModelMatch.prefix('gpt-')],
          backends: [{ backend: openai }, { backend: anthropic, priority: 1 }],
          fallback: Fallback.onFailure(),
        },
      ],
    });
    const all = synthAll(app);
    const policy = findOne(all, 'EnvoyExtensionPolicy');
    expect(policy.metadata.name).toBe('chat-processor-full-duplex');
    expect(policyRoutes(all, policy)).toEqual(['team/chat']);
    expect(configOf(all).routes[0].rules[0].fallback?.maxAttempts).toBe(2);
  });

  it("keeps the policy's name a DNS label when the processor's names are long", () => {
    const app = Testing.app();
    const chart = new Chart(app, 'team', { namespace: 'team' });
    const openai = ProviderBackend.openAI(chart, 'OpenAI', {
      name: 'openai',
      credentials: Credentials.apiKey({ secretName: 'openai', key: 'api-key' }),
    });
    const name = `r${'x'.repeat(52)}`;
    new AIRoute(chart, 'Route', {
      name,
      gateway: GatewayReference.fromName('shared', 'infra'),
      rules: [
        {
          models: [ModelMatch.prefix('gpt-')],
          backends: [{ backend: openai }, { backend: openai, priority: 1 }],
          fallback: Fallback.onFailure(),
        },
      ],
    });
    const policy = findOne(synthAll(app), 'EnvoyExtensionPolicy');
    expect(policy.metadata.name.length).toBeLessThanOrEqual(63);
    expect(policy.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });

  it("drains the processor for the route timeout plus the processor's own attempts", () => {
    const f = fixture();
    new AIRoute(f.team, 'Route', {
      name: 'chat',
      gateway: f.gateway,
      requestTimeout: Duration.seconds(40),
      rules: [
        {
          models: [ModelMatch.prefix('gpt-')],
          backends: [{ backend: f.openai }, { backend: f.anthropic, priority: 1 }, { backend: f.groq, priority: 2 }],
          fallback: Fallback.onFailure({ attemptTimeout: Duration.seconds(25) }),
        },
      ],
    });
    // 40 s for Envoy's attempt, then two attempts of 25 s by the processor.
    expect(f.gateway.processor.shutdown()).toMatchObject({
      drainTimeoutMs: 90_000,
      longestRequest: { route: 'team/chat', ms: 90_000 },
    });
  });

  it('is refused by the CRD when the full-duplex policy would fail open (the check covers the new policy)', () => {
    const dir = sharedPath('crds/jsonschema');
    if (dir === undefined) return;
    const f = fixture();
    new AIRoute(f.team, 'Route', { name: 'chat', gateway: f.gateway, rules: [failoverRule(f)] });
    const manifests: any[] = f.app.charts.flatMap((chart) => Testing.synth(chart));
    expect(manifestProblems(manifests, dir)).toEqual([]);
    const duplex = manifests.find((m) => m.metadata.name === 'gw-processor-platform-full-duplex');
    duplex.spec.extProc[0].failOpen = true;
    expect(manifestProblems(manifests, dir).join('\n')).toMatch(
      /If FullDuplexStreamed body processing mode is used, FailOpen must be false/,
    );
  });

  describe('throws, naming the construct, the prop and the value', () => {
    const route = (f: GatewayFixture, rules: AIRouteRule[], props: Partial<AIRouteProps> = {}) =>
      new AIRoute(f.team, 'Route', { name: 'chat', gateway: f.gateway, rules, ...props });
    const withOptions = (options: FallbackOptions) => (f: GatewayFixture) =>
      route(f, [failoverRule(f, Fallback.onFailure(options))]);

    it('when the fallback is not a Fallback', () => {
      const f = fixture();
      expect(() => route(f, [failoverRule(f, { statuses: [503] } as unknown as Fallback)])).toThrow(
        'team/Route: invalid rules[0].fallback {"statuses":[503]}: must be created with Fallback.onFailure()',
      );
    });

    it('when the rule has no weighted backend at a later priority', () => {
      const f = fixture();
      expect(() =>
        route(f, [
          {
            models: [ModelMatch.prefix('gpt-')],
            backends: [
              { backend: f.openai },
              { backend: f.groq },
              // A later priority, but never chosen.
              { backend: f.anthropic, priority: 1, weight: 0 },
            ],
            fallback: Fallback.onFailure(),
          },
        ]),
      ).toThrow(
        'team/Route: invalid rules[0].fallback "Fallback.onFailure(...)": no later priority to fall back to: every ' +
          'backend of the rule with weight > 0 has priority 0; give the backends to fall back to a higher priority',
      );
    });

    it.each([
      [[200], 'rules[0].fallback.statusCodes[0] 200: is not an error: a 1xx, 2xx or 3xx answer goes to the client'],
      [[503, 302], 'rules[0].fallback.statusCodes[1] 302: is not an error'],
      [[600], 'rules[0].fallback.statusCodes[0] 600: must be an HTTP status code'],
      [[503.5], 'rules[0].fallback.statusCodes[0] 503.5: must be an HTTP status code'],
      [['503'], 'rules[0].fallback.statusCodes[0] "503": must be an HTTP status code'],
      [[503, 503], 'rules[0].fallback.statusCodes[1] 503: duplicates rules[0].fallback.statusCodes[0]'],
      [
        [429, 400],
        'rules[0].fallback.statusCodes[1] 400: says the request itself is wrong, which another provider would ' +
          "refuse too, or (401, 403) that this backend's credential is, which failing over would hide; of the 4xx " +
          'only 408, 409, 429 can move a request on',
      ],
      [[401], 'rules[0].fallback.statusCodes[0] 401: says the request itself is wrong'],
      [[404], 'rules[0].fallback.statusCodes[0] 404: says the request itself is wrong'],
    ])('for the status codes %j', (codes, message) => {
      const f = fixture();
      expect(() => withOptions({ statusCodes: codes as number[] })(f)).toThrow(`team/Route: invalid ${message}`);
    });

    it('for more than 32 status codes, or none with connection failures and timeouts off', () => {
      const f = fixture();
      const many = Array.from({ length: 33 }, (_, i) => 500 + i);
      expect(() => withOptions({ statusCodes: many })(f)).toThrow(
        /^team\/Route: invalid rules\[0\]\.fallback\.statusCodes \[500,501,.*: lists 33 statuses; at most 32 are allowed$/,
      );
      expect(() => withOptions({ statusCodes: [], connectionFailures: false, timeouts: false })(fixture())).toThrow(
        'team/Route: invalid rules[0].fallback.statusCodes []: with connectionFailures and timeouts off, nothing ' +
          'would ever move a request on; list a status',
      );
      // Either failure kind alone is a reason to move on.
      expect(() => withOptions({ statusCodes: [], timeouts: false })(fixture())).not.toThrow();
      expect(() => withOptions({ connectionFailures: 'yes' as unknown as boolean })(fixture())).toThrow(
        'team/Route: invalid rules[0].fallback.connectionFailures "yes": must be true or false',
      );
    });

    it.each([
      [1, 'must be an integer from 2 to 5 (the first attempt included)'],
      [6, 'must be an integer from 2 to 5 (the first attempt included)'],
      [2.5, 'must be an integer from 2 to 5 (the first attempt included)'],
      [
        3,
        "the rule's backends with weight > 0 have 2 distinct priorities (0, 1), and each attempt goes to a later " +
          'priority than the one before, so at most 2 attempts can be made',
      ],
    ])('for maxAttempts %s', (maxAttempts, why) => {
      const f = fixture();
      expect(() => withOptions({ maxAttempts })(f)).toThrow(
        `team/Route: invalid rules[0].fallback.maxAttempts ${maxAttempts}: ${why}`,
      );
    });

    it('for an attempt timeout that is not a positive whole number of milliseconds, or over a day', () => {
      const timeoutOf = (attemptTimeout: Duration) => withOptions({ attemptTimeout })(fixture());
      expect(() => timeoutOf(Duration.millis(0))).toThrow(
        'team/Route: invalid rules[0].fallback.attemptTimeout "0ms": must be a Duration of a positive whole number ' +
          'of milliseconds',
      );
      expect(() => timeoutOf(Duration.millis(1.5))).toThrow('invalid rules[0].fallback.attemptTimeout "1.5ms"');
      expect(() => timeoutOf(Duration.hours(25))).toThrow(
        'team/Route: invalid rules[0].fallback.attemptTimeout "90000s": is longer than 24 hours, the longest attempt ' +
          'the processor allows',
      );
      // Longer than the route's request timeout is fine: that bounds only Envoy's attempt.
      expect(() => timeoutOf(Duration.minutes(5))).not.toThrow();
      const f = fixture();
      expect(() => route(f, [failoverRule(f)], { requestTimeout: Duration.hours(25) })).toThrow(
        "team/Route: invalid rules[0].fallback.attemptTimeout (missing): defaults to the route's requestTimeout " +
          '(90000s), longer than 24 hours, the longest attempt the processor allows; set a shorter attemptTimeout',
      );
    });

    it('leaves the gateway untouched', () => {
      const f = fixture();
      expect(() => withOptions({ maxAttempts: 9 })(f)).toThrow(/maxAttempts/);
      const all = synthAll(f.app);
      expect(findAll(all, 'EnvoyExtensionPolicy')).toEqual([]);
      expect(configOf(all).routes).toEqual([]);
    });
  });
});
