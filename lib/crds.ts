/**
 * Small typed subsets of the Gateway API and Envoy Gateway resources we emit, checked field by field against
 * the CRD schemas (Gateway API v1.6.1 standard channel, Envoy Gateway v1.9.0). Only what we use is modelled.
 */
import { ApiObject, App, Chart, JsonPatch, Lazy, type ApiObjectProps, type Duration } from 'cdk8s';
import type { Construct, IConstruct } from 'constructs';
import { formatGatewayDuration } from './limits/duration';
import { NOT_PLAIN, onlyBuiltInResolvers, plainLevel, renderPlainJson, renderPlainMetadata } from './plain-json';

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
export const ENVOY_GATEWAY_GROUP = 'gateway.envoyproxy.io';
export const ENVOY_GATEWAY_API_VERSION = `${ENVOY_GATEWAY_GROUP}/v1alpha1`;
export const GATEWAY_API_VERSION = `${GATEWAY_API_GROUP}/v1`;
/** v1beta1 is the storage version and served by every Gateway API release Envoy Gateway >= 1.8 bundles. */
export const REFERENCE_GRANT_API_VERSION = `${GATEWAY_API_GROUP}/v1beta1`;

/** Gateway API / Envoy Gateway duration string (`60s`, `1m30s`, `500ms`). */
export type DurationString = string;

export interface PolicyTargetReference {
  readonly group: string;
  readonly kind: string;
  readonly name: string;
}

export interface ParentReference {
  readonly group?: string;
  readonly kind?: string;
  readonly name: string;
  readonly namespace?: string;
  readonly sectionName?: string;
}

export interface BackendObjectReference {
  readonly group?: string;
  readonly kind?: string;
  readonly name: string;
  readonly namespace?: string;
  readonly port?: number;
  readonly weight?: number;
}

export interface GatewayListener {
  readonly name: string;
  readonly protocol: 'HTTP' | 'HTTPS';
  readonly port: number;
  readonly hostname?: string;
  readonly tls?: {
    readonly mode: 'Terminate';
    readonly certificateRefs: readonly { readonly kind: 'Secret'; readonly group: ''; readonly name: string }[];
  };
  readonly allowedRoutes: {
    readonly namespaces: {
      readonly from: 'All' | 'Same' | 'Selector';
      readonly selector?: {
        readonly matchLabels?: Record<string, string>;
        readonly matchExpressions?: readonly {
          readonly key: string;
          readonly operator: 'In';
          readonly values: readonly string[];
        }[];
      };
    };
    readonly kinds: readonly { readonly group: string; readonly kind: 'HTTPRoute' }[];
  };
}

export interface GatewaySpec {
  readonly gatewayClassName: string;
  readonly listeners: readonly GatewayListener[];
  /** The EnvoyProxy (in the Gateway's namespace) configuring the Gateway's proxies. */
  readonly infrastructure?: {
    readonly parametersRef: { readonly group: string; readonly kind: string; readonly name: string };
  };
}

export interface HTTPHeaderMatch {
  readonly type: 'Exact' | 'RegularExpression';
  readonly name: string;
  readonly value: string;
}

export interface HTTPRouteMatch {
  readonly path: { readonly type: 'PathPrefix'; readonly value: string };
  readonly headers?: readonly HTTPHeaderMatch[];
}

export type HTTPRouteFilterRef =
  | { readonly type: 'URLRewrite'; readonly urlRewrite: { readonly hostname: string } }
  | { readonly type: 'RequestHeaderModifier'; readonly requestHeaderModifier: { readonly remove: readonly string[] } }
  | {
      readonly type: 'ExtensionRef';
      readonly extensionRef: { readonly group: string; readonly kind: string; readonly name: string };
    };

export interface HTTPRouteRule {
  readonly matches: readonly HTTPRouteMatch[];
  readonly filters?: readonly HTTPRouteFilterRef[];
  readonly backendRefs?: readonly BackendObjectReference[];
  readonly timeouts?: { readonly request: DurationString };
}

export interface HTTPRouteSpec {
  readonly parentRefs: readonly ParentReference[];
  readonly hostnames?: readonly string[];
  readonly rules: readonly HTTPRouteRule[];
}

export interface HTTPRouteFilterSpec {
  readonly directResponse: {
    readonly statusCode: number;
    readonly contentType: string;
    readonly body: { readonly type: 'Inline'; readonly inline: string };
  };
}

export interface BackendSpec {
  readonly endpoints: readonly { readonly fqdn: { readonly hostname: string; readonly port: number } }[];
  /** Upstream TLS: `sni` is also the only name Envoy Gateway accepts in the certificate (no `subjectAltNames`). */
  readonly tls?: { readonly sni: string; readonly wellKnownCACertificates: 'System' };
}

export interface ReferenceGrantSpec {
  readonly from: readonly { readonly group: string; readonly kind: string; readonly namespace: string }[];
  readonly to: readonly { readonly group: string; readonly kind: string; readonly name?: string }[];
}

export interface RateLimitHeaderSelector {
  readonly name: string;
  readonly type: 'Exact' | 'RegularExpression' | 'Distinct';
  readonly value?: string;
}

/** Envoy Gateway's rate-limit units (`limit.unit`). */
export type RateLimitUnitSpec = 'Second' | 'Minute' | 'Hour' | 'Day' | 'Week' | 'Month' | 'Year';

export interface GlobalRateLimitRule {
  readonly clientSelectors?: readonly { readonly headers: readonly RateLimitHeaderSelector[] }[];
  readonly limit: {
    readonly requests: number;
    readonly unit: RateLimitUnitSpec;
    /** A per-request limit read from dynamic metadata (`{requests_per_unit, unit}`); absent: `requests` applies. */
    readonly fromMetadata?: { readonly namespace: string; readonly key: string };
  };
  readonly cost: {
    readonly request: { readonly from: 'Number'; readonly number: number };
    readonly response: {
      readonly from: 'Metadata';
      readonly metadata: { readonly namespace: string; readonly key: string };
    };
  };
  readonly shared?: boolean;
  /** Counted, never enforced. */
  readonly shadowMode?: boolean;
  readonly xRateLimitHeaders?: 'Off' | 'DraftVersion03';
}

export interface RetrySpec {
  readonly numRetries: number;
  readonly retryOn: {
    readonly triggers?: readonly string[];
    readonly httpStatusCodes?: readonly number[];
  };
  readonly perRetry?: {
    readonly timeout?: DurationString;
    readonly backOff?: { readonly baseInterval: DurationString; readonly maxInterval: DurationString };
  };
}

/**
 * Envoy Gateway's `circuitBreaker` (BackendTrafficPolicy, and `backendSettings` of an EnvoyExtensionPolicy's
 * extProc): the thresholds of the Envoy cluster(s) the policy applies to. Every proxy replica counts on its own.
 * Unset fields keep Envoy Gateway's default of 1024.
 */
export interface CircuitBreakerSpec {
  /** Envoy `max_connections`: open connections to the cluster's endpoints (per proxy). */
  readonly maxConnections?: number;
  /** Envoy `max_pending_requests`: requests queued while waiting for a connection or a stream. */
  readonly maxPendingRequests?: number;
  /** Envoy `max_requests`: requests in flight to the cluster at once. */
  readonly maxParallelRequests?: number;
}

export interface BackendTrafficPolicySpec {
  readonly targetRefs?: readonly PolicyTargetReference[];
  readonly targetSelectors?: readonly PolicyTargetSelector[];
  readonly mergeType?: 'StrategicMerge';
  readonly rateLimit?: { readonly type: 'Global'; readonly global: { readonly rules: readonly GlobalRateLimitRule[] } };
  readonly retry?: RetrySpec;
  readonly circuitBreaker?: CircuitBreakerSpec;
  readonly responseOverride?: readonly ResponseOverrideSpec[];
}

/**
 * One BackendTrafficPolicy `responseOverride` rule (the fields the constructs emit): Envoy Gateway runs the rules
 * in Envoy's custom_response filter, first match wins.
 */
export interface ResponseOverrideSpec {
  readonly match: {
    readonly statusCodes?: readonly { readonly type: 'Value'; readonly value: number }[];
    readonly responseHeaders?: readonly {
      readonly name: string;
      readonly value: { readonly type: 'Exact' | 'Prefix'; readonly value: string };
    }[];
  };
  /** `Local`: only responses Envoy generated itself; `Backend`: only the upstream's. */
  readonly source?: 'All' | 'Local' | 'Backend';
  readonly response: {
    readonly contentType?: string;
    readonly body?: { readonly type: 'Inline'; readonly inline: string };
    readonly statusCode?: number;
  };
}

/**
 * Envoy Gateway's `targetSelectors` entry: the policy applies to every object of `kind` (in the policy's namespace,
 * without `namespaces`) whose labels match `matchLabels`.
 */
export interface PolicyTargetSelector {
  readonly group: string;
  readonly kind: string;
  readonly matchLabels: Readonly<Record<string, string>>;
}

export interface EnvoyExtensionPolicySpec {
  readonly targetSelectors: readonly PolicyTargetSelector[];
  readonly extProc: readonly {
    readonly backendRefs: readonly BackendObjectReference[];
    readonly processingMode: {
      readonly request: { readonly body: 'Buffered' };
      /**
       * `attributes`: CEL attribute names Envoy evaluates and sends with the response headers. `FullDuplexStreamed`:
       * the body is streamed to the processor, which answers with the body to send (and needs `failOpen: false`).
       */
      readonly response: { readonly body: 'Buffered' | 'FullDuplexStreamed'; readonly attributes: readonly string[] };
      /** Envoy ignores mode overrides when a body mode is `FullDuplexStreamed`. */
      readonly allowModeOverride?: boolean;
    };
    readonly messageTimeout: DurationString;
    readonly failOpen: boolean;
    readonly metadata: { readonly writableNamespaces: readonly string[] };
    /** Settings of the Envoy cluster of the processor (one cluster per policy). */
    readonly backendSettings?: { readonly circuitBreaker?: CircuitBreakerSpec };
  }[];
}

export interface ClientTrafficPolicySpec {
  readonly targetRefs: readonly PolicyTargetReference[];
  readonly connection: { readonly bufferLimit: string };
  /** Early header mutations run before every HTTP filter (JWT, ext_proc, rate limit) and before routing. */
  readonly headers: { readonly earlyRequestHeaders: { readonly remove: readonly string[] } };
}

export interface JwtSpec {
  readonly providers: readonly {
    readonly name: string;
    readonly issuer: string;
    readonly audiences?: readonly string[];
    readonly remoteJWKS: { readonly uri: string };
    readonly claimToHeaders?: readonly { readonly claim: string; readonly header: string }[];
  }[];
}

/** SecurityPolicy `apiKeyAuth`: keys in Secrets (each data key a client id, its value the key). */
export interface ApiKeyAuthSpec {
  readonly credentialRefs: readonly {
    readonly group: '';
    readonly kind: 'Secret';
    readonly name: string;
    readonly namespace?: string;
  }[];
  readonly extractFrom: readonly { readonly headers: readonly string[] }[];
  readonly forwardClientIDHeader?: string;
  readonly sanitize?: boolean;
}

export interface SecurityPolicySpec {
  readonly targetRefs: readonly PolicyTargetReference[];
  readonly jwt?: JwtSpec;
  readonly apiKeyAuth?: ApiKeyAuthSpec;
}

export interface ObjectIdentity {
  readonly name: string;
  readonly namespace?: string;
  readonly labels?: Record<string, string>;
}

/**
 * Emits a custom resource; a function `spec` is computed when the object is synthesized (after every construct exists).
 */
export function customResource<T>(
  scope: Construct,
  id: string,
  apiVersion: string,
  kind: string,
  identity: ObjectIdentity,
  spec: T | (() => T),
): ApiObject {
  return new CustomResource(scope, id, {
    apiVersion,
    kind,
    metadata: { name: identity.name, namespace: identity.namespace, labels: identity.labels },
    spec: typeof spec === 'function' ? (Lazy.any({ produce: spec as () => T }) as unknown) : spec,
  });
}

/**
 * An ApiObject that renders its plain JSON props itself, to the JSON cdk8s renders: cdk8s hands every value to every
 * resolver of the app with a context object and a copy of its key path, which costs more than the YAML of a route's
 * objects. The metadata is cdk8s's (users change it through `metadata`). cdk8s renders whatever else there is: an
 * app with resolvers of its own, JSON patches, props that are not plain JSON.
 */
class CustomResource extends ApiObject {
  private readonly customProps: ApiObjectProps;
  private patched = false;

  constructor(scope: Construct, id: string, props: ApiObjectProps) {
    super(scope, id, props);
    this.customProps = props;
  }

  override addJsonPatch(...ops: JsonPatch[]): void {
    this.patched = true;
    super.addJsonPatch(...ops);
  }

  /** See `plainPropsMember`. */
  _plainMember(key: string): unknown {
    if (this.patched || !onlyBuiltInResolvers(App.of(this).resolvers)) return NOT_PLAIN;
    return plainLevel((this.customProps as unknown as Record<string, unknown>)[key]);
  }

  override toJson(): unknown {
    if (this.patched || !onlyBuiltInResolvers(App.of(this).resolvers)) return super.toJson();
    let json: unknown;
    try {
      const metadata = renderPlainMetadata(this.metadata);
      const data = {
        ...this.customProps,
        metadata: metadata === NOT_PLAIN ? (this.metadata.toJson() as unknown) : metadata,
      };
      json = renderPlainJson(data, !process.env.CDK8S_DISABLE_SORT);
    } catch (e) {
      // cdk8s's message for a value that fails to render (e.g. a Lazy spec that throws a validation error).
      throw new Error(
        `Failed serializing construct at path '${this.node.path}' with name '${this.name}': ${String(e)}`,
        {
          cause: e,
        },
      );
    }
    if (json === NOT_PLAIN) return super.toJson();
    // apiVersion, kind and metadata first, the rest in rendered order (as cdk8s orders them).
    const rendered = json as Record<string, unknown>;
    const result: Record<string, unknown> = {};
    for (const key of ['apiVersion', 'kind', 'metadata', ...Object.keys(rendered)])
      if (key in rendered) result[key] = rendered[key];
    return result;
  }
}

/**
 * The member `key` of an object's props (e.g. `spec`) as it renders, one level deep (see `plainLevel`), read without
 * rendering the object: for the objects the constructs emit, unpatched, in an app with only cdk8s's resolvers;
 * `NOT_PLAIN` for any other object (read the member from its `toJson()`).
 */
export function plainPropsMember(object: ApiObject, key: string): unknown {
  // Not `instanceof`: cdk8s's ApiObject defines it (Symbol.hasInstance) to hold for every ApiObject, subclasses too.
  return Object.prototype.isPrototypeOf.call(CustomResource.prototype, object)
    ? (object as CustomResource)._plainMember(key)
    : NOT_PLAIN;
}

/**
 * A `Duration` prop in the Gateway API duration format; must be positive. One unit while it fits five digits
 * (`60s`, `1500ms`), else split into units (`150500ms` is `2m30s500ms`); throws when the format cannot write it.
 */
export function gatewayDuration(scope: IConstruct, prop: string, duration: Duration): DurationString {
  return formatGatewayDuration(scope, prop, duration);
}

/** Emits a cluster-scoped object: no namespace, even inside a chart that has one. */
export function clusterScoped(obj: ApiObject): ApiObject {
  if (Chart.of(obj).namespace !== undefined) obj.addJsonPatch(JsonPatch.remove('/metadata/namespace'));
  return obj;
}
