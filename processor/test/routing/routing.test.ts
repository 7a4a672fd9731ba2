import { CircuitBreakers } from '../../src/routing/breaker';
import { availableModels, exactModels, findRule, MAX_LISTED_MODELS, Router } from '../../src/routing/router';
import { selectBackend } from '../../src/routing/select';
import { route, testConfig } from '../support/processor-harness';

describe('Router', () => {
  const config = testConfig({
    routes: [
      route(['a'], [{ backend: 'openai', weight: 1, priority: 0 }], {
        name: 'r/short',
        endpoints: [{ api: 'OpenAI', pathPrefix: '/v1' }],
      }),
      route(['b'], [{ backend: 'openai', weight: 1, priority: 0 }], {
        name: 'r/long',
        endpoints: [{ api: 'OpenAI', pathPrefix: '/v1/team' }],
      }),
      {
        ...route(['x'], [{ backend: 'openai', weight: 1, priority: 0 }], {
          name: 'r/models',
          endpoints: [{ api: 'Anthropic', pathPrefix: '/anthropic/v1' }],
        }),
        rules: [
          {
            models: [
              { type: 'Exact', value: 'claude-3' },
              { type: 'Prefix', value: 'claude-4' },
              { type: 'RegularExpression', value: 'opus-[0-9]+' },
            ],
            backends: [{ backend: 'openai', weight: 1, priority: 0 }],
          },
        ],
      },
      route(['c'], [{ backend: 'openai', weight: 1, priority: 0 }], {
        name: 'r/host',
        hostnames: ['*.corp.example', 'exact.example'],
      }),
    ],
  });
  const router = new Router(config);

  it('prefers the longest matching prefix and splits path, query and operation', () => {
    expect(router.match('/v1/team/chat/completions?a=1', 'h', 'POST')).toMatchObject({
      subpath: '/chat/completions',
      query: '?a=1',
      operation: 'chat',
    });
    expect(router.match('/v1/team/chat/completions', 'h', 'POST')!.rules.map((r) => r.route.name)).toEqual(['r/long']);
    expect(router.match('/v1/embeddings', 'h', 'POST')).toMatchObject({ operation: 'embeddings', api: 'OpenAI' });
    expect(router.match('/v1/responses', 'h', 'POST')).toMatchObject({ operation: 'responses' });
    expect(router.match('/v1/images/generations', 'h', 'POST')).toMatchObject({ operation: undefined });
    // Not served without a route opting in (see endpoint-allowlist.test.ts).
    expect(router.match('/v1/moderations', 'h', 'POST')).toMatchObject({ operation: undefined });
    expect(router.match('/v1/models', 'h', 'GET')).toMatchObject({ operation: 'models' });
    expect(router.match('/v1', 'h', 'POST')).toMatchObject({ operation: undefined });
    expect(router.match('/v10/chat/completions', 'h', 'POST')).toBeUndefined();
    expect(router.match('/anthropic/v1/messages', 'h', 'POST')).toMatchObject({
      api: 'Anthropic',
      operation: 'messages',
    });
    expect(router.match('/anthropic/v1/messages/count_tokens', 'h', 'POST')).toMatchObject({
      operation: 'count_tokens',
    });
    expect(router.match('/anthropic/v1/other', 'h', 'POST')).toMatchObject({ operation: undefined });
  });

  it('matches hostnames exactly or by wildcard, ignoring the port and case', () => {
    const names = (authority: string) =>
      router.match('/v1/chat/completions', authority, 'POST')!.rules.map((r) => r.route.name);
    expect(names('api.corp.example:443')).toEqual(['r/short', 'r/host']);
    expect(names('EXACT.example')).toEqual(['r/short', 'r/host']);
    expect(names('corp.example')).toEqual(['r/short']);
    expect(names('other.example')).toEqual(['r/short']);
  });

  it('matches models exactly, by prefix and by anchored regular expression', () => {
    const rules = router.match('/anthropic/v1/messages', 'h', 'POST')!.rules;
    expect(findRule(rules, 'claude-3')).toBeDefined();
    expect(findRule(rules, 'claude-3x')).toBeUndefined();
    expect(findRule(rules, 'claude-4-sonnet')).toBeDefined();
    expect(findRule(rules, 'opus-12')).toBeDefined();
    expect(findRule(rules, 'opus-12-beta')).toBeUndefined();
    expect(exactModels(router.match('/anthropic/v1/messages', 'h', 'POST')!.routes)).toEqual(['claude-3']);
  });

  it('lists at most MAX_LISTED_MODELS names in the unknown-model error', () => {
    const names = (count: number) => Array.from({ length: count }, (_, i) => `m${i}`);
    const routesOf = (count: number) =>
      new Router(testConfig({ routes: [route(names(count), [{ backend: 'openai', weight: 1, priority: 0 }])] })).match(
        '/v1/chat/completions',
        'h',
        'POST',
      )!.routes;
    expect(availableModels(routesOf(MAX_LISTED_MODELS))).toBe(names(MAX_LISTED_MODELS).join(', '));
    expect(availableModels(routesOf(MAX_LISTED_MODELS + 7))).toBe(
      `${names(MAX_LISTED_MODELS).join(', ')} and 7 more (the /models endpoint lists them all)`,
    );
  });

  it(
    "names the configured match that accepted a model (the metric label), never the client's " +
      'name for a prefix or regex',
    () => {
      const rules = router.match('/anthropic/v1/messages', 'h', 'POST')!.rules;
      expect(findRule(rules, 'claude-3')?.modelLabel).toBe('claude-3');
      expect(findRule(rules, 'claude-4-sonnet-20990101')?.modelLabel).toBe('claude-4*');
      expect(findRule(rules, 'opus-12')?.modelLabel).toBe('opus-[0-9]+');
      expect(findRule(rules, 'opus-12')?.rule.route.name).toBe('r/models');
    },
  );
});

describe('model regular expressions (RE2)', () => {
  const regexRouter = (...patterns: string[]) => {
    const config = testConfig({
      routes: [route(['unused'], [{ backend: 'openai', weight: 1, priority: 0 }], { name: 'r/re2' })],
    });
    config.routes[0].rules[0].models = patterns.map((value) => ({ type: 'RegularExpression', value }));
    return new Router(config).match('/v1/chat/completions', 'h', 'POST')!.rules;
  };

  it('answers a backtracking-bomb pattern in linear time: claude-(\\w+-?)+ against a 40-byte name', () => {
    const rules = regexRouter('claude-(\\w+-?)+');
    const name = `claude-${'a'.repeat(32)}!`; // a JavaScript RegExp needs ~2^32 steps to reject this
    expect(name).toHaveLength(40);
    expect(findRule(rules, 'claude-3-5-sonnet')).toBeDefined();
    expect(findRule(rules, name)).toBeUndefined();
    const start = performance.now();
    for (let i = 0; i < 100; i++) findRule(rules, name);
    // Well under 1 ms per match; the bound is generous against CI noise.
    expect(performance.now() - start).toBeLessThan(100);
  });

  it('matches the whole model name with RE2 semantics', () => {
    const rules = regexRouter('gpt-4o|o1', '(?i)CLAUDE-.*', 'emoji-.');
    expect(findRule(rules, 'gpt-4o')).toBeDefined();
    expect(findRule(rules, 'o1')).toBeDefined();
    expect(findRule(rules, 'gpt-4o-mini')).toBeUndefined(); // the alternation is anchored as a whole
    expect(findRule(rules, 'xo1')).toBeUndefined();
    expect(findRule(rules, 'claude-opus')).toBeDefined(); // (?i) is RE2 syntax
    expect(findRule(rules, 'emoji-\u{1F600}')).toBeDefined(); // `.` is one code point, not one UTF-16 unit
    expect(findRule(rules, 'emoji-a\nb')).toBeUndefined();
  });
});

describe('circuit breaker and backend selection', () => {
  const settings = { failureThreshold: 2, openDurationMs: 1000 };

  it('opens after consecutive failures, lets one probe through after the open duration, closes on success', () => {
    let now = 0;
    const breakers = new CircuitBreakers(() => now);
    breakers.record('a', false, settings);
    expect(breakers.available('a', settings)).toBe(true);
    breakers.record('a', false, settings);
    expect(breakers.available('a', settings)).toBe(false);
    now = 999;
    expect(breakers.available('a', settings)).toBe(false);
    now = 1000;
    expect(breakers.available('a', settings)).toBe(true);
    breakers.acquire('a', settings);
    expect(breakers.available('a', settings)).toBe(false); // only one probe at a time
    breakers.record('a', true, settings);
    expect(breakers.isOpen('a', settings)).toBe(false);
    expect(breakers.available('a', settings)).toBe(true);
  });

  it('a failed probe reopens for another open duration; an aborted probe frees the slot', () => {
    let now = 0;
    const breakers = new CircuitBreakers(() => now);
    breakers.record('a', false, settings);
    breakers.record('a', false, settings);
    now = 1000;
    breakers.acquire('a', settings);
    breakers.release('a');
    expect(breakers.available('a', settings)).toBe(true);
    breakers.acquire('a', settings);
    breakers.record('a', false, settings);
    expect(breakers.available('a', settings)).toBe(false);
    now = 2000;
    expect(breakers.available('a', settings)).toBe(true);
  });

  it('a success resets the consecutive-failure count', () => {
    const breakers = new CircuitBreakers(() => 0);
    breakers.record('a', false, settings);
    breakers.record('a', true, settings);
    breakers.record('a', false, settings);
    expect(breakers.available('a', settings)).toBe(true);
  });

  const refs = [
    { backend: 'p0-a', weight: 3, priority: 0 },
    { backend: 'p0-b', weight: 1, priority: 0 },
    { backend: 'p1', weight: 1, priority: 1 },
    { backend: 'zero', weight: 0, priority: 0 },
  ];

  it('splits by weight within the lowest priority', () => {
    const breakers = new CircuitBreakers(() => 0);
    const pick = (random: number) => selectBackend(refs, breakers, settings, () => random).backend;
    expect(pick(0)).toBe('p0-a');
    expect(pick(0.74)).toBe('p0-a');
    expect(pick(0.75)).toBe('p0-b');
    expect(pick(0.999)).toBe('p0-b');
  });

  it('fails over to the next priority while the lower one is open, and back when it recovers', () => {
    const now = 0;
    const breakers = new CircuitBreakers(() => now);
    for (const name of ['p0-a', 'p0-b']) for (let i = 0; i < 2; i++) breakers.record(name, false, settings);
    expect(selectBackend(refs, breakers, settings, () => 0).backend).toBe('p1');
    breakers.record('p0-a', true, settings);
    expect(selectBackend(refs, breakers, settings, () => 0).backend).toBe('p0-a');
  });

  it('uses the lowest priority when every backend is open', () => {
    const breakers = new CircuitBreakers(() => 0);
    for (const ref of refs) for (let i = 0; i < 2; i++) breakers.record(ref.backend, false, settings);
    expect(selectBackend(refs, breakers, settings, () => 0).backend).toBe('p0-a');
  });
});
