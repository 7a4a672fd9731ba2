import type { BackendAuth, BackendConfig } from '../config/schema';
import type { HeaderChanges } from '../translate/types';
import type { AuthFactory, BackendAuthenticator } from './index';
import type { SecretReader } from './secrets';

type ApiKeyAuth = Extract<BackendAuth, { type: 'APIKey' }>;
type BearerAuth = Extract<BackendAuth, { type: 'BearerToken' }>;

/** The header an API key travels in, by backend schema. */
export function apiKeyHeader(backend: BackendConfig, key: string): Record<string, string> {
  switch (backend.schema.name) {
    case 'Anthropic':
      return { 'x-api-key': key };
    case 'AzureOpenAI':
      return { 'api-key': key };
    default:
      return { authorization: `Bearer ${key}` };
  }
}

export const apiKeyAuth: AuthFactory<ApiKeyAuth> = (auth, backend, secrets): BackendAuthenticator => ({
  apply: (): HeaderChanges => ({ setHeaders: apiKeyHeader(backend, secrets.read(auth.secret)), removeHeaders: [] }),
});

export const bearerTokenAuth: AuthFactory<BearerAuth> = (auth, _backend, secrets: SecretReader): BackendAuthenticator => ({
  apply: (): HeaderChanges => ({ setHeaders: { authorization: `Bearer ${secrets.read(auth.secret)}` }, removeHeaders: [] }),
});
