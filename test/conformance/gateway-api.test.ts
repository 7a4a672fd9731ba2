/**
 * Gateway API v1.6.1 HTTPRoute conformance cases (../shared/conformance/gateway-api/*.json), every case, run
 * against the local data plane in echo mode over real HTTP: the route statuses first, then each request with the
 * suite's comparison rules (see ../shared/conformance/README.md, "Defaults and meaning").
 *
 * Deviations: none in the outcomes. Two differences in the harness, both from running on one machine:
 * - Each Gateway is served on its own local port instead of its own IP address; a request without a host sends
 *   `Host: 127.0.0.1` (the address the suite would send, an IP that matches only listeners and routes without
 *   hostnames).
 * - The echo backend is in-process (the data plane's echo mode): `pod` is `<service>-local`, which starts with the
 *   backend name as the suite requires.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseManifests } from '../../lib/dataplane/manifests';
import type { KubeObject, RouteStatus } from '../../lib/dataplane/model';
import { startDataPlane, type RunningDataPlane } from '../../lib/dataplane/server';
import type { EchoResponseBody } from '../../lib/dataplane/echo';
import { describeWithShared } from '../support/shared';
import { requestUri, send, type HttpResult } from './support';

interface GatewayTarget {
  namespace: string;
  name: string;
  port: number;
}
interface ConditionExpectation {
  status: string;
  reason: string;
}
interface RouteExpectation {
  namespace: string;
  name: string;
  parent: string;
  parentSections?: string[];
  accepted: true | ConditionExpectation;
  resolvedRefs: true | ConditionExpectation | null;
}
interface CaseRequest {
  host: string | null;
  path: string;
  method: string;
  headers: Record<string, string>;
  query: Record<string, string>;
}
interface CaseExpect {
  status: number;
  backend: string | null;
  namespace: string | null;
  request?: {
    path?: string;
    query?: Record<string, string>;
    host?: string;
    headers?: Record<string, string>;
    absentHeaders?: string[];
  };
  response?: { headers?: Record<string, string>; absentHeaders?: string[] };
  redirect?: { scheme: string; host?: string; path: string };
  distribution?: { weights: Record<string, number>; samples: number; tolerance: number; maxAttempts: number };
  repeat?: number;
  backendFromRequestHeader?: string;
}
interface ConformanceCase {
  group?: string;
  phase?: string;
  gateway?: GatewayTarget;
  request: CaseRequest;
  backendSetsResponseHeaders?: Record<string, string>;
  expect: CaseExpect;
  note?: string;
}
interface ConformanceTest {
  test: string;
  manifests: string;
  additionalManifests?: string[];
  baseManifests: string;
  gateway: GatewayTarget;
  routes: RouteExpectation[];
  statusChecks?: Array<{
    kind: string;
    namespace: string;
    name: string;
    parent?: string;
    conditions?: ConditionExpectation[] & { type?: string }[];
    listeners?: Array<{ name: string; attachedRoutes: number }>;
  }>;
  phases?: Array<{ name: string; actions: Array<{ delete: { kind: string; namespace: string; name: string } }> }>;
  cases: ConformanceCase[];
}

function loadObjects(dir: string, test: ConformanceTest): KubeObject[] {
  const files = [test.baseManifests, test.manifests, ...(test.additionalManifests ?? [])];
  return files.flatMap((file) => {
    const text = fs.readFileSync(path.join(dir, file), 'utf8').replaceAll('{GATEWAY_CLASS_NAME}', 'envoy-gateway');
    return parseManifests(text, file);
  });
}

function conditionOf(status: RouteStatus | undefined, parent: string, section: string | undefined, type: string) {
  const [namespace, name] = parent.split('/');
  const parentStatus = status?.parents.find(
    (p) =>
      p.parentRef.namespace === namespace &&
      p.parentRef.name === name &&
      (section === undefined || p.parentRef.sectionName === section),
  );
  return parentStatus?.conditions.find((c) => c.type === type);
}

function expectCondition(
  actual: { status: string; reason: string } | undefined,
  expected: true | ConditionExpectation,
  what: string,
): void {
  const want = expected === true ? { status: 'True' } : { status: expected.status, reason: expected.reason };
  expect({
    what,
    ...(actual ? { status: actual.status, ...(expected === true ? {} : { reason: actual.reason }) } : {}),
  }).toEqual({ what, ...want });
}

/** Header values as the echo backend saw them, compared by name without case and joined with `,`. */
function seenHeader(echo: EchoResponseBody, name: string): string | undefined {
  const values = echo.headers[name.toLowerCase()];
  return values === undefined ? undefined : values.join(',');
}

function echoSetHeader(values: Record<string, string> | undefined): string {
  return Object.entries(values ?? {})
    .map(([k, v]) => `${k}:${v}`)
    .join(',');
}

async function sendCase(
  plane: RunningDataPlane,
  target: GatewayTarget,
  c: ConformanceCase,
  extraHeaders: Record<string, string> = {},
): Promise<HttpResult> {
  return send(plane.address(target.namespace, target.name, target.port), {
    method: c.request.method,
    path: requestUri(c.request.path, c.request.query),
    host: c.request.host ?? undefined,
    headers: {
      ...c.request.headers,
      'X-Echo-Set-Header': echoSetHeader(c.backendSetsResponseHeaders),
      ...extraHeaders,
    },
  });
}

function checkResponse(c: ConformanceCase, result: HttpResult): void {
  const e = c.expect;
  expect({ status: result.status, body: result.status === e.status ? undefined : result.body }).toEqual({
    status: e.status,
    body: undefined,
  });
  if (e.redirect) {
    const location = new URL(result.headers.location);
    expect(location.protocol).toBe(`${e.redirect.scheme}:`);
    if (e.redirect.host !== undefined) expect(location.hostname).toBe(e.redirect.host);
    expect(location.pathname).toBe(e.redirect.path);
    if (e.redirect.scheme === 'http') expect(['', '80']).toContain(location.port);
  }
  for (const [name, value] of Object.entries(e.response?.headers ?? {}))
    expect([name, result.headers[name.toLowerCase()]]).toEqual([name, value]);
  for (const name of e.response?.absentHeaders ?? [])
    expect([name, result.headers[name.toLowerCase()]]).toEqual([name, undefined]);
  if (e.status !== 200 && e.status !== 204) return;

  const echo = JSON.parse(result.body) as EchoResponseBody;
  if (e.backend !== null) expect(echo.pod.startsWith(e.backend)).toBe(true);
  if (e.backend !== null) expect(echo.service).toBe(e.backend);
  if (e.namespace !== null) expect(echo.namespace).toBe(e.namespace);
  if (!e.request) {
    expect(echo.method).toBe(c.request.method);
    expect(echo.path).toBe(requestUri(c.request.path, c.request.query));
    for (const [name, value] of Object.entries(c.request.headers))
      expect([name, seenHeader(echo, name)]).toEqual([name, value]);
    return;
  }
  if (e.request.path !== undefined) expect(echo.path).toBe(requestUri(e.request.path, e.request.query));
  if (e.request.host !== undefined) expect(echo.host).toBe(e.request.host);
  for (const [name, value] of Object.entries(e.request.headers ?? {}))
    expect([name, seenHeader(echo, name)]).toEqual([name, value]);
  for (const name of e.request.absentHeaders ?? []) expect([name, seenHeader(echo, name)]).toEqual([name, undefined]);
}

/**
 * The weight check of conformance/utils/weight: shares within tolerance, only weighted backends seen; retried up to
 * maxAttempts.
 */
async function checkDistribution(plane: RunningDataPlane, target: GatewayTarget, c: ConformanceCase): Promise<void> {
  const d = c.expect.distribution!;
  let lastProblem = '';
  for (let attempt = 0; attempt < d.maxAttempts; attempt++) {
    const counts = new Map<string, number>();
    for (let batch = 0; batch < d.samples; batch += 10) {
      const results = await Promise.all(
        Array.from({ length: Math.min(10, d.samples - batch) }, (_, i) =>
          sendCase(plane, target, c, { 'X-Jitter': String(batch + i) }),
        ),
      );
      for (const r of results) {
        expect(r.status).toBe(200);
        const service = (JSON.parse(r.body) as EchoResponseBody).service;
        counts.set(service, (counts.get(service) ?? 0) + 1);
      }
    }
    const expected = Object.entries(d.weights).filter(([, w]) => w > 0);
    const problems: string[] = [];
    if (counts.size !== expected.length) problems.push(`saw ${[...counts.keys()].join(', ')}`);
    for (const [backend, weight] of expected) {
      const share = (counts.get(backend) ?? 0) / d.samples;
      if (Math.abs(share - weight) > d.tolerance) problems.push(`${backend}: ${share} vs ${weight}`);
    }
    if (problems.length === 0) return;
    lastProblem = problems.join('; ');
  }
  throw new Error(`weight distribution off after ${d.maxAttempts} attempts: ${lastProblem}`);
}

describeWithShared(
  'conformance/gateway-api',
  'Gateway API HTTPRoute conformance against the local data plane',
  (dir) => {
    const files = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort();

    it('has the 22 tests of the reference data', () => {
      expect(files.length).toBe(22);
    });

    for (const file of files) {
      const test = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as ConformanceTest;
      describe(`${test.test} (${file})`, () => {
        const phaseNames = test.phases?.map((p) => p.name) ?? [undefined];
        for (const [phaseIndex, phaseName] of phaseNames.entries()) {
          describe(phaseName ? `phase ${phaseName}` : 'cases', () => {
            let plane: RunningDataPlane;
            beforeAll(async () => {
              let objects = loadObjects(dir, test);
              for (const phase of test.phases?.slice(0, phaseIndex + 1) ?? []) {
                for (const { delete: gone } of phase.actions) {
                  objects = objects.filter(
                    (o) =>
                      !(
                        o.kind === gone.kind &&
                        o.metadata?.namespace === gone.namespace &&
                        o.metadata?.name === gone.name
                      ),
                  );
                }
              }
              plane = await startDataPlane({ objects, echo: true });
            });
            afterAll(() => plane?.close());

            if (phaseIndex === 0) {
              it('sets the route statuses the suite checks', () => {
                for (const route of test.routes) {
                  const status = plane.model.routeStatuses.find(
                    (s) => s.route.namespace === route.namespace && s.route.name === route.name,
                  );
                  for (const section of route.parentSections ?? [undefined]) {
                    const where = `${route.namespace}/${route.name} on ${route.parent}${section ? `/${section}` : ''}`;
                    expectCondition(
                      conditionOf(status, route.parent, section, 'Accepted'),
                      route.accepted,
                      `${where} Accepted`,
                    );
                    if (route.resolvedRefs !== null) {
                      expectCondition(
                        conditionOf(status, route.parent, section, 'ResolvedRefs'),
                        route.resolvedRefs,
                        `${where} ResolvedRefs`,
                      );
                    }
                  }
                }
                for (const check of test.statusChecks ?? []) {
                  if (check.kind === 'HTTPRoute') {
                    const status = plane.model.routeStatuses.find(
                      (s) => s.route.namespace === check.namespace && s.route.name === check.name,
                    );
                    for (const cond of check.conditions ?? []) {
                      const type = (cond as { type: string }).type;
                      expectCondition(
                        conditionOf(status, check.parent!, undefined, type),
                        cond,
                        `${check.name} ${type}`,
                      );
                    }
                  } else if (check.kind === 'Gateway') {
                    const gateway = plane.model.gateways.find(
                      (g) => g.namespace === check.namespace && g.name === check.name,
                    );
                    for (const listener of check.listeners ?? []) {
                      const model = gateway?.listeners.find((l) => l.sectionName === listener.name);
                      expect([listener.name, model?.attachedRoutes]).toEqual([listener.name, listener.attachedRoutes]);
                    }
                  } else throw new Error(`unknown status check kind ${check.kind}`);
                }
              });
            }

            const cases = test.cases.filter((c) => (c.phase ?? phaseNames[0]) === phaseName);
            cases.forEach((c, i) => {
              const target = c.gateway ?? test.gateway;
              const label =
                `${i + 1}: ${c.request.method} ${c.request.host ?? '<gateway address>'} ` +
                `${requestUri(c.request.path, c.request.query)} -> ` +
                `${c.expect.status}${c.group ? ` (${c.group})` : ''}`;
              it(
                label,
                async () => {
                  checkResponse(c, await sendCase(plane, target, c));
                  if (c.expect.distribution) await checkDistribution(plane, target, c);
                  for (let n = 0; n < (c.expect.repeat ?? 0); n++) {
                    const result = await sendCase(plane, target, c);
                    expect(result.status).toBe(200);
                    const echo = JSON.parse(result.body) as EchoResponseBody;
                    const values = echo.headers[c.expect.backendFromRequestHeader!.toLowerCase()] ?? [];
                    expect(values.length).toBe(1);
                    expect(echo.service).toBe(values[0]);
                  }
                },
                60_000,
              );
            });
          });
        }
      });
    }
  },
);
