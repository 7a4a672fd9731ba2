/**
 * RoutePrecedenceIndex (lib/route-precedence.ts) against the index it replaced (below, as it was: every catch-all
 * prefix and backend shape of a virtual host compared with each new route): for random routes every check reports
 * the same conflict and processor tie; and the prefixes and shapes a check compares stay few with thousands of
 * routes on one host.
 */
import {
  outrankedPaths,
  RoutePrecedenceIndex,
  type IndexedBackendRule,
  type IndexedRoute,
  type PrecedenceConflict,
  type ProcessorTie,
} from '../lib/route-precedence';
import { Rng } from '../processor/test/support/fuzz';

/** A seeded generator of numbers in [0, 1) (the fuzz suites' Rng). */
function random(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

type Random = () => number;
const pick = <T>(rng: Random, items: readonly T[]): T => items[Math.floor(rng() * items.length)];
const some = <T>(rng: Random, items: readonly T[], p: number): T[] => items.filter(() => rng() < p);

const PATHS = ['/', '/v1', '/v1/a', '/v1/ab', '/v1/a/b', '/v2', '/openai/v1'];
const HOSTS = ['l|*', 'l|a.example', 'm|*'];

function randomRoute(rng: Random, r: number): IndexedRoute {
  const catchAll = new Map(some(rng, PATHS, 0.25).map((path, i) => [path, `endpoints[${i}]`]));
  const backends: IndexedBackendRule[] = Array.from({ length: Math.floor(rng() * 3) }, (_, b) => {
    const upstreamPrefix = pick(rng, PATHS);
    return {
      prop: `rules[0].backends[${b}].backend`,
      name: `backend-${r}-${b}`,
      upstreamPrefix,
      matchPrefixes: [...new Set(['/', upstreamPrefix, ...some(rng, PATHS, 0.2)])],
      ...(rng() < 0.3 && { forwardsClientPath: true }),
    };
  });
  return {
    owner: `route-${r}`,
    virtualHosts: some(rng, HOSTS, 0.5),
    catchAll,
    backends,
    processor: pick(rng, ['ns/p1', 'ns/p2']),
  };
}

const describeConflict = (c: PrecedenceConflict | undefined) =>
  c && `${c.loser.owner} ${c.backend.name} ${c.winner.owner} ${c.prefix} ${c.virtualHost} ${c.paths}`;
const describeTie = (t: ProcessorTie | undefined) => t && `${t.other.owner} ${t.prefix} ${t.virtualHost}`;

describe('RoutePrecedenceIndex', () => {
  it.each(Array.from({ length: 60 }, (_, seed) => seed))(
    'reports the conflict and the tie the index it replaced reports, random routes %i',
    (seed) => {
      const rng = random(seed);
      const index = new RoutePrecedenceIndex();
      const reference = new PairwiseIndex();
      let conflicts = 0;
      for (let r = 0; r < 30; r++) {
        const entry = randomRoute(rng, r);
        const conflict = describeConflict(reference.findConflict(entry));
        if (conflict) conflicts += 1;
        expect(describeConflict(index.findConflict(entry))).toBe(conflict);
        expect(describeTie(index.findProcessorTie(entry))).toBe(describeTie(reference.findProcessorTie(entry)));
        // Added even when in conflict (synth would have thrown), so later checks see crowded hosts.
        index.add(entry);
        reference.add(entry);
      }
      // The random routes do conflict: the comparison above is not only between two `undefined`s.
      expect(conflicts).toBeGreaterThan(0);
    },
  );

  it.each([
    ['one prefix shared by every route', (): string => '/v1'],
    ['a prefix of its own per route', (r: number) => `/team-${r}/v1`],
  ])('compares a few prefixes and shapes per route on a host with 3,000 routes: %s', (_, prefixOf) => {
    const index = new RoutePrecedenceIndex();
    const routes = 3000;
    for (let r = 0; r < routes; r++) {
      const prefix = prefixOf(r);
      const entry: IndexedRoute = {
        owner: `route-${r}`,
        virtualHosts: ['gateway|*'],
        catchAll: new Map([[prefix, 'endpoints[0]']]),
        backends: [
          {
            prop: 'b0',
            name: 'openai',
            upstreamPrefix: '/v1',
            matchPrefixes: ['/', '/v1', prefix],
            forwardsClientPath: prefix === '/v1',
          },
          { prop: 'b1', name: 'azure', upstreamPrefix: '/openai', matchPrefixes: ['/', '/openai', prefix] },
        ],
        processor: 'ns/processor',
      };
      expect(index.findProcessorTie(entry)).toBeUndefined();
      expect(index.findConflict(entry)).toBeUndefined();
      index.add(entry);
    }
    // The index it replaced compared every route's prefix (or, for ties, every route of the prefix): millions.
    expect(index.comparisons).toBeLessThanOrEqual(4 * routes);
  });
});

// ---------- the index as it was ----------

function shapeOf(backend: IndexedBackendRule): string {
  return `${backend.upstreamPrefix} ${backend.forwardsClientPath === true} ${backend.matchPrefixes.join(' ')}`;
}

function getOrCreate<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}

class PairwiseIndex {
  private readonly order = new Map<IndexedRoute, number>();
  private readonly catchAlls = new Map<string, Map<string, IndexedRoute[]>>();
  private readonly backends = new Map<
    string,
    Map<string, { readonly backend: IndexedBackendRule; readonly routes: IndexedRoute[] }>
  >();

  findConflict(entry: IndexedRoute): PrecedenceConflict | undefined {
    let found: { conflict: PrecedenceConflict; rank: number } | undefined;
    const consider = (conflict: PrecedenceConflict, other: IndexedRoute, direction: number) => {
      const rank = this.order.get(other)! * 2 + direction;
      if (!found || rank < found.rank) found = { conflict, rank };
    };
    for (const virtualHost of entry.virtualHosts) {
      // Another route's catch-all out-ranks one of this route's backends...
      for (const [prefix, routes] of this.catchAlls.get(virtualHost) ?? []) {
        for (const backend of entry.backends) {
          const paths = outrankedPaths(prefix, backend);
          const winner = paths === undefined ? undefined : routes.find((route) => route.owner !== entry.owner);
          if (winner) consider({ loser: entry, backend, winner, prefix, virtualHost, paths: paths! }, winner, 0);
        }
      }
      // ...or this route's catch-all out-ranks another route's backend.
      for (const prefix of entry.catchAll.keys()) {
        for (const { backend, routes } of this.backends.get(virtualHost)?.values() ?? []) {
          const paths = outrankedPaths(prefix, backend);
          const loser = paths === undefined ? undefined : routes.find((route) => route.owner !== entry.owner);
          if (loser)
            consider(
              {
                loser,
                backend: loser.backends.find((b) => shapeOf(b) === shapeOf(backend))!,
                winner: entry,
                prefix,
                virtualHost,
                paths: paths!,
              },
              loser,
              1,
            );
        }
      }
    }
    return found?.conflict;
  }

  findProcessorTie(entry: IndexedRoute): ProcessorTie | undefined {
    for (const virtualHost of entry.virtualHosts) {
      const catchAlls = this.catchAlls.get(virtualHost);
      for (const prefix of entry.catchAll.keys()) {
        const other = catchAlls
          ?.get(prefix)
          ?.find((route) => route.owner !== entry.owner && route.processor !== entry.processor);
        if (other) return { other, prefix, virtualHost };
      }
    }
    return undefined;
  }

  add(entry: IndexedRoute): void {
    this.order.set(entry, this.order.size);
    for (const virtualHost of entry.virtualHosts) {
      const catchAlls = getOrCreate(this.catchAlls, virtualHost, () => new Map<string, IndexedRoute[]>());
      for (const prefix of entry.catchAll.keys()) getOrCreate(catchAlls, prefix, () => []).push(entry);
      const backends = getOrCreate(
        this.backends,
        virtualHost,
        () => new Map<string, { backend: IndexedBackendRule; routes: IndexedRoute[] }>(),
      );
      for (const backend of entry.backends)
        getOrCreate(backends, shapeOf(backend), () => ({ backend, routes: [] })).routes.push(entry);
    }
  }
}
