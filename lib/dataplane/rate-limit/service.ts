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

/**
 * Where the service looks up limits: a domain's descriptor trees (the service configuration). `statsKey` names the
 * limit's statistics without the domain (`<key>_<value>.<key>...`, see `RateLimitStats`).
 */
export type LimitLookup = (
  descriptor: RateLimitDescriptor,
) => { limit: ServiceLimit; shadowMode: boolean; statsKey: string } | undefined;

/**
 * A lookup in the descriptor trees of one domain (envoyproxy/ratelimit `GetLimit`, `src/config/config_impl.go`).
 * A descriptor carrying its own limit (Envoy's `limit` override, from `limit.fromMetadata`) gets exactly that limit,
 * with shadow mode OFF whatever the configuration says ("When limit override is provided by envoy config, we don't
 * want to enable shadow_mode"), and statistics named by its entries' keys and values (`descriptorKey`). A configured
 * limit's statistics are named by the configuration path: `key_value` per level, the key alone for a level without a
 * value (a Distinct selector counts all its values together).
 */
export function lookupIn(descriptors: readonly ServiceDescriptor[]): LimitLookup {
  return (descriptor) => {
    if (descriptor.limit) {
      const statsKey = descriptor.entries.map((e) => (e.value === '' ? e.key : `${e.key}_${e.value}`)).join('.');
      return { limit: descriptor.limit, shadowMode: false, statsKey };
    }
    const node = findServiceLimit(descriptors, descriptor.entries);
    if (!node?.rateLimit) return undefined;
    return { limit: node.rateLimit, shadowMode: node.shadowMode, statsKey: configPath(descriptors, descriptor) };
  };
}

/** The configuration path a descriptor's lookup takes, as envoyproxy/ratelimit names the limit's stats. */
function configPath(descriptors: readonly ServiceDescriptor[], descriptor: RateLimitDescriptor): string {
  const parts: string[] = [];
  let level: readonly ServiceDescriptor[] = descriptors;
  for (const entry of descriptor.entries) {
    const next =
      level.find((d) => d.key === entry.key && d.value === entry.value) ??
      level.find((d) => d.key === entry.key && d.value === undefined);
    if (!next) break;
    parts.push(next.value === undefined || next.value === '' ? next.key : `${next.key}_${next.value}`);
    level = next.descriptors;
  }
  return parts.join('.');
}

/**
 * The counters envoyproxy/ratelimit keeps per limit (`ratelimit.service.rate_limit.<domain>.<path>.*`), as hits:
 * `totalHits` (every hit charged), `overLimit` and `withinLimit` (the hits beyond / within the limit: of a charge that
 * crosses the limit only the part beyond it counts as over), and `shadowMode` (the over-limit hits that a shadow-mode
 * limit let through). Near-limit counts and the local cache are not modelled.
 */
export interface RateLimitStats {
  totalHits: number;
  overLimit: number;
  withinLimit: number;
  shadowMode: number;
}

export class RateLimitService {
  private readonly now: () => number;
  private readonly statistics = new Map<string, RateLimitStats>();

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
        if (descriptor.invalidLimitUnit) {
          // envoyproxy/ratelimit's UnitToDivider panics on UNKNOWN; the call fails (Envoy: a service error).
          throw new Error(`rate-limit service: a limit override with unit UNKNOWN in domain ${domain}`);
        }
        const found = limits(descriptor);
        if (!found) return { code: 'OK', limitRemaining: 0, key: '' };
        const hits = descriptor.hitsAddend ?? Math.max(1, hitsAddend);
        const window = unitSeconds(found.limit.unit);
        const key = counterKey(domain, descriptor.entries, found.limit.unit, nowSeconds);
        const after = await this.store.incrementAndGet(key, hits, window);
        const over = after > found.limit.requestsPerUnit;
        this.count(`${domain}.${found.statsKey}`, hits, after, found.limit.requestsPerUnit, found.shadowMode);
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

  /** A copy of the statistics of every limit charged so far, by `<domain>.<path>` (see `RateLimitStats`). */
  stats(): Map<string, RateLimitStats> {
    return new Map([...this.statistics].map(([key, value]) => [key, { ...value }]));
  }

  close(): Promise<void> {
    return this.store.close();
  }

  /** envoyproxy/ratelimit `GetResponseDescriptorStatus` / `checkOverLimitThreshold` / `increaseShadowModeStats`. */
  private count(key: string, hits: number, after: number, limit: number, shadowMode: boolean): void {
    let stats = this.statistics.get(key);
    if (!stats) {
      stats = { totalHits: 0, overLimit: 0, withinLimit: 0, shadowMode: 0 };
      this.statistics.set(key, stats);
    }
    stats.totalHits += hits;
    if (after <= limit) {
      stats.withinLimit += hits;
      return;
    }
    const before = after - hits;
    const overHits = before >= limit ? hits : after - limit;
    stats.overLimit += overHits;
    if (shadowMode) stats.shadowMode += overHits;
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
