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
  type GatewaySpec,
  type SecurityPolicySpec,
  gatewayDuration,
} from './crds';
import { BACKEND_HEADER, MODEL_HEADER, ROUTE_HEADER } from '@ai-gateway-constructs/processor-config';
import { invalid } from './errors';
import { checkCrdList } from './limits/crd-field';
import { CRD_LIMITS } from './limits/crd-limits.generated';
import { checkLabels } from './limits/metadata';
import { synthRegistry } from './limits/registry';
import { validateUniqueObjects } from './limits/unique-objects';
import { GatewayModel, type BudgetScope } from './gateway-model';
import { checkHostname, checkLabelName, defaultName, derivedName, resolveNamespace } from './names';
import { Processor, type ProcessorOptions } from './processor';
import type { IBudgetTarget } from './token-rate-limit';

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

/** JWT authentication at the gateway (Envoy Gateway SecurityPolicy); requests without a valid token get 401. */
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
   * them. The constructs do not emit that EnvoyProxy; given this, synth fails when a route allows longer requests
   * than the proxies drain for (a proxy rollout would cut them). `processor.shutdown().longestRequest` tells the
   * drain the routes need.
   * @default - not checked (Envoy Gateway's own default drain is 60 s)
   */
  readonly proxyDrainTimeout?: Duration;
  /**
   * The processor workload.
   * @default - see ProcessorOptions
   */
  readonly processor?: ProcessorOptions;
  /**
   * Require a JWT on every request and copy claims into headers.
   * @default - no authentication at the gateway
   */
  readonly jwt?: JwtAuthenticationOptions;
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
    const listeners = this.emitGateway(props);
    const claimHeaders = props.jwt ? this.addJwtAuthentication(props.jwt) : [];
    this.emitClientTrafficPolicy(bufferBytes, claimHeaders);
    this.validateProcessorPlacement(props, gatewayClass);

    this.model = new GatewayModel({ emitBudgetPolicy: () => this.emitBudgetPolicy() });
    this.processor = this.addProcessor(props, envoyGatewayNamespace, bufferBytes);
    this.processorServiceName = this.processor.serviceName;
    this.configMapName = this.processor.configMapName;
    this.serviceAccountName = this.processor.serviceAccountName;
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
    };
    this._budgetScope = { path: this.node.path, model: this.model, gateway: { path: this.node.path, claimHeaders } };
  }

  /** Whether the gateway or its routes have token budgets. */
  get hasBudgets(): boolean {
    return this.model.budgets.length > 0;
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

  /** Emits the Gateway with its HTTP and HTTPS listeners; returns the listeners. */
  private emitGateway(props: AIGatewayProps): GatewayListener[] {
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
    const spoofable = [...new Set([BACKEND_HEADER, MODEL_HEADER, ROUTE_HEADER, ...claimHeaders])];
    customResource<ClientTrafficPolicySpec>(
      this,
      'ClientTrafficPolicy',
      ENVOY_GATEWAY_API_VERSION,
      'ClientTrafficPolicy',
      { name: derivedName([this.gatewayName, 'client']), namespace: this.gatewayNamespace },
      {
        targetRefs: [this.gatewayRef()],
        connection: { bufferLimit: byteQuantity(bufferBytes) },
        headers: { earlyRequestHeaders: { remove: spoofable } },
      },
    );
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
        rateLimit: { type: 'Global', global: { rules: this.model.budgets.map((budget) => budget.rule) } },
      }),
    );
  }

  private gatewayRef(): { group: string; kind: string; name: string } {
    return { group: GATEWAY_API_GROUP, kind: 'Gateway', name: this.gatewayName };
  }

  /** Emits the SecurityPolicy; returns the headers claims are copied into. */
  private addJwtAuthentication(jwt: JwtAuthenticationOptions): string[] {
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
    this.checkClaimCount(jwt.claimToHeaders);
    const claimToHeaders = Object.entries(jwt.claimToHeaders ?? {}).map(([claim, header]) => {
      if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(header))
        throw invalid(this, `jwt.claimToHeaders.${claim}`, header, 'must be a lower-case HTTP header name');
      return { claim, header };
    });
    customResource<SecurityPolicySpec>(
      this,
      'SecurityPolicy',
      ENVOY_GATEWAY_API_VERSION,
      'SecurityPolicy',
      { name: derivedName([this.gatewayName, 'jwt']), namespace: this.gatewayNamespace },
      {
        targetRefs: [this.gatewayRef()],
        jwt: {
          providers: [
            {
              name: 'default',
              issuer: jwt.issuer,
              ...(jwt.audiences && jwt.audiences.length > 0 ? { audiences: [...jwt.audiences] } : {}),
              remoteJWKS: { uri: jwt.jwksUri },
              ...(claimToHeaders.length > 0 ? { claimToHeaders } : {}),
            },
          ],
        },
      },
    );
    return claimToHeaders.map((c) => c.header);
  }

  /**
   * Throws if more claims are mapped than fit beside the gateway's routing headers in the ClientTrafficPolicy's
   * `earlyRequestHeaders.remove` (every claim header is stripped from client requests there).
   */
  private checkClaimCount(claims: Record<string, string> | undefined): void {
    const count = Object.keys(claims ?? {}).length;
    const max = CRD_LIMITS.clientEarlyHeaderRemove.maxItems;
    const routingHeaders = [BACKEND_HEADER, MODEL_HEADER, ROUTE_HEADER].length;
    if (count + routingHeaders <= max) return;
    throw invalid(
      this,
      'jwt.claimToHeaders',
      claims,
      `maps ${count} claims; at most ${max - routingHeaders} fit beside the gateway's ${routingHeaders} routing ` +
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
