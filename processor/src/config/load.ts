/**
 * Reads the config the constructs wrote: a plain `config.json`, or a bundle manifest (`config.manifest.json`) whose
 * gzip parts sit beside it in the same volume (see packages/processor-config/src/bundle.ts for the format and why).
 * `--config` names either file; the content says which it is.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import {
  decodeConfigBundle,
  IncompleteConfigBundleError,
  isConfigBundleManifest,
  MAX_DECODED_CONFIG_BYTES,
  parseConfigBundleManifest,
  parseProcessorConfig,
  ProcessorConfigError,
  type ConfigBundleCodec,
  type ProcessorConfig,
} from '@ai-gateway-constructs/processor-config';

/** Node's gzip and sha256 for the bundle format. */
export const nodeBundleCodec: ConfigBundleCodec = {
  gzip: (data) => zlib.gzipSync(data),
  gunzip: (data, maxBytes) => zlib.gunzipSync(data, { maxOutputLength: maxBytes }),
  sha256: (data) => createHash('sha256').update(data).digest('hex'),
};

/** The largest config file (plain, or a manifest) read as it is. */
const MAX_CONFIG_FILE_BYTES = MAX_DECODED_CONFIG_BYTES;

function readBytes(file: string): Buffer {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch (error) {
    throw new ProcessorConfigError([`cannot read ${file}: ${errorCode(error)}`]);
  }
  if (size > MAX_CONFIG_FILE_BYTES) {
    throw new ProcessorConfigError([`${file} has ${size} bytes, more than the ${MAX_CONFIG_FILE_BYTES} read`]);
  }
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw new ProcessorConfigError([`cannot read ${file}: ${errorCode(error)}`]);
  }
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ProcessorConfigError([`${what} is not valid JSON: ${(error as Error).message}`]);
  }
}

/**
 * Reads and validates the config file (plain or a bundle manifest with its parts beside it); throws
 * ProcessorConfigError with a specific message, IncompleteConfigBundleError when a bundle's parts are not all there.
 */
export function readConfigFile(file: string): ProcessorConfig {
  const document = parseJson(readBytes(file).toString('utf8'), file);
  if (!isConfigBundleManifest(document)) return parseProcessorConfig(document);
  const manifest = parseConfigBundleManifest(document);
  const dir = path.dirname(file);
  const json = decodeConfigBundle(
    manifest,
    (key) => {
      try {
        return fs.readFileSync(path.join(dir, key));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new ProcessorConfigError([`cannot read ${path.join(dir, key)}: ${errorCode(error)}`]);
      }
    },
    nodeBundleCodec,
  );
  return parseProcessorConfig(
    parseJson(Buffer.from(json.buffer, json.byteOffset, json.length).toString('utf8'), `${file} (decompressed)`),
  );
}

/** How long the processor waits at startup for a complete config set, by default. */
export const DEFAULT_CONFIG_WAIT_MS = 30_000;

/** The config set stayed incomplete for the whole startup wait. */
export class ConfigSetTimeoutError extends ProcessorConfigError {
  constructor(file: string, waitedMs: number, last: IncompleteConfigBundleError) {
    super([
      `${file}: no complete config set within ${waitedMs} ms; ${last.problems.join('; ')}. Check that every ` +
        `ConfigMap of the processor's config volume was applied`,
    ]);
    this.name = 'ConfigSetTimeoutError';
  }
}

/**
 * Reads the config at startup: while a bundle's parts are incomplete (its ConfigMaps still being applied or
 * refreshed), retries every `retryMs` for up to `timeoutMs`, then throws ConfigSetTimeoutError. Any other problem
 * is thrown at once. `onWaiting` is called once, when the wait begins.
 */
export async function waitForConfigFile(
  file: string,
  options: { timeoutMs: number; retryMs: number; onWaiting?: (error: IncompleteConfigBundleError) => void },
): Promise<ProcessorConfig> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return readConfigFile(file);
    } catch (error) {
      if (!(error instanceof IncompleteConfigBundleError)) throw error;
      if (attempt === 0) options.onWaiting?.(error);
      const waited = Date.now() - started;
      if (waited >= options.timeoutMs) throw new ConfigSetTimeoutError(file, options.timeoutMs, error);
      await new Promise((resolve) => setTimeout(resolve, Math.min(options.retryMs, options.timeoutMs - waited)));
    }
  }
}
