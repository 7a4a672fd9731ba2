import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readConfigFile } from '../../src/config/load';
import {
  isPassthroughSubpath,
  parseProcessorConfig,
  passthroughPathProblem,
  ProcessorConfigError,
  type ProcessorConfig,
} from '@ai-gateway-constructs/processor-config';
import { route, testConfig } from '../support/processor-harness';

function configWith(passthroughEndpoints: unknown, overrides: Record<string, unknown> = {}): ProcessorConfig {
  const config = testConfig({
    routes: [
      route(['gpt-image-1'], [{ backend: 'openai', weight: 1, priority: 0 }], { name: 'team/images', ...overrides }),
    ],
  });
  (config.routes[0] as Record<string, unknown>).passthroughEndpoints = passthroughEndpoints;
  return config;
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

describe('passthroughEndpoints in the processor config', () => {
  it('accepts exact paths and prefixes ending in "/" with their methods, unchanged', () => {
    const entries = [
      { path: '/moderations', methods: ['POST'] },
      { path: '/vector_stores/', methods: ['POST', 'PATCH'] },
      { path: '/audio/speech', methods: ['POST', 'PUT'] },
      { path: '/v2/score:batch', methods: ['POST'] },
    ];
    const config = configWith(entries);
    expect(parseProcessorConfig(JSON.parse(JSON.stringify(config))).routes[0].passthroughEndpoints).toEqual(entries);
  });

  it('is optional: a config without it is unchanged', () => {
    const config = testConfig();
    expect(parseProcessorConfig(JSON.parse(JSON.stringify(config))).routes[0]).not.toHaveProperty(
      'passthroughEndpoints',
    );
  });

  it.each([
    ['moderations', 'must start with "/"'],
    ['/v1/..;/admin', 'must not contain ";"'],
    ['/files;x', 'must not contain ";"'],
    ['/%2e%2e/admin', 'must not contain percent-encoding'],
    ['/files%2Fadmin', 'must not contain percent-encoding'],
    ['/files/../admin', 'must not contain "." or ".." segments'],
    ['/files/./a', 'must not contain "." or ".." segments'],
    ['/files/..', 'must not contain "." or ".." segments'],
    ['/../', 'must not contain "." or ".." segments'],
    ['/files\\admin', 'must not contain a backslash'],
    ['/files//a', 'must not contain empty segments'],
    ['//', 'must not contain empty segments'],
    ['/files/*', 'must not contain "*": write a prefix as a path ending in "/", e.g. "/files/"'],
    ['/files?purpose=x', 'must not contain a query or fragment'],
    ['/files#x', 'must not contain a query or fragment'],
    ['/files/a b', 'may only contain letters, digits'],
    ['/files/ä', 'may only contain letters, digits'],
    ['/chat/completions', 'is already served on every route (POST /chat/completions)'],
    ['/models', 'is already served on every route (GET /models)'],
    ['/responses', 'is already served on every route (POST /responses)'],
    [`/${'a'.repeat(600)}`, 'must be at most 512 characters'],
  ])('rejects the path %j, saying why', (bad, reason) => {
    const problems = problemsOf(configWith([{ path: bad, methods: ['POST'] }]));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('routes.0.passthroughEndpoints.0.path:');
    expect(problems[0]).toContain(`${JSON.stringify(bad)} ${reason}`);
  });

  it.each([
    [['GET'], 'routes.0.passthroughEndpoints.0.methods.0'],
    [['DELETE'], 'routes.0.passthroughEndpoints.0.methods.0'],
    [['post'], 'routes.0.passthroughEndpoints.0.methods.0'],
    [[], 'routes.0.passthroughEndpoints.0.methods'],
  ])('rejects the methods %j (only POST, PUT, PATCH: the processor routes by the body)', (methods, where) => {
    const problems = problemsOf(configWith([{ path: '/moderations', methods }]));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${where.replace(/\./g, '\\.')}: `));
    if (methods.length === 0)
      expect(problems[0]).toBe('routes.0.passthroughEndpoints.0.methods: must list at least one method');
    else {
      expect(problems[0]).toContain(
        "must be one of POST, PUT, PATCH: the processor picks the backend by the JSON body's " +
          '"model", so only methods with a body can be routed',
      );
    }
  });

  it('rejects a method listed twice, a path listed twice, unknown keys and a missing method list', () => {
    expect(problemsOf(configWith([{ path: '/moderations', methods: ['POST', 'POST'] }]))).toEqual([
      'routes.0.passthroughEndpoints.0.methods: lists "POST" twice',
    ]);
    expect(
      problemsOf(
        configWith([
          { path: '/moderations', methods: ['POST'] },
          { path: '/files/', methods: ['POST'] },
          { path: '/moderations', methods: ['PUT'] },
        ]),
      ),
    ).toEqual([
      'routes.0.passthroughEndpoints.2.path: route "team/images": "/moderations" ' +
        'duplicates passthroughEndpoints[0]; list its methods once',
    ]);
    expect(problemsOf(configWith([{ path: '/moderations', methods: ['POST'], method: 'POST' }]))[0]).toMatch(
      /^routes\.0\.passthroughEndpoints\.0: .*method/,
    );
    expect(problemsOf(configWith([{ path: '/moderations' }]))[0]).toMatch(
      /^routes\.0\.passthroughEndpoints\.0\.methods: /,
    );
  });

  it('rejects passthrough endpoints on a route without an OpenAI endpoint', () => {
    const config = configWith([{ path: '/moderations', methods: ['POST'] }], {
      endpoints: [{ api: 'Anthropic', pathPrefix: '/anthropic/v1' }],
    });
    expect(problemsOf(config)).toEqual([
      'routes.0.passthroughEndpoints: route "team/images" has passthroughEndpoints but no OpenAI endpoint',
    ]);
  });

  it("refuses a bad entry when the processor loads the file, naming the file's path to it", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'passthrough-'));
    try {
      const file = path.join(dir, 'config.json');
      fs.writeFileSync(file, JSON.stringify(configWith([{ path: '/v1/..;/admin', methods: ['POST'] }])));
      expect(() => readConfigFile(file)).toThrow(ProcessorConfigError);
      expect(() => readConfigFile(file)).toThrow(
        'routes.0.passthroughEndpoints.0.path: "/v1/..;/admin" must not contain ";"',
      );
      fs.writeFileSync(file, JSON.stringify(configWith([{ path: '/moderations', methods: ['POST'] }])));
      expect(readConfigFile(file).routes[0].passthroughEndpoints).toEqual([
        { path: '/moderations', methods: ['POST'] },
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('passthroughPathProblem and isPassthroughSubpath', () => {
  it('accepts "/" (every subpath) and plain segments', () => {
    for (const ok of ['/', '/files/', '/moderations', "/a-b_c.d~e!f$g&h'i(j)k+l,m=n:o@p/"])
      expect(passthroughPathProblem(ok)).toBeUndefined();
    expect(passthroughPathProblem(42)).toBe('must be a string');
  });

  it('lets through only plain request subpaths: no dot segments, encodings, ";", backslashes or empty segments', () => {
    for (const ok of ['/moderations', '/files/file-abc', '/a..b/.c/d.', '/x:y@z'])
      expect(isPassthroughSubpath(ok)).toBe(true);
    for (const bad of [
      '',
      '/',
      '/..;/admin',
      '/../admin',
      '/a/..',
      '/a/.',
      '/./a',
      '/%2e%2e/',
      '/a%2fb',
      '/a\\b',
      '/a;b',
      '//a',
      '/a/',
      '/a b',
      '/a?b',
      '/a*',
    ]) {
      expect(isPassthroughSubpath(bad)).toBe(false);
    }
  });
});
