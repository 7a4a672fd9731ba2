/**
 * The request body scanner against JSON.parse: the same top-level model, stream and stream_options on generated
 * valid JSON (escaped keys, strings full of braces, quotes and backslashes, random whitespace), the same verdict on
 * mutated JSON (the one documented difference: raw control characters inside strings), and hostile inputs.
 */
import {
  MAX_JSON_DEPTH,
  parseSpan,
  scanJsonBody,
  TOP_LEVEL_KEYS,
  type JsonScanResult,
  type TopLevelKey,
} from '../../src/extproc/json-body';
import { fuzzIt, scaled, type Rng } from '../support/fuzz';

function scan(body: string | Buffer): JsonScanResult {
  return scanJsonBody(Buffer.from(body));
}

function fieldsOf(body: string | Buffer): Partial<Record<TopLevelKey, unknown>> {
  const raw = Buffer.from(body);
  const result = scanJsonBody(raw);
  if (!result.ok) throw new Error(`not accepted: ${JSON.stringify(result)}`);
  const out: Partial<Record<TopLevelKey, unknown>> = {};
  for (const key of TOP_LEVEL_KEYS) {
    const span = result.fields[key];
    if (span) out[key] = parseSpan(raw, span);
  }
  return out;
}

// ---------- generated JSON ----------

const STRING_PIECES = [
  'a',
  'model',
  '{',
  '}',
  '[',
  ']',
  '"',
  '\\',
  '/',
  ':',
  ',',
  ' ',
  'é',
  '😀',
  '\u2028',
  '\n',
  '\t',
];
const KEY_NAMES = ['model', 'stream', 'stream_options', 'messages', 'content', 'include_usage', 'a', 'mode', 'models'];

function randomString(rng: Rng): string {
  let out = '';
  for (let i = rng.int(8); i > 0; i--) out += rng.pick(STRING_PIECES);
  return out;
}

/** JSON text of a string, each character written plainly or escaped (`\uXXXX`, `\/`, and the short escapes). */
function writeString(rng: Rng, value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\' || code < 0x20) {
      out += rng.bool() ? JSON.stringify(ch).slice(1, -1) : `\\u${code.toString(16).padStart(4, '0')}`;
    } else if (ch === '/' && rng.bool()) {
      out += '\\/';
    } else if (rng.bool(0.15)) {
      // Astral characters as their two escaped surrogate halves.
      for (let k = 0; k < ch.length; k++) out += `\\u${ch.charCodeAt(k).toString(16).padStart(4, '0')}`;
    } else {
      out += ch;
    }
  }
  return out + '"';
}

function space(rng: Rng): string {
  return rng.bool(0.7) ? '' : rng.pick([' ', '\n', '\t', '\r\n', '  ']);
}

function randomValue(rng: Rng, depth: number): string {
  const kind = depth <= 0 ? rng.int(6) : rng.int(8);
  switch (kind) {
    case 0:
      return writeString(rng, randomString(rng));
    case 1:
      return String(rng.pick([0, -0.5, 1e21, 42, -7, 3.25e-7]));
    case 2:
      return rng.pick(['true', 'false', 'null']);
    case 3:
      return rng.pick(['1E+2', '-0', '0.0e0', '12345678901234567890']);
    case 4:
    case 5:
      return writeString(rng, rng.pick(['gpt-4o', 'claude', '', 'x'.repeat(300)]));
    case 6: {
      const items = Array.from({ length: rng.int(4) }, () => space(rng) + randomValue(rng, depth - 1) + space(rng));
      return `[${items.join(',')}]`;
    }
    default:
      return randomObject(rng, depth - 1, new Set());
  }
}

/** An object; `used` collects the decoded keys written (the top level avoids duplicates through it). */
function randomObject(rng: Rng, depth: number, used: Set<string> | undefined): string {
  const members: string[] = [];
  for (let i = rng.int(6); i > 0; i--) {
    const key = rng.bool(0.8) ? rng.pick(KEY_NAMES) : randomString(rng);
    if (used) {
      if (used.has(key)) continue;
      used.add(key);
    }
    members.push(
      `${space(rng)}${writeString(rng, key)}${space(rng)}:${space(rng)}${randomValue(rng, depth)}${space(rng)}`,
    );
  }
  return `{${members.join(',')}}`;
}

function generatedBody(rng: Rng): string {
  return space(rng) + randomObject(rng, 4, new Set()) + space(rng);
}

// ---------- mutations ----------

const INSERTS = ['{', '}', '[', ']', '"', ',', ':', '\\', ' ', '0', '-', '.', 'e', 't', 'n', 'x', '\u0001', "'", '/'];

function mutate(rng: Rng, body: string): string {
  let out = body;
  for (let n = rng.range(1, 3); n > 0; n--) {
    const at = rng.int(out.length + 1);
    switch (rng.int(4)) {
      case 0:
        out = out.slice(0, at) + out.slice(at + 1);
        break;
      case 1:
        out = out.slice(0, at) + rng.pick(INSERTS) + out.slice(at);
        break;
      case 2:
        out = out.slice(0, at) + rng.pick(INSERTS) + out.slice(at + 1);
        break;
      default:
        out = out.slice(0, at);
    }
  }
  return out;
}

describe('scanJsonBody', () => {
  fuzzIt(
    'agrees with JSON.parse on the top-level model, stream and stream_options of generated valid JSON',
    (rng) => {
      for (let i = 0; i < scaled(3000); i++) {
        const body = generatedBody(rng);
        const expected = JSON.parse(body) as Record<string, unknown>;
        let fields: Partial<Record<TopLevelKey, unknown>>;
        try {
          fields = fieldsOf(body);
        } catch (error) {
          throw new Error(`${(error as Error).message} for ${body}`, { cause: error });
        }
        for (const key of TOP_LEVEL_KEYS) {
          if (!(key in expected)) expect(fields[key]).toBeUndefined();
          else expect({ body, [key]: fields[key] }).toEqual({ body, [key]: expected[key] });
        }
      }
    },
    30_000,
  );

  fuzzIt(
    'accepts exactly what JSON.parse accepts on mutated JSON, except raw control characters inside strings',
    (rng) => {
      for (let i = 0; i < scaled(6000); i++) {
        const body = mutate(rng, generatedBody(rng));
        const raw = Buffer.from(body);
        const result = scanJsonBody(raw);
        let parsed: unknown;
        let parseError: string | undefined;
        try {
          // The bytes' text: a mutation that split a surrogate pair was written as U+FFFD.
          parsed = JSON.parse(raw.toString('utf8'));
        } catch (error) {
          parseError = (error as Error).message;
        }
        const context = { body, result, parseError };
        if (parseError !== undefined) {
          // The documented difference: a raw control character inside a string is left to the provider.
          if (result.ok || result.reason !== 'syntax')
            expect(context).toMatchObject({ parseError: /control character/ });
        } else if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
          expect({ ...context, reason: result.ok ? 'ok' : result.reason }).toMatchObject({ reason: 'not_object' });
        } else if (!result.ok) {
          // Valid JSON is refused only for a duplicate top-level key the gateway reads (JSON.parse keeps the last).
          expect(context).toMatchObject({ result: { reason: 'duplicate_key' } });
          expect(result.reason === 'duplicate_key' && result.key in parsed).toBe(true);
        } else {
          for (const key of TOP_LEVEL_KEYS) {
            const span = result.fields[key];
            expect({ body, key, value: span && parseSpan(raw, span) }).toEqual({
              body,
              key,
              value: (parsed as Record<string, unknown>)[key],
            });
          }
        }
      }
    },
    30_000,
  );

  it.each([
    ['twice', '{"model":"a","model":"b"}', 'model'],
    ['escaped', '{"model":"a","mod\\u0065l":"b"}', 'model'],
    ['escaped twice', '{"\\u006dodel":"a","m\\u006fdel":"b"}', 'model'],
    ['with a non-string first value', '{"model":42,"model":"b"}', 'model'],
    ['stream twice', '{"model":"a","stream":false,"stream":true}', 'stream'],
    [
      'stream_options twice',
      '{"model":"a","stream_options":{},"stream_\\u006fptions":{"include_usage":true}}',
      'stream_options',
    ],
  ])('refuses a top-level key named %s', (_name, body, key) => {
    expect(scan(body)).toEqual({ ok: false, reason: 'duplicate_key', key });
  });

  it('reads escaped spellings of keys and values, and ignores model keys below the top level or in strings', () => {
    expect(fieldsOf('{"m\\u006fdel":"gpt\\u002d4o","str\\u0065am":true}')).toEqual({ model: 'gpt-4o', stream: true });
    const body =
      '{"messages":[{"content":"{\\"model\\":\\"x\\"}\\\\","model":"y"}],"meta":{"model":"z","mod\\u0065l":"w"},' +
      '"a":"\\\\\\"model\\\\\\":","model" : "gpt-4o"}';
    expect(fieldsOf(body)).toEqual({ model: 'gpt-4o' });
    expect(JSON.parse(body).model).toBe('gpt-4o');
  });

  it('gives the span of a model that is not a string (the caller refuses it)', () => {
    expect(fieldsOf('{"model":42}')).toEqual({ model: 42 });
    expect(fieldsOf('{"model":{"name":"gpt-4o"}}')).toEqual({ model: { name: 'gpt-4o' } });
    expect(fieldsOf('{"model":null,"stream":"true"}')).toEqual({ model: null, stream: 'true' });
  });

  it('counts nesting like the limit says, and stops at the limit without reading further', () => {
    const nested = (depth: number) => `{"model":"m","a":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;
    expect(scan(nested(MAX_JSON_DEPTH)).ok).toBe(true);
    expect(scan(nested(MAX_JSON_DEPTH + 1))).toEqual({ ok: false, reason: 'too_deep' });
    expect(scan('['.repeat(300_000))).toEqual({ ok: false, reason: 'too_deep' });
    expect(scan(`{"a":"${'['.repeat(10_000)}","model":"m"}`).ok).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['whitespace', ' \n'],
    ['an unterminated string', '{"model":"gpt-4o'],
    ['an unterminated key', '{"mod'],
    ['a string ending in a backslash', '{"model":"gpt-4o\\"}'],
    ['a bad escape', '{"model":"a","b":"\\x41"}'],
    ['a short unicode escape', '{"model":"a","b":"\\u12"}'],
    ['a quote inside a unicode escape', '{"model":"a","b":"\\u00"}'],
    ['a trailing comma', '{"model":"a",}'],
    ['a missing comma', '{"model":"a" "b":1}'],
    ['a missing colon', '{"model" "a"}'],
    ['a single-quoted string', "{'model':'a'}"],
    ['an unquoted key', '{model:"a"}'],
    ['a comment', '{"model":"a" /* "model":"b" */}'],
    ['a line comment', '{"model":"a", // x\n"b":1}'],
    ['NaN', '{"model":"a","t":NaN}'],
    ['a leading zero', '{"model":"a","n":01}'],
    ['a bare minus', '{"model":"a","n":-}'],
    ['a trailing dot', '{"model":"a","n":1.}'],
    ['a leading dot', '{"model":"a","n":.5}'],
    ['a plus sign', '{"model":"a","n":+1}'],
    ['an empty exponent', '{"model":"a","n":1e}'],
    ['a misspelt literal', '{"model":"a","s":tru}'],
    ['bytes after the object', '{"model":"a"} x'],
    ['a second object', '{"model":"a"}{"model":"b"}'],
    ['a byte order mark', '\ufeff{"model":"a"}'],
    ['a NUL after the object', '{"model":"a"}\u0000'],
    ['a mismatched close', '{"model":["a"}]'],
    ['a close without open', ']'],
    ['a vertical tab as whitespace', '{\u000b"model":"a"}'],
  ])('refuses %s as a syntax error, as JSON.parse does', (_name, body) => {
    expect(() => JSON.parse(body)).toThrow();
    expect(scan(body)).toMatchObject({ ok: false, reason: 'syntax' });
  });

  it('refuses every truncation of a body', () => {
    const body = JSON.stringify({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'a "quoted" \\ {x}' }],
      n: -1.5e3,
    });
    for (let end = 0; end < body.length; end++)
      expect(scan(body.slice(0, end))).toMatchObject({ ok: false, reason: 'syntax' });
  });

  it.each([
    ['an array', '[{"model":"a"}]'],
    ['a string', '"model"'],
    ['null', 'null'],
    ['a number', '1e999'],
  ])('refuses a top level that is %s as not an object', (_name, body) => {
    expect(scan(body)).toEqual({ ok: false, reason: 'not_object' });
  });

  it.each([
    ['a stray continuation byte', [0x80]],
    ['an overlong form', [0xc0, 0xaf]],
    ['a surrogate', [0xed, 0xa0, 0x80]],
    ['a truncated sequence', [0xe2, 0x82]],
    ['0xFF', [0xff]],
  ])('refuses bytes that are not UTF-8 (%s), wherever they are', (_name, bytes) => {
    for (const [before, after] of [
      ['{"model":"gpt', '"}'],
      ['{"model":"a","b":"x', 'y"}'],
    ]) {
      expect(scanJsonBody(Buffer.concat([Buffer.from(before), Buffer.from(bytes), Buffer.from(after)]))).toEqual({
        ok: false,
        reason: 'not_utf8',
      });
    }
  });

  it('leaves raw control characters inside strings to the provider (JSON.parse refuses them)', () => {
    const body = '{"model":"a","messages":[{"content":"line\nbreak\u0001"}]}';
    expect(() => JSON.parse(body)).toThrow(/control character/);
    expect(fieldsOf(body)).toEqual({ model: 'a' });
  });

  it('stays linear with many strings and one backslash at the end (the backslash search is not repeated)', () => {
    const body = `{"model":"a","items":[${'"x",'.repeat(300_000)}"\\n"]}`;
    const started = performance.now();
    expect(scan(body).ok).toBe(true);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('scans a 20 MB string value in place (base64 image)', () => {
    const image = Buffer.alloc(15 * 1024 * 1024, 0x41).toString('base64');
    const body = Buffer.from(
      `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"image_url","image_url":` +
        `{"url":"data:image/png;base64,${image}"}}]}],"stream":true}`,
    );
    expect(fieldsOf(body)).toEqual({ model: 'gpt-4o', stream: true });
  });
});
