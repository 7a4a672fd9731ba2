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

/** The same changes for every request while the credential stays the same (the reader caches the file). */
function staticCredential(read: () => string, headers: (credential: string) => Record<string, string>): BackendAuthenticator {
  let credential: string | undefined;
  let changes: HeaderChanges | undefined;
  const fixed = (): HeaderChanges => {
    const current = read();
    if (changes === undefined || current !== credential) {
      credential = current;
      changes = { setHeaders: headers(current), removeHeaders: [], repeatable: true };
    }
    return changes;
  };
  return { apply: fixed, fixed };
}

export const apiKeyAuth: AuthFactory<ApiKeyAuth> = (auth, backend, secrets): BackendAuthenticator =>
  staticCredential(() => secrets.read(auth.secret), (key) => apiKeyHeader(backend, key));

export const bearerTokenAuth: AuthFactory<BearerAuth> = (auth, _backend, secrets: SecretReader): BackendAuthenticator =>
  staticCredential(() => secrets.read(auth.secret), (token) => ({ authorization: `Bearer ${token}` }));
