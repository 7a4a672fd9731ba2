/**
 * The gateways the end-to-end suite runs, built with the constructs exactly as a user would write them and
 * synthesized in-process. Each scenario says which fake provider serves each Backend or Service it emits
 * (`backends`), which Secrets the processor needs (`secrets`) and where the gateway listens (`gateway`); the
 * local harness and the kind scripts both read this, so what runs here is what runs in a cluster.
 */
import { randomBytes } from 'node:crypto';
import { App, Chart, Testing } from 'cdk8s';
import {
  AIGateway,
  AIRoute,
  ApiKey,
  ClientIdentity,
  Fallback,
  Consumer,
  Credentials,
  ModelMatch,
  ModelScope,
  Money,
  PriceCatalog,
  ProviderBackend,
  RateLimitRedis,
  RateLimitUnit,
  SpendLimit,
  TokenCost,
  TokenRateLimit,
  type AIRouteRule,
} from '../../../lib';
import { buildExample } from '../../../examples/cdk8s/main';
import type { KubeObject } from '../../../lib/dataplane/model';
import { CLIENT_KEY, FAKE_CREDENTIALS, FAKES_APP_LABEL, VLLM_TARGET_PORT, type FakeName } from './credentials';

export { CLIENT_KEY, FAKE_CREDENTIALS, FAKES_APP_LABEL, VLLM_TARGET_PORT, type FakeName };

export interface Scenario {
  readonly name: string;
  readonly objects: KubeObject[];
  /** `<namespace>/<name>` of each Backend or Service -> the fake that plays it. */
  readonly backends: Record<string, FakeName>;
  /** Secret keys the processor mounts: `<namespace>/<secret>/<key>` -> value. */
  readonly secrets: Record<string, string>;
  /** The gateway under test and its HTTP listener port. */
  readonly gateway: { namespace: string; name: string; port: number };
}

function awsCredentialsFile(): string {
  const { accessKeyId, secretAccessKey } = FAKE_CREDENTIALS.aws;
  return `[default]\naws_access_key_id = ${accessKeyId}\naws_secret_access_key = ${secretAccessKey}\n`;
}

/**
 * Budgets need a RateLimitRedis in the app (synth refuses budgets without one). The data plane runs its rate-limit
 * service on the test's own Redis, so an external one, which emits no objects, stands for it.
 */
function withRedis(chart: Chart): void {
  RateLimitRedis.external(chart, 'Redis', { url: 'redis.e2e.test:6379' });
}

function objectsOf(...charts: Chart[]): KubeObject[] {
  return charts.flatMap((chart) => Testing.synth(chart) as KubeObject[]);
}

/**
 * The Service of the self-hosted model server `ProviderBackend.kubernetesService` points at: it exists before the
 * gateway (the user deploys it), and Envoy Gateway refuses a backendRef to a missing Service. In a cluster run it
 * selects the fake providers' pod.
 */
function modelServerService(namespace: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'vllm', namespace },
    spec: {
      selector: { ...FAKES_APP_LABEL },
      ports: [{ name: 'http', port: 8000, targetPort: VLLM_TARGET_PORT, protocol: 'TCP' }],
    },
  };
}

/** Every ProviderBackend factory, each with the credentials its provider takes. */
export interface ProviderSet {
  openai: ProviderBackend;
  groq: ProviderBackend;
  azure: ProviderBackend;
  azureEntra: ProviderBackend;
  anthropic: ProviderBackend;
  bedrock: ProviderBackend;
  awsAnthropic: ProviderBackend;
  vertex: ProviderBackend;
  gcpAnthropic: ProviderBackend;
  vllm: ProviderBackend;
}

export function providerSet(chart: Chart): ProviderSet {
  const { awsRegion, gcpProject, gcpRegion, azureApiVersion } = FAKE_CREDENTIALS;
  return {
    openai: ProviderBackend.openAI(chart, 'OpenAI', {
      name: 'openai',
      credentials: Credentials.apiKey({ secretName: 'openai', key: 'api-key' }),
    }),
    groq: ProviderBackend.openAICompatible(chart, 'Groq', {
      name: 'groq',
      baseUrl: 'https://api.groq.com/openai/v1',
      credentials: Credentials.apiKey({ secretName: 'groq', key: 'api-key' }),
    }),
    azure: ProviderBackend.azureOpenAI(chart, 'Azure', {
      name: 'azure',
      hostname: 'e2e-resource.openai.azure.com',
      apiVersion: azureApiVersion,
      credentials: Credentials.apiKey({ secretName: 'azure', key: 'api-key' }),
    }),
    azureEntra: ProviderBackend.azureOpenAI(chart, 'AzureEntra', {
      name: 'azure-entra',
      hostname: 'e2e-entra.openai.azure.com',
      apiVersion: azureApiVersion,
      credentials: Credentials.bearerToken({ secretName: 'azure-entra', key: 'token' }),
    }),
    anthropic: ProviderBackend.anthropic(chart, 'Anthropic', {
      name: 'anthropic',
      credentials: Credentials.apiKey({ secretName: 'anthropic', key: 'api-key' }),
    }),
    bedrock: ProviderBackend.awsBedrock(chart, 'Bedrock', {
      name: 'bedrock',
      region: awsRegion,
      credentials: Credentials.awsSharedCredentials({ secretName: 'aws', key: 'credentials' }),
    }),
    // The default chain reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the processor's environment.
    awsAnthropic: ProviderBackend.awsAnthropic(chart, 'AwsAnthropic', {
      name: 'aws-anthropic',
      region: awsRegion,
      credentials: Credentials.awsDefaultChain(),
    }),
    // Workload identity: application default credentials of type external_account pointing at the fake STS.
    vertex: ProviderBackend.gcpVertexAI(chart, 'Vertex', {
      name: 'vertex',
      projectId: gcpProject,
      region: gcpRegion,
      credentials: Credentials.gcpWorkloadIdentity(),
    }),
    gcpAnthropic: ProviderBackend.gcpAnthropic(chart, 'GcpAnthropic', {
      name: 'gcp-anthropic',
      projectId: gcpProject,
      region: gcpRegion,
      credentials: Credentials.gcpWorkloadIdentity(),
    }),
    vllm: ProviderBackend.kubernetesService(chart, 'Vllm', { serviceName: 'vllm', port: 8000, pathPrefix: '/api/v1' }),
  };
}

/** Which fake plays each backend of `providerSet` (by the emitted object's namespace/name). */
function providerBackends(namespace: string): Record<string, FakeName> {
  return {
    [`${namespace}/openai`]: 'openai',
    [`${namespace}/groq`]: 'groq',
    [`${namespace}/azure`]: 'azure',
    [`${namespace}/azure-entra`]: 'azure-entra',
    [`${namespace}/anthropic`]: 'anthropic',
    [`${namespace}/bedrock`]: 'bedrock',
    [`${namespace}/aws-anthropic`]: 'bedrock',
    [`${namespace}/vertex`]: 'vertex',
    [`${namespace}/gcp-anthropic`]: 'vertex',
    [`${namespace}/vllm`]: 'vllm',
  };
}

function providerSecrets(namespace: string): Record<string, string> {
  return {
    [`${namespace}/openai/api-key`]: FAKE_CREDENTIALS.openaiKey,
    [`${namespace}/groq/api-key`]: FAKE_CREDENTIALS.groqKey,
    [`${namespace}/azure/api-key`]: FAKE_CREDENTIALS.azureKey,
    [`${namespace}/azure-entra/token`]: FAKE_CREDENTIALS.azureBearer,
    [`${namespace}/anthropic/api-key`]: FAKE_CREDENTIALS.anthropicKey,
    [`${namespace}/aws/credentials`]: awsCredentialsFile(),
  };
}

/** One client model per provider factory: what the client asks for, and what the provider must receive. */
export interface ProviderCase {
  readonly factory: string;
  /** The ProviderBackend of `providerSet` serving it. */
  readonly backend: keyof ProviderSet;
  readonly model: string;
  readonly fake: FakeName;
  /** The model name the provider receives (after the rule's modelNameOverride). */
  readonly upstreamModel: string;
  /** The provider path the fake must receive (for the non-streaming request). */
  readonly upstreamPath: string;
  readonly upstreamStreamPath: string;
  /** Host header the provider must receive (the Backend's hostname), undefined for a Service. */
  readonly upstreamHost?: string;
}

const vertexPath = (publisher: string, model: string, method: string) =>
  `/v1/projects/${FAKE_CREDENTIALS.gcpProject}/locations/` +
  `${FAKE_CREDENTIALS.gcpRegion}/publishers/${publisher}/models/${model}:${method}`;

export const PROVIDER_CASES: readonly ProviderCase[] = [
  {
    factory: 'openAI',
    backend: 'openai',
    model: 'gpt-4o-mini',
    fake: 'openai',
    upstreamModel: 'gpt-4o-mini',
    upstreamPath: '/v1/chat/completions',
    upstreamStreamPath: '/v1/chat/completions',
    upstreamHost: 'api.openai.com',
  },
  {
    factory: 'openAICompatible (/openai/v1)',
    backend: 'groq',
    model: 'llama-3.3-70b',
    fake: 'groq',
    upstreamModel: 'llama-3.3-70b-versatile',
    upstreamPath: '/openai/v1/chat/completions',
    upstreamStreamPath: '/openai/v1/chat/completions',
    upstreamHost: 'api.groq.com',
  },
  {
    factory: 'azureOpenAI (api-key)',
    backend: 'azure',
    model: 'azure-gpt-4o',
    fake: 'azure',
    upstreamModel: 'gpt-4o-deployment',
    upstreamPath:
      `/openai/deployments/gpt-4o-deployment/chat/` + `completions?api-version=${FAKE_CREDENTIALS.azureApiVersion}`,
    upstreamStreamPath:
      `/openai/deployments/gpt-4o-deployment/chat/` + `completions?api-version=${FAKE_CREDENTIALS.azureApiVersion}`,
    upstreamHost: 'e2e-resource.openai.azure.com',
  },
  {
    factory: 'azureOpenAI (Entra bearer)',
    backend: 'azureEntra',
    model: 'azure-entra-gpt-4o',
    fake: 'azure-entra',
    upstreamModel: 'gpt-4o-entra',
    upstreamPath: `/openai/deployments/gpt-4o-entra/chat/completions?api-version=${FAKE_CREDENTIALS.azureApiVersion}`,
    upstreamStreamPath:
      `/openai/deployments/gpt-4o-entra/chat/` + `completions?api-version=${FAKE_CREDENTIALS.azureApiVersion}`,
    upstreamHost: 'e2e-entra.openai.azure.com',
  },
  {
    factory: 'anthropic',
    backend: 'anthropic',
    model: 'claude-sonnet-4',
    fake: 'anthropic',
    upstreamModel: 'claude-sonnet-4-20250514',
    upstreamPath: '/v1/messages',
    upstreamStreamPath: '/v1/messages',
    upstreamHost: 'api.anthropic.com',
  },
  {
    factory: 'awsBedrock',
    backend: 'bedrock',
    model: 'nova-pro',
    fake: 'bedrock',
    upstreamModel: 'us.amazon.nova-pro-v1:0',
    upstreamPath: '/model/us.amazon.nova-pro-v1:0/converse',
    upstreamStreamPath: '/model/us.amazon.nova-pro-v1:0/converse-stream',
    upstreamHost: `bedrock-runtime.${FAKE_CREDENTIALS.awsRegion}.amazonaws.com`,
  },
  {
    factory: 'awsAnthropic',
    backend: 'awsAnthropic',
    model: 'claude-on-bedrock',
    fake: 'bedrock',
    upstreamModel: 'anthropic.claude-3-5-haiku-20241022-v1:0',
    upstreamPath: '/model/anthropic.claude-3-5-haiku-20241022-v1:0/invoke',
    upstreamStreamPath: '/model/anthropic.claude-3-5-haiku-20241022-v1:0/invoke-with-response-stream',
    upstreamHost: `bedrock-runtime.${FAKE_CREDENTIALS.awsRegion}.amazonaws.com`,
  },
  {
    factory: 'gcpVertexAI',
    backend: 'vertex',
    model: 'gemini-2.5-flash',
    fake: 'vertex',
    upstreamModel: 'gemini-2.5-flash',
    upstreamPath: vertexPath('google', 'gemini-2.5-flash', 'generateContent'),
    upstreamStreamPath: `${vertexPath('google', 'gemini-2.5-flash', 'streamGenerateContent')}?alt=sse`,
    upstreamHost: `${FAKE_CREDENTIALS.gcpRegion}-aiplatform.googleapis.com`,
  },
  {
    factory: 'gcpAnthropic',
    backend: 'gcpAnthropic',
    model: 'claude-on-vertex',
    fake: 'vertex',
    upstreamModel: 'claude-sonnet-4@20250514',
    upstreamPath: vertexPath('anthropic', 'claude-sonnet-4@20250514', 'rawPredict'),
    upstreamStreamPath: vertexPath('anthropic', 'claude-sonnet-4@20250514', 'streamRawPredict'),
    upstreamHost: `${FAKE_CREDENTIALS.gcpRegion}-aiplatform.googleapis.com`,
  },
  {
    factory: 'kubernetesService (/api/v1)',
    backend: 'vllm',
    model: 'llama-local',
    fake: 'vllm',
    upstreamModel: 'meta-llama/Llama-3.1-8B-Instruct',
    upstreamPath: '/api/v1/chat/completions',
    upstreamStreamPath: '/api/v1/chat/completions',
  },
];

function providerRules(providers: ProviderSet): AIRouteRule[] {
  return PROVIDER_CASES.map((testCase) => ({
    models: [ModelMatch.exact(testCase.model)],
    backends: [
      {
        backend: providers[testCase.backend],
        ...(testCase.upstreamModel !== testCase.model ? { modelNameOverride: testCase.upstreamModel } : {}),
      },
    ],
  }));
}

export interface PrefixVariant {
  readonly name: string;
  readonly pathPrefix: string;
  readonly anthropicPathPrefix: string;
}

export const PREFIX_VARIANTS: readonly PrefixVariant[] = [
  { name: 'default /v1', pathPrefix: '/v1', anthropicPathPrefix: '/anthropic/v1' },
  { name: 'custom /ai/v1', pathPrefix: '/ai/v1', anthropicPathPrefix: '/ai/anthropic/v1' },
];

const GATEWAY = { namespace: 'e2e', name: 'e2e-gateway', port: 80 };

function gatewayChart(
  app: App,
  id: string,
  namespace = GATEWAY.namespace,
): { chart: Chart; gateway: AIGateway; providers: ProviderSet } {
  const chart = new Chart(app, id, { namespace });
  const gateway = new AIGateway(chart, 'Gateway', { name: GATEWAY.name });
  return { chart, gateway, providers: providerSet(chart) };
}

/** Every provider factory behind one AIRoute with the given prefixes. */
export function providersScenario(variant: PrefixVariant): Scenario {
  const app = Testing.app();
  const { chart, gateway, providers } = gatewayChart(app, 'providers');
  new AIRoute(chart, 'Chat', {
    name: 'chat',
    gateway,
    pathPrefix: variant.pathPrefix,
    anthropicPathPrefix: variant.anthropicPathPrefix,
    rules: providerRules(providers),
  });
  return {
    name: `providers ${variant.name}`,
    objects: [...objectsOf(chart), modelServerService(GATEWAY.namespace)],
    backends: providerBackends(GATEWAY.namespace),
    secrets: providerSecrets(GATEWAY.namespace),
    gateway: GATEWAY,
  };
}

/** The client models of fidelityScenario and the model each provider receives. */
export const FIDELITY_MODELS = {
  anthropic: { model: 'claude-sonnet-4', upstream: 'claude-sonnet-4-20250514' },
  gcpAnthropic: { model: 'claude-on-vertex', upstream: 'claude-sonnet-4@20250514' },
  awsAnthropic: { model: 'claude-on-bedrock', upstream: 'anthropic.claude-sonnet-4-20250514-v1:0' },
  converse: { model: 'claude-on-converse', upstream: 'us.anthropic.claude-sonnet-4-20250514-v1:0' },
  gemini: { model: 'gemini-2.5-flash', upstream: 'gemini-2.5-flash' },
  openai: { model: 'gpt-4o-mini', upstream: 'gpt-4o-mini' },
  titan: { model: 'titan-embed', upstream: 'amazon.titan-embed-text-v2:0' },
  cohere: { model: 'cohere-embed', upstream: 'cohere.embed-english-v3' },
  vertexEmbedding: { model: 'text-embedding-005', upstream: 'text-embedding-005' },
} as const;

/** The budgets of fidelityScenario: large, only their Redis counters are read. */
export const FIDELITY_BUDGET_TOKENS = 1_000_000;

/**
 * Provider-fidelity features (issue 16) end to end: Claude on the Anthropic API, Vertex AI, Bedrock InvokeModel and
 * Bedrock Converse, Gemini, OpenAI, and embedding models on Bedrock (Titan, Cohere) and Vertex AI, each under its
 * own client model name. Two route budgets count every request: cached input tokens and total tokens.
 */
export function fidelityScenario(namespace: string): Scenario {
  const app = Testing.app();
  const { chart, gateway, providers } = gatewayChart(app, 'fidelity', namespace);
  withRedis(chart);
  const m = FIDELITY_MODELS;
  const rule = (entry: { model: string; upstream: string }, backend: ProviderBackend): AIRouteRule => ({
    models: [ModelMatch.exact(entry.model)],
    backends: [{ backend, ...(entry.upstream !== entry.model ? { modelNameOverride: entry.upstream } : {}) }],
  });
  const route = new AIRoute(chart, 'Fidelity', {
    name: 'fidelity',
    gateway,
    anthropicPathPrefix: '/anthropic/v1',
    rules: [
      rule(m.anthropic, providers.anthropic),
      rule(m.gcpAnthropic, providers.gcpAnthropic),
      rule(m.awsAnthropic, providers.awsAnthropic),
      rule(m.converse, providers.bedrock),
      rule(m.gemini, providers.vertex),
      rule(m.openai, providers.openai),
      rule(m.titan, providers.bedrock),
      rule(m.cohere, providers.bedrock),
      rule(m.vertexEmbedding, providers.vertex),
    ],
  });
  new TokenRateLimit(chart, 'CachedBudget', {
    target: route,
    limit: FIDELITY_BUDGET_TOKENS,
    per: RateLimitUnit.HOUR,
    cost: TokenCost.cachedInputTokens(),
  });
  new TokenRateLimit(chart, 'TotalBudget', {
    target: route,
    limit: FIDELITY_BUDGET_TOKENS,
    per: RateLimitUnit.HOUR,
    cost: TokenCost.totalTokens(),
  });
  return {
    name: `fidelity ${namespace}`,
    objects: [...objectsOf(chart), modelServerService(namespace)],
    backends: providerBackends(namespace),
    secrets: providerSecrets(namespace),
    gateway: { ...GATEWAY, namespace },
  };
}

/** One model split 50/30/20 across three backends. */
export function weightedScenario(): Scenario {
  const app = Testing.app();
  const { chart, gateway, providers } = gatewayChart(app, 'weighted');
  new AIRoute(chart, 'Chat', {
    name: 'chat',
    gateway,
    rules: [
      {
        models: [ModelMatch.exact('split-model')],
        backends: [
          { backend: providers.openai, weight: 50 },
          { backend: providers.groq, weight: 30 },
          { backend: providers.vllm, weight: 20 },
        ],
      },
    ],
  });
  return {
    name: 'weighted',
    objects: [...objectsOf(chart), modelServerService(GATEWAY.namespace)],
    backends: providerBackends(GATEWAY.namespace),
    secrets: providerSecrets(GATEWAY.namespace),
    gateway: GATEWAY,
  };
}

/** The budgets each test of budgets.test.ts configures. */
export interface BudgetLimits {
  /** A route budget over all tenants and models (three models on three backends). */
  routeTokens?: number;
  /** A gateway budget per tenant (`x-tenant-id`). */
  tenantTokens?: number;
  /** A route budget per model and tenant. */
  perModelTokens?: number;
}

/** Three models on three backends (OpenAI, Bedrock, a Service), with the budgets asked for. */
export function budgetScenario(namespace: string, limits: BudgetLimits): Scenario {
  const app = Testing.app();
  const { chart, gateway, providers } = gatewayChart(app, 'budgets', namespace);
  withRedis(chart);
  const route = new AIRoute(chart, 'Chat', {
    name: 'chat',
    gateway,
    anthropicPathPrefix: '/anthropic/v1',
    rules: [
      { models: [ModelMatch.exact('model-a')], backends: [{ backend: providers.openai }] },
      {
        models: [ModelMatch.exact('model-b')],
        backends: [{ backend: providers.bedrock, modelNameOverride: 'us.amazon.nova-lite-v1:0' }],
      },
      { models: [ModelMatch.exact('model-c')], backends: [{ backend: providers.vllm }] },
    ],
  });
  if (limits.routeTokens !== undefined) {
    new TokenRateLimit(chart, 'RouteBudget', {
      target: route,
      limit: limits.routeTokens,
      per: RateLimitUnit.HOUR,
      cost: TokenCost.totalTokens(),
    });
  }
  if (limits.tenantTokens !== undefined) {
    new TokenRateLimit(chart, 'TenantBudget', {
      target: gateway,
      limit: limits.tenantTokens,
      per: RateLimitUnit.HOUR,
      cost: TokenCost.totalTokens(),
      client: tenantHeader(),
      shared: true,
    });
  }
  if (limits.perModelTokens !== undefined) {
    new TokenRateLimit(chart, 'ModelBudget', {
      target: route,
      limit: limits.perModelTokens,
      per: RateLimitUnit.HOUR,
      cost: TokenCost.totalTokens(),
      client: tenantHeader(),
      models: ModelScope.eachModel(),
    });
  }
  return {
    name: `budgets ${namespace}`,
    objects: [...objectsOf(chart), modelServerService(namespace)],
    backends: providerBackends(namespace),
    secrets: providerSecrets(namespace),
    gateway: { ...GATEWAY, namespace },
  };
}

/** The total-token budget of the media scenario: large, only its Redis counter is read. */
export const MEDIA_BUDGET_TOKENS = 1_000_000;

/**
 * Images and audio (issue 16) on OpenAI and Azure OpenAI, every request counted by a route budget of total tokens.
 * The Azure rules override the model name: it becomes the deployment in the path and the form's `model` value.
 */
export function mediaScenario(namespace: string): Scenario {
  const app = Testing.app();
  const { chart, gateway, providers } = gatewayChart(app, 'media', namespace);
  withRedis(chart);
  const route = new AIRoute(chart, 'Media', {
    name: 'media',
    gateway,
    // Images and audio are served only where a route opts in.
    passthroughEndpoints: [
      { path: '/images/generations' },
      { path: '/images/edits' },
      { path: '/audio/transcriptions' },
      { path: '/audio/translations' },
    ],
    rules: [
      {
        models: [ModelMatch.exact('gpt-4o-transcribe'), ModelMatch.exact('whisper-1'), ModelMatch.exact('gpt-image-1')],
        backends: [{ backend: providers.openai }],
      },
      {
        models: [ModelMatch.exact('azure-transcribe')],
        backends: [{ backend: providers.azure, modelNameOverride: 'transcribe-deployment' }],
      },
      {
        models: [ModelMatch.exact('azure-image')],
        backends: [{ backend: providers.azure, modelNameOverride: 'image-deployment' }],
      },
    ],
  });
  new TokenRateLimit(chart, 'MediaBudget', {
    target: route,
    limit: MEDIA_BUDGET_TOKENS,
    per: RateLimitUnit.HOUR,
    cost: TokenCost.totalTokens(),
  });
  return {
    name: `media ${namespace}`,
    objects: [...objectsOf(chart), modelServerService(namespace)],
    backends: providerBackends(namespace),
    secrets: providerSecrets(namespace),
    gateway: { ...GATEWAY, namespace },
  };
}

/**
 * A per-client identity from a plain client header: the gateway authenticates nobody in these scenarios, so
 * trusting the header is the explicit choice the constructs require (clients can send any value).
 */
export function tenantHeader(header = 'x-tenant-id'): ClientIdentity {
  return ClientIdentity.unverifiedHeader(header);
}

/**
 * The API keys of governance scenarios' consumers: client id (the Secret's data key) -> key. Test values, never
 * real keys; each consumer keeps its keys in a Secret `<consumer>-keys` of the gateway's namespace.
 */
export const CONSUMER_KEYS = {
  'team-a': { 'team-a-openai': 'sk-gov-team-a-openai-e2e', 'team-a-anthropic': 'sk-gov-team-a-anthropic-e2e' },
  'team-b': { 'team-b-openai': 'sk-gov-team-b-openai-e2e', 'team-b-anthropic': 'sk-gov-team-b-anthropic-e2e' },
  'team-c': { 'team-c-ci': 'sk-gov-team-c-ci-e2e', 'team-c-laptop': 'sk-gov-team-c-laptop-e2e' },
  'team-d': { 'team-d-app': 'sk-gov-team-d-app-e2e' },
} as const;

export type ConsumerName = keyof typeof CONSUMER_KEYS;

/**
 * Prices of the governance scenarios (USD per million tokens), high enough that a request of DEFAULT_USAGE (12
 * input + 8 output tokens) costs a visible amount: 12 * 100 + 8 * 400 = $0.0044 on gpt-4o-mini, 12 * 50 + 8 * 200
 * = $0.0022 on claude-3-5-haiku-20241022 (the Anthropic backend's upstream model).
 */
export const GOVERNANCE_PRICES = {
  'gpt-4o-mini': { input: 100, output: 400, cachedInput: 50 },
  'gpt-4o': { input: 250, output: 1000 },
  'claude-3-5-haiku-20241022': { input: 50, output: 200, cachedInput: 5 },
} as const;

/** The money budgets of governanceScenario, in US dollars per 30 days. */
export const GOVERNANCE_BUDGETS_USD = { 'team-a': 500, 'team-b': 0.01, 'team-c': 0.02 } as const;

/** The per-key token budget of governanceScenario's `keyed` route (tokens per hour). */
export const PER_KEY_TOKENS = 50;

/** The shadow-mode budget of shadowBudgetScenario, in US dollars per day per consumer. */
export const SHADOW_BUDGET_USD = 0.005;

/** A Secret holding API keys as a user (or External Secrets) creates it. */
function apiKeySecret(namespace: string, consumer: ConsumerName): KubeObject {
  const data = Object.fromEntries(
    Object.entries(CONSUMER_KEYS[consumer]).map(([clientId, key]) => [clientId, Buffer.from(key).toString('base64')]),
  );
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: `${consumer}-keys`, namespace },
    type: 'Opaque',
    data,
  };
}

function consumerOf(
  gateway: AIGateway,
  consumer: ConsumerName,
  props: { models?: ModelMatch[]; budgetUsd?: number } = {},
): Consumer {
  return new Consumer(gateway, consumer, {
    target: gateway,
    consumerId: consumer,
    keys: [ApiKey.fromSecret(`${consumer}-keys`, Object.keys(CONSUMER_KEYS[consumer]))],
    ...(props.models ? { models: props.models } : {}),
    ...(props.budgetUsd !== undefined
      ? {
          budgets: [{ limit: Money.usd(props.budgetUsd), per: RateLimitUnit.THIRTY_DAYS, name: `${consumer} monthly` }],
        }
      : {}),
  });
}

/** A gateway with API-key consumers and a price catalog; route `chat` serves the three priced models. */
function governedGateway(id: string, namespace: string) {
  const app = Testing.app();
  const chart = new Chart(app, id, { namespace });
  const gateway = new AIGateway(chart, 'Gateway', {
    name: GATEWAY.name,
    prices: PriceCatalog.of(GOVERNANCE_PRICES),
  });
  const providers = providerSet(chart);
  withRedis(chart);
  new AIRoute(chart, 'Chat', {
    name: 'chat',
    gateway,
    anthropicPathPrefix: '/anthropic/v1',
    rules: [
      { models: [ModelMatch.exact('gpt-4o-mini')], backends: [{ backend: providers.openai }] },
      { models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: providers.openai }] },
      {
        models: [ModelMatch.exact('claude-haiku')],
        backends: [{ backend: providers.anthropic, modelNameOverride: 'claude-3-5-haiku-20241022' }],
      },
    ],
  });
  return { chart, gateway, providers };
}

function governedScenario(name: string, namespace: string, chart: Chart): Scenario {
  return {
    name,
    objects: [
      ...objectsOf(chart),
      ...(Object.keys(CONSUMER_KEYS) as ConsumerName[]).map((consumer) => apiKeySecret(namespace, consumer)),
    ],
    backends: providerBackends(namespace),
    secrets: providerSecrets(namespace),
    gateway: { ...GATEWAY, namespace },
  };
}

/**
 * Consumers with API keys and money budgets per 30 days (GOVERNANCE_BUDGETS_USD): team-a ($500, may use
 * gpt-4o-mini and claude-haiku only), team-b ($0.01, every model) and team-c ($0.02), whose two keys also have a
 * per-key token budget on route `keyed` (`/keyed/v1`, gpt-4o-mini): a consumer budget and a key budget stacked.
 * team-d has neither a budget of its own nor a model list.
 */
export function governanceScenario(namespace: string): Scenario {
  const { chart, gateway, providers } = governedGateway('governance', namespace);
  const keyed = new AIRoute(chart, 'Keyed', {
    name: 'keyed',
    gateway,
    pathPrefix: '/keyed/v1',
    rules: [{ models: [ModelMatch.exact('gpt-4o-mini')], backends: [{ backend: providers.openai }] }],
  });
  consumerOf(gateway, 'team-a', {
    models: [ModelMatch.exact('gpt-4o-mini'), ModelMatch.exact('claude-haiku')],
    budgetUsd: GOVERNANCE_BUDGETS_USD['team-a'],
  });
  consumerOf(gateway, 'team-b', { budgetUsd: GOVERNANCE_BUDGETS_USD['team-b'] });
  consumerOf(gateway, 'team-c', { budgetUsd: GOVERNANCE_BUDGETS_USD['team-c'] });
  consumerOf(gateway, 'team-d');
  new TokenRateLimit(chart, 'PerKey', {
    target: keyed,
    limit: PER_KEY_TOKENS,
    per: RateLimitUnit.HOUR,
    cost: TokenCost.totalTokens(),
    client: ClientIdentity.apiKey(),
  });
  return governedScenario(`governance ${namespace}`, namespace, chart);
}

/**
 * The same consumers without budgets of their own, watched by a shadow-mode SpendLimit per consumer
 * (SHADOW_BUDGET_USD a day) that counts and blocks nothing.
 */
export function shadowBudgetScenario(namespace: string): Scenario {
  const { chart, gateway } = governedGateway('shadow', namespace);
  for (const consumer of Object.keys(CONSUMER_KEYS) as ConsumerName[]) consumerOf(gateway, consumer);
  new SpendLimit(chart, 'Watch', {
    target: gateway,
    limit: Money.usd(SHADOW_BUDGET_USD),
    per: RateLimitUnit.DAY,
    client: ClientIdentity.consumer(),
    shared: true,
    shadow: true,
  });
  return governedScenario(`shadow budget ${namespace}`, namespace, chart);
}

export const JWT_SETTINGS = {
  issuer: 'https://issuer.e2e.test',
  jwksUri: 'https://issuer.e2e.test/.well-known/jwks.json',
  audience: 'ai-gateway-e2e',
} as const;

/** JWT at the gateway, the `tenant` claim copied into `x-tenant-id`, a per-tenant budget keyed on it. */
export function jwtScenario(namespace: string, tenantTokens: number): Scenario {
  const app = Testing.app();
  const chart = new Chart(app, 'jwt', { namespace });
  const gateway = new AIGateway(chart, 'Gateway', {
    name: GATEWAY.name,
    jwt: {
      issuer: JWT_SETTINGS.issuer,
      jwksUri: JWT_SETTINGS.jwksUri,
      audiences: [JWT_SETTINGS.audience],
      claimToHeaders: { tenant: 'x-tenant-id' },
    },
  });
  const providers = providerSet(chart);
  withRedis(chart);
  new AIRoute(chart, 'Chat', {
    name: 'chat',
    gateway,
    rules: [{ models: [ModelMatch.prefix('gpt-')], backends: [{ backend: providers.openai }] }],
  });
  new TokenRateLimit(chart, 'TenantBudget', {
    target: gateway,
    limit: tenantTokens,
    per: RateLimitUnit.HOUR,
    cost: TokenCost.totalTokens(),
    client: ClientIdentity.header('x-tenant-id'),
    shared: true,
  });
  return {
    name: 'jwt',
    objects: objectsOf(chart),
    backends: providerBackends(namespace),
    secrets: providerSecrets(namespace),
    gateway: { ...GATEWAY, namespace },
  };
}

/** `examples/cdk8s/main.ts` as written; its Backends are played by the fakes. */
export function exampleScenario(): Scenario {
  const app = Testing.app();
  const { platform, team } = buildExample(app);
  return {
    name: 'example',
    objects: objectsOf(platform, team),
    backends: {
      'ai-platform/openai': 'openai',
      'ai-platform/anthropic': 'anthropic',
      'ai-platform/bedrock-us-east-1': 'bedrock',
    },
    secrets: {
      'ai-platform/openai-api-key/api-key': FAKE_CREDENTIALS.openaiKey,
      'ai-platform/anthropic-api-key/api-key': FAKE_CREDENTIALS.anthropicKey,
    },
    gateway: { namespace: 'ai-platform', name: 'ai-gateway', port: 80 },
  };
}

const BACKEND_HEADER = 'x-ai-gateway-backend';

interface RouteMatchJson {
  path?: { type?: string; value?: string };
  headers?: { name: string }[];
}

/**
 * The manifests as they were before issue 10: each backend rule matched only `{PathPrefix <endpoint prefix>,
 * backend header}` for the route's endpoint prefixes (those of its header-less catch-all rule). Built from the
 * current HTTPRoutes by dropping every other match of the backend rules (whatever shape the fix gave them).
 */
export function withoutCatchAllBackendMatches(scenario: Scenario): Scenario & { removedMatches: number } {
  let removed = 0;
  const objects = scenario.objects.map((object) => {
    if (object.kind !== 'HTTPRoute') return object;
    const copy = JSON.parse(JSON.stringify(object)) as { spec: { rules: { matches?: RouteMatchJson[] }[] } };
    const isBackendMatch = (match: RouteMatchJson) => (match.headers ?? []).some((h) => h.name === BACKEND_HEADER);
    const endpointPrefixes = new Set(
      copy.spec.rules.flatMap((rule) =>
        (rule.matches ?? [])
          .filter((match) => !isBackendMatch(match) && match.path?.type === 'PathPrefix')
          .map((match) => match.path!.value),
      ),
    );
    for (const rule of copy.spec.rules) {
      if (!rule.matches || !rule.matches.some(isBackendMatch)) continue;
      const kept = rule.matches.filter(
        (match) => match.path?.type === 'PathPrefix' && endpointPrefixes.has(match.path.value),
      );
      removed += rule.matches.length - kept.length;
      rule.matches = kept;
    }
    return copy;
  });
  return { ...scenario, name: `${scenario.name} (old manifests)`, objects, removedMatches: removed };
}

/**
 * A gateway whose processor config is too big for one ConfigMap even compressed: a route to the OpenAI fake beside
 * a route whose model override is 2 MB of random text (random bytes do not compress), so synth splits the config
 * over two ConfigMaps mounted as one projected volume.
 */
export function largeConfigScenario(): Scenario {
  const app = Testing.app();
  const { chart, gateway, providers } = gatewayChart(app, 'large-config');
  new AIRoute(chart, 'Chat', {
    name: 'chat',
    gateway,
    rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: providers.openai }] }],
  });
  new AIRoute(chart, 'Padding', {
    name: 'padding',
    gateway,
    rules: [
      {
        models: [ModelMatch.exact('padding-model')],
        backends: [{ backend: providers.groq, modelNameOverride: randomBytes(1_600_000).toString('base64') }],
      },
    ],
  });
  return {
    name: 'large-config',
    objects: [...objectsOf(chart), modelServerService(GATEWAY.namespace)],
    backends: providerBackends(GATEWAY.namespace),
    secrets: providerSecrets(GATEWAY.namespace),
    gateway: GATEWAY,
  };
}

/** The model of shared translation case 22 (priority failover with a model name override on the failing primary). */
export const CASE_22_MODEL = 'requested-model-is-very-long-yes';

/**
 * Fallback within one request. `groq` and `vllm` are played by servers the test controls (`fallbackServers`), `azure`
 * by an address nothing listens on; the fallbacks are the ordinary fakes. Every request carries `x-tenant-id`, and each
 * tenant has a budget of `tenantTokens` on the route.
 */
export function fallbackScenario(namespace: string, tenantTokens: number): Scenario {
  const app = Testing.app();
  const chart = new Chart(app, 'fallback', { namespace });
  // Breakers that never open here: each test's failures must meet the primary, not a breaker opened by the last test.
  const gateway = new AIGateway(chart, 'Gateway', {
    name: GATEWAY.name,
    processor: { circuitBreakerFailureThreshold: 10_000 },
  });
  const providers = providerSet(chart);
  withRedis(chart);
  const fallback = Fallback.onFailure();
  const route = new AIRoute(chart, 'Chat', {
    name: 'chat',
    gateway,
    anthropicPathPrefix: '/anthropic/v1',
    rules: [
      {
        // An OpenAI-schema primary that fails; Anthropic answers, translated both ways.
        models: [ModelMatch.exact('resilient-model')],
        backends: [
          { backend: providers.groq },
          { backend: providers.anthropic, priority: 1, modelNameOverride: 'claude-fallback' },
        ],
        fallback,
      },
      {
        // A primary Envoy cannot connect to.
        models: [ModelMatch.exact('refused-model')],
        backends: [{ backend: providers.azure }, { backend: providers.openai, priority: 1 }],
        fallback,
      },
      {
        // Every attempt fails.
        models: [ModelMatch.exact('doomed-model')],
        backends: [{ backend: providers.groq }, { backend: providers.vllm, priority: 1 }],
        fallback,
      },
      {
        models: [ModelMatch.exact(CASE_22_MODEL)],
        backends: [
          { backend: providers.groq, modelNameOverride: 'bad-model' },
          { backend: providers.vllm, priority: 1 },
        ],
        fallback,
      },
      {
        // The same failing primary without fallback: its error stands.
        models: [ModelMatch.exact('fragile-model')],
        backends: [{ backend: providers.groq }, { backend: providers.anthropic, priority: 1 }],
      },
    ],
  });
  new TokenRateLimit(chart, 'TenantBudget', {
    target: route,
    limit: tenantTokens,
    per: RateLimitUnit.HOUR,
    cost: TokenCost.totalTokens(),
    client: tenantHeader(),
  });
  return {
    name: 'fallback',
    objects: [...objectsOf(chart), modelServerService(namespace)],
    backends: providerBackends(namespace),
    secrets: providerSecrets(namespace),
    gateway: { ...GATEWAY, namespace },
  };
}
