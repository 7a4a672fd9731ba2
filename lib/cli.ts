#!/usr/bin/env node
/**
 * `ai-gateway dev <dir|file...>`: runs synthesized manifests on this machine the way Envoy Gateway would (see
 * docs/local-data-plane.md): one local server per Gateway listener port, the real processor per processor
 * Deployment, until SIGINT/SIGTERM.
 */
import * as fs from 'node:fs';
import { loadManifests } from './dataplane/manifests';
import { checkAgainstManifests, listenerLines, parseCommandLine, USAGE, UsageError, type Command, type DevOptions } from './dataplane/dev-options';
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
  stop(): Promise<void>;
}

function portInUse(error: unknown): string | undefined {
  const e = error as NodeJS.ErrnoException & { port?: number; address?: string };
  if (e?.code !== 'EADDRINUSE') return undefined;
  return `port ${e.port ?? '?'} on ${e.address ?? 'the host'} is in use; stop what uses it or map the listener elsewhere with --port <ns>/<gateway>:<listenerPort>=<localPort>`;
}

/** Starts processors and the data plane, prints the listener URLs. Throws with a message for the user. */
export async function startDev(options: DevOptions, io: CliIo): Promise<RunningDev> {
  if (options.secretsDir !== undefined) {
    const stat = fs.statSync(options.secretsDir, { throwIfNoEntry: false });
    if (!stat?.isDirectory()) throw new Error(`--secrets ${options.secretsDir} is not a folder`);
  }
  const objects = loadManifests(options.paths);
  const model = translate(objects);
  checkAgainstManifests(options, objects, model);
  for (const status of model.routeStatuses) {
    for (const parent of status.parents) {
      for (const condition of parent.conditions) {
        if (condition.status === 'False') {
          io.stderr.write(
            `warning: HTTPRoute ${status.route.namespace}/${status.route.name} on ${parent.parentRef.namespace}/${parent.parentRef.name}: ${condition.type} is False (${condition.reason})${condition.message ? `: ${condition.message}` : ''}\n`,
          );
        }
      }
    }
  }

  const processors: RunningProcessors = await startProcessors(model.processors, {
    secretsDir: options.secretsDir,
    env: io.env,
    processorEntry: options.processorEntry,
    logFile: options.processorLog,
    log: options.processorLog === undefined ? (line) => io.stderr.write(`${line}\n`) : undefined,
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
    });
  } catch (error) {
    await processors.close();
    const inUse = portInUse(error);
    throw inUse ? new Error(inUse) : error;
  }

  for (const p of processors.processors) {
    io.stdout.write(`processor ${p.deployment.namespace}/${p.deployment.deploymentName}: ext_proc on ${p.grpcAddress}, admin on http://${p.adminAddress}\n`);
  }
  io.stdout.write(`ai-gateway dev: serving ${options.paths.join(' ')}${options.echo ? ' (echo mode)' : ''}\n`);
  for (const line of listenerLines(model, (ns, name, port) => dataPlane.address(ns, name, port))) io.stdout.write(`${line}\n`);
  io.stdout.write('Press Ctrl-C to stop.\n');

  let stopped: Promise<void> | undefined;
  return {
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
export async function main(argv: readonly string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
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
  let running: RunningDev;
  try {
    running = await startDev(command.options, io);
  } catch (error) {
    io.stderr.write(`ai-gateway: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  io.stderr.write(`ai-gateway: ${signal}, stopping\n`);
  // A second signal while stopping ends the process at once.
  const force = () => process.exit(130);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  try {
    await running.stop();
  } catch (error) {
    io.stderr.write(`ai-gateway: stopping failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  return 0;
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
