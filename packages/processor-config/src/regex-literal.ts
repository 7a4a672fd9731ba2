/**
 * The literal text every whole-value match of an RE2 model pattern starts with, so an index of model matches can
 * skip patterns that cannot match a name without running them (the processor's rule index, the constructs' overlap
 * check). Conservative: when the pattern's start is not plainly literal, the answer is ''.
 *
 * Like schema.ts, this module must stay free of Node-only or processor-only imports (the constructs compile it).
 */

/** Plain characters that RE2 reads as themselves outside a character class. */
const LITERAL = /^[A-Za-z0-9_\-/:@,=!%&~#<>'" ]$/;
/** ASCII punctuation: escaped, it stands for itself. */
const ESCAPED_PUNCTUATION = /^[!-/:-@[-`{-~]$/;

export function literalPrefix(pattern: string): string {
  if (hasTopLevelAlternation(pattern)) return '';
  let literal = '';
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i];
    if (LITERAL.test(c)) {
      literal += c;
      i += 1;
    } else if (c === '\\' && i + 1 < pattern.length && ESCAPED_PUNCTUATION.test(pattern[i + 1])) {
      literal += pattern[i + 1];
      i += 2;
    } else {
      // `?`, `*` and `{` may make the last character optional; `+` keeps it required.
      if (c === '?' || c === '*' || c === '{') literal = literal.slice(0, -1);
      break;
    }
  }
  return literal;
}

/**
 * Whether `a|b` splits the whole pattern (then no prefix is shared). Patterns with a character class or `\Q` are
 * not scanned (a `|` or `)` inside them is literal): they count as alternations, which only costs the shortcut.
 */
function hasTopLevelAlternation(pattern: string): boolean {
  if (!pattern.includes('|')) return false;
  if (pattern.includes('[') || pattern.includes('\\Q')) return true;
  let depth = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') i += 1;
    else if (c === '(') depth += 1;
    else if (c === ')') depth -= 1;
    else if (c === '|' && depth <= 0) return true;
  }
  return false;
}
