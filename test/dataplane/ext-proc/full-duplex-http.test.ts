/**
 * A FullDuplexStreamed response over real HTTP through the local data plane: each streamed response reaches the
 * client while the upstream response is still open, and the client leaving cancels the ext_proc stream.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseManifests } from '../../../lib/dataplane/manifests';
import { startDataPlane, type RunningDataPlane } from '../../../lib/dataplane/server';
import { startFakeProcessor, type FakeProcessor, type Message, type ServerStream } from './support';

const MANIFESTS = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec: {listeners: [{name: http, port: 80, protocol: HTTP}]}
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
metadata: {name: r, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules: [{matches: [{path: {type: PathPrefix, value: /}}], backendRefs: [{name: svc, port: 80}]}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyExtensionPolicy
metadata: {name: eep, namespace: ns}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}]
  extProc:
    - backendRefs: [{name: processor, port: 9002}]
      processingMode: {response: {body: FullDuplexStreamed}}
`;

const streamed = (body: string, endOfStream = false): Message => ({
  responseBody: { response: { bodyMutation: { streamedResponse: { body: Buffer.from(body), endOfStream } } } },
});

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('FullDuplexStreamed response over HTTP', () => {
  let processor: FakeProcessor;
  let script: (stream: ServerStream) => Promise<void>;
  let upstream: http.Server;
  /** The upstream's open responses; the test ends them. */
  const upstreamResponses: http.ServerResponse[] = [];
  let plane: RunningDataPlane;
  let address: string;

  beforeAll(async () => {
    processor = await startFakeProcessor((stream) => script(stream));
    upstream = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('first');
      upstreamResponses.push(res);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    plane = await startDataPlane({
      objects: parseManifests(MANIFESTS),
      backendOverrides: { 'ns/svc': `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` },
      services: (namespace, name, port) =>
        namespace === 'ns' && name === 'processor' && port === 9002 ? processor.address : undefined,
    });
    address = plane.address('ns', 'gw', 80);
  });
  afterAll(async () => {
    await plane.close();
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
    await processor.close();
  });

  function get(): { response: Promise<http.IncomingMessage>; request: http.ClientRequest } {
    const { hostname: host, port } = new URL(address);
    let request!: http.ClientRequest;
    const response = new Promise<http.IncomingMessage>((resolve, reject) => {
      request = http.get({ host, port: Number(port), path: '/stream', headers: { host: 'any' } }, resolve);
      request.on('error', reject);
    });
    return { response, request };
  }

  it('writes each streamed response to the client as it arrives', async () => {
    const received: string[] = [];
    script = async (stream) => {
      const headers = await stream.expect('responseHeaders');
      expect(headers.protocolConfig).toMatchObject({ responseBodyMode: 4 });
      stream.send({ responseHeaders: { response: {} } });
      const first = await stream.expect('responseBody');
      received.push(Buffer.from(first.responseBody.body).toString());
      stream.send(streamed('X1'));
      const second = await stream.expect('responseBody');
      received.push(Buffer.from(second.responseBody.body).toString());
      await stream.expect('responseBody');
      stream.send(streamed('X2', true));
    };
    const { response } = get();
    const res = await response;
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBeUndefined();
    let body = '';
    res.on('data', (chunk: Buffer) => (body += chunk.toString()));
    const ended = new Promise<void>((resolve) => res.on('end', resolve));
    // The processor's first answer reaches the client while the upstream response is still open.
    await until(() => body === 'X1', 'the first streamed response at the client');
    expect(upstreamResponses).toHaveLength(1);
    upstreamResponses[0].end('second');
    await ended;
    expect(body).toBe('X1X2');
    expect(received).toEqual(['first', 'second']);
  });

  it('cancels the ext_proc stream when the client goes away', async () => {
    let stream!: ServerStream;
    script = async (s) => {
      stream = s;
      await s.expect('responseHeaders');
      s.send({ responseHeaders: { response: {} } });
      await s.expect('responseBody');
      s.send(streamed('partial'));
    };
    const { response, request } = get();
    const res = await response;
    let body = '';
    res.on('data', (chunk: Buffer) => (body += chunk.toString()));
    res.on('error', () => undefined);
    await until(() => body === 'partial', 'the streamed response at the client');
    request.destroy();
    await until(() => stream.ended || stream.cancelled, 'the ext_proc stream to close');
    upstreamResponses[1].end();
  });
});
