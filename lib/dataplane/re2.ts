/**
 * Envoy's `safe_regex` (RE2) as a JavaScript RegExp, for the syntax the two share (EG validates patterns with Go's
 * regexp, which has RE2's syntax). As in Envoy the pattern must match the WHOLE value; as in RE2 by default `.` does
 * not match `\n`, matching is by code point (the `u` flag, as RE2 reads UTF-8) and a leading `(?i)` makes it
 * case-insensitive (the `i` flag: JavaScript has no such group). RE2 allows escaping any punctuation (`\-`, `\_`)
 * and a literal `{`, which the `u` flag refuses: such a pattern is compiled without it.
 */
const cache = new Map<string, RegExp>();
/**
 * RE2 syntax JavaScript lacks or reads differently without the `u` flag (`\pL` and `\A` would become the letters,
 * `[[:digit:]]` an odd class): refused rather than silently matching something else.
 */
const RE2_ONLY = /\\[AzQEC]|\\[pP](?!\{)|\\x\{|\[\[:|\(\?P<|\(\?[imsU-]+[):]/;
/** Patterns come from configuration; the bound only keeps a stream of distinct ones from growing memory. */
const CACHE_LIMIT = 10_000;

/** The anchored RegExp for an RE2 pattern, cached; an Error naming `where` when JavaScript cannot compile it. */
export function compileRe2(pattern: string, where = 'safe_regex'): RegExp {
  const cached = cache.get(pattern);
  if (cached) return cached;
  const caseless = pattern.startsWith('(?i)');
  const unsupported = RE2_ONLY.exec(caseless ? pattern.slice(4) : pattern);
  if (unsupported) throw new Error(`${where}: regular expression ${JSON.stringify(pattern)} uses RE2 syntax the local data plane does not run (${unsupported[0]})`);
  const source = `^(?:${caseless ? pattern.slice(4) : pattern})$`;
  const flags = caseless ? 'i' : '';
  let regex: RegExp;
  try {
    regex = new RegExp(source, `${flags}u`);
  } catch {
    try {
      regex = new RegExp(source, flags);
    } catch (error) {
      throw new Error(`${where}: invalid regular expression ${JSON.stringify(pattern)}: ${(error as Error).message}`);
    }
  }
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(pattern, regex);
  return regex;
}

/** Whether an RE2 pattern matches the whole value. */
export function fullMatch(pattern: string, value: string): boolean {
  return compileRe2(pattern).test(value);
}
