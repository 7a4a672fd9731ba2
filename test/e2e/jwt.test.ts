/**
 * JWT identity at the gateway (SecurityPolicy through the local data plane, JWKS served locally): requests
 * without a valid token are refused before the processor, the `tenant` claim becomes `x-tenant-id` (a client
 * cannot pre-set it), the per-tenant budget counts per claim, and the token never reaches the provider.
 */
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { HELLO, leakedClientCredentials } from './support/clients';
import { redisUrlForTests } from '../support/redis';
import { clusterMode, startScenario, type RunningScenario } from './support/harness';
import { startRecordingServer, type RecordingServer } from './support/recording-server';
import { DEFAULT_USAGE } from './support/fake-providers';
import { FAKE_CREDENTIALS, JWT_SETTINGS, jwtScenario } from './support/scenarios';

jest.setTimeout(60_000);

const describeLocal = clusterMode() ? describe.skip : describe;
const COST = DEFAULT_USAGE.input + DEFAULT_USAGE.output;
const TENANT_TOKENS = 40;

async function signToken(
  key: CryptoKey,
  kid: string,
  claims: Record<string, unknown>,
  options: { issuer?: string; audience?: string; expiresIn?: string } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid })
    .setIssuer(options.issuer ?? JWT_SETTINGS.issuer)
    .setAudience(options.audience ?? JWT_SETTINGS.audience)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '10m')
    .sign(key);
}

describeLocal('JWT identity', () => {
  let run: RunningScenario;
  let jwks: RecordingServer;
  let signingKey: CryptoKey;
  let strangerKey: CryptoKey;

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    signingKey = pair.privateKey;
    strangerKey = (await generateKeyPair('RS256')).privateKey;
    const publicJwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'e2e-key', alg: 'RS256', use: 'sig' };
    jwks = await startRecordingServer((request, res) => {
      if (request.path !== '/jwks.json') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [publicJwk] }));
    });
    const namespace = `e2e-jwt-${randomBytes(4).toString('hex')}`;
    run = await startScenario(jwtScenario(namespace, TENANT_TOKENS), {
      redisUrl: redisUrlForTests(),
      dataPlane: { jwksOverrides: { [JWT_SETTINGS.jwksUri]: `${jwks.url}/jwks.json` } },
    });
  });
  afterAll(async () => {
    await run?.close();
    await jwks?.close();
  });

  const chat = (token: string | undefined, headers: Record<string, string> = {}) =>
    fetch(`${run.gatewayUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: HELLO }),
    });

  it(
    'no token, a token of another key or issuer: 401; another audience: 403 (Envoy jwt_authn); ' +
      'the provider is not called',
    async () => {
      await run.fakes.openai.clear();
      // Envoy's jwt_authn answers before the processor; the route's responseOverride reshapes its plain-text 401.
      const missing = await chat(undefined);
      expect(missing.status).toBe(401);
      expect(missing.headers.get('content-type')).toBe('application/json');
      expect(await missing.json()).toEqual({
        type: 'error',
        error: {
          type: 'authentication_error',
          message: 'missing or invalid token',
          param: null,
          code: 'invalid_token',
        },
      });
      expect((await chat(await signToken(strangerKey, 'e2e-key', { tenant: 'acme' }))).status).toBe(401);
      expect(
        (await chat(await signToken(signingKey, 'e2e-key', { tenant: 'acme' }, { issuer: 'https://evil.example' })))
          .status,
      ).toBe(401);
      const audience = await chat(
        await signToken(signingKey, 'e2e-key', { tenant: 'acme' }, { audience: 'someone-else' }),
      );
      expect(audience.status).toBe(403);
      expect(await audience.json()).toEqual({
        type: 'error',
        error: {
          type: 'permission_error',
          message: "the token's audience is not accepted here",
          param: null,
          code: 'token_audience_not_allowed',
        },
      });
      expect(await run.fakes.openai.records()).toEqual([]);
    },
  );

  it(
    'a valid token reaches the provider with the provider key only; the claim header replaces ' +
      'what the client sent',
    async () => {
      await run.fakes.openai.clear();
      const token = await signToken(signingKey, 'e2e-key', { tenant: 'claims-check' });
      const answer = await chat(token, { 'x-tenant-id': 'spoofed' });
      expect(answer.status).toBe(200);
      const [received] = await run.fakes.openai.records();
      expect(received.headers.authorization).toBe(`Bearer ${FAKE_CREDENTIALS.openaiKey}`);
      expect(JSON.stringify(received.headers)).not.toContain(token);
      expect(leakedClientCredentials(received)).toEqual([]);
      expect(received.headers['x-tenant-id']).toBe('claims-check');
    },
  );

  it(
    'the budget counts per tenant claim: one tenant exhausted (even sending another tenant ' +
      'header) while another passes',
    async () => {
      const acme = await signToken(signingKey, 'e2e-key', { tenant: 'acme' });
      let admitted = 0;
      for (; admitted < 20; admitted++) {
        const answer = await chat(acme, { 'x-tenant-id': 'globex' });
        if (answer.status === 429) break;
        expect(answer.status).toBe(200);
      }
      expect(admitted * COST).toBeGreaterThanOrEqual(TENANT_TOKENS);
      expect(admitted * COST).toBeLessThanOrEqual(TENANT_TOKENS + COST);
      const globex = await signToken(signingKey, 'e2e-key', { tenant: 'globex' });
      expect((await chat(globex)).status).toBe(200);
      expect((await chat(acme)).status).toBe(429);
    },
  );
});
