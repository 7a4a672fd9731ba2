/**
 * Issue 11, credential hygiene: the gateway-internal request headers a client must never get to a provider
 * (`x-ai-eg-upstream-host`, the per-request AWS credentials `x-aigw-aws-*`), and which of them a backend's auth
 * legitimately consumes. The session removes every other one from the upstream request.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CLIENT_INTERNAL_HEADER_PREFIXES,
  CLIENT_INTERNAL_HEADER_REASONS,
  CLIENT_INTERNAL_HEADERS,
  internalHeadersConsumedBy,
  isAwsSigningInputHeader,
  isClientInternalHeader,
  type AuthRequest,
} from '../../src/auth';
import { AwsSigV4Authenticator, type AwsCredentialSource } from '../../src/auth/aws';
import { MODEL_HEADER, type BackendAuth, type BackendConfig } from '@ai-gateway-constructs/processor-config';
import { openAIBackend } from '../support/processor-harness';

const AWS_HEADERS = ['x-aigw-aws-access-key-id', 'x-aigw-aws-secret-access-key', 'x-aigw-aws-session-token'];

type SigV4 = Extract<BackendAuth, { type: 'AWSSigV4' }>;
const sigV4 = (perRequestCredentials: boolean): SigV4 => ({
  type: 'AWSSigV4',
  region: 'us-east-1',
  perRequestCredentials,
  credentials: { source: 'DefaultChain' },
});
const bedrock = (perRequestCredentials: boolean): BackendConfig =>
  openAIBackend('bedrock', { schema: { name: 'AWSBedrock' }, auth: sigV4(perRequestCredentials) });

describe('gateway-internal request headers', () => {
  it('lists x-ai-eg-upstream-host and every per-request AWS credential header, each with a reason', () => {
    expect([...CLIENT_INTERNAL_HEADERS].sort()).toEqual(['x-ai-eg-upstream-host', ...AWS_HEADERS].sort());
    for (const name of CLIENT_INTERNAL_HEADERS) {
      expect(name).toBe(name.toLowerCase());
      expect(CLIENT_INTERNAL_HEADER_REASONS[name].length).toBeGreaterThan(20);
    }
  });

  it('tells internal headers by name and prefix; the model header the processor sets itself is not one', () => {
    for (const name of [...CLIENT_INTERNAL_HEADERS, 'x-aigw-aws-region', 'x-aigw-anything', 'x-ai-eg-original-path'])
      expect(isClientInternalHeader(name)).toBe(true);
    for (const name of [
      MODEL_HEADER,
      'authorization',
      'x-api-key',
      'content-type',
      'x-amz-date',
      'x-aigwx',
      'x-ai-egg',
    ])
      expect(isClientInternalHeader(name)).toBe(false);
    expect(CLIENT_INTERNAL_HEADER_PREFIXES).toEqual(['x-ai-eg-', 'x-aigw-']);
  });

  it('AWS signing inputs are exactly the per-request credential headers', () => {
    for (const name of AWS_HEADERS) expect(isAwsSigningInputHeader(name)).toBe(true);
    for (const name of ['x-ai-eg-upstream-host', 'x-amz-security-token', 'authorization', 'x-aigw-aws-region'])
      expect(isAwsSigningInputHeader(name)).toBe(false);
  });

  it('only an AWSSigV4 backend with perRequestCredentials consumes any of them', () => {
    expect([...internalHeadersConsumedBy(bedrock(true))]).toEqual(AWS_HEADERS);
    expect(internalHeadersConsumedBy(bedrock(false))).toEqual([]);
    expect(internalHeadersConsumedBy(openAIBackend('openai'))).toEqual([]);
    expect(
      internalHeadersConsumedBy(
        openAIBackend('openai', { auth: { type: 'APIKey', secret: { secretName: 's', key: 'k' } } }),
      ),
    ).toEqual([]);
    expect(
      internalHeadersConsumedBy(
        openAIBackend('vertex', { auth: { type: 'GCP', credentials: { source: 'WorkloadIdentity' } } }),
      ),
    ).toEqual([]);
    for (const name of internalHeadersConsumedBy(bedrock(true))) expect(CLIENT_INTERNAL_HEADERS).toContain(name);
  });

  it('the AWS auth reads no internal header but those it consumes, and removes them after use', async () => {
    const clientHeaders: Record<string, string> = {
      'x-aigw-aws-access-key-id': 'AKIAPERREQUEST',
      'x-aigw-aws-secret-access-key': 'per-request-secret',
      'x-aigw-aws-session-token': 'per-request-token',
      'x-ai-eg-upstream-host': 'evil.example.com',
      'content-type': 'application/json',
    };
    const read = new Set<string>();
    const headers = new Proxy(clientHeaders, {
      get(target, name) {
        if (typeof name === 'string') read.add(name);
        return Reflect.get(target, name) as unknown;
      },
    });
    const never: AwsCredentialSource = {
      current: () => undefined,
      load: () => Promise.reject(new Error('configured credentials are not used here')),
    };
    const auth = new AwsSigV4Authenticator(sigV4(true), never, () => new Date('2026-12-06T12:00:00Z'));
    const request: AuthRequest = {
      method: 'POST',
      hostname: 'bedrock-runtime.us-east-1.amazonaws.com',
      path: '/model/m/converse',
      headers,
      body: Buffer.from('{}'),
    };
    const changes = await auth.apply(request);
    const internalRead = [...read].filter(isClientInternalHeader).sort();
    expect(internalRead).toEqual([...internalHeadersConsumedBy(bedrock(true))].sort());
    expect(changes.removeHeaders).toEqual(expect.arrayContaining(AWS_HEADERS));
    expect(changes.setHeaders.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIAPERREQUEST\//);
    expect(changes.setHeaders['x-amz-security-token']).toBe('per-request-token');
  });

  it(
    'every x-aigw-* / x-ai-eg-* header named in the processor source is listed (or is the model ' +
      'header the processor sets)',
    () => {
      const root = path.join(__dirname, '../../src');
      const names = new Set<string>();
      const walk = (dir: string): void => {
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
          const file = path.join(dir, entry.name);
          if (entry.isDirectory()) walk(file);
          else if (entry.name.endsWith('.ts')) {
            // Whole names only: prefixes (`x-aigw-`) and globs in comments (`x-aigw-aws-*`) are not headers.
            for (const match of fs
              .readFileSync(file, 'utf8')
              .matchAll(/\bx-(?:aigw|ai-eg)-[a-z0-9-]*[a-z0-9](?![a-z0-9*-])/g))
              names.add(match[0]);
          }
        }
      };
      walk(root);
      expect(names.size).toBeGreaterThan(0);
      const unlisted = [...names].filter((name) => name !== MODEL_HEADER && !CLIENT_INTERNAL_HEADERS.includes(name));
      expect(unlisted).toEqual([]);
    },
  );
});
