/**
 * Corrupt upstream streams (seeded): SSE and AWS eventstream fixtures truncated (ended or cut), with flipped
 * bytes, inserted garbage, broken eventstream CRCs and absurd frame lengths, duplicated frames, and bytes of the
 * other format (eventstream where SSE was announced and the reverse), cut at random offsets.
 *
 * Invariants for every stream: every body message is answered within its deadline and nothing more; on a
 * translated stream the client gets well-formed SSE of its own API (UTF-8 `data:` events of OpenAI chunks or
 * errors, never the upstream's raw bytes); the usage metadata charged equals what the processor counted in its
 * metrics, and equals the usage the client was shown when it was shown one.
 */
import * as zlib from 'node:zlib';
import type { Registry } from 'prom-client';
import { fuzzIt, randomSplit, scaled, type Rng } from '../support/fuzz';
import { Findings, preview } from '../support/fuzz-checks';
import {
  eventstreamFrames,
  loadStreamFixtures,
  streamConfig,
  streamExchange,
  type StreamFixture,
} from '../support/fuzz-streams';
import { startTestProcessor, type TestProcessor } from '../support/processor-harness';
import { driveExchange, type ExchangeOutcome } from '../support/session-driver';
import { sharedPath } from '../support/shared';

const shared = sharedPath('fixtures');
const fixtures: StreamFixture[] = shared ? loadStreamFixtures(shared.replace(/\/fixtures$/, '')) : [];

let processor: TestProcessor;
beforeAll(async () => {
  const { config, secrets } = streamConfig();
  processor = await startTestProcessor(config, { secrets });
});
afterAll(() => processor?.close());

interface Corruption {
  label: string;
  bytes: Buffer;
  /** The stream is cut (no end_of_stream; the ext_proc stream is cancelled). */
  cut: boolean;
}

function flip(rng: Rng, bytes: Buffer, count: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < count; i++) out[rng.int(out.length)] ^= 1 << rng.int(8);
  return out;
}

function insertGarbage(rng: Rng, bytes: Buffer): Buffer {
  const at = rng.int(bytes.length + 1);
  const garbage = rng.bool()
    ? rng.bytes(rng.range(1, 64))
    : Buffer.from(
        rng.pick(['\n\n', 'data: {"oops"\n\n', 'event: x\n', '\r\n\r\n', 'data: [DONE]\n\n', ':\n\n', '\u0000']),
      );
  return Buffer.concat([bytes.subarray(0, at), garbage, bytes.subarray(at)]);
}

/** A sample eventstream frame with a valid structure (from the Bedrock fixture) and an SSE sample. */
let sampleFrame: Buffer = Buffer.alloc(0);
const SAMPLE_SSE = Buffer.from(
  'data: {"candidates":[{"content":{"parts":[{"text":"raw"}]}}]}\n\nevent: ' +
    'message_start\ndata: {"type":"message_start"}\n\n',
);

function corrupt(rng: Rng, fixture: StreamFixture): Corruption {
  const plain = fixture.plain;
  const frames = fixture.kind === 'eventstream' ? eventstreamFrames(plain) : [];
  const choice = rng.int(fixture.kind === 'eventstream' ? 9 : 7);
  switch (choice) {
    case 0: {
      const at = rng.int(plain.length);
      return { label: `truncated at ${at}, then ended`, bytes: plain.subarray(0, at), cut: false };
    }
    case 1: {
      const at = rng.int(plain.length);
      return { label: `truncated at ${at}, then cut`, bytes: plain.subarray(0, at), cut: true };
    }
    case 2: {
      const count = rng.range(1, 5);
      return { label: `${count} flipped bit(s)`, bytes: flip(rng, plain, count), cut: false };
    }
    case 3:
      return { label: 'garbage inserted', bytes: insertGarbage(rng, plain), cut: false };
    case 4:
      return { label: 'random bytes only', bytes: rng.bytes(rng.range(1, 2000)), cut: rng.bool(0.3) };
    case 5: {
      // The other format: eventstream where SSE was announced, SSE text where eventstream was.
      const other = fixture.kind === 'sse' ? sampleFrame : SAMPLE_SSE;
      const at = rng.int(plain.length + 1);
      return {
        label: `${fixture.kind === 'sse' ? 'eventstream frame' : 'SSE text'} spliced in at ${at}`,
        bytes: Buffer.concat([plain.subarray(0, at), other, plain.subarray(at)]),
        cut: false,
      };
    }
    case 6:
      return {
        label: 'a JSON body instead of a stream',
        bytes: Buffer.from('{"error":{"message":"not a stream"}}'),
        cut: false,
      };
    case 7: {
      // A frame with a broken prelude CRC (bytes 8..11) or message CRC (last 4 bytes).
      const index = rng.int(frames.length);
      const frame = Buffer.from(frames[index]);
      const prelude = rng.bool();
      frame[prelude ? 8 + rng.int(4) : frame.length - 1 - rng.int(4)] ^= 0xff;
      const out = [...frames];
      out[index] = frame;
      return {
        label: `frame ${index} with a bad ${prelude ? 'prelude' : 'message'} CRC`,
        bytes: Buffer.concat(out),
        cut: false,
      };
    }
    default: {
      // A prelude announcing an absurd length (up to 2 GiB), or a duplicated frame.
      const index = rng.int(frames.length);
      const out = [...frames];
      if (rng.bool()) {
        const frame = Buffer.from(frames[index]);
        frame.writeUInt32BE(rng.pick([0, 1, 15, 0x7fffffff, 0xffffffff, 16 * 1024 * 1024]), 0);
        out[index] = frame;
        return {
          label: `frame ${index} announcing length ${frame.readUInt32BE(0)}`,
          bytes: Buffer.concat(out),
          cut: false,
        };
      }
      out.splice(index, 0, frames[index]);
      return { label: `frame ${index} duplicated`, bytes: Buffer.concat(out), cut: false };
    }
  }
}

/** Problems with what a client of a translated OpenAI stream receives; [] when it is clean SSE of OpenAI chunks. */
function translatedSseProblems(body: Buffer): string[] {
  const text = body.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(body)) return [`the client got bytes that are not UTF-8: ${preview(body, 80)}`];
  if (text.includes('\u0000')) return [`the client got NUL bytes (raw binary upstream bytes?): ${preview(body, 80)}`];
  if (text.length === 0) return [];
  if (!text.endsWith('\n\n')) return [`the client's stream ends inside an event: ${preview(text.slice(-120), 120)}`];
  for (const event of text.slice(0, -2).split('\n\n')) {
    for (const line of event.split('\n')) {
      if (line.startsWith(':') || line.startsWith('event:') || line.startsWith('id:') || line.startsWith('retry:'))
        continue;
      if (!line.startsWith('data:')) return [`the client got a line that is not SSE: ${preview(line, 100)}`];
      const data = line.slice(5).trim();
      if (data === '[DONE]') continue;
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(data) as Record<string, unknown>;
      } catch {
        return [`the client got a data line that is not JSON: ${preview(data, 100)}`];
      }
      if (parsed.object !== 'chat.completion.chunk' && parsed.error === undefined) {
        return [
          `the client got an event that is neither an OpenAI chunk nor an error (the upstream's own ` +
            `event?): ${preview(data, 100)}`,
        ];
      }
    }
  }
  return [];
}

/** A buffered translated answer: an OpenAI JSON object (a completion or an error), never the upstream's bytes. */
function translatedJsonProblems(body: Buffer): string[] {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    if (
      parsed !== null &&
      typeof parsed === 'object' &&
      (parsed.error !== undefined || typeof parsed.object === 'string')
    )
      return [];
  } catch {
    // reported below
  }
  return [`a buffered translated answer is not an OpenAI JSON body: ${preview(body, 100)}`];
}

/** The last usage an OpenAI stream showed the client, if any. */
function shownUsage(body: Buffer): { prompt_tokens?: number; completion_tokens?: number } | undefined {
  let usage: { prompt_tokens?: number; completion_tokens?: number } | undefined;
  for (const match of body.toString('utf8').matchAll(/^data: *(\{.*\})$/gm)) {
    try {
      const parsed = JSON.parse(match[1]) as { usage?: { prompt_tokens?: number; completion_tokens?: number } | null };
      if (parsed.usage) usage = parsed.usage;
    } catch {
      // checked elsewhere
    }
  }
  return usage;
}

/** Input and output tokens the processor counted in its metrics (all series). */
async function countedTokens(registry: Registry): Promise<{ input: number; output: number }> {
  const text = await registry.metrics();
  const sum = (type: string): number => {
    let total = 0;
    for (const match of text.matchAll(
      new RegExp(`^gen_ai_client_token_usage_sum\\{gen_ai_token_type="${type}"[^}]*\\} (\\S+)$`, 'gm'),
    ))
      total += Number(match[1]);
    return total;
  };
  return { input: sum('input'), output: sum('output') };
}

function chargeProblems(
  outcome: ExchangeOutcome,
  before: { input: number; output: number },
  after: { input: number; output: number },
  fixture: StreamFixture,
): string[] {
  const problems: string[] = [];
  // No metadata (a buffered response cut before its body) charges nothing: it must then have counted nothing.
  const metadata = (outcome.metadata['io.envoy.ai_gateway'] as Record<string, number> | undefined) ?? {
    llm_input_token: 0,
    llm_output_token: 0,
  };
  const counted = { input: after.input - before.input, output: after.output - before.output };
  if (metadata.llm_input_token !== counted.input || metadata.llm_output_token !== counted.output) {
    problems.push(
      `charged ${metadata.llm_input_token}/${metadata.llm_output_token} (input/output) but ` +
        `counted ${counted.input}/${counted.output} in the metrics`,
    );
  }
  if (fixture.translated && fixture.clientApi === 'OpenAI' && outcome.streamed) {
    const shown = shownUsage(outcome.clientBody);
    if (
      shown &&
      (shown.prompt_tokens !== metadata.llm_input_token || shown.completion_tokens !== metadata.llm_output_token)
    ) {
      problems.push(
        `showed the client ${shown.prompt_tokens}/${shown.completion_tokens} tokens but charged ` +
          `${metadata.llm_input_token}/${metadata.llm_output_token}`,
      );
    }
  }
  return problems;
}

const describeIfShared = shared ? describe : describe.skip;

describeIfShared('corrupt SSE and eventstream', () => {
  beforeAll(() => {
    const bedrock = fixtures.find((f) => f.kind === 'eventstream')!;
    sampleFrame = eventstreamFrames(bedrock.plain)[1]!;
  });

  /**
   * The whole answer in the other framing (as the issue's AWS eventstream handed to an SSE client): on translated
   * streams, and on OpenAI passthrough when the content type says it is not SSE or JSON (a passthrough labelled
   * SSE is forwarded as the upstream sent it).
   */
  it.each<[string, string]>([
    ['25-', 'application/vnd.amazon.eventstream'],
    ['openai-cassettes/', 'application/vnd.amazon.eventstream'],
    ['26-', 'application/vnd.amazon.eventstream'],
    ['26-', 'text/event-stream'],
    ['28-', 'application/vnd.amazon.eventstream'],
    ['23-', 'text/event-stream'],
    ['bedrock/', 'text/event-stream'],
  ])(
    '%s answered in the other framing (content-type %s): the OpenAI client never gets the raw bytes',
    async (fixtureName, contentType) => {
      const f = fixtures.find((candidate) => candidate.name.startsWith(fixtureName))!;
      const bedrock = fixtures.find((candidate) => candidate.name.startsWith('bedrock/'))!;
      const other =
        f.kind === 'sse' ? bedrock.plain : fixtures.find((candidate) => candidate.name.startsWith('26-'))!.plain;
      const outcome = await driveExchange(
        processor.app.processor,
        streamExchange(f, eventstreamFrames(other).length > 1 ? eventstreamFrames(other) : [other], {
          headers: { 'content-type': contentType },
          deadlineMs: 3000,
        }),
      );
      const problems = outcome.streamed
        ? translatedSseProblems(outcome.clientBody)
        : translatedJsonProblems(outcome.clientBody);
      const raw =
        outcome.clientBody.length > 0 &&
        (outcome.clientBody.includes(other.subarray(0, 64)) || outcome.clientBody.includes(other.subarray(-64)));
      expect({ problems, rawUpstreamBytes: raw, extraAnswers: outcome.extraAnswers }).toEqual({
        problems: [],
        rawUpstreamBytes: false,
        extraAnswers: 0,
      });
    },
  );

  for (const fixtureName of ['23-', '26-', '28-', '50-', '51-', 'bedrock/', 'openai-cassettes/']) {
    const fixture = () => fixtures.find((f) => f.name.startsWith(fixtureName))!;
    fuzzIt(
      `${fixtureName.replace(/[-/]$/, '')}: every message answered, clean client SSE on translated streams, charged what was counted`,
      async (rng) => {
        const f = fixture();
        expect(f).toBeDefined();
        const findings = new Findings();
        for (let i = scaled(60); i > 0; i--) {
          if (findings.exhausted) break;
          const corruption = corrupt(rng, f);
          const wire =
            f.encoding === 'gzip'
              ? rng.bool()
                ? zlib.gzipSync(corruption.bytes)
                : flip(rng, zlib.gzipSync(f.plain), rng.range(1, 3))
              : corruption.bytes;
          const chunks = wire.length === 0 ? [] : randomSplit(rng, wire, 30);
          // Sometimes the response head lies too: another content type, an encoding the body does not have, an error
          // status.
          const head = rng.bool(0.3)
            ? {
                status: rng.pick([200, 200, 500, 429]),
                headers: {
                  ...(rng.bool()
                    ? {}
                    : {
                        'content-type': rng.pick([
                          'application/json',
                          'text/plain',
                          'text/event-stream',
                          'application/vnd.amazon.eventstream',
                        ]),
                      }),
                  ...(rng.bool()
                    ? { 'content-encoding': rng.pick(['zstd', 'identity', 'gzip', 'br', 'deflate']) }
                    : {}),
                },
              }
            : {};
          const label =
            `${f.name}: ${f.encoding === 'gzip' ? 'gzip of ' : ''}${corruption.label}, in ` +
            `${chunks.length} chunk(s)` +
            `${head.status ? `, answered ${head.status} ${JSON.stringify(head.headers)}` : ''}`;
          await findings.check(
            () => label,
            async () => {
              const before = await countedTokens(processor.app.metrics.registry);
              const outcome = await driveExchange(
                processor.app.processor,
                streamExchange(f, chunks, { cut: corruption.cut, deadlineMs: 3000, ...head }),
              );
              const after = await countedTokens(processor.app.metrics.registry);
              const problems: string[] = [];
              if (outcome.extraAnswers > 0) problems.push(`${outcome.extraAnswers} answer(s) more than messages`);
              if (outcome.immediate)
                problems.push(`answered ${outcome.immediate.status} locally in the middle of a response`);
              if (f.translated && f.clientApi === 'OpenAI' && outcome.streamed)
                problems.push(...translatedSseProblems(outcome.clientBody));
              if (f.translated && f.clientApi === 'OpenAI' && !outcome.streamed && !corruption.cut)
                problems.push(...translatedJsonProblems(outcome.clientBody));
              problems.push(...chargeProblems(outcome, before, after, f));
              return problems;
            },
          );
        }
        findings.assertNone(`corrupt ${f.name}`);
      },
      30_000,
    );
  }
});
