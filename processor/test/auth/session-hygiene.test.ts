/**
 * Issue 11, credential hygiene through the session (needs the LEAD's wiring, see /tmp/plan/helperB/README.md):
 * gateway-internal client headers never reach a provider, and a credential problem known at load is logged once
 * per snapshot, not once per request.
 */
import { ProcessorApp } from '../../src/app';
import { CLIENT_INTERNAL_HEADERS } from '../../src/auth';
import type { Logger } from '../../src/log';
import { EnvoyClient, type UpstreamRequest } from '../support/envoy-client';
import { openAIBackend, route, startTestProcessor, testConfig } from '../support/processor-harness';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const INTERNAL = {
  'x-ai-eg-upstream-host': 'attacker.example.com',
  'x-aigw-aws-access-key-id': 'AKIACLIENTKEY',
  'x-aigw-aws-secret-access-key': 'client-aws-secret',
  'x-aigw-aws-session-token': 'client-session-token',
};

describe('gateway-internal headers in the upstream request', () => {
  it(
    'never reach a non-AWS provider, and are consumed then removed for an AWS backend with ' +
      'per-request credentials',
    async () => {
      const processor = await startTestProcessor(
        testConfig({
          backends: [
            openAIBackend('openai', { auth: { type: 'APIKey', secret: { secretName: 'openai', key: 'apiKey' } } }),
            openAIBackend('plain'),
            openAIBackend('bedrock', {
              schema: { name: 'AWSBedrock' },
              auth: {
                type: 'AWSSigV4',
                region: 'us-east-1',
                perRequestCredentials: true,
                credentials: { source: 'DefaultChain' },
              },
            }),
          ],
          routes: [
            route(['gpt-4o'], [{ backend: 'openai', weight: 1, priority: 0 }]),
            route(['open'], [{ backend: 'plain', weight: 1, priority: 0 }], { name: 'default/plain' }),
            route(['claude'], [{ backend: 'bedrock', weight: 1, priority: 0 }], { name: 'default/bedrock' }),
          ],
        }),
        { secrets: { openai: { apiKey: 'sk-platform' } } },
      );
      try {
        const seen = async (model: string): Promise<UpstreamRequest> => {
          let upstream: UpstreamRequest | undefined;
          const result = await processor.client.exchange(
            {
              path: '/v1/chat/completions',
              headers: INTERNAL,
              body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
            },
            (request) => {
              upstream = request;
              return {
                status: 500,
                headers: { 'content-type': 'application/json' },
                body: '{"error":{"message":"stop"}}',
              };
            },
          );
          expect(result.immediate).toBe(false);
          return upstream!;
        };
        for (const model of ['gpt-4o', 'open']) {
          const upstream = await seen(model);
          for (const name of CLIENT_INTERNAL_HEADERS) expect(upstream.headers[name]).toBeUndefined();
          for (const value of Object.values(INTERNAL)) expect(JSON.stringify(upstream.headers)).not.toContain(value);
        }
        // The AWS backend signed with the client's per-request credentials, then removed them: AWS sees the key id
        // only inside the signature's scope and the session token as x-amz-security-token, never the secret key.
        const bedrock = await seen('claude');
        for (const name of CLIENT_INTERNAL_HEADERS) expect(bedrock.headers[name]).toBeUndefined();
        expect(bedrock.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIACLIENTKEY\//);
        expect(bedrock.headers['x-amz-security-token']).toBe('client-session-token');
        expect(JSON.stringify(bedrock.headers)).not.toContain('client-aws-secret');
        expect(JSON.stringify(bedrock.headers)).not.toContain('attacker.example.com');
      } finally {
        await processor.close();
      }
    },
  );
});

describe('a credential problem known at load', () => {
  it('is logged once per snapshot at error level; its failing requests log at debug only', async () => {
    const lines: Array<{ level: string; message: string }> = [];
    const at = (level: string) => (_fields: object, message: string) => void lines.push({ level, message });
    const logger: Logger = { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-log-once-'));
    fs.mkdirSync(path.join(dir, 'secrets', 'openai'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'secrets', 'openai', 'apiKey'), '');
    fs.writeFileSync(
      path.join(dir, 'config.json'),
      JSON.stringify(
        testConfig({
          backends: [
            openAIBackend('openai', { auth: { type: 'APIKey', secret: { secretName: 'openai', key: 'apiKey' } } }),
          ],
        }),
      ),
    );
    const app = new ProcessorApp({
      config: path.join(dir, 'config.json'),
      secretsDir: path.join(dir, 'secrets'),
      listen: '127.0.0.1:0',
      admin: undefined,
      pollIntervalMs: 60_000,
      logger,
    });
    await app.start();
    const client = new EnvoyClient(`127.0.0.1:${app.listenPort}`);
    try {
      for (let i = 0; i < 50; i++) {
        const result = await client.exchange(
          { path: '/v1/chat/completions', body: '{"model":"gpt-4o","messages":[]}' },
          () => ({ status: 200 }),
        );
        expect(result.status).toBe(503);
      }
      const loud = lines.filter((line) => line.level === 'error' || line.level === 'warn');
      expect(loud.map((line) => line.message)).toEqual([
        'backend credential unusable: its requests are answered 503 until the Secret is fixed ' +
          '(logged once per config load)',
      ]);
      expect(
        lines.filter((line) => line.message === 'backend authentication failed' && line.level === 'debug'),
      ).toHaveLength(50);
    } finally {
      client.close();
      await app.drain(500);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('/readyz of the app', () => {
  it('lists the credential problems; 503 only when no routed backend has a usable credential', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-readyz-app-'));
    fs.mkdirSync(path.join(dir, 'secrets', 'good'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'secrets', 'good', 'apiKey'), 'sk-good\n');
    const configFile = path.join(dir, 'config.json');
    const apiKey = (name: string, secretName: string) =>
      openAIBackend(name, { auth: { type: 'APIKey', secret: { secretName, key: 'apiKey' } } });
    fs.writeFileSync(
      configFile,
      JSON.stringify(
        testConfig({
          backends: [apiKey('openai', 'missing'), apiKey('good', 'good')],
          routes: [
            route(['gpt-4o'], [{ backend: 'openai', weight: 1, priority: 0 }]),
            route(['other'], [{ backend: 'good', weight: 1, priority: 0 }], { name: 'default/other' }),
          ],
        }),
      ),
    );
    const silent: Logger = { error() {}, warn() {}, info() {}, debug() {} };
    const app = new ProcessorApp({
      config: configFile,
      secretsDir: path.join(dir, 'secrets'),
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      pollIntervalMs: 60_000,
      logger: silent,
    });
    await app.start();
    try {
      const readyz = async () => {
        const response = await fetch(`http://127.0.0.1:${app.adminPort}/readyz`);
        return { status: response.status, body: await response.text() };
      };
      expect(await readyz()).toEqual({
        status: 200,
        body:
          'ready (degraded: 1 backend credential problem)\nbackend "openai": credential ' +
          'missing/apiKey is missing\n',
      });
      fs.writeFileSync(configFile, JSON.stringify(testConfig({ backends: [apiKey('openai', 'missing')] })));
      expect(app.reload({ config: true, secrets: false })).toBe(true);
      expect(await readyz()).toEqual({
        status: 503,
        body:
          'not ready: no routed backend has a usable credential\nbackend "openai": credential ' +
          'missing/apiKey is missing\n',
      });
    } finally {
      await app.drain(500);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
