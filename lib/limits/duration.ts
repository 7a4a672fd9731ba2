import type { Duration } from 'cdk8s';
import type { IConstruct } from 'constructs';
import { invalid } from '../errors';
import { GATEWAY_DURATION } from './crd-limits.generated';

/** Milliseconds per unit of the Gateway API Duration format. */
const UNIT_MS: Record<(typeof GATEWAY_DURATION.units)[number], number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };
const DURATION_PATTERN = new RegExp(GATEWAY_DURATION.pattern);
/** The largest amount a unit can have (`99999` for five digits). */
const MAX_AMOUNT = 10 ** GATEWAY_DURATION.maxDigits - 1;
/** The longest duration the format can write: the largest number of hours and every smaller unit full. */
export const MAX_GATEWAY_DURATION_MS = MAX_AMOUNT * UNIT_MS.h + UNIT_MS.h - 1;

/**
 * `ms` in the Gateway API Duration format the CRDs check (`^([0-9]{1,5}(h|m|s|ms)){1,4}$`), or undefined when no
 * string of that format says it (not a whole, non-negative number of milliseconds, or over 99999h59m59s999ms).
 * Whole seconds are written in seconds and other values in milliseconds while that fits in five digits (`60s`,
 * `1500ms`), as the constructs always wrote them; longer ones are split into units, largest first (`150500ms` is
 * `2m30s500ms`, 30 hours `30h`).
 */
export function gatewayDurationText(ms: number): string | undefined {
  if (!Number.isInteger(ms) || ms < 0 || ms > MAX_GATEWAY_DURATION_MS) return undefined;
  const single = ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
  if (DURATION_PATTERN.test(single)) return single;
  const parts: string[] = [];
  let rest = ms;
  for (const unit of GATEWAY_DURATION.units) {
    const amount = Math.floor(rest / UNIT_MS[unit]);
    rest -= amount * UNIT_MS[unit];
    if (amount > 0) parts.push(`${amount}${unit}`);
  }
  const text = parts.join('');
  return DURATION_PATTERN.test(text) ? text : undefined;
}

/** Milliseconds of a Gateway API Duration string (`1h30m`, `90s`, `500ms`), or undefined when the CRDs reject it. */
export function gatewayDurationMs(value: unknown): number | undefined {
  if (typeof value !== 'string' || !DURATION_PATTERN.test(value)) return undefined;
  let total = 0;
  for (const [, amount, unit] of value.matchAll(/([0-9]+)(ms|h|m|s)/g))
    total += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  return total;
}

/**
 * A positive `Duration` prop in the Gateway API Duration format (see {@link gatewayDurationText}); throws naming the
 * construct, the prop and the value when it is not a positive whole number of milliseconds or is too long to write.
 */
export function formatGatewayDuration(scope: IConstruct, prop: string, duration: Duration): string {
  const ms = duration.toMilliseconds({ integral: false });
  if (!Number.isInteger(ms) || ms <= 0)
    throw invalid(scope, prop, `${ms}ms`, 'must be a positive whole number of milliseconds');
  const text = gatewayDurationText(ms);
  if (text === undefined) {
    throw invalid(
      scope,
      prop,
      `${ms}ms`,
      `is longer than ${MAX_AMOUNT}h59m59s999ms, the longest duration the Gateway API format ` +
        `${GATEWAY_DURATION.pattern} can write`,
    );
  }
  return text;
}

/**
 * Throws when a retry's per-attempt timeout is longer than the route's request timeout, which bounds the whole
 * request with every retry: no attempt can run that long. A request timeout of 0 (disabled) bounds nothing.
 */
export function checkPerTryTimeout(
  scope: IConstruct,
  prop: string,
  perTryTimeout: Duration,
  requestTimeout: Duration,
  requestProp: string,
): void {
  const perTryMs = perTryTimeout.toMilliseconds({ integral: false });
  const requestMs = requestTimeout.toMilliseconds({ integral: false });
  if (requestMs > 0 && perTryMs > requestMs) {
    throw invalid(
      scope,
      prop,
      gatewayDurationText(perTryMs) ?? `${perTryMs}ms`,
      `is longer than ${requestProp} (${gatewayDurationText(requestMs) ?? `${requestMs}ms`}), which bounds the whole ` +
        `request including every retry, so no attempt can run this long; shorten ${prop} or raise ${requestProp}`,
    );
  }
}
