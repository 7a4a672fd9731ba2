/**
 * The first rule of a list that accepts a model, without trying every rule: exact names through a map, prefixes
 * through a map of the prefixes themselves (one lookup per distinct prefix length), and regular expressions only for
 * the rules before the best exact or prefix candidate whose pattern's literal start fits the model. The answer is
 * the linear scan's: the lowest-numbered rule that accepts the model, labelled by that rule's own `match`.
 */
import { literalPrefix, type ModelMatch } from '@ai-gateway-constructs/processor-config';

/** What the index reads of a rule: its configured matches, and its `match` (see router.ts CompiledRule). */
export interface IndexedRule {
  models: readonly ModelMatch[];
  match: (model: string) => string | undefined;
}

export interface IndexedMatch<Rule> {
  rule: Rule;
  modelLabel: string;
}

/**
 * Recent answers of the indexes of one config snapshot, shared by them so the total stays bounded whatever the
 * number of rule lists. Clients choose model names (at most MAX_MODEL_NAME_BYTES), so unknown names are remembered
 * too, and the memo starts over when full instead of growing.
 */
export class ModelMemo<Rule> {
  private readonly answers = new Map<string, IndexedMatch<Rule> | null>();

  constructor(private readonly maxEntries = 4096) {}

  /** The answer remembered for `key`, null for no rule, undefined when not remembered. */
  get(key: string): IndexedMatch<Rule> | null | undefined {
    return this.answers.get(key);
  }

  set(key: string, rule: IndexedMatch<Rule> | null): void {
    if (this.answers.size >= this.maxEntries) this.answers.clear();
    this.answers.set(key, rule);
  }

  get size(): number {
    return this.answers.size;
  }
}

let nextIndexId = 0;

export class RuleIndex<Rule extends IndexedRule> {
  /** Exact name -> the first rule listing it. */
  private readonly exact = new Map<string, number>();
  /** Prefix -> the first rule listing it; `prefixLengths` are the distinct lengths, ascending. */
  private readonly prefixes = new Map<string, number>();
  private readonly prefixLengths: number[];
  /** Literal start of a pattern -> the rules with such a pattern, ascending; '' for patterns without one. */
  private readonly patterns = new Map<string, number[]>();
  private readonly patternLengths: number[];
  /** Prefix of this index's keys in the shared memo. */
  private readonly memoKey = `${nextIndexId++} `;

  constructor(
    private readonly rules: readonly Rule[],
    private readonly memo: ModelMemo<Rule> = new ModelMemo<Rule>(256),
  ) {
    const prefixLengths = new Set<number>();
    const patternLengths = new Set<number>();
    rules.forEach((rule, n) => {
      for (const m of rule.models) {
        if (m.type === 'Exact') {
          if (!this.exact.has(m.value)) this.exact.set(m.value, n);
        } else if (m.type === 'Prefix') {
          if (!this.prefixes.has(m.value)) this.prefixes.set(m.value, n);
          prefixLengths.add(m.value.length);
        } else {
          const literal = literalPrefix(m.value);
          const list = this.patterns.get(literal);
          if (!list) this.patterns.set(literal, [n]);
          else if (list[list.length - 1] !== n) list.push(n);
          patternLengths.add(literal.length);
        }
      }
    });
    this.prefixLengths = [...prefixLengths].sort((a, b) => a - b);
    this.patternLengths = [...patternLengths].sort((a, b) => a - b);
  }

  find(model: string): IndexedMatch<Rule> | undefined {
    const key = this.memoKey + model;
    const remembered = this.memo.get(key);
    if (remembered !== undefined) return remembered ?? undefined;
    const n = this.firstRule(model);
    const rule = n === -1 ? undefined : this.rules[n];
    const answer = rule && { rule, modelLabel: rule.match(model)! };
    this.memo.set(key, answer ?? null);
    return answer;
  }

  /** The number of the first rule accepting `model`, or -1. */
  private firstRule(model: string): number {
    let best = this.exact.get(model) ?? this.rules.length;
    for (const length of this.prefixLengths) {
      if (length > model.length) break;
      const n = this.prefixes.get(length === model.length ? model : model.slice(0, length));
      if (n !== undefined && n < best) best = n;
    }
    const pattern = this.firstPatternRule(model, best);
    if (pattern !== undefined) return pattern;
    return best === this.rules.length ? -1 : best;
  }

  /**
   * The first rule before `before` whose pattern accepts `model`. Only its patterns can: its exact names and
   * prefixes would have made it the candidate.
   */
  private firstPatternRule(model: string, before: number): number | undefined {
    let candidates: number[] | undefined;
    let lists = 0;
    for (const length of this.patternLengths) {
      if (length > model.length) break;
      const list = this.patterns.get(length === model.length ? model : model.slice(0, length));
      if (list === undefined || list[0] >= before) continue;
      lists += 1;
      candidates = lists === 1 ? list : [...candidates!, ...list];
    }
    if (candidates === undefined) return undefined;
    if (lists > 1) candidates.sort((a, b) => a - b);
    let previous = -1;
    for (const n of candidates) {
      if (n >= before) break;
      if (n === previous) continue;
      previous = n;
      if (this.rules[n].match(model) !== undefined) return n;
    }
    return undefined;
  }
}
