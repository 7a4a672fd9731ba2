/**
 * How the processor authenticates a request to its backend. Each auth type of the config contract maps to
 * a factory; provider-specific factories (AWSSigV4, GCP, AzureEntra) live in their own files and are added
 * to AUTH_FACTORIES. A backend whose auth type has no factory is rejected when the config loads.
 */
import type { BackendAuth, BackendConfig } from '@ai-gateway-constructs/processor-config';
import type { HeaderChanges } from '../translate/types';
import { apiKeyAuth, bearerTokenAuth } from './apikey';
import type { SecretReader } from './secrets';

export interface AuthRequest {
  method: string;
  /** The backend's hostname from the config (Envoy's route rewrites Host to it). */
  hostname: string;
  /** The upstream `:path` including the query. */
  path: string;
  /** The upstream request headers (lower-case), after translation and header mutations. */
  headers: Readonly<Record<string, string>>;
  /** The exact upstream body bytes. */
  body: Buffer;
}

export interface BackendAuthenticator {
  /**
   * Headers to add (or remove); may be synchronous. A thrown or rejected error is the backend's failure: the
   * request is answered 503 backend_auth_error without the error's detail. Never returns an empty credential.
   */
  apply(request: AuthRequest): HeaderChanges | Promise<HeaderChanges>;
  /**
   * Optional, for credentials that do not depend on the request: the changes `apply` would return, the
   * same object while the credential is unchanged. Throws like `apply`.
   */
  fixed?(): HeaderChanges;
  /**
   * Optional: throws the problem every request would run into with the configured Secret as it is (missing,
   * empty, malformed), without any network call. Run once per config snapshot (`compileRuntime`). Fetched
   * credentials (GCP, Azure Entra tokens, the AWS default chain) can only have the Secret they start from checked.
   */
  check?(): void;
}

export type AuthFactory<T extends BackendAuth = BackendAuth> = (
  auth: T,
  backend: BackendConfig,
  secrets: SecretReader,
) => BackendAuthenticator;

export type AuthFactories = { [K in BackendAuth['type']]?: AuthFactory<Extract<BackendAuth, { type: K }>> };

/*
 * The cloud factories pull in large SDKs (AWS, Google auth); they are loaded on first use so a processor
 * without such backends starts fast (cold start to ready is a target).
 */
export const AUTH_FACTORIES: AuthFactories = {
  APIKey: apiKeyAuth,
  BearerToken: bearerTokenAuth,
  AWSSigV4: (auth, backend, secrets) =>
    (require('./aws') as typeof import('./aws')).awsSigV4Auth(auth, backend, secrets),
  GCP: (auth, backend, secrets) => (require('./gcp') as typeof import('./gcp')).gcpAuth(auth, backend, secrets),
  AzureEntra: (auth, backend, secrets) =>
    (require('./azure') as typeof import('./azure')).azureEntraAuth(auth, backend, secrets),
};

/** Client-sent credentials, removed before upstream whenever the backend has its own auth. */
export const CLIENT_CREDENTIAL_HEADERS: readonly string[] = ['authorization', 'x-api-key', 'api-key'];

export {
  CLIENT_INTERNAL_HEADER_PREFIXES,
  CLIENT_INTERNAL_HEADER_REASONS,
  CLIENT_INTERNAL_HEADERS,
  internalHeadersConsumedBy,
  isAwsSigningInputHeader,
  isClientInternalHeader,
} from './headers';

export class UnsupportedAuthError extends Error {}

/**
 * A backend's credential problem found when its config snapshot was compiled (a Secret missing, empty or
 * malformed). Every request to the backend fails with this one error until a reload brings a fixed Secret. The
 * message names the backend and the Secret reference, never a credential.
 */
export class CredentialProblemError extends Error {
  /** True once the problem was logged for its snapshot: failing requests need not log it again. */
  reported = false;

  constructor(
    readonly backend: string,
    problem: string,
  ) {
    super(`backend "${backend}": ${problem}`);
    this.name = 'CredentialProblemError';
  }
}

/** Whether `error` is a credential problem already logged for the current snapshot (log it at debug only). */
export function isReportedCredentialProblem(error: unknown): boolean {
  return error instanceof CredentialProblemError && error.reported;
}

/**
 * Runs the authenticator's `check`: undefined when the credential looks usable (or cannot be checked without a
 * fetch), otherwise the problem as a CredentialProblemError.
 */
export function credentialProblem(
  backend: BackendConfig,
  auth: BackendAuthenticator | undefined,
): CredentialProblemError | undefined {
  if (auth?.check === undefined) return undefined;
  try {
    auth.check();
    return undefined;
  } catch (error) {
    return new CredentialProblemError(backend.name, error instanceof Error ? error.message : 'credential check failed');
  }
}

/** Fails every request with `problem`, at once (the backend counts one failure for each). */
export function failingAuthenticator(problem: CredentialProblemError): BackendAuthenticator {
  const fail = (): never => {
    throw problem;
  };
  return { apply: fail, fixed: fail, check: fail };
}

/** Undefined when the backend has no auth; throws UnsupportedAuthError when its type has no factory. */
export function createAuthenticator(
  backend: BackendConfig,
  secrets: SecretReader,
  factories: AuthFactories = AUTH_FACTORIES,
): BackendAuthenticator | undefined {
  const auth = backend.auth;
  if (auth === undefined) return undefined;
  const factory = factories[auth.type] as AuthFactory | undefined;
  if (factory === undefined) {
    throw new UnsupportedAuthError(
      `backend "${backend.name}": auth type "${auth.type}" is not supported by this processor`,
    );
  }
  return factory(auth, backend, secrets);
}
