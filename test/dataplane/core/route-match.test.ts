import { HeaderMap } from '../../../lib/dataplane/filter';
import type { HeaderMatch, RouteModel } from '../../../lib/dataplane/model';
import {
  fullMatch,
  headerMatches,
  parseQuery,
  pathMatches,
  selectRoute,
  selectVirtualHost,
} from '../../../lib/dataplane/route-match';

function route(name: string, hostname: string, extra: Partial<RouteModel> = {}): RouteModel {
  return {
    name,
    hostname,
    route: { namespace: 'ns', name },
    ruleIndex: 0,
    matchIndex: 0,
    path: { type: 'PathPrefix', value: '/' },
    headers: [],
    queryParams: [],
    action: { type: 'directResponse', status: 200 },
    extProcs: [],
    rateLimitRules: [],
    ...extra,
  };
}

function request(authority: string, path: string, extra: [string, string][] = []): HeaderMap {
  return new HeaderMap([[':method', 'GET'], [':path', path], [':authority', authority], ...extra]);
}

describe('path matching', () => {
  it('treats a PathPrefix as whole segments (path_separated_prefix) and `/` as a plain prefix', () => {
    expect(pathMatches({ type: 'PathPrefix', value: '/v1' }, '/v1')).toBe(true);
    expect(pathMatches({ type: 'PathPrefix', value: '/v1' }, '/v1/chat')).toBe(true);
    expect(pathMatches({ type: 'PathPrefix', value: '/v1' }, '/v1beta')).toBe(false);
    expect(pathMatches({ type: 'PathPrefix', value: '/' }, '/anything')).toBe(true);
  });

  it('matches Exact paths and whole-value regular expressions on the path without the query', () => {
    expect(pathMatches({ type: 'Exact', value: '/a' }, '/a')).toBe(true);
    expect(pathMatches({ type: 'Exact', value: '/a' }, '/a/')).toBe(false);
    expect(pathMatches({ type: 'RegularExpression', value: '/v[0-9]+' }, '/v12')).toBe(true);
    expect(pathMatches({ type: 'RegularExpression', value: '/v[0-9]+' }, '/v12/x')).toBe(false);
    expect(fullMatch('(?i)abc', 'ABC')).toBe(true);
  });

  it('reads regular expressions as RE2 does', () => {
    expect(fullMatch('a.b', 'a\nb')).toBe(false);
    expect(fullMatch('a.b', 'a-b')).toBe(true);
    expect(fullMatch('.', '\u{1F600}')).toBe(true);
    expect(fullMatch('v\\-1', 'v-1')).toBe(true);
    expect(fullMatch('a{', 'a{')).toBe(true);
    expect(() => fullMatch('(', 'x')).toThrow(/invalid regular expression "\(": missing closing \)/);
    expect(fullMatch('\\p{L}+', 'abc')).toBe(true);
    expect(fullMatch('a|bc', 'abc')).toBe(false); // the whole value, not either alternative at its end
    expect(fullMatch('\\s', '\u00a0')).toBe(false); // RE2's \s is ASCII white space
  });

  it.each([
    ['\\pL+', 'abc', '123'],
    ['\\Aabc\\z', 'abc', 'abc\n'],
    ['[[:digit:]]+', '123', 'abc'],
    ['(?P<n>x)', 'x', 'y'],
    ['a(?s).b', 'a\nb', 'ab'],
    ['\\x{41}', 'A', 'x'],
    ['\\Qa.b\\E', 'a.b', 'axb'],
    ['(?i)abc', 'aBc', 'abd'],
    ['x(?i:abc)', 'xABC', 'XABC'],
    ['(?U)a+', 'aaa', 'b'],
  ])('runs RE2 syntax JavaScript lacks: %s', (pattern, matching, other) => {
    expect(fullMatch(pattern, matching)).toBe(true);
    expect(fullMatch(pattern, other)).toBe(false);
  });

  it.each(['(a)\\1', '(?=a)a', '(?!a)b', '(?<=a)b', 'a{1001}', '\\C'])('refuses what RE2 cannot run: %s', (pattern) => {
    expect(() => fullMatch(pattern, 'x')).toThrow(/invalid regular expression/);
  });

  it('matches in linear time: a backtracking bomb against a long value returns fast', () => {
    const value = `${'a'.repeat(100_000)}!`;
    const start = performance.now();
    expect(fullMatch('(a|a)*b', value)).toBe(false);
    expect(fullMatch('(a+)+b', value)).toBe(false);
    expect(fullMatch('claude-(\\w+-?)+', `claude-${'a'.repeat(32)}!`)).toBe(false);
    expect(performance.now() - start).toBeLessThan(1_000);
  });
});

describe('header and query matching', () => {
  const h = (m: Partial<HeaderMatch>): HeaderMatch => ({ name: 'x', type: 'Exact', value: 'a', ...m });

  it('compares repeated headers joined with `,`, exactly or by a full regex, and honours invert', () => {
    const headers = new HeaderMap([
      ['x', 'a'],
      ['x', 'b'],
    ]);
    expect(headerMatches(h({ value: 'a,b' }), headers)).toBe(true);
    expect(headerMatches(h({ value: 'a' }), headers)).toBe(false);
    expect(headerMatches(h({ type: 'RegularExpression', value: 'a,.' }), headers)).toBe(true);
    expect(headerMatches(h({ type: 'RegularExpression', value: 'a' }), headers)).toBe(false);
    expect(headerMatches(h({ invert: true, value: 'z' }), headers)).toBe(true);
    expect(headerMatches(h({ name: 'missing', invert: true }), headers)).toBe(true);
    expect(headerMatches(h({ name: 'missing' }), headers)).toBe(false);
  });

  it('reads the first occurrence of a query parameter, decoded', () => {
    expect(parseQuery('/p?a=1&a=2&b=x%20y&c')).toEqual(
      new Map([
        ['a', '1'],
        ['b', 'x y'],
        ['c', ''],
      ]),
    );
  });
});

describe('virtual host and route selection', () => {
  it('picks the exact domain, then the longest wildcard suffix, then `*`, ignoring the port', () => {
    const domains = ['*', '*.example.com', '*.api.example.com', 'www.example.com'];
    expect(selectVirtualHost(domains, 'www.example.com:8080')).toBe('www.example.com');
    expect(selectVirtualHost(domains, 'v1.api.example.com')).toBe('*.api.example.com');
    expect(selectVirtualHost(domains, 'a.b.example.com')).toBe('*.example.com');
    expect(selectVirtualHost(domains, 'example.com')).toBe('*');
    expect(selectVirtualHost(['*.example.com'], 'example.org')).toBeUndefined();
  });

  it('takes the first matching route of the chosen virtual host only', () => {
    const listener = {
      routes: [
        route('specific', 'www.example.com', { path: { type: 'PathPrefix', value: '/v1' } }),
        route('method', '*', { headers: [{ name: ':method', type: 'Exact', value: 'POST' }] }),
        route('catch-all', '*'),
      ],
    };
    expect(selectRoute(listener, request('www.example.com', '/v1/x'))?.name).toBe('specific');
    // The virtual host www.example.com has no route for /v2: the `*` host is not consulted.
    expect(selectRoute(listener, request('www.example.com', '/v2'))).toBeUndefined();
    expect(selectRoute(listener, request('other', '/v2', [[':method', 'POST']]))?.name).toBe('catch-all');
    const post = new HeaderMap([
      [':method', 'POST'],
      [':path', '/'],
      [':authority', 'other'],
    ]);
    expect(selectRoute(listener, post)?.name).toBe('method');
  });
});
