import { HeaderMap, type StreamContext } from '../../../lib/dataplane/filter';
import type { TerminalResult } from '../../../lib/dataplane/filter-manager';
import type { Destination, RouteModel } from '../../../lib/dataplane/model';
import { chooseDestination, createRouterFilter, redirectLocation, rewritePath } from '../../../lib/dataplane/router';
import { UpstreamError, type Upstream } from '../../../lib/dataplane/upstream';

const backend = (name: string) => ({ kind: 'Service' as const, namespace: 'ns', name, port: 80, endpoints: [] });

function route(extra: Partial<RouteModel>): RouteModel {
  return {
    name: 'r',
    hostname: '*',
    route: { namespace: 'ns', name: 'r' },
    ruleIndex: 0,
    matchIndex: 0,
    path: { type: 'PathPrefix', value: '/' },
    headers: [],
    queryParams: [],
    action: { type: 'forward', destinations: [{ name: 'd', weight: 1, backend: backend('svc') }] },
    extProcs: [],
    rateLimitRules: [],
    ...extra,
  };
}

function stream(r: RouteModel | undefined, path = '/a/b?q=1'): StreamContext {
  return {
    requestHeaders: new HeaderMap([
      [':method', 'GET'],
      [':path', path],
      [':authority', 'host.example:8080'],
      [':scheme', 'http'],
    ]),
    requestBody: Buffer.alloc(0),
    setRequestBody: () => undefined,
    route: () => r,
    clearRouteCache: () => undefined,
    dynamicMetadata: new Map(),
    responseFlags: new Set(),
    downstreamAddress: '127.0.0.1',
    signal: new AbortController().signal,
  };
}

async function* body(...parts: string[]) {
  for (const p of parts) yield Buffer.from(p);
}

async function collect(result: TerminalResult): Promise<string> {
  if (result.kind !== 'response') return `local ${result.reply.status} ${result.reply.flag ?? ''}`.trim();
  let out = '';
  for await (const chunk of result.body) out += chunk.toString();
  return `${result.headers.get(':status')} ${out}`;
}

describe('router helpers', () => {
  it('rewrites paths as EG emits them', () => {
    expect(rewritePath('/prefix/one/two?x=1', { type: 'ReplacePrefixMatch', prefix: '/prefix', value: '/one/' })).toBe(
      '/one/one/two?x=1',
    );
    expect(rewritePath('/strip/three', { type: 'ReplacePrefixMatch', prefix: '/strip', value: '/' })).toBe('/three');
    expect(rewritePath('/strip', { type: 'ReplacePrefixMatch', prefix: '/strip', value: '/' })).toBe('/');
    expect(rewritePath('/full/one?x=1', { type: 'ReplaceFullPath', value: '/one' })).toBe('/one?x=1');
  });

  it('builds redirect locations: default ports dropped, query kept', () => {
    const headers = new HeaderMap([
      [':path', '/old/x?y=1'],
      [':authority', 'a.example:8080'],
      [':scheme', 'http'],
    ]);
    expect(
      redirectLocation(
        { statusCode: 302, port: 80, path: { type: 'ReplacePrefixMatch', prefix: '/old', value: '/new' } },
        headers,
      ),
    ).toBe('http://a.example/new/x?y=1');
    expect(redirectLocation({ statusCode: 301, scheme: 'https', hostname: 'b.example', port: 8443 }, headers)).toBe(
      'https://b.example:8443/old/x?y=1',
    );
  });

  it('chooses by weight and never a weight-0 destination', () => {
    const destinations: Destination[] = [
      { name: 'a', weight: 3, backend: backend('a') },
      { name: 'b', weight: 0, backend: backend('b') },
      { name: 'c', weight: 1, backend: backend('c') },
    ];
    expect(chooseDestination(destinations, () => 0)?.name).toBe('a');
    expect(chooseDestination(destinations, () => 0.74)?.name).toBe('a');
    expect(chooseDestination(destinations, () => 0.76)?.name).toBe('c');
    expect(chooseDestination(destinations, () => 0.9999)?.name).toBe('c');
    expect(chooseDestination([{ name: 'z', weight: 0 }], () => 0.5)).toBeUndefined();
  });
});

describe('router filter', () => {
  it('answers 404 NR without a route, and 500 for an invalid destination', async () => {
    const router = createRouterFilter({
      upstream: async () => ({ status: 200, headers: new HeaderMap(), body: body() }),
    });
    expect(await collect(await router.serve(stream(undefined)))).toBe('local 404 NR');
    const invalid = route({
      action: { type: 'forward', destinations: [{ name: 'd', weight: 1, invalidReason: 'BackendNotFound' }] },
    });
    expect(await collect(await router.serve(stream(invalid)))).toBe('local 500 NC');
  });

  it('answers redirects and empty upstream responses as headers-only (no body reaches the encoders)', async () => {
    const redirect = route({
      action: { type: 'redirect', redirect: { statusCode: 302, hostname: 'b.example', port: 80 } },
    });
    const router = createRouterFilter({
      upstream: async () => ({ status: 204, headers: new HeaderMap(), body: body() }),
    });
    const result = await router.serve(stream(redirect));
    expect(
      result.kind === 'response' && [result.headers.get(':status'), result.headers.get('location'), result.headersOnly],
    ).toEqual(['302', 'http://b.example/a/b?q=1', true]);
    const empty = await router.serve(stream(route({})));
    expect(empty.kind === 'response' && empty.headersOnly).toBe(true);
  });

  it('applies backend-level then route-level header edits to the upstream request and the response', async () => {
    let seen: HeaderMap | undefined;
    const upstream: Upstream = async (req) => {
      seen = req.headers;
      return { status: 200, headers: new HeaderMap([['x-up', 'u']]), body: body('ok') };
    };
    const r = route({
      requestHeaders: { set: [['x-route', 'r']], add: [['x-both', 'route']], remove: [] },
      responseHeaders: { set: [], add: [['x-up', 'route']], remove: [] },
      urlRewrite: { hostname: 'rewritten.example', path: { type: 'ReplaceFullPath', value: '/new' } },
      action: {
        type: 'forward',
        destinations: [
          {
            name: 'd',
            weight: 1,
            backend: backend('svc'),
            requestHeaders: { set: [['x-both', 'backend']], add: [], remove: [] },
            responseHeaders: { set: [['x-up', 'backend']], add: [], remove: [] },
          },
        ],
      },
    });
    const result = await createRouterFilter({ upstream }).serve(stream(r));
    expect(seen?.get(':authority')).toBe('rewritten.example');
    expect(seen?.get(':path')).toBe('/new?q=1');
    expect(seen?.getAll('x-both')).toEqual(['backend', 'route']);
    expect(result.kind === 'response' && result.headers.getAll('x-up')).toEqual(['backend', 'route']);
  });

  it('retries resets and per-try timeouts per retry_on, then answers with the last failure', async () => {
    let calls = 0;
    const failing: Upstream = async (req) => {
      calls++;
      if (calls === 1) throw new UpstreamError('reset', 'reset');
      return new Promise((_, reject) =>
        req.signal.addEventListener('abort', () => reject(new UpstreamError('aborted', 'x'))),
      );
    };
    const r = route({
      retry: { numRetries: 2, retryOn: ['reset'], retriableStatusCodes: [], perTryTimeoutMs: 50, backOffBaseMs: 1 },
    });
    expect(await collect(await createRouterFilter({ upstream: failing }).serve(stream(r)))).toBe('local 504 UT');
    expect(calls).toBe(3);

    calls = 0;
    const noRetryOnReset = route({
      retry: { numRetries: 2, retryOn: ['retriable-status-codes'], retriableStatusCodes: [503] },
    });
    expect(await collect(await createRouterFilter({ upstream: failing }).serve(stream(noRetryOnReset)))).toBe(
      'local 503 UC',
    );
    expect(calls).toBe(1);
  });

  it("refuses a request over its rule cluster's maxParallelRequests with 503 UO, until a slot is free", async () => {
    const holds: (() => void)[] = [];
    let calls = 0;
    const held: Upstream = async () => {
      calls++;
      const done = new Promise<void>((resolve) => holds.push(resolve));
      return {
        status: 200,
        headers: new HeaderMap(),
        body: (async function* () {
          await done;
          yield Buffer.from('ok');
        })(),
      };
    };
    const router = createRouterFilter({ upstream: held });
    const limited = route({ maxParallelRequests: 2 });
    const first = await router.serve(stream(limited));
    const second = await router.serve(stream(limited));
    // Another rule of the same HTTPRoute is another cluster, with slots of its own.
    const otherRule = await router.serve(stream(route({ maxParallelRequests: 2, ruleIndex: 1 })));
    // Not retried: Envoy retries no overflow.
    const over = await router.serve(
      stream({ ...limited, retry: { numRetries: 2, retryOn: ['reset'], retriableStatusCodes: [503] } }),
    );
    expect(over).toMatchObject({
      kind: 'localReply',
      reply: { status: 503, flag: 'UO', details: 'upstream_reset_before_response_started{overflow}' },
    });
    expect(calls).toBe(3);
    holds.forEach((release) => release());
    expect(await Promise.all([first, second, otherRule].map(collect))).toEqual(['200 ok', '200 ok', '200 ok']);
    // The finished responses gave their slots back.
    const result = await router.serve(stream(limited));
    holds.forEach((release) => release());
    expect(await collect(result)).toBe('200 ok');
  });

  it('gives the slot back and resets the upstream when the body is closed before its first chunk', async () => {
    const signals: AbortSignal[] = [];
    const upstream: Upstream = async (req) => {
      signals.push(req.signal);
      return { status: 200, headers: new HeaderMap(), body: body('never', 'read') };
    };
    const router = createRouterFilter({ upstream });
    const limited = route({ maxParallelRequests: 1 });
    for (let i = 0; i < 3; i++) {
      const result = await router.serve(stream(limited));
      if (result.kind !== 'response') throw new Error(`expected a response, got ${result.reply.status}`);
      // What the filter manager does when an encoder answers locally on the response headers.
      const iterator = result.body[Symbol.asyncIterator]();
      await iterator.return?.();
      await iterator.return?.();
      expect(await iterator.next()).toEqual({ done: true, value: undefined });
    }
    expect(signals.map((signal) => signal.aborted)).toEqual([true, true, true]);
    expect(await collect(await router.serve(stream(limited)))).toBe('200 neverread');
    // Read to its end, the upstream request is not reset.
    expect(signals[3].aborted).toBe(false);
  });

  it('aborts the response body when the route timeout fires after the headers', async () => {
    const slowBody: Upstream = async (req) => ({
      status: 200,
      headers: new HeaderMap(),
      body: (async function* () {
        yield Buffer.from('first');
        await new Promise((_, reject) =>
          req.signal.addEventListener('abort', () => reject(new UpstreamError('aborted', 'timeout'))),
        );
      })(),
    });
    const result = await createRouterFilter({ upstream: slowBody }).serve(stream(route({ timeoutMs: 50 })));
    await expect(collect(result)).rejects.toThrow('timeout');
  });
});
