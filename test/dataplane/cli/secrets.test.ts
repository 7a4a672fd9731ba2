import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  configSecretRefs,
  InvalidSecretNameError,
  MissingSecretError,
  readSecretKey,
  secretEnvName,
} from '../../../lib/dataplane/secrets';

describe('local secrets', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-secrets-test-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (relative: string, value: string) => {
    const file = path.join(dir, relative);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, value);
  };
  const id = { namespace: 'ai-platform', secretName: 'openai-api-key', key: 'api-key' };

  it('names the environment variable in upper case with every other character as "_"', () => {
    expect(secretEnvName('openai-api-key', 'api-key')).toBe('AI_GATEWAY_SECRET_OPENAI_API_KEY_API_KEY');
    expect(secretEnvName('aws.creds', 'credentials')).toBe('AI_GATEWAY_SECRET_AWS_CREDS_CREDENTIALS');
  });

  it('prefers <dir>/<namespace>/<secret>/<key>, then <dir>/<secret>/<key>, then the environment', () => {
    const env = { AI_GATEWAY_SECRET_OPENAI_API_KEY_API_KEY: 'from-env' };
    expect(readSecretKey(id, { dir, env }).value.toString()).toBe('from-env');
    write('openai-api-key/api-key', 'flat');
    expect(readSecretKey(id, { dir, env })).toEqual({
      value: Buffer.from('flat'),
      from: `file ${path.join(dir, 'openai-api-key', 'api-key')}`,
    });
    write('ai-platform/openai-api-key/api-key', 'namespaced');
    expect(readSecretKey(id, { dir, env }).value.toString()).toBe('namespaced');
    // Another namespace's folder is not this Secret.
    expect(readSecretKey({ ...id, namespace: 'other' }, { dir, env }).value.toString()).toBe('flat');
  });

  it('reads the environment alone when no folder is given, and ignores empty variables', () => {
    expect(readSecretKey(id, { env: { AI_GATEWAY_SECRET_OPENAI_API_KEY_API_KEY: 'k' } }).from).toBe(
      'environment variable AI_GATEWAY_SECRET_OPENAI_API_KEY_API_KEY',
    );
    expect(() => readSecretKey(id, { env: { AI_GATEWAY_SECRET_OPENAI_API_KEY_API_KEY: '' } })).toThrow(
      MissingSecretError,
    );
  });

  it('skips a folder where a key file is expected', () => {
    fs.mkdirSync(path.join(dir, 'ai-platform', 'openai-api-key', 'api-key'), { recursive: true });
    write('openai-api-key/api-key', 'flat');
    expect(readSecretKey(id, { dir }).value.toString()).toBe('flat');
  });

  it('fails naming the Secret, the key, who needs it and every place looked, without any value', () => {
    write('ai-platform/openai-api-key/other-key', 'sk-do-not-print');
    const env = { AI_GATEWAY_SECRET_OPENAI_API_KEY_OTHER: 'sk-env-do-not-print' };
    let error: unknown;
    try {
      readSecretKey(id, { dir, env }, 'processor Deployment ai-platform/ai-gateway-processor');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MissingSecretError);
    const message = (error as Error).message;
    expect(message).toContain('Secret ai-platform/openai-api-key key "api-key"');
    expect(message).toContain('needed by processor Deployment ai-platform/ai-gateway-processor');
    expect(message).toContain(`file ${path.join(dir, 'ai-platform', 'openai-api-key', 'api-key')}`);
    expect(message).toContain(`file ${path.join(dir, 'openai-api-key', 'api-key')}`);
    expect(message).toContain('environment variable AI_GATEWAY_SECRET_OPENAI_API_KEY_API_KEY');
    expect(message).not.toContain('do-not-print');
    expect((error as MissingSecretError).places).toHaveLength(3);
  });

  it('rejects names that would leave the secrets folder', () => {
    write('x', 'outside');
    expect(() => readSecretKey({ ...id, secretName: '..', key: 'x' }, { dir })).toThrow(InvalidSecretNameError);
    expect(() => readSecretKey({ ...id, key: '../x' }, { dir })).toThrow(InvalidSecretNameError);
    expect(() => readSecretKey({ ...id, namespace: 'a/b' }, { dir })).toThrow(InvalidSecretNameError);
  });

  it('refuses a file larger than a Secret can be', () => {
    write('openai-api-key/api-key', 'x'.repeat(1024 * 1024 + 1));
    expect(() => readSecretKey(id, { dir })).toThrow(/at most 1048576 bytes/);
  });

  it('finds every secret reference of a processor config, once each, in document order', () => {
    const config = {
      backends: [
        { name: 'a', auth: { type: 'APIKey', secret: { secretName: 'openai-api-key', key: 'api-key' } } },
        {
          name: 'b',
          auth: {
            type: 'AWSSigV4',
            credentials: { source: 'Secret', secret: { secretName: 'aws', key: 'credentials' }, profile: 'default' },
          },
        },
        { name: 'c', auth: { type: 'APIKey', secret: { secretName: 'openai-api-key', key: 'api-key' } } },
        {
          name: 'd',
          auth: {
            type: 'AzureEntra',
            tenantId: 't',
            clientId: 'c',
            clientSecret: { secretName: 'entra', key: 'secret' },
          },
        },
        { name: 'e', auth: { type: 'AWSSigV4', credentials: { source: 'DefaultChain' } } },
      ],
    };
    expect(configSecretRefs(JSON.stringify(config))).toEqual([
      { secretName: 'openai-api-key', key: 'api-key' },
      { secretName: 'aws', key: 'credentials' },
      { secretName: 'entra', key: 'secret' },
    ]);
  });
});
