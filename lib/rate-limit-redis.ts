import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { IntOrString, KubeNetworkPolicy } from 'cdk8s-plus-28/lib/imports/k8s';
import { Construct } from 'constructs';
import { invalid } from './errors';
import { synthRegistry } from './limits/registry';
import { checkLabelName, resolveNamespace } from './names';

/** A Secret key holding the Redis password. */
export interface RedisPasswordSecret {
  /** Name of the Secret. */
  readonly secretName: string;
  /**
   * Key of the password in the Secret.
   * @default "password"
   */
  readonly key?: string;
}

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
   * Redis image, best pinned by digest (`repository:tag@sha256:...`).
   * @default REDIS_DEFAULT_IMAGE - the official Redis 7.4.11 Alpine image, pinned by digest
   */
  readonly image?: string;
  /**
   * The Secret key holding the password Redis requires (`requirepass`). The Secret must exist twice: in the
   * Redis namespace (for Redis) and in Envoy Gateway's namespace (for its rate-limit service, which reads it as
   * `REDIS_AUTH`; see `helmValues`). Use a password of letters and digits, e.g. `openssl rand -hex 32`.
   * @default - Secret "<name>-auth", key "password"
   */
  readonly passwordSecret?: RedisPasswordSecret;
  /**
   * Namespace Envoy Gateway runs in: its rate-limit service there is the only client the NetworkPolicy admits.
   * @default "envoy-gateway-system"
   */
  readonly envoyGatewayNamespace?: string;
}

export interface ExternalRedisProps {
  /** `host:port` of a Redis reachable from Envoy Gateway's rate-limit service, e.g. `redis.cache.svc:6379`. */
  readonly url: string;
  /**
   * The Secret key (in Envoy Gateway's namespace) holding the password of the Redis, passed to the rate-limit
   * service as `REDIS_AUTH`.
   * @default - no password
   */
  readonly passwordSecret?: RedisPasswordSecret;
}

/** An environment variable of a container, taken from a Secret key. */
export interface SecretEnvVar {
  readonly name: string;
  readonly valueFrom: { readonly secretKeyRef: { readonly name: string; readonly key: string } };
}

/** Helm values for the Envoy Gateway chart (`gateway-helm`) that our output needs. */
export interface EnvoyGatewayHelmValues {
  readonly config: {
    readonly envoyGateway: {
      readonly extensionApis: { readonly enableBackend: true };
      readonly rateLimit: { readonly backend: { readonly type: 'Redis'; readonly redis: { readonly url: string } } };
      /**
       * The rate-limit Deployment's password env (Envoy Gateway has no Redis password field; the rate-limit
       * service reads `REDIS_AUTH`). The chart merges these values over its defaults, so its image stays.
       */
      readonly provider?: {
        readonly type: 'Kubernetes';
        readonly kubernetes: {
          readonly rateLimitDeployment: { readonly container: { readonly env: readonly SecretEnvVar[] } };
        };
      };
    };
  };
}

/**
 * The image the in-cluster Redis runs by default: the official `redis:7.4.11-alpine`, pinned by its registry digest
 * (the multi-platform index), so a moved tag cannot change what runs.
 */
export const REDIS_DEFAULT_IMAGE =
  'docker.io/library/redis:7.4.11-alpine@sha256:ff02b58f971e7d7d156a1267e283fcbbeee91773b6aa36c49dac28ecfe28eadf';
/** The environment variable envoyproxy/ratelimit reads the Redis password from (`settings.go`, `REDIS_AUTH`). */
export const RATE_LIMIT_REDIS_AUTH_ENV = 'REDIS_AUTH';
/** Labels of Envoy Gateway's rate-limit pods (`internal/infrastructure/kubernetes/ratelimit/resource.go`). */
export const ENVOY_RATE_LIMIT_POD_LABELS: Readonly<Record<string, string>> = {
  'app.kubernetes.io/name': 'envoy-ratelimit',
  'app.kubernetes.io/component': 'ratelimit',
  'app.kubernetes.io/managed-by': 'envoy-gateway',
};
const REDIS_PORT = 6379;
/**
 * redis-cli reads its password from this variable, so probes authenticate without it in their command; the start
 * script below hands the same variable to redis-server as `requirepass` on stdin, never in an argument.
 */
const REDIS_PASSWORD_ENV = 'REDISCLI_AUTH';

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
  /** The Secret key with the Redis password, if the Redis requires one. */
  readonly passwordSecret?: { readonly secretName: string; readonly key: string };

  private constructor(
    scope: Construct,
    id: string,
    props: { inCluster?: InClusterRedisProps; external?: ExternalRedisProps },
  ) {
    super(scope, id);
    synthRegistry(this).register('RateLimitRedis', this);
    if (props.external) {
      this.url = this.checkUrl(props.external.url);
      if (props.external.passwordSecret) this.passwordSecret = this.checkSecret(props.external.passwordSecret);
      return;
    }
    const options = props.inCluster ?? {};
    const namespace = resolveNamespace(this, options.namespace);
    const name = checkLabelName(this, 'name', options.name ?? 'redis', { startWithLetter: true });
    const envoyGatewayNamespace = checkLabelName(
      this,
      'envoyGatewayNamespace',
      options.envoyGatewayNamespace ?? 'envoy-gateway-system',
    );
    this.passwordSecret = this.checkSecret(options.passwordSecret ?? { secretName: `${name}-auth` });
    const image = this.checkImage(options.image ?? REDIS_DEFAULT_IMAGE);
    this.emitInCluster({ name, namespace, envoyGatewayNamespace, image, password: this.passwordSecret });
    this.url = `${name}.${namespace}.svc.cluster.local:${REDIS_PORT}`;
  }

  /** The Envoy Gateway Helm values enabling Redis-backed global rate limiting and the Backend API. */
  get helmValues(): EnvoyGatewayHelmValues {
    const password = this.passwordSecret;
    return {
      config: {
        envoyGateway: {
          extensionApis: { enableBackend: true },
          rateLimit: { backend: { type: 'Redis', redis: { url: this.url } } },
          ...(password
            ? {
                provider: {
                  type: 'Kubernetes' as const,
                  kubernetes: {
                    rateLimitDeployment: {
                      container: {
                        env: [
                          {
                            name: RATE_LIMIT_REDIS_AUTH_ENV,
                            valueFrom: { secretKeyRef: { name: password.secretName, key: password.key } },
                          },
                        ],
                      },
                    },
                  },
                },
              }
            : {}),
        },
      },
    };
  }

  private checkUrl(url: string): string {
    if (!/^[a-zA-Z0-9.-]+:\d{1,5}$/.test(url)) throw invalid(this, 'url', url, 'must be "host:port"');
    return url;
  }

  private checkImage(image: string): string {
    if (typeof image !== 'string' || !/^\S+$/.test(image))
      throw invalid(this, 'image', image, 'must be an image reference without spaces');
    return image;
  }

  /**
   * Emits the Redis Deployment, its Service, and the NetworkPolicy that admits only Envoy Gateway's rate-limit service.
   */
  private emitInCluster(redis: {
    name: string;
    namespace: string;
    envoyGatewayNamespace: string;
    image: string;
    password: { readonly secretName: string; readonly key: string };
  }): void {
    const { name, namespace, envoyGatewayNamespace, image, password } = redis;
    const labels = { 'app.kubernetes.io/name': 'redis', 'app.kubernetes.io/instance': name };
    const deployment = new kplus.Deployment(this, 'Deployment', {
      metadata: { name, namespace, labels },
      replicas: 1,
      automountServiceAccountToken: false,
      securityContext: { ensureNonRoot: true, user: REDIS_UID, group: REDIS_UID, fsGroup: REDIS_UID },
    });
    for (const [key, value] of Object.entries(labels)) deployment.podMetadata.addLabel(key, value);
    const passwordEnv = kplus.EnvValue.fromSecretValue({
      secret: kplus.Secret.fromSecretName(this, 'PasswordSecret', password.secretName),
      key: password.key,
    });
    const container = deployment.addContainer({
      name: 'redis',
      image,
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      // The password reaches redis-server as config on stdin: not in the manifest, not in the process arguments.
      command: [
        'sh',
        '-c',
        `exec redis-server - --save '' --appendonly no <<EOF\nrequirepass $${REDIS_PASSWORD_ENV}\nEOF\n`,
      ],
      envVariables: { [REDIS_PASSWORD_ENV]: passwordEnv },
      ports: [{ name: 'redis', number: REDIS_PORT }],
      liveness: kplus.Probe.fromTcpSocket({ port: REDIS_PORT }),
      // redis-cli exits 0 on an error reply (NOAUTH, WRONGPASS): only PONG means ready.
      readiness: kplus.Probe.fromCommand(['sh', '-c', 'redis-cli ping | grep -qx PONG']),
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
      ports: [{ name: 'redis', port: REDIS_PORT, targetPort: REDIS_PORT }],
    });
    // Budgets are only as safe as their counters: only Envoy Gateway's rate-limit service may talk to Redis.
    new KubeNetworkPolicy(this, 'NetworkPolicy', {
      metadata: { name, namespace, labels },
      spec: {
        podSelector: { matchLabels: labels },
        policyTypes: ['Ingress'],
        ingress: [
          {
            from: [
              {
                namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': envoyGatewayNamespace } },
                podSelector: { matchLabels: { ...ENVOY_RATE_LIMIT_POD_LABELS } },
              },
            ],
            ports: [{ protocol: 'TCP', port: IntOrString.fromNumber(REDIS_PORT) }],
          },
        ],
      },
    });
  }

  private checkSecret(secret: RedisPasswordSecret): { secretName: string; key: string } {
    const secretName = secret.secretName;
    if (
      typeof secretName !== 'string' ||
      secretName.length > 253 ||
      !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(secretName)
    ) {
      throw invalid(
        this,
        'passwordSecret.secretName',
        secretName,
        'must be a Secret name (a lower-case DNS subdomain of at most 253 characters)',
      );
    }
    const key = secret.key ?? 'password';
    if (typeof key !== 'string' || !/^[-._a-zA-Z0-9]{1,253}$/.test(key))
      throw invalid(this, 'passwordSecret.key', key, 'must be a Secret key (letters, digits, "-", "_", ".")');
    return { secretName, key };
  }
}
