/**
 * Request headers that belong to the gateway, not to the provider. Kept out of `aws.ts` so that the header
 * lists load without the AWS SDK.
 */
import { MODEL_HEADER, type BackendConfig } from '@ai-gateway-constructs/processor-config';

/** Per-request AWS credentials a client may send to an `AWSSigV4` backend with `perRequestCredentials`. */
export const PER_REQUEST_CREDENTIAL_HEADERS = {
  accessKeyId: 'x-aigw-aws-access-key-id',
  secretAccessKey: 'x-aigw-aws-secret-access-key',
  sessionToken: 'x-aigw-aws-session-token',
} as const;

export const PER_REQUEST_CREDENTIAL_HEADER_NAMES: readonly string[] = Object.values(PER_REQUEST_CREDENTIAL_HEADERS);

/**
 * Gateway-internal request headers a client must never get to a provider, each with why. Lower-case.
 * Remove them from every upstream request, except those the backend's auth consumes
 * (`internalHeadersConsumedBy`), which that auth removes itself once it has used them.
 */
export const CLIENT_INTERNAL_HEADER_REASONS: Readonly<Record<string, string>> = {
  'x-ai-eg-upstream-host':
    "Envoy AI Gateway's internal upstream-host header: nothing in this gateway reads it, and a " +
    'provider or proxy that trusted it could be steered by the client',
  [PER_REQUEST_CREDENTIAL_HEADERS.accessKeyId]:
    'the per-request AWS access key id, read only to SigV4-sign requests to AWSSigV4 backends ' +
    'with perRequestCredentials; other providers must not see it',
  [PER_REQUEST_CREDENTIAL_HEADERS.secretAccessKey]:
    'the per-request AWS secret key, read only to SigV4-sign (never sent anywhere, AWS ' +
    'included: the signature proves it)',
  [PER_REQUEST_CREDENTIAL_HEADERS.sessionToken]:
    'the per-request AWS session token, read only to SigV4-sign; AWS gets it as ' +
    'x-amz-security-token, no other provider may see it',
};

export const CLIENT_INTERNAL_HEADERS: readonly string[] = Object.keys(CLIENT_INTERNAL_HEADER_REASONS);

/** Name prefixes of gateway-internal headers (Envoy AI Gateway's `x-ai-eg-`, this gateway's `x-aigw-`). */
export const CLIENT_INTERNAL_HEADER_PREFIXES: readonly string[] = ['x-ai-eg-', 'x-aigw-'];

/**
 * Whether a client's request header is gateway-internal: one of CLIENT_INTERNAL_HEADERS or any name with a
 * CLIENT_INTERNAL_HEADER_PREFIXES prefix, except `x-ai-eg-model`, which the processor sets itself on every
 * routed request. `name` must be lower-case.
 */
export function isClientInternalHeader(name: string): boolean {
  if (name === MODEL_HEADER) return false;
  return (
    CLIENT_INTERNAL_HEADERS.includes(name) || CLIENT_INTERNAL_HEADER_PREFIXES.some((prefix) => name.startsWith(prefix))
  );
}

/** Whether `name` (lower-case) is one of the per-request AWS credential headers that SigV4 signing reads. */
export function isAwsSigningInputHeader(name: string): boolean {
  return PER_REQUEST_CREDENTIAL_HEADER_NAMES.includes(name);
}

/**
 * The gateway-internal headers the backend's auth legitimately reads from the client's request: the per-request
 * AWS credential headers for an `AWSSigV4` backend with `perRequestCredentials`, nothing for any other backend.
 * The auth removes them from the upstream request after use.
 */
export function internalHeadersConsumedBy(backend: BackendConfig): readonly string[] {
  const auth = backend.auth;
  return auth?.type === 'AWSSigV4' && auth.perRequestCredentials ? PER_REQUEST_CREDENTIAL_HEADER_NAMES : [];
}
