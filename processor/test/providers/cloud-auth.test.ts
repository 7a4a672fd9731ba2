import * as crypto from 'node:crypto';
import { AzureEntraTokenSource, azureEntraAuth } from '../../src/auth/azure';
import { defaultChainCredentials } from '../../src/auth/aws';
import { bearerFrom, gcpAuth, gcpAuthWith, serviceAccountClient, type AccessTokenClient } from '../../src/auth/gcp';
import { startTokenServer, type TokenServer } from '../support/token-server';

const backend = {
  name: 'b',
  schema: { name: 'AzureOpenAI' as const, apiVersion: 'v' },
  endpoint: { hostname: 'h', port: 443, tls: true },
};

function tokenResponse(token: string, expiresIn = 3600, status = 200): Response {
  return new Response(
    JSON.stringify(
      status === 200
        ? { access_token: token, expires_in: expiresIn, token_type: 'Bearer' }
        : { error: 'invalid_client', error_description: 'bad' },
    ),
    {
      status,
      headers: { 'content-type': 'application/json' },
    },
  );
}

describe('Azure Entra client credentials', () => {
  it('requests a token with the client-credentials form, caches it and refreshes 5 minutes before expiry', async () => {
    let now = 1_000_000;
    const calls: { url: string; form: URLSearchParams }[] = [];
    const fetchImpl = (async (url: string, init: RequestInit) => {
      calls.push({ url, form: new URLSearchParams(String(init.body)) });
      return tokenResponse(`token-${calls.length}`, 3600);
    }) as unknown as typeof fetch;
    const source = new AzureEntraTokenSource({
      tenantId: 'tenant-1',
      clientId: 'client-1',
      clientSecret: () => 's3cret',
      fetchImpl,
      now: () => now,
      authority: 'https://login.example',
    });
    expect(await source.get()).toBe('token-1');
    expect(calls[0].url).toBe('https://login.example/tenant-1/oauth2/v2.0/token');
    expect(Object.fromEntries(calls[0].form)).toEqual({
      grant_type: 'client_credentials',
      client_id: 'client-1',
      client_secret: 's3cret',
      scope: 'https://cognitiveservices.azure.com/.default',
    });
    now += 54 * 60 * 1000;
    expect(await source.get()).toBe('token-1');
    now += 2 * 60 * 1000;
    expect(await source.get()).toBe('token-2');
    expect(calls).toHaveLength(2);
  });

  it('shares one request between concurrent callers and refetches when the secret rotates', async () => {
    let secret = 'first';
    let calls = 0;
    const fetchImpl = (async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 5));
      return tokenResponse(`token-${calls}`);
    }) as unknown as typeof fetch;
    const source = new AzureEntraTokenSource({ tenantId: 't', clientId: 'c', clientSecret: () => secret, fetchImpl });
    expect(await Promise.all([source.get(), source.get(), source.get()])).toEqual(['token-1', 'token-1', 'token-1']);
    secret = 'second';
    expect(await source.get()).toBe('token-2');
  });

  it('reports failures without the client secret', async () => {
    const fetchImpl = (async () => tokenResponse('', 0, 401)) as unknown as typeof fetch;
    const source = new AzureEntraTokenSource({
      tenantId: 't',
      clientId: 'c',
      clientSecret: () => 'do-not-print-me',
      fetchImpl,
    });
    await expect(source.get()).rejects.toThrow(
      'Azure Entra token request for tenant t, client c failed: HTTP 401 invalid_client',
    );
    await expect(source.get()).rejects.not.toThrow(/do-not-print-me/);
  });

  it('authenticates requests with a bearer token', async () => {
    const original = global.fetch;
    global.fetch = async () => tokenResponse('entra-token');
    try {
      const auth = azureEntraAuth(
        { type: 'AzureEntra', tenantId: 't', clientId: 'c', clientSecret: { secretName: 'azure', key: 'secret' } },
        backend,
        { read: () => 'secret-value' } as never,
      );
      const changes = await auth.apply({
        method: 'POST',
        hostname: 'h',
        path: '/',
        headers: {},
        body: Buffer.alloc(0),
      });
      expect(changes).toEqual({ setHeaders: { authorization: 'Bearer entra-token' }, removeHeaders: ['api-key'] });
    } finally {
      global.fetch = original;
    }
  });
});

describe('GCP access tokens', () => {
  const ref = { secretName: 'gcp', key: 'key.json' };

  it('turns a client token into a bearer header', async () => {
    await expect(bearerFrom({ getAccessToken: async () => ({ token: 'ya29.token' }) }, 'x')).resolves.toEqual({
      setHeaders: { authorization: 'Bearer ya29.token' },
      removeHeaders: [],
    });
    await expect(bearerFrom({ getAccessToken: async () => ({ token: null }) }, 'x')).rejects.toThrow(/empty token/);
    await expect(
      bearerFrom({ getAccessToken: async () => Promise.reject(new Error('secret detail')) }, 'x'),
    ).rejects.not.toThrow(/secret detail/);
  });

  it('builds a JWT client from a service-account key and rejects bad keys without their content', () => {
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const key = JSON.stringify({
      type: 'service_account',
      client_email: 'sa@p.iam.gserviceaccount.com',
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    });
    const client = serviceAccountClient(key, ref) as unknown as { email: string; scopes: string[] };
    expect(client.email).toBe('sa@p.iam.gserviceaccount.com');
    expect(client.scopes).toEqual(['https://www.googleapis.com/auth/cloud-platform']);
    expect(() => serviceAccountClient('{"private_key":"PRIVATE-KEY-CONTENT"', ref)).toThrow(
      'GCP service-account key gcp/key.json is not valid JSON',
    );
    expect(() => serviceAccountClient('{"private_key":"PRIVATE-KEY-CONTENT"}', ref)).toThrow(/lacks client_email/);
    expect(() => serviceAccountClient('{"private_key":"PRIVATE-KEY-CONTENT"}', ref)).not.toThrow(/PRIVATE-KEY-CONTENT/);
  });

  it('reports an unreadable key Secret per request', async () => {
    const auth = gcpAuth({ type: 'GCP', credentials: { source: 'ServiceAccountKey', secret: ref } }, backend, {
      read: () => 'not json',
    } as never);
    expect(() => auth.apply({ method: 'POST', hostname: 'h', path: '/', headers: {}, body: Buffer.alloc(0) })).toThrow(
      /not valid JSON/,
    );
  });
});

/** Credential fetches are bounded: a hung source fails within its timeout, and a later fetch starts afresh. */
describe('credential timeouts', () => {
  const TIMEOUT_MS = 200;
  /** Generous for 2 shared cores, far below "never". */
  const MARGIN_MS = 700;
  const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

  async function elapsed(work: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
    const start = performance.now();
    const error = await work.then(
      () => undefined,
      (e: unknown) => e,
    );
    return { ms: performance.now() - start, error };
  }

  describe('Azure Entra against a token endpoint that never answers', () => {
    let server: TokenServer;
    beforeAll(async () => {
      server = await startTokenServer('silent');
    });
    afterAll(() => server.close());

    it('ends the fetch and every request waiting on it at the timeout, then retries with a new request', async () => {
      server.mode = 'silent';
      const source = new AzureEntraTokenSource({
        tenantId: 't',
        clientId: 'c',
        clientSecret: () => 'do-not-print-me',
        authority: server.url,
        timeoutMs: TIMEOUT_MS,
      });
      const results = await Promise.all([elapsed(source.get()), elapsed(source.get()), elapsed(source.get())]);
      expect(server.requests).toBe(1); // one shared request
      for (const { ms, error } of results) {
        expect(ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
        expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
        expect(String(error)).toMatch(/did not answer within 200 ms/);
        expect(String(error)).not.toMatch(/do-not-print-me/);
      }
      // Not poisoned: the next caller starts a new request, and a healthy endpoint recovers.
      server.mode = 'ok';
      expect(await source.get()).toBe('token-2');
      expect(server.requests).toBe(2);
    }, 5000);
  });

  describe('GCP', () => {
    it('a token wait on a client whose refresh never settles fails within the timeout', async () => {
      const { ms, error } = await elapsed(bearerFrom({ getAccessToken: never }, 'x', TIMEOUT_MS));
      expect(ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
      expect(String(error)).toMatch(/could not obtain a GCP access token \(x\): CredentialTimeoutError/);
    }, 5000);

    it('drops a client whose refresh timed out, so the next request does not join the stuck refresh', async () => {
      const ref = { secretName: 'gcp', key: 'key.json' };
      const keyJson = '{"client_email":"sa@p.iam.gserviceaccount.com"}'; // the injected client never reads it
      let healthy = false;
      const clients: AccessTokenClient[] = [];
      const factory = gcpAuthWith({
        timeoutMs: TIMEOUT_MS,
        serviceAccountClient: () => {
          // Like google-auth-library: one client shares its in-flight refresh with every caller.
          let refresh: Promise<{ token: string }> | undefined;
          const client: AccessTokenClient = {
            getAccessToken: () =>
              (refresh ??= healthy ? Promise.resolve({ token: `ya29.${clients.length}` }) : never()),
          };
          clients.push(client);
          return client;
        },
      });
      const auth = factory({ type: 'GCP', credentials: { source: 'ServiceAccountKey', secret: ref } }, backend, {
        read: () => keyJson,
      } as never);
      const request = { method: 'POST', hostname: 'h', path: '/', headers: {}, body: Buffer.alloc(0) };
      const results = await Promise.all([
        elapsed(Promise.resolve(auth.apply(request))),
        elapsed(Promise.resolve(auth.apply(request))),
      ]);
      for (const { ms, error } of results) {
        expect(ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
        expect(error).toBeInstanceOf(Error);
      }
      expect(clients).toHaveLength(1);
      healthy = true;
      await expect(Promise.resolve(auth.apply(request))).resolves.toEqual({
        setHeaders: { authorization: 'Bearer ya29.2' },
        removeHeaders: [],
      });
      expect(clients).toHaveLength(2);
    }, 5000);
  });

  describe('AWS default chain', () => {
    it('a chain that never answers fails within the timeout; the next load uses a fresh chain', async () => {
      let chains = 0;
      const renew = () => {
        chains++;
        return async () => ({ accessKeyId: `ASIA${chains}`, secretAccessKey: 's' });
      };
      const source = defaultChainCredentials(never, Date.now, TIMEOUT_MS, renew);
      const { ms, error } = await elapsed(source.load());
      expect(ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
      expect(String(error)).toMatch(/AWS default credential chain found no credentials \(CredentialTimeoutError\)/);
      expect(await source.load()).toEqual({ accessKeyId: 'ASIA1', secretAccessKey: 's' });
    }, 5000);
  });
});
