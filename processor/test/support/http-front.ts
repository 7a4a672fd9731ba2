/**
 * A stand-in for Envoy in end-to-end tests: an HTTP server that turns each client request into an
 * ext_proc exchange (through EnvoyClient), forwards the mutated request to the fake provider the processor
 * picked (by the `x-ai-gateway-backend` header and the backend's endpoint in the config) and streams the
 * answer back to the client.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BACKEND_HEADER, type ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import type { EnvoyClient, ExchangeResult, UpstreamRequest, UpstreamResponse } from './envoy-client';

export interface HttpFront {
  url: string;
  close(): Promise<void>;
}

export interface HttpFrontOptions {
  client: EnvoyClient;
  /** Where a backend lives; default: the backend's endpoint in `config` over plain HTTP. */
  resolve?(backend: string): { host: string; port: number };
  config?: ProcessorConfig;
  /** Every finished exchange (metadata, upstream request, ...). */
  onResult?(result: ExchangeResult): void;
}

function forward(target: { host: string; port: number }, request: UpstreamRequest): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    const upstream = http.request(
      { host: target.host, port: target.port, method: request.method, path: request.path, headers: request.headers },
      (res) => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers)) {
          if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
        }
        resolve({ status: res.statusCode ?? 502, headers, body: res });
      },
    );
    upstream.on('error', reject);
    upstream.end(request.body);
  });
}

export async function startHttpFront(options: HttpFrontOptions): Promise<HttpFront> {
  const resolveTarget = (backend: string): { host: string; port: number } => {
    if (options.resolve) return options.resolve(backend);
    const config = options.config?.backends.find((b) => b.name === backend);
    if (!config) throw new Error(`no backend "${backend}" in the config`);
    return { host: config.endpoint.hostname, port: config.endpoint.port };
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (value === undefined || name === 'host' || name === 'connection') continue;
        headers[name] = Array.isArray(value) ? value.join(', ') : value;
      }
      const body = Buffer.concat(chunks);
      options.client
        .exchange(
          {
            method: req.method,
            path: req.url ?? '/',
            authority: req.headers.host,
            headers,
            body: body.length > 0 || req.method === 'POST' ? body : undefined,
          },
          (upstreamRequest) => forward(resolveTarget(upstreamRequest.headers[BACKEND_HEADER] ?? ''), upstreamRequest),
          {
            onHeaders(status, responseHeaders, streamed) {
              const out = { ...responseHeaders };
              delete out['transfer-encoding'];
              delete out.connection;
              if (streamed) delete out['content-length'];
              res.writeHead(status, out);
            },
            onChunk(chunk) {
              res.write(chunk);
            },
          },
        )
        .then(
          (result) => {
            options.onResult?.(result);
            res.end();
          },
          (error: Error) => {
            if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
            res.end(`front error: ${error.message}`);
          },
        );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
