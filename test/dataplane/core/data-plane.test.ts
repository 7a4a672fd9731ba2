/** startDataPlane end to end over real HTTP: forwarding, overrides, TLS, timeouts, retries, failures, streaming. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseManifests } from '../../../lib/dataplane/manifests';
import { startDataPlane, type RunningDataPlane } from '../../../lib/dataplane/server';
import { send } from '../../conformance/support';

const attempts = new Map<string, number>();
let upstreamClosedEarly = 0;

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const body: Buffer[] = [];
  req.on('data', (c: Buffer) => body.push(c));
  req.on('end', () => {
    const id = String(req.headers['x-test-id'] ?? '');
    attempts.set(id, (attempts.get(id) ?? 0) + 1);
    switch (url.pathname) {
      case '/flaky':
        if ((attempts.get(id) ?? 0) < 3) return void res.writeHead(503).end('busy');
        break;
      case '/slow': {
        const timer = setTimeout(() => res.writeHead(200).end('late'), 2000);
        res.on('close', () => {
          if (!res.writableFinished) upstreamClosedEarly++;
          clearTimeout(timer);
        });
        return;
      }
      case '/stream':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('one,');
        setTimeout(() => res.end('two'), 50);
        return;
      case '/reset':
        return void req.socket.destroy();
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
    res.end(
      JSON.stringify({
        path: req.url,
        host: req.headers.host,
        body: Buffer.concat(body).toString(),
        headers: req.headers,
      }),
    );
  });
}

function listen(server: http.Server | https.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function manifests(plainPort: number, tlsPort: number): string {
  const rule = (prefix: string, backend: string, extra = '') => `
  - matches: [{path: {type: PathPrefix, value: ${prefix}}}]
    backendRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: ${backend}}]${extra}`;
  return `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec: {listeners: [{name: http, port: 80, protocol: HTTP}]}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: provider, namespace: ns}
spec: {endpoints: [{fqdn: {hostname: api.provider.example, port: 443}}]}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: direct-ip, namespace: ns}
spec: {endpoints: [{ip: {address: 127.0.0.1, port: ${plainPort}}}]}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: unresolvable, namespace: ns}
spec: {endpoints: [{fqdn: {hostname: no-such-host.invalid, port: 80}}]}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: refused, namespace: ns}
spec: {endpoints: [{ip: {address: 127.0.0.1, port: 1}}]}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: tls, namespace: ns}
spec: {endpoints: [{ip: {address: 127.0.0.1, port: ${tlsPort}}}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: tls, namespace: ns}
spec:
  targetRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: tls}]
  validation: {hostname: localhost, wellKnownCACertificates: System}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules:${rule(
    '/provider',
    'provider',
    `
    filters:
    - type: URLRewrite
      urlRewrite: {hostname: api.provider.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v1}}`,
  )}${rule('/ip', 'direct-ip')}${rule('/unresolvable', 'unresolvable')}${rule('/refused', 'refused')}${rule(
    '/tls',
    'tls',
  )}${rule(
    '/slow',
    'direct-ip',
    `
    timeouts: {request: 300ms}`,
  )}${rule('/stream', 'direct-ip')}${rule('/reset', 'direct-ip')}
  - matches: [{path: {type: PathPrefix, value: /weights}}]
    backendRefs:
    - {group: gateway.envoyproxy.io, kind: Backend, name: direct-ip, weight: 1}
    - {group: gateway.envoyproxy.io, kind: Backend, name: refused, weight: 0}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: retried, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules:${rule('/flaky', 'direct-ip')}${rule(
    '/abort',
    'direct-ip',
    `
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /slow}}}]
    timeouts: {request: 0s}`,
  )}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: retried, namespace: ns}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: retried}]
  retry:
    numRetries: 2
    retryOn: {triggers: [retriable-status-codes], httpStatusCodes: [503]}
    perRetry: {backOff: {baseInterval: 10ms}}
`;
}

describe('startDataPlane over real HTTP', () => {
  let plain: http.Server;
  let secure: https.Server;
  let plane: RunningDataPlane;
  let trusting: RunningDataPlane;
  let address: string;

  beforeAll(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dp-core-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost',
        '-days',
        '1',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const cert = fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8');
    plain = http.createServer(handler);
    secure = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert }, handler);
    const [plainPort, tlsPort] = [await listen(plain), await listen(secure)];
    const objects = parseManifests(manifests(plainPort, tlsPort));
    const backendOverrides = { 'ns/provider': `http://127.0.0.1:${plainPort}` };
    plane = await startDataPlane({ objects, backendOverrides });
    trusting = await startDataPlane({ objects, backendOverrides, extraCaCertificates: [cert] });
    address = plane.address('ns', 'gw', 80);
  });
  afterAll(async () => {
    await plane?.close();
    await trusting?.close();
    plain?.close();
    secure?.close();
    plain?.closeAllConnections();
    secure?.closeAllConnections();
  });

  it('forwards to an overridden Backend with the rewritten host and path, keeping the query and body', async () => {
    const result = await send(address, { method: 'POST', path: '/provider/chat?x=1', host: 'gw.local', body: 'hi' });
    expect(result.status).toBe(200);
    expect(result.headers['x-upstream']).toBe('yes');
    const seen = JSON.parse(result.body);
    expect(seen).toEqual(expect.objectContaining({ path: '/v1/chat?x=1', host: 'api.provider.example', body: 'hi' }));
    expect(seen.headers['x-forwarded-proto']).toBe('http');
  });

  it('connects to a Backend IP endpoint directly and keeps the client Host', async () => {
    const seen = JSON.parse((await send(address, { path: '/ip/a', host: 'client.example' })).body);
    expect(seen).toEqual(expect.objectContaining({ path: '/ip/a', host: 'client.example' }));
  });

  it('answers 503 UH for an unresolvable Backend and 503 UF for a refused connection', async () => {
    expect(await send(address, { path: '/unresolvable' })).toEqual(
      expect.objectContaining({ status: 503, body: 'no healthy upstream' }),
    );
    const refused = await send(address, { path: '/refused' });
    expect(refused.status).toBe(503);
    expect(refused.body).toContain('connection failure');
  });

  it('verifies upstream TLS against the system CAs (self-signed fails) or an added CA (passes)', async () => {
    const rejected = await send(address, { path: '/tls' });
    expect(rejected.status).toBe(503);
    const accepted = await send(trusting.address('ns', 'gw', 80), { path: '/tls/x' });
    expect(accepted.status).toBe(200);
    expect(JSON.parse(accepted.body).path).toBe('/tls/x');
  });

  it('answers 504 when the route timeout expires before the response', async () => {
    const started = Date.now();
    const result = await send(address, { path: '/slow' });
    expect(result).toEqual(expect.objectContaining({ status: 504, body: 'upstream request timeout' }));
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('retries 503s per the BackendTrafficPolicy retry and returns the third attempt', async () => {
    const result = await send(address, { path: '/flaky', headers: { 'x-test-id': 'retry-1' } });
    expect(result.status).toBe(200);
    expect(attempts.get('retry-1')).toBe(3);
  });

  it('streams the response body through and never picks a weight-0 backend', async () => {
    expect((await send(address, { path: '/stream' })).body).toBe('one,two');
    for (let i = 0; i < 20; i++) expect((await send(address, { path: '/weights' })).status).toBe(200);
  });

  it('answers 503 when the upstream resets before responding', async () => {
    expect((await send(address, { path: '/reset' })).status).toBe(503);
  });

  it('cancels the upstream request when the client goes away', async () => {
    const before = upstreamClosedEarly;
    const url = new URL(address);
    const req = http.request({ host: url.hostname, port: url.port, path: '/abort', agent: false });
    req.on('error', () => undefined);
    req.end();
    await new Promise((r) => setTimeout(r, 200));
    expect(upstreamClosedEarly).toBe(before);
    req.destroy();
    for (let i = 0; i < 50 && upstreamClosedEarly === before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(upstreamClosedEarly).toBe(before + 1);
  });
});

describe('startDataPlane: ClientTrafficPolicy buffer limit with a buffering ext_proc', () => {
  let plane: RunningDataPlane;
  beforeAll(async () => {
    plane = await startDataPlane({
      echo: true,
      objects: parseManifests(`
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec: {listeners: [{name: http, port: 80, protocol: HTTP}]}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: ctp, namespace: ns}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]
  connection: {bufferLimit: 1Ki}
  headers: {earlyRequestHeaders: {remove: [x-internal]}}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyExtensionPolicy
metadata: {name: eep, namespace: ns}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: buffered}]
  extProc: [{backendRefs: [{name: processor, port: 9002}], processingMode: {request: {body: Buffered}}}]
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: ns}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: processor, namespace: ns}
spec: {ports: [{port: 9002}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: buffered, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules: [{matches: [{path: {type: PathPrefix, value: /buffered}}], backendRefs: [{name: svc, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: plain, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches:
    - {path: {type: PathPrefix, value: /plain}}
    - {path: {type: PathPrefix, value: /plain}, headers: [{name: x-internal, value: spoof}]}
    backendRefs: [{name: svc, port: 80}]
`),
    });
  });
  afterAll(() => plane?.close());

  it(
    'answers 413 for a body over the limit on a route whose ext_proc buffers it, and streams it ' + 'elsewhere',
    async () => {
      const address = plane.address('ns', 'gw', 80);
      const big = 'x'.repeat(2048);
      expect((await send(address, { method: 'POST', path: '/buffered', body: big })).status).toBe(413);
      const plain = await send(address, { method: 'POST', path: '/plain', body: big });
      expect(plain.status).toBe(200);
    },
  );

  it('removes the early headers before matching and before the backend sees them', async () => {
    const result = await send(plane.address('ns', 'gw', 80), { path: '/plain', headers: { 'x-internal': 'spoof' } });
    const echo = JSON.parse(result.body);
    expect(echo.headers['x-internal']).toBeUndefined();
  });

  it('echoes credential headers without their secret part (the processor injects provider keys)', async () => {
    const sent = { authorization: 'Bearer sk-live-123', 'x-api-key': 'sk-ant-456', 'x-trace': 'kept' };
    const echo = JSON.parse((await send(plane.address('ns', 'gw', 80), { path: '/plain', headers: sent })).body);
    expect(echo.headers.authorization).toEqual(['Bearer <redacted>']);
    expect(echo.headers['x-api-key']).toEqual(['<redacted>']);
    expect(echo.headers['x-trace']).toEqual(['kept']);
    expect(JSON.stringify(echo)).not.toMatch(/sk-live|sk-ant/);
  });
});

describe('startDataPlane: HTTPS listeners', () => {
  const gateway = (secret: string) => `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec:
  listeners:
  - name: https
    port: 443
    protocol: HTTPS
    hostname: secure.example
    tls: {mode: Terminate, certificateRefs: [{name: cert}]}
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: ns}
spec: {ports: [{port: 80}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: svc, port: 80}]}]
${secret}`;

  it('terminates TLS with the listener certificate Secret when the manifests hold it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dp-listener-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        '/CN=secure.example',
        '-addext',
        'subjectAltName=DNS:secure.example',
        '-days',
        '1',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const cert = fs.readFileSync(path.join(dir, 'cert.pem'));
    const key = fs.readFileSync(path.join(dir, 'key.pem'));
    const secret = `---
apiVersion: v1
kind: Secret
metadata: {name: cert, namespace: ns}
type: kubernetes.io/tls
data: {tls.crt: ${cert.toString('base64')}, tls.key: ${key.toString('base64')}}
`;
    const plane = await startDataPlane({ echo: true, objects: parseManifests(gateway(secret)) });
    try {
      const address = new URL(plane.address('ns', 'gw', 443));
      expect(address.protocol).toBe('https:');
      const echo = await new Promise<{ host: string; headers: Record<string, string[]> }>((resolve, reject) => {
        const req = https.request(
          {
            host: '127.0.0.1',
            port: address.port,
            path: '/x',
            servername: 'secure.example',
            ca: cert,
            headers: { host: 'secure.example' },
            agent: false,
          },
          (res) => {
            let text = '';
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve(JSON.parse(text)));
          },
        );
        req.on('error', reject);
        req.end();
      });
      expect(echo.host).toBe('secure.example');
      expect(echo.headers['x-forwarded-proto']).toEqual(['https']);
    } finally {
      await plane.close();
    }
  });

  it('serves plain HTTP when the certificate Secret is not in the manifests', async () => {
    const plane = await startDataPlane({ echo: true, objects: parseManifests(gateway('')) });
    try {
      expect(plane.address('ns', 'gw', 443)).toMatch(/^http:\/\//);
      expect((await send(plane.address('ns', 'gw', 443), { path: '/', host: 'secure.example' })).status).toBe(200);
    } finally {
      await plane.close();
    }
  });
});
