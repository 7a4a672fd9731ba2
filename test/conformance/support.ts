/** Helpers for running reference cases against the local data plane over real HTTP. */
import * as http from 'node:http';

export interface HttpResult {
  readonly status: number;
  /** Response headers, lower-case names, repeated values joined with `,` (the conformance suite's comparison). */
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface SendOptions {
  readonly method?: string;
  /** Path with the query string. */
  readonly path: string;
  /** The Host header; undefined = the address' host without a port (a Gateway address as the suite sends it). */
  readonly host?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

/** One request without keep-alive and without following redirects. */
export function send(address: string, options: SendOptions): Promise<HttpResult> {
  const url = new URL(address);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        method: options.method ?? 'GET',
        path: options.path,
        agent: false,
        setHost: false,
        headers: { host: options.host ?? url.hostname, ...options.headers },
      },
      (res) => {
        const headers: Record<string, string> = {};
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
          const name = res.rawHeaders[i].toLowerCase();
          headers[name] = name in headers ? `${headers[name]},${res.rawHeaders[i + 1]}` : res.rawHeaders[i + 1];
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The request URI the conformance suite builds: path, then `?` and the query pairs in order when there are any. */
export function requestUri(path: string, query: Record<string, string> | undefined): string {
  const pairs = Object.entries(query ?? {});
  if (pairs.length === 0) return path;
  return `${path}?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`;
}
