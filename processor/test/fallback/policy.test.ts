import type { BackendRef, FallbackConfig } from '@ai-gateway-constructs/processor-config';
import { failoverReason, nextFallback } from '../../src/fallback';
import { classifyResponse } from '../../src/extproc/local-replies';
import { CircuitBreakers } from '../../src/routing/breaker';

const FALLBACK: FallbackConfig = {
  statuses: [429, 503],
  connectionFailures: true,
  timeouts: true,
  maxAttempts: 3,
  attemptTimeoutMs: 1000,
};
const SETTINGS = { failureThreshold: 1, openDurationMs: 60_000 };

describe('failoverReason', () => {
  it('moves on for a configured status of the backend, not for another', () => {
    expect(failoverReason(FALLBACK, classifyResponse('via_upstream'), 503)).toBe('status');
    expect(failoverReason(FALLBACK, classifyResponse(undefined), 429)).toBe('status');
    expect(failoverReason(FALLBACK, classifyResponse('via_upstream'), 500)).toBeUndefined();
    expect(failoverReason(FALLBACK, classifyResponse('via_upstream'), 200)).toBeUndefined();
  });

  it("never moves on for Envoy's own replies: a budget's 429, no route", () => {
    expect(failoverReason(FALLBACK, classifyResponse('request_rate_limited'), 429)).toBeUndefined();
    expect(failoverReason(FALLBACK, classifyResponse('route_not_found'), 404)).toBeUndefined();
    // Envoy's own load shedding says nothing about the backend either.
    const overflow = classifyResponse('upstream_reset_before_response_started{overflow}');
    expect(failoverReason(FALLBACK, overflow, 503)).toBeUndefined();
  });

  it('moves on for connection failures and timeouts only when configured', () => {
    const refused = classifyResponse(
      'upstream_reset_before_response_started{remote_connection_failure,delayed_connect_error:_111}',
    );
    const timedOut = classifyResponse('response_timeout');
    expect(failoverReason(FALLBACK, refused, 503)).toBe('connection_failure');
    expect(failoverReason(FALLBACK, classifyResponse('no_healthy_upstream'), 503)).toBe('connection_failure');
    expect(failoverReason(FALLBACK, timedOut, 504)).toBe('timeout');
    expect(failoverReason(FALLBACK, classifyResponse('upstream_per_try_timeout'), 504)).toBe('timeout');
    const neither = { ...FALLBACK, connectionFailures: false, timeouts: false };
    expect(failoverReason(neither, refused, 503)).toBeUndefined();
    expect(failoverReason(neither, timedOut, 504)).toBeUndefined();
    // A configured status does not turn Envoy's reply into the backend's answer.
    expect(failoverReason({ ...neither, statuses: [503] }, refused, 503)).toBeUndefined();
  });
});

describe('nextFallback', () => {
  const refs: BackendRef[] = [
    { backend: 'a', weight: 1, priority: 0 },
    { backend: 'b1', weight: 1, priority: 1 },
    { backend: 'b2', weight: 3, priority: 1 },
    { backend: 'idle', weight: 0, priority: 1 },
    { backend: 'c', weight: 1, priority: 2 },
  ];

  it('takes the lowest weighted priority above the one tried, weighted within it', () => {
    const breakers = new CircuitBreakers();
    expect(nextFallback(refs, new Set(['a']), 0, breakers, SETTINGS, () => 0)?.backend).toBe('b1');
    expect(nextFallback(refs, new Set(['a']), 0, breakers, SETTINGS, () => 0.3)?.backend).toBe('b2');
    expect(nextFallback(refs, new Set(['a', 'b1']), 1, breakers, SETTINGS)?.backend).toBe('c');
    expect(nextFallback(refs, new Set(['a', 'c']), 2, breakers, SETTINGS)).toBeUndefined();
  });

  it('never offers a backend already tried or without weight', () => {
    const breakers = new CircuitBreakers();
    const picked = new Set<string>();
    for (let i = 0; i < 50; i++) picked.add(nextFallback(refs, new Set(['a', 'b2']), 0, breakers, SETTINGS)!.backend);
    expect([...picked]).toEqual(['b1']);
  });

  it('prefers a backend whose breaker is closed, and uses an open one when it is all there is', () => {
    const breakers = new CircuitBreakers();
    breakers.record('b1', false, SETTINGS);
    expect(nextFallback(refs, new Set(['a']), 0, breakers, SETTINGS, () => 0)?.backend).toBe('b2');
    breakers.record('b2', false, SETTINGS);
    expect(nextFallback(refs, new Set(['a']), 0, breakers, SETTINGS, () => 0)?.backend).toBe('b1');
  });
});
