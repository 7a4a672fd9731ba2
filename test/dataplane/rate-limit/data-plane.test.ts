/**
 * Budgets and JWT identity through the whole local data plane (translate -> filters -> echo backends): shared vs
 * per-route buckets, tenants, gateway + route budgets stacking, and a budget keyed on a JWT claim header.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { parse } from 'yaml';
import type { KubeObject } from '../../../lib/dataplane/model';
import { type RunningDataPlane, startDataPlane } from '../../../lib/dataplane/server';
import { redisUrlForTests } from '../../support/redis';

const redisUrl = redisUrlForTests('the rate-limit counting tests against a real Redis');

function request(
  address: string,
  pathAndQuery: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const url = new URL(address);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: pathAndQuery,
        method: 'GET',
        agent: false,
        headers: { host: 'chat.example', ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const docs = (text: string): KubeObject[] =>
  text
    .split(/^---$/m)
    .map((d) => parse(d) as KubeObject)
    .filter(Boolean);

function base(suffix: string): string {
  return `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ai}
spec: {gatewayClassName: eg, listeners: [{name: http, port: 80, protocol: HTTP}]}
---
apiVersion: v1
kind: Service
metadata: {name: chat-a, namespace: ai}
spec: {ports: [{port: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: chat-b, namespace: ai}
spec: {ports: [{port: 8080}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: chat, namespace: ai}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /a}}]
    backendRefs: [{name: chat-a, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /b}}]
    backendRefs: [{name: chat-b, port: 8080}]
---
${suffix}`;
}

const budget = (name: string, target: string, requests: number, shared: boolean, extra = '') => `
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: ${name}, namespace: ai}
spec:
  targetRefs: [${target}]
  ${extra}
  rateLimit:
    type: Global
    global:
      rules:
      - clientSelectors: [{headers: [{name: x-tenant, type: Distinct}]}]
        limit: {requests: ${requests}, unit: Hour}
        shared: ${shared}
`;

const ROUTE = '{group: gateway.networking.k8s.io, kind: HTTPRoute, name: chat}';
const GATEWAY = '{group: gateway.networking.k8s.io, kind: Gateway, name: gw}';

describe.each([['memory', undefined], ...(redisUrl ? [['redis', redisUrl]] : [])] as [string, string | undefined][])(
  'budgets through the data plane (%s counters)',
  (_store, url) => {
    let plane: RunningDataPlane | undefined;
    const tenant = () => `t-${Math.random().toString(36).slice(2)}`;

    afterEach(async () => {
      await plane?.close();
      plane = undefined;
    });

    async function start(manifests: string): Promise<string> {
      plane = await startDataPlane({ objects: docs(manifests), echo: true, ...(url ? { redisUrl: url } : {}) });
      return plane.address('ai', 'gw', 80);
    }

    async function statuses(address: string, paths: string[], who: string): Promise<number[]> {
      const out: number[] = [];
      for (const p of paths) out.push((await request(address, p, { 'x-tenant': who })).status);
      return out;
    }

    it(
      'a shared route budget is one bucket across rules; other tenants are unaffected; 429 ' +
        'carries x-ratelimit headers',
      async () => {
        const address = await start(base(budget('route-budget', ROUTE, 3, true)));
        const t = tenant();
        expect(await statuses(address, ['/a', '/b', '/a', '/b'], t)).toEqual([200, 200, 200, 429]);
        const limited = await request(address, '/a', { 'x-tenant': t });
        expect(limited.status).toBe(429);
        expect(limited.headers['x-ratelimit-limit']).toBe('3, 3;w=3600');
        expect(limited.headers['x-envoy-ratelimited']).toBeUndefined();
        expect(await statuses(address, ['/a'], tenant())).toEqual([200]);
        // No tenant header: no descriptor, so no limit at all.
        for (let i = 0; i < 5; i++) expect((await request(address, '/a')).status).toBe(200);
      },
    );

    it('a non-shared budget is one bucket per xDS route (rule/match/hostname)', async () => {
      const address = await start(base(budget('route-budget', ROUTE, 2, false)));
      expect(await statuses(address, ['/a', '/a', '/a', '/b', '/b', '/b'], tenant())).toEqual([
        200, 200, 429, 200, 200, 429,
      ]);
    });

    it(
      'gateway and route budgets stack with StrategicMerge; without mergeType the route policy ' +
        'replaces the gateway one',
      async () => {
        const merged = await start(
          base(
            `${budget('gw-budget', GATEWAY, 3, true)}---` +
              `${budget('route-budget', ROUTE, 10, true, 'mergeType: StrategicMerge')}`,
          ),
        );
        expect(await statuses(merged, ['/a', '/b', '/a', '/b'], tenant())).toEqual([200, 200, 200, 429]);
        await plane?.close();
        const replaced = await start(
          base(`${budget('gw-budget', GATEWAY, 3, true)}---${budget('route-budget', ROUTE, 10, true)}`),
        );
        expect(await statuses(replaced, ['/a', '/b', '/a', '/b'], tenant())).toEqual([200, 200, 200, 200]);
      },
    );
  },
);

describe('a budget keyed on a JWT claim header', () => {
  let plane: RunningDataPlane | undefined;

  afterAll(async () => {
    await plane?.close();
  });

  it('takes the identity from the token, not from a header the client sends', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwksFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'jwks-')), 'jwks.json');
    fs.writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256' }] }));
    const security = `
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata: {name: gw-jwt, namespace: ai}
spec:
  targetRefs: [${GATEWAY}]
  jwt:
    providers:
    - name: default
      issuer: https://issuer.example
      remoteJWKS: {uri: 'https://issuer.example/jwks.json'}
      claimToHeaders: [{claim: sub, header: x-tenant}]
`;
    plane = await startDataPlane({
      objects: docs(base(`${security}---${budget('route-budget', ROUTE, 1, true)}`)),
      echo: true,
      jwksOverrides: { 'https://issuer.example/jwks.json': jwksFile },
    });
    const address = plane.address('ai', 'gw', 80);
    const tokenFor = (sub: string) =>
      new SignJWT({ sub })
        .setProtectedHeader({ alg: 'ES256', kid: 'k' })
        .setIssuer('https://issuer.example')
        .setExpirationTime('5m')
        .sign(privateKey);
    const alice = await tokenFor('alice');
    expect((await request(address, '/a')).status).toBe(401);
    const first = await request(address, '/a', { authorization: `Bearer ${alice}`, 'x-tenant': 'someone-else' });
    expect(first.status).toBe(200);
    expect(JSON.parse(first.body).headers['x-tenant']).toEqual(['alice']);
    // A spoofed header does not give alice a fresh bucket: the claim replaces it.
    expect((await request(address, '/b', { authorization: `Bearer ${alice}`, 'x-tenant': 'fresh' })).status).toBe(429);
    expect((await request(address, '/b', { authorization: `Bearer ${await tokenFor('bob')}` })).status).toBe(200);
  });
});
