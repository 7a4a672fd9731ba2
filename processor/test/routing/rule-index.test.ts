/**
 * The indexed router (rule-index.ts, route-selection.ts) against the linear scan it replaces: for random configs
 * (exact, prefix and regex mixes, overlapping prefixes, hostnames, passthrough endpoints), every request gets the
 * same rules, routes and first matching rule with the same label. The reference below is the scan as it was: filter
 * every route by host, then try every rule's matches in order.
 */
import {
  compileModelRegex,
  literalPrefix,
  type ModelMatch,
  type RouteConfig,
  type RouteEndpoint,
} from '@ai-gateway-constructs/processor-config';
import { ModelMemo, RuleIndex } from '../../src/routing/rule-index';
import { findRule, Router, type CompiledRule } from '../../src/routing/router';
import { testConfig } from '../support/processor-harness';
import { Rng } from '../support/fuzz';

/** mulberry32: small, seeded, reproducible. */
/** A seeded generator of numbers in [0, 1) (the fuzz suites' Rng). */
function random(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

type Random = () => number;
const pick = <T>(rng: Random, items: readonly T[]): T => items[Math.floor(rng() * items.length)];

/** Model-like strings over a small alphabet, so exact names, prefixes and patterns collide often. */
function word(rng: Random, max = 4): string {
  let text = '';
  const length = Math.floor(rng() * (max + 1));
  for (let i = 0; i < length; i++) text += pick(rng, ['a', 'b', '-', '.']);
  return text;
}

const PATTERN_SHAPES: ReadonlyArray<(w: string, v: string) => string> = [
  (w) => `${escape(w)}.*`,
  (w, v) => `${escape(w)}(${escape(v)}|b)*`,
  (w) => `${escape(w)}a?b`,
  (w) => `${escape(w)}[ab]+`,
  (w) => `.*${escape(w)}`,
  (w, v) => `${escape(w)}|${escape(v)}`,
  (w) => `(?i)${escape(w.toUpperCase())}.*`,
  (w) => `${escape(w)}a{0,2}`,
  (w) => `${escape(w)}\\.?-`,
  (w) => escape(w),
];

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
}

function modelMatch(rng: Random): ModelMatch {
  const kind = rng();
  if (kind < 0.4) return { type: 'Exact', value: word(rng) || 'a' };
  if (kind < 0.75) return { type: 'Prefix', value: word(rng, 3) || 'a' };
  return { type: 'RegularExpression', value: pick(rng, PATTERN_SHAPES)(word(rng, 3), word(rng, 2)) };
}

const HOSTNAMES = ['a.example', '*.example', 'b.a.example', '*.a.example', 'other.test', '*.test'];
const ENDPOINTS: RouteEndpoint[] = [
  { api: 'OpenAI', pathPrefix: '/v1' },
  { api: 'OpenAI', pathPrefix: '/v1/team' },
  { api: 'Anthropic', pathPrefix: '/anthropic' },
];

function randomRoutes(rng: Random): RouteConfig[] {
  const count = 1 + Math.floor(rng() * 12);
  return Array.from({ length: count }, (_, r) => {
    const endpoints = ENDPOINTS.filter(() => rng() < 0.5);
    const hostnames = rng() < 0.5 ? [] : HOSTNAMES.filter(() => rng() < 0.3);
    const passthrough = rng() < 0.3;
    return {
      name: `route-${r}`,
      endpoints: endpoints.length > 0 ? endpoints : [ENDPOINTS[0]],
      hostnames,
      rules: Array.from({ length: 1 + Math.floor(rng() * 4) }, () => ({
        models: Array.from({ length: 1 + Math.floor(rng() * 3) }, () => modelMatch(rng)),
        backends: [{ backend: 'openai', weight: 1, priority: 0 }],
      })),
      requiredHeaders: [],
      ...(passthrough && {
        passthroughEndpoints: pick(rng, [
          [{ path: '/files/', methods: ['POST' as const] }],
          [{ path: '/moderations', methods: ['POST' as const, 'PUT' as const] }],
          [{ path: '/', methods: ['PATCH' as const] }],
        ]),
      }),
    };
  });
}

// ---------- the reference: the linear scan ----------

const compiled = new Map<string, { test(model: string): boolean }>();
function regexOf(pattern: string) {
  let regex = compiled.get(pattern);
  if (!regex) compiled.set(pattern, (regex = compileModelRegex(pattern)));
  return regex;
}

function referenceLabel(models: readonly ModelMatch[], model: string): string | undefined {
  const exact = models.find((m) => m.type === 'Exact' && m.value === model);
  if (exact) return exact.value;
  const prefix = models.find((m) => m.type === 'Prefix' && model.startsWith(m.value));
  if (prefix) return `${prefix.value}*`;
  return models.find((m) => m.type === 'RegularExpression' && regexOf(m.value).test(model))?.value;
}

function referenceHostMatches(hostnames: readonly string[], host: string): boolean {
  if (hostnames.length === 0) return true;
  return hostnames.some((pattern) =>
    pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : pattern === host,
  );
}

/** The routes the old router offered for a request (before passthrough opt-in), or undefined for no endpoint. */
function referenceRoutes(routes: readonly RouteConfig[], path: string, host: string): RouteConfig[] | undefined {
  const keys = new Map<string, { prefix: string; routes: RouteConfig[] }>();
  for (const route of routes)
    for (const endpoint of route.endpoints) {
      const key = `${endpoint.api} ${endpoint.pathPrefix}`;
      if (!keys.has(key)) keys.set(key, { prefix: endpoint.pathPrefix, routes: [] });
      keys.get(key)!.routes.push(route);
    }
  const endpoints = [...keys.values()].sort((a, b) => b.prefix.length - a.prefix.length);
  for (const endpoint of endpoints) {
    if (path !== endpoint.prefix && !path.startsWith(`${endpoint.prefix}/`)) continue;
    const served = endpoint.routes.filter((route) => referenceHostMatches(route.hostnames, host));
    if (served.some((route) => route.rules.length > 0)) return served;
  }
  return undefined;
}

function referenceAllows(route: RouteConfig, subpath: string, method: string | undefined): boolean {
  return (route.passthroughEndpoints ?? []).some(
    (p) =>
      (p.path.endsWith('/') ? subpath.startsWith(p.path) : p.path === subpath) &&
      (p.methods as readonly string[]).includes(method ?? ''),
  );
}

/** `route-3 rule 1 label` for the first rule of `routes` that accepts `model`. */
function referenceFirstRule(routes: readonly RouteConfig[], model: string): string {
  for (const route of routes)
    for (const [i, rule] of route.rules.entries()) {
      const label = referenceLabel(rule.models, model);
      if (label !== undefined) return `${route.name} rule ${i} ${label}`;
    }
  return 'none';
}

function describeRule(found: { rule: CompiledRule; modelLabel: string } | undefined): string {
  if (!found) return 'none';
  const index = found.rule.route.rules.findIndex((rule) => rule.models === found.rule.models);
  return `${found.rule.route.name} rule ${index} ${found.modelLabel}`;
}

function modelsToTry(rng: Random, routes: readonly RouteConfig[]): string[] {
  const configured = routes.flatMap((route) => route.rules.flatMap((rule) => rule.models.map((m) => m.value)));
  const models = configured.filter((value) => !/[\\()[\]*?|{]/.test(value));
  for (let i = 0; i < 12; i++) models.push(word(rng, 6));
  for (let i = 0; i < 12; i++) models.push(pick(rng, models) + word(rng, 2));
  return models;
}

const AUTHORITIES = [
  'a.example',
  'A.EXAMPLE:443',
  'b.a.example',
  'c.b.a.example',
  'example',
  'x.example',
  'other.test',
];
const REQUESTS: ReadonlyArray<[string, string | undefined]> = [
  ['/v1/chat/completions', 'POST'],
  ['/v1/responses', 'POST'],
  ['/v1/team/chat/completions', 'POST'],
  ['/v1/files/abc', 'POST'],
  ['/v1/moderations', 'PUT'],
  ['/v1/moderations', 'GET'],
  ['/v1/team/fine_tuning/jobs', 'PATCH'],
  ['/anthropic/messages', 'POST'],
];

describe('the indexed router', () => {
  it.each(Array.from({ length: 30 }, (_, seed) => seed))('answers as the linear scan for random config %i', (seed) => {
    const rng = random(seed);
    const routes = randomRoutes(rng);
    const router = new Router(testConfig({ routes }));
    const models = modelsToTry(rng, routes);
    for (const authority of AUTHORITIES) {
      const host = authority.split(':')[0].toLowerCase();
      for (const [path, method] of REQUESTS) {
        const match = router.match(path, authority, method);
        const expected = referenceRoutes(routes, path, host);
        expect(match !== undefined).toBe(expected !== undefined);
        if (!match || !expected) continue;
        expect(match.routes.length).toBeGreaterThan(0);
        // A passthrough path offers only the routes that opted into it; anything else the host's routes.
        const optedIn = expected.filter((route) => referenceAllows(route, match.subpath, method));
        const passthrough = match.subpath !== '/responses' && optedIn.length > 0;
        expect(match.operation === 'other').toBe(passthrough);
        if (match.subpath === '/responses') expect(match.operation).toBe('responses');
        const offered = passthrough ? optedIn : expected;
        expect(match.routes.map((r) => r.name)).toEqual(offered.map((r) => r.name));
        expect(match.rules.map((rule) => rule.route.name)).toEqual(
          offered.flatMap((route) => route.rules.map(() => route.name)),
        );
        for (const model of models) {
          // Twice: the second answer comes from the memo.
          expect(describeRule(findRule(match.rules, model))).toBe(referenceFirstRule(offered, model));
          expect(describeRule(findRule(match.rules, model))).toBe(referenceFirstRule(offered, model));
        }
      }
    }
  });

  it('hands out the same rule list for hosts that select the same routes, so its index is built once', () => {
    const routes = randomRoutes(random(3)).map((route, i) => ({ ...route, hostnames: i % 2 ? ['*.example'] : [] }));
    const router = new Router(testConfig({ routes }));
    const rules = (authority: string) => router.match('/v1/chat/completions', authority, 'POST')?.rules;
    expect(rules('x.example')).toBe(rules('Y.EXAMPLE:8443'));
    expect(rules('other.test')).toBe(rules('example'));
  });

  it('answers the same with a memo too small to keep anything for long', () => {
    const rng = random(11);
    for (let round = 0; round < 50; round++) {
      const routes = randomRoutes(rng);
      const rules = new Router(testConfig({ routes: routes.map((r) => ({ ...r, hostnames: [] })) })).match(
        '/v1/chat/completions',
        'h',
        'POST',
      )?.rules;
      if (!rules) continue;
      const memo = new ModelMemo<CompiledRule>(3);
      const index = new RuleIndex(rules, memo);
      for (const model of modelsToTry(rng, routes)) {
        const expected = describeRule(findRule(rules, model));
        expect(describeRule(index.find(model))).toBe(expected);
        expect(memo.size).toBeLessThanOrEqual(3);
      }
    }
  });
});

describe('literalPrefix', () => {
  it.each([
    ['gpt-4o', 'gpt-4o'],
    ['gpt-4o-.*', 'gpt-4o-'],
    ['gpt-4o?', 'gpt-4'],
    ['gpt-4o*x', 'gpt-4'],
    ['gpt-4o+x', 'gpt-4o'],
    ['gpt-4o{0,2}', 'gpt-4'],
    ['anthropic\\.claude-.*', 'anthropic.claude-'],
    ['gpt-(4|5)', 'gpt-'],
    ['gpt-4|claude', ''],
    ['(gpt-4)|claude', ''],
    ['[a|b]c', ''],
    ['a[|]', ''],
    ['(?i)gpt', ''],
    ['\\d+', ''],
    ['.*', ''],
    ['^gpt', ''],
  ])('%s starts with %j', (pattern, prefix) => {
    expect(literalPrefix(pattern)).toBe(prefix);
  });

  it('is a prefix of every model the pattern accepts', () => {
    const rng = random(5);
    for (let i = 0; i < 400; i++) {
      const pattern = pick(rng, PATTERN_SHAPES)(word(rng, 3), word(rng, 2));
      const regex = compileModelRegex(pattern);
      const prefix = literalPrefix(pattern);
      for (let j = 0; j < 40; j++) {
        const model = word(rng, 6);
        if (regex.test(model)) expect(model.startsWith(prefix)).toBe(true);
      }
    }
  });
});
