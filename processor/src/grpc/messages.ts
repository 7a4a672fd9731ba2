/**
 * The subset of envoy.service.ext_proc.v3 messages the processor reads and writes, with protobufjs'
 * camelCase field names. Decoded messages carry proto3 defaults on their prototype.
 */

export interface HeaderValue {
  key: string;
  value?: string;
  rawValue?: Uint8Array;
}

export interface HeaderMap {
  headers?: HeaderValue[];
}

export interface HttpHeaders {
  headers?: HeaderMap;
  endOfStream?: boolean;
}

export interface HttpBody {
  body?: Uint8Array;
  endOfStream?: boolean;
}

export interface HttpTrailers {
  trailers?: HeaderMap;
}

export type RequestKind =
  'requestHeaders' | 'responseHeaders' | 'requestBody' | 'responseBody' | 'requestTrailers' | 'responseTrailers';

export interface ProcessingRequest {
  /** The name of the oneof member that is set (protobufjs virtual oneof property). */
  request?: RequestKind;
  requestHeaders?: HttpHeaders;
  responseHeaders?: HttpHeaders;
  requestBody?: HttpBody;
  responseBody?: HttpBody;
  requestTrailers?: HttpTrailers;
  responseTrailers?: HttpTrailers;
  /**
   * Envoy's evaluated `request_attributes` / `response_attributes`, keyed by filter name
   * (`envoy.filters.http.ext_proc`), sent with the first message of a direction. Decoded like every field, but
   * read only for response headers (see extproc/local-replies.ts); an empty map when Envoy sends none.
   */
  attributes?: Record<string, ProtoStruct>;
  /**
   * The body modes of the filter (Envoy >= 1.34), in the first message of a stream only. Undefined from older Envoys
   * and in every later message.
   */
  protocolConfig?: ProtocolConfiguration;
}

/** envoy.service.ext_proc.v3.ProtocolConfiguration; enums as numbers (see BODY_MODE_*). */
export interface ProtocolConfiguration {
  requestBodyMode?: number;
  responseBodyMode?: number;
  sendBodyWithoutWaitingForHeaderResponse?: boolean;
}

/** envoy.config.core.v3.HeaderValueOption.HeaderAppendAction */
export const OVERWRITE_IF_EXISTS_OR_ADD = 2;

export interface HeaderValueOption {
  header: { key: string; rawValue: Uint8Array };
  appendAction: number;
}

/** A HeaderValueOption already in wire form (see HeaderOptionCache). */
export type EncodedHeaderOption = Buffer;

export interface HeaderMutation {
  setHeaders?: Array<HeaderValueOption | EncodedHeaderOption>;
  removeHeaders?: string[];
}

/** envoy.service.ext_proc.v3.CommonResponse.ResponseStatus: replace the message (and its body) with this one. */
export const CONTINUE_AND_REPLACE = 1;

export interface CommonResponse {
  /** 0 CONTINUE, 1 CONTINUE_AND_REPLACE */
  status?: number;
  headerMutation?: HeaderMutation;
  bodyMutation?: BodyMutation;
  clearRouteCache?: boolean;
}

/** One of: a new body, the body cleared, or (FULL_DUPLEX_STREAMED mode only) bytes streamed to the client. */
export interface BodyMutation {
  body?: Uint8Array;
  clearBody?: boolean;
  streamedResponse?: StreamedBodyResponse;
}

/** envoy.service.ext_proc.v3.StreamedBodyResponse: `end_of_stream` ends the response the client gets. */
export interface StreamedBodyResponse {
  body?: Uint8Array;
  endOfStream?: boolean;
}

export interface ImmediateResponse {
  status: { code: number };
  headers?: HeaderMutation;
  body?: Uint8Array;
  details?: string;
}

/** google.protobuf.Value / Struct in protobufjs' plain-object form (as decoded). */
export interface ProtoValue {
  nullValue?: number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: ProtoStruct;
}
export interface ProtoStruct {
  fields: Record<string, ProtoValue>;
}
/** A google.protobuf.Struct already in wire form (see NumberStructLayout in encode.ts). */
export type EncodedStruct = Buffer;

/** envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode */
export const BODY_MODE_STREAMED = 1;
/** Envoy streams body chunks without waiting for answers; the processor answers with any number of streamed bodies. */
export const BODY_MODE_FULL_DUPLEX_STREAMED = 4;

export interface ProcessingResponse {
  requestHeaders?: { response?: CommonResponse };
  responseHeaders?: { response?: CommonResponse };
  requestBody?: { response?: CommonResponse };
  responseBody?: { response?: CommonResponse };
  requestTrailers?: { headerMutation?: HeaderMutation };
  responseTrailers?: { headerMutation?: HeaderMutation };
  immediateResponse?: ImmediateResponse;
  dynamicMetadata?: EncodedStruct;
  modeOverride?: { responseBodyMode?: number };
}

/** A ProcessingResponse already in wire form: answers that never change are encoded once. */
export type EncodedResponse = Buffer;
export type OutgoingResponse = ProcessingResponse | EncodedResponse;
