/**
 * Issue 11, credential hygiene: an empty (or whitespace-only) Secret file never becomes an empty credential
 * upstream (`Bearer `, an empty `x-api-key` / `api-key`, empty AWS keys, an empty GCP service-account key or Azure
 * client secret). The authenticator throws a SecretUnavailableError naming `secretName/key`, so the request fails
 * 503 backend_auth_error through the credential-failure path.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createAuthenticator, type AuthFactories, type AuthRequest, type BackendAuthenticator } from '../../src/auth';
import { azureEntraAuthWith } from '../../src/auth/azure';
import { gcpAuthWith } from '../../src/auth/gcp';
import { SecretReader, SecretUnavailableError } from '../../src/auth/secrets';
import type { BackendAuth, BackendConfig } from '@ai-gateway-constructs/processor-config';
import { openAIBackend, route, startTestProcessor, testConfig } from '../support/processor-harness';

const request: AuthRequest = {
  method: 'POST',
  hostname: 'h',
  path: '/v1/chat/completions',
  headers: {},
  body: Buffer.alloc(0),
};

/** Whatever `apply` returns or throws, settled. */
async function outcome(auth: BackendAuthenticator): Promise<{ changes?: unknown; error?: Error }> {
  try {
    return { changes: await auth.apply(request) };
  } catch (error) {
    return { error: error as Error };
  }
}

/** Every header value a set of changes would send, for "nothing empty goes upstream". */
function sentValues(changes: unknown): string[] {
  const set = (changes as { setHeaders?: Record<string, string> } | undefined)?.setHeaders ?? {};
  return Object.values(set);
}

describe('empty credential files', () => {
  let dir: string;
  const blanks: Record<string, string> = { empty: '', newline: '\n', crlf: '\r\n', spaces: '   \n', tabs: '\t \t' };

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-empty-secrets-'));
    fs.mkdirSync(path.join(dir, 'blank'));
    for (const [key, content] of Object.entries(blanks)) fs.writeFileSync(path.join(dir, 'blank', key), content);
    fs.mkdirSync(path.join(dir, 'good'));
    fs.writeFileSync(path.join(dir, 'good', 'key'), 'sk-good\n');
    fs.writeFileSync(path.join(dir, 'good', 'multiline'), 'sk-part-one\nsk-part-two\n');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('the reader refuses an empty or whitespace-only file, naming secretName/key', () => {
    const reader = new SecretReader(dir);
    for (const key of Object.keys(blanks)) {
      expect(() => reader.read({ secretName: 'blank', key })).toThrow(SecretUnavailableError);
      expect(() => reader.read({ secretName: 'blank', key })).toThrow(`credential blank/${key} is empty`);
    }
    expect(reader.read({ secretName: 'good', key: 'key' })).toBe('sk-good');
  });

  const schemas: Array<[string, BackendConfig['schema'], string]> = [
    ['OpenAI', { name: 'OpenAI', pathPrefix: '/v1' }, 'authorization'],
    ['Anthropic', { name: 'Anthropic', version: '2023-06-01' }, 'x-api-key'],
    ['AzureOpenAI', { name: 'AzureOpenAI', apiVersion: '2025-01-01-preview' }, 'api-key'],
  ];

  it.each(schemas)('APIKey on %s: no empty %s header, a clear error instead', async (_name, schema, header) => {
    for (const key of Object.keys(blanks)) {
      const auth = createAuthenticator(
        openAIBackend('b', { schema, auth: { type: 'APIKey', secret: { secretName: 'blank', key } } }),
        new SecretReader(dir),
      )!;
      const { changes, error } = await outcome(auth);
      expect(changes).toBeUndefined();
      expect(error).toBeInstanceOf(SecretUnavailableError);
      expect(error?.message).toBe(`credential blank/${key} is empty`);
      expect(() => auth.fixed!()).toThrow(`credential blank/${key} is empty`);
      expect(() => auth.check!()).toThrow(`credential blank/${key} is empty`);
    }
    const good = createAuthenticator(
      openAIBackend('b', { schema, auth: { type: 'APIKey', secret: { secretName: 'good', key: 'key' } } }),
      new SecretReader(dir),
    )!;
    expect(Object.keys((await good.apply(request)).setHeaders)).toEqual([header]);
  });

  it('BearerToken: never `Bearer ` with nothing after it', async () => {
    for (const key of Object.keys(blanks)) {
      const auth = createAuthenticator(
        openAIBackend('b', { auth: { type: 'BearerToken', secret: { secretName: 'blank', key } } }),
        new SecretReader(dir),
      )!;
      const { changes, error } = await outcome(auth);
      expect(sentValues(changes)).not.toContain('Bearer ');
      expect(error?.message).toBe(`credential blank/${key} is empty`);
    }
  });

  it('a key with a line break inside is refused, not sent as a broken header', async () => {
    const auth = createAuthenticator(
      openAIBackend('b', { auth: { type: 'APIKey', secret: { secretName: 'good', key: 'multiline' } } }),
      new SecretReader(dir),
    )!;
    const { error } = await outcome(auth);
    expect(error).toBeInstanceOf(SecretUnavailableError);
    expect(error?.message).toBe(
      'credential good/multiline contains a line break or control character, which a header cannot carry',
    );
    expect(error?.message).not.toContain('sk-part');
  });

  describe('cloud credentials', () => {
    const cloud = (auth: BackendAuth, factories?: AuthFactories): BackendAuthenticator =>
      createAuthenticator(openAIBackend('b', { auth }), new SecretReader(dir), factories)!;

    it('AWSSigV4 from a Secret: an empty credentials file or empty keys are refused before signing', async () => {
      fs.mkdirSync(path.join(dir, 'aws'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'aws', 'empty'), '\n');
      fs.writeFileSync(
        path.join(dir, 'aws', 'blank-keys'),
        '[default]\naws_access_key_id =  \naws_secret_access_key = \n',
      );
      const empty = cloud({
        type: 'AWSSigV4',
        region: 'us-east-1',
        perRequestCredentials: false,
        credentials: { source: 'Secret', secret: { secretName: 'aws', key: 'empty' }, profile: 'default' },
      });
      expect((await outcome(empty)).error?.message).toBe('credential aws/empty is empty');
      expect(() => empty.check!()).toThrow('credential aws/empty is empty');
      const blankKeys = cloud({
        type: 'AWSSigV4',
        region: 'us-east-1',
        perRequestCredentials: false,
        credentials: { source: 'Secret', secret: { secretName: 'aws', key: 'blank-keys' }, profile: 'default' },
      });
      const { changes, error } = await outcome(blankKeys);
      expect(changes).toBeUndefined();
      expect(error?.message).toBe(
        'credential aws/blank-keys: AWS credentials profile "default" lacks aws_access_key_id or aws_secret_access_key',
      );
      expect(() => blankKeys.check!()).toThrow(/aws\/blank-keys/);
    });

    it(
      'GCP service account: an empty key file, or a key with an empty private_key, never asks for ' + 'a token',
      async () => {
        fs.mkdirSync(path.join(dir, 'gcp'), { recursive: true });
        fs.writeFileSync(path.join(dir, 'gcp', 'empty'), '');
        fs.writeFileSync(
          path.join(dir, 'gcp', 'no-key'),
          JSON.stringify({ client_email: 'sa@p.iam.gserviceaccount.com', private_key: '' }),
        );
        let clients = 0;
        const factories: AuthFactories = {
          GCP: gcpAuthWith({
            serviceAccountClient: () => {
              clients++;
              return { getAccessToken: async () => ({ token: 'ya29.token' }) };
            },
          }),
        };
        const empty = cloud(
          { type: 'GCP', credentials: { source: 'ServiceAccountKey', secret: { secretName: 'gcp', key: 'empty' } } },
          factories,
        );
        expect((await outcome(empty)).error?.message).toBe('credential gcp/empty is empty');
        expect(() => empty.check!()).toThrow('credential gcp/empty is empty');
        const noKey = cloud(
          { type: 'GCP', credentials: { source: 'ServiceAccountKey', secret: { secretName: 'gcp', key: 'no-key' } } },
          factories,
        );
        expect(() => noKey.check!()).toThrow('GCP service-account key gcp/no-key lacks client_email or private_key');
        expect(clients).toBe(0);
      },
    );

    it(
      'Azure Entra: an empty client secret is never sent to the token endpoint; an empty token is ' +
        'never sent upstream',
      async () => {
        let tokenRequests = 0;
        let token = 'entra-token';
        const fetchImpl = (async () => {
          tokenRequests++;
          return new Response(JSON.stringify({ access_token: token, expires_in: 3600 }), {
            status: 200,
            headers: { 'content-type': 'application/json' },
          });
        }) as unknown as typeof fetch;
        const factories: AuthFactories = { AzureEntra: azureEntraAuthWith({ fetchImpl }) };
        const empty = cloud(
          { type: 'AzureEntra', tenantId: 't', clientId: 'c', clientSecret: { secretName: 'blank', key: 'spaces' } },
          factories,
        );
        expect((await outcome(empty)).error?.message).toBe('credential blank/spaces is empty');
        expect(() => empty.check!()).toThrow('credential blank/spaces is empty');
        expect(tokenRequests).toBe(0);

        token = '';
        const emptyToken = cloud(
          { type: 'AzureEntra', tenantId: 't', clientId: 'c', clientSecret: { secretName: 'good', key: 'key' } },
          factories,
        );
        const { changes, error } = await outcome(emptyToken);
        expect(sentValues(changes)).not.toContain('Bearer ');
        expect(error?.message).toBe(
          'Azure Entra token request for tenant t, client c failed: HTTP 200 no token in response',
        );
        expect(tokenRequests).toBe(1);
      },
    );
  });

  it('through the processor: 503 backend_auth_error, and the provider is never called with `Bearer `', async () => {
    const processor = await startTestProcessor(
      testConfig({
        backends: [
          openAIBackend('openai', { auth: { type: 'APIKey', secret: { secretName: 'openai', key: 'apiKey' } } }),
        ],
        routes: [route(['gpt-4o'], [{ backend: 'openai', weight: 1, priority: 0 }])],
      }),
      { secrets: { openai: { apiKey: '\n' } } },
    );
    try {
      let upstreamAuthorization: string | undefined;
      let upstreamCalls = 0;
      const result = await processor.client.exchange(
        { path: '/v1/chat/completions', body: '{"model":"gpt-4o","messages":[]}' },
        (upstream) => {
          upstreamCalls++;
          upstreamAuthorization = upstream.headers.authorization;
          return { status: 200, headers: { 'content-type': 'application/json' }, body: '{}' };
        },
      );
      expect(upstreamCalls).toBe(0);
      expect(upstreamAuthorization).toBeUndefined();
      expect(result.status).toBe(503);
      expect(JSON.parse(result.body.toString())).toMatchObject({
        error: { code: 'backend_auth_error', message: 'the gateway could not authenticate to backend "openai"' },
      });
    } finally {
      await processor.close();
    }
  });
});
