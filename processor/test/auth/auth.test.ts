import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createAuthenticator, UnsupportedAuthError } from '../../src/auth';
import { SecretReader, SecretUnavailableError } from '../../src/auth/secrets';
import { compileRuntime } from '../../src/config/runtime';
import { ProcessorConfigError, type BackendConfig } from '@ai-gateway-constructs/processor-config';
import { openAIBackend, testConfig } from '../support/processor-harness';

const request = { method: 'POST', hostname: 'h', path: '/v1/chat/completions', headers: {}, body: Buffer.alloc(0) };

describe('auth', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-secrets-'));
    fs.mkdirSync(path.join(dir, 'keys'));
    fs.writeFileSync(path.join(dir, 'keys', 'api'), 'sk-123\n');
    fs.writeFileSync(path.join(dir, 'keys', 'crlf'), 'tok-456\r\n');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const withKey = (schema: BackendConfig['schema']): BackendConfig =>
    openAIBackend('b', { schema, auth: { type: 'APIKey', secret: { secretName: 'keys', key: 'api' } } });

  it('puts API keys in the header the schema expects, without the trailing newline', async () => {
    const secrets = new SecretReader(dir);
    const apply = (backend: BackendConfig) => createAuthenticator(backend, secrets)!.apply(request);
    expect(await apply(withKey({ name: 'OpenAI', pathPrefix: '/v1' }))).toEqual({
      setHeaders: { authorization: 'Bearer sk-123' },
      removeHeaders: [],
      repeatable: true,
    });
    expect(await apply(withKey({ name: 'Anthropic', version: '2023-06-01' }))).toEqual({
      setHeaders: { 'x-api-key': 'sk-123' },
      removeHeaders: [],
      repeatable: true,
    });
    expect(await apply(withKey({ name: 'AzureOpenAI', apiVersion: '2025-01-01-preview' }))).toEqual({
      setHeaders: { 'api-key': 'sk-123' },
      removeHeaders: [],
      repeatable: true,
    });
  });

  it('sends bearer tokens as Authorization', async () => {
    const backend = openAIBackend('b', { auth: { type: 'BearerToken', secret: { secretName: 'keys', key: 'crlf' } } });
    expect(await createAuthenticator(backend, new SecretReader(dir))!.apply(request)).toEqual({
      setHeaders: { authorization: 'Bearer tok-456' },
      removeHeaders: [],
      repeatable: true,
    });
  });

  it('caches a credential for the life of the reader', () => {
    const reader = new SecretReader(dir);
    fs.writeFileSync(path.join(dir, 'keys', 'rotating'), 'one');
    expect(reader.read({ secretName: 'keys', key: 'rotating' })).toBe('one');
    fs.writeFileSync(path.join(dir, 'keys', 'rotating'), 'two');
    expect(reader.read({ secretName: 'keys', key: 'rotating' })).toBe('one');
    expect(new SecretReader(dir).read({ secretName: 'keys', key: 'rotating' })).toBe('two');
  });

  it('names the missing file, never its content', () => {
    const reader = new SecretReader(dir);
    expect(() => reader.read({ secretName: 'keys', key: 'absent' })).toThrow(SecretUnavailableError);
    expect(() => reader.read({ secretName: 'keys', key: 'absent' })).toThrow('credential keys/absent is missing');
    expect(() => reader.read({ secretName: 'nosuchsecret', key: 'api' })).toThrow(
      'credential nosuchsecret/api is missing',
    );
    expect(() => new SecretReader(undefined).read({ secretName: 'keys', key: 'api' })).toThrow(/no secrets directory/);
  });

  it('rejects auth types without a factory when the config loads', () => {
    const backend = openAIBackend('aws', {
      auth: {
        type: 'AWSSigV4',
        region: 'us-east-1',
        credentials: { source: 'DefaultChain' },
        perRequestCredentials: false,
      },
    });
    expect(() => createAuthenticator(backend, new SecretReader(dir), {})).toThrow(UnsupportedAuthError);
    expect(() =>
      compileRuntime(testConfig({ backends: [{ ...backend, name: 'openai' }] }), new SecretReader(dir), {
        nowSeconds: 0,
        authFactories: {},
      }),
    ).toThrow(ProcessorConfigError);
  });

  it('rejects header mutations Envoy would ignore', () => {
    const backend = openAIBackend('openai', {
      headerMutation: { set: [{ name: 'host', value: 'x' }], remove: ['x-envoy-original-path'] },
    });
    expect(() => compileRuntime(testConfig({ backends: [backend] }), new SecretReader(dir), { nowSeconds: 0 })).toThrow(
      'backends.0.headerMutation: Envoy ignores changes to host, x-envoy-original-path; the route sets them',
    );
  });
});
