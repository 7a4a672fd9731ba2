/**
 * Naming the budget behind a 429 of Envoy's rate-limit filter. Envoy enforces budgets; its 429 says only which
 * limit ran out through the draft-03 headers of the rule (`xRateLimitHeaders: DraftVersion03`):
 * `x-ratelimit-limit: <n>, <n>;w=<window seconds>[, ...]` (the first value is the descriptor closest to its limit) and
 * `x-ratelimit-reset: <seconds until the window ends>`. The processor matches that limit and window against the
 * budgets of the config that cover the request (its route, its consumer's own limits) and tells the client, in its
 * API's error shape, which budget ran out and when its window ends.
 */
import {
  RATE_LIMIT_UNIT_SECONDS,
  type BudgetConfig,
  type RateLimitUnitName,
} from '@ai-gateway-constructs/processor-config';
import type { GatewayError } from '../errors';
import type { ConsumerRuntime } from './consumers';

/** The header Envoy's rate-limit filter sets on its own 429. */
export const ENVOY_RATE_LIMITED_HEADER = 'x-envoy-ratelimited';
export const RATE_LIMIT_LIMIT_HEADER = 'x-ratelimit-limit';
export const RATE_LIMIT_RESET_HEADER = 'x-ratelimit-reset';
export const RATE_LIMIT_REMAINING_HEADER = 'x-ratelimit-remaining';

/** The budget a rejection is put down to. */
export interface ExhaustedBudget {
  /** The budget's name (a consumer limit's `budget` when the consumer's own limit applied); undefined: unknown. */
  name: string | undefined;
  limit: number | undefined;
  unit: RateLimitUnitName | undefined;
  /** Unix milliseconds when the window ends, when known. */
  windowEndsAt: number | undefined;
  /**
   * The epoch-aligned end of the budget's window (stable across the window, unlike a reset counted in whole seconds
   * from each rejection): what the exhaustion log keys on. Undefined when the budget is unknown.
   */
  windowKey: number | undefined;
}

/** One candidate: a budget as it applies to this request (the consumer's own limit replacing the static one). */
interface Candidate {
  name: string;
  limit: number;
  unit: RateLimitUnitName;
}

/** Enforced budgets that cover the route, as they apply to the consumer. */
function candidates(
  budgets: readonly BudgetConfig[],
  route: string,
  consumer: ConsumerRuntime | undefined,
): Candidate[] {
  const out: Candidate[] = [];
  for (const budget of budgets) {
    if (budget.shadow || (budget.route !== undefined && budget.route !== route)) continue;
    const own =
      budget.limitMetadataKey === undefined
        ? undefined
        : consumer?.config.limits.find((limit) => limit.metadataKey === budget.limitMetadataKey);
    out.push(
      own === undefined
        ? { name: budget.name, limit: budget.limit, unit: budget.unit }
        : { name: own.budget, limit: own.requestsPerUnit, unit: own.unit },
    );
  }
  return out;
}

/** Header bytes read: a policy per descriptor of the request, a handful in practice. */
const MAX_LIMIT_HEADER_BYTES = 1024;

/**
 * Draft-03 `x-ratelimit-limit`: `<limit>, <limit>;w=<seconds>[;name="..."], ...`. The first value is the limit of the
 * descriptor closest to running out (the one that did, on a rejection); the quota policies follow for every
 * descriptor in descriptor order, so the window is that of the policies with that limit, when they agree on one
 * (policies alike in limit but not in window leave it unknown). Undefined when the value does not start with a number.
 */
export function parseRateLimitLimit(
  value: string | undefined,
): { limit: number; windowSeconds: number | undefined } | undefined {
  if (value === undefined) return undefined;
  const text = value.slice(0, MAX_LIMIT_HEADER_BYTES);
  const first = /^\s*(\d+)/.exec(text);
  if (first === null) return undefined;
  const limit = Number(first[1]);
  let windowSeconds: number | undefined;
  for (const policy of text.matchAll(/,\s*(\d+)\s*;\s*w=(\d+)/g)) {
    if (Number(policy[1]) !== limit) continue;
    const window = Number(policy[2]);
    if (windowSeconds !== undefined && windowSeconds !== window) return { limit, windowSeconds: undefined };
    windowSeconds = window;
  }
  return { limit, windowSeconds };
}

function unitOfWindow(seconds: number): RateLimitUnitName | undefined {
  for (const unit of Object.keys(RATE_LIMIT_UNIT_SECONDS) as RateLimitUnitName[])
    if (RATE_LIMIT_UNIT_SECONDS[unit] === seconds) return unit;
  return undefined;
}

/** The end of the epoch-aligned window of `unit` that contains `nowMs` (how Envoy's rate-limit service counts). */
export function windowEnd(unit: RateLimitUnitName, nowMs: number): number {
  const length = RATE_LIMIT_UNIT_SECONDS[unit] * 1000;
  return (Math.floor(nowMs / length) + 1) * length;
}

/** The covering budget whose limit and window the draft-03 headers announce. */
function announcedBudget(
  all: readonly Candidate[],
  announced: { limit: number; windowSeconds: number | undefined },
): Candidate | undefined {
  const unit = announced.windowSeconds === undefined ? undefined : unitOfWindow(announced.windowSeconds);
  // Budgets alike in limit and window cannot be told apart: the first in config order is named.
  return all.find((c) => c.limit === announced.limit && (unit === undefined || c.unit === unit));
}

/** How much of a budget's window a response's draft-03 headers show used. */
export interface BudgetUse {
  /** The budget's name (a consumer limit's `budget` when the consumer's own limit applied). */
  name: string;
  /**
   * Used share of the limit, 0 to 1, as the rate-limit service answered this request's check (a budget charged by
   * the response checks without charging, so this request's own tokens are not in it yet). A limit of 0 is used up.
   */
  usedRatio: number;
  /** Unix milliseconds when the budget's window ends: the share means nothing after it. */
  windowEndsAt: number;
}

/**
 * The budget closest to running out and how much of it is used, from the draft-03 headers Envoy's rate-limit filter
 * adds to every response of a route it checked (`x-ratelimit-limit` names the descriptor with the least remaining,
 * `x-ratelimit-remaining` is its remaining count). Only a covering budget whose limit and window (a unit of the
 * rate-limit service) match is reported; the caller passes the last values of the headers, Envoy's (its filter appends
 * them after the upstream's). Undefined when the headers are missing, malformed, ambiguous (budgets alike in limit but
 * not in window) or name no covering budget. `nowMs` is when Envoy checked the budgets: it picks the window.
 */
export function budgetUse(
  budgets: readonly BudgetConfig[],
  route: string,
  consumer: ConsumerRuntime | undefined,
  headers: Readonly<Record<string, string>>,
  nowMs: number,
): BudgetUse | undefined {
  const announced = parseRateLimitLimit(headers[RATE_LIMIT_LIMIT_HEADER]);
  const remainingValue = headers[RATE_LIMIT_REMAINING_HEADER];
  // A window that is no unit of the rate-limit service is not Envoy's (a provider's own limiter, say).
  if (
    announced === undefined ||
    announced.windowSeconds === undefined ||
    unitOfWindow(announced.windowSeconds) === undefined ||
    remainingValue === undefined
  )
    return undefined;
  // One value is expected (the caller passes the last header entry); a joined value is read up to its first comma.
  const remaining = /^\s*(\d{1,10})\s*(?:,|$)/.exec(remainingValue.slice(0, MAX_LIMIT_HEADER_BYTES));
  if (remaining === null) return undefined;
  const found = announcedBudget(candidates(budgets, route, consumer), announced);
  if (found === undefined) return undefined;
  const left = Math.min(Number(remaining[1]), found.limit);
  return {
    name: found.name,
    usedRatio: found.limit === 0 ? 1 : (found.limit - left) / found.limit,
    windowEndsAt: windowEnd(found.unit, nowMs),
  };
}

export function exhaustedBudget(
  budgets: readonly BudgetConfig[],
  route: string,
  consumer: ConsumerRuntime | undefined,
  headers: Readonly<Record<string, string>>,
  nowMs: number,
): ExhaustedBudget {
  const all = candidates(budgets, route, consumer);
  const announced = parseRateLimitLimit(headers[RATE_LIMIT_LIMIT_HEADER]);
  // Without the draft headers only a single covering budget can be named with certainty.
  const found = announced !== undefined ? announcedBudget(all, announced) : all.length === 1 ? all[0] : undefined;
  const resetValue = headers[RATE_LIMIT_RESET_HEADER];
  const reset = resetValue !== undefined && /^\d{1,10}$/.test(resetValue.trim()) ? Number(resetValue) : undefined;
  // The rate-limit service counts the reset from the whole second it answered in (`unit - now % unit`, now in
  // whole seconds), so the window ends `reset` seconds after the start of that second, not after this instant.
  const windowEndsAt =
    reset !== undefined
      ? (Math.floor(nowMs / 1000) + reset) * 1000
      : found !== undefined
        ? windowEnd(found.unit, nowMs)
        : undefined;
  return {
    name: found?.name,
    limit: found?.limit,
    unit: found?.unit,
    windowEndsAt,
    windowKey: found === undefined ? undefined : windowEnd(found.unit, nowMs),
  };
}

/** The client's error: status 429, naming the budget and its window's end (UTC). */
export function budgetError(exhausted: ExhaustedBudget): GatewayError {
  const which = exhausted.name === undefined ? 'a budget of this gateway' : `budget "${exhausted.name}"`;
  const until =
    exhausted.windowEndsAt === undefined
      ? ''
      : ` until ${new Date(exhausted.windowEndsAt).toISOString().replace('.000Z', 'Z')} (UTC), when its window ends`;
  return {
    status: 429,
    message: `${which} is used up${until}`,
    type: 'rate_limit_exceeded',
    code: 'budget_exceeded',
    param: null,
  };
}

const MAX_LOGGED_WINDOWS = 10_000;

/**
 * Remembers which (consumer, budget, window) ran out, so that the log says it once, not for every rejected request.
 * Bounded: windows that have ended are dropped, and past the bound everything is forgotten (a line may repeat).
 */
export class ExhaustionLog {
  private readonly seen = new Map<string, number>();

  /**
   * True the first time a (consumer, budget, window) is reported. `windowKey` undefined (an unknown budget): once a
   * minute.
   */
  firstInWindow(consumer: string, budget: string, windowKey: number | undefined, nowMs: number): boolean {
    const end = windowKey ?? nowMs + 60_000;
    const key = `${consumer}\u0000${budget}\u0000${windowKey ?? ''}`;
    const known = this.seen.get(key);
    if (known !== undefined && known > nowMs) return false;
    if (this.seen.size >= MAX_LOGGED_WINDOWS) {
      for (const [k, ends] of this.seen) if (ends <= nowMs) this.seen.delete(k);
      if (this.seen.size >= MAX_LOGGED_WINDOWS) this.seen.clear();
    }
    this.seen.set(key, end);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }
}
