/**
 * The AI gateway constructs as Pulumi ComponentResources. Each component takes the props of its cdk8s
 * construct (Pulumi inputs where users pass outputs: namespaces, hostnames, annotations, replicas, secret values),
 * builds that construct in its `AIGatewayApp`'s construct model and owns the Kubernetes objects its construct
 * emits. Nothing here maps props to manifests: that is the constructs' job.
 */
import type { Input } from '@pulumi/pulumi';
import * as pulumi from '@pulumi/pulumi';
import type { Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import * as cdk from '../index';
import { ManagedCredentials } from './credentials';
import {
  BuildContext,
  ConstructPath,
  Joined,
  ManagedSecretObject,
  AIGatewayComponent,
  Opaque,
  parseConstructPath,
} from './model';

const TYPE_PREFIX = 'ai-gateway:index:';

/** Pulumi-only props every component accepts. */
export interface ComponentExtras {
  /**
   * The construct's place in the construct tree, `<chart id>/<construct id>`. Only what cdk8s derives from
   * construct paths depends on it: cdk8s-plus pod selector labels (`cdk8s.io/metadata.addr`) and default object
   * names. Set it to the path the construct has in a cdk8s app to produce identical objects, e.g. to take over
   * objects applied from `cdk8s synth` without replacing Deployments (their selectors are immutable).
   * @default "<pulumi name>/<component kind>"
   */
  readonly constructPath?: string;
}

function pathOf(kind: string, name: string, extras: ComponentExtras): ConstructPath {
  return extras.constructPath === undefined
    ? { chart: name, id: kind }
    : parseConstructPath(kind, name, extras.constructPath);
}

function withoutExtras<T extends ComponentExtras>(args: T): Omit<T, 'constructPath'> {
  const { constructPath: _unused, ...rest } = args;
  void _unused;
  return rest;
}

/** The Pulumi name doubles as the Kubernetes name when the user gives none and it is a valid one. */
function nameDefault(pulumiName: string, given: string | undefined): string | undefined {
  if (given !== undefined) return given;
  return /^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(pulumiName) && pulumiName.length <= 63 ? pulumiName : undefined;
}

/** The component's construct, built early (see `Joined.construct`). */
function constructOf<T extends Construct>(joined: Joined, what: string): pulumi.Output<Opaque<T>> {
  return joined.construct.apply((c) => {
    if (c.value === undefined) throw new Error(`internal: ${what} built no construct`);
    return new Opaque(c.value as T);
  });
}

/**
 * An output read from the member's early construct: known once the inputs of the component and of the components
 * it refers to are, carrying their dependencies and secretness (not the component's: a component's outputs may be
 * inputs of later components of the same app, whose objects the component's own objects may wait for). Use
 * `dependsOn: component.kubernetesResources().then(...)` to create a resource after the component's objects.
 */
function field<T extends Construct, V>(
  construct: pulumi.Output<Opaque<T>>,
  read: (construct: T) => V,
): pulumi.Output<V> {
  return construct.apply((c) => read(c.value));
}

// ---------------------------------------------------------------------------------------------------------
// AIGateway

/**
 * Namespaces whose routes may attach, as inputs (e.g. the name output of a Namespace resource): the same as
 * `AllowedRoutes.fromNamespaces(...)`. Passing the Output a route's `namespace` also gets lets the model see,
 * during a preview where it is unknown, that the route is admitted.
 */
export interface AllowedRouteNamespaces {
  readonly namespaces: readonly Input<string>[];
}

export interface AIGatewayArgs
  extends Omit<cdk.AIGatewayProps, 'namespace' | 'http' | 'https' | 'processor' | 'allowedRoutes'>, ComponentExtras {
  /** @default "default" */
  readonly namespace?: Input<string>;
  /**
   * Namespaces whose routes may attach: an `AllowedRoutes`, or `{ namespaces: [...] }` with inputs.
   * @default AllowedRoutes.sameNamespace()
   */
  readonly allowedRoutes?: cdk.AllowedRoutes | AllowedRouteNamespaces;
  readonly http?: Omit<cdk.HttpListenerOptions, 'hostname'> & { readonly hostname?: Input<string> };
  readonly https?: Omit<cdk.HttpsListenerOptions, 'hostname'> & { readonly hostname?: Input<string> };
  readonly processor?: Omit<cdk.ProcessorOptions, 'serviceAccountAnnotations' | 'replicas'> & {
    /** E.g. an IAM role ARN output for IRSA. */
    readonly serviceAccountAnnotations?: Record<string, Input<string>>;
    /**
     * Number of processor pods, e.g. from stack config.
     * @default 2
     */
    readonly replicas?: Input<number>;
  };
}

/** See the cdk8s `AIGateway`. `name` defaults to the Pulumi name when that is a valid Kubernetes name. */
export class AIGateway extends AIGatewayComponent {
  /** References a Gateway not managed by this program (routes attaching to it bring their own processor). */
  static fromGatewayName(name: Input<string>, namespace: Input<string>): GatewayReferenceArgs {
    return { gatewayName: name, gatewayNamespace: namespace };
  }

  readonly gatewayName: pulumi.Output<string>;
  readonly gatewayNamespace: pulumi.Output<string>;
  readonly gatewayClassName: pulumi.Output<string>;
  /** The processor's Service (gRPC 9002, admin 9090). */
  readonly processorServiceName: pulumi.Output<string>;
  /**
   * The (first) ConfigMap of the processor's config: its `config.json`, or the manifest and first part of a config
   * too large for one ConfigMap.
   */
  readonly configMapName: pulumi.Output<string>;
  readonly serviceAccountName: pulumi.Output<string>;

  constructor(name: string, args: AIGatewayArgs = {}, opts?: pulumi.ComponentResourceOptions) {
    super(`${TYPE_PREFIX}AIGateway`, name, 'AIGateway', args, opts);
    const built = this.joinModel({
      name,
      kind: 'AIGateway',
      path: pathOf('AIGateway', name, args),
      props: { ...withoutExtras(args), name: nameDefault(name, args.name) },
      build: (chart, id, resolved) => {
        const props = resolved as Omit<cdk.AIGatewayProps, 'allowedRoutes'> & {
          allowedRoutes?: cdk.AllowedRoutes | { namespaces: string[] };
        };
        const allowed = props.allowedRoutes;
        const allowedRoutes =
          allowed === undefined || allowed instanceof cdk.AllowedRoutes
            ? allowed
            : cdk.AllowedRoutes.fromNamespaces(...allowed.namespaces);
        return new cdk.AIGateway(chart, id, { ...props, allowedRoutes });
      },
    });
    const gateway = constructOf<cdk.AIGateway>(built, 'AIGateway');
    this.gatewayName = field(gateway, (g) => g.gatewayName);
    this.gatewayNamespace = field(gateway, (g) => g.gatewayNamespace);
    this.gatewayClassName = field(gateway, (g) => g.gatewayClassName);
    this.processorServiceName = field(gateway, (g) => g.processorServiceName);
    this.configMapName = field(gateway, (g) => g.configMapName);
    this.serviceAccountName = field(gateway, (g) => g.serviceAccountName);
    this.registerOutputs({
      gatewayName: this.gatewayName,
      gatewayNamespace: this.gatewayNamespace,
      gatewayClassName: this.gatewayClassName,
      processorServiceName: this.processorServiceName,
      configMapName: this.configMapName,
      serviceAccountName: this.serviceAccountName,
    });
  }
}

// ---------------------------------------------------------------------------------------------------------
// ProviderBackend

/** Existing-Secret credentials (`Credentials`) or a Secret the component creates from a Pulumi value. */
export type BackendCredentials = cdk.Credentials | ManagedCredentials;

/** A provider's cdk8s props with Pulumi inputs for the namespace and Pulumi-managed credentials. */
export type BackendArgs<P> = Omit<P, 'namespace' | 'credentials'> &
  ComponentExtras & {
    /** @default "default" */
    readonly namespace?: Input<string>;
  } & (P extends { readonly credentials: cdk.Credentials }
    ? { readonly credentials: BackendCredentials }
    : { readonly credentials?: BackendCredentials });

type Factory =
  | 'openAI'
  | 'openAICompatible'
  | 'azureOpenAI'
  | 'anthropic'
  | 'awsBedrock'
  | 'awsAnthropic'
  | 'gcpVertexAI'
  | 'gcpAnthropic'
  | 'kubernetesService';

interface ManagedCredentialsProps {
  readonly managed: ManagedCredentials;
  readonly secretName: string;
  readonly key: string;
  readonly namespace: Input<string>;
}

/** See the cdk8s `ProviderBackend`; created with the same static factories. */
export class ProviderBackend extends AIGatewayComponent {
  static openAI(
    name: string,
    args: BackendArgs<cdk.OpenAIBackendProps>,
    opts?: pulumi.ComponentResourceOptions,
  ): ProviderBackend {
    return new ProviderBackend(name, 'openAI', args, opts);
  }

  static openAICompatible(
    name: string,
    args: BackendArgs<cdk.OpenAICompatibleBackendProps>,
    opts?: pulumi.ComponentResourceOptions,
  ): ProviderBackend {
    return new ProviderBackend(name, 'openAICompatible', args, opts);
  }

  static azureOpenAI(
    name: string,
    args: BackendArgs<cdk.AzureOpenAIBackendProps>,
    opts?: pulumi.ComponentResourceOptions,
  ): ProviderBackend {
    return new ProviderBackend(name, 'azureOpenAI', args, opts);
  }

  static anthropic(
    name: string,
    args: BackendArgs<cdk.AnthropicBackendProps>,
    opts?: pulumi.ComponentResourceOptions,
  ): ProviderBackend {
    return new ProviderBackend(name, 'anthropic', args, opts);
  }

  static awsBedrock(
    name: string,
    args: BackendArgs<cdk.AwsBedrockBackendProps>,
    opts?: pulumi.ComponentResourceOptions,
  ): ProviderBackend {
    return new ProviderBackend(name, 'awsBedrock', args, opts);
  }

  static awsAnthropic(
    name: string,
    args: BackendArgs<cdk.AwsAnthropicBackendProps>,
    opts?: pulumi.ComponentResourceOptions,
  ): ProviderBackend {
    return new ProviderBackend(name, 'awsAnthropic', args, opts);
  }

  static gcpVertexAI(
    name: string,
    args: BackendArgs<cdk.GcpVertexAIBackendProps>,
    opts?: pulumi.ComponentResourceOptions,
  ): ProviderBackend {
    return new ProviderBackend(name, 'gcpVertexAI', args, opts);
  }

  static gcpAnthropic(
    name: string,
    args: BackendArgs<cdk.GcpAnthropicBackendProps>,
    opts?: pulumi.ComponentResourceOptions,
  ): ProviderBackend {
    return new ProviderBackend(name, 'gcpAnthropic', args, opts);
  }

  static kubernetesService(
    name: string,
    args: BackendArgs<cdk.KubernetesServiceBackendProps>,
    opts?: pulumi.ComponentResourceOptions,
  ): ProviderBackend {
    return new ProviderBackend(name, 'kubernetesService', args, opts);
  }

  /** Name of the `Backend` object (or of the Service for in-cluster backends). */
  readonly backendName: pulumi.Output<string>;
  readonly namespace: pulumi.Output<string>;
  /** Host requests are sent to. */
  readonly hostname: pulumi.Output<string>;

  private constructor(
    name: string,
    factory: Factory,
    args: BackendArgs<object>,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super(`${TYPE_PREFIX}ProviderBackend`, name, 'ProviderBackend', args, opts);
    const { credentials, ...rest } = withoutExtras(args) as BackendArgs<object> & {
      credentials?: BackendCredentials;
      name?: string;
    };
    const secrets: ManagedSecretObject[] = [];
    let credentialProps: cdk.Credentials | ManagedCredentialsProps | undefined;
    if (credentials instanceof ManagedCredentials) {
      const namespace = credentials.secret.namespace ?? args.namespace ?? 'default';
      credentialProps = {
        managed: credentials,
        secretName: credentials.secret.secretName,
        key: credentials.key,
        namespace,
      };
      secrets.push({
        name: credentials.secret.secretName,
        namespace,
        entries: [{ key: credentials.key, value: credentials.secret.value }],
      });
    } else {
      credentialProps = credentials;
    }
    const props = {
      ...rest,
      ...(factory === 'kubernetesService' ? {} : { name: nameDefault(name, rest.name) }),
      ...(credentialProps === undefined ? {} : { credentials: credentialProps }),
    };
    const built = this.joinModel({
      name,
      kind: 'ProviderBackend',
      path: pathOf('ProviderBackend', name, args),
      props,
      secrets,
      build: (chart, id, resolved) => {
        const { credentials: given, ...others } = resolved as {
          credentials?: cdk.Credentials | ManagedCredentialsProps;
        };
        const credentialsProp =
          given === undefined || given instanceof cdk.Credentials
            ? given
            : given.managed._toCredentials({
                secretName: given.secretName,
                key: given.key,
                namespace: given.namespace as string,
              });
        // The static factories do not use `this` (they call the constructor by name).
        // eslint-disable-next-line @typescript-eslint/unbound-method
        const create = cdk.ProviderBackend[factory] as (
          scope: Chart,
          id: string,
          props: unknown,
        ) => cdk.ProviderBackend;
        return create(chart, id, { ...others, ...(credentialsProp ? { credentials: credentialsProp } : {}) });
      },
    });
    const backend = constructOf<cdk.ProviderBackend>(built, 'ProviderBackend');
    this.backendName = field(backend, (b) => b.backendName);
    this.namespace = field(backend, (b) => b.namespace);
    this.hostname = field(backend, (b) => b.hostname);
    this.registerOutputs({ backendName: this.backendName, namespace: this.namespace, hostname: this.hostname });
  }
}

// ---------------------------------------------------------------------------------------------------------
// AIRoute

/** A Gateway not managed by an AIGateway of this program. */
export interface GatewayReferenceArgs {
  readonly gatewayName: Input<string>;
  readonly gatewayNamespace: Input<string>;
}

export interface RouteBackendArgs extends Omit<cdk.RouteBackend, 'backend'> {
  readonly backend: ProviderBackend;
}

export interface AIRouteRuleArgs extends Omit<cdk.AIRouteRule, 'backends'> {
  readonly backends: readonly RouteBackendArgs[];
}

export interface AIRouteArgs
  extends Omit<cdk.AIRouteProps, 'gateway' | 'rules' | 'namespace' | 'hostnames' | 'processor'>, ComponentExtras {
  /** An AIGateway of this program, or a Gateway by name and namespace. */
  readonly gateway: AIGateway | GatewayReferenceArgs;
  readonly rules: readonly AIRouteRuleArgs[];
  /** @default "default" */
  readonly namespace?: Input<string>;
  readonly hostnames?: readonly Input<string>[];
  readonly processor?: AIGatewayArgs['processor'];
}

/** See the cdk8s `AIRoute`. `name` defaults to the Pulumi name when that is a valid Kubernetes name. */
export class AIRoute extends AIGatewayComponent {
  readonly routeName: pulumi.Output<string>;
  readonly namespace: pulumi.Output<string>;
  /** The processor Service serving this route (the gateway's, or the route's own on an existing Gateway). */
  readonly processorServiceName: pulumi.Output<string>;

  constructor(name: string, args: AIRouteArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${TYPE_PREFIX}AIRoute`, name, 'AIRoute', args, opts);
    const built = this.joinModel({
      name,
      kind: 'AIRoute',
      path: pathOf('AIRoute', name, args),
      props: { ...withoutExtras(args), name: nameDefault(name, args.name) },
      build: (chart, id, resolved, context) => {
        const props = resolved as AIRouteArgs & { gateway: AIGateway | cdk.IGatewayReference };
        const gateway =
          props.gateway instanceof AIGateway ? (context.constructOf(props.gateway) as cdk.AIGateway) : props.gateway;
        const rules = props.rules.map((rule) => ({
          ...rule,
          backends: rule.backends.map((ref) => ({ ...ref, backend: backendConstruct(context, ref.backend) })),
        }));
        return new cdk.AIRoute(chart, id, { ...(props as unknown as cdk.AIRouteProps), gateway, rules });
      },
    });
    const route = constructOf<cdk.AIRoute>(built, 'AIRoute');
    this.routeName = field(route, (r) => r.routeName);
    this.namespace = field(route, (r) => r.namespace);
    this.processorServiceName = field(route, (r) => r.processor.serviceName);
    this.registerOutputs({
      routeName: this.routeName,
      namespace: this.namespace,
      processorServiceName: this.processorServiceName,
    });
  }
}

function backendConstruct(context: BuildContext, backend: ProviderBackend): cdk.ProviderBackend {
  if (!(backend instanceof ProviderBackend)) {
    throw new Error('AIRoute rules take ProviderBackend components of ai-gateway-constructs/pulumi as backends');
  }
  return context.constructOf(backend) as cdk.ProviderBackend;
}

// ---------------------------------------------------------------------------------------------------------
// TokenRateLimit

export interface TokenRateLimitArgs extends Omit<cdk.TokenRateLimitProps, 'target'>, ComponentExtras {
  /** An AIGateway (budget over all its routes) or an AIRoute of this program. */
  readonly target: AIGateway | AIRoute;
}

/**
 * See the cdk8s `TokenRateLimit`. Budgets join their gateway's single BackendTrafficPolicy (their route's on a
 * Gateway no AIGateway manages) and their target's processor config, so the objects belong to those components;
 * this component outputs the cost metadata key.
 */
export class TokenRateLimit extends AIGatewayComponent {
  /** The metadata key the processor writes this budget's cost under. */
  readonly metadataKey: pulumi.Output<string>;

  constructor(name: string, args: TokenRateLimitArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${TYPE_PREFIX}TokenRateLimit`, name, 'TokenRateLimit', args, opts);
    const built = this.joinModel({
      name,
      kind: 'TokenRateLimit',
      path: pathOf('TokenRateLimit', name, args),
      props: withoutExtras(args),
      build: (chart, id, resolved, context) => {
        const props = resolved as TokenRateLimitArgs;
        const target = context.constructOf(props.target) as cdk.AIGateway | cdk.AIRoute;
        return new cdk.TokenRateLimit(chart, id, { ...props, target });
      },
    });
    this.metadataKey = field(constructOf<cdk.TokenRateLimit>(built, 'TokenRateLimit'), (t) => t.metadataKey);
    this.registerOutputs({ metadataKey: this.metadataKey });
  }
}

// ---------------------------------------------------------------------------------------------------------
// SpendLimit

export interface SpendLimitArgs extends Omit<cdk.SpendLimitProps, 'target'>, ComponentExtras {
  /** An AIGateway (budget over all its routes) or an AIRoute of this program. */
  readonly target: AIGateway | AIRoute;
}

/**
 * See the cdk8s `SpendLimit`. Like a TokenRateLimit, its rule and prices join its gateway's policy and processor
 * config; this component outputs the money cost's metadata key and unit.
 */
export class SpendLimit extends AIGatewayComponent {
  /** The metadata key of the money cost the budget charges. */
  readonly metadataKey: pulumi.Output<string>;
  /** The unit the limit is counted in, in pico-dollars. */
  readonly picoUsdPerUnit: pulumi.Output<number>;

  constructor(name: string, args: SpendLimitArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${TYPE_PREFIX}SpendLimit`, name, 'SpendLimit', args, opts);
    const built = this.joinModel({
      name,
      kind: 'SpendLimit',
      path: pathOf('SpendLimit', name, args),
      props: withoutExtras(args),
      build: (chart, id, resolved, context) => {
        const props = resolved as SpendLimitArgs;
        const target = context.constructOf(props.target) as cdk.AIGateway | cdk.AIRoute;
        return new cdk.SpendLimit(chart, id, { ...props, target });
      },
    });
    const limit = constructOf<cdk.SpendLimit>(built, 'SpendLimit');
    this.metadataKey = field(limit, (l) => l.metadataKey);
    this.picoUsdPerUnit = field(limit, (l) => l.picoUsdPerUnit);
    this.registerOutputs({ metadataKey: this.metadataKey, picoUsdPerUnit: this.picoUsdPerUnit });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Consumer

/** API keys the Pulumi component generates (with `@pulumi/random`) and stores in a Secret it creates. */
export interface GeneratedApiKeys {
  /** Name of the Secret to create, in the namespace of the target's SecurityPolicy (gateway's or route's). */
  readonly secretName: string;
  /** One generated key per client id (the Secret's data keys). */
  readonly clientIds: readonly string[];
  /**
   * Length of each key (letters and digits).
   * @default 48
   */
  readonly length?: number;
}

export interface ConsumerArgs extends Omit<cdk.ConsumerProps, 'target' | 'keys'>, ComponentExtras {
  // `consumerId` defaults to the Pulumi name, lower-cased.
  /** An AIGateway (all its routes) or an AIRoute of this program. */
  readonly target: AIGateway | AIRoute;
  /**
   * Keys in existing Secrets.
   * @default - none (then `generatedKeys` is needed)
   */
  readonly keys?: readonly cdk.ApiKey[];
  /**
   * Keys the component generates as Pulumi secrets (`@pulumi/random` RandomPassword, an optional peer dependency)
   * and stores in a Secret it creates; read them from the `generatedKeys` output, a Pulumi secret.
   * @default - none
   */
  readonly generatedKeys?: GeneratedApiKeys;
}

/**
 * See the cdk8s `Consumer`. Besides referencing existing Secrets it can generate keys: they stay secret in Pulumi
 * state and reach no output but `generatedKeys`, itself a secret.
 */
export class Consumer extends AIGatewayComponent {
  readonly consumerId: pulumi.Output<string>;
  /** The generated keys by client id (a Pulumi secret); empty without `generatedKeys`. */
  readonly generatedKeys: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: ConsumerArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${TYPE_PREFIX}Consumer`, name, 'Consumer', args, opts);
    const { generatedKeys: generate, ...rest } = withoutExtras(args);
    const secrets: ManagedSecretObject[] = [];
    let values: Record<string, pulumi.Output<string>> = {};
    const keys: cdk.ApiKey[] = [...(rest.keys ?? [])];
    if (generate) {
      values = this.generateKeys(name, generate);
      const namespace = args.target instanceof AIGateway ? args.target.gatewayNamespace : args.target.namespace;
      secrets.push({
        name: generate.secretName,
        namespace,
        entries: Object.entries(values).map(([key, value]) => ({ key, value })),
      });
      keys.push(cdk.ApiKey.fromSecret(generate.secretName, generate.clientIds));
    }
    const built = this.joinModel({
      name,
      kind: 'Consumer',
      path: pathOf('Consumer', name, args),
      props: { ...rest, keys, consumerId: rest.consumerId ?? name.toLowerCase() },
      secrets,
      build: (chart, id, resolved, context) => {
        const props = resolved as ConsumerArgs & { keys: cdk.ApiKey[] };
        const target = context.constructOf(props.target) as cdk.AIGateway | cdk.AIRoute;
        return new cdk.Consumer(chart, id, { ...props, target });
      },
    });
    this.consumerId = field(constructOf<cdk.Consumer>(built, 'Consumer'), (c) => c.consumerId);
    this.generatedKeys = pulumi.secret(pulumi.all(values));
    this.registerOutputs({ consumerId: this.consumerId, generatedKeys: this.generatedKeys });
  }

  /** One RandomPassword per client id, children of this component. */
  private generateKeys(name: string, generate: GeneratedApiKeys): Record<string, pulumi.Output<string>> {
    if (generate.clientIds.length === 0) {
      throw new Error(`Consumer ${name}: generatedKeys.clientIds must list at least one client id`);
    }
    const length = generate.length ?? 48;
    if (!Number.isInteger(length) || length < 32 || length > 256) {
      throw new Error(`Consumer ${name}: generatedKeys.length ${length} must be an integer from 32 to 256`);
    }
    const random = loadRandom(name);
    const values: Record<string, pulumi.Output<string>> = {};
    for (const clientId of generate.clientIds) {
      const password = new random.RandomPassword(
        `${name}-${clientId}`,
        { length, special: false },
        { parent: this, additionalSecretOutputs: ['result'] },
      );
      values[clientId] = pulumi.secret(password.result);
    }
    return values;
  }
}

/** `@pulumi/random`, an optional peer dependency needed only to generate keys. */
function loadRandom(name: string): typeof import('@pulumi/random') {
  try {
    return require('@pulumi/random') as typeof import('@pulumi/random');
  } catch {
    throw new Error(
      `Consumer ${name}: generatedKeys needs the package @pulumi/random (an optional peer dependency of ` +
        'ai-gateway-constructs); install it, or reference existing Secrets with keys: [ApiKey.fromSecret(...)]',
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// RateLimitRedis

export interface InClusterRedisArgs extends Omit<cdk.InClusterRedisProps, 'namespace'>, ComponentExtras {
  /** @default "default" */
  readonly namespace?: Input<string>;
}

export interface ExternalRedisArgs extends ComponentExtras {
  /** `host:port`, e.g. an endpoint output of a managed Redis. */
  readonly url: Input<string>;
  /**
   * The Secret key (in Envoy Gateway's namespace) holding the Redis password, passed to the rate-limit service as
   * `REDIS_AUTH`.
   * @default - no password
   */
  readonly passwordSecret?: cdk.RedisPasswordSecret;
}

/**
 * See the cdk8s `RateLimitRedis`. `helmValues` are the Envoy Gateway Helm values to install with (e.g. as
 * `values` of a `k8s.helm.v3.Release` for `gateway-helm`).
 */
export class RateLimitRedis extends AIGatewayComponent {
  /** A single-replica Redis without persistence. `name` defaults to "redis", as in cdk8s. */
  static inCluster(
    name: string,
    args: InClusterRedisArgs = {},
    opts?: pulumi.ComponentResourceOptions,
  ): RateLimitRedis {
    return new RateLimitRedis(name, { inCluster: args }, opts);
  }

  /** A Redis run elsewhere. */
  static external(name: string, args: ExternalRedisArgs, opts?: pulumi.ComponentResourceOptions): RateLimitRedis {
    return new RateLimitRedis(name, { external: args }, opts);
  }

  /** `host:port` Envoy Gateway's rate-limit service connects to. */
  readonly url: pulumi.Output<string>;
  readonly helmValues: pulumi.Output<cdk.EnvoyGatewayHelmValues>;

  private constructor(
    name: string,
    args: { inCluster?: InClusterRedisArgs; external?: ExternalRedisArgs },
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super(`${TYPE_PREFIX}RateLimitRedis`, name, 'RateLimitRedis', args, opts);
    const built = this.joinModel({
      name,
      kind: 'RateLimitRedis',
      path: pathOf('RateLimitRedis', name, args.inCluster ?? args.external ?? {}),
      props: {
        inCluster: args.inCluster && withoutExtras(args.inCluster),
        external: args.external && withoutExtras(args.external),
      },
      build: (chart, id, resolved) => {
        const props = resolved as { inCluster?: cdk.InClusterRedisProps; external?: cdk.ExternalRedisProps };
        return props.external
          ? cdk.RateLimitRedis.external(chart, id, props.external)
          : cdk.RateLimitRedis.inCluster(chart, id, props.inCluster);
      },
    });
    const redis = constructOf<cdk.RateLimitRedis>(built, 'RateLimitRedis');
    this.url = field(redis, (r) => r.url);
    this.helmValues = field(redis, (r) => r.helmValues);
    this.registerOutputs({ url: this.url, helmValues: this.helmValues });
  }
}
