import type { BackendAuth, BackendConfig, SecretKeyRef } from '@ai-gateway-constructs/processor-config';
import type { HeaderChanges } from '../translate/types';
import type { AuthFactory, BackendAuthenticator } from './index';
import { SecretUnavailableError, type SecretReader } from './secrets';

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

/** CR, LF, NUL and other control characters (tab aside) cannot be part of a header value. */
function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/**
 * The same changes for every request while the credential stays the same (the reader caches the file). The
 * reader refuses an empty file; a value that cannot travel in a header (a line break inside) is refused here.
 */
function staticCredential(
  secrets: SecretReader,
  ref: SecretKeyRef,
  headers: (credential: string) => Record<string, string>,
): BackendAuthenticator {
  let credential: string | undefined;
  let changes: HeaderChanges | undefined;
  const fixed = (): HeaderChanges => {
    const current = secrets.read(ref);
    if (changes === undefined || current !== credential) {
      if (hasControlCharacter(current))
        throw new SecretUnavailableError(
          ref,
          'contains a line break or control character, which a header cannot carry',
        );
      credential = current;
      changes = { setHeaders: headers(current), removeHeaders: [], repeatable: true };
    }
    return changes;
  };
  return { apply: fixed, fixed, check: () => void fixed() };
}

export const apiKeyAuth: AuthFactory<ApiKeyAuth> = (auth, backend, secrets): BackendAuthenticator =>
  staticCredential(secrets, auth.secret, (key) => apiKeyHeader(backend, key));

export const bearerTokenAuth: AuthFactory<BearerAuth> = (auth, _backend, secrets): BackendAuthenticator =>
  staticCredential(secrets, auth.secret, (token) => ({ authorization: `Bearer ${token}` }));
