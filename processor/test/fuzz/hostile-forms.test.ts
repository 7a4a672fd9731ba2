/**
 * Hostile multipart/form-data bodies on the audio and image endpoints (issue 16), generated from a seed (FUZZ_SEED,
 * FUZZ_SCALE: see test/support/fuzz.ts): forms as Node's encoder writes them, then truncated, with bytes changed,
 * inserted or removed, with boundaries in values and files, duplicate and file-typed model fields, thousands of
 * parts, huge headers and files of megabytes, against rules that reach OpenAI (with and without a model name
 * override) and backends that cannot take a form.
 *
 * Invariants for every body: exactly one answer per message, within a deadline; either a 4xx in OpenAI's error
 * schema, or a forwarded request whose body is the client's bytes (or, under a model name override, the client's
 * bytes with only the model value replaced) and whose `model`, as Node's multipart parser reads it, is the routed
 * model. Never a 5xx.
 */
import { errorSchemaProblems, Findings, preview } from '../support/fuzz-checks';
import { FUZZ_MODEL_OVERRIDES, FUZZ_MODELS, FUZZ_SECRETS, fuzzConfig } from '../support/fuzz-config';
import { fuzzIt, scaled, type Rng } from '../support/fuzz';
import { startTestProcessor, type TestProcessor } from '../support/processor-harness';
import { driveExchange, type ExchangeOutcome } from '../support/session-driver';

const PATHS = ['/v1/audio/transcriptions', '/v1/audio/translations', '/v1/images/edits'];
const NAMES = ['model', 'stream', 'file', 'prompt', 'image[]', 'language', 'Model', 'model ', 'response_format'];
const PIECES = ['\r\n', '--', '\r\n--', '\n--', 'model', 'Content-Disposition: form-data; name="model"', '"', 'é'];

let processor: TestProcessor;
beforeAll(async () => {
  processor = await startTestProcessor(fuzzConfig(), { secrets: FUZZ_SECRETS });
});
afterAll(() => processor.close());

function randomText(rng: Rng): string {
  let out = '';
  for (let i = rng.int(5); i > 0; i--) out += rng.bool(0.4) ? rng.pick(PIECES) : rng.text(rng.int(8));
  return out;
}

async function encode(form: FormData): Promise<{ raw: Buffer; contentType: string }> {
  const response = new Response(form);
  return { raw: Buffer.from(await response.arrayBuffer()), contentType: response.headers.get('content-type')! };
}

async function randomForm(rng: Rng): Promise<{ raw: Buffer; contentType: string }> {
  const data = new FormData();
  // Mostly the models OpenAI serves (one with an override); the others' backends cannot take a form.
  const model = rng.bool(0.6) ? rng.pick(['gpt-4o', 'plain']) : rng.pick(FUZZ_MODELS);
  if (rng.bool(0.85)) data.append('model', rng.bool(0.9) ? model : randomText(rng));
  for (let i = rng.int(5); i > 0; i--) {
    const name = rng.pick(NAMES);
    if (rng.bool(0.35)) {
      const bytes = rng.bool(0.05) ? Buffer.alloc(rng.range(1, 3) * 1024 * 1024, rng.int(256)) : rng.bytes(rng.int(64));
      data.append(name, new Blob([Buffer.from(randomText(rng)), bytes]), 'f.wav');
    } else data.append(name, rng.bool(0.5) ? rng.pick([...FUZZ_MODELS, 'true', 'false', '1']) : randomText(rng));
  }
  if (rng.bool(0.03)) for (let i = 0; i < 200; i++) data.append(`f${i}`, 'v');
  return encode(data);
}

function mutate(rng: Rng, raw: Buffer): Buffer {
  switch (rng.int(8)) {
    case 0:
      return raw.subarray(0, rng.int(raw.length + 1));
    case 1: {
      const out = Buffer.from(raw);
      const window = Math.min(out.length, 600);
      for (let i = rng.range(1, 3); i > 0 && out.length > 0; i--) out[rng.int(window)] = rng.int(256);
      return out;
    }
    case 2: {
      const at = rng.int(Math.min(raw.length, 600) + 1);
      return Buffer.concat([raw.subarray(0, at), Buffer.from(rng.pick(PIECES)), raw.subarray(at)]);
    }
    case 3: {
      const at = rng.int(Math.min(raw.length, 600) + 1);
      return Buffer.concat([raw.subarray(0, at), raw.subarray(Math.min(raw.length, at + rng.range(1, 8)))]);
    }
    default:
      return raw;
  }
}

async function nodeModels(raw: Buffer, contentType: string): Promise<unknown[] | undefined> {
  try {
    const data = await new Response(raw, { headers: { 'content-type': contentType } }).formData();
    return data.getAll('model').map((value) => (typeof value === 'string' ? value : 'file'));
  } catch {
    return undefined;
  }
}

async function problemsOf(outcome: ExchangeOutcome, raw: Buffer, contentType: string): Promise<string[]> {
  const problems: string[] = [];
  if (outcome.extraAnswers > 0) problems.push(`${outcome.extraAnswers} answer(s) more than messages sent`);
  const immediate = outcome.immediate;
  if (immediate) {
    if (immediate.status < 400 || immediate.status > 499)
      problems.push(`status ${immediate.status} (a 4xx belongs here)`);
    return [...problems, ...errorSchemaProblems('OpenAI', immediate.body, immediate.headers)];
  }
  const upstream = outcome.upstream;
  if (!upstream) return [...problems, 'neither answered locally nor forwarded'];
  const routed = upstream.headers['x-ai-eg-model'];
  if (routed === undefined) return [...problems, 'forwarded without x-ai-eg-model'];
  const expected = FUZZ_MODEL_OVERRIDES.get(routed) ?? routed;
  if (upstream.bodyReplaced !== (expected !== routed)) problems.push(`body replaced: ${upstream.bodyReplaced}`);
  const sent = upstream.body;
  if (!upstream.bodyReplaced && !sent.equals(raw)) problems.push('forwarded other bytes than the client sent');
  if (upstream.bodyReplaced) {
    // Only the value changed: the client's bytes before and after it are kept.
    const at = sent.indexOf(Buffer.from(expected));
    const restored = Buffer.concat([sent.subarray(0, at), Buffer.from(routed), sent.subarray(at + expected.length)]);
    if (at === -1 || !restored.equals(raw)) problems.push('the override changed more than the model value');
  }
  const models = await nodeModels(sent, contentType);
  if (models !== undefined && JSON.stringify(models) !== JSON.stringify([expected]))
    problems.push(`routed as ${JSON.stringify(routed)} but Node reads model ${JSON.stringify(models).slice(0, 80)}`);
  return problems;
}

describe('hostile multipart/form-data bodies', () => {
  fuzzIt(
    'generated and mutated forms: one answer each, a 4xx in OpenAI’s schema or the client’s bytes forwarded',
    async (rng) => {
      const findings = new Findings();
      let forwarded = 0;
      for (let i = scaled(200); i > 0 && !findings.exhausted; i--) {
        const path = rng.pick(PATHS);
        const { raw: encoded, contentType } = await randomForm(rng);
        const raw = mutate(rng, encoded);
        await findings.check(
          () => `${path} ${preview(raw, 400)}`,
          async () => {
            const outcome = await driveExchange(processor.app.processor, {
              path,
              headers: { 'content-type': contentType },
              body: raw,
              deadlineMs: 5000,
            });
            if (!outcome.immediate) forwarded++;
            return problemsOf(outcome, raw, contentType);
          },
        );
      }
      findings.assertNone('hostile forms');
      expect(forwarded).toBeGreaterThan(scaled(30));
    },
    120_000,
  );
});
