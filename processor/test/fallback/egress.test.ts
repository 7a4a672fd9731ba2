import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AttemptFailure, HttpEgress, type AttemptRequest } from '../../src/fallback';

const ENDPOINT = { hostname: 'api.provider.test', port: 443, tls: true };

function attempt(overrides: Partial<AttemptRequest> = {}): AttemptRequest {
  return {
    backend: 'primary',
    method: 'POST',
    path: '/v1/chat/completions?x=1',
    headers: { host: 'api.provider.test', 'content-type': 'application/json', authorization: 'Bearer k' },
    body: Buffer.from('{"model":"m"}'),
    ...overrides,
  };
}

async function collect(body: AsyncIterable<Buffer>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(chunk);
  return Buffer.concat(parts).toString();
}

describe('HttpEgress', () => {
  let server: http.Server;
  let url: URL;
  let handler: (request: http.IncomingMessage, body: string, response: http.ServerResponse) => void;
  let egress: HttpEgress;

  beforeAll(async () => {
    server = http.createServer((request, response) => {
      const parts: Buffer[] = [];
      request.on('data', (chunk: Buffer) => parts.push(chunk));
      request.on('end', () => handler(request, Buffer.concat(parts).toString(), response));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    egress = new HttpEgress({ devUpstreams: new Map([['primary', url]]) });
  });

  afterAll(async () => {
    egress.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends the request as built, with its host and length, and streams the answer back', async () => {
    let seen: { method?: string; url?: string; headers?: http.IncomingHttpHeaders; body?: string } = {};
    handler = (request, body, response) => {
      seen = { method: request.method, url: request.url, headers: request.headers, body };
      response.writeHead(200, {
        'content-type': 'text/event-stream',
        'set-cookie': 'a=b',
        'x-ratelimit-remaining': '9',
      });
      response.write('data: one\n\n');
      setTimeout(() => response.end('data: two\n\n'), 20);
    };
    const answer = await egress.send(attempt(), ENDPOINT, 5000, new AbortController().signal);
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('text/event-stream');
    expect(answer.headers['x-ratelimit-remaining']).toBe('9');
    expect(answer.headers['set-cookie']).toBeUndefined();
    expect(answer.headers.connection).toBeUndefined();
    expect(await collect(answer.body)).toBe('data: one\n\ndata: two\n\n');
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/v1/chat/completions?x=1');
    expect(seen.headers?.host).toBe('api.provider.test');
    expect(seen.headers?.authorization).toBe('Bearer k');
    expect(seen.headers?.['content-length']).toBe('13');
    expect(seen.body).toBe('{"model":"m"}');
  });

  it('reports a backend it cannot reach as a connection failure, naming the backend only', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const refusing = new HttpEgress({ devUpstreams: new Map([['primary', new URL(`http://127.0.0.1:${port}`)]]) });
    const failure = await refusing.send(attempt(), ENDPOINT, 5000, new AbortController().signal).catch((e) => e);
    refusing.close();
    expect(failure).toBeInstanceOf(AttemptFailure);
    expect((failure as AttemptFailure).kind).toBe('connection_failure');
    expect((failure as AttemptFailure).message).toBe('backend "primary" could not be reached (ECONNREFUSED)');
  });

  it('gives up on an answer that does not start in time', async () => {
    handler = (_request, _body, response) => setTimeout(() => response.end('late'), 2000).unref();
    const failure = await egress.send(attempt(), ENDPOINT, 100, new AbortController().signal).catch((e) => e);
    expect(failure).toBeInstanceOf(AttemptFailure);
    expect((failure as AttemptFailure).kind).toBe('timeout');
    expect((failure as AttemptFailure).message).toBe('backend "primary" did not answer within 100 ms');
  });

  it('bounds the whole attempt: a body still coming at the deadline ends with a timeout', async () => {
    handler = (_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: one\n\n');
      setTimeout(() => response.end('data: late\n\n'), 2000).unref();
    };
    const answer = await egress.send(attempt(), ENDPOINT, 150, new AbortController().signal);
    const failure = await collect(answer.body).catch((e) => e);
    expect(failure).toBeInstanceOf(AttemptFailure);
    expect((failure as AttemptFailure).kind).toBe('timeout');
  });

  it('reports a body cut short as a connection failure', async () => {
    handler = (_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      response.write('{"partial":');
      setTimeout(() => response.socket?.destroy(), 20);
    };
    const answer = await egress.send(attempt(), ENDPOINT, 5000, new AbortController().signal);
    const failure = await collect(answer.body).catch((e) => e);
    expect(failure).toBeInstanceOf(AttemptFailure);
    expect((failure as AttemptFailure).kind).toBe('connection_failure');
  });

  it('refuses a request Node cannot send (a control character in a header) as a connection failure', async () => {
    const bad = attempt({ headers: { host: 'api.provider.test', authorization: 'Bearer k\n\nx' } });
    const controller = new AbortController();
    const failure = await egress.send(bad, ENDPOINT, 100, controller.signal).catch((e) => e);
    expect(failure).toBeInstanceOf(AttemptFailure);
    expect((failure as AttemptFailure).kind).toBe('connection_failure');
    expect((failure as AttemptFailure).message).toMatch(/^backend "primary" could not be sent the request \(/);
    expect((failure as AttemptFailure).message).not.toContain('Bearer');
    // Nothing is armed for it: aborting and the deadline passing change nothing.
    controller.abort();
    await new Promise((resolve) => setTimeout(resolve, 150));
  });

  it('releases the connection of an answer left unread at once', async () => {
    let closed!: () => void;
    const connectionClosed = new Promise<void>((resolve) => (closed = resolve));
    handler = (_request, _body, response) => {
      response.on('close', () => closed());
      response.writeHead(503, { 'content-type': 'application/json' });
      response.write('{"error":');
    };
    const answer = await egress.send(attempt(), ENDPOINT, 60_000, new AbortController().signal);
    expect(answer.status).toBe(503);
    const started = Date.now();
    await answer.body[Symbol.asyncIterator]().return?.();
    await connectionClosed;
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('stops at once when the request is aborted (the client went away)', async () => {
    let arrived!: () => void;
    const arrival = new Promise<void>((resolve) => (arrived = resolve));
    handler = () => arrived();
    const controller = new AbortController();
    const sent = egress.send(attempt(), ENDPOINT, 5000, controller.signal).catch((e) => e);
    await arrival;
    controller.abort();
    const error = (await sent) as Error;
    expect(error).not.toBeInstanceOf(AttemptFailure);
    expect(error.name).toBe('AbortError');
  });
});
