/**
 * Envoy's router filter for the routes Envoy Gateway builds: no route -> 404 `NR`, direct responses, redirects,
 * URL rewrites, request/response header modifiers, the weighted choice of a destination, the route timeout
 * (504 `UT`), retries, the cluster's `max_requests` circuit breaker (503 `UO`), and the upstream response streamed
 * back through the encoder filters.
 */
import { HeaderMap, type LocalReply, type StreamContext } from './filter';
import type { TerminalFilter, TerminalResult } from './filter-manager';
import {
  EG_DEFAULT_CIRCUIT_BREAKER_LIMIT,
  type Destination,
  type HeaderModifier,
  type Redirect,
  type RetryPolicy,
  type RouteModel,
  type UrlRewrite,
} from './model';
import { fullMatch, hostWithoutPort, pathOnly } from './route-match';
import { ClusterSlots } from './slots';
import { sleep } from './sleep';
import { UpstreamError, type Upstream, type UpstreamResponse } from './upstream';

/** Envoy's route timeout when the route sets none (`RouteAction.timeout` defaults to 15 s). */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;
const DEFAULT_BACKOFF_BASE_MS = 25;

/** Envoy's answer when a cluster's circuit breaker refuses a request: no attempt, no retry. */
const OVERFLOW_REPLY: LocalReply = {
  status: 503,
  body: 'upstream connect error or disconnect/reset before headers. reset reason: overflow',
  details: 'upstream_reset_before_response_started{overflow}',
  flag: 'UO',
};

export interface RouterOptions {
  readonly upstream: Upstream;
  /** Source of randomness for the weighted choice and retry back-off (tests pass a seeded one). */
  readonly random?: () => number;
}

/** Envoy's header edits in its order: remove, then set (replace), then add (append). */
export function applyHeaderModifier(headers: HeaderMap, modifier: HeaderModifier | undefined): void {
  if (!modifier) return;
  for (const name of modifier.remove) headers.remove(name);
  for (const [name, value] of modifier.set) headers.set(name, value);
  for (const [name, value] of modifier.add) headers.add(name, value);
}

function splitPath(fullPath: string): { path: string; rest: string } {
  const path = pathOnly(fullPath);
  return { path, rest: fullPath.slice(path.length) };
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * The path EG's rewrite produces. ReplaceFullPath is `regex_rewrite ^/.*$` (path only, the query stays).
 * ReplacePrefixMatch is `prefix_rewrite` with the replacement's trailing `/` trimmed, or, for a `/` replacement,
 * `regex_rewrite ^<prefix>\/*` -> `/` (the envoy#26055 workaround).
 */
export function rewritePath(fullPath: string, rewrite: NonNullable<UrlRewrite['path']>): string {
  const { path, rest } = splitPath(fullPath);
  if (rewrite.type === 'ReplaceFullPath') return fullMatch('/.*', path) ? rewrite.value + rest : fullPath;
  if (rewrite.value === '' || rewrite.value === '/') {
    return path.replace(new RegExp(`^${escapeRegex(rewrite.prefix)}\\/*`), '/') + rest;
  }
  const replacement = rewrite.value.replace(/\/+$/, '');
  return path.startsWith(rewrite.prefix) ? replacement + path.slice(rewrite.prefix.length) + rest : fullPath;
}

function defaultPort(scheme: string): number {
  return scheme === 'https' ? 443 : 80;
}

/** Envoy's redirect Location: scheme, host and port replaced as configured, the path rewritten, the query kept. */
export function redirectLocation(redirect: Redirect, headers: HeaderMap): string {
  const scheme = redirect.scheme ?? headers.get(':scheme') ?? 'http';
  const authority = headers.get(':authority') ?? '';
  const host = redirect.hostname ?? hostWithoutPort(authority);
  const originalPort = /:(\d+)$/.exec(authority)?.[1];
  const port = redirect.port ?? (originalPort ? Number(originalPort) : undefined);
  const fullPath = headers.get(':path') ?? '/';
  const path = redirect.path ? rewritePath(fullPath, redirect.path) : fullPath;
  const portPart = port === undefined || port === defaultPort(scheme) ? '' : `:${port}`;
  return `${scheme}://${host}${portPart}${path}`;
}

/** A weighted random choice; weight 0 is never chosen (EG drops those refs). */
export function chooseDestination(destinations: readonly Destination[], random: () => number): Destination | undefined {
  const candidates = destinations.filter((d) => d.weight > 0);
  const total = candidates.reduce((sum, d) => sum + d.weight, 0);
  if (total === 0) return undefined;
  let point = random() * total;
  for (const destination of candidates) {
    point -= destination.weight;
    if (point < 0) return destination;
  }
  return candidates[candidates.length - 1];
}

function retriableStatus(retry: RetryPolicy, status: number): boolean {
  const on = new Set(retry.retryOn);
  if (on.has('5xx') && status >= 500) return true;
  if (on.has('gateway-error') && status >= 502 && status <= 504) return true;
  if (on.has('retriable-4xx') && status === 409) return true;
  return on.has('retriable-status-codes') && retry.retriableStatusCodes.includes(status);
}

function retriableFailure(retry: RetryPolicy, failure: UpstreamError['failure'] | 'timeout'): boolean {
  const on = new Set(retry.retryOn);
  if (failure === 'aborted' || failure === 'unresolvable') return false;
  if (on.has('5xx') || on.has('gateway-error') || on.has('reset')) return true;
  return failure === 'connect-failure' && on.has('connect-failure');
}

/** The local reply Envoy sends for an upstream failure before any response header arrived. */
function failureReply(failure: UpstreamError['failure'] | 'timeout'): LocalReply {
  switch (failure) {
    case 'timeout':
      return { status: 504, body: 'upstream request timeout', details: 'response_timeout', flag: 'UT' };
    case 'unresolvable':
      return { status: 503, body: 'no healthy upstream', details: 'no_healthy_upstream', flag: 'UH' };
    case 'connect-failure':
      return {
        status: 503,
        body: 'upstream connect error or disconnect/reset before headers. reset reason: remote connection failure',
        details: 'upstream_reset_before_response_started{remote_connection_failure}',
        flag: 'UF',
      };
    default:
      return {
        status: 503,
        body: 'upstream connect error or disconnect/reset before headers. reset reason: connection termination',
        details: 'upstream_reset_before_response_started{connection_termination}',
        flag: 'UC',
      };
  }
}

async function drain(body: AsyncIterable<Buffer>): Promise<void> {
  try {
    for await (const chunk of body) void chunk;
  } catch {
    // A retried attempt's body is discarded; its errors do not matter.
  }
}

/** A response generated by the router itself (direct response, redirect), with the route's response headers applied. */
function generatedResponse(
  status: number,
  body: Buffer,
  route: RouteModel,
  extra: ReadonlyArray<readonly [string, string]> = [],
): TerminalResult {
  const headers = new HeaderMap([[':status', String(status)], ...extra]);
  if (body.length > 0) headers.set('content-type', 'text/plain');
  headers.set('content-length', String(body.length));
  applyHeaderModifier(headers, route.responseHeaders);
  async function* bodyOf() {
    if (body.length > 0) yield body;
  }
  return { kind: 'response', headers, body: bodyOf(), headersOnly: body.length === 0 };
}

/** Whether an upstream response carries no body, which Envoy's codec reports as end_stream on the headers. */
function hasNoBody(method: string, status: number, headers: HeaderMap): boolean {
  return (
    method === 'HEAD' ||
    status === 204 ||
    status === 304 ||
    (status >= 100 && status < 200) ||
    headers.get('content-length') === '0'
  );
}

/**
 * `body` as the stream reads it, with `finish` called exactly once when the stream is done with it: at its end
 * (`complete`), on its error, or when the reader stops early through `return()`, even before the first chunk (a local
 * reply from an encoder's `encodeHeaders`), where a generator's `finally` would never run.
 */
export function finishingBody(
  body: AsyncIterable<Buffer>,
  finish: (complete: boolean) => void,
): AsyncIterableIterator<Buffer> {
  const inner = body[Symbol.asyncIterator]();
  let finished = false;
  const end = (complete: boolean) => {
    if (finished) return;
    finished = true;
    finish(complete);
  };
  return {
    async next(): Promise<IteratorResult<Buffer>> {
      if (finished) return { done: true, value: undefined };
      try {
        const step = await inner.next();
        if (step.done) end(true);
        return step;
      } catch (error) {
        end(false);
        throw error;
      }
    },
    async return(): Promise<IteratorResult<Buffer>> {
      if (!finished) {
        end(false);
        try {
          await inner.return?.();
        } catch {
          // The upstream body is abandoned; how it ends does not matter.
        }
      }
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

export function createRouterFilter(options: RouterOptions): TerminalFilter {
  const random = options.random ?? Math.random;
  // Requests in flight per cluster, counted by this data plane as one proxy replica counts them. Only
  // `max_requests` is modelled: the local upstream has no connection pool whose connections or queue could fill.
  const slots = new ClusterSlots();
  /** Takes a slot of the route rule's cluster; returns its release (idempotent), or undefined on overflow. */
  function acquire(route: RouteModel): (() => void) | undefined {
    const cluster = `httproute/${route.route.namespace}/${route.route.name}/rule/${route.ruleIndex}`;
    return slots.acquire(cluster, route.maxParallelRequests ?? EG_DEFAULT_CIRCUIT_BREAKER_LIMIT);
  }

  async function forward(
    stream: StreamContext,
    route: RouteModel,
    destinations: readonly Destination[],
  ): Promise<TerminalResult> {
    const destination = chooseDestination(destinations, random);
    if (!destination?.backend) {
      return { kind: 'localReply', reply: { status: 500, details: 'cluster_not_found', flag: 'NC' } };
    }
    const backend = destination.backend;
    const headers = stream.requestHeaders.clone();
    if (route.urlRewrite?.path) headers.set(':path', rewritePath(headers.get(':path') ?? '/', route.urlRewrite.path));
    if (route.urlRewrite?.hostname) headers.set(':authority', route.urlRewrite.hostname);
    // Envoy applies the weighted cluster's header edits before the route's.
    applyHeaderModifier(headers, destination.requestHeaders);
    applyHeaderModifier(headers, route.requestHeaders);

    const retry = route.retry;
    const attempts = 1 + (retry?.numRetries ?? 0);
    const timeoutMs = route.timeoutMs ?? DEFAULT_ROUTE_TIMEOUT_MS;
    const overall = new AbortController();
    const onClientAbort = () => overall.abort();
    stream.signal.addEventListener('abort', onClientAbort, { once: true });
    let timedOut = false;
    const timer = timeoutMs > 0 ? setTimeout(() => ((timedOut = true), overall.abort()), timeoutMs) : undefined;
    // A timer guards a stream; it must not keep a process alive whose streams were abandoned (a body never read).
    timer?.unref();
    const cleanup = () => {
      if (timer) clearTimeout(timer);
      stream.signal.removeEventListener('abort', onClientAbort);
    };

    let lastFailure: UpstreamError['failure'] | 'timeout' = 'reset';
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        const base = retry?.backOffBaseMs ?? DEFAULT_BACKOFF_BASE_MS;
        const max = retry?.backOffMaxMs ?? base * 10;
        await sleep(Math.min(max, random() * (2 ** attempt - 1) * base), overall.signal);
      }
      if (overall.signal.aborted) break;
      // Envoy checks the breaker when the attempt asks its pool for a stream, and retries no overflow.
      const slot = acquire(route);
      if (!slot) {
        cleanup();
        return { kind: 'localReply', reply: OVERFLOW_REPLY };
      }
      const release: () => void = slot;
      const perTry = new AbortController();
      const onOverall = () => perTry.abort();
      overall.signal.addEventListener('abort', onOverall, { once: true });
      let perTryExpired = false;
      const perTryTimer = retry?.perTryTimeoutMs
        ? setTimeout(() => ((perTryExpired = true), perTry.abort()), retry.perTryTimeoutMs)
        : undefined;
      perTryTimer?.unref();
      let response: UpstreamResponse;
      try {
        response = await options.upstream({
          target: backend,
          method: headers.get(':method') ?? 'GET',
          path: headers.get(':path') ?? '/',
          headers,
          body: stream.requestBody,
          signal: perTry.signal,
        });
      } catch (error) {
        release();
        if (perTryTimer) clearTimeout(perTryTimer);
        overall.signal.removeEventListener('abort', onOverall);
        if (timedOut) break;
        if (stream.signal.aborted) {
          cleanup();
          return { kind: 'localReply', reply: { status: 499, details: 'downstream_remote_disconnect', flag: 'DC' } };
        }
        lastFailure = perTryExpired ? 'timeout' : error instanceof UpstreamError ? error.failure : 'reset';
        if (retry && attempt + 1 < attempts && retriableFailure(retry, lastFailure)) continue;
        cleanup();
        return { kind: 'localReply', reply: failureReply(lastFailure) };
      }
      if (retry && attempt + 1 < attempts && retriableStatus(retry, response.status)) {
        release();
        if (perTryTimer) clearTimeout(perTryTimer);
        overall.signal.removeEventListener('abort', onOverall);
        perTry.abort();
        void drain(response.body);
        continue;
      }
      const out = new HeaderMap([[':status', String(response.status)], ...response.headers.list()]);
      applyHeaderModifier(out, destination.responseHeaders);
      applyHeaderModifier(out, route.responseHeaders);
      // The route timeout (and per-try timeout) keep running until the response body is complete; the cluster's
      // slot is held until then, or until the stream stops reading it (an encoder's local reply, the client gone).
      const body = finishingBody(response.body, (complete) => {
        release();
        if (perTryTimer) clearTimeout(perTryTimer);
        overall.signal.removeEventListener('abort', onOverall);
        // Not read to its end: Envoy resets the upstream request.
        if (!complete) perTry.abort();
        cleanup();
      });
      const headersOnly = hasNoBody(headers.get(':method') ?? 'GET', response.status, response.headers);
      if (headersOnly) {
        // The body is empty; finish it so the timers are cleared and the connection is released.
        for await (const chunk of body) void chunk;
        return { kind: 'response', headers: out, body: (async function* () {})(), headersOnly };
      }
      return { kind: 'response', headers: out, body, ...(response.trailers ? { trailers: response.trailers } : {}) };
    }
    cleanup();
    if (timedOut) return { kind: 'localReply', reply: failureReply('timeout') };
    return { kind: 'localReply', reply: failureReply(lastFailure) };
  }

  return {
    name: 'envoy.filters.http.router',
    async serve(stream: StreamContext): Promise<TerminalResult> {
      const route = stream.route() as RouteModel | undefined;
      if (!route) return { kind: 'localReply', reply: { status: 404, details: 'route_not_found', flag: 'NR' } };
      const action = route.action;
      switch (action.type) {
        case 'directResponse':
          return generatedResponse(
            action.status,
            action.body === undefined ? Buffer.alloc(0) : Buffer.from(action.body),
            route,
          );
        case 'redirect':
          return generatedResponse(action.redirect.statusCode, Buffer.alloc(0), route, [
            ['location', redirectLocation(action.redirect, stream.requestHeaders)],
          ]);
        case 'forward':
          return forward(stream, route, action.destinations);
      }
    },
  };
}
