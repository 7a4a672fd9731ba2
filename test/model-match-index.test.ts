/**
 * ModelMatchIndex (lib/model-match.ts) against the pairwise scan it replaced: for random routes (exact, prefix and
 * regex matches over a small alphabet, hostnames with wildcards), every check reports the same conflict; and the
 * number of matches a check compares stays proportional to the conflicts possible, not to the number of routes.
 */
import { hostnamesOverlap, ModelMatch, ModelMatchIndex, type IndexedMatch } from '../lib/model-match';
import { Rng } from '../processor/test/support/fuzz';

/** A seeded generator of numbers in [0, 1) (the fuzz suites' Rng). */
function random(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

type Random = () => number;
const pick = <T>(rng: Random, items: readonly T[]): T => items[Math.floor(rng() * items.length)];

function word(rng: Random, max: number): string {
  let text = '';
  const length = 1 + Math.floor(rng() * max);
  for (let i = 0; i < length; i++) text += pick(rng, ['a', 'b', '-', '.']);
  return text;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function randomMatch(rng: Random): ModelMatch {
  const kind = rng();
  if (kind < 0.45) return ModelMatch.exact(word(rng, 4));
  if (kind < 0.8) return ModelMatch.prefix(word(rng, 3));
  const w = word(rng, 3);
  return ModelMatch.regex(
    pick(rng, [`${escape(w)}.*`, '.*', `${escape(w)}[ab]+`, `(${escape(w)}|b)a`, escape(w), `.*${escape(w)}`]),
  );
}

const HOSTNAMES = ['a.example', '*.example', 'b.a.example', '*.a.example', 'other.test', '*.test', 'x.y.test'];

/** The scan as it was: exact entries of the same name (a prefix or regex: every exact entry), then patterns. */
class PairwiseIndex {
  private readonly exact = new Map<string, Map<string, IndexedMatch[]>>();
  private readonly patterns = new Map<string, IndexedMatch[]>();

  findConflict(endpoint: string, entry: IndexedMatch): IndexedMatch | undefined {
    const exact = this.exact.get(endpoint);
    const candidates =
      entry.match.type === 'Exact' ? [...(exact?.get(entry.match.value) ?? [])] : [...(exact?.values() ?? [])].flat();
    candidates.push(...(this.patterns.get(endpoint) ?? []));
    return candidates.find(
      (other) =>
        other.owner !== entry.owner &&
        hostnamesOverlap(other.hostnames, entry.hostnames) &&
        entry.match.overlaps(other.match),
    );
  }

  add(endpoint: string, entry: IndexedMatch): void {
    if (entry.match.type === 'Exact') {
      if (!this.exact.has(endpoint)) this.exact.set(endpoint, new Map());
      const byValue = this.exact.get(endpoint)!;
      byValue.set(entry.match.value, [...(byValue.get(entry.match.value) ?? []), entry]);
    } else this.patterns.set(endpoint, [...(this.patterns.get(endpoint) ?? []), entry]);
  }
}

describe('ModelMatchIndex', () => {
  it.each(Array.from({ length: 40 }, (_, seed) => seed))(
    'reports the conflict the pairwise scan reports, random routes %i',
    (seed) => {
      const rng = random(seed);
      const index = new ModelMatchIndex();
      const reference = new PairwiseIndex();
      let conflicts = 0;
      for (let r = 0; r < 40; r++) {
        const owner = `route-${r}`;
        const hostnames = rng() < 0.4 ? [] : HOSTNAMES.filter(() => rng() < 0.25);
        const endpoint = pick(rng, ['OpenAI /v1', 'OpenAI /v2']);
        const matches = Array.from({ length: 1 + Math.floor(rng() * 3) }, () => randomMatch(rng));
        for (const match of matches) {
          const entry = { match, owner, hostnames };
          const expected = reference.findConflict(endpoint, entry);
          if (expected) conflicts += 1;
          const found = index.findConflict(endpoint, entry);
          expect(found && `${found.owner} ${found.match.toString()}`).toBe(
            expected && `${expected.owner} ${expected.match.toString()}`,
          );
          expect(found).toBe(expected);
        }
        // Conflicting routes are added anyway here (synth would have thrown), so later checks see crowded indexes.
        for (const match of matches) {
          const entry = { match, owner, hostnames };
          index.add(endpoint, entry);
          reference.add(endpoint, entry);
        }
      }
      // The random matches do overlap: the comparison above is not only between two `undefined`s.
      expect(conflicts).toBeGreaterThan(0);
    },
  );

  it('compares a new match with the matches it could overlap, not with every route', () => {
    // 3,000 routes on one endpoint, each with its own exact name, prefix and regex, half on their own hostname:
    // the pairwise scan compared each new prefix or regex with every match before it (about 13.5 million pairs).
    const index = new ModelMatchIndex();
    const routes = 3000;
    for (let r = 0; r < routes; r++) {
      const hostnames = r % 2 === 0 ? [] : [`team-${r}.example.com`];
      for (const match of [
        ModelMatch.exact(`model-${r}`),
        ModelMatch.prefix(`team-${r}/`),
        ModelMatch.regex(`family-${r}/[a-z0-9]+`),
      ]) {
        const entry = { match, owner: `route-${r}`, hostnames };
        expect(index.findConflict('OpenAI /v1', entry)).toBeUndefined();
        index.add('OpenAI /v1', entry);
      }
    }
    // No candidate at all: every lookup lands on names, prefixes and literal starts no other route has.
    expect(index.comparisons).toBe(0);
    // A wildcard route compares with the routes below its wildcard, which it all shares hosts with.
    index.comparisons = 0;
    expect(
      index.findConflict('OpenAI /v1', { match: ModelMatch.exact('model-7'), owner: 'wild', hostnames: ['*.com'] }),
    ).toMatchObject({ owner: 'route-7' });
    expect(index.comparisons).toBe(1);
  });
});
