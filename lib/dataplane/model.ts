/**
 * The intermediate representation of the local data plane: what Envoy Gateway's translator would hand to its
 * xDS translator (EG's `xds IR`), reduced to the fields the local filters and router read. `translate()` builds
 * it from Kubernetes objects; `startDataPlane()` serves it. Everything here is plain data (no functions), so a
 * model can be printed, compared and snapshotted.
 */
import type { ApiKeyAuthSettings } from './api-key-auth';
import type { ExtProcSettings } from './ext-proc';
import type { JwtSettings } from './jwt';
import type { ResponseOverrideSettings } from './custom-response';
import type { RateLimitRule } from './rate-limit';

/** One parsed Kubernetes object (a YAML document). */
export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
    readonly creationTimestamp?: string;
    readonly [key: string]: unknown;
  };
  readonly [key: string]: unknown;
}

export interface ObjectRef {
  readonly namespace: string;
  readonly name: string;
}

export interface DataPlaneModel {
  readonly gateways: GatewayModel[];
  readonly routeStatuses: RouteStatus[];
  readonly processors: ProcessorDeployment[];
}

export interface GatewayModel {
  readonly namespace: string;
  readonly name: string;
  readonly listeners: ListenerModel[];
}

export interface ListenerModel {
  /** EG IR name `<ns>/<gateway>/<listener>` (the rate-limit domain of non-shared rules). */
  readonly name: string;
  /** The Gateway API listener's own name. */
  readonly sectionName: string;
  readonly port: number;
  readonly protocol: 'HTTP' | 'HTTPS';
  /** The listener's hostname; undefined = any host. */
  readonly hostname?: string;
  readonly tls?: ListenerTls;
  /** Every route attached to this listener, one per (rule, match, hostname), in EG's order (most specific first). */
  readonly routes: RouteModel[];
  /** ClientTrafficPolicy `headers.earlyRequestHeaders.remove` (lower-case), applied before the first route match. */
  readonly earlyRemoveHeaders: string[];
  /** ClientTrafficPolicy `connection.bufferLimit` in bytes; a larger request body is answered 413. */
  readonly bufferLimitBytes?: number;
  /**
   * ClientTrafficPolicy `headers.enableEnvoyHeaders`: Envoy Gateway then lets the rate-limit filter add
   * `x-envoy-ratelimited: true` to its 429s (otherwise it sets `disable_x_envoy_ratelimited_header`). Default false.
   */
  readonly enableEnvoyHeaders?: boolean;
  /** ClientTrafficPolicy `headers.disableRateLimitHeaders`: no draft-03 `x-ratelimit-*` headers. Default false. */
  readonly disableRateLimitHeaders?: boolean;
  /** The number of HTTPRoutes attached to this listener (the listener status' `attachedRoutes`). */
  readonly attachedRoutes: number;
}

export interface ListenerTls {
  readonly mode: 'Terminate' | 'Passthrough';
  /** Secrets named by `certificateRefs` (the local data plane serves plain HTTP unless they are provided). */
  readonly certificateRefs: ObjectRef[];
}

export type PathMatch = { readonly type: 'Exact' | 'PathPrefix' | 'RegularExpression'; readonly value: string };

/** A request header match. A Gateway API `method` match is folded in as an Exact `:method` match (as EG does). */
export interface HeaderMatch {
  readonly name: string;
  readonly type: 'Exact' | 'RegularExpression';
  readonly value: string;
  /** Envoy's `invert_match` (EG HTTPRouteFilter / rate-limit selectors; Gateway API matches never invert). */
  readonly invert?: boolean;
}

export interface QueryMatch {
  readonly name: string;
  readonly type: 'Exact' | 'RegularExpression';
  readonly value: string;
}

/** Header edits in Envoy's order: remove, then set (replace), then add (append). Names lower-case. */
export interface HeaderModifier {
  readonly set: ReadonlyArray<readonly [string, string]>;
  readonly add: ReadonlyArray<readonly [string, string]>;
  readonly remove: string[];
}

export interface RouteModel {
  /** EG IR/xDS route name `httproute/<ns>/<name>/rule/<r>/match/<m>/<hostname or *>`. */
  readonly name: string;
  /** The virtual host this route belongs to: the intersected hostname, or `*`. */
  readonly hostname: string;
  /** The HTTPRoute this entry comes from. */
  readonly route: ObjectRef;
  readonly ruleIndex: number;
  readonly matchIndex: number;
  /** Undefined only when a match has no path at all (translate fills Gateway API's default `PathPrefix /`). */
  readonly path?: PathMatch;
  readonly headers: HeaderMatch[];
  readonly queryParams: QueryMatch[];
  readonly action: RouteAction;
  /** Route-level RequestHeaderModifier (applied before any backend-level one). */
  readonly requestHeaders?: HeaderModifier;
  /** Route-level ResponseHeaderModifier (direct responses' content type is set here, as EG does). */
  readonly responseHeaders?: HeaderModifier;
  readonly urlRewrite?: UrlRewrite;
  /**
   * Envoy route timeout in milliseconds; 0 disables it; undefined = what EG emits without a timeout (see router.ts).
   */
  readonly timeoutMs?: number;
  readonly retry?: RetryPolicy;
  /**
   * The most requests in flight to the cluster of this route's rule (`httproute/<ns>/<name>/rule/<r>`, shared by
   * its matches and hostnames): BackendTrafficPolicy `circuitBreaker.maxParallelRequests`, else Envoy Gateway's
   * 1024. Only this threshold is modelled (see router.ts).
   */
  readonly maxParallelRequests?: number;
  /** Extension processors enabled on this route, in filter order (from EnvoyExtensionPolicies). */
  readonly extProcs: ExtProcSettings[];
  /** Global rate-limit rules of this route (from BackendTrafficPolicies, merged gateway + route). */
  readonly rateLimitRules: RateLimitRule[];
  /** JWT authentication of this route (SecurityPolicy). */
  readonly jwt?: JwtSettings;
  /** API key authentication of this route (SecurityPolicy `apiKeyAuth`). */
  readonly apiKeyAuth?: ApiKeyAuthSettings;
  /** BackendTrafficPolicy `responseOverride` of this route (Envoy's custom_response filter). */
  readonly responseOverride?: ResponseOverrideSettings;
}

export type RouteAction =
  | { readonly type: 'forward'; readonly destinations: Destination[] }
  | { readonly type: 'directResponse'; readonly status: number; readonly body?: string | Buffer }
  | { readonly type: 'redirect'; readonly redirect: Redirect };

/** One weighted backendRef of a rule. `backend` is undefined for an invalid ref (its share is answered 500). */
export interface Destination {
  readonly name: string;
  readonly weight: number;
  readonly backend?: BackendTarget;
  /** Why the ref is invalid (RefNotPermitted, BackendNotFound, ...), when it is. */
  readonly invalidReason?: string;
  /** backendRef-level filters. */
  readonly requestHeaders?: HeaderModifier;
  readonly responseHeaders?: HeaderModifier;
}

export interface BackendTarget {
  readonly kind: 'Service' | 'Backend';
  readonly namespace: string;
  readonly name: string;
  /** The backendRef's port (a Service port); Backends carry ports on their endpoints. */
  readonly port?: number;
  /** Where to connect: a Service resolves to `<name>.<ns>.svc.cluster.local:<port>` unless overridden. */
  readonly endpoints: BackendEndpoint[];
  /** Upstream TLS (Backend `tls` or BackendTLSPolicy); undefined = plain HTTP. */
  readonly tls?: UpstreamTls;
  /** Backend `appProtocols` etc. are not modelled; the local upstream speaks HTTP/1.1. */
}

export type BackendEndpoint =
  | { readonly type: 'fqdn'; readonly hostname: string; readonly port: number }
  | { readonly type: 'ip'; readonly address: string; readonly port: number }
  | { readonly type: 'unix'; readonly path: string };

export interface UpstreamTls {
  /** SNI and the name the certificate is verified against. */
  readonly sni?: string;
  /** PEM CA bundles from ConfigMaps/Secrets; empty and `wellKnownCACertificates: System` = the system CAs. */
  readonly caCertificates: string[];
  readonly useSystemCAs: boolean;
  readonly insecureSkipVerify: boolean;
}

export type UrlRewrite = {
  readonly hostname?: string;
  readonly path?:
    | { readonly type: 'ReplaceFullPath'; readonly value: string }
    /** Replace the matched prefix (`prefix`, the route's PathPrefix value) with `value`. */
    | { readonly type: 'ReplacePrefixMatch'; readonly prefix: string; readonly value: string };
};

export interface Redirect {
  readonly scheme?: string;
  readonly hostname?: string;
  readonly port?: number;
  readonly path?:
    | { readonly type: 'ReplaceFullPath'; readonly value: string }
    | { readonly type: 'ReplacePrefixMatch'; readonly prefix: string; readonly value: string };
  readonly statusCode: number;
}

/** Envoy Gateway's circuit-breaker thresholds when no policy sets them (`buildXdsClusterCircuitBreaker`). */
export const EG_DEFAULT_CIRCUIT_BREAKER_LIMIT = 1024;

/** Envoy's retry policy as EG builds it (BackendTrafficPolicy `retry`, HTTPRoute rule `retry`). */
export interface RetryPolicy {
  readonly numRetries: number;
  /** Envoy `retry_on` triggers, e.g. `5xx`, `gateway-error`, `reset`, `connect-failure`, `retriable-status-codes`. */
  readonly retryOn: string[];
  readonly retriableStatusCodes: number[];
  readonly perTryTimeoutMs?: number;
  /** Base interval of the exponential back-off (Envoy default 25 ms). */
  readonly backOffBaseMs?: number;
  readonly backOffMaxMs?: number;
}

export interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message?: string;
}

/** The status one HTTPRoute would get, per parentRef. */
export interface RouteStatus {
  readonly route: ObjectRef;
  readonly parents: RouteParentStatus[];
}

export interface RouteParentStatus {
  readonly parentRef: {
    readonly namespace: string;
    readonly name: string;
    readonly sectionName?: string;
    readonly port?: number;
  };
  readonly conditions: Condition[];
}

/**
 * A processor Deployment (+ its Service and ConfigMap) found in the manifests; the CLI starts one process per entry.
 */
export interface ProcessorDeployment {
  readonly namespace: string;
  readonly deploymentName: string;
  readonly serviceName: string;
  readonly servicePort: number;
  readonly args: string[];
  readonly configMapName: string;
  /** The config the processor loads (a bundle's parts decoded). */
  readonly configJson: string;
  /**
   * Every file of the processor's config volume, as kubelet would write it (the keys of each of its ConfigMaps;
   * binaryData decoded), when the config is a bundle of parts; absent: `config.json` holds `configJson`.
   */
  readonly configFiles?: Readonly<Record<string, Uint8Array>>;
  /** The file `--config` names in the config volume (default `config.json`). */
  readonly configFileName?: string;
  readonly secretMounts: {
    readonly secretName: string;
    readonly mountPath: string;
    readonly items?: { readonly key: string; readonly path: string }[];
  }[];
}
