/**
 * Per-backend circuit breakers: `failureThreshold` consecutive failures open a backend for
 * `openDurationMs`; then one probe request is let through (half-open); its outcome closes or reopens it.
 * State is keyed by backend name and survives config reloads.
 */
export interface BreakerSettings {
  failureThreshold: number;
  openDurationMs: number;
}

interface BreakerState {
  failures: number;
  openUntil: number;
  probing: boolean;
}

export class CircuitBreakers {
  private readonly states = new Map<string, BreakerState>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Whether a new request may go to the backend (does not reserve the half-open probe). */
  available(backend: string, settings: BreakerSettings): boolean {
    const state = this.states.get(backend);
    if (!state || state.failures < settings.failureThreshold) return true;
    return !state.probing && this.now() >= state.openUntil;
  }

  /** Called when a request is sent to the backend: takes the half-open probe slot if the breaker is open. */
  acquire(backend: string, settings: BreakerSettings): void {
    const state = this.states.get(backend);
    if (state && state.failures >= settings.failureThreshold && this.now() >= state.openUntil) state.probing = true;
  }

  record(backend: string, success: boolean, settings: BreakerSettings): void {
    let state = this.states.get(backend);
    if (success) {
      if (state) this.states.delete(backend);
      return;
    }
    if (!state) {
      state = { failures: 0, openUntil: 0, probing: false };
      this.states.set(backend, state);
    }
    state.failures += 1;
    state.probing = false;
    if (state.failures >= settings.failureThreshold) state.openUntil = this.now() + settings.openDurationMs;
  }

  /** A request ended without an outcome (client abort): frees the half-open probe slot. */
  release(backend: string): void {
    const state = this.states.get(backend);
    if (state) state.probing = false;
  }

  isOpen(backend: string, settings: BreakerSettings): boolean {
    const state = this.states.get(backend);
    return state !== undefined && state.failures >= settings.failureThreshold;
  }
}
