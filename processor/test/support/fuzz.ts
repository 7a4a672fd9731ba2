/**
 * Seeded randomness and time bounds for the fuzz and soak suites (processor/test/fuzz).
 *
 * - `FUZZ_SEED`: the base seed (an integer, or `random` for a fresh one). Default: a fixed seed, so `npm test` is
 *   deterministic. Every test derives its own seed from the base seed and its name, so one test replays alone.
 * - `FUZZ_SCALE`: multiplies iteration counts and time limits (default 1; `npm run fuzz` uses 20).
 *
 * A failing fuzz test names the base seed and scale in its message: `FUZZ_SEED=<n> FUZZ_SCALE=<s>` replays it.
 */
import { randomInt } from 'node:crypto';

/** The default seed of `npm test` (any fixed number; changing it changes the generated cases). */
export const DEFAULT_FUZZ_SEED = 20261206;

function readSeed(): number {
  const raw = process.env.FUZZ_SEED?.trim();
  if (raw === undefined || raw === '') return DEFAULT_FUZZ_SEED;
  if (raw === 'random') return randomInt(1, 2 ** 31);
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new Error(`FUZZ_SEED must be a non-negative integer or "random", got ${JSON.stringify(raw)}`);
  return seed;
}

function readScale(): number {
  const raw = process.env.FUZZ_SCALE?.trim();
  if (raw === undefined || raw === '') return 1;
  const scale = Number(raw);
  if (!Number.isFinite(scale) || scale <= 0)
    throw new Error(`FUZZ_SCALE must be a positive number, got ${JSON.stringify(raw)}`);
  return scale;
}

/** Read once per test file (a `random` seed is drawn once and reported with every failure of the file). */
export const FUZZ_SEED = readSeed();
export const FUZZ_SCALE = readScale();

/** `n` iterations times FUZZ_SCALE (at least 1). */
export function scaled(n: number): number {
  return Math.max(1, Math.round(n * FUZZ_SCALE));
}

/** A jest timeout for work that grows with FUZZ_SCALE. */
export function scaledTimeout(ms: number): number {
  return Math.round(ms * Math.max(1, FUZZ_SCALE));
}

/** Small, fast, seedable PRNG (mulberry32): the same seed gives the same sequence on every platform. */
export class Rng {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  bool(probability = 0.5): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(items.length)];
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** A string of `n` characters drawn from `alphabet`. */
  text(n: number, alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-_.'): string {
    let out = '';
    for (let i = 0; i < n; i++) out += alphabet[this.int(alphabet.length)];
    return out;
  }

  /** A derived generator (independent sequence) for a sub-case. */
  fork(): Rng {
    return new Rng(this.int(2 ** 31));
  }
}

/** FNV-1a: a test's own seed from the base seed and its name. */
function hashName(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** How to replay a failure, prefixed to the failure message. */
export function replayHint(): string {
  return `[replay: FUZZ_SEED=${FUZZ_SEED} FUZZ_SCALE=${FUZZ_SCALE}]`;
}

/**
 * `it` with a seeded generator: the test's generator comes from FUZZ_SEED and the test's name, and a failure's
 * message starts with the seed and scale that replay it.
 */
export function fuzzIt(name: string, body: (rng: Rng) => Promise<void> | void, timeoutMs: number): void {
  it(
    name,
    async () => {
      const rng = new Rng(hashName(FUZZ_SEED, name));
      try {
        await body(rng);
      } catch (error) {
        if (error instanceof Error) {
          error.message = `${replayHint()} ${error.message}`;
          throw error;
        }
        throw new Error(`${replayHint()} ${String(error)}`, { cause: error });
      }
    },
    scaledTimeout(timeoutMs),
  );
}

/** Thrown when the processor does not answer in time: a hang fails fast and says what it was waiting for. */
export class DeadlineError extends Error {}

/** Resolves like `promise`, or rejects with "<what>: no answer within <ms> ms". */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Polls `check` until it holds, or fails after `ms` with `what` and the last observed value. */
export async function waitUntil(check: () => boolean, ms: number, what: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new DeadlineError(`${what()} (after ${ms} ms)`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Every split of `bytes` into two pieces at each offset 1..n-1 (`stride` > 1 samples every stride-th offset). */
export function* twoWaySplits(bytes: Buffer, stride = 1): Generator<Buffer[]> {
  for (let k = 1; k < bytes.length; k += stride) yield [bytes.subarray(0, k), bytes.subarray(k)];
}

/** One chunk per byte. */
export function byteByByte(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) out.push(bytes.subarray(i, i + 1));
  return out;
}

/** Random cut points (up to `maxPieces` pieces, none empty). */
export function randomSplit(rng: Rng, bytes: Buffer, maxPieces: number): Buffer[] {
  if (bytes.length <= 1) return [bytes];
  const count = Math.min(bytes.length - 1, rng.range(1, Math.max(1, maxPieces - 1)));
  const cuts = new Set<number>();
  while (cuts.size < count) cuts.add(rng.range(1, bytes.length - 1));
  const sorted = [...cuts].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let start = 0;
  for (const cut of sorted) {
    out.push(bytes.subarray(start, cut));
    start = cut;
  }
  out.push(bytes.subarray(start));
  return out;
}
