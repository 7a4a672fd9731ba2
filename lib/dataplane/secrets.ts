/**
 * Local stand-ins for the Kubernetes Secrets a processor Deployment mounts. A Secret key is looked up, in this
 * order, in `<dir>/<namespace>/<secretName>/<key>`, `<dir>/<secretName>/<key>` and the environment variable
 * `AI_GATEWAY_SECRET_<SECRETNAME>_<KEY>` (upper-case, every other character than A-Z and 0-9 as `_`).
 *
 * Errors name the Secret, the key and every place looked, never a value.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Kubernetes caps a Secret at 1 MiB; a larger local file is not a Secret key. */
export const MAX_SECRET_BYTES = 1024 * 1024;

export const SECRET_ENV_PREFIX = 'AI_GATEWAY_SECRET_';

export interface SecretSource {
  /** The `--secrets <dir>` folder. */
  readonly dir?: string;
  /** Environment to read `AI_GATEWAY_SECRET_*` variables from. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export interface SecretKeyId {
  readonly namespace: string;
  readonly secretName: string;
  readonly key: string;
}

export class MissingSecretError extends Error {
  constructor(
    readonly secret: SecretKeyId,
    readonly places: readonly string[],
    /** Who needs the key, e.g. `processor Deployment ai-platform/ai-gateway-processor`. */
    readonly neededBy?: string,
  ) {
    super(
      `Secret ${secret.namespace}/${secret.secretName} key "${secret.key}" is not available locally` +
        `${neededBy ? ` (needed by ${neededBy})` : ''}. Looked in:\n  ${places.join('\n  ')}\n` +
        `Provide it as a file with --secrets <dir>, or as the environment variable ` +
        `${secretEnvName(secret.secretName, secret.key)}.`,
    );
    this.name = 'MissingSecretError';
  }
}

/** A Secret name or key that cannot be a path segment (it would escape the secrets folder). */
export class InvalidSecretNameError extends Error {
  constructor(what: string, value: string) {
    super(
      `${what} ${JSON.stringify(value)} is not a valid Secret ${what === 'key' ? 'key' : 'name'} ` +
        `(it must be one path segment of letters, digits, "-", "_" and ".")`,
    );
    this.name = 'InvalidSecretNameError';
  }
}

/** `AI_GATEWAY_SECRET_<SECRETNAME>_<KEY>`: upper-case, anything but A-Z and 0-9 becomes `_`. */
export function secretEnvName(secretName: string, key: string): string {
  const part = (s: string) => s.toUpperCase().replace(/[^A-Z0-9]/g, '_');
  return `${SECRET_ENV_PREFIX}${part(secretName)}_${part(key)}`;
}

function checkSegment(what: 'namespace' | 'name' | 'key', value: string): void {
  if (!/^[-._a-zA-Z0-9]+$/.test(value) || value === '.' || value === '..')
    throw new InvalidSecretNameError(what, value);
}

type Candidate = { kind: 'file'; file: string } | { kind: 'env'; name: string };

function candidates(id: SecretKeyId, source: SecretSource): Candidate[] {
  const out: Candidate[] = [];
  if (source.dir !== undefined) {
    out.push({ kind: 'file', file: path.join(source.dir, id.namespace, id.secretName, id.key) });
    out.push({ kind: 'file', file: path.join(source.dir, id.secretName, id.key) });
  }
  out.push({ kind: 'env', name: secretEnvName(id.secretName, id.key) });
  return out;
}

function describe(candidate: Candidate): string {
  return candidate.kind === 'file' ? `file ${candidate.file}` : `environment variable ${candidate.name}`;
}

/** Every place `readSecretKey` looks, in order (for messages and help texts). */
export function secretPlaces(id: SecretKeyId, source: SecretSource): string[] {
  return candidates(id, source).map(describe);
}

function readBoundedFile(file: string): Buffer | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    return undefined;
  }
  if (!stat.isFile()) return undefined;
  if (stat.size > MAX_SECRET_BYTES) {
    throw new Error(`${file} is ${stat.size} bytes; a Secret holds at most ${MAX_SECRET_BYTES} bytes`);
  }
  return fs.readFileSync(file);
}

/** Where a key was found (for logs: never the value). */
export interface FoundSecretKey {
  readonly value: Buffer;
  readonly from: string;
}

/** Reads one Secret key from the local sources; throws `MissingSecretError` naming every place looked. */
export function readSecretKey(id: SecretKeyId, source: SecretSource, neededBy?: string): FoundSecretKey {
  checkSegment('namespace', id.namespace);
  checkSegment('name', id.secretName);
  checkSegment('key', id.key);
  const env = source.env ?? {};
  const list = candidates(id, source);
  for (const candidate of list) {
    if (candidate.kind === 'file') {
      const content = readBoundedFile(candidate.file);
      if (content !== undefined) return { value: content, from: describe(candidate) };
    } else {
      const value = env[candidate.name];
      if (value !== undefined && value !== '') return { value: Buffer.from(value, 'utf8'), from: describe(candidate) };
    }
  }
  throw new MissingSecretError(id, list.map(describe), neededBy);
}

/** A `{ secretName, key }` reference in a processor config (the shape of its `secretKeyRefSchema`). */
export interface ConfigSecretRef {
  readonly secretName: string;
  readonly key: string;
}

/**
 * Every distinct `{ secretName, key }` object in a processor `config.json`, wherever the schema puts it (API keys,
 * AWS credential files, GCP service-account keys, ...), in document order.
 */
export function configSecretRefs(configJson: string): ConfigSecretRef[] {
  const seen = new Map<string, ConfigSecretRef>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const record = node as Record<string, unknown>;
    const keys = Object.keys(record);
    if (keys.length === 2 && typeof record.secretName === 'string' && typeof record.key === 'string') {
      const id = `${record.secretName}/${record.key}`;
      if (!seen.has(id)) seen.set(id, { secretName: record.secretName, key: record.key });
      return;
    }
    for (const value of Object.values(record)) visit(value);
  };
  visit(JSON.parse(configJson));
  return [...seen.values()];
}

/**
 * Every key of one Secret from the `--secrets` folder, `<dir>/<namespace>/<secretName>/` (else `<dir>/<secretName>/`):
 * each regular file is a key (file name) and its value (content). Undefined when there is no such folder (or no
 * `dir`); environment variables cannot list a Secret's keys, so they are not a source here.
 */
export function readSecretFolder(
  namespace: string,
  secretName: string,
  source: SecretSource,
): Map<string, Buffer> | undefined {
  if (source.dir === undefined) return undefined;
  checkSegment('namespace', namespace);
  checkSegment('name', secretName);
  for (const folder of [path.join(source.dir, namespace, secretName), path.join(source.dir, secretName)]) {
    let names: string[];
    try {
      if (!fs.statSync(folder).isDirectory()) continue;
      names = fs.readdirSync(folder);
    } catch {
      continue;
    }
    const out = new Map<string, Buffer>();
    for (const name of names.sort()) {
      if (!/^[-._a-zA-Z0-9]+$/.test(name)) continue;
      const content = readBoundedFile(path.join(folder, name));
      if (content !== undefined) out.set(name, content);
    }
    return out;
  }
  return undefined;
}
