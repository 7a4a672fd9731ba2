/** Incremental server-sent-events parsing and encoding (WHATWG EventSource framing). */

export interface SseEvent {
  /** The `event:` field; undefined when the block had none. */
  event?: string;
  /** `data:` lines joined with "\n". */
  data: string;
  id?: string;
}

/**
 * Feeds arbitrary byte chunks, returns complete events. Handles LF, CRLF and CR line endings, UTF-8
 * sequences and line endings split across chunks, comments, and multi-line data.
 */
export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  private pending = '';
  private event: string | undefined;
  private id: string | undefined;
  private dataLines: string[] = [];
  /** A chunk ended in "\r": a following "\n" belongs to the same line ending. */
  private skipLeadingLf = false;

  push(chunk: Uint8Array): SseEvent[] {
    let text = this.decoder.decode(chunk, { stream: true });
    if (this.skipLeadingLf && text.startsWith('\n')) text = text.slice(1);
    this.skipLeadingLf = false;
    return this.consume(this.pending + text, false);
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
    for (;;) {
      const lf = text.indexOf('\n', start);
      const cr = text.indexOf('\r', start);
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
    if (final && start < text.length) this.line(text.slice(start), events);
    return events;
  }

  private line(line: string, events: SseEvent[]): void {
    if (line.length === 0) {
      if (this.dataLines.length > 0 || this.event !== undefined) events.push(this.takeEvent());
      return;
    }
    if (line.charCodeAt(0) === 58 /* ':' comment */) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'data':
        this.dataLines.push(value);
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
    this.event = undefined;
    this.id = undefined;
    return event;
  }
}

/** Encodes one event; multi-line data becomes several `data:` lines. */
export function encodeSseEvent(event: SseEvent): string {
  let out = '';
  if (event.event !== undefined) out += `event: ${event.event}\n`;
  if (event.id !== undefined) out += `id: ${event.id}\n`;
  for (const line of event.data.split('\n')) out += `data: ${line}\n`;
  return `${out}\n`;
}
