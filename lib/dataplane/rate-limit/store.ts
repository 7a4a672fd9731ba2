/**
 * Counter stores for the local rate-limit service, with the fixed-window semantics of envoyproxy/ratelimit's
 * Redis backend: every hit is `INCRBY key hits` followed by `EXPIRE key <unit seconds>` on a key that already
 * names its window, and the answer is the count after the increment. `hits` may be 0 (a check without a charge).
 */
import Redis from 'ioredis';

export interface CounterStore {
  /** Adds `hits` (>= 0) to `key`, (re)sets its expiry to `expirySeconds`, and returns the count after the addition. */
  incrementAndGet(key: string, hits: number, expirySeconds: number): Promise<number>;
  close(): Promise<void>;
}

/** In-process counters (the default for `ai-gateway dev`): a Map with per-key expiry. */
export class MemoryCounterStore implements CounterStore {
  private readonly counters = new Map<string, { count: number; expiresAtMs: number }>();
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(options: { maxKeys?: number; now?: () => number } = {}) {
    this.maxKeys = options.maxKeys ?? 100_000;
    this.now = options.now ?? Date.now;
  }

  async incrementAndGet(key: string, hits: number, expirySeconds: number): Promise<number> {
    checkHits(hits);
    const nowMs = this.now();
    let counter = this.counters.get(key);
    if (counter && counter.expiresAtMs <= nowMs) {
      this.counters.delete(key);
      counter = undefined;
    }
    if (!counter) {
      if (this.counters.size >= this.maxKeys) this.evictExpired(nowMs);
      if (this.counters.size >= this.maxKeys) {
        throw new Error(`memory counter store is full (${this.maxKeys} live keys); use Redis for this load`);
      }
      counter = { count: 0, expiresAtMs: 0 };
      this.counters.set(key, counter);
    }
    counter.count += hits;
    counter.expiresAtMs = nowMs + expirySeconds * 1000;
    return counter.count;
  }

  /** The current count of `key` (0 when absent or expired); for tests and diagnostics. */
  peek(key: string): number {
    const counter = this.counters.get(key);
    return counter && counter.expiresAtMs > this.now() ? counter.count : 0;
  }

  async close(): Promise<void> {
    this.counters.clear();
  }

  private evictExpired(nowMs: number): void {
    for (const [key, counter] of this.counters) if (counter.expiresAtMs <= nowMs) this.counters.delete(key);
  }
}

/** Counters in a real Redis, exactly the commands envoyproxy/ratelimit pipelines (INCRBY then EXPIRE). */
export class RedisCounterStore implements CounterStore {
  private readonly client: Redis;
  private connecting: Promise<void> | undefined;

  constructor(url: string, options: { connectTimeoutMs?: number } = {}) {
    this.client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs ?? 2000,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
    });
  }

  async incrementAndGet(key: string, hits: number, expirySeconds: number): Promise<number> {
    checkHits(hits);
    if (this.client.status === 'wait') this.connecting ??= this.client.connect();
    if (this.connecting) await this.connecting;
    const results = await this.client.pipeline().incrby(key, hits).expire(key, expirySeconds).exec();
    if (!results) throw new Error('redis pipeline returned no result');
    const [incr, expire] = results;
    if (incr[0]) throw incr[0];
    if (expire[0]) throw expire[0];
    return Number(incr[1]);
  }

  async close(): Promise<void> {
    if (this.client.status === 'wait' || this.client.status === 'end') {
      this.client.disconnect();
      return;
    }
    await this.client.quit();
  }
}

function checkHits(hits: number): void {
  if (!Number.isSafeInteger(hits) || hits < 0) throw new Error(`hits must be a non-negative integer, got ${hits}`);
}
