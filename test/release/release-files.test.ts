/**
 * No container engine or CI runner is available here, so the image and release properties users rely on are
 * checked by reading processor/Dockerfile, .dockerignore and the release workflow.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PROCESSOR_NODE_OPTIONS } from '@ai-gateway-constructs/processor-config';
import { parse as parseYaml } from 'yaml';

const ROOT = path.resolve(__dirname, '..', '..');

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

function parseDockerfile(text: string): { globalArgs: Map<string, string>; stages: Stage[] } {
  const logicalLines = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'));
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of logicalLines) {
    const [keyword, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    const upper = keyword.toUpperCase();
    if (upper === 'FROM') {
      const [image, as, name] = args.split(/\s+/);
      stages.push({ from: image, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else if (stages.length === 0 && upper === 'ARG') {
      const [argName, value] = args.split('=');
      if (value !== undefined) globalArgs.set(argName, value);
    } else if (stages.length > 0) {
      stages[stages.length - 1].instructions.push({ keyword: upper, args });
    }
  }
  return { globalArgs, stages };
}

function resolveImage(from: string, globalArgs: Map<string, string>): string {
  return from.replace(/\$\{?(\w+)\}?/g, (_, name: string) => globalArgs.get(name) ?? `<unset ${name}>`);
}

describe('processor/Dockerfile', () => {
  const { globalArgs, stages } = parseDockerfile(fs.readFileSync(path.join(ROOT, 'processor', 'Dockerfile'), 'utf8'));
  const runtime = stages[stages.length - 1];
  const build = stages[0];
  const all = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);

  it('is multi-stage', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(build.name).toBe('build');
  });

  it('pins every base image by digest', () => {
    for (const stage of stages) {
      const image = resolveImage(stage.from, globalArgs);
      if (stages.some((s) => s.name === image)) continue;
      expect(image).toMatch(/@sha256:[0-9a-f]{64}$/);
    }
  });

  it('runs on a distroless Node.js base without a shell', () => {
    expect(resolveImage(runtime.from, globalArgs)).toMatch(/^gcr\.io\/distroless\/nodejs\d+-debian\d+/);
    expect(all(runtime, 'RUN')).toEqual([]);
    const entrypoint = all(runtime, 'ENTRYPOINT');
    expect(entrypoint).toHaveLength(1);
    const argv = JSON.parse(entrypoint[0].args) as string[];
    expect(argv[0]).toBe('/nodejs/bin/node');
    expect(argv).not.toContain('sh');
    expect(all(runtime, 'CMD')).toEqual([]);
  });

  it('builds and runs on one Node.js major, 22 or later (configurable HTTP/2 stream-reset limits)', () => {
    const buildMajor = /^node:(\d+)-/.exec(resolveImage(build.from, globalArgs))?.[1];
    const runtimeMajor = /^gcr\.io\/distroless\/nodejs(\d+)-/.exec(resolveImage(runtime.from, globalArgs))?.[1];
    expect(buildMajor).toBeDefined();
    expect(runtimeMajor).toBe(buildMajor);
    expect(Number(runtimeMajor)).toBeGreaterThanOrEqual(22);
  });

  it('runs as a numeric non-root user', () => {
    const users = all(runtime, 'USER');
    expect(users.length).toBeGreaterThan(0);
    const [uid, gid] = users[users.length - 1].args.split(':');
    expect(uid).toMatch(/^\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
    if (gid !== undefined) expect(Number(gid)).toBeGreaterThan(0);
  });

  it('writes nothing at runtime, so a read-only root filesystem works', () => {
    expect(all(runtime, 'VOLUME')).toEqual([]);
    const copies = all(runtime, 'COPY');
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      expect(copy.args).toMatch(/^--from=build \/src\/processor\/dist\/ \/app\/$/);
    }
    expect(all(runtime, 'ENTRYPOINT')[0].args).toContain('/app/main.js');
  });

  it('starts the bundle with the V8 options the local data plane and the benchmarks use', () => {
    const entrypoints = all(runtime, 'ENTRYPOINT');
    expect(entrypoints).toHaveLength(1);
    expect(JSON.parse(entrypoints[0].args)).toEqual(['/nodejs/bin/node', ...PROCESSOR_NODE_OPTIONS, '/app/main.js']);
  });

  it('copies the workspace manifests before installing and the config contract before bundling', () => {
    const install = build.instructions.findIndex((i) => i.keyword === 'RUN' && /^npm ci\b/.test(i.args));
    const bundle = build.instructions.findIndex(
      (i) => i.keyword === 'RUN' && i.args.includes('npm run build --workspace processor'),
    );
    const position = (args: string) => build.instructions.findIndex((i) => i.keyword === 'COPY' && i.args === args);
    const manifests = [
      'packages/processor-config/package.json packages/processor-config/package.json',
      'processor/package.json processor/package.json',
    ];
    for (const manifest of manifests) {
      expect(position(manifest)).toBeGreaterThan(-1);
      expect(position(manifest)).toBeLessThan(install);
    }
    expect(position('packages/processor-config/ packages/processor-config/')).toBeGreaterThan(install);
    expect(position('packages/processor-config/ packages/processor-config/')).toBeLessThan(bundle);
  });

  it('installs from the lockfile and fails the build when the versions disagree', () => {
    const runs = all(build, 'RUN').map((i) => i.args);
    expect(runs.some((r) => /^npm ci\b/.test(r) && r.includes('--ignore-scripts'))).toBe(true);
    expect(runs.some((r) => r.includes('process.env.VERSION') && r.includes('process.exit(1)'))).toBe(true);
    expect(runs.some((r) => r.includes('npm run build --workspace processor'))).toBe(true);
  });

  it('carries OCI labels for source, version and license', () => {
    const labels = all(runtime, 'LABEL')
      .map((i) => i.args)
      .join(' ');
    expect(labels).toMatch(/org\.opencontainers\.image\.source="https:\/\/[^"]+"/);
    expect(labels).toContain('org.opencontainers.image.version="${VERSION}"');
    expect(labels).toContain('org.opencontainers.image.licenses="Apache-2.0"');
  });
});

describe('.dockerignore', () => {
  const lines = fs
    .readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  it('starts from nothing and lets in only what the build copies', () => {
    expect(lines[0]).toBe('*');
    const allowed = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1));
    expect(allowed).toEqual(
      expect.arrayContaining([
        'package.json',
        'package-lock.json',
        'processor/package.json',
        'processor/src/',
        // The config contract the processor bundles from its sources (a workspace package).
        'packages/processor-config/package.json',
        'packages/processor-config/src/',
      ]),
    );
    expect(allowed.some((a) => /node_modules|test|fixtures|\.git/.test(a))).toBe(false);
    expect(lines).toEqual(expect.arrayContaining(['processor/node_modules', 'processor/test']));
  });
});

describe('release workflow', () => {
  const workflow = parseYaml(fs.readFileSync(path.join(ROOT, '.github', 'workflows', 'release.yml'), 'utf8'));
  type Step = { uses?: string; run?: string; with?: Record<string, string>; name?: string };
  const jobs = workflow.jobs as Record<string, { needs?: string | string[]; steps: Step[] }>;
  const steps = (job: string) => jobs[job].steps;
  const needs = (job: string) => [jobs[job].needs ?? []].flat();

  it('runs on version tags only, with read-only default permissions', () => {
    expect(workflow.on).toEqual({ push: { tags: ['v*.*.*'] } });
    expect(workflow.permissions).toEqual({ contents: 'read' });
  });

  it('pins every action by commit SHA', () => {
    const uses = Object.values(jobs).flatMap((job) => job.steps.map((s) => s.uses).filter(Boolean)) as string[];
    expect(uses.length).toBeGreaterThan(5);
    for (const ref of uses) expect(ref).toMatch(/^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/);
  });

  it('checks the tag against the package versions before anything else', () => {
    expect(needs('verify-version')).toEqual([]);
    expect(
      steps('verify-version').some((s) => s.run?.includes('scripts/release-check.mjs --tag "$GITHUB_REF_NAME"')),
    ).toBe(true);
  });

  it('tests from a clean checkout with the reference material beside it', () => {
    expect(needs('test')).toContain('verify-version');
    expect(steps('test').some((s) => s.run === 'bash .ci/run')).toBe(true);
    expect(steps('test').some((s) => s.with?.path === 'shared')).toBe(true);
  });

  it('builds the multi-arch image tagged with the package version after the tests', () => {
    expect(needs('image')).toEqual(expect.arrayContaining(['verify-version', 'test']));
    const push = steps('image').find((s) => s.uses?.startsWith('docker/build-push-action@'));
    expect(push?.with?.file).toBe('processor/Dockerfile');
    expect(push?.with?.platforms.split(',')).toEqual(expect.arrayContaining(['linux/amd64', 'linux/arm64']));
    expect(push?.with?.['build-args']).toBe('VERSION=${{ needs.verify-version.outputs.version }}');
    expect(push?.with?.tags).toBe('${{ env.IMAGE_REPOSITORY }}:${{ needs.verify-version.outputs.version }}');
    expect(steps('image').some((s) => s.run?.includes('release-check.mjs') && s.run.includes('--image-config'))).toBe(
      true,
    );
  });

  it('publishes to npm only after the image, and only if the library points at that image', () => {
    expect(needs('npm')).toContain('image');
    const runs = steps('npm').map((s) => s.run ?? '');
    const check = runs.findIndex((r) => r.includes('release-check.mjs') && r.includes('--library'));
    const publish = runs.findIndex((r) => r.startsWith('npm publish'));
    expect(check).toBeGreaterThan(-1);
    expect(publish).toBeGreaterThan(check);
  });
});

describe('scripts/release-check.mjs', () => {
  const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string;
  const check = (...args: string[]) =>
    spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'release-check.mjs'), ...args], { encoding: 'utf8' });

  it('accepts a tag and an image that match the package version', () => {
    const result = check('--tag', `v${version}`, '--image', `registry.example/ai-gateway-processor:${version}`);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('rejects a tag that differs from the package version', () => {
    const result = check('--tag', 'v99.0.0');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`tag v99.0.0 does not match package.json version ${version}`);
  });

  it('rejects an image tag that differs from the package version', () => {
    const result = check('--tag', `v${version}`, '--image', 'registry.example/p:0.0.0-other');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('is tagged 0.0.0-other, not the package version');
  });

  it('rejects pushed images whose version label differs, per platform', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'release-check-'));
    const file = path.join(dir, 'image.json');
    const label = (v: string) => ({ config: { Labels: { 'org.opencontainers.image.version': v } } });
    fs.writeFileSync(file, JSON.stringify({ 'linux/amd64': label(version), 'linux/arm64': label('0.0.1') }));
    const result = check('--tag', `v${version}`, '--image-config', file);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('image linux/arm64 has version label 0.0.1');
    expect(result.stderr).not.toContain('linux/amd64');
    fs.rmSync(dir, { recursive: true });
  });

  it('is plain Node.js (runs before npm ci in the workflow)', () => {
    expect(() =>
      execFileSync(process.execPath, ['--check', path.join(ROOT, 'scripts', 'release-check.mjs')]),
    ).not.toThrow();
  });
});
