import type { TokenUsage } from './types';

/**
 * Reads an OpenAI-style `usage` object: chat/completions/embeddings (`prompt_tokens`, `completion_tokens`,
 * `prompt_tokens_details.cached_tokens`, `completion_tokens_details.reasoning_tokens`) and the Responses API
 * (`input_tokens`, `output_tokens`, `input_tokens_details`, `output_tokens_details`), which GPT image models
 * (`input_tokens_details: {text_tokens, image_tokens}`) and token-billed transcription models (`type: "tokens"`,
 * `input_token_details: {audio_tokens, text_tokens}`) report too: input counts all of them, whatever the modality.
 * Undefined when absent, and for duration-billed transcription (whisper-1: `{type: "duration", seconds}`), which
 * has no tokens to charge.
 */
export function usageFromOpenAI(usage: unknown): TokenUsage | undefined {
  if (usage === null || typeof usage !== 'object') return undefined;
  const u = usage as Record<string, unknown>;
  if (u.type === 'duration') return undefined;
  const input = count(u.prompt_tokens ?? u.input_tokens);
  const output = count(u.completion_tokens ?? u.output_tokens);
  const totalField = u.total_tokens;
  const inputDetails = (u.prompt_tokens_details ?? u.input_tokens_details) as
    Record<string, unknown> | null | undefined;
  const outputDetails = (u.completion_tokens_details ?? u.output_tokens_details) as
    Record<string, unknown> | null | undefined;
  return {
    input,
    output,
    total: typeof totalField === 'number' ? count(totalField) : input + output,
    cachedInput: count(inputDetails?.cached_tokens),
    reasoning: count(outputDetails?.reasoning_tokens),
  };
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}

const USAGE_KEY = Buffer.from('"usage"');

/**
 * The `usage` object of a JSON body without parsing the whole body: the last `"usage"` key (a raw quote
 * is always a string delimiter in JSON, so the bytes cannot come from inside a string value) followed by
 * its object, found by brace matching. Falls back to a full parse when that fails.
 */
export function findUsageObject(body: Buffer): unknown {
  const key = body.lastIndexOf(USAGE_KEY);
  if (key !== -1) {
    let i = key + USAGE_KEY.length;
    while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++;
    if (body[i] === 0x3a /* : */) {
      i++;
      while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++;
      if (body[i] === 0x7b /* { */) {
        const end = matchingBrace(body, i);
        if (end !== -1) {
          try {
            return JSON.parse(body.toString('utf8', i, end + 1));
          } catch {
            // fall through to the full parse
          }
        }
      } else if (body[i] === 0x6e /* null */) {
        return null;
      }
    }
  }
  try {
    return (JSON.parse(body.toString('utf8')) as { usage?: unknown } | null)?.usage;
  } catch {
    return undefined;
  }
}

function matchingBrace(body: Buffer, open: number): number {
  let depth = 0;
  const end = body.length;
  for (let i = open; i < end; i++) {
    const c = body[i];
    if (c === 0x22) {
      // Skip the string, escapes included.
      for (i++; i < end; i++) {
        const d = body[i];
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x7b) {
      depth++;
    } else if (c === 0x7d && --depth === 0) {
      return i;
    }
  }
  return -1;
}

const EMPTY = Buffer.alloc(0);
const LF = 0x0a;
const CR = 0x0d;
/** The longest line the scanner holds across chunks; usage events are a few hundred bytes. */
const MAX_USAGE_LINE_BYTES = 1024 * 1024;

function firstLineEnd(data: Buffer): number {
  const lf = data.indexOf(LF);
  const cr = data.indexOf(CR);
  const at = lf === -1 ? cr : cr === -1 ? lf : Math.min(lf, cr);
  return at === -1 ? -1 : at + 1;
}

const USAGE_NAME = USAGE_KEY.subarray(1);

/**
 * Where the next `"usage"` key starts at or after `from`, or -1. The search leaves out the leading quote: a native
 * search stops at every occurrence of its first byte, and JSON is full of quotes (three times faster on a chunk).
 */
function indexOfUsageKey(data: Buffer, from: number): number {
  let at = data.indexOf(USAGE_NAME, from + 1);
  while (at !== -1 && data[at - 1] !== 0x22) at = data.indexOf(USAGE_NAME, at + 1);
  return at === -1 ? -1 : at - 1;
}

/** Bytes after a `"usage"` key searched byte by byte for the line end before a native search takes over. */
const NEAR_LINE_END = 64;

/**
 * Index of the first CR or LF in `data[from, limit)`, or `limit`. After a key the line usually ends within a few
 * bytes (`null}` and the blank line): reading them beats two native searches to the end of the buffer.
 */
function lineEndFrom(data: Buffer, from: number, limit: number): number {
  const near = Math.min(limit, from + NEAR_LINE_END);
  for (let i = from; i < near; i++) {
    const c = data[i];
    if (c === LF || c === CR) return i;
  }
  if (near === limit) return limit;
  let end = limit;
  const lf = data.indexOf(LF, near);
  const cr = data.indexOf(CR, near);
  if (lf !== -1 && lf < end) end = lf;
  if (cr !== -1 && cr < end) end = cr;
  return end;
}

/**
 * Finds the usage in an OpenAI-style event stream while the bytes pass through untouched: only complete
 * `data:` lines that contain a `"usage"` key with an object value are decoded and parsed (streams with
 * `include_usage` carry `"usage":null` on every other chunk). The latest usage wins.
 *
 * This runs for every token chunk of every stream, so the common chunk (one event ending in a blank line, with
 * `"usage":null` near its end) costs one native search (for the key) and a few byte reads.
 */
export class SseUsageScanner {
  usage: TokenUsage | undefined;
  /** The incomplete last line of the previous chunk. */
  private tail: Buffer = EMPTY;
  /** Inside a line longer than MAX_USAGE_LINE_BYTES: skipped to its end (a usage event is a few hundred bytes). */
  private skipping = false;

  push(chunk: Buffer): void {
    if (this.skipping) {
      const end = firstLineEnd(chunk);
      if (end === -1) return;
      this.skipping = false;
      chunk = chunk.subarray(end);
    }
    const data = this.tail.length > 0 ? Buffer.concat([this.tail, chunk]) : chunk;
    const last = data.length > 0 ? data[data.length - 1] : -1;
    const complete =
      last === LF || last === CR ? data.length : Math.max(data.lastIndexOf(LF), data.lastIndexOf(CR)) + 1;
    this.scan(data, complete);
    const rest = data.length - complete;
    if (rest > MAX_USAGE_LINE_BYTES) {
      this.tail = EMPTY;
      this.skipping = true;
    } else {
      this.tail = rest > 0 ? Buffer.from(data.subarray(complete)) : EMPTY;
    }
  }

  end(): void {
    if (this.tail.length > 0) this.scan(this.tail, this.tail.length);
    this.tail = EMPTY;
  }

  /** The first `"usage"` key of each complete line decides whether the line is parsed. */
  private scan(data: Buffer, limit: number): void {
    let pos = indexOfUsageKey(data, 0);
    while (pos !== -1 && pos < limit) {
      const valueAt = pos + USAGE_KEY.length;
      const lineEnd = lineEndFrom(data, valueAt, limit);
      if (hasObjectValue(data, valueAt, lineEnd))
        this.parseLine(
          data.toString('utf8', Math.max(data.lastIndexOf(LF, pos), data.lastIndexOf(CR, pos)) + 1, lineEnd),
        );
      // Too few bytes left for another key (a chunk usually holds one event).
      if (limit - lineEnd <= USAGE_KEY.length) return;
      pos = indexOfUsageKey(data, lineEnd);
    }
  }

  private parseLine(line: string): void {
    if (!line.startsWith('data:')) return;
    try {
      const event = JSON.parse(line.slice(5)) as { usage?: unknown; response?: { usage?: unknown } };
      const usage = usageFromOpenAI(event.usage ?? event.response?.usage);
      if (usage) this.usage = usage;
    } catch {
      // A malformed event passes through and is not counted.
    }
  }
}

function hasObjectValue(data: Buffer, from: number, end: number): boolean {
  let i = from;
  while (i < end && data[i] === 0x20) i++;
  if (data[i] !== 0x3a /* : */) return false;
  i++;
  while (i < end && data[i] === 0x20) i++;
  return data[i] === 0x7b; /* { */
}
