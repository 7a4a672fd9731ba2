/** Errors the processor answers itself, rendered in the client API's error shape. */
import type { ClientApi } from './translate/types';

export interface GatewayError {
  status: number;
  message: string;
  /** OpenAI `error.type`, e.g. `invalid_request_error`. */
  type: string;
  /** OpenAI `error.code`, e.g. `model_not_found`. */
  code: string | null;
  param?: string | null;
  /** Response headers the answer needs besides its content type (e.g. `allow` on a 405). */
  headers?: Readonly<Record<string, string>>;
}

export function gatewayError(
  status: number,
  message: string,
  code: string | null = null,
  param: string | null = null,
): GatewayError {
  return { status, message, type: status >= 500 ? 'server_error' : 'invalid_request_error', code, param };
}

const ANTHROPIC_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
};

/** OpenAI: `{"error":{message,type,param,code}}`; Anthropic: `{"type":"error","error":{type,message}}`. */
export function renderError(api: ClientApi, error: GatewayError): Buffer {
  if (api === 'Anthropic') {
    const type = ANTHROPIC_TYPES[error.status] ?? (error.status >= 500 ? 'api_error' : 'invalid_request_error');
    return Buffer.from(JSON.stringify({ type: 'error', error: { type, message: error.message } }));
  }
  return Buffer.from(
    JSON.stringify({
      error: { message: error.message, type: error.type, param: error.param ?? null, code: error.code },
    }),
  );
}
