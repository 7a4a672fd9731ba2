import { describeError, ProcessorApp } from './app';
import { CliError, parseCli, USAGE } from './cli';
import { ProcessorConfigError } from '@ai-gateway-constructs/processor-config';
import { DEFAULT_CONFIG_WAIT_MS, waitForConfigFile } from './config/load';
import { createLogger, type Logger } from './log';

async function main(): Promise<void> {
  const startedAt = performance.now();
  let options;
  try {
    options = parseCli(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof CliError) {
      // The error comes last: a pod's log tail and a supervisor's last lines show it, not the middle of the usage.
      process.stderr.write(`${USAGE}\nai-gateway-processor: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  if (options === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const logger = createLogger(options.logLevel);
  let app: ProcessorApp | undefined;
  let exitCode = 0;
  let stopping: Promise<boolean> | undefined;
  const exit = (completed: boolean): never => {
    logger.info({ completed, exitCode }, 'stopped');
    process.exit(exitCode);
  };

  // An unhandled rejection is a bug in one request's path: log it, count it, keep serving the others.
  process.on('unhandledRejection', (reason) => {
    app?.unhandledRejections.inc();
    logger.error({ error: describeError(reason) }, 'unhandled promise rejection; still serving');
  });
  // An uncaught exception leaves the process in an unknown state: stop taking traffic, let in-flight streams
  // finish (best effort, up to the drain timeout), then exit non-zero so the pod restarts.
  process.on('uncaughtException', (error, origin) => {
    exitCode = 1;
    logger.error({ error: describeError(error), origin }, 'uncaught exception; draining, then exiting');
    if (!app) process.exit(1);
    if (stopping) {
      app.skipShutdownDelay();
      return;
    }
    // Whatever happens to the drain, the process ends shortly after its deadline.
    setTimeout(() => process.exit(1), options.drainTimeoutMs + 2000).unref();
    stopping = app.drain(options.drainTimeoutMs);
    void stopping.then(exit);
  });

  try {
    // A config set whose ConfigMaps are still being applied completes within moments; wait for it, bounded.
    const initialConfig = await waitForConfigFile(options.config, {
      timeoutMs: DEFAULT_CONFIG_WAIT_MS,
      retryMs: Math.min(options.pollIntervalMs, 1_000),
      onWaiting: (incomplete) =>
        logger.warn(
          { revision: incomplete.revision, missing: incomplete.missing, timeoutMs: DEFAULT_CONFIG_WAIT_MS },
          'waiting for a complete config set',
        ),
    });
    app = new ProcessorApp({ ...options, initialConfig, logger, defaultMetrics: true });
  } catch (error) {
    if (error instanceof ProcessorConfigError) {
      process.stderr.write(`ai-gateway-processor: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  await app.start();
  const running = app;
  const stop = (signal: string): void => {
    if (stopping) {
      // A second signal ends the shutdown delay: the drain starts now.
      running.skipShutdownDelay();
      return;
    }
    logShutdown(logger, signal, running, options.shutdownDelayMs);
    stopping = running.shutdown(options.shutdownDelayMs, options.drainTimeoutMs, () =>
      logger.info(
        { signal, activeStreams: running.processor.activeStreams, drainTimeoutMs: options.drainTimeoutMs },
        'draining',
      ),
    );
    void stopping.then(exit);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  const ms = (performance.now() - startedAt).toFixed(0);
  process.stdout.write(
    `ai-gateway-processor ready: ext_proc on ` +
      `${options.listen}${app.listenPort && !options.listen.startsWith('unix:') ? ` (port ${app.listenPort})` : ''}` +
      `, admin on ${options.admin} (port ${app.adminPort}), ${ms} ms\n`,
  );
}

function logShutdown(logger: Logger, signal: string, app: ProcessorApp, delayMs: number): void {
  if (delayMs > 0) {
    logger.info(
      { signal, activeStreams: app.processor.activeStreams, shutdownDelayMs: delayMs },
      'shutting down: not ready, still serving until the delay ends',
    );
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`ai-gateway-processor: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
