/**
 * How the processor config is stored: a plain `config.json` in one ConfigMap while it fits; gzip-compressed with a
 * manifest when it does not; split over several ConfigMaps mounted as one projected volume when even compressed it
 * outgrows one; refused past the parts' limit.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import { Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import {
  decodeConfigBundle,
  MANIFEST_KEY,
  parseConfigBundleManifest,
  type ConfigBundleCodec,
} from '@ai-gateway-constructs/processor-config';
import { AIRoute, ModelMatch } from '../lib';
import { CONFIG_HASH_ANNOTATION, MAX_CONFIG_PART_BYTES } from '../lib/processor';
import { gatewayFixture } from './support/fixtures';
import type { Manifest } from './support/manifests';
import { findAll, findOne, synthAll } from './support/synth';

const codec: ConfigBundleCodec = {
  gzip: (data) => zlib.gzipSync(data),
  gunzip: (data, maxBytes) => zlib.gunzipSync(data, { maxOutputLength: maxBytes }),
  sha256: (data) => createHash('sha256').update(data).digest('hex'),
};

/** A gateway with one route whose model override is `override` (the cheapest way to a config of a given size). */
function gatewayWithOverride(override?: string) {
  const fixture = gatewayFixture();
  new AIRoute(fixture.team, 'Route', {
    gateway: fixture.gateway,
    rules: [
      {
        models: [ModelMatch.exact('m')],
        backends: [{ backend: fixture.openai, ...(override !== undefined ? { modelNameOverride: override } : {}) }],
      },
    ],
  });
  return fixture;
}

type ConfigMapManifest = Manifest & {
  metadata: { labels?: Record<string, string> };
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
};

function configMaps(manifests: Manifest[]): ConfigMapManifest[] {
  return findAll(manifests, 'ConfigMap').filter((m) => m.metadata.name.startsWith('gw-processor-config'));
}

function processorPod(manifests: Manifest[]) {
  const deployment = findOne(manifests, 'Deployment', 'gw-processor');
  const pod = deployment.spec.template;
  const container = pod.spec.containers.find((c: { name: string }) => c.name === 'processor');
  return {
    annotation: pod.metadata.annotations[CONFIG_HASH_ANNOTATION] as string,
    configArg: container.args[container.args.indexOf('--config') + 1] as string,
    volume: pod.spec.volumes.find((v: { name: string }) => v.name === 'config'),
    mount: container.volumeMounts.find((m: { name: string }) => m.name === 'config'),
  };
}

/** What the processor would read from the volume: every key of every ConfigMap, decoded. */
function decodeVolume(maps: ConfigMapManifest[]): string {
  const files = new Map<string, Buffer>();
  for (const map of maps) {
    for (const [key, value] of Object.entries(map.binaryData ?? {})) files.set(key, Buffer.from(value, 'base64'));
  }
  const manifestJson = maps[0].data?.[MANIFEST_KEY];
  expect(manifestJson).toBeDefined();
  const manifest = parseConfigBundleManifest(JSON.parse(manifestJson!));
  return Buffer.from(decodeConfigBundle(manifest, (key) => files.get(key), codec)).toString('utf8');
}

/** Bytes a ConfigMap holds, as the API server counts them (data and decoded binaryData). */
function storedBytes(map: ConfigMapManifest): number {
  return (
    Object.entries(map.data ?? {}).reduce((sum, [k, v]) => sum + k.length + Buffer.byteLength(v), 0) +
    Object.entries(map.binaryData ?? {}).reduce((sum, [k, v]) => sum + k.length + Buffer.from(v, 'base64').length, 0)
  );
}

describe('processor config storage', () => {
  it('keeps a config that fits as a plain config.json in one ConfigMap, mounted as before', () => {
    const { app, gateway } = gatewayWithOverride();
    const manifests = synthAll(app);
    const maps = configMaps(manifests);
    expect(maps).toHaveLength(1);
    expect(maps[0].metadata.name).toBe('gw-processor-config');
    expect(Object.keys(maps[0].data!)).toEqual(['config.json']);
    expect(maps[0].binaryData).toBeUndefined();
    expect(maps[0].data!['config.json']).toBe(gateway.processor.configJson());
    const pod = processorPod(manifests);
    expect(pod.configArg).toBe('/etc/ai-gateway/config/config.json');
    expect(pod.volume).toEqual({ name: 'config', configMap: { name: 'gw-processor-config' } });
    expect(pod.mount).toEqual({ name: 'config', mountPath: '/etc/ai-gateway/config', readOnly: true });
    expect(pod.annotation).toBe(createHash('sha256').update(gateway.processor.configJson()).digest('hex').slice(0, 16));
  });

  it('compresses a config over 1 MiB into the same ConfigMap: a manifest and one gzip part', () => {
    const { app, gateway } = gatewayWithOverride('x'.repeat(1200 * 1024));
    const manifests = synthAll(app);
    const maps = configMaps(manifests);
    const json = gateway.processor.configJson();
    expect(Buffer.byteLength(json)).toBeGreaterThan(1024 * 1024);
    expect(maps).toHaveLength(1);
    expect(Object.keys(maps[0].data!)).toEqual([MANIFEST_KEY]);
    expect(Object.keys(maps[0].binaryData!)).toEqual([expect.stringMatching(/^config\.[0-9a-f]{16}-1-of-1\.gz$/)]);
    expect(storedBytes(maps[0])).toBeLessThan(64 * 1024);
    expect(decodeVolume(maps)).toBe(json);
    const pod = processorPod(manifests);
    expect(pod.configArg).toBe('/etc/ai-gateway/config/config.manifest.json');
    expect(pod.volume).toEqual({ name: 'config', configMap: { name: 'gw-processor-config' } });
    expect(pod.annotation).toBe(createHash('sha256').update(json).digest('hex').slice(0, 16));
  });

  it('splits a config that compressed still outgrows a ConfigMap over several, mounted as one projected volume', () => {
    // Random base64 compresses to about 3/4: three parts.
    const { app, gateway } = gatewayWithOverride(randomBytes(2_200_000).toString('base64'));
    const manifests = synthAll(app);
    const maps = configMaps(manifests);
    expect(maps.map((m) => m.metadata.name)).toEqual([
      'gw-processor-config',
      'gw-processor-config-2',
      'gw-processor-config-3',
    ]);
    for (const map of maps) {
      expect(map.metadata.namespace).toBe('platform');
      expect(map.metadata.labels).toEqual({
        'app.kubernetes.io/name': 'ai-gateway-processor',
        'app.kubernetes.io/instance': 'gw-processor',
      });
      expect(storedBytes(map)).toBeLessThanOrEqual(1024 * 1024);
      expect(Object.keys(map.binaryData!)).toHaveLength(1);
    }
    expect(Buffer.from(Object.values(maps[1].binaryData!)[0], 'base64').length).toBe(MAX_CONFIG_PART_BYTES);
    expect(decodeVolume(maps)).toBe(gateway.processor.configJson());
    const pod = processorPod(manifests);
    expect(pod.configArg).toBe('/etc/ai-gateway/config/config.manifest.json');
    expect(pod.volume).toEqual({
      name: 'config',
      projected: { sources: maps.map((m) => ({ configMap: { name: m.metadata.name } })) },
    });
  });

  it('synthesizes the parts of the final config when synthesized again after more routes attached', () => {
    const fixture = gatewayWithOverride(randomBytes(2_200_000).toString('base64'));
    expect(configMaps(synthAll(fixture.app))).toHaveLength(3);
    new AIRoute(fixture.team, 'Bigger', {
      gateway: fixture.gateway,
      rules: [
        {
          models: [ModelMatch.exact('n')],
          backends: [{ backend: fixture.openai, modelNameOverride: randomBytes(1_000_000).toString('base64') }],
        },
      ],
    });
    const maps = configMaps(synthAll(fixture.app));
    expect(maps).toHaveLength(4);
    expect(decodeVolume(maps)).toBe(fixture.gateway.processor.configJson());
    // Testing.synth of the chart alone renders the same objects.
    expect(configMaps(Testing.synth(fixture.platform) as Manifest[])).toEqual(maps);
  });

  it('refuses a part ConfigMap whose name another object of the app already uses', () => {
    const fixture = gatewayWithOverride(randomBytes(1_600_000).toString('base64'));
    new kplus.ConfigMap(fixture.platform, 'Mine', { metadata: { name: 'gw-processor-config-2' } });
    expect(() => synthAll(fixture.app)).toThrow(
      /platform\/Mine\/Resource: invalid metadata.name "gw-processor-config-2": ConfigMap "platform\/gw-processor-config-2" is also emitted by platform\/Gateway\/Processor\/ConfigPart2\/Resource/,
    );
  });

  it('refuses a config that even compressed outgrows the parts, naming the sizes and the limit', () => {
    const { app } = gatewayWithOverride(randomBytes(17_000_000).toString('base64'));
    expect(() => synthAll(app)).toThrow(
      /platform\/Gateway\/Processor: invalid processor config "\d+ bytes, \d+ compressed": exceeds what the processor's ConfigMaps hold \(16515072 compressed bytes in 16 ConfigMaps\); spread the routes over several gateways/,
    );
  });

  it('refuses a config larger than the processor decompresses', () => {
    const { app } = gatewayWithOverride('x'.repeat(64 * 1024 * 1024));
    expect(() => synthAll(app)).toThrow(
      /platform\/Gateway\/Processor: invalid processor config "\d+ bytes": exceeds what the processor's ConfigMaps hold \(67108864 bytes of config, the most the processor loads\)/,
    );
  });
});
