/**
 * AWS credentials for SigV4: a shared-credentials (INI) file from a Secret, the AWS default chain
 * (env, IRSA web identity, EKS pod identity, instance metadata), or per-request headers.
 * Nothing here ever puts key material into an error message.
 */
import * as fs from 'node:fs';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import type { BackendAuth } from '../config/schema';
import { AwsCredentials, AwsSigningError, signAwsRequest } from './sigv4';

export const PER_REQUEST_CREDENTIAL_HEADERS = {
  accessKeyId: 'x-aigw-aws-access-key-id',
  secretAccessKey: 'x-aigw-aws-secret-access-key',
  sessionToken: 'x-aigw-aws-session-token',
} as const;

export const PER_REQUEST_CREDENTIAL_HEADER_NAMES: readonly string[] = Object.values(PER_REQUEST_CREDENTIAL_HEADERS);

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
      section = line.slice(1, -1).trim().replace(/^profile\s+/, '');
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

export type AwsCredentialSource = () => Promise<AwsCredentials>;

/**
 * Reads a credentials file mounted from a Secret. Re-read (at most every `recheckMs`) when its
 * modification time changes, so rotated Secrets take effect without a restart.
 */
export function secretFileCredentials(filePath: string, profile: string, recheckMs = 5_000): AwsCredentialSource {
  let cached: AwsCredentials | undefined;
  let cachedMtime = -1;
  let checkedAt = 0;
  return async () => {
    const now = Date.now();
    if (cached !== undefined && now - checkedAt < recheckMs) return cached;
    let mtime: number;
    let text: string;
    try {
      mtime = (await fs.promises.stat(filePath)).mtimeMs;
      if (cached !== undefined && mtime === cachedMtime) {
        checkedAt = now;
        return cached;
      }
      text = await fs.promises.readFile(filePath, 'utf8');
    } catch (error) {
      throw new AwsSigningError(`cannot read AWS credentials file ${filePath}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    cached = parseSharedCredentials(text, profile);
    cachedMtime = mtime;
    checkedAt = now;
    return cached;
  };
}

/** The AWS default chain; the SDK memoizes and refreshes temporary credentials before expiry. */
export function defaultChainCredentials(): AwsCredentialSource {
  const provider = fromNodeProviderChain();
  return async () => {
    try {
      const c = await provider();
      return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken };
    } catch (error) {
      throw new AwsSigningError(`AWS default credential chain found no credentials (${(error as Error).name})`);
    }
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

export interface AuthRequest {
  method: string;
  /** Lower-case request headers as the client sent them. */
  headers: Readonly<Record<string, string>>;
  /** Final upstream path including query. */
  path: string;
  /** Final serialized upstream body. */
  body: Uint8Array | string;
}

export interface AuthHeaders {
  setHeaders: Record<string, string>;
  removeHeaders: string[];
}

type SigV4Config = Extract<BackendAuth, { type: 'AWSSigV4' }>;

/** Signs requests to one backend. */
export class AwsSigV4Authenticator {
  private readonly configured: AwsCredentialSource;

  constructor(
    private readonly config: SigV4Config,
    private readonly hostname: string,
    secretFile: (ref: { secretName: string; key: string }) => string,
    private readonly clock: () => Date = () => new Date(),
    source?: AwsCredentialSource,
  ) {
    this.configured =
      source ??
      (config.credentials.source === 'Secret'
        ? secretFileCredentials(secretFile(config.credentials.secret), config.credentials.profile)
        : defaultChainCredentials());
  }

  async apply(request: AuthRequest): Promise<AuthHeaders> {
    const perRequest = this.config.perRequestCredentials ? credentialsFromHeaders(request.headers) : undefined;
    const credentials = perRequest ?? (await this.configured());
    const signed = await signAwsRequest(
      { method: request.method, hostname: this.hostname, path: request.path, body: request.body },
      credentials,
      this.config.region,
      BEDROCK_SERVICE,
      this.clock(),
    );
    const removeHeaders = [...PER_REQUEST_CREDENTIAL_HEADER_NAMES];
    if (!signed['x-amz-security-token']) removeHeaders.push('x-amz-security-token');
    return { setHeaders: { ...signed }, removeHeaders };
  }
}
