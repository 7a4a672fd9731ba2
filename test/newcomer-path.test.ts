/**
 * The newcomer path: the README quickstart and docs/kind.md up to the kind step. The commands the guide gives
 * (synthesize the quickstart, write the smoke-test manifests) are taken from the guide itself and run as written,
 * with `dist/` moved to a temporary folder; their output must pass the CRD schemas and their CEL rules, the
 * Kubernetes types and Pod Security "restricted".
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import {
  DEFAULT_MOCK_MODEL,
  MOCK_IMAGE,
  MOCK_NAME,
  MOCK_PORT,
  mockObjects,
  smokeManifests,
  type KubeObject,
} from '../scripts/e2e/smoke-manifests';
import { manifestProblems, type Manifest } from './support/manifests';
import { describeWithShared } from './support/shared';

const ROOT = path.join(__dirname, '..');
const KIND_GUIDE = fs.readFileSync(path.join(ROOT, 'docs', 'kind.md'), 'utf8');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The commands of docs/kind.md, exactly as written there. */
const SYNTH = 'CDK8S_OUTDIR=dist/quickstart npx tsx examples/cdk8s/quickstart.ts';
const SMOKE = 'npx tsx scripts/e2e/smoke-manifests.ts dist/quickstart dist/quickstart-smoke.yaml';

/** The guide's shell lines (inside ```sh blocks). */
function guideCommands(): string[] {
  const blocks = [...KIND_GUIDE.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  return blocks.flatMap((block) => block.split('\n').map((line) => line.trim()));
}

function readYaml(file: string): KubeObject[] {
  return parseAllDocuments(fs.readFileSync(file, 'utf8'))
    .map((doc) => doc.toJSON() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
}

function find(objects: readonly KubeObject[], kind: string, name: string): KubeObject & { spec?: unknown } {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  const names = objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ');
  if (!found) throw new Error(`no ${kind} ${name} among ${names}`);
  return found;
}

type Container = { image: string; imagePullPolicy?: string; args: string[] };

function containers(deployment: KubeObject): Container[] {
  const typed = deployment as unknown as { spec: { template: { spec: { containers: Container[] } } } };
  return typed.spec.template.spec.containers;
}

/** Runs a command of the guide from the repository root with `dist/` replaced by `outdir/`. */
function runGuideCommand(command: string, outdir: string): string {
  const script = command.replace(/(^|\s|=)dist\//g, `$1${outdir}/`);
  return execFileSync('bash', ['-c', script], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'ai-gateway-newcomer-'));
afterAll(() => fs.rmSync(outdir, { recursive: true, force: true }));

let synthesized: KubeObject[] | undefined;
let smoke: KubeObject[] | undefined;
let smokePrinted = '';
/** Runs both commands once, in the order of the guide. */
function followGuide(): { synthesized: KubeObject[]; smoke: KubeObject[]; printed: string } {
  if (!synthesized || !smoke) {
    runGuideCommand(SYNTH, outdir);
    synthesized = readYaml(path.join(outdir, 'quickstart', 'ai.k8s.yaml'));
    smokePrinted = runGuideCommand(SMOKE, outdir);
    smoke = readYaml(path.join(outdir, 'quickstart-smoke.yaml'));
  }
  return { synthesized, smoke, printed: smokePrinted };
}

describe('docs/kind.md', () => {
  it('gives the synth and smoke-test commands this test runs, in that order', () => {
    const commands = guideCommands();
    expect(commands).toContain(SYNTH);
    expect(commands).toContain(SMOKE);
    expect(commands.indexOf(SYNTH)).toBeLessThan(commands.indexOf(SMOKE));
  });

  it('installs Envoy Gateway 1.9.3 or later with the values the quickstart wrote', () => {
    const helm = guideCommands().filter((line) => line.includes('oci://docker.io/envoyproxy/gateway-helm'));
    expect(helm.length).toBeGreaterThan(0);
    const versions = KIND_GUIDE.match(/--version v?(\d+)\.(\d+)\.(\d+)/g) ?? [];
    expect(versions.length).toBeGreaterThan(0);
    for (const flag of versions) {
      const [major, minor, patch] = flag
        .replace(/--version v?/, '')
        .split('.')
        .map(Number);
      expect(major * 1e6 + minor * 1e3 + patch).toBeGreaterThanOrEqual(1_009_003);
    }
    expect(KIND_GUIDE).toContain('-f dist/quickstart/envoy-gateway-values.yaml');
  });

  it('builds the processor image under the tag the synthesized Deployment runs, and loads it into kind', () => {
    const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const { synthesized } = followGuide();
    const [container] = containers(find(synthesized, 'Deployment', 'ai-gateway-processor'));
    expect(container.image).toBe(`ghcr.io/ai-gateway-constructs/ai-gateway-processor:${version}`);
    // A `kind load`ed image is used only when the kubelet does not pull it.
    expect(container.imagePullPolicy).toBe('IfNotPresent');
    const commands = guideCommands().join('\n');
    expect(commands).toContain('docker build -f processor/Dockerfile --build-arg VERSION="$VERSION" -t "$IMAGE" .');
    expect(commands).toContain('IMAGE=ghcr.io/ai-gateway-constructs/ai-gateway-processor:$VERSION');
    expect(commands).toContain('kind load docker-image "$IMAGE" --name ai-gateway');
  });

  it('is linked from the README quickstart', () => {
    expect(README).toContain('[docs/kind.md](docs/kind.md)');
  });
});

describe('the quickstart as the guide synthesizes it', () => {
  it('writes the manifests and the Envoy Gateway Helm values', () => {
    followGuide();
    const files = fs.readdirSync(path.join(outdir, 'quickstart')).sort();
    expect(files).toEqual(['ai.k8s.yaml', 'envoy-gateway-values.yaml']);
    const values = parse(fs.readFileSync(path.join(outdir, 'quickstart', 'envoy-gateway-values.yaml'), 'utf8'));
    expect(values.config.envoyGateway.extensionApis).toEqual({ enableBackend: true });
    expect(values.config.envoyGateway.rateLimit).toEqual({
      backend: { type: 'Redis', redis: { url: 'redis.ai.svc.cluster.local:6379' } },
    });
    expect(values.config.envoyGateway.provider.kubernetes.rateLimitDeployment.container.env).toEqual([
      { name: 'REDIS_AUTH', valueFrom: { secretKeyRef: { name: 'redis-auth', key: 'password' } } },
    ]);
  });

  it('creates its namespace first, without a namespace of its own', () => {
    const { synthesized } = followGuide();
    expect(synthesized[0]).toEqual({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ai' } });
    const namespaced = synthesized.filter((o) => !['Namespace', 'GatewayClass'].includes(o.kind));
    expect(new Set(namespaced.map((o) => o.metadata.namespace))).toEqual(new Set(['ai']));
  });

  it('names every object readably (no construct-path hashes)', () => {
    const { synthesized } = followGuide();
    const names = synthesized.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(names.filter((name) => /-[0-9a-f]{8}(-|$)/.test(name))).toEqual([]);
    expect(names).toEqual(
      expect.arrayContaining([
        'Backend/openai',
        'Backend/bedrock',
        'HTTPRoute/chat',
        'Gateway/ai-gateway',
        'Deployment/redis',
      ]),
    );
  });
});

describe('the smoke-test manifests', () => {
  it('are the quickstart with its OpenAI Backend answered by the mock, over plain HTTP', () => {
    const { synthesized, smoke, printed } = followGuide();
    const backend = (objects: KubeObject[], name: string) =>
      find(objects, 'Backend', name).spec as { endpoints: unknown[]; tls?: { sni: string } };
    const mockEndpoint = { fqdn: { hostname: `${MOCK_NAME}.ai.svc.cluster.local`, port: MOCK_PORT } };
    expect(backend(synthesized, 'openai').tls).toEqual({ sni: 'api.openai.com', wellKnownCACertificates: 'System' });
    // The mock speaks plain HTTP: its Backend has no TLS settings.
    expect(backend(smoke, 'openai')).toEqual({ endpoints: [mockEndpoint] });
    expect(backend(smoke, 'bedrock')).toEqual(backend(synthesized, 'bedrock'));
    expect(backend(smoke, 'bedrock').tls?.sni).toBe('bedrock-runtime.us-east-1.amazonaws.com');
    // Everything else is unchanged, and the mock comes right after the namespace.
    const changed = (o: KubeObject) =>
      o.metadata.name === MOCK_NAME || (o.kind === 'Backend' && o.metadata.name === 'openai');
    const rest = (objects: KubeObject[]) => objects.filter((o) => !changed(o));
    expect(rest(smoke)).toEqual(rest(synthesized));
    const first = smoke.slice(0, 3).map((o) => `${o.kind}/${o.metadata.name}`);
    expect(first).toEqual(['Namespace/ai', `Deployment/${MOCK_NAME}`, `Service/${MOCK_NAME}`]);
    expect(printed).toContain('ai/openai answered by http://mock-openai.ai.svc.cluster.local:8000/v1');
    expect(printed).toContain('TLS off for them\n');
  });

  it('run the published mock serving the model the guide asks for, without tokenizer downloads', () => {
    const { smoke } = followGuide();
    const [container] = containers(find(smoke, 'Deployment', MOCK_NAME));
    expect(container.image).toBe(MOCK_IMAGE);
    expect(container.args).toEqual(
      expect.arrayContaining(['--model', DEFAULT_MOCK_MODEL, '--mode', 'echo', '--force-dummy-tokenizer']),
    );
    expect(KIND_GUIDE).toContain(`"model":"${DEFAULT_MOCK_MODEL}"`);
    expect(KIND_GUIDE).toContain(MOCK_IMAGE);
  });
});

describeWithShared('crds/jsonschema', 'the newcomer path against the real schemas', (jsonschemaDir) => {
  it('the synthesized quickstart passes the CRD schemas and CEL rules, the Kubernetes types, Pod Security', () => {
    expect(manifestProblems(followGuide().synthesized as Manifest[], jsonschemaDir)).toEqual([]);
  });

  it('the smoke-test manifests pass them too', () => {
    expect(manifestProblems(followGuide().smoke as Manifest[], jsonschemaDir)).toEqual([]);
  });

  it('the mock alone is a valid Deployment and Service in any namespace', () => {
    expect(manifestProblems(mockObjects('smoke', 'gpt-4o') as Manifest[], jsonschemaDir)).toEqual([]);
  });
});

describe('smokeManifests', () => {
  const backend = (name: string, hostname: string): KubeObject => ({
    apiVersion: 'gateway.envoyproxy.io/v1alpha1',
    kind: 'Backend',
    metadata: { name, namespace: 'team' },
    spec: { endpoints: [{ fqdn: { hostname, port: 443 } }] },
  });

  it('throws when no Backend is at api.openai.com and none is named', () => {
    expect(() => smokeManifests([backend('groq', 'api.groq.com')])).toThrow(
      'smoke-manifests: no Backend at api.openai.com in the synthesized objects; ' +
        'name the ones to mock with --backend <namespace>/<name>',
    );
  });

  it('throws naming the Backends there are when --backend names another', () => {
    expect(() => smokeManifests([backend('groq', 'api.groq.com')], { backends: ['team/openai'] })).toThrow(
      'smoke-manifests: no Backend team/openai in the synthesized objects (Backends: team/groq)',
    );
  });

  it('mocks the named Backends in their namespace, with the model asked for', () => {
    const objects = [backend('groq', 'api.groq.com'), backend('openai', 'api.openai.com')];
    const result = smokeManifests(objects, { backends: ['team/groq'], model: 'llama-3' });
    expect(result.mocked).toEqual(['team/groq']);
    expect(result.mockUrl).toBe('http://mock-openai.team.svc.cluster.local:8000/v1');
    const unchanged = { endpoints: [{ fqdn: { hostname: 'api.openai.com', port: 443 } }] };
    expect(find(result.objects, 'Backend', 'openai').spec).toEqual(unchanged);
    const mock = find(result.objects, 'Deployment', MOCK_NAME);
    expect(mock.metadata.namespace).toBe('team');
    expect(containers(mock)[0].args.slice(0, 2)).toEqual(['--model', 'llama-3']);
  });

  it('turns TLS off for the mocked Backends only, their own settings and any BackendTLSPolicy targeting them', () => {
    const tls = (object: KubeObject, sni: string): KubeObject => ({
      ...object,
      spec: { ...(object.spec as object), tls: { sni, wellKnownCACertificates: 'System' } },
    });
    const policy = (name: string, target: string): KubeObject => ({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'BackendTLSPolicy',
      metadata: { name, namespace: 'team' },
      spec: {
        targetRefs: [{ group: 'gateway.envoyproxy.io', kind: 'Backend', name: target }],
        validation: { hostname: 'api.groq.com', wellKnownCACertificates: 'System' },
      },
    });
    const groq = backend('groq', 'api.groq.com');
    const objects = [tls(backend('openai', 'api.openai.com'), 'api.openai.com'), groq, policy('groq-tls', 'groq')];
    const result = smokeManifests(objects, { backends: ['team/openai', 'team/groq'] });
    expect(find(result.objects, 'Backend', 'openai').spec).not.toHaveProperty('tls');
    expect(result.objects.filter((o) => o.kind === 'BackendTLSPolicy')).toEqual([]);
    expect(result.droppedTlsPolicies).toEqual(['team/groq-tls']);
    const kept = smokeManifests(objects, { backends: ['team/openai'] });
    expect(kept.objects.filter((o) => o.kind === 'BackendTLSPolicy').map((o) => o.metadata.name)).toEqual(['groq-tls']);
  });
});
