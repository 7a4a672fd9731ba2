/**
 * Runs a scenario end to end. Two modes, one suite:
 *
 * - local (default): the fake providers in this process, the real processor bundle as child processes
 *   (`startProcessors`), the local data plane (`startDataPlane`) serving the synthesized objects with every
 *   Backend/Service of the scenario pointed at its fake, and Redis when `REDIS_URL` is set;
 * - cluster (`E2E_GATEWAY_URLS` or `E2E_GATEWAY_URL` set): the gateway is an Envoy Gateway installed in a cluster
 *   with the same synthesized objects (scripts/e2e/kind.sh), the fakes run there (scripts/e2e/fake-providers.ts)
 *   and their record endpoints are reachable at `E2E_FAKES_URL` (one port per fake, see FAKE_PORTS); scenarios
 *   not listed in `E2E_SCENARIOS` are skipped.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { devUpstreamsValue } from '../../../lib/dataplane/dev-upstreams';
import type { KubeObject } from '../../../lib/dataplane/model';
import { startProcessors, type RunningProcessors } from '../../../lib/dataplane/processes';
import { startDataPlane, type DataPlaneOptions, type RunningDataPlane } from '../../../lib/dataplane/server';
import { translate } from '../../../lib/dataplane/translate';
import { gcpExternalAccountCredentials } from './fake-providers';
import { FAKE_PORTS, startFakes, type StartedFakes } from './fakes';
import { clearRecords, fetchRecords, type RecordedRequest } from './recording-server';
import { FAKE_CREDENTIALS, type FakeName, type Scenario } from './scenarios';

export { FAKE_PORTS, startFakes };

export const REPO_ROOT = path.resolve(__dirname, '../../..');
const PROCESSOR_BUNDLE = path.join(REPO_ROOT, 'processor/dist/main.js');

export interface FakeHandle {
  readonly name: FakeName;
  /** Base URL where the fake (and its record endpoint) is reachable from the test. */
  readonly url: string;
  records(): Promise<RecordedRequest[]>;
  clear(): Promise<void>;
}

export interface RunningScenario {
  readonly scenario: Scenario;
  /** `http://host:port` of the gateway listener. */
  readonly gatewayUrl: string;
  readonly fakes: Record<FakeName, FakeHandle>;
  /** Redis the budgets count in (local mode with REDIS_URL), undefined otherwise. */
  readonly redisUrl?: string;
  /** The local data plane, in local mode. */
  readonly dataPlane?: RunningDataPlane;
  /** The processors (their admin address serves `/metrics`), in local mode. */
  readonly processors?: RunningProcessors;
  readonly mode: 'local' | 'cluster';
  close(): Promise<void>;
}

/**
 * Cluster mode: `E2E_GATEWAY_URL` (one gateway for every scenario) or `E2E_GATEWAY_URLS`
 * (`<namespace>/<gateway>=<url>,...`, one per deployed scenario gateway).
 */
export const clusterMode = (): boolean => Boolean(process.env.E2E_GATEWAY_URL || process.env.E2E_GATEWAY_URLS);

function clusterGatewayUrl(scenario: Scenario): string {
  const { namespace, name } = scenario.gateway;
  for (const entry of (process.env.E2E_GATEWAY_URLS ?? '').split(',')) {
    const at = entry.indexOf('=');
    if (at > 0 && entry.slice(0, at).trim() === `${namespace}/${name}`)
      return entry
        .slice(at + 1)
        .trim()
        .replace(/\/+$/, '');
  }
  if (process.env.E2E_GATEWAY_URL) return process.env.E2E_GATEWAY_URL.replace(/\/+$/, '');
  throw new Error(
    `no address for gateway ${namespace}/${name} in E2E_GATEWAY_URLS (${process.env.E2E_GATEWAY_URLS ?? ''})`,
  );
}

/** Newest modification time of the processor's sources (what the bundle is built from). */
function newestProcessorSource(dir = path.join(REPO_ROOT, 'processor/src')): { file: string; mtimeMs: number } {
  let newest = { file: dir, mtimeMs: 0 };
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    const candidate = entry.isDirectory()
      ? newestProcessorSource(full)
      : { file: full, mtimeMs: fs.statSync(full).mtimeMs };
    if (candidate.mtimeMs > newest.mtimeMs) newest = candidate;
  }
  return newest;
}

/**
 * The processor bundle the suite runs: built when missing (a fresh checkout before `npm run build`); refused when
 * older than the processor's sources, since a stale bundle would test yesterday's processor against today's
 * manifests (`npm test` builds it before jest runs).
 */
export function ensureProcessorBundle(): string {
  if (!fs.existsSync(PROCESSOR_BUNDLE)) {
    execFileSync('npm', ['run', 'build', '-w', 'processor'], { cwd: REPO_ROOT, stdio: 'inherit' });
  }
  const newest = newestProcessorSource();
  if (newest.mtimeMs > fs.statSync(PROCESSOR_BUNDLE).mtimeMs) {
    throw new Error(
      `${path.relative(REPO_ROOT, PROCESSOR_BUNDLE)} is older than ` +
        `${path.relative(REPO_ROOT, newest.file)}: run \`npm run build -w processor\``,
    );
  }
  return PROCESSOR_BUNDLE;
}

function handle(name: FakeName, url: string): FakeHandle {
  return { name, url, records: () => fetchRecords(url), clear: () => clearRecords(url) };
}

/**
 * The processor environment the fakes need: AWS default-chain credentials, and GCP application default
 * credentials (workload identity federation) whose token endpoint is the fake STS.
 */
function processorEnvironment(workDir: string, gcpTokenUrl: string): Record<string, string> {
  const subjectFile = path.join(workDir, 'gcp-subject-token');
  fs.writeFileSync(subjectFile, FAKE_CREDENTIALS.gcpSubjectToken);
  const adcFile = path.join(workDir, 'gcp-adc.json');
  fs.writeFileSync(adcFile, JSON.stringify(gcpExternalAccountCredentials(`${gcpTokenUrl}/v1/token`, subjectFile)));
  const env: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'NODE_OPTIONS']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return {
    ...env,
    AWS_ACCESS_KEY_ID: FAKE_CREDENTIALS.aws.accessKeyId,
    AWS_SECRET_ACCESS_KEY: FAKE_CREDENTIALS.aws.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
    GOOGLE_APPLICATION_CREDENTIALS: adcFile,
    // Without it, google-auth-library looks the project up at cloudresourcemanager.googleapis.com first.
    GOOGLE_CLOUD_PROJECT: FAKE_CREDENTIALS.gcpProject,
  };
}

/** Writes `<namespace>/<secret>/<key>` values into the `--secrets` folder layout. */
function writeSecrets(dir: string, secrets: Record<string, string>): void {
  for (const [ref, value] of Object.entries(secrets)) {
    const [namespace, secret, key] = ref.split('/');
    const folder = path.join(dir, namespace, secret);
    fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(path.join(folder, key), value, { mode: 0o600 });
  }
}

export interface StartOptions {
  /** Redis for the counters (local mode); default none = the data plane's in-memory counters. */
  redisUrl?: string;
  /** Extra data plane options (e.g. JWKS overrides). */
  dataPlane?: Pick<DataPlaneOptions, 'jwksOverrides' | 'extraCaCertificates' | 'accessLog'>;
  /** Replaces the scenario's objects (e.g. the old manifests). */
  objects?: KubeObject[];
  /** Fakes shared by several scenarios (closed by the caller); default: a set started for this scenario. */
  fakes?: StartedFakes;
  /** Serve the gateway's listener on this local port (default: a free port). */
  listenerPort?: number;
  /** `<namespace>/<name>` of a Backend or Service -> URL, replacing the scenario's fake for it. */
  backendUrls?: Record<string, string>;
  /** Receives each output line of the processors (prefixed with `[<ns>/<deployment>]`). */
  processorLog?: (line: string) => void;
}

export async function startScenario(scenario: Scenario, options: StartOptions = {}): Promise<RunningScenario> {
  if (clusterMode()) return clusterScenario(scenario);
  const processorEntry = ensureProcessorBundle();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ai-gateway-e2e-'));
  const cleanups: (() => Promise<void> | void)[] = [() => fs.rmSync(workDir, { recursive: true, force: true })];
  const close = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
  try {
    const fakes = options.fakes ?? (await startFakes());
    if (!options.fakes) cleanups.push(() => fakes.close());
    const secretsDir = path.join(workDir, 'secrets');
    writeSecrets(secretsDir, scenario.secrets);
    const objects = options.objects ?? scenario.objects;
    const model = translate(objects);
    const backendOverrides: Record<string, string> = {};
    for (const [ref, fake] of Object.entries(scenario.backends)) backendOverrides[ref] = fakes.fakes[fake].url;
    Object.assign(backendOverrides, options.backendUrls);
    const processors: RunningProcessors = await startProcessors(model.processors, {
      processorEntry,
      secretsDir,
      env: processorEnvironment(workDir, fakes.gcpToken.url),
      log: (line) => {
        options.processorLog?.(line);
        if (process.env.E2E_VERBOSE) process.stderr.write(`${line}\n`);
      },
      // The processor's own fallback attempts reach the same fakes as Envoy's requests.
      devUpstreams: (deployment) => devUpstreamsValue(model, deployment, backendOverrides),
    });
    cleanups.push(() => processors.close());
    const dataPlane = await startDataPlane({
      objects,
      backendOverrides,
      services: (namespace: string, name: string, port: number) => processors.resolve(namespace, name, port),
      redisUrl: options.redisUrl,
      ...(options.listenerPort !== undefined ? { listenerPort: () => options.listenerPort! } : {}),
      ...options.dataPlane,
    });
    cleanups.push(() => dataPlane.close());
    const { namespace, name, port } = scenario.gateway;
    const handles = Object.fromEntries(
      Object.entries(fakes.fakes).map(([fake, server]) => [fake, handle(fake as FakeName, server.url)]),
    ) as Record<FakeName, FakeHandle>;
    return {
      scenario,
      gatewayUrl: dataPlane.address(namespace, name, port),
      fakes: handles,
      redisUrl: options.redisUrl,
      dataPlane,
      processors,
      mode: 'local',
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Cluster mode: the scenario was applied by scripts/e2e/kind.sh; only the addresses are needed. */
function clusterScenario(scenario: Scenario): RunningScenario {
  const fakesUrl = process.env.E2E_FAKES_URL;
  if (!fakesUrl)
    throw new Error(
      'cluster mode (E2E_GATEWAY_URL[S]) needs E2E_FAKES_URL: the suite reads what the fakes ' +
        'received from their record endpoints',
    );
  const base = new URL(fakesUrl);
  const handles = {} as Record<FakeName, FakeHandle>;
  for (const fake of Object.keys(FAKE_PORTS) as (FakeName | 'gcp-token')[]) {
    if (fake === 'gcp-token') continue;
    handles[fake] = handle(fake, `${base.protocol}//${base.hostname}:${FAKE_PORTS[fake]}`);
  }
  return {
    scenario,
    gatewayUrl: clusterGatewayUrl(scenario),
    fakes: handles,
    mode: 'cluster',
    close: async () => undefined,
  };
}
