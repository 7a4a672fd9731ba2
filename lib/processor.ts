import { ApiObject, Duration, JsonPatch, Lazy, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { IntOrString, KubeNetworkPolicy, KubePodDisruptionBudget } from 'cdk8s-plus-28/lib/imports/k8s';
import { Construct } from 'constructs';
import {
  CONFIG_VERSION,
  METADATA_NAMESPACE,
  ProcessorConfigError,
  parseProcessorConfig,
  type BackendConfig,
  type CostConfig,
  type ProcessorConfig,
  type RouteConfig,
} from '../processor/src/config/schema';
import {
  ENVOY_GATEWAY_API_VERSION,
  ENVOY_GATEWAY_GROUP,
  GATEWAY_API_GROUP,
  REFERENCE_GRANT_API_VERSION,
  customResource,
  gatewayDuration,
  type EnvoyExtensionPolicySpec,
  type ReferenceGrantSpec,
} from './crds';
import { AIGatewayValidationError, invalid } from './errors';
import { derivedName, shortHash } from './names';
import { ProcessorImage } from './processor-image';

export const PROCESSOR_GRPC_PORT = 9002;
export const PROCESSOR_ADMIN_PORT = 9090;
export const CONFIG_DIR = '/etc/ai-gateway/config';
export const SECRETS_DIR = '/etc/ai-gateway/secrets';
/** Numeric non-root user of the processor image (distroless "nonroot"). */
export const PROCESSOR_UID = 65532;
/** ConfigMaps hold at most 1 MiB of data; leave room for the key. */
export const MAX_CONFIG_BYTES = 1024 * 1024 - 64;
/** Pod-template annotation carrying a hash of the processor config. */
export const CONFIG_HASH_ANNOTATION = 'ai-gateway-constructs.io/config-hash';
/** Envoy's response attribute the processor reads to tell a backend's answer from Envoy's local replies. */
const RESPONSE_CODE_DETAILS_ATTRIBUTE = 'response.code_details';

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
}

/** One route's contribution to a processor config. */
export interface ProcessorRouteSource {
  /** Construct path for error messages. */
  readonly node: { readonly path: string };
  /** @internal */
  _processorConfig(): { route: RouteConfig; backends: BackendConfig[] };
}

export interface ProcessorProps extends ProcessorOptions {
  /** Stem of the generated object names. */
  readonly baseName: string;
  readonly namespace: string;
  /** The Gateway whose Envoy pods may call the processor. */
  readonly gateway: { readonly name: string; readonly namespace: string };
  /** Namespace Envoy Gateway runs its proxies in. */
  readonly envoyGatewayNamespace: string;
  /** Largest request body the processor accepts (the gateway's buffer limit). */
  readonly maxRequestBodyBytes: number;
}

/**
 * The ext_proc processor of one gateway: ConfigMap (`config.json`), Deployment, Service, ServiceAccount,
 * PodDisruptionBudget and NetworkPolicy. Each AIRoute wires it into Envoy with an EnvoyExtensionPolicy targeting
 * the route's HTTPRoute (`attachRoute`), never the whole Gateway: Envoy Gateway enables a Gateway-targeted
 * ext_proc on every route of the Gateway, and the processor answers 404 to any request it has no route for, so
 * ordinary HTTPRoutes sharing the Gateway would stop working.
 */
export class Processor extends Construct {
  readonly serviceName: string;
  readonly configMapName: string;
  readonly serviceAccountName: string;
  readonly namespace: string;
  readonly deployment: kplus.Deployment;
  private readonly routes: ProcessorRouteSource[] = [];
  private readonly costs = new Map<string, CostConfig>();
  private readonly requiredHeaders = new Set<string>();
  private readonly mountedSecrets = new Set<string>();
  private readonly grantedNamespaces = new Set<string>();
  private readonly labels: Record<string, string>;
  private readonly messageTimeout: string;
  private readonly container: kplus.Container;
  private readonly props: ProcessorProps;
  private renderedJson?: string;

  constructor(scope: Construct, id: string, props: ProcessorProps) {
    super(scope, id);
    this.props = props;
    this.namespace = props.namespace;
    const name = derivedName([props.baseName, 'processor']);
    if (!/^[a-z]/.test(name)) {
      throw invalid(this, 'name', props.baseName, `the processor Service would be named "${name}", but Service names must start with a letter`);
    }
    this.serviceName = name;
    this.configMapName = derivedName([props.baseName, 'processor-config']);
    this.serviceAccountName = name;
    const replicas = props.replicas ?? 2;
    if (!Number.isInteger(replicas) || replicas < 1) throw invalid(this, 'processor.replicas', replicas, 'must be a positive integer');
    const labels = { 'app.kubernetes.io/name': 'ai-gateway-processor', 'app.kubernetes.io/instance': name };
    this.labels = labels;
    this.messageTimeout = gatewayDuration(this, 'processor.messageTimeout', props.messageTimeout ?? Duration.seconds(10));

    const configMap = new kplus.ConfigMap(this, 'Config', {
      metadata: { name: this.configMapName, namespace: this.namespace, labels },
    });
    configMap.addData('config.json', Lazy.any({ produce: () => this.configJson() }));

    const serviceAccount = new kplus.ServiceAccount(this, 'ServiceAccount', {
      metadata: { name: this.serviceAccountName, namespace: this.namespace, labels, annotations: props.serviceAccountAnnotations },
      automountToken: false,
    });

    this.deployment = new kplus.Deployment(this, 'Deployment', {
      metadata: { name, namespace: this.namespace, labels },
      replicas,
      serviceAccount,
      automountServiceAccountToken: false,
      securityContext: { ensureNonRoot: true, user: PROCESSOR_UID, group: PROCESSOR_UID, fsGroup: PROCESSOR_UID },
    });
    for (const [key, value] of Object.entries(labels)) this.deployment.podMetadata.addLabel(key, value);
    // A new config rolls the pods, so every replica runs the same config.
    this.deployment.podMetadata.addAnnotation(CONFIG_HASH_ANNOTATION, Lazy.any({ produce: () => shortHash(this.configJson(), 16) }));

    this.container = this.deployment.addContainer({
      name: 'processor',
      image: (props.image ?? ProcessorImage.default()).reference,
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      args: [
        '--config',
        `${CONFIG_DIR}/config.json`,
        '--secrets-dir',
        SECRETS_DIR,
        '--listen',
        `0.0.0.0:${PROCESSOR_GRPC_PORT}`,
        '--admin',
        `0.0.0.0:${PROCESSOR_ADMIN_PORT}`,
      ],
      ports: [
        { name: 'grpc', number: PROCESSOR_GRPC_PORT },
        { name: 'admin', number: PROCESSOR_ADMIN_PORT },
      ],
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
    this.container.mount(CONFIG_DIR, kplus.Volume.fromConfigMap(this, 'ConfigVolume', configMap, { name: 'config' }), { readOnly: true });
    this.container.mount('/tmp', kplus.Volume.fromEmptyDir(this, 'TmpVolume', 'tmp'));
    if (props.imagePullSecrets && props.imagePullSecrets.length > 0) {
      ApiObject.of(this.deployment).addJsonPatch(
        JsonPatch.add('/spec/template/spec/imagePullSecrets', props.imagePullSecrets.map((secret) => ({ name: secret }))),
      );
    }

    const service = new kplus.Service(this, 'Service', {
      metadata: { name: this.serviceName, namespace: this.namespace, labels },
      selector: this.deployment,
      ports: [
        { name: 'grpc', port: PROCESSOR_GRPC_PORT, targetPort: PROCESSOR_GRPC_PORT },
        { name: 'admin', port: PROCESSOR_ADMIN_PORT, targetPort: PROCESSOR_ADMIN_PORT },
      ],
    });
    // Envoy talks gRPC (HTTP/2 without TLS) to the processor.
    ApiObject.of(service).addJsonPatch(JsonPatch.add('/spec/ports/0/appProtocol', 'kubernetes.io/h2c'));

    new KubePodDisruptionBudget(this, 'DisruptionBudget', {
      metadata: { name, namespace: this.namespace, labels },
      spec: { maxUnavailable: IntOrString.fromNumber(1), selector: { matchLabels: labels } },
    });

    const ingress = [
      {
        from: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': props.envoyGatewayNamespace } },
            podSelector: {
              matchLabels: {
                'gateway.envoyproxy.io/owning-gateway-name': props.gateway.name,
                'gateway.envoyproxy.io/owning-gateway-namespace': props.gateway.namespace,
              },
            },
          },
        ],
        ports: [{ protocol: 'TCP', port: IntOrString.fromNumber(PROCESSOR_GRPC_PORT) }],
      },
    ];
    if (props.metricsNamespace !== undefined) {
      ingress.push({
        from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': props.metricsNamespace } } } as (typeof ingress)[0]['from'][0]],
        ports: [{ protocol: 'TCP', port: IntOrString.fromNumber(PROCESSOR_ADMIN_PORT) }],
      });
    }
    new KubeNetworkPolicy(this, 'NetworkPolicy', {
      metadata: { name, namespace: this.namespace, labels },
      spec: { podSelector: { matchLabels: labels }, policyTypes: ['Ingress'], ingress },
    });
  }

  /**
   * Enables the processor on the HTTPRoute `routeName` in `routeNamespace`: an EnvoyExtensionPolicy beside the
   * route (policies target objects of their own namespace) and, for a route in another namespace, the
   * ReferenceGrant that lets policies there use this processor's Service.
   */
  attachRoute(scope: Construct, routeName: string, routeNamespace: string): void {
    customResource<EnvoyExtensionPolicySpec>(
      scope,
      'ExtensionPolicy',
      ENVOY_GATEWAY_API_VERSION,
      'EnvoyExtensionPolicy',
      { name: derivedName([routeName, 'processor']), namespace: routeNamespace, labels: this.labels },
      {
        targetRefs: [{ group: GATEWAY_API_GROUP, kind: 'HTTPRoute', name: routeName }],
        extProc: [
          {
            backendRefs: [{ name: this.serviceName, namespace: routeNamespace === this.namespace ? undefined : this.namespace, port: PROCESSOR_GRPC_PORT }],
            // `response.code_details` tells the processor a backend's answer (`via_upstream`) from Envoy's own local
            // replies (no route after the re-match, a rate limit, an upstream failure), which it must not translate.
            processingMode: { request: { body: 'Buffered' }, response: { body: 'Buffered', attributes: [RESPONSE_CODE_DETAILS_ATTRIBUTE] }, allowModeOverride: true },
            messageTimeout: this.messageTimeout,
            failOpen: false,
            metadata: { writableNamespaces: [METADATA_NAMESPACE] },
          },
        ],
      },
    );
    if (routeNamespace === this.namespace || this.grantedNamespaces.has(routeNamespace)) return;
    this.grantedNamespaces.add(routeNamespace);
    customResource<ReferenceGrantSpec>(
      this,
      `ReferenceGrant-${routeNamespace}`,
      REFERENCE_GRANT_API_VERSION,
      'ReferenceGrant',
      { name: derivedName([this.serviceName, 'from', routeNamespace]), namespace: this.namespace, labels: this.labels },
      {
        from: [{ group: ENVOY_GATEWAY_GROUP, kind: 'EnvoyExtensionPolicy', namespace: routeNamespace }],
        to: [{ group: '', kind: 'Service', name: this.serviceName }],
      },
    );
  }

  /** Adds a route's rules and backends to this processor's config. */
  addRoute(route: ProcessorRouteSource): void {
    this.routes.push(route);
    this.renderedJson = undefined;
  }

  /** Tells the processor that a route's contribution changed after it was added. */
  configChanged(): void {
    this.renderedJson = undefined;
  }

  /** The `config.json` document, compact (rendered once per change of the inputs). */
  configJson(): string {
    if (this.renderedJson === undefined) {
      const json = JSON.stringify(this.renderConfig());
      const bytes = Buffer.byteLength(json);
      if (bytes > MAX_CONFIG_BYTES) {
        throw new AIGatewayValidationError(
          this.node.path,
          'processor config',
          `${bytes} bytes`,
          `exceeds what a ConfigMap holds (${MAX_CONFIG_BYTES} bytes); spread the routes over several gateways`,
        );
      }
      this.renderedJson = json;
    }
    return this.renderedJson;
  }

  /** Registers a cost the processor must compute and write into the metadata. */
  addCost(cost: CostConfig): void {
    const existing = this.costs.get(cost.metadataKey);
    if (existing && (existing.type !== cost.type || existing.expression !== cost.expression)) {
      throw new Error(`cost key "${cost.metadataKey}" is used with two different definitions`);
    }
    this.costs.set(cost.metadataKey, cost);
    this.renderedJson = undefined;
  }

  /** A header every request through this processor must carry (gateway-wide per-client budgets). */
  requireHeader(header: string): void {
    this.requiredHeaders.add(header);
    this.renderedJson = undefined;
  }

  /**
   * Mounts a credential Secret read-only at `<secrets-dir>/<secret-name>`. The Secret must live in the
   * processor's namespace: pods cannot mount Secrets of other namespaces.
   */
  mountSecret(user: Construct, secretName: string, secretNamespace: string): void {
    this.checkSecretNamespace(user, secretName, secretNamespace);
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

  /** Throws unless the Secret is in the processor's namespace (the only Secrets its pods can mount). */
  checkSecretNamespace(user: Construct, secretName: string, secretNamespace: string): void {
    if (secretNamespace !== this.namespace) {
      throw invalid(
        user,
        'credentials.namespace',
        secretNamespace,
        `Secret "${secretName}" must be in namespace "${this.namespace}" where the processor runs (pods cannot mount Secrets of other namespaces); create it there`,
      );
    }
  }

  /** The processor config as it will be written to the ConfigMap (validated with the processor's own schema). */
  renderConfig(): ProcessorConfig {
    const backends: BackendConfig[] = [];
    const routes: RouteConfig[] = [];
    const gatewayHeaders = [...this.requiredHeaders];
    for (const source of this.routes) {
      const { route, backends: routeBackends } = source._processorConfig();
      backends.push(...routeBackends);
      const headers = new Set([...route.requiredHeaders, ...gatewayHeaders]);
      routes.push({ ...route, requiredHeaders: [...headers].sort() });
    }
    const document: ProcessorConfig = {
      version: CONFIG_VERSION,
      maxRequestBodyBytes: this.props.maxRequestBodyBytes,
      backends,
      routes,
      costs: [...this.costs.values()].sort((a, b) => a.metadataKey.localeCompare(b.metadataKey)),
      circuitBreaker: {
        failureThreshold: this.props.circuitBreakerFailureThreshold ?? 5,
        openDurationMs: (this.props.circuitBreakerOpenDuration ?? Duration.seconds(30)).toMilliseconds(),
      },
    };
    try {
      return parseProcessorConfig(document);
    } catch (error) {
      if (error instanceof ProcessorConfigError) {
        throw new AIGatewayValidationError(this.node.path, 'processor config', error.problems, 'rejected by the processor schema');
      }
      throw error;
    }
  }
}
