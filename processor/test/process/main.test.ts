/**
 * The built processor (dist/, copied alone into a temp dir: no node_modules) as a process: the
 * ready line, admin endpoints, gRPC health, config errors, unix sockets and SIGTERM draining.
 */
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as path from 'node:path';
import { extProcCodecs, HEALTH_SERVING } from '../../src/grpc/codec';
import { loadProtoRoot } from '../../src/grpc/descriptor';
import { EnvoyClient } from '../support/envoy-client';
import { testConfig } from '../support/processor-harness';
import { copyDist, freePort, run, waitFor, type Running } from './built';

describe('the built processor', () => {
  let dir: string;
  let configFile: string;

  beforeAll(() => {
    dir = copyDist('aigw-dist-');
    configFile = path.join(dir, 'config.json');
    // A CEL cost, an AWS backend and a model regex make the processor load its lazily loaded chunks (cel.js,
    // auth-aws.js, re2js.js).
    const config = testConfig({
      costs: [
        { metadataKey: 'total', type: 'TotalToken' },
        { metadataKey: 'weighted', type: 'CEL', expression: 'input_tokens + 4 * output_tokens' },
      ],
    });
    config.routes[0].rules[0].models.push({ type: 'RegularExpression', value: '(?i)gpt-4o-(\\w+-?)+' });
    config.backends.push({
      name: 'bedrock',
      schema: { name: 'AWSBedrock' },
      endpoint: { hostname: 'bedrock-runtime.us-east-1.amazonaws.com', port: 443, tls: true },
      auth: {
        type: 'AWSSigV4',
        region: 'us-east-1',
        credentials: { source: 'DefaultChain' },
        perRequestCredentials: false,
      },
    });
    fs.writeFileSync(configFile, JSON.stringify(config));
  }, 60_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function start(
    extra: string[] = [],
  ): Promise<Running & { listen: string; admin: string; client: EnvoyClient }> {
    const listen = `127.0.0.1:${await freePort()}`;
    const admin = `127.0.0.1:${await freePort()}`;
    const running = run(dir, [
      '--config',
      configFile,
      '--secrets-dir',
      dir,
      '--listen',
      listen,
      '--admin',
      admin,
      ...extra,
    ]);
    await waitFor(() => running.stdout.length > 0, `the ready line (stderr: ${running.stderr()})`);
    return { ...running, listen, admin, client: new EnvoyClient(listen) };
  }

  it('prints one ready line, serves admin endpoints, gRPC health and metrics', async () => {
    const p = await start();
    try {
      expect(p.stdout).toHaveLength(1);
      expect(p.stdout[0]).toMatch(new RegExp(`^ai-gateway-processor ready: ext_proc on ${p.listen}`));
      expect((await fetch(`http://${p.admin}/healthz`)).status).toBe(200);
      expect((await fetch(`http://${p.admin}/readyz`)).status).toBe(200);

      const codecs = extProcCodecs(loadProtoRoot());
      const health = new grpc.Client(p.listen, grpc.credentials.createInsecure());
      const status = await new Promise<number>((resolve, reject) =>
        health.makeUnaryRequest(
          '/grpc.health.v1.Health/Check',
          codecs.healthRequest.serialize,
          codecs.healthResponse.deserialize,
          {},
          (error, response) => (error ? reject(error) : resolve(response!.status)),
        ),
      );
      health.close();
      expect(status).toBe(HEALTH_SERVING);

      const result = await p.client.exchange({ path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' }, () => ({
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: '{"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}',
      }));
      expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({ llm_total_token: 5, total: 5, weighted: 14 });
      const metrics = await (await fetch(`http://${p.admin}/metrics`)).text();
      const outputSum = metrics
        .split('\n')
        .find(
          (line) => line.startsWith('gen_ai_client_token_usage_sum{') && line.includes('gen_ai_token_type="output"'),
        );
      expect(outputSum).toContain('gen_ai_request_model="gpt-4o"');
      expect(outputSum).toContain('gen_ai_provider_name="openai"');
      expect(outputSum).toMatch(/\} 3$/);
      expect(metrics).toContain('gen_ai_server_request_duration_seconds_bucket');
      expect(metrics).toContain('process_resident_memory_bytes');
    } finally {
      p.client.close();
      p.child.kill('SIGTERM');
      expect(await p.exited).toBe(0);
    }
  });

  it('on SIGTERM stops accepting, lets the in-flight stream finish, then exits 0', async () => {
    const p = await start(['--drain-timeout-ms', '5000']);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let firstChunkSent!: () => void;
    const firstChunk = new Promise<void>((resolve) => (firstChunkSent = resolve));
    async function* slowStream(): AsyncIterable<Buffer> {
      yield Buffer.from('data: {"choices":[{"delta":{"content":"a"}}]}\n\n');
      firstChunkSent();
      await released;
      yield Buffer.from('data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}\n\n');
    }
    const inFlight = p.client.exchange(
      { path: '/v1/chat/completions', body: '{"model":"gpt-4o","stream":true}' },
      () => ({
        status: 200,
        headers: { 'content-type': 'text/event-stream' },
        body: slowStream(),
      }),
    );
    await firstChunk;
    p.child.kill('SIGTERM');
    await waitFor(() => p.stderr().includes('"draining"'), 'the drain to start');
    expect((await fetch(`http://${p.admin}/readyz`)).status).toBe(503);
    const late = new EnvoyClient(p.listen);
    await expect(
      late.exchange({ path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' }, () => ({ status: 200, body: '{}' })),
    ).rejects.toThrow();
    late.close();
    release();
    const result = await inFlight;
    expect(result.status).toBe(200);
    expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({ llm_total_token: 3 });
    p.client.close();
    expect(await p.exited).toBe(0);
    expect(p.stderr()).toContain('"completed":true');
  });

  it('exits 0 at the drain deadline when a stream does not finish', async () => {
    const p = await start(['--drain-timeout-ms', '300']);
    const stream = p.client.openStream();
    stream.send({
      requestHeaders: {
        headers: {
          headers: [
            { key: ':path', rawValue: Buffer.from('/v1/chat/completions') },
            { key: ':method', rawValue: Buffer.from('POST') },
          ],
        },
      },
    });
    await stream.next();
    const started = Date.now();
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(p.stderr()).toContain('"completed":false');
    p.client.close();
  });

  it('listens on a unix socket', async () => {
    const socket = path.join(dir, 'processor.sock');
    const admin = `127.0.0.1:${await freePort()}`;
    const p = run(dir, ['--config', configFile, '--listen', `unix:${socket}`, '--admin', admin]);
    await waitFor(() => p.stdout.length > 0, 'the ready line');
    const client = new EnvoyClient(`unix:${socket}`);
    const result = await client.exchange({ path: '/nope', body: '{}' }, () => ({ status: 200 }));
    expect(result.status).toBe(404);
    client.close();
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });

  it('never logs credentials or bodies, even at debug level and on failures', async () => {
    const secretsDir = path.join(dir, 'secrets');
    fs.mkdirSync(path.join(secretsDir, 'openai'), { recursive: true });
    fs.writeFileSync(path.join(secretsDir, 'openai', 'apiKey'), 'BACKEND-SECRET-123\n');
    const file = path.join(dir, 'logged.json');
    const config = testConfig({
      backends: [
        { ...testConfig().backends[0], auth: { type: 'APIKey', secret: { secretName: 'openai', key: 'apiKey' } } },
        {
          ...testConfig().backends[0],
          name: 'broken',
          auth: { type: 'APIKey', secret: { secretName: 'absent', key: 'apiKey' } },
        },
      ],
    });
    config.routes[0].rules.push({
      models: [{ type: 'Exact', value: 'broken-model' }],
      backends: [{ backend: 'broken', weight: 1, priority: 0 }],
    });
    fs.writeFileSync(file, JSON.stringify(config));
    const listen = `127.0.0.1:${await freePort()}`;
    const p = run(dir, [
      '--config',
      file,
      '--secrets-dir',
      secretsDir,
      '--listen',
      listen,
      '--admin',
      `127.0.0.1:${await freePort()}`,
      '--log-level',
      'debug',
      '--poll-interval-ms',
      '100',
    ]);
    await waitFor(() => p.stdout.length > 0, 'the ready line');
    const client = new EnvoyClient(listen);
    const headers = { authorization: 'Bearer CLIENT-SECRET-456' };
    const ok = await client.exchange(
      {
        path: '/v1/chat/completions',
        body: '{"model":"gpt-4o","messages":[{"role":"user","content":"PROMPT-MARKER"}]}',
        headers,
      },
      (request) => {
        expect(request.headers.authorization).toBe('Bearer BACKEND-SECRET-123');
        return { status: 200, headers: { 'content-type': 'application/json' }, body: '{"answer":"RESPONSE-MARKER"}' };
      },
    );
    expect(ok.status).toBe(200);
    const failed = await client.exchange(
      { path: '/v1/chat/completions', body: '{"model":"broken-model","x":"PROMPT-MARKER"}', headers },
      () => ({ status: 200 }),
    );
    // The backend's credential cannot be read: a backend failure (503), logged without any secret.
    expect(failed.status).toBe(503);
    fs.writeFileSync(file, '{"not": "a config", "secret": "CONFIG-SECRET-789"}');
    await waitFor(() => p.stderr().includes('rejected'), 'the rejected reload to be logged');
    client.close();
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    const logs = p.stderr();
    expect(logs).toContain('backend authentication failed');
    for (const secret of [
      'BACKEND-SECRET-123',
      'CLIENT-SECRET-456',
      'PROMPT-MARKER',
      'RESPONSE-MARKER',
      'CONFIG-SECRET-789',
    ])
      expect(logs).not.toContain(secret);
  });

  it('refuses to start with an invalid config, naming the problem', async () => {
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ ...testConfig(), maxRequestBodyBytes: 0 }));
    const p = run(dir, [
      '--config',
      bad,
      '--listen',
      `127.0.0.1:${await freePort()}`,
      '--admin',
      `127.0.0.1:${await freePort()}`,
    ]);
    expect(await p.exited).toBe(1);
    expect(p.stderr()).toContain('maxRequestBodyBytes');
    expect(p.stdout).toHaveLength(0);
  });

  it('rejects bad flags with usage', async () => {
    const p = run(dir, ['--listen', 'nowhere']);
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toContain('--listen must be host:port or unix:/path');
    expect(p.stderr()).toContain('Usage: ai-gateway-processor');
  });
});
