/** Hot reload of the config file and the secrets directory, including Kubernetes' `..data` symlink swaps. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ProcessorApp } from '../../src/app';
import type { ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import { silentLogger } from '../../src/log';
import { EnvoyClient, type Upstream } from '../support/envoy-client';
import { openAIBackend, route, startTestProcessor, testConfig, type TestProcessor } from '../support/processor-harness';

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const echoAuth: Upstream = (request) => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    seen: request.headers.authorization ?? null,
    backend: request.headers['x-ai-gateway-backend'],
  }),
});

async function ask(client: EnvoyClient, model: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const result = await client.exchange({ path: '/v1/chat/completions', body: JSON.stringify({ model }) }, echoAuth);
  return { status: result.status, body: JSON.parse(result.body.toString()) as Record<string, unknown> };
}

async function rejectedReloads(app: ProcessorApp): Promise<number> {
  const metric = await app.metrics.configReloads.get();
  return metric.values.find((v) => v.labels.result === 'rejected')?.value ?? 0;
}

describe('hot reload', () => {
  let processor: TestProcessor;
  const withAuth = (): ProcessorConfig =>
    testConfig({
      backends: [
        openAIBackend('openai', { auth: { type: 'BearerToken', secret: { secretName: 'token', key: 'value' } } }),
      ],
    });

  beforeEach(async () => {
    processor = await startTestProcessor(withAuth(), { secrets: { token: { value: 'first' } }, pollIntervalMs: 100 });
  });
  afterEach(() => processor.close());

  it('serves a new model after the config file changes', async () => {
    expect((await ask(processor.client, 'gpt-5')).status).toBe(404);
    const next = withAuth();
    next.routes = [route(['gpt-4o', 'gpt-5'], [{ backend: 'openai', weight: 1, priority: 0 }])];
    processor.writeConfig(next);
    await eventually(async () => (await ask(processor.client, 'gpt-5')).status === 200);
  });

  it('rejects an invalid config, keeps serving the last good one and counts the failure', async () => {
    fs.writeFileSync(processor.configFile, '{"version":"ai-gateway.v1", "routes": [');
    await eventually(async () => (await rejectedReloads(processor.app)) === 1);
    expect((await ask(processor.client, 'gpt-4o')).status).toBe(200);

    const invalid = withAuth() as unknown as Record<string, unknown>;
    invalid.maxRequestBodyBytes = -1;
    fs.writeFileSync(processor.configFile, JSON.stringify(invalid));
    await eventually(async () => (await rejectedReloads(processor.app)) === 2);
    expect((await ask(processor.client, 'gpt-4o')).status).toBe(200);

    const badCel = withAuth();
    badCel.costs = [{ metadataKey: 'c', type: 'CEL', expression: 'input_tokens +' }];
    processor.writeConfig(badCel);
    await eventually(async () => (await rejectedReloads(processor.app)) === 3);

    // A good config afterwards is taken.
    const good = withAuth();
    good.routes = [route(['fresh'], [{ backend: 'openai', weight: 1, priority: 0 }])];
    processor.writeConfig(good);
    await eventually(async () => (await ask(processor.client, 'fresh')).status === 200);
  });

  it('picks up a rotated credential file', async () => {
    expect((await ask(processor.client, 'gpt-4o')).body.seen).toBe('Bearer first');
    processor.writeSecret('token', 'value', 'second\n');
    await eventually(async () => (await ask(processor.client, 'gpt-4o')).body.seen === 'Bearer second');
  });
});

describe('reload without polling', () => {
  it('reacts to file system events alone', async () => {
    const processor = await startTestProcessor(testConfig(), { pollIntervalMs: 600_000 });
    try {
      expect((await ask(processor.client, 'gpt-5')).status).toBe(404);
      processor.writeConfig(
        testConfig({ routes: [route(['gpt-5'], [{ backend: 'openai', weight: 1, priority: 0 }])] }),
      );
      await eventually(async () => (await ask(processor.client, 'gpt-5')).status === 200);
    } finally {
      await processor.close();
    }
  });
});

describe('Kubernetes volume updates (..data symlink swap)', () => {
  let dir: string;
  let app: ProcessorApp;
  let client: EnvoyClient;

  /**
   * Lays out a volume like the kubelet: `<dir>/..<version>/<files>`, `..data -> ..<version>`, `<file> ->
   * ..data/<file>`.
   */
  function writeVolume(volume: string, version: string, files: Record<string, string>): void {
    const versionDir = path.join(volume, `..${version}`);
    fs.mkdirSync(versionDir, { recursive: true });
    for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(versionDir, name), content);
    const tmp = path.join(volume, '..data_tmp');
    fs.symlinkSync(`..${version}`, tmp);
    fs.renameSync(tmp, path.join(volume, '..data'));
    for (const name of Object.keys(files)) {
      const link = path.join(volume, name);
      if (!fs.existsSync(link)) fs.symlinkSync(path.join('..data', name), link);
    }
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-volume-'));
    const config = testConfig({
      backends: [
        openAIBackend('openai', { auth: { type: 'APIKey', secret: { secretName: 'openai', key: 'apiKey' } } }),
      ],
    });
    writeVolume(path.join(dir, 'config'), 'v1', { 'config.json': JSON.stringify(config) });
    writeVolume(path.join(dir, 'secrets', 'openai'), 'v1', { apiKey: 'key-one' });
    app = new ProcessorApp({
      config: path.join(dir, 'config', 'config.json'),
      secretsDir: path.join(dir, 'secrets'),
      listen: '127.0.0.1:0',
      admin: undefined,
      pollIntervalMs: 100,
      logger: silentLogger,
    });
    await app.start();
    client = new EnvoyClient(`127.0.0.1:${app.listenPort}`);
  });
  afterAll(async () => {
    client.close();
    await app.drain(500);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('follows swaps of both the config and the secret volumes', async () => {
    expect((await ask(client, 'gpt-4o')).body.seen).toBe('Bearer key-one');
    writeVolume(path.join(dir, 'secrets', 'openai'), 'v2', { apiKey: 'key-two' });
    await eventually(async () => (await ask(client, 'gpt-4o')).body.seen === 'Bearer key-two');
    const next = testConfig({
      backends: [
        openAIBackend('renamed', { auth: { type: 'APIKey', secret: { secretName: 'openai', key: 'apiKey' } } }),
      ],
      routes: [route(['gpt-4o'], [{ backend: 'renamed', weight: 1, priority: 0 }])],
    });
    writeVolume(path.join(dir, 'config'), 'v2', { 'config.json': JSON.stringify(next) });
    await eventually(async () => (await ask(client, 'gpt-4o')).body.backend === 'renamed');
  });
});
