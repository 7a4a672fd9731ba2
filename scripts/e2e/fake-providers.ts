/**
 * Runs every fake provider of the end-to-end suite in one process, on the fixed ports of FAKE_PORTS, until
 * SIGINT/SIGTERM: the in-cluster stand-in for the providers in a kind run (scripts/e2e/kind.sh bundles this file
 * into the fake-providers image), or by hand next to `ai-gateway dev`. Each fake serves what it received at
 * GET /__e2e/requests.
 *
 *   npx tsx scripts/e2e/fake-providers.ts [--host 0.0.0.0]
 */
import { FAKE_PORTS, startFakes } from '../../test/e2e/support/fakes';

async function main(): Promise<void> {
  const hostFlag = process.argv.indexOf('--host');
  const host = hostFlag >= 0 ? process.argv[hostFlag + 1] : (process.env.FAKES_HOST ?? '127.0.0.1');
  if (!host) throw new Error('--host needs an address');
  const running = await startFakes({ fixedPorts: true, host });
  for (const [name, port] of Object.entries(FAKE_PORTS)) process.stdout.write(`fake ${name} on ${host}:${port}\n`);
  process.stdout.write('fake providers ready\n');
  const stop = () => {
    void running.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`fake providers failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
