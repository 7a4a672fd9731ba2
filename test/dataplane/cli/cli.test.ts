/**
 * `ai-gateway dev` end to end: the example synthesized as `npm run synth` does, run by the CLI as a child process
 * (as `npx tsx lib/cli.ts dev dist/` runs it), one chat completion through the printed URL to a local fake OpenAI,
 * then SIGTERM. Plus the CLI's error exits, in process.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'cdk8s';
import { buildExample } from '../../../examples/cdk8s/main';
import { checkRedis, main, redactedUrl, startDev, type CliIo } from '../../../lib/cli';
import { parseCommandLine } from '../../../lib/dataplane/dev-options';

const repo = path.resolve(__dirname, '../../..');
const bundle = path.join(repo, 'processor', 'dist', 'main.js');

class Capture {
  text = '';
  readonly stream = { write: (chunk: string) => ((this.text += chunk), true) } as unknown as NodeJS.WritableStream;
}

function io(env: Record<string, string | undefined> = {}): { io: CliIo; stdout: Capture; stderr: Capture } {
  const stdout = new Capture();
  const stderr = new Capture();
  return { io: { stdout: stdout.stream, stderr: stderr.stream, env }, stdout, stderr };
}

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A fake OpenAI that answers one chat completion and records what it received. */
async function fakeOpenAI(): Promise<{ port: number; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString(),
      });
      if (request.headers.authorization !== 'Bearer sk-test-openai') {
        response
          .writeHead(401, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { message: 'bad key' } }));
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          id: 'chatcmpl-1',
          object: 'chat.completion',
          created: 1,
          model: 'gpt-4o-2024-08-06',
          choices: [
            { index: 0, message: { role: 'assistant', content: 'Hello from the fake' }, finish_reason: 'stop' },
          ],
          usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function post(url: string, body: unknown, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const request = http.request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...headers },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    request.on('error', reject);
    request.end(data);
  });
}

function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the CLI did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

function portOpen(address: string): Promise<boolean> {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(':')),
    Number(address.slice(address.lastIndexOf(':') + 1)),
  ];
  return new Promise((resolve) => {
    const socket = net.connect(port, host, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

describe('ai-gateway dev', () => {
  let dir: string;
  let manifests: string;
  let secrets: string;

  beforeAll(() => {
    if (!fs.existsSync(bundle))
      execFileSync('npm', ['run', 'build', '-w', 'processor'], { cwd: repo, stdio: 'inherit' });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-cli-test-'));
    manifests = path.join(dir, 'dist');
    const app = new App({ outdir: manifests });
    buildExample(app);
    app.synth();
    secrets = path.join(dir, 'secrets');
    fs.mkdirSync(path.join(secrets, 'ai-platform', 'openai-api-key'), { recursive: true });
    fs.writeFileSync(path.join(secrets, 'ai-platform', 'openai-api-key', 'api-key'), 'sk-test-openai\n');
  }, 120_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('serves the synthesized example through the printed URL until SIGTERM', async () => {
    const fake = await fakeOpenAI();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'lib/cli.ts',
        'dev',
        manifests,
        '--secrets',
        secrets,
        '--backend',
        `ai-platform/openai=http://127.0.0.1:${fake.port}`,
      ],
      // The Anthropic key comes from the environment.
      {
        cwd: repo,
        env: { ...process.env, AI_GATEWAY_SECRET_ANTHROPIC_API_KEY_API_KEY: 'sk-test-anthropic' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no listener URL within 60 s; stdout:\n${stdout}\nstderr:\n${stderr}`)),
          60_000,
        );
        const check = () => {
          const match = /Gateway ai-platform\/ai-gateway listener http \(HTTP 80\): (http:\/\/127\.0\.0\.1:\d+)/.exec(
            stdout,
          );
          if (match) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        };
        child.stdout.on('data', check);
        child.once('exit', (code) => reject(new Error(`the CLI exited with ${code}; stderr:\n${stderr}`)));
      });
      const processorGrpc = /processor ai-platform\/ai-gateway-processor: ext_proc on (\S+),/.exec(stdout)?.[1];
      expect(processorGrpc).toBeDefined();

      const answer = await post(
        `${url}/v1/chat/completions`,
        { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] },
        { 'x-tenant-id': 'tenant-a' },
      );
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body).choices[0].message.content).toBe('Hello from the fake');
      expect(fake.received).toHaveLength(1);
      expect(fake.received[0]).toMatchObject({
        method: 'POST',
        url: '/v1/chat/completions',
        headers: { authorization: 'Bearer sk-test-openai' },
      });
      expect(JSON.parse(fake.received[0].body).model).toBe('gpt-4o');

      child.kill('SIGTERM');
      expect(await exited(child, 20_000)).toBe(0);
      expect(stderr).toContain('ai-gateway: SIGTERM, stopping');
      expect(await portOpen(processorGrpc!)).toBe(false);
      expect(await portOpen(url.replace('http://', ''))).toBe(false);
      expect(`${stdout}${stderr}`).not.toContain('sk-test-');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await fake.close();
    }
  }, 90_000);

  it('prints the help and exits 0', async () => {
    const run = io();
    expect(await main(['dev', '--help'], run.io)).toBe(0);
    expect(run.stdout.text).toContain('Usage: ai-gateway dev <dir|file...> [options]');
  });

  it('exits 2 with the reason and a pointer to --help on a bad flag', async () => {
    const run = io();
    expect(await main(['dev', manifests, '--backend', 'openai=http://x'], run.io)).toBe(2);
    expect(run.stderr.text).toMatch(/^ai-gateway: --backend needs <namespace>\/<name> before "="/);
    expect(run.stderr.text).toContain('Run "ai-gateway dev --help" for the options.');
  });

  it(
    'exits 1 naming a missing manifest folder, a missing secrets folder, a missing Gateway or a ' + 'missing Secret',
    async () => {
      let run = io();
      expect(await main(['dev', path.join(dir, 'nope')], run.io)).toBe(1);
      expect(run.stderr.text).toContain(`${path.join(dir, 'nope')} does not exist`);

      run = io();
      expect(await main(['dev', manifests, '--secrets', path.join(dir, 'no-secrets')], run.io)).toBe(1);
      expect(run.stderr.text).toContain(`--secrets ${path.join(dir, 'no-secrets')} is not a folder`);

      const noGateway = path.join(dir, 'no-gateway.yaml');
      fs.writeFileSync(
        noGateway,
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: default\ndata: {}\n',
      );
      run = io();
      expect(await main(['dev', noGateway], run.io)).toBe(1);
      expect(run.stderr.text).toContain(`the manifests in ${noGateway} contain no Gateway`);

      run = io({});
      expect(await main(['dev', manifests, '--secrets', secrets], run.io)).toBe(1);
      expect(run.stderr.text).toContain('Secret ai-platform/anthropic-api-key key "api-key" is not available locally');
      expect(run.stderr.text).toContain('AI_GATEWAY_SECRET_ANTHROPIC_API_KEY_API_KEY');
    },
  );

  it(
    'skips files of a folder that hold no Kubernetes object (the Helm values next to the ' +
      'manifests) and serves a listener on the --port given',
    async () => {
      const withValues = path.join(dir, 'with-values');
      fs.cpSync(manifests, withValues, { recursive: true });
      fs.writeFileSync(
        path.join(withValues, 'envoy-gateway-values.yaml'),
        'config:\n  envoyGateway:\n    rateLimit: {}\n',
      );
      const free = net.createServer();
      await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
      const port = (free.address() as net.AddressInfo).port;
      await new Promise((resolve) => free.close(resolve));
      const command = parseCommandLine([
        'dev',
        withValues,
        '--echo',
        '--secrets',
        secrets,
        '--port',
        `ai-platform/ai-gateway:80=${port}`,
      ]);
      if (command.command !== 'dev') throw new Error('expected dev');
      const run = io({ AI_GATEWAY_SECRET_ANTHROPIC_API_KEY_API_KEY: 'sk-test-anthropic' });
      const running = await startDev(command.options, run.io);
      try {
        expect(run.stderr.text).toContain(
          `ai-gateway: skipping ${path.join(withValues, 'envoy-gateway-values.yaml')}: it holds no Kubernetes object`,
        );
        // --port put the listener on the port asked for; echo mode answers from the backend the route picked.
        expect(run.stdout.text).toContain(
          `Gateway ai-platform/ai-gateway listener http (HTTP 80): http://127.0.0.1:${port}\n`,
        );
        const echoed = await post(
          `http://127.0.0.1:${port}/v1/chat/completions`,
          { model: 'gpt-4o', messages: [] },
          { 'x-tenant-id': 'tenant-a' },
        );
        expect(echoed.status).toBe(200);
        expect(JSON.parse(echoed.body)).toMatchObject({
          namespace: 'ai-platform',
          service: 'openai',
          path: '/v1/chat/completions',
        });
      } finally {
        await running.stop();
      }

      const onlyValues = path.join(dir, 'only-values');
      fs.mkdirSync(onlyValues);
      fs.writeFileSync(path.join(onlyValues, 'values.yaml'), 'a: 1\n');
      const empty = io();
      expect(await main(['dev', onlyValues], empty.io)).toBe(1);
      expect(empty.stderr.text).toContain(`folder ${onlyValues} holds no Kubernetes manifests`);
    },
    30_000,
  );

  it('exits 1 on a --jwks URI the manifests do not use, or a --ca-file that is not a PEM file', async () => {
    let run = io();
    expect(await main(['dev', manifests, '--jwks', 'https://issuer.example.com/jwks.json=./jwks.json'], run.io)).toBe(
      1,
    );
    expect(run.stderr.text).toContain(
      '--jwks https://issuer.example.com/jwks.json: no object in the manifests uses this JWKS URI',
    );
    run = io();
    expect(await main(['dev', manifests, '--ca-file', path.join(dir, 'missing.pem')], run.io)).toBe(1);
    expect(run.stderr.text).toContain(`--ca-file ${path.join(dir, 'missing.pem')}: no such file`);
    fs.writeFileSync(path.join(dir, 'not.pem'), 'hello');
    run = io();
    expect(await main(['dev', manifests, '--ca-file', path.join(dir, 'not.pem')], run.io)).toBe(1);
    expect(run.stderr.text).toContain('holds no PEM certificate');
  });

  it('exits 1 when the --redis server cannot be reached, without printing its password', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const run = io();
    expect(await main(['dev', manifests, '--redis', `redis://:hunter2@127.0.0.1:${port}/0`], run.io)).toBe(1);
    expect(run.stderr.text).toContain(`--redis redis://:***@127.0.0.1:${port}/0: cannot use this Redis`);
    expect(run.stderr.text).not.toContain('hunter2');
    expect(redactedUrl('rediss://user:pw@h:1')).toBe('rediss://user:***@h:1');
  });

  (process.env.REDIS_URL ? it : it.skip)('accepts a reachable Redis (REDIS_URL)', async () => {
    await expect(checkRedis(process.env.REDIS_URL!)).resolves.toBeUndefined();
  });

  it('stops the run when a processor crashes', async () => {
    const script = path.join(dir, 'crashing.js');
    // Prints the processor's ready line, serves /readyz, and exits with 3 a moment later.
    fs.writeFileSync(
      script,
      `const s = require('node:http').createServer((q, r) => r.end('ok')).listen(0, '127.0.0.1', () => {
         console.log('ai-gateway-processor ready: ext_proc on 127.0.0.1:0 (port 1), ' +
           'admin on 127.0.0.1:0 (port ' + s.address().port + ')');
         setTimeout(() => process.exit(3), 300);
       });`,
    );
    const command = parseCommandLine(['dev', manifests, '--echo', '--secrets', secrets, '--processor', script]);
    if (command.command !== 'dev') throw new Error('expected dev');
    const running = await startDev(
      command.options,
      io({ AI_GATEWAY_SECRET_ANTHROPIC_API_KEY_API_KEY: 'sk-test-anthropic' }).io,
    );
    try {
      await expect(running.failed).resolves.toBe(
        'processor Deployment ai-platform/ai-gateway-processor exited unexpectedly (exit code 3)',
      );
    } finally {
      await running.stop();
    }
  }, 30_000);

  it('exits 1 when a listener port is in use, and leaves no processor running', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const run = io({ AI_GATEWAY_SECRET_ANTHROPIC_API_KEY_API_KEY: 'sk-test-anthropic' });
      const code = await main(
        [
          'dev',
          manifests,
          '--secrets',
          secrets,
          '--port',
          `ai-platform/ai-gateway:80=${port}`,
          '--processor-log',
          path.join(dir, 'p.log'),
        ],
        run.io,
      );
      expect(run.stderr.text).toContain(`port ${port} on 127.0.0.1 is in use`);
      expect(code).toBe(1);
      // The processor was stopped: it logged its drain.
      expect(fs.readFileSync(path.join(dir, 'p.log'), 'utf8')).toMatch(/"msg":"draining"/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  }, 60_000);
});
