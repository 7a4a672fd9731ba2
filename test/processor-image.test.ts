import * as fs from 'node:fs';
import * as path from 'node:path';
import { ProcessorImage } from '../lib';
import { derivedName } from '../lib/names';
import { libraryVersion } from '../lib/processor-image';

describe('ProcessorImage', () => {
  it('defaults to the image released with this library version', () => {
    const version = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version;
    expect(libraryVersion()).toBe(version);
    expect(ProcessorImage.default().reference).toBe(`ghcr.io/ai-gateway-constructs/ai-gateway-processor:${version}`);
  });

  it('can be mirrored, pinned or replaced', () => {
    expect(ProcessorImage.fromRepository('mirror.internal/ai-gateway-processor').reference).toBe(
      `mirror.internal/ai-gateway-processor:${libraryVersion()}`,
    );
    expect(ProcessorImage.fromRepository('mirror.internal/p', 'dev').reference).toBe('mirror.internal/p:dev');
    expect(ProcessorImage.fromDigest('r/p', `sha256:${'0'.repeat(64)}`).reference).toBe(`r/p@sha256:${'0'.repeat(64)}`);
    expect(ProcessorImage.fromReference('r/p:1').reference).toBe('r/p:1');
  });

  it('throws on a malformed digest', () => {
    expect(() => ProcessorImage.fromDigest('r/p', 'sha256:abc')).toThrow(/invalid digest "sha256:abc"/);
  });
});

describe('derivedName', () => {
  it('keeps short names readable', () => {
    expect(derivedName(['gw', 'processor'])).toBe('gw-processor');
  });

  it('cuts long names to 63 characters with a hash, deterministically and distinctly', () => {
    const long = derivedName(['a'.repeat(60), 'processor-config']);
    expect(long).toHaveLength(63);
    expect(long).toMatch(/^a+-[0-9a-f]{8}$/);
    expect(derivedName(['a'.repeat(60), 'processor-config'])).toBe(long);
    expect(derivedName(['a'.repeat(60), 'processor'])).not.toBe(long);
  });
});

describe('libraryVersion from the compiled package', () => {
  const compiled = path.join(__dirname, '..', 'build', 'lib', 'processor-image.js');
  const present = fs.existsSync(compiled);
  if (!present && (process.env.CI === 'true' || process.env.CI === '1'))
    throw new Error(`${compiled} is missing; npm test builds before jest`);
  (present ? it : it.skip)('reads the same version from build/lib', () => {
    const built = require(compiled) as { libraryVersion(): string };
    expect(built.libraryVersion()).toBe(libraryVersion());
  });
});
