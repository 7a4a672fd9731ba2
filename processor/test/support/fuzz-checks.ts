/**
 * Invariants the fuzz suites check on every exchange, and a collector that runs many cases and reports the
 * distinct failures (with a count and the first example of each) instead of stopping at the first.
 */
import type { ClientApi } from '../../src/translate/types';
import { DeadlineError } from './fuzz';
import type { ExchangeOutcome } from './session-driver';

/** Problems found across many generated cases: a failure message -> how often, first example. */
export class Findings {
  private readonly found = new Map<string, { count: number; example: string }>();
  cases = 0;
  /** Cases that missed a deadline: after a few, a loop stops (`exhausted`) so a hang fails fast. */
  deadlines = 0;

  add(problem: string, example: string): void {
    const entry = this.found.get(problem);
    if (entry) entry.count += 1;
    else this.found.set(problem, { count: 1, example });
  }

  /** Runs one case; an exception (e.g. a missed deadline) is a finding too. */
  async check(example: () => string, body: () => Promise<string[]> | string[]): Promise<void> {
    this.cases += 1;
    let problems: string[];
    try {
      problems = await body();
    } catch (error) {
      if (error instanceof DeadlineError) this.deadlines += 1;
      problems = [`threw: ${(error as Error).message}`];
    }
    for (const problem of problems) this.add(problem, example());
  }

  /** Enough cases hung to know the answer; the rest would only add their deadlines to the run time. */
  get exhausted(): boolean {
    return this.deadlines >= 3;
  }

  get size(): number {
    return this.found.size;
  }

  /** Fails with every distinct problem (most frequent first) when there is any. */
  assertNone(what: string): void {
    if (this.found.size === 0) return;
    const lines = [...this.found.entries()]
      .sort((a, b) => b[1].count - a[1].count)
      .slice(0, 15)
      .map(([problem, { count, example }]) => `  - ${count}x ${problem}\n      e.g. ${example}`);
    const stopped = this.exhausted ? ` (stopped early after ${this.deadlines} missed deadlines)` : '';
    throw new Error(
      `${what}: ${this.found.size} distinct problem(s) in ${this.cases} cases${stopped}:\n${lines.join('\n')}`,
    );
  }
}

/** A short printable form of a generated input (for failure messages). */
export function preview(bytes: Buffer | string, max = 160): string {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
  const text = JSON.stringify(buffer.subarray(0, max).toString('latin1'));
  return buffer.length > max ? `${text}... (${buffer.length} bytes)` : text;
}

/** Problems with an error body in the client API's own schema; [] when it conforms. */
export function errorSchemaProblems(api: ClientApi, body: Buffer, headers: Record<string, string>): string[] {
  const problems: string[] = [];
  if (!/^application\/json\b/.test(headers['content-type'] ?? ''))
    problems.push(`error content-type is ${JSON.stringify(headers['content-type'])}, not application/json`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return [...problems, `error body is not JSON: ${preview(body, 80)}`];
  }
  const isString = (v: unknown): boolean => typeof v === 'string';
  const stringOrNull = (v: unknown): boolean => v === null || typeof v === 'string';
  const record = parsed as Record<string, unknown>;
  if (api === 'Anthropic') {
    const error = record?.error as Record<string, unknown> | undefined;
    const ok =
      record?.type === 'error' &&
      Object.keys(record).sort().join() === 'error,type' &&
      error !== undefined &&
      isString(error.type) &&
      isString(error.message) &&
      Object.keys(error).every((k) => k === 'type' || k === 'message');
    if (!ok) problems.push(`error body is not Anthropic's {type:"error",error:{type,message}}: ${preview(body, 120)}`);
  } else {
    const error = record?.error as Record<string, unknown> | undefined;
    const ok =
      record !== null &&
      typeof record === 'object' &&
      Object.keys(record).join() === 'error' &&
      error !== undefined &&
      isString(error.message) &&
      isString(error.type) &&
      stringOrNull(error.param) &&
      stringOrNull(error.code) &&
      Object.keys(error).sort().join() === 'code,message,param,type';
    if (!ok) problems.push(`error body is not OpenAI's {error:{message,type,param,code}}: ${preview(body, 120)}`);
  }
  return problems;
}

/**
 * The top-level keys of a JSON object text, in order, duplicates kept (JSON.parse keeps only the last): how a
 * provider that reads the first or the last duplicate would see the body. Undefined when the text is not an object.
 */
export function topLevelKeys(text: string): string[] | undefined {
  let i = 0;
  const n = text.length;
  const skipSpace = (): void => {
    while (i < n && ' \t\r\n'.includes(text[i])) i++;
  };
  skipSpace();
  if (text[i] !== '{') return undefined;
  let depth = 0;
  const keys: string[] = [];
  let expectKey = false;
  for (; i < n; i++) {
    const c = text[i];
    if (c === '"') {
      const start = i;
      i++;
      while (i < n && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        let j = i + 1;
        while (j < n && ' \t\r\n'.includes(text[j])) j++;
        if (text[j] === ':') keys.push(JSON.parse(text.slice(start, i + 1)) as string);
      }
      expectKey = false;
      continue;
    }
    if (c === '{' || c === '[') {
      depth++;
      expectKey = c === '{' && depth === 1;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
}

/** The API a path belongs to in the fuzz configs (the Anthropic endpoint lives under /anthropic). */
export function apiOf(path: string): ClientApi {
  return path.startsWith('/anthropic/') ? 'Anthropic' : 'OpenAI';
}

/**
 * The invariants of a hostile request: exactly one answer per message (no extra answers), and either a 4xx
 * immediate response in the client's error schema or a forwarded request whose body (when replaced) is JSON with
 * at most one top-level "model", equal to the model the request was routed by.
 */
export function hostileRequestProblems(
  api: ClientApi,
  outcome: ExchangeOutcome,
  modelOverrides: ReadonlyMap<string, string>,
): string[] {
  const problems: string[] = [];
  if (outcome.extraAnswers > 0) problems.push(`${outcome.extraAnswers} answer(s) more than messages sent`);
  const immediate = outcome.immediate;
  if (immediate) {
    if (immediate.status < 400 || immediate.status > 499)
      problems.push(`status ${immediate.status} (a 4xx belongs here)`);
    problems.push(...errorSchemaProblems(api, immediate.body, immediate.headers));
    return problems;
  }
  const upstream = outcome.upstream;
  if (!upstream) return [...problems, 'neither answered locally nor forwarded'];
  const routed = upstream.headers['x-ai-eg-model'];
  if (routed === undefined) problems.push('forwarded without x-ai-eg-model');
  const text = upstream.body.toString('utf8');
  if (upstream.bodyReplaced) {
    try {
      JSON.parse(text);
    } catch (error) {
      problems.push(`the replaced upstream body is not JSON (${(error as Error).message})`);
    }
  }
  const keys = topLevelKeys(text);
  if (keys) {
    const models = keys.filter((k) => k === 'model').length;
    if (models > 1) problems.push(`forwarded with ${models} top-level "model" keys`);
    if (models === 1 && routed !== undefined) {
      const forwarded = (JSON.parse(text) as { model?: unknown }).model;
      const expected = modelOverrides.get(routed) ?? routed;
      if (forwarded !== expected)
        problems.push(
          `routed as ${JSON.stringify(routed)} but forwarded "model" ${JSON.stringify(forwarded).slice(0, 80)}`,
        );
    }
  }
  return problems;
}
