/** A local HTTP server standing in for a provider: records requests, answers with a handler. */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface FakeProvider {
  port: number;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export type ProviderHandler = (request: RecordedRequest, res: http.ServerResponse) => void | Promise<void>;

export async function startFakeProvider(handler: ProviderHandler): Promise<FakeProvider> {
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const recorded = {
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      requests.push(recorded);
      void handler(recorded, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Writes an SSE body event by event, yielding to the event loop between events. */
export async function writeSseEvents(res: http.ServerResponse, body: string): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
  for (const block of body.split(/(?<=\n\n)/)) {
    res.write(block);
    await new Promise((resolve) => setImmediate(resolve));
  }
  res.end();
}
