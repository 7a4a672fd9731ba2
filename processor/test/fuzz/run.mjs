#!/usr/bin/env node
/**
 * `npm run fuzz` (root or processor): the fuzz and soak suites (processor/test/fuzz) at FUZZ_SCALE=20 (20 times the
 * iterations of `npm test`, and 20 times the time limits) with a fresh random seed, printed first so a failure can
 * be replayed: `FUZZ_SEED=<seed> FUZZ_SCALE=<scale> npm run fuzz`. Extra arguments go to jest (e.g. a test file).
 */
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const seed =
  process.env.FUZZ_SEED && process.env.FUZZ_SEED !== 'random' ? process.env.FUZZ_SEED : String(randomInt(1, 2 ** 31));
const scale = process.env.FUZZ_SCALE || '20';
process.stdout.write(`fuzz: FUZZ_SEED=${seed} FUZZ_SCALE=${scale} (replay with these)\n`);
const jest = createRequire(path.join(root, 'package.json')).resolve('jest/bin/jest');
const args = process.argv.slice(2);
const result = spawnSync(
  process.execPath,
  [jest, ...(args.length ? args : ['processor/test/fuzz']), '--selectProjects', 'processor'],
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, FUZZ_SEED: seed, FUZZ_SCALE: scale },
  },
);
process.stdout.write(
  `fuzz: FUZZ_SEED=${seed} FUZZ_SCALE=${scale} finished with exit code ${result.status ?? result.signal}\n`,
);
process.exit(result.status ?? 1);
