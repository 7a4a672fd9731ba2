/**
 * The two halves of a response in FULL_DUPLEX_STREAMED mode that do not depend on where its bytes come from:
 * Envoy's body chunks as an async stream (with what Envoy has sent so far), and the decoding, translation and
 * counting of a body for the client (fed from Envoy's chunks, or from an attempt the processor made itself).
 */
import { MAX_INFLATED_BYTES, type BodyDecoder, type DecodeResult } from '../encoding';
import { bodyCoding, decodeFailureText, inflateLimit } from './body-coding';
import type { ResponseHeaders } from '../translate/types';
import type { ProcessorContext } from './context';
import type { Exchange } from './exchange';
import { HeaderChangeSet } from './headers';
import { EMPTY } from './message-bytes';

/** Body bytes with whether they are the last (`end`: nothing follows). */
export interface BodyPart {
  readonly bytes: Buffer;
  readonly end: boolean;
}

/**
 * Envoy's body chunks of the response, in order. Envoy sends them without waiting for answers; they wait here until
 * read, within `maxQueuedBytes` (`push` returns false beyond it). Ends with Envoy's last chunk (`end_of_stream`) or
 * its trailers (then the last part is empty, with `end`).
 */
export class EnvoyBody implements AsyncIterable<BodyPart> {
  private parts: BodyPart[] = [];
  private queuedBytes = 0;
  private wake: (() => void) | undefined;
  private discarding = false;
  private stopped = false;
  /** Envoy sent at least one body chunk (a body answer may only follow one). */
  sawChunk = false;
  /** Envoy sent trailers: the trailers answer ends the client's response. */
  sawTrailers = false;
  /** The response had no body: `end_of_stream` came with its headers. */
  headersOnly = false;
  private ended = false;
  private resolveEnded!: () => void;
  private resolveStarted!: () => void;
  /** Settles when Envoy sent all of the response (its last chunk, its trailers, or headers without a body). */
  readonly whenEnded = new Promise<void>((resolve) => (this.resolveEnded = resolve));
  /** Settles with Envoy's first body chunk, or when it ended without one. */
  readonly whenStarted = new Promise<void>((resolve) => (this.resolveStarted = resolve));

  constructor(private readonly maxQueuedBytes: number) {}

  get isEnded(): boolean {
    return this.ended;
  }

  /** One chunk from Envoy; false when the chunks waiting to be read exceed the bound. */
  push(bytes: Buffer, end: boolean): boolean {
    if (this.ended) return true;
    this.sawChunk = true;
    this.resolveStarted();
    if (!this.discarding) {
      this.parts.push({ bytes, end });
      this.queuedBytes += bytes.length;
    }
    if (end) this.end();
    this.wake?.();
    return this.queuedBytes <= this.maxQueuedBytes;
  }

  trailers(): void {
    if (this.ended) return;
    this.sawTrailers = true;
    if (!this.discarding) this.parts.push({ bytes: EMPTY, end: true });
    this.end();
    this.wake?.();
  }

  noBody(): void {
    this.headersOnly = true;
    this.end();
  }

  /** From now on chunks are only noted, not kept (another body answers the client). */
  discard(): void {
    this.discarding = true;
    this.parts = [];
    this.queuedBytes = 0;
  }

  /** The stream is gone: readers stop. */
  stop(): void {
    this.stopped = true;
    this.parts = [];
    this.end();
    this.wake?.();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.resolveStarted();
    this.resolveEnded();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<BodyPart> {
    for (;;) {
      if (this.stopped) return;
      const part = this.parts.shift();
      if (part !== undefined) {
        this.queuedBytes -= part.bytes.length;
        yield part;
        if (part.end) return;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

export type DecodeFailure = Extract<DecodeResult, { ok: false }>['reason'];

/**
 * One response body on its way to the client: decoded (gzip, deflate, br), translated into the client's API and
 * counted. An event stream is translated chunk by chunk; any other body is read whole (translators read a whole
 * body in one call, as Envoy's BUFFERED mode gives it), bounded by MAX_INFLATED_BYTES. A passthrough translator
 * only observes: the client gets the bytes as they came.
 */
export class BodyTranslation {
  readonly streaming: boolean;
  readonly passthrough: boolean;
  /** The head's changes to the response headers (translated content type, encoding removed, ...). */
  readonly changes: HeaderChangeSet = new HeaderChangeSet();
  /** Set once the body could not be decoded or was too large; the translated body then ends. */
  failure: DecodeFailure | undefined;
  private readonly decoder: BodyDecoder | undefined;
  private readonly undecodable: string | undefined;
  private inflated = 0;
  private held: Buffer[] = [];
  private heldBytes = 0;

  /** `base`: changes the head's are added to (a fallback answer replacing the primary's headers). */
  constructor(
    private readonly context: ProcessorContext,
    private readonly exchange: Exchange,
    status: number,
    headers: ResponseHeaders,
    base?: HeaderChangeSet,
  ) {
    if (base !== undefined) this.changes = base;
    const translator = exchange.route.response;
    const head = translator.head(status, headers);
    this.passthrough = translator.passthroughBody === true;
    this.streaming = head.stream;
    const changes = this.changes;
    changes.apply(head);
    const coding = bodyCoding(headers['content-encoding'], this.passthrough, head.stream, changes);
    this.decoder = coding.decoder;
    this.undecodable = coding.undecodable;
    if (!this.passthrough && head.stream) changes.remove('content-length');
  }

  /**
   * The client gets the body's bytes as they come: an event stream, or a passthrough body the processor can read
   * (one in a coding it cannot read is answered with an error, as in BUFFERED mode, so it is read whole).
   */
  get forwardsAsItComes(): boolean {
    return this.streaming || (this.passthrough && this.undecodable === undefined);
  }

  /** What the client gets for these upstream bytes (the bytes themselves for a passthrough body). */
  async push(bytes: Buffer, end: boolean): Promise<Buffer> {
    const passthrough = this.forwardsAsItComes && this.passthrough;
    if (this.failure !== undefined) return passthrough ? bytes : EMPTY;
    let decoded = bytes;
    if (this.undecodable !== undefined) return this.fail('unsupported', bytes);
    if (this.decoder !== undefined) {
      const limit = inflateLimit(this.streaming, this.inflated);
      const result = await this.decoder.push(bytes, end, limit);
      if (!result.ok) return this.fail(result.reason, bytes);
      decoded = result.bytes;
      this.inflated += decoded.length;
    }
    const exchange = this.exchange;
    const translator = exchange.route.response;
    if (this.streaming) {
      const out = translator.body(decoded, end);
      exchange.span?.responseBytes(passthrough ? bytes : out);
      return passthrough ? bytes : out;
    }
    if (this.heldBytes + decoded.length > MAX_INFLATED_BYTES) return this.fail('too_large', bytes);
    if (decoded.length > 0) {
      this.held.push(decoded);
      this.heldBytes += decoded.length;
    }
    if (passthrough) exchange.span?.responseBytes(bytes);
    if (!end) return passthrough ? bytes : EMPTY;
    const whole = this.held.length === 1 ? this.held[0] : Buffer.concat(this.held);
    this.held = [];
    const out = translator.body(whole, true);
    if (!passthrough) exchange.span?.responseBytes(out);
    return passthrough ? bytes : out;
  }

  /** Why the body failed, for the client's error. */
  get failureText(): string {
    return decodeFailureText(this.failure ?? 'corrupt', this.streaming, this.undecodable);
  }

  private fail(reason: DecodeFailure, bytes: Buffer): Buffer {
    this.failure = reason;
    this.held = [];
    this.context.logger.warn(
      { backend: this.exchange.backendName, reason },
      'upstream response body could not be decoded',
    );
    // A passthrough body still reaches the client, which can decode it; a translated one ends here.
    return this.passthrough ? bytes : EMPTY;
  }
}
