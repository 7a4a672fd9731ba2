/**
 * A weighted split (50/30/20 over three backends) through the local data plane: the processor picks the backend,
 * Envoy re-matches the backend's rule; over many requests the share each fake provider received stays within a
 * tolerance of its weight (more than four standard deviations, so the test does not flake).
 */
import { describeScenario, HELLO, rawChat } from './support/clients';
import { startScenario, type RunningScenario } from './support/harness';
import { weightedScenario } from './support/scenarios';

jest.setTimeout(120_000);

const REQUESTS = 400;
const CONCURRENCY = 8;
const TOLERANCE = 0.11;

describeScenario('weighted', () => {
  let run: RunningScenario;

  beforeAll(async () => {
    run = await startScenario(weightedScenario());
  });
  afterAll(() => run?.close());

  it(`${REQUESTS} requests split 50/30/20 within ±${TOLERANCE * 100} points`, async () => {
    await Promise.all(Object.values(run.fakes).map((fake) => fake.clear()));
    const statuses: number[] = [];
    let next = 0;
    const worker = async () => {
      while (next < REQUESTS) {
        next++;
        const answer = await rawChat(`${run.gatewayUrl}/v1/chat/completions`, {
          model: 'split-model',
          messages: HELLO,
        });
        statuses.push(answer.status);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const received = {
      openai: (await run.fakes.openai.records()).filter((r) => !r.rejected).length,
      groq: (await run.fakes.groq.records()).filter((r) => !r.rejected).length,
      vllm: (await run.fakes.vllm.records()).filter((r) => !r.rejected).length,
    };
    expect(received.openai + received.groq + received.vllm).toBe(REQUESTS);
    expect(Math.abs(received.openai / REQUESTS - 0.5)).toBeLessThanOrEqual(TOLERANCE);
    expect(Math.abs(received.groq / REQUESTS - 0.3)).toBeLessThanOrEqual(TOLERANCE);
    expect(Math.abs(received.vllm / REQUESTS - 0.2)).toBeLessThanOrEqual(TOLERANCE);
  });
});
