/**
 * The processor configuration: the one contract between the constructs (which write it into the
 * `config.json` key of a ConfigMap at synth time) and the processor (which validates it at load).
 *
 * This module must stay free of Node-only or processor-only imports: the construct library compiles
 * it into its own package and validates every config it emits with `parseProcessorConfig`.
 */
import { z } from 'zod';
import { re2Problem } from './regex';

export const CONFIG_VERSION = 'ai-gateway.v1';

/** Envoy dynamic-metadata namespace the processor writes token counts into (Envoy AI Gateway's contract). */
export const METADATA_NAMESPACE = 'io.envoy.ai_gateway';

/** Header carrying the (original, client-facing) model name; set by the processor, matched by budgets. */
export const MODEL_HEADER = 'x-ai-eg-model';

/** Header carrying the chosen backend's name; set by the processor, matched by the HTTPRoute rules. */
export const BACKEND_HEADER = 'x-ai-gateway-backend';

/**
 * Header carrying the matched route's config name (`<namespace>/<name>`); set by the processor, matched by the
 * budgets of an AIGateway's single BackendTrafficPolicy (route budgets and per-route gateway budgets).
 */
export const ROUTE_HEADER = 'x-ai-gateway-route';

/** Metadata keys always written at the end of every response (Envoy AI Gateway's contract). */
export const TOKEN_METADATA_KEYS = {
  input: 'llm_input_token',
  output: 'llm_output_token',
  total: 'llm_total_token',
  cachedInput: 'llm_cached_input_token',
  reasoning: 'llm_reasoning_token',
} as const;

/** Variables available to CEL cost expressions. */
export const CEL_COST_VARIABLES = [
  'model',
  'backend',
  'input_tokens',
  'output_tokens',
  'total_tokens',
  'cached_input_tokens',
  'reasoning_tokens',
] as const;

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const METADATA_KEY = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const name = z.string().min(1).max(253).regex(DNS1123_SUBDOMAIN, 'must be a DNS-1123 subdomain');
const headerName = z.string().min(1).regex(HEADER_NAME, 'must be a lower-case HTTP header name');
const pathPrefix = z
  .string()
  .regex(/^\/[^?#\s]*$/, 'must start with "/" and contain no query, fragment or whitespace')
  .refine((p) => p === '/' || !p.endsWith('/'), 'must not end with "/" (except "/" itself)');

/** A credential file mounted by the processor at `<secrets-dir>/<secretName>/<key>`. */
export const secretKeyRefSchema = z
  .object({
    secretName: name,
    key: z.string().min(1).max(253).regex(SECRET_KEY, 'must be a valid Secret key'),
  })
  .strict();

/** The wire API a backend speaks; decides request/response translation. */
export const backendSchemaSchema = z.discriminatedUnion('name', [
  /** OpenAI and OpenAI-compatible servers (vLLM, Groq, Mistral, ...). `pathPrefix` replaces the route's API prefix. */
  z.object({ name: z.literal('OpenAI'), pathPrefix }).strict(),
  /** `/openai/deployments/{model}/...?api-version=` */
  z.object({ name: z.literal('AzureOpenAI'), apiVersion: z.string().min(1) }).strict(),
  /** Anthropic Messages API; `version` is sent as `anthropic-version`. */
  z.object({ name: z.literal('Anthropic'), version: z.string().min(1) }).strict(),
  /** AWS Bedrock Converse / ConverseStream. */
  z.object({ name: z.literal('AWSBedrock') }).strict(),
  /** Anthropic bodies on Bedrock InvokeModel(WithResponseStream); `anthropicVersion` goes in the body. */
  z.object({ name: z.literal('AWSAnthropic'), anthropicVersion: z.string().min(1) }).strict(),
  /** Vertex AI Gemini generateContent / streamGenerateContent. */
  z.object({ name: z.literal('GCPVertexAI'), projectId: z.string().min(1), region: z.string().min(1) }).strict(),
  /** Anthropic on Vertex AI rawPredict / streamRawPredict. */
  z
    .object({
      name: z.literal('GCPAnthropic'),
      projectId: z.string().min(1),
      region: z.string().min(1),
      anthropicVersion: z.string().min(1),
    })
    .strict(),
]);

/** How the processor authenticates to a backend. Credentials are only ever file references. */
export const backendAuthSchema = z.discriminatedUnion('type', [
  /** A static API key; the header follows the schema (OpenAI: `Authorization: Bearer`, Anthropic: `x-api-key`, Azure: `api-key`). */
  z.object({ type: z.literal('APIKey'), secret: secretKeyRefSchema }).strict(),
  /** `Authorization: Bearer <file content>`, for tokens refreshed by something else (e.g. a sidecar). */
  z.object({ type: z.literal('BearerToken'), secret: secretKeyRefSchema }).strict(),
  /** AWS SigV4 (service `bedrock`). */
  z
    .object({
      type: z.literal('AWSSigV4'),
      region: z.string().min(1),
      credentials: z.discriminatedUnion('source', [
        /** An AWS shared-credentials file (INI) in a Secret key. */
        z.object({ source: z.literal('Secret'), secret: secretKeyRefSchema, profile: z.string().min(1) }).strict(),
        /** The AWS default chain: env, IRSA web identity, EKS pod identity, instance metadata. */
        z.object({ source: z.literal('DefaultChain') }).strict(),
      ]),
      /**
       * Accept per-request credentials in `x-aigw-aws-access-key-id`, `x-aigw-aws-secret-access-key`,
       * `x-aigw-aws-session-token` (always stripped before upstream); fall back to `credentials`.
       */
      perRequestCredentials: z.boolean(),
    })
    .strict(),
  /** GCP OAuth2 access tokens (scope cloud-platform), refreshed before expiry. */
  z
    .object({
      type: z.literal('GCP'),
      credentials: z.discriminatedUnion('source', [
        /** A service-account JSON key in a Secret key. */
        z.object({ source: z.literal('ServiceAccountKey'), secret: secretKeyRefSchema }).strict(),
        /** Application default credentials, e.g. GKE workload identity. */
        z.object({ source: z.literal('WorkloadIdentity') }).strict(),
      ]),
    })
    .strict(),
  /** Azure Entra ID client-credentials flow (scope `https://cognitiveservices.azure.com/.default`). */
  z
    .object({
      type: z.literal('AzureEntra'),
      tenantId: z.string().min(1),
      clientId: z.string().min(1),
      clientSecret: secretKeyRefSchema,
    })
    .strict(),
]);

export const headerMutationSchema = z
  .object({
    set: z.array(z.object({ name: headerName, value: z.string() }).strict()),
    remove: z.array(headerName),
  })
  .strict();

/** Top-level JSON body keys to set (value is JSON text) or remove, applied after translation. */
export const bodyMutationSchema = z
  .object({
    set: z.array(
      z
        .object({
          path: z.string().min(1),
          value: z.string().refine(isJsonText, 'must be JSON text, e.g. "0.5" or "\\"text\\""'),
        })
        .strict(),
    ),
    remove: z.array(z.string().min(1)),
  })
  .strict();

export const backendConfigSchema = z
  .object({
    /** Unique per processor; the value of `x-ai-gateway-backend` that the HTTPRoute matches. */
    name,
    schema: backendSchemaSchema,
    /** Where Envoy sends the request; the processor needs the hostname to sign requests. */
    endpoint: z
      .object({
        hostname: z.string().min(1),
        port: z.number().int().min(1).max(65535),
        tls: z.boolean(),
      })
      .strict(),
    auth: backendAuthSchema.optional(),
    headerMutation: headerMutationSchema.optional(),
    bodyMutation: bodyMutationSchema.optional(),
  })
  .strict();

export const modelMatchSchema = z
  .object({
    type: z.enum(['Exact', 'Prefix', 'RegularExpression']),
    value: z.string().min(1),
  })
  .strict();

export const backendRefSchema = z
  .object({
    backend: name,
    /** Share of traffic among refs of the same priority. */
    weight: z.number().int().min(0),
    /** 0 is tried first; higher priorities take traffic while all lower ones are failing. */
    priority: z.number().int().min(0),
    /** Model name sent upstream instead of the client's. */
    modelNameOverride: z.string().min(1).optional(),
  })
  .strict();

export const routeRuleSchema = z
  .object({
    models: z.array(modelMatchSchema).min(1),
    backends: z.array(backendRefSchema).min(1),
  })
  .strict();

/** A client-facing API mounted under a path prefix. */
export const routeEndpointSchema = z
  .object({
    /** `OpenAI`: `<prefix>/chat/completions`, `/completions`, `/embeddings`, `/models`, other paths passed through. `Anthropic`: `<prefix>/messages`, `<prefix>/messages/count_tokens`. */
    api: z.enum(['OpenAI', 'Anthropic']),
    pathPrefix,
  })
  .strict();

export const routeConfigSchema = z
  .object({
    /** `<namespace>/<name>` of the AIRoute, for logs and metrics. */
    name: z.string().min(1),
    endpoints: z.array(routeEndpointSchema).min(1),
    /** Empty: any host. Lower-case; entries may start with `*.`. */
    hostnames: z.array(z.string().regex(/^(\*\.)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a lower-case host name, optionally starting with "*."')),
    rules: z.array(routeRuleSchema).min(1),
    /** Headers a request must carry (per-client budgets key on them); missing ones are answered 400. */
    requiredHeaders: z.array(headerName),
  })
  .strict();

export const costSchema = z
  .object({
    /** Written into `io.envoy.ai_gateway` metadata; budgets read their cost from it. */
    metadataKey: z.string().regex(METADATA_KEY, 'must be a metadata key like "llm_total_token"'),
    type: z.enum(['InputToken', 'OutputToken', 'TotalToken', 'CachedInputToken', 'ReasoningToken', 'CEL']),
    /** Only for `CEL`: over `model`, `backend`, `input_tokens`, `output_tokens`, `total_tokens`, `cached_input_tokens`, `reasoning_tokens`. */
    expression: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((cost, ctx) => {
    if (cost.type === 'CEL' && cost.expression === undefined) {
      ctx.addIssue({ code: 'custom', path: ['expression'], message: 'is required when type is "CEL"' });
    }
    if (cost.type !== 'CEL' && cost.expression !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['expression'], message: `is only allowed when type is "CEL", not "${cost.type}"` });
    }
  });

export const processorConfigSchema = z
  .object({
    version: z.literal(CONFIG_VERSION),
    /** Requests with larger bodies are answered 413. */
    maxRequestBodyBytes: z.number().int().positive(),
    backends: z.array(backendConfigSchema),
    routes: z.array(routeConfigSchema),
    /** Extra metadata values computed per response. Any entry makes streaming OpenAI-schema requests ask for usage. */
    costs: z.array(costSchema),
    /** Failover: a backend is skipped after `failureThreshold` consecutive failures, for `openDurationMs`, then probed. */
    circuitBreaker: z
      .object({
        failureThreshold: z.number().int().min(1),
        openDurationMs: z.number().int().min(1),
      })
      .strict(),
  })
  .strict()
  .superRefine((config, ctx) => {
    const backendNames = new Set<string>();
    config.backends.forEach((backend, i) => {
      if (backendNames.has(backend.name)) {
        ctx.addIssue({ code: 'custom', path: ['backends', i, 'name'], message: `duplicate backend name "${backend.name}"` });
      }
      backendNames.add(backend.name);
    });
    config.routes.forEach((route, r) => {
      route.rules.forEach((rule, i) => {
        rule.models.forEach((match, m) => {
          const problem = match.type === 'RegularExpression' ? re2Problem(match.value) : undefined;
          if (problem !== undefined) {
            ctx.addIssue({
              code: 'custom',
              path: ['routes', r, 'rules', i, 'models', m, 'value'],
              message: `route "${route.name}" rule ${i}: regular expression ${JSON.stringify(match.value)} is not valid RE2 (${problem})`,
            });
          }
        });
        rule.backends.forEach((ref, b) => {
          if (!backendNames.has(ref.backend)) {
            ctx.addIssue({
              code: 'custom',
              path: ['routes', r, 'rules', i, 'backends', b, 'backend'],
              message: `unknown backend "${ref.backend}"`,
            });
          }
        });
        if (rule.backends.every((ref) => ref.weight === 0)) {
          ctx.addIssue({ code: 'custom', path: ['routes', r, 'rules', i, 'backends'], message: 'all weights are 0' });
        }
      });
    });
    const costKeys = new Set<string>();
    config.costs.forEach((cost, i) => {
      if (costKeys.has(cost.metadataKey)) {
        ctx.addIssue({ code: 'custom', path: ['costs', i, 'metadataKey'], message: `duplicate cost key "${cost.metadataKey}"` });
      }
      costKeys.add(cost.metadataKey);
    });
  });

export type ProcessorConfig = z.infer<typeof processorConfigSchema>;
export type BackendConfig = z.infer<typeof backendConfigSchema>;
export type BackendSchema = z.infer<typeof backendSchemaSchema>;
export type BackendAuth = z.infer<typeof backendAuthSchema>;
export type SecretKeyRef = z.infer<typeof secretKeyRefSchema>;
export type HeaderMutation = z.infer<typeof headerMutationSchema>;
export type BodyMutation = z.infer<typeof bodyMutationSchema>;
export type RouteConfig = z.infer<typeof routeConfigSchema>;
export type RouteRule = z.infer<typeof routeRuleSchema>;
export type RouteEndpoint = z.infer<typeof routeEndpointSchema>;
export type ModelMatch = z.infer<typeof modelMatchSchema>;
export type BackendRef = z.infer<typeof backendRefSchema>;
export type CostConfig = z.infer<typeof costSchema>;

export class ProcessorConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid processor config:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ProcessorConfigError';
  }
}

/** Validates a parsed config document; throws ProcessorConfigError naming every problem by path. */
export function parseProcessorConfig(document: unknown): ProcessorConfig {
  const result = processorConfigSchema.safeParse(document);
  if (result.success) return result.data;
  throw new ProcessorConfigError(
    result.error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`),
  );
}

function isJsonText(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
