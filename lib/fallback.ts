import type { Duration } from 'cdk8s';
import type { IConstruct } from 'constructs';
import { MAX_FALLBACK_ATTEMPTS, type FallbackConfig } from '@ai-gateway-constructs/processor-config';
import { invalid } from './errors';
import { gatewayDurationText } from './limits/duration';

/** The statuses a fallback moves on by default: rate limited, and the provider's server errors. */
const DEFAULT_STATUS_CODES: readonly number[] = [429, 500, 502, 503, 504];
/**
 * The 4xx answers another backend may well accept: the request timed out (408), a conflict of the provider's state
 * (409), rate limited (429). Every other 4xx says the request is wrong (400, 404, 413, 422), and another provider
 * would refuse it too, or that this backend's credential is (401, 403), which failing over would hide.
 */
const RETRYABLE_CLIENT_ERRORS: readonly number[] = [408, 409, 429];
/** The most statuses one fallback lists (the processor config's bound). */
const MAX_STATUS_CODES = 32;
/** The longest deadline of one processor attempt the processor config accepts: 24 hours. */
const MAX_ATTEMPT_TIMEOUT_MS = 24 * 3_600_000;

/** When a rule's request moves on to the backends of its later priorities (see `Fallback.onFailure`). */
export interface FallbackOptions {
  /**
   * Upstream statuses that move the request on: 5xx, and of the 4xx only 408, 409 and 429 (any other 4xx says the
   * request itself, or the backend's credential, is wrong: another provider would refuse the request too, and
   * failing over would hide a broken credential). Envoy's own replies never move a request on, whatever their
   * status: a 429 of the gateway's budgets is answered as it is.
   * @default [429, 500, 502, 503, 504]
   */
  readonly statusCodes?: readonly number[];
  /**
   * Move on when Envoy could not connect to the backend (or found no healthy endpoint), or the connection was reset
   * before a response began.
   * @default true
   */
  readonly connectionFailures?: boolean;
  /**
   * Move on when one of Envoy's upstream timeouts expired (the route's request timeout, a retry's per-try timeout).
   * @default true
   */
  readonly timeouts?: boolean;
  /**
   * The most attempts one request makes, the first (Envoy's) included: each later attempt goes to a backend of the
   * next priority not yet tried, so at most one attempt per distinct priority of the rule's weighted backends.
   * @default - one attempt per distinct priority of the rule's backends with weight > 0, at most
   * `MAX_FALLBACK_ATTEMPTS` (5)
   */
  readonly maxAttempts?: number;
  /**
   * The deadline of each attempt the processor makes itself, from sending the request to the answer's last byte. It
   * may be longer than the route's `requestTimeout`: that timeout bounds Envoy's first attempt only (the processor's
   * attempts start after Envoy's upstream request ended), so a request with fallback may run for the request timeout
   * plus `maxAttempts - 1` attempt timeouts; the processor's drain time covers that.
   * @default - the route's `requestTimeout`
   */
  readonly attemptTimeout?: Duration;
}

/**
 * What `Fallback` checks a rule's fallback against: the rule's backends and its route's request timeout.
 * @internal
 */
export interface FallbackContext {
  /** The priorities of the rule's backends with weight > 0. */
  readonly weightedPriorities: readonly number[];
  /** The route's request timeout, in milliseconds. */
  readonly requestTimeoutMs: number;
}

/**
 * Failing over within one request: when the backend Envoy tried answers with a failure the fallback names, the
 * processor sends the same client request, translated and signed for it, to a backend of the rule's next priority
 * itself, and the client gets that answer instead (or, when every attempt failed, the last error in its own API's
 * schema). A request never fails over once a byte of a successful answer went to the client, and the budgets charge
 * only the attempt that answered.
 *
 * What it costs:
 * - The processor makes the later attempts itself (to the backend's host and port, over TLS where Envoy uses TLS;
 *   an in-cluster Service by its DNS name), bypassing Envoy for them: the backend's Envoy Gateway `Backend` with its
 *   TLS settings (the processor verifies the provider with the system CAs, as the Backend does) and Envoy's
 *   connection pool, circuit breaker and retries. The processor needs egress to the providers (its NetworkPolicy
 *   restricts ingress only; allow it where a default-deny egress policy applies).
 * - Envoy streams every response of the route to the processor (`FullDuplexStreamed` response body mode, through a
 *   second EnvoyExtensionPolicy of the processor selecting the route's HTTPRoute): its rules without a fallback pass
 *   through the processor that way too, and Envoy applies no message timeout to the response side.
 * - A request may run for the route's request timeout plus `maxAttempts - 1` attempt timeouts.
 */
export class Fallback {
  /**
   * Fail over on the given upstream statuses, connection failures and timeouts to the rule's backends of later
   * priorities (the rule needs a backend with weight > 0 at a priority above its first).
   */
  static onFailure(options: FallbackOptions = {}): Fallback {
    return new Fallback(options ?? {});
  }

  private constructor(private readonly options: FallbackOptions) {}

  /** How error messages name this fallback. */
  toString(): string {
    return 'Fallback.onFailure(...)';
  }

  /**
   * The processor config of this fallback on a rule of `scope` (the prop `prop`), its defaults resolved; throws
   * naming the construct, the prop and the value when it cannot work for that rule.
   * @internal
   */
  _toConfig(scope: IConstruct, prop: string, context: FallbackContext): FallbackConfig {
    const priorities = [...new Set(context.weightedPriorities)].sort((a, b) => a - b);
    if (priorities.length < 2) {
      throw invalid(
        scope,
        prop,
        this.toString(),
        `no later priority to fall back to: every backend of the rule with weight > 0 has priority ` +
          `${priorities.join(', ')}; give the backends to fall back to a higher priority`,
      );
    }
    const options = this.options;
    const statuses = this.statusCodes(scope, `${prop}.statusCodes`, options.statusCodes ?? DEFAULT_STATUS_CODES);
    const connectionFailures = this.flag(scope, `${prop}.connectionFailures`, options.connectionFailures);
    const timeouts = this.flag(scope, `${prop}.timeouts`, options.timeouts);
    if (statuses.length === 0 && !connectionFailures && !timeouts) {
      throw invalid(
        scope,
        `${prop}.statusCodes`,
        statuses,
        'with connectionFailures and timeouts off, nothing would ever move a request on; list a status',
      );
    }
    const maxAttempts = options.maxAttempts ?? Math.min(priorities.length, MAX_FALLBACK_ATTEMPTS);
    if (!Number.isInteger(maxAttempts) || maxAttempts < 2 || maxAttempts > MAX_FALLBACK_ATTEMPTS) {
      throw invalid(
        scope,
        `${prop}.maxAttempts`,
        maxAttempts,
        `must be an integer from 2 to ${MAX_FALLBACK_ATTEMPTS} (the first attempt included)`,
      );
    }
    if (maxAttempts > priorities.length) {
      throw invalid(
        scope,
        `${prop}.maxAttempts`,
        maxAttempts,
        `the rule's backends with weight > 0 have ${priorities.length} distinct priorities ` +
          `(${priorities.join(', ')}), and each attempt goes to a later priority than the one before, ` +
          `so at most ${priorities.length} attempts can be made`,
      );
    }
    return {
      statuses,
      connectionFailures,
      timeouts,
      maxAttempts,
      attemptTimeoutMs: this.attemptTimeoutMs(scope, `${prop}.attemptTimeout`, context.requestTimeoutMs),
    };
  }

  private statusCodes(scope: IConstruct, prop: string, codes: readonly number[]): number[] {
    if (!isList(codes)) throw invalid(scope, prop, codes, 'must be a list of HTTP status codes');
    if (codes.length > MAX_STATUS_CODES)
      throw invalid(scope, prop, codes, `lists ${codes.length} statuses; at most ${MAX_STATUS_CODES} are allowed`);
    codes.forEach((code, i) => {
      const at = `${prop}[${i}]`;
      if (typeof code !== 'number' || !Number.isInteger(code) || code < 100 || code > 599)
        throw invalid(scope, at, code, 'must be an HTTP status code');
      if (code < 400) {
        throw invalid(
          scope,
          at,
          code,
          'is not an error: a 1xx, 2xx or 3xx answer goes to the client as it is; list 4xx or 5xx statuses',
        );
      }
      if (code < 500 && !RETRYABLE_CLIENT_ERRORS.includes(code)) {
        throw invalid(
          scope,
          at,
          code,
          `says the request itself is wrong, which another provider would refuse too, or (401, 403) that this ` +
            `backend's credential is, which failing over would hide; of the 4xx only ` +
            `${RETRYABLE_CLIENT_ERRORS.join(', ')} can move a request on`,
        );
      }
      const first = codes.indexOf(code);
      if (first !== i) throw invalid(scope, at, code, `duplicates ${prop}[${first}]`);
    });
    return [...codes];
  }

  private flag(scope: IConstruct, prop: string, value: boolean | undefined): boolean {
    if (value === undefined) return true;
    if (typeof value !== 'boolean') throw invalid(scope, prop, value, 'must be true or false');
    return value;
  }

  private attemptTimeoutMs(scope: IConstruct, prop: string, requestTimeoutMs: number): number {
    const timeout = this.options.attemptTimeout;
    if (timeout === undefined) {
      if (requestTimeoutMs > MAX_ATTEMPT_TIMEOUT_MS) {
        const request = gatewayDurationText(requestTimeoutMs) ?? `${requestTimeoutMs}ms`;
        throw invalid(
          scope,
          prop,
          timeout,
          `defaults to the route's requestTimeout (${request}), ` +
            'longer than 24 hours, the longest attempt the processor allows; ' +
            'set a shorter attemptTimeout',
        );
      }
      return requestTimeoutMs;
    }
    const ms = typeof timeout.toMilliseconds === 'function' ? timeout.toMilliseconds({ integral: false }) : NaN;
    if (!Number.isInteger(ms) || ms < 1) {
      throw invalid(
        scope,
        prop,
        Number.isNaN(ms) ? timeout : `${ms}ms`,
        'must be a Duration of a positive whole number of milliseconds',
      );
    }
    if (ms > MAX_ATTEMPT_TIMEOUT_MS) {
      throw invalid(
        scope,
        prop,
        gatewayDurationText(ms) ?? `${ms}ms`,
        'is longer than 24 hours, the longest attempt the processor allows',
      );
    }
    return ms;
  }
}

/**
 * `Array.isArray` without its type guard: a typed list that fails the check is a plain JavaScript caller's mistake,
 * and the guard would otherwise widen the checked value to `any[]`.
 */
function isList(value: unknown): boolean {
  return Array.isArray(value);
}
