#!/usr/bin/env node
/**
 * `ai-gateway dev <dir|file...>`: runs synthesized manifests on this machine the way Envoy Gateway would (see
 * docs/local-data-plane.md): one local server per Gateway listener port, the real processor per processor
 * Deployment, until SIGINT/SIGTERM.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Redis from 'ioredis';
import { parseAllDocuments } from 'yaml';
import { loadManifests } from './dataplane/manifests';
import {
  accessLogLine,
  checkAgainstManifests,
  listenerLines,
  parseCommandLine,
  USAGE,
  UsageError,
  type Command,
  type DevOptions,
} from './dataplane/dev-options';
import { devUpstreamsValue } from './dataplane/dev-upstreams';
import { startProcessors, type RunningProcessors } from './dataplane/processes';
import { startDataPlane } from './dataplane/server';
import { translate } from './dataplane/translate';

export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** A running `dev` command. */
export interface RunningDev {
  /** Resolves with a message when a processor crashes (the CLI then stops: a dev run must not limp on). */
  readonly failed: Promise<string>;
  stop(): Promise<void>;
}

function portInUse(error: unknown): string | undefined {
  const e = error as NodeJS.ErrnoException & { port?: number; address?: string };
  if (e?.code !== 'EADDRINUSE') return undefined;
  return (
    `port ${e.port ?? '?'} on ${e.address ?? 'the host'} is in use; stop what uses it or map ` +
    `the listener elsewhere with --port <ns>/<gateway>:<listenerPort>=<localPort>`
  );
}

/** Signals this soon after the first one are the same stop request delivered again. */
const DUPLICATE_SIGNAL_MS = 1_000;
const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
/** Largest file the folder scan parses to tell manifests from other YAML (the loader has its own bound). */
const MAX_SCANNED_BYTES = 32 * 1024 * 1024;

/** Whether any document of a YAML/JSON file is an object with a `kind` (a Kubernetes manifest). */
function holdsKubernetesObjects(file: string): boolean {
  if (fs.statSync(file).size > MAX_SCANNED_BYTES) return true; // let the loader report it
  return parseAllDocuments(fs.readFileSync(file, 'utf8')).some((doc) => {
    if (doc.errors.length > 0) return true; // let the loader report it
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    return value !== null && typeof value === 'object' && !Array.isArray(value) && 'kind' in value;
  });
}

/**
 * The manifest files to load: files as given; for a folder, its manifest files, skipping those without any
 * Kubernetes object (`npm run synth` also writes the Envoy Gateway Helm values next to the manifests).
 */
export function manifestFiles(paths: readonly string[], skipped: (file: string) => void): string[] {
  const files: string[] = [];
  for (const entry of paths) {
    const stat = fs.statSync(entry, { throwIfNoEntry: false });
    if (!stat) throw new Error(`manifest path ${entry} does not exist`);
    if (!stat.isDirectory()) {
      files.push(entry);
      continue;
    }
    const inFolder = fs
      .readdirSync(entry)
      .filter((name) => MANIFEST_EXTENSIONS.has(path.extname(name).toLowerCase()))
      .sort()
      .map((name) => path.join(entry, name))
      .filter((file) => fs.statSync(file).isFile());
    const before = files.length;
    for (const file of inFolder) {
      if (holdsKubernetesObjects(file)) files.push(file);
      else skipped(file);
    }
    if (files.length === before)
      throw new Error(`folder ${entry} holds no Kubernetes manifests (.yaml, .yml or .json files with objects)`);
  }
  return files;
}

/** A Redis URL without its password, for messages. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<the --redis URL>';
  }
}

/**
 * Fails early with a clear message when the --redis server cannot be reached (the counters would fail each request).
 */
export async function checkRedis(url: string, timeoutMs = 3_000): Promise<void> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    // disconnect() otherwise keeps a 2 s timer for a socket that never opened.
    disconnectTimeout: 100,
  });
  // The socket error (e.g. ECONNREFUSED) arrives as an event; connect() then only says "Connection is closed".
  let socketError: Error | undefined;
  client.on('error', (error: Error) => (socketError ??= error));
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    const reason = socketError ?? error;
    throw new Error(
      `--redis ${redactedUrl(url)}: cannot use this Redis ` +
        `(${reason instanceof Error ? reason.message : String(reason)})`,
      { cause: error },
    );
  } finally {
    client.disconnect();
  }
}

/** Starts processors and the data plane, prints the listener URLs. Throws with a message for the user. */
export async function startDev(options: DevOptions, io: CliIo): Promise<RunningDev> {
  if (options.secretsDir !== undefined) {
    const stat = fs.statSync(options.secretsDir, { throwIfNoEntry: false });
    if (!stat?.isDirectory()) throw new Error(`--secrets ${options.secretsDir} is not a folder`);
  }
  const objects = loadManifests(
    manifestFiles(options.paths, (file) =>
      io.stderr.write(`ai-gateway: skipping ${file}: it holds no Kubernetes object\n`),
    ),
  );
  const model = translate(objects);
  checkAgainstManifests(options, objects, model);
  const manifestText = JSON.stringify(objects);
  const jwksOverrides: Record<string, string> = {};
  for (const [uri, target] of Object.entries(options.jwksOverrides)) {
    if (!manifestText.includes(JSON.stringify(uri)))
      throw new Error(`--jwks ${uri}: no object in the manifests uses this JWKS URI`);
    const isUrl = /^https?:\/\//.test(target);
    if (!isUrl && !fs.statSync(target, { throwIfNoEntry: false })?.isFile())
      throw new Error(`--jwks ${uri}: ${target} is neither an http(s) URL nor a file`);
    jwksOverrides[uri] = isUrl ? target : path.resolve(target);
  }
  const extraCaCertificates = options.caFiles.map((file) => {
    let pem: string;
    try {
      pem = fs.readFileSync(file, 'utf8');
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
      throw new Error(`--ca-file ${file}: ${reason}`, { cause: error });
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`--ca-file ${file} holds no PEM certificate`);
    return pem;
  });
  if (options.redisUrl !== undefined) await checkRedis(options.redisUrl);
  for (const status of model.routeStatuses) {
    for (const parent of status.parents) {
      for (const condition of parent.conditions) {
        if (condition.status === 'False') {
          io.stderr.write(
            `warning: HTTPRoute ${status.route.namespace}/${status.route.name} on ` +
              `${parent.parentRef.namespace}/${parent.parentRef.name}: ${condition.type} is False ` +
              `(${condition.reason})${condition.message ? `: ${condition.message}` : ''}\n`,
          );
        }
      }
    }
  }

  let reportFailure!: (message: string) => void;
  const failed = new Promise<string>((resolve) => (reportFailure = resolve));
  const processors: RunningProcessors = await startProcessors(model.processors, {
    onExit: (processor, how) =>
      reportFailure(
        `processor Deployment ${processor.deployment.namespace}/` +
          `${processor.deployment.deploymentName} exited unexpectedly (${how})`,
      ),
    secretsDir: options.secretsDir,
    env: io.env,
    processorEntry: options.processorEntry,
    logFile: options.processorLog,
    log: options.processorLog === undefined ? (line) => io.stderr.write(`${line}\n`) : undefined,
    devUpstreams: (deployment) => devUpstreamsValue(model, deployment, options.backendOverrides),
    devUpstreamCaCertificates: extraCaCertificates,
  });
  let dataPlane: Awaited<ReturnType<typeof startDataPlane>>;
  try {
    dataPlane = await startDataPlane({
      objects,
      echo: options.echo,
      backendOverrides: options.backendOverrides,
      services: (namespace, name, port) => processors.resolve(namespace, name, port),
      redisUrl: options.redisUrl,
      listenerPort: (namespace, name, port) => options.ports[`${namespace}/${name}:${port}`] ?? 0,
      host: options.host,
      jwksOverrides,
      extraCaCertificates,
      secrets: { ...(options.secretsDir !== undefined ? { dir: options.secretsDir } : {}), env: io.env },
      accessLog: (entry) => io.stdout.write(`${accessLogLine(entry)}\n`),
    });
  } catch (error) {
    await processors.close();
    const inUse = portInUse(error);
    throw inUse ? new Error(inUse) : error;
  }

  for (const p of processors.processors) {
    io.stdout.write(
      `processor ${p.deployment.namespace}/${p.deployment.deploymentName}: ext_proc on ${p.grpcAddress}, admin on http://${p.adminAddress}\n`,
    );
  }
  io.stdout.write(`ai-gateway dev: serving ${options.paths.join(' ')}${options.echo ? ' (echo mode)' : ''}\n`);
  for (const line of listenerLines(model, (ns, name, port) => dataPlane.address(ns, name, port)))
    io.stdout.write(`${line}\n`);
  io.stdout.write('Press Ctrl-C to stop.\n');

  let stopped: Promise<void> | undefined;
  return {
    failed,
    stop() {
      stopped ??= (async () => {
        try {
          await dataPlane.close();
        } finally {
          await processors.close();
        }
      })();
      return stopped;
    },
  };
}

/** The program: parses argv, runs until SIGINT/SIGTERM. Resolves with the exit code. */
export async function main(
  argv: readonly string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env },
): Promise<number> {
  let command: Command;
  try {
    command = parseCommandLine(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`ai-gateway: ${error.message}\nRun "ai-gateway dev --help" for the options.\n`);
    return 2;
  }
  if (command.command === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }
  // Listen before starting: a signal during the start stops the run as soon as it is up (never leaving processors).
  let onSignal!: (signal: NodeJS.Signals) => void;
  const signalled = new Promise<NodeJS.Signals>((resolve) => (onSignal = resolve));
  let stoppingSince: number | undefined;
  const handle = (signal: NodeJS.Signals) => {
    if (stoppingSince === undefined) return onSignal(signal);
    // Another signal while stopping ends the process at once, unless it is the same Ctrl-C delivered twice (the
    // terminal signals the whole process group, and launchers such as tsx or npm relay it once more).
    if (Date.now() - stoppingSince < DUPLICATE_SIGNAL_MS) return;
    io.stderr.write('ai-gateway: stopping at once\n');
    process.exit(130);
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
  try {
    let running: RunningDev;
    try {
      running = await startDev(command.options, io);
    } catch (error) {
      io.stderr.write(`ai-gateway: ${error instanceof Error ? error.message : String(error)}\n`);
      return 1;
    }
    const ended = await Promise.race([
      signalled.then((signal) => ({ signal })),
      running.failed.then((failure) => ({ failure })),
    ]);
    stoppingSince = Date.now();
    io.stderr.write(`ai-gateway: ${'signal' in ended ? ended.signal : ended.failure}, stopping\n`);
    try {
      await running.stop();
    } catch (error) {
      io.stderr.write(`ai-gateway: stopping failed: ${error instanceof Error ? error.message : String(error)}\n`);
      return 1;
    }
    return 'signal' in ended ? 0 : 1;
  } finally {
    process.off('SIGINT', handle);
    process.off('SIGTERM', handle);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`ai-gateway: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
