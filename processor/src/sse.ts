/** Incremental server-sent-events parsing and encoding (WHATWG EventSource framing). */

export interface SseEvent {
  /** The `event:` field; undefined when the block had none. */
  event?: string;
  /** `data:` lines joined with "\n". */
  data: string;
  id?: string;
}

/**
 * The longest event (its data lines together, or one unfinished line) a parser holds. Provider events are a few
 * KiB; an upstream that never ends a line must not make the processor hold it whole (and re-join it per chunk).
 */
export const MAX_SSE_EVENT_CHARS = 4 * 1024 * 1024;

const STREAM = { stream: true };

/**
 * Feeds arbitrary byte chunks, returns complete events. Handles LF, CRLF and CR line endings, UTF-8
 * sequences and line endings split across chunks, comments, and multi-line data. An event longer than
 * MAX_SSE_EVENT_CHARS is dropped (counted in `dropped`), the stream goes on with the next one.
 */
export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  /** The decoder may hold the start of a sequence, or has not seen the stream's first bytes yet. */
  private decoderHolds = true;
  private pending = '';
  private event: string | undefined;
  private id: string | undefined;
  private dataLines: string[] = [];
  private dataChars = 0;
  /** A chunk ended in "\r": a following "\n" belongs to the same line ending. */
  private skipLeadingLf = false;
  /** Inside an oversized line (until its end) or event (until the blank line that ends it): nothing is kept. */
  private skippingLine = false;
  private skippingEvent = false;
  /** Events dropped for their size. */
  dropped = 0;

  push(chunk: Uint8Array): SseEvent[] {
    let text = this.decode(chunk);
    if (this.skipLeadingLf && text.startsWith('\n')) text = text.slice(1);
    this.skipLeadingLf = false;
    if (this.skippingLine) {
      const end = lineEnd(text);
      if (end === -1) return [];
      this.skippingLine = false;
      text = text.slice(end);
    }
    return this.consume(this.pending + text, false);
  }

  /**
   * The chunk as text. A chunk that ends in ASCII (as nearly every event does: in a line break), while the streaming
   * decoder holds nothing, is decoded on its own, several times faster than a streaming TextDecoder call and to the
   * same text. The TextDecoder takes the stream's first bytes (it drops a leading BOM), every chunk that may end inside
   * a UTF-8 sequence, and the chunk after such a one.
   */
  private decode(chunk: Uint8Array): string {
    const length = chunk.length;
    if (!this.decoderHolds && length > 0 && chunk[length - 1] < 0x80)
      return Buffer.from(chunk.buffer, chunk.byteOffset, length).toString('utf8');
    const text = this.decoder.decode(chunk, STREAM);
    if (length > 0) this.decoderHolds = chunk[length - 1] >= 0x80;
    return text;
  }

  /** Ends the stream: a final block without its terminating blank line is still delivered. */
  end(): SseEvent[] {
    const text = this.pending + this.decoder.decode();
    const events = this.consume(text, true);
    if (this.dataLines.length > 0 || this.event !== undefined) events.push(this.takeEvent());
    return events;
  }

  private consume(text: string, final: boolean): SseEvent[] {
    const events: SseEvent[] = [];
    let start = 0;
    // The next LF and CR at or after `start`, searched again only once passed (-1: none in the rest of the text).
    let lf = text.indexOf('\n');
    let cr = text.indexOf('\r');
    for (;;) {
      if (lf !== -1 && lf < start) lf = text.indexOf('\n', start);
      if (cr !== -1 && cr < start) cr = text.indexOf('\r', start);
      let end: number;
      let next: number;
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        end = cr;
        if (cr + 1 < text.length) {
          next = text.charCodeAt(cr + 1) === 10 ? cr + 2 : cr + 1;
        } else {
          next = cr + 1;
          if (!final) this.skipLeadingLf = true;
        }
      } else if (lf !== -1) {
        end = lf;
        next = lf + 1;
      } else {
        break;
      }
      this.line(text.slice(start, end), events);
      start = next;
    }
    this.pending = final ? '' : text.slice(start);
    if (this.pending.length > MAX_SSE_EVENT_CHARS) {
      this.pending = '';
      this.skippingLine = true;
      this.dropEvent();
    }
    if (final && start < text.length) this.line(text.slice(start), events);
    return events;
  }

  private dropEvent(): void {
    if (!this.skippingEvent) this.dropped += 1;
    this.skippingEvent = true;
    this.dataLines = [];
    this.dataChars = 0;
    this.event = undefined;
    this.id = undefined;
  }

  private line(line: string, events: SseEvent[]): void {
    if (line.length === 0) {
      if (this.skippingEvent) this.skippingEvent = false;
      else if (this.dataLines.length > 0 || this.event !== undefined) events.push(this.takeEvent());
      return;
    }
    if (this.skippingEvent) return;
    if (line.charCodeAt(0) === 58 /* ':' comment */) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'data':
        this.dataChars += value.length + 1;
        if (this.dataChars > MAX_SSE_EVENT_CHARS) this.dropEvent();
        else this.dataLines.push(value);
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        this.id = value;
        break;
      default:
        break;
    }
  }

  private takeEvent(): SseEvent {
    const event: SseEvent = { data: this.dataLines.join('\n') };
    if (this.event !== undefined) event.event = this.event;
    if (this.id !== undefined) event.id = this.id;
    this.dataLines = [];
    this.dataChars = 0;
    this.event = undefined;
    this.id = undefined;
    return event;
  }
}

/** Index just after the first line ending in `text` (CR, LF or CRLF), or -1. */
function lineEnd(text: string): number {
  const lf = text.indexOf('\n');
  const cr = text.indexOf('\r');
  if (cr !== -1 && (lf === -1 || cr < lf)) return text.charCodeAt(cr + 1) === 10 ? cr + 2 : cr + 1;
  return lf === -1 ? -1 : lf + 1;
}

/** Encodes one event; multi-line data becomes several `data:` lines. */
export function encodeSseEvent(event: SseEvent): string {
  let out = '';
  if (event.event !== undefined) out += `event: ${event.event}\n`;
  if (event.id !== undefined) out += `id: ${event.id}\n`;
  for (const line of event.data.split('\n')) out += `data: ${line}\n`;
  return `${out}\n`;
}
