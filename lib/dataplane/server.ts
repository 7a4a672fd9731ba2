/**
 * `startDataPlane`: serves a translated model on local HTTP servers, one per (Gateway, port) as Envoy has one
 * HTTP connection manager per port. Each request runs through the filter manager with the filters Envoy Gateway
 * configures: api_key_auth, jwt_authn, ext_proc, ratelimit and the router.
 *
 * HTTPS listeners terminate TLS with their `certificateRefs` Secrets when the manifests hold them (the certificate
 * chosen by SNI among the port's listeners); otherwise, as the synthesized manifests never carry private keys, the
 * port is served as plain HTTP, with the same routes and hostnames.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createApiKeyAuthFilter } from './api-key-auth';
import { createCustomResponseFilter } from './custom-response';
import { createEchoUpstream } from './echo';
import { EG_DEFAULT_BUFFER_LIMIT_BYTES, ExtProcClients, createExtProcFilter } from './ext-proc';
import { HeaderMap, type HttpFilter } from './filter';
import { runStream, type AccessLogEntry, type ResponseSink } from './filter-manager';
import { createJwksResolver, createJwtFilter } from './jwt';
import { loadManifests } from './manifests';
import type { DataPlaneModel, KubeObject, ListenerModel, RouteModel } from './model';
import { RateLimitService, createRateLimitFilter, type RateLimitStats } from './rate-limit';
import { MemoryCounterStore, RedisCounterStore, type CounterStore } from './rate-limit/store';
import { selectRoute } from './route-match';
import { readSecretFolder, type SecretSource } from './secrets';
import { createRouterFilter } from './router';
import { translate, type TranslateOptions } from './translate';
import { createHttpUpstream, type Upstream } from './upstream';

/** Requests are read whole before the chain runs (filter contract); none may be larger than this. */
export const MAX_REQUEST_BODY_BYTES = 256 * 1024 * 1024;

export interface DataPlaneOptions {
  /** The manifests as objects, or `dir`: files/folders to load them from. */
  readonly objects?: readonly KubeObject[];
  readonly dir?: string | readonly string[];
  /** Every backend answers with an echo of the request instead of forwarding (see echo.ts). */
  readonly echo?: boolean;
  /** `<ns>/<name>` of a Backend or Service -> `http(s)://host:port` to send its traffic to. */
  readonly backendOverrides?: Readonly<Record<string, string>>;
  /** Resolves in-cluster Services (e.g. processors started locally) to `host:port`. */
  readonly services?: (namespace: string, name: string, port: number) => string | undefined;
  /** Count rate limits in Redis; default in memory. */
  readonly redisUrl?: string;
  /** The local port for a Gateway's listener port; default 0 (an ephemeral port). */
  readonly listenerPort?: (gatewayNamespace: string, gatewayName: string, port: number) => number;
  readonly host?: string;
  /**
   * Where Secrets that the manifests reference but do not contain are read (the `--secrets` folder): a SecurityPolicy's
   * `apiKeyAuth.credentialRefs` Secret comes from `<dir>/<namespace>/<secret>/` (or `<dir>/<secret>/`), one file per
   * client id holding its key. Secrets in the manifests win.
   */
  readonly secrets?: SecretSource;
  /** JWKS URIs as written in SecurityPolicies -> a local URL or file to read the keys from instead. */
  readonly jwksOverrides?: Readonly<Record<string, string>>;
  /** Extra trusted CAs (PEM) for HTTPS upstreams, e.g. local fake providers. */
  readonly extraCaCertificates?: readonly string[];
  readonly translateOptions?: TranslateOptions;
  /** Replaces the upstream (echo or HTTP) entirely; for tests. */
  readonly upstream?: Upstream;
  /**
   * Receives one entry per request once it is complete (Envoy's access log), with the listener port's key
   * `<ns>/<gateway>:<port>`.
   */
  readonly accessLog?: (entry: AccessLogEntry<RouteModel> & { readonly listener: string }) => void;
}

export interface RunningDataPlane {
  readonly model: DataPlaneModel;
  /** `http://127.0.0.1:NNNN` of a Gateway's listener port. */
  address(gatewayNamespace: string, gatewayName: string, port: number): string;
  /**
   * The rate-limit service's counters per limit, `<domain>.<path>` -> hits in total, within and over the limit, and
   * over the limit but let through by shadow mode (envoyproxy/ratelimit's `ratelimit.service.rate_limit.*` stats).
   */
  rateLimitStats(): Map<string, RateLimitStats>;
  close(): Promise<void>;
}

/** The listeners of one Gateway that share a port, as the one HCM Envoy builds for them (virtual hosts by hostname). */
export function mergeListeners(listeners: readonly ListenerModel[]): ListenerModel {
  const first = listeners[0];
  return {
    ...first,
    routes: listeners.flatMap((l) => l.routes),
    earlyRemoveHeaders: [...new Set(listeners.flatMap((l) => l.earlyRemoveHeaders))],
    bufferLimitBytes: listeners.find((l) => l.bufferLimitBytes !== undefined)?.bufferLimitBytes,
    attachedRoutes: listeners.reduce((sum, l) => sum + l.attachedRoutes, 0),
  };
}

interface ListenerCertificate {
  readonly hostname?: string;
  readonly context: tls.SecureContext;
}

/** The first certificate Secret (`tls.crt`/`tls.key`) of each HTTPS listener, or undefined when one is missing. */
function listenerCertificates(
  listeners: readonly ListenerModel[],
  objects: readonly KubeObject[],
): ListenerCertificate[] | undefined {
  if (listeners.some((l) => l.protocol !== 'HTTPS' || l.tls?.mode !== 'Terminate')) return undefined;
  const certificates: ListenerCertificate[] = [];
  for (const listener of listeners) {
    const ref = listener.tls?.certificateRefs[0];
    const secret =
      ref &&
      objects.find(
        (o) =>
          o.kind === 'Secret' &&
          (o.metadata?.namespace ?? 'default') === ref.namespace &&
          o.metadata?.name === ref.name,
      );
    const data = (secret?.data ?? {}) as Record<string, string>;
    const stringData = (secret?.stringData ?? {}) as Record<string, string>;
    const read = (key: string) =>
      stringData[key] ?? (data[key] !== undefined ? Buffer.from(data[key], 'base64').toString('utf8') : undefined);
    const cert = read('tls.crt');
    const key = read('tls.key');
    if (!cert || !key) return undefined;
    certificates.push({ hostname: listener.hostname, context: tls.createSecureContext({ cert, key }) });
  }
  return certificates;
}

/** The certificate for an SNI name: the listener with that exact hostname, else a matching wildcard, else the first. */
function certificateFor(certificates: readonly ListenerCertificate[], servername: string): tls.SecureContext {
  const name = servername.toLowerCase();
  const exact = certificates.find((c) => c.hostname?.toLowerCase() === name);
  const wildcard = certificates.find(
    (c) => c.hostname?.startsWith('*.') && name.endsWith(c.hostname.slice(1).toLowerCase()),
  );
  const catchAll = certificates.find((c) => c.hostname === undefined);
  return (exact ?? wildcard ?? catchAll ?? certificates[0]).context;
}

/** Connection-specific headers Envoy's HTTP/1 codec consumes; filters and upstreams never see them. */
const DOWNSTREAM_HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
]);

/**
 * Request headers of a Node request in Envoy's form: pseudo headers first, names lower-case, hop-by-hop headers
 * dropped.
 */
function requestHeadersOf(req: http.IncomingMessage, scheme: string): HeaderMap {
  const headers = new HeaderMap([
    [':method', req.method ?? 'GET'],
    [':path', req.url ?? '/'],
    [':scheme', scheme],
  ]);
  let authority: string | undefined;
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase();
    if (name === 'host') authority ??= req.rawHeaders[i + 1];
    else if (!DOWNSTREAM_HOP_BY_HOP.has(name)) headers.add(name, req.rawHeaders[i + 1]);
  }
  headers.set(':authority', authority ?? '');
  return headers;
}

function sinkFor(res: http.ServerResponse): ResponseSink {
  return {
    writeHead(status, headers) {
      const raw: string[] = [];
      for (const [name, value] of headers) raw.push(name, value);
      res.writeHead(status, raw);
    },
    write(chunk) {
      if (res.write(chunk)) return;
      return new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    },
    end() {
      res.end();
    },
    abort() {
      res.destroy();
    },
  };
}

/**
 * Whether the first route's chain buffers the request body (ext_proc in Buffered mode), which makes Envoy enforce the
 * buffer limit.
 */
function buffersRequestBody(route: RouteModel | undefined): boolean {
  return (route?.extProcs ?? []).some((e) => e.processingMode.request?.body === 'Buffered');
}

/**
 * The objects plus, for every `apiKeyAuth.credentialRefs` Secret they reference but do not contain, a Secret read from
 * the local secrets folder (when there is one), as the cluster would hold it.
 */
export function withLocalCredentialSecrets(objects: readonly KubeObject[], source: SecretSource): KubeObject[] {
  const present = new Set(
    objects.filter((o) => o.kind === 'Secret').map((o) => `${o.metadata?.namespace ?? 'default'}/${o.metadata?.name}`),
  );
  const added: KubeObject[] = [];
  for (const policy of objects) {
    if (policy.kind !== 'SecurityPolicy') continue;
    const policyNamespace = policy.metadata?.namespace ?? 'default';
    const apiKeyAuth = (policy.spec as { apiKeyAuth?: { credentialRefs?: unknown } } | undefined)?.apiKeyAuth;
    if (!Array.isArray(apiKeyAuth?.credentialRefs)) continue;
    for (const ref of apiKeyAuth.credentialRefs as { name?: unknown; namespace?: unknown }[]) {
      if (typeof ref?.name !== 'string') continue;
      const namespace = typeof ref.namespace === 'string' ? ref.namespace : policyNamespace;
      const id = `${namespace}/${ref.name}`;
      if (present.has(id)) continue;
      const data = readSecretFolder(namespace, ref.name, source);
      if (!data) continue;
      present.add(id);
      added.push({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { namespace, name: ref.name },
        data: Object.fromEntries([...data].map(([key, value]) => [key, value.toString('base64')])),
      });
    }
  }
  return [...objects, ...added];
}

export async function startDataPlane(options: DataPlaneOptions): Promise<RunningDataPlane> {
  let objects = options.objects;
  if (!objects) {
    if (!options.dir) throw new Error('startDataPlane needs `objects` or `dir`');
    objects = loadManifests(options.dir);
  }
  if (options.secrets) objects = withLocalCredentialSecrets(objects, options.secrets);
  const model = translate(objects, options.translateOptions);
  const host = options.host ?? '127.0.0.1';

  const httpUpstream = options.upstream || options.echo ? undefined : createHttpUpstream(options);
  const upstream = options.upstream ?? (options.echo ? createEchoUpstream() : httpUpstream!);
  const router = createRouterFilter({ upstream });
  const store: CounterStore = options.redisUrl ? new RedisCounterStore(options.redisUrl) : new MemoryCounterStore();
  const rateLimitService = new RateLimitService(store);
  const extProcClients = new ExtProcClients();
  const jwks = createJwksResolver({ overrides: options.jwksOverrides ? { ...options.jwksOverrides } : undefined });

  const processorTarget = (service: { namespace: string; name: string; port?: number }): string => {
    const override = options.backendOverrides?.[`${service.namespace}/${service.name}`];
    if (override) return new URL(override).host;
    const port = service.port ?? 9002;
    return (
      options.services?.(service.namespace, service.name, port) ??
      `${service.name}.${service.namespace}.svc.cluster.local:${port}`
    );
  };

  const servers: { key: string; server: http.Server | https.Server }[] = [];
  const addresses = new Map<string, string>();
  try {
    for (const gateway of model.gateways) {
      const ports = new Map<number, ListenerModel[]>();
      for (const listener of gateway.listeners)
        ports.set(listener.port, [...(ports.get(listener.port) ?? []), listener]);
      for (const [port, listeners] of ports) {
        const listener = mergeListeners(listeners);
        const key = `${gateway.namespace}/${gateway.name}:${port}`;
        const rateLimitFilter = createRateLimitFilter(rateLimitService, listener.name, {
          enableEnvoyHeaders: listener.enableEnvoyHeaders === true,
          disableRateLimitHeaders: listener.disableRateLimitHeaders === true,
        });
        const createFilters = (route: RouteModel | undefined): HttpFilter[] => {
          const filters: HttpFilter[] = [];
          // Envoy Gateway's order (FILTER_ORDER): custom_response 0, api_key_auth 7, jwt_authn 10, ext_proc 100+,
          // ratelimit 303.
          if (route?.responseOverride) filters.push(createCustomResponseFilter(route.responseOverride));
          if (route?.apiKeyAuth) filters.push(createApiKeyAuthFilter(route.apiKeyAuth));
          if (route?.jwt) filters.push(createJwtFilter(route.jwt, jwks));
          // The stream's buffer limit bounds what ext_proc buffers of the response too (ClientTrafficPolicy
          // connection.bufferLimit).
          const extProcOptions = { bufferLimitBytes: listener.bufferLimitBytes ?? EG_DEFAULT_BUFFER_LIMIT_BYTES };
          for (const settings of route?.extProcs ?? [])
            filters.push(
              createExtProcFilter(settings, processorTarget(settings.service), extProcClients, extProcOptions),
            );
          filters.push(rateLimitFilter);
          return filters;
        };
        const certificates = listenerCertificates(listeners, objects);
        const scheme = certificates ? 'https' : 'http';
        const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
          const controller = new AbortController();
          res.on('close', () => {
            if (!res.writableFinished) controller.abort();
          });
          async function* body(): AsyncIterable<Buffer> {
            for await (const chunk of req) yield chunk as Buffer;
          }
          runStream<RouteModel>(
            {
              earlyRemoveHeaders: listener.earlyRemoveHeaders,
              matchRoute: (headers) => selectRoute(listener, headers),
              createFilters,
              router,
              requestBodyLimit: (route) =>
                buffersRequestBody(route) ? (listener.bufferLimitBytes ?? EG_DEFAULT_BUFFER_LIMIT_BYTES) : undefined,
              maxRequestBodyBytes: MAX_REQUEST_BODY_BYTES,
              ...(options.accessLog
                ? { accessLog: (entry: AccessLogEntry<RouteModel>) => options.accessLog!({ ...entry, listener: key }) }
                : {}),
            },
            {
              headers: requestHeadersOf(req, scheme),
              body: body(),
              downstreamAddress: req.socket.remoteAddress ?? '',
              signal: controller.signal,
            },
            sinkFor(res),
          ).catch((error: unknown) => {
            // A bug in a filter must not take the data plane down: answer 500 if nothing was sent yet.
            process.stderr.write(`data plane: ${listener.name}: ${(error as Error).stack ?? String(error)}\n`);
            if (!res.headersSent)
              res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error in the local data plane');
            else res.destroy();
          });
        };
        const server = certificates
          ? // Clients that send no SNI (an IP address) get the port's first listener's certificate.
            https.createServer(
              {
                SNICallback: (name, done) => done(null, certificateFor(certificates, name)),
                secureContext: certificates[0].context,
              },
              handle,
            )
          : http.createServer(handle);
        const localPort = options.listenerPort?.(gateway.namespace, gateway.name, port) ?? 0;
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(localPort, host, () => {
            server.off('error', reject);
            resolve();
          });
        });
        const bound = server.address() as AddressInfo;
        addresses.set(
          key,
          `${scheme}://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`,
        );
        servers.push({ key, server });
      }
    }
  } catch (error) {
    for (const { server } of servers) server.close();
    await store.close();
    extProcClients.close();
    throw error;
  }

  return {
    model,
    address(gatewayNamespace, gatewayName, port) {
      const address = addresses.get(`${gatewayNamespace}/${gatewayName}:${port}`);
      if (!address)
        throw new Error(
          `no local listener for Gateway ${gatewayNamespace}/${gatewayName} port ${port} (known: ` +
            `${[...addresses.keys()].join(', ') || 'none'})`,
        );
      return address;
    },
    rateLimitStats: () => rateLimitService.stats(),
    async close() {
      await Promise.all(
        servers.map(
          ({ server }) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeAllConnections();
            }),
        ),
      );
      httpUpstream?.close();
      extProcClients.close();
      await store.close();
    },
  };
}
