/**
 * Bounds for credential fetches (OAuth2 token endpoints, the GKE metadata server, the AWS default chain's STS
 * and instance-metadata calls). A fetch that does not settle in time fails like any other credential error:
 * the request is answered 503 and the failure counts against the backend's circuit breaker, so priority
 * failover moves traffic to the next priority.
 */

/**
 * How long one credential fetch, and any request waiting on it, may take. Below Envoy's ext_proc
 * `messageTimeout` (10 s by default in the constructs), so the client gets the processor's own 503 in its API's
 * error shape instead of Envoy's timeout reply. Not a config field: a healthy token endpoint answers in well
 * under a second, and waiting longer only holds request bodies longer.
 */
export const CREDENTIAL_TIMEOUT_MS = 5_000;

/** A credential fetch did not settle within its timeout. Names the source, never a credential. */
export class CredentialTimeoutError extends Error {
  constructor(what: string, timeoutMs: number) {
    super(`${what} did not answer within ${timeoutMs} ms`);
    this.name = 'CredentialTimeoutError';
  }
}

/**
 * `work`, or a CredentialTimeoutError after `timeoutMs`. `onTimeout` runs when the timer wins, e.g. to abort the
 * fetch or to drop a client whose shared refresh is stuck, so the next request starts a fresh fetch. The timer
 * does not keep the process alive.
 */
export function withTimeout<T>(work: Promise<T>, timeoutMs: number, what: string, onTimeout?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout?.();
      reject(new CredentialTimeoutError(what, timeoutMs));
    }, timeoutMs);
    timer.unref();
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
