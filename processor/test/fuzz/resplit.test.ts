/**
 * Every-byte re-splits. The same request body and the same upstream stream (SSE from OpenAI, Anthropic and
 * Gemini, AWS eventstream from Bedrock, gzip-compressed SSE), cut at every byte offset into two pieces, fed one
 * byte per message, and cut at random offsets (seeded): the client's bytes, the response headers and the token
 * usage metadata are identical to the run with the natural framing. A request body arrives whole in Envoy's
 * BUFFERED mode, so a split one may also be refused with a 4xx in the client's schema, but never forwarded
 * differently from the unsplit body.
 */
import { isDeepStrictEqual } from 'node:util';
import { byteByByte, fuzzIt, randomSplit, scaled, twoWaySplits } from '../support/fuzz';
import { apiOf, errorSchemaProblems, Findings } from '../support/fuzz-checks';
import {
  loadStreamFixtures,
  streamConfig,
  streamExchange,
  streamSummary,
  type StreamFixture,
} from '../support/fuzz-streams';
import { startTestProcessor, type TestProcessor } from '../support/processor-harness';
import { driveExchange, type ExchangeOutcome } from '../support/session-driver';
import { sharedPath } from '../support/shared';
import { normalizeText } from '../support/translation-cases';

const shared = sharedPath('fixtures');
const fixtures: StreamFixture[] = shared ? loadStreamFixtures(shared.replace(/\/fixtures$/, '')) : [];

let processor: TestProcessor;
beforeAll(async () => {
  const { config, secrets } = streamConfig();
  processor = await startTestProcessor(config, { secrets });
});
afterAll(() => processor?.close());

function diff(expected: Record<string, unknown>, actual: Record<string, unknown>): string {
  const keys = Object.keys(expected).filter((key) => !isDeepStrictEqual(expected[key], actual[key]));
  return keys
    .map(
      (key) =>
        `${key}: expected ${JSON.stringify(expected[key])?.slice(0, 160)}, got ` +
        `${JSON.stringify(actual[key])?.slice(0, 160)}`,
    )
    .join('; ');
}

/** What the upstream saw, without what changes with the clock (SigV4's date and signature). */
function upstreamSummary(outcome: ExchangeOutcome): Record<string, unknown> {
  const headers = { ...(outcome.upstream?.headers ?? {}) };
  delete headers['x-amz-date'];
  if (headers.authorization?.startsWith('AWS4-')) headers.authorization = '<sigv4>';
  return {
    immediate: outcome.immediate
      ? { status: outcome.immediate.status, body: normalizeText(outcome.immediate.body.toString('utf8')) }
      : undefined,
    headers,
    body: outcome.upstream?.body.toString('latin1'),
    extraAnswers: outcome.extraAnswers,
  };
}

const describeIfShared = shared ? describe : describe.skip;

describeIfShared('every-byte re-splits of request bodies', () => {
  const bodies = (): Array<{ name: string; path: string; authority: string; body: Buffer }> =>
    fixtures.map((f) => ({ name: f.name, path: f.request.path, authority: f.request.authority, body: f.request.body }));

  fuzzIt(
    'each fixture request, cut at every offset and byte by byte: the upstream request is ' +
      'unchanged, or refused with a 4xx',
    async (rng) => {
      const findings = new Findings();
      for (const { name, path, authority, body } of bodies()) {
        const spec = { path, authority, deadlineMs: 3000 };
        const baseline = upstreamSummary(await driveExchange(processor.app.processor, { ...spec, body }));
        const splits: Array<{ label: string; chunks: Buffer[] }> = [
          { label: 'byte by byte', chunks: byteByByte(body) },
        ];
        for (const chunks of twoWaySplits(body)) splits.push({ label: `cut at ${chunks[0].length}`, chunks });
        for (let i = scaled(10); i > 0; i--) {
          const chunks = randomSplit(rng, body, 12);
          splits.push({ label: `cut at ${chunks.map((c) => c.length).join('+')}`, chunks });
        }
        for (const { label, chunks } of splits) {
          if (findings.exhausted) break;
          await findings.check(
            () => `${name}, request body ${label}`,
            async () => {
              const outcome = await driveExchange(processor.app.processor, { ...spec, body: chunks });
              const problem = diff(baseline, upstreamSummary(outcome));
              if (!problem) return [];
              // Envoy's BUFFERED mode sends a request body whole, so a processor may refuse a split one: with a 4xx in
              // the client's schema, never by forwarding something else than the unsplit body would have produced.
              const immediate = outcome.immediate;
              if (immediate && immediate.status >= 400 && immediate.status < 500 && outcome.extraAnswers === 0) {
                const schema = errorSchemaProblems(apiOf(path), immediate.body, immediate.headers);
                return schema.length ? schema : [];
              }
              return [`request differs from the unsplit run: ${problem}`];
            },
          );
        }
      }
      findings.assertNone('request re-splits');
    },
    30_000,
  );
});

describeIfShared('every-byte re-splits of response streams', () => {
  it('has the stream fixtures (SSE from OpenAI, Anthropic, Gemini; eventstream from Bedrock; gzip)', () => {
    expect(fixtures.map((f) => f.name)).toHaveLength(8);
    expect(fixtures.filter((f) => f.kind === 'eventstream')).toHaveLength(2);
    expect(fixtures.filter((f) => f.encoding === 'gzip')).toHaveLength(1);
  });

  for (const fixture of fixtures) {
    fuzzIt(
      `${fixture.name} (${fixture.kind}${fixture.encoding ? `, ${fixture.encoding}` : ''}): every ` +
        `split gives the same client bytes and usage`,
      async (rng) => {
        const run = async (chunks: Buffer[]) =>
          streamSummary(
            await driveExchange(processor.app.processor, streamExchange(fixture, chunks, { deadlineMs: 3000 })),
          );
        const baseline = await run(fixture.naturalChunks);
        const usage = baseline.usage as Record<string, number> | undefined;
        // The baseline itself must be a real answer: streamed, and (for these fixtures) with tokens counted.
        expect({ streamed: baseline.streamed, immediate: baseline.immediate }).toEqual({
          streamed: true,
          immediate: undefined,
        });
        expect(usage?.llm_total_token ?? 0).toBeGreaterThan(0);

        const findings = new Findings();
        const wire = fixture.wire;
        const splits: Array<{ label: string; chunks: Buffer[] }> = [
          { label: 'in one piece', chunks: [wire] },
          { label: 'byte by byte', chunks: byteByByte(wire) },
        ];
        // Every offset for streams up to 2 KiB, else every offset at FUZZ_SCALE >= 4 and a stride below that.
        const stride = wire.length <= 2048 ? 1 : Math.max(1, Math.round(4 / scaled(1)));
        for (const chunks of twoWaySplits(wire, stride)) splits.push({ label: `cut at ${chunks[0].length}`, chunks });
        for (let i = scaled(40); i > 0; i--) {
          const chunks = randomSplit(rng, wire, 40);
          splits.push({
            label: `cut into ${chunks.length} at random offsets (${chunks
              .map((c) => c.length)
              .join(',')
              .slice(0, 120)})`,
            chunks,
          });
        }
        for (const { label, chunks } of splits) {
          if (findings.exhausted) break;
          await findings.check(
            () => `${fixture.name}, upstream body ${label}`,
            async () => {
              const problem = diff(baseline, await run(chunks));
              return problem ? [`differs from the naturally framed run: ${problem}`] : [];
            },
          );
        }
        findings.assertNone(`${fixture.name} re-splits`);
      },
      30_000,
    );
  }
});
