import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SecretKeyRef } from '../config/schema';

/** A credential file could not be read. The message names the file reference, never its content. */
export class SecretUnavailableError extends Error {
  constructor(ref: SecretKeyRef, reason: string) {
    super(`credential ${ref.secretName}/${ref.key} is unavailable: ${reason}`);
    this.name = 'SecretUnavailableError';
  }
}

/**
 * Reads `<secrets-dir>/<secretName>/<key>` once and caches it. A new reader is created whenever the
 * secrets directory changes, which is how rotated credentials are picked up.
 */
export class SecretReader {
  private readonly cache = new Map<string, string>();

  constructor(private readonly dir: string | undefined) {}

  read(ref: SecretKeyRef): string {
    const id = `${ref.secretName}/${ref.key}`;
    const cached = this.cache.get(id);
    if (cached !== undefined) return cached;
    if (this.dir === undefined) throw new SecretUnavailableError(ref, 'no secrets directory is configured');
    let content: string;
    try {
      content = fs.readFileSync(path.join(this.dir, ref.secretName, ref.key), 'utf8');
    } catch (error) {
      throw new SecretUnavailableError(ref, (error as NodeJS.ErrnoException).code ?? 'read failed');
    }
    const value = content.replace(/\r?\n$/, '');
    this.cache.set(id, value);
    return value;
  }
}
