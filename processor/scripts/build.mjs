/**
 * Build: precompiles the protos into generated/protos.json (parsing .proto files at startup costs ~175 ms),
 * then bundles the processor with esbuild into one self-contained dist/main.js (runs without node_modules).
 */
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const { buildDescriptor } = require('./descriptor.cjs');
mkdirSync(join(root, 'generated'), { recursive: true });
writeFileSync(join(root, 'generated', 'protos.json'), JSON.stringify(buildDescriptor()));

await build({
  entryPoints: [join(root, 'src', 'main.ts')],
  outfile: join(root, 'dist', 'main.js'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minifySyntax: true,
  legalComments: 'none',
  banner: { js: '#!/usr/bin/env node' },
  // Development-only fallback of src/grpc/descriptor.ts; the bundle always has the generated descriptor.
  external: ['../../scripts/descriptor.cjs'],
  logLevel: 'warning',
});
chmodSync(join(root, 'dist', 'main.js'), 0o755);
