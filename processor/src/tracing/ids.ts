/**
 * Trace and span ids of request spans: random bytes from `crypto.randomFillSync` for a few hundred spans at a time,
 * turned into hex once for all of them; each id is a slice of that string. The SDK's generator (`RandomIdGenerator`)
 * draws `Math.random` and converts every id to hex by itself: two native calls and a buffer check per span, about a
 * tenth of what tracing a request costs (bench/tracing-span.bench.ts compares both).
 */
import { randomFillSync } from 'node:crypto';
import { INVALID_SPANID, INVALID_TRACEID } from '@opentelemetry/api';
import type { IdGenerator } from '@opentelemetry/sdk-trace-base';

/** Random bytes drawn at a time: 170 spans of a new trace (24 bytes each). */
const POOL_BYTES = 4096;

export class PooledIdGenerator implements IdGenerator {
  private readonly bytes = Buffer.allocUnsafe(POOL_BYTES);
  /** The pool in hex; ids are taken from `offset` on. */
  private hex = '';
  private offset = 0;

  generateTraceId(): string {
    return this.next(32, INVALID_TRACEID);
  }

  generateSpanId(): string {
    return this.next(16, INVALID_SPANID);
  }

  /** The next `digits` hex digits of the pool, drawn anew when used up; never the all-zero (invalid) id. */
  private next(digits: number, invalid: string): string {
    for (;;) {
      if (this.offset + digits > this.hex.length) {
        randomFillSync(this.bytes);
        this.hex = this.bytes.toString('hex');
        this.offset = 0;
      }
      const id = this.hex.slice(this.offset, (this.offset += digits));
      if (id !== invalid) return id;
    }
  }
}
