/**
 * Compressed upstream bodies. Bombs: gzip, deflate and brotli bodies of a few hundred KiB that inflate to 512 MiB
 * (a JSON answer and an SSE stream), sent to a processor in a child process so its memory is measured alone:
 * every message is answered within its deadline and the peak RSS stays under 100 MB above idle. Trailing bytes:
 * deflate, brotli and gzip bodies with bytes after their end, and truncated ones (seeded), buffered and streamed:
 * every message is answered within its deadline.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { ChildProcessor } from '../support/child-processor';
import { Findings } from '../support/fuzz-checks';
import { FUZZ_SECRETS, fuzzConfig } from '../support/fuzz-config';
import { fuzzIt, randomSplit, scaled } from '../support/fuzz';
import { startTestProcessor, type TestProcessor } from '../support/processor-harness';
import { driveExchange } from '../support/session-driver';

const MiB = 1024 * 1024;
const BOMB_MIB = 512;
const RSS_BOUND = 100 * MiB;
const USAGE = '"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}';

type Encoding = 'gzip' | 'deflate' | 'br';

function compressor(encoding: Encoding): zlib.Gzip | zlib.Deflate | zlib.BrotliCompress {
  if (encoding === 'br') {
    return zlib.createBrotliCompress({
      params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5, [zlib.constants.BROTLI_PARAM_LGWIN]: 24 },
    });
  }
  return encoding === 'gzip' ? zlib.createGzip({ level: 9 }) : zlib.createDeflate({ level: 9 });
}

/**
 * `prefix`, 512 MiB of "a", `suffix`, compressed as a stream (never held inflated), cached in the temp dir (the
 * content is fixed, so one run's bomb serves the next).
 */
async function bomb(encoding: Encoding, kind: 'json' | 'sse'): Promise<string> {
  const file = path.join(os.tmpdir(), `aigw-fuzz-bomb-v1-${kind}-${BOMB_MIB}MiB.${encoding}`);
  if (fs.existsSync(file)) return file;
  const prefix =
    kind === 'json'
      ? '{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"'
      : 'data: {"choices":[{"index":0,"delta":{"content":"';
  const suffix = kind === 'json' ? `"}}],${USAGE}}` : `"}}]}\n\ndata: {"choices":[],${USAGE}}\n\ndata: [DONE]\n\n`;
  const stream = compressor(encoding);
  const out: Buffer[] = [];
  stream.on('data', (data: Buffer) => out.push(data));
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', () => resolve());
    stream.on('error', reject);
  });
  const block = Buffer.alloc(MiB, 'a');
  stream.write(prefix);
  for (let i = 0; i < BOMB_MIB; i++) {
    if (!stream.write(block)) await new Promise((resolve) => stream.once('drain', resolve));
  }
  stream.end(suffix);
  await ended;
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, Buffer.concat(out));
  fs.renameSync(tmp, file);
  return file;
}

describe('compression bombs (in a child process, memory measured)', () => {
  let child: ChildProcessor;
  beforeAll(async () => {
    child = await ChildProcessor.start(fuzzConfig(), FUZZ_SECRETS);
  }, 60_000);
  afterAll(() => child?.stop());

  it.each<[Encoding, 'json' | 'sse', string]>([
    ['gzip', 'json', 'plain'],
    ['deflate', 'json', 'claude-3'],
    ['gzip', 'sse', 'claude-3'],
    ['br', 'sse', 'plain'],
  ])(
    `a ${BOMB_MIB} MiB %s bomb (%s answer, model %s): answered, peak RSS under 100 MB above idle`,
    async (encoding, kind, model) => {
      const file = await bomb(encoding, kind);
      const size = fs.statSync(file).size;
      expect(size).toBeLessThan(3 * MiB);
      const report = await child.exchange(
        {
          cmd: 'exchange',
          path: '/v1/chat/completions',
          body: JSON.stringify({
            model,
            stream: kind === 'sse',
            max_tokens: 8,
            messages: [{ role: 'user', content: 'hi' }],
          }),
          status: 200,
          headers: {
            'content-type': kind === 'json' ? 'application/json' : 'text/event-stream',
            'content-encoding': encoding,
          },
          bodyFile: file,
          // Envoy hands a streamed body over in pieces; a buffered one arrives whole (the driver joins the chunks).
          chunkSize: 64 * 1024,
          deadlineMs: 10_000,
        },
        60_000,
      );
      const summary = {
        answered: report.answered,
        error: report.error,
        rssGrowthUnderBound: report.rssGrowth < RSS_BOUND,
      };
      const detail =
        `${encoding} ${kind} bomb of ${size} bytes: ` +
        JSON.stringify({
          ...report,
          rssGrowthMB: Math.round(report.rssGrowth / MiB),
          heapGrowthMB: Math.round(report.heapGrowth / MiB),
        });
      expect({ ...summary, detail }).toEqual({ answered: true, error: undefined, rssGrowthUnderBound: true, detail });
    },
    120_000,
  );
});

describe('bytes after the end of a compressed body, and truncated ones', () => {
  let processor: TestProcessor;
  beforeAll(async () => {
    processor = await startTestProcessor(fuzzConfig(), { secrets: FUZZ_SECRETS });
  });
  afterAll(() => processor.close());

  const compress = (encoding: Encoding, bytes: Buffer): Buffer =>
    encoding === 'gzip'
      ? zlib.gzipSync(bytes)
      : encoding === 'deflate'
        ? zlib.deflateSync(bytes)
        : zlib.brotliCompressSync(bytes);

  it.each<[Encoding, string]>([
    ['deflate', 'buffered'],
    ['deflate', 'streamed, in the same message'],
    ['deflate', 'streamed, in a message of their own'],
    ['br', 'buffered'],
    ['br', 'streamed, in the same message'],
    ['br', 'streamed, in a message of their own'],
    ['deflate', 'streamed, in a message of their own, then an empty end'],
    ['br', 'streamed, in a message of their own, then an empty end'],
  ])(
    '%s with bytes after its end (%s): every message answered, the usage before them charged',
    async (encoding, how) => {
      const streamed = how !== 'buffered';
      const plain = streamed
        ? Buffer.from(`data: {"choices":[],${USAGE}}\n\ndata: [DONE]\n\n`)
        : Buffer.from(`{"choices":[],${USAGE}}`);
      const compressed = compress(encoding, plain);
      const trailing = Buffer.from('trailing garbage after the end');
      const chunks =
        how === 'buffered' || how.endsWith('same message')
          ? [Buffer.concat([compressed, trailing])]
          : how.endsWith('empty end')
            ? [compressed, trailing, Buffer.alloc(0)]
            : [compressed, trailing];
      const outcome = await driveExchange(processor.app.processor, {
        path: '/v1/chat/completions',
        body: JSON.stringify({ model: 'plain', stream: streamed, messages: [] }),
        deadlineMs: 2000,
        upstream: () => ({
          status: 200,
          headers: {
            'content-type': streamed ? 'text/event-stream' : 'application/json',
            'content-encoding': encoding,
          },
          chunks,
        }),
      });
      expect({
        streamed: outcome.streamed,
        extraAnswers: outcome.extraAnswers,
        metadata: outcome.metadata['io.envoy.ai_gateway'],
      }).toEqual({
        streamed,
        extraAnswers: 0,
        metadata: expect.objectContaining({ llm_input_token: 1, llm_output_token: 2 }),
      });
    },
  );

  fuzzIt(
    'compressed bodies with random trailing bytes, truncation and corruption (seeded): every message answered',
    async (rng) => {
      const findings = new Findings();
      for (let i = scaled(120); i > 0; i--) {
        if (findings.exhausted) break;
        const encoding = rng.pick<Encoding>(['gzip', 'deflate', 'br']);
        const streamed = rng.bool();
        const plain = Buffer.from(
          streamed
            ? `data: {"choices":[{"delta":{"content":"${rng.text(rng.int(300))}"}}]}\n\ndata: ` +
                `{"choices":[],${USAGE}}\n\n`
            : `{"choices":[],${USAGE}}`,
        );
        let wire = compress(encoding, plain);
        const how = rng.pick(['trailing', 'truncated', 'flipped', 'doubled']);
        if (how === 'trailing') wire = Buffer.concat([wire, rng.bytes(rng.range(1, 64))]);
        else if (how === 'truncated') wire = wire.subarray(0, rng.int(wire.length));
        else if (how === 'flipped') wire[rng.int(wire.length)] ^= 1 << rng.int(8);
        else wire = Buffer.concat([wire, wire]);
        const chunks = wire.length === 0 ? [] : streamed ? randomSplit(rng, wire, 8) : [wire];
        await findings.check(
          () => `${encoding} ${how}, ${streamed ? `streamed in ${chunks.length} chunks` : 'buffered'}`,
          async () => {
            const outcome = await driveExchange(processor.app.processor, {
              path: '/v1/chat/completions',
              body: JSON.stringify({ model: rng.pick(['plain', 'claude-3']), stream: streamed, messages: [] }),
              deadlineMs: 2000,
              upstream: () => ({
                status: 200,
                headers: {
                  'content-type': streamed ? 'text/event-stream' : 'application/json',
                  'content-encoding': encoding,
                },
                chunks,
              }),
            });
            return outcome.extraAnswers > 0 ? [`${outcome.extraAnswers} answer(s) more than messages`] : [];
          },
        );
      }
      findings.assertNone('corrupt compressed bodies');
    },
    30_000,
  );
});
