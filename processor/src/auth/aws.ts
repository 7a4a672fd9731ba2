/**
 * AWS credentials for SigV4: a shared-credentials (INI) file from a Secret, the AWS default chain
 * (env, IRSA web identity, EKS pod identity, instance metadata), or per-request headers.
 * Nothing here ever puts key material into an error message.
 */
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import type { BackendAuth } from '@ai-gateway-constructs/processor-config';
import type { HeaderChanges } from '../translate/types';
import type { AuthFactory, AuthRequest, BackendAuthenticator } from './index';
import { AwsCredentials, AwsSigningError, signAwsRequest, signAwsRequestSync, type SignedHeaders } from './sigv4';
import { CREDENTIAL_TIMEOUT_MS, withTimeout } from './timeout';

import { PER_REQUEST_CREDENTIAL_HEADER_NAMES, PER_REQUEST_CREDENTIAL_HEADERS } from './headers';

export { PER_REQUEST_CREDENTIAL_HEADER_NAMES, PER_REQUEST_CREDENTIAL_HEADERS };

/** Bedrock's signing name. */
export const BEDROCK_SERVICE = 'bedrock';

/** Parses an AWS shared-credentials file and returns one profile. */
export function parseSharedCredentials(text: string, profile: string): AwsCredentials {
  let section: string | undefined;
  const values: Record<string, string> = {};
  let found = false;
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[') && line.endsWith(']')) {
      section = line
        .slice(1, -1)
        .trim()
        .replace(/^profile\s+/, '');
      if (section === profile) found = true;
      continue;
    }
    if (section !== profile) continue;
    const eq = line.indexOf('=');
    if (eq === -1) continue;
    values[line.slice(0, eq).trim().toLowerCase()] = line.slice(eq + 1).trim();
  }
  if (!found) throw new AwsSigningError(`AWS credentials file has no profile "${profile}"`);
  const accessKeyId = values.aws_access_key_id;
  const secretAccessKey = values.aws_secret_access_key;
  if (!accessKeyId || !secretAccessKey) {
    throw new AwsSigningError(`AWS credentials profile "${profile}" lacks aws_access_key_id or aws_secret_access_key`);
  }
  const credentials: AwsCredentials = { accessKeyId, secretAccessKey };
  if (values.aws_session_token) credentials.sessionToken = values.aws_session_token;
  return credentials;
}

/** Where configured credentials come from: `current` answers without waiting when it can. */
export interface AwsCredentialSource {
  /** Usable credentials available right now, if any (throws for a broken configuration). */
  current(): AwsCredentials | undefined;
  /** Resolves credentials, fetching or refreshing them when needed. */
  load(): Promise<AwsCredentials>;
  /** Optional: throws when the configured credentials are unusable as they are (no network call). */
  check?(): void;
}

/**
 * Credentials from a shared-credentials file in a Secret. `read` returns the file content (the processor's
 * secret reader caches it and re-reads rotated Secrets); parsing is redone only when the content changes.
 * `name` (the Secret reference) prefixes parse errors.
 */
export function secretCredentials(read: () => string, profile: string, name?: string): AwsCredentialSource {
  let parsed: { text: string; credentials: AwsCredentials } | undefined;
  const current = (): AwsCredentials => {
    const text = read();
    if (parsed?.text !== text) {
      let credentials: AwsCredentials;
      try {
        credentials = parseSharedCredentials(text, profile);
      } catch (error) {
        throw name === undefined ? error : new AwsSigningError(`credential ${name}: ${(error as Error).message}`);
      }
      parsed = { text, credentials };
    }
    return parsed.credentials;
  };
  return { current, load: async () => current(), check: () => void current() };
}

/** Temporary credentials are refreshed this long before they expire. */
const REFRESH_MARGIN_MS = 5 * 60 * 1000;

type ChainProvider = () => Promise<AwsCredentials & { expiration?: Date }>;

/**
 * The AWS default chain (memoized by the SDK); the last credentials are reused until near expiry. Each load
 * waits at most `timeoutMs`; a timed-out chain is replaced by a new one (`renew`), since the SDK's memoized
 * provider would hand its stuck promise to every later caller.
 */
export function defaultChainCredentials(
  provider?: ChainProvider,
  now: () => number = Date.now,
  timeoutMs: number = CREDENTIAL_TIMEOUT_MS,
  renew: () => ChainProvider = () => provider ?? fromNodeProviderChain(),
): AwsCredentialSource {
  let cached: { credentials: AwsCredentials; refreshAt: number } | undefined;
  let chain = provider ?? renew();
  return {
    current: () => (cached !== undefined && now() < cached.refreshAt ? cached.credentials : undefined),
    load: async () => {
      try {
        const used = chain;
        const c = await withTimeout(used(), timeoutMs, 'the AWS default credential chain', () => {
          if (chain === used) chain = renew();
        });
        const credentials: AwsCredentials = { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey };
        if (c.sessionToken) credentials.sessionToken = c.sessionToken;
        cached = {
          credentials,
          refreshAt: c.expiration ? c.expiration.getTime() - REFRESH_MARGIN_MS : Number.POSITIVE_INFINITY,
        };
        return credentials;
      } catch (error) {
        throw new AwsSigningError(`AWS default credential chain found no credentials (${(error as Error).name})`);
      }
    },
  };
}

/** Credentials from the request's `x-aigw-aws-*` headers, if both key id and secret are present. */
export function credentialsFromHeaders(headers: Readonly<Record<string, string>>): AwsCredentials | undefined {
  const accessKeyId = headers[PER_REQUEST_CREDENTIAL_HEADERS.accessKeyId];
  const secretAccessKey = headers[PER_REQUEST_CREDENTIAL_HEADERS.secretAccessKey];
  if (!accessKeyId || !secretAccessKey) return undefined;
  const sessionToken = headers[PER_REQUEST_CREDENTIAL_HEADERS.sessionToken];
  return sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey };
}

type SigV4Config = Extract<BackendAuth, { type: 'AWSSigV4' }>;

/** Signs requests to one backend with per-request, Secret or default-chain credentials. */
export class AwsSigV4Authenticator implements BackendAuthenticator {
  constructor(
    private readonly config: SigV4Config,
    private readonly configured: AwsCredentialSource,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** The Secret's shared-credentials file is there, non-empty, and has the profile with both keys. */
  check(): void {
    this.configured.check?.();
  }

  /** Synchronous when the credentials and the day's signing key are at hand (the common case). */
  apply(request: AuthRequest): HeaderChanges | Promise<HeaderChanges> {
    const perRequest = this.config.perRequestCredentials ? credentialsFromHeaders(request.headers) : undefined;
    const credentials = perRequest ?? this.configured.current();
    const signable = { method: request.method, hostname: request.hostname, path: request.path, body: request.body };
    const now = this.clock();
    if (credentials !== undefined) {
      const signed = signAwsRequestSync(signable, credentials, this.config.region, BEDROCK_SERVICE, now);
      if (signed !== undefined) return changesFor(signed);
    }
    return (async () => {
      const resolved = credentials ?? (await this.configured.load());
      return changesFor(await signAwsRequest(signable, resolved, this.config.region, BEDROCK_SERVICE, now));
    })();
  }
}

function changesFor(signed: SignedHeaders): HeaderChanges {
  const removeHeaders = [...PER_REQUEST_CREDENTIAL_HEADER_NAMES];
  if (!signed['x-amz-security-token']) removeHeaders.push('x-amz-security-token');
  return { setHeaders: { ...signed }, removeHeaders };
}

export const awsSigV4Auth: AuthFactory<SigV4Config> = (auth, _backend, secrets) => {
  const credentials = auth.credentials;
  const source =
    credentials.source === 'Secret'
      ? secretCredentials(
          () => secrets.read(credentials.secret),
          credentials.profile,
          `${credentials.secret.secretName}/${credentials.secret.key}`,
        )
      : defaultChainCredentials();
  return new AwsSigV4Authenticator(auth, source);
};
