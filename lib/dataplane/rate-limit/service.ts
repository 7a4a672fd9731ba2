/** The rate-limit service as envoyproxy/ratelimit answers (Redis fixed windows, no local cache: EG's deployment). */
import {
  findServiceLimit,
  type DescriptorEntry,
  type RateLimitDescriptor,
  type ServiceDescriptor,
  type ServiceLimit,
} from './descriptors';
import { unitSeconds, type RateLimitUnit } from './rules';
import type { CounterStore } from './store';

export type LimitCode = 'OK' | 'OVER_LIMIT';

export interface DescriptorStatus {
  readonly code: LimitCode;
  readonly currentLimit?: ServiceLimit;
  readonly limitRemaining: number;
  readonly durationUntilResetSeconds?: number;
  /** The counter key charged (empty when no limit applied). */
  readonly key: string;
}

export interface RateLimitResponse {
  readonly overallCode: LimitCode;
  readonly statuses: DescriptorStatus[];
}

/** Where the service looks up limits: a domain's descriptor trees (the service configuration). */
export type LimitLookup = (descriptor: RateLimitDescriptor) => { limit: ServiceLimit; shadowMode: boolean } | undefined;

/** A lookup in the descriptor trees of one domain (envoyproxy/ratelimit `GetLimit`). */
export function lookupIn(descriptors: readonly ServiceDescriptor[]): LimitLookup {
  return (descriptor) => {
    if (descriptor.limit) return { limit: descriptor.limit, shadowMode: false };
    const node = findServiceLimit(descriptors, descriptor.entries);
    return node?.rateLimit ? { limit: node.rateLimit, shadowMode: node.shadowMode } : undefined;
  };
}

export class RateLimitService {
  private readonly now: () => number;

  constructor(
    private readonly store: CounterStore,
    options: { now?: () => number } = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  /**
   * One `ShouldRateLimit` call. `hitsAddend` is the request-level addend (Envoy sends 0 unless a filter state
   * sets it, and the service then uses 1); a descriptor's own addend wins, 0 included. Over limit means the count
   * after the increment exceeds the limit: a check-only request (0 hits) at exactly the limit still passes.
   */
  async shouldRateLimit(
    domain: string,
    descriptors: readonly RateLimitDescriptor[],
    hitsAddend: number,
    limits: LimitLookup,
  ): Promise<RateLimitResponse> {
    const nowSeconds = Math.floor(this.now() / 1000);
    const statuses = await Promise.all(
      descriptors.map(async (descriptor): Promise<DescriptorStatus> => {
        const found = limits(descriptor);
        if (!found) return { code: 'OK', limitRemaining: 0, key: '' };
        const hits = descriptor.hitsAddend ?? Math.max(1, hitsAddend);
        const window = unitSeconds(found.limit.unit);
        const key = counterKey(domain, descriptor.entries, found.limit.unit, nowSeconds);
        const after = await this.store.incrementAndGet(key, hits, window);
        const over = after > found.limit.requestsPerUnit;
        return {
          code: over && !found.shadowMode ? 'OVER_LIMIT' : 'OK',
          currentLimit: found.limit,
          limitRemaining: over ? 0 : found.limit.requestsPerUnit - after,
          durationUntilResetSeconds: window - (nowSeconds % window),
          key,
        };
      }),
    );
    return { overallCode: statuses.some((s) => s.code === 'OVER_LIMIT') ? 'OVER_LIMIT' : 'OK', statuses };
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

/** envoyproxy/ratelimit's cache key: `<domain>_<key>_<value>_..._<window start in unix seconds>`. */
export function counterKey(
  domain: string,
  entries: readonly DescriptorEntry[],
  unit: RateLimitUnit,
  nowSeconds: number,
): string {
  const window = unitSeconds(unit);
  let key = `${domain}_`;
  for (const entry of entries) key += `${entry.key}_${entry.value}_`;
  return key + String(Math.floor(nowSeconds / window) * window);
}
