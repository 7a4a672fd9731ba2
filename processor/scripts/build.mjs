/**
 * Build: precompiles the protos into generated/protos.json (parsing .proto files at startup costs ~175 ms),
 * then bundles the processor with esbuild into dist/main.js, which runs without node_modules. Modules
 * that are only needed for some configs (cloud auth SDKs, the CEL runtime, OpenTelemetry tracing) go into
 * their own files in dist/ and are loaded on first use, so V8 does not parse them on every cold start.
 */
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');

const { buildDescriptor } = require('./descriptor.cjs');
mkdirSync(join(root, 'generated'), { recursive: true });
writeFileSync(join(root, 'generated', 'protos.json'), JSON.stringify(buildDescriptor()));
rmSync(dist, { recursive: true, force: true });

/** Lazily required modules: `require(<specifier>)` in <importer> becomes `require('./<chunk>.js')`. */
const LAZY = [
  { importer: 'src/auth/index.ts', specifier: './aws', chunk: 'auth-aws', entry: 'src/auth/aws.ts' },
  { importer: 'src/auth/index.ts', specifier: './gcp', chunk: 'auth-gcp', entry: 'src/auth/gcp.ts' },
  { importer: 'src/auth/index.ts', specifier: './azure', chunk: 'auth-azure', entry: 'src/auth/azure.ts' },
  { importer: 'src/usage/costs.ts', specifier: '@bufbuild/cel', chunk: 'cel', entry: '@bufbuild/cel' },
  { importer: '../packages/processor-config/src/regex.ts', specifier: 're2js', chunk: 're2js', entry: 're2js' },
  // The OpenTelemetry SDK and OTLP exporter: loaded only when tracing is on (`--otlp-endpoint`).
  { importer: 'src/tracing/index.ts', specifier: './otel', chunk: 'tracing', entry: 'src/tracing/otel.ts' },
];

const lazyChunks = {
  name: 'lazy-chunks',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind !== 'require-call') return undefined;
      const lazy = LAZY.find((l) => args.path === l.specifier && args.importer === join(root, l.importer));
      return lazy ? { path: `./${lazy.chunk}.js`, external: true } : undefined;
    });
  },
};

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: process.env.AIGW_BUILD_MINIFY !== '0',
  legalComments: 'none',
  // Development-only fallback of src/grpc/descriptor.ts; the bundle always has the generated descriptor.
  external: ['../../scripts/descriptor.cjs'],
  logLevel: 'warning',
};

await build({
  ...common,
  entryPoints: [join(root, 'src', 'main.ts')],
  outfile: join(dist, 'main.js'),
  banner: { js: '#!/usr/bin/env node' },
  plugins: [lazyChunks],
});
for (const lazy of LAZY) {
  await build({
    ...common,
    entryPoints: [lazy.entry.startsWith('src/') ? join(root, lazy.entry) : require.resolve(lazy.entry)],
    outfile: join(dist, `${lazy.chunk}.js`),
  });
}
chmodSync(join(dist, 'main.js'), 0o755);
