/**
 * Backend configs and rules the SDK tests route to one fake provider with: the credentials name test Secrets
 * (processor-harness writes them), so each test states only which backends it needs.
 */
import type { BackendConfig } from '@ai-gateway-constructs/processor-config';

export type TestEndpoint = BackendConfig['endpoint'];

/** SigV4 with the test Secret `aws`/`credentials` (profile `default`), signed for `region`. */
export function sigV4Auth(region = 'us-west-2'): BackendConfig['auth'] {
  return {
    type: 'AWSSigV4',
    region,
    credentials: { source: 'Secret', secret: { secretName: 'aws', key: 'credentials' }, profile: 'default' },
    perRequestCredentials: false,
  };
}

/** A bearer token from the test Secret `gcp`/`token`, as Vertex AI takes. */
export const GCP_TOKEN_AUTH: BackendConfig['auth'] = {
  type: 'BearerToken',
  secret: { secretName: 'gcp', key: 'token' },
};

export function anthropicBackend(endpoint: TestEndpoint, name = 'anthropic'): BackendConfig {
  return {
    name,
    schema: { name: 'Anthropic', version: '2023-06-01' },
    endpoint,
    auth: { type: 'APIKey', secret: { secretName: 'anthropic', key: 'key' } },
  };
}

export function bedrockBackend(endpoint: TestEndpoint, name = 'bedrock', region = 'us-west-2'): BackendConfig {
  return { name, schema: { name: 'AWSBedrock' }, endpoint, auth: sigV4Auth(region) };
}

export function bedrockInvokeBackend(
  endpoint: TestEndpoint,
  name = 'bedrock-invoke',
  region = 'us-west-2',
): BackendConfig {
  return {
    name,
    schema: { name: 'AWSAnthropic', anthropicVersion: 'bedrock-2023-05-31' },
    endpoint,
    auth: sigV4Auth(region),
  };
}

export function vertexBackend(endpoint: TestEndpoint, name = 'vertex'): BackendConfig {
  return {
    name,
    schema: { name: 'GCPVertexAI', projectId: 'proj', region: 'europe-west4' },
    endpoint,
    auth: GCP_TOKEN_AUTH,
  };
}

/** A rule sending every model that starts with `prefix` to `backend`. */
export function prefixRule(prefix: string, backend: string) {
  return {
    models: [{ type: 'Prefix' as const, value: prefix }],
    backends: [{ backend, weight: 1, priority: 0 }],
  };
}
