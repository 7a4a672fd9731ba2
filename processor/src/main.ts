import { ProcessorApp } from './app';
import { CliError, parseCli, USAGE } from './cli';
import { ProcessorConfigError } from './config/schema';
import { createLogger } from './log';

async function main(): Promise<void> {
  const startedAt = performance.now();
  let options;
  try {
    options = parseCli(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof CliError) {
      process.stderr.write(`ai-gateway-processor: ${error.message}\n\n${USAGE}`);
      process.exit(2);
    }
    throw error;
  }
  if (options === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const logger = createLogger(options.logLevel);
  let app: ProcessorApp;
  try {
    app = new ProcessorApp({ ...options, logger, defaultMetrics: true });
  } catch (error) {
    if (error instanceof ProcessorConfigError) {
      process.stderr.write(`ai-gateway-processor: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  await app.start();
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, activeStreams: app.processor.activeStreams }, 'draining');
    void app.drain(options.drainTimeoutMs).then((completed) => {
      logger.info({ completed }, 'stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  const ms = (performance.now() - startedAt).toFixed(0);
  process.stdout.write(
    `ai-gateway-processor ready: ext_proc on ${options.listen}${app.listenPort && !options.listen.startsWith('unix:') ? ` (port ${app.listenPort})` : ''}, admin on ${options.admin} (port ${app.adminPort}), ${ms} ms\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`ai-gateway-processor: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
