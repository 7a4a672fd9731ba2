/**
 * Upstream connections: where a BackendTarget's traffic goes (a local override, a resolver for in-cluster
 * Services, or the Backend's own endpoints), over HTTP or HTTPS with Envoy Gateway's TLS settings (SNI, CA
 * bundles or the system CAs), and the connection errors Envoy distinguishes.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { HeaderMap } from './filter';
import type { BackendTarget } from './model';

export interface UpstreamRequest {
  readonly target: BackendTarget;
  readonly method: string;
  /** Path with the query string. */
  readonly path: string;
  /** Request headers to send; `:authority` becomes the Host header, other pseudo headers are dropped. */
  readonly headers: HeaderMap;
  readonly body: Buffer;
  readonly signal: AbortSignal;
}

export interface UpstreamResponse {
  readonly status: number;
  /** Response headers without hop-by-hop headers (`:status` not included). */
  readonly headers: HeaderMap;
  readonly body: AsyncIterable<Buffer>;
  /** The response trailers, once the body was read to its end (undefined: none). */
  readonly trailers?: () => HeaderMap | undefined;
}

/** Why no response arrived: the distinctions Envoy's retry triggers and response flags make. */
export type UpstreamFailure = 'unresolvable' | 'connect-failure' | 'reset' | 'aborted';

export class UpstreamError extends Error {
  constructor(
    readonly failure: UpstreamFailure,
    message: string,
  ) {
    super(message);
  }
}

export type Upstream = (request: UpstreamRequest) => Promise<UpstreamResponse>;

export interface HttpUpstreamOptions {
  /** `<namespace>/<name>` of a Backend or Service -> a base URL `http(s)://host:port` to send its traffic to instead. */
  readonly backendOverrides?: Readonly<Record<string, string>>;
  /** Resolves an in-cluster Service (e.g. a locally started processor) to `host:port`, plain HTTP. */
  readonly services?: (namespace: string, name: string, port: number) => string | undefined;
  /** Extra trusted CA certificates (PEM) for every HTTPS upstream, e.g. a local fake provider's self-signed CA. */
  readonly extraCaCertificates?: readonly string[];
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
]);

interface Connection {
  readonly secure: boolean;
  readonly host?: string;
  readonly port?: number;
  readonly socketPath?: string;
  readonly servername?: string;
  readonly ca?: string[];
  readonly rejectUnauthorized: boolean;
}

function connectionFor(request: UpstreamRequest, options: HttpUpstreamOptions): Connection {
  const target = request.target;
  const override = options.backendOverrides?.[`${target.namespace}/${target.name}`];
  const extraCa = options.extraCaCertificates ?? [];
  const caFor = (bundles: readonly string[], system: boolean) =>
    bundles.length === 0 && extraCa.length === 0
      ? undefined
      : [...bundles, ...extraCa, ...(system || bundles.length === 0 ? tls.rootCertificates : [])];
  if (override) {
    let url: URL;
    try {
      url = new URL(override);
    } catch {
      throw new UpstreamError(
        'unresolvable',
        `backend override ${override} for ${target.namespace}/${target.name} is not a URL`,
      );
    }
    const secure = url.protocol === 'https:';
    return {
      secure,
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port) || (secure ? 443 : 80),
      servername: secure ? (target.tls?.sni ?? url.hostname) : undefined,
      ca: secure ? caFor(target.tls?.caCertificates ?? [], target.tls?.useSystemCAs ?? true) : undefined,
      rejectUnauthorized: !(target.tls?.insecureSkipVerify ?? false),
    };
  }
  if (target.kind === 'Service' && target.port !== undefined) {
    const resolved = options.services?.(target.namespace, target.name, target.port);
    if (resolved) {
      const at = resolved.lastIndexOf(':');
      return {
        secure: false,
        host: resolved.slice(0, at).replace(/^\[|\]$/g, ''),
        port: Number(resolved.slice(at + 1)),
        rejectUnauthorized: true,
      };
    }
  }
  const endpoint = target.endpoints[0];
  if (!endpoint)
    throw new UpstreamError('unresolvable', `${target.kind} ${target.namespace}/${target.name} has no endpoints`);
  const secure = target.tls !== undefined;
  const base = {
    secure,
    ca: secure ? caFor(target.tls.caCertificates, target.tls.useSystemCAs) : undefined,
    rejectUnauthorized: !(target.tls?.insecureSkipVerify ?? false),
  };
  if (endpoint.type === 'unix') return { ...base, socketPath: endpoint.path, servername: target.tls?.sni };
  const host = endpoint.type === 'fqdn' ? endpoint.hostname : endpoint.address;
  return {
    ...base,
    host,
    port: endpoint.port,
    servername: secure ? (target.tls?.sni ?? (endpoint.type === 'fqdn' ? host : undefined)) : undefined,
  };
}

function classify(error: NodeJS.ErrnoException, connected: boolean): UpstreamFailure {
  if (error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN' || error.code === 'EAI_NONAME') return 'unresolvable';
  return connected ? 'reset' : 'connect-failure';
}

async function* responseBody(response: http.IncomingMessage): AsyncIterable<Buffer> {
  try {
    for await (const chunk of response) yield chunk as Buffer;
  } catch (error) {
    throw new UpstreamError('reset', `upstream response failed: ${(error as Error).message}`);
  }
  if (!response.complete) throw new UpstreamError('reset', 'upstream closed the response before its end');
}

function trailersOf(response: http.IncomingMessage): HeaderMap | undefined {
  if (!response.complete || response.rawTrailers.length === 0) return undefined;
  const trailers = new HeaderMap();
  for (let i = 0; i + 1 < response.rawTrailers.length; i += 2)
    trailers.add(response.rawTrailers[i].toLowerCase(), response.rawTrailers[i + 1]);
  return trailers;
}

/** The HTTP/1.1 upstream: one keep-alive agent per scheme, TLS verified unless the Backend says otherwise. */
export function createHttpUpstream(options: HttpUpstreamOptions = {}): Upstream & { close(): void } {
  const httpAgent = new http.Agent({ keepAlive: true });
  const httpsAgent = new https.Agent({ keepAlive: true });
  const upstream = (request: UpstreamRequest) =>
    new Promise<UpstreamResponse>((resolve, reject) => {
      let connection: Connection;
      try {
        connection = connectionFor(request, options);
      } catch (error) {
        reject(error);
        return;
      }
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(request.headers.toRecord()))
        if (!HOP_BY_HOP.has(name)) headers[name] = value;
      const authority = request.headers.get(':authority');
      if (authority) headers.host = authority;
      headers['content-length'] = String(request.body.length);
      if (request.body.length === 0 && (request.method === 'GET' || request.method === 'HEAD'))
        delete headers['content-length'];
      const requestOptions: https.RequestOptions = {
        method: request.method,
        path: request.path,
        headers,
        setHost: false,
        signal: request.signal,
        ...(connection.socketPath
          ? { socketPath: connection.socketPath }
          : { host: connection.host, port: connection.port }),
      };
      let connected = false;
      const req = connection.secure
        ? https.request({
            ...requestOptions,
            agent: httpsAgent,
            servername:
              connection.servername && !/^[\d.:]+$/.test(connection.servername) ? connection.servername : undefined,
            ca: connection.ca,
            rejectUnauthorized: connection.rejectUnauthorized,
            checkServerIdentity: (host, cert) => tls.checkServerIdentity(connection.servername ?? host, cert),
          })
        : http.request({ ...requestOptions, agent: httpAgent });
      req.on('socket', (socket) => {
        // A kept-alive socket is connected already; listening on it per request would pile up listeners.
        if (!(socket as { connecting?: boolean }).connecting) {
          connected = true;
          return;
        }
        const mark = () => (connected = true);
        if (connection.secure) socket.once('secureConnect', mark);
        else socket.once('connect', mark);
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        if (request.signal.aborted) reject(new UpstreamError('aborted', 'the request was cancelled'));
        else if (
          connection.secure &&
          !connected &&
          /certificate|self.signed|altnames|CERT|SSL|TLS/i.test(`${error.code} ${error.message}`)
        ) {
          reject(new UpstreamError('connect-failure', `TLS error: ${error.message}`));
        } else reject(new UpstreamError(classify(error, connected), `${error.code ?? ''} ${error.message}`.trim()));
      });
      req.on('response', (response) => {
        const out = new HeaderMap();
        for (let i = 0; i + 1 < response.rawHeaders.length; i += 2) {
          const name = response.rawHeaders[i].toLowerCase();
          if (!HOP_BY_HOP.has(name)) out.add(name, response.rawHeaders[i + 1]);
        }
        resolve({
          status: response.statusCode ?? 502,
          headers: out,
          body: responseBody(response),
          trailers: () => trailersOf(response),
        });
      });
      req.end(request.body);
    });
  return Object.assign(upstream, {
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  });
}
