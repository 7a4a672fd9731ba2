/**
 * Envoy's `safe_regex` (RE2) run by re2js, the maintained JavaScript port of RE2/J: RE2's syntax and semantics
 * (EG validates patterns with Go's regexp, which has RE2's syntax too) and linear-time matching, so a pattern like
 * `(a|a)*b` cannot stall the local data plane on a long client value. As in Envoy the pattern must match the WHOLE
 * value. RE2 syntax such as `(?i)`, `\pL`, `[[:digit:]]`, `\A`, `\z`, `\Q...\E` and `(?P<name>...)` is native;
 * what RE2 refuses (backreferences, lookaround, ...) is refused here too.
 */
import { RE2JS } from 're2js';

/** A compiled RE2 pattern; `test` matches the whole value. */
export interface Re2 {
  readonly pattern: string;
  test(value: string): boolean;
}

const cache = new Map<string, Re2>();
/** Patterns come from configuration; the bound only keeps a stream of distinct ones from growing memory. */
const CACHE_LIMIT = 10_000;

/** The whole-value matcher for an RE2 pattern, cached; an Error naming `where` when RE2 cannot compile it. */
export function compileRe2(pattern: string, where = 'safe_regex'): Re2 {
  const cached = cache.get(pattern);
  if (cached) return cached;
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(pattern);
  } catch (error) {
    const reason = (error as Error).message.replace(/^error parsing regexp: /, '');
    throw new Error(`${where}: invalid regular expression ${JSON.stringify(pattern)}: ${reason}`, { cause: error });
  }
  const regex: Re2 = { pattern, test: (value) => compiled.testExact(value) };
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(pattern, regex);
  return regex;
}

/** Whether an RE2 pattern matches the whole value. */
export function fullMatch(pattern: string, value: string): boolean {
  return compileRe2(pattern).test(value);
}
