/**
 * The endpoint allowlist (issue 11, item 6): only the endpoints the processor translates or meters are served with
 * the platform's credential, each with its method; anything else under an endpoint prefix has no operation (the
 * session answers 404), unless a route opts in with `passthroughEndpoints`, and then only that route's rules are
 * offered for it.
 */
import { SERVED_ENDPOINTS, type RouteConfig } from '@ai-gateway-constructs/processor-config';
import { findRule, Router, type EndpointMatch } from '../../src/routing/router';
import { TRANSLATORS } from '../../src/translate/registry';
import { route, testConfig } from '../support/processor-harness';

const openai = [{ backend: 'openai', weight: 1, priority: 0 }];

function routerOf(...routes: RouteConfig[]): Router {
  return new Router(testConfig({ routes }));
}

/** What the session decides from a match: served (the operation), 405 (the allowed methods) or 404. */
function outcome(match: EndpointMatch | undefined): string {
  if (match === undefined) return 'no endpoint';
  if (match.operation !== undefined) return match.operation;
  if (match.allowedMethods !== undefined) return `405 (${match.allowedMethods.join(', ')})`;
  return '404';
}

describe('the default endpoint allowlist', () => {
  const router = routerOf(
    route(['gpt-4o'], openai, {
      name: 'default/chat',
      endpoints: [
        { api: 'OpenAI', pathPrefix: '/v1' },
        { api: 'Anthropic', pathPrefix: '/anthropic/v1' },
      ],
    }),
  );

  it.each([
    ['POST', '/v1/chat/completions', 'chat'],
    ['POST', '/v1/chat/completions?api-version=1', 'chat'],
    ['POST', '/v1/completions', 'completions'],
    ['POST', '/v1/embeddings', 'embeddings'],
    ['POST', '/v1/responses', 'responses'],
    ['GET', '/v1/models', 'models'],
    ['POST', '/anthropic/v1/messages', 'messages'],
    ['POST', '/anthropic/v1/messages/count_tokens', 'count_tokens'],
  ])('serves %s %s as %s', (method, path, operation) => {
    expect(outcome(router.match(path, 'h', method))).toBe(operation);
  });

  // The reproductions of the issue: each was forwarded with the provider key (operation `other`) before.
  it.each([
    ['DELETE', '/v1/assistants/asst_abc123'],
    ['POST', '/v1/assistants'],
    ['POST', '/v1/fine_tuning/jobs'],
    ['GET', '/v1/fine_tuning/jobs'],
    ['POST', '/v1/batches'],
    ['GET', '/v1/organization/admin_api_keys'],
    ['POST', '/v1/organization/users/user_abc'],
    ['POST', '/v1/..;/admin'],
    ['GET', '/v1/..;/admin'],
    ['POST', '/v1/%2e%2e/admin'],
    ['POST', '/v1/%2e%2e/'],
    ['POST', '/v1/../admin'],
    ['POST', '/v1/./chat/completions'],
    // Images and audio only where a route opts in (passthroughEndpoints).
    ['POST', '/v1/images/generations'],
    ['POST', '/v1/audio/transcriptions'],
    ['POST', '/v1/audio/speech'],
    ['POST', '/v1/images/variations'],
    ['GET', '/v1/images/generations/img_1'],
    ['POST', '/v1/files'],
    ['GET', '/v1/responses/resp_123'],
    ['DELETE', '/v1/responses/resp_123'],
    ['POST', '/v1/responses/resp_123/cancel'],
    ['POST', '/v1/chat/completions/'],
    ['POST', '/v1/chat/completions;x=1'],
    ['POST', '/v1/chat/completions/chatcmpl-1'],
    ['DELETE', '/v1/chat/completions/chatcmpl-1'],
    ['POST', '/v1/Chat/Completions'],
    ['POST', '/v1'],
    ['POST', '/v1/'],
    ['POST', '/anthropic/v1/messages/batches'],
    ['POST', '/anthropic/v1/complete'],
    ['POST', '/anthropic/v1/models'],
  ])('does not serve %s %s (404)', (method, path) => {
    expect(outcome(router.match(path, 'h', method))).toBe('404');
  });

  it.each([
    ['GET', '/v1/chat/completions', 'POST'],
    ['DELETE', '/v1/chat/completions', 'POST'],
    ['PUT', '/v1/embeddings', 'POST'],
    ['GET', '/v1/responses', 'POST'],
    ['POST', '/v1/models', 'GET'],
    ['HEAD', '/v1/models', 'GET'],
    ['GET', '/anthropic/v1/messages', 'POST'],
    ['post', '/v1/chat/completions', 'POST'],
  ])('answers %s %s with the allowed method (405), not an operation', (method, path, allowed) => {
    const match = router.match(path, 'h', method)!;
    expect(match.operation).toBeUndefined();
    expect(match.allowedMethods).toEqual([allowed]);
  });

  it('serves nothing to a request without a method', () => {
    for (const path of ['/v1/chat/completions', '/v1/models', '/anthropic/v1/messages', '/v1/images/generations']) {
      expect(router.match(path, 'h')?.operation).toBeUndefined();
    }
    expect(router.match('/v1/chat/completions', 'h')!.allowedMethods).toEqual(['POST']);
  });

  it('serves exactly the operations a translator exists for (plus /models, answered locally)', () => {
    for (const api of ['OpenAI', 'Anthropic'] as const) {
      const served = SERVED_ENDPOINTS[api]
        .map((endpoint) => endpoint.operation)
        .filter((operation) => operation !== 'models');
      // `other` is what a route's passthroughEndpoints serve (images and audio among them), not a default endpoint.
      const translated = Object.keys(TRANSLATORS[api] ?? {}).filter((operation) => operation !== 'other');
      expect(new Set(served)).toEqual(new Set(translated));
    }
    expect(Object.keys(TRANSLATORS.OpenAI ?? {})).toContain('other');
  });
});

describe('passthroughEndpoints (opt-in per route)', () => {
  const moderation = route(['omni-moderation', 'shared'], openai, {
    name: 'team/moderation',
    passthroughEndpoints: [
      { path: '/moderations', methods: ['POST'] },
      { path: '/vector_stores/', methods: ['POST', 'PATCH'] },
    ],
  });
  const chat = route(['gpt-4o', 'shared'], openai, { name: 'team/chat' });
  const router = routerOf(chat, moderation);

  it("serves an exact opted-in path for the listed method, offering only the opting route's rules", () => {
    const match = router.match('/v1/moderations?x=1', 'h', 'POST')!;
    expect(match).toMatchObject({ operation: 'other', subpath: '/moderations', query: '?x=1' });
    expect(match.rules.map((rule) => rule.route.name)).toEqual(['team/moderation']);
    expect(match.routes.map((r) => r.name)).toEqual(['team/moderation']);
    // The chat route's models are not routed to the passthrough, even one both routes name: the opting route's rule
    // serves it.
    expect(findRule(match.rules, 'gpt-4o')).toBeUndefined();
    expect(findRule(match.rules, 'shared')?.rule.route.name).toBe('team/moderation');
    expect(findRule(match.rules, 'omni-moderation')?.rule.route.name).toBe('team/moderation');
  });

  it("keeps the other routes to the default endpoints, with every route's rules in first-match order", () => {
    const match = router.match('/v1/chat/completions', 'h', 'POST')!;
    expect(match.operation).toBe('chat');
    expect(match.rules.map((rule) => rule.route.name)).toEqual(['team/chat', 'team/moderation']);
    expect(findRule(match.rules, 'shared')?.rule.route.name).toBe('team/chat');
  });

  it('answers a listed path with another method 405, listing the opted-in methods', () => {
    expect(router.match('/v1/moderations', 'h', 'GET')).toMatchObject({
      operation: undefined,
      allowedMethods: ['POST'],
    });
    expect(router.match('/v1/moderations', 'h', 'DELETE')).toMatchObject({
      operation: undefined,
      allowedMethods: ['POST'],
    });
    expect(router.match('/v1/vector_stores/vs_1/files', 'h', 'DELETE')).toMatchObject({
      operation: undefined,
      allowedMethods: ['PATCH', 'POST'],
    });
    expect(router.match('/v1/moderations', 'h')).toMatchObject({
      operation: undefined,
      allowedMethods: ['POST'],
    });
  });

  it('matches a prefix ending in "/" for every subpath below it, not the prefix itself or its siblings', () => {
    expect(outcome(router.match('/v1/vector_stores/vs_1', 'h', 'POST'))).toBe('other');
    expect(outcome(router.match('/v1/vector_stores/vs_1/files/file-2', 'h', 'PATCH'))).toBe('other');
    expect(outcome(router.match('/v1/vector_stores', 'h', 'POST'))).toBe('404');
    expect(outcome(router.match('/v1/vector_stores/', 'h', 'POST'))).toBe('404');
    expect(outcome(router.match('/v1/vector_storesX/a', 'h', 'POST'))).toBe('404');
    expect(outcome(router.match('/v1/moderations/x', 'h', 'POST'))).toBe('404'); // exact entries are exact
  });

  it.each([
    '/v1/vector_stores/..;/admin',
    '/v1/vector_stores/../admin',
    '/v1/vector_stores/./vs_1',
    '/v1/vector_stores/vs_1/..',
    '/v1/vector_stores/%2e%2e/admin',
    '/v1/vector_stores/%2E%2E',
    '/v1/vector_stores/a%2fb',
    '/v1/vector_stores/a%5Cb',
    '/v1/vector_stores/a\\..\\b',
    '/v1/vector_stores/a;b',
    '/v1/vector_stores//a',
    '/v1/vector_stores/a/',
    '/v1/vector_stores/a b',
    '/v1/moderations;..',
  ])('never serves %s, even below an opted-in prefix', (path) => {
    expect(outcome(router.match(path, 'h', 'POST'))).toBe('404');
  });

  it('applies to the OpenAI endpoint only', () => {
    const both = routerOf(
      route(['m'], openai, {
        name: 'team/both',
        endpoints: [
          { api: 'OpenAI', pathPrefix: '/v1' },
          { api: 'Anthropic', pathPrefix: '/anthropic/v1' },
        ],
        passthroughEndpoints: [{ path: '/moderations', methods: ['POST'] }],
      }),
    );
    expect(outcome(both.match('/v1/moderations', 'h', 'POST'))).toBe('other');
    expect(outcome(both.match('/anthropic/v1/moderations', 'h', 'POST'))).toBe('404');
  });

  it('"/" opts into every plain subpath, still not into dot segments or encodings', () => {
    const all = routerOf(
      route(['m'], openai, { name: 'team/all', passthroughEndpoints: [{ path: '/', methods: ['POST'] }] }),
    );
    expect(outcome(all.match('/v1/audio/speech', 'h', 'POST'))).toBe('other');
    expect(outcome(all.match('/v1/audio/speech', 'h', 'DELETE'))).toBe('405 (POST)');
    expect(outcome(all.match('/v1/..;/admin', 'h', 'POST'))).toBe('404');
    expect(outcome(all.match('/v1/%2e%2e/', 'h', 'POST'))).toBe('404');
    expect(outcome(all.match('/v1', 'h', 'POST'))).toBe('404');
    // Served endpoints keep their method.
    expect(outcome(all.match('/v1/chat/completions', 'h', 'GET'))).toBe('405 (POST)');
  });

  it('respects hostnames: a route opted in on another host does not open the path here', () => {
    const hosts = routerOf(
      route(['a'], openai, { name: 'team/public', hostnames: ['public.example'] }),
      route(['b'], openai, {
        name: 'team/internal',
        hostnames: ['internal.example'],
        passthroughEndpoints: [{ path: '/moderations', methods: ['POST'] }],
      }),
    );
    expect(outcome(hosts.match('/v1/moderations', 'internal.example', 'POST'))).toBe('other');
    expect(hosts.match('/v1/moderations', 'internal.example', 'POST')!.rules.map((r) => r.route.name)).toEqual([
      'team/internal',
    ]);
    expect(outcome(hosts.match('/v1/moderations', 'public.example', 'POST'))).toBe('404');
  });

  it('offers the rules of every opted-in route in their order, and only for the method each listed', () => {
    const a = route(['a'], openai, {
      name: 'ns/a',
      passthroughEndpoints: [{ path: '/moderations', methods: ['POST'] }],
    });
    const b = route(['b'], openai, { name: 'ns/b' });
    const c = {
      ...route(['c'], openai, {
        name: 'ns/c',
        passthroughEndpoints: [{ path: '/moderations', methods: ['POST', 'PUT'] }],
      }),
      rules: [
        { models: [{ type: 'Prefix' as const, value: 'c-' }], backends: openai },
        { models: [{ type: 'Exact' as const, value: 'c-2' }], backends: openai },
      ],
    };
    const three = routerOf(a, b, c);
    const post = three.match('/v1/moderations', 'h', 'POST')!;
    expect(post.rules.map((rule) => rule.route.name)).toEqual(['ns/a', 'ns/c', 'ns/c']);
    expect(findRule(post.rules, 'c-2')?.rule).toBe(post.rules[1]); // first match wins within the opted-in rules
    const put = three.match('/v1/moderations', 'h', 'PUT')!;
    expect(put.rules.map((rule) => rule.route.name)).toEqual(['ns/c', 'ns/c']);
    expect(put.routes.map((r) => r.name)).toEqual(['ns/c']);
    expect(outcome(three.match('/v1/moderations', 'h', 'PATCH'))).toBe('405 (POST, PUT)');
  });
});
