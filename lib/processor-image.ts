import * as fs from 'node:fs';
import * as path from 'node:path';

const PACKAGE_NAME = 'ai-gateway-constructs';
export const DEFAULT_PROCESSOR_REPOSITORY = 'ghcr.io/ai-gateway-constructs/ai-gateway-processor';

let cachedVersion: string | undefined;

/**
 * The version of this library, read from its own package.json. Works from the sources (`lib/*.ts` under tsx or
 * jest) and from the compiled package (`build/lib/*.js`) by walking up from this file.
 */
export function libraryVersion(): string {
  if (cachedVersion !== undefined) return cachedVersion;
  let dir = __dirname;
  for (let depth = 0; depth < 5; depth++) {
    const candidate = path.join(dir, 'package.json');
    if (fs.existsSync(candidate)) {
      const pkg = JSON.parse(fs.readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') {
        cachedVersion = pkg.version;
        return pkg.version;
      }
    }
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find the package.json of ${PACKAGE_NAME} above ${__dirname}`);
}

/** The processor container image. */
export class ProcessorImage {
  /** The image released with this library version: `ghcr.io/ai-gateway-constructs/ai-gateway-processor:<version>`. */
  static default(): ProcessorImage {
    return new ProcessorImage(`${DEFAULT_PROCESSOR_REPOSITORY}:${libraryVersion()}`);
  }

  /** Same repository name under another registry or path (a mirror), with this library's version as tag. */
  static fromRepository(repository: string, tag?: string): ProcessorImage {
    return new ProcessorImage(`${repository}:${tag ?? libraryVersion()}`);
  }

  /** A pinned digest, e.g. `sha256:...`. */
  static fromDigest(repository: string, digest: string): ProcessorImage {
    if (!/^sha256:[0-9a-f]{64}$/.test(digest))
      throw new Error(`ProcessorImage.fromDigest: invalid digest "${digest}" (expected sha256:<64 hex>)`);
    return new ProcessorImage(`${repository}@${digest}`);
  }

  /** Any full image reference. */
  static fromReference(reference: string): ProcessorImage {
    if (reference.trim() === '' || /\s/.test(reference))
      throw new Error(`ProcessorImage.fromReference: invalid image "${reference}"`);
    return new ProcessorImage(reference);
  }

  private constructor(readonly reference: string) {}
}
