/**
 * A hand-written protobuf encoder for the ProcessingResponse subset in messages.ts: sizes first, then one
 * buffer written in place. protobufjs' generic writer allocates an operation object per field, which made
 * encoding the metadata Struct and header mutations the largest allocation on the request path. The
 * decoder side (and every test) still uses protobufjs, so the wire format is checked on each round trip.
 *
 * Field numbers follow envoy.service.ext_proc.v3 and google.protobuf.Struct.
 */
import type {
  BodyMutation,
  CommonResponse,
  EncodedHeaderOption,
  HeaderMutation,
  HeaderValueOption,
  ImmediateResponse,
  EncodedStruct,
  ProcessingResponse,
  StreamedBodyResponse,
} from './messages';

const LEN = 2;
const VARINT = 0;
const FIXED64 = 1;

/** Bytes of an unsigned 32-bit varint. */
export function varintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  return 5;
}

function tag(field: number, wireType: number): number {
  return (field << 3) | wireType;
}

/** A length-delimited field: tag + length + payload. */
function lenFieldSize(field: number, payload: number): number {
  return varintSize(tag(field, LEN)) + varintSize(payload) + payload;
}

/** UTF-8 length; header names, metadata keys and most values are ASCII, counted here without a native call. */
function byteLength(value: string): number {
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) >= 0x80) return Buffer.byteLength(value, 'utf8');
  return value.length;
}

/** Below this many bytes, copying in JavaScript beats a call into Buffer's native write/set. */
const SHORT = 64;

class Out {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  varint(value: number): void {
    let v = value >>> 0;
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }

  tag(field: number, wireType: number): void {
    this.varint(tag(field, wireType));
  }

  bytes(field: number, value: Uint8Array): void {
    this.tag(field, LEN);
    this.varint(value.length);
    this.raw(value);
  }

  raw(value: Uint8Array): void {
    if (value.length <= SHORT) {
      const buf = this.buf;
      const at = this.pos;
      for (let i = 0; i < value.length; i++) buf[at + i] = value[i]!;
    } else {
      this.buf.set(value, this.pos);
    }
    this.pos += value.length;
  }

  string(field: number, value: string, byteLength: number): void {
    this.tag(field, LEN);
    this.varint(byteLength);
    if (byteLength === value.length && byteLength <= SHORT) {
      // ASCII (every other character takes more than one byte)
      const buf = this.buf;
      const at = this.pos;
      for (let i = 0; i < byteLength; i++) buf[at + i] = value.charCodeAt(i);
      this.pos += byteLength;
    } else {
      this.pos += this.buf.write(value, this.pos, 'utf8');
    }
  }

  message(field: number, size: number): void {
    this.tag(field, LEN);
    this.varint(size);
  }
}

// ---- google.protobuf.Struct ----

/**
 * The dynamic metadata the processor writes is always one namespace of number fields, so its Struct has a
 * fixed byte layout per key list: encoded once, then each use copies it and fills in the doubles.
 */
export class NumberStructLayout {
  private readonly template: Buffer;
  private readonly offsets: number[] = [];

  constructor(namespace: string, keys: readonly string[]) {
    const NUMBER_VALUE = 1 + 8; // google.protobuf.Value.number_value: tag + fixed64
    const entrySizes = keys.map((key) => lenFieldSize(1, byteLength(key)) + lenFieldSize(2, NUMBER_VALUE));
    const fields = entrySizes.reduce((sum, size) => sum + lenFieldSize(1, size), 0);
    const namespaceValue = lenFieldSize(5, fields);
    const namespaceEntry = lenFieldSize(1, byteLength(namespace)) + lenFieldSize(2, namespaceValue);
    const out = new Out(Buffer.alloc(lenFieldSize(1, namespaceEntry)));
    out.message(1, namespaceEntry);
    out.string(1, namespace, byteLength(namespace));
    out.message(2, namespaceValue);
    out.message(5, fields);
    keys.forEach((key, i) => {
      out.message(1, entrySizes[i]);
      out.string(1, key, byteLength(key));
      out.message(2, NUMBER_VALUE);
      out.tag(2, FIXED64);
      this.offsets.push(out.pos);
      out.pos += 8;
    });
    this.template = out.buf;
  }

  /** A copy of the layout with every value 0; `set` fills in the values. */
  create(): EncodedStruct {
    const bytes = Buffer.allocUnsafe(this.template.length);
    this.template.copy(bytes);
    return bytes;
  }

  /** Sets the value of `keys[index]`. */
  set(bytes: EncodedStruct, index: number, value: number): void {
    bytes.writeDoubleLE(value, this.offsets[index]);
  }
}

// ---- header mutations ----

function headerSize(keyLength: number, valueLength: number): number {
  return lenFieldSize(1, keyLength) + lenFieldSize(3, valueLength);
}

function optionSize(option: HeaderValueOption | EncodedHeaderOption): number {
  if (Buffer.isBuffer(option)) return option.length;
  const header = option.header;
  return (
    lenFieldSize(1, headerSize(byteLength(header.key), header.rawValue.length)) +
    (option.appendAction ? 1 + varintSize(option.appendAction) : 0)
  );
}

function writeOption(out: Out, option: HeaderValueOption | EncodedHeaderOption): void {
  if (Buffer.isBuffer(option)) {
    out.raw(option);
    return;
  }
  const header = option.header;
  const keyLength = byteLength(header.key);
  const valueLength = header.rawValue.length;
  out.message(1, headerSize(keyLength, valueLength));
  out.string(1, header.key, keyLength);
  out.bytes(3, header.rawValue);
  if (option.appendAction) {
    out.tag(3, VARINT);
    out.varint(option.appendAction);
  }
}

/** A HeaderValueOption message on its own, for reuse inside later mutations. */
export function encodeHeaderOption(option: HeaderValueOption): EncodedHeaderOption {
  const out = new Out(Buffer.allocUnsafe(optionSize(option)));
  writeOption(out, option);
  return out.buf;
}

const NO_OPTIONS: ReadonlyArray<HeaderValueOption | EncodedHeaderOption> = [];
const NO_NAMES: readonly string[] = [];

function mutationSize(mutation: HeaderMutation): number {
  let size = 0;
  const options = mutation.setHeaders ?? NO_OPTIONS;
  for (let i = 0; i < options.length; i++) size += lenFieldSize(1, optionSize(options[i]));
  const names = mutation.removeHeaders ?? NO_NAMES;
  for (let i = 0; i < names.length; i++) size += lenFieldSize(2, byteLength(names[i]));
  return size;
}

function writeMutation(out: Out, mutation: HeaderMutation): void {
  const options = mutation.setHeaders ?? NO_OPTIONS;
  for (let i = 0; i < options.length; i++) {
    const option = options[i];
    out.message(1, optionSize(option));
    writeOption(out, option);
  }
  const names = mutation.removeHeaders ?? NO_NAMES;
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    out.string(2, name, byteLength(name));
  }
}

// ---- CommonResponse ----

function bodyMutationSize(mutation: BodyMutation): number {
  if (mutation.body !== undefined) return lenFieldSize(1, mutation.body.length);
  if (mutation.clearBody) return 2;
  if (mutation.streamedResponse) return lenFieldSize(3, streamedSize(mutation.streamedResponse));
  return 0;
}

/** StreamedBodyResponse: body (1, written when given, even empty, as protobufjs does), end_of_stream (2). */
function streamedSize(streamed: StreamedBodyResponse): number {
  const body = streamed.body;
  return (body !== undefined ? lenFieldSize(1, body.length) : 0) + (streamed.endOfStream ? 2 : 0);
}

function commonSize(common: CommonResponse): number {
  let size = 0;
  if (common.status) size += 1 + varintSize(common.status);
  if (common.headerMutation) size += lenFieldSize(2, mutationSize(common.headerMutation));
  if (common.bodyMutation) size += lenFieldSize(3, bodyMutationSize(common.bodyMutation));
  if (common.clearRouteCache) size += 2;
  return size;
}

function writeCommon(out: Out, common: CommonResponse): void {
  if (common.status) {
    out.tag(1, VARINT);
    out.varint(common.status);
  }
  if (common.headerMutation) {
    out.message(2, mutationSize(common.headerMutation));
    writeMutation(out, common.headerMutation);
  }
  if (common.bodyMutation) {
    out.message(3, bodyMutationSize(common.bodyMutation));
    if (common.bodyMutation.body !== undefined) out.bytes(1, common.bodyMutation.body);
    else if (common.bodyMutation.clearBody) {
      out.tag(2, VARINT);
      out.varint(1);
    } else if (common.bodyMutation.streamedResponse) {
      const streamed = common.bodyMutation.streamedResponse;
      out.message(3, streamedSize(streamed));
      if (streamed.body !== undefined) out.bytes(1, streamed.body);
      if (streamed.endOfStream) {
        out.tag(2, VARINT);
        out.varint(1);
      }
    }
  }
  if (common.clearRouteCache) {
    out.tag(5, VARINT);
    out.varint(1);
  }
}

/** HeadersResponse / BodyResponse: `{ response?: CommonResponse }` (field 1). */
function wrapperSize(wrapper: { response?: CommonResponse }): number {
  return wrapper.response ? lenFieldSize(1, commonSize(wrapper.response)) : 0;
}

function writeWrapper(out: Out, wrapper: { response?: CommonResponse }): void {
  if (wrapper.response) {
    out.message(1, commonSize(wrapper.response));
    writeCommon(out, wrapper.response);
  }
}

function trailersSize(trailers: { headerMutation?: HeaderMutation }): number {
  return trailers.headerMutation ? lenFieldSize(1, mutationSize(trailers.headerMutation)) : 0;
}

function writeTrailers(out: Out, trailers: { headerMutation?: HeaderMutation }): void {
  if (trailers.headerMutation) {
    out.message(1, mutationSize(trailers.headerMutation));
    writeMutation(out, trailers.headerMutation);
  }
}

// ---- ImmediateResponse ----

function immediateSize(immediate: ImmediateResponse): number {
  const statusSize = immediate.status.code ? 1 + varintSize(immediate.status.code) : 0;
  let size = lenFieldSize(1, statusSize);
  if (immediate.headers) size += lenFieldSize(2, mutationSize(immediate.headers));
  if (immediate.body && immediate.body.length > 0) size += lenFieldSize(3, immediate.body.length);
  if (immediate.details) size += lenFieldSize(5, byteLength(immediate.details));
  return size;
}

function writeImmediate(out: Out, immediate: ImmediateResponse): void {
  const code = immediate.status.code;
  out.message(1, code ? 1 + varintSize(code) : 0);
  if (code) {
    out.tag(1, VARINT);
    out.varint(code);
  }
  if (immediate.headers) {
    out.message(2, mutationSize(immediate.headers));
    writeMutation(out, immediate.headers);
  }
  if (immediate.body && immediate.body.length > 0) out.bytes(3, immediate.body);
  if (immediate.details) out.string(5, immediate.details, byteLength(immediate.details));
}

// ---- ProcessingResponse ----

export function encodeProcessingResponse(response: ProcessingResponse): Buffer {
  // Each part's size once; the write below reuses it for the part's length prefix.
  const requestHeaders = response.requestHeaders ? wrapperSize(response.requestHeaders) : -1;
  const responseHeaders = response.responseHeaders ? wrapperSize(response.responseHeaders) : -1;
  const requestBody = response.requestBody ? wrapperSize(response.requestBody) : -1;
  const responseBody = response.responseBody ? wrapperSize(response.responseBody) : -1;
  const requestTrailers = response.requestTrailers ? trailersSize(response.requestTrailers) : -1;
  const responseTrailers = response.responseTrailers ? trailersSize(response.responseTrailers) : -1;
  const immediate = response.immediateResponse ? immediateSize(response.immediateResponse) : -1;
  const metadata = response.dynamicMetadata ? response.dynamicMetadata.length : -1;
  const bodyMode = response.modeOverride?.responseBodyMode;
  const modeOverride = response.modeOverride ? (bodyMode ? 1 + varintSize(bodyMode) : 0) : -1;

  let size = 0;
  if (requestHeaders >= 0) size += lenFieldSize(1, requestHeaders);
  if (responseHeaders >= 0) size += lenFieldSize(2, responseHeaders);
  if (requestBody >= 0) size += lenFieldSize(3, requestBody);
  if (responseBody >= 0) size += lenFieldSize(4, responseBody);
  if (requestTrailers >= 0) size += lenFieldSize(5, requestTrailers);
  if (responseTrailers >= 0) size += lenFieldSize(6, responseTrailers);
  if (immediate >= 0) size += lenFieldSize(7, immediate);
  if (metadata >= 0) size += lenFieldSize(8, metadata);
  if (modeOverride >= 0) size += lenFieldSize(9, modeOverride);

  const out = new Out(Buffer.allocUnsafe(size));
  if (requestHeaders >= 0) {
    out.message(1, requestHeaders);
    writeWrapper(out, response.requestHeaders!);
  }
  if (responseHeaders >= 0) {
    out.message(2, responseHeaders);
    writeWrapper(out, response.responseHeaders!);
  }
  if (requestBody >= 0) {
    out.message(3, requestBody);
    writeWrapper(out, response.requestBody!);
  }
  if (responseBody >= 0) {
    out.message(4, responseBody);
    writeWrapper(out, response.responseBody!);
  }
  if (requestTrailers >= 0) {
    out.message(5, requestTrailers);
    writeTrailers(out, response.requestTrailers!);
  }
  if (responseTrailers >= 0) {
    out.message(6, responseTrailers);
    writeTrailers(out, response.responseTrailers!);
  }
  if (immediate >= 0) {
    out.message(7, immediate);
    writeImmediate(out, response.immediateResponse!);
  }
  if (metadata >= 0) {
    out.bytes(8, response.dynamicMetadata!);
  }
  if (modeOverride >= 0) {
    out.message(9, modeOverride);
    if (bodyMode) {
      out.tag(4, VARINT);
      out.varint(bodyMode);
    }
  }
  if (out.pos !== size) throw new Error(`ProcessingResponse encoding wrote ${out.pos} of ${size} bytes`);
  return out.buf;
}

// ---- google.protobuf.Struct of nested values ----

/** A value of a Struct written once and reused (per-consumer limits): numbers, strings and nested structs. */
export type StructValue = number | string | { readonly [key: string]: StructValue };

function valueSize(value: StructValue): number {
  if (typeof value === 'number') return 1 + 8; // number_value (2): tag + fixed64
  if (typeof value === 'string') return lenFieldSize(3, byteLength(value)); // string_value (3)
  return lenFieldSize(5, structSize(value)); // struct_value (5)
}

function structSize(fields: { readonly [key: string]: StructValue }): number {
  let size = 0;
  for (const key of Object.keys(fields)) size += lenFieldSize(1, entrySize(key, fields[key]));
  return size;
}

/** One `fields` map entry: key (1), value (2). */
function entrySize(key: string, value: StructValue): number {
  return lenFieldSize(1, byteLength(key)) + lenFieldSize(2, valueSize(value));
}

function writeStruct(out: Out, fields: { readonly [key: string]: StructValue }): void {
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    out.message(1, entrySize(key, value));
    out.string(1, key, byteLength(key));
    out.message(2, valueSize(value));
    if (typeof value === 'number') {
      out.tag(2, FIXED64);
      out.buf.writeDoubleLE(value, out.pos);
      out.pos += 8;
    } else if (typeof value === 'string') {
      out.string(3, value, byteLength(value));
    } else {
      out.message(5, structSize(value));
      writeStruct(out, value);
    }
  }
}

/**
 * A Struct in wire form, for metadata that is the same on every use (encoded when a config loads). Keys are written
 * in their insertion order.
 */
export function encodeStruct(fields: { readonly [key: string]: StructValue }): EncodedStruct {
  const out = new Out(Buffer.alloc(structSize(fields)));
  writeStruct(out, fields);
  if (out.pos !== out.buf.length) throw new Error(`Struct encoding wrote ${out.pos} of ${out.buf.length} bytes`);
  return out.buf;
}
