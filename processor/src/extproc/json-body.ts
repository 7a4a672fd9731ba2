/**
 * Reading a client's JSON request body within bounds: nesting depth (deep documents parse, but re-serializing or
 * translating them overflows the stack) and exactly one top-level `model` (JSON.parse keeps the last of duplicate
 * keys while a passthrough forwards both, so the gateway and the provider could read different models).
 */

/** Deepest nesting of objects and arrays a request body may have. Real requests stay far below (tool schemas ~20). */
export const MAX_JSON_DEPTH = 128;

export type JsonBodyResult =
  | { ok: true; body: Record<string, unknown> }
  | { ok: false; reason: 'syntax'; message: string }
  | { ok: false; reason: 'not_object' | 'too_deep' | 'duplicate_model' };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
/** `model` in UTF-8. */
const MODEL_KEY = Buffer.from('model');

export function parseJsonBody(raw: Buffer): JsonBodyResult {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    return { ok: false, reason: 'syntax', message: (error as Error).message };
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return { ok: false, reason: 'not_object' };
  // Scanned once JSON.parse accepted the bytes (it reports syntax errors with their position), so the scan may
  // trust the structure. V8's parser itself is iterative: depth is a problem only for what comes after.
  if (plainlyWithinBounds(raw)) return { ok: true, body: body as Record<string, unknown> };
  const shape = scanStructure(raw);
  if (shape.tooDeep) return { ok: false, reason: 'too_deep' };
  if (shape.modelKeys > 1) return { ok: false, reason: 'duplicate_model' };
  return { ok: true, body: body as Record<string, unknown> };
}

const MODEL_KEY_QUOTED = Buffer.from('"model"');
const UNICODE_ESCAPE = Buffer.from('\\u');

/**
 * The common case, decided with a few native searches instead of the byte loop: fewer opening brackets than the
 * depth limit, at most one `"model"` and no `\u` escape (without one no other key can spell `model`).
 */
function plainlyWithinBounds(raw: Buffer): boolean {
  const first = raw.indexOf(MODEL_KEY_QUOTED);
  if (first !== -1 && raw.indexOf(MODEL_KEY_QUOTED, first + 1) !== -1) return false;
  if (raw.indexOf(UNICODE_ESCAPE) !== -1) return false;
  let brackets = 0;
  for (const open of [OPEN_BRACE, OPEN_BRACKET]) {
    for (let at = raw.indexOf(open); at !== -1; at = raw.indexOf(open, at + 1)) {
      if (++brackets >= MAX_JSON_DEPTH) return false;
    }
  }
  return true;
}

/**
 * One pass over the bytes: the maximum nesting depth (stops counting past the limit) and how many top-level keys
 * are `model` (escaped spellings such as `mod\u0065l` included). Strings are skipped with indexOf (memchr), so a
 * body of large base64 images costs little.
 */
function scanStructure(raw: Buffer): { tooDeep: boolean; modelKeys: number } {
  let depth = 0;
  let modelKeys = 0;
  /** At depth 1 of the top-level object, the next string is a key. */
  let expectKey = false;
  let i = 0;
  const length = raw.length;
  while (i < length) {
    const c = raw[i];
    if (c === QUOTE) {
      const end = closingQuote(raw, i + 1);
      if (end === -1) break; // unterminated: JSON.parse reports it
      if (depth === 1 && expectKey) {
        if (isModelKey(raw, i + 1, end)) modelKeys += 1;
        expectKey = false;
      }
      i = end + 1;
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth += 1;
      if (depth > MAX_JSON_DEPTH) return { tooDeep: true, modelKeys };
      expectKey = depth === 1 && c === OPEN_BRACE;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth -= 1;
    } else if (c === COMMA) {
      if (depth === 1) expectKey = true;
    } else if (c === COLON) {
      if (depth === 1) expectKey = false;
    }
    i += 1;
  }
  return { tooDeep: false, modelKeys };
}

/** Index of the quote that ends the string whose content starts at `from`, or -1. */
function closingQuote(raw: Buffer, from: number): number {
  let at = raw.indexOf(QUOTE, from);
  while (at !== -1) {
    let backslashes = 0;
    for (let j = at - 1; j >= from && raw[j] === BACKSLASH; j--) backslashes += 1;
    if (backslashes % 2 === 0) return at;
    at = raw.indexOf(QUOTE, at + 1);
  }
  return -1;
}

function isModelKey(raw: Buffer, start: number, end: number): boolean {
  if (end - start === MODEL_KEY.length) return raw.compare(MODEL_KEY, 0, MODEL_KEY.length, start, end) === 0;
  // An escaped spelling is longer than five bytes; only keys with a backslash can decode to `model`.
  if (
    end - start > 5 &&
    end - start <= 64 &&
    raw.indexOf(BACKSLASH, start) !== -1 &&
    raw.indexOf(BACKSLASH, start) < end
  ) {
    try {
      return JSON.parse(raw.toString('utf8', start - 1, end + 1)) === 'model';
    } catch {
      return false;
    }
  }
  return false;
}
