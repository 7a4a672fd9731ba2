import { ApiObject, Duration } from 'cdk8s';
import { Construct } from 'constructs';
import {
  BACKEND_HEADER,
  PASSTHROUGH_METHODS,
  PASSTHROUGH_SCHEMAS,
  passthroughPathProblem,
  re2Problem,
  type FallbackConfig,
  type PassthroughEndpoint as PassthroughEndpointConfig,
  type RouteEndpoint,
} from '@ai-gateway-constructs/processor-config';
import { apiKeyAuthSpec, type IGatewayReference, type ManagedGateway } from './ai-gateway';
import { authenticationErrorOverride } from './auth-error-response';
import {
  ENVOY_GATEWAY_API_VERSION,
  ENVOY_GATEWAY_GROUP,
  GATEWAY_API_GROUP,
  GATEWAY_API_VERSION,
  customResource,
  gatewayDuration,
  type BackendTrafficPolicySpec,
  type HTTPRouteRule,
  type HTTPRouteSpec,
  type ResponseOverrideSpec,
  type RetrySpec,
  type SecurityPolicySpec,
} from './crds';
import { invalid } from './errors';
import { sameBackendNameError } from './limits/backend-names';
import { CRD_LIMITS } from './limits/crd-limits.generated';
import { checkPerTryTimeout } from './limits/duration';
import { checkRouteHostnames } from './limits/hostnames';
import { synthRegistry } from './limits/registry';
import { validateUniqueObjects } from './limits/unique-objects';
import { GatewayModel, type BudgetScope, type RouteFragment } from './gateway-model';
import { ModelMatch, ModelMatchIndex } from './model-match';
import {
  MAX_SUBDOMAIN_LENGTH,
  checkHostname,
  checkLabelName,
  defaultName,
  derivedName,
  isCleanPathPrefix,
  resolveNamespace,
  shortHash,
} from './names';
import { Fallback } from './fallback';
import { Processor, type ProcessorOptions, type RouteAttachment } from './processor';
import { ProviderBackend } from './provider-backend';
import { RoutePrecedenceIndex, foreignGatewayIndex, virtualHostsOf, type IndexedRoute } from './route-precedence';
import type { IBudgetTarget } from './budget';
import { PriceCatalog } from './money';

/**
 * HTTPRoute allows 16 rules (CRD `spec.rules` maxItems); one is the catch-all 404. Each backend rule has at most 4
 * matches (two endpoint prefixes, the backend's upstream prefix and `/`), so 15 backends make at most 62 matches,
 * under the 128 an HTTPRoute allows (a CEL rule of the CRD, not in its JSON schema).
 */
export const MAX_BACKENDS_PER_ROUTE = CRD_LIMITS.httpRouteRules.maxItems - 1;

/** A backend a rule sends matching requests to. */
export interface RouteBackend {
  readonly backend: ProviderBackend;
  /**
   * Share of traffic among the backends of the same priority.
   * @default 1
   */
  readonly weight?: number;
  /**
   * 0 is tried first; higher priorities take traffic while all lower ones are failing.
   * @default 0
   */
  readonly priority?: number;
  /**
   * Model name sent upstream instead of the client's.
   * @default - the client's model name
   */
  readonly modelNameOverride?: string;
}

/** Requests asking for one of `models` go to `backends`. Rules are tried in order. */
export interface AIRouteRule {
  readonly models: readonly ModelMatch[];
  readonly backends: readonly RouteBackend[];
  /**
   * Fail over within one request: when the backend Envoy tried fails (`Fallback.onFailure(...)`: the statuses,
   * connection failures and timeouts it names), the processor sends the same request, translated for it, to a
   * backend of the next priority itself and answers with that. The rule needs a backend with weight > 0 at a higher
   * priority than its first. A route with a fallback rule has all its responses streamed through the processor
   * (see `Fallback`).
   * @default - no fallback: a failed request is answered with the backend's error, and only later requests move to
   * the next priority once the processor's circuit breaker skips the failing backend
   */
  readonly fallback?: Fallback;
}

/** Retries of failed upstream attempts (Envoy retries the backend the processor chose). */
export interface RouteRetry {
  /** Number of retries after the first attempt. */
  readonly attempts: number;
  /**
   * Upstream status codes that trigger a retry.
   * @default [502, 503, 504]
   */
  readonly statusCodes?: readonly number[];
  /**
   * Timeout of each attempt.
   * @default - the request timeout
   */
  readonly perTryTimeout?: Duration;
}

/**
 * A further endpoint of the OpenAI API that a route forwards unchanged to its OpenAI-schema backends, with the
 * platform's credential (see `AIRouteProps.passthroughEndpoints`).
 */
export interface PassthroughEndpoint {
  /**
   * The path below `pathPrefix`: exact (`/moderations`), or ending in `/` for every path below it
   * (`/vector_stores/` serves `/vector_stores/vs_1/files`, not `/vector_stores`); `/` alone is every path. Plain
   * segments only: no `.`/`..` segments, percent-encoding, `;`, backslash or `*`.
   */
  readonly path: string;
  /**
   * The methods allowed on it; other methods are answered 405. Only methods with a body: the processor picks the
   * backend by the JSON body's `model`.
   * @default ["POST"]
   */
  readonly methods?: readonly ('POST' | 'PUT' | 'PATCH')[];
}

export interface AIRouteProps {
  /** The gateway to attach to: an AIGateway of this app, or `GatewayReference.fromName(name, namespace)`. */
  readonly gateway: IGatewayReference;
  /** Model routing rules, tried in order. */
  readonly rules: readonly AIRouteRule[];
  /**
   * Name of the HTTPRoute.
   * @default - derived from the construct path
   */
  readonly name?: string;
  /**
   * Namespace of the HTTPRoute and its policies.
   * @default - the chart's namespace, else "default"
   */
  readonly namespace?: string;
  /**
   * Hosts this route answers for (entries may start with `*.`).
   * @default - every host of the gateway's listeners
   */
  readonly hostnames?: readonly string[];
  /**
   * Prefix of the OpenAI-compatible API (`<prefix>/chat/completions`, `/embeddings`, `/models`, ...).
   * @default "/v1"
   */
  readonly pathPrefix?: string;
  /**
   * Prefix of an additional Anthropic Messages API (`<prefix>/messages`), e.g. `/anthropic/v1`.
   * @default - no Anthropic endpoint
   */
  readonly anthropicPathPrefix?: string;
  /**
   * Further OpenAI API endpoints this route serves. By default a route serves only what the processor translates
   * or meters: `POST <pathPrefix>/chat/completions`, `/completions`, `/embeddings`, `/responses`, `GET /models` (and
   * `POST <anthropicPathPrefix>/messages`, `/messages/count_tokens`); every other path is answered 404, so no client
   * reaches, say, `/fine_tuning/jobs` or `/organization/...` with the provider key. Listed endpoints are forwarded
   * unchanged to the rule's backend (OpenAI-schema backends only: OpenAI, OpenAI-compatible, Azure OpenAI,
   * Kubernetes Services), routed by the `model` of the JSON body or of a multipart/form-data body (its `model`
   * field: image edits, audio) through this route's rules only. Tokens are charged where the response carries an
   * OpenAI-style `usage` object (chat-like endpoints; GPT image models on `/images/generations` and `/images/edits`;
   * token-billed transcription such as gpt-4o-transcribe on `/audio/transcriptions`, streamed too); endpoints and
   * models without one (whisper-1, DALL-E, `/audio/speech`) pass uncounted by token and money budgets, so list
   * them only for routes whose request-count budgets are enough.
   * @default - none
   */
  readonly passthroughEndpoints?: readonly PassthroughEndpoint[];
  /**
   * Time Envoy allows for the whole request (Envoy's 15 s default cuts long generations).
   * @default Duration.seconds(60)
   */
  readonly requestTimeout?: Duration;
  /**
   * Retries of the chosen backend.
   * @default - no retries
   */
  readonly retry?: RouteRetry;
  /**
   * The most requests each Envoy proxy replica sends in parallel to each backend of this route, and the most it
   * queues while opening connections (the route's BackendTrafficPolicy `circuitBreaker`: `maxParallelRequests`,
   * `maxPendingRequests` and `maxConnections`, since a provider spoken to over HTTP/1.1 holds a connection per
   * request). Envoy answers a request over the limit with a 503 of its own (response flag `UO`). Envoy Gateway
   * makes one cluster per HTTPRoute rule, so the limit counts per route, per backend and per proxy replica: a
   * backend used by two routes, or served by three proxies, gets it that many times. Set it for a model server whose
   * capacity is known; a provider account's rate limits are better met with token budgets.
   * @default - the processor's `maxParallelRequestsPerProxy` (processor replicas × streamsPerReplica): every request
   * holds an ext_proc stream, so no more can reach a backend, and the processor's capacity is the only default bound
   */
  readonly maxParallelRequestsPerBackend?: number;
  /**
   * Headers every request must carry; the processor answers 400 without them. Per-client budgets add theirs.
   * @default - none
   */
  readonly requiredHeaders?: readonly string[];
  /**
   * Processor settings, only when attaching to a Gateway not managed by an AIGateway: the route then gets its own
   * processor in its namespace, wired through an EnvoyExtensionPolicy selecting this HTTPRoute by label.
   * @default - see ProcessorOptions
   */
  readonly processor?: ProcessorOptions;
  /**
   * Namespace of the Envoy proxy pods, only when attaching to a Gateway not managed by an AIGateway.
   * @default "envoy-gateway-system"
   */
  readonly envoyGatewayNamespace?: string;
  /**
   * Largest accepted request body, only when attaching to a Gateway not managed by an AIGateway (the gateway
   * owner must raise Envoy's buffer limit to match with a ClientTrafficPolicy).
   * @default 52428800 (50 MiB)
   */
  readonly maxRequestBodyBytes?: number;
  /**
   * What the route's money budgets charge per model, only when attaching to a Gateway not managed by an AIGateway
   * (an AIGateway's routes use the gateway's `prices`).
   * @default PriceCatalog.defaults()
   */
  readonly prices?: PriceCatalog;
}

interface BackendEntry {
  readonly name: string;
  readonly backend: ProviderBackend;
  /** The prop that first names this backend, for error messages. */
  readonly prop: string;
}

const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
const DEFAULT_RETRY_STATUS = [502, 503, 504];

/**
 * Routes OpenAI-style (and optionally Anthropic-style) requests by model to provider backends; contributes its
 * rules to the processor config. Emits:
 * - an HTTPRoute with a catch-all rule `PathPrefix <endpoint prefix>` (one match per endpoint) answering 404
 *   (through the HTTPRouteFilter its processor keeps for the namespace), where requests land first, and one rule
 *   per backend matching the header `x-ai-gateway-backend: <backend>` the processor sets, on the endpoint
 *   prefixes, the backend's upstream prefix and `/`. After the processor rewrote the path Envoy matches again; for
 *   every path the processor produces, the backend rule has a path match at least as long as the catch-all's, and
 *   its header breaks the tie (see lib/route-precedence.ts).
 *   Backend rules remove `x-ai-gateway-backend` before the provider (no budget can key on it).
 * - a label on the HTTPRoute naming its processor: the processor's one EnvoyExtensionPolicy in the route's namespace
 *   selects the HTTPRoutes carrying it (`targetSelectors`), enabling the processor on them only; a route with a
 *   fallback rule carries another label instead, selected by the processor's second policy there, which streams the
 *   responses to the processor (`FullDuplexStreamed`, see `Fallback`);
 * - a BackendTrafficPolicy with the circuit breaker of its backends' clusters (`maxParallelRequestsPerBackend`), its
 *   retries, and its budgets on a Gateway not managed by an AIGateway (an AIGateway keeps every budget in its own
 *   policy); when its clients authenticate (the gateway's JWT, consumers), a `responseOverride` turning Envoy's own
 *   plain-text 401 into a JSON `authentication_error` both SDKs read (see auth-error-response.ts). On an AIGateway,
 *   a route with neither retries nor a limit of its own gets none: a second label selects it for the processor's one
 *   BackendTrafficPolicy of the namespace, which holds the default circuit breaker and the same `responseOverride`.
 */
export class AIRoute extends Construct implements IBudgetTarget {
  readonly routeName: string;
  readonly namespace: string;
  /** The gateway this route attaches to. */
  readonly gateway: IGatewayReference;
  /** The processor serving this route (the AIGateway's, or the route's own for an existing Gateway). */
  readonly processor: Processor;
  /** @internal what a budget over this route reads, and the model it contributes to. */
  readonly _budgetScope: BudgetScope;
  private readonly rules: readonly AIRouteRule[];
  private readonly endpoints: RouteEndpoint[];
  private readonly hostnames: string[];
  private readonly requiredHeaders: readonly string[];
  private readonly passthroughEndpoints: PassthroughEndpointConfig[];
  private readonly entries = new Map<ProviderBackend, BackendEntry>();
  private readonly retry?: RetrySpec;
  /** Per rule, its fallback in the processor config (defaults resolved), if it has one. */
  private readonly fallbacks: readonly (FallbackConfig | undefined)[];
  /** Envoy's limit per backend cluster and proxy replica (`maxParallelRequestsPerBackend`). */
  private readonly backendLimit: number;
  /** The AIGateway of this app the route attaches to, if it is one. */
  private readonly managed?: ManagedGateway;
  /** The model of the route's processor: the AIGateway's, or the route's own. */
  private readonly model: GatewayModel;
  private trafficPolicy?: ApiObject;

  constructor(scope: Construct, id: string, props: AIRouteProps) {
    super(scope, id);
    this.namespace = resolveNamespace(this, props.namespace);
    this.routeName = checkLabelName(this, 'name', props.name ?? defaultName(this));
    synthRegistry(this).claimName(this, 'name', { kind: 'HTTPRoute', namespace: this.namespace, name: this.routeName });
    validateUniqueObjects(this);
    this.gateway = props.gateway;
    this.rules = props.rules;
    this.managed = props.gateway._managed;
    checkLabelName(this, 'gateway.gatewayName', props.gateway.gatewayName);
    checkLabelName(this, 'gateway.gatewayNamespace', props.gateway.gatewayNamespace);
    this.endpoints = this.checkEndpoints(props);
    this.hostnames = this.checkHostnames(props.hostnames ?? []);
    this.requiredHeaders = [
      ...new Set((props.requiredHeaders ?? []).map((h) => this.checkHeader('requiredHeaders', h))),
    ];
    const requestTimeout = gatewayDuration(this, 'requestTimeout', props.requestTimeout ?? Duration.seconds(60));
    this.retry = props.retry ? this.retrySpec(props.retry) : undefined;
    if (props.retry?.perTryTimeout) {
      const request = props.requestTimeout ?? Duration.seconds(60);
      checkPerTryTimeout(this, 'retry.perTryTimeout', props.retry.perTryTimeout, request, 'requestTimeout');
    }
    this.validateRules();
    this.fallbacks = this.checkFallbacks((props.requestTimeout ?? Duration.seconds(60)).toMilliseconds());
    this.passthroughEndpoints = this.checkPassthroughEndpoints(props.passthroughEndpoints ?? []);
    this.validateGatewayProps(props);

    if (props.prices !== undefined && !(props.prices instanceof PriceCatalog))
      throw invalid(this, 'prices', props.prices, 'must be a PriceCatalog');
    this.model =
      this.managed?.model ??
      new GatewayModel({
        emitBudgetPolicy: () => this.ensureTrafficPolicy(),
        ...(props.prices ? { prices: props.prices } : {}),
      });
    this.processor = this.managed?.processor ?? this.addOwnProcessor(props);
    this.backendLimit = this.checkBackendLimit(props.maxParallelRequestsPerBackend);
    this.rules.forEach((rule, r) =>
      rule.backends.forEach((ref, b) => this.entryFor(ref.backend, `rules[${r}].backends[${b}].backend`)),
    );
    // Check everything against the processor and the other routes before emitting or contributing anything, so a
    // failed route leaves the gateway untouched.
    const secrets = this.credentialSecrets();
    this.checkAgainstOtherRoutes();

    // On an AIGateway a route whose only traffic setting is the default circuit breaker shares its processor's policy
    // of the namespace; one with settings of its own (or budgets, on another Gateway) keeps a policy of its own.
    const defaultTraffic =
      this.managed !== undefined &&
      this.retry === undefined &&
      this.backendLimit === this.processor.maxParallelRequestsPerProxy;
    // Failing over needs the response streamed to the processor: the processor's full-duplex policy selects the route.
    const attachment = this.processor._attachRoute(this.namespace, {
      defaultTraffic,
      fullDuplexResponses: this.fallbacks.some((fallback) => fallback !== undefined),
    });
    for (const entry of this.entries.values()) entry.backend._grantAccessFrom(this.namespace);
    for (const secret of secrets) this.processor._mountSecret(secret.backend, secret.name, secret.namespace);
    this.emitHttpRoute(props.gateway, requestTimeout, attachment);
    if (!defaultTraffic) this.ensureTrafficPolicy();

    const fragment = this.fragment();
    this.model.addRoute(fragment);
    this.model.onRouteConsumer(fragment.route.name, () => this.emitSecurityPolicy(fragment.route.name));
    this._budgetScope = {
      path: this.node.path,
      authNamespace: this.namespace,
      model: this.model,
      route: { configName: fragment.route.name, fragment },
      ...(this.managed
        ? {
            gateway: {
              path: this.managed.path,
              claimHeaders: this.managed.claimHeaders,
              jwt: this.managed.jwtSpec() !== undefined,
            },
          }
        : {}),
    };
  }

  /**
   * Emits the route's SecurityPolicy when the first consumer attaches to the route. Envoy Gateway lets a route's
   * SecurityPolicy replace the gateway's for that route (no merge), so it repeats the gateway's JWT authentication
   * and the keys of the gateway's consumers beside the route's own (read at synth).
   */
  private emitSecurityPolicy(configName: string): void {
    customResource<SecurityPolicySpec>(
      this,
      'SecurityPolicy',
      ENVOY_GATEWAY_API_VERSION,
      'SecurityPolicy',
      { name: derivedName([this.routeName, 'api-keys']), namespace: this.namespace },
      () => {
        const jwt = this.managed?.jwtSpec();
        return {
          targetRefs: [{ group: GATEWAY_API_GROUP, kind: 'HTTPRoute', name: this.routeName }],
          ...(jwt ? { jwt } : {}),
          apiKeyAuth: apiKeyAuthSpec(this.model.consumersOf(configName), this.namespace, jwt !== undefined),
        };
      },
    );
  }

  /** The client API endpoints: OpenAI at `pathPrefix`, and Anthropic at `anthropicPathPrefix` if set. */
  private checkEndpoints(props: AIRouteProps): RouteEndpoint[] {
    const endpoints: RouteEndpoint[] = [
      { api: 'OpenAI', pathPrefix: this.checkPathPrefix('pathPrefix', props.pathPrefix ?? '/v1') },
    ];
    if (props.anthropicPathPrefix !== undefined) {
      const prefix = this.checkPathPrefix('anthropicPathPrefix', props.anthropicPathPrefix);
      if (prefix === endpoints[0].pathPrefix)
        throw invalid(this, 'anthropicPathPrefix', prefix, 'must differ from pathPrefix');
      endpoints.push({ api: 'Anthropic', pathPrefix: prefix });
    }
    return endpoints;
  }

  /** On an AIGateway: the gateway must admit the route's namespace, and the processor props belong to the gateway. */
  private validateGatewayProps(props: AIRouteProps): void {
    const gateway = this.managed;
    if (!gateway) return;
    const admitted = gateway.allowedRoutes._admits(this.namespace, props.gateway.gatewayNamespace);
    if (admitted === false) {
      throw invalid(
        this,
        'namespace',
        this.namespace,
        `the gateway "${props.gateway.gatewayNamespace}/${props.gateway.gatewayName}" does not ` +
          `admit routes from this namespace; widen its allowedRoutes`,
      );
    }
    if (
      props.processor !== undefined ||
      props.envoyGatewayNamespace !== undefined ||
      props.maxRequestBodyBytes !== undefined ||
      props.prices !== undefined
    ) {
      const prop =
        props.processor !== undefined
          ? 'processor'
          : props.envoyGatewayNamespace !== undefined
            ? 'envoyGatewayNamespace'
            : props.maxRequestBodyBytes !== undefined
              ? 'maxRequestBodyBytes'
              : 'prices';
      throw invalid(
        this,
        prop,
        props.processor ?? props.envoyGatewayNamespace ?? props.maxRequestBodyBytes ?? props.prices,
        'only applies to routes on a Gateway not managed by an AIGateway; configure the AIGateway instead',
      );
    }
    const gatewayName = `${props.gateway.gatewayNamespace}/${props.gateway.gatewayName}`;
    checkRouteHostnames(this, 'hostnames', this.hostnames, gatewayName, gateway.listeners);
  }

  /** The route's own processor, for a Gateway not managed by an AIGateway. */
  private addOwnProcessor(props: AIRouteProps): Processor {
    return new Processor(this, 'Processor', {
      ...props.processor,
      baseName: this.routeName,
      namespace: this.namespace,
      gateway: { name: props.gateway.gatewayName, namespace: props.gateway.gatewayNamespace },
      envoyGatewayNamespace: checkLabelName(
        this,
        'envoyGatewayNamespace',
        props.envoyGatewayNamespace ?? 'envoy-gateway-system',
      ),
      maxRequestBodyBytes: props.maxRequestBodyBytes ?? 50 * 1024 * 1024,
      model: this.model,
    });
  }

  /** The credential Secrets of the backends, checked to be where the processor can mount them. */
  private credentialSecrets(): { backend: ProviderBackend; name: string; namespace: string }[] {
    const secrets = [...this.entries.values()].flatMap((entry) =>
      (entry.backend.credentials?.secrets ?? []).map((secret) => ({
        backend: entry.backend,
        name: secret.secretName,
        namespace: secret.namespace ?? entry.backend.secretNamespaceDefault,
      })),
    );
    for (const secret of secrets) this.processor._checkSecretNamespace(secret.backend, secret.name, secret.namespace);
    return secrets;
  }

  /**
   * Checks the route against the other routes of the gateway (backend headers the gateway budgets count clients
   * by, path precedence, overlapping models), then records its paths and models for the routes that follow.
   */
  private checkAgainstOtherRoutes(): void {
    const gateway = this.managed;
    if (gateway) this.checkBackendHeaders(gateway.model);
    const precedenceIndex = gateway
      ? gateway.model.precedence
      : foreignGatewayIndex(this, this.gateway.gatewayNamespace, this.gateway.gatewayName);
    const precedence = this.precedenceEntry(gateway ? gateway.listeners : [{ name: '*' }]);
    this.checkPrecedence(precedenceIndex, precedence);
    this.indexModels(this.model.modelMatches);
    precedenceIndex.add(precedence);
  }

  /**
   * Emits the HTTPRoute (one rule per backend, then the catch-all 404 answered by the processor's filter of the
   * namespace), labelled for its processor's EnvoyExtensionPolicy to select.
   */
  private emitHttpRoute(gateway: IGatewayReference, requestTimeout: string, attachment: RouteAttachment): void {
    const parentNamespace = gateway.gatewayNamespace === this.namespace ? undefined : gateway.gatewayNamespace;
    const gatewayName = gateway.gatewayName;
    customResource<HTTPRouteSpec>(
      this,
      'HTTPRoute',
      GATEWAY_API_VERSION,
      'HTTPRoute',
      { name: this.routeName, namespace: this.namespace, labels: attachment.labels },
      // Built when rendered, from what the constructor settled: until then an app of many routes keeps no spec per
      // route (a sixth of its heap at 10,000 routes, which every garbage collection of the synth walks).
      () => ({
        parentRefs: [{ group: GATEWAY_API_GROUP, kind: 'Gateway', name: gatewayName, namespace: parentNamespace }],
        hostnames: this.hostnames.length > 0 ? this.hostnames : undefined,
        rules: [
          ...[...this.entries.values()].map((entry) => this.backendRule(entry, requestTimeout)),
          {
            matches: this.endpoints.map((endpoint) => ({
              path: { type: 'PathPrefix' as const, value: endpoint.pathPrefix },
            })),
            filters: [
              {
                type: 'ExtensionRef',
                extensionRef: { group: ENVOY_GATEWAY_GROUP, kind: 'HTTPRouteFilter', name: attachment.notFoundFilter },
              },
            ],
          },
        ],
      }),
    );
  }

  /** The HTTPRoute rule of one backend: matched by the backend header the processor sets. */
  private backendRule(entry: BackendEntry, requestTimeout: string): HTTPRouteRule {
    return {
      matches: this.backendMatchPrefixes(entry.backend).map((prefix) => ({
        path: { type: 'PathPrefix' as const, value: prefix },
        headers: [{ type: 'Exact' as const, name: BACKEND_HEADER, value: entry.name }],
      })),
      filters: [
        // Providers route on Host (and TLS only sets SNI); in-cluster Services don't care.
        ...(entry.backend.isKubernetesService
          ? []
          : [{ type: 'URLRewrite' as const, urlRewrite: { hostname: entry.backend.hostname } }]),
        // Internal to the gateway. Removed by the router after the route is chosen, which also edits the headers the
        // rate-limit filter reads again at stream end: safe only because no budget may key on this header. The
        // model and route headers stay: budgets select on them when they charge the tokens.
        { type: 'RequestHeaderModifier' as const, requestHeaderModifier: { remove: [BACKEND_HEADER] } },
      ],
      backendRefs: [entry.backend._backendRef(this.namespace)],
      timeouts: { request: requestTimeout },
    };
  }

  /** What the route contributes to its processor's model: its config entry, its backends', their header mutations. */
  private fragment(): RouteFragment {
    const entries = [...this.entries.values()];
    return {
      scope: this,
      name: this.routeName,
      namespace: this.namespace,
      route: {
        name: `${this.namespace}/${this.routeName}`,
        endpoints: this.endpoints,
        hostnames: this.hostnames,
        rules: this.rules.map((rule, r) => {
          const fallback = this.fallbacks[r];
          return {
            models: rule.models.map((m) => m._toConfig()),
            backends: rule.backends.map((ref) => ({
              backend: this.entries.get(ref.backend)!.name,
              weight: ref.weight ?? 1,
              priority: ref.priority ?? 0,
              ...(ref.modelNameOverride !== undefined ? { modelNameOverride: ref.modelNameOverride } : {}),
            })),
            ...(fallback !== undefined ? { fallback } : {}),
          };
        }),
        requiredHeaders: [...this.requiredHeaders].sort(),
        ...(this.passthroughEndpoints.length > 0 ? { passthroughEndpoints: this.passthroughEndpoints } : {}),
      },
      backends: entries.map((entry) => entry.backend._toConfig(entry.name)),
      mutatedHeaders: entries.map((entry) => ({
        backendName: entry.backend.backendName,
        headers: entry.backend._mutatedHeaders,
      })),
      modelMatches: this.rules.flatMap((rule) => rule.models),
    };
  }

  /**
   * The route's BackendTrafficPolicy: the circuit breaker of its backends' clusters, its retries, and on a Gateway
   * not managed by an AIGateway its budgets (the budgets of its own model, read at synth).
   */
  private ensureTrafficPolicy(): void {
    this.trafficPolicy ??= customResource<BackendTrafficPolicySpec>(
      this,
      'TrafficPolicy',
      ENVOY_GATEWAY_API_VERSION,
      'BackendTrafficPolicy',
      { name: this.routeName, namespace: this.namespace },
      () => {
        // A route policy replaces the gateway's unless it merges into it, and every AIRoute has one (its backends'
        // circuit breaker): it always merges, so what a Gateway-level policy sets (the AIGateway's budgets, or a
        // user's timeouts and load balancing) still applies to the route. Merging a policy without rate limits keeps
        // the gateway's rules as they are (names and descriptors), so the budgets count here as everywhere.
        const rules = this.managed ? [] : this.model.rules();
        return {
          targetRefs: [{ group: GATEWAY_API_GROUP, kind: 'HTTPRoute', name: this.routeName }],
          mergeType: 'StrategicMerge' as const,
          circuitBreaker: {
            maxConnections: this.backendLimit,
            maxPendingRequests: this.backendLimit,
            maxParallelRequests: this.backendLimit,
          },
          ...(this.retry ? { retry: this.retry } : {}),
          ...(rules.length > 0 ? { rateLimit: { type: 'Global' as const, global: { rules } } } : {}),
          ...this.authenticationErrors(),
        };
      },
    );
  }

  /**
   * Envoy's own 401s reshaped into the client's error schema when the route's clients authenticate (the gateway's
   * JWT, or consumers of the gateway or of this route; read at synth): see auth-error-response.ts. Every AIRoute's
   * policy carries the override itself, so it reaches AI routes only (ordinary HTTPRoutes on the Gateway keep
   * Envoy's plain 401), on any gateway, and a route consumer's own SecurityPolicy is covered too.
   */
  private authenticationErrors(): { responseOverride?: ResponseOverrideSpec[] } {
    const configName = this._budgetScope.route?.configName;
    const responseOverride = authenticationErrorOverride({
      jwt: this.managed?.jwtSpec() !== undefined,
      apiKeys: configName !== undefined && this.model.consumersOf(configName).length > 0,
    });
    return responseOverride ? { responseOverride } : {};
  }

  private entryFor(backend: ProviderBackend, prop: string): BackendEntry {
    let entry = this.entries.get(backend);
    if (!entry) {
      let name = `${backend.backendName}.${backend.namespace}.${this.routeName}.${this.namespace}`;
      if (name.length > MAX_SUBDOMAIN_LENGTH) name = `${backend.backendName}.${shortHash(name, 16)}`;
      entry = { name, backend, prop };
      const clash = sameBackendNameError(this, entry, this.entries.values());
      if (clash) throw clash;
      this.entries.set(backend, entry);
    }
    return entry;
  }

  /** The PathPrefix values of a backend rule (each together with the backend header). */
  private backendMatchPrefixes(backend: ProviderBackend): string[] {
    return [...new Set([...this.endpoints.map((endpoint) => endpoint.pathPrefix), backend.upstreamPathPrefix, '/'])];
  }

  private precedenceEntry(listeners: readonly { name: string; hostname?: string }[]): IndexedRoute {
    const catchAll = new Map<string, string>();
    this.endpoints.forEach((endpoint, i) =>
      catchAll.set(endpoint.pathPrefix, i === 0 ? 'pathPrefix' : 'anthropicPathPrefix'),
    );
    return {
      owner: this.node.path,
      virtualHosts: virtualHostsOf(listeners, this.hostnames),
      catchAll,
      backends: [...this.entries.values()].map((entry) => ({
        prop: entry.prop,
        name: entry.backend.backendName,
        upstreamPrefix: entry.backend.upstreamPathPrefix,
        matchPrefixes: this.backendMatchPrefixes(entry.backend),
        forwardsClientPath:
          entry.backend.schema.name === 'OpenAI' && entry.backend.upstreamPathPrefix === this.endpoints[0].pathPrefix,
      })),
      processor: `${this.processor.namespace}/${this.processor.serviceName}`,
    };
  }

  /** Throws if another route's catch-all on a shared listener and host out-ranks a backend rule of either route. */
  private checkPrecedence(index: RoutePrecedenceIndex, entry: IndexedRoute): void {
    const tie = index.findProcessorTie(entry);
    if (tie) {
      throw invalid(
        this,
        entry.catchAll.get(tie.prefix)!,
        tie.prefix,
        `is also the path prefix of route ${tie.other.owner} (listener ` +
          `${tie.virtualHost.replace('|', ' host ')}), which has its own processor: ` +
          "Envoy sends the requests of both routes to the older route's processor, which knows only its own models; " +
          'use other hostnames or path prefixes, or attach both routes to one AIGateway',
      );
    }
    const conflict = index.findConflict(entry);
    if (!conflict) return;
    const host = conflict.virtualHost.replace('|', ' host ');
    if (conflict.loser === entry) {
      throw invalid(
        this,
        conflict.backend.prop,
        conflict.backend.name,
        `after the processor rewrites a request for this backend to "${conflict.paths}" or below, ` +
          `Envoy re-matches it and the catch-all ` +
          `PathPrefix "${conflict.prefix}" of route ${conflict.winner.owner} (listener ${host}) ` +
          `out-ranks this backend's rule (a longer path prefix wins); ` +
          'give the routes different hostnames or that route another path prefix',
      );
    }
    throw invalid(
      this,
      entry.catchAll.get(conflict.prefix)!,
      conflict.prefix,
      `out-ranks the rule of backend "${conflict.backend.name}" of route ${conflict.loser.owner} ` +
        `(listener ${host}) for its upstream paths ` +
        `"${conflict.paths}" and below: after the processor rewrites those requests, Envoy would ` +
        `match this route's 404 rule instead (a longer path prefix wins); ` +
        'use other hostnames or another path prefix',
    );
  }

  /** Throws if a backend's header mutation changes a header a gateway budget identifies clients by. */
  private checkBackendHeaders(model: GatewayModel): void {
    // Most backends change no header: the gateway's budgets are listed only for one that does.
    let clientHeaders: ReturnType<GatewayModel['gatewayClientHeaders']> | undefined;
    for (const entry of this.entries.values()) {
      for (const header of entry.backend._mutatedHeaders) {
        clientHeaders ??= model.gatewayClientHeaders();
        const budget = clientHeaders.find((h) => h.header === header);
        if (budget) {
          throw invalid(
            this,
            entry.prop,
            entry.backend.backendName,
            `its headerMutation changes "${header}", which the gateway budget ${budget.owner} ` +
              `identifies clients by; budgets read it after the change`,
          );
        }
      }
    }
  }

  private validateRules(): void {
    if (!this.rules || this.rules.length === 0) {
      throw invalid(this, 'rules', this.rules, 'a route needs at least one rule with backends');
    }
    const seen: { match: ModelMatch; rule: number }[] = [];
    const distinctBackends = new Set<ProviderBackend>();
    this.rules.forEach((rule, r) => {
      if (!rule.models || rule.models.length === 0)
        throw invalid(this, `rules[${r}].models`, rule.models, 'needs at least one ModelMatch');
      if (!rule.backends || rule.backends.length === 0) {
        throw invalid(
          this,
          `rules[${r}].backends`,
          rule.backends,
          'a rule without backends cannot serve its models; add at least one backend',
        );
      }
      rule.models.forEach((match, m) => {
        const prop = `rules[${r}].models[${m}]`;
        if (!(match instanceof ModelMatch))
          throw invalid(this, prop, match, 'must be created with ModelMatch.exact/prefix/regex');
        if (match.value.length === 0) throw invalid(this, prop, match.toString(), 'must not be empty');
        if (match.type === 'RegularExpression') {
          const problem = re2Problem(match.value);
          if (problem !== undefined)
            throw invalid(this, prop, match.toString(), `is not a regular expression RE2 can run (${problem})`);
        }
        for (const earlier of seen) {
          if (earlier.match.type === match.type && earlier.match.value === match.value) {
            throw invalid(this, prop, match.toString(), `duplicates the match of rules[${earlier.rule}]`);
          }
          if (match.isCoveredBy(earlier.match)) {
            throw invalid(
              this,
              prop,
              match.toString(),
              `is shadowed by ${earlier.match.toString()} of rules[${earlier.rule}], which is tried first`,
            );
          }
        }
        seen.push({ match, rule: r });
      });
      let positive = false;
      rule.backends.forEach((ref, b) => {
        const prop = `rules[${r}].backends[${b}]`;
        if (!(ref?.backend instanceof ProviderBackend))
          throw invalid(this, `${prop}.backend`, ref?.backend, 'must be a ProviderBackend');
        const weight = ref.weight ?? 1;
        if (!Number.isInteger(weight) || weight < 0)
          throw invalid(this, `${prop}.weight`, weight, 'must be a non-negative integer');
        if (weight > 0) positive = true;
        const priority = ref.priority ?? 0;
        if (!Number.isInteger(priority) || priority < 0)
          throw invalid(this, `${prop}.priority`, priority, 'must be a non-negative integer');
        if (ref.modelNameOverride !== undefined && ref.modelNameOverride.length === 0) {
          throw invalid(this, `${prop}.modelNameOverride`, ref.modelNameOverride, 'must not be empty');
        }
        distinctBackends.add(ref.backend);
      });
      if (!positive)
        throw invalid(
          this,
          `rules[${r}].backends`,
          rule.backends.map((ref) => ref.weight),
          'at least one weight must be positive',
        );
    });
    if (distinctBackends.size > MAX_BACKENDS_PER_ROUTE) {
      throw invalid(
        this,
        'rules',
        `${distinctBackends.size} backends`,
        `an HTTPRoute holds at most ${CRD_LIMITS.httpRouteRules.maxItems} rules (one per backend plus the 404 rule); ` +
          `split the route, at most ${MAX_BACKENDS_PER_ROUTE} backends each`,
      );
    }
  }

  /** Each rule's fallback checked against its backends and resolved for the processor config (see `Fallback`). */
  private checkFallbacks(requestTimeoutMs: number): (FallbackConfig | undefined)[] {
    return this.rules.map((rule, r) => {
      if (rule.fallback === undefined) return undefined;
      const prop = `rules[${r}].fallback`;
      if (!(rule.fallback instanceof Fallback))
        throw invalid(this, prop, rule.fallback, 'must be created with Fallback.onFailure()');
      return rule.fallback._toConfig(this, prop, {
        weightedPriorities: rule.backends.filter((ref) => (ref.weight ?? 1) > 0).map((ref) => ref.priority ?? 0),
        requestTimeoutMs,
      });
    });
  }

  private indexModels(index: ModelMatchIndex): void {
    const owner = this.node.path;
    const pending: [string, ModelMatch][] = [];
    for (const endpoint of this.endpoints) {
      const key = `${endpoint.api} ${endpoint.pathPrefix}`;
      for (const rule of this.rules) {
        for (const match of rule.models) {
          const conflict = index.findConflict(key, { match, owner, hostnames: this.hostnames });
          if (conflict) {
            throw invalid(
              this,
              'rules.models',
              match.toString(),
              `overlaps ${conflict.match.toString()} of route ${conflict.owner} on the same gateway, path ` +
                `"${endpoint.pathPrefix}" and hosts; a request would be routed ambiguously`,
            );
          }
          pending.push([key, match]);
        }
      }
    }
    for (const [key, match] of pending) index.add(key, { match, owner, hostnames: this.hostnames });
  }

  private checkPathPrefix(prop: string, prefix: string): string {
    if (!isCleanPathPrefix(prefix))
      throw invalid(
        this,
        prop,
        prefix,
        'must be a path starting with "/" without a trailing "/", "//", "." or ".." segments',
      );
    return prefix;
  }

  private checkPassthroughEndpoints(endpoints: readonly PassthroughEndpoint[]): PassthroughEndpointConfig[] {
    if (!isList(endpoints))
      throw invalid(this, 'passthroughEndpoints', endpoints, 'must be a list of { path, methods }');
    const checked = endpoints.map((endpoint, i): PassthroughEndpointConfig => {
      const prop = `passthroughEndpoints[${i}]`;
      const problem = passthroughPathProblem(endpoint?.path);
      if (problem !== undefined) throw invalid(this, `${prop}.path`, endpoint?.path, problem);
      const first = endpoints.findIndex((other) => other.path === endpoint.path);
      if (first !== i)
        throw invalid(
          this,
          `${prop}.path`,
          endpoint.path,
          `duplicates passthroughEndpoints[${first}]; list its methods once`,
        );
      const methods = endpoint.methods ?? ['POST'];
      if (!isList(methods) || methods.length === 0)
        throw invalid(this, `${prop}.methods`, methods, 'must list at least one method');
      methods.forEach((method, m) => {
        if (!(PASSTHROUGH_METHODS as readonly string[]).includes(method)) {
          throw invalid(
            this,
            `${prop}.methods[${m}]`,
            method,
            `must be one of ${PASSTHROUGH_METHODS.join(', ')}: the processor picks the backend by the ` +
              `JSON body's "model", so only methods with a body can be routed`,
          );
        }
        if (methods.indexOf(method) !== m) throw invalid(this, `${prop}.methods[${m}]`, method, 'is listed twice');
      });
      return { path: endpoint.path, methods: [...methods] };
    });
    if (
      checked.length > 0 &&
      !this.rules.some((rule) =>
        rule.backends.some((ref) => (PASSTHROUGH_SCHEMAS as readonly string[]).includes(ref.backend.schema.name)),
      )
    ) {
      throw invalid(
        this,
        'passthroughEndpoints',
        checked.map((endpoint) => endpoint.path),
        'no backend of this route can serve them: only OpenAI-schema backends (openAI, ' +
          'openAICompatible, azureOpenAI, kubernetesService) forward passthrough requests',
      );
    }
    return checked;
  }

  private checkHostnames(hostnames: readonly string[]): string[] {
    const max = CRD_LIMITS.httpRouteHostnames.maxItems;
    if (hostnames.length > max) {
      throw invalid(this, 'hostnames', hostnames, `an HTTPRoute allows at most ${max} hostnames`);
    }
    return hostnames.map((hostname) => checkHostname(this, 'hostnames', hostname, { wildcard: true }));
  }

  private checkHeader(prop: string, header: string): string {
    if (typeof header !== 'string' || !HEADER_NAME.test(header))
      throw invalid(this, prop, header, 'must be a lower-case HTTP header name');
    return header;
  }

  private checkBackendLimit(limit: number | undefined): number {
    if (limit === undefined) return this.processor.maxParallelRequestsPerProxy;
    const { maximum, kind, field } = CRD_LIMITS.backendMaxParallelRequests;
    if (!Number.isInteger(limit) || limit < 1 || limit > maximum) {
      throw invalid(
        this,
        'maxParallelRequestsPerBackend',
        limit,
        `must be an integer from 1 to ${maximum} (the ${kind} field ${field}); 0 would refuse every request`,
      );
    }
    return limit;
  }

  private retrySpec(retry: RouteRetry): RetrySpec {
    if (!Number.isInteger(retry.attempts) || retry.attempts < 1)
      throw invalid(this, 'retry.attempts', retry.attempts, 'must be a positive integer');
    const codes = retry.statusCodes ?? DEFAULT_RETRY_STATUS;
    for (const code of codes) {
      if (!Number.isInteger(code) || code < 400 || code > 599)
        throw invalid(this, 'retry.statusCodes', code, 'must be HTTP error status codes (400-599)');
    }
    return {
      numRetries: retry.attempts,
      retryOn: {
        triggers: ['connect-failure', 'refused-stream', 'reset', 'retriable-status-codes'],
        httpStatusCodes: [...codes],
      },
      ...(retry.perTryTimeout
        ? { perRetry: { timeout: gatewayDuration(this, 'retry.perTryTimeout', retry.perTryTimeout) } }
        : {}),
    };
  }
}

/**
 * `Array.isArray` without its type guard: a typed list that fails the check is a caller's mistake (plain JavaScript),
 * and the guard would otherwise widen the checked value to `any[]`.
 */
function isList(value: unknown): boolean {
  return Array.isArray(value);
}
