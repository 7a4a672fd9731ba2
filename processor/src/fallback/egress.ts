/**
 * The processor's own upstream requests (fallback attempts): HTTP/1.1 over keep-alive connections, TLS verified
 * against the system's CAs with the backend's host name as SNI, one deadline for the whole attempt.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { BackendConfig } from '@ai-gateway-constructs/processor-config';
import type { AttemptRequest } from './request';

/** An attempt that got no usable answer: the backend could not be reached, or did not answer within the deadline. */
export class AttemptFailure extends Error {
  constructor(
    readonly kind: 'connection_failure' | 'timeout',
    message: string,
  ) {
    super(message);
  }
}

/** An attempt's answer as it arrives from the backend. */
export interface AttemptResponse {
  readonly status: number;
  /** Lower-case names, connection-level headers removed, repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  /** The body as the backend sends it (content-encoded); throws an AttemptFailure when cut or past the deadline. */
  readonly body: AsyncIterable<Buffer>;
}

export interface Egress {
  /**
   * Sends the attempt. Resolves with the answer's head once it arrives; rejects with an AttemptFailure, or with the
   * signal's reason when the request is aborted. `timeoutMs` bounds the attempt from now to the body's last byte.
   */
  send(
    request: AttemptRequest,
    endpoint: BackendConfig['endpoint'],
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<AttemptResponse>;
}

export interface HttpEgressOptions {
  /**
   * Development only (the local data plane): the base URL each named backend's attempts go to instead of its endpoint.
   * The `host` header still names the backend's host, as Envoy sends it. An https URL is verified against the system's
   * CAs (Node adds a development CA from NODE_EXTRA_CA_CERTS).
   */
  readonly devUpstreams?: ReadonlyMap<string, URL>;
  /** Connections per upstream host and scheme. @default 256 */
  readonly maxSocketsPerHost?: number;
}

/** Response headers that describe the connection rather than the answer. */
const CONNECTION_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade']);

export class HttpEgress implements Egress {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  constructor(private readonly options: HttpEgressOptions = {}) {
    const maxSockets = options.maxSocketsPerHost ?? 256;
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets });
  }

  send(
    request: AttemptRequest,
    endpoint: BackendConfig['endpoint'],
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<AttemptResponse> {
    const override = this.options.devUpstreams?.get(request.backend);
    const secure = override ? override.protocol === 'https:' : endpoint.tls;
    const host = override ? override.hostname.replace(/^\[|\]$/g, '') : endpoint.hostname;
    const port = override ? Number(override.port || (secure ? 443 : 80)) : endpoint.port;
    const options: https.RequestOptions = {
      host,
      port,
      method: request.method,
      path: request.path,
      headers: { ...request.headers, 'content-length': String(request.body.length) },
      agent: secure ? this.httpsAgent : this.httpAgent,
    };
    if (secure) options.servername = override ? override.hostname : endpoint.hostname;
    return new Promise<AttemptResponse>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const where = `backend "${request.backend}"`;
      let outgoing: http.ClientRequest;
      try {
        // Throws at once for a header Node refuses (a control character in a value, e.g. a Secret ending in "\n\n").
        outgoing = (secure ? https : http).request(options);
      } catch (error) {
        reject(new AttemptFailure('connection_failure', `${where} could not be sent the request (${describe(error)})`));
        return;
      }
      let response: http.IncomingMessage | undefined;
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        clearTimeout(deadline);
        signal.removeEventListener('abort', onAbort);
      };
      const fail = (error: Error): void => {
        release();
        if (response) response.destroy(error);
        else outgoing.destroy(error);
      };
      const deadline = setTimeout(
        () => fail(new AttemptFailure('timeout', `${where} did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onAbort = (): void => fail(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
      outgoing.on('response', (incoming: http.IncomingMessage) => {
        response = incoming;
        resolve({
          status: incoming.statusCode ?? 502,
          headers: answerHeaders(incoming.headers),
          body: attemptBody(incoming, where, release),
        });
      });
      outgoing.on('error', (error: Error) => {
        if (response) return;
        release();
        if (error instanceof AttemptFailure || signal.aborted) reject(signal.aborted ? signal.reason : error);
        else reject(new AttemptFailure('connection_failure', `${where} could not be reached (${describe(error)})`));
      });
      outgoing.end(request.body);
    });
  }

  /** Closes idle connections (shutdown). */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

/**
 * The answer's body. Leaving it unread (`return()` on its iterator, started or not) releases the connection and the
 * deadline at once, rather than when the deadline fires.
 */
function attemptBody(incoming: http.IncomingMessage, where: string, release: () => void): AsyncIterable<Buffer> {
  const discard = (): void => {
    release();
    if (!incoming.complete) incoming.destroy();
  };
  return {
    [Symbol.asyncIterator]: (): AsyncIterator<Buffer> => {
      const chunks = bodyOf(incoming, where, discard);
      let started = false;
      return {
        next: () => {
          started = true;
          return chunks.next();
        },
        return: (value?: unknown) => {
          // A generator that never started skips its `finally`: release here.
          if (!started) discard();
          return chunks.return(value as undefined);
        },
      };
    },
  };
}

async function* bodyOf(
  incoming: http.IncomingMessage,
  where: string,
  discard: () => void,
): AsyncGenerator<Buffer, void, undefined> {
  try {
    for await (const chunk of incoming) yield chunk as Buffer;
    if (!incoming.complete) throw new AttemptFailure('connection_failure', `${where} cut its answer short`);
  } catch (error) {
    if (error instanceof AttemptFailure) throw error;
    if ((error as { name?: unknown } | null)?.name === 'AbortError') throw error;
    throw new AttemptFailure('connection_failure', `${where} cut its answer short (${describe(error)})`);
  } finally {
    // Done, failed, or the reader stopped early: nothing more of this answer is wanted.
    discard();
  }
}

function answerHeaders(raw: http.IncomingHttpHeaders): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name in raw) {
    const value = raw[name];
    // Cookies set by a provider for the processor's own connection mean nothing to the client.
    if (value === undefined || CONNECTION_HEADERS.has(name) || name === 'set-cookie') continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** An error's code (ECONNREFUSED, CERT_HAS_EXPIRED, ...) or message: never a header or body. */
function describe(error: unknown): string {
  // Duck-typed: errors from Node's internals may come from another realm (vm contexts, test runners).
  if (typeof error !== 'object' || error === null) return 'unknown error';
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string') return code;
  return typeof message === 'string' ? message.slice(0, 200) : 'unknown error';
}
