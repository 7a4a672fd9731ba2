/** Envoy's jwt_authn as Envoy Gateway configures it, with real keys (jose) and JWKS served over HTTP or from a file. */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import {
  createJwksResolver,
  createJwtFilter,
  JWT_STATUS,
  type JwtSettings,
  jwtSettingsFromPolicy,
} from '../../../lib/dataplane/jwt';
import { testStream } from '../rate-limit/stream';

const ISSUER = 'https://issuer.example';
const JWKS_URI = 'https://issuer.example/.well-known/jwks.json';

type Key = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

let signingKey: Key;
let otherKey: Key;
let jwks: { keys: JWK[] };
let server: http.Server;
let jwksUrl: string;
let jwksFile: string;
let jwksRequests = 0;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true });
  signingKey = pair.privateKey;
  otherKey = (await generateKeyPair('RS256', { extractable: true })).privateKey;
  jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] };
  server = http.createServer((req, res) => {
    jwksRequests++;
    if (req.url === '/missing.json') res.writeHead(404).end('not found');
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  jwksFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'jwks-')), 'jwks.json');
  fs.writeFileSync(jwksFile, JSON.stringify(jwks));
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/** The SecurityPolicy AIGateway emits (lib/ai-gateway.ts addJwtAuthentication). */
const securityPolicy = (extra: Record<string, unknown> = {}) => ({
  apiVersion: 'gateway.envoyproxy.io/v1alpha1',
  kind: 'SecurityPolicy',
  metadata: { namespace: 'ai', name: 'gw-jwt' },
  spec: {
    targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }],
    jwt: {
      providers: [
        {
          name: 'default',
          issuer: ISSUER,
          audiences: ['ai-gateway'],
          remoteJWKS: { uri: JWKS_URI },
          claimToHeaders: [
            { claim: 'sub', header: 'x-user' },
            { claim: 'org.id', header: 'x-org' },
            { claim: 'tier', header: 'x-tier' },
            { claim: 'admin', header: 'x-admin' },
            { claim: 'groups', header: 'x-groups' },
          ],
        },
      ],
      ...extra,
    },
  },
});

async function token(claims: JWTPayload = {}, options: { key?: Key; kid?: string; expiresIn?: string | number } = {}) {
  return new SignJWT({
    sub: 'alice',
    aud: 'ai-gateway',
    org: { id: 'acme' },
    tier: 3,
    admin: false,
    groups: ['a', 'b'],
    ...claims,
  })
    .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? 'k1' })
    .setIssuer(claims.iss ?? ISSUER)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '10m')
    .sign(options.key ?? signingKey);
}

function settings(extra: Record<string, unknown> = {}): JwtSettings {
  const parsed = jwtSettingsFromPolicy(securityPolicy(extra));
  if (!parsed) throw new Error('expected JWT settings');
  return parsed;
}

async function authenticate(
  headers: [string, string][],
  options: { settings?: JwtSettings; override?: string; path?: string } = {},
) {
  const filter = createJwtFilter(
    options.settings ?? settings(),
    createJwksResolver({ overrides: { [JWKS_URI]: options.override ?? jwksUrl } }),
  );
  const stream = testStream({ headers: [[':path', options.path ?? '/v1/chat/completions?x=1'], ...headers] });
  const result = await filter.decodeHeaders!(stream, false);
  return { reply: result.action === 'localReply' ? result.reply : undefined, stream };
}

describe('jwtSettingsFromPolicy', () => {
  it('reads the providers, JWKS, claim headers, optional and failOpen as EG does', () => {
    expect(settings()).toEqual({
      name: 'securitypolicy/ai/gw-jwt',
      providers: [
        {
          name: 'default',
          issuer: ISSUER,
          audiences: ['ai-gateway'],
          remoteJwksUri: JWKS_URI,
          claimToHeaders: [
            { claim: 'sub', header: 'x-user' },
            { claim: 'org.id', header: 'x-org' },
            { claim: 'tier', header: 'x-tier' },
            { claim: 'admin', header: 'x-admin' },
            { claim: 'groups', header: 'x-groups' },
          ],
        },
      ],
      allowMissing: false,
      allowMissingOrFailed: false,
    });
    expect(settings({ optional: true }).allowMissing).toBe(true);
  });

  it('rejects a provider with both or neither JWKS source', () => {
    const both = securityPolicy();
    (both.spec.jwt.providers[0] as Record<string, unknown>).localJWKS = { type: 'Inline', inline: '{"keys":[]}' };
    expect(() => jwtSettingsFromPolicy(both)).toThrow(/exactly one of remoteJWKS or localJWKS/);
  });
});

describe('createJwtFilter', () => {
  it('accepts a valid token from the JWKS URL, forwards authorization and appends claims as headers', async () => {
    const jwt = await token({ scope: 'chat  embeddings' });
    const { reply, stream } = await authenticate([
      ['authorization', `Bearer ${jwt}`],
      ['x-user', 'mallory'], // a client-set claim header is removed first
    ]);
    expect(reply).toBeUndefined();
    const h = stream.requestHeaders;
    expect(h.get('authorization')).toBe(`Bearer ${jwt}`);
    expect(h.getAll('x-user')).toEqual(['alice']);
    expect(h.get('x-org')).toBe('acme');
    expect(h.get('x-tier')).toBe('3');
    expect(h.get('x-admin')).toBe('false');
    expect(Buffer.from(h.get('x-groups') ?? '', 'base64').toString()).toBe('["a","b"]');
    expect(stream.dynamicMetadata.get('envoy.filters.http.jwt_authn')?.default).toMatchObject({
      sub: 'alice',
      iss: ISSUER,
      scope: ['chat', 'embeddings'],
    });
  });

  it('reads JWKS from a file override and from the access_token query parameter', async () => {
    const jwt = await token();
    const { reply } = await authenticate([], { override: jwksFile, path: `/v1/models?access_token=${jwt}` });
    expect(reply).toBeUndefined();
  });

  it.each([
    ['a missing token', async () => [] as [string, string][], 401, JWT_STATUS.missing, false],
    [
      'an expired token',
      async () =>
        [['authorization', `Bearer ${await token({}, { expiresIn: Math.floor(Date.now() / 1000) - 120 })}`]] as [
          string,
          string,
        ][],
      401,
      JWT_STATUS.expired,
      true,
    ],
    [
      'a wrong issuer',
      async () => [['authorization', `Bearer ${await token({ iss: 'https://evil.example' })}`]] as [string, string][],
      401,
      JWT_STATUS.unknownIssuer,
      true,
    ],
    [
      'a wrong audience',
      async () => [['authorization', `Bearer ${await token({ aud: 'someone-else' })}`]] as [string, string][],
      403,
      JWT_STATUS.audienceNotAllowed,
      true,
    ],
    [
      'a token signed by another key',
      async () => [['authorization', `Bearer ${await token({}, { key: otherKey })}`]] as [string, string][],
      401,
      JWT_STATUS.verificationFailed,
      true,
    ],
    [
      'an unknown key id',
      async () => [['authorization', `Bearer ${await token({}, { kid: 'k9', key: otherKey })}`]] as [string, string][],
      401,
      JWT_STATUS.noMatchingKey,
      true,
    ],
    [
      'garbage',
      async () => [['authorization', 'Bearer not-a-jwt']] as [string, string][],
      401,
      JWT_STATUS.badFormat,
      true,
    ],
  ])(
    'rejects %s with Envoy’s status, body and www-authenticate',
    async (_name, headers, status, body, invalidToken) => {
      const { reply } = await authenticate(await headers());
      expect(reply?.status).toBe(status);
      expect(reply?.body).toBe(body);
      expect(reply?.details).toBe(`jwt_authn_access_denied{${body.replace(/ /g, '_')}}`);
      const realm = 'Bearer realm="http://gw.example/v1/chat/completions"';
      expect(Object.fromEntries(reply?.headers ?? [])['www-authenticate']).toBe(
        invalidToken ? `${realm}, error="invalid_token"` : realm,
      );
    },
  );

  it('allows an expired token within 60 s of clock skew', async () => {
    const { reply } = await authenticate([
      ['authorization', `Bearer ${await token({}, { expiresIn: Math.floor(Date.now() / 1000) - 30 })}`],
    ]);
    expect(reply).toBeUndefined();
  });

  it('optional: a missing token passes, an invalid one does not; failOpen lets both pass', async () => {
    expect((await authenticate([], { settings: settings({ optional: true }) })).reply).toBeUndefined();
    expect(
      (await authenticate([['authorization', 'Bearer x.y.z']], { settings: settings({ optional: true }) })).reply
        ?.status,
    ).toBe(401);
    expect(
      (await authenticate([['authorization', 'Bearer x.y.z']], { settings: settings({ failOpen: true }) })).reply,
    ).toBeUndefined();
  });

  it(
    'without fixed settings, applies the matched route’s requirement and leaves routes without ' + 'one alone',
    async () => {
      const filter = createJwtFilter(undefined, createJwksResolver({ overrides: { [JWKS_URI]: jwksUrl } }));
      const open = testStream({ route: { name: 'public' } });
      expect(await filter.decodeHeaders!(open, false)).toEqual({ action: 'continue' });
      const guarded = testStream({ route: { name: 'private', jwt: settings() } });
      expect(await filter.decodeHeaders!(guarded, false)).toMatchObject({
        action: 'localReply',
        reply: { status: 401 },
      });
    },
  );

  it('with several providers, any one may accept; failures aggregate as Envoy requires_any does', async () => {
    const base = settings();
    const other = {
      ...base.providers[0],
      name: 'other',
      issuer: 'https://other.example',
      claimToHeaders: [{ claim: 'sub', header: 'x-other-user' }],
    };
    const twoProviders: JwtSettings = { ...base, providers: [other, base.providers[0]] };
    const accepted = await authenticate(
      [
        ['authorization', `Bearer ${await token()}`],
        ['x-other-user', 'spoofed'],
      ],
      { settings: twoProviders },
    );
    expect(accepted.reply).toBeUndefined();
    expect(accepted.stream.requestHeaders.get('x-user')).toBe('alice');
    expect(accepted.stream.requestHeaders.has('x-other-user')).toBe(false); // sanitized by the provider tried first
    // "issuer is not configured" from one provider beats "missing"; a real error beats both.
    const wrongIssuer = await authenticate(
      [['authorization', `Bearer ${await token({ iss: 'https://nobody.example' })}`]],
      { settings: twoProviders },
    );
    expect(wrongIssuer.reply?.body).toBe(JWT_STATUS.unknownIssuer);
    const expired = await authenticate(
      [['authorization', `Bearer ${await token({}, { expiresIn: Math.floor(Date.now() / 1000) - 600 })}`]],
      { settings: twoProviders },
    );
    expect(expired.reply?.body).toBe(JWT_STATUS.expired);
  });

  it('fetches a remote JWKS once and reuses it', async () => {
    const resolver = createJwksResolver({ overrides: { [JWKS_URI]: jwksUrl } });
    const filter = createJwtFilter(settings(), resolver);
    const before = jwksRequests;
    for (let i = 0; i < 3; i++) {
      const stream = testStream({ headers: [['authorization', `Bearer ${await token()}`]] });
      expect(await filter.decodeHeaders!(stream, false)).toEqual({ action: 'continue' });
    }
    expect(jwksRequests - before).toBe(1);
  });

  it('answers "Jwks remote fetch is failed" when the JWKS cannot be fetched or read', async () => {
    const jwt = await token();
    for (const override of [
      'http://127.0.0.1:1/jwks.json',
      jwksUrl.replace('jwks.json', 'missing.json'),
      path.join(os.tmpdir(), 'no-such-dir', 'jwks.json'),
    ]) {
      const { reply } = await authenticate([['authorization', `Bearer ${jwt}`]], { override });
      expect(reply).toMatchObject({ status: 401, body: JWT_STATUS.jwksFetchFailed });
    }
  });
});
