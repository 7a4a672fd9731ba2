/**
 * SecurityPolicy `apiKeyAuth` as Envoy Gateway v1.9 builds it and Envoy's api_key_auth filter runs it: credentials
 * from Secrets (client id = data key), key sources in order with `Bearer ` stripped, the client id forwarded, the key
 * removed (`sanitize`), Envoy's 401s, filter order (before jwt_authn and ext_proc), and a route policy replacing the
 * gateway's.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { parse } from 'yaml';
import {
  API_KEY_AUTH_DENIED_BODY,
  apiKeyAuthSettingsFromPolicy,
  createApiKeyAuthFilter,
  type ApiKeyAuthSettings,
} from '../../../lib/dataplane/api-key-auth';
import type { EchoResponseBody } from '../../../lib/dataplane/echo';
import type { KubeObject } from '../../../lib/dataplane/model';
import { ObjectIndex } from '../../../lib/dataplane/objects';
import { type RunningDataPlane, startDataPlane } from '../../../lib/dataplane/server';
import { translate } from '../../../lib/dataplane/translate';
import { testStream } from '../rate-limit/stream';
import { setHeader, startFakeProcessor, type FakeProcessor, type Message } from '../ext-proc/support';

const docs = (text: string): KubeObject[] =>
  text
    .split(/^---$/m)
    .map((d) => parse(d) as KubeObject)
    .filter(Boolean);

const b64 = (s: string) => Buffer.from(s).toString('base64');

function secret(name: string, data: Record<string, string>, namespace = 'ai'): string {
  const entries = Object.entries(data)
    .map(([k, v]) => `  ${k}: ${b64(v)}`)
    .join('\n');
  return `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}, namespace: ${namespace}}\ndata:\n${entries}\n`;
}

/** The SecurityPolicy shape the AIGateway emits (see /tmp/plan/governance.md decision 1). */
function apiKeyPolicy(name: string, target: string, secrets: string[], extra = ''): string {
  return `
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata: {name: ${name}, namespace: ai}
spec:
  targetRefs: [${target}]
  apiKeyAuth:
    credentialRefs: [${secrets.map((s) => `{group: '', kind: Secret, name: ${s}}`).join(', ')}]
    extractFrom: [{headers: [authorization]}, {headers: [x-api-key]}]
    forwardClientIDHeader: x-ai-gateway-client-id
    sanitize: true
${extra}`;
}

const GATEWAY = '{group: gateway.networking.k8s.io, kind: Gateway, name: gw}';
const ROUTE_B = '{group: gateway.networking.k8s.io, kind: HTTPRoute, name: chat-b}';

function base(): string {
  return `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ai}
spec: {gatewayClassName: eg, listeners: [{name: http, port: 80, protocol: HTTP}]}
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: ai}
spec: {ports: [{port: 8080}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: chat-a, namespace: ai}
spec:
  parentRefs: [{name: gw}]
  rules: [{matches: [{path: {type: PathPrefix, value: /a}}], backendRefs: [{name: backend, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: chat-b, namespace: ai}
spec:
  parentRefs: [{name: gw}]
  rules: [{matches: [{path: {type: PathPrefix, value: /b}}], backendRefs: [{name: backend, port: 8080}]}]
`;
}

function request(
  address: string,
  pathAndQuery: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const url = new URL(address);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: pathAndQuery, method: 'GET', agent: false, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const echoed = (body: string) => JSON.parse(body) as EchoResponseBody;

function policyObject(manifests: string): { policy: KubeObject; index: ObjectIndex } {
  const objects = docs(manifests);
  return { policy: objects.find((o) => o.kind === 'SecurityPolicy')!, index: new ObjectIndex(objects) };
}

describe('apiKeyAuth settings (Envoy Gateway buildAPIKeyAuth)', () => {
  it('reads client ids sorted per Secret; a client id seen in an earlier Secret is skipped', () => {
    const { policy, index } = policyObject(
      [
        apiKeyPolicy('keys', GATEWAY, ['team-b', 'team-a']),
        secret('team-b', { zed: 'k-zed', bob: 'k-bob-1' }),
        secret('team-a', { bob: 'k-bob-2', amy: 'k-amy' }),
      ].join('---\n'),
    );
    const settings = apiKeyAuthSettingsFromPolicy(policy, index)!;
    expect(settings.credentials.map((c) => c.client)).toEqual(['bob', 'zed', 'amy']);
    expect(settings.keySources).toEqual([
      { type: 'header', name: 'authorization' },
      { type: 'header', name: 'x-api-key' },
    ]);
    expect(settings.forwardClientIdHeader).toBe('x-ai-gateway-client-id');
    expect(settings.sanitize).toBe(true);
    // The model holds digests only: no key appears in it.
    expect(JSON.stringify(settings)).not.toMatch(/k-(zed|bob|amy)/);
  });

  it('reads stringData over data, as the API server merges them', () => {
    const { policy, index } = policyObject(
      [
        apiKeyPolicy('keys', GATEWAY, ['team']),
        `apiVersion: v1\nkind: Secret\nmetadata: {name: team, namespace: ai}\n` +
          `data: {amy: ${b64('old')}}\nstringData: {amy: new, cid: other}\n`,
      ].join('---\n'),
    );
    const filter = createApiKeyAuthFilter(apiKeyAuthSettingsFromPolicy(policy, index));
    expect(filter.decodeHeaders!(testStream({ headers: [['x-api-key', 'new']] }), true)).toEqual({
      action: 'continue',
    });
    expect(filter.decodeHeaders!(testStream({ headers: [['x-api-key', 'old']] }), true)).toMatchObject({
      action: 'localReply',
    });
  });

  it('orders key sources as each extractFrom entry lists headers, then params, then cookies', () => {
    const { policy, index } = policyObject(
      apiKeyPolicy('keys', GATEWAY, ['team']).replace(
        'extractFrom: [{headers: [authorization]}, {headers: [x-api-key]}]',
        'extractFrom: [{params: [key]}, {cookies: [session]}, {headers: [X-Key, authorization]}]',
      ) +
        '---\n' +
        secret('team', { amy: 'k' }),
    );
    expect(apiKeyAuthSettingsFromPolicy(policy, index)!.keySources).toEqual([
      { type: 'query', name: 'key' },
      { type: 'cookie', name: 'session' },
      { type: 'header', name: 'x-key' },
      { type: 'header', name: 'authorization' },
    ]);
  });

  it.each([
    ['the same key under two client ids', [secret('team', { amy: 'same', bob: 'same' })], /duplicated API key/],
    ['a missing Secret', [], /Secret ai\/team does not exist/],
  ])('fails the policy on %s, and its routes answer 500 (EG)', (_what, extra, message) => {
    const manifests = [base(), apiKeyPolicy('keys', GATEWAY, ['team']), ...extra].join('---\n');
    const { policy, index } = policyObject(manifests);
    expect(() => apiKeyAuthSettingsFromPolicy(policy, index)).toThrow(message);
    const routes = translate(docs(manifests)).gateways[0].listeners[0].routes;
    expect(routes.every((r) => r.action.type === 'directResponse' && r.action.status === 500)).toBe(true);
    expect(routes.every((r) => r.apiKeyAuth === undefined)).toBe(true);
  });

  it('refuses an extractFrom entry that names two kinds of source', () => {
    const { policy, index } = policyObject(
      apiKeyPolicy('keys', GATEWAY, ['team']).replace(
        'extractFrom: [{headers: [authorization]}, {headers: [x-api-key]}]',
        'extractFrom: [{headers: [x-api-key], params: [key]}]',
      ) +
        '---\n' +
        secret('team', { amy: 'k' }),
    );
    expect(() => apiKeyAuthSettingsFromPolicy(policy, index)).toThrow(/only one of headers, params or cookies/);
  });

  it('needs a ReferenceGrant for a Secret in another namespace', () => {
    const manifests = [
      apiKeyPolicy('keys', GATEWAY, ['team']).replace(
        "{group: '', kind: Secret, name: team}",
        "{group: '', kind: Secret, name: team, namespace: keys}",
      ),
      secret('team', { amy: 'k' }, 'keys'),
    ];
    const denied = policyObject(manifests.join('---\n'));
    expect(() => apiKeyAuthSettingsFromPolicy(denied.policy, denied.index)).toThrow(/ReferenceGrant/);
    const grant = `apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: keys, namespace: keys}
spec:
  from: [{group: gateway.envoyproxy.io, kind: SecurityPolicy, namespace: ai}]
  to: [{group: '', kind: Secret}]
`;
    const granted = policyObject([...manifests, grant].join('---\n'));
    expect(apiKeyAuthSettingsFromPolicy(granted.policy, granted.index)!.credentials).toHaveLength(1);
  });
});

describe('the api_key_auth filter (Envoy ApiKeyAuthFilter::decodeHeaders)', () => {
  const { policy, index } = policyObject(
    [apiKeyPolicy('keys', GATEWAY, ['team']), secret('team', { amy: 'sk-amy', bob: 'sk-bob' })].join('---\n'),
  );
  const settings = apiKeyAuthSettingsFromPolicy(policy, index)!;
  const run = (headers: [string, string][], config: ApiKeyAuthSettings = settings) => {
    const stream = testStream({ headers });
    const result = createApiKeyAuthFilter(config).decodeHeaders!(stream, true);
    return { result, headers: stream.requestHeaders };
  };

  it('takes `Authorization: Bearer <key>` (OpenAI SDKs) and x-api-key (Anthropic SDKs)', () => {
    expect(run([['authorization', 'Bearer sk-amy']]).headers.get('x-ai-gateway-client-id')).toBe('amy');
    expect(run([['x-api-key', 'sk-bob']]).headers.get('x-ai-gateway-client-id')).toBe('bob');
  });

  it('strips exactly `Bearer ` (case-sensitive); any other value is taken whole', () => {
    expect(run([['authorization', 'sk-amy']]).headers.get('x-ai-gateway-client-id')).toBe('amy');
    expect(run([['authorization', 'bearer sk-amy']]).result).toMatchObject({
      action: 'localReply',
      reply: { details: 'unkonwn_api_key' },
    });
    // x-api-key gets the same treatment: every header source strips the prefix.
    expect(run([['x-api-key', 'Bearer sk-bob']]).headers.get('x-ai-gateway-client-id')).toBe('bob');
  });

  it('uses the first source with a non-empty key, even when that key is wrong', () => {
    const both = run([
      ['authorization', 'Bearer sk-wrong'],
      ['x-api-key', 'sk-bob'],
    ]);
    expect(both.result).toMatchObject({ action: 'localReply', reply: { status: 401, details: 'unkonwn_api_key' } });
    // An empty first source falls through to the next one.
    expect(
      run([
        ['authorization', 'Bearer '],
        ['x-api-key', 'sk-bob'],
      ]).headers.get('x-ai-gateway-client-id'),
    ).toBe('bob');
  });

  it("answers Envoy's 401s: missing key, unknown key", () => {
    expect(run([]).result).toEqual({
      action: 'localReply',
      reply: { status: 401, body: API_KEY_AUTH_DENIED_BODY, details: 'missing_api_key' },
    });
    expect(run([['x-api-key', 'nope']]).result).toEqual({
      action: 'localReply',
      reply: { status: 401, body: API_KEY_AUTH_DENIED_BODY, details: 'unkonwn_api_key' },
    });
  });

  it('sets the client id over a spoofed one and removes every key source (sanitize)', () => {
    const { result, headers } = run([
      ['x-ai-gateway-client-id', 'spoofed'],
      ['x-ai-gateway-client-id', 'twice'],
      ['authorization', 'Bearer sk-amy'],
      ['x-api-key', 'whatever'],
    ]);
    expect(result).toEqual({ action: 'continue' });
    expect(headers.getAll('x-ai-gateway-client-id')).toEqual(['amy']);
    expect(headers.has('authorization')).toBe(false);
    expect(headers.has('x-api-key')).toBe(false);
  });

  it('without sanitize the key stays; without a forward header no client id is set', () => {
    const plain = { ...settings, sanitize: false, forwardClientIdHeader: undefined };
    const { headers } = run([['authorization', 'Bearer sk-amy']], plain);
    expect(headers.get('authorization')).toBe('Bearer sk-amy');
    expect(headers.has('x-ai-gateway-client-id')).toBe(false);
  });

  it('reads and removes query parameters and cookies', () => {
    const config: ApiKeyAuthSettings = {
      ...settings,
      keySources: [
        { type: 'query', name: 'api_key' },
        { type: 'cookie', name: 'key' },
      ],
    };
    const query = run([[':path', '/v1/models?x=1&api_key=sk%2Damy&y=2']], config);
    expect(query.headers.get('x-ai-gateway-client-id')).toBe('amy');
    expect(query.headers.get(':path')).toBe('/v1/models?x=1&y=2');
    const cookie = run([['cookie', 'a=1; key="sk-bob"; b=2']], config);
    expect(cookie.headers.get('x-ai-gateway-client-id')).toBe('bob');
    expect(cookie.headers.get('cookie')).toBe('a=1; b=2');
  });

  it('answers 401 missing_key_sources when the policy lists no source', () => {
    expect(run([['x-api-key', 'sk-amy']], { ...settings, keySources: [] }).result).toMatchObject({
      reply: { status: 401, details: 'missing_key_sources' },
    });
  });
});

function isUnauthorized(message: Message): boolean {
  return (message.responseHeaders.headers.headers as Message[]).some(
    (h) => h.key === ':status' && Buffer.from(h.rawValue ?? []).toString() === '401',
  );
}

describe('apiKeyAuth through the data plane', () => {
  let plane: RunningDataPlane | undefined;
  let processor: FakeProcessor | undefined;
  afterEach(async () => {
    await plane?.close();
    await processor?.close();
    plane = undefined;
    processor = undefined;
  });

  it('authenticates, forwards the client id, hides the key, and answers 401 as Envoy does', async () => {
    plane = await startDataPlane({
      objects: docs([base(), apiKeyPolicy('keys', GATEWAY, ['team']), secret('team', { amy: 'sk-amy' })].join('---\n')),
      echo: true,
    });
    const address = plane.address('ai', 'gw', 80);
    const ok = await request(address, '/a', { authorization: 'Bearer sk-amy', 'x-ai-gateway-client-id': 'root' });
    expect(ok.status).toBe(200);
    const seen = echoed(ok.body).headers;
    expect(seen['x-ai-gateway-client-id']).toEqual(['amy']);
    expect(seen.authorization).toBeUndefined();
    const missing = await request(address, '/a');
    expect(missing.status).toBe(401);
    expect(missing.body).toBe(API_KEY_AUTH_DENIED_BODY);
    expect(missing.headers['content-type']).toBe('text/plain');
    expect((await request(address, '/b', { 'x-api-key': 'sk-other' })).status).toBe(401);
  });

  it('a route-level policy replaces the gateway policy for that route (no merge)', async () => {
    plane = await startDataPlane({
      objects: docs(
        [
          base(),
          apiKeyPolicy('gateway-keys', GATEWAY, ['gateway-team']),
          apiKeyPolicy('route-keys', ROUTE_B, ['route-team']),
          secret('gateway-team', { amy: 'sk-amy' }),
          secret('route-team', { bob: 'sk-bob' }),
        ].join('---\n'),
      ),
      echo: true,
    });
    const address = plane.address('ai', 'gw', 80);
    expect((await request(address, '/a', { 'x-api-key': 'sk-amy' })).status).toBe(200);
    expect((await request(address, '/a', { 'x-api-key': 'sk-bob' })).status).toBe(401);
    // On chat-b only the route policy's keys count: the gateway's consumer is refused there.
    expect((await request(address, '/b', { 'x-api-key': 'sk-amy' })).status).toBe(401);
    const bob = await request(address, '/b', { 'x-api-key': 'sk-bob' });
    expect(echoed(bob.body).headers['x-ai-gateway-client-id']).toEqual(['bob']);
  });

  it('reads credentials Secrets missing from the manifests from the secrets folder', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'api-keys-'));
    try {
      fs.mkdirSync(path.join(dir, 'ai', 'team'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'ai', 'team', 'amy'), 'sk-amy');
      plane = await startDataPlane({
        objects: docs([base(), apiKeyPolicy('keys', GATEWAY, ['team'])].join('---\n')),
        echo: true,
        secrets: { dir },
      });
      const address = plane.address('ai', 'gw', 80);
      const ok = await request(address, '/a', { 'x-api-key': 'sk-amy' });
      expect(echoed(ok.body).headers['x-ai-gateway-client-id']).toEqual(['amy']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('jwt and apiKeyAuth in one policy both apply, api_key_auth first (EG order 7 < 10)', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' };
    const token = await new SignJWT({ team: 'red' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer('https://issuer.example')
      .setExpirationTime('10m')
      .sign(privateKey);
    const jwt = `  jwt:
    providers:
    - name: idp
      issuer: https://issuer.example
      localJWKS:
        type: Inline
        inline: '${JSON.stringify({ keys: [jwk] })}'
      claimToHeaders: [{claim: team, header: x-team}]
`;
    const keyOnly = apiKeyPolicy('keys', GATEWAY, ['team'], jwt).replace(
      'extractFrom: [{headers: [authorization]}, {headers: [x-api-key]}]',
      'extractFrom: [{headers: [x-api-key]}]',
    );
    plane = await startDataPlane({
      objects: docs([base(), keyOnly, secret('team', { amy: 'sk-amy' })].join('---\n')),
      echo: true,
    });
    let address = plane.address('ai', 'gw', 80);
    const passed = await request(address, '/a', { 'x-api-key': 'sk-amy', authorization: `Bearer ${token}` });
    expect(passed.status).toBe(200);
    expect(echoed(passed.body).headers['x-team']).toEqual(['red']);
    expect(echoed(passed.body).headers['x-ai-gateway-client-id']).toEqual(['amy']);
    expect((await request(address, '/a', { 'x-api-key': 'sk-amy' })).body).toBe('Jwt is missing');
    await plane.close();

    plane = await startDataPlane({
      objects: docs(
        [base(), apiKeyPolicy('keys', GATEWAY, ['team'], jwt), secret('team', { amy: 'sk-amy' })].join('---\n'),
      ),
      echo: true,
    });
    address = plane.address('ai', 'gw', 80);
    // With Authorization as the first key source (the shape for OpenAI SDKs), a JWT in Authorization is the first
    // non-empty source: api_key_auth takes the token as the key and refuses it, whatever x-api-key holds.
    const both = await request(address, '/a', { 'x-api-key': 'sk-amy', authorization: `Bearer ${token}` });
    expect(both.status).toBe(401);
    expect(both.body).toBe(API_KEY_AUTH_DENIED_BODY);
    // A key in Authorization passes api_key_auth, whose sanitize then removes Authorization: jwt_authn finds no token.
    const keyOnly2 = await request(address, '/a', { authorization: 'Bearer sk-amy' });
    expect(keyOnly2.body).toBe('Jwt is missing');
    // Without a key, api_key_auth answers first, whatever the token.
    const noKey = await request(address, '/a', { cookie: `x=${token}` });
    expect(noKey.body).toBe(API_KEY_AUTH_DENIED_BODY);
  });

  it('runs before ext_proc, which sees the client id, not the key, and the 401 in its response phase', async () => {
    const seen: Message[] = [];
    processor = await startFakeProcessor(async (stream) => {
      for (let message = await stream.next(); message; message = await stream.next()) {
        seen.push(message);
        if (message.request === 'requestHeaders') stream.send({ requestHeaders: { response: {} } });
        if (message.request === 'responseHeaders' && !isUnauthorized(message)) {
          stream.send({ responseHeaders: { response: {} } });
        } else if (message.request === 'responseHeaders') {
          // Replace the local reply's body as the processor does for errors in the client's schema.
          stream.send({
            responseHeaders: {
              response: {
                status: 1,
                headerMutation: { setHeaders: [setHeader('content-type', 'application/json')] },
                bodyMutation: { body: Buffer.from('{"error":{"type":"authentication_error"}}') },
              },
            },
          });
        }
      }
    });
    const eep = `
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyExtensionPolicy
metadata: {name: processor, namespace: ai}
spec:
  targetRefs: [${GATEWAY}]
  extProc:
  - backendRefs: [{name: processor, port: 9002}]
    messageTimeout: 5s
    processingMode: {request: {}, response: {}}
---
apiVersion: v1
kind: Service
metadata: {name: processor, namespace: ai}
spec: {ports: [{port: 9002}]}
`;
    plane = await startDataPlane({
      objects: docs(
        [base(), eep, apiKeyPolicy('keys', GATEWAY, ['team']), secret('team', { amy: 'sk-amy' })].join('---\n'),
      ),
      echo: true,
      backendOverrides: { 'ai/processor': `http://${processor.address}` },
    });
    const address = plane.address('ai', 'gw', 80);
    const ok = await request(address, '/a', { authorization: 'Bearer sk-amy' });
    expect(ok.status).toBe(200);
    expect(echoed(ok.body).path).toBe('/a');
    const requestHeaders = (
      seen.find((m) => m.request === 'requestHeaders')!.requestHeaders.headers.headers as Message[]
    ).map((h) => [h.key, Buffer.from(h.rawValue ?? []).toString()] as [string, string]);
    expect(requestHeaders).toContainEqual(['x-ai-gateway-client-id', 'amy']);
    expect(requestHeaders.some(([name]) => name === 'authorization')).toBe(false);

    seen.length = 0;
    const denied = await request(address, '/a', { authorization: 'Bearer sk-nope' });
    // ext_proc never saw this request, yet the local reply passes through its encoder side.
    expect(seen.map((m) => m.request)).toEqual(['responseHeaders']);
    expect(denied.status).toBe(401);
    expect(denied.headers['content-type']).toBe('application/json');
    expect(denied.body).toBe('{"error":{"type":"authentication_error"}}');
  });
});
