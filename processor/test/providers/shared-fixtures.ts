/**
 * Access to the read-only reference fixtures in `../shared` beside the checkout. Missing fixtures fail
 * under CI=true and skip (with the reason printed) otherwise.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const SHARED_ROOT = path.resolve(__dirname, '..', '..', '..', '..', 'shared');

export function sharedPath(...parts: string[]): string {
  return path.join(SHARED_ROOT, ...parts);
}

export const sharedAvailable = fs.existsSync(path.join(SHARED_ROOT, 'fixtures'));

export function describeWithShared(name: string, body: () => void): void {
  if (sharedAvailable) {
    describe(name, body);
    return;
  }
  if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs the reference fixtures', () => {
        throw new Error(`reference fixtures missing at ${SHARED_ROOT} (required under CI=true)`);
      });
    });
    return;
  }
  console.log(`skipping "${name}": reference fixtures not found at ${SHARED_ROOT}`);
  describe.skip(name, body);
}
