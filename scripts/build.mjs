/**
 * `npm run build`: the library as the package ships it, from an empty build/ (stale files of moved modules would
 * otherwise be packed): the compiled library, the ext_proc descriptor the local data plane loads, and the processor
 * bundle `ai-gateway dev` runs, copied to build/processor/dist.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const run = (command, args) => execFileSync(command, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });

rmSync(join(root, 'build'), { recursive: true, force: true });
run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json']);
run(process.execPath, [join(root, 'scripts', 'ext-proc-descriptor.cjs')]);
run(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build', '-w', 'processor']);
cpSync(join(root, 'processor', 'dist'), join(root, 'build', 'processor', 'dist'), { recursive: true });
