/**
 * A small HTTP server that records every request it receives and answers through a handler. The records are
 * also served at `GET /__e2e/requests` (and cleared by `DELETE /__e2e/requests`), so a test can read what a
 * fake provider received whether the fake runs in the test process or in a cluster.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';

/** Requests larger than this are refused: fakes only ever see test-sized bodies. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Records kept per server (oldest dropped first). */
const MAX_RECORDS = 2_000;
export const CONTROL_PATH = '/__e2e/requests';

export interface RecordedRequest {
  method: string;
  /** Path and query as received. */
  path: string;
  /** Header names lower-case; repeated headers joined with ", " (Node's view). */
  headers: Record<string, string>;
  body: string;
  /** What the fake's own checks found wrong with the request (auth, path, body); empty when it was accepted. */
  rejected?: string;
  /** The TLS server name (SNI) the client asked for, when the fake serves HTTPS. */
  tlsServerName?: string;
}

/** A certificate (PEM) for a fake that serves HTTPS. */
export interface ServerTls {
  key: string;
  cert: string;
}

export type RequestHandler = (request: RecordedRequest, res: http.ServerResponse) => void | Promise<void>;

export interface RecordingServer {
  readonly url: string;
  readonly port: number;
  /** The records of this process's server (the control endpoint serves the same list). */
  readonly requests: RecordedRequest[];
  close(): Promise<void>;
}

function headerRecord(headers: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

export async function startRecordingServer(
  handler: RequestHandler,
  options: { port?: number; host?: string; tls?: ServerTls } = {},
): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.url === CONTROL_PATH) {
      if (req.method === 'DELETE') requests.length = 0;
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(req.method === 'DELETE' ? '[]' : JSON.stringify(requests));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        res
          .writeHead(413, { 'content-type': 'application/json' })
          .end('{"error":{"message":"fake provider: body too large"}}');
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      const servername = (req.socket as Partial<TLSSocket>).servername;
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: headerRecord(req.headers),
        body: Buffer.concat(chunks).toString('utf8'),
        ...(typeof servername === 'string' ? { tlsServerName: servername } : {}),
      };
      requests.push(recorded);
      if (requests.length > MAX_RECORDS) requests.shift();
      Promise.resolve(handler(recorded, res)).catch((error: unknown) => {
        recorded.rejected = `handler failed: ${(error as Error).message}`;
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: recorded.rejected } }));
      });
    });
  };
  const server = options.tls
    ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, listener)
    : http.createServer(listener);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${options.tls ? 'https' : 'http'}://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Reads a fake's records over HTTP (the way a cluster run reads them through a port-forward). */
export async function fetchRecords(baseUrl: string): Promise<RecordedRequest[]> {
  const response = await fetch(`${baseUrl}${CONTROL_PATH}`);
  if (!response.ok) throw new Error(`${baseUrl}${CONTROL_PATH} answered ${response.status}`);
  return (await response.json()) as RecordedRequest[];
}

export async function clearRecords(baseUrl: string): Promise<void> {
  const response = await fetch(`${baseUrl}${CONTROL_PATH}`, { method: 'DELETE' });
  if (!response.ok) throw new Error(`DELETE ${baseUrl}${CONTROL_PATH} answered ${response.status}`);
}

/** Writes a body in parts, yielding between them so the client sees several chunks. */
export async function writeInParts(
  res: http.ServerResponse,
  status: number,
  headers: Record<string, string>,
  parts: (string | Buffer)[],
): Promise<void> {
  res.writeHead(status, headers);
  for (const part of parts) {
    res.write(part);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  res.end();
}
