/**
 * What the container image runs is `processor/dist/` alone. Copy it into an empty folder with no node_modules
 * anywhere above it, make everything read-only, run it as an unprivileged user, and use it like Envoy and the
 * kubelet would: proves the bundle is self-contained and needs no writable filesystem.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EnvoyClient } from '../support/envoy-client';
import { openAIBackend, testConfig } from '../support/processor-harness';

const DIST = path.resolve(__dirname, '..', '..', 'dist');
const UNPRIVILEGED = 65534;
const SECRET = 'sk-bundle-test-0123456789';

const config = testConfig({
  backends: [
    openAIBackend('openai', {
      endpoint: { hostname: 'api.openai.com', port: 443, tls: true },
      auth: { type: 'APIKey', secret: { secretName: 'openai', key: 'api-key' } },
    }),
  ],
});

function makeReadOnly(target: string): void {
  for (const entry of fs.readdirSync(target, { withFileTypes: true })) {
    const full = path.join(target, entry.name);
    if (entry.isDirectory()) makeReadOnly(full);
    else fs.chmodSync(full, 0o444);
  }
  fs.chmodSync(target, 0o555);
}

function hasNodeModulesAbove(dir: string): string | undefined {
  for (let current = dir; ; current = path.dirname(current)) {
    const candidate = path.join(current, 'node_modules');
    if (fs.existsSync(candidate)) return candidate;
    if (path.dirname(current) === current) return undefined;
  }
}

function waitForReady(
  child: ChildProcess,
  output: { stdout: string; stderr: string },
): Promise<{ grpcPort: number; adminPort: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready after 15 s; stderr: ${output.stderr}`)), 15_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      output.stdout += chunk.toString();
      const match = /ready: ext_proc on .*\(port (\d+)\), admin on .*\(port (\d+)\)/.exec(output.stdout);
      if (match) {
        clearTimeout(timer);
        resolve({ grpcPort: Number(match[1]), adminPort: Number(match[2]) });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ready; stderr: ${output.stderr}`));
    });
  });
}

describe('the bundled processor (processor/dist alone)', () => {
  let root: string;
  let child: ChildProcess;
  const output = { stdout: '', stderr: '' };
  let ports: { grpcPort: number; adminPort: number };
  let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  beforeAll(async () => {
    if (!fs.existsSync(path.join(DIST, 'main.js'))) {
      throw new Error('processor/dist/main.js is missing: run `npm run build -w processor` first (`npm test` does)');
    }
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-bundle-'));
    fs.chmodSync(root, 0o755);
    const app = path.join(root, 'app');
    fs.cpSync(DIST, app, { recursive: true });
    fs.mkdirSync(path.join(root, 'config'));
    fs.writeFileSync(path.join(root, 'config', 'config.json'), JSON.stringify(config));
    fs.mkdirSync(path.join(root, 'secrets', 'openai'), { recursive: true });
    fs.writeFileSync(path.join(root, 'secrets', 'openai', 'api-key'), `${SECRET}\n`);
    for (const dir of ['app', 'config', 'secrets']) makeReadOnly(path.join(root, dir));

    const asRoot = process.getuid?.() === 0;
    if (!asRoot)
      process.stdout.write(
        'bundle test: not running as root, so the processor runs as the current (unprivileged) user\n',
      );
    child = spawn(
      process.execPath,
      [
        path.join(app, 'main.js'),
        '--config',
        path.join(root, 'config', 'config.json'),
        '--secrets-dir',
        path.join(root, 'secrets'),
        '--listen',
        '127.0.0.1:0',
        '--admin',
        '127.0.0.1:0',
      ],
      {
        cwd: app,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_ENV: 'production' },
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(asRoot ? { uid: UNPRIVILEGED, gid: UNPRIVILEGED } : {}),
      },
    );
    child.stderr!.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
    exit = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    ports = await waitForReady(child, output);
  }, 30_000);

  afterAll(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (root) {
      fs.chmodSync(root, 0o755);
      for (const dir of ['app', 'config', 'secrets']) fs.chmodSync(path.join(root, dir), 0o755);
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('starts from an empty folder with no node_modules anywhere above it', () => {
    expect(hasNodeModulesAbove(path.join(root, 'app'))).toBeUndefined();
    expect(fs.readdirSync(path.join(root, 'app')).some((name) => name === 'node_modules')).toBe(false);
  });

  it('answers the kubelet probes', async () => {
    for (const probe of ['/healthz', '/readyz']) {
      const response = await fetch(`http://127.0.0.1:${ports.adminPort}${probe}`);
      expect({ probe, status: response.status }).toEqual({ probe, status: 200 });
    }
    const metrics = await (await fetch(`http://127.0.0.1:${ports.adminPort}/metrics`)).text();
    expect(metrics).toContain('# TYPE');
  });

  it('routes and authenticates a passthrough request over ext_proc', async () => {
    const client = new EnvoyClient(`127.0.0.1:${ports.grpcPort}`);
    try {
      const usage = { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 };
      const result = await client.exchange(
        {
          path: '/v1/chat/completions',
          headers: { authorization: 'Bearer client-key-must-not-leak' },
          body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
        },
        () => ({
          status: 200,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', model: 'gpt-4o', choices: [], usage }),
        }),
      );
      expect(result.status).toBe(200);
      expect(result.upstreamRequest?.path).toBe('/v1/chat/completions');
      expect(result.upstreamRequest?.headers.authorization).toBe(`Bearer ${SECRET}`);
      expect(result.upstreamRequest?.headers['x-ai-gateway-backend']).toBe('openai');
      expect(result.upstreamRequest?.headers['x-ai-eg-model']).toBe('gpt-4o');
      expect(JSON.parse(result.body.toString()).usage).toEqual(usage);
      expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({
        llm_input_token: 7,
        llm_output_token: 3,
        llm_total_token: 10,
      });
    } finally {
      client.close();
    }
  });

  it('exits 0 on SIGTERM without having logged secrets or errors', async () => {
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const { code, signal } = await Promise.race([
      exit,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('still running 10 s after SIGTERM')), 10_000);
      }),
    ]).finally(() => clearTimeout(timer));
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    const logs = output.stdout + output.stderr;
    expect(logs).not.toContain(SECRET);
    expect(logs).not.toContain('client-key-must-not-leak');
    expect(logs).not.toMatch(/"level":(50|60)/);
  }, 15_000);
});
