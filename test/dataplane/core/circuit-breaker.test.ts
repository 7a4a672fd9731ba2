/**
 * The route rule cluster's `max_requests` circuit breaker over a long session: every way a stream ends gives its
 * slot back, including an ext_proc local reply on the response headers (the upstream body is never read) and a
 * processor failing there, so a healthy route is never refused with 503 UO afterwards.
 */
import * as grpc from '@grpc/grpc-js';
import { parseManifests } from '../../../lib/dataplane/manifests';
import { startDataPlane, type RunningDataPlane } from '../../../lib/dataplane/server';
import { send } from '../../conformance/support';
import { startFakeProcessor, type FakeProcessor } from '../ext-proc/support';

const LIMIT = 2;

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
kind: BackendTrafficPolicy
metadata: {name: limited, namespace: ns}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}]
  circuitBreaker: {maxParallelRequests: ${LIMIT}}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyExtensionPolicy
metadata: {name: eep, namespace: ns}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}]
  # A loaded machine can miss Envoy Gateway's 200 ms default; this test is about slots, not about the timer.
  extProc: [{backendRefs: [{name: processor, port: 9002}], processingMode: {response: {}}, messageTimeout: 10s}]
`;

type Answer = 'continue' | 'immediate' | 'fail';

describe('the route cluster circuit breaker with ext_proc answering on the response headers', () => {
  let answer: Answer = 'continue';
  let processor: FakeProcessor;
  let plane: RunningDataPlane;
  let address: string;

  beforeAll(async () => {
    processor = await startFakeProcessor(async (stream) => {
      await stream.expect('responseHeaders');
      if (answer === 'fail') return stream.finish(grpc.status.INTERNAL, 'boom');
      if (answer === 'immediate') {
        stream.send({ immediateResponse: { status: { code: 418 }, body: Buffer.from('from the processor') } });
      } else {
        stream.send({ responseHeaders: { response: {} } });
      }
      // Whatever follows (nothing in this mode) is ignored until the filter closes the stream.
      while (await stream.next());
    });
    plane = await startDataPlane({
      echo: true,
      objects: parseManifests(MANIFESTS),
      services: (namespace, name, port) =>
        namespace === 'ns' && name === 'processor' && port === 9002 ? processor.address : undefined,
    });
    address = plane.address('ns', 'gw', 80);
  });

  afterAll(async () => {
    await plane?.close();
    await processor?.close();
  });

  it('gives the slot back after each local reply, so a normal request still passes (not 503 UO)', async () => {
    answer = 'continue';
    expect((await send(address, { path: '/before' })).status).toBe(200);

    answer = 'immediate';
    for (let i = 0; i < 3 * LIMIT; i++) {
      const result = await send(address, { path: `/immediate/${i}` });
      expect({ status: result.status, body: result.body }).toEqual({ status: 418, body: 'from the processor' });
    }
    answer = 'fail';
    for (let i = 0; i < 3 * LIMIT; i++) {
      // Envoy's answer for a processor failing without failure_mode_allow.
      expect((await send(address, { path: `/fail/${i}` })).status).toBe(500);
    }

    answer = 'continue';
    const after = await send(address, { path: '/after' });
    expect(after.status).toBe(200);
    // And the slots are free for requests at once, up to the limit.
    const parallel = await Promise.all(Array.from({ length: LIMIT }, (_, i) => send(address, { path: `/p/${i}` })));
    expect(parallel.map((r) => r.status)).toEqual(Array(LIMIT).fill(200));
  });
});
