import { ApiObject, Duration, JsonPatch, Lazy, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import * as k8s from 'cdk8s-plus-28/lib/imports/k8s';
import { IntOrString, KubeNetworkPolicy, KubePodDisruptionBudget } from 'cdk8s-plus-28/lib/imports/k8s';
import { Construct, type IConstruct } from 'constructs';
import {
  CLIENT_ID_HEADER,
  CONFIG_VERSION,
  MANIFEST_KEY,
  MAX_BUNDLE_PARTS,
  MAX_DECODED_CONFIG_BYTES,
  METADATA_NAMESPACE,
  PLAIN_CONFIG_KEY,
  ProcessorConfigError,
  encodeConfigBundle,
  parseProcessorConfig,
  type ProcessorConfig,
  type RouteConfig,
} from '@ai-gateway-constructs/processor-config';
import { ARGO_CD_SYNC_OPTIONS_ANNOTATION } from './argo-cd';
import {
  ENVOY_GATEWAY_API_VERSION,
  ENVOY_GATEWAY_GROUP,
  GATEWAY_API_GROUP,
  REFERENCE_GRANT_API_VERSION,
  customResource,
  gatewayDuration,
  plainPropsMember,
  type BackendTrafficPolicySpec,
  type EnvoyExtensionPolicySpec,
  type HTTPRouteFilterSpec,
  type ReferenceGrantSpec,
  type ResponseOverrideSpec,
} from './crds';
import { authenticationErrorOverride } from './auth-error-response';
import { NODE_BUNDLE_CODEC } from './config-bundle-codec';
import { AIGatewayValidationError, invalid } from './errors';
import { GatewayModel } from './gateway-model';
import { gatewayDurationMs } from './limits/duration';
import { CRD_LIMITS } from './limits/crd-limits.generated';
import { checkAnnotations } from './limits/metadata';
import { synthRegistry } from './limits/registry';
import { duplicateObjectError } from './limits/unique-objects';
import { MAX_LABEL_LENGTH, derivedName, shortHash } from './names';
import { NOT_PLAIN, plainLevel } from './plain-json';
import { ProcessorImage } from './processor-image';

export const PROCESSOR_GRPC_PORT = 9002;
export const PROCESSOR_ADMIN_PORT = 9090;
export const CONFIG_DIR = '/etc/ai-gateway/config';
export const SECRETS_DIR = '/etc/ai-gateway/secrets';
/** Numeric non-root user of the processor image (distroless "nonroot"). */
export const PROCESSOR_UID = 65532;
/** ConfigMaps hold at most 1 MiB of data; leave room for the key. A larger config is stored compressed. */
export const MAX_CONFIG_BYTES = 1024 * 1024 - 64;
/**
 * The most compressed config bytes one ConfigMap carries: 1 MiB less room for the manifest, which rides with the
 * first part. A config that compresses to more is split over several ConfigMaps, at most MAX_BUNDLE_PARTS.
 */
export const MAX_CONFIG_PART_BYTES = 1024 * 1024 - 16 * 1024;

/** Pod-template annotation carrying a hash of the processor config. */
export const CONFIG_HASH_ANNOTATION = 'ai-gateway-constructs.io/config-hash';
/** Envoy's response attribute the processor reads to tell a backend's answer from Envoy's local replies. */
const RESPONSE_CODE_DETAILS_ATTRIBUTE = 'response.code_details';
/** @internal How an AIRoute's HTTPRoute uses the processor (`Processor._attachRoute`). */
export interface RouteAttachmentOptions {
  /**
   * The route's only route-level traffic setting is the default circuit breaker: the processor's shared
   * BackendTrafficPolicy of the namespace selects it.
   * @default false
   */
  readonly defaultTraffic?: boolean;
  /**
   * Envoy must stream the route's responses to the processor (`FullDuplexStreamed`), so that it can fail a request
   * over to another backend itself: the processor's full-duplex EnvoyExtensionPolicy of the namespace selects it.
   * @default false
   */
  readonly fullDuplexResponses?: boolean;
}

/** @internal What the HTTPRoute of an AIRoute refers to in its namespace (`Processor._attachRoute`). */
export interface RouteAttachment {
  /** Labels of the HTTPRoute: the processor's EnvoyExtensionPolicy in the namespace selects it by them. */
  readonly labels: Record<string, string>;
  /** The HTTPRouteFilter answering the 404 of the route's catch-all rule. */
  readonly notFoundFilter: string;
}

/**
 * The label of the HTTPRoutes a processor serves: the EnvoyExtensionPolicy of each route namespace selects them by it.
 * Its value names the processor (`<service>.<namespace>`, hashed when longer than a label value may be).
 */
const PROCESSOR_ROUTE_LABEL = 'ai-gateway-constructs.io/processor';
/**
 * The label of the HTTPRoutes a processor serves with their responses streamed to it (`FullDuplexStreamed`: the
 * routes with a fallback rule), in place of `PROCESSOR_ROUTE_LABEL` and with the same value: the processor's second
 * EnvoyExtensionPolicy of each route namespace selects them by it. A route carries one of the two labels, never both,
 * so exactly one of the two policies applies to it.
 */
const PROCESSOR_FULL_DUPLEX_ROUTE_LABEL = 'ai-gateway-constructs.io/processor-full-duplex';
/**
 * The label of the HTTPRoutes whose traffic settings are the processor's defaults (see `_attachRoute`): the
 * processor's one BackendTrafficPolicy of each route namespace selects them by it. Its value is that of
 * `PROCESSOR_ROUTE_LABEL`. A route with settings of its own does not carry it and keeps a policy of its own: Envoy
 * Gateway applies only the first route-level BackendTrafficPolicy to a route, never two merged.
 */
const TRAFFIC_POLICY_ROUTE_LABEL = 'ai-gateway-constructs.io/traffic-policy';
/**
 * How long a processor pod keeps serving after SIGTERM (`--shutdown-delay-ms`): readiness fails at once, and the
 * pod takes new streams until the endpoint removal has reached every Envoy.
 */
export const PROCESSOR_SHUTDOWN_DELAY_MS = 5_000;
/** The shortest drain (`--drain-timeout-ms`) a processor Deployment gets, whatever its routes' timeouts. */
export const PROCESSOR_MIN_DRAIN_SECONDS = 25;
/**
 * The processor's stuck-stream watchdog (`--stream-idle-timeout-ms`) by default. A stream waiting for a slow
 * upstream's answer gets no ext_proc message meanwhile, so the limit is raised above the longest request a route
 * allows (plus a margin): the watchdog must only catch streams nothing will ever end.
 */
const PROCESSOR_MIN_STREAM_IDLE_MS = 300_000;
const STREAM_IDLE_MARGIN_MS = 60_000;
/** What the pod's grace period adds to the delay and the drain, for the process to exit after the drain. */
const GRACE_PERIOD_MARGIN_SECONDS = 5;
/** Envoy's route timeout when the route sets none (Envoy's `RouteAction.timeout` default). */
const ENVOY_DEFAULT_ROUTE_TIMEOUT_MS = 15_000;
/** Envoy Gateway's default number of retries when a retry policy does not give one. */
const ENVOY_GATEWAY_DEFAULT_RETRIES = 2;
/**
 * The concurrent ext_proc streams one processor pod is sized for by default: about 6 KB each, so 10,000 fit the
 * default 512Mi memory limit with room for the config and the runtime (docs/benchmarks.md, streams).
 */
export const DEFAULT_STREAMS_PER_REPLICA = 10_000;

/** Labels Envoy Gateway puts on the proxies it runs for one Gateway (`internal/gatewayapi/translator.go`). */
const OWNING_GATEWAY_NAME_LABEL = 'gateway.envoyproxy.io/owning-gateway-name';
const OWNING_GATEWAY_NAMESPACE_LABEL = 'gateway.envoyproxy.io/owning-gateway-namespace';
/** The label of merged proxies: they serve every Gateway of a GatewayClass. */
const OWNING_GATEWAY_CLASS_LABEL = 'gateway.envoyproxy.io/owning-gatewayclass';

/** Where Envoy Gateway runs the proxy pods of a Gateway, and the labels it gives them. */
export class ProxyDeployMode {
  /**
   * Envoy Gateway's default: one proxy Deployment per Gateway, in Envoy Gateway's own namespace, labelled with the
   * owning Gateway's name and namespace.
   */
  static perGateway(): ProxyDeployMode {
    return new ProxyDeployMode('PerGateway');
  }

  /**
   * `mergeGateways: true` on the EnvoyProxy of the GatewayClass: one proxy fleet, in Envoy Gateway's namespace,
   * serves every Gateway of the class; its pods carry only the GatewayClass label, so every Gateway of the class
   * can reach the processor.
   * @param gatewayClassName the GatewayClass; needed only for routes on a Gateway not managed by an AIGateway
   * (an AIGateway knows its class)
   */
  static mergedGateways(gatewayClassName?: string): ProxyDeployMode {
    return new ProxyDeployMode('MergedGateways', gatewayClassName);
  }

  /**
   * Envoy Gateway's `GatewayNamespace` deploy type (`provider.kubernetes.deploy.type`): the proxies of a Gateway
   * run in the Gateway's own namespace. Envoy Gateway refuses it together with `mergeGateways`.
   */
  static gatewayNamespace(): ProxyDeployMode {
    return new ProxyDeployMode('GatewayNamespace');
  }

  private constructor(
    /** @internal */ readonly _kind: 'PerGateway' | 'MergedGateways' | 'GatewayNamespace',
    /** @internal */ readonly _gatewayClassName?: string,
  ) {}

  /** @internal the NetworkPolicy peer selecting the proxies of `gateway`. */
  _peer(scope: IConstruct, gateway: ProcessorProps['gateway'], envoyGatewayNamespace: string): NetworkPolicyPeer {
    const inNamespace = (namespace: string, labels: Record<string, string>): NetworkPolicyPeer => ({
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
      podSelector: { matchLabels: labels },
    });
    const owningGateway = {
      [OWNING_GATEWAY_NAME_LABEL]: gateway.name,
      [OWNING_GATEWAY_NAMESPACE_LABEL]: gateway.namespace,
    };
    switch (this._kind) {
      case 'PerGateway':
        return inNamespace(envoyGatewayNamespace, owningGateway);
      case 'GatewayNamespace':
        return inNamespace(gateway.namespace, owningGateway);
      case 'MergedGateways': {
        const className = this._gatewayClassName ?? gateway.className;
        if (className === undefined) {
          throw invalid(
            scope,
            'processor.proxyDeployMode',
            'mergedGateways',
            `merged proxies are selected by their GatewayClass, and the class of Gateway ` +
              `"${gateway.namespace}/${gateway.name}" is unknown here; name it: ` +
              `ProxyDeployMode.mergedGateways('<gatewayclass>')`,
          );
        }
        if (gateway.className !== undefined && gateway.className !== className) {
          throw invalid(
            scope,
            'processor.proxyDeployMode',
            `mergedGateways(${JSON.stringify(className)})`,
            `the gateway's GatewayClass is "${gateway.className}"; merged proxies carry the label of that class`,
          );
        }
        return inNamespace(envoyGatewayNamespace, { [OWNING_GATEWAY_CLASS_LABEL]: className });
      }
    }
  }
}

/**
 * On the config ConfigMaps: Argo CD's default client-side apply keeps the whole object in the
 * `last-applied-configuration` annotation, which Kubernetes caps at 256 KiB; a ConfigMap holds up to 1 MiB.
 */
const SERVER_SIDE_APPLY = { [ARGO_CD_SYNC_OPTIONS_ANNOTATION]: 'ServerSideApply=true' };

/** Construct ids of the ConfigMaps after the first: `ConfigPart2`, `ConfigPart3`, ... */
const CONFIG_PART_ID = 'ConfigPart';

/**
 * Where the processor config is stored: the file `--config` names in the config volume, and each ConfigMap of the
 * volume with its keys (a plain `config.json`; or a manifest and gzip parts, base64 in `binaryData`).
 * @internal
 */
export interface ProcessorConfigStorage {
  readonly file: string;
  readonly configMaps: readonly {
    readonly name: string;
    readonly data?: Record<string, string>;
    readonly binaryData?: Record<string, string>;
  }[];
}

/** A NetworkPolicy `from` entry selecting pods of one namespace. */
interface NetworkPolicyPeer {
  readonly namespaceSelector: { readonly matchLabels: Record<string, string> };
  readonly podSelector?: { readonly matchLabels: Record<string, string> };
}

/** How the processor pods shut down: derived from the longest request its routes allow. */
export interface ProcessorShutdown {
  /** `--shutdown-delay-ms`: serving on after SIGTERM while the endpoint removal reaches the proxies. */
  readonly delayMs: number;
  /** `--drain-timeout-ms`: how long in-flight streams may run after the delay. */
  readonly drainTimeoutMs: number;
  /** `--stream-idle-timeout-ms`: the watchdog's limit, above the longest request any route allows. */
  readonly streamIdleTimeoutMs: number;
  /** The pod's `terminationGracePeriodSeconds`: delay + drain + a margin to exit. */
  readonly terminationGracePeriodSeconds: number;
  /**
   * The longest request any route allows (Envoy's route timeout, which covers retries, plus the processor's own
   * attempts of a fallback rule), if any route is attached.
   */
  readonly longestRequest?: { readonly route: string; readonly ms: number };
}

/** Settings of the processor workload. */
export interface ProcessorOptions {
  /**
   * Container image.
   * @default ProcessorImage.default() - the image released with this library version
   */
  readonly image?: ProcessorImage;
  /**
   * Names of `kubernetes.io/dockerconfigjson` Secrets (in the processor's namespace) to pull the image with.
   * @default - none
   */
  readonly imagePullSecrets?: readonly string[];
  /**
   * Number of processor pods.
   * @default 2
   */
  readonly replicas?: number;
  /**
   * The concurrent requests (ext_proc streams) one processor pod is sized to hold. Envoy caps the requests each
   * proxy replica sends to the processor at `replicas × streamsPerReplica` (`Processor.maxParallelRequestsPerProxy`,
   * the EnvoyExtensionPolicy's `backendSettings.circuitBreaker`) instead of Envoy Gateway's default of 1024; Envoy
   * answers a request over the cap with a 500 of its own, without reaching the processor. The cap counts per proxy
   * replica and per namespace of AIRoutes (the EnvoyExtensionPolicy of each route namespace is an Envoy cluster of
   * its own; a namespace with routes that fail over within a request has a second one for them, with a cap of its
   * own): it keeps one proxy from sending one namespace's routes more than the whole processor fleet holds, it
   * does not share the fleet out among proxies. Raise it together with the pods' memory limit (about 6 KB per open
   * stream).
   * @default 10000 - what one pod holds within the default 512Mi memory limit
   */
  readonly streamsPerReplica?: number;
  /**
   * CPU and memory requests/limits.
   * @default - requests 100m CPU / 128Mi memory, limits 1 CPU / 512Mi memory
   */
  readonly resources?: kplus.ContainerResources;
  /**
   * Annotations of the processor's ServiceAccount, e.g. `eks.amazonaws.com/role-arn` (IRSA) or
   * `iam.gke.io/gcp-service-account` (GKE workload identity).
   * @default - none
   */
  readonly serviceAccountAnnotations?: Record<string, string>;
  /**
   * How long Envoy waits for each answer of the processor (ext_proc `messageTimeout`). Keep it above the
   * processor's 5 s credential-fetch timeout, so a hung token endpoint is answered by the processor (503, and a
   * failure for the backend's circuit breaker) rather than by Envoy.
   * @default Duration.seconds(10)
   */
  readonly messageTimeout?: Duration;
  /**
   * Namespace whose pods may scrape the processor's admin port (`/metrics`).
   * @default - only kubelet probes reach the admin port
   */
  readonly metricsNamespace?: string;
  /**
   * Consecutive failures after which the processor skips a backend.
   * @default 5
   */
  readonly circuitBreakerFailureThreshold?: number;
  /**
   * How long a failing backend is skipped before it is probed again.
   * @default Duration.seconds(30)
   */
  readonly circuitBreakerOpenDuration?: Duration;
  /**
   * How Envoy Gateway deploys the proxies of the gateway: the processor's NetworkPolicy admits exactly those pods.
   * @default ProxyDeployMode.perGateway() - Envoy Gateway's default
   */
  readonly proxyDeployMode?: ProxyDeployMode;
}

export interface ProcessorProps extends ProcessorOptions {
  /** Stem of the generated object names. */
  readonly baseName: string;
  readonly namespace: string;
  /** The Gateway whose Envoy pods may call the processor (`className` when known, for merged proxies). */
  readonly gateway: { readonly name: string; readonly namespace: string; readonly className?: string };
  /** Namespace Envoy Gateway runs in (its proxies too, unless `proxyDeployMode` is `gatewayNamespace()`). */
  readonly envoyGatewayNamespace: string;
  /**
   * The drain time of the gateway's Envoy proxies (EnvoyProxy `spec.shutdown.drainTimeout`), when known: synth
   * fails if a route allows longer requests, which a proxy rollout would cut.
   * @default - not checked
   */
  readonly proxyDrainTimeout?: Duration;
  /** Largest request body the processor accepts (the gateway's buffer limit). */
  readonly maxRequestBodyBytes: number;
  /**
   * @internal Whether the gateway authenticates clients with JWT (its SecurityPolicy `jwt`): the shared traffic
   * policies reshape Envoy's own 401s for the routes they select (see auth-error-response.ts).
   */
  readonly gatewayJwt?: boolean;
  /** @internal The processor's tracing flags (`--otlp-endpoint`, ...), from the AIGateway's observability. */
  readonly tracingArgs?: readonly string[];
  /**
   * @internal The routes and budgets the processor serves, which its owner's routes and budgets contribute to
   * (default: a model of its own, with no routes).
   */
  readonly model?: GatewayModel;
}

/**
 * The ext_proc processor of one gateway: ConfigMap (`config.json`), Deployment, Service, ServiceAccount,
 * PodDisruptionBudget and NetworkPolicy. An EnvoyExtensionPolicy per route namespace wires it into Envoy for the
 * HTTPRoutes of its AIRoutes (selected by label, `_attachRoute`), never the whole Gateway: Envoy Gateway enables a
 * Gateway-targeted ext_proc on every route of the Gateway, and the processor answers 404 to any request it has no
 * route for, so ordinary HTTPRoutes sharing the Gateway would stop working.
 */
export class Processor extends Construct {
  readonly serviceName: string;
  readonly configMapName: string;
  readonly serviceAccountName: string;
  readonly namespace: string;
  readonly deployment: kplus.Deployment;
  /**
   * The most requests one Envoy proxy replica sends this processor in parallel for the AIRoutes of each namespace,
   * and the most it queues while connecting: `replicas × streamsPerReplica`, the circuit breaker of every
   * EnvoyExtensionPolicy that enables the processor. Also what each AIRoute allows per backend by default.
   */
  readonly maxParallelRequestsPerProxy: number;
  /** @internal the routes and budgets this processor serves: its config and drain time are built from them at synth. */
  readonly _model: GatewayModel;
  private readonly mountedSecrets = new Set<string>();
  private readonly labels: Record<string, string>;
  /** The value of `PROCESSOR_ROUTE_LABEL` on the HTTPRoutes this processor serves. */
  private readonly routeLabelValue: string;
  private readonly messageTimeout: string;
  private readonly container: kplus.Container;
  private readonly props: ProcessorProps;
  /** Values derived from the model, for the model revision they were derived at (synth reads each twice). */
  private rendered?: { readonly revision: number; readonly json: string; storage?: ProcessorConfigStorage };
  /** The part ConfigMaps `emitConfigParts` emitted last, and the stored config they hold. */
  private emittedParts?: { readonly storage: ProcessorConfigStorage; readonly parts: readonly IConstruct[] };
  private derivedShutdown?: { readonly revision: number; readonly shutdown: ProcessorShutdown };

  constructor(scope: Construct, id: string, props: ProcessorProps) {
    super(scope, id);
    this.props = props;
    this._model = props.model ?? new GatewayModel();
    this.namespace = props.namespace;
    const name = this.objectName(props.baseName);
    this.serviceName = name;
    this.configMapName = derivedName([props.baseName, 'processor-config']);
    this.serviceAccountName = name;
    this.labels = { 'app.kubernetes.io/name': 'ai-gateway-processor', 'app.kubernetes.io/instance': name };
    this.routeLabelValue = derivedLabelValue(`${name}.${props.namespace}`);
    this.maxParallelRequestsPerProxy = this.validate(props);
    this.messageTimeout = gatewayDuration(
      this,
      'processor.messageTimeout',
      props.messageTimeout ?? Duration.seconds(10),
    );

    const configMap = this.emitConfigMap();
    this.deployment = this.emitDeployment(name, this.emitServiceAccount(props.serviceAccountAnnotations));
    this.container = this.addProcessorContainer(props);
    this.mountVolumes(configMap, props.imagePullSecrets ?? []);
    // The ConfigMaps after the first exist only for configs split into parts, known once every route has attached:
    // validation runs after that and before any object is rendered (cdk8s synth, Testing.synth, the Pulumi front end).
    this.node.addValidation({
      validate: () => {
        this.emitConfigParts();
        return [];
      },
    });
    this.emitService();
    this.emitDisruptionBudget(name);
    this.emitNetworkPolicy(name, props);
  }

  /** @internal the labels of the processor's pods (its PodMonitor selects them). */
  get _podLabels(): Record<string, string> {
    return { ...this.labels };
  }

  /**
   * Enables the processor on the AIRoutes of `routeNamespace` and returns what their HTTPRoutes need: one
   * EnvoyExtensionPolicy per route namespace (policies target objects of their own namespace) selects the HTTPRoutes
   * carrying `labels` (`targetSelectors`), so Envoy gets one ext_proc filter and one processor cluster per namespace
   * rather than per route; one HTTPRouteFilter per route namespace, `notFoundFilter`, holds the 404 answer of their
   * catch-all rules (filters are referenced from their own namespace). For a namespace other than the processor's,
   * also the ReferenceGrant that lets policies there use this processor's Service. With `defaultTraffic` (a route
   * whose only route-level traffic setting is the default circuit breaker, `maxParallelRequestsPerProxy` per
   * backend cluster), the labels also select the one BackendTrafficPolicy of the namespace holding that circuit
   * breaker, and the route needs no policy of its own. With `fullDuplexResponses` (a route that fails over within a
   * request), a second EnvoyExtensionPolicy of the namespace selects the route instead of the first, the same but for
   * its response body mode, `FullDuplexStreamed`. Emits objects only: what a route serves reaches the processor
   * through its model.
   * @internal
   */
  _attachRoute(routeNamespace: string, options: RouteAttachmentOptions = {}): RouteAttachment {
    // Named after the namespace like the grants (the Pulumi front end names resources after construct ids), except in
    // the processor's own namespace, where the ids stay the same whatever the namespace's value.
    const own = routeNamespace === this.namespace;
    const suffix = own ? '' : `-${routeNamespace}`;
    const fullDuplex = options.fullDuplexResponses === true;
    const policyId = `${fullDuplex ? 'FullDuplexExtensionPolicy' : 'ExtensionPolicy'}${suffix}`;
    if (this.node.tryFindChild(policyId) === undefined) this.emitExtensionPolicy(policyId, routeNamespace, fullDuplex);
    const notFoundFilter = derivedName(
      own ? [this.serviceName, 'not-found'] : [this.serviceName, this.namespace, 'not-found'],
    );
    if (this.node.tryFindChild(`NotFound${suffix}`) === undefined)
      emitNotFoundFilter(this, `NotFound${suffix}`, notFoundFilter, routeNamespace);
    this.grantServiceTo(routeNamespace);
    const labels: Record<string, string> = {
      [fullDuplex ? PROCESSOR_FULL_DUPLEX_ROUTE_LABEL : PROCESSOR_ROUTE_LABEL]: this.routeLabelValue,
    };
    if (options.defaultTraffic === true) {
      if (this.node.tryFindChild(`TrafficPolicy${suffix}`) === undefined)
        this.emitTrafficPolicy(`TrafficPolicy${suffix}`, routeNamespace);
      labels[TRAFFIC_POLICY_ROUTE_LABEL] = this.routeLabelValue;
    }
    return { labels, notFoundFilter };
  }

  /** The name of this processor's policies in `routeNamespace`. */
  private policyName(routeNamespace: string): string {
    return routeNamespace === this.namespace ? this.serviceName : derivedName([this.serviceName, this.namespace]);
  }

  /**
   * The BackendTrafficPolicy of `routeNamespace` for the AIRoutes with the default traffic settings, selected by
   * `TRAFFIC_POLICY_ROUTE_LABEL`: the circuit breaker of their backends' clusters. Envoy Gateway still makes one
   * cluster per route rule, so the limit counts per route and backend as with a policy per route. It merges into the
   * Gateway's policy like a route's own (what the AIGateway's budget policy or a user's Gateway-level policy sets
   * still applies to the routes), and sets no timeout or retry: the drain time reads it all the same
   * (`longestRequestMs`).
   */
  private emitTrafficPolicy(id: string, routeNamespace: string): void {
    customResource<BackendTrafficPolicySpec>(
      this,
      id,
      ENVOY_GATEWAY_API_VERSION,
      'BackendTrafficPolicy',
      { name: this.policyName(routeNamespace), namespace: routeNamespace, labels: this.labels },
      () => ({
        targetSelectors: [
          {
            group: GATEWAY_API_GROUP,
            kind: 'HTTPRoute',
            matchLabels: { [TRAFFIC_POLICY_ROUTE_LABEL]: this.routeLabelValue },
          },
        ],
        mergeType: 'StrategicMerge',
        circuitBreaker: {
          maxConnections: this.maxParallelRequestsPerProxy,
          maxPendingRequests: this.maxParallelRequestsPerProxy,
          maxParallelRequests: this.maxParallelRequestsPerProxy,
        },
        ...this.authenticationErrors(routeNamespace),
      }),
    );
  }

  /**
   * Envoy's own 401s reshaped into the clients' error schema (see auth-error-response.ts) on the routes of
   * `routeNamespace` the shared policy selects, when they authenticate: the gateway's JWT, or consumers of the gateway
   * or of a route there (a route without authentication never gets a plain-text 401 of Envoy's to replace).
   */
  private authenticationErrors(routeNamespace: string): { responseOverride?: ResponseOverrideSpec[] } {
    const model = this._model;
    const responseOverride = authenticationErrorOverride({
      jwt: this.props.gatewayJwt === true,
      apiKeys: model.routes.some((r) => r.namespace === routeNamespace && model.consumersOf(r.route.name).length > 0),
    });
    return responseOverride ? { responseOverride } : {};
  }

  /**
   * The EnvoyExtensionPolicy of `routeNamespace` selecting the HTTPRoutes there labelled with this processor. The
   * full-duplex one (`fullDuplex`, named `<policy name>-full-duplex`) selects those labelled for it and differs only in
   * the response side: Envoy streams the response body to the processor as it arrives and lets it answer with a body
   * of its own (`FullDuplexStreamed`, which Envoy Gateway pairs with trailers sent to the processor), so the
   * processor can replace a failed answer with another backend's. Envoy ignores mode overrides when a body mode is
   * full duplex, so that policy allows none, and the CRD requires `failOpen: false` with it (both policies have it).
   */
  private emitExtensionPolicy(id: string, routeNamespace: string, fullDuplex: boolean): void {
    const name = this.policyName(routeNamespace);
    customResource<EnvoyExtensionPolicySpec>(
      this,
      id,
      ENVOY_GATEWAY_API_VERSION,
      'EnvoyExtensionPolicy',
      {
        name: fullDuplex ? derivedName([name, 'full-duplex']) : name,
        namespace: routeNamespace,
        labels: this.labels,
      },
      {
        targetSelectors: [
          {
            group: GATEWAY_API_GROUP,
            kind: 'HTTPRoute',
            matchLabels: {
              [fullDuplex ? PROCESSOR_FULL_DUPLEX_ROUTE_LABEL : PROCESSOR_ROUTE_LABEL]: this.routeLabelValue,
            },
          },
        ],
        extProc: [
          {
            backendRefs: [
              {
                name: this.serviceName,
                namespace: routeNamespace === this.namespace ? undefined : this.namespace,
                port: PROCESSOR_GRPC_PORT,
              },
            ],
            // `response.code_details` tells the processor a backend's answer (`via_upstream`) from Envoy's own local
            // replies (no route after the re-match, a rate limit, an upstream failure), which it must not translate.
            processingMode: fullDuplex
              ? {
                  request: { body: 'Buffered' },
                  response: { body: 'FullDuplexStreamed', attributes: [RESPONSE_CODE_DETAILS_ATTRIBUTE] },
                }
              : {
                  request: { body: 'Buffered' },
                  response: { body: 'Buffered', attributes: [RESPONSE_CODE_DETAILS_ATTRIBUTE] },
                  allowModeOverride: true,
                },
            messageTimeout: this.messageTimeout,
            failOpen: false,
            metadata: { writableNamespaces: [METADATA_NAMESPACE] },
            // One gRPC stream per request, over a few HTTP/2 connections: the request limits decide, not the
            // connection limit.
            backendSettings: {
              circuitBreaker: {
                maxParallelRequests: this.maxParallelRequestsPerProxy,
                maxPendingRequests: this.maxParallelRequestsPerProxy,
              },
            },
          },
        ],
      },
    );
  }

  /**
   * How the processor pods shut down, derived from the routes in its model so far (the manifests use the final
   * routes): after SIGTERM a pod keeps serving for `delayMs`, then lets in-flight streams run for `drainTimeoutMs`,
   * which is the longest request any route allows (Envoy's route timeout, which covers retries, plus `maxAttempts - 1`
   * attempt timeouts for a rule with a fallback), rounded up to whole seconds and at least 25 s.
   */
  shutdown(): ProcessorShutdown {
    const revision = this._model.revision;
    if (this.derivedShutdown?.revision !== revision)
      this.derivedShutdown = { revision, shutdown: this.deriveShutdown() };
    return this.derivedShutdown.shutdown;
  }

  /** The `config.json` document, compact (rendered once per revision of the model). */
  configJson(): string {
    const revision = this._model.revision;
    if (this.rendered?.revision !== revision) this.rendered = { revision, json: this.renderJson() };
    return this.rendered.json;
  }

  /**
   * How the config is stored: a plain `config.json` in one ConfigMap when it fits, else gzip-compressed parts with a
   * manifest (`config.manifest.json`) in as many ConfigMaps as the parts need.
   * @internal
   */
  _configStorage(): ProcessorConfigStorage {
    const json = this.configJson();
    this.rendered!.storage ??= this.storeConfig(json);
    return this.rendered!.storage;
  }

  /**
   * Mounts a credential Secret read-only at `<secrets-dir>/<secret-name>`. The Secret must live in the
   * processor's namespace: pods cannot mount Secrets of other namespaces.
   * @internal
   */
  _mountSecret(user: Construct, secretName: string, secretNamespace: string): void {
    this._checkSecretNamespace(user, secretName, secretNamespace);
    if (this.mountedSecrets.has(secretName)) return;
    this.mountedSecrets.add(secretName);
    const volume = kplus.Volume.fromSecret(
      this,
      `Secret-${secretName}`,
      kplus.Secret.fromSecretName(this, `SecretRef-${secretName}`, secretName),
      { name: derivedName(['secret', secretName]) },
    );
    this.container.mount(`${SECRETS_DIR}/${secretName}`, volume, { readOnly: true });
  }

  /** @internal throws unless the Secret is in the processor's namespace (the only Secrets its pods can mount). */
  _checkSecretNamespace(user: Construct, secretName: string, secretNamespace: string): void {
    if (secretNamespace !== this.namespace) {
      throw invalid(
        user,
        'credentials.namespace',
        secretNamespace,
        `Secret "${secretName}" must be in namespace "${this.namespace}" where the processor runs ` +
          `(pods cannot mount Secrets of other namespaces); create it there`,
      );
    }
  }

  /**
   * The processor config as it will be written to the ConfigMap (validated with the processor's own schema): the
   * routes and backends its routes contributed, each route requiring the client headers of the budgets over it,
   * and the costs of every budget.
   * @internal
   */
  _renderConfig(): ProcessorConfig {
    const model = this._model;
    const consumerRoutes = model.consumerRoutes();
    const pricedRoutes = model.pricedRoutes();
    const { prices } = model.chargedModels();
    const consumers = model.consumerConfigs(CLIENT_ID_HEADER);
    const budgets = model.budgetConfigs();
    const document: ProcessorConfig = {
      version: CONFIG_VERSION,
      maxRequestBodyBytes: this.props.maxRequestBodyBytes,
      backends: model.routes.flatMap((fragment) => fragment.backends),
      routes: model.routes.map((fragment) => ({
        ...fragment.route,
        requiredHeaders: model.requiredHeaders(fragment),
        ...(consumerRoutes.has(fragment.route.name) ? { consumerRequired: true } : {}),
        ...(pricedRoutes.has(fragment.route.name) ? { priceRequired: true } : {}),
      })),
      costs: model.costConfigs(),
      circuitBreaker: {
        failureThreshold: this.props.circuitBreakerFailureThreshold ?? 5,
        openDurationMs: (this.props.circuitBreakerOpenDuration ?? Duration.seconds(30)).toMilliseconds(),
      },
      ...(prices.length > 0 ? { prices } : {}),
      ...(consumers ? { consumers } : {}),
      ...(budgets.length > 0 ? { budgets } : {}),
    };
    try {
      return parseProcessorConfig(document);
    } catch (error) {
      if (error instanceof ProcessorConfigError) {
        throw new AIGatewayValidationError(
          this.node.path,
          'processor config',
          error.problems,
          'rejected by the processor schema',
        );
      }
      throw error;
    }
  }

  /** The names of the processor's objects; Service names must start with a letter. */
  private objectName(baseName: string): string {
    const name = derivedName([baseName, 'processor']);
    if (!/^[a-z]/.test(name)) {
      throw invalid(
        this,
        'name',
        baseName,
        `the processor Service would be named "${name}", but Service names must start with a letter`,
      );
    }
    return name;
  }

  /** Checks the props that need no object to be emitted first; returns Envoy's per-proxy request limit. */
  private validate(props: ProcessorProps): number {
    const replicas = props.replicas ?? 2;
    if (!Number.isInteger(replicas) || replicas < 1)
      throw invalid(this, 'processor.replicas', replicas, 'must be a positive integer');
    checkAnnotations(this, 'processor.serviceAccountAnnotations', props.serviceAccountAnnotations);
    const streams = props.streamsPerReplica ?? DEFAULT_STREAMS_PER_REPLICA;
    if (!Number.isInteger(streams) || streams < 1)
      throw invalid(this, 'processor.streamsPerReplica', streams, 'must be a positive integer');
    const { maximum, field, kind } = CRD_LIMITS.extProcMaxParallelRequests;
    if (replicas * streams > maximum) {
      throw invalid(
        this,
        'processor.streamsPerReplica',
        streams,
        `replicas × streamsPerReplica (${replicas} × ${streams}) is Envoy's request limit for the processor, ` +
          `and the ${kind} field ${field} holds at most ${maximum}`,
      );
    }
    return replicas * streams;
  }

  /**
   * The first config ConfigMap: the plain `config.json`, or the bundle's manifest and first part. Its keys follow
   * the config, so its data is produced at synth in place of the keys cdk8s-plus would render.
   */
  private emitConfigMap(): kplus.ConfigMap {
    const configMap = new kplus.ConfigMap(this, 'Config', {
      metadata: {
        name: this.configMapName,
        namespace: this.namespace,
        labels: this.labels,
        annotations: SERVER_SIDE_APPLY,
      },
    });
    Object.defineProperty(configMap, 'synthesizeData', { value: () => this._configStorage().configMaps[0].data });
    Object.defineProperty(configMap, 'synthesizeBinaryData', {
      value: () => this._configStorage().configMaps[0].binaryData,
    });
    return configMap;
  }

  /**
   * The ConfigMaps of the parts after the first (none for a plain config), replacing those of an earlier synth. cdk8s
   * validates the app once per chart and once more: parts already emitted for the same stored config stay, and the
   * app's check of duplicate objects has seen them since.
   */
  private emitConfigParts(): void {
    const present = this.node.children.filter((child) => child.node.id.startsWith(CONFIG_PART_ID));
    let storage: ProcessorConfigStorage | undefined;
    try {
      storage = this._configStorage();
    } catch {
      // The first ConfigMap's rendering reports why the config cannot be stored, as it always has.
      storage = undefined;
    }
    const emitted = this.emittedParts;
    if (
      storage !== undefined &&
      emitted?.storage === storage &&
      emitted.parts.length === present.length &&
      emitted.parts.every((part, i) => present[i] === part)
    )
      return;
    for (const child of present) this.node.tryRemoveChild(child.node.id);
    this.emittedParts = undefined;
    if (storage === undefined) return;
    const parts = storage.configMaps.slice(1).map(
      (entry, i) =>
        new kplus.ConfigMap(this, `${CONFIG_PART_ID}${i + 2}`, {
          metadata: {
            name: entry.name,
            namespace: this.namespace,
            labels: this.labels,
            annotations: SERVER_SIDE_APPLY,
          },
          binaryData: entry.binaryData,
        }),
    );
    this.emittedParts = { storage, parts };
    // The app's check of duplicate objects ran before these existed.
    if (parts.length > 0) {
      const duplicate = duplicateObjectError(this.node.root);
      if (duplicate) throw duplicate;
    }
  }

  /** Decides the stored form of the config (see `_configStorage`); throws when even the parts cannot hold it. */
  private storeConfig(json: string): ProcessorConfigStorage {
    const bytes = Buffer.byteLength(json);
    if (bytes <= MAX_CONFIG_BYTES) {
      return {
        file: PLAIN_CONFIG_KEY,
        configMaps: [{ name: this.configMapName, data: { [PLAIN_CONFIG_KEY]: json } }],
      };
    }
    const tooLarge = (value: string, limit: string): AIGatewayValidationError =>
      new AIGatewayValidationError(
        this.node.path,
        'processor config',
        value,
        `exceeds what the processor's ConfigMaps hold (${limit}); spread the routes over several gateways`,
      );
    if (bytes > MAX_DECODED_CONFIG_BYTES) {
      throw tooLarge(`${bytes} bytes`, `${MAX_DECODED_CONFIG_BYTES} bytes of config, the most the processor loads`);
    }
    const bundle = encodeConfigBundle(Buffer.from(json), NODE_BUNDLE_CODEC, { maxPartBytes: MAX_CONFIG_PART_BYTES });
    if (bundle.parts.length > MAX_BUNDLE_PARTS) {
      const compressed = bundle.manifest.parts.reduce((sum, part) => sum + part.bytes, 0);
      throw tooLarge(
        `${bytes} bytes, ${compressed} compressed`,
        `${MAX_BUNDLE_PARTS * MAX_CONFIG_PART_BYTES} compressed bytes in ${MAX_BUNDLE_PARTS} ConfigMaps`,
      );
    }
    const configMaps = bundle.parts.map((part, i) => ({
      name: i === 0 ? this.configMapName : derivedName([this.props.baseName, 'processor-config', String(i + 1)]),
      binaryData: { [part.key]: Buffer.from(part.data).toString('base64') },
    }));
    return {
      file: MANIFEST_KEY,
      configMaps: [
        { ...configMaps[0], data: { [MANIFEST_KEY]: JSON.stringify(bundle.manifest) } },
        ...configMaps.slice(1),
      ],
    };
  }

  private emitServiceAccount(annotations: Record<string, string> | undefined): kplus.ServiceAccount {
    return new kplus.ServiceAccount(this, 'ServiceAccount', {
      metadata: { name: this.serviceAccountName, namespace: this.namespace, labels: this.labels, annotations },
      automountToken: false,
    });
  }

  /** The Deployment; its grace period and config hash follow the model, read at synth. */
  private emitDeployment(name: string, serviceAccount: kplus.ServiceAccount): kplus.Deployment {
    const deployment = new kplus.Deployment(this, 'Deployment', {
      metadata: { name, namespace: this.namespace, labels: this.labels },
      replicas: this.props.replicas ?? 2,
      serviceAccount,
      automountServiceAccountToken: false,
      securityContext: { ensureNonRoot: true, user: PROCESSOR_UID, group: PROCESSOR_UID, fsGroup: PROCESSOR_UID },
    });
    for (const [key, value] of Object.entries(this.labels)) deployment.podMetadata.addLabel(key, value);
    // The grace period follows the routes, which attach after this constructor: cdk8s-plus reads this property when it
    // renders the pod spec at synth.
    Object.defineProperty(deployment, 'terminationGracePeriod', {
      get: () => Duration.seconds(this.shutdown().terminationGracePeriodSeconds),
    });
    // A new config rolls the pods, so every replica runs the same config.
    deployment.podMetadata.addAnnotation(
      CONFIG_HASH_ANNOTATION,
      lazyString(() => shortHash(this.configJson(), 16)),
    );
    return deployment;
  }

  private addProcessorContainer(props: ProcessorProps): kplus.Container {
    return this.deployment.addContainer({
      name: 'processor',
      image: (props.image ?? ProcessorImage.default()).reference,
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      args: [
        '--config',
        lazyString(() => `${CONFIG_DIR}/${this._configStorage().file}`),
        '--secrets-dir',
        SECRETS_DIR,
        '--listen',
        `0.0.0.0:${PROCESSOR_GRPC_PORT}`,
        '--admin',
        `0.0.0.0:${PROCESSOR_ADMIN_PORT}`,
        // The processor's own preStop: it keeps serving for the delay, then drains for as long as a request may run.
        '--shutdown-delay-ms',
        String(PROCESSOR_SHUTDOWN_DELAY_MS),
        '--drain-timeout-ms',
        lazyString(() => String(this.shutdown().drainTimeoutMs)),
        '--stream-idle-timeout-ms',
        lazyString(() => String(this.shutdown().streamIdleTimeoutMs)),
        ...(props.tracingArgs ?? []),
      ],
      ports: [
        { name: 'grpc', number: PROCESSOR_GRPC_PORT },
        { name: 'admin', number: PROCESSOR_ADMIN_PORT },
      ],
      // The admin server listens once the config has loaded, and a processor waits up to 30 s for a config set whose
      // ConfigMaps are still being updated: liveness starts after this probe, which allows 60 s.
      startup: kplus.Probe.fromHttpGet('/healthz', {
        port: PROCESSOR_ADMIN_PORT,
        periodSeconds: Duration.seconds(2),
        failureThreshold: 30,
      }),
      liveness: kplus.Probe.fromHttpGet('/healthz', { port: PROCESSOR_ADMIN_PORT }),
      readiness: kplus.Probe.fromHttpGet('/readyz', { port: PROCESSOR_ADMIN_PORT }),
      resources: props.resources ?? {
        cpu: { request: kplus.Cpu.millis(100), limit: kplus.Cpu.units(1) },
        memory: { request: Size.mebibytes(128), limit: Size.mebibytes(512) },
      },
      securityContext: {
        ensureNonRoot: true,
        user: PROCESSOR_UID,
        group: PROCESSOR_UID,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        privileged: false,
        capabilities: { drop: [kplus.Capability.ALL] },
        seccompProfile: { type: kplus.SeccompProfileType.RUNTIME_DEFAULT },
      },
    });
  }

  private mountVolumes(configMap: kplus.ConfigMap, imagePullSecrets: readonly string[]): void {
    const configVolume = kplus.Volume.fromConfigMap(this, 'ConfigVolume', configMap, { name: 'config' });
    // A config split into parts mounts all its ConfigMaps as one projected volume: one directory, as the processor
    // reads it (kubelet may still refresh them one by one: the processor loads only a complete set).
    const plainVolume = (configVolume as unknown as { _toKube(): k8s.Volume })._toKube.bind(configVolume);
    Object.defineProperty(configVolume, '_toKube', {
      value: (): k8s.Volume => {
        const configMaps = this._configStorage().configMaps;
        if (configMaps.length === 1) return plainVolume();
        return {
          name: 'config',
          projected: { sources: configMaps.map((entry) => ({ configMap: { name: entry.name } })) },
        };
      },
    });
    this.container.mount(CONFIG_DIR, configVolume, { readOnly: true });
    this.container.mount('/tmp', kplus.Volume.fromEmptyDir(this, 'TmpVolume', 'tmp'));
    if (imagePullSecrets.length > 0) {
      ApiObject.of(this.deployment).addJsonPatch(
        JsonPatch.add(
          '/spec/template/spec/imagePullSecrets',
          imagePullSecrets.map((secret) => ({ name: secret })),
        ),
      );
    }
  }

  private emitService(): void {
    const service = new kplus.Service(this, 'Service', {
      metadata: { name: this.serviceName, namespace: this.namespace, labels: this.labels },
      selector: this.deployment,
      ports: [
        { name: 'grpc', port: PROCESSOR_GRPC_PORT, targetPort: PROCESSOR_GRPC_PORT },
        { name: 'admin', port: PROCESSOR_ADMIN_PORT, targetPort: PROCESSOR_ADMIN_PORT },
      ],
    });
    // Envoy talks gRPC (HTTP/2 without TLS) to the processor.
    ApiObject.of(service).addJsonPatch(JsonPatch.add('/spec/ports/0/appProtocol', 'kubernetes.io/h2c'));
  }

  private emitDisruptionBudget(name: string): void {
    new KubePodDisruptionBudget(this, 'DisruptionBudget', {
      metadata: { name, namespace: this.namespace, labels: this.labels },
      spec: { maxUnavailable: IntOrString.fromNumber(1), selector: { matchLabels: this.labels } },
    });
  }

  /** Admits the gateway's proxies to the gRPC port, and the metrics namespace (if any) to the admin port. */
  private emitNetworkPolicy(name: string, props: ProcessorProps): void {
    const proxies = (props.proxyDeployMode ?? ProxyDeployMode.perGateway())._peer(
      this,
      props.gateway,
      props.envoyGatewayNamespace,
    );
    const ingress: { from: NetworkPolicyPeer[]; ports: { protocol: string; port: IntOrString }[] }[] = [
      { from: [proxies], ports: [{ protocol: 'TCP', port: IntOrString.fromNumber(PROCESSOR_GRPC_PORT) }] },
    ];
    if (props.metricsNamespace !== undefined) {
      ingress.push({
        from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': props.metricsNamespace } } }],
        ports: [{ protocol: 'TCP', port: IntOrString.fromNumber(PROCESSOR_ADMIN_PORT) }],
      });
    }
    new KubeNetworkPolicy(this, 'NetworkPolicy', {
      metadata: { name, namespace: this.namespace, labels: this.labels },
      spec: { podSelector: { matchLabels: this.labels }, policyTypes: ['Ingress'], ingress },
    });
  }

  /** Emits (once per namespace) the ReferenceGrant that lets EnvoyExtensionPolicies there use the Service. */
  private grantServiceTo(routeNamespace: string): void {
    const id = `ReferenceGrant-${routeNamespace}`;
    if (routeNamespace === this.namespace || this.node.tryFindChild(id) !== undefined) return;
    const name = derivedName([this.serviceName, 'from', routeNamespace]);
    // Backends' shared grants live in namespaces like this one: the name must be this grant's alone.
    synthRegistry(this).claimName(this, 'name', { kind: 'ReferenceGrant', namespace: this.namespace, name });
    customResource<ReferenceGrantSpec>(
      this,
      id,
      REFERENCE_GRANT_API_VERSION,
      'ReferenceGrant',
      { name, namespace: this.namespace, labels: this.labels },
      {
        from: [{ group: ENVOY_GATEWAY_GROUP, kind: 'EnvoyExtensionPolicy', namespace: routeNamespace }],
        to: [{ group: '', kind: 'Service', name: this.serviceName }],
      },
    );
  }

  private renderJson(): string {
    return JSON.stringify(this._renderConfig());
  }

  private deriveShutdown(): ProcessorShutdown {
    let longest: { route: string; ms: number } | undefined;
    // The processor's own policies (those selecting routes by label), rendered once for all routes.
    const shared = this.node.children
      .filter((c): c is ApiObject => ApiObject.isApiObject(c) && c.kind === 'BackendTrafficPolicy')
      .map((o) => ({ namespace: o.metadata.namespace, spec: trafficPolicySpec(o) }));
    // Routes repeat a few durations (`60s`): each text is parsed once.
    const parsed = new Map<string, number | undefined>();
    const durationMs = (value: unknown): number | undefined => {
      if (typeof value !== 'string') return undefined;
      if (!parsed.has(value)) parsed.set(value, gatewayDurationMs(value));
      return parsed.get(value);
    };
    for (const route of this._model.routes) {
      const ms =
        longestRequestMs(route.scope, route.name, route.namespace, shared, durationMs) +
        fallbackAttemptsMs(route.route);
      if (longest === undefined || ms > longest.ms) longest = { route: `${route.namespace}/${route.name}`, ms };
    }
    const proxyDrain = this.props.proxyDrainTimeout;
    if (proxyDrain !== undefined && longest !== undefined && longest.ms > proxyDrain.toMilliseconds()) {
      throw invalid(
        this,
        'proxyDrainTimeout',
        `${proxyDrain.toMilliseconds()}ms`,
        `route "${longest.route}" allows requests of ${longest.ms} ms, and a proxy rollout cuts ` +
          `what still runs after the proxies' drain; ` +
          `set spec.shutdown.drainTimeout to at least ${Math.ceil(longest.ms / 1000)}s on the ` +
          `EnvoyProxy of the gateway's proxies and pass the same value here`,
      );
    }
    const drainSeconds = Math.max(PROCESSOR_MIN_DRAIN_SECONDS, Math.ceil((longest?.ms ?? 0) / 1000));
    return {
      delayMs: PROCESSOR_SHUTDOWN_DELAY_MS,
      drainTimeoutMs: drainSeconds * 1000,
      streamIdleTimeoutMs: Math.max(PROCESSOR_MIN_STREAM_IDLE_MS, (longest?.ms ?? 0) + STREAM_IDLE_MARGIN_MS),
      terminationGracePeriodSeconds:
        Math.ceil(PROCESSOR_SHUTDOWN_DELAY_MS / 1000) + drainSeconds + GRACE_PERIOD_MARGIN_SECONDS,
      ...(longest !== undefined ? { longestRequest: longest } : {}),
    };
  }
}

/**
 * The HTTPRouteFilter `name` in `namespace` answering 404 with an OpenAI-style error: the answer of the catch-all rule
 * of every AIRoute there, for requests no rule of the processor routes (or paths outside the API endpoints).
 */
function emitNotFoundFilter(scope: Construct, id: string, name: string, namespace: string): void {
  customResource<HTTPRouteFilterSpec>(
    scope,
    id,
    ENVOY_GATEWAY_API_VERSION,
    'HTTPRouteFilter',
    { name, namespace },
    {
      directResponse: {
        statusCode: 404,
        contentType: 'application/json',
        body: {
          type: 'Inline',
          inline: JSON.stringify({
            error: {
              type: 'invalid_request_error',
              code: 'model_not_found',
              message:
                'No route matches this request: the model is not configured on this gateway, or the path is ' +
                'not an API endpoint.',
            },
          }),
        },
      },
    },
  );
}

/** `value`, or its first characters and a hash of it when it is longer than a label value may be (63). */
function derivedLabelValue(value: string): string {
  if (value.length <= MAX_LABEL_LENGTH) return value;
  const hash = shortHash(value, 16);
  return `${value.slice(0, MAX_LABEL_LENGTH - hash.length - 1).replace(/[-.]+$/, '')}-${hash}`;
}

/**
 * A string produced at synth: cdk8s resolves the `Lazy` wherever the value is rendered, so it can stand where the
 * cdk8s-plus API expects a string (`Lazy.any` is typed `any`).
 */
function lazyString(produce: () => string): string {
  return Lazy.any({ produce }) as string;
}

/** The parts of a BackendTrafficPolicy spec the drain time reads (synthesized JSON, so every field is optional). */
interface TrafficPolicySpecView {
  readonly targetRefs?: ReadonlyArray<{ kind?: string; name?: string }>;
  readonly targetSelectors?: ReadonlyArray<{
    readonly group?: string;
    readonly kind?: string;
    readonly namespaces?: unknown;
    readonly matchLabels?: Readonly<Record<string, string>>;
    readonly matchExpressions?: unknown;
  }>;
  readonly timeout?: { readonly http?: { readonly requestTimeout?: unknown } };
  readonly retry?: {
    readonly numRetries?: unknown;
    readonly perRetry?: { readonly timeout?: unknown; readonly backOff?: { readonly maxInterval?: unknown } };
  };
}

/** The parts of an HTTPRoute spec the drain time reads. */
interface RouteSpecView {
  readonly rules?: ReadonlyArray<{
    readonly backendRefs?: unknown;
    readonly timeouts?: { readonly request?: unknown };
  }>;
}

/**
 * The longest a request through the HTTPRoute `routeName` may run, read from the objects emitted under `scope` (the
 * HTTPRoute and a BackendTrafficPolicy targeting it) and from the processor's BackendTrafficPolicies selecting routes
 * by label (`shared`, rendered) the way Envoy Gateway translates them: the route timeout is the rule's
 * `timeouts.request`, else the policy's `timeout.http.requestTimeout`, else Envoy's 15 s default
 * (`internal/xds/translator/route.go` getEffectiveRequestTimeout); it covers every retry. Only a disabled route
 * timeout (`0s`) lets retries add up: then each try's timeout times the tries. The constructs give a route at most
 * one route-level policy (Envoy Gateway applies only the first). `durationMs` reads a duration (`gatewayDurationMs`).
 */
function longestRequestMs(
  scope: IConstruct,
  routeName: string,
  routeNamespace: string,
  shared: ReadonlyArray<{ readonly namespace?: string; readonly spec?: TrafficPolicySpecView }>,
  durationMs: (value: unknown) => number | undefined,
): number {
  const objects = scope.node.findAll().filter((c): c is ApiObject => ApiObject.isApiObject(c));
  const route = objects.find(
    (o) => o.kind === 'HTTPRoute' && o.name === routeName && o.metadata.namespace === routeNamespace,
  );
  if (route === undefined) {
    throw invalid(
      scope,
      'route',
      `${routeNamespace}/${routeName}`,
      'has no HTTPRoute beside it; the processor derives its drain time from the route timeouts',
    );
  }
  const { label, rules } = renderedRoute(route);
  const policy = [
    ...objects
      .filter((o) => o.kind === 'BackendTrafficPolicy')
      .map((o) => ({
        namespace: o.metadata.namespace,
        spec: trafficPolicySpec(o),
      })),
    ...shared,
  ]
    .filter((candidate) => candidate.namespace === routeNamespace)
    .map((candidate) => candidate.spec)
    .find(
      (spec) =>
        (spec?.targetRefs ?? []).some((t) => t.kind === 'HTTPRoute' && t.name === routeName) ||
        (spec?.targetSelectors ?? []).some((selector) => selectsRoute(selector, label)),
    );
  const policyTimeout = durationMs(policy?.timeout?.http?.requestTimeout);
  const retry = policy?.retry;
  let longest = 0;
  for (const rule of rules) {
    if (!Array.isArray(rule.backendRefs) || rule.backendRefs.length === 0) continue; // answered by Envoy itself
    const ruleTimeout = durationMs(rule.timeouts?.request);
    const requestMs = ruleTimeout ?? policyTimeout ?? ENVOY_DEFAULT_ROUTE_TIMEOUT_MS;
    if (requestMs > 0) {
      longest = Math.max(longest, requestMs);
      continue;
    }
    const perTryMs = durationMs(retry?.perRetry?.timeout);
    if (perTryMs === undefined || perTryMs === 0) {
      const disabled = ruleTimeout !== undefined ? rule.timeouts?.request : policy?.timeout?.http?.requestTimeout;
      throw invalid(
        scope,
        'requestTimeout',
        disabled,
        `route "${routeNamespace}/${routeName}" has no request timeout, so no drain time can cover its requests`,
      );
    }
    const retries = typeof retry?.numRetries === 'number' ? retry.numRetries : ENVOY_GATEWAY_DEFAULT_RETRIES;
    const backOffMs = durationMs(retry?.perRetry?.backOff?.maxInterval) ?? 0;
    longest = Math.max(longest, perTryMs * (retries + 1) + backOffMs * retries);
  }
  return longest;
}

/**
 * What a route's fallback may add to its longest request: the processor's own attempts (`maxAttempts - 1` of them,
 * `attemptTimeoutMs` each) start once Envoy's attempt has ended, so Envoy's route timeout does not cover them.
 */
function fallbackAttemptsMs(route: RouteConfig): number {
  return Math.max(
    0,
    ...route.rules.map((rule) =>
      rule.fallback === undefined ? 0 : (rule.fallback.maxAttempts - 1) * rule.fallback.attemptTimeoutMs,
    ),
  );
}

/**
 * What the drain time reads of an HTTPRoute as rendered (escape hatches included): its labels and its rules' backends
 * and timeouts. Read from the plain props of a route the constructs emitted (see `plainPropsMember`; rendering every
 * route twice per synth costs a fifth of what writing it as YAML does), else from the rendered object.
 */
function renderedRoute(route: ApiObject): {
  readonly label: (key: string) => string | undefined;
  readonly rules: NonNullable<RouteSpecView['rules']>;
} {
  const rules = plainRouteRules(route);
  if (rules !== NOT_PLAIN) {
    let rendered: ((key: string) => string | undefined) | undefined;
    // A label as rendered: the route's own or its chart's, a `Lazy` one produced; one only cdk8s resolves, rendered.
    const label = (key: string) => {
      const value = plainLevel(route.metadata.getLabel(key));
      if (value !== NOT_PLAIN) return typeof value === 'string' ? value : undefined;
      rendered ??= labelsOf(route.toJson());
      return rendered(key);
    };
    return { label, rules };
  }
  const json = route.toJson() as { spec?: RouteSpecView };
  return { label: labelsOf(json), rules: json.spec?.rules ?? [] };
}

/** The labels of a rendered object, by key. */
function labelsOf(json: unknown): (key: string) => string | undefined {
  const labels = (json as { metadata?: { labels?: Record<string, string> } }).metadata?.labels ?? {};
  return (key) => (Object.hasOwn(labels, key) ? labels[key] : undefined);
}

/** The rules of a route's plain props with the members the drain time reads, or `NOT_PLAIN`. */
function plainRouteRules(route: ApiObject): NonNullable<RouteSpecView['rules']> | typeof NOT_PLAIN {
  const spec = plainPropsMember(route, 'spec');
  if (spec === NOT_PLAIN) return NOT_PLAIN;
  const rulesValue =
    spec === undefined || Array.isArray(spec) ? undefined : plainLevel((spec as { rules?: unknown }).rules);
  if (rulesValue === NOT_PLAIN) return NOT_PLAIN;
  if (!Array.isArray(rulesValue)) return [];
  const rules: { backendRefs?: unknown; timeouts?: { request?: unknown } }[] = [];
  for (const element of rulesValue) {
    const rule = plainLevel(element);
    if (rule === NOT_PLAIN) return NOT_PLAIN;
    if (rule === undefined || typeof rule !== 'object' || Array.isArray(rule)) {
      rules.push({});
      continue;
    }
    const backendRefs = plainLevel((rule as { backendRefs?: unknown }).backendRefs);
    const timeouts = plainLevel((rule as { timeouts?: unknown }).timeouts);
    if (backendRefs === NOT_PLAIN || timeouts === NOT_PLAIN) return NOT_PLAIN;
    if (timeouts === undefined || typeof timeouts !== 'object' || Array.isArray(timeouts)) {
      rules.push({ backendRefs });
      continue;
    }
    const request = plainLevel((timeouts as { request?: unknown }).request);
    if (request === NOT_PLAIN) return NOT_PLAIN;
    rules.push({ backendRefs, timeouts: { request } });
  }
  return rules;
}

/** The spec of a BackendTrafficPolicy as rendered (escape hatches included). */
function trafficPolicySpec(policy: ApiObject): TrafficPolicySpecView | undefined {
  return (policy.toJson() as { spec?: TrafficPolicySpecView }).spec;
}

/**
 * Whether a policy's `targetSelectors` entry selects an HTTPRoute of the policy's namespace with `labels`: the kinds
 * of selector the processor emits (`matchLabels` only). One with `namespaces` or `matchExpressions` counts as not
 * selecting, which errs towards reading no policy.
 */
function selectsRoute(
  selector: NonNullable<TrafficPolicySpecView['targetSelectors']>[number],
  label: (key: string) => string | undefined,
): boolean {
  if ((selector.group ?? GATEWAY_API_GROUP) !== GATEWAY_API_GROUP || selector.kind !== 'HTTPRoute') return false;
  if (selector.namespaces !== undefined || selector.matchExpressions !== undefined) return false;
  return Object.entries(selector.matchLabels ?? {}).every(([key, value]) => label(key) === value);
}
