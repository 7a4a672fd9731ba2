import { HeaderMap, type HttpFilter, type StreamContext } from '../../../lib/dataplane/filter';
import {
  runStream,
  type AccessLogEntry,
  type ResponseSink,
  type StreamConfig,
  type TerminalFilter,
} from '../../../lib/dataplane/filter-manager';
import { finishingBody } from '../../../lib/dataplane/router';

interface Route {
  name: string;
  withFilter: boolean;
}

function recordingSink() {
  const out = { status: 0, headers: [] as [string, string][], body: Buffer.alloc(0), ended: false, aborted: false };
  const sink: ResponseSink = {
    writeHead(status, headers) {
      out.status = status;
      out.headers = headers.map(([n, v]) => [n, v]);
    },
    write(chunk) {
      out.body = Buffer.concat([out.body, chunk]);
    },
    end() {
      out.ended = true;
    },
    abort() {
      out.aborted = true;
    },
  };
  return { out, sink };
}

async function* chunks(...parts: string[]): AsyncIterable<Buffer> {
  for (const p of parts) yield Buffer.from(p);
}

const routes: Record<string, Route> = {
  '/first': { name: 'first', withFilter: true },
  '/second': { name: 'second', withFilter: false },
};

function setup(filterFactory: (log: string[]) => HttpFilter, overrides: Partial<StreamConfig<Route>> = {}) {
  const log: string[] = [];
  let created = 0;
  const router: TerminalFilter = {
    name: 'router',
    async serve(stream: StreamContext) {
      const route = stream.route() as Route | undefined;
      log.push(`router:${route?.name ?? 'none'}:${stream.requestHeaders.get(':path')}`);
      if (!route) return { kind: 'localReply', reply: { status: 404, details: 'route_not_found', flag: 'NR' } };
      return {
        kind: 'response',
        headers: new HeaderMap([
          [':status', '200'],
          ['x-up', '1'],
        ]),
        body: chunks('he', 'llo'),
      };
    },
    onStreamComplete: () => void log.push('router:complete'),
  };
  const config: StreamConfig<Route> = {
    earlyRemoveHeaders: ['x-internal'],
    matchRoute: (headers) =>
      headers.has('x-internal') ? { name: 'spoofed', withFilter: false } : routes[headers.get(':path') ?? ''],
    createFilters: (route) => {
      created++;
      return route?.withFilter ? [filterFactory(log)] : [];
    },
    router,
    requestBodyLimit: () => 8,
    maxRequestBodyBytes: 1024,
    ...overrides,
  };
  return { log, config, created: () => created };
}

function request(path: string, body: string[] = [], extra: [string, string][] = []) {
  return {
    headers: new HeaderMap([[':method', 'POST'], [':path', path], [':authority', 'h'], ...extra]),
    body: chunks(...body),
    downstreamAddress: '127.0.0.1',
    signal: new AbortController().signal,
  };
}

describe('filter manager', () => {
  it(
    'lets an encoder add a body to a headers-only local reply: later encoders see headers without end of stream, ' +
      'then the body as the last frame (Envoy addEncodedData from encodeHeaders)',
    async () => {
      const { log, config } = setup(() => ({ name: 'unused' }));
      const recorder = (name: string): HttpFilter => ({
        name,
        encodeHeaders: (_stream, _headers, end) => {
          log.push(`${name}:encodeHeaders:${end}`);
          return { action: 'continue' };
        },
        encodeData: (_stream, chunk, end) => {
          log.push(`${name}:encodeData:${chunk.toString()}:${end}`);
          return chunk;
        },
      });
      const adder: HttpFilter = {
        ...recorder('adder'),
        encodeHeaders: (_stream, headers, end) => {
          log.push(`adder:encodeHeaders:${end}`);
          headers.set('content-type', 'application/json');
          headers.remove('content-length');
          return { action: 'continue', addedBody: Buffer.from('{"error":"budget"}') };
        },
      };
      const limiter: HttpFilter = {
        ...recorder('limiter'),
        decodeHeaders: () => ({
          action: 'localReply',
          reply: { status: 429, details: 'request_rate_limited', flag: 'RL' },
        }),
      };
      const { out, sink } = recordingSink();
      // Chain order: first, adder, limiter; encoders run the other way round.
      await runStream({ ...config, createFilters: () => [recorder('first'), adder, limiter] }, request('/first'), sink);
      expect(log).toEqual([
        'limiter:encodeHeaders:true',
        'adder:encodeHeaders:true',
        'first:encodeHeaders:false',
        'first:encodeData:{"error":"budget"}:true',
        'router:complete',
      ]);
      expect(out).toEqual({
        status: 429,
        headers: [['content-type', 'application/json']],
        body: Buffer.from('{"error":"budget"}'),
        ended: true,
        aborted: false,
      });
    },
  );

  it(
    'removes early headers before the first match, creates the chain once from the first route, ' +
      'and re-matches after clearRouteCache',
    async () => {
      const { log, config, created } = setup((log) => ({
        name: 'rewriter',
        decodeHeaders: (_stream, end) => {
          log.push(`decodeHeaders:${end}`);
          return { action: 'continue' };
        },
        decodeData: (stream) => {
          log.push(`decodeData:${stream.requestBody.toString()}`);
          stream.requestHeaders.set(':path', '/second');
          stream.clearRouteCache();
          return { action: 'continue' };
        },
        encodeHeaders: (stream, headers) => {
          headers.set('x-seen-by-filter', stream.route() ? (stream.route() as Route).name : 'none');
          return { action: 'continue' };
        },
        onStreamComplete: () => void log.push('filter:complete'),
      }));
      const { out, sink } = recordingSink();
      await runStream(config, request('/first', ['ab', 'c'], [['x-internal', 'spoof']]), sink);
      expect(created()).toBe(1);
      // The second route has no filter, but the chain built from the first route stays.
      expect(log).toEqual([
        'decodeHeaders:false',
        'decodeData:abc',
        'router:second:/second',
        'filter:complete',
        'router:complete',
      ]);
      expect(out).toEqual({
        status: 200,
        headers: [
          ['x-up', '1'],
          ['x-seen-by-filter', 'second'],
        ],
        body: Buffer.from('hello'),
        ended: true,
        aborted: false,
      });
    },
  );

  it(
    'logs one access entry per stream after completion: the client path, the route it ended on, ' +
      'status, flags and details',
    async () => {
      const entries: AccessLogEntry<Route>[] = [];
      const { log, config } = setup(
        () => ({
          name: 'rewriter',
          decodeData: (stream) => {
            stream.requestHeaders.set(':path', '/elsewhere');
            stream.clearRouteCache();
            stream.dynamicMetadata.set('ns', { tokens: 3 });
            return { action: 'continue' };
          },
        }),
        { accessLog: (entry) => entries.push(entry) },
      );
      await runStream(config, request('/first', ['{}']), recordingSink().sink);
      await runStream(config, request('/second'), recordingSink().sink);
      expect(log).toEqual(['router:none:/elsewhere', 'router:complete', 'router:second:/second', 'router:complete']);
      expect(
        entries.map(({ method, path, authority, status, responseFlags, responseCodeDetails, route }) => ({
          method,
          path,
          authority,
          status,
          responseFlags,
          responseCodeDetails,
          route,
        })),
      ).toEqual([
        // Re-matched after the rewrite: no route, the router's 404 NR; the path is the one the client sent.
        {
          method: 'POST',
          path: '/first',
          authority: 'h',
          status: 404,
          responseFlags: ['NR'],
          responseCodeDetails: 'route_not_found',
          route: undefined,
        },
        {
          method: 'POST',
          path: '/second',
          authority: 'h',
          status: 200,
          responseFlags: [],
          responseCodeDetails: 'via_upstream',
          route: { name: 'second', withFilter: false },
        },
      ]);
      expect(entries[0].dynamicMetadata.get('ns')).toEqual({ tokens: 3 });
      expect(entries[0].durationMs).toBeGreaterThanOrEqual(0);
    },
  );

  it(
    "makes the connection manager's edge edits before the filters: a new request id, " + 'x-forwarded-for and -proto',
    async () => {
      const seen: Record<string, string | undefined>[] = [];
      const { config } = setup(() => ({
        name: 'observer',
        decodeHeaders: (stream) => {
          const h = stream.requestHeaders;
          seen.push({
            id: h.get('x-request-id'),
            forwardedFor: h.getJoined('x-forwarded-for'),
            proto: h.get('x-forwarded-proto'),
          });
          return { action: 'continue' };
        },
      }));
      const sent = [
        ['x-request-id', 'chosen-by-client'],
        ['x-forwarded-for', '203.0.113.9'],
        ['x-forwarded-proto', 'https'],
        [':scheme', 'http'],
      ] as [string, string][];
      await runStream(config, request('/first', [], sent), recordingSink().sink);
      await runStream(config, request('/first', [], sent), recordingSink().sink);
      expect(seen.map(({ forwardedFor, proto }) => ({ forwardedFor, proto }))).toEqual([
        { forwardedFor: '203.0.113.9,127.0.0.1', proto: 'http' },
        { forwardedFor: '203.0.113.9,127.0.0.1', proto: 'http' },
      ]);
      expect(seen[0].id).toMatch(/^[0-9a-f-]{36}$/);
      expect(seen[1].id).not.toBe(seen[0].id);
    },
  );

  it('creates no route filter when the first match has none, and answers 404 through the encoder side', async () => {
    const { log, config } = setup(() => {
      throw new Error('must not be created');
    });
    const { out, sink } = recordingSink();
    await runStream(config, request('/nowhere'), sink);
    expect(log).toEqual(['router:none:/nowhere', 'router:complete']);
    expect(out.status).toBe(404);
    expect(out.body.length).toBe(0);
  });

  it('passes a decoder local reply through the encoder filters, and a filter may hold the body back', async () => {
    const held: Buffer[] = [];
    const { config } = setup(() => ({
      name: 'replier',
      decodeHeaders: () => ({ action: 'localReply', reply: { status: 401, body: 'no', details: 'denied' } }),
      encodeHeaders: (_s, headers) => {
        headers.set('x-encoded', 'yes');
        return { action: 'continue' };
      },
      encodeData: (_s, chunk, end) => {
        held.push(chunk);
        return end ? Buffer.concat([Buffer.from('['), ...held, Buffer.from(']')]) : Buffer.alloc(0);
      },
    }));
    const { out, sink } = recordingSink();
    await runStream(config, request('/first'), sink);
    expect(out.status).toBe(401);
    expect(out.headers).toEqual(
      expect.arrayContaining([
        ['x-encoded', 'yes'],
        ['content-type', 'text/plain'],
      ]),
    );
    expect(out.body.toString()).toBe('[no]');
  });

  it("answers 413 when the body exceeds the chain's buffer limit, before any filter decodes", async () => {
    const { log, config } = setup((log) => ({
      name: 'f',
      decodeHeaders: () => (log.push('decoded'), { action: 'continue' }),
    }));
    const { out, sink } = recordingSink();
    await runStream(config, request('/first', ['0123456789']), sink);
    expect(out.status).toBe(413);
    expect(log).not.toContain('decoded');
  });

  it('sends an encoder local reply directly while the head is not written', async () => {
    const { config } = setup(() => ({
      name: 'late',
      encodeData: (_s, _chunk, end) =>
        end ? { action: 'localReply', reply: { status: 500, body: 'bad answer', details: 'x' } } : Buffer.alloc(0),
    }));
    const { out, sink } = recordingSink();
    await runStream(config, request('/first'), sink);
    expect(out).toEqual(expect.objectContaining({ status: 500, body: Buffer.from('bad answer'), ended: true }));
  });

  describe("the router's response body is finished exactly once on every way out", () => {
    /** A router whose body tells how the stream finished with it (the real router gives back its slot there). */
    function finishing(onServe: () => void = () => undefined) {
      const finished: string[] = [];
      const router: TerminalFilter = {
        name: 'router',
        async serve() {
          onServe();
          return {
            kind: 'response',
            headers: new HeaderMap([[':status', '200']]),
            body: finishingBody(chunks('he', 'llo'), (complete) => finished.push(complete ? 'complete' : 'closed')),
          };
        },
      };
      return { finished, router };
    }

    it('read to its end', async () => {
      const { finished, router } = finishing();
      const { config } = setup(() => ({ name: 'none' }), { router });
      const { out, sink } = recordingSink();
      await runStream(config, request('/first'), sink);
      expect(out.body.toString()).toBe('hello');
      expect(finished).toEqual(['complete']);
    });

    it('never read: an encoder answers locally on the response headers', async () => {
      const { finished, router } = finishing();
      const { config } = setup(
        () => ({
          name: 'refuses',
          encodeHeaders: () => ({ action: 'localReply', reply: { status: 500, details: 'ext_proc_error' } }),
        }),
        { router },
      );
      const { out, sink } = recordingSink();
      await runStream(config, request('/first'), sink);
      expect(out.status).toBe(500);
      expect(finished).toEqual(['closed']);
    });

    it('never read: an encoder throws on the response headers', async () => {
      const { finished, router } = finishing();
      const { config } = setup(
        () => ({
          name: 'throws',
          encodeHeaders: () => {
            throw new Error('boom');
          },
        }),
        { router },
      );
      await expect(runStream(config, request('/first'), recordingSink().sink)).rejects.toThrow('boom');
      expect(finished).toEqual(['closed']);
    });

    it('never read: the client went away while the router waited for the upstream', async () => {
      const controller = new AbortController();
      const { finished, router } = finishing(() => controller.abort());
      const { config } = setup(() => ({ name: 'none' }), { router });
      const { out, sink } = recordingSink();
      await runStream(config, { ...request('/first'), signal: controller.signal }, sink);
      expect(out.status).toBe(0);
      expect(finished).toEqual(['closed']);
    });

    it('partly read: an encoder answers locally on a chunk', async () => {
      const { finished, router } = finishing();
      const { config } = setup(
        () => ({
          name: 'refuses-data',
          encodeData: () => ({ action: 'localReply', reply: { status: 500, details: 'ext_proc_error' } }),
        }),
        { router },
      );
      const { out, sink } = recordingSink();
      await runStream(config, request('/first'), sink);
      expect(out.status).toBe(500);
      expect(finished).toEqual(['closed']);
    });
  });

  describe('response code details (the `response.code_details` attribute)', () => {
    /** A filter that records the details it sees while decoding, on the response head and at the end. */
    function observer(seen: string[], decodeReply?: { status: number; details: string }): () => HttpFilter {
      const show = (details: string | undefined) => details ?? '(none)';
      return () => ({
        name: 'observer',
        decodeHeaders: (stream) => {
          seen.push(`decode:${show(stream.responseCodeDetails)}`);
          return decodeReply ? { action: 'localReply', reply: decodeReply } : { action: 'continue' };
        },
        encodeHeaders: (stream) => {
          seen.push(`encode:${show(stream.responseCodeDetails)}`);
          return { action: 'continue' };
        },
        onStreamComplete: (stream) => void seen.push(`complete:${show(stream.responseCodeDetails)}`),
      });
    }

    it('via_upstream for the upstream answer, set before the encoders see its headers', async () => {
      const seen: string[] = [];
      const { config } = setup(observer(seen));
      await runStream(config, request('/first'), recordingSink().sink);
      expect(seen).toEqual(['decode:(none)', 'encode:via_upstream', 'complete:via_upstream']);
    });

    it("the router's local reply details (no route after the re-match)", async () => {
      const seen: string[] = [];
      const { config } = setup(() => ({
        ...observer(seen)(),
        decodeData: (stream) => {
          stream.requestHeaders.set(':path', '/nowhere');
          stream.clearRouteCache();
          return { action: 'continue' };
        },
      }));
      const { out, sink } = recordingSink();
      await runStream(config, request('/first', ['{}']), sink);
      expect(out.status).toBe(404);
      expect(seen).toEqual(['decode:(none)', 'encode:route_not_found', 'complete:route_not_found']);
    });

    it("a decoder filter's local reply details (e.g. the rate-limit filter's 429)", async () => {
      const seen: string[] = [];
      const { config } = setup(observer(seen, { status: 429, details: 'request_rate_limited' }));
      const { out, sink } = recordingSink();
      await runStream(config, request('/first'), sink);
      expect(out.status).toBe(429);
      expect(seen).toEqual(['decode:(none)', 'encode:request_rate_limited', 'complete:request_rate_limited']);
    });

    it('an encoder local reply sent directly replaces them', async () => {
      let completed: string | undefined;
      const { config } = setup(() => ({
        name: 'late',
        encodeData: (_s, _chunk, end) =>
          end
            ? {
                action: 'localReply',
                reply: { status: 500, body: 'bad answer', details: 'ext_proc_error_gRPC_error_14' },
              }
            : Buffer.alloc(0),
        onStreamComplete: (stream) => void (completed = stream.responseCodeDetails),
      }));
      await runStream(config, request('/first'), recordingSink().sink);
      expect(completed).toBe('ext_proc_error_gRPC_error_14');
    });
  });
});
