/**
 * Reading a client's JSON request body within bounds, without materialising it: one pass over the bytes checks the
 * JSON grammar (every token outside strings, every escape inside them), the nesting depth (deep documents parse,
 * but re-serializing or translating them overflows the stack) and finds the byte ranges of the top-level values the
 * gateway decides on. String contents are skipped with indexOf (memchr), so a body of large base64 images costs a
 * few native searches; the body is decoded and parsed whole only when it has to be rewritten.
 *
 * What the scan does not check: raw control characters (U+0000 to U+001F) inside strings other than the model.
 * They cannot move a string's end for any parser (only an unescaped quote ends a string, and the escapes are
 * checked), so the gateway and the provider still read the same structure; a strict provider answers such a body
 * with its own 400. Invalid UTF-8 is refused (it is checked natively, whole): a decoder that swallows a quote into
 * a broken sequence would see a different structure.
 */
import { isUtf8 } from 'node:buffer';

/** Deepest nesting of objects and arrays a request body may have. Real requests stay far below (tool schemas ~20). */
export const MAX_JSON_DEPTH = 128;

/** Top-level keys the gateway reads; a body may name each at most once (parsers disagree on which duplicate wins). */
export const TOP_LEVEL_KEYS = ['model', 'stream', 'stream_options'] as const;
export type TopLevelKey = (typeof TOP_LEVEL_KEYS)[number];

/** The bytes of one top-level value: `raw.subarray(start, end)` (strings with their quotes). */
export interface ValueSpan {
  start: number;
  end: number;
}

export type TopLevelFields = Partial<Record<TopLevelKey, ValueSpan>>;

export type JsonScanResult =
  | { ok: true; fields: TopLevelFields }
  | { ok: false; reason: 'syntax'; message: string }
  | { ok: false; reason: 'not_utf8' | 'not_object' | 'too_deep' }
  | { ok: false; reason: 'duplicate_key'; key: TopLevelKey };

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const PLUS = 0x2b;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const OPEN_BRACKET = 0x5b;
const BACKSLASH = 0x5c;
const CLOSE_BRACKET = 0x5d;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const LOWER_U = 0x75;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/** What the grammar allows next. */
const EXPECT_VALUE = 0;
const EXPECT_VALUE_OR_CLOSE = 1; // after `[`
const EXPECT_KEY = 2; // after `,` in an object
const EXPECT_KEY_OR_CLOSE = 3; // after `{`
const EXPECT_COLON = 4;
const EXPECT_COMMA_OR_CLOSE = 5;
const EXPECT_NOTHING = 6; // after the top-level value

const IN_OBJECT = 1;
const IN_ARRAY = 2;

/** The open containers of the scan in progress (scans are synchronous, so one stack serves them all). */
const containers = new Uint8Array(MAX_JSON_DEPTH + 1);

/** Bytes allowed after a backslash (besides `u`). */
const SIMPLE_ESCAPES = new Uint8Array(256);
for (const c of '"\\/bfnrt') SIMPLE_ESCAPES[c.charCodeAt(0)] = 1;
const HEX_DIGITS = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX_DIGITS[c.charCodeAt(0)] = 1;

const KEY_BYTES = TOP_LEVEL_KEYS.map((key) => Buffer.from(key));
/** An escaped spelling takes at most 6 bytes per character (`\uXXXX`): longer keys cannot decode to ours. */
const MAX_ESCAPED_KEY_BYTES = 6 * Math.max(...TOP_LEVEL_KEYS.map((key) => key.length));

class SyntaxFailure extends Error {}

/**
 * One pass over a request body: grammar, depth, UTF-8 and the spans of the top-level `model`, `stream` and
 * `stream_options`. Errors in the order a full parse would report them: syntax (and depth, which stops the scan)
 * first, then a top level that is not an object, then duplicate keys.
 */
export function scanJsonBody(raw: Buffer): JsonScanResult {
  if (!isUtf8(raw)) return { ok: false, reason: 'not_utf8' };
  const scan = new Scan(raw);
  let result: JsonScanResult;
  try {
    result = scan.run();
  } catch (error) {
    if (error instanceof SyntaxFailure) return { ok: false, reason: 'syntax', message: error.message };
    throw error;
  }
  return result;
}

class Scan {
  private readonly length: number;
  /** Position of the next backslash at or after the current string, cached across strings (-1: none left). */
  private nextBackslash = -2;
  /** The last string scanned contained an escape. */
  private escaped = false;
  private readonly fields: TopLevelFields = {};
  private readonly seen = [0, 0, 0];

  constructor(private readonly raw: Buffer) {
    this.length = raw.length;
  }

  run(): JsonScanResult {
    const raw = this.raw;
    const length = this.length;
    let i = 0;
    let depth = 0;
    let expect = EXPECT_VALUE;
    let topIsObject = false;
    /** The top-level key whose value is being read (index into TOP_LEVEL_KEYS), or -1. */
    let key = -1;
    let valueStart = 0;
    for (;;) {
      let c = raw[i];
      while (c === SPACE || c === LF || c === CR || c === TAB) c = raw[++i];
      if (i >= length) break;
      switch (expect) {
        case EXPECT_NOTHING:
          throw this.unexpected(i);
        case EXPECT_COLON:
          if (c !== COLON) throw this.unexpected(i);
          expect = EXPECT_VALUE;
          i += 1;
          continue;
        case EXPECT_COMMA_OR_CLOSE: {
          const container = containers[depth];
          if (c === COMMA) {
            expect = container === IN_OBJECT ? EXPECT_KEY : EXPECT_VALUE;
            i += 1;
            continue;
          }
          if ((c === CLOSE_BRACE && container === IN_OBJECT) || (c === CLOSE_BRACKET && container === IN_ARRAY)) {
            i += 1;
            depth -= 1;
            break;
          }
          throw this.unexpected(i);
        }
        case EXPECT_KEY:
        case EXPECT_KEY_OR_CLOSE: {
          if (c === CLOSE_BRACE && expect === EXPECT_KEY_OR_CLOSE) {
            i += 1;
            depth -= 1;
            break;
          }
          if (c !== QUOTE) throw this.unexpected(i);
          const end = this.stringEnd(i);
          if (depth === 1) key = this.topLevelKey(i + 1, end);
          i = end + 1;
          expect = EXPECT_COLON;
          continue;
        }
        default: {
          // EXPECT_VALUE or EXPECT_VALUE_OR_CLOSE
          if (c === CLOSE_BRACKET && expect === EXPECT_VALUE_OR_CLOSE) {
            i += 1;
            depth -= 1;
            break;
          }
          if (depth === 1) valueStart = i;
          if (c === OPEN_BRACE || c === OPEN_BRACKET) {
            depth += 1;
            if (depth > MAX_JSON_DEPTH) return { ok: false, reason: 'too_deep' };
            if (depth === 1) topIsObject = c === OPEN_BRACE;
            containers[depth] = c === OPEN_BRACE ? IN_OBJECT : IN_ARRAY;
            expect = c === OPEN_BRACE ? EXPECT_KEY_OR_CLOSE : EXPECT_VALUE_OR_CLOSE;
            i += 1;
            continue;
          }
          if (c === QUOTE) i = this.stringEnd(i) + 1;
          else if (c === 0x74 /* t */) i = this.literal(i, 'true');
          else if (c === 0x66 /* f */) i = this.literal(i, 'false');
          else if (c === 0x6e /* n */) i = this.literal(i, 'null');
          else if (c === MINUS || (c >= ZERO && c <= NINE)) i = this.numberEnd(i);
          else throw this.unexpected(i);
        }
      }
      // Here a value ended: a scalar, or a container just closed.
      if (depth === 0) {
        expect = EXPECT_NOTHING;
      } else {
        expect = EXPECT_COMMA_OR_CLOSE;
        if (depth === 1 && key !== -1) {
          this.seen[key] += 1;
          this.fields[TOP_LEVEL_KEYS[key]] = { start: valueStart, end: i };
          key = -1;
        }
      }
    }
    if (expect !== EXPECT_NOTHING) throw new SyntaxFailure('unexpected end of the JSON input');
    if (!topIsObject) return { ok: false, reason: 'not_object' };
    for (let k = 0; k < TOP_LEVEL_KEYS.length; k++) {
      if (this.seen[k] > 1) return { ok: false, reason: 'duplicate_key', key: TOP_LEVEL_KEYS[k] };
    }
    return { ok: true, fields: this.fields };
  }

  /**
   * The index of the quote that closes the string opening at `open`. Both searches are native and only move
   * forward: the quote search from the string, the backslash search from the last backslash (cached, so a body of
   * many strings without escapes is not searched to its end once per string).
   */
  private stringEnd(open: number): number {
    const raw = this.raw;
    let quote = raw.indexOf(QUOTE, open + 1);
    if (quote === -1) throw new SyntaxFailure(`unterminated string starting at position ${open}`);
    if (this.nextBackslash !== -1 && this.nextBackslash <= open) this.nextBackslash = raw.indexOf(BACKSLASH, open + 1);
    this.escaped = false;
    while (this.nextBackslash !== -1 && this.nextBackslash < quote) {
      const at = this.nextBackslash;
      const c = raw[at + 1];
      let after: number;
      if (c === LOWER_U) {
        if (!(HEX_DIGITS[raw[at + 2]] && HEX_DIGITS[raw[at + 3]] && HEX_DIGITS[raw[at + 4]] && HEX_DIGITS[raw[at + 5]]))
          throw new SyntaxFailure(`bad unicode escape in string at position ${at}`);
        after = at + 6;
      } else if (c !== undefined && SIMPLE_ESCAPES[c]) {
        after = at + 2;
      } else {
        throw new SyntaxFailure(`bad escape in string at position ${at}`);
      }
      this.escaped = true;
      if (after > quote) {
        quote = raw.indexOf(QUOTE, after);
        if (quote === -1) throw new SyntaxFailure(`unterminated string starting at position ${open}`);
      }
      this.nextBackslash = raw.indexOf(BACKSLASH, after);
    }
    return quote;
  }

  /** Which of TOP_LEVEL_KEYS the key bytes `[start, end)` spell (escaped spellings too), or -1. */
  private topLevelKey(start: number, end: number): number {
    const raw = this.raw;
    if (!this.escaped) {
      for (let k = 0; k < KEY_BYTES.length; k++) if (bytesEqual(raw, start, end, KEY_BYTES[k])) return k;
      return -1;
    }
    if (end - start > MAX_ESCAPED_KEY_BYTES) return -1;
    let decoded: unknown;
    try {
      decoded = JSON.parse(raw.toString('utf8', start - 1, end + 1));
    } catch {
      return -1; // a raw control character: not one of ours, which have none
    }
    return TOP_LEVEL_KEYS.indexOf(decoded as TopLevelKey);
  }

  private literal(at: number, word: string): number {
    const raw = this.raw;
    for (let j = 1; j < word.length; j++) if (raw[at + j] !== word.charCodeAt(j)) throw this.unexpected(at + j);
    return at + word.length;
  }

  /** `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, returning the index after it. */
  private numberEnd(at: number): number {
    const raw = this.raw;
    let i = at;
    if (raw[i] === MINUS) i += 1;
    if (raw[i] === ZERO) i += 1;
    else i = this.digits(i);
    if (raw[i] === DOT) i = this.digits(i + 1);
    if (raw[i] === LOWER_E || raw[i] === UPPER_E) {
      i += 1;
      if (raw[i] === PLUS || raw[i] === MINUS) i += 1;
      i = this.digits(i);
    }
    return i;
  }

  /** One or more digits from `at`. */
  private digits(at: number): number {
    const raw = this.raw;
    let i = at;
    while (raw[i] >= ZERO && raw[i] <= NINE) i += 1;
    if (i === at) throw this.unexpected(at);
    return i;
  }

  private unexpected(at: number): SyntaxFailure {
    if (at >= this.length) return new SyntaxFailure('unexpected end of the JSON input');
    const c = this.raw[at];
    const shown = c > SPACE && c < 0x7f ? `'${String.fromCharCode(c)}'` : `byte 0x${c.toString(16).padStart(2, '0')}`;
    return new SyntaxFailure(`unexpected ${shown} at position ${at}`);
  }
}

function bytesEqual(raw: Buffer, start: number, end: number, expected: Buffer): boolean {
  if (end - start !== expected.length) return false;
  for (let j = 0; j < expected.length; j++) if (raw[start + j] !== expected[j]) return false;
  return true;
}

/** The JSON value of a span, decoded (for the small top-level values the gateway reads). */
export function parseSpan(raw: Buffer, span: ValueSpan): unknown {
  return JSON.parse(raw.toString('utf8', span.start, span.end));
}

/** The first byte of a span: `"` for a string, `t`/`f` for booleans, `n` for null, `{` for an object. */
export function spanKind(raw: Buffer, span: ValueSpan): number {
  return raw[span.start];
}

/** Whether a string span contains an escape (its bytes are then not its value). */
export function spanHasEscape(raw: Buffer, span: ValueSpan): boolean {
  return raw.subarray(span.start, span.end).indexOf(BACKSLASH) !== -1;
}

/**
 * The whole body, parsed: for requests that are rewritten. A body the scan accepted may still fail here (raw
 * control characters in strings).
 */
export function parseJsonBody(
  raw: Buffer,
): { ok: true; body: Record<string, unknown> } | { ok: false; message: string } {
  try {
    return { ok: true, body: JSON.parse(raw.toString('utf8')) as Record<string, unknown> };
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
}
