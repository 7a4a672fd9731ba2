import { ApiObject, Chart, Testing } from 'cdk8s';
import { AIGateway, AIRoute, ArgoCd, ModelMatch, ProviderBackend, Credentials } from '../lib';
import { findAll, synthAll } from './support/synth';

const WAVE = 'argocd.argoproj.io/sync-wave';
const SYNC_OPTIONS = 'argocd.argoproj.io/sync-options';

function platform() {
  const app = Testing.app();
  const chart = new Chart(app, 'platform', { namespace: 'platform' });
  const gateway = new AIGateway(chart, 'Gateway', {
    name: 'gw',
    processor: { metricsNamespace: 'monitoring' },
    observability: { prometheus: true },
  });
  const openai = ProviderBackend.openAI(chart, 'OpenAI', {
    credentials: Credentials.apiKey({ secretName: 'openai', key: 'api-key' }),
  });
  new AIRoute(chart, 'Chat', {
    gateway,
    rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
  });
  return { app, chart };
}

const waveOf = (manifest: any): string | undefined => manifest.metadata.annotations?.[WAVE];

describe('ArgoCd.annotateSyncWaves', () => {
  it('puts what others refer to first and the policies that target them last', () => {
    const { app } = platform();
    const result = ArgoCd.annotateSyncWaves(app);
    const manifests = synthAll(app);
    expect(result.annotated).toBe(manifests.filter((m) => waveOf(m) !== undefined).length);
    const byKind = new Map<string, Set<string | undefined>>();
    for (const manifest of manifests) {
      const waves = byKind.get(manifest.kind) ?? new Set();
      waves.add(waveOf(manifest));
      byKind.set(manifest.kind, waves);
    }
    const wave = (kind: string): number => {
      const waves = [...(byKind.get(kind) ?? [])];
      expect(waves).toHaveLength(1);
      return Number(waves[0]);
    };
    expect(wave('ConfigMap')).toBeLessThan(wave('Deployment'));
    expect(wave('ServiceAccount')).toBeLessThan(wave('Deployment'));
    expect(wave('Gateway')).toBeLessThan(wave('EnvoyExtensionPolicy'));
    expect(wave('Backend')).toBeLessThan(wave('BackendTrafficPolicy'));
    expect(wave('HTTPRoute')).toBeLessThan(wave('EnvoyExtensionPolicy'));
    expect(wave('HTTPRoute')).toBeLessThan(wave('PodMonitor'));
    expect(wave('Service')).toBeLessThan(wave('ClientTrafficPolicy'));
    // Every object this library emits has a wave.
    expect(manifests.filter((m) => waveOf(m) === undefined).map((m) => m.kind)).toEqual([]);
  });

  it('keeps a wave the user set, and leaves kinds it does not know alone', () => {
    const { app, chart } = platform();
    new ApiObject(chart, 'Early', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'early', annotations: { [WAVE]: '-5' } },
    });
    new ApiObject(chart, 'Custom', { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } });
    const result = ArgoCd.annotateSyncWaves(app);
    expect(result.skipped).toBe(2);
    // An unknown kind has no schema to check it against: synthesized without the schema check.
    const manifests = Testing.synth(chart);
    expect(waveOf(manifests.find((m) => m.metadata.name === 'early'))).toBe('-5');
    expect(waveOf(manifests.find((m) => m.kind === 'Widget'))).toBeUndefined();
  });

  it("marks the processor's config ConfigMaps for server-side apply, with or without sync waves", () => {
    const { app } = platform();
    const configMaps = findAll(synthAll(app), 'ConfigMap').filter((m: any) =>
      Object.keys(m.data ?? {})
        .concat(Object.keys(m.binaryData ?? {}))
        .some((key) => key.startsWith('config')),
    );
    expect(configMaps.length).toBeGreaterThan(0);
    for (const configMap of configMaps as any[]) {
      expect(configMap.metadata.annotations?.[SYNC_OPTIONS]).toBe('ServerSideApply=true');
    }
  });
});
