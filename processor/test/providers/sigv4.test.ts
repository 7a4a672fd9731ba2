import {
  AwsSigV4Authenticator,
  credentialsFromHeaders,
  parseSharedCredentials,
  PER_REQUEST_CREDENTIAL_HEADER_NAMES,
  secretCredentials,
  defaultChainCredentials,
  awsSigV4Auth,
} from '../../src/auth/aws';
import { SignatureV4 } from '@smithy/signature-v4';
import * as crypto from 'node:crypto';
import { AwsCredentials, canonicalUri, hmacHex, NodeSha256, padsOf, signAwsRequest } from '../../src/auth/sigv4';
import { referenceSignature } from './sigv4-reference';

const SUITE_CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const FIXTURE_BACKEND = {
  name: 'aws',
  schema: { name: 'AWSBedrock' as const },
  endpoint: { hostname: 'bedrock-runtime.eu-west-1.amazonaws.com', port: 443, tls: true },
};
const SUITE_DATE = new Date('2015-08-30T12:36:00Z');

describe('signAwsRequest: AWS SigV4 test suite vectors', () => {
  it('get-vanilla', async () => {
    const signed = await signAwsRequest(
      { method: 'GET', hostname: 'example.amazonaws.com', path: '/', body: '' },
      SUITE_CREDENTIALS,
      'us-east-1',
      'service',
      SUITE_DATE,
    );
    expect(signed['x-amz-date']).toBe('20150830T123600Z');
    expect(signed.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, ' +
        'SignedHeaders=host;x-amz-date, ' +
        'Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    );
  });

  it('post-vanilla', async () => {
    const signed = await signAwsRequest(
      { method: 'POST', hostname: 'example.amazonaws.com', path: '/', body: '' },
      SUITE_CREDENTIALS,
      'us-east-1',
      'service',
      SUITE_DATE,
    );
    expect(signed.authorization).toMatch(/Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b$/);
  });
});

describe('signAwsRequest against an independent implementation', () => {
  const cases: [string, string, string, AwsCredentials][] = [
    ['/model/anthropic.claude-3-sonnet-20240229-v1:0/converse', '{"messages":[]}', 'us-east-1', SUITE_CREDENTIALS],
    [
      '/model/something/converse-stream',
      '{"x":"ünïcødé 👋"}',
      'eu-west-3',
      { ...SUITE_CREDENTIALS, sessionToken: 'FQoGZXIvYXdz//token+/=' },
    ],
    ['/model/m/invoke?b=2&a=1&a=0&sp=x%20y', '', 'ap-south-1', SUITE_CREDENTIALS],
  ];
  it.each(cases)('%s', async (p, body, region, credentials) => {
    const date = new Date('2026-11-22T02:40:07Z');
    const signed = await signAwsRequest(
      { method: 'POST', hostname: `bedrock-runtime.${region}.amazonaws.com`, path: p, body: Buffer.from(body) },
      credentials,
      region,
      'bedrock',
      date,
    );
    const reference = referenceSignature(
      'POST',
      `bedrock-runtime.${region}.amazonaws.com`,
      p,
      body,
      credentials,
      region,
      'bedrock',
      date,
    );
    expect(signed.authorization).toBe(reference.authorization);
    expect(signed['x-amz-date']).toBe(reference.amzDate);
    expect(signed['x-amz-security-token']).toBe(credentials.sessionToken);
  });

  it('rejects incomplete credentials without echoing them', async () => {
    await expect(
      signAwsRequest(
        { method: 'POST', hostname: 'h', path: '/', body: '' },
        { accessKeyId: 'AKIAVISIBLE', secretAccessKey: '' },
        'us-east-1',
        'bedrock',
      ),
    ).rejects.toThrow(/incomplete/);
    await expect(
      signAwsRequest(
        { method: 'POST', hostname: 'h', path: '/', body: '' },
        { accessKeyId: 'AKIAVISIBLE', secretAccessKey: '' },
        'us-east-1',
        'bedrock',
      ),
    ).rejects.not.toThrow(/AKIAVISIBLE/);
  });
});

describe('signAwsRequest against the full @smithy/signature-v4 signer', () => {
  const paths = [
    '/model/anthropic.claude-3-sonnet-20240229-v1:0/converse',
    '/model/arn:aws:bedrock:us-east-1:1:inference-profile%2Fus.anthropic.claude/converse-stream',
    '/model/a b+c/invoke',
    "/model/x!'()*~/invoke",
    '/a/./b/../c//d/',
    '/ünï/çødé',
    '/',
    '/model/m/invoke?z=1&a=2&a=1&b=x%20y&c=%2F&empty=',
  ];
  const credentialSets: AwsCredentials[] = [
    SUITE_CREDENTIALS,
    { accessKeyId: 'ASIATEMP', secretAccessKey: 'temp/secret+key', sessionToken: 'tok/en+==' },
  ];
  const cases = paths.flatMap((p, i) =>
    credentialSets.map((c, j) => [p, c, ['us-east-1', 'eu-central-1'][(i + j) % 2]] as const),
  );

  it.each(cases)('%s', async (p, credentials, region) => {
    const date = new Date(Date.UTC(2026, 10, 22, 3, 7, 11 + p.length));
    const body = Buffer.from(JSON.stringify({ path: p, pad: 'x'.repeat(p.length * 13) }));
    const hostname = `bedrock-runtime.${region}.amazonaws.com`;
    const ours = await signAwsRequest(
      { method: 'POST', hostname, path: p, body },
      credentials,
      region,
      'bedrock',
      date,
    );
    const q = p.indexOf('?');
    const query: Record<string, string | string[]> = {};
    if (q !== -1) {
      for (const [k, v] of new URLSearchParams(p.slice(q + 1))) {
        const existing = query[k];
        query[k] = existing === undefined ? v : Array.isArray(existing) ? [...existing, v] : [existing, v];
      }
    }
    const smithy = await new SignatureV4({
      service: 'bedrock',
      region,
      sha256: NodeSha256,
      credentials,
      applyChecksum: false,
    }).sign(
      {
        method: 'POST',
        protocol: 'https:',
        hostname,
        path: q === -1 ? p : p.slice(0, q),
        query,
        headers: { host: hostname },
        body,
      },
      { signingDate: date },
    );
    expect(ours.authorization).toBe(smithy.headers.authorization);
    expect(ours['x-amz-date']).toBe(smithy.headers['x-amz-date']);
    expect(ours['x-amz-security-token']).toBe(smithy.headers['x-amz-security-token']);
  });

  it('computes HMAC-SHA256 from the key pads exactly like node:crypto', () => {
    for (let i = 0; i < 50; i++) {
      const key = crypto.randomBytes(32);
      const message = `AWS4-HMAC-SHA256\n${crypto.randomBytes(i * 7).toString('base64')}\nünïcødé`;
      expect(hmacHex(padsOf(key), message)).toBe(crypto.createHmac('sha256', key).update(message).digest('hex'));
    }
  });

  it('normalizes and escapes the canonical URI', () => {
    expect(canonicalUri('/a/./b/../c//d/')).toBe('/a/c/d/');
    expect(canonicalUri('/model/a:0/x%2Fy')).toBe('/model/a%3A0/x%252Fy');
  });
});

describe('AWS credentials', () => {
  const ini =
    '# comment\n[other]\naws_access_key_id = ' +
    'AKIAOTHER\naws_secret_access_key=other-secret\n\n[profile ' +
    'prod]\naws_access_key_id=AKIAPROD\naws_secret_access_key = prod-secret ' +
    '\naws_session_token=prod-token\n';

  it('parses the requested profile', () => {
    expect(parseSharedCredentials(ini, 'other')).toEqual({ accessKeyId: 'AKIAOTHER', secretAccessKey: 'other-secret' });
    expect(parseSharedCredentials(ini, 'prod')).toEqual({
      accessKeyId: 'AKIAPROD',
      secretAccessKey: 'prod-secret',
      sessionToken: 'prod-token',
    });
  });

  it('names a missing profile or key but never the secret', () => {
    expect(() => parseSharedCredentials(ini, 'default')).toThrow('AWS credentials file has no profile "default"');
    let message = '';
    try {
      parseSharedCredentials('[default]\naws_secret_access_key=super-secret-value\n', 'default');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/lacks aws_access_key_id/);
    expect(message).not.toContain('super-secret-value');
  });

  it('reads per-request credentials only when key id and secret are both there', () => {
    expect(credentialsFromHeaders({ 'x-aigw-aws-access-key-id': 'A' })).toBeUndefined();
    expect(credentialsFromHeaders({ 'x-aigw-aws-access-key-id': 'A', 'x-aigw-aws-secret-access-key': 'S' })).toEqual({
      accessKeyId: 'A',
      secretAccessKey: 'S',
    });
  });

  it('re-parses a rotated credentials Secret, and never leaks its content on errors', async () => {
    let content = '[default]\naws_access_key_id=AKIA1\naws_secret_access_key=s1\n';
    const source = secretCredentials(() => content, 'default');
    expect(source.current()?.accessKeyId).toBe('AKIA1');
    content = '[default]\naws_access_key_id=AKIA2\naws_secret_access_key=s2\n';
    expect((await source.load()).accessKeyId).toBe('AKIA2');
    content = '[default]\naws_secret_access_key=leaky-secret\n';
    await expect(source.load()).rejects.toThrow(/lacks aws_access_key_id/);
    await expect(source.load()).rejects.not.toThrow(/leaky-secret/);
  });

  it('reuses default-chain credentials until five minutes before they expire', async () => {
    let now = 0;
    let calls = 0;
    const source = defaultChainCredentials(
      async () => {
        calls++;
        return {
          accessKeyId: `ASIA${calls}`,
          secretAccessKey: 's',
          sessionToken: 't',
          expiration: new Date(60 * 60 * 1000),
        };
      },
      () => now,
    );
    expect(source.current()).toBeUndefined();
    expect(await source.load()).toEqual({ accessKeyId: 'ASIA1', secretAccessKey: 's', sessionToken: 't' });
    now = 54 * 60 * 1000;
    expect(source.current()?.accessKeyId).toBe('ASIA1');
    now = 56 * 60 * 1000;
    expect(source.current()).toBeUndefined();
    expect((await source.load()).accessKeyId).toBe('ASIA2');
  });

  it('names a failing default chain without its error detail', async () => {
    const source = defaultChainCredentials(async () => {
      throw Object.assign(new Error('secret-bearing detail'), { name: 'CredentialsProviderError' });
    });
    await expect(source.load()).rejects.toThrow(
      'AWS default credential chain found no credentials (CredentialsProviderError)',
    );
  });
});

describe('AwsSigV4Authenticator', () => {
  const date = new Date('2026-11-22T02:40:07Z');
  const configuredCredentials = { accessKeyId: 'AKIASTATICFALLBACK', secretAccessKey: 'static-fallback-secret' };
  const configured = { current: () => undefined, load: async () => configuredCredentials };
  const perRequestHeaders = {
    'x-aigw-aws-access-key-id': 'ASIAPERREQUEST',
    'x-aigw-aws-secret-access-key': 'per-request-secret',
    'x-aigw-aws-session-token': 'per-request-session-token',
  };
  const make = (perRequestCredentials: boolean) =>
    new AwsSigV4Authenticator(
      { type: 'AWSSigV4', region: 'us-east-1', credentials: { source: 'DefaultChain' }, perRequestCredentials },
      configured,
      () => date,
    );
  const request = (headers: Record<string, string>) => ({
    method: 'POST',
    hostname: 'bedrock-runtime.us-east-1.amazonaws.com',
    headers,
    path: '/model/something/converse',
    body: Buffer.from('{}'),
  });

  it('signs with per-request credentials and strips them', async () => {
    const result = await make(true).apply(request(perRequestHeaders));
    expect(result.setHeaders.authorization).toContain(
      'Credential=ASIAPERREQUEST/20261122/us-east-1/bedrock/aws4_request',
    );
    expect(result.setHeaders.authorization).toContain('SignedHeaders=host;x-amz-date;x-amz-security-token');
    expect(result.setHeaders['x-amz-security-token']).toBe('per-request-session-token');
    expect(result.removeHeaders).toEqual(expect.arrayContaining([...PER_REQUEST_CREDENTIAL_HEADER_NAMES]));
    const expected = referenceSignature(
      'POST',
      'bedrock-runtime.us-east-1.amazonaws.com',
      '/model/something/converse',
      '{}',
      {
        accessKeyId: 'ASIAPERREQUEST',
        secretAccessKey: 'per-request-secret',
        sessionToken: 'per-request-session-token',
      },
      'us-east-1',
      'bedrock',
      date,
    );
    expect(result.setHeaders.authorization).toBe(expected.authorization);
  });

  it('falls back to the configured credentials and still strips the headers', async () => {
    const result = await make(true).apply(request({}));
    expect(result.setHeaders.authorization).toContain('Credential=AKIASTATICFALLBACK/');
    expect(result.setHeaders['x-amz-security-token']).toBeUndefined();
    expect(result.removeHeaders).toEqual(
      expect.arrayContaining(['x-amz-security-token', ...PER_REQUEST_CREDENTIAL_HEADER_NAMES]),
    );
  });

  it('builds from the config with credentials from the Secret', async () => {
    const secrets = { read: () => '[prod]\naws_access_key_id=AKIASECRETFILE\naws_secret_access_key=file-secret\n' };
    const auth = awsSigV4Auth(
      {
        type: 'AWSSigV4',
        region: 'eu-west-1',
        credentials: { source: 'Secret', secret: { secretName: 'aws', key: 'credentials' }, profile: 'prod' },
        perRequestCredentials: false,
      },
      FIXTURE_BACKEND,
      secrets as never,
    );
    const result = await auth.apply(request({}));
    expect(result.setHeaders.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIASECRETFILE\/\d{8}\/eu-west-1\/bedrock\/aws4_request, SignedHeaders=host;x-amz-date, Signature=[0-9a-f]{64}$/,
    );
  });

  it("answers synchronously once credentials and the day's key are at hand, with the same signature", async () => {
    const auth = new AwsSigV4Authenticator(
      { type: 'AWSSigV4', region: 'ap-south-2', credentials: { source: 'DefaultChain' }, perRequestCredentials: false },
      { current: () => configuredCredentials, load: async () => configuredCredentials },
      () => date,
    );
    const first = auth.apply(request({}));
    expect(first).toBeInstanceOf(Promise);
    const firstResult = await first;
    const second = auth.apply(request({}));
    expect(second).not.toBeInstanceOf(Promise);
    expect(second).toEqual(firstResult);
  });

  it('ignores per-request headers when not enabled, but strips them', async () => {
    const result = await make(false).apply(request(perRequestHeaders));
    expect(result.setHeaders.authorization).toContain('Credential=AKIASTATICFALLBACK/');
    expect(result.removeHeaders).toEqual(expect.arrayContaining([...PER_REQUEST_CREDENTIAL_HEADER_NAMES]));
  });
});
