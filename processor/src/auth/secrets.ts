import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SecretKeyRef } from '@ai-gateway-constructs/processor-config';

/**
 * A credential file is missing, unreadable or empty. The message names the file reference (`secretName/key`),
 * never its content.
 */
export class SecretUnavailableError extends Error {
  constructor(
    readonly ref: SecretKeyRef,
    /** What is wrong, e.g. `is missing`, `is empty`, `is unreadable (EACCES)`. */
    problem: string,
  ) {
    super(`credential ${ref.secretName}/${ref.key} ${problem}`);
    this.name = 'SecretUnavailableError';
  }
}

/** Whether a credential file's content (trailing newline removed) carries no credential at all. */
export function isBlank(value: string): boolean {
  return value.trim() === '';
}

/**
 * Reads `<secrets-dir>/<secretName>/<key>` once and caches it. A new reader is created whenever the
 * secrets directory changes, which is how rotated credentials are picked up. A file that is empty or holds only
 * whitespace is an error like a missing one: an empty credential is never sent upstream (`Bearer `, an empty
 * `x-api-key`, ...).
 */
export class SecretReader {
  private readonly cache = new Map<string, string>();

  constructor(private readonly dir: string | undefined) {}

  read(ref: SecretKeyRef): string {
    const id = `${ref.secretName}/${ref.key}`;
    const cached = this.cache.get(id);
    if (cached !== undefined) return cached;
    if (this.dir === undefined)
      throw new SecretUnavailableError(ref, 'is unavailable: no secrets directory is configured');
    let content: string;
    try {
      content = fs.readFileSync(path.join(this.dir, ref.secretName, ref.key), 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new SecretUnavailableError(
        ref,
        code === 'ENOENT' ? 'is missing' : `is unreadable (${code ?? 'read failed'})`,
      );
    }
    const value = content.replace(/\r?\n$/, '');
    if (isBlank(value)) throw new SecretUnavailableError(ref, 'is empty');
    this.cache.set(id, value);
    return value;
  }
}
