/**
 * The manifests of a real-cluster end-to-end run (scripts/e2e/kind.sh): the same scenarios the local suite runs
 * (test/e2e/support/scenarios.ts), synthesized by the constructs, with what only a test cluster needs on top:
 *
 * - the fake providers as one Deployment + Service in namespace `e2e` (image built from scripts/e2e/fake-providers.ts);
 * - every Backend pointed at its fake (plain HTTP inside the cluster, so its TLS settings are removed);
 * - the processor image built from processor/Dockerfile and `kind load`ed, and the processor environment the fakes
 *   expect (AWS default-chain keys, GCP application default credentials pointing at the fake token endpoint);
 * - the provider Secrets of each scenario.
 *
 *   npx tsx scripts/e2e/cluster-manifests.ts <out-dir> [--processor-image ref] [--fakes-image ref]
 *
 * Writes one YAML file per scenario plus `00-fakes.yaml`, and prints the scenario names (for E2E_SCENARIOS) and
 * the gateways to reach (namespace/name:port).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import type { KubeObject } from '../../lib/dataplane/model';
import { translate } from '../../lib/dataplane/translate';
import { gcpExternalAccountCredentials } from '../../test/e2e/support/fake-providers';
import { FAKE_PORTS } from '../../test/e2e/support/fakes';
import {
  exampleScenario,
  FAKE_CREDENTIALS,
  FAKES_APP_LABEL,
  PREFIX_VARIANTS,
  providersScenario,
  type Scenario,
} from '../../test/e2e/support/scenarios';

const FAKES_NAMESPACE = 'e2e';
const FAKES_NAME = 'e2e-fake-providers';
const FAKES_HOST = `${FAKES_NAME}.${FAKES_NAMESPACE}.svc.cluster.local`;
const GCP_SECRET = 'e2e-gcp-adc';
const GCP_MOUNT = '/var/run/e2e-gcp';

/** The scenarios a cluster run deploys (each has its own Gateway). */
export function clusterScenarios(): Scenario[] {
  return [exampleScenario(), providersScenario(PREFIX_VARIANTS[0])];
}

type Json = Record<string, unknown>;

function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function fakesObjects(image: string): KubeObject[] {
  const ports = Object.entries(FAKE_PORTS).map(([name, port]) => ({ name, port, targetPort: port, protocol: 'TCP' }));
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: FAKES_NAMESPACE } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: FAKES_NAME, namespace: FAKES_NAMESPACE, labels: { ...FAKES_APP_LABEL } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { ...FAKES_APP_LABEL } },
        template: {
          metadata: { labels: { ...FAKES_APP_LABEL } },
          spec: {
            containers: [
              {
                name: 'fakes',
                image,
                imagePullPolicy: 'Never',
                env: [{ name: 'FAKES_HOST', value: '0.0.0.0' }],
                ports: ports.map((p) => ({ name: p.name.slice(0, 15), containerPort: p.port })),
                readinessProbe: { tcpSocket: { port: FAKE_PORTS.openai }, periodSeconds: 2 },
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
      metadata: { name: FAKES_NAME, namespace: FAKES_NAMESPACE },
      spec: { selector: { ...FAKES_APP_LABEL }, ports },
    },
  ];
}

function secretObject(namespace: string, name: string, data: Record<string, string>): KubeObject {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'Opaque', stringData: data };
}

/** The scenario's provider Secrets, one object per Secret. */
function providerSecrets(scenario: Scenario): KubeObject[] {
  const grouped = new Map<string, Record<string, string>>();
  for (const [ref, value] of Object.entries(scenario.secrets)) {
    const [namespace, secret, key] = ref.split('/');
    const id = `${namespace}/${secret}`;
    grouped.set(id, { ...(grouped.get(id) ?? {}), [key]: value });
  }
  return [...grouped.entries()].map(([id, data]) => {
    const [namespace, name] = id.split('/');
    return secretObject(namespace, name, data);
  });
}

/** Points a Backend at its fake (or leaves it when no fake plays it). */
function patchBackend(object: Json, scenario: Scenario): Json {
  const metadata = object.metadata as { name: string; namespace: string };
  const fake = scenario.backends[`${metadata.namespace}/${metadata.name}`];
  if (!fake) return object;
  const patched = clone(object);
  (patched.spec as Json).endpoints = [{ fqdn: { hostname: FAKES_HOST, port: FAKE_PORTS[fake] } }];
  delete (patched.spec as Json).tls;
  return patched;
}

/** The processor Deployment with the locally built image and the environment the fakes expect. */
function patchProcessor(object: Json, image: string): Json {
  const patched = clone(object);
  const podSpec = ((patched.spec as Json).template as Json).spec as { containers: Json[]; volumes?: Json[] };
  podSpec.volumes = [...(podSpec.volumes ?? []), { name: 'e2e-gcp', secret: { secretName: GCP_SECRET } }];
  for (const container of podSpec.containers) {
    container.image = image;
    container.imagePullPolicy = 'Never';
    container.env = [
      ...((container.env as Json[] | undefined) ?? []),
      { name: 'AWS_ACCESS_KEY_ID', value: FAKE_CREDENTIALS.aws.accessKeyId },
      { name: 'AWS_SECRET_ACCESS_KEY', value: FAKE_CREDENTIALS.aws.secretAccessKey },
      { name: 'AWS_EC2_METADATA_DISABLED', value: 'true' },
      { name: 'GOOGLE_APPLICATION_CREDENTIALS', value: `${GCP_MOUNT}/adc.json` },
      { name: 'GOOGLE_CLOUD_PROJECT', value: FAKE_CREDENTIALS.gcpProject },
    ];
    container.volumeMounts = [
      ...((container.volumeMounts as Json[] | undefined) ?? []),
      { name: 'e2e-gcp', mountPath: GCP_MOUNT, readOnly: true },
    ];
  }
  return patched;
}

export function clusterObjects(scenario: Scenario, processorImage: string): KubeObject[] {
  const processors = translate(scenario.objects).processors;
  const isProcessor = (object: KubeObject) =>
    object.kind === 'Deployment' &&
    processors.some((p) => p.namespace === object.metadata?.namespace && p.deploymentName === object.metadata?.name);
  const objects: KubeObject[] = [];
  for (const object of scenario.objects) {
    if (object.kind === 'Backend') objects.push(patchBackend(object, scenario));
    else if (isProcessor(object)) objects.push(patchProcessor(object, processorImage));
    else objects.push(object);
  }
  const namespaces = new Set(processors.map((p) => p.namespace));
  const gcpFiles = {
    'adc.json': JSON.stringify(
      gcpExternalAccountCredentials(
        `http://${FAKES_HOST}:${FAKE_PORTS['gcp-token']}/v1/token`,
        `${GCP_MOUNT}/subject-token`,
      ),
    ),
    'subject-token': FAKE_CREDENTIALS.gcpSubjectToken,
  };
  const hasNamespaceObject = (name: string) => objects.some((o) => o.kind === 'Namespace' && o.metadata?.name === name);
  const extra: KubeObject[] = [];
  for (const namespace of namespaces) {
    if (!hasNamespaceObject(namespace) && namespace !== FAKES_NAMESPACE)
      extra.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
    extra.push(secretObject(namespace, GCP_SECRET, gcpFiles));
  }
  // Namespaces first, so one `kubectl apply` creates everything.
  const ordered = [
    ...objects.filter((o) => o.kind === 'Namespace'),
    ...extra,
    ...providerSecrets(scenario),
    ...objects.filter((o) => o.kind !== 'Namespace'),
  ];
  return ordered;
}

function fileName(scenario: Scenario): string {
  return `${scenario.name
    .replace(/[^a-z0-9]+/gi, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase()}.yaml`;
}

function main(): void {
  const args = process.argv.slice(2);
  const flag = (name: string, fallback: string) => {
    const at = args.indexOf(name);
    return at >= 0 && args[at + 1] ? args[at + 1] : fallback;
  };
  const outDir = args.find((arg, i) => !arg.startsWith('--') && (i === 0 || !args[i - 1].startsWith('--')));
  if (!outDir) throw new Error('usage: cluster-manifests.ts <out-dir> [--processor-image ref] [--fakes-image ref]');
  const processorImage = flag('--processor-image', 'ai-gateway-processor:e2e');
  const fakesImage = flag('--fakes-image', 'ai-gateway-e2e-fakes:e2e');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(
    path.join(outDir, '00-fakes.yaml'),
    fakesObjects(fakesImage)
      .map((o) => stringify(o))
      .join('---\n'),
  );
  const scenarios = clusterScenarios();
  for (const scenario of scenarios) {
    const objects = clusterObjects(scenario, processorImage);
    fs.writeFileSync(path.join(outDir, fileName(scenario)), objects.map((o) => stringify(o)).join('---\n'));
  }
  process.stdout.write(`scenarios=${scenarios.map((s) => s.name).join(',')}\n`);
  for (const scenario of scenarios)
    process.stdout.write(`gateway=${scenario.gateway.namespace}/${scenario.gateway.name}:${scenario.gateway.port}\n`);
}

if (require.main === module) main();
