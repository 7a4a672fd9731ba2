/**
 * Runs `examples/cdk8s/main.ts` on the local data plane with the real processor, its providers played by the
 * end-to-end suite's fake providers (no keys needed): `npm run example:local`. Prints the gateway's URL and a few
 * requests to try; stops on Ctrl-C. With real keys, run `ai-gateway dev dist/ --secrets <dir>` instead
 * (docs/local-data-plane.md).
 */
import { startScenario } from '../test/e2e/support/harness';
import { exampleScenario } from '../test/e2e/support/scenarios';

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`);
  const run = await startScenario(exampleScenario(), {
    listenerPort: port,
    redisUrl: process.env.REDIS_URL || undefined,
  });
  const url = run.gatewayUrl;
  const chat = (model: string) =>
    `curl -s ${url}/v1/chat/completions -H 'x-tenant-id: team-a' -H 'content-type: ` +
    `application/json' \\\n  -d ` +
    `'{"model":"${model}","messages":[{"role":"user","content":"Hello"}]}'`;
  process.stdout.write(
    [
      `The example gateway (ai-platform/ai-gateway, listener port 80) serves on ${url}`,
      `Its providers are fakes on this machine; budgets count ${run.redisUrl ? `in ${run.redisUrl}` : 'in memory'}.`,
      '',
      'OpenAI:',
      chat('gpt-4o'),
      'Amazon Nova on Bedrock (translated, signed with SigV4):',
      chat('nova-pro'),
      'Claude, split 70/30 between Anthropic and Bedrock:',
      chat('claude-sonnet-4'),
      'The Anthropic Messages endpoint:',
      `curl -s ${url}/anthropic/v1/messages -H 'x-tenant-id: team-a' -H 'content-type: ` +
        `application/json' -H 'anthropic-version: 2023-06-01' \\\n  -d ` +
        `'{"model":"claude-sonnet-4","max_tokens":100,"messages":[{"role":"user","content":"Hello"}]}'`,
      '',
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    run.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`example:local: ${(error as Error).message}\n`);
  process.exit(1);
});
