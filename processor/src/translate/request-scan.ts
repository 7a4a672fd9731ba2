/**
 * Validates a JSON request body and reads its top-level `model` and `stream` without building any objects:
 * for requests whose body is forwarded unchanged, parsing the whole body (and decoding it to a string) is
 * most of the processor's garbage.
 *
 * The scanner is conservative. It answers only for a well-formed JSON object whose top-level keys are written
 * without escapes and whose `model` (when a string) is plain ASCII without escapes; for anything else
 * (malformed JSON, another top-level type, escaped keys, nesting deeper than MAX_DEPTH) it returns undefined
 * and the caller parses with JSON.parse, which then decides (and words any error) exactly as before. Accepting
 * a body is therefore the only claim it makes, and it accepts only what JSON.parse accepts on the body decoded
 * as UTF-8: invalid UTF-8 inside strings decodes to U+FFFD (never to a quote or control character), so bytes
 * of 0x80 and above are accepted inside strings and rejected elsewhere, as JSON.parse does.
 */

export interface RequestSummary {
  /** The last top-level `model` when it is a string; undefined when absent or not a string. */
  model: string | undefined;
  /** The last top-level `stream` is the literal `true`. */
  stream: boolean;
}

/** Deeper bodies go to JSON.parse (requests nest a few levels; this bounds the stack below). */
export const MAX_DEPTH = 256;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

const IN_OBJECT = 1;
const IN_ARRAY = 2;

/** Reused container stack: the scan is synchronous, so one is enough. */
const stack = new Uint8Array(MAX_DEPTH);

// Scan state (the scan is synchronous). scanString sets the flag for the string it just scanned.
let stringHasEscape = false;
let depth = 0;
let modelStart = -1;
let modelEnd = -1;
let stream = false;

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipWhitespace(body: Uint8Array, i: number): number {
  while (i < body.length && isWhitespace(body[i]!)) i++;
  return i;
}

function isHexDigit(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** 1 for bytes that stand for themselves inside a string: not a quote, backslash or control character. */
const PLAIN_IN_STRING = new Uint8Array(256);
for (let c = 0x20; c < 256; c++) PLAIN_IN_STRING[c] = c === QUOTE || c === BACKSLASH ? 0 : 1;

/** `i` at the opening quote; the index after the closing quote, or -1. */
function scanString(body: Uint8Array, i: number): number {
  stringHasEscape = false;
  const n = body.length;
  i++;
  for (;;) {
    while (i < n && PLAIN_IN_STRING[body[i]!] === 1) i++;
    if (i >= n) return -1;
    const c = body[i]!;
    if (c === QUOTE) return i + 1;
    if (c !== BACKSLASH) return -1; // a control character
    stringHasEscape = true;
    const e = body[i + 1];
    if (e === 0x75 /* u */) {
      if (i + 5 >= n) return -1;
      if (!isHexDigit(body[i + 2]!) || !isHexDigit(body[i + 3]!) || !isHexDigit(body[i + 4]!) || !isHexDigit(body[i + 5]!)) return -1;
      i += 6;
    } else if (e === QUOTE || e === BACKSLASH || e === 0x2f /* / */ || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
      i += 2;
    } else {
      return -1;
    }
  }
}

function isAscii(body: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (body[i]! >= 0x80) return false;
  return true;
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= ZERO && c <= NINE;
}

/** `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; the index after the number, or -1. */
function scanNumber(body: Uint8Array, i: number): number {
  if (body[i] === MINUS) i++;
  if (body[i] === ZERO) {
    i++;
  } else if (isDigit(body[i])) {
    while (isDigit(body[i])) i++;
  } else {
    return -1;
  }
  if (body[i] === DOT) {
    i++;
    if (!isDigit(body[i])) return -1;
    while (isDigit(body[i])) i++;
  }
  if (body[i] === 0x65 || body[i] === 0x45 /* e E */) {
    i++;
    if (body[i] === PLUS || body[i] === MINUS) i++;
    if (!isDigit(body[i])) return -1;
    while (isDigit(body[i])) i++;
  }
  return i;
}

const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];

function scanLiteral(body: Uint8Array, i: number, literal: readonly number[]): number {
  for (let k = 0; k < literal.length; k++) if (body[i + k] !== literal[k]) return -1;
  return i + literal.length;
}

/** The index after the scalar at `i`, or -1. */
function scanScalar(body: Uint8Array, i: number): number {
  const c = body[i];
  if (c === QUOTE) return scanString(body, i);
  if (c === 0x74) return scanLiteral(body, i, TRUE);
  if (c === 0x66) return scanLiteral(body, i, FALSE);
  if (c === 0x6e) return scanLiteral(body, i, NULL);
  return scanNumber(body, i);
}

const OTHER_KEY = 0;
const MODEL_KEY = 1;
const STREAM_KEY = 2;

/** Top-level key between the quotes at [start, end); escaped keys were rejected before. */
function classifyKey(body: Uint8Array, start: number, end: number): number {
  const length = end - start;
  if (length === 5 && body[start] === 0x6d && body[start + 1] === 0x6f && body[start + 2] === 0x64 && body[start + 3] === 0x65 && body[start + 4] === 0x6c) {
    return MODEL_KEY;
  }
  if (
    length === 6 &&
    body[start] === 0x73 &&
    body[start + 1] === 0x74 &&
    body[start + 2] === 0x72 &&
    body[start + 3] === 0x65 &&
    body[start + 4] === 0x61 &&
    body[start + 5] === 0x6d
  ) {
    return STREAM_KEY;
  }
  return OTHER_KEY;
}

function asciiSlice(body: Uint8Array, start: number, end: number): string {
  return Buffer.from(body.buffer, body.byteOffset + start, end - start).toString('latin1');
}

/** See the module comment. `body` is the raw request body. */
export function scanRequestObject(body: Uint8Array): RequestSummary | undefined {
  const n = body.length;
  let i = skipWhitespace(body, 0);
  if (body[i] !== OPEN_OBJECT) return undefined;
  depth = 0;
  modelStart = -1;
  modelEnd = -1;
  stream = false;
  // Each pass handles one value starting at i (after whitespace), then the separators that follow it.
  for (;;) {
    const c = body[i];
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (depth === MAX_DEPTH) return undefined;
      stack[depth++] = c === OPEN_OBJECT ? IN_OBJECT : IN_ARRAY;
      i = skipWhitespace(body, i + 1);
      if (body[i] === (c === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) {
        depth--;
        i++;
      } else if (c === OPEN_ARRAY) {
        continue; // the first element
      } else {
        i = scanMember(body, i);
        if (i < 0) return undefined;
        continue;
      }
    } else {
      i = scanScalar(body, i);
      if (i < 0) return undefined;
    }
    // After a value: close containers, or move to the next element or member.
    for (;;) {
      i = skipWhitespace(body, i);
      if (depth === 0) return i === n ? { model: modelStart < 0 ? undefined : asciiSlice(body, modelStart, modelEnd), stream } : undefined;
      const container = stack[depth - 1];
      const next = body[i];
      if (next === COMMA) {
        i = skipWhitespace(body, i + 1);
        if (container === IN_OBJECT) {
          i = scanMember(body, i);
          if (i < 0) return undefined;
        }
        break;
      }
      if (next === (container === IN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) {
        depth--;
        i++;
        continue;
      }
      return undefined;
    }
  }
}

/**
 * `at` at a member's key: scans `"key" :` and returns the index of the value. Top-level `model` and
 * `stream` are noted here (a later duplicate wins, as with JSON.parse).
 */
function scanMember(bytes: Uint8Array, at: number): number {
  if (bytes[at] !== QUOTE) return -1;
  const end = scanString(bytes, at);
  if (end < 0) return -1;
  const topLevel = depth === 1;
  if (topLevel && stringHasEscape) return -2; // an escaped key could spell "model": let JSON.parse decide
  const key = topLevel ? classifyKey(bytes, at + 1, end - 1) : OTHER_KEY;
  let value = skipWhitespace(bytes, end);
  if (bytes[value] !== COLON) return -1;
  value = skipWhitespace(bytes, value + 1);
  if (key === MODEL_KEY) {
    if (bytes[value] === QUOTE) {
      const valueEnd = scanString(bytes, value);
      if (valueEnd < 0) return -1;
      if (stringHasEscape || !isAscii(bytes, value + 1, valueEnd - 1)) return -2;
      modelStart = value + 1;
      modelEnd = valueEnd - 1;
    } else {
      modelStart = -1;
    }
  } else if (key === STREAM_KEY) {
    stream = scanLiteral(bytes, value, TRUE) !== -1;
  }
  return value;
}
