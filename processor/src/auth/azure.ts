/**
 * Azure Entra ID client-credentials tokens for Azure OpenAI (scope
 * `https://cognitiveservices.azure.com/.default`), cached and refreshed five minutes before expiry;
 * concurrent requests share one token request.
 */
import type { BackendAuth } from '../config/schema';
import type { HeaderChanges } from '../translate/types';
import type { AuthFactory, BackendAuthenticator } from './index';

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
    this.pending ??= this.fetchToken(secret, now).finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async fetchToken(secret: string, now: number): Promise<string> {
    const { tenantId, clientId } = this.options;
    const url = `${this.options.authority ?? AZURE_AUTHORITY}/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`;
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret, scope: AZURE_SCOPE });
    let response: Response;
    try {
      response = await (this.options.fetchImpl ?? fetch)(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      });
    } catch (error) {
      throw new AzureAuthError(`Azure Entra token request for tenant ${tenantId} failed: ${(error as Error).name}`);
    }
    const body = (await response.json().catch(() => ({}))) as { access_token?: unknown; expires_in?: unknown; error?: unknown };
    if (!response.ok || typeof body.access_token !== 'string') {
      const code = typeof body.error === 'string' ? body.error : 'no token in response';
      throw new AzureAuthError(`Azure Entra token request for tenant ${tenantId}, client ${clientId} failed: HTTP ${response.status} ${code}`);
    }
    const lifetimeMs = (typeof body.expires_in === 'number' ? body.expires_in : Number(body.expires_in) || 3600) * 1000;
    this.token = { value: body.access_token, refreshAt: now + Math.max(0, lifetimeMs - REFRESH_MARGIN_MS), secret };
    return body.access_token;
  }
}

export const azureEntraAuth: AuthFactory<AzureEntraAuth> = (auth, _backend, secrets): BackendAuthenticator => {
  const source = new AzureEntraTokenSource({
    tenantId: auth.tenantId,
    clientId: auth.clientId,
    clientSecret: () => secrets.read(auth.clientSecret),
  });
  return {
    apply: async (): Promise<HeaderChanges> => ({ setHeaders: { authorization: `Bearer ${await source.get()}` }, removeHeaders: ['api-key'] }),
  };
};
