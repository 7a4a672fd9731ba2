/**
 * The wire side of ext_proc: `envoy.service.ext_proc.v3.ExternalProcessor/Process` messages, encoded and decoded
 * with protobufjs from a descriptor compiled out of Envoy's protos (see scripts/ext-proc-descriptor.cjs, which adds
 * what the protos shipped in @grpc/grpc-js-xds lack: `protocol_config`, `streamed_response`, FULL_DUPLEX_STREAMED).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Root, type INamespace, type Type } from 'protobufjs';

export const PROCESS_METHOD_PATH = '/envoy.service.ext_proc.v3.ExternalProcessor/Process';

/** `envoy.extensions.filters.http.ext_proc.v3.ProcessingMode` enums, as numbers on the wire. */
export const HeaderSendMode = { DEFAULT: 0, SEND: 1, SKIP: 2 } as const;
export const BodySendMode = {
  NONE: 0,
  STREAMED: 1,
  BUFFERED: 2,
  BUFFERED_PARTIAL: 3,
  FULL_DUPLEX_STREAMED: 4,
  GRPC: 5,
} as const;
export type BodySendModeValue = (typeof BodySendMode)[keyof typeof BodySendMode];

/** A JSON-like value as it travels in a `google.protobuf.Struct`. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

// ---- requests (what the filter sends) ----

export interface WireHeaderValue {
  key: string;
  rawValue: Buffer;
}

export type RequestKind = 'requestHeaders' | 'responseHeaders' | 'requestBody' | 'responseBody' | 'responseTrailers';

/** `ProtocolConfiguration`: the filter's configured body modes, sent in the first message of each stream. */
export interface WireProtocolConfig {
  requestBodyMode: BodySendModeValue;
  responseBodyMode: BodySendModeValue;
  sendBodyWithoutWaitingForHeaderResponse: boolean;
}

export interface OutgoingRequest {
  requestHeaders?: { headers: { headers: WireHeaderValue[] }; endOfStream: boolean };
  responseHeaders?: { headers: { headers: WireHeaderValue[] }; endOfStream: boolean };
  requestBody?: { body: Buffer; endOfStream: boolean };
  responseBody?: { body: Buffer; endOfStream: boolean };
  responseTrailers?: { trailers: { headers: WireHeaderValue[] } };
  /** Forwarded dynamic metadata by namespace (`metadata_context.filter_metadata`). */
  metadataContext?: Record<string, Record<string, unknown>>;
  /** `attributes["envoy.filters.http.ext_proc"]`. */
  attributes?: Record<string, unknown>;
  observabilityMode?: boolean;
  /** Only in the first message of a stream. */
  protocolConfig?: WireProtocolConfig;
}

// ---- responses (what the processor answers), as decoded ----

export interface DecodedHeaderValueOption {
  header?: { key?: string; value?: string; rawValue?: Uint8Array };
  /** The deprecated `append` BoolValue; the only append switch Envoy's ext_proc reads. */
  append?: { value?: boolean };
  appendAction?: number;
}

export interface DecodedHeaderMutation {
  setHeaders?: DecodedHeaderValueOption[];
  removeHeaders?: string[];
}

export interface DecodedBodyMutation {
  body?: Uint8Array;
  clearBody?: boolean;
  /** `StreamedBodyResponse`: the only body answer of a FULL_DUPLEX_STREAMED direction. */
  streamedResponse?: { body?: Uint8Array; endOfStream?: boolean };
  mutation?: 'body' | 'clearBody' | 'streamedResponse';
}

export interface DecodedCommonResponse {
  /** 0 CONTINUE, 1 CONTINUE_AND_REPLACE. */
  status?: number;
  headerMutation?: DecodedHeaderMutation;
  bodyMutation?: DecodedBodyMutation;
  clearRouteCache?: boolean;
}

export interface DecodedProcessingMode {
  requestHeaderMode?: number;
  responseHeaderMode?: number;
  requestBodyMode?: number;
  responseBodyMode?: number;
  requestTrailerMode?: number;
  responseTrailerMode?: number;
}

export interface DecodedImmediateResponse {
  status?: { code?: number };
  headers?: DecodedHeaderMutation;
  body?: Uint8Array;
  grpcStatus?: { status?: number };
  details?: string;
}

export type ResponseKind = RequestKind | 'requestTrailers' | 'responseTrailers' | 'immediateResponse';

export interface DecodedResponse {
  response?: ResponseKind;
  requestHeaders?: { response?: DecodedCommonResponse };
  responseHeaders?: { response?: DecodedCommonResponse };
  requestBody?: { response?: DecodedCommonResponse };
  responseBody?: { response?: DecodedCommonResponse };
  responseTrailers?: { headerMutation?: DecodedHeaderMutation };
  immediateResponse?: DecodedImmediateResponse;
  /** Namespaces (top-level keys) to structs, already converted to plain values. */
  dynamicMetadata?: Record<string, JsonValue>;
  modeOverride?: DecodedProcessingMode;
  overrideMessageTimeout?: { seconds?: number; nanos?: number };
}

export interface ExtProcCodec {
  serializeRequest(request: OutgoingRequest): Buffer;
  deserializeResponse(bytes: Buffer): DecodedResponse;
  /** For test servers: the reverse direction. */
  deserializeRequest(bytes: Buffer): Record<string, unknown>;
  serializeResponse(response: Record<string, unknown>): Buffer;
}

export function createExtProcCodec(root: Root = loadExtProcRoot()): ExtProcCodec {
  const requestType = root.lookupType('envoy.service.ext_proc.v3.ProcessingRequest');
  const responseType = root.lookupType('envoy.service.ext_proc.v3.ProcessingResponse');
  return {
    serializeRequest: (request) => encode(requestType, toWireRequest(request)),
    deserializeResponse: (bytes) => fromWireResponse(responseType.toObject(responseType.decode(bytes), TO_OBJECT)),
    deserializeRequest: (bytes) => requestType.toObject(requestType.decode(bytes), TO_OBJECT),
    serializeResponse: (response) => encode(responseType, response),
  };
}

const TO_OBJECT = { longs: Number, enums: Number, oneofs: true } as const;

function encode(type: Type, value: Record<string, unknown>): Buffer {
  const message = type.fromObject(value);
  const bytes = type.encode(message).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function toWireRequest(request: OutgoingRequest): Record<string, unknown> {
  const wire: Record<string, unknown> = { ...request };
  delete wire.metadataContext;
  delete wire.attributes;
  if (request.metadataContext) {
    const filterMetadata: Record<string, unknown> = {};
    for (const [namespace, value] of Object.entries(request.metadataContext))
      filterMetadata[namespace] = toStruct(value);
    wire.metadataContext = { filterMetadata };
  }
  if (request.attributes) wire.attributes = { 'envoy.filters.http.ext_proc': toStruct(request.attributes) };
  return wire;
}

function fromWireResponse(wire: Record<string, unknown>): DecodedResponse {
  const response = wire as DecodedResponse & { dynamicMetadata?: unknown };
  if (wire.dynamicMetadata !== undefined) {
    response.dynamicMetadata = fromStruct(wire.dynamicMetadata as WireStruct);
  }
  return response;
}

// ---- google.protobuf.Struct <-> plain values ----

interface WireStruct {
  fields?: Record<string, WireValue>;
}

interface WireValue {
  kind?: 'nullValue' | 'numberValue' | 'stringValue' | 'boolValue' | 'structValue' | 'listValue';
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: WireStruct;
  listValue?: { values?: WireValue[] };
}

export function toStruct(value: Record<string, unknown>): WireStruct {
  const fields: Record<string, WireValue> = {};
  for (const [key, field] of Object.entries(value)) {
    if (field !== undefined) fields[key] = toValue(field);
  }
  return { fields };
}

function toValue(value: unknown): WireValue {
  if (value === null || value === undefined) return { nullValue: 0 } as WireValue;
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'bigint') return { numberValue: Number(value) };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(toValue) } };
  if (Buffer.isBuffer(value)) return { stringValue: value.toString('base64') };
  if (typeof value === 'object') return { structValue: toStruct(value as Record<string, unknown>) };
  return { stringValue: String(value) };
}

export function fromStruct(struct: WireStruct | undefined): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [key, value] of Object.entries(struct?.fields ?? {})) out[key] = fromValue(value);
  return out;
}

function fromValue(value: WireValue): JsonValue {
  switch (value.kind) {
    case 'numberValue':
      return value.numberValue ?? 0;
    case 'stringValue':
      return value.stringValue ?? '';
    case 'boolValue':
      return value.boolValue ?? false;
    case 'structValue':
      return fromStruct(value.structValue);
    case 'listValue':
      return (value.listValue?.values ?? []).map(fromValue);
    default:
      return null;
  }
}

// ---- the descriptor ----

/** The compiled descriptor next to this module (written by the build), else the protos compiled now (development). */
export function loadExtProcRoot(): Root {
  return Root.fromJSON(loadDescriptor());
}

function loadDescriptor(): INamespace {
  const generated = path.join(__dirname, 'descriptor.json');
  if (fs.existsSync(generated)) return JSON.parse(fs.readFileSync(generated, 'utf8')) as INamespace;
  const compiler = path.join(__dirname, '..', '..', '..', 'scripts', 'ext-proc-descriptor.cjs');
  if (!fs.existsSync(compiler)) {
    throw new Error(
      `ext_proc: neither the compiled descriptor ${generated} nor the proto compiler ${compiler} ` +
        `exists; rebuild the package`,
    );
  }

  return (require(compiler) as { buildExtProcDescriptor(): INamespace }).buildExtProcDescriptor();
}
