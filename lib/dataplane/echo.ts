/**
 * Echo mode: every backend answers like the Gateway API conformance echo server, with JSON naming the backend
 * (`service`, `namespace`, `pod`) and the request it received. Like that server it honours a `delay=<duration>`
 * query parameter (sleeps before answering) and an `X-Echo-Set-Header: Name:value,Name2:value2` request header
 * (adds those headers to its response).
 */
import { HeaderMap } from './filter';
import { parseQuery } from './route-match';
import { sleep } from './sleep';
import { parseDurationMs } from './objects';
import { UpstreamError, type Upstream, type UpstreamRequest, type UpstreamResponse } from './upstream';

export interface EchoResponseBody {
  readonly path: string;
  readonly host: string;
  readonly method: string;
  readonly headers: Record<string, string[]>;
  readonly namespace: string;
  readonly service: string;
  readonly pod: string;
}

/** The longest `delay` the echo backend honours (a bound on what a request can make it wait). */
const MAX_DELAY_MS = 60_000;

/** Headers that carry credentials (the processor injects provider keys): echoed without their secret part. */
const CREDENTIAL_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'api-key',
  'x-goog-api-key',
  'x-amz-security-token',
]);

/** `Bearer <redacted>`: the scheme shows which credential was sent, never the secret. */
function redacted(name: string, value: string): string {
  const scheme = name.endsWith('authorization') ? (/^[A-Za-z0-9-]+ /.exec(value)?.[0] ?? '') : '';
  return `${scheme}<redacted>`;
}

export function echoBody(request: UpstreamRequest): EchoResponseBody {
  const headers: Record<string, string[]> = {};
  for (const [name, value] of request.headers.list()) {
    if (name.startsWith(':')) continue;
    (headers[name] ??= []).push(CREDENTIAL_HEADERS.has(name) ? redacted(name, value) : value);
  }
  return {
    path: request.path,
    host: request.headers.get(':authority') ?? '',
    method: request.method,
    headers,
    namespace: request.target.namespace,
    service: request.target.name,
    pod: `${request.target.name}-local`,
  };
}

async function* single(body: Buffer): AsyncIterable<Buffer> {
  yield body;
}

export function createEchoUpstream(): Upstream {
  return async (request: UpstreamRequest): Promise<UpstreamResponse> => {
    const delay = parseDurationMs(parseQuery(request.path).get('delay'));
    if (delay !== undefined && delay > 0 && !(await sleep(Math.min(delay, MAX_DELAY_MS), request.signal))) {
      throw new UpstreamError('aborted', 'the request was cancelled');
    }
    const body = Buffer.from(JSON.stringify(echoBody(request)));
    const headers = new HeaderMap([
      ['content-type', 'application/json'],
      ['content-length', String(body.length)],
    ]);
    for (const item of (request.headers.getJoined('x-echo-set-header') ?? '').split(',')) {
      const colon = item.indexOf(':');
      if (colon > 0) headers.add(item.slice(0, colon).trim().toLowerCase(), item.slice(colon + 1).trim());
    }
    return { status: 200, headers, body: single(body) };
  };
}
