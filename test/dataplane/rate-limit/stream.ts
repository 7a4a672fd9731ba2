/** A minimal StreamContext for driving one filter in tests (the route is whatever the test says it is). */
import { HeaderMap, type StreamContext } from '../../../lib/dataplane/filter';

export interface TestStream extends StreamContext {
  setRoute(route: unknown): void;
  readonly routeCacheClears: number;
}

export function testStream(
  options: { headers?: [string, string][]; route?: unknown; address?: string } = {},
): TestStream {
  let route = options.route;
  let clears = 0;
  let body: Buffer = Buffer.alloc(0);
  const controller = new AbortController();
  const headers = new HeaderMap([
    [':method', 'GET'],
    [':scheme', 'http'],
    [':authority', 'gw.example'],
    [':path', '/'],
  ]);
  for (const [name, value] of options.headers ?? []) {
    if (name.startsWith(':')) headers.set(name, value);
    else headers.add(name, value);
  }
  return {
    requestHeaders: headers,
    get requestBody() {
      return body;
    },
    setRequestBody(next: Buffer) {
      body = next;
    },
    route: () => route,
    clearRouteCache() {
      clears++;
    },
    dynamicMetadata: new Map(),
    responseFlags: new Set(),
    downstreamAddress: options.address ?? '127.0.0.1',
    signal: controller.signal,
    setRoute(next: unknown) {
      route = next;
    },
    get routeCacheClears() {
      return clears;
    },
  };
}
