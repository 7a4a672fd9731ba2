/**
 * The rate-limit fields governance budgets use, through the whole local data plane with a scripted processor:
 * `limit.fromMetadata` written by ext_proc in its request-body answer, `shadowMode` (and the service turning it off
 * for a per-request limit), Week/Month/Year fixed windows from the Unix epoch, `xRateLimitHeaders: DraftVersion03`,
 * `x-envoy-ratelimited`, the processor replacing the 429's body in its response-headers phase, and early header
 * removal of gateway-owned identity headers.
 */
import * as http from 'node:http';
import Redis from 'ioredis';
import { parse } from 'yaml';
import type { EchoResponseBody } from '../../../lib/dataplane/echo';
import { toStruct } from '../../../lib/dataplane/ext-proc/protocol';
import type { KubeObject } from '../../../lib/dataplane/model';
import { type RunningDataPlane, startDataPlane } from '../../../lib/dataplane/server';
import { redisUrlForTests } from '../../support/redis';
import { codec, setHeader, startFakeProcessor, type FakeProcessor, type Message } from '../ext-proc/support';

const redisUrl = redisUrlForTests('the governance rate-limit tests against a real Redis');

const CONSUMER_HEADER = 'x-ai-gateway-consumer';
const NAMESPACE = 'io.envoy.ai_gateway';
const WEEK = 604_800;
const MONTH = 2_592_000;
const YEAR = 31_536_000;

const docs = (text: string): KubeObject[] =>
  text
    .split(/^---$/m)
    .map((d) => parse(d) as KubeObject)
    .filter(Boolean);

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

function post(address: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const url = new URL(address);
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: '/v1/chat',
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': String(payload.length), ...headers },
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
    req.end(payload);
  });
}

/**
 * What the scripted processor does with a request body `{consumer, limit}`: sets the consumer header (the processor
 * maps the client id to a consumer) and, when `limit` is given, writes it as the per-request limit in the same
 * body answer, before the rate-limit filter builds its descriptors.
 */
interface Ask {
  readonly consumer?: string;
  readonly limit?: { readonly requests_per_unit: unknown; readonly unit: unknown };
  /** A cost the processor reports (tokens or money), charged at stream end. */
  readonly cost?: number;
}

/** A processor in the shape ours has: request headers + buffered body, response headers. */
async function startProcessor(replace429: boolean): Promise<FakeProcessor> {
  codec();
  return startFakeProcessor(async (stream) => {
    for (let message = await stream.next(); message; message = await stream.next()) {
      if (message.request === 'requestHeaders') stream.send({ requestHeaders: { response: {} } });
      else if (message.request === 'requestBody') {
        const ask = JSON.parse(Buffer.from(message.requestBody.body ?? []).toString() || '{}') as Ask;
        stream.send({
          requestBody: {
            response: ask.consumer
              ? { headerMutation: { setHeaders: [setHeader(CONSUMER_HEADER, ask.consumer)] } }
              : {},
          },
          ...(ask.limit || ask.cost !== undefined
            ? {
                dynamicMetadata: toStruct({
                  [NAMESPACE]: {
                    ...(ask.limit ? { budget: ask.limit } : {}),
                    ...(ask.cost !== undefined ? { cost: ask.cost } : {}),
                  },
                }),
              }
            : {}),
        });
      } else if (message.request === 'responseHeaders') {
        const headers = message.responseHeaders.headers.headers as Message[];
        const value = (name: string) =>
          headers.filter((h) => h.key === name).map((h) => Buffer.from(h.rawValue ?? []).toString())[0];
        if (replace429 && value(':status') === '429') {
          const reset = value('x-ratelimit-reset');
          stream.send({
            responseHeaders: {
              response: {
                status: 1,
                headerMutation: { setHeaders: [setHeader('content-type', 'application/json')] },
                bodyMutation: {
                  body: Buffer.from(
                    JSON.stringify({ error: { type: 'rate_limit_exceeded', resets_in_seconds: Number(reset) } }),
                  ),
                },
              },
            },
          });
        } else stream.send({ responseHeaders: { response: {} } });
      } else {
        stream.send({ [message.request as string]: { response: {} } });
      }
    }
  });
}

function manifests(rules: string, clientTrafficPolicy = ''): KubeObject[] {
  return docs(`
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
apiVersion: v1
kind: Service
metadata: {name: processor, namespace: ai}
spec: {ports: [{port: 9002}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: chat, namespace: ai}
spec:
  parentRefs: [{name: gw}]
  rules: [{matches: [{path: {type: PathPrefix, value: /v1}}], backendRefs: [{name: backend, port: 8080}]}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyExtensionPolicy
metadata: {name: processor, namespace: ai}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]
  extProc:
  - backendRefs: [{name: processor, port: 9002}]
    messageTimeout: 5s
    processingMode:
      request: {body: Buffered}
      response: {}
    metadata: {writableNamespaces: [${NAMESPACE}]}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: budgets, namespace: ai}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]
  rateLimit:
    type: Global
    global:
      rules:
${rules}
${clientTrafficPolicy}`);
}

/** One budget rule per consumer, keyed on the consumer header. */
function rule(limit: string, extra = ''): string {
  return `      - clientSelectors: [{headers: [{name: ${CONSUMER_HEADER}, type: Distinct}]}]
        limit: ${limit}
        xRateLimitHeaders: DraftVersion03
${extra}`;
}

const PER_CONSUMER = `{requests: 4294967295, unit: Month, fromMetadata: {namespace: ${NAMESPACE}, key: budget}}`;

describe.each([['memory', undefined], ...(redisUrl ? [['redis', redisUrl]] : [])] as [string, string | undefined][])(
  'governance budgets through the data plane (%s counters)',
  (_store, url) => {
    let plane: RunningDataPlane | undefined;
    let processor: FakeProcessor | undefined;
    const consumer = (name: string) => `${name}-${Math.random().toString(36).slice(2)}`;

    afterEach(async () => {
      await plane?.close();
      await processor?.close();
      plane = undefined;
      processor = undefined;
    });

    async function start(objects: KubeObject[], replace429 = true): Promise<string> {
      processor = await startProcessor(replace429);
      plane = await startDataPlane({
        objects,
        echo: true,
        backendOverrides: { 'ai/processor': `http://${processor.address}` },
        ...(url ? { redisUrl: url } : {}),
      });
      return plane.address('ai', 'gw', 80);
    }

    it('applies the per-request limit the processor wrote; the processor replaces the 429 body', async () => {
      const address = await start(manifests(rule(PER_CONSUMER)));
      const alice = consumer('alice');
      const ask = { consumer: alice, limit: { requests_per_unit: 2, unit: 'MONTH' } };
      const first = await post(address, ask);
      expect(first.status).toBe(200);
      // Draft-03 headers on the upstream's answer too, with the 30-day window of the per-request limit.
      expect(first.headers['x-ratelimit-limit']).toBe(`2, 2;w=${MONTH}`);
      expect(first.headers['x-ratelimit-remaining']).toBe('1');
      const now = Math.floor(Date.now() / 1000);
      const reset = Number(first.headers['x-ratelimit-reset']);
      expect(Math.abs(reset - (MONTH - (now % MONTH)))).toBeLessThanOrEqual(2);
      expect((await post(address, ask)).status).toBe(200);
      const limited = await post(address, ask);
      expect(limited.status).toBe(429);
      expect(limited.headers['x-ratelimit-remaining']).toBe('0');
      // EG disables x-envoy-ratelimited unless the ClientTrafficPolicy enables Envoy's headers.
      expect(limited.headers['x-envoy-ratelimited']).toBeUndefined();
      // The processor saw the local reply in its response-headers phase and replaced its (empty) body.
      expect(limited.headers['content-type']).toBe('application/json');
      expect(JSON.parse(limited.body)).toEqual({
        error: { type: 'rate_limit_exceeded', resets_in_seconds: Number(limited.headers['x-ratelimit-reset']) },
      });
      // Another consumer has its own bucket.
      expect((await post(address, { consumer: consumer('bob'), limit: ask.limit })).status).toBe(200);
    });

    it('charges a response cost at stream end against the per-request limit, both from the metadata', async () => {
      const address = await start(
        manifests(
          rule(
            PER_CONSUMER,
            `        cost:
          request: {from: Number, number: 0}
          response: {from: Metadata, metadata: {namespace: ${NAMESPACE}, key: cost}}`,
          ),
        ),
      );
      const kim = consumer('kim');
      const ask = { consumer: kim, limit: { requests_per_unit: 7, unit: 'WEEK' }, cost: 5 };
      const route = 'httproute/ai/chat/rule/0/match/0/*';
      const statsKey = `ai/gw/http.${route}_${route}.rule-0-match-0_${kim}`;
      const charged = async (hits: number) => {
        for (let i = 0; i < 200 && (plane!.rateLimitStats().get(statsKey)?.totalHits ?? 0) < hits; i++)
          await new Promise((resolve) => setTimeout(resolve, 10));
      };
      const first = await post(address, ask);
      // The request-time check charges 0 and sees the whole per-request limit.
      expect([first.status, first.headers['x-ratelimit-limit'], first.headers['x-ratelimit-remaining']]).toEqual([
        200,
        `7, 7;w=${WEEK}`,
        '7',
      ]);
      await charged(5);
      const second = await post(address, ask);
      expect([second.status, second.headers['x-ratelimit-remaining']]).toEqual([200, '2']);
      await charged(10);
      expect((await post(address, ask)).status).toBe(429);
      // Envoy charges the stream-done descriptors of a rate-limited request too (ratelimit.cc onDestroy): this
      // processor wrote the cost in the request phase, so the 429 is charged as well.
      await charged(15);
      if (url) {
        const redis = new Redis(url);
        try {
          const keys = await redis.keys(`*_rule-0-match-0_${kim}_*`);
          const now = Math.floor(Date.now() / 1000);
          // Counted in the override's unit (a week), not the rule's static Month.
          expect(keys.map((k) => Number(k.slice(k.lastIndexOf('_') + 1)))).toEqual([Math.floor(now / WEEK) * WEEK]);
          expect(Number(await redis.get(keys[0]))).toBe(15);
        } finally {
          await redis.quit();
        }
      }
    });

    it.each([
      ['a unit that is not the upper-case enum name', { requests_per_unit: 1, unit: 'Month' }],
      ['a string number', { requests_per_unit: '1', unit: 'MONTH' }],
      ['no metadata at all', undefined],
    ])('falls back to the static limit on %s', async (_what, limit) => {
      const address = await start(manifests(rule(PER_CONSUMER.replace('4294967295', '3'))));
      const ask = { consumer: consumer('carol'), ...(limit ? { limit } : {}) };
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await post(address, ask)).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
    });

    it('a metadata unit of UNKNOWN fails the service call, and the request passes (fail open)', async () => {
      const address = await start(manifests(rule(PER_CONSUMER.replace('4294967295', '0'))));
      const ask = { consumer: consumer('dan'), limit: { requests_per_unit: 0, unit: 'UNKNOWN' } };
      const answer = await post(address, ask);
      expect(answer.status).toBe(200);
      expect(answer.headers['x-ratelimit-limit']).toBeUndefined();
    });

    it('shadow mode never blocks and counts the over-limit hits; a per-request limit turns it off', async () => {
      const address = await start(manifests(rule(PER_CONSUMER.replace('4294967295', '1'), '        shadowMode: true')));
      const erin = consumer('erin');
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await post(address, { consumer: erin })).status);
      expect(statuses).toEqual([200, 200, 200]);
      const stats = plane!.rateLimitStats();
      // The configured limit's stats name the Distinct level by its key alone (all consumers together).
      const key = [...stats.keys()].find((k) => k.endsWith('.rule-0-match-0'))!;
      expect(key).toBe(
        'ai/gw/http.httproute/ai/chat/rule/0/match/0/*_httproute/ai/chat/rule/0/match/0/*.rule-0-match-0',
      );
      expect(stats.get(key)).toEqual({ totalHits: 3, withinLimit: 1, overLimit: 2, shadowMode: 2 });
      // envoyproxy/ratelimit: "When limit override is provided by envoy config, we don't want to enable shadow_mode".
      const frank = consumer('frank');
      const ask = { consumer: frank, limit: { requests_per_unit: 1, unit: 'MONTH' } };
      expect([(await post(address, ask)).status, (await post(address, ask)).status]).toEqual([200, 429]);
      const overridden = plane!
        .rateLimitStats()
        .get(
          `ai/gw/http.httproute/ai/chat/rule/0/match/0/*_httproute/ai/chat/rule/0/match/0/*.rule-0-match-0_${frank}`,
        );
      expect(overridden).toEqual({ totalHits: 2, withinLimit: 1, overLimit: 1, shadowMode: 0 });
    });

    it.each([
      ['Week', 'WEEK', WEEK],
      ['Month', 'MONTH', MONTH],
      ['Year', 'YEAR', YEAR],
    ])('counts %s in fixed windows from the Unix epoch', async (unit, envoyUnit, seconds) => {
      const address = await start(manifests(rule(`{requests: 5, unit: ${unit}}`)));
      const who = consumer('gina');
      const answer = await post(address, { consumer: who });
      const now = Math.floor(Date.now() / 1000);
      expect(answer.headers['x-ratelimit-limit']).toBe(`5, 5;w=${seconds}`);
      expect(Math.abs(Number(answer.headers['x-ratelimit-reset']) - (seconds - (now % seconds)))).toBeLessThanOrEqual(
        2,
      );
      // The same window through a per-request limit of that unit.
      const viaMetadata = await start2(envoyUnit);
      expect(viaMetadata).toBe(`7, 7;w=${seconds}`);
      if (url) {
        const redis = new Redis(url);
        try {
          const start = Math.floor(now / seconds) * seconds;
          const keys = await redis.keys(`*_rule-0-match-0_${who}_*`);
          expect(keys.map((k) => Number(k.slice(k.lastIndexOf('_') + 1)))).toEqual([start]);
          const ttl = await redis.ttl(keys[0]);
          expect(ttl).toBeGreaterThan(seconds - 5);
          expect(ttl).toBeLessThanOrEqual(seconds);
          // A week window starts on a Thursday (1970-01-01 was one), 00:00 UTC.
          if (unit === 'Week') expect(new Date(start * 1000).toISOString()).toMatch(/T00:00:00\.000Z$/);
          if (unit === 'Week') expect(new Date(start * 1000).getUTCDay()).toBe(4);
        } finally {
          await redis.quit();
        }
      }

      async function start2(name: string): Promise<string | undefined> {
        const ask = { consumer: consumer('hank'), limit: { requests_per_unit: 7, unit: name } };
        await plane!.close();
        await processor!.close();
        const next = await start(manifests(rule(PER_CONSUMER)));
        return (await post(next, ask)).headers['x-ratelimit-limit'] as string | undefined;
      }
    });

    it('adds x-envoy-ratelimited with enableEnvoyHeaders; disableRateLimitHeaders drops x-ratelimit-*', async () => {
      const ctp = (headers: string) => `---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: client, namespace: ai}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]
  headers: ${headers}
`;
      const limitRule = `      - clientSelectors: [{headers: [{name: ${CONSUMER_HEADER}, type: Distinct}]}]
        limit: {requests: 1, unit: Day}
`;
      let address = await start(manifests(limitRule, ctp('{enableEnvoyHeaders: true}')), false);
      const ivy = consumer('ivy');
      await post(address, { consumer: ivy });
      const limited = await post(address, { consumer: ivy });
      expect(limited.status).toBe(429);
      expect(limited.headers['x-envoy-ratelimited']).toBe('true');
      expect(limited.headers['x-ratelimit-limit']).toBe('1, 1;w=86400');
      expect(limited.body).toBe('');
      await plane!.close();
      await processor!.close();

      address = await start(manifests(limitRule, ctp('{disableRateLimitHeaders: true}')), false);
      const jo = consumer('jo');
      expect((await post(address, { consumer: jo })).headers['x-ratelimit-limit']).toBeUndefined();
      const off = await post(address, { consumer: jo });
      expect(off.status).toBe(429);
      expect(off.headers['x-ratelimit-limit']).toBeUndefined();
      expect(off.headers['x-envoy-ratelimited']).toBeUndefined();
    });

    it('early header removal strips every listed header before routing, filters and budgets', async () => {
      const ctp = `---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: client, namespace: ai}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]
  headers:
    earlyRequestHeaders: {remove: [${CONSUMER_HEADER}, x-ai-gateway-client-id, X-Other]}
`;
      const address = await start(manifests(rule('{requests: 1, unit: Hour}'), ctp));
      const spoofed = consumer('spoofed');
      // The processor sets no consumer here: a client's own value must not reach the budget or the backend.
      const answers: Answer[] = [];
      for (let i = 0; i < 3; i++) {
        answers.push(
          await post(address, {}, { [CONSUMER_HEADER]: spoofed, 'x-ai-gateway-client-id': 'root', 'x-other': 'x' }),
        );
      }
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
      const seen = (JSON.parse(answers[0].body) as EchoResponseBody).headers;
      expect(seen[CONSUMER_HEADER]).toBeUndefined();
      expect(seen['x-ai-gateway-client-id']).toBeUndefined();
      expect(seen['x-other']).toBeUndefined();
      expect(seen['content-type']).toEqual(['application/json']);
    });
  },
);
