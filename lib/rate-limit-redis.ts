import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { invalid } from './errors';
import { checkLabelName, resolveNamespace } from './names';

export interface InClusterRedisProps {
  /**
   * Name of the Deployment and Service.
   * @default "redis"
   */
  readonly name?: string;
  /**
   * Namespace of the Redis objects.
   * @default - the chart's namespace, else "default"
   */
  readonly namespace?: string;
  /**
   * Redis image.
   * @default "docker.io/library/redis:7.4-alpine"
   */
  readonly image?: string;
}

export interface ExternalRedisProps {
  /** `host:port` of a Redis reachable from Envoy Gateway's rate-limit service, e.g. `redis.cache.svc:6379`. */
  readonly url: string;
}

/** Helm values for the Envoy Gateway chart (`gateway-helm`) that our output needs. */
export interface EnvoyGatewayHelmValues {
  readonly config: {
    readonly envoyGateway: {
      readonly extensionApis: { readonly enableBackend: true };
      readonly rateLimit: { readonly backend: { readonly type: 'Redis'; readonly redis: { readonly url: string } } };
    };
  };
}

/** UID/GID of the `redis` user in the official image. */
const REDIS_UID = 999;

/**
 * The Redis that Envoy Gateway's global rate limiting (token budgets) stores counters in: an in-cluster Redis
 * (Deployment + Service, for evaluation and small installs) or an external one. Its `helmValues` are the
 * Envoy Gateway Helm values to install with (Redis backend + the Backend API).
 */
export class RateLimitRedis extends Construct {
  /** A single-replica Redis without persistence: counters reset when the pod restarts. */
  static inCluster(scope: Construct, id: string, props: InClusterRedisProps = {}): RateLimitRedis {
    return new RateLimitRedis(scope, id, { inCluster: props });
  }

  /** A Redis run elsewhere (managed service, operator). */
  static external(scope: Construct, id: string, props: ExternalRedisProps): RateLimitRedis {
    return new RateLimitRedis(scope, id, { external: props });
  }

  /** `host:port` Envoy Gateway's rate-limit service connects to. */
  readonly url: string;

  private constructor(scope: Construct, id: string, props: { inCluster?: InClusterRedisProps; external?: ExternalRedisProps }) {
    super(scope, id);
    if (props.external) {
      if (!/^[a-zA-Z0-9.-]+:\d{1,5}$/.test(props.external.url)) throw invalid(this, 'url', props.external.url, 'must be "host:port"');
      this.url = props.external.url;
      return;
    }
    const options = props.inCluster ?? {};
    const namespace = resolveNamespace(this, options.namespace);
    const name = checkLabelName(this, 'name', options.name ?? 'redis', { startWithLetter: true });
    const labels = { 'app.kubernetes.io/name': 'redis', 'app.kubernetes.io/instance': name };
    const deployment = new kplus.Deployment(this, 'Deployment', {
      metadata: { name, namespace, labels },
      replicas: 1,
      automountServiceAccountToken: false,
      securityContext: { ensureNonRoot: true, user: REDIS_UID, group: REDIS_UID, fsGroup: REDIS_UID },
    });
    for (const [key, value] of Object.entries(labels)) deployment.podMetadata.addLabel(key, value);
    const container = deployment.addContainer({
      name: 'redis',
      image: options.image ?? 'docker.io/library/redis:7.4-alpine',
      args: ['--save', '', '--appendonly', 'no'],
      ports: [{ name: 'redis', number: 6379 }],
      liveness: kplus.Probe.fromTcpSocket({ port: 6379 }),
      readiness: kplus.Probe.fromCommand(['redis-cli', 'ping']),
      resources: {
        cpu: { request: kplus.Cpu.millis(50), limit: kplus.Cpu.millis(500) },
        memory: { request: Size.mebibytes(64), limit: Size.mebibytes(256) },
      },
      securityContext: {
        ensureNonRoot: true,
        user: REDIS_UID,
        group: REDIS_UID,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        privileged: false,
        capabilities: { drop: [kplus.Capability.ALL] },
        seccompProfile: { type: kplus.SeccompProfileType.RUNTIME_DEFAULT },
      },
    });
    container.mount('/data', kplus.Volume.fromEmptyDir(this, 'Data', 'data'));
    new kplus.Service(this, 'Service', {
      metadata: { name, namespace, labels },
      selector: deployment,
      ports: [{ name: 'redis', port: 6379, targetPort: 6379 }],
    });
    this.url = `${name}.${namespace}.svc.cluster.local:6379`;
  }

  /** The Envoy Gateway Helm values enabling Redis-backed global rate limiting and the Backend API. */
  get helmValues(): EnvoyGatewayHelmValues {
    return {
      config: {
        envoyGateway: {
          extensionApis: { enableBackend: true },
          rateLimit: { backend: { type: 'Redis', redis: { url: this.url } } },
        },
      },
    };
  }
}
