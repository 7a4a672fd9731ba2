/** The config bundle format (packages/processor-config/src/bundle.ts): encode, verify, decode, bounds. */
import { randomBytes } from 'node:crypto';
import {
  bundlePartKey,
  decodeConfigBundle,
  encodeConfigBundle,
  IncompleteConfigBundleError,
  isConfigBundleManifest,
  parseConfigBundleManifest,
  ProcessorConfigError,
  type ConfigBundle,
} from '@ai-gateway-constructs/processor-config';
import { nodeBundleCodec } from '../../src/config/load';

const codec = nodeBundleCodec;

function reader(bundle: ConfigBundle, replace: Record<string, Uint8Array | undefined> = {}) {
  const files = new Map<string, Uint8Array | undefined>(bundle.parts.map((part) => [part.key, part.data]));
  for (const [key, data] of Object.entries(replace)) files.set(key, data);
  return (key: string) => files.get(key);
}

/** JSON that gzip cannot shrink much (random hex), so it splits into several parts. */
function incompressibleJson(bytes: number): Buffer {
  return Buffer.from(JSON.stringify({ noise: randomBytes(bytes / 2).toString('hex') }));
}

describe('config bundle', () => {
  it('round-trips a config split into parts, each key carrying the revision', () => {
    const json = incompressibleJson(40_000);
    const bundle = encodeConfigBundle(json, codec, { maxPartBytes: 8_000 });
    expect(bundle.parts.length).toBeGreaterThan(1);
    expect(bundle.manifest.parts.map((part) => part.key)).toEqual(
      bundle.parts.map((_, i) => bundlePartKey(bundle.manifest.revision, i, bundle.parts.length)),
    );
    expect(bundle.parts[0].key).toBe(`config.${bundle.manifest.revision.slice(0, 16)}-1-of-${bundle.parts.length}.gz`);
    const manifest = parseConfigBundleManifest(JSON.parse(JSON.stringify(bundle.manifest)));
    expect(Buffer.from(decodeConfigBundle(manifest, reader(bundle), codec)).equals(json)).toBe(true);
  });

  it('tells a manifest from a plain config', () => {
    const bundle = encodeConfigBundle(Buffer.from('{"version":"x"}'), codec, { maxPartBytes: 1000 });
    expect(isConfigBundleManifest(bundle.manifest)).toBe(true);
    expect(isConfigBundleManifest({ version: 'ai-gateway.v1', routes: [] })).toBe(false);
  });

  it('rejects a mixed set: the parts of another revision are missing under the names the manifest expects', () => {
    const json = incompressibleJson(30_000);
    const older = encodeConfigBundle(json, codec, { maxPartBytes: 8_000 });
    const newer = encodeConfigBundle(incompressibleJson(30_000), codec, { maxPartBytes: 8_000 });
    // The volume shows the new manifest and first part beside the old other parts.
    const files = new Map<string, Uint8Array>([
      [newer.parts[0].key, newer.parts[0].data],
      ...older.parts.slice(1).map((part) => [part.key, part.data] as const),
    ]);
    let thrown: unknown;
    try {
      decodeConfigBundle(newer.manifest, (key) => files.get(key), codec);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(IncompleteConfigBundleError);
    expect((thrown as IncompleteConfigBundleError).missing).toEqual(newer.parts.slice(1).map((part) => part.key));
    expect((thrown as Error).message).toContain(`config set ${newer.manifest.revision.slice(0, 16)} is incomplete`);
  });

  it('rejects a part whose bytes do not match its sha256, and parts that do not join to the revision', () => {
    const bundle = encodeConfigBundle(incompressibleJson(30_000), codec, { maxPartBytes: 8_000 });
    const tampered = Buffer.from(bundle.parts[1].data);
    tampered[10] ^= 0xff;
    expect(() =>
      decodeConfigBundle(bundle.manifest, reader(bundle, { [bundle.parts[1].key]: tampered }), codec),
    ).toThrow(new RegExp(`part "${bundle.parts[1].key}" does not match its sha256 in the manifest`));
    expect(() =>
      decodeConfigBundle(bundle.manifest, reader(bundle, { [bundle.parts[1].key]: tampered.subarray(1) }), codec),
    ).toThrow(/has 7999 bytes, the manifest says 8000/);
    // A manifest whose part checksums were edited to match swapped parts still fails on the whole.
    const swapped = {
      ...bundle.manifest,
      parts: bundle.manifest.parts.map((part, i) =>
        i === 0
          ? { ...part, sha256: bundle.manifest.parts[1].sha256 }
          : i === 1
            ? { ...part, sha256: bundle.manifest.parts[0].sha256 }
            : part,
      ),
    };
    const files = reader(bundle, {
      [bundle.parts[0].key]: bundle.parts[1].data,
      [bundle.parts[1].key]: bundle.parts[0].data,
    });
    expect(() => decodeConfigBundle(swapped, files, codec)).toThrow(/the joined parts do not match the revision/);
  });

  it('does not inflate past the bound: a gzip bomb is refused', () => {
    const bomb = Buffer.alloc(8 * 1024 * 1024, 0x20);
    const bundle = encodeConfigBundle(bomb, codec, { maxPartBytes: 1024 * 1024 });
    expect(bundle.manifest.parts.reduce((sum, part) => sum + part.bytes, 0)).toBeLessThan(64 * 1024);
    // The manifest understates the size: decompression itself stops one byte past what it declares.
    const lying = { ...bundle.manifest, configBytes: 1000 };
    expect(() => decodeConfigBundle(lying, reader(bundle), codec, 1024 * 1024)).toThrow(
      /cannot decompress \(.*\); at most 1001 bytes are decompressed/,
    );
    expect(() => decodeConfigBundle(bundle.manifest, reader(bundle), codec, 1024 * 1024)).toThrow(
      /declares 8388608 bytes of config, more than the 1048576 the processor decompresses/,
    );
    expect(() => parseConfigBundleManifest({ ...bundle.manifest, configBytes: 65 * 1024 * 1024 })).toThrow(
      /config.manifest.json configBytes: is more than the processor decompresses/,
    );
  });

  it('writes the same gzip header on every OS (byte 9: unknown): synth output does not depend on the machine', () => {
    const bundle = encodeConfigBundle(Buffer.from('{"version":"x"}'), codec, { maxPartBytes: 1024 });
    const gzip = bundle.parts[0].data;
    expect([gzip[0], gzip[1], gzip[9]]).toEqual([0x1f, 0x8b, 255]);
    expect(Buffer.from(decodeConfigBundle(bundle.manifest, reader(bundle), codec)).toString()).toBe('{"version":"x"}');
  });

  it('rejects a manifest whose part keys do not carry its revision and count', () => {
    const bundle = encodeConfigBundle(incompressibleJson(20_000), codec, { maxPartBytes: 8_000 });
    const renamed = {
      ...bundle.manifest,
      parts: bundle.manifest.parts.map((part, i) => (i === 1 ? { ...part, key: 'config.part2.gz' } : part)),
    };
    expect(() => parseConfigBundleManifest(renamed)).toThrow(ProcessorConfigError);
    expect(() => parseConfigBundleManifest(renamed)).toThrow(
      `config.manifest.json parts.1.key: must be "${bundle.parts[1].key}" ` +
        '(the revision, the part number and the part count)',
    );
    expect(() => parseConfigBundleManifest({ ...bundle.manifest, parts: [] })).toThrow(/parts/);
  });
});
