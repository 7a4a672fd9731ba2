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

const MODEL_KEY = Buffer.from('"model"');
const FINISH_KEYS = [Buffer.from('"finish_reason"'), Buffer.from('"stop_reason"')];
export const MAX_VALUE_BYTES = 128;
export const MAX_FINISH_REASONS = 8;

export class ResponseFacts {
  model: string | undefined;
  readonly finishReasons: string[] = [];

  push(chunk: Buffer): void {
    if (this.model === undefined) this.model = firstStringValue(chunk, MODEL_KEY);
    for (const key of FINISH_KEYS) {
      let from = 0;
      while (from < chunk.length) {
        const at = chunk.indexOf(key, from);
        if (at === -1) break;
        from = at + key.length;
        const value = stringValueAt(chunk, from);
        if (
          value !== undefined &&
          this.finishReasons.length < MAX_FINISH_REASONS &&
          !this.finishReasons.includes(value)
        )
          this.finishReasons.push(value);
      }
    }
  }
}

function firstStringValue(chunk: Buffer, key: Buffer): string | undefined {
  let from = 0;
  while (from < chunk.length) {
    const at = chunk.indexOf(key, from);
    if (at === -1) return undefined;
    from = at + key.length;
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
