/**
 * The smoke test of docs/kind.md: a synthesized gateway with its OpenAI backends answered by a mock, so a kind
 * cluster can be tried without provider keys.
 *
 *   npx tsx scripts/e2e/smoke-manifests.ts <synth-dir> <out-file> [--backend <namespace>/<name>]... [--model <name>]
 *
 * Reads every `*.k8s.yaml` of <synth-dir> and writes one file with the same objects, except that each Backend
 * at api.openai.com (or each `--backend` named) points at the mock inside the cluster, over plain HTTP: its `tls`
 * settings are removed, and so is any BackendTLSPolicy targeting it (earlier versions emitted one per Backend).
 * The mock is the vLLM simulator of the llm-d project (`MOCK_IMAGE`, a published image; nothing of it goes into the
 * processor image): an OpenAI-compatible server that echoes the last user
 * message and reports token usage, serving one model name (`--model`, default gpt-4o-mini). Its Deployment and
 * Service go into the namespace of the first mocked Backend, right after the Namespace objects, so one
 * `kubectl apply` creates everything. Applying the synthesized files again later restores the real backends.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';

/** The llm-d inference simulator, a release tag (the project publishes `ghcr.io/llm-d/llm-d-inference-sim:<tag>`). */
export const MOCK_IMAGE = 'ghcr.io/llm-d/llm-d-inference-sim:v0.9.2';
export const MOCK_NAME = 'mock-openai';
export const MOCK_PORT = 8000;
export const DEFAULT_MOCK_MODEL = 'gpt-4o-mini';
/** Context window of the mock: large enough for the budget step of docs/kind.md (one request of ~120k tokens). */
export const MOCK_MAX_MODEL_LEN = 200_000;
const OPENAI_HOST = 'api.openai.com';
const BACKEND_API = 'gateway.envoyproxy.io/v1alpha1';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

export interface SmokeOptions {
  /** Backends to answer by the mock, as `namespace/name`. Default: every Backend at api.openai.com. */
  readonly backends?: readonly string[];
  /** The model name the mock serves (it answers 404 for any other). */
  readonly model?: string;
}

export interface SmokeManifests {
  readonly objects: KubeObject[];
  /** The Backends now answered by the mock, as `namespace/name`. */
  readonly mocked: string[];
  /** The BackendTLSPolicies left out, as `namespace/name` (delete them when the smoke objects replace a deployment). */
  readonly droppedTlsPolicies: string[];
  /** In-cluster URL of the mock. */
  readonly mockUrl: string;
}

const ref = (object: KubeObject) => `${object.metadata.namespace ?? 'default'}/${object.metadata.name}`;

function isBackend(object: KubeObject): boolean {
  return object.apiVersion === BACKEND_API && object.kind === 'Backend';
}

type Endpoint = { fqdn?: { hostname: string; port: number } };

function endpoints(object: KubeObject): Endpoint[] {
  return (object.spec as { endpoints?: Endpoint[] } | undefined)?.endpoints ?? [];
}

/** The mock's Deployment and Service; the pod passes Pod Security "restricted". */
export function mockObjects(namespace: string, model: string = DEFAULT_MOCK_MODEL): KubeObject[] {
  const labels = { 'app.kubernetes.io/name': MOCK_NAME };
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: MOCK_NAME, namespace, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            automountServiceAccountToken: false,
            securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: 'simulator',
                image: MOCK_IMAGE,
                imagePullPolicy: 'IfNotPresent',
                args: [
                  '--model',
                  model,
                  '--port',
                  String(MOCK_PORT),
                  // Answer with the prompt itself: token usage then grows with what the client sends.
                  '--mode',
                  'echo',
                  '--max-model-len',
                  String(MOCK_MAX_MODEL_LEN),
                  // Count tokens with the simulator's own word splitter: no tokenizer download, no network.
                  '--force-dummy-tokenizer',
                ],
                ports: [{ name: 'http', containerPort: MOCK_PORT }],
                readinessProbe: { httpGet: { path: '/health', port: MOCK_PORT }, periodSeconds: 2 },
                resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
                securityContext: {
                  runAsNonRoot: true,
                  runAsUser: 65532,
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ['ALL'] },
                  seccompProfile: { type: 'RuntimeDefault' },
                },
              },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: MOCK_NAME, namespace, labels },
      spec: { selector: labels, ports: [{ name: 'http', port: MOCK_PORT, targetPort: MOCK_PORT, protocol: 'TCP' }] },
    },
  ];
}

/** The synthesized objects with the chosen Backends answered by the mock (see the file comment). */
export function smokeManifests(synthesized: readonly KubeObject[], options: SmokeOptions = {}): SmokeManifests {
  const backends = synthesized.filter(isBackend);
  const atOpenAI = (b: KubeObject) => endpoints(b).some((e) => e.fqdn?.hostname === OPENAI_HOST);
  const wanted = options.backends ?? backends.filter(atOpenAI).map(ref);
  for (const name of wanted) {
    if (!backends.some((b) => ref(b) === name)) {
      const known = backends.map(ref).join(', ') || 'none';
      throw new Error(`smoke-manifests: no Backend ${name} in the synthesized objects (Backends: ${known})`);
    }
  }
  if (wanted.length === 0) {
    throw new Error(
      `smoke-manifests: no Backend at ${OPENAI_HOST} in the synthesized objects; ` +
        'name the ones to mock with --backend <namespace>/<name>',
    );
  }
  const namespace = wanted[0].split('/')[0];
  const host = `${MOCK_NAME}.${namespace}.svc.cluster.local`;
  const mocked = new Set(wanted);
  const droppedTlsPolicies: string[] = [];
  const objects: KubeObject[] = [];
  for (const object of synthesized) {
    if (object.kind === 'BackendTLSPolicy') {
      const refs = (object.spec as { targetRefs?: { kind: string; name: string }[] }).targetRefs ?? [];
      const targets = refs.filter((t) => t.kind === 'Backend');
      if (targets.some((t) => mocked.has(`${object.metadata.namespace ?? 'default'}/${t.name}`))) {
        droppedTlsPolicies.push(ref(object));
        continue;
      }
    }
    if (isBackend(object) && mocked.has(ref(object))) {
      const { tls: _tls, ...plain } = object.spec as { tls?: unknown };
      const spec = { ...plain, endpoints: [{ fqdn: { hostname: host, port: MOCK_PORT } }] };
      objects.push({ ...object, spec });
    } else {
      objects.push(object);
    }
  }
  // Namespaces first (the mock's namespace may be one of them), then the mock, then everything else.
  const namespaces = objects.filter((o) => o.kind === 'Namespace');
  const others = objects.filter((o) => o.kind !== 'Namespace');
  return {
    objects: [...namespaces, ...mockObjects(namespace, options.model), ...others],
    mocked: wanted.slice(),
    droppedTlsPolicies,
    mockUrl: `http://${host}:${MOCK_PORT}/v1`,
  };
}

/** Every object of the `*.k8s.yaml` files of a synth output directory, in file name order. */
export function readSynthDir(dir: string): KubeObject[] {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.k8s.yaml'))
    .sort();
  if (files.length === 0) throw new Error(`smoke-manifests: no *.k8s.yaml in ${dir} (synthesize first)`);
  return files.flatMap((file) =>
    parseAllDocuments(fs.readFileSync(path.join(dir, file), 'utf8'))
      .map((doc) => doc.toJSON() as KubeObject | null)
      .filter((o): o is KubeObject => o !== null),
  );
}

function main(): void {
  const args = process.argv.slice(2);
  const positional: string[] = [];
  const backends: string[] = [];
  let model: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--backend' && args[i + 1]) backends.push(args[++i]);
    else if (args[i] === '--model' && args[i + 1]) model = args[++i];
    else if (args[i].startsWith('--')) throw new Error(`smoke-manifests: unknown flag ${args[i]}`);
    else positional.push(args[i]);
  }
  if (positional.length !== 2) {
    throw new Error(
      'usage: smoke-manifests.ts <synth-dir> <out-file> [--backend <namespace>/<name>]... [--model <name>]',
    );
  }
  const [dir, out] = positional;
  const smoke = smokeManifests(readSynthDir(dir), { backends: backends.length ? backends : undefined, model });
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, smoke.objects.map((o) => stringify(o)).join('---\n'));
  process.stdout.write(
    `wrote ${out}: ${smoke.objects.length} objects; ${smoke.mocked.join(', ')} answered by ${smoke.mockUrl} ` +
      `(model ${model ?? DEFAULT_MOCK_MODEL}); ` +
      `TLS off for them${smoke.droppedTlsPolicies.length ? `, left out ${smoke.droppedTlsPolicies.join(', ')}` : ''}\n`,
  );
}

if (require.main === module) {
  try {
    main();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(1);
  }
}
