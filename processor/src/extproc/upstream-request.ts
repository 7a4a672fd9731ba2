/**
 * Building the request the backend gets: translation into the backend's API, route-level body mutations, the
 * gateway's headers, and credentials (static ones from the answer cache, signed or fetched ones per request).
 */
import { randomUUID } from 'node:crypto';
import {
  BACKEND_HEADER,
  CLIENT_ID_HEADER,
  CONSUMER_HEADER,
  MODEL_HEADER,
  ROUTE_HEADER,
} from '@ai-gateway-constructs/processor-config';
import type { BackendRuntime, RuntimeConfig } from '../config/runtime';
import {
  CLIENT_CREDENTIAL_HEADERS,
  internalHeadersConsumedBy,
  isClientInternalHeader,
  type AuthRequest,
} from '../auth';
import { decodableAcceptEncoding } from '../encoding';
import { gatewayError, type GatewayError } from '../errors';
import { encodeProcessingResponse } from '../grpc/encode';
import type { CommonResponse, EncodedStruct, OutgoingResponse, ProcessingResponse } from '../grpc/messages';
import type { ConsumerRuntime } from '../governance';
import { findTranslator } from '../translate/registry';
import { TranslationError, type HeaderChanges, type Translator, type UpstreamRequest } from '../translate/types';
import type { ProcessorContext } from './context';
import { Exchange } from './exchange';
import { HeaderChangeSet, type HeaderList } from './headers';
import { replaceSpan } from './form-body';
import { parseJsonBody } from './json-body';
import { stripQuery, type HeadersDecision, type Rejection, type RoutingDecision } from './request-route';

export type BodyRead = Extract<HeadersDecision, { kind: 'readBody' }>;

/** A routed request translated for its backend, before credentials. */
export interface PreparedRequest {
  kind: 'prepared';
  exchange: Exchange;
  /** The AIRoute (`<namespace>/<name>`) whose rule matched: budgets scope on it. */
  routeName: string;
  upstream: UpstreamRequest;
  /** The bytes to send when they differ from the client's. */
  upstreamBody: Buffer | undefined;
}

export function prepareUpstream(
  context: ProcessorContext,
  runtime: RuntimeConfig,
  read: BodyRead,
  decision: RoutingDecision,
): PreparedRequest | Rejection {
  const { match, headers, path } = read;
  const { backend, model } = decision;
  const api = match.api;
  const factory = findTranslator(api, match.operation, backend.config.schema.name, runtime.translators);
  if (!factory) {
    return {
      kind: 'reject',
      error: gatewayError(
        400,
        `backend "${backend.config.name}" (schema ${backend.config.schema.name}) cannot serve ${stripQuery(path)}`,
        'unsupported_operation',
      ),
      api,
    };
  }
  const translator = factory({
    api,
    operation: match.operation,
    subpath: match.subpath,
    query: match.query,
    requestModel: model,
    upstreamModel: decision.upstreamModel,
    backend: backend.config,
    stream: decision.stream,
    streamUsageRequested: decision.streamUsageRequested,
    forceStreamUsage: runtime.forceStreamUsage,
    requestId: headers.get('x-request-id') ?? randomUUID(),
    nowSeconds: Math.floor(Date.now() / 1000),
  });
  let upstream: UpstreamRequest | undefined;
  let upstreamBody: Buffer | undefined;
  try {
    if (decision.formModel !== undefined) {
      const form = formUpstream(translator, backend, decision, path);
      if ('error' in form) return { kind: 'reject', error: form.error, api };
      ({ upstream, upstreamBody } = form);
    }
    // Forwarded as it came: decided from the top-level fields the gateway read, the body is never parsed.
    else if (!backend.hasBodyMutation) upstream = translator.forwardUnchanged?.();
    if (!upstream) {
      const parsed = parseJsonBody(decision.raw);
      if (!parsed.ok) {
        const message = `malformed request: failed to parse JSON for ${stripQuery(path)}: ${parsed.message}`;
        return { kind: 'reject', error: gatewayError(400, message, 'invalid_json'), api };
      }
      upstream = translator.request(parsed.body);
      if (!upstream.bodyUnchanged || backend.hasBodyMutation) {
        upstreamBody = Buffer.from(JSON.stringify(applyBodyMutation(upstream.body, backend)));
      }
    }
  } catch (error) {
    if (error instanceof TranslationError) {
      return {
        kind: 'reject',
        error: {
          status: error.status,
          message: error.message,
          type: error.errorType,
          code: null,
          param: error.param ?? null,
        },
        api,
      };
    }
    throw error;
  }
  const exchange = new Exchange(context, {
    runtime,
    api,
    operation: match.operation,
    model,
    modelLabel: decision.rule.modelLabel,
    upstreamModel: decision.upstreamModel,
    price: decision.price,
    routeName: decision.rule.rule.route.name,
    consumer: decision.consumer,
    backend,
    response: translator.response(),
  });
  return { kind: 'prepared', exchange, routeName: decision.rule.rule.route.name, upstream, upstreamBody };
}

/**
 * The upstream request of a multipart/form-data body: the client's bytes, with the `model` field's value replaced
 * by a model name override (exactly its bytes; the framing is kept). A backend whose translator takes no form, or
 * with a JSON body mutation, cannot serve it.
 */
function formUpstream(
  translator: Translator,
  backend: BackendRuntime,
  decision: RoutingDecision,
  path: string,
): { upstream: UpstreamRequest; upstreamBody: Buffer | undefined } | { error: GatewayError } {
  const name = `backend "${backend.config.name}" (schema ${backend.config.schema.name})`;
  if (!translator.forwardForm)
    return { error: gatewayError(400, `${name} cannot serve ${stripQuery(path)}`, 'unsupported_operation') };
  if (backend.hasBodyMutation) {
    return {
      error: gatewayError(
        400,
        `${name} has a body mutation, which applies to JSON bodies only: it cannot serve a multipart/form-data body`,
        'unsupported_operation',
      ),
    };
  }
  const override = decision.upstreamModel;
  if (override !== decision.model && /[\r\n]/.test(override)) {
    // Cannot happen with a valid config (model names have no control characters); a line break could end the part.
    return { error: gatewayError(500, 'the model name override contains a line break', 'server_error') };
  }
  return {
    upstream: translator.forwardForm(),
    upstreamBody: override === decision.model ? undefined : replaceSpan(decision.raw, decision.formModel!, override),
  };
}

/** The backend's credential could not be had: the request cannot go on. */
export class CredentialFailure {
  constructor(readonly cause: unknown) {}
}

/**
 * The answer to the request body: header changes (and the new body) for the backend, with credentials.
 * Resolves (or returns) a CredentialFailure when the credential cannot be had; the auth layer bounds its time.
 */
export function upstreamAnswer(
  runtime: RuntimeConfig,
  read: BodyRead,
  prepared: PreparedRequest,
  raw: Buffer,
): OutgoingResponse | CredentialFailure | Promise<OutgoingResponse | CredentialFailure> {
  const { upstream, upstreamBody, exchange, routeName } = prepared;
  const route = exchange.route;
  const backend = route.backend;
  const auth = backend.auth;
  const fixedCredentials = fixedCredentialsOf(backend);
  if (fixedCredentials instanceof CredentialFailure) return fixedCredentials;
  const clientSpecific = clientHeaderChanges(read.headers, backend, runtime.governance.consumers !== undefined);
  const consumer = consumerChanges(runtime, route.consumer);
  if (
    !upstreamBody &&
    !clientSpecific &&
    upstream.removeHeaders.length === 0 &&
    isEmpty(upstream.setHeaders) &&
    (!auth || fixedCredentials)
  ) {
    // Forwarded as it came: the answer depends only on route, backend, model, path and static credentials.
    return runtime.requestAnswers.get(
      routeName,
      backend.config.name,
      route.model,
      upstream.path,
      upstream.path !== read.path,
      fixedCredentials,
      () => {
        const changes = requestChanges(
          backend,
          routeName,
          route.model,
          upstream,
          read.path,
          undefined,
          fixedCredentials,
        );
        if (consumer) changes.apply(consumer);
        return encodeProcessingResponse(bodyAnswer(runtime, changes, undefined, route.consumer?.limitMetadata));
      },
      route.consumer?.id,
    );
  }
  const changes = requestChanges(backend, routeName, route.model, upstream, read.path, upstreamBody, fixedCredentials);
  applyClientChanges(changes, clientSpecific, consumer);
  const metadata = route.consumer?.limitMetadata;
  return withCredentials(read, prepared, raw, changes, fixedCredentials, (signed) =>
    bodyAnswer(runtime, signed, upstreamBody, metadata),
  );
}

/** The backend's static credential headers (undefined without any), or why they cannot be had. */
function fixedCredentialsOf(backend: BackendRuntime): HeaderChanges | undefined | CredentialFailure {
  try {
    return backend.auth?.fixed?.();
  } catch (error) {
    return new CredentialFailure(error);
  }
}

/** The client's own header changes, then the consumer's: a consumer header the client sent is replaced, never kept. */
function applyClientChanges(
  changes: HeaderChangeSet,
  clientSpecific: HeaderChanges | undefined,
  consumer: HeaderChanges | undefined,
): void {
  if (clientSpecific) changes.apply(clientSpecific);
  if (consumer) changes.apply(consumer);
}

/**
 * Every header of the request as the backend gets it (the client's, changed as `upstreamAnswer` tells Envoy to change
 * them, credentials included): for a request the processor sends itself. Resolves (or returns) a CredentialFailure
 * when the credential cannot be had.
 */
export function upstreamHeaders(
  runtime: RuntimeConfig,
  read: BodyRead,
  prepared: PreparedRequest,
  raw: Buffer,
): Record<string, string> | CredentialFailure | Promise<Record<string, string> | CredentialFailure> {
  const { upstream, upstreamBody, exchange, routeName } = prepared;
  const route = exchange.route;
  const backend = route.backend;
  const fixedCredentials = fixedCredentialsOf(backend);
  if (fixedCredentials instanceof CredentialFailure) return fixedCredentials;
  const changes = requestChanges(backend, routeName, route.model, upstream, read.path, upstreamBody, fixedCredentials);
  applyClientChanges(
    changes,
    clientHeaderChanges(read.headers, backend, runtime.governance.consumers !== undefined),
    consumerChanges(runtime, route.consumer),
  );
  return withCredentials(read, prepared, raw, changes, fixedCredentials, (signed) =>
    signed.appliedTo(read.headers.toRecord()),
  );
}

/**
 * `finish` over the changes with the backend's credential applied: the fixed one already is; a signed or fetched
 * one is computed here (a CredentialFailure when it cannot be had; the auth layer bounds its time).
 */
function withCredentials<T>(
  read: BodyRead,
  prepared: PreparedRequest,
  raw: Buffer,
  changes: HeaderChangeSet,
  fixedCredentials: HeaderChanges | undefined,
  finish: (changes: HeaderChangeSet) => T,
): T | CredentialFailure | Promise<T | CredentialFailure> {
  const auth = prepared.exchange.route.backend.auth;
  if (!auth || fixedCredentials) return finish(changes);
  const authRequest = new UpstreamAuthRequest(
    read.headers.get(':method') ?? 'POST',
    prepared.exchange.route.backend.config.endpoint.hostname,
    prepared.upstream.path,
    prepared.upstreamBody ?? raw,
    changes,
    read.headers,
  );
  let credentials: HeaderChanges | Promise<HeaderChanges>;
  try {
    credentials = auth.apply(authRequest);
  } catch (error) {
    return new CredentialFailure(error);
  }
  if (credentials instanceof Promise) {
    return credentials.then(
      (resolved) => {
        changes.apply(resolved);
        return finish(changes);
      },
      (error: unknown) => new CredentialFailure(error),
    );
  }
  changes.apply(credentials);
  return finish(changes);
}

/**
 * With consumers configured: CONSUMER_HEADER set to the consumer's id (removed, with the client-id header, for
 * requests without one), prepared at load. Without consumers: nothing (a consumer header a client sent is
 * removed with the other gateway-internal headers it sent).
 */
function consumerChanges(runtime: RuntimeConfig, consumer: ConsumerRuntime | undefined): HeaderChanges | undefined {
  const directory = runtime.governance.consumers;
  if (directory === undefined) return undefined;
  return consumer?.headerChanges ?? directory.anonymousChanges;
}

/**
 * Changes that depend on what this client sent (so the answer cannot come from the cache): the gateway-internal
 * headers it sent (any `x-ai-eg-`/`x-aigw-` name; the AWS signer removes the ones it reads itself; without consumers
 * also CONSUMER_HEADER and CLIENT_ID_HEADER, which `consumerChanges` handles when consumers are configured), and an
 * `accept-encoding` narrowed to the codings the processor can decode (a provider answering in zstd could be neither
 * counted nor translated).
 */
function clientHeaderChanges(
  headers: HeaderList,
  backend: BackendRuntime,
  governed: boolean,
): HeaderChanges | undefined {
  const consumed = internalHeadersConsumedBy(backend.config);
  const internal = headers.namesWhere(
    (name) =>
      (isClientInternalHeader(name) && !consumed.includes(name)) ||
      (!governed && (name === CONSUMER_HEADER || name === CLIENT_ID_HEADER)),
  );
  const acceptEncoding = headers.get('accept-encoding');
  const narrowed = acceptEncoding === undefined ? undefined : decodableAcceptEncoding(acceptEncoding);
  if (internal.length === 0 && narrowed === undefined) return undefined;
  const removeHeaders = narrowed === '' ? [...internal, 'accept-encoding'] : internal;
  return { setHeaders: narrowed ? { 'accept-encoding': narrowed } : {}, removeHeaders };
}

/** The upstream request's header changes, before signing auth (fixed credentials included when given). */
function requestChanges(
  backend: BackendRuntime,
  routeName: string,
  model: string,
  upstream: UpstreamRequest,
  clientPath: string,
  upstreamBody: Buffer | undefined,
  fixedCredentials: HeaderChanges | undefined,
): HeaderChangeSet {
  const changes = new HeaderChangeSet();
  changes.apply(upstream);
  for (const name of backend.removeHeaders) changes.remove(name);
  for (const [name, value] of backend.setHeaders) changes.set(name, value, true);
  if (backend.auth) for (const name of CLIENT_CREDENTIAL_HEADERS) changes.remove(name);
  changes.set(MODEL_HEADER, model, true);
  changes.set(BACKEND_HEADER, backend.config.name, true);
  changes.set(ROUTE_HEADER, routeName, true);
  if (upstream.path !== clientPath) changes.set(':path', upstream.path, true);
  if (upstreamBody) changes.set('content-length', String(upstreamBody.length));
  if (fixedCredentials) changes.apply(fixedCredentials);
  return changes;
}

/**
 * The request-body answer. `limitMetadata` (a consumer's own budget limits) travels in this answer because Envoy's
 * rate-limit filter computes its descriptors right after it.
 */
function bodyAnswer(
  runtime: RuntimeConfig,
  changes: HeaderChangeSet,
  body: Buffer | undefined,
  limitMetadata: EncodedStruct | undefined,
): ProcessingResponse {
  const response: CommonResponse = { headerMutation: changes.toMutation(runtime.headerOptions), clearRouteCache: true };
  if (body) response.bodyMutation = { body };
  return limitMetadata ? { requestBody: { response }, dynamicMetadata: limitMetadata } : { requestBody: { response } };
}

/**
 * The upstream request as auth sees it; the full header set is built only when read (signing auth). A
 * class rather than an object literal with a getter: V8 gives every such literal its own hidden class,
 * and the class transitions keep each request's body and headers alive until a full GC.
 */
class UpstreamAuthRequest implements AuthRequest {
  constructor(
    readonly method: string,
    readonly hostname: string,
    readonly path: string,
    readonly body: Buffer,
    private readonly changes: HeaderChangeSet,
    private readonly clientHeaders: HeaderList,
  ) {}

  get headers(): Record<string, string> {
    return this.changes.appliedTo(this.clientHeaders.toRecord());
  }
}

function isEmpty(record: Readonly<Record<string, string>>): boolean {
  for (const _ in record) return false;
  return true;
}

/** Route-level body mutations: set or remove top-level keys of a JSON object body. */
function applyBodyMutation(body: unknown, backend: BackendRuntime): unknown {
  if (!backend.hasBodyMutation || body === null || typeof body !== 'object' || Array.isArray(body)) return body;
  const object = body as Record<string, unknown>;
  for (const key of backend.bodyRemove) delete object[key];
  for (const [key, value] of backend.bodySet) object[key] = value;
  return object;
}
