/** Naming the budget behind Envoy's 429, and logging a consumer's exhaustion once per window. */
import type { BudgetConfig } from '@ai-gateway-constructs/processor-config';
import { ConsumerDirectory } from '../../src/governance';
import {
  budgetError,
  budgetUse,
  exhaustedBudget,
  ExhaustionLog,
  parseRateLimitLimit,
  windowEnd,
} from '../../src/governance/budgets';

const budgets: BudgetConfig[] = [
  { name: 'team/daily-tokens', costKey: 'llm_total_token', limit: 100_000, unit: 'DAY', shadow: false },
  {
    name: 'team/monthly-spend',
    costKey: 'usd_micro',
    limit: 4_294_967_295,
    unit: 'MONTH',
    route: 'team/chat',
    limitMetadataKey: 'consumer_usd_month',
    shadow: false,
  },
  { name: 'team/trial', costKey: 'llm_total_token', limit: 100_000, unit: 'DAY', shadow: true },
  { name: 'other/route', costKey: 'llm_total_token', limit: 5, unit: 'HOUR', route: 'other/chat', shadow: false },
];
const directory = new ConsumerDirectory({
  clientIdHeader: 'x-ai-gateway-client-id',
  entries: [
    {
      id: 'alice',
      clientIds: ['alice-key'],
      limits: [
        {
          budget: 'alice/monthly',
          metadataKey: 'consumer_usd_month',
          header: 'x-ai-gateway-limit-consumer-usd-month',
          requestsPerUnit: 500_000_000,
          unit: 'MONTH',
        },
      ],
    },
    { id: 'bob', clientIds: ['bob-key'], limits: [] },
  ],
});
const alice = directory.byId.get('alice');
const bob = directory.byId.get('bob');
const NOW = Date.UTC(2026, 11, 6, 17, 30, 0);

describe('parseRateLimitLimit', () => {
  it('reads the first quota policy of draft-03', () => {
    expect(parseRateLimitLimit('100000, 100000;w=86400')).toEqual({ limit: 100000, windowSeconds: 86400 });
    // The first value is the descriptor closest to its limit; its policy need not be listed first.
    expect(parseRateLimitLimit('5, 100000;w=86400, 5;w=3600;name="x"')).toEqual({ limit: 5, windowSeconds: 3600 });
    expect(parseRateLimitLimit('5')).toEqual({ limit: 5, windowSeconds: undefined });
    expect(parseRateLimitLimit('none')).toBeUndefined();
    expect(parseRateLimitLimit(undefined)).toBeUndefined();
    expect(parseRateLimitLimit(`5${' '.repeat(2000)}, 5;w=1`)).toEqual({ limit: 5, windowSeconds: undefined });
  });
});

describe('exhaustedBudget', () => {
  it('matches the announced limit and window against the budgets covering the route', () => {
    const found = exhaustedBudget(budgets, 'team/chat', bob, { 'x-ratelimit-limit': '100000, 100000;w=86400' }, NOW);
    expect(found).toMatchObject({ name: 'team/daily-tokens', limit: 100_000, unit: 'DAY' });
    // No reset header: the epoch-aligned end of the day.
    expect(found.windowEndsAt).toBe(Date.UTC(2026, 11, 7));
  });

  it("names a consumer's own limit where it replaces the rule's static one", () => {
    const headers = { 'x-ratelimit-limit': '500000000, 500000000;w=2592000', 'x-ratelimit-reset': '3600' };
    const found = exhaustedBudget(budgets, 'team/chat', alice, headers, NOW);
    expect(found).toMatchObject({ name: 'alice/monthly', unit: 'MONTH', windowEndsAt: NOW + 3_600_000 });
    // The reset counts whole seconds from the second the rate-limit service answered in: 700 ms into that second
    // the window still ends 3600 s after its start, not a second later.
    expect(exhaustedBudget(budgets, 'team/chat', alice, headers, NOW + 700).windowEndsAt).toBe(NOW + 3_600_000);
    // bob has no own limit: the static one of the rule applies and is what Envoy announces.
    const staticLimit = { 'x-ratelimit-limit': '4294967295, 4294967295;w=2592000' };
    expect(exhaustedBudget(budgets, 'team/chat', bob, staticLimit, NOW).name).toBe('team/monthly-spend');
  });

  it('matches the limit alone when the header has no window for it', () => {
    expect(exhaustedBudget(budgets, 'team/chat', bob, { 'x-ratelimit-limit': '100000' }, NOW).name).toBe(
      'team/daily-tokens',
    );
  });

  it('leaves out shadow budgets and budgets of other routes', () => {
    expect(exhaustedBudget(budgets, 'team/chat', bob, { 'x-ratelimit-limit': '5, 5;w=3600' }, NOW).name).toBe(
      undefined,
    );
    expect(exhaustedBudget(budgets, 'other/chat', bob, { 'x-ratelimit-limit': '5, 5;w=3600' }, NOW).name).toBe(
      'other/route',
    );
  });

  it('without the draft headers, names a budget only when one alone covers the request', () => {
    expect(exhaustedBudget(budgets, 'team/chat', bob, {}, NOW)).toMatchObject({
      name: undefined,
      windowEndsAt: undefined,
    });
    const single = exhaustedBudget(budgets.slice(0, 1), 'team/chat', bob, {}, NOW);
    expect(single.name).toBe('team/daily-tokens');
  });

  it('counts windows from the epoch: weeks start on Thursday 00:00 UTC, months are 30 days', () => {
    const weekEnd = windowEnd('WEEK', NOW);
    expect(new Date(weekEnd).getUTCDay()).toBe(4);
    expect(weekEnd).toBe(Date.UTC(2026, 11, 10));
    expect(windowEnd('MONTH', NOW) % (2_592_000 * 1000)).toBe(0);
    expect(windowEnd('DAY', Date.UTC(2026, 11, 7))).toBe(Date.UTC(2026, 11, 8));
  });
});

describe('budgetUse', () => {
  it('reads the used share of the budget the draft-03 headers announce, until its window ends', () => {
    const headers = { 'x-ratelimit-limit': '100000, 100000;w=86400', 'x-ratelimit-remaining': '15000' };
    expect(budgetUse(budgets, 'team/chat', bob, headers, NOW)).toEqual({
      name: 'team/daily-tokens',
      usedRatio: 0.85,
      windowEndsAt: Date.UTC(2026, 11, 7),
    });
    // A consumer's own limit replaces the rule's static one.
    const own = { 'x-ratelimit-limit': '500000000, 500000000;w=2592000', 'x-ratelimit-remaining': '125000000' };
    expect(budgetUse(budgets, 'team/chat', alice, own, NOW)).toMatchObject({ name: 'alice/monthly', usedRatio: 0.75 });
    // Several rate-limit domains: their values are joined, the first is read.
    const joined = { 'x-ratelimit-limit': '5, 5;w=3600,7, 7;w=60', 'x-ratelimit-remaining': '1,7' };
    expect(budgetUse(budgets, 'other/chat', bob, joined, NOW)).toMatchObject({ name: 'other/route', usedRatio: 0.8 });
  });

  it('reports nothing it cannot tie to a covering budget exactly', () => {
    const use = (limit: string | undefined, remaining: string | undefined, route = 'team/chat') =>
      budgetUse(
        budgets,
        route,
        bob,
        {
          ...(limit === undefined ? {} : { 'x-ratelimit-limit': limit }),
          ...(remaining === undefined ? {} : { 'x-ratelimit-remaining': remaining }),
        },
        NOW,
      );
    // No window to match (a provider's own header of the same name), no remaining, a malformed remaining.
    expect(use('100000', '10')).toBeUndefined();
    expect(use('100000, 100000;w=86400', undefined)).toBeUndefined();
    expect(use('100000, 100000;w=86400', '-3')).toBeUndefined();
    expect(use('100000, 100000;w=86400', '12abc')).toBeUndefined();
    // Limit or window of no covering budget; a shadow budget; another route's budget.
    expect(use('100000, 100000;w=3600', '10')).toBeUndefined();
    expect(use('5, 5;w=3600', '1')).toBeUndefined();
    // A window that is no unit of the rate-limit service (a provider's own 10-second limiter) is not Envoy's.
    expect(use('100000, 100000;w=10', '0')).toBeUndefined();
    // More remaining than the limit (not the rate-limit service's answer) counts as nothing used.
    expect(use('5, 5;w=3600', '9', 'other/chat')).toMatchObject({ usedRatio: 0 });
  });
});

describe('budgets alike in limit', () => {
  const alike: BudgetConfig[] = [
    { name: 'team/hourly', costKey: 'llm_total_token', limit: 1000, unit: 'HOUR', shadow: false },
    { name: 'team/daily', costKey: 'llm_total_token', limit: 1000, unit: 'DAY', shadow: false },
  ];

  it('leave the window unknown when their policies disagree, so no share is put on either', () => {
    const headers = { 'x-ratelimit-limit': '1000, 1000;w=3600, 1000;w=86400', 'x-ratelimit-remaining': '50' };
    expect(parseRateLimitLimit(headers['x-ratelimit-limit'])).toEqual({ limit: 1000, windowSeconds: undefined });
    expect(budgetUse(alike, 'team/chat', bob, headers, NOW)).toBeUndefined();
    // One policy of that limit: its window decides.
    const one = { 'x-ratelimit-limit': '1000, 1000;w=86400, 5;w=60', 'x-ratelimit-remaining': '50' };
    expect(budgetUse(alike, 'team/chat', bob, one, NOW)).toMatchObject({ name: 'team/daily', usedRatio: 0.95 });
  });
});

describe('budgetError', () => {
  it('names the budget and the end of its window in UTC', () => {
    const error = budgetError({
      name: 'team/daily-tokens',
      limit: 1,
      unit: 'DAY',
      windowEndsAt: Date.UTC(2026, 11, 7),
      windowKey: Date.UTC(2026, 11, 7),
    });
    expect(error).toMatchObject({ status: 429, type: 'rate_limit_exceeded', code: 'budget_exceeded' });
    expect(error.message).toBe(
      'budget "team/daily-tokens" is used up until 2026-12-07T00:00:00Z (UTC), when its window ends',
    );
  });
});

describe('ExhaustionLog', () => {
  it('reports a (consumer, budget, window) once, again in the next window', () => {
    const log = new ExhaustionLog();
    const day = windowEnd('DAY', NOW);
    expect(log.firstInWindow('alice', 'b', day, NOW)).toBe(true);
    expect(log.firstInWindow('alice', 'b', day, NOW + 1000)).toBe(false);
    expect(log.firstInWindow('bob', 'b', day, NOW)).toBe(true);
    const next = windowEnd('DAY', day);
    expect(log.firstInWindow('alice', 'b', next, day + 1)).toBe(true);
  });

  it('stays bounded', () => {
    const log = new ExhaustionLog();
    for (let i = 0; i < 25_000; i++) log.firstInWindow(`c${i}`, 'b', NOW + 1000, NOW);
    expect(log.size).toBeLessThanOrEqual(10_000);
  });
});
