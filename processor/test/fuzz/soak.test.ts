/**
 * A soak over real gRPC against a processor in a child process: mixed traffic (buffered and streamed answers with
 * usage, hostile bodies answered locally, streams cancelled midway) with 20 streams in flight at a time.
 *
 * Invariants: every exchange that runs to its end is answered in time and charged exactly the tokens its upstream
 * reported; afterwards no session is open and the heap (after GC) grew less than 10 MB over the warmed-up heap.
 */
import { ChildProcessor } from '../support/child-processor';
import { EnvoyClient, type ExchangeResult } from '../support/envoy-client';
import { Findings } from '../support/fuzz-checks';
import { FUZZ_SECRETS, fuzzConfig } from '../support/fuzz-config';
import { DeadlineError, fuzzIt, scaled, within, type Rng } from '../support/fuzz';

let child: ChildProcessor;
let client: EnvoyClient;
beforeAll(async () => {
  child = await ChildProcessor.start(fuzzConfig(), FUZZ_SECRETS);
  client = new EnvoyClient(child.address);
}, 60_000);
afterAll(async () => {
  client?.close();
  await child?.stop();
});

interface Planned {
  label: string;
  run(): Promise<ExchangeResult>;
  /** Tokens the metadata must carry (input, output); undefined: answered locally or cancelled. */
  expected?: { input: number; output: number };
  cancelled?: boolean;
}

function plan(rng: Rng, i: number): Planned {
  const input = rng.range(1, 5000);
  const output = rng.range(1, 5000);
  const usage = { prompt_tokens: input, completion_tokens: output, total_tokens: input + output };
  switch (rng.int(4)) {
    case 0:
      return {
        label: `buffered ${i}`,
        expected: { input, output },
        run: () =>
          client.exchange(
            {
              path: '/v1/chat/completions',
              body: JSON.stringify({
                model: rng.pick(['plain', 'gpt-4o']),
                messages: [{ role: 'user', content: 'hi' }],
              }),
            },
            () => ({
              status: 200,
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({
                choices: [{ message: { role: 'assistant', content: 'x'.repeat(rng.int(2000)) } }],
                usage,
              }),
            }),
          ),
      };
    case 1: {
      const events = Array.from(
        { length: rng.range(1, 20) },
        () => `data: ${JSON.stringify({ choices: [{ delta: { content: rng.text(20) } }] })}\n\n`,
      );
      events.push(`data: ${JSON.stringify({ choices: [], usage })}\n\n`, 'data: [DONE]\n\n');
      return {
        label: `streamed ${i}`,
        expected: { input, output },
        run: () =>
          client.exchange(
            {
              path: '/v1/chat/completions',
              body: JSON.stringify({ model: 'plain', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
            },
            () => ({
              status: 200,
              headers: { 'content-type': 'text/event-stream' },
              body: events,
            }),
          ),
      };
    }
    case 2:
      return {
        label: `hostile ${i}`,
        run: () =>
          client.exchange(
            {
              path: rng.pick(['/v1/chat/completions', '/anthropic/v1/messages']),
              body: rng.pick(['{"model":', '[]', `{"model":"${'m'.repeat(300)}"}`, '{"model":"nope"}', '\u00ff\u00fe']),
            },
            () => {
              throw new Error('a hostile body reached the upstream');
            },
          ),
      };
    default:
      return {
        label: `cancelled ${i}`,
        cancelled: true,
        run: () =>
          client.exchange(
            { path: '/v1/chat/completions', body: JSON.stringify({ model: 'plain', stream: true, messages: [] }) },
            () => ({
              status: 200,
              headers: { 'content-type': 'text/event-stream' },
              body: Array.from({ length: 5 }, () => 'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'),
            }),
            { abortAfterChunks: rng.int(4) },
          ),
      };
  }
}

async function soak(rng: Rng, total: number, findings: Findings): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < total && !findings.exhausted; i++) {
    const planned = plan(rng, i);
    const task = findings
      .check(
        () => planned.label,
        async () => {
          const result = await within(planned.run(), 10_000, planned.label);
          if (planned.cancelled) return [];
          const metadata = result.metadata['io.envoy.ai_gateway'] as Record<string, number> | undefined;
          if (!planned.expected)
            return result.immediate && result.status >= 400 && result.status < 500
              ? []
              : [`expected a local 4xx, got ${result.status}`];
          if (
            metadata?.llm_input_token !== planned.expected.input ||
            metadata?.llm_output_token !== planned.expected.output
          ) {
            return [
              `charged ${metadata?.llm_input_token}/${metadata?.llm_output_token}, the upstream reported ` +
                `${planned.expected.input}/${planned.expected.output}`,
            ];
          }
          return [];
        },
      )
      .finally(() => inFlight.delete(task));
    inFlight.add(task);
    if (inFlight.size >= 20) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

describe('soak', () => {
  fuzzIt(
    'mixed traffic over gRPC: every exchange answered and charged exactly, no session left ' +
      'open, heap growth under 10 MB',
    async (rng) => {
      const findings = new Findings();
      await soak(rng, 300, findings); // warm-up: code compiled, caches at their working size
      const warmHeap = await child.heapUsed();
      const baseline = await child.activeStreams();
      const total = scaled(1500);
      await soak(rng, total, findings);
      findings.assertNone('soak');
      const deadline = Date.now() + 5000;
      let open = await child.activeStreams();
      while (open !== 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        open = await child.activeStreams();
      }
      if (open !== 0) throw new DeadlineError(`${open} sessions still open after the soak (baseline ${baseline})`);
      const growth = (await child.heapUsed()) - warmHeap;
      expect({
        heapGrowthUnder10MB: growth < 10 * 1024 * 1024,
        growthMB: Math.round(growth / 1024 / 1024),
      }).toMatchObject({ heapGrowthUnder10MB: true });
    },
    60_000,
  );
});
