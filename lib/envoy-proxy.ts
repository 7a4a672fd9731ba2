import type { Duration, Size } from 'cdk8s';
import type * as kplus from 'cdk8s-plus-28';
import { Construct, type IConstruct } from 'constructs';
import {
  CONSUMER_HEADER,
  METADATA_NAMESPACE,
  MODEL_HEADER,
  ROUTE_HEADER,
  TOKEN_METADATA_KEYS,
} from '@ai-gateway-constructs/processor-config';
import { ENVOY_GATEWAY_API_VERSION, ENVOY_GATEWAY_GROUP, customResource, gatewayDuration } from './crds';
import { invalid } from './errors';
import { checkLabelName, derivedName } from './names';
import { synthRegistry } from './limits/registry';

/** The OTLP/gRPC port of an OpenTelemetry collector (the OpenTelemetry Collector's `otlp` receiver, `grpc`). */
export const OTLP_GRPC_PORT = 4317;

/**
 * How a Gateway's EnvoyProxy combines with the EnvoyProxy of its GatewayClass (EnvoyProxy `spec.mergeType`).
 * Envoy Gateway merges the Gateway's over the GatewayClass's, then the result over its own defaults.
 */
export class ProxyMergeType {
  /**
   * Kubernetes strategic merge patch: the Gateway's fields win, the GatewayClass's other fields stay (lists such as
   * the access-log settings are replaced as a whole).
   */
  static strategicMerge(): ProxyMergeType {
    return new ProxyMergeType('StrategicMerge');
  }

  /** JSON merge patch (RFC 7386): like `strategicMerge()`, every list is replaced as a whole. */
  static jsonMerge(): ProxyMergeType {
    return new ProxyMergeType('JSONMerge');
  }

  /** The Gateway's EnvoyProxy replaces the GatewayClass's entirely (Envoy Gateway's behaviour without `mergeType`). */
  static replace(): ProxyMergeType {
    return new ProxyMergeType('Replace');
  }

  private constructor(/** @internal */ readonly _value: 'StrategicMerge' | 'JSONMerge' | 'Replace') {}
}

/** An EnvoyProxy the user owns, which the Gateway's `spec.infrastructure.parametersRef` names. */
export class EnvoyProxyReference {
  /**
   * The EnvoyProxy `name` in the Gateway's namespace: a Gateway's `parametersRef` has no namespace, so Envoy Gateway
   * looks for it there.
   */
  static fromName(name: string): EnvoyProxyReference {
    return new EnvoyProxyReference(name);
  }

  private constructor(readonly envoyProxyName: string) {}
}

/** Horizontal autoscaling of the proxy pods (EnvoyProxy `provider.kubernetes.envoyHpa`). */
export interface ProxyAutoscaling {
  /**
   * The fewest proxy pods.
   * @default 1
   */
  readonly minReplicas?: number;
  /** The most proxy pods. */
  readonly maxReplicas: number;
  /**
   * The average CPU use, in percent of the pods' CPU request, the autoscaler keeps. The proxy container needs a CPU
   * request (Envoy Gateway's default gives it 100m).
   * @default 80 - Envoy Gateway's default metric
   */
  readonly cpuUtilization?: number;
}

/**
 * The proxy pods of an AIGateway (Envoy Gateway runs them): settings that make the AIGateway emit an EnvoyProxy,
 * named `<gateway>-proxy`, which the Gateway's `spec.infrastructure.parametersRef` names. See docs/observability.md.
 */
export interface ProxyOptions {
  /**
   * Number of proxy pods (`provider.kubernetes.envoyDeployment.replicas`). Not together with `autoscaling`.
   * @default - the GatewayClass EnvoyProxy's, else Envoy Gateway's (1)
   */
  readonly replicas?: number;
  /**
   * Scale the proxy pods with a HorizontalPodAutoscaler Envoy Gateway creates. Not together with `replicas`.
   * @default - no autoscaling
   */
  readonly autoscaling?: ProxyAutoscaling;
  /**
   * CPU and memory requests/limits of the Envoy container.
   * @default - the GatewayClass EnvoyProxy's, else Envoy Gateway's (requests 100m CPU / 512Mi memory, no limits)
   */
  readonly resources?: kplus.ContainerResources;
  /**
   * A JSON access log on the proxies' stdout: Envoy's request fields (time, method, path without its query, status,
   * response flags and details, duration, upstream, request id, bytes) with the route, model, backend, consumer, token
   * counts and costs the processor adds. Credentials (`authorization`, `x-api-key`, query strings) are never logged.
   * @default - on when `observability.prometheus` or `observability.otlpEndpoint` is set
   */
  readonly accessLog?: boolean;
  /**
   * Envoy's own spans (OpenTelemetry, OTLP over gRPC) to the collector host of `observability.otlpEndpoint`, port
   * `otlpGrpcPort`, sampled at `observability.traceSamplingRatio`. Needs an `http` endpoint: Envoy exports in
   * plaintext to that host.
   * @default - on when `observability.otlpEndpoint` is an http URL
   */
  readonly tracing?: boolean;
  /**
   * The collector's OTLP/gRPC port Envoy sends its spans to (the processor uses the OTLP/HTTP URL as given).
   * @default 4317
   */
  readonly otlpGrpcPort?: number;
  /**
   * How the emitted EnvoyProxy combines with the GatewayClass's EnvoyProxy. Without a merge, the Gateway's EnvoyProxy
   * replaces the GatewayClass's entirely, dropping the platform's settings. Applies when the gateway emits an
   * EnvoyProxy (another setting here, or the access log or tracing of `observability`).
   * @default ProxyMergeType.strategicMerge()
   */
  readonly mergeType?: ProxyMergeType;
}

/** @internal What the EnvoyProxy of a gateway reads. */
export interface GatewayProxyProps {
  readonly gatewayName: string;
  readonly gatewayNamespace: string;
  readonly options: ProxyOptions;
  /** Whether `observability.prometheus` is set: the proxies' PodMonitor scrapes their Prometheus endpoint. */
  readonly prometheus: boolean;
  /** `observability.otlpEndpoint`, already checked. */
  readonly otlpEndpoint?: string;
  readonly traceSamplingRatio?: number;
  /** `proxyDrainTimeout`: the drain time the constructs check routes against, also set on the EnvoyProxy. */
  readonly drainTimeout?: Duration;
  /** The metadata keys of the costs the processor writes (read at synth). */
  readonly costKeys: () => readonly string[];
  /**
   * Whether `observability` turns the access log and tracing on by itself: only where the AIGateway emits its
   * GatewayClass. Under a platform's class (`GatewayClass.fromName()`), whose EnvoyProxy this one would be merged over,
   * only explicit `proxy` settings do.
   */
  readonly observabilityDefaults: boolean;
}

/** The access log's JSON fields: Envoy's own, then the processor's headers and metadata. */
export function accessLogFields(costKeys: readonly string[]): Record<string, string> {
  const metadata = (key: string) => `%DYNAMIC_METADATA(${METADATA_NAMESPACE}:${key})%`;
  const fields: Record<string, string> = {
    start_time: '%START_TIME%',
    method: '%REQ(:METHOD)%',
    // Without the query: some clients send API keys in it (e.g. Gemini's `?key=`).
    path: '%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%',
    protocol: '%PROTOCOL%',
    response_code: '%RESPONSE_CODE%',
    response_flags: '%RESPONSE_FLAGS%',
    response_code_details: '%RESPONSE_CODE_DETAILS%',
    duration_ms: '%DURATION%',
    upstream_cluster: '%UPSTREAM_CLUSTER%',
    upstream_host: '%UPSTREAM_HOST%',
    upstream_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
    request_id: '%REQ(X-REQUEST-ID)%',
    trace_id: '%TRACE_ID%',
    bytes_received: '%BYTES_RECEIVED%',
    bytes_sent: '%BYTES_SENT%',
    user_agent: '%REQ(USER-AGENT)%',
    route: `%REQ(${ROUTE_HEADER})%`,
    model: `%REQ(${MODEL_HEADER})%`,
    // No backend header: the backend's route rule removes it before the log is written; `upstream_cluster` names the
    // rule (one per backend) Envoy sent the request to.
    consumer: `%REQ(${CONSUMER_HEADER})%`,
  };
  for (const key of Object.values(TOKEN_METADATA_KEYS)) fields[key] = metadata(key);
  // A cost key named like one of Envoy's fields (`route`, `model`) is logged as `cost_<key>` rather than replacing it.
  for (const key of costKeys) fields[key in fields ? `cost_${key}` : key] = metadata(key);
  return fields;
}

/**
 * The EnvoyProxy of one AIGateway, `<gateway>-proxy` in the gateway's namespace, when some proxy setting needs one.
 * @internal constructed by AIGateway
 */
export class GatewayProxy extends Construct {
  /** Name of the EnvoyProxy. */
  readonly envoyProxyName: string;

  constructor(scope: Construct, id: string, props: GatewayProxyProps) {
    super(scope, id);
    const options = props.options;
    this.envoyProxyName = gatewayProxyName(props.gatewayName);
    synthRegistry(this).claimName(scope, 'proxy', {
      kind: 'EnvoyProxy',
      namespace: props.gatewayNamespace,
      name: this.envoyProxyName,
    });
    const mergeType = mergeTypeOf(scope, options.mergeType);
    const kubernetes = kubernetesProvider(scope, options);
    const accessLog = accessLogEnabled(options, props);
    const tracing = tracingSpec(scope, options, props);
    const drainTimeout =
      props.drainTimeout === undefined ? undefined : gatewayDuration(scope, 'proxyDrainTimeout', props.drainTimeout);
    customResource(
      this,
      'Resource',
      ENVOY_GATEWAY_API_VERSION,
      'EnvoyProxy',
      { name: this.envoyProxyName, namespace: props.gatewayNamespace },
      () => ({
        ...(mergeType !== undefined ? { mergeType } : {}),
        ...(kubernetes ? { provider: { type: 'Kubernetes', kubernetes } } : {}),
        ...(drainTimeout !== undefined ? { shutdown: { drainTimeout } } : {}),
        ...telemetry(accessLog ? props.costKeys() : undefined, tracing, props.prometheus),
      }),
    );
  }
}

/** The name of the EnvoyProxy a gateway emits. */
export function gatewayProxyName(gatewayName: string): string {
  return derivedName([gatewayName, 'proxy']);
}

/** Whether the options and observability of a gateway need an EnvoyProxy of its own. */
export function needsEnvoyProxy(
  options: ProxyOptions | undefined,
  observability: { prometheus?: boolean; otlpEndpoint?: string },
  observabilityDefaults = true,
): boolean {
  const o = options ?? {};
  return (
    o.replicas !== undefined ||
    o.autoscaling !== undefined ||
    o.resources !== undefined ||
    accessLogEnabled(o, {
      prometheus: observability.prometheus === true,
      otlpEndpoint: observability.otlpEndpoint,
      observabilityDefaults,
    }) ||
    tracingEnabled(o, observability.otlpEndpoint, observabilityDefaults)
  );
}

/** The proxy settings given explicitly (each one Envoy Gateway would ignore where the gateway has no EnvoyProxy). */
export function explicitProxySettings(options: ProxyOptions | undefined): [string, unknown][] {
  if (!options) return [];
  const settings: [string, unknown][] = [];
  for (const key of ['replicas', 'autoscaling', 'resources', 'accessLog', 'tracing', 'otlpGrpcPort'] as const) {
    const value = options[key];
    if (value !== undefined && !(key === 'accessLog' && value === false) && !(key === 'tracing' && value === false))
      settings.push([`proxy.${key}`, value]);
  }
  if (options.mergeType !== undefined) settings.push(['proxy.mergeType', options.mergeType._value]);
  return settings;
}

function accessLogEnabled(
  options: ProxyOptions,
  observability: { prometheus: boolean; otlpEndpoint?: string; observabilityDefaults?: boolean },
) {
  if (options.accessLog !== undefined) return options.accessLog;
  return (
    observability.observabilityDefaults !== false &&
    (observability.prometheus || observability.otlpEndpoint !== undefined)
  );
}

/** Whether Envoy traces: `proxy.tracing`, else whether `observability.otlpEndpoint` is an http URL. */
export function tracingEnabled(
  options: ProxyOptions,
  otlpEndpoint: string | undefined,
  observabilityDefaults = true,
): boolean {
  if (options.tracing !== undefined) return options.tracing;
  if (otlpEndpoint === undefined || !observabilityDefaults) return false;
  try {
    return new URL(otlpEndpoint).protocol === 'http:';
  } catch {
    return false;
  }
}

function mergeTypeOf(scope: IConstruct, mergeType: ProxyMergeType | undefined): string | undefined {
  if (mergeType === undefined) return 'StrategicMerge';
  if (!(mergeType instanceof ProxyMergeType))
    throw invalid(scope, 'proxy.mergeType', mergeType, 'must be a ProxyMergeType');
  // Replace is Envoy Gateway's behaviour without the field.
  return mergeType._value === 'Replace' ? undefined : mergeType._value;
}

function positiveInteger(scope: IConstruct, prop: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1)
    throw invalid(scope, prop, value, 'must be a positive integer');
  return value;
}

/** `provider.kubernetes` of the EnvoyProxy: replicas or autoscaling, and resources; undefined when none is set. */
function kubernetesProvider(scope: IConstruct, options: ProxyOptions): Record<string, unknown> | undefined {
  if (options.replicas !== undefined && options.autoscaling !== undefined) {
    throw invalid(
      scope,
      'proxy.replicas',
      options.replicas,
      'the HorizontalPodAutoscaler of proxy.autoscaling sets the number of proxy pods; set one of the two',
    );
  }
  const replicas =
    options.replicas === undefined ? undefined : positiveInteger(scope, 'proxy.replicas', options.replicas);
  const resources = options.resources === undefined ? undefined : containerResources(options.resources);
  const envoyDeployment = {
    ...(replicas !== undefined ? { replicas } : {}),
    ...(resources !== undefined ? { container: { resources } } : {}),
  };
  const envoyHpa = options.autoscaling === undefined ? undefined : autoscaling(scope, options.autoscaling);
  if (Object.keys(envoyDeployment).length === 0 && envoyHpa === undefined) return undefined;
  return {
    ...(Object.keys(envoyDeployment).length > 0 ? { envoyDeployment } : {}),
    ...(envoyHpa !== undefined ? { envoyHpa } : {}),
  };
}

function autoscaling(scope: IConstruct, options: ProxyAutoscaling): Record<string, unknown> {
  const max = positiveInteger(scope, 'proxy.autoscaling.maxReplicas', options.maxReplicas);
  const min = positiveInteger(scope, 'proxy.autoscaling.minReplicas', options.minReplicas ?? 1);
  if (min > max) {
    throw invalid(
      scope,
      'proxy.autoscaling.minReplicas',
      min,
      `must not exceed proxy.autoscaling.maxReplicas (${max})`,
    );
  }
  const utilization = options.cpuUtilization;
  if (utilization !== undefined) positiveInteger(scope, 'proxy.autoscaling.cpuUtilization', utilization);
  return {
    minReplicas: min,
    maxReplicas: max,
    ...(utilization !== undefined
      ? {
          metrics: [
            {
              type: 'Resource',
              resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: utilization } },
            },
          ],
        }
      : {}),
  };
}

/** Kubernetes `resources` of a container, written the way cdk8s-plus writes them. */
function containerResources(resources: kplus.ContainerResources): Record<string, Record<string, string>> {
  const cpu = (value: kplus.Cpu | undefined) => (value === undefined ? undefined : value.amount);
  const memory = (value: Size | undefined) => (value === undefined ? undefined : `${value.toMebibytes()}Mi`);
  const quantities = (entries: [string, string | undefined][]) =>
    Object.fromEntries(entries.filter((entry): entry is [string, string] => entry[1] !== undefined));
  const requests = quantities([
    ['cpu', cpu(resources.cpu?.request)],
    ['memory', memory(resources.memory?.request)],
    ['ephemeral-storage', memory(resources.ephemeralStorage?.request)],
  ]);
  const limits = quantities([
    ['cpu', cpu(resources.cpu?.limit)],
    ['memory', memory(resources.memory?.limit)],
    ['ephemeral-storage', memory(resources.ephemeralStorage?.limit)],
  ]);
  return {
    ...(Object.keys(requests).length > 0 ? { requests } : {}),
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
  };
}

/** The collector Envoy sends its spans to: a Kubernetes Service by reference, any other host by name. */
function tracingSpec(
  scope: IConstruct,
  options: ProxyOptions,
  props: GatewayProxyProps,
): Record<string, unknown> | undefined {
  if (!tracingEnabled(options, props.otlpEndpoint, props.observabilityDefaults)) return undefined;
  const endpoint = props.otlpEndpoint;
  if (endpoint === undefined)
    throw invalid(scope, 'proxy.tracing', true, 'Envoy sends its spans to observability.otlpEndpoint; set it');
  const url = new URL(endpoint);
  if (url.protocol !== 'http:') {
    throw invalid(
      scope,
      'proxy.tracing',
      true,
      `Envoy exports its spans over plaintext OTLP/gRPC to the host of observability.otlpEndpoint, which is an ` +
        `${url.protocol.slice(0, -1)} URL; reference an EnvoyProxy of your own (envoyProxy) for a TLS collector`,
    );
  }
  const port = options.otlpGrpcPort ?? OTLP_GRPC_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw invalid(scope, 'proxy.otlpGrpcPort', port, 'must be an integer between 1 and 65535');
  // `<service>.<namespace>.svc[.cluster.local]`: a Service backendRef, the form Envoy Gateway recommends.
  const service = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?$/.exec(
    url.hostname,
  );
  const destination = service
    ? { backendRefs: [{ group: '', kind: 'Service', name: service[1], namespace: service[3], port }] }
    : { host: url.hostname.replace(/^\[|\]$/g, ''), port };
  const ratio = props.traceSamplingRatio;
  return {
    provider: { type: 'OpenTelemetry', ...destination },
    // A millionth is finer than Envoy's sampling takes (a percentage with a float).
    ...(ratio !== undefined ? { samplingFraction: { numerator: Math.round(ratio * 1e6), denominator: 1e6 } } : {}),
  };
}

function telemetry(
  costKeys: readonly string[] | undefined,
  tracing: Record<string, unknown> | undefined,
  prometheus: boolean,
): { telemetry?: Record<string, unknown> } {
  const spec: Record<string, unknown> = {};
  if (costKeys !== undefined) {
    // `disable: false` explicitly: Envoy Gateway merges it (a pointer) over a GatewayClass EnvoyProxy that disabled it.
    spec.accessLog = {
      disable: false,
      settings: [
        {
          format: { type: 'JSON', json: accessLogFields(costKeys) },
          sinks: [{ type: 'File', file: { path: '/dev/stdout' } }],
        },
      ],
    };
  }
  if (tracing !== undefined) spec.tracing = tracing;
  // The proxies' PodMonitor scrapes `/stats/prometheus`, which is on by default. Envoy Gateway's merge drops a false
  // `disable` (a plain bool with omitempty), so this cannot turn back on what a GatewayClass EnvoyProxy turned off.
  if (prometheus) spec.metrics = { prometheus: { disable: false } };
  return Object.keys(spec).length > 0 ? { telemetry: spec } : {};
}

/** The Gateway's `spec.infrastructure` naming the EnvoyProxy `name` (in the Gateway's namespace). */
export function infrastructureRef(name: string): { parametersRef: { group: string; kind: string; name: string } } {
  return { parametersRef: { group: ENVOY_GATEWAY_GROUP, kind: 'EnvoyProxy', name } };
}

/** Checks the name of a referenced EnvoyProxy. */
export function checkEnvoyProxyReference(scope: IConstruct, reference: EnvoyProxyReference): string {
  if (!(reference instanceof EnvoyProxyReference))
    throw invalid(scope, 'envoyProxy', reference, 'must be an EnvoyProxyReference');
  return checkLabelName(scope, 'envoyProxy', reference.envoyProxyName);
}
