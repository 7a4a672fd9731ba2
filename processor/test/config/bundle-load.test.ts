/**
 * Loading a config bundle (manifest + gzip parts in one volume): a complete set loads, a half-updated set keeps the
 * last good config until its parts arrive, and startup waits a bounded time for a complete set.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  encodeConfigBundle,
  IncompleteConfigBundleError,
  MANIFEST_KEY,
  type ConfigBundle,
  type ProcessorConfig,
} from '@ai-gateway-constructs/processor-config';
import { ProcessorApp } from '../../src/app';
import { ConfigSetTimeoutError, nodeBundleCodec, readConfigFile, waitForConfigFile } from '../../src/config/load';
import type { Logger } from '../../src/log';
import { EnvoyClient, type Upstream } from '../support/envoy-client';
import { route, testConfig } from '../support/processor-harness';

/** Small parts, so even a test config is split into several. */
function bundleOf(config: ProcessorConfig): ConfigBundle {
  const bundle = encodeConfigBundle(Buffer.from(JSON.stringify(config)), nodeBundleCodec, { maxPartBytes: 120 });
  expect(bundle.parts.length).toBeGreaterThan(2);
  return bundle;
}

function writeParts(dir: string, bundle: ConfigBundle, which: (index: number) => boolean = () => true): void {
  bundle.parts.forEach((part, i) => {
    if (which(i)) fs.writeFileSync(path.join(dir, part.key), part.data);
  });
}

function writeManifest(dir: string, bundle: ConfigBundle): void {
  fs.writeFileSync(path.join(dir, MANIFEST_KEY), JSON.stringify(bundle.manifest));
}

const serving = (models: string[]): ProcessorConfig =>
  testConfig({ routes: [route(models, [{ backend: 'openai', weight: 1, priority: 0 }])] });

const answer: Upstream = () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: '{}' });

async function status(client: EnvoyClient, model: string): Promise<number> {
  return (await client.exchange({ path: '/v1/chat/completions', body: JSON.stringify({ model }) }, answer)).status;
}

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('config bundle load', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-bundle-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('loads a complete set named by --config, the same config as plain JSON', () => {
    const config = serving(['gpt-4o', 'gpt-5']);
    const bundle = bundleOf(config);
    writeManifest(dir, bundle);
    writeParts(dir, bundle);
    expect(readConfigFile(path.join(dir, MANIFEST_KEY))).toEqual(readConfigFileFromJson(config));
  });

  it('reports the missing parts of an incomplete set, and a set whose parts were altered', () => {
    const bundle = bundleOf(serving(['gpt-4o']));
    writeManifest(dir, bundle);
    writeParts(dir, bundle, (i) => i !== 1);
    expect(() => readConfigFile(path.join(dir, MANIFEST_KEY))).toThrow(IncompleteConfigBundleError);
    fs.writeFileSync(path.join(dir, bundle.parts[1].key), Buffer.from(bundle.parts[0].data));
    expect(() => readConfigFile(path.join(dir, MANIFEST_KEY))).toThrow(/does not match its sha256 in the manifest/);
  });

  it('keeps the last good config while a hot reload sees a half-updated set, then loads it once complete', async () => {
    const logged: string[] = [];
    const logger: Logger = {
      error: (_fields, message) => logged.push(message),
      warn: (_fields, message) => logged.push(message),
      info: (_fields, message) => logged.push(message),
      debug: () => undefined,
    };
    const first = bundleOf(serving(['old-model']));
    writeManifest(dir, first);
    writeParts(dir, first);
    const app = new ProcessorApp({
      config: path.join(dir, MANIFEST_KEY),
      secretsDir: undefined,
      listen: '127.0.0.1:0',
      admin: undefined,
      pollIntervalMs: 50,
      logger,
    });
    await app.start();
    const client = new EnvoyClient(`127.0.0.1:${app.listenPort}`);
    try {
      expect(await status(client, 'old-model')).toBe(200);
      // Kubelet refreshed the manifest's ConfigMap (with the first part) before the others.
      const next = bundleOf(serving(['new-model']));
      writeParts(dir, next, (i) => i === 0);
      writeManifest(dir, next);
      await eventually(() => app.isWaitingForConfigSet);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await status(client, 'old-model')).toBe(200);
      expect(await status(client, 'new-model')).toBe(404);
      expect(logged.filter((m) => m.startsWith('waiting for a complete config set'))).toHaveLength(1);
      expect(logged).not.toContain('new configuration rejected; the last good one keeps serving');
      // A secret changes meanwhile: that reload reads the config again too, and keeps waiting for the set.
      expect(app.reload({ config: false, secrets: true })).toBe(false);
      expect(app.isWaitingForConfigSet).toBe(true);
      expect(await status(client, 'old-model')).toBe(200);
      // The other ConfigMaps arrive: the retry loads the set without any further change to the manifest.
      writeParts(dir, next, (i) => i > 0);
      await eventually(async () => (await status(client, 'new-model')) === 200);
      expect(app.isWaitingForConfigSet).toBe(false);
      expect(await status(client, 'old-model')).toBe(404);
    } finally {
      client.close();
      await app.drain(1000);
    }
  });

  it('waits at startup for the parts of a set, and loads it once they are there', async () => {
    const bundle = bundleOf(serving(['gpt-4o']));
    writeManifest(dir, bundle);
    writeParts(dir, bundle, (i) => i === 0);
    const waits: IncompleteConfigBundleError[] = [];
    setTimeout(() => writeParts(dir, bundle), 150);
    const config = await waitForConfigFile(path.join(dir, MANIFEST_KEY), {
      timeoutMs: 5_000,
      retryMs: 20,
      onWaiting: (error) => waits.push(error),
    });
    expect(config.routes[0].rules[0].models).toEqual([{ type: 'Exact', value: 'gpt-4o' }]);
    expect(waits).toHaveLength(1);
  });

  it('fails at startup with a specific error when the set stays incomplete', async () => {
    const bundle = bundleOf(serving(['gpt-4o']));
    writeManifest(dir, bundle);
    writeParts(dir, bundle, (i) => i !== 2);
    const file = path.join(dir, MANIFEST_KEY);
    const started = Date.now();
    const waiting = waitForConfigFile(file, { timeoutMs: 200, retryMs: 20 });
    await expect(waiting).rejects.toBeInstanceOf(ConfigSetTimeoutError);
    await expect(waiting).rejects.toThrow(
      `${file}: no complete config set within 200 ms; config set ${bundle.manifest.revision.slice(0, 16)} is ` +
        `incomplete: "${bundle.parts[2].key}" is missing`,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('does not wait for a set that is complete but invalid', async () => {
    const bundle = bundleOf({ ...serving(['gpt-4o']), maxRequestBodyBytes: -1 });
    writeManifest(dir, bundle);
    writeParts(dir, bundle);
    await expect(waitForConfigFile(path.join(dir, MANIFEST_KEY), { timeoutMs: 10_000, retryMs: 20 })).rejects.toThrow(
      /maxRequestBodyBytes/,
    );
  });
});

function readConfigFileFromJson(config: ProcessorConfig): ProcessorConfig {
  const plain = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-plain-'));
  try {
    fs.writeFileSync(path.join(plain, 'config.json'), JSON.stringify(config));
    return readConfigFile(path.join(plain, 'config.json'));
  } finally {
    fs.rmSync(plain, { recursive: true, force: true });
  }
}
