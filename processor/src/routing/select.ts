import type { BackendRef } from '@ai-gateway-constructs/processor-config';
import type { BreakerSettings, CircuitBreakers } from './breaker';

/**
 * Picks a backend ref: the lowest priority that has an available backend, then weighted random within it.
 * When every backend is open, the lowest priority is used anyway (a failing answer beats none).
 */
export function selectBackend(
  refs: readonly BackendRef[],
  breakers: CircuitBreakers,
  settings: BreakerSettings,
  random: () => number = Math.random,
): BackendRef {
  // One backend: nothing to choose (when it is open it is still used, as below).
  if (refs.length === 1 && refs[0].weight > 0) return refs[0];
  let best: BackendRef[] | undefined;
  let bestPriority = Infinity;
  let fallback: BackendRef[] = [];
  let fallbackPriority = Infinity;
  for (const ref of refs) {
    if (ref.weight === 0) continue;
    if (ref.priority < fallbackPriority) {
      fallbackPriority = ref.priority;
      fallback = [ref];
    } else if (ref.priority === fallbackPriority) fallback.push(ref);
    if (ref.priority > bestPriority || !breakers.available(ref.backend, settings)) continue;
    if (ref.priority < bestPriority) {
      bestPriority = ref.priority;
      best = [ref];
    } else best!.push(ref);
  }
  return pickWeighted(best ?? fallback, random);
}

/** One ref of a non-empty pool, each with a chance proportional to its weight. */
export function pickWeighted(pool: readonly BackendRef[], random: () => number = Math.random): BackendRef {
  if (pool.length === 1) return pool[0];
  let total = 0;
  for (const ref of pool) total += ref.weight;
  let point = random() * total;
  for (const ref of pool) {
    point -= ref.weight;
    if (point < 0) return ref;
  }
  return pool[pool.length - 1];
}
