import {
  CONFIG_VERSION,
  parseProcessorConfig,
  ProcessorConfig,
  ProcessorConfigError,
} from '@ai-gateway-constructs/processor-config';

function validConfig(): ProcessorConfig {
  return {
    version: CONFIG_VERSION,
    maxRequestBodyBytes: 52428800,
    backends: [
      {
        name: 'openai',
        schema: { name: 'OpenAI', pathPrefix: '/v1' },
        endpoint: { hostname: 'api.openai.com', port: 443, tls: true },
        auth: { type: 'APIKey', secret: { secretName: 'openai', key: 'apiKey' } },
      },
    ],
    routes: [
      {
        name: 'team-a/chat',
        endpoints: [{ api: 'OpenAI', pathPrefix: '/v1' }],
        hostnames: [],
        rules: [
          { models: [{ type: 'Exact', value: 'gpt-4o' }], backends: [{ backend: 'openai', weight: 1, priority: 0 }] },
        ],
        requiredHeaders: ['x-tenant-id'],
      },
    ],
    costs: [{ metadataKey: 'weighted', type: 'CEL', expression: 'input_tokens + 4 * output_tokens' }],
    circuitBreaker: { failureThreshold: 5, openDurationMs: 30000 },
  };
}

function problemsOf(document: unknown): readonly string[] {
  try {
    parseProcessorConfig(document);
  } catch (error) {
    if (error instanceof ProcessorConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected the config to be rejected');
}

describe('parseProcessorConfig', () => {
  it('accepts a complete config and returns it unchanged', () => {
    const config = validConfig();
    expect(parseProcessorConfig(JSON.parse(JSON.stringify(config)))).toEqual(config);
  });

  it('rejects unknown fields, naming their path', () => {
    const config = { ...validConfig(), extra: true };
    expect(problemsOf(config).join('\n')).toMatch(/extra/);
  });

  it('rejects a wrong version', () => {
    expect(problemsOf({ ...validConfig(), version: 'v0' })[0]).toMatch(/^version:/);
  });

  it('rejects references to unknown backends', () => {
    const config = validConfig();
    config.routes[0].rules[0].backends[0].backend = 'nope';
    expect(problemsOf(config)).toContain('routes.0.rules.0.backends.0.backend: unknown backend "nope"');
  });

  it('rejects duplicate backend names', () => {
    const config = validConfig();
    config.backends.push({ ...config.backends[0] });
    expect(problemsOf(config)).toContain('backends.1.name: duplicate backend name "openai"');
  });

  it('rejects invalid regular expressions, naming the route, the rule and the pattern', () => {
    const config = validConfig();
    config.routes[0].rules[0].models[0] = { type: 'RegularExpression', value: 'gpt-(' };
    expect(problemsOf(config)).toEqual([
      'routes.0.rules.0.models.0.value: route "team-a/chat" rule 0: regular expression "gpt-(" is ' +
        'not valid RE2 (missing closing ): `gpt-(`)',
    ]);
  });

  it.each([
    ['a backreference', '(gpt)-\\1'],
    ['a lookahead', '(?=gpt)gpt-.*'],
    ['a negative lookahead', '(?!o1)gpt-.*'],
    ['a lookbehind', '.*(?<=-mini)'],
    ['a repeat count over 1000', 'a{1001}'],
  ])('rejects patterns RE2 cannot run at load: %s', (_what, pattern) => {
    const config = validConfig();
    config.routes[0].rules[0].models.push({ type: 'RegularExpression', value: pattern });
    const problems = problemsOf(config);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^routes\.0\.rules\.0\.models\.1\.value: route "team-a\/chat" rule 0: regular expression .* is not valid RE2 \(/,
    );
    expect(problems[0]).toContain(JSON.stringify(pattern));
  });

  it('accepts RE2 syntax JavaScript lacks', () => {
    const config = validConfig();
    config.routes[0].rules[0].models = ['(?i)gpt-4o', '\\pL+-[[:digit:]]+', '(?P<family>gpt)-.*', '\\Qgpt-4.1\\E'].map(
      (value) => ({
        type: 'RegularExpression' as const,
        value,
      }),
    );
    expect(() => parseProcessorConfig(config)).not.toThrow();
  });

  it('rejects rules whose weights are all 0', () => {
    const config = validConfig();
    config.routes[0].rules[0].backends[0].weight = 0;
    expect(problemsOf(config)).toContain('routes.0.rules.0.backends: all weights are 0');
  });

  it('requires an expression exactly for CEL costs', () => {
    const config = validConfig();
    config.costs = [
      { metadataKey: 'a', type: 'CEL' },
      { metadataKey: 'b', type: 'TotalToken', expression: '1' },
    ];
    expect(problemsOf(config)).toEqual([
      'costs.0.expression: is required when type is "CEL"',
      'costs.1.expression: is only allowed when type is "CEL", not "TotalToken"',
    ]);
  });

  it('rejects duplicate cost keys', () => {
    const config = validConfig();
    config.costs = [
      { metadataKey: 'a', type: 'TotalToken' },
      { metadataKey: 'a', type: 'InputToken' },
    ];
    expect(problemsOf(config)).toContain('costs.1.metadataKey: duplicate cost key "a"');
  });

  it('rejects body mutation values that are not JSON text', () => {
    const config = validConfig();
    config.backends[0].bodyMutation = { set: [{ path: 'temperature', value: 'warm' }], remove: [] };
    expect(problemsOf(config).join('\n')).toMatch(/backends\.0\.bodyMutation\.set\.0\.value: must be JSON text/);
  });

  it('rejects host names that are not lower-case (routing compares them as they are)', () => {
    const config = validConfig();
    config.routes[0].hostnames = ['AI.example.com'];
    expect(problemsOf(config).join('\n')).toMatch(/routes\.0\.hostnames\.0: must be a lower-case host name/);
    config.routes[0].hostnames = ['*.example.com', 'ai.example.com'];
    expect(() => parseProcessorConfig(config)).not.toThrow();
  });

  it('rejects path prefixes with a trailing slash', () => {
    const config = validConfig();
    config.routes[0].endpoints[0].pathPrefix = '/v1/';
    expect(problemsOf(config).join('\n')).toMatch(/routes\.0\.endpoints\.0\.pathPrefix: must not end with "\/"/);
  });

  it('accepts optional cache-write prices (pico-dollars per token) and checks them like the others', () => {
    const priced = (price: Record<string, unknown>): ProcessorConfig => ({
      ...validConfig(),
      prices: [{ model: 'claude-x', input: 3_000_000, output: 15_000_000, ...price }],
    });
    const withWrites = priced({ cacheWrite: 3_750_000, cacheWrite1h: 6_000_000 });
    expect(parseProcessorConfig(JSON.parse(JSON.stringify(withWrites)))).toEqual(withWrites);
    expect(parseProcessorConfig(priced({})).prices?.[0]).toEqual({
      model: 'claude-x',
      input: 3_000_000,
      output: 15_000_000,
    });
    expect(problemsOf(priced({ cacheWrite: -1 })).join('\n')).toMatch(/prices\.0\.cacheWrite:/);
    expect(problemsOf(priced({ cacheWrite1h: 1.5 })).join('\n')).toMatch(/prices\.0\.cacheWrite1h:/);
    expect(problemsOf(priced({ cacheWrite5m: 1 })).join('\n')).toMatch(/cacheWrite5m/);
  });
});

describe('parseProcessorConfig: fallback', () => {
  const FALLBACK = {
    statuses: [429, 503],
    connectionFailures: true,
    timeouts: true,
    maxAttempts: 2,
    attemptTimeoutMs: 60_000,
  };

  function withFallback(priorities: readonly number[], weights?: readonly number[]): ProcessorConfig {
    const config = validConfig();
    config.backends.push({ ...config.backends[0], name: 'openai-2' });
    config.routes[0].rules[0] = {
      models: [{ type: 'Exact', value: 'gpt-4o' }],
      backends: priorities.map((priority, i) => ({
        backend: i === 0 ? 'openai' : 'openai-2',
        weight: weights?.[i] ?? 1,
        priority,
      })),
      fallback: FALLBACK,
    };
    return config;
  }

  it('accepts a rule whose backends span two priorities', () => {
    const config = withFallback([0, 1]);
    expect(parseProcessorConfig(JSON.parse(JSON.stringify(config)))).toEqual(config);
  });

  it('refuses a fallback without a later priority to fall back to', () => {
    expect(problemsOf(withFallback([0, 0])).join('\n')).toMatch(
      /rule 0: fallback needs a backend with weight > 0 at a higher priority/,
    );
    // The later priority carries no traffic at all.
    expect(problemsOf(withFallback([0, 1], [1, 0])).join('\n')).toMatch(/fallback needs a backend/);
  });

  it('bounds the attempts and statuses', () => {
    const config = withFallback([0, 1]);
    config.routes[0].rules[0].fallback = { ...FALLBACK, maxAttempts: 6, statuses: [200] };
    const problems = problemsOf(config).join('\n');
    expect(problems).toMatch(/maxAttempts/);
    expect(problems).toMatch(/statuses/);
  });
});
