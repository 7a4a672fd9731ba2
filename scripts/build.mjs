/**
 * `npm run build`: the library as the package ships it, from an empty build/ (stale files of moved modules would
 * otherwise be packed): the processor config contract (packages/processor-config/dist, bundled into the package as
 * a dependency), the compiled library, the ext_proc descriptor the local data plane loads, and the processor bundle
 * `ai-gateway dev` runs, copied to build/processor/dist.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const run = (command, args) =>
  execFileSync(command, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });

const tsc = require.resolve('typescript/bin/tsc');

rmSync(join(root, 'build'), { recursive: true, force: true });
rmSync(join(root, 'packages', 'processor-config', 'dist'), { recursive: true, force: true });
run(process.execPath, [tsc, '-p', join('packages', 'processor-config', 'tsconfig.json')]);
run(process.execPath, [tsc, '-p', 'tsconfig.build.json']);
run(process.execPath, [join(root, 'scripts', 'ext-proc-descriptor.cjs')]);
run(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build', '-w', 'processor']);
cpSync(join(root, 'processor', 'dist'), join(root, 'build', 'processor', 'dist'), { recursive: true });
