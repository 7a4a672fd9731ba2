/**
 * Azure Entra ID client-credentials tokens for Azure OpenAI (scope
 * `https://cognitiveservices.azure.com/.default`), cached and refreshed five minutes before expiry;
 * concurrent requests share one token request. That request is aborted after CREDENTIAL_TIMEOUT_MS, which
 * ends every request waiting on it; the next request starts a new one.
 */
import type { BackendAuth } from '@ai-gateway-constructs/processor-config';
import type { HeaderChanges } from '../translate/types';
import type { AuthFactory, BackendAuthenticator } from './index';
import { CREDENTIAL_TIMEOUT_MS, withTimeout } from './timeout';

export const AZURE_SCOPE = 'https://cognitiveservices.azure.com/.default';
export const AZURE_AUTHORITY = 'https://login.microsoftonline.com';
const REFRESH_MARGIN_MS = 5 * 60 * 1000;

type AzureEntraAuth = Extract<BackendAuth, { type: 'AzureEntra' }>;

export class AzureAuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AzureAuthError';
  }
}

export interface AzureTokenOptions {
  tenantId: string;
  clientId: string;
  clientSecret: () => string;
  authority?: string;
  fetchImpl?: typeof fetch;
  now?: () => number;
  /** Bound of one token request, response body included (default CREDENTIAL_TIMEOUT_MS). */
  timeoutMs?: number;
}

/** A cached client-credentials token. */
export class AzureEntraTokenSource {
  private token: { value: string; refreshAt: number; secret: string } | undefined;
  private pending: Promise<string> | undefined;

  constructor(private readonly options: AzureTokenOptions) {}

  async get(): Promise<string> {
    const now = (this.options.now ?? Date.now)();
    const secret = this.options.clientSecret();
    if (this.token && this.token.secret === secret && now < this.token.refreshAt) return this.token.value;
    if (this.pending === undefined) {
      const timeoutMs = this.options.timeoutMs ?? CREDENTIAL_TIMEOUT_MS;
      const abort = new AbortController();
      const pending = withTimeout(
        this.fetchToken(secret, now, abort.signal),
        timeoutMs,
        `Azure Entra token endpoint for tenant ${this.options.tenantId}`,
        () => abort.abort(),
      ).finally(() => {
        if (this.pending === pending) this.pending = undefined;
      });
      this.pending = pending;
    }
    return this.pending;
  }

  private async fetchToken(secret: string, now: number, signal: AbortSignal): Promise<string> {
    const { tenantId, clientId } = this.options;
    const url = `${this.options.authority ?? AZURE_AUTHORITY}/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`;
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: secret,
      scope: AZURE_SCOPE,
    });
    let response: Response;
    try {
      response = await (this.options.fetchImpl ?? fetch)(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
        signal,
      });
    } catch (error) {
      throw new AzureAuthError(`Azure Entra token request for tenant ${tenantId} failed: ${(error as Error).name}`);
    }
    const body = (await response.json().catch(() => ({}))) as {
      access_token?: unknown;
      expires_in?: unknown;
      error?: unknown;
    };
    if (!response.ok || typeof body.access_token !== 'string' || body.access_token === '') {
      const code = typeof body.error === 'string' ? body.error : 'no token in response';
      throw new AzureAuthError(
        `Azure Entra token request for tenant ${tenantId}, client ${clientId} failed: HTTP ${response.status} ${code}`,
      );
    }
    const lifetimeMs = (typeof body.expires_in === 'number' ? body.expires_in : Number(body.expires_in) || 3600) * 1000;
    this.token = { value: body.access_token, refreshAt: now + Math.max(0, lifetimeMs - REFRESH_MARGIN_MS), secret };
    return body.access_token;
  }
}

/** The Azure Entra factory with token-source options chosen (`azureEntraAuth` uses the defaults). */
export function azureEntraAuthWith(
  options: Pick<AzureTokenOptions, 'authority' | 'fetchImpl' | 'timeoutMs'> = {},
): AuthFactory<AzureEntraAuth> {
  return (auth, _backend, secrets) => createAzureEntraAuth(auth, secrets, options);
}

export const azureEntraAuth: AuthFactory<AzureEntraAuth> = (auth, _backend, secrets): BackendAuthenticator =>
  createAzureEntraAuth(auth, secrets, {});

function createAzureEntraAuth(
  auth: AzureEntraAuth,
  secrets: Parameters<AuthFactory>[2],
  options: Pick<AzureTokenOptions, 'authority' | 'fetchImpl' | 'timeoutMs'>,
): BackendAuthenticator {
  const source = new AzureEntraTokenSource({
    ...options,
    tenantId: auth.tenantId,
    clientId: auth.clientId,
    clientSecret: () => secrets.read(auth.clientSecret),
  });
  return {
    // The client secret is there and non-empty (the token itself is fetched).
    check: () => void secrets.read(auth.clientSecret),
    apply: async (): Promise<HeaderChanges> => ({
      setHeaders: { authorization: `Bearer ${await source.get()}` },
      removeHeaders: ['api-key'],
    }),
  };
}
