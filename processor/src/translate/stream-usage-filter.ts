/**
 * An OpenAI-schema event stream whose `stream_options.include_usage` the gateway set, although the client did not
 * ask: the usage is read for the metadata, and the client gets the stream it asked for. The final usage chunk
 * (`choices: []` with a `usage` object) is dropped with its blank line, and the `"usage":null` every other chunk
 * carries is removed. Everything else passes byte for byte.
 */
import { usageFromOpenAI } from './openai-usage';
import type { TokenUsage } from './types';

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);
/** Lines up to this long are held across chunks and filtered; usage chunks are a few hundred bytes. */
export const MAX_FILTERED_LINE_BYTES = 1024 * 1024;
const USAGE_KEY = Buffer.from('"usage"');
/** How OpenAI serializes the member on every chunk but the last: the last member of the object. */
const TRAILING_NULL_USAGE = ',"usage":null}';

export class StreamUsageFilter {
  usage: TokenUsage | undefined;
  private tail: Buffer = EMPTY;
  /** The current line is longer than MAX_FILTERED_LINE_BYTES: it passes unfiltered up to its end. */
  private passing = false;
  /** A usage chunk was dropped: the blank line ending its event goes too. */
  private droppedEvent = false;

  /** The bytes for the client: complete lines, filtered; an incomplete line is held until its end arrives. */
  push(chunk: Buffer, endOfStream: boolean): Buffer {
    const out: Buffer[] = [];
    let data = chunk;
    if (this.passing) {
      const end = nextLineEnd(data, 0, endOfStream);
      if (end === -1) return data;
      out.push(data.subarray(0, end));
      data = data.subarray(end);
      this.passing = false;
    }
    if (this.tail.length > 0) data = Buffer.concat([this.tail, data]);
    this.tail = EMPTY;
    let start = 0;
    for (let end = nextLineEnd(data, 0, endOfStream); end !== -1; end = nextLineEnd(data, start, endOfStream)) {
      const line = this.line(data.subarray(start, end));
      if (line) out.push(line);
      start = end;
    }
    const rest = data.subarray(start);
    if (endOfStream) {
      const line = rest.length > 0 ? this.line(rest) : undefined;
      if (line) out.push(line);
    } else if (rest.length > MAX_FILTERED_LINE_BYTES) {
      out.push(rest);
      this.passing = true;
    } else if (rest.length > 0) {
      this.tail = Buffer.from(rest);
    }
    return out.length === 0 ? EMPTY : out.length === 1 ? out[0] : Buffer.concat(out);
  }

  /** One line with its line end (LF, CRLF or CR; the last line of a stream may have none). Undefined: dropped. */
  private line(line: Buffer): Buffer | undefined {
    const dropped = this.droppedEvent;
    this.droppedEvent = false;
    if (line.length <= 2 && (line[0] === LF || line[0] === CR)) return dropped ? undefined : line;
    if (line.indexOf(USAGE_KEY) === -1 || !line.subarray(0, 5).equals(DATA_FIELD)) return line;
    let end = line.length;
    while (end > 0 && (line[end - 1] === LF || line[end - 1] === CR)) end--;
    const lineEnd = line.subarray(end);
    const text = line.toString('utf8', 0, end);
    // The common case, without a parse: OpenAI's `..."usage":null}`.
    if (text.endsWith(TRAILING_NULL_USAGE) && text.indexOf('"usage"') === text.length - TRAILING_NULL_USAGE.length + 1)
      return Buffer.concat([Buffer.from(text.slice(0, -TRAILING_NULL_USAGE.length) + '}'), lineEnd]);
    let event: unknown;
    try {
      event = JSON.parse(text.slice(5));
    } catch {
      return line;
    }
    if (event === null || typeof event !== 'object' || Array.isArray(event) || !('usage' in event)) return line;
    const chunk = event as { usage?: unknown; choices?: unknown };
    const usage = usageFromOpenAI(chunk.usage);
    if (usage) this.usage = usage;
    if (usage && Array.isArray(chunk.choices) && chunk.choices.length === 0) {
      this.droppedEvent = true;
      return undefined;
    }
    delete chunk.usage;
    return Buffer.concat([Buffer.from(`data: ${JSON.stringify(chunk)}`), lineEnd]);
  }
}

const DATA_FIELD = Buffer.from('data:');

/**
 * The index just after the first line end (LF, CRLF or a lone CR) at or after `from`, or -1. A CR as the last byte
 * waits for the next chunk (an LF may follow), unless the stream ends.
 */
function nextLineEnd(data: Buffer, from: number, endOfStream: boolean): number {
  const lf = data.indexOf(LF, from);
  const cr = data.subarray(from, lf === -1 ? data.length : lf).indexOf(CR);
  if (cr === -1) return lf === -1 ? -1 : lf + 1;
  const at = from + cr;
  if (at + 1 < data.length) return data[at + 1] === LF ? at + 2 : at + 1;
  return endOfStream ? at + 1 : -1;
}
