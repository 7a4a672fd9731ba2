/**
 * Hostile request bodies, generated from a seed (FUZZ_SEED, FUZZ_SCALE: see test/support/fuzz.ts): random JSON,
 * wrong types, nesting 10,000 to 300,000 deep, strings of megabytes, model names of 60 KB and 256 KiB, duplicate
 * "model" keys, bytes that are not UTF-8, truncated and non-JSON bodies, on the OpenAI and the Anthropic
 * endpoint, against rules that reach every translation.
 *
 * Invariants for every body: exactly one answer per message, within a deadline; either a 4xx in the client's own
 * error schema (OpenAI `{error:{message,type,param,code}}`, Anthropic `{type:"error",error:{type,message}}`) or a
 * forwarded request whose body is JSON with one top-level "model" equal to the routed one. Never a 5xx.
 */
import { apiOf, Findings, hostileRequestProblems, preview } from '../support/fuzz-checks';
import { FUZZ_BODY_LIMIT, FUZZ_MODEL_OVERRIDES, FUZZ_MODELS, FUZZ_SECRETS, fuzzConfig } from '../support/fuzz-config';
import { fuzzIt, scaled, type Rng } from '../support/fuzz';
import { startTestProcessor, type TestProcessor } from '../support/processor-harness';
import { driveExchange, type ExchangeOutcome } from '../support/session-driver';

const OPENAI_PATHS = ['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/responses'];
const ANTHROPIC_PATHS = ['/anthropic/v1/messages', '/anthropic/v1/messages/count_tokens'];
const KEYS = [
  'model',
  'messages',
  'stream',
  'max_tokens',
  'input',
  'prompt',
  'system',
  'tools',
  'stream_options',
  'n',
  'temperature',
  'tool_choice',
  'contents',
  'metadata',
];

let processor: TestProcessor;
beforeAll(async () => {
  processor = await startTestProcessor(fuzzConfig(), { secrets: FUZZ_SECRETS });
});
afterAll(() => processor.close());

function randomScalar(rng: Rng): unknown {
  switch (rng.int(9)) {
    case 0:
      return null;
    case 1:
      return rng.bool();
    case 2:
      return rng.range(-1e6, 1e6);
    case 3:
      return rng.pick([0, -0, 1e308, -1e-308, 2 ** 53 + 1, 0.1]);
    case 4:
      return rng.text(rng.int(20));
    case 5:
      return rng.pick(FUZZ_MODELS);
    case 6:
      return rng.text(rng.int(8), '\u0000\u0001\n\r\t"\\\u2028\ud83d\ude00\u00e9');
    case 7:
      return '';
    default:
      return rng.pick(['user', 'assistant', 'system', 'tool', 'text', 'image_url']);
  }
}

function randomValue(rng: Rng, depth: number): unknown {
  if (depth <= 0 || rng.bool(0.45)) return randomScalar(rng);
  if (rng.bool()) return Array.from({ length: rng.int(4) }, () => randomValue(rng, depth - 1));
  const out: Record<string, unknown> = {};
  for (let i = rng.int(5); i > 0; i--)
    out[rng.bool(0.6) ? rng.pick(['role', 'content', 'type', 'text', 'name', 'arguments', 'function']) : rng.text(4)] =
      randomValue(rng, depth - 1);
  return out;
}

/** A plausible request with random values and random wrong types. */
function randomRequest(rng: Rng): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (rng.bool(0.85)) body.model = rng.bool(0.7) ? rng.pick(FUZZ_MODELS) : randomScalar(rng);
  for (let i = rng.int(6); i > 0; i--) body[rng.pick(KEYS.slice(1))] = randomValue(rng, 4);
  if (rng.bool(0.6))
    body.messages = rng.bool(0.7)
      ? [{ role: rng.pick(['user', 'system', 'assistant', 'tool', 42]), content: randomValue(rng, 3) }]
      : randomValue(rng, 3);
  if (rng.bool(0.3)) body.max_tokens = rng.bool() ? rng.range(-5, 5000) : randomScalar(rng);
  return body;
}

/** `[[[...]]]` or `{"a":{"a":...}}` `depth` levels deep, as text (JSON.stringify cannot build it). */
function nested(rng: Rng, depth: number): string {
  if (rng.bool()) return '['.repeat(depth) + ']'.repeat(depth);
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

function deepBody(rng: Rng, depth: number): string {
  const deep = nested(rng, depth);
  const model = rng.pick(FUZZ_MODELS);
  switch (rng.int(5)) {
    case 0:
      return `{"model":${JSON.stringify(model)},"messages":[{"role":"user","content":${deep}}]}`;
    case 1:
      return `{"model":${JSON.stringify(model)},"messages":[{"role":"user","content":"hi"}],"metadata":${deep}}`;
    case 2:
      return `{"messages":[{"role":"user","content":"hi"}],"tools":${deep},"model":${JSON.stringify(model)}}`;
    case 3:
      return `{"model":${deep}}`;
    default:
      return (
        `{"model":${JSON.stringify(model)},"max_tokens":16,"system":` +
        `${deep},"messages":[{"role":"user","content":"hi"}]}`
      );
  }
}

/** Invalid UTF-8 sequences: a stray continuation byte, an overlong form, a surrogate, a truncated sequence, 0xFF. */
const BAD_UTF8 = [
  Buffer.from([0x80]),
  Buffer.from([0xc0, 0xaf]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0xff]),
  Buffer.from([0xfe, 0xff]),
];

function nonUtf8Body(rng: Rng): Buffer {
  const model = rng.pick(FUZZ_MODELS);
  const bad = rng.pick(BAD_UTF8);
  switch (rng.int(4)) {
    case 0: // inside the model name
      return Buffer.concat([
        Buffer.from(`{"model":"${model}`),
        bad,
        Buffer.from('","messages":[{"role":"user","content":"hi"}]}'),
      ]);
    case 1: // inside a message
      return Buffer.concat([
        Buffer.from(`{"model":"${model}","max_tokens":8,"messages":[{"role":"user","content":"a`),
        bad,
        Buffer.from('b"}]}'),
      ]);
    case 2: // outside any string
      return Buffer.concat([Buffer.from(`{"model":"${model}",`), bad, Buffer.from('"messages":[]}')]);
    default: {
      // random bytes over a valid body
      const body = Buffer.from(
        JSON.stringify({ model, max_tokens: 8, messages: [{ role: 'user', content: 'hello there' }] }),
      );
      for (let i = rng.range(1, 4); i > 0; i--) body[rng.int(body.length)] = 0x80 + rng.int(128);
      return body;
    }
  }
}

function duplicateModelBody(rng: Rng): string {
  const first = rng.pick([...FUZZ_MODELS, 'unknown-model', 42]);
  const second = rng.pick([...FUZZ_MODELS, 'unknown-model']);
  const messages = '"messages":[{"role":"user","content":"hi"}],"max_tokens":8';
  switch (rng.int(3)) {
    case 0:
      return `{"model":${JSON.stringify(first)},"model":${JSON.stringify(second)},${messages}}`;
    case 1:
      return `{"model":${JSON.stringify(first)},${messages},"model":${JSON.stringify(second)}}`;
    default: // an escaped spelling of the same key
      return `{"model":${JSON.stringify(first)},${messages},"mod\\u0065l":${JSON.stringify(second)}}`;
  }
}

function malformedBody(rng: Rng): Buffer {
  const valid = JSON.stringify({ model: rng.pick(FUZZ_MODELS), messages: [{ role: 'user', content: 'hi' }] });
  switch (rng.int(7)) {
    case 0:
      return Buffer.from(valid.slice(0, rng.int(valid.length)));
    case 1:
      return rng.bytes(rng.range(1, 300));
    case 2:
      return Buffer.from(
        rng.pick(['', ' ', 'null', 'true', '"model"', '[]', '[{"model":"gpt-4o"}]', '1e999', '{}', '{"model":null}']),
      );
    case 3:
      return Buffer.from(`\ufeff${valid}`);
    case 4:
      return Buffer.from(`${valid}${rng.pick(['}', ']', ' x', '{"model":"plain"}', '\u0000'])}`);
    case 5:
      return Buffer.from(valid.replace('"model"', rng.pick(['model', "'model'", '"model" ', '"Model"'])));
    default:
      return Buffer.from(
        `{"model":"gpt-4o","messages":[{"role":"user","content":"${'\\u'.repeat(rng.range(1, 3))}d800"}]}`,
      );
  }
}

/** Mostly the two endpoints every rule serves (chat completions, messages); sometimes the others. */
function pathFor(rng: Rng): string {
  if (rng.bool(0.8)) return rng.bool(0.6) ? '/v1/chat/completions' : '/anthropic/v1/messages';
  return rng.bool(0.65) ? rng.pick(OPENAI_PATHS) : rng.pick(ANTHROPIC_PATHS);
}

async function send(path: string, body: Buffer | string, deadlineMs = 5000): Promise<ExchangeOutcome> {
  return driveExchange(processor.app.processor, { path, body: Buffer.from(body), deadlineMs });
}

/** Runs `count` generated bodies, checks the common invariants plus `extra`, and reports every distinct problem. */
async function run(
  what: string,
  count: number,
  rng: Rng,
  generate: (rng: Rng) => Buffer | string,
  extra: (outcome: ExchangeOutcome, body: Buffer) => string[] = () => [],
  /** At least this many bodies must have been forwarded (proves the rules route, so the 4xx are not all 404s). */
  minForwarded = 0,
): Promise<void> {
  const findings = new Findings();
  let forwarded = 0;
  for (let i = 0; i < count; i++) {
    if (findings.exhausted) break;
    const path = pathFor(rng);
    const body = Buffer.from(generate(rng));
    await findings.check(
      () => `${path} ${preview(body)}`,
      async () => {
        const outcome = await send(path, body);
        if (!outcome.immediate) forwarded += 1;
        return [...hostileRequestProblems(apiOf(path), outcome, FUZZ_MODEL_OVERRIDES), ...extra(outcome, body)];
      },
    );
  }
  findings.assertNone(what);
  if (forwarded < minForwarded)
    throw new Error(
      `${what}: only ${forwarded} of ${count} bodies were forwarded (expected at least ` +
        `${minForwarded}): is the routing broken?`,
    );
}

const answeredLocally =
  (status: number | [number, number]) =>
  (outcome: ExchangeOutcome): string[] => {
    const [low, high] = Array.isArray(status) ? status : [status, status];
    const got = outcome.immediate?.status;
    if (got === undefined) return [`forwarded upstream (expected a local ${low === high ? low : `${low}-${high}`})`];
    return got >= low && got <= high ? [] : [`status ${got} (expected ${low === high ? low : `${low}-${high}`})`];
  };

describe('hostile request bodies', () => {
  fuzzIt(
    'random JSON requests with wrong types: one answer each, a 4xx in the client schema or a consistent forward',
    async (rng) => {
      await run('random JSON', scaled(800), rng, (r) => JSON.stringify(randomRequest(r)), undefined, scaled(40));
    },
    30_000,
  );

  fuzzIt(
    'nesting 10,000 to 300,000 deep: 4xx in the client schema (a JSON depth limit), never 500',
    async (rng) => {
      await run(
        'deep nesting',
        scaled(16),
        rng,
        (r) => deepBody(r, r.range(10_000, 300_000)),
        answeredLocally([400, 499]),
      );
    },
    30_000,
  );

  fuzzIt(
    'model names of 60 KB and 256 KiB: 400 invalid_model',
    async (rng) => {
      await run(
        'huge model names',
        scaled(6),
        rng,
        (r) =>
          JSON.stringify({
            model: r.pick(['gpt-4o', 'gemini-', 'titan-']) + 'x'.repeat(r.pick([60 * 1024, 256 * 1024])),
            messages: [],
          }),
        answeredLocally(400),
      );
    },
    30_000,
  );

  fuzzIt(
    'strings of megabytes under the body limit: forwarded or 4xx, answered in time',
    async (rng) => {
      await run(
        'huge strings',
        scaled(6),
        rng,
        (r) =>
          JSON.stringify({
            model: r.pick(FUZZ_MODELS),
            max_tokens: 8,
            messages: [{ role: 'user', content: r.text(1).repeat(r.range(1, 3) * 1024 * 1024) }],
          }),
        undefined,
        1,
      );
    },
    30_000,
  );

  fuzzIt(
    'a body over the limit: 413 in the client schema',
    async (rng) => {
      await run(
        'over the limit',
        scaled(3),
        rng,
        (r) =>
          JSON.stringify({
            model: r.pick(FUZZ_MODELS),
            messages: [{ role: 'user', content: 'y'.repeat(FUZZ_BODY_LIMIT) }],
          }),
        answeredLocally(413),
      );
    },
    30_000,
  );

  fuzzIt(
    'duplicate "model" keys: rejected, or forwarded with exactly the model it was routed by',
    async (rng) => {
      await run('duplicate model keys', scaled(150), rng, duplicateModelBody);
      // A single "model" is still routed: the duplicate check must not reject ordinary bodies.
      await run(
        'single model key',
        scaled(20),
        rng,
        (r) =>
          `{"model":${JSON.stringify(r.pick(FUZZ_MODELS))},"messages":[{"role":"user","content":"hi"}],"max_tokens":8}`,
        undefined,
        scaled(10),
      );
    },
    30_000,
  );

  fuzzIt(
    'bytes that are not UTF-8: one answer each, a 4xx in the client schema or a consistent forward',
    async (rng) => {
      await run('non-UTF-8', scaled(300), rng, nonUtf8Body);
    },
    30_000,
  );

  fuzzIt(
    'truncated, non-object and non-JSON bodies: a 4xx in the client schema',
    async (rng) => {
      await run('malformed', scaled(300), rng, malformedBody, (outcome, body) => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch {
          return outcome.immediate ? [] : ['a body that is not JSON was forwarded'];
        }
        return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
          ? []
          : outcome.immediate
            ? []
            : ['a non-object body was forwarded'];
      });
    },
    30_000,
  );
});
