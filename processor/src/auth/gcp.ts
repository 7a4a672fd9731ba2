/**
 * GCP OAuth2 access tokens (scope cloud-platform) for Vertex AI, from a service-account key Secret or from
 * application default credentials (GKE workload identity). google-auth-library caches each token and
 * refreshes it before expiry; concurrent requests share one refresh. Every wait for a token is bounded
 * (CREDENTIAL_TIMEOUT_MS); a timed-out refresh drops its client, so the next request starts a fresh one
 * instead of joining the stuck refresh.
 */
import { GoogleAuth, JWT } from 'google-auth-library';
import type { BackendAuth, SecretKeyRef } from '@ai-gateway-constructs/processor-config';
import type { HeaderChanges } from '../translate/types';
import type { AuthFactory, BackendAuthenticator } from './index';
import { CREDENTIAL_TIMEOUT_MS, withTimeout } from './timeout';

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

export interface ServiceAccountKey {
  clientEmail: string;
  privateKey: string;
  privateKeyId: string | undefined;
}

/**
 * The parts of a service-account key (JSON text) a token needs; throws when it is not JSON or lacks (or has an
 * empty) `client_email` or `private_key`. Errors name the Secret, never its content.
 */
export function parseServiceAccountKey(keyJson: string, ref: SecretKeyRef): ServiceAccountKey {
  let key: { client_email?: unknown; private_key?: unknown; private_key_id?: unknown } | null;
  try {
    key = JSON.parse(keyJson) as typeof key;
  } catch {
    throw new GcpAuthError(`GCP service-account key ${ref.secretName}/${ref.key} is not valid JSON`);
  }
  const usable = (value: unknown): value is string => typeof value === 'string' && value.trim() !== '';
  if (typeof key !== 'object' || key === null || !usable(key.client_email) || !usable(key.private_key)) {
    throw new GcpAuthError(`GCP service-account key ${ref.secretName}/${ref.key} lacks client_email or private_key`);
  }
  return {
    clientEmail: key.client_email,
    privateKey: key.private_key,
    privateKeyId: typeof key.private_key_id === 'string' ? key.private_key_id : undefined,
  };
}

/** A JWT client for a service-account key (JSON text). Errors name the Secret, never its content. */
export function serviceAccountClient(
  keyJson: string,
  ref: SecretKeyRef,
  timeoutMs = CREDENTIAL_TIMEOUT_MS,
): AccessTokenClient {
  const key = parseServiceAccountKey(keyJson, ref);
  return new JWT({
    email: key.clientEmail,
    key: key.privateKey,
    keyId: key.privateKeyId,
    scopes: [GCP_SCOPE],
    // The token request itself gives up too (frees its socket); withTimeout below bounds the wait either way.
    transporterOptions: { timeout: timeoutMs },
  });
}

export function workloadIdentityClient(timeoutMs = CREDENTIAL_TIMEOUT_MS): AccessTokenClient {
  const auth = new GoogleAuth({ scopes: [GCP_SCOPE], clientOptions: { transporterOptions: { timeout: timeoutMs } } });
  return { getAccessToken: async () => ({ token: await auth.getAccessToken() }) };
}

/**
 * A bearer header from the client's (cached) token. Waits at most `timeoutMs`, also when joining a refresh
 * another request started; `onTimeout` runs when the wait times out.
 */
export async function bearerFrom(
  client: AccessTokenClient,
  what: string,
  timeoutMs = CREDENTIAL_TIMEOUT_MS,
  onTimeout?: () => void,
): Promise<HeaderChanges> {
  let token: string | null | undefined;
  try {
    token = (await withTimeout(client.getAccessToken(), timeoutMs, 'the GCP token endpoint', onTimeout)).token;
  } catch (error) {
    throw new GcpAuthError(`could not obtain a GCP access token (${what}): ${(error as Error).name}`);
  }
  if (!token) throw new GcpAuthError(`could not obtain a GCP access token (${what}): empty token`);
  return { setHeaders: { authorization: `Bearer ${token}` }, removeHeaders: [] };
}

export interface GcpAuthOptions {
  /** Bound of every token wait (default CREDENTIAL_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Client factories (tests). */
  serviceAccountClient?: (keyJson: string, ref: SecretKeyRef, timeoutMs: number) => AccessTokenClient;
  workloadIdentityClient?: (timeoutMs: number) => AccessTokenClient;
}

/** The GCP factory with its timeout and clients chosen (`gcpAuth` uses the defaults). */
export function gcpAuthWith(options: GcpAuthOptions = {}): AuthFactory<GcpAuth> {
  const timeoutMs = options.timeoutMs ?? CREDENTIAL_TIMEOUT_MS;
  const keyClient = options.serviceAccountClient ?? serviceAccountClient;
  const adcClient = options.workloadIdentityClient ?? workloadIdentityClient;
  return (auth, _backend, secrets): BackendAuthenticator => {
    const credentials = auth.credentials;
    if (credentials.source === 'WorkloadIdentity') {
      let client: AccessTokenClient | undefined;
      return {
        apply: () => {
          const used = (client ??= adcClient(timeoutMs));
          // A stuck refresh stays shared inside its client: drop that client so the next request starts afresh.
          return bearerFrom(used, 'workload identity', timeoutMs, () => {
            if (client === used) client = undefined;
          });
        },
      };
    }
    // One client per key content: a rotated Secret (new content) gets a fresh client, and so does a timed-out one.
    let current: { keyJson: string; client: AccessTokenClient } | undefined;
    return {
      // The key file is there, non-empty, and names an account and its private key (the token itself is fetched).
      check: () => void parseServiceAccountKey(secrets.read(credentials.secret), credentials.secret),
      apply: () => {
        const keyJson = secrets.read(credentials.secret);
        if (current?.keyJson !== keyJson)
          current = { keyJson, client: keyClient(keyJson, credentials.secret, timeoutMs) };
        const used = current;
        return bearerFrom(
          used.client,
          `service account ${credentials.secret.secretName}/${credentials.secret.key}`,
          timeoutMs,
          () => {
            if (current === used) current = undefined;
          },
        );
      },
    };
  };
}

export const gcpAuth: AuthFactory<GcpAuth> = gcpAuthWith();
