import {
  compileModelRegex,
  type ModelMatch as ModelMatchConfig,
  type ModelRegex,
} from '@ai-gateway-constructs/processor-config';

/** How a rule matches the model a client asks for. */
export class ModelMatch {
  /** The model name equals `name`. */
  static exact(name: string): ModelMatch {
    return new ModelMatch('Exact', name);
  }

  /** The model name starts with `prefix`, e.g. `claude-`. */
  static prefix(prefix: string): ModelMatch {
    return new ModelMatch('Prefix', prefix);
  }

  /**
   * The whole model name matches the RE2 regular expression (RE2 syntax and semantics, linear-time matching, as
   * the processor runs it). Patterns RE2 cannot run (backreferences, lookaround) are refused at synth.
   */
  static regex(pattern: string): ModelMatch {
    return new ModelMatch('RegularExpression', pattern);
  }

  private compiled?: ModelRegex;

  private constructor(
    readonly type: 'Exact' | 'Prefix' | 'RegularExpression',
    readonly value: string,
  ) {}

  /** Whether this match accepts the model name `model`. */
  matches(model: string): boolean {
    switch (this.type) {
      case 'Exact':
        return model === this.value;
      case 'Prefix':
        return model.startsWith(this.value);
      case 'RegularExpression':
        this.compiled ??= compileModelRegex(this.value);
        return this.compiled.test(model);
    }
  }

  /**
   * Whether every model this match accepts is also accepted by `other` (so `other`, tried first, shadows it).
   * Exact for exact/prefix pairs; for regular expressions only the cases decidable without analysis.
   */
  isCoveredBy(other: ModelMatch): boolean {
    if (this.type === 'Exact') return other.matches(this.value);
    if (this.type === 'Prefix') {
      if (other.type === 'Prefix') return this.value.startsWith(other.value);
      if (other.type === 'RegularExpression')
        return other.value === '.*' || other.value === `${escapeRegex(this.value)}.*`;
      return false;
    }
    return other.type === 'RegularExpression' && (other.value === this.value || other.value === '.*');
  }

  /** Whether some model name is accepted by both matches (decidable cases; regex pairs only if equal). */
  overlaps(other: ModelMatch): boolean {
    if (this.isCoveredBy(other) || other.isCoveredBy(this)) return true;
    if (this.type === 'Prefix' && other.type === 'Prefix')
      return this.value.startsWith(other.value) || other.value.startsWith(this.value);
    return false;
  }

  toString(): string {
    return `${this.type}(${this.value})`;
  }

  /** @internal */
  _toConfig(): ModelMatchConfig {
    return { type: this.type, value: this.value };
  }
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A model match registered on a gateway path, for conflict detection across routes. */
export interface IndexedMatch {
  readonly match: ModelMatch;
  readonly owner: string;
  readonly hostnames: readonly string[];
}

/**
 * The model matches of every route on one gateway, grouped by client API endpoint (API + path prefix), so a new
 * route can be checked against the others without comparing every pair: exact names are looked up in a map,
 * only prefix and regex matches are scanned.
 */
export class ModelMatchIndex {
  private readonly exact = new Map<string, Map<string, IndexedMatch[]>>();
  private readonly patterns = new Map<string, IndexedMatch[]>();

  /** Returns a description of the first conflict of `entry` with another owner's match on `endpoint`, if any. */
  findConflict(endpoint: string, entry: IndexedMatch): IndexedMatch | undefined {
    const exact = this.exact.get(endpoint);
    const patterns = this.patterns.get(endpoint) ?? [];
    const candidates: IndexedMatch[] = [];
    if (entry.match.type === 'Exact') {
      candidates.push(...(exact?.get(entry.match.value) ?? []));
    } else if (exact) {
      for (const entries of exact.values()) candidates.push(...entries);
    }
    candidates.push(...patterns);
    return candidates.find(
      (other) =>
        other.owner !== entry.owner &&
        hostnamesOverlap(other.hostnames, entry.hostnames) &&
        entry.match.overlaps(other.match),
    );
  }

  add(endpoint: string, entry: IndexedMatch): void {
    if (entry.match.type === 'Exact') {
      let byValue = this.exact.get(endpoint);
      if (!byValue) this.exact.set(endpoint, (byValue = new Map<string, IndexedMatch[]>()));
      const list = byValue.get(entry.match.value);
      if (list) list.push(entry);
      else byValue.set(entry.match.value, [entry]);
    } else {
      const list = this.patterns.get(endpoint);
      if (list) list.push(entry);
      else this.patterns.set(endpoint, [entry]);
    }
  }
}

/** Whether two HTTPRoute hostname lists can match the same request (empty = any host; `*.` wildcards). */
export function hostnamesOverlap(a: readonly string[], b: readonly string[]): boolean {
  if (a.length === 0 || b.length === 0) return true;
  return a.some((x) => b.some((y) => hostnameOverlaps(x, y)));
}

function hostnameOverlaps(a: string, b: string): boolean {
  if (a === b) return true;
  const wildA = a.startsWith('*.');
  const wildB = b.startsWith('*.');
  if (wildA && b.endsWith(a.slice(1))) return true;
  if (wildB && a.endsWith(b.slice(1))) return true;
  return false;
}
