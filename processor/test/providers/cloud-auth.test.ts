import * as crypto from 'node:crypto';
import { AzureEntraTokenSource, azureEntraAuth } from '../../src/auth/azure';
import { bearerFrom, gcpAuth, serviceAccountClient } from '../../src/auth/gcp';

const backend = { name: 'b', schema: { name: 'AzureOpenAI' as const, apiVersion: 'v' }, endpoint: { hostname: 'h', port: 443, tls: true } };

function tokenResponse(token: string, expiresIn = 3600, status = 200): Response {
  return new Response(JSON.stringify(status === 200 ? { access_token: token, expires_in: expiresIn, token_type: 'Bearer' } : { error: 'invalid_client', error_description: 'bad' }), {
    status,
    headers: { 'content-type': 'application/json' },
  });
}

describe('Azure Entra client credentials', () => {
  it('requests a token with the client-credentials form, caches it and refreshes 5 minutes before expiry', async () => {
    let now = 1_000_000;
    const calls: { url: string; form: URLSearchParams }[] = [];
    const fetchImpl = (async (url: string, init: RequestInit) => {
      calls.push({ url, form: new URLSearchParams(String(init.body)) });
      return tokenResponse(`token-${calls.length}`, 3600);
    }) as unknown as typeof fetch;
    const source = new AzureEntraTokenSource({ tenantId: 'tenant-1', clientId: 'client-1', clientSecret: () => 's3cret', fetchImpl, now: () => now, authority: 'https://login.example' });
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
    const source = new AzureEntraTokenSource({ tenantId: 't', clientId: 'c', clientSecret: () => 'do-not-print-me', fetchImpl });
    await expect(source.get()).rejects.toThrow('Azure Entra token request for tenant t, client c failed: HTTP 401 invalid_client');
    await expect(source.get()).rejects.not.toThrow(/do-not-print-me/);
  });

  it('authenticates requests with a bearer token', async () => {
    const original = global.fetch;
    global.fetch = (async () => tokenResponse('entra-token')) as unknown as typeof fetch;
    try {
      const auth = azureEntraAuth(
        { type: 'AzureEntra', tenantId: 't', clientId: 'c', clientSecret: { secretName: 'azure', key: 'secret' } },
        backend,
        { read: () => 'secret-value' } as never,
      );
      const changes = await auth.apply({ method: 'POST', hostname: 'h', path: '/', headers: {}, body: Buffer.alloc(0) });
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
    await expect(bearerFrom({ getAccessToken: async () => Promise.reject(new Error('secret detail')) }, 'x')).rejects.not.toThrow(/secret detail/);
  });

  it('builds a JWT client from a service-account key and rejects bad keys without their content', () => {
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const key = JSON.stringify({ type: 'service_account', client_email: 'sa@p.iam.gserviceaccount.com', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }) });
    const client = serviceAccountClient(key, ref) as unknown as { email: string; scopes: string[] };
    expect(client.email).toBe('sa@p.iam.gserviceaccount.com');
    expect(client.scopes).toEqual(['https://www.googleapis.com/auth/cloud-platform']);
    expect(() => serviceAccountClient('{"private_key":"PRIVATE-KEY-CONTENT"', ref)).toThrow('GCP service-account key gcp/key.json is not valid JSON');
    expect(() => serviceAccountClient('{"private_key":"PRIVATE-KEY-CONTENT"}', ref)).toThrow(/lacks client_email/);
    expect(() => serviceAccountClient('{"private_key":"PRIVATE-KEY-CONTENT"}', ref)).not.toThrow(/PRIVATE-KEY-CONTENT/);
  });

  it('reports an unreadable key Secret per request', async () => {
    const auth = gcpAuth({ type: 'GCP', credentials: { source: 'ServiceAccountKey', secret: ref } }, backend, { read: () => 'not json' } as never);
    expect(() => auth.apply({ method: 'POST', hostname: 'h', path: '/', headers: {}, body: Buffer.alloc(0) })).toThrow(/not valid JSON/);
  });
});
