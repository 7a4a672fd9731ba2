/**
 * Issue 11, credential hygiene: a missing or empty credential is found when a config snapshot is compiled, listed
 * in `RuntimeConfig.credentialProblems`, logged once per snapshot (not once per request), reported by `/readyz`,
 * and cleared by the reload that brings a fixed Secret.
 */
import * as fs from 'node:fs';
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Registry } from 'prom-client';
import { createAdminServer, readiness, type AdminState } from '../../src/admin';
import { CredentialProblemError, isReportedCredentialProblem, type AuthRequest } from '../../src/auth';
import { SecretReader } from '../../src/auth/secrets';
import { compileRuntime, type CredentialStatus } from '../../src/config/runtime';
import type { BackendConfig, ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import type { Logger } from '../../src/log';
import { openAIBackend, route, startTestProcessor, testConfig } from '../support/processor-harness';

interface Line {
  level: 'error' | 'warn' | 'info' | 'debug';
  fields: Record<string, unknown>;
  message: string;
}

function captureLogger(): Logger & { lines: Line[] } {
  const lines: Line[] = [];
  const at =
    (level: Line['level']) =>
    (fields: object, message: string): void => {
      lines.push({ level, fields: fields as Record<string, unknown>, message });
    };
  return { lines, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}

const request: AuthRequest = {
  method: 'POST',
  hostname: 'h',
  path: '/v1/chat/completions',
  headers: {},
  body: Buffer.alloc(0),
};
const SECRET_VALUE = 'aws-secret-value-never-shown';

const apiKey = (name: string, secretName: string, key = 'apiKey'): BackendConfig =>
  openAIBackend(name, { auth: { type: 'APIKey', secret: { secretName, key } } });

/**
 * openai: empty key; anthropic: missing key; good: fine; bedrock: a credentials file without the profile; vertex:
 * workload identity (nothing to check).
 */
function mixedConfig(): ProcessorConfig {
  return testConfig({
    backends: [
      apiKey('openai', 'openai'),
      openAIBackend('anthropic', {
        schema: { name: 'Anthropic', version: '2023-06-01' },
        auth: { type: 'APIKey', secret: { secretName: 'anthropic', key: 'apiKey' } },
      }),
      apiKey('good', 'good'),
      openAIBackend('bedrock', {
        schema: { name: 'AWSBedrock' },
        auth: {
          type: 'AWSSigV4',
          region: 'us-east-1',
          perRequestCredentials: false,
          credentials: { source: 'Secret', secret: { secretName: 'aws', key: 'credentials' }, profile: 'prod' },
        },
      }),
      openAIBackend('vertex', {
        schema: { name: 'GCPVertexAI', projectId: 'p', region: 'us-central1' },
        auth: { type: 'GCP', credentials: { source: 'WorkloadIdentity' } },
      }),
    ],
    routes: [
      route(
        ['gpt-4o'],
        [
          { backend: 'openai', weight: 1, priority: 0 },
          { backend: 'good', weight: 1, priority: 1 },
        ],
      ),
      route(['claude'], [{ backend: 'anthropic', weight: 1, priority: 0 }], { name: 'default/claude' }),
    ],
  });
}

const MIXED_PROBLEMS = [
  'backend "openai": credential openai/apiKey is empty',
  'backend "anthropic": credential anthropic/apiKey is missing',
  'backend "bedrock": credential aws/credentials: AWS credentials file has no profile "prod"',
];

describe('credential problems of a config snapshot', () => {
  let dir: string;
  const write = (secretName: string, key: string, content: string): void => {
    fs.mkdirSync(path.join(dir, secretName), { recursive: true });
    fs.writeFileSync(path.join(dir, secretName, key), content);
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-credential-problems-'));
    write('openai', 'apiKey', '  \n');
    write('good', 'apiKey', 'sk-good\n');
    write('aws', 'credentials', `[default]\naws_access_key_id=AKIAEXAMPLE\naws_secret_access_key=${SECRET_VALUE}\n`);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('lists one problem per affected backend, names only, in config order', () => {
    const runtime = compileRuntime(mixedConfig(), new SecretReader(dir), { nowSeconds: 0 });
    expect(runtime.credentialProblems).toEqual(MIXED_PROBLEMS);
    expect(runtime.credentialProblems.join('\n')).not.toContain(SECRET_VALUE);
    // `good` still serves gpt-4o (its second priority): not every routed backend is broken.
    expect(runtime.noUsableBackend).toBe(false);
  });

  it(
    'logs each problem once when the snapshot is compiled; requests then fail on the same ' +
      'reported error, without new lines',
    async () => {
      const logger = captureLogger();
      const runtime = compileRuntime(mixedConfig(), new SecretReader(dir), { nowSeconds: 0, logger });
      expect(logger.lines).toEqual(
        MIXED_PROBLEMS.map((problem, i) => ({
          level: 'error',
          fields: { backend: ['openai', 'anthropic', 'bedrock'][i], err: problem },
          message:
            'backend credential unusable: its requests are answered 503 until the Secret is fixed ' +
            '(logged once per config load)',
        })),
      );

      const openai = runtime.backends.get('openai')!.auth!;
      const errors = new Set<unknown>();
      for (let i = 0; i < 1000; i++) {
        // The session's fast path calls `fixed`, the others `apply`: both fail at once, with the one known error.
        expect(() => openai.fixed!()).toThrow(CredentialProblemError);
        try {
          await openai.apply(request);
        } catch (error) {
          errors.add(error);
        }
      }
      expect(errors.size).toBe(1);
      const [error] = [...errors];
      expect(isReportedCredentialProblem(error)).toBe(true);
      expect((error as Error).message).toBe('backend "openai": credential openai/apiKey is empty');
      expect(logger.lines).toHaveLength(MIXED_PROBLEMS.length);

      // A backend whose credential is fine, or cannot be checked without a fetch, is untouched.
      expect(runtime.backends.get('good')!.auth!.fixed!()).toEqual({
        setHeaders: { authorization: 'Bearer sk-good' },
        removeHeaders: [],
        repeatable: true,
      });
      expect(runtime.backends.get('vertex')!.auth!.fixed).toBeUndefined();
    },
  );

  it(
    'without a logger the problems are still listed, and per-request errors stay unreported ' +
      '(the caller logs them)',
    async () => {
      const runtime = compileRuntime(mixedConfig(), new SecretReader(dir), { nowSeconds: 0 });
      expect(runtime.credentialProblems).toHaveLength(3);
      await expect(
        Promise.resolve().then(() => runtime.backends.get('anthropic')!.auth!.apply(request)),
      ).rejects.toThrow('backend "anthropic": credential anthropic/apiKey is missing');
      let thrown: unknown;
      try {
        runtime.backends.get('anthropic')!.auth!.fixed!();
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(CredentialProblemError);
      expect(isReportedCredentialProblem(thrown)).toBe(false);
      expect(isReportedCredentialProblem(new Error('credential x/y is empty'))).toBe(false);
    },
  );

  it('a config rejected for other reasons logs nothing about credentials', () => {
    const logger = captureLogger();
    const config = mixedConfig();
    config.backends[2] = {
      ...config.backends[2],
      headerMutation: { set: [{ name: 'host', value: 'x' }], remove: [] },
    };
    expect(() => compileRuntime(config, new SecretReader(dir), { nowSeconds: 0, logger })).toThrow(/headerMutation/);
    expect(logger.lines).toEqual([]);
  });

  it('noUsableBackend only when every routed backend is broken (an unrouted broken backend does not count)', () => {
    const allBroken = testConfig({
      backends: [apiKey('openai', 'openai'), apiKey('spare', 'anthropic'), apiKey('unrouted-good', 'good')],
      routes: [
        route(
          ['gpt-4o'],
          [
            { backend: 'openai', weight: 1, priority: 0 },
            { backend: 'spare', weight: 1, priority: 1 },
          ],
        ),
      ],
    });
    const broken = compileRuntime(allBroken, new SecretReader(dir), { nowSeconds: 0 });
    expect(broken.credentialProblems).toEqual([
      'backend "openai": credential openai/apiKey is empty',
      'backend "spare": credential anthropic/apiKey is missing',
    ]);
    expect(broken.noUsableBackend).toBe(true);

    const healthy = compileRuntime(testConfig({ backends: [apiKey('openai', 'good')] }), new SecretReader(dir), {
      nowSeconds: 0,
    });
    expect(healthy.credentialProblems).toEqual([]);
    expect(healthy.noUsableBackend).toBe(false);
    const noAuth = compileRuntime(testConfig(), new SecretReader(undefined), { nowSeconds: 0 });
    expect(noAuth.credentialProblems).toEqual([]);
  });

  it('a fixed Secret clears the problem with the next snapshot (a new reader per reload)', () => {
    const first = compileRuntime(mixedConfig(), new SecretReader(dir), { nowSeconds: 0 });
    expect(first.credentialProblems).toHaveLength(3);
    write('openai', 'apiKey', 'sk-openai\n');
    write('anthropic', 'apiKey', 'sk-ant\n');
    write('aws', 'credentials', '[prod]\naws_access_key_id=AKIAPROD\naws_secret_access_key=prod-secret\n');
    const next = compileRuntime(mixedConfig(), new SecretReader(dir), { nowSeconds: 0 });
    expect(next.credentialProblems).toEqual([]);
    expect(next.backends.get('openai')!.auth!.fixed!()).toEqual({
      setHeaders: { authorization: 'Bearer sk-openai' },
      removeHeaders: [],
      repeatable: true,
    });
  });
});

describe('/readyz', () => {
  const status = (problems: string[], noUsableBackend = false): CredentialStatus => ({
    credentialProblems: problems,
    noUsableBackend,
  });
  const PROBLEM = 'backend "openai": credential openai/apiKey is empty';

  it('decides from serving and the credential state', () => {
    expect(readiness({ ready: () => true, credentials: () => status([]) })).toEqual({ status: 200, body: 'ready\n' });
    expect(readiness({ ready: () => true })).toEqual({ status: 200, body: 'ready\n' });
    // One backend of several broken: still ready (every replica has the same Secret; unready would cut all routes).
    expect(readiness({ ready: () => true, credentials: () => status([PROBLEM]) })).toEqual({
      status: 200,
      body: `ready (degraded: 1 backend credential problem)\n${PROBLEM}\n`,
    });
    expect(
      readiness({ ready: () => true, credentials: () => status([PROBLEM, 'backend "b": credential b/k is missing']) })
        .body,
    ).toMatch(/^ready \(degraded: 2 backend credential problems\)\n/);
    // Nothing routed can authenticate: not ready.
    expect(readiness({ ready: () => true, credentials: () => status([PROBLEM], true) })).toEqual({
      status: 503,
      body: `not ready: no routed backend has a usable credential\n${PROBLEM}\n`,
    });
    // Not serving (starting, draining) wins, and still lists the problems.
    expect(readiness({ ready: () => false, credentials: () => status([PROBLEM]) })).toEqual({
      status: 503,
      body: `not ready\n${PROBLEM}\n`,
    });
    expect(readiness({ ready: () => false })).toEqual({ status: 503, body: 'not ready\n' });
  });

  describe('over HTTP, with a compiled snapshot', () => {
    let dir: string;
    let server: http.Server;
    let base: string;
    let state: AdminState;

    beforeAll(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-readyz-'));
      fs.mkdirSync(path.join(dir, 'good'));
      fs.writeFileSync(path.join(dir, 'good', 'apiKey'), 'sk-good-value\n');
      fs.mkdirSync(path.join(dir, 'openai'));
      fs.writeFileSync(path.join(dir, 'openai', 'apiKey'), '');
      state = { ready: () => true, registry: new Registry() };
      server = createAdminServer({
        ready: () => state.ready(),
        credentials: () => state.credentials!(),
        registry: state.registry,
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    });

    async function readyz(): Promise<{ status: number; body: string }> {
      const response = await fetch(`${base}/readyz`);
      return { status: response.status, body: await response.text() };
    }

    it('a missing credential of one backend of two: 200 degraded, naming it; of the only backend: 503', async () => {
      const twoBackends = testConfig({
        backends: [apiKey('openai', 'openai'), apiKey('good', 'good'), apiKey('anthropic', 'anthropic')],
        routes: [
          route(['gpt-4o'], [{ backend: 'openai', weight: 1, priority: 0 }]),
          route(['claude'], [{ backend: 'good', weight: 1, priority: 0 }], { name: 'default/claude' }),
        ],
      });
      let runtime = compileRuntime(twoBackends, new SecretReader(dir), { nowSeconds: 0 });
      state.credentials = () => runtime;
      const degraded = await readyz();
      expect(degraded.status).toBe(200);
      expect(degraded.body).toBe(
        'ready (degraded: 2 backend credential problems)\nbackend "openai": credential ' +
          'openai/apiKey is empty\nbackend "anthropic": credential anthropic/apiKey is missing\n',
      );
      expect(degraded.body).not.toContain('sk-good-value');

      runtime = compileRuntime(testConfig({ backends: [apiKey('openai', 'openai')] }), new SecretReader(dir), {
        nowSeconds: 0,
      });
      expect(await readyz()).toEqual({
        status: 503,
        body:
          'not ready: no routed backend has a usable credential\nbackend "openai": credential ' +
          'openai/apiKey is empty\n',
      });

      runtime = compileRuntime(testConfig({ backends: [apiKey('openai', 'good')] }), new SecretReader(dir), {
        nowSeconds: 0,
      });
      expect(await readyz()).toEqual({ status: 200, body: 'ready\n' });
    });
  });
});

describe('through the processor', () => {
  it(
    'one log line per snapshot however many requests fail, and the reload with a fixed Secret ' + 'serves again',
    async () => {
      const logger = captureLogger();
      const processor = await startTestProcessor(testConfig({ backends: [apiKey('openai', 'openai')] }), {
        secrets: { openai: { apiKey: '' } },
        pollIntervalMs: 100,
        compile: { logger },
      });
      try {
        const ask = () =>
          processor.client.exchange(
            { path: '/v1/chat/completions', body: '{"model":"gpt-4o","messages":[]}' },
            (upstream) => ({
              status: 200,
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ seen: upstream.headers.authorization }),
            }),
          );
        expect(processor.app.processor.runtime().credentialProblems).toEqual([
          'backend "openai": credential openai/apiKey is empty',
        ]);
        for (let i = 0; i < 20; i++) expect((await ask()).status).toBe(503);
        const credentialLines = () =>
          logger.lines.filter((line) => line.message.startsWith('backend credential unusable'));
        expect(credentialLines()).toHaveLength(1);

        processor.writeSecret('openai', 'apiKey', 'sk-fixed\n');
        const deadline = Date.now() + 5000;
        while (processor.app.processor.runtime().credentialProblems.length > 0 && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 20));
        expect(processor.app.processor.runtime().credentialProblems).toEqual([]);
        const fixed = await ask();
        expect(fixed.status).toBe(200);
        expect(JSON.parse(fixed.body.toString())).toEqual({ seen: 'Bearer sk-fixed' });
        expect(credentialLines()).toHaveLength(1);
      } finally {
        await processor.close();
      }
    },
  );
});
