import { ApiObject, Duration, Size } from 'cdk8s';
import { Construct } from 'constructs';
import {
  ENVOY_GATEWAY_API_VERSION,
  GATEWAY_API_GROUP,
  GATEWAY_API_VERSION,
  clusterScoped,
  customResource,
  type BackendTrafficPolicySpec,
  type ClientTrafficPolicySpec,
  type GatewayListener,
  type ApiKeyAuthSpec,
  type GatewaySpec,
  type JwtSpec,
  type SecurityPolicySpec,
  gatewayDuration,
} from './crds';
import {
  BACKEND_HEADER,
  CLIENT_ID_HEADER,
  CONSUMER_HEADER,
  MODEL_HEADER,
  ROUTE_HEADER,
} from '@ai-gateway-constructs/processor-config';
import { invalid } from './errors';
import { checkCrdList } from './limits/crd-field';
import { CRD_LIMITS } from './limits/crd-limits.generated';
import { checkLabels } from './limits/metadata';
import { synthRegistry } from './limits/registry';
import { validateUniqueObjects } from './limits/unique-objects';
import { GatewayModel, type BudgetScope, type ConsumerFragment } from './gateway-model';
import { PriceCatalog } from './money';
import { checkHostname, checkLabelName, defaultName, derivedName, resolveNamespace } from './names';
import {
  EnvoyProxyReference,
  GatewayProxy,
  checkEnvoyProxyReference,
  explicitProxySettings,
  gatewayProxyName,
  infrastructureRef,
  needsEnvoyProxy,
  tracingEnabled,
  type ProxyOptions,
} from './envoy-proxy';
import { Observability, processorTracingArgs, type ObservabilityOptions } from './observability';
import { Processor, ProxyDeployMode, type ProcessorOptions } from './processor';
import type { IBudgetTarget } from './budget';

/** Headers only the gateway sets, stripped from every client request (ClientTrafficPolicy `earlyRequestHeaders`). */
const GATEWAY_OWNED_HEADERS = [BACKEND_HEADER, MODEL_HEADER, ROUTE_HEADER, CONSUMER_HEADER, CLIENT_ID_HEADER];

/** A Gateway that AIRoutes can attach to. */
export interface IGatewayReference {
  readonly gatewayName: string;
  readonly gatewayNamespace: string;
  /** @internal set by an AIGateway of this app: routes attaching to it share its processor and model. */
  readonly _managed?: ManagedGateway;
}

/** A Gateway created elsewhere (not by an AIGateway in this app). */
export class GatewayReference implements IGatewayReference {
  /** References the Gateway `name` in `namespace`. */
  static fromName(name: string, namespace: string): GatewayReference {
    return new GatewayReference(name, namespace);
  }

  private constructor(
    readonly gatewayName: string,
    readonly gatewayNamespace: string,
  ) {}
}

/** Which namespaces may attach routes to the gateway's listeners. */
export class AllowedRoutes {
  /** Routes from the gateway's namespace only (Gateway API default). */
  static sameNamespace(): AllowedRoutes {
    return new AllowedRoutes('Same');
  }

  /** Routes from any namespace. */
  static allNamespaces(): AllowedRoutes {
    return new AllowedRoutes('All');
  }

  /** Routes from the named namespaces (selected by their `kubernetes.io/metadata.name` label). */
  static fromNamespaces(...names: string[]): AllowedRoutes {
    if (names.length === 0) throw new Error('AllowedRoutes.fromNamespaces needs at least one namespace name');
    return new AllowedRoutes('Names', names);
  }

  /** Routes from namespaces carrying all of these labels. */
  static fromNamespaceLabels(labels: Record<string, string>): AllowedRoutes {
    return new AllowedRoutes('Labels', undefined, labels);
  }

  private constructor(
    private readonly mode: 'Same' | 'All' | 'Names' | 'Labels',
    private readonly names?: readonly string[],
    private readonly labels?: Record<string, string>,
  ) {}

  /** @internal false when a route in `routeNamespace` certainly cannot attach; undefined when it depends on labels. */
  _admits(routeNamespace: string, gatewayNamespace: string): boolean | undefined {
    switch (this.mode) {
      case 'Same':
        return routeNamespace === gatewayNamespace;
      case 'All':
        return true;
      case 'Names':
        return this.names!.includes(routeNamespace);
      case 'Labels':
        return undefined;
    }
  }

  /** @internal the namespace labels routes' namespaces must carry (`fromNamespaceLabels`), else undefined. */
  get _labels(): Record<string, string> | undefined {
    return this.labels;
  }

  /** @internal */
  _toSpec(): GatewayListener['allowedRoutes'] {
    const kinds = [{ group: GATEWAY_API_GROUP, kind: 'HTTPRoute' as const }];
    switch (this.mode) {
      case 'Same':
        return { namespaces: { from: 'Same' }, kinds };
      case 'All':
        return { namespaces: { from: 'All' }, kinds };
      case 'Names':
        return {
          namespaces: {
            from: 'Selector',
            selector: {
              matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [...this.names!] }],
            },
          },
          kinds,
        };
      case 'Labels':
        return { namespaces: { from: 'Selector', selector: { matchLabels: { ...this.labels! } } }, kinds };
    }
  }
}

/** The GatewayClass of the gateway. */
export class GatewayClass {
  /** Emits a GatewayClass named `name` for Envoy Gateway's controller. */
  static create(name: string): GatewayClass {
    return new GatewayClass(name, true);
  }

  /** Uses an existing GatewayClass (e.g. `eg` from the Envoy Gateway quickstart). */
  static fromName(name: string): GatewayClass {
    return new GatewayClass(name, false);
  }

  private constructor(
    readonly name: string,
    readonly emit: boolean,
  ) {}
}

export interface HttpListenerOptions {
  /**
   * Whether to open a plain HTTP listener.
   * @default true
   */
  readonly enabled?: boolean;
  /** @default 80 */
  readonly port?: number;
  /**
   * Host this listener answers for.
   * @default - any host
   */
  readonly hostname?: string;
}

export interface HttpsListenerOptions {
  /** @default 443 */
  readonly port?: number;
  /**
   * Host this listener answers for.
   * @default - any host
   */
  readonly hostname?: string;
  /** Names of `kubernetes.io/tls` Secrets in the gateway's namespace. */
  readonly certificateSecretNames: readonly string[];
}

/**
 * JWT authentication at the gateway (Envoy Gateway SecurityPolicy); requests without a valid token get 401 (on
 * AIRoutes as a JSON `authentication_error` both SDKs read: see AIRoute).
 */
export interface JwtAuthenticationOptions {
  /** Expected `iss` claim. */
  readonly issuer: string;
  /** HTTPS URL of the issuer's JSON Web Key Set. */
  readonly jwksUri: string;
  /**
   * Accepted `aud` values.
   * @default - any audience
   */
  readonly audiences?: readonly string[];
  /**
   * Claims copied into request headers, e.g. `{ tenant: 'x-tenant-id' }`, so token budgets can key on them with
   * `ClientIdentity.header('x-tenant-id')`. Clients cannot send these headers themselves: the gateway strips
   * them before authentication.
   * @default - none
   */
  readonly claimToHeaders?: Record<string, string>;
}

export interface AIGatewayProps {
  /**
   * Name of the Gateway; also the stem of the processor's object names.
   * @default - derived from the construct path
   */
  readonly name?: string;
  /**
   * Namespace of the Gateway, the processor and the policies.
   * @default - the chart's namespace, else "default"
   */
  readonly namespace?: string;
  /**
   * GatewayClass to use or emit.
   * @default GatewayClass.create(<gateway name>)
   */
  readonly gatewayClass?: GatewayClass;
  /**
   * Plain HTTP listener.
   * @default - port 80, any host
   */
  readonly http?: HttpListenerOptions;
  /**
   * HTTPS listener terminating TLS with the given certificates.
   * @default - no HTTPS listener
   */
  readonly https?: HttpsListenerOptions;
  /**
   * Namespaces whose routes may attach.
   * @default AllowedRoutes.sameNamespace()
   */
  readonly allowedRoutes?: AllowedRoutes;
  /**
   * Largest request body Envoy buffers (ClientTrafficPolicy `connection.bufferLimit`) and the processor accepts.
   * Envoy Gateway's default of 32 KiB answers larger chat requests with 413.
   * @default Size.mebibytes(50)
   */
  readonly requestBufferLimit?: Size;
  /**
   * Namespace Envoy Gateway runs in, and with it the proxy pods of this gateway (the processor's NetworkPolicy
   * admits them), unless `processor.proxyDeployMode` is `ProxyDeployMode.gatewayNamespace()`.
   * @default "envoy-gateway-system"
   */
  readonly envoyGatewayNamespace?: string;
  /**
   * The drain time of this gateway's Envoy proxies: `spec.shutdown.drainTimeout` of the EnvoyProxy that configures
   * them. Given this, synth fails when a route allows longer requests than the proxies drain for (a proxy rollout
   * would cut them). `processor.shutdown().longestRequest` tells the drain the routes need. When the gateway emits
   * an EnvoyProxy of its own (see `proxy`), it sets this drain time there; otherwise the EnvoyProxy of the
   * GatewayClass (or `envoyProxy`) must carry it.
   * @default - not checked (Envoy Gateway's own default drain is 60 s)
   */
  readonly proxyDrainTimeout?: Duration;
  /**
   * The processor workload.
   * @default - see ProcessorOptions
   */
  readonly processor?: ProcessorOptions;
  /**
   * Require a JWT on every request and copy claims into headers. With consumers (API keys) as well, a request needs
   * both: the JWT in `authorization`, the key in `x-api-key`.
   * @default - no JWT authentication at the gateway
   */
  readonly jwt?: JwtAuthenticationOptions;
  /**
   * What money budgets (SpendLimit, consumers' money budgets) of the gateway and its routes charge per model.
   * @default PriceCatalog.defaults()
   */
  readonly prices?: PriceCatalog;
  /**
   * Prometheus Operator objects (PodMonitors for the processor and the proxies, a PrometheusRule with recording
   * rules and alerts) and a Grafana dashboard for this gateway, e.g. `{ prometheus: true, grafanaDashboard: true }`
   * with `processor.metricsNamespace` set to Prometheus' namespace. See docs/observability.md.
   * @default - none
   */
  readonly observability?: ObservabilityOptions;
  /**
   * The gateway's proxy pods: replicas or autoscaling, resources, a JSON access log and Envoy's tracing. Any of them
   * (including the access log and tracing `observability` turns on) makes the gateway emit an EnvoyProxy
   * `<gateway>-proxy` that the Gateway's `spec.infrastructure.parametersRef` names, merged over the GatewayClass's
   * EnvoyProxy (`proxy.mergeType`). Refused with `ProxyDeployMode.mergedGateways()`: Envoy Gateway ignores a
   * Gateway's EnvoyProxy under a class that merges gateways. See docs/observability.md.
   * @default - no EnvoyProxy unless `observability` turns on the access log or tracing
   */
  readonly proxy?: ProxyOptions;
  /**
   * An EnvoyProxy of your own in the gateway's namespace, for the Gateway's `spec.infrastructure.parametersRef`
   * (which has no namespace). The gateway then emits no EnvoyProxy: `proxy` settings are refused, and the access log
   * and tracing `observability` would turn on are left to yours. Refused with `ProxyDeployMode.mergedGateways()`.
   * @default - the EnvoyProxy the gateway emits when `proxy` or `observability` needs one, else none
   */
  readonly envoyProxy?: EnvoyProxyReference;
}

/**
 * @internal What an AIGateway of this app shares with the AIRoutes attaching to it: read-only data, and the model
 * the routes contribute their fragments to.
 */
export interface ManagedGateway {
  /** Construct path of the AIGateway. */
  readonly path: string;
  readonly processor: Processor;
  readonly model: GatewayModel;
  readonly allowedRoutes: AllowedRoutes;
  /** The listeners (name and hostname) routes attach to. */
  readonly listeners: readonly { readonly name: string; readonly hostname?: string }[];
  /** Headers the JWT authentication sets from claims (clients cannot set them). */
  readonly claimHeaders: readonly string[];
  /** Namespace of the Gateway and its SecurityPolicy. */
  readonly namespace: string;
  /**
   * The gateway's JWT authentication as its SecurityPolicy carries it (read at synth), for route policies that
   * replace the gateway's; undefined without `jwt`.
   */
  readonly jwtSpec: () => JwtSpec | undefined;
}

/**
 * A Gateway for AI traffic on Envoy Gateway: the Gateway (and optionally its GatewayClass), a
 * ClientTrafficPolicy raising the request buffer limit, and the processor (ext_proc), which every AIRoute
 * enables on its own HTTPRoute (ordinary HTTPRoutes on the Gateway never reach it). Every token budget of the
 * gateway and of its AIRoutes goes into one BackendTrafficPolicy on the Gateway (see `emitBudgetPolicy`).
 *
 * Routes and budgets never call into the gateway: they add read-only fragments to its model (`GatewayModel`),
 * which the processor's config, its drain time and the budget policy read at synth.
 */
export class AIGateway extends Construct implements IGatewayReference, IBudgetTarget {
  /** References a Gateway not managed by this app (routes attaching to it bring their own processor). */
  static fromGatewayName(name: string, namespace: string): IGatewayReference {
    return GatewayReference.fromName(name, namespace);
  }

  readonly gatewayName: string;
  readonly gatewayNamespace: string;
  /** Name of the processor's Service (port 9002 gRPC, 9090 admin). */
  readonly processorServiceName: string;
  /**
   * Name of the (first) ConfigMap of the processor's config: its `config.json`, or the manifest and first part of a
   * config too large for one ConfigMap.
   */
  readonly configMapName: string;
  /**
   * Name of the processor's ServiceAccount (annotate it for IRSA / workload identity via
   * `processor.serviceAccountAnnotations`).
   */
  readonly serviceAccountName: string;
  readonly gatewayClassName: string;
  readonly processor: Processor;
  readonly allowedRoutes: AllowedRoutes;
  /** @internal what routes attaching to this gateway read, and the model they contribute to. */
  readonly _managed: ManagedGateway;
  /** @internal what a budget over this gateway reads, and the model it contributes to. */
  readonly _budgetScope: BudgetScope;
  private readonly model: GatewayModel;
  private readonly jwtSpec?: JwtSpec;
  private securityPolicyEmitted = false;

  constructor(scope: Construct, id: string, props: AIGatewayProps = {}) {
    super(scope, id);
    this.gatewayNamespace = resolveNamespace(this, props.namespace);
    this.gatewayName = checkLabelName(this, 'name', props.name ?? defaultName(this), { startWithLetter: true });
    const gatewayObject = { kind: 'Gateway', namespace: this.gatewayNamespace, name: this.gatewayName };
    synthRegistry(this).claimName(this, 'name', gatewayObject);
    validateUniqueObjects(this);
    this.allowedRoutes = props.allowedRoutes ?? AllowedRoutes.sameNamespace();
    checkLabels(this, 'allowedRoutes', this.allowedRoutes._labels);
    const envoyGatewayNamespace = checkLabelName(
      this,
      'envoyGatewayNamespace',
      props.envoyGatewayNamespace ?? 'envoy-gateway-system',
    );
    const bufferBytes = this.requestBufferBytes(props.requestBufferLimit ?? Size.mebibytes(50));
    const gatewayClass = props.gatewayClass ?? GatewayClass.create(this.gatewayName);
    this.gatewayClassName = checkLabelName(this, 'gatewayClass', gatewayClass.name);

    if (gatewayClass.emit) this.emitGatewayClass();
    const proxy = this.proxyParameters(props, gatewayClass.emit);
    const listeners = this.emitGateway(props, proxy.name);
    if (props.prices !== undefined && !(props.prices instanceof PriceCatalog))
      throw invalid(this, 'prices', props.prices, 'must be a PriceCatalog');
    const jwt = props.jwt ? this.checkJwt(props.jwt) : undefined;
    const claimHeaders = jwt ? (jwt.providers[0].claimToHeaders ?? []).map((c) => c.header) : [];
    this.model = new GatewayModel({
      emitBudgetPolicy: () => this.emitBudgetPolicy(),
      emitAuthPolicy: () => this.emitSecurityPolicy(),
      scopedByRouteHeader: true,
      ...(props.prices ? { prices: props.prices } : {}),
    });
    this.jwtSpec = jwt;
    if (jwt) this.emitSecurityPolicy();
    this.emitClientTrafficPolicy(bufferBytes, claimHeaders);
    this.validateProcessorPlacement(props, gatewayClass);

    this.processor = this.addProcessor(props, envoyGatewayNamespace, bufferBytes);
    this.processorServiceName = this.processor.serviceName;
    this.configMapName = this.processor.configMapName;
    this.serviceAccountName = this.processor.serviceAccountName;
    if (proxy.emit) this.addProxy(props, gatewayClass.emit);
    if (props.observability) this.addObservability(props, props.observability, envoyGatewayNamespace);
    this._managed = {
      path: this.node.path,
      processor: this.processor,
      model: this.model,
      allowedRoutes: this.allowedRoutes,
      listeners: listeners.map((l) => ({
        name: l.name,
        ...(l.hostname !== undefined ? { hostname: l.hostname } : {}),
      })),
      claimHeaders,
      namespace: this.gatewayNamespace,
      jwtSpec: () => this.jwtWithClaims(),
    };
    this._budgetScope = {
      path: this.node.path,
      authNamespace: this.gatewayNamespace,
      model: this.model,
      gateway: { path: this.node.path, claimHeaders, jwt: jwt !== undefined },
    };
  }

  /** The JWT authentication, with the claims budgets count by (`ClientIdentity.jwtClaim`) copied into headers too. */
  private jwtWithClaims(): JwtSpec | undefined {
    const jwt = this.jwtSpec;
    if (!jwt) return undefined;
    const own = jwt.providers[0].claimToHeaders ?? [];
    const added = this.model
      .budgetClaims()
      .filter((c) => !own.some((o) => o.claim === c.claim && o.header === c.header));
    const claimToHeaders = [...own, ...added];
    return {
      providers: [{ ...jwt.providers[0], ...(claimToHeaders.length > 0 ? { claimToHeaders } : {}) }],
    };
  }

  /** Whether the gateway or its routes have budgets (token or money budgets, or consumers' own budgets). */
  get hasBudgets(): boolean {
    return this.model.budgets.length > 0 || this.model.consumers.some((c) => c.budgets.length > 0);
  }

  /** The request buffer limit in bytes. */
  private requestBufferBytes(limit: Size): number {
    const bufferBytes = Math.round(limit.toKibibytes() * 1024);
    if (!(bufferBytes >= 1024))
      throw invalid(this, 'requestBufferLimit', `${bufferBytes} bytes`, 'must be at least 1 KiB');
    return bufferBytes;
  }

  private emitGatewayClass(): void {
    synthRegistry(this).claimName(this, 'gatewayClass', { kind: 'GatewayClass', name: this.gatewayClassName });
    clusterScoped(
      new ApiObject(this, 'GatewayClass', {
        apiVersion: GATEWAY_API_VERSION,
        kind: 'GatewayClass',
        metadata: { name: this.gatewayClassName },
        spec: { controllerName: 'gateway.envoyproxy.io/gatewayclass-controller' },
      }),
    );
  }

  /**
   * The EnvoyProxy the Gateway names (`envoyProxy`, or `<gateway>-proxy` when `proxy` or `observability` needs one),
   * and whether to emit it. `observability` alone turns it on only where the GatewayClass is emitted here: a
   * platform's class may have an EnvoyProxy of its own, whose lists (access log sinks) a merged one would replace.
   * Under merged gateways Envoy Gateway ignores a Gateway's EnvoyProxy: explicit settings are refused there, and the
   * ones `observability` would turn on are left to the GatewayClass's EnvoyProxy.
   */
  private proxyParameters(props: AIGatewayProps, observabilityDefaults: boolean): { name?: string; emit: boolean } {
    const explicit = explicitProxySettings(props.proxy);
    if (props.processor?.proxyDeployMode?._kind === 'MergedGateways') {
      const [prop, value] = props.envoyProxy !== undefined ? ['envoyProxy', props.envoyProxy] : (explicit[0] ?? []);
      if (prop !== undefined) {
        throw invalid(
          this,
          prop,
          value,
          `Envoy Gateway ignores a Gateway's EnvoyProxy when the EnvoyProxy of its GatewayClass ` +
            `"${this.gatewayClassName}" merges gateways (processor.proxyDeployMode is mergedGateways); set it on ` +
            `the GatewayClass's EnvoyProxy instead`,
        );
      }
      return { emit: false };
    }
    if (props.envoyProxy !== undefined) {
      const name = checkEnvoyProxyReference(this, props.envoyProxy);
      if (explicit.length > 0) {
        throw invalid(
          this,
          explicit[0][0],
          explicit[0][1],
          `the gateway uses the EnvoyProxy "${name}" of envoyProxy, which this setting would not reach; ` +
            `set it there, or drop envoyProxy`,
        );
      }
      return { name, emit: false };
    }
    const grpcPort = props.proxy?.otlpGrpcPort;
    if (
      grpcPort !== undefined &&
      !tracingEnabled(props.proxy ?? {}, props.observability?.otlpEndpoint, observabilityDefaults)
    ) {
      throw invalid(
        this,
        'proxy.otlpGrpcPort',
        grpcPort,
        "is the port of Envoy's tracing, which is off: it needs an http observability.otlpEndpoint, " +
          'and proxy.tracing not false',
      );
    }
    if (!needsEnvoyProxy(props.proxy, props.observability ?? {}, observabilityDefaults)) return { emit: false };
    return { name: gatewayProxyName(this.gatewayName), emit: true };
  }

  /** The gateway's EnvoyProxy (after the processor, which checked the observability options). */
  private addProxy(props: AIGatewayProps, observabilityDefaults: boolean): GatewayProxy {
    const observability = props.observability ?? {};
    return new GatewayProxy(this, 'Proxy', {
      gatewayName: this.gatewayName,
      gatewayNamespace: this.gatewayNamespace,
      options: props.proxy ?? {},
      prometheus: observability.prometheus === true,
      otlpEndpoint: observability.otlpEndpoint,
      traceSamplingRatio: observability.traceSamplingRatio,
      drainTimeout: props.proxyDrainTimeout,
      costKeys: () => this.model.costConfigs().map((cost) => cost.metadataKey),
      observabilityDefaults,
    });
  }

  /** Emits the Gateway with its HTTP and HTTPS listeners; returns the listeners. */
  private emitGateway(props: AIGatewayProps, envoyProxyName: string | undefined): GatewayListener[] {
    const listeners: GatewayListener[] = [];
    const allowed = this.allowedRoutes._toSpec();
    if (props.http?.enabled !== false) {
      const port = this.checkPort('http.port', props.http?.port ?? 80);
      listeners.push({
        name: 'http',
        protocol: 'HTTP',
        port,
        ...this.listenerHostname('http.hostname', props.http?.hostname),
        allowedRoutes: allowed,
      });
    }
    if (props.https) listeners.push(this.httpsListener(props.https, allowed));
    if (listeners.length === 0)
      throw invalid(
        this,
        'http.enabled',
        false,
        'a gateway needs at least one listener; enable http or configure https',
      );
    if (listeners.length === 2 && listeners[0].port === listeners[1].port) {
      throw invalid(this, 'https.port', listeners[1].port, 'is already used by the HTTP listener');
    }
    customResource<GatewaySpec>(
      this,
      'Gateway',
      GATEWAY_API_VERSION,
      'Gateway',
      { name: this.gatewayName, namespace: this.gatewayNamespace },
      {
        gatewayClassName: this.gatewayClassName,
        listeners,
        ...(envoyProxyName !== undefined ? { infrastructure: infrastructureRef(envoyProxyName) } : {}),
      },
    );
    return listeners;
  }

  private httpsListener(https: HttpsListenerOptions, allowedRoutes: GatewayListener['allowedRoutes']): GatewayListener {
    const port = this.checkPort('https.port', https.port ?? 443);
    if (https.certificateSecretNames.length === 0) {
      throw invalid(
        this,
        'https.certificateSecretNames',
        https.certificateSecretNames,
        'needs at least one TLS Secret',
      );
    }
    checkCrdList(this, 'https.certificateSecretNames', https.certificateSecretNames, CRD_LIMITS.gatewayCertificateRefs);
    const certificateRefs = https.certificateSecretNames.map((name) => ({
      kind: 'Secret' as const,
      group: '' as const,
      name: checkLabelName(this, 'https.certificateSecretNames', name),
    }));
    return {
      name: 'https',
      protocol: 'HTTPS',
      port,
      ...this.listenerHostname('https.hostname', https.hostname),
      tls: { mode: 'Terminate', certificateRefs },
      allowedRoutes,
    };
  }

  /**
   * Raises Envoy's request buffer limit and strips the headers only the gateway may set: the processor's routing
   * headers (routes re-match and budgets select on them), and the JWT claim headers. Envoy's jwt_authn replaces
   * claim headers itself; removing them first also covers the requests it lets through without a token.
   */
  private emitClientTrafficPolicy(bufferBytes: number, claimHeaders: readonly string[]): void {
    const spoofable = () => [
      ...new Set([...GATEWAY_OWNED_HEADERS, ...claimHeaders, ...this.model.budgetClaims().map((c) => c.header)]),
    ];
    customResource<ClientTrafficPolicySpec>(
      this,
      'ClientTrafficPolicy',
      ENVOY_GATEWAY_API_VERSION,
      'ClientTrafficPolicy',
      { name: derivedName([this.gatewayName, 'client']), namespace: this.gatewayNamespace },
      () => ({
        targetRefs: [this.gatewayRef()],
        connection: { bufferLimit: byteQuantity(bufferBytes) },
        headers: { earlyRequestHeaders: { remove: spoofable() } },
      }),
    );
    // Budgets may add claim headers after this constructor: count them all when the app is complete.
    this.node.addValidation({
      validate: () => {
        this.checkClaimCount('jwt.claimToHeaders', claimHeaders.length + this.model.budgetClaims().length);
        return [];
      },
    });
  }

  /** Checks that the processor can reach the proxies where Envoy Gateway runs them. */
  private validateProcessorPlacement(props: AIGatewayProps, gatewayClass: GatewayClass): void {
    const deployMode = props.processor?.proxyDeployMode;
    if (deployMode?._kind === 'MergedGateways' && gatewayClass.emit) {
      throw invalid(
        this,
        'processor.proxyDeployMode',
        'mergedGateways',
        `the GatewayClass "${this.gatewayClassName}" emitted here has no EnvoyProxy with ` +
          `mergeGateways: true, so Envoy Gateway runs this gateway's own proxies; use ` +
          `GatewayClass.fromName() with a class whose parametersRef EnvoyProxy merges gateways`,
      );
    }
    if (
      deployMode?._kind === 'GatewayNamespace' &&
      props.envoyGatewayNamespace !== undefined &&
      props.envoyGatewayNamespace !== this.gatewayNamespace
    ) {
      throw invalid(
        this,
        'envoyGatewayNamespace',
        props.envoyGatewayNamespace,
        `with ProxyDeployMode.gatewayNamespace() the proxies run in the gateway's namespace ` +
          `"${this.gatewayNamespace}"; leave envoyGatewayNamespace unset`,
      );
    }
    if (props.proxyDrainTimeout !== undefined) gatewayDuration(this, 'proxyDrainTimeout', props.proxyDrainTimeout);
  }

  private addProcessor(props: AIGatewayProps, envoyGatewayNamespace: string, bufferBytes: number): Processor {
    return new Processor(this, 'Processor', {
      ...props.processor,
      baseName: this.gatewayName,
      namespace: this.gatewayNamespace,
      gateway: { name: this.gatewayName, namespace: this.gatewayNamespace, className: this.gatewayClassName },
      envoyGatewayNamespace,
      maxRequestBodyBytes: bufferBytes,
      proxyDrainTimeout: props.proxyDrainTimeout,
      model: this.model,
      gatewayJwt: props.jwt !== undefined,
      tracingArgs: props.observability ? processorTracingArgs(this, props.observability) : [],
    });
  }

  /** The PodMonitors, PrometheusRule and dashboard of the gateway; merged proxies get no PodMonitor here. */
  private addObservability(
    props: AIGatewayProps,
    options: ObservabilityOptions,
    envoyGatewayNamespace: string,
  ): Observability {
    const deployMode = props.processor?.proxyDeployMode ?? ProxyDeployMode.perGateway();
    const gateway = { name: this.gatewayName, namespace: this.gatewayNamespace, className: this.gatewayClassName };
    const peer = deployMode._peer(this, gateway, envoyGatewayNamespace);
    return new Observability(this, 'Observability', {
      ...options,
      gatewayName: this.gatewayName,
      gatewayNamespace: this.gatewayNamespace,
      processorDeployment: this.processor.serviceName,
      processorPodLabels: this.processor._podLabels,
      metricsNamespace: props.processor?.metricsNamespace,
      ...(deployMode._kind === 'MergedGateways'
        ? {}
        : {
            proxies: {
              namespace: peer.namespaceSelector.matchLabels['kubernetes.io/metadata.name'],
              labels: peer.podSelector?.matchLabels ?? {},
            },
          }),
    });
  }

  /**
   * Emits the BackendTrafficPolicy on the Gateway that holds every budget of the gateway and of its AIRoutes (the
   * model's budgets, read at synth), with the first budget. All of them are `shared` rules, told apart by their
   * selectors on the route header the processor sets. One list keeps every rule's name and descriptor index the
   * same on every Envoy route: Envoy Gateway numbers the rules of a route's merged policy (route rules first), so
   * a gateway rule merged behind route rules would get another bucket on each route with a different number of
   * route budgets.
   */
  private emitBudgetPolicy(): void {
    customResource<BackendTrafficPolicySpec>(
      this,
      'BudgetPolicy',
      ENVOY_GATEWAY_API_VERSION,
      'BackendTrafficPolicy',
      { name: derivedName([this.gatewayName, 'budgets']), namespace: this.gatewayNamespace },
      () => ({
        targetRefs: [{ group: GATEWAY_API_GROUP, kind: 'Gateway', name: this.gatewayName }],
        rateLimit: { type: 'Global', global: { rules: this.model.rules() } },
      }),
    );
  }

  private gatewayRef(): { group: string; kind: string; name: string } {
    return { group: GATEWAY_API_GROUP, kind: 'Gateway', name: this.gatewayName };
  }

  /** Checks the JWT options; returns the gateway's JWT authentication as its SecurityPolicy carries it. */
  private checkJwt(jwt: JwtAuthenticationOptions): JwtSpec {
    let uri: URL | undefined;
    try {
      uri = new URL(jwt.jwksUri);
    } catch {
      uri = undefined;
    }
    const maxUri = CRD_LIMITS.securityPolicyJwksUri.maxLength;
    if (!uri || uri.protocol !== 'https:' || jwt.jwksUri.length > maxUri) {
      throw invalid(this, 'jwt.jwksUri', jwt.jwksUri, `must be an https URL of at most ${maxUri} characters`);
    }
    const maxIssuer = CRD_LIMITS.securityPolicyJwtIssuer.maxLength;
    if (typeof jwt.issuer !== 'string' || jwt.issuer.length === 0 || jwt.issuer.length > maxIssuer) {
      throw invalid(this, 'jwt.issuer', jwt.issuer, `must be a non-empty string of at most ${maxIssuer} characters`);
    }
    if (jwt.audiences) checkCrdList(this, 'jwt.audiences', jwt.audiences, CRD_LIMITS.securityPolicyJwtAudiences);
    this.checkClaimCount('jwt.claimToHeaders', Object.keys(jwt.claimToHeaders ?? {}).length, jwt.claimToHeaders);
    const claimToHeaders = Object.entries(jwt.claimToHeaders ?? {}).map(([claim, header]) => {
      if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(header))
        throw invalid(this, `jwt.claimToHeaders.${claim}`, header, 'must be a lower-case HTTP header name');
      if (GATEWAY_OWNED_HEADERS.includes(header))
        throw invalid(this, `jwt.claimToHeaders.${claim}`, header, 'is a header the gateway sets itself');
      return { claim, header };
    });
    return {
      providers: [
        {
          name: 'default',
          issuer: jwt.issuer,
          ...(jwt.audiences && jwt.audiences.length > 0 ? { audiences: [...jwt.audiences] } : {}),
          remoteJWKS: { uri: jwt.jwksUri },
          ...(claimToHeaders.length > 0 ? { claimToHeaders } : {}),
        },
      ],
    };
  }

  /**
   * Emits the gateway's one SecurityPolicy (once): its JWT authentication and the API keys of the consumers attached
   * to the gateway, read at synth. It keeps the name `<gateway>-jwt` it had before consumers existed when the gateway
   * verifies JWTs (renaming a deployed policy would leave the gateway open between delete and create), else
   * `<gateway>-api-keys`.
   */
  private emitSecurityPolicy(): void {
    if (this.securityPolicyEmitted) return;
    this.securityPolicyEmitted = true;
    customResource<SecurityPolicySpec>(
      this,
      'SecurityPolicy',
      ENVOY_GATEWAY_API_VERSION,
      'SecurityPolicy',
      {
        name: derivedName([this.gatewayName, this.jwtSpec ? 'jwt' : 'api-keys']),
        namespace: this.gatewayNamespace,
      },
      () => {
        const jwt = this.jwtWithClaims();
        const consumers = this.model.consumers.filter((c) => c.route === undefined);
        return {
          targetRefs: [this.gatewayRef()],
          ...(jwt ? { jwt } : {}),
          ...(consumers.length > 0
            ? { apiKeyAuth: apiKeyAuthSpec(consumers, this.gatewayNamespace, jwt !== undefined) }
            : {}),
        };
      },
    );
  }

  /**
   * Throws if more headers would be stripped than the ClientTrafficPolicy's `earlyRequestHeaders.remove` holds:
   * the gateway-owned headers and one per JWT claim copied into a header.
   */
  private checkClaimCount(prop: string, count: number, value: unknown = `${count} claims`): void {
    const max = CRD_LIMITS.clientEarlyHeaderRemove.maxItems;
    const owned = GATEWAY_OWNED_HEADERS.length;
    if (count + owned <= max) return;
    throw invalid(
      this,
      prop,
      value,
      `maps ${count} claims; at most ${max - owned} fit beside the gateway's ${owned} own ` +
        'headers in the ClientTrafficPolicy field ' +
        `${CRD_LIMITS.clientEarlyHeaderRemove.field} (at most ${max})`,
    );
  }

  private checkPort(prop: string, port: number): number {
    const { minimum, maximum } = CRD_LIMITS.gatewayListenerPort;
    if (!Number.isInteger(port) || port < minimum || port > maximum) {
      throw invalid(this, prop, port, `must be an integer between ${minimum} and ${maximum}`);
    }
    return port;
  }

  private listenerHostname(prop: string, hostname: string | undefined): { hostname?: string } {
    if (hostname === undefined) return {};
    return { hostname: checkHostname(this, prop, hostname, { wildcard: true }) };
  }
}

/** Renders a byte count as a Kubernetes quantity in the largest whole binary unit. */
function byteQuantity(bytes: number): string {
  const units: [string, number][] = [
    ['Gi', 1024 ** 3],
    ['Mi', 1024 ** 2],
    ['Ki', 1024],
  ];
  for (const [suffix, factor] of units) {
    if (bytes % factor === 0) return `${bytes / factor}${suffix}`;
  }
  return String(bytes);
}

/**
 * The `apiKeyAuth` of a SecurityPolicy in `namespace` for `consumers`: their Secrets (each data key a client id),
 * keys read the way SDKs send them (OpenAI: `Authorization: Bearer <key>`, whose `Bearer ` prefix Envoy's
 * api_key_auth strips; Anthropic: `x-api-key`), the client id forwarded in CLIENT_ID_HEADER and the key removed
 * before the processor and the provider. With JWT authentication as well, `authorization` carries the token, so keys
 * are read from `x-api-key` only (api_key_auth does not fall back to the next header when a key is unknown).
 * @internal
 */
export function apiKeyAuthSpec(
  consumers: readonly ConsumerFragment[],
  namespace: string,
  withJwt: boolean,
): ApiKeyAuthSpec {
  const refs = new Map<string, ApiKeyAuthSpec['credentialRefs'][number]>();
  for (const consumer of consumers) {
    for (const secret of consumer.secrets) {
      refs.set(`${secret.namespace}/${secret.name}`, {
        group: '',
        kind: 'Secret',
        name: secret.name,
        ...(secret.namespace !== namespace ? { namespace: secret.namespace } : {}),
      });
    }
  }
  return {
    credentialRefs: [...refs.values()],
    extractFrom: withJwt ? [{ headers: ['x-api-key'] }] : [{ headers: ['authorization'] }, { headers: ['x-api-key'] }],
    forwardClientIDHeader: CLIENT_ID_HEADER,
    sanitize: true,
  };
}
