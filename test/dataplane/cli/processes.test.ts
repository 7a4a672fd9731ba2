import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ProcessorDeployment } from '../../../lib/dataplane/model';
import {
  argValue,
  keptArgs,
  ProcessorStartError,
  startProcessors,
  type RunningProcessors,
} from '../../../lib/dataplane/processes';
import { MissingSecretError } from '../../../lib/dataplane/secrets';
import { parseCli } from '../../../processor/src/cli';
import { CONFIG_VERSION, PROCESSOR_NODE_OPTIONS, type ProcessorConfig } from '@ai-gateway-constructs/processor-config';
// The processor's own Envoy stand-in: enough to drive one ext_proc exchange and see what the processor did.
import { EnvoyClient } from '../../../processor/test/support/envoy-client';

const repo = path.resolve(__dirname, '../../..');
const bundle = path.join(repo, 'processor', 'dist', 'main.js');

function processorConfig(secretName = 'openai-api-key'): ProcessorConfig {
  return {
    version: CONFIG_VERSION,
    maxRequestBodyBytes: 1024 * 1024,
    backends: [
      {
        name: 'openai',
        schema: { name: 'OpenAI', pathPrefix: '/v1' },
        endpoint: { hostname: 'api.openai.com', port: 443, tls: true },
        auth: { type: 'APIKey', secret: { secretName, key: 'api-key' } },
      },
    ],
    routes: [
      {
        name: 'team/chat',
        endpoints: [{ api: 'OpenAI', pathPrefix: '/v1' }],
        hostnames: [],
        rules: [
          { models: [{ type: 'Exact', value: 'gpt-4o' }], backends: [{ backend: 'openai', weight: 1, priority: 0 }] },
        ],
        requiredHeaders: [],
      },
    ],
    costs: [],
    circuitBreaker: { failureThreshold: 3, openDurationMs: 60_000 },
  };
}

/** What the constructs emit (lib/processor.ts), reduced to the fields the model carries. */
function deployment(overrides: Partial<ProcessorDeployment> = {}): ProcessorDeployment {
  return {
    namespace: 'ai-platform',
    deploymentName: 'ai-gateway-processor',
    serviceName: 'ai-gateway-processor',
    servicePort: 9002,
    args: [
      '--config',
      '/etc/ai-gateway/config/config.json',
      '--secrets-dir',
      '/etc/ai-gateway/secrets',
      '--listen',
      '0.0.0.0:9002',
      '--admin',
      '0.0.0.0:9090',
    ],
    configMapName: 'ai-gateway-processor-config',
    configJson: JSON.stringify(processorConfig()),
    secretMounts: [{ secretName: 'openai-api-key', mountPath: '/etc/ai-gateway/secrets/openai-api-key' }],
    ...overrides,
  };
}

function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

/** Whether `pid` runs (a zombie, killed but not yet reaped by an init that may never reap it, does not). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "<pid> (<comm>) <state> ..."
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** Runs one chat completion through the processor and returns the headers its upstream would get. */
async function upstreamHeaders(grpcAddress: string): Promise<Record<string, string>> {
  const client = new EnvoyClient(grpcAddress);
  try {
    const result = await client.exchange(
      {
        path: '/v1/chat/completions',
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
      },
      () => ({
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          id: 'x',
          object: 'chat.completion',
          model: 'gpt-4o',
          choices: [],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        }),
      }),
    );
    expect(result.upstreamRequest).toBeDefined();
    return result.upstreamRequest!.headers;
  } finally {
    client.close();
  }
}

describe('startProcessors', () => {
  let secretsDir: string;
  const env = { ...process.env, AI_GATEWAY_SECRET_OTHER_KEY_API_KEY: 'sk-env-key' };

  beforeAll(() => {
    if (!fs.existsSync(bundle))
      execFileSync('npm', ['run', 'build', '-w', 'processor'], { cwd: repo, stdio: 'inherit' });
  }, 120_000);
  beforeEach(() => {
    secretsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-processes-test-'));
    fs.mkdirSync(path.join(secretsDir, 'ai-platform', 'openai-api-key'), { recursive: true });
    fs.writeFileSync(path.join(secretsDir, 'ai-platform', 'openai-api-key', 'api-key'), 'sk-local-key\n');
  });
  afterEach(() => fs.rmSync(secretsDir, { recursive: true, force: true }));

  it('keeps the Deployment args except the four that name pod files and addresses', () => {
    const args = [
      '--config',
      '/c',
      '--log-level',
      'debug',
      '--listen=0.0.0.0:9002',
      '--admin',
      '0.0.0.0:9090',
      '--secrets-dir=/s',
      '--poll-interval-ms',
      '500',
    ];
    expect(keptArgs(args)).toEqual(['--log-level', 'debug', '--poll-interval-ms', '500']);
    expect(argValue(args, '--secrets-dir')).toBe('/s');
    expect(argValue(args, '--config')).toBe('/c');
    expect(argValue(args, '--drain-timeout-ms')).toBeUndefined();
  });

  it('reads a repeated or odd flag as the processor itself does', () => {
    const args = [
      '--config',
      '/first',
      '--secrets-dir',
      '--config',
      '--admin=127.0.0.1:2',
      '--config=/last',
      '--listen',
      '127.0.0.1:1',
    ];
    const options = parseCli(args, {});
    if (options === 'help') throw new Error('parseCli read --help');
    expect(argValue(args, '--config')).toBe(options.config);
    expect(argValue(args, '--config')).toBe('/last');
    expect(argValue(args, '--secrets-dir')).toBe(options.secretsDir);
    expect(argValue(args, '--secrets-dir')).toBe('--config');
    expect(argValue(args, '--admin')).toBe(options.admin);
    expect(argValue(args, '--listen')).toBe(options.listen);
  });

  describe('a running processor', () => {
    let running: RunningProcessors;
    const lines: string[] = [];
    beforeAll(async () => {
      const secrets = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-processes-test-'));
      fs.mkdirSync(path.join(secrets, 'openai-api-key'));
      fs.writeFileSync(path.join(secrets, 'openai-api-key', 'api-key'), 'sk-local-key\n');
      try {
        running = await startProcessors(
          [
            deployment(),
            // A second gateway's processor whose key comes from the environment.
            deployment({
              namespace: 'other',
              serviceName: 'other-processor',
              deploymentName: 'other-processor',
              configJson: JSON.stringify(processorConfig('other-key')),
              secretMounts: [{ secretName: 'other-key', mountPath: '/etc/ai-gateway/secrets/other-key' }],
            }),
          ],
          { secretsDir: secrets, env, log: (line) => lines.push(line) },
        );
      } finally {
        fs.rmSync(secrets, { recursive: true, force: true });
      }
    }, 60_000);
    afterAll(() => running?.close());

    it('is ready on loopback ports and its Service resolves to its gRPC port', async () => {
      const [first, second] = running.processors;
      expect(first.grpcAddress).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(await get(`http://${first.adminAddress}/readyz`)).toBe(200);
      expect(running.resolve('ai-platform', 'ai-gateway-processor', 9002)).toBe(first.grpcAddress);
      expect(running.resolve('other', 'other-processor', 9002)).toBe(second.grpcAddress);
      expect(running.resolve('ai-platform', 'ai-gateway-processor', 9090)).toBeUndefined();
      expect(running.resolve('other', 'ai-gateway-processor', 9002)).toBeUndefined();
    });

    it('runs the config.json of the Deployment with the Secret keys from the folder and the environment', async () => {
      expect((await upstreamHeaders(running.processors[0].grpcAddress)).authorization).toBe('Bearer sk-local-key');
      expect((await upstreamHeaders(running.processors[1].grpcAddress)).authorization).toBe('Bearer sk-env-key');
    });

    it('runs the bundle with the V8 options of the image', () => {
      const argv = fs.readFileSync(`/proc/${running.processors[0].pid}/cmdline`, 'utf8').split('\0');
      expect(argv.slice(1, 1 + PROCESSOR_NODE_OPTIONS.length + 1)).toEqual([...PROCESSOR_NODE_OPTIONS, bundle]);
    });

    it('passes the output on, prefixed with the Deployment', () => {
      expect(
        lines.some((line) => line.startsWith('[ai-platform/ai-gateway-processor] ai-gateway-processor ready')),
      ).toBe(true);
      expect(lines.some((line) => line.startsWith('[other/other-processor] ai-gateway-processor ready'))).toBe(true);
      expect(lines.join('\n')).not.toContain('sk-local-key');
    });
  });

  it('reports a missing Secret key before starting anything, without a value', async () => {
    const spawned: string[] = [];
    const promise = startProcessors(
      [
        deployment(),
        deployment({
          namespace: 'nope',
          configJson: JSON.stringify(processorConfig('absent')),
          secretMounts: [{ secretName: 'absent', mountPath: '/etc/ai-gateway/secrets/absent' }],
        }),
      ],
      {
        secretsDir,
        env: {},
        log: (line) => spawned.push(line),
      },
    );
    await expect(promise).rejects.toThrow(MissingSecretError);
    await expect(promise).rejects.toThrow(
      /Secret nope\/absent key "api-key".*needed by processor Deployment nope\/ai-gateway-processor/,
    );
    expect(spawned).toEqual([]);
  });

  it('follows volume items and refuses a config that reads a file no Secret volume provides', async () => {
    fs.mkdirSync(path.join(secretsDir, 'ai-platform', 'renamed'), { recursive: true });
    fs.writeFileSync(path.join(secretsDir, 'ai-platform', 'renamed', 'token'), 'sk-item');
    const withItems = deployment({
      secretMounts: [
        {
          secretName: 'renamed',
          mountPath: '/etc/ai-gateway/secrets/openai-api-key',
          items: [{ key: 'token', path: 'api-key' }],
        },
      ],
    });
    const running = await startProcessors([withItems], { secretsDir, env: {}, log: () => undefined });
    try {
      expect((await upstreamHeaders(running.processors[0].grpcAddress)).authorization).toBe('Bearer sk-item');
    } finally {
      await running.close();
    }
    await expect(startProcessors([deployment({ secretMounts: [] })], { secretsDir, env: {} })).rejects.toThrow(
      /reads Secret "openai-api-key" key "api-key" from \/etc\/ai-gateway\/secrets\/openai-api-key\/api-key .*no Secret volume/,
    );
    await expect(
      startProcessors(
        [
          deployment({
            secretMounts: [
              {
                secretName: 'renamed',
                mountPath: '/etc/ai-gateway/secrets/openai-api-key',
                items: [{ key: 'token', path: 'other' }],
              },
            ],
          }),
        ],
        { secretsDir, env: {} },
      ),
    ).rejects.toThrow(/does not project a key to that path/);
  }, 30_000);

  it('never writes a Secret key outside the private folder, whatever paths the config and volumes name', async () => {
    const escaping = deployment({
      configJson: JSON.stringify(processorConfig('..')),
      secretMounts: [
        { secretName: 'renamed', mountPath: '/etc', items: [{ key: 'token', path: 'ai-gateway/api-key' }] },
      ],
    });
    await expect(startProcessors([escaping], { secretsDir, env: {} })).rejects.toThrow(
      /from \/etc\/ai-gateway\/api-key, outside its secrets folder \/etc\/ai-gateway\/secrets/,
    );
  });

  it.each(['../../../aigw-escaped-config-part', 'nested/part', '..', '.', '', 'x'.repeat(254)])(
    'refuses the config volume key %j before writing or starting anything',
    async (key) => {
      const escaped = path.join(os.tmpdir(), 'aigw-escaped-config-part');
      fs.rmSync(escaped, { force: true });
      const spawned: string[] = [];
      const promise = startProcessors(
        [
          deployment({
            configFiles: { 'config.json': Buffer.from(JSON.stringify(processorConfig())), [key]: Buffer.from('x') },
            configFileName: 'config.json',
          }),
        ],
        { secretsDir, env: {}, log: (line) => spawned.push(line) },
      );
      // Should it start after all, it is stopped again.
      void promise.then(
        (running) => running.close(),
        () => undefined,
      );
      await expect(promise).rejects.toThrow(ProcessorStartError);
      await expect(promise).rejects.toThrow(
        'processor Deployment ai-platform/ai-gateway-processor: its config volume (ConfigMap ' +
          `ai-platform/ai-gateway-processor-config) has the key ${JSON.stringify(key)}, which is not a valid ` +
          'ConfigMap key',
      );
      expect(fs.existsSync(escaped)).toBe(false);
      expect(spawned).toEqual([]);
    },
  );

  it('reports a processor that exits before it is ready, with its last output', async () => {
    const promise = startProcessors([deployment({ args: ['--log-level', 'loud'] })], {
      secretsDir,
      env: {},
      log: () => undefined,
    });
    await expect(promise).rejects.toThrow(ProcessorStartError);
    await expect(promise).rejects.toThrow(
      /exited before it was ready \(exit code 2\); its last output:[\s\S]*--log-level must be one of/,
    );
  }, 30_000);

  it('stops with SIGTERM, then SIGKILL after the bound, and removes its files', async () => {
    const script = path.join(secretsDir, 'stubborn.js');
    // Prints the processor's ready line, serves /readyz, and ignores SIGTERM.
    fs.writeFileSync(
      script,
      `const http = require('node:http');
       process.on('SIGTERM', () => console.error('got SIGTERM'));
       const s = http.createServer((q, r) => r.end('ok')).listen(0, '127.0.0.1', () => {
         console.log('ai-gateway-processor ready: ext_proc on 127.0.0.1:0 (port 1), ' +
           'admin on 127.0.0.1:0 (port ' + s.address().port + ')');
       });`,
    );
    const lines: string[] = [];
    const running = await startProcessors([deployment()], {
      secretsDir,
      env: {},
      processorEntry: script,
      stopTimeoutMs: 300,
      log: (line) => lines.push(line),
    });
    const pid = running.processors[0].pid;
    expect(isAlive(pid)).toBe(true);
    expect(fs.readFileSync(path.join(running.workDir, '0', 'secrets', 'openai-api-key', 'api-key'), 'utf8')).toBe(
      'sk-local-key\n',
    );
    expect((fs.statSync(running.workDir).mode & 0o777).toString(8)).toBe('700');
    const started = Date.now();
    await running.close();
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(isAlive(pid)).toBe(false);
    expect(fs.existsSync(running.workDir)).toBe(false);
    expect(lines).toContain('[ai-platform/ai-gateway-processor] got SIGTERM');
    // The real processor drains on SIGTERM and exits; the Deployment's other args are kept (--log-level error
    // hides the "draining" info line it logs otherwise, see the quiet-mode test).
    lines.length = 0;
    const real = await startProcessors([deployment({ args: [...deployment().args, '--log-level', 'error'] })], {
      secretsDir,
      env: {},
      log: (line) => lines.push(line),
    });
    const realPid = real.processors[0].pid;
    const closing = Date.now();
    await real.close();
    expect(Date.now() - closing).toBeLessThan(5_000);
    expect(isAlive(realPid)).toBe(false);
    expect(lines.filter((line) => line.includes('draining'))).toEqual([]);
  }, 30_000);

  it('reports a processor that dies after it was ready, and not one stopped by close()', async () => {
    const exits: string[] = [];
    const running = await startProcessors([deployment(), deployment({ namespace: 'b' })], {
      secretsDir,
      env: { AI_GATEWAY_SECRET_OPENAI_API_KEY_API_KEY: 'sk' },
      log: () => undefined,
      onExit: (processor, how) => exits.push(`${processor.deployment.namespace} ${how}`),
    });
    process.kill(running.processors[1].pid, 'SIGKILL');
    for (let i = 0; i < 100 && exits.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(exits).toEqual(['b signal SIGKILL']);
    await running.close();
    expect(exits).toEqual(['b signal SIGKILL']);
  }, 30_000);

  it('leaves no processor and no secrets behind when the process exits without close()', async () => {
    // A child node process starts a processor, then calls process.exit (as a second Ctrl-C does).
    const script = `
      const { startProcessors } = require(${JSON.stringify(path.join(repo, 'lib', 'dataplane', 'processes.ts'))});
      startProcessors([${JSON.stringify(deployment())}], {
        secretsDir: ${JSON.stringify(secretsDir)},
        env: {},
        log: () => undefined,
      }).then((running) => {
        console.log(JSON.stringify({ pid: running.processors[0].pid, workDir: running.workDir }));
        process.exit(0);
      });`;
    const output = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: repo, encoding: 'utf8' });
    const { pid, workDir } = JSON.parse(output.trim().split('\n').pop()!) as { pid: number; workDir: string };
    expect(fs.existsSync(workDir)).toBe(false);
    // SIGKILL was sent before the exit; give the kernel a moment to deliver it.
    for (let i = 0; i < 40 && isAlive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(isAlive(pid)).toBe(false);
  }, 30_000);

  it('writes the output to a file in quiet mode', async () => {
    const logFile = path.join(secretsDir, 'processors.log');
    const running = await startProcessors([deployment()], { secretsDir, env: {}, logFile });
    await running.close();
    const text = fs.readFileSync(logFile, 'utf8');
    expect(text).toMatch(/^\[ai-platform\/ai-gateway-processor\] ai-gateway-processor ready/m);
    expect(text).toMatch(/^\[ai-platform\/ai-gateway-processor\] \{.*"msg":"draining"/m);
  }, 30_000);

  it('starts nothing for no Deployments', async () => {
    const running = await startProcessors([], { processorEntry: '/nonexistent' });
    expect(running.processors).toEqual([]);
    expect(running.resolve('a', 'b', 1)).toBeUndefined();
    await running.close();
  });
});
