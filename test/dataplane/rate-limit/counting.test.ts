/**
 * The rate-limit service's counting semantics (envoyproxy/ratelimit, fixed windows), identical on the in-memory
 * store and on a real Redis.
 */
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import {
  type DescriptorEntry,
  type LimitLookup,
  RateLimitService,
  type RateLimitUnit,
} from '../../../lib/dataplane/rate-limit';
import { type CounterStore, MemoryCounterStore, RedisCounterStore } from '../../../lib/dataplane/rate-limit/store';
import { redisUrlForTests } from '../../support/redis';

const redisUrl = redisUrlForTests('the rate-limit counting tests against a real Redis');

interface StoreCase {
  readonly name: string;
  make(): CounterStore;
  /** Reads a counter and its TTL straight from the backing store, bypassing our code. */
  inspect?(key: string): Promise<{ value: number | undefined; ttl: number }>;
}

const cases: StoreCase[] = [{ name: 'MemoryCounterStore', make: () => new MemoryCounterStore() }];
let inspector: Redis | undefined;
if (redisUrl) {
  cases.push({
    name: `RedisCounterStore (${redisUrl})`,
    make: () => new RedisCounterStore(redisUrl),
    async inspect(key) {
      inspector ??= new Redis(redisUrl);
      const [value, ttl] = await Promise.all([inspector.get(key), inspector.ttl(key)]);
      return { value: value === null ? undefined : Number(value), ttl };
    },
  });
}

afterAll(async () => {
  await inspector?.quit();
});

const limitOf =
  (requestsPerUnit: number, unit: RateLimitUnit, shadowMode = false): LimitLookup =>
  () => ({ limit: { requestsPerUnit, unit }, shadowMode, statsKey: 'rule-0-match-0' });

describe.each(cases)('counting on $name', (storeCase) => {
  let store: CounterStore;
  let nowMs: number;
  let service: RateLimitService;
  let domain: string;
  const entries = (tenant: string): DescriptorEntry[] => [
    { key: `${domain}/rule/0`, value: `${domain}/rule/0` },
    { key: 'rule-0-match-0', value: tenant },
  ];

  beforeEach(() => {
    store = storeCase.make();
    // A window start far from any boundary, so a test never straddles two windows by accident.
    nowMs = (Math.floor(Date.now() / 3_600_000) * 3600 + 1800) * 1000;
    service = new RateLimitService(store, { now: () => nowMs });
    domain = `test-${randomUUID()}`;
  });

  afterEach(async () => {
    await store.close();
  });

  it('admits N requests per window and answers OVER_LIMIT from the N+1th, with the remaining count', async () => {
    const limit = limitOf(3, 'Minute');
    const codes: string[] = [];
    const remaining: number[] = [];
    for (let i = 0; i < 4; i++) {
      const response = await service.shouldRateLimit(domain, [{ entries: entries('acme') }], 0, limit);
      codes.push(response.overallCode);
      remaining.push(response.statuses[0].limitRemaining);
    }
    expect(codes).toEqual(['OK', 'OK', 'OK', 'OVER_LIMIT']);
    expect(remaining).toEqual([2, 1, 0, 0]);
  });

  it(
    'a check-only request (hits 0) passes at exactly the limit and is refused only once the ' + 'count exceeds it',
    async () => {
      const limit = limitOf(100, 'Hour');
      expect(
        (await service.shouldRateLimit(domain, [{ entries: entries('t'), hitsAddend: 100 }], 0, limit)).overallCode,
      ).toBe('OK');
      expect(
        (await service.shouldRateLimit(domain, [{ entries: entries('t'), hitsAddend: 0 }], 0, limit)).overallCode,
      ).toBe('OK');
      // A stream-done charge is applied even when it goes over: the count becomes 101 ...
      expect(
        (await service.shouldRateLimit(domain, [{ entries: entries('t'), hitsAddend: 1 }], 0, limit)).overallCode,
      ).toBe('OVER_LIMIT');
      // ... and from then on even a check-only request is over limit.
      const check = await service.shouldRateLimit(domain, [{ entries: entries('t'), hitsAddend: 0 }], 0, limit);
      expect(check.overallCode).toBe('OVER_LIMIT');
      expect(check.statuses[0].limitRemaining).toBe(0);
    },
  );

  it('keeps one bucket per descriptor value, and the overall code is over limit if any descriptor is', async () => {
    const limit = limitOf(1, 'Second');
    await service.shouldRateLimit(domain, [{ entries: entries('a') }], 0, limit);
    const both = await service.shouldRateLimit(
      domain,
      [{ entries: entries('a') }, { entries: entries('b') }],
      0,
      limit,
    );
    expect(both.statuses.map((s) => s.code)).toEqual(['OVER_LIMIT', 'OK']);
    expect(both.overallCode).toBe('OVER_LIMIT');
  });

  it('starts a new bucket in the next window (windows are aligned, not sliding)', async () => {
    const limit = limitOf(1, 'Minute');
    nowMs = (Math.floor(nowMs / 60_000) * 60 + 59) * 1000; // the last second of a minute
    expect((await service.shouldRateLimit(domain, [{ entries: entries('t') }], 0, limit)).overallCode).toBe('OK');
    expect(
      (await service.shouldRateLimit(domain, [{ entries: entries('t') }], 0, limit)).statuses[0]
        .durationUntilResetSeconds,
    ).toBe(1);
    nowMs += 1000; // one second later: a new minute
    expect((await service.shouldRateLimit(domain, [{ entries: entries('t') }], 0, limit)).overallCode).toBe('OK');
  });

  it('shadow mode answers OK but still counts', async () => {
    const limit = limitOf(1, 'Hour', true);
    const codes = [];
    for (let i = 0; i < 3; i++)
      codes.push((await service.shouldRateLimit(domain, [{ entries: entries('t') }], 0, limit)).overallCode);
    expect(codes).toEqual(['OK', 'OK', 'OK']);
    const key = (await service.shouldRateLimit(domain, [{ entries: entries('t'), hitsAddend: 0 }], 0, limit))
      .statuses[0].key;
    if (storeCase.inspect) expect((await storeCase.inspect(key)).value).toBe(3);
  });

  it('descriptors without a limit are not counted', async () => {
    const response = await service.shouldRateLimit(domain, [{ entries: entries('t') }], 0, () => undefined);
    expect(response).toEqual({ overallCode: 'OK', statuses: [{ code: 'OK', limitRemaining: 0, key: '' }] });
  });

  it('stores counters under envoyproxy/ratelimit keys with the unit as expiry', async () => {
    const response = await service.shouldRateLimit(
      domain,
      [{ entries: entries('acme'), hitsAddend: 7 }],
      0,
      limitOf(100, 'Day'),
    );
    const windowStart = Math.floor(nowMs / 1000 / 86_400) * 86_400;
    expect(response.statuses[0].key).toBe(
      `${domain}_${domain}/rule/0_${domain}/rule/0_rule-0-match-0_acme_${windowStart}`,
    );
    if (!storeCase.inspect) return;
    const stored = await storeCase.inspect(response.statuses[0].key);
    expect(stored.value).toBe(7);
    expect(stored.ttl).toBeGreaterThan(86_390);
    expect(stored.ttl).toBeLessThanOrEqual(86_400);
  });
});

describe('MemoryCounterStore', () => {
  it('expires counters after their window and refuses to grow without bound', async () => {
    let now = 0;
    const store = new MemoryCounterStore({ now: () => now, maxKeys: 2 });
    expect(await store.incrementAndGet('a', 2, 1)).toBe(2);
    now = 999;
    expect(await store.incrementAndGet('a', 1, 1)).toBe(3);
    now = 2000;
    expect(await store.incrementAndGet('a', 1, 1)).toBe(1);
    await store.incrementAndGet('b', 1, 60);
    await expect(store.incrementAndGet('c', 1, 60)).rejects.toThrow(/memory counter store is full/);
    now = 10_000; // 'a' has expired: its slot is reclaimed
    expect(await store.incrementAndGet('c', 1, 60)).toBe(1);
    await expect(store.incrementAndGet('d', -1, 60)).rejects.toThrow(/non-negative integer/);
  });
});

describe('concurrent charges', () => {
  it.each(cases)(
    'on $name: 50 concurrent stream-done charges of 3 all land (atomic INCRBY), from a cold connection',
    async (storeCase) => {
      const store = storeCase.make();
      const service = new RateLimitService(store);
      const domain = `test-${randomUUID()}`;
      const entries = [{ key: 'k', value: 'v' }];
      await Promise.all(
        Array.from({ length: 50 }, () =>
          service.shouldRateLimit(domain, [{ entries, hitsAddend: 3 }], 0, limitOf(1000, 'Hour')),
        ),
      );
      const check = await service.shouldRateLimit(domain, [{ entries, hitsAddend: 0 }], 0, limitOf(1000, 'Hour'));
      expect(check.statuses[0].limitRemaining).toBe(1000 - 150);
      await store.close();
    },
  );
});
