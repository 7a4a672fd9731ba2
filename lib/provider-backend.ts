import { Construct } from 'constructs';
import type {
  BackendConfig,
  BackendSchema,
  BodyMutation,
  HeaderMutation,
} from '@ai-gateway-constructs/processor-config';
import { backendGrants } from './backend-grants';
import { Credentials, type CredentialKind } from './credentials';
import {
  ENVOY_GATEWAY_API_VERSION,
  ENVOY_GATEWAY_GROUP,
  customResource,
  type BackendObjectReference,
  type BackendSpec,
} from './crds';
import { invalid } from './errors';
import { checkAwsRegion } from './limits/aws-region';
import { synthRegistry } from './limits/registry';
import { validateUniqueObjects } from './limits/unique-objects';
import { checkHostname, checkLabelName, defaultName, isCleanPathPrefix, resolveNamespace } from './names';

/** Props every provider accepts. */
export interface ProviderBackendOptions {
  /**
   * Name of the emitted `Backend` object and stem of the backend names in the processor config.
   * @default - derived from the construct path
   */
  readonly name?: string;
  /**
   * Namespace of the emitted objects.
   * @default - the chart's namespace, else "default"
   */
  readonly namespace?: string;
  /**
   * Headers to set or remove on every request to this backend (after translation).
   * @default - none
   */
  readonly headerMutation?: HeaderMutationOptions;
  /**
   * Top-level JSON body keys to set or remove on every request to this backend (after translation).
   * @default - none
   */
  readonly bodyMutation?: BodyMutationOptions;
}

export interface HeaderMutationOptions {
  /** @default - none */
  readonly set?: Record<string, string>;
  /** @default - none */
  readonly remove?: readonly string[];
}

export interface BodyMutationOptions {
  /** Values are serialized as JSON. @default - none */
  readonly set?: Record<string, unknown>;
  /** @default - none */
  readonly remove?: readonly string[];
}

export interface OpenAIBackendProps extends ProviderBackendOptions {
  /** `Credentials.apiKey(...)` or `Credentials.bearerToken(...)`. */
  readonly credentials: Credentials;
  /**
   * API host (e.g. a regional or proxy endpoint).
   * @default "api.openai.com"
   */
  readonly hostname?: string;
}

export interface OpenAICompatibleBackendProps extends ProviderBackendOptions {
  /**
   * Base URL of the OpenAI-compatible API, e.g. `https://api.groq.com/openai/v1`. Its path replaces the
   * route's `/v1` prefix; a URL without a path uses `/v1`.
   */
  readonly baseUrl: string;
  /**
   * `Credentials.apiKey(...)` or `Credentials.bearerToken(...)`.
   * @default - no authentication
   */
  readonly credentials?: Credentials; /**
   * Whether the server takes the OpenAI Responses API (`POST /responses`) itself. Most OpenAI-compatible servers speak
   * only Chat Completions: then the gateway translates Responses requests into Chat Completions and the answers back
   * (stateless: `previous_response_id` and stored responses are refused). Set true for a server with its own
   * Responses API, which then gets those requests as they are.
   * @default false
   */
  readonly servesResponsesApi?: boolean;
}

export interface AzureOpenAIBackendProps extends ProviderBackendOptions {
  /** The Azure OpenAI resource host, e.g. `my-resource.openai.azure.com`. */
  readonly hostname: string;
  /** The `api-version` query parameter, e.g. `2025-01-01-preview`. */
  readonly apiVersion: string;
  /** `Credentials.apiKey(...)`, `Credentials.azureEntra(...)` or `Credentials.bearerToken(...)`. */
  readonly credentials: Credentials;
}

export interface AnthropicBackendProps extends ProviderBackendOptions {
  /** `Credentials.apiKey(...)` (sent as `x-api-key`). */
  readonly credentials: Credentials;
  /**
   * The `anthropic-version` header.
   * @default "2023-06-01"
   */
  readonly version?: string;
}

export interface AwsBedrockBackendProps extends ProviderBackendOptions {
  /** AWS region, e.g. `us-east-1`. */
  readonly region: string;
  /** `Credentials.awsDefaultChain()` or `Credentials.awsSharedCredentials(...)`. */
  readonly credentials: Credentials;
}

export interface AwsAnthropicBackendProps extends AwsBedrockBackendProps {
  /**
   * `anthropic_version` sent in the InvokeModel body.
   * @default "bedrock-2023-05-31"
   */
  readonly anthropicVersion?: string;
}

export interface GcpVertexAIBackendProps extends ProviderBackendOptions {
  readonly projectId: string;
  /** Vertex AI region, e.g. `us-central1`, or `global`. */
  readonly region: string;
  /** `Credentials.gcpWorkloadIdentity()` or `Credentials.gcpServiceAccountKey(...)`. */
  readonly credentials: Credentials;
}

export interface GcpAnthropicBackendProps extends GcpVertexAIBackendProps {
  /**
   * `anthropic_version` sent in the rawPredict body.
   * @default "vertex-2023-10-16"
   */
  readonly anthropicVersion?: string;
}

/** The Service's name is the backend's name; routes point straight at the Service. */
export interface KubernetesServiceBackendProps extends Omit<ProviderBackendOptions, 'name'> {
  /** Name of the Service in front of the model server (vLLM, TGI, Ollama, ...). */
  readonly serviceName: string;
  /** Service port. */
  readonly port: number;
  /**
   * Namespace of the Service; a ReferenceGrant is generated when routes in other namespaces use it.
   * @default - the backend's namespace
   */
  readonly serviceNamespace?: string;
  /**
   * Path prefix of the server's OpenAI-compatible API.
   * @default "/v1"
   */
  readonly pathPrefix?: string;
  /**
   * @default - no authentication
   */
  readonly credentials?: Credentials; /**
   * Whether the server takes the OpenAI Responses API (`POST /responses`) itself. Most OpenAI-compatible servers speak
   * only Chat Completions: then the gateway translates Responses requests into Chat Completions and the answers back
   * (stateless: `previous_response_id` and stored responses are refused). Set true for a server with its own
   * Responses API, which then gets those requests as they are.
   * @default false
   */
  readonly servesResponsesApi?: boolean;
}

/** What a provider factory decided: the input of ProviderBackend's private constructor. */
interface ProviderSettings extends ProviderBackendOptions {
  /** Provider name for messages, e.g. "OpenAI". */
  readonly provider: string;
  readonly schema: BackendSchema;
  readonly hostname: string;
  readonly port: number;
  readonly tls: boolean;
  readonly credentials?: Credentials;
  /** Credential kinds this provider accepts. */
  readonly acceptedCredentials: readonly CredentialKind[];
  /** Whether the provider cannot be called without credentials. */
  readonly credentialsRequired: boolean;
  /** AWS signing region. @default - none */
  readonly awsRegion?: string;
  /** Route to this Kubernetes Service instead of emitting an Envoy Gateway Backend. @default - a Backend */
  readonly service?: { readonly name: string; readonly namespace: string };
}

const API_KEY_KINDS: readonly CredentialKind[] = ['APIKey', 'BearerToken'];
const AWS_KINDS: readonly CredentialKind[] = ['AWSSecret', 'AWSDefaultChain'];
const GCP_KINDS: readonly CredentialKind[] = ['GCPServiceAccountKey', 'GCPWorkloadIdentity'];

/**
 * An upstream LLM provider. Emits an Envoy Gateway `Backend` with TLS (system CAs, provider hostname as SNI) for
 * public providers, or points routes at an in-cluster Service; contributes its schema, endpoint
 * and credentials to the processor config of every gateway whose routes use it.
 */
export class ProviderBackend extends Construct {
  static openAI(scope: Construct, id: string, props: OpenAIBackendProps): ProviderBackend {
    return new ProviderBackend(scope, id, {
      ...props,
      provider: 'OpenAI',
      schema: { name: 'OpenAI', pathPrefix: '/v1' },
      hostname: props.hostname ?? 'api.openai.com',
      port: 443,
      tls: true,
      acceptedCredentials: API_KEY_KINDS,
      credentialsRequired: true,
    });
  }

  static openAICompatible(scope: Construct, id: string, props: OpenAICompatibleBackendProps): ProviderBackend {
    let url: URL;
    try {
      url = new URL(props.baseUrl);
    } catch {
      throw invalid(
        scope,
        `${id}.baseUrl`,
        props.baseUrl,
        'must be an absolute http(s) URL such as "https://api.groq.com/openai/v1"',
      );
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw invalid(scope, `${id}.baseUrl`, props.baseUrl, 'must use http or https');
    }
    if (url.search !== '' || url.hash !== '' || url.username !== '') {
      throw invalid(scope, `${id}.baseUrl`, props.baseUrl, 'must not contain a query, fragment or user info');
    }
    const tls = url.protocol === 'https:';
    const path = url.pathname.replace(/\/+$/, '');
    return new ProviderBackend(scope, id, {
      ...props,
      provider: 'OpenAI-compatible',
      schema: {
        name: 'OpenAI',
        pathPrefix: path === '' ? '/v1' : path,
        ...responsesApiOf(props.servesResponsesApi),
      },
      hostname: url.hostname,
      port: url.port === '' ? (tls ? 443 : 80) : Number(url.port),
      tls,
      acceptedCredentials: API_KEY_KINDS,
      credentialsRequired: false,
    });
  }

  static azureOpenAI(scope: Construct, id: string, props: AzureOpenAIBackendProps): ProviderBackend {
    return new ProviderBackend(scope, id, {
      ...props,
      provider: 'AzureOpenAI',
      schema: { name: 'AzureOpenAI', apiVersion: props.apiVersion },
      hostname: props.hostname,
      port: 443,
      tls: true,
      acceptedCredentials: ['APIKey', 'AzureEntra', 'BearerToken'],
      credentialsRequired: true,
    });
  }

  static anthropic(scope: Construct, id: string, props: AnthropicBackendProps): ProviderBackend {
    return new ProviderBackend(scope, id, {
      ...props,
      provider: 'Anthropic',
      schema: { name: 'Anthropic', version: props.version ?? '2023-06-01' },
      hostname: 'api.anthropic.com',
      port: 443,
      tls: true,
      acceptedCredentials: ['APIKey'],
      credentialsRequired: true,
    });
  }

  /** AWS Bedrock Converse API. */
  static awsBedrock(scope: Construct, id: string, props: AwsBedrockBackendProps): ProviderBackend {
    return new ProviderBackend(scope, id, {
      ...props,
      provider: 'AWSBedrock',
      schema: { name: 'AWSBedrock' },
      hostname: bedrockHost(scope, id, props.region),
      port: 443,
      tls: true,
      acceptedCredentials: AWS_KINDS,
      credentialsRequired: true,
      awsRegion: props.region,
    });
  }

  /** Anthropic models on AWS Bedrock through InvokeModel (native Anthropic bodies). */
  static awsAnthropic(scope: Construct, id: string, props: AwsAnthropicBackendProps): ProviderBackend {
    return new ProviderBackend(scope, id, {
      ...props,
      provider: 'AWSAnthropic',
      schema: { name: 'AWSAnthropic', anthropicVersion: props.anthropicVersion ?? 'bedrock-2023-05-31' },
      hostname: bedrockHost(scope, id, props.region),
      port: 443,
      tls: true,
      acceptedCredentials: AWS_KINDS,
      credentialsRequired: true,
      awsRegion: props.region,
    });
  }

  /** Gemini models on GCP Vertex AI. */
  static gcpVertexAI(scope: Construct, id: string, props: GcpVertexAIBackendProps): ProviderBackend {
    return new ProviderBackend(scope, id, {
      ...props,
      provider: 'GCPVertexAI',
      schema: { name: 'GCPVertexAI', projectId: props.projectId, region: props.region },
      hostname: vertexHost(scope, id, props.region),
      port: 443,
      tls: true,
      acceptedCredentials: GCP_KINDS,
      credentialsRequired: true,
    });
  }

  /** Anthropic models on GCP Vertex AI. */
  static gcpAnthropic(scope: Construct, id: string, props: GcpAnthropicBackendProps): ProviderBackend {
    return new ProviderBackend(scope, id, {
      ...props,
      provider: 'GCPAnthropic',
      schema: {
        name: 'GCPAnthropic',
        projectId: props.projectId,
        region: props.region,
        anthropicVersion: props.anthropicVersion ?? 'vertex-2023-10-16',
      },
      hostname: vertexHost(scope, id, props.region),
      port: 443,
      tls: true,
      acceptedCredentials: GCP_KINDS,
      credentialsRequired: true,
    });
  }

  /** A self-hosted, OpenAI-compatible model server behind a Kubernetes Service (plain HTTP inside the cluster). */
  static kubernetesService(scope: Construct, id: string, props: KubernetesServiceBackendProps): ProviderBackend {
    const namespace = props.serviceNamespace ?? resolveNamespace(scope, props.namespace);
    return new ProviderBackend(scope, id, {
      ...props,
      provider: 'KubernetesService',
      schema: { name: 'OpenAI', pathPrefix: props.pathPrefix ?? '/v1', ...responsesApiOf(props.servesResponsesApi) },
      hostname: `${props.serviceName}.${namespace}.svc.cluster.local`,
      port: props.port,
      tls: false,
      acceptedCredentials: API_KEY_KINDS,
      credentialsRequired: false,
      service: { name: props.serviceName, namespace },
    });
  }

  /** Name of the `Backend` object (or of the Service for in-cluster backends). */
  readonly backendName: string;
  /** Namespace of the `Backend` object (or of the Service). */
  readonly namespace: string;
  /** Host the processor and Envoy send requests to; the route rewrites `Host` to it. */
  readonly hostname: string;
  readonly port: number;
  readonly tls: boolean;
  readonly provider: string;
  /** @internal the processor config's API schema of this backend */
  readonly schema: BackendSchema;
  readonly credentials?: Credentials;
  private readonly props: ProviderSettings;

  /** Create backends with the static factories (`ProviderBackend.openAI(...)`, ...), which decide the settings. */
  private constructor(scope: Construct, id: string, props: ProviderSettings) {
    super(scope, id);
    this.props = props;
    this.provider = props.provider;
    this.schema = props.schema;
    this.hostname = props.hostname;
    this.port = props.port;
    this.tls = props.tls;
    this.credentials = props.credentials;
    const ownNamespace = resolveNamespace(this, props.namespace);
    this.validate();
    validateUniqueObjects(this);
    if (props.service) {
      this.backendName = props.service.name;
      this.namespace = props.service.namespace;
    } else {
      this.backendName = checkLabelName(this, 'name', props.name ?? defaultName(this));
      this.namespace = ownNamespace;
      const backendObject = { kind: 'Backend', namespace: this.namespace, name: this.backendName };
      synthRegistry(this).claimName(this, 'name', backendObject);
      this.emitBackend();
    }
  }

  /** Checks the settings the factory decided from the props, naming the prop the user set. */
  private validate(): void {
    const props = this.props;
    if (props.service) {
      // Checked before the hostname derived from them, so an error names the prop the user set.
      checkLabelName(this, 'serviceName', props.service.name, { startWithLetter: true });
      checkLabelName(this, 'serviceNamespace', props.service.namespace);
    }
    if (!Number.isInteger(props.port) || props.port < 1 || props.port > 65535) {
      throw invalid(this, 'port', props.port, 'must be an integer between 1 and 65535');
    }
    checkHostname(this, 'hostname', props.hostname);
    this.validateCredentials();
    // The backend's HTTPRoute rule matches this prefix (see upstreamPathPrefix), so it must be a clean path.
    if (props.schema.name === 'OpenAI' && !isCleanPathPrefix(props.schema.pathPrefix)) {
      throw invalid(
        this,
        'pathPrefix',
        props.schema.pathPrefix,
        'must be a path starting with "/" without a trailing "/", "//", "." or ".." segments, query or fragment',
      );
    }
  }

  /**
   * Emits the Envoy Gateway `Backend`, for TLS with its own `tls` settings: the provider hostname as SNI (Envoy
   * Gateway then accepts only a certificate for that name) and the system CAs. In the Backend itself rather than a
   * BackendTLSPolicy beside it, so no apply order, prune or rejected policy can leave Envoy sending a provider's
   * requests, credentials included, in plain text to its TLS port.
   */
  private emitBackend(): void {
    customResource<BackendSpec>(
      this,
      'Backend',
      ENVOY_GATEWAY_API_VERSION,
      'Backend',
      { name: this.backendName, namespace: this.namespace },
      {
        endpoints: [{ fqdn: { hostname: this.hostname, port: this.port } }],
        tls: this.tls ? { sni: this.hostname, wellKnownCACertificates: 'System' } : undefined,
      },
    );
  }

  /** Whether routes send traffic straight to an in-cluster Service (no Envoy Gateway Backend, no Host rewrite). */
  get isKubernetesService(): boolean {
    return this.props.service !== undefined;
  }

  /**
   * Every upstream path the processor sends to this backend is this prefix or below it (Gateway API PathPrefix
   * semantics), as long as it can be: the backend's HTTPRoute rule matches it, so the longer it is, the fewer
   * other routes' prefixes can out-rank the rule when Envoy matches again after the processor rewrote the path
   * (see lib/route-precedence.ts). test/routing-contract.test.ts checks it against the processor's translators.
   */
  get upstreamPathPrefix(): string {
    const schema = this.schema;
    switch (schema.name) {
      case 'OpenAI':
        return schema.pathPrefix === '' ? '/' : schema.pathPrefix;
      case 'AzureOpenAI':
        return '/openai';
      case 'Anthropic':
        return '/v1/messages';
      case 'AWSBedrock':
      case 'AWSAnthropic':
        return '/model';
      case 'GCPVertexAI':
        return `/v1/projects/${schema.projectId}/locations/${schema.region}/publishers/google/models`;
      case 'GCPAnthropic':
        return `/v1/projects/${schema.projectId}/locations/${schema.region}/publishers/anthropic/models`;
    }
  }

  /** @internal lower-case names of the request headers this backend's `headerMutation` sets or removes. */
  get _mutatedHeaders(): string[] {
    const mutation = this.props.headerMutation;
    if (!mutation) return [];
    return [
      ...new Set([...Object.keys(mutation.set ?? {}), ...(mutation.remove ?? [])].map((name) => name.toLowerCase())),
    ];
  }

  /** Namespace the credential Secret is expected in (where the ProviderBackend construct lives unless set). */
  get secretNamespaceDefault(): string {
    return resolveNamespace(this, this.props.namespace);
  }

  /** @internal the HTTPRoute backendRef, from a route in `routeNamespace`. */
  _backendRef(routeNamespace: string, weight?: number): BackendObjectReference {
    const namespace = routeNamespace === this.namespace ? undefined : this.namespace;
    if (this.props.service) {
      return { name: this.backendName, namespace, port: this.port, weight };
    }
    return { group: ENVOY_GATEWAY_GROUP, kind: 'Backend', name: this.backendName, namespace, weight };
  }

  /**
   * @internal Lets HTTPRoutes of `routeNamespace` reference this backend: adds its name to the app's shared
   * ReferenceGrants of this namespace (see backend-grants.ts), up to 16 backends per grant.
   */
  _grantAccessFrom(routeNamespace: string): void {
    if (routeNamespace === this.namespace) return;
    const target = this.props.service
      ? ({ group: '', kind: 'Service' } as const)
      : ({ group: ENVOY_GATEWAY_GROUP, kind: 'Backend' } as const);
    backendGrants(this).grant(this, this.namespace, routeNamespace, { ...target, name: this.backendName });
  }

  /** @internal the processor config entry for this backend under `entryName`. */
  _toConfig(entryName: string): BackendConfig {
    const entry: BackendConfig = {
      name: entryName,
      schema: this.schema,
      endpoint: { hostname: this.hostname, port: this.port, tls: this.tls },
    };
    if (this.credentials) entry.auth = this.credentials._toConfig(this.props.awsRegion);
    const headerMutation = toHeaderMutation(this.props.headerMutation);
    if (headerMutation) entry.headerMutation = headerMutation;
    const bodyMutation = toBodyMutation(this.props.bodyMutation);
    if (bodyMutation) entry.bodyMutation = bodyMutation;
    return entry;
  }

  private validateCredentials(): void {
    const { credentials, acceptedCredentials, credentialsRequired, provider } = this.props;
    const accepted = acceptedCredentials.map(factoryName).join(', ');
    if (credentials === undefined) {
      if (credentialsRequired) {
        throw invalid(
          this,
          'credentials',
          credentials,
          `provider ${provider} needs credentials; pass one of ${accepted}`,
        );
      }
      return;
    }
    if (!(credentials instanceof Credentials)) {
      throw invalid(this, 'credentials', credentials, `must be created with ${accepted}`);
    }
    if (!acceptedCredentials.includes(credentials.kind)) {
      throw invalid(this, 'credentials', factoryName(credentials.kind), `provider ${provider} accepts ${accepted}`);
    }
    for (const secret of credentials.secrets) {
      checkLabelName(this, 'credentials.secretName', secret.secretName);
      if (!/^[-._a-zA-Z0-9]+$/.test(secret.key))
        throw invalid(this, 'credentials.key', secret.key, 'must be a valid Secret key');
    }
  }
}

function factoryName(kind: CredentialKind): string {
  switch (kind) {
    case 'APIKey':
      return 'Credentials.apiKey()';
    case 'BearerToken':
      return 'Credentials.bearerToken()';
    case 'AWSSecret':
      return 'Credentials.awsSharedCredentials()';
    case 'AWSDefaultChain':
      return 'Credentials.awsDefaultChain()';
    case 'GCPServiceAccountKey':
      return 'Credentials.gcpServiceAccountKey()';
    case 'GCPWorkloadIdentity':
      return 'Credentials.gcpWorkloadIdentity()';
    case 'AzureEntra':
      return 'Credentials.azureEntra()';
  }
}

const REGION = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/** The Bedrock runtime host of `region`; the region is also the SigV4 signing region, so this checks both. */
function bedrockHost(scope: Construct, id: string, region: string): string {
  checkAwsRegion(scope, `${id}.region`, region);
  return `bedrock-runtime.${region}.amazonaws.com`;
}

function vertexHost(scope: Construct, id: string, region: string): string {
  if (typeof region !== 'string' || !REGION.test(region))
    throw invalid(scope, `${id}.region`, region, 'must be a GCP region such as "us-central1" or "global"');
  return region === 'global' ? 'aiplatform.googleapis.com' : `${region}-aiplatform.googleapis.com`;
}

function toHeaderMutation(options: HeaderMutationOptions | undefined): HeaderMutation | undefined {
  if (!options) return undefined;
  return {
    set: Object.entries(options.set ?? {}).map(([name, value]) => ({ name: name.toLowerCase(), value })),
    remove: (options.remove ?? []).map((name) => name.toLowerCase()),
  };
}

function toBodyMutation(options: BodyMutationOptions | undefined): BodyMutation | undefined {
  if (!options) return undefined;
  return {
    set: Object.entries(options.set ?? {}).map(([path, value]) => ({ path, value: JSON.stringify(value) })),
    remove: [...(options.remove ?? [])],
  };
}

/** The config of a server that may speak only Chat Completions (see `servesResponsesApi`). */
function responsesApiOf(servesResponsesApi: boolean | undefined): { responsesApi?: 'chatCompletions' } {
  return servesResponsesApi === true ? {} : { responsesApi: 'chatCompletions' };
}
