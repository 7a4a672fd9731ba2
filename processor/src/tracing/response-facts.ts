/**
 * The response model and finish reasons of an answer, read from the bytes the client gets (OpenAI or Anthropic
 * shape, buffered JSON or SSE chunks) without parsing them: a raw `"` is always a string delimiter in JSON, so a
 * `"model"` key followed by `:` and a string can only be a key, never text inside a message.
 *
 * The first `model` key is the response's model (OpenAI and Anthropic put it before any content); every
 * `finish_reason` (OpenAI) or `stop_reason` (Anthropic) string is a finish reason (`null` ones are skipped). A key
 * split across two stream chunks is missed. Values are cut at MAX_VALUE_BYTES; at most MAX_FINISH_REASONS distinct
 * reasons are kept.
 */

/**
 * Each key is looked for by a needle without its leading quote, then checked backwards: a needle starting with `"`
 * makes Buffer#indexOf stop at every quote of the JSON (several times slower on stream chunks, which are read one by
 * one), and `_reason"` finds both finish keys in one pass.
 */
const MODEL_NEEDLE = Buffer.from('model"');
const REASON_NEEDLE = Buffer.from('_reason"');
const FINISH_PREFIXES = [Buffer.from('"finish'), Buffer.from('"stop')];
export const MAX_VALUE_BYTES = 128;
export const MAX_FINISH_REASONS = 8;

export class ResponseFacts {
  model: string | undefined;
  readonly finishReasons: string[] = [];

  push(chunk: Buffer): void {
    if (this.model === undefined) this.model = firstStringValue(chunk);
    let from = 0;
    while (from < chunk.length) {
      const at = chunk.indexOf(REASON_NEEDLE, from);
      if (at === -1) break;
      from = at + REASON_NEEDLE.length;
      if (!FINISH_PREFIXES.some((prefix) => endsWithAt(chunk, at, prefix))) continue;
      const value = stringValueAt(chunk, from);
      if (value !== undefined && this.finishReasons.length < MAX_FINISH_REASONS && !this.finishReasons.includes(value))
        this.finishReasons.push(value);
    }
  }
}

/** Whether `chunk` holds `prefix` just before `at`. */
function endsWithAt(chunk: Buffer, at: number, prefix: Buffer): boolean {
  const start = at - prefix.length;
  if (start < 0) return false;
  for (let i = 0; i < prefix.length; i++) if (chunk[start + i] !== prefix[i]) return false;
  return true;
}

/** The string value of the first `"model"` key of `chunk`. */
function firstStringValue(chunk: Buffer): string | undefined {
  let from = 0;
  while (from < chunk.length) {
    const at = chunk.indexOf(MODEL_NEEDLE, from);
    if (at === -1) return undefined;
    from = at + MODEL_NEEDLE.length;
    if (at === 0 || chunk[at - 1] !== 0x22 /* " */) continue;
    const value = stringValueAt(chunk, from);
    if (value !== undefined) return value;
  }
  return undefined;
}

/** The string after `: ` at `i` (just past a key), unescaped only as far as plain text goes; undefined otherwise. */
function stringValueAt(chunk: Buffer, i: number): string | undefined {
  i = skipSpace(chunk, i);
  if (chunk[i] !== 0x3a /* : */) return undefined;
  i = skipSpace(chunk, i + 1);
  if (chunk[i] !== 0x22 /* " */) return undefined;
  const start = i + 1;
  const limit = Math.min(chunk.length, start + MAX_VALUE_BYTES);
  let end = start;
  while (end < limit && chunk[end] !== 0x22 && chunk[end] !== 0x5c /* \ */) end++;
  if (end === start) return undefined;
  return chunk.toString('utf8', start, end);
}

function skipSpace(chunk: Buffer, i: number): number {
  while (i < chunk.length) {
    const c = chunk[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}
