/**
 * The processor config when it outgrows one ConfigMap: the compact `config.json` gzip-compressed, cut into parts
 * that several ConfigMaps carry, described by a manifest (`config.manifest.json`).
 *
 * Why this shape. A ConfigMap holds at most 1 MiB, and the config is about 750 bytes per route, so a plain
 * `config.json` stops at about 1,400 routes. The config is very repetitive JSON (every route repeats the same keys,
 * endpoints and backend shapes), so gzip shrinks it by 10-20x: 10,000 routes fit one ConfigMap compressed. Larger
 * gateways split the compressed bytes over several ConfigMaps mounted as one projected volume. Small configs stay a
 * plain `config.json` (what people and tools read), so only large gateways pay for the indirection.
 *
 * Why the revision and checksums. Kubelet refreshes the ConfigMaps of a projected volume from its own cache of each,
 * so right after an update the volume may show the manifest of one revision beside parts of another. Every part's
 * key carries the revision (the sha256 of the whole compressed config), so a part of another revision is simply
 * missing under the name the manifest expects: the processor then keeps its last good config and retries
 * ({@link IncompleteConfigBundleError}). Each part and the whole are checked against their sha256, and the
 * decompressed size is bounded ({@link MAX_DECODED_CONFIG_BYTES}) before anything is parsed.
 *
 * Pure: gzip and sha256 come from the caller ({@link ConfigBundleCodec}; Node's zlib and crypto on both sides), so
 * this module stays free of Node-only imports like the rest of the contract.
 */
import { z } from 'zod';
import { ProcessorConfigError } from './schema';

/** The ConfigMap key (and file) of a config small enough to be stored plain. */
export const PLAIN_CONFIG_KEY = 'config.json';
/** The ConfigMap key (and file) of a bundle's manifest. */
export const MANIFEST_KEY = 'config.manifest.json';
export const BUNDLE_FORMAT = 'ai-gateway.config-bundle.v1';
/**
 * The largest config the processor decompresses (64 MiB of JSON, about 90,000 routes): a bundle claiming or
 * inflating to more is refused before it is parsed.
 */
export const MAX_DECODED_CONFIG_BYTES = 64 * 1024 * 1024;
/** Most parts a bundle may have (each part is one ConfigMap). */
export const MAX_BUNDLE_PARTS = 16;
/** Hex digits of the revision that part keys carry. */
const KEY_REVISION_DIGITS = 16;

/** gzip and sha256, from the caller's platform. */
export interface ConfigBundleCodec {
  gzip(data: Uint8Array): Uint8Array;
  /** Decompresses gzip; must throw once the output would exceed `maxBytes`, without producing more. */
  gunzip(data: Uint8Array, maxBytes: number): Uint8Array;
  /** Lower-case hex sha256. */
  sha256(data: Uint8Array): string;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

const partSchema = z
  .object({
    key: z.string().regex(/^[-._a-zA-Z0-9]{1,253}$/, 'must be a ConfigMap key'),
    bytes: z.number().int().min(1),
    sha256: z.string().regex(SHA256_HEX, 'must be a lower-case hex sha256'),
  })
  .strict();

export const configBundleManifestSchema = z
  .object({
    format: z.literal(BUNDLE_FORMAT),
    /** sha256 of the whole compressed config (the parts joined in order). */
    revision: z.string().regex(SHA256_HEX, 'must be a lower-case hex sha256'),
    encoding: z.literal('gzip'),
    /** Size of the decompressed `config.json`. */
    configBytes: z.number().int().min(1).max(MAX_DECODED_CONFIG_BYTES, 'is more than the processor decompresses'),
    parts: z.array(partSchema).min(1).max(MAX_BUNDLE_PARTS),
  })
  .strict()
  .superRefine((manifest, ctx) => {
    manifest.parts.forEach((part, i) => {
      const expected = bundlePartKey(manifest.revision, i, manifest.parts.length);
      if (part.key !== expected) {
        ctx.addIssue({
          code: 'custom',
          path: ['parts', i, 'key'],
          message: `must be "${expected}" (the revision, the part number and the part count)`,
        });
      }
    });
  });

export type ConfigBundleManifest = z.infer<typeof configBundleManifestSchema>;

/** One part of a bundle: its ConfigMap key and its bytes. */
export interface ConfigBundlePart {
  readonly key: string;
  readonly data: Uint8Array;
}

export interface ConfigBundle {
  readonly manifest: ConfigBundleManifest;
  readonly parts: readonly ConfigBundlePart[];
}

/**
 * A bundle whose manifest names parts that are not there (yet): during a volume update the manifest and the parts
 * may come from different revisions. The processor retries; `missing` are the absent keys.
 */
export class IncompleteConfigBundleError extends ProcessorConfigError {
  constructor(
    readonly revision: string,
    readonly missing: readonly string[],
  ) {
    super([
      `config set ${revision.slice(0, KEY_REVISION_DIGITS)} is incomplete: ` +
        `${missing.map((key) => JSON.stringify(key)).join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing ` +
        `(its ConfigMaps may still be updating)`,
    ]);
    this.name = 'IncompleteConfigBundleError';
  }
}

/** The key of part `index` (0-based) of `count`, e.g. `config.3f2a...-2-of-3.gz`. */
export function bundlePartKey(revision: string, index: number, count: number): string {
  return `config.${revision.slice(0, KEY_REVISION_DIGITS)}-${index + 1}-of-${count}.gz`;
}

/** Compresses the compact config JSON and cuts it into parts of at most `maxPartBytes`. */
export function encodeConfigBundle(
  json: Uint8Array,
  codec: ConfigBundleCodec,
  options: { readonly maxPartBytes: number },
): ConfigBundle {
  if (!Number.isInteger(options.maxPartBytes) || options.maxPartBytes < 1)
    throw new RangeError(`maxPartBytes must be a positive integer, not ${options.maxPartBytes}`);
  const compressed = withPortableGzipHeader(codec.gzip(json));
  const revision = codec.sha256(compressed);
  const count = Math.max(1, Math.ceil(compressed.length / options.maxPartBytes));
  const parts: ConfigBundlePart[] = [];
  for (let i = 0; i < count; i++) {
    const data = compressed.subarray(
      i * options.maxPartBytes,
      Math.min(compressed.length, (i + 1) * options.maxPartBytes),
    );
    parts.push({ key: bundlePartKey(revision, i, count), data });
  }
  return {
    manifest: {
      format: BUNDLE_FORMAT,
      revision,
      encoding: 'gzip',
      configBytes: json.length,
      parts: parts.map((part) => ({ key: part.key, bytes: part.data.length, sha256: codec.sha256(part.data) })),
    },
    parts,
  };
}

/** Whether a parsed JSON document is a bundle manifest (rather than a plain config). */
export function isConfigBundleManifest(document: unknown): boolean {
  return typeof document === 'object' && document !== null && 'format' in document && !('version' in document);
}

/** Validates a parsed manifest; throws ProcessorConfigError naming every problem. */
export function parseConfigBundleManifest(document: unknown): ConfigBundleManifest {
  const result = configBundleManifestSchema.safeParse(document);
  if (result.success) return result.data;
  throw new ProcessorConfigError(
    result.error.issues.map(
      (issue) => `${MANIFEST_KEY} ${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`,
    ),
  );
}

/**
 * The `config.json` bytes of a bundle, after checking every part and the whole against the manifest.
 * `readPart` returns a part's bytes, or undefined when the key is absent. Throws IncompleteConfigBundleError when
 * parts are missing, ProcessorConfigError when a part or the whole does not match, or the output would exceed
 * `maxConfigBytes` (default {@link MAX_DECODED_CONFIG_BYTES}).
 */
export function decodeConfigBundle(
  manifest: ConfigBundleManifest,
  readPart: (key: string) => Uint8Array | undefined,
  codec: ConfigBundleCodec,
  maxConfigBytes: number = MAX_DECODED_CONFIG_BYTES,
): Uint8Array {
  const revision = manifest.revision.slice(0, KEY_REVISION_DIGITS);
  const found = manifest.parts.map((part) => ({ part, data: readPart(part.key) }));
  const missing = found.filter((entry) => entry.data === undefined).map((entry) => entry.part.key);
  if (missing.length > 0) throw new IncompleteConfigBundleError(manifest.revision, missing);
  const problems: string[] = [];
  for (const { part, data } of found) {
    if (data!.length !== part.bytes) {
      problems.push(`part "${part.key}" has ${data!.length} bytes, the manifest says ${part.bytes}`);
    } else if (codec.sha256(data!) !== part.sha256) {
      problems.push(`part "${part.key}" does not match its sha256 in the manifest`);
    }
  }
  if (problems.length > 0) throw new ProcessorConfigError(problems.map((p) => `config set ${revision}: ${p}`));
  const compressed = concat(found.map((entry) => entry.data!));
  if (codec.sha256(compressed) !== manifest.revision) {
    throw new ProcessorConfigError([`config set ${revision}: the joined parts do not match the revision`]);
  }
  if (manifest.configBytes > maxConfigBytes) {
    throw new ProcessorConfigError([
      `config set ${revision}: declares ${manifest.configBytes} bytes of config, more than the ${maxConfigBytes} ` +
        `the processor decompresses`,
    ]);
  }
  // One byte more than declared is enough to tell a config that decompresses to more than its manifest says.
  const bound = Math.min(manifest.configBytes + 1, maxConfigBytes);
  let json: Uint8Array;
  try {
    json = codec.gunzip(compressed, bound);
  } catch (error) {
    throw new ProcessorConfigError([
      `config set ${revision}: cannot decompress (${(error as Error).message}); ` +
        `at most ${bound} bytes are decompressed (the manifest's size, plus one)`,
    ]);
  }
  if (json.length !== manifest.configBytes) {
    throw new ProcessorConfigError([
      `config set ${revision}: decompresses to ${json.length} bytes, the manifest says ${manifest.configBytes}`,
    ]);
  }
  return json;
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** gzip's header byte 9: the OS that compressed (3 on Linux, 19 on macOS, 10 on Windows), `255` for unknown. */
const GZIP_OS_BYTE = 9;
const GZIP_OS_UNKNOWN = 255;

/**
 * The same bytes on every machine as far as gzip's header goes: the OS byte would otherwise make a laptop's synth
 * and CI's differ (revision, part keys and binaryData), and Node writes no modification time.
 */
function withPortableGzipHeader(gzip: Uint8Array): Uint8Array {
  if (gzip.length <= GZIP_OS_BYTE || gzip[0] !== 0x1f || gzip[1] !== 0x8b) return gzip;
  gzip[GZIP_OS_BYTE] = GZIP_OS_UNKNOWN;
  return gzip;
}
