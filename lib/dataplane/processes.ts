/**
 * Runs the real processor, one child process per processor Deployment in the manifests, the way its pod would
 * run: the keys of its config ConfigMaps (a `config.json`, or a bundle's manifest and parts) and the mounted Secret
 * keys are written to a private temp folder laid out like the pod's volumes, and the Deployment's own args are kept
 * except the four that name files and addresses.
 * The processor listens on ephemeral loopback ports; `resolve()` maps its Service to them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { PROCESSOR_NODE_OPTIONS } from '@ai-gateway-constructs/processor-config';
import type { ProcessorDeployment } from './model';
import { DEV_UPSTREAMS_FLAG } from './dev-upstreams';
import { configMapKeyProblem } from './objects';
import { argValue, processorFlags } from './processor-args';
import { configSecretRefs, readSecretKey, SECRET_ENV_PREFIX, type SecretSource } from './secrets';
import { sleep } from './sleep';

export { argValue } from './processor-args';

/** Where the processor reads its secrets when its args do not say (the processor's own default). */
const PROCESSOR_DEFAULT_SECRETS_DIR = '/etc/ai-gateway/secrets';
/**
 * The args the local run replaces or drops: they name pod paths and pod addresses, or (the shutdown delay) wait for
 * Kubernetes to take the pod out of its Service's endpoints, which a local stop has no need for; the development
 * override of the processor's own upstreams is the local run's to give (`devUpstreams`).
 */
const REPLACED_FLAGS = ['--config', '--secrets-dir', '--listen', '--admin', '--shutdown-delay-ms', DEV_UPSTREAMS_FLAG];
/** The processor prints exactly this line on stdout once it serves (see processor/src/main.ts). */
const READY_LINE = /^ai-gateway-processor ready: ext_proc on \S+ \(port (\d+)\), admin on \S+ \(port (\d+)\)/;
/** Output lines kept for the error message of a processor that fails to start. */
const TAIL_LINES = 20;
/** Longest output line passed on (a runaway line must not fill the memory). */
const MAX_LINE_CHARS = 16 * 1024;

export interface StartProcessorsOptions {
  /** The `--secrets <dir>` folder (see secrets.ts for the layouts). */
  readonly secretsDir?: string;
  /** Environment for `AI_GATEWAY_SECRET_*` lookups and for the processes (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The processor's entry script (default: the processor bundle, see `defaultProcessorEntry`). */
  readonly processorEntry?: string;
  /** Loopback address the processors listen on (default 127.0.0.1). */
  readonly host?: string;
  /** Bound on the start of each processor, until `/readyz` answers 200 (default 20 s). */
  readonly readyTimeoutMs?: number;
  /** Bound on each processor's SIGTERM drain before SIGKILL (default 10 s). */
  readonly stopTimeoutMs?: number;
  /** Append the processors' output to this file instead of stderr. */
  readonly logFile?: string;
  /** Receives each output line, prefixed with `[<ns>/<deployment>]` (default: stderr, or `logFile`). */
  readonly log?: (line: string) => void;
  /**
   * Called when a ready processor exits before `close()` (a crash: in a cluster its pod would restart; here the
   * routes it serves answer 500 from then on). `how` is e.g. `exit code 1` or `signal SIGKILL`.
   */
  readonly onExit?: (processor: RunningProcessor, how: string) => void;
  /**
   * The `--dev-upstreams` value for a processor (see dev-upstreams.ts `devUpstreamsValue`): where its own upstream
   * attempts go instead of the backends' endpoints. Undefined (the default): the flag is not passed.
   */
  readonly devUpstreams?: (deployment: ProcessorDeployment) => string | undefined;
  /**
   * Extra CA certificates (PEM) a processor given an `https://` dev upstream trusts besides the system CAs: written
   * next to its config, with the file `NODE_EXTRA_CA_CERTS` already names, and that variable pointed at it (how the
   * processor's attempts verify https dev upstreams). Default none.
   */
  readonly devUpstreamCaCertificates?: readonly string[];
}

export interface RunningProcessor {
  readonly deployment: ProcessorDeployment;
  readonly pid: number;
  /** `host:port` of the ext_proc gRPC server. */
  readonly grpcAddress: string;
  /** `host:port` of `/healthz`, `/readyz`, `/metrics`. */
  readonly adminAddress: string;
}

export interface RunningProcessors {
  readonly processors: readonly RunningProcessor[];
  /** The private folder holding each processor's config.json and Secret keys (removed by `close()`). */
  readonly workDir: string;
  /** `host:port` serving the processor Service `namespace/serviceName` on `port`, or undefined. */
  resolve(namespace: string, serviceName: string, port: number): string | undefined;
  /** SIGTERM every processor, SIGKILL those still running after the stop timeout; removes the temp folder. */
  close(): Promise<void>;
}

export class ProcessorStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProcessorStartError';
  }
}

/**
 * The processor bundle (`processor/dist/main.js`, built by `npm run build -w processor`), looked up next to this
 * module both in the repository (`lib/dataplane/`) and in the published package (`build/lib/dataplane/`).
 */
export function defaultProcessorEntry(): string {
  const candidates = [
    path.resolve(__dirname, '../../processor/dist/main.js'),
    path.resolve(__dirname, '../../../processor/dist/main.js'),
  ];
  const found = candidates.find((file) => fs.existsSync(file));
  if (found === undefined) {
    throw new ProcessorStartError(
      `the processor bundle is missing (looked for ${candidates.join(' and ')}); in the ` +
        `repository, build it with "npm run build -w processor"`,
    );
  }
  return found;
}

/** The Deployment's args without the ones the local run replaces. */
export function keptArgs(args: readonly string[]): string[] {
  return processorFlags(args).flatMap((flag) => (REPLACED_FLAGS.includes(flag.name) ? [] : flag.args));
}

function deploymentId(deployment: ProcessorDeployment): string {
  return `${deployment.namespace}/${deployment.deploymentName}`;
}

/**
 * Writes, under `secretsRoot`, every Secret key the processor's config reads, at the path relative to the
 * processor's `--secrets-dir` where the Deployment's Secret volumes put it (honouring volume `items`).
 */
export function materializeSecrets(
  deployment: ProcessorDeployment,
  podSecretsDir: string,
  secretsRoot: string,
  source: SecretSource,
): void {
  const who = `processor Deployment ${deploymentId(deployment)}`;
  // Every path is checked before any secret is read or written.
  const placements = configSecretRefs(deployment.configJson).map((ref) => {
    const podPath = path.posix.join(podSecretsDir, ref.secretName, ref.key);
    const mount = deployment.secretMounts
      .filter((m) => podPath.startsWith(`${m.mountPath.replace(/\/+$/, '')}/`))
      .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
    if (mount === undefined) {
      throw new ProcessorStartError(
        `${who} reads Secret "${ref.secretName}" key "${ref.key}" from ${podPath} (its config.json ` +
          `refers to it), but no Secret volume of the Deployment is mounted there`,
      );
    }
    const inMount = podPath.slice(mount.mountPath.replace(/\/+$/, '').length + 1);
    const key = mount.items ? mount.items.find((item) => item.path === inMount)?.key : inMount;
    if (key === undefined || key.includes('/')) {
      throw new ProcessorStartError(
        `${who} reads ${podPath} (Secret "${ref.secretName}" key "${ref.key}" in its config.json), ` +
          `but the volume of Secret "${mount.secretName}" mounted at ${mount.mountPath} does not ` +
          `project a key to that path`,
      );
    }
    const local = path.join(secretsRoot, ...path.posix.relative(podSecretsDir, podPath).split('/'));
    if (!path.resolve(local).startsWith(`${path.resolve(secretsRoot)}${path.sep}`)) {
      throw new ProcessorStartError(
        `${who} reads Secret "${ref.secretName}" key "${ref.key}" from ${podPath}, outside its ` +
          `secrets folder ${podSecretsDir}`,
      );
    }
    return { secretName: mount.secretName, key, local };
  });
  for (const { secretName, key, local } of placements) {
    const found = readSecretKey({ namespace: deployment.namespace, secretName, key }, source, who);
    fs.mkdirSync(path.dirname(local), { recursive: true, mode: 0o700 });
    fs.writeFileSync(local, found.value, { mode: 0o600 });
  }
}

/** The processes' environment: ours without the `AI_GATEWAY_SECRET_*` values (the processor reads files). */
function childEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && !name.startsWith(SECRET_ENV_PREFIX)) out[name] = value;
  }
  return out;
}

/** A file's text, or undefined when no file is named or it cannot be read (Node ignores such a CA file too). */
function readOptional(file: string | undefined): string | undefined {
  if (!file) return undefined;
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function httpStatus(url: string, timeoutMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const request = http.get(url, { timeout: timeoutMs }, (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(undefined));
  });
}

interface Child {
  readonly deployment: ProcessorDeployment;
  readonly process: ChildProcess;
  readonly exited: Promise<void>;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  hasExited: boolean;
}

function waitExited(child: Child, ms: number): Promise<boolean> {
  if (child.hasExited) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void child.exited.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function stopChild(child: Child, timeoutMs: number): Promise<void> {
  if (child.hasExited) return;
  child.process.kill('SIGTERM');
  if (await waitExited(child, timeoutMs)) return;
  child.process.kill('SIGKILL');
  await waitExited(child, 5_000);
}

/** Starts one processor per Deployment (in parallel) and waits until each is ready. */
export async function startProcessors(
  deployments: readonly ProcessorDeployment[],
  options: StartProcessorsOptions = {},
): Promise<RunningProcessors> {
  const env = options.env ?? process.env;
  const host = options.host ?? '127.0.0.1';
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
  const entry = deployments.length > 0 ? (options.processorEntry ?? defaultProcessorEntry()) : '';
  if (deployments.length > 0 && !fs.existsSync(entry))
    throw new ProcessorStartError(`the processor entry ${entry} does not exist`);
  const seen = new Set<string>();
  for (const deployment of deployments) {
    const id = deploymentId(deployment);
    if (seen.has(id)) throw new ProcessorStartError(`processor Deployment ${id} appears twice in the manifests`);
    seen.add(id);
    // Each key becomes a file name in the config folder: one that is no ConfigMap key (`../x`, `a/b`) could name a
    // path outside it.
    for (const key of Object.keys(deployment.configFiles ?? {})) {
      const problem = configMapKeyProblem(key);
      if (problem !== undefined) {
        throw new ProcessorStartError(
          `processor Deployment ${id}: its config volume (ConfigMap ${deployment.namespace}/` +
            `${deployment.configMapName}) has the key ${JSON.stringify(key)}, which is not a valid ConfigMap key: ` +
            `${problem}; nothing was written or started`,
        );
      }
    }
  }

  const logStream = options.logFile !== undefined ? fs.createWriteStream(options.logFile, { flags: 'a' }) : undefined;
  const log = options.log ?? ((line: string) => (logStream ?? process.stderr).write(`${line}\n`));
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ai-gateway-dev-'));
  fs.chmodSync(workDir, 0o700);
  const children: Child[] = [];
  // A forced exit (process.exit) skips close(): still leave no processor and no copy of the secrets behind.
  const killOnExit = () => {
    for (const child of children) if (!child.hasExited) child.process.kill('SIGKILL');
    fs.rmSync(workDir, { recursive: true, force: true });
  };
  process.on('exit', killOnExit);
  let closing = false;

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      await Promise.all(children.map((child) => stopChild(child, stopTimeoutMs)));
      process.removeListener('exit', killOnExit);
      fs.rmSync(workDir, { recursive: true, force: true });
      if (logStream) await new Promise<void>((resolve) => logStream.end(() => resolve()));
    })();
    return closed;
  };

  /** Writes the pod's files of each Deployment; every missing Secret is reported before any process starts. */
  const prepare = (deployment: ProcessorDeployment, index: number): { configFile: string; secretsRoot: string } => {
    const dir = path.join(workDir, String(index));
    const configDir = path.join(dir, 'config');
    const secretsRoot = path.join(dir, 'secrets');
    fs.mkdirSync(configDir, { recursive: true });
    fs.mkdirSync(secretsRoot, { recursive: true, mode: 0o700 });
    // A bundle's manifest and parts go side by side, as kubelet lays out the config volume's ConfigMaps.
    const files = deployment.configFiles ?? { 'config.json': Buffer.from(deployment.configJson) };
    for (const [name, data] of Object.entries(files)) fs.writeFileSync(path.join(configDir, name), data);
    const configFile = path.join(configDir, deployment.configFileName ?? 'config.json');
    const podSecretsDir = argValue(deployment.args, '--secrets-dir') ?? PROCESSOR_DEFAULT_SECRETS_DIR;
    materializeSecrets(deployment, podSecretsDir, secretsRoot, { dir: options.secretsDir, env });
    return { configFile, secretsRoot };
  };

  const startOne = async (
    deployment: ProcessorDeployment,
    files: { configFile: string; secretsRoot: string },
  ): Promise<RunningProcessor> => {
    const id = deploymentId(deployment);
    const { configFile, secretsRoot } = files;
    const devUpstreams = options.devUpstreams?.(deployment);
    const caCertificates = options.devUpstreamCaCertificates ?? [];
    const processEnv = childEnv(env);
    if (devUpstreams !== undefined && devUpstreams.includes('=https://') && caCertificates.length > 0) {
      const caFile = path.join(path.dirname(secretsRoot), 'dev-upstream-ca.pem');
      const already = readOptional(env.NODE_EXTRA_CA_CERTS);
      fs.writeFileSync(caFile, [...(already === undefined ? [] : [already]), ...caCertificates].join('\n'));
      processEnv.NODE_EXTRA_CA_CERTS = caFile;
    }
    const args = [
      ...PROCESSOR_NODE_OPTIONS,
      entry,
      ...keptArgs(deployment.args),
      '--config',
      configFile,
      '--secrets-dir',
      secretsRoot,
      '--listen',
      `${host}:0`,
      '--admin',
      `${host}:0`,
      ...(devUpstreams === undefined ? [] : [DEV_UPSTREAMS_FLAG, devUpstreams]),
    ];
    const proc = spawn(process.execPath, args, { env: processEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let resolveExited!: () => void;
    const child: Child = {
      deployment,
      process: proc,
      exited: new Promise<void>((resolve) => (resolveExited = resolve)),
      exitCode: null,
      signal: null,
      hasExited: false,
    };
    children.push(child);
    let running: RunningProcessor | undefined;
    proc.on('exit', (code, signal) => {
      child.exitCode = code;
      child.signal = signal;
      child.hasExited = true;
      resolveExited();
      if (running && !closing) options.onExit?.(running, signal ? `signal ${signal}` : `exit code ${code}`);
    });

    const tail: string[] = [];
    let ports: { grpc: number; admin: number } | undefined;
    const onLine = (line: string) => {
      const text = line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}...` : line;
      tail.push(text);
      if (tail.length > TAIL_LINES) tail.shift();
      const ready = ports === undefined ? READY_LINE.exec(text) : null;
      if (ready) ports = { grpc: Number(ready[1]), admin: Number(ready[2]) };
      log(`[${id}] ${text}`);
    };
    proc.on('error', (error) => {
      // The process could not be started (or signalled); no 'exit' follows a failed start.
      onLine(`ai-gateway: ${error.message}`);
      if (proc.pid === undefined && !child.hasExited) {
        child.hasExited = true;
        resolveExited();
      }
    });
    readline.createInterface({ input: proc.stdout }).on('line', onLine);
    readline.createInterface({ input: proc.stderr }).on('line', onLine);

    const failed = (why: string) =>
      new ProcessorStartError(
        `processor Deployment ${id} ${why}${tail.length > 0 ? `; its last output:\n  ${tail.join('\n  ')}` : ''}`,
      );
    const deadline = Date.now() + readyTimeoutMs;
    let ready = false;
    while (!ready) {
      if (child.hasExited) {
        // Let the output of the exit reach `tail` first.
        await sleep(50);
        throw failed(
          `exited before it was ready (${child.signal ? `signal ${child.signal}` : `exit code ${child.exitCode}`})`,
        );
      }
      if (Date.now() > deadline) throw failed(`was not ready within ${readyTimeoutMs} ms`);
      if (ports !== undefined) ready = (await httpStatus(`http://${host}:${ports.admin}/readyz`, 1_000)) === 200;
      if (!ready) await sleep(50);
    }
    running = {
      deployment,
      pid: proc.pid!,
      grpcAddress: `${host}:${ports!.grpc}`,
      adminAddress: `${host}:${ports!.admin}`,
    };
    return running;
  };

  let processors: RunningProcessor[];
  try {
    const files = deployments.map(prepare);
    processors = await Promise.all(deployments.map((deployment, i) => startOne(deployment, files[i])));
  } catch (error) {
    await close();
    throw error;
  }

  return {
    processors,
    workDir,
    resolve(namespace, serviceName, port) {
      const found = processors.find(
        (p) =>
          p.deployment.namespace === namespace &&
          p.deployment.serviceName === serviceName &&
          p.deployment.servicePort === port,
      );
      return found?.grpcAddress;
    },
    close,
  };
}
