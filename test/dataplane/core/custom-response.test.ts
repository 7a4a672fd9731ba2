/**
 * BackendTrafficPolicy `responseOverride` as Envoy Gateway v1.9 builds Envoy's custom_response filter and Envoy runs
 * it: rules in order (first match wins), status AND header AND source (Local / Backend) predicates, the filter first
 * in the chain (so it sees api_key_auth's and ext_proc's local replies), a route policy's list replacing the
 * gateway's when it merges, and the rule the constructs emit for Envoy's own 401s.
 */
import * as http from 'node:http';
import { parse } from 'yaml';
import { authenticationErrorOverride } from '../../../lib/auth-error-response';
import {
  matchingOverride,
  ResponseOverridePolicyError,
  responseOverrideFromPolicy,
} from '../../../lib/dataplane/custom-response';
import { HeaderMap } from '../../../lib/dataplane/filter';
import { VIA_UPSTREAM } from '../../../lib/dataplane/filter-manager';
import type { KubeObject } from '../../../lib/dataplane/model';
import { type RunningDataPlane, startDataPlane } from '../../../lib/dataplane/server';
import { testStream } from '../rate-limit/stream';
import { setHeader, startFakeProcessor, type FakeProcessor } from '../ext-proc/support';

const docs = (text: string): KubeObject[] =>
  text
    .split(/^---$/m)
    .map((d) => parse(d) as KubeObject)
    .filter(Boolean);

const GATEWAY = '{group: gateway.networking.k8s.io, kind: Gateway, name: gw}';
const ROUTE = '{group: gateway.networking.k8s.io, kind: HTTPRoute, name: chat}';
const KEYS_OVERRIDE = authenticationErrorOverride({ apiKeys: true, jwt: false })!;
const KEYS_BODY = KEYS_OVERRIDE[0].response.body!.inline;

function btp(name: string, target: string, fields: Record<string, unknown>): string {
  return [
    'apiVersion: gateway.envoyproxy.io/v1alpha1',
    'kind: BackendTrafficPolicy',
    `metadata: {name: ${name}, namespace: ai}`,
    'spec:',
    `  targetRefs: [${target}]`,
    ...Object.entries(fields).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`),
  ].join('\n');
}

function policy(fields: Record<string, unknown>): KubeObject {
  return docs(btp('p', GATEWAY, fields))[0];
}

/** Gateway, a backend Service and the route `chat` on `/`, with the gateway's API keys (team: sk-amy). */
function base(extra: string[] = []): string {
  return [
    `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ai}
spec: {gatewayClassName: eg, listeners: [{name: http, port: 80, protocol: HTTP}]}
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: ai}
spec: {ports: [{port: 8080}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: chat, namespace: ai}
spec:
  parentRefs: [{name: gw}]
  rules: [{matches: [{path: {type: PathPrefix, value: /}}], backendRefs: [{name: backend, port: 8080}]}]
---
apiVersion: v1
kind: Secret
metadata: {name: team, namespace: ai}
data: {amy: ${Buffer.from('sk-amy').toString('base64')}}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata: {name: keys, namespace: ai}
spec:
  targetRefs: [${GATEWAY}]
  apiKeyAuth:
    credentialRefs: [{group: '', kind: Secret, name: team}]
    extractFrom: [{headers: [authorization]}, {headers: [x-api-key]}]
    forwardClientIDHeader: x-ai-gateway-client-id
    sanitize: true
`,
    ...extra,
  ].join('\n---\n');
}

function get(
  address: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const url = new URL(address);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: '/v1/chat/completions', method: 'GET', agent: false, headers },
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

describe('responseOverride settings (Envoy Gateway buildResponseOverride)', () => {
  it('reads status values and ranges, header matches, the source (All by default) and the response', () => {
    const settings = responseOverrideFromPolicy(
      policy({
        responseOverride: [
          {
            match: {
              statusCodes: [
                { type: 'Value', value: 401 },
                { type: 'Range', range: { start: 500, end: 503 } },
              ],
              responseHeaders: [{ name: 'Content-Type', value: { type: 'Prefix', value: 'text/plain' } }],
            },
            source: 'Local',
            response: { contentType: 'application/json', body: { type: 'Inline', inline: '{}' }, statusCode: 418 },
          },
          { match: { statusCodes: [{ type: 'Value', value: 404 }] }, response: {} },
        ],
      }),
    );
    expect(settings).toEqual({
      policy: 'ai/p',
      rules: [
        {
          statusCodes: [
            { type: 'Value', value: 401 },
            { type: 'Range', start: 500, end: 503 },
          ],
          responseHeaders: [{ name: 'content-type', type: 'Prefix', value: 'text/plain' }],
          source: 'Local',
          response: { contentType: 'application/json', body: '{}', statusCode: 418 },
        },
        { statusCodes: [{ type: 'Value', value: 404 }], responseHeaders: [], source: 'All', response: { body: '' } },
      ],
    });
    expect(responseOverrideFromPolicy(policy({}))).toBeUndefined();
  });

  it('refuses what it does not model: redirects, ConfigMap bodies, command operators, added headers', () => {
    const rule = (extra: Record<string, unknown>) =>
      policy({ responseOverride: [{ match: { statusCodes: [{ type: 'Value', value: 401 }] }, ...extra }] });
    for (const extra of [
      { redirect: { scheme: 'https' } },
      { response: { body: { type: 'ValueRef', valueRef: { group: '', kind: 'ConfigMap', name: 'x' } } } },
      { response: { body: { type: 'Inline', inline: '%RESPONSE_CODE%' } } },
      { response: { header: { set: [{ name: 'x', value: 'y' }] } } },
    ]) {
      expect(() => responseOverrideFromPolicy(rule(extra))).toThrow(ResponseOverridePolicyError);
    }
  });
});

describe('custom_response matching (status AND headers AND source, first match wins)', () => {
  const settings = responseOverrideFromPolicy(
    policy({
      responseOverride: [
        ...KEYS_OVERRIDE,
        {
          match: { statusCodes: [{ type: 'Range', range: { start: 500, end: 599 } }] },
          source: 'Backend',
          response: {},
        },
      ],
    }),
  )!;
  const head = (status: number, contentType?: string) =>
    new HeaderMap([[':status', String(status)], ...(contentType ? [['content-type', contentType]] : [])] as [
      string,
      string,
    ][]);
  const stream = (details: string) => {
    const s = testStream();
    return { ...s, responseCodeDetails: details };
  };

  it("matches Envoy's plain-text 401 and nothing else", () => {
    const local = stream('unkonwn_api_key');
    expect(matchingOverride(settings, local, head(401, 'text/plain'))).toBe(settings.rules[0]);
    // The processor's own 401 (JSON), a 401 without a body (no content type), a 403: left alone.
    expect(matchingOverride(settings, local, head(401, 'application/json'))).toBeUndefined();
    expect(matchingOverride(settings, local, head(401))).toBeUndefined();
    expect(matchingOverride(settings, local, head(403, 'text/plain'))).toBeUndefined();
    // A provider's own plain-text 401 is not Envoy's.
    expect(matchingOverride(settings, stream(VIA_UPSTREAM), head(401, 'text/plain'))).toBeUndefined();
  });

  it('`Backend` matches only what the upstream sent; a range is inclusive', () => {
    expect(matchingOverride(settings, stream(VIA_UPSTREAM), head(599))).toBe(settings.rules[1]);
    expect(matchingOverride(settings, stream(VIA_UPSTREAM), head(500))).toBe(settings.rules[1]);
    expect(matchingOverride(settings, stream('upstream_reset_before_response_started'), head(503))).toBeUndefined();
  });
});

describe('responseOverride through the data plane', () => {
  let plane: RunningDataPlane | undefined;
  let processor: FakeProcessor | undefined;
  let upstream: http.Server | undefined;
  afterEach(async () => {
    await plane?.close();
    await processor?.close();
    await new Promise((resolve) => (upstream ? upstream.close(resolve) : resolve(undefined)));
    plane = undefined;
    processor = undefined;
    upstream = undefined;
  });

  it("replaces api_key_auth's 401 with the JSON body both SDKs read; a valid key is not touched", async () => {
    plane = await startDataPlane({
      objects: docs(base([btp('chat', ROUTE, { mergeType: 'StrategicMerge', responseOverride: KEYS_OVERRIDE })])),
      echo: true,
    });
    const address = plane.address('ai', 'gw', 80);
    const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer sk-wrong' }, { 'x-api-key': 'sk-wrong' }];
    for (const headers of attempts) {
      const denied = await get(address, headers);
      expect(denied.status).toBe(401);
      expect(denied.headers['content-type']).toBe('application/json');
      expect(denied.headers['content-length']).toBe(String(Buffer.byteLength(KEYS_BODY)));
      expect(denied.body).toBe(KEYS_BODY);
      expect(JSON.parse(denied.body)).toEqual({
        type: 'error',
        error: {
          type: 'authentication_error',
          message: 'missing or invalid API key',
          param: null,
          code: 'invalid_api_key',
        },
      });
    }
    expect((await get(address, { authorization: 'Bearer sk-amy' })).status).toBe(200);
  });

  it("a provider's own plain-text 401 passes through (source Local)", async () => {
    upstream = http.createServer((_req, res) => res.writeHead(401, { 'content-type': 'text/plain' }).end('nope'));
    await new Promise<void>((resolve) => upstream!.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as { port: number }).port;
    plane = await startDataPlane({
      objects: docs(base([btp('chat', ROUTE, { mergeType: 'StrategicMerge', responseOverride: KEYS_OVERRIDE })])),
      backendOverrides: { 'ai/backend': `http://127.0.0.1:${port}` },
    });
    const answer = await get(plane.address('ai', 'gw', 80), { authorization: 'Bearer sk-amy' });
    expect(answer.status).toBe(401);
    expect(answer.body).toBe('nope');
  });

  it("leaves the processor's JSON 401 (ext_proc immediate response) alone, but not a plain-text one", async () => {
    let contentType: string | undefined = 'application/json';
    processor = await startFakeProcessor(async (stream) => {
      for (let message = await stream.next(); message; message = await stream.next()) {
        if (message.request === 'requestHeaders')
          stream.send({
            immediateResponse: {
              status: { code: 401 },
              headers: { setHeaders: contentType ? [setHeader('content-type', contentType)] : [] },
              body: Buffer.from('{"error":{"message":"this route needs a consumer"}}'),
              details: 'consumer_required',
            },
          });
        else stream.send({ [message.request]: { response: {} } });
      }
    });
    const eep = `
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyExtensionPolicy
metadata: {name: processor, namespace: ai}
spec:
  targetRefs: [${ROUTE}]
  extProc:
  - backendRefs: [{name: processor, port: 9002}]
    messageTimeout: 5s
    processingMode: {request: {}, response: {}}
---
apiVersion: v1
kind: Service
metadata: {name: processor, namespace: ai}
spec: {ports: [{port: 9002}]}
`;
    plane = await startDataPlane({
      objects: docs(base([eep, btp('chat', ROUTE, { mergeType: 'StrategicMerge', responseOverride: KEYS_OVERRIDE })])),
      echo: true,
      backendOverrides: { 'ai/processor': `http://${processor.address}` },
    });
    const address = plane.address('ai', 'gw', 80);
    const own = await get(address, { authorization: 'Bearer sk-amy' });
    expect(own.status).toBe(401);
    expect(own.headers['content-type']).toBe('application/json');
    expect(own.body).toBe('{"error":{"message":"this route needs a consumer"}}');
    // The same reply as text/plain would be taken for Envoy's: the content type is what keeps it out.
    contentType = 'text/plain';
    const plain = await get(address, { authorization: 'Bearer sk-amy' });
    expect(plain.body).toBe(KEYS_BODY);
  });

  it("merges like EG: a merging route policy keeps the gateway's rules, its own list replaces them", async () => {
    const gatewayRule = {
      match: { statusCodes: [{ type: 'Value', value: 401 }] },
      response: { body: { type: 'Inline', inline: 'gateway' } },
    };
    const routeRule = {
      match: { statusCodes: [{ type: 'Value', value: 401 }] },
      response: { body: { type: 'Inline', inline: 'route' } },
    };
    const gatewayPolicy = btp('gw', GATEWAY, { responseOverride: [gatewayRule] });
    const bodyWith = async (routePolicy: Record<string, unknown> | undefined) => {
      const extra = [gatewayPolicy, ...(routePolicy ? [btp('chat', ROUTE, routePolicy)] : [])];
      const running = await startDataPlane({ objects: docs(base(extra)), echo: true });
      try {
        return (await get(running.address('ai', 'gw', 80))).body;
      } finally {
        await running.close();
      }
    };
    expect(await bodyWith(undefined)).toBe('gateway');
    expect(await bodyWith({ mergeType: 'StrategicMerge', circuitBreaker: { maxParallelRequests: 10 } })).toBe(
      'gateway',
    );
    expect(await bodyWith({ mergeType: 'StrategicMerge', responseOverride: [routeRule] })).toBe('route');
    // Without a mergeType the route's policy replaces the gateway's whole: Envoy's own 401 again.
    expect(await bodyWith({ circuitBreaker: { maxParallelRequests: 10 } })).toBe('Client authentication failed.');
  });
});
