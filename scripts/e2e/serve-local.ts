/**
 * Serves the scenarios of a cluster run (scripts/e2e/cluster-manifests.ts) on the local data plane instead of a
 * cluster, with the fake providers on their fixed ports, and prints the environment that points the suite at
 * them. It exercises the suite's cluster mode (E2E_GATEWAY_URLS, E2E_FAKES_URL, E2E_SCENARIOS) without Docker:
 *
 *   npx tsx scripts/e2e/serve-local.ts &            # prints: export E2E_GATEWAY_URLS=... (then waits)
 *   <those exports> npx jest "$PWD/test/e2e/" --selectProjects constructs
 *
 * Stops on SIGINT/SIGTERM. Counters are in memory unless REDIS_URL is set.
 */
import { startScenario, type RunningScenario } from '../../test/e2e/support/harness';
import { startFakes } from '../../test/e2e/support/fakes';
import { clusterScenarios } from './cluster-manifests';

const FIRST_LISTENER_PORT = 18080;

async function main(): Promise<void> {
  const fakes = await startFakes({ fixedPorts: true });
  const runs: RunningScenario[] = [];
  const scenarios = clusterScenarios();
  try {
    for (const [i, scenario] of scenarios.entries()) {
      runs.push(
        await startScenario(scenario, {
          fakes,
          listenerPort: FIRST_LISTENER_PORT + i,
          redisUrl: process.env.REDIS_URL || undefined,
        }),
      );
    }
  } catch (error) {
    for (const run of runs) await run.close();
    await fakes.close();
    throw error;
  }
  const urls = runs
    .map((run) => `${run.scenario.gateway.namespace}/${run.scenario.gateway.name}=${run.gatewayUrl}`)
    .join(',');
  process.stdout.write(
    `export E2E_GATEWAY_URLS='${urls}' E2E_FAKES_URL='http://127.0.0.1' E2E_SCENARIOS='${scenarios.map((s) => s.name).join(',')}'\n`,
  );
  const stop = () => {
    void (async () => {
      for (const run of runs) await run.close();
      await fakes.close();
      process.exit(0);
    })();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`serve-local failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
