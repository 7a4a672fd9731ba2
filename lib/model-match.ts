import {
  compileModelRegex,
  literalPrefix,
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
 * route can be checked against the others without comparing every pair. Per endpoint the matches are kept by
 * hostname (a route's match is found under each of its hostnames, or under "any host"), and per hostname in maps
 * and prefix trees, so a check visits only the hostnames that overlap the route's and, among their matches, only
 * those that can overlap: an exact name looks up its own prefixes, a prefix walks to the names and prefixes that
 * start with it, a regular expression to the names that start with its literal text.
 */
export class ModelMatchIndex {
  private readonly endpoints = new Map<string, EndpointMatches>();
  /** Candidate matches compared with a new one (overlaps() calls), for tests of the index's cost. */
  comparisons = 0;

  /**
   * The first other-owner match on `endpoint` that `entry` overlaps on an overlapping host, in the order of the
   * pairwise scan this index replaces: same exact name (or, for a prefix or regex, every exact name in the order
   * they were first added), then prefixes and regexes in the order they were added.
   */
  findConflict(endpoint: string, entry: IndexedMatch): IndexedMatch | undefined {
    const matches = this.endpoints.get(endpoint);
    if (!matches) return undefined;
    let best: { entry: Ranked; rank: readonly number[] } | undefined;
    for (const models of matches.hostsOverlapping(entry.hostnames)) {
      for (const other of models.candidates(entry.match)) {
        if (other.owner === entry.owner) continue;
        this.comparisons += 1;
        if (!entry.match.overlaps(other.match) || !hostnamesOverlap(other.hostnames, entry.hostnames)) continue;
        const rank = other.rank(entry.match.type === 'Exact');
        if (!best || compareRanks(rank, best.rank) < 0) best = { entry: other, rank };
      }
    }
    return best?.entry.indexed;
  }

  add(endpoint: string, entry: IndexedMatch): void {
    let matches = this.endpoints.get(endpoint);
    if (!matches) this.endpoints.set(endpoint, (matches = new EndpointMatches()));
    matches.add(entry);
  }
}

/** An indexed match with its place in the order of the pairwise scan. */
interface Ranked extends IndexedMatch {
  readonly indexed: IndexedMatch;
  /** For an Exact match: `[0, order of its name's first addition, position among matches of that name]`. */
  rank(sameNameOnly: boolean): readonly number[];
}

function compareRanks(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

class EndpointMatches {
  private added = 0;
  private readonly exactNames = new Map<string, { order: number; count: number }>();
  /** Every match, for a route without hostnames (it shares every host). */
  private readonly all = new ModelSet();
  /** Matches of routes without hostnames. */
  private readonly anyHost = new ModelSet();
  /** Per hostname as written (`a.example.com`, `*.example.com`). */
  private readonly byHost = new Map<string, ModelSet>();
  /** `.example.com` -> the hostnames ending with it, for `*.example.com` on a new route. */
  private readonly hostsBySuffix = new Map<string, Set<string>>();

  add(indexed: IndexedMatch): void {
    const order = this.added++;
    let rank: Ranked['rank'];
    if (indexed.match.type === 'Exact') {
      let name = this.exactNames.get(indexed.match.value);
      if (!name) this.exactNames.set(indexed.match.value, (name = { order, count: 0 }));
      const position = name.count++;
      const nameOrder = name.order;
      rank = (sameNameOnly) => (sameNameOnly ? [0, 0, position] : [0, nameOrder, position]);
    } else {
      const patternRank = [1, order, 0];
      rank = () => patternRank;
    }
    const entry: Ranked = { ...indexed, indexed, rank };
    this.all.add(entry);
    if (indexed.hostnames.length === 0) this.anyHost.add(entry);
    for (const hostname of new Set(indexed.hostnames)) {
      let models = this.byHost.get(hostname);
      if (!models) {
        this.byHost.set(hostname, (models = new ModelSet()));
        for (const suffix of dotSuffixes(hostname)) {
          let hosts = this.hostsBySuffix.get(suffix);
          if (!hosts) this.hostsBySuffix.set(suffix, (hosts = new Set()));
          hosts.add(hostname);
        }
      }
      models.add(entry);
    }
  }

  /** The sets holding every match whose hostnames may overlap `hostnames` (some more than once). */
  hostsOverlapping(hostnames: readonly string[]): ModelSet[] {
    if (hostnames.length === 0) return [this.all];
    const sets = [this.anyHost];
    const visit = (hostname: string) => {
      const models = this.byHost.get(hostname);
      if (models) sets.push(models);
    };
    for (const hostname of new Set(hostnames)) {
      visit(hostname);
      // `*.example.com` of another route covers `a.example.com` and `*.a.example.com`...
      for (const suffix of dotSuffixes(hostname)) if (`*${suffix}` !== hostname) visit(`*${suffix}`);
      // ...and this route's `*.example.com` covers the other routes' names below it.
      if (hostname.startsWith('*.'))
        for (const other of this.hostsBySuffix.get(hostname.slice(1)) ?? []) if (other !== hostname) visit(other);
    }
    return sets;
  }
}

/** `.b.c` and `.c` of `a.b.c` (and of `*.b.c`). */
function dotSuffixes(hostname: string): string[] {
  const suffixes: string[] = [];
  for (let i = hostname.indexOf('.'); i !== -1; i = hostname.indexOf('.', i + 1)) suffixes.push(hostname.slice(i));
  return suffixes;
}

/** The matches of one hostname (or of all) on one endpoint, indexed by what can overlap what. */
class ModelSet {
  private readonly exact = new PrefixTree<Ranked>();
  private readonly prefixes = new PrefixTree<Ranked>();
  private readonly prefixLengths = new Set<number>();
  private readonly regexes = new Map<string, Ranked[]>();
  /** Regexes by their literal start (see `literalPrefix`). */
  private readonly regexStarts = new PrefixTree<Ranked>();
  private readonly regexStartLengths = new Set<number>();

  add(entry: Ranked): void {
    const { type, value } = entry.match;
    if (type === 'Exact') this.exact.add(value, entry);
    else if (type === 'Prefix') {
      this.prefixes.add(value, entry);
      this.prefixLengths.add(value.length);
    } else {
      pushTo(this.regexes, value, entry);
      const start = literalPrefix(value);
      this.regexStarts.add(start, entry);
      this.regexStartLengths.add(start.length);
    }
  }

  /** The matches that may overlap `match` (a superset; the caller checks `overlaps`). */
  candidates(match: ModelMatch): Ranked[] {
    const found: Ranked[] = [];
    const { type, value } = match;
    if (type === 'Exact') {
      found.push(...this.exact.exactly(value));
      for (const length of this.prefixLengths)
        if (length <= value.length) found.push(...this.prefixes.exactly(value.slice(0, length)));
      for (const length of this.regexStartLengths)
        if (length <= value.length) found.push(...this.regexStarts.exactly(value.slice(0, length)));
    } else if (type === 'Prefix') {
      this.exact.startingWith(value, found);
      for (const length of this.prefixLengths)
        if (length < value.length) found.push(...this.prefixes.exactly(value.slice(0, length)));
      this.prefixes.startingWith(value, found);
      found.push(...(this.regexes.get('.*') ?? []), ...(this.regexes.get(`${escapeRegex(value)}.*`) ?? []));
    } else if (value === '.*') {
      // Overlaps everything.
      this.exact.startingWith('', found);
      this.prefixes.startingWith('', found);
      this.regexStarts.startingWith('', found);
    } else {
      this.exact.startingWith(literalPrefix(value), found);
      const prefix = value.endsWith('.*') ? prefixOfRegex(value) : undefined;
      if (prefix !== undefined) found.push(...this.prefixes.exactly(prefix));
      found.push(...(this.regexes.get(value) ?? []), ...(this.regexes.get('.*') ?? []));
    }
    return found;
  }
}

/** The prefix `p` whose `escapeRegex(p) + '.*'` is `pattern`, if any (only such a prefix overlaps it). */
function prefixOfRegex(pattern: string): string | undefined {
  const escaped = pattern.slice(0, -2);
  const prefix = escaped.replace(/\\(.)/g, '$1');
  return escapeRegex(prefix) === escaped ? prefix : undefined;
}

function pushTo<V>(map: Map<string, V[]>, key: string, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

interface TreeNode<V> {
  /** The text from the parent to this node. */
  edge: string;
  children?: Map<string, TreeNode<V>>;
  values: V[];
}

/** A radix tree of strings: the values under one string, and under every string starting with a prefix. */
class PrefixTree<V> {
  private readonly root: TreeNode<V> = { edge: '', values: [] };

  add(key: string, value: V): void {
    let node = this.root;
    let rest = key;
    while (rest !== '') {
      node.children ??= new Map();
      const child = node.children.get(rest[0]);
      if (!child) {
        const leaf: TreeNode<V> = { edge: rest, values: [value] };
        node.children.set(rest[0], leaf);
        return;
      }
      const common = commonLength(child.edge, rest);
      if (common < child.edge.length) {
        const middle: TreeNode<V> = { edge: child.edge.slice(0, common), children: new Map(), values: [] };
        child.edge = child.edge.slice(common);
        middle.children!.set(child.edge[0], child);
        node.children.set(rest[0], middle);
        node = middle;
      } else node = child;
      rest = rest.slice(common);
    }
    node.values.push(value);
  }

  /** The values under exactly `key`. */
  exactly(key: string): readonly V[] {
    const node = this.nodeAt(key);
    return node && node.edge.length === 0 ? node.node.values : [];
  }

  /** Appends the values under every key starting with `prefix`. */
  startingWith(prefix: string, into: V[]): void {
    const found = this.nodeAt(prefix);
    if (!found) return;
    const stack = [found.node];
    while (stack.length > 0) {
      const node = stack.pop()!;
      into.push(...node.values);
      for (const child of node.children?.values() ?? []) stack.push(child);
    }
  }

  /** The node whose key is `key` or, `edge` non-empty, the first node whose key extends it by `edge`. */
  private nodeAt(key: string): { node: TreeNode<V>; edge: string } | undefined {
    let node = this.root;
    let rest = key;
    while (rest !== '') {
      const child = node.children?.get(rest[0]);
      if (!child) return undefined;
      const common = commonLength(child.edge, rest);
      if (common === rest.length) return { node: child, edge: child.edge.slice(common) };
      if (common < child.edge.length) return undefined;
      node = child;
      rest = rest.slice(common);
    }
    return { node, edge: '' };
  }
}

function commonLength(a: string, b: string): number {
  const max = Math.min(a.length, b.length);
  let i = 0;
  while (i < max && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
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
