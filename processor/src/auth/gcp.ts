/**
 * GCP OAuth2 access tokens (scope cloud-platform) for Vertex AI, from a service-account key Secret or from
 * application default credentials (GKE workload identity). google-auth-library caches each token and
 * refreshes it before expiry; concurrent requests share one refresh.
 */
import { GoogleAuth, JWT } from 'google-auth-library';
import type { BackendAuth, SecretKeyRef } from '../config/schema';
import type { HeaderChanges } from '../translate/types';
import type { AuthFactory, BackendAuthenticator } from './index';

export const GCP_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

type GcpAuth = Extract<BackendAuth, { type: 'GCP' }>;

/** The part of a google-auth-library client used here. */
export interface AccessTokenClient {
  getAccessToken(): Promise<{ token?: string | null }>;
}

export class GcpAuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GcpAuthError';
  }
}

/** A JWT client for a service-account key (JSON text). Errors name the Secret, never its content. */
export function serviceAccountClient(keyJson: string, ref: SecretKeyRef): AccessTokenClient {
  let key: { client_email?: unknown; private_key?: unknown; private_key_id?: unknown };
  try {
    key = JSON.parse(keyJson) as typeof key;
  } catch {
    throw new GcpAuthError(`GCP service-account key ${ref.secretName}/${ref.key} is not valid JSON`);
  }
  if (typeof key.client_email !== 'string' || typeof key.private_key !== 'string') {
    throw new GcpAuthError(`GCP service-account key ${ref.secretName}/${ref.key} lacks client_email or private_key`);
  }
  return new JWT({
    email: key.client_email,
    key: key.private_key,
    keyId: typeof key.private_key_id === 'string' ? key.private_key_id : undefined,
    scopes: [GCP_SCOPE],
  });
}

export function workloadIdentityClient(): AccessTokenClient {
  const auth = new GoogleAuth({ scopes: [GCP_SCOPE] });
  return { getAccessToken: async () => ({ token: await auth.getAccessToken() }) };
}

export async function bearerFrom(client: AccessTokenClient, what: string): Promise<HeaderChanges> {
  let token: string | null | undefined;
  try {
    token = (await client.getAccessToken()).token;
  } catch (error) {
    throw new GcpAuthError(`could not obtain a GCP access token (${what}): ${(error as Error).name}`);
  }
  if (!token) throw new GcpAuthError(`could not obtain a GCP access token (${what}): empty token`);
  return { setHeaders: { authorization: `Bearer ${token}` }, removeHeaders: [] };
}

export const gcpAuth: AuthFactory<GcpAuth> = (auth, _backend, secrets): BackendAuthenticator => {
  const credentials = auth.credentials;
  if (credentials.source === 'WorkloadIdentity') {
    const client = workloadIdentityClient();
    return { apply: () => bearerFrom(client, 'workload identity') };
  }
  // One client per key content: a rotated Secret (new content) gets a fresh client.
  let current: { keyJson: string; client: AccessTokenClient } | undefined;
  return {
    apply: () => {
      const keyJson = secrets.read(credentials.secret);
      if (current?.keyJson !== keyJson) current = { keyJson, client: serviceAccountClient(keyJson, credentials.secret) };
      return bearerFrom(current.client, `service account ${credentials.secret.secretName}/${credentials.secret.key}`);
    },
  };
};
