/**
 * Packs the library as npm would publish it, installs the tarball into a fresh project outside the repository
 * and uses it from there: proves the artifact is complete, importable from `.` without Pulumi installed, and
 * from `./pulumi` once the optional Pulumi peers are added.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const TIMEOUT = 10 * 60 * 1000;

function installedVersion(name: string): string {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
}

function npm(cwd: string, ...args: string[]): string {
  return execFileSync(NPM, [...args, '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, npm_config_update_notifier: 'false' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function node(cwd: string, script: string): string {
  return execFileSync(process.execPath, [script], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string;

describe('the npm package', () => {
  let workDir: string;
  let tarball: string;
  let files: string[];
  let bundled: string[];

  beforeAll(() => {
    if (!fs.existsSync(path.join(ROOT, 'build', 'lib', 'index.js'))) {
      throw new Error('build/lib is missing: run `npm run build` first (`npm test` does)');
    }
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ai-gateway-pack-'));
    // The build above is what `prepack` would run again (its output would also mix into the JSON on stdout).
    const [packed] = JSON.parse(npm(ROOT, 'pack', '--json', '--ignore-scripts', '--pack-destination', workDir)) as {
      filename: string;
      files: { path: string }[];
      bundled: string[];
    }[];
    tarball = path.join(workDir, packed.filename);
    files = packed.files.map((f) => f.path);
    bundled = packed.bundled;
  }, TIMEOUT);

  afterAll(() => {
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('ships the compiled library, its types and the config contract, and nothing else', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'LICENSE',
        'build/lib/index.js',
        'build/lib/index.d.ts',
        'build/lib/pulumi/index.js',
        'build/lib/pulumi/index.d.ts',
        // The config contract shared with the processor, bundled: compiled, with its types, and nothing of its own
        // (zod and re2js are its peers, which this package depends on).
        'node_modules/@ai-gateway-constructs/processor-config/package.json',
        'node_modules/@ai-gateway-constructs/processor-config/dist/index.js',
        'node_modules/@ai-gateway-constructs/processor-config/dist/index.d.ts',
        // The local data plane: the `ai-gateway` command, Envoy's ext_proc protos and the processor it runs.
        'build/lib/cli.js',
        'build/lib/dataplane/ext-proc/descriptor.json',
        'build/processor/dist/main.js',
      ]),
    );
    expect(bundled).toEqual(['@ai-gateway-constructs/processor-config']);
    const unexpected = files.filter(
      (f) =>
        /(^|\/)(test|tests|examples|fixtures|bench)\//.test(f) ||
        (f.startsWith('node_modules/') && !f.startsWith('node_modules/@ai-gateway-constructs/processor-config/')) ||
        f.startsWith('processor/') ||
        (f.endsWith('.ts') && !f.endsWith('.d.ts')) ||
        f.startsWith('.'),
    );
    expect(unexpected).toEqual([]);
  });

  it('declares cdk8s as peers and Pulumi as optional peers', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(Object.keys(manifest.peerDependencies)).toEqual(
      expect.arrayContaining(['cdk8s', 'cdk8s-plus-28', 'constructs', '@pulumi/pulumi', '@pulumi/kubernetes']),
    );
    expect(manifest.peerDependenciesMeta['@pulumi/pulumi'].optional).toBe(true);
    expect(manifest.peerDependenciesMeta['@pulumi/kubernetes'].optional).toBe(true);
    for (const peer of Object.keys(manifest.peerDependencies)) expect(manifest.dependencies?.[peer]).toBeUndefined();
  });

  it('bundles the config contract at the version of the package, depending on its peers', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const contractManifest = path.join(ROOT, 'packages', 'processor-config', 'package.json');
    const contract = JSON.parse(fs.readFileSync(contractManifest, 'utf8'));
    expect(manifest.bundleDependencies).toEqual([contract.name]);
    expect(contract.version).toBe(version);
    expect(manifest.dependencies[contract.name]).toBe(version);
    for (const [peer, range] of Object.entries(contract.peerDependencies)) {
      expect(manifest.dependencies[peer]).toBe(range);
    }
  });

  describe('installed into a fresh project', () => {
    let consumer: string;

    beforeAll(() => {
      consumer = path.join(workDir, 'consumer');
      fs.mkdirSync(consumer);
      fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
      // cdk8s users only: the Pulumi peers are not installed.
      npm(
        consumer,
        'install',
        '--prefer-offline',
        '--ignore-scripts',
        tarball,
        `cdk8s@${installedVersion('cdk8s')}`,
        `cdk8s-plus-28@${installedVersion('cdk8s-plus-28')}`,
        `constructs@${installedVersion('constructs')}`,
      );
    }, TIMEOUT);

    it('synthesizes a gateway from the package root, pointing at the image of this version', () => {
      fs.writeFileSync(
        path.join(consumer, 'synth.js'),
        `
const { App, Chart } = require('cdk8s');
const {
  AIGateway, AIRoute, Credentials, ModelMatch, ProcessorImage, ProviderBackend,
} = require('ai-gateway-constructs');
const app = new App();
const chart = new Chart(app, 'gateway', { namespace: 'ai' });
const gateway = new AIGateway(chart, 'Gateway', { name: 'gw' });
const openai = ProviderBackend.openAI(chart, 'OpenAI', {
  name: 'openai',
  credentials: Credentials.apiKey({ secretName: 'openai', key: 'api-key' }),
});
// A regular expression: validated at synth by the bundled config contract with re2js, a dependency of this package.
const models = [ModelMatch.prefix('gpt-'), ModelMatch.regex('o[0-9]+(-mini)?')];
new AIRoute(chart, 'Chat', { name: 'chat', gateway, rules: [{ models, backends: [{ backend: openai }] }] });
const objects = chart.toJson();
const deployment = objects.find((o) => o.kind === 'Deployment');
console.log(JSON.stringify({
  kinds: objects.map((o) => o.kind),
  configHasRegex: objects.find((o) => o.kind === 'ConfigMap').data['config.json'].includes('o[0-9]+(-mini)?'),
  loaded: Object.keys(require.cache)
    .filter((f) => /processor-config|re2js/.test(f))
    .map((f) => f.slice(f.indexOf('node_modules'))),
  image: ProcessorImage.default().reference,
  deploymentImage: deployment.spec.template.spec.containers[0].image,
  pulumiInstalled: (() => { try { require.resolve('@pulumi/pulumi'); return true; } catch { return false; } })(),
}));
`,
      );
      const result = JSON.parse(node(consumer, 'synth.js'));
      expect(result.pulumiInstalled).toBe(false);
      expect(result.configHasRegex).toBe(true);
      expect(result.loaded).toEqual(
        expect.arrayContaining([
          'node_modules/ai-gateway-constructs/node_modules/@ai-gateway-constructs/processor-config/dist/index.js',
          expect.stringMatching(/^node_modules\/re2js\//),
        ]),
      );
      expect(result.kinds).toEqual(
        expect.arrayContaining([
          'Gateway',
          'HTTPRoute',
          'Backend',
          'EnvoyExtensionPolicy',
          'Deployment',
          'ConfigMap',
          'Service',
        ]),
      );
      expect(result.image).toBe(`ghcr.io/ai-gateway-constructs/ai-gateway-processor:${version}`);
      expect(result.deploymentImage).toBe(result.image);
    });

    it('installs the ai-gateway command, which serves synthesized manifests with the bundled processor', () => {
      const help = execFileSync(path.join(consumer, 'node_modules', '.bin', 'ai-gateway'), ['--help'], {
        cwd: consumer,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      expect(help).toContain('ai-gateway dev');
      const entry = path.join(
        consumer,
        'node_modules',
        'ai-gateway-constructs',
        'build',
        'processor',
        'dist',
        'main.js',
      );
      expect(
        execFileSync(process.execPath, [entry, '--help'], {
          cwd: consumer,
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      ).toContain('--config');
    });

    it(
      'type-checks a TypeScript consumer of both entry points',
      () => {
        npm(
          consumer,
          'install',
          '--prefer-offline',
          '--ignore-scripts',
          `@pulumi/pulumi@${installedVersion('@pulumi/pulumi')}`,
          `@pulumi/kubernetes@${installedVersion('@pulumi/kubernetes')}`,
          `@types/node@${installedVersion('@types/node')}`,
        );
        fs.writeFileSync(
          path.join(consumer, 'tsconfig.json'),
          JSON.stringify({
            compilerOptions: {
              strict: true,
              module: 'node16',
              moduleResolution: 'node16',
              target: 'ES2022',
              types: ['node'],
              noEmit: true,
              skipLibCheck: true,
            },
            files: ['consumer.ts'],
          }),
        );
        fs.writeFileSync(
          path.join(consumer, 'consumer.ts'),
          `
import { App, Chart } from 'cdk8s';
import { AIGateway, MODEL_HEADER, ProcessorImage } from 'ai-gateway-constructs';
// Internals are no part of the package's API: the root exports named things only.
// @ts-expect-error
import { invalid } from 'ai-gateway-constructs';
import * as aiPulumi from 'ai-gateway-constructs/pulumi';
const chart = new Chart(new App(), 'c');
const gateway: AIGateway = new AIGateway(chart, 'Gateway', { name: 'gw' });
const image: string = ProcessorImage.default().reference;
const header: 'x-ai-eg-model' = MODEL_HEADER;
const components: unknown[] = [
  aiPulumi.AIGatewayApp, aiPulumi.AIGateway, aiPulumi.AIRoute,
  aiPulumi.TokenRateLimit, aiPulumi.ProviderBackend, aiPulumi.ManagedCredentials,
];
export { gateway, image, header, components };
`,
        );
        execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', consumer], {
          cwd: consumer,
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      },
      TIMEOUT,
    );

    it(
      'runs a Pulumi program from the ./pulumi entry point under mocks, keeping the API key secret',
      () => {
        fs.writeFileSync(
          path.join(consumer, 'pulumi-program.js'),
          `
const pulumi = require('@pulumi/pulumi');
const registered = [];
async function main() {
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        registered.push({ type: args.type, name: args.name, inputs: args.inputs });
        return { id: args.name + '_id', state: args.inputs };
      },
      call: (args) => args.inputs,
    },
    'consumer',
    'test',
    false,
  );
  const {
    AIGateway, AIGatewayApp, AIRoute, ManagedCredentials, ProviderBackend,
  } = require('ai-gateway-constructs/pulumi');
  const { ModelMatch } = require('ai-gateway-constructs');
  new AIGatewayApp('ai', (app) => {
    const gateway = new AIGateway('edge', { namespace: 'ai' }, { parent: app });
    const openai = ProviderBackend.openAI('openai', {
      namespace: 'ai',
      credentials: ManagedCredentials.apiKey({
        value: pulumi.secret('sk-packed-test-key'), secretName: 'openai', key: 'api-key',
      }),
    }, { parent: app });
    new AIRoute('chat', {
      namespace: 'ai', gateway, rules: [{ models: [ModelMatch.prefix('gpt-')], backends: [{ backend: openai }] }],
    });
  });
  let seen = -1;
  for (let waited = 0; waited < 20000 && (registered.length !== seen || registered.length < 10); waited += 100) {
    seen = registered.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const configMap = registered.find((r) => r.type === 'kubernetes:core/v1:ConfigMap');
  const secret = registered.find((r) => r.type === 'kubernetes:core/v1:Secret');
  console.log(JSON.stringify({
    types: [...new Set(registered.map((r) => r.type))],
    configMapHasKey: JSON.stringify(configMap && configMap.inputs).includes('sk-packed-test-key'),
    secretCreated: secret !== undefined,
  }));
}
main().catch((error) => { console.error(error); process.exit(1); });
`,
        );
        const result = JSON.parse(node(consumer, 'pulumi-program.js'));
        expect(result.types).toEqual(
          expect.arrayContaining([
            'ai-gateway:index:AIGateway',
            'ai-gateway:index:AIRoute',
            'ai-gateway:index:ProviderBackend',
            'kubernetes:apps/v1:Deployment',
            'kubernetes:core/v1:ConfigMap',
            'kubernetes:core/v1:Secret',
            'kubernetes:gateway.networking.k8s.io/v1:HTTPRoute',
          ]),
        );
        expect(result.secretCreated).toBe(true);
        expect(result.configMapHasKey).toBe(false);
      },
      TIMEOUT,
    );
  });
});
