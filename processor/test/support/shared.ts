import * as fs from 'node:fs';
import * as path from 'node:path';

/** The reference material checked out beside the project (`../shared`). */
export const SHARED_DIR = path.resolve(__dirname, '..', '..', '..', '..', 'shared');

/**
 * Returns the absolute path of `../shared/<relative>`, or undefined when it is missing. Missing reference
 * material fails loudly under CI (`CI=true`); elsewhere the caller skips and the reason is printed.
 */
export function sharedPath(relative: string): string | undefined {
  const full = path.join(SHARED_DIR, relative);
  if (fs.existsSync(full)) return full;
  const reason = `reference material ${full} is missing (expected ../shared beside the project checkout)`;
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(`${reason}; CI must provide it`);
  process.stdout.write(`SKIPPED: ${reason}\n`);
  return undefined;
}

/** `describe` when the reference material exists, `describe.skip` (with the printed reason) when not. */
export function describeWithShared(relative: string, name: string, body: (dir: string) => void): void {
  const dir = sharedPath(relative);
  if (dir === undefined) {
    describe.skip(`${name} (needs ../shared/${relative})`, () => {
      it('is skipped', () => undefined);
    });
    return;
  }
  describe(name, () => body(dir));
}
