/** Answers that never change, encoded once, and the shape of a local reply. */
import type { GatewayError } from '../errors';
import { renderError } from '../errors';
import { encodeProcessingResponse } from '../grpc/encode';
import type { EncodedStruct, HeaderMutation, ProcessingResponse, RequestKind } from '../grpc/messages';
import type { ClientApi } from '../translate/types';
import { headerOption } from './header-options';

export const CONTINUE = {
  requestHeaders: encodeProcessingResponse({ requestHeaders: { response: {} } }),
  requestBody: encodeProcessingResponse({ requestBody: { response: {} } }),
  responseHeaders: encodeProcessingResponse({ responseHeaders: { response: {} } }),
  responseBody: encodeProcessingResponse({ responseBody: { response: {} } }),
  requestTrailers: encodeProcessingResponse({ requestTrailers: {} }),
  responseTrailers: encodeProcessingResponse({ responseTrailers: {} }),
} as const satisfies Record<RequestKind, Buffer>;

/** "Go on unchanged" for a message kind, carrying metadata when given. */
export function continueWith(
  kind: RequestKind,
  dynamicMetadata: EncodedStruct | undefined,
): ProcessingResponse | Buffer {
  if (!dynamicMetadata) return CONTINUE[kind];
  switch (kind) {
    case 'requestTrailers':
      return { requestTrailers: {}, dynamicMetadata };
    case 'responseTrailers':
      return { responseTrailers: {}, dynamicMetadata };
    default:
      return { [kind]: { response: {} }, dynamicMetadata };
  }
}

export const JSON_CONTENT_TYPE: HeaderMutation = {
  setHeaders: [headerOption('content-type', 'application/json')],
  removeHeaders: [],
};

/** Envoy answers the client directly with an error in the client's API schema. */
export function errorReply(api: ClientApi, error: GatewayError, dynamicMetadata: EncodedStruct): ProcessingResponse {
  const extra = error.headers;
  const headers: HeaderMutation = extra
    ? {
        setHeaders: [
          ...JSON_CONTENT_TYPE.setHeaders!,
          ...Object.entries(extra).map(([name, value]) => headerOption(name, value)),
        ],
        removeHeaders: [],
      }
    : JSON_CONTENT_TYPE;
  return {
    immediateResponse: {
      status: { code: error.status },
      headers,
      body: renderError(api, error),
      details: error.code ?? undefined,
    },
    dynamicMetadata,
  };
}
