/** Ids of request spans: lowercase hex of the W3C lengths, never the invalid all-zero id, new ones after a refill. */
import { isValidSpanId, isValidTraceId } from '@opentelemetry/api';
import { PooledIdGenerator } from '../../src/tracing/ids';

it('gives valid, distinct trace and span ids, across many refills of its pool', () => {
  const ids = new PooledIdGenerator();
  const seen = new Set<string>();
  // 2,000 spans of new traces: 48,000 bytes, a dozen pools.
  for (let i = 0; i < 2000; i++) {
    const traceId = ids.generateTraceId();
    const spanId = ids.generateSpanId();
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(isValidTraceId(traceId) && isValidSpanId(spanId)).toBe(true);
    seen.add(traceId).add(spanId);
  }
  expect(seen.size).toBe(4000);
});

it('never gives the all-zero id, even when the random bytes are zero', () => {
  const crypto = jest.requireActual<typeof import('node:crypto')>('node:crypto');
  let calls = 0;
  const spy = jest.spyOn(crypto, 'randomFillSync').mockImplementation(((buffer: Buffer) => {
    // The first pool is all zeros; the next ones random.
    if (calls++ === 0) return buffer.fill(0);
    return crypto.webcrypto.getRandomValues(buffer);
  }) as typeof crypto.randomFillSync);
  try {
    const ids = new PooledIdGenerator();
    const spanId = ids.generateSpanId();
    expect(isValidSpanId(spanId)).toBe(true);
    expect(calls).toBe(2);
  } finally {
    spy.mockRestore();
  }
});
