/**
 * Our own OTLP protobuf encoder of the SDK's finished spans into an `ExportTraceServiceRequest`
 * (opentelemetry-proto collector/trace/v1, trace/v1, common/v1, resource/v1 field numbers).
 *
 * Why not the maintained serializer: it measures the whole request first and then writes it, walking every string
 * char by char twice, and reserves one byte per message length (moving the message when it is longer). Here the
 * message is written back to front into one buffer: when a message's prefix (tag, length) is written, its length is
 * already known, so every field is written once and nothing moves. ASCII strings up to a short length are copied in
 * a JS loop; longer or non-ASCII ones go through `Buffer#write`; an attribute whose key and ASCII value are short
 * (most are) is written in one pass. Field order and the fields written (including
 * zero counts, `flags` with the has-is-remote bit) are those of the maintained serializer, so both produce the same
 * bytes (the differential test checks it), and the benchmark in bench/tracing-span.bench.ts compares both.
 *
 * Pure: no state outside one call (or one `SpanBatchWriter`).
 */
import type { Attributes, HrTime, SpanContext } from '@opentelemetry/api';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';
import { varintSize } from '../grpc/encode';

const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;
const FIXED32 = 5;

/** OTLP `SpanFlags`: the low byte is the W3C trace flags; 0x100 says whether the parent is remote is known. */
const FLAGS_HAS_IS_REMOTE = 0x100;
const FLAGS_IS_REMOTE = 0x200;
/** Strings up to this length are tried as ASCII in a JS loop (cheaper than a native call for short strings). */
const SHORT_STRING = 64;
/** int64 range of an attribute number written as `int_value`; other numbers are `double_value`. */
const INT64_MIN = -(2 ** 63);
const INT64_MAX_EXCLUSIVE = 2 ** 63;
const TWO_32 = 0x100000000;
/** Room per span to start with; the buffer doubles when a batch needs more. */
const BYTES_PER_SPAN = 640;

/** A protobuf writer filling a buffer from its end towards its start. */
class BackwardWriter {
  buf: Buffer;
  /** The first written byte: the output is `buf[pos, buf.length)`. */
  pos: number;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
    this.pos = size;
  }

  /** The bytes written so far (their count is how far `pos` moved: a message's length). */
  get end(): number {
    return this.buf.length - this.pos;
  }

  finish(): Uint8Array {
    return this.buf.subarray(this.pos);
  }

  room(bytes: number): void {
    if (this.pos >= bytes) return;
    const written = this.buf.length - this.pos;
    let size = this.buf.length * 2;
    while (size - written < bytes) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, size - written, this.pos);
    this.buf = next;
    this.pos = size - written;
  }

  /** An unsigned 32-bit varint. */
  varint(value: number): void {
    if (value < 0x80) {
      if (this.pos < 1) this.room(1);
      this.buf[--this.pos] = value;
      return;
    }
    const size = varintSize(value);
    this.room(size);
    const buf = this.buf;
    let p = (this.pos -= size);
    while (value >= 0x80) {
      buf[p++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    buf[p] = value;
  }

  /** A 64-bit varint from its two 32-bit halves (a negative int64 is 10 bytes). */
  varint64(low: number, high: number): void {
    let size = 1;
    for (let l = low, h = high; h !== 0 || l >= 0x80; size++) {
      l = ((l >>> 7) | (h << 25)) >>> 0;
      h >>>= 7;
    }
    this.room(size);
    const buf = this.buf;
    let p = (this.pos -= size);
    while (high !== 0 || low >= 0x80) {
      buf[p++] = (low & 0x7f) | 0x80;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    buf[p] = low;
  }

  /** A tag of a field number below 16 (one byte) or at most 2047 (two). */
  tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  /** The length prefix and tag of a message whose bytes end at `end` (the writer's `end` before writing it). */
  close(field: number, end: number): void {
    this.varint(this.end - end);
    this.tag(field, LEN);
  }

  fixed32(value: number): void {
    this.room(4);
    this.pos -= 4;
    this.buf.writeUInt32LE(value >>> 0, this.pos);
  }

  fixed64(low: number, high: number): void {
    this.room(8);
    this.pos -= 8;
    this.buf.writeUInt32LE(low >>> 0, this.pos);
    this.buf.writeUInt32LE(high >>> 0, this.pos + 4);
  }

  double(value: number): void {
    this.room(8);
    this.pos -= 8;
    this.buf.writeDoubleLE(value, this.pos);
  }

  /** A string field's length and UTF-8 bytes (without the tag). */
  string(value: string): void {
    const length = value.length;
    if (length <= SHORT_STRING) {
      this.room(length);
      const buf = this.buf;
      let p = this.pos;
      let i = length - 1;
      for (; i >= 0; i--) {
        const code = value.charCodeAt(i);
        if (code > 0x7f) break;
        buf[--p] = code;
      }
      if (i < 0) {
        this.pos = p;
        this.varint(length);
        return;
      }
    }
    const bytes = Buffer.byteLength(value, 'utf8');
    this.room(bytes);
    this.pos -= bytes;
    this.buf.write(value, this.pos, bytes, 'utf8');
    this.varint(bytes);
  }

  /** A bytes field's length and bytes (without the tag). */
  bytes(value: Uint8Array): void {
    this.room(value.length);
    this.pos -= value.length;
    this.buf.set(value, this.pos);
    this.varint(value.length);
  }

  /** A trace or span id given in hex, as bytes (without the tag). */
  hexId(hex: string): void {
    const length = hex.length >>> 1;
    this.room(length);
    this.pos -= length;
    this.buf.write(hex, this.pos, length, 'hex');
    this.varint(length);
  }

  /**
   * A `KeyValue` entry in `field` (below 16) of an ASCII key and value short enough that each length is one byte,
   * written in one pass; false (and nothing written) when they are not. Most attributes are such a pair: written
   * field by field, each costs several times more.
   */
  shortStringKeyValue(field: number, key: string, value: string): boolean {
    const entryLength = key.length + value.length + 6;
    if (entryLength > 0x7f || field > 15) return false;
    if (this.pos < entryLength + 2) this.room(entryLength + 2);
    const buf = this.buf;
    let p = this.pos;
    for (let i = value.length - 1; i >= 0; i--) {
      const code = value.charCodeAt(i);
      if (code > 0x7f) return false;
      buf[--p] = code;
    }
    buf[--p] = value.length;
    buf[--p] = (1 << 3) | LEN; // AnyValue.string_value
    buf[--p] = value.length + 2;
    p = writeShortKey(buf, p, field, key, entryLength);
    if (p < 0) return false;
    this.pos = p;
    return true;
  }

  /** `shortStringKeyValue` for an integer value in [0, 2^28) (an `int_value` of at most 4 bytes). */
  shortIntKeyValue(field: number, key: string, value: number): boolean {
    if (!(value >= 0 && value < 0x10000000) || value % 1 !== 0) return false;
    const size = varintSize(value);
    const entryLength = key.length + size + 5;
    if (entryLength > 0x7f || field > 15) return false;
    if (this.pos < entryLength + 2) this.room(entryLength + 2);
    const buf = this.buf;
    let p = this.pos - size;
    let q = p;
    for (; value >= 0x80; value >>>= 7) buf[q++] = (value & 0x7f) | 0x80;
    buf[q] = value;
    buf[--p] = (3 << 3) | VARINT; // AnyValue.int_value
    buf[--p] = size + 1;
    p = writeShortKey(buf, p, field, key, entryLength);
    if (p < 0) return false;
    this.pos = p;
    return true;
  }

  /** A time as fixed64 unix nanoseconds, exactly (seconds * 1e9 is beyond 2^53 for dates of this century). */
  time(time: HrTime): void {
    const seconds = time[0];
    const secondsLow = seconds % 0x10000;
    const highNanos = ((seconds - secondsLow) / 0x10000) * 1e9; // the nanos of seconds >> 16, times 2^16 below
    const highNanosLow = highNanos % 0x10000;
    // seconds * 1e9 + nanos = highNanos * 2^16 + secondsLow * 1e9 + nanos, each part below 2^53.
    const low = highNanosLow * 0x10000 + secondsLow * 1e9 + time[1];
    this.fixed64(low % TWO_32, (highNanos - highNanosLow) / 0x10000 + Math.floor(low / TWO_32));
  }
}

/**
 * The front of a short `KeyValue` entry, back to front before `p` (its value already written after it): the value's
 * tag (`KeyValue.value`), the key, the entry's length and tag. The new start, or -1 when the key is not ASCII.
 */
function writeShortKey(buf: Buffer, p: number, field: number, key: string, entryLength: number): number {
  buf[--p] = (2 << 3) | LEN; // KeyValue.value
  for (let i = key.length - 1; i >= 0; i--) {
    const code = key.charCodeAt(i);
    if (code > 0x7f) return -1;
    buf[--p] = code;
  }
  buf[--p] = key.length;
  buf[--p] = (1 << 3) | LEN; // KeyValue.key
  buf[--p] = entryLength;
  buf[--p] = (field << 3) | LEN;
  return p;
}

/** `ExportTraceServiceRequest` of the spans, grouped by resource and then scope (by identity, first seen first). */
export function encodeTraceRequest(spans: readonly ReadableSpan[]): Uint8Array {
  const groups = new Map<ReadableSpan['resource'], Map<ReadableSpan['instrumentationScope'], ReadableSpan[]>>();
  for (const span of spans) {
    let scopes = groups.get(span.resource);
    if (!scopes) groups.set(span.resource, (scopes = new Map<ReadableSpan['instrumentationScope'], ReadableSpan[]>()));
    const inScope = scopes.get(span.instrumentationScope);
    if (inScope) inScope.push(span);
    else scopes.set(span.instrumentationScope, [span]);
  }
  const writer = new BackwardWriter(256 + spans.length * BYTES_PER_SPAN);
  const resources = [...groups];
  for (let r = resources.length - 1; r >= 0; r--) {
    const [resource, scopes] = resources[r];
    const resourceSpansEnd = writer.end;
    if (resource.schemaUrl) {
      writer.string(resource.schemaUrl);
      writer.tag(3, LEN);
    }
    const scopeList = [...scopes.values()];
    for (let s = scopeList.length - 1; s >= 0; s--) {
      const spansOfScope = scopeList[s];
      writeScopeSpans(writer, spansOfScope[0].instrumentationScope, () => {
        for (let i = spansOfScope.length - 1; i >= 0; i--) writeSpan(writer, spansOfScope[i]);
      });
    }
    writeResource(writer, resource.attributes);
    writer.close(1, resourceSpansEnd);
  }
  return writer.finish();
}

/**
 * An `ExportTraceServiceRequest` of spans of one resource and instrumentation scope, each encoded the moment it is
 * added (see span-batches.ts): a batch waiting to be exported is one buffer, not span objects or an entry per span.
 * Written back to front like the rest, so the request lists the spans last added first: the bytes `encodeTraceRequest`
 * writes for the spans in that order.
 */
export class SpanBatchWriter {
  private readonly writer: BackwardWriter;
  /** Where the `ResourceSpans` and the `ScopeSpans` messages end (both are closed by `finish`). */
  private readonly resourceSpansEnd: number;
  private readonly scopeSpansEnd: number;
  private finished = false;
  /** Spans added. */
  count = 0;

  constructor(
    readonly resource: ReadableSpan['resource'],
    readonly scope: ReadableSpan['instrumentationScope'],
    /** Spans expected (the buffer grows past them). */
    spans: number,
  ) {
    const writer = (this.writer = new BackwardWriter(256 + spans * BYTES_PER_SPAN));
    // The fields after the spans come first, back to front: the resource's schema URL, then the scope's.
    this.resourceSpansEnd = writer.end;
    if (resource.schemaUrl) {
      writer.string(resource.schemaUrl);
      writer.tag(3, LEN);
    }
    this.scopeSpansEnd = writer.end;
    if (scope.schemaUrl) {
      writer.string(scope.schemaUrl);
      writer.tag(3, LEN);
    }
  }

  /** Encodes `span` into the batch; a span that cannot be encoded throws and leaves the batch as it was. */
  add(span: ReadableSpan): void {
    if (this.finished) throw new Error('span batch already finished');
    const writer = this.writer;
    const written = writer.end;
    try {
      writeSpan(writer, span);
    } catch (error) {
      // What the span wrote lies before the batch's bytes (which `room` keeps at the end of the buffer): let it go.
      writer.pos = writer.buf.length - written;
      throw error;
    }
    this.count++;
  }

  /** Bytes written so far. */
  get byteLength(): number {
    return this.writer.end;
  }

  /**
   * The request (once: the batch takes no span after it), in a buffer of its own size when the one it was written
   * in is more than twice as large (it doubles as it grows), so that an export holds no more than it sends.
   */
  finish(): Uint8Array {
    this.finished = true;
    const writer = this.writer;
    const scopeEnd = writer.end;
    if (this.scope.version) {
      writer.string(this.scope.version);
      writer.tag(2, LEN);
    }
    writer.string(this.scope.name);
    writer.tag(1, LEN);
    writer.close(1, scopeEnd);
    writer.close(2, this.scopeSpansEnd);
    writeResource(writer, this.resource.attributes);
    writer.close(1, this.resourceSpansEnd);
    const body = writer.finish();
    return body.byteLength * 2 < writer.buf.length ? new Uint8Array(body) : body;
  }
}

/** `ResourceSpans.resource` (field 1): attributes and a dropped count of 0. */
function writeResource(writer: BackwardWriter, attributes: Attributes): void {
  const end = writer.end;
  writer.varint(0);
  writer.tag(2, VARINT);
  writeAttributes(writer, 1, attributes);
  writer.close(1, end);
}

/** `ResourceSpans.scope_spans` (field 2) of one instrumentation scope; `writeSpans` writes its spans back to front. */
function writeScopeSpans(
  writer: BackwardWriter,
  scope: ReadableSpan['instrumentationScope'],
  writeSpans: () => void,
): void {
  const end = writer.end;
  if (scope.schemaUrl) {
    writer.string(scope.schemaUrl);
    writer.tag(3, LEN);
  }
  writeSpans();
  const scopeEnd = writer.end;
  if (scope.version) {
    writer.string(scope.version);
    writer.tag(2, LEN);
  }
  writer.string(scope.name);
  writer.tag(1, LEN);
  writer.close(1, scopeEnd);
  writer.close(2, end);
}

function spanFlags(context: SpanContext, isRemote: boolean | undefined): number {
  return (context.traceFlags & 0xff) | FLAGS_HAS_IS_REMOTE | (isRemote ? FLAGS_IS_REMOTE : 0);
}

/** `ScopeSpans.spans` (field 2). */
function writeSpan(writer: BackwardWriter, span: ReadableSpan): void {
  const end = writer.end;
  const context = span.spanContext();
  const parent = span.parentSpanContext;
  writer.fixed32(spanFlags(context, parent?.isRemote)); // flags (16)
  writer.tag(16, FIXED32);
  const statusEnd = writer.end; // status (15): code always, message when set
  writer.varint(span.status.code);
  writer.tag(3, VARINT);
  if (span.status.message) {
    writer.string(span.status.message);
    writer.tag(2, LEN);
  }
  writer.close(15, statusEnd);
  writer.varint(span.droppedLinksCount);
  writer.tag(14, VARINT);
  for (let i = span.links.length - 1; i >= 0; i--) {
    const link = span.links[i];
    const linkEnd = writer.end;
    writer.fixed32(spanFlags(link.context, link.context.isRemote));
    writer.tag(6, FIXED32);
    writer.varint(link.droppedAttributesCount ?? 0);
    writer.tag(5, VARINT);
    if (link.attributes) writeAttributes(writer, 4, link.attributes);
    writeIds(writer, link.context);
    writer.close(13, linkEnd);
  }
  writer.varint(span.droppedEventsCount);
  writer.tag(12, VARINT);
  for (let i = span.events.length - 1; i >= 0; i--) writeEvent(writer, span.events[i]);
  writer.varint(span.droppedAttributesCount);
  writer.tag(10, VARINT);
  writeAttributes(writer, 9, span.attributes);
  writer.time(span.endTime);
  writer.tag(8, FIXED64);
  writer.time(span.startTime);
  writer.tag(7, FIXED64);
  // The API's SpanKind starts at INTERNAL = 0; OTLP's at UNSPECIFIED = 0.
  writer.varint(span.kind + 1);
  writer.tag(6, VARINT);
  writer.string(span.name);
  writer.tag(5, LEN);
  if (parent?.spanId) {
    writer.hexId(parent.spanId);
    writer.tag(4, LEN);
  }
  writeIds(writer, context);
  writer.close(2, end);
}

/** trace_id (1), span_id (2) and trace_state (3) when there is one, backwards: state, span id, trace id. */
function writeIds(writer: BackwardWriter, context: SpanContext): void {
  const traceState = context.traceState?.serialize();
  if (traceState) {
    writer.string(traceState);
    writer.tag(3, LEN);
  }
  writer.hexId(context.spanId);
  writer.tag(2, LEN);
  writer.hexId(context.traceId);
  writer.tag(1, LEN);
}

/** `Span.events` (field 11). */
function writeEvent(writer: BackwardWriter, event: TimedEvent): void {
  const end = writer.end;
  writer.varint(event.droppedAttributesCount ?? 0);
  writer.tag(4, VARINT);
  if (event.attributes) writeAttributes(writer, 3, event.attributes);
  writer.string(event.name);
  writer.tag(2, LEN);
  writer.time(event.time);
  writer.tag(1, FIXED64);
  writer.close(11, end);
}

/** Repeated `KeyValue` in field `field`, in the attributes' key order. */
function writeAttributes(writer: BackwardWriter, field: number, attributes: Attributes): void {
  const keys = Object.keys(attributes);
  for (let i = keys.length - 1; i >= 0; i--) writeKeyValue(writer, field, keys[i], attributes[keys[i]]);
}

function writeKeyValue(writer: BackwardWriter, field: number, key: string, value: unknown): void {
  if (
    typeof value === 'string'
      ? writer.shortStringKeyValue(field, key, value)
      : typeof value === 'number' && writer.shortIntKeyValue(field, key, value)
  )
    return;
  const end = writer.end;
  const valueEnd = writer.end;
  writeAnyValue(writer, value);
  writer.close(2, valueEnd);
  writer.string(key);
  writer.tag(1, LEN);
  writer.close(field, end);
}

/** An `AnyValue`'s one field (nothing for null or undefined, as the maintained serializer). */
function writeAnyValue(writer: BackwardWriter, value: unknown): void {
  switch (typeof value) {
    case 'string':
      writer.string(value);
      writer.tag(1, LEN);
      return;
    case 'boolean':
      writer.varint(value ? 1 : 0);
      writer.tag(2, VARINT);
      return;
    case 'number':
      if (Number.isInteger(value) && value >= INT64_MIN && value < INT64_MAX_EXCLUSIVE) {
        writeInt64(writer, value);
        writer.tag(3, VARINT);
      } else {
        writer.double(value);
        writer.tag(4, FIXED64);
      }
      return;
    case 'object':
      break;
    default:
      return;
  }
  if (value === null) return;
  const end = writer.end;
  if (value instanceof Uint8Array) {
    writer.bytes(value);
    writer.tag(7, LEN);
    return;
  }
  if (Array.isArray(value)) {
    for (let i = value.length - 1; i >= 0; i--) {
      const itemEnd = writer.end;
      writeAnyValue(writer, value[i]);
      writer.close(1, itemEnd);
    }
    writer.close(5, end);
    return;
  }
  const entries = value as Record<string, unknown>;
  const keys = Object.keys(entries);
  for (let i = keys.length - 1; i >= 0; i--) writeKeyValue(writer, 1, keys[i], entries[keys[i]]);
  writer.close(6, end);
}

/** An integer in the int64 range as a varint (two's complement for negatives). */
function writeInt64(writer: BackwardWriter, value: number): void {
  if (value >= 0 && value < TWO_32) {
    writer.varint(value);
    return;
  }
  const magnitude = Math.abs(value);
  let low = magnitude % TWO_32;
  let high = Math.floor(magnitude / TWO_32) >>> 0;
  if (value < 0) {
    low = ~low >>> 0;
    high = ~high >>> 0;
    low = (low + 1) >>> 0;
    if (low === 0) high = (high + 1) >>> 0;
  }
  writer.varint64(low, high);
}
