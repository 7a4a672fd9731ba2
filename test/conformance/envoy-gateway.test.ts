/**
 * Envoy Gateway v1.9.0 translator goldens (../shared/conformance/envoy-gateway/gatewayapi/*.{in,out}.yaml):
 * the translated model must give the same route order per listener, the same direct responses, the same
 * per-route ext_proc enablement and the same HTTPRoute statuses as EG's `xdsIR` and statuses.
 *
 * Adapting the inputs: a `.in.yaml` is one document of lists (`gateways:`, `httpRoutes:`, ...), flattened into
 * objects here. The EG test harness also provides things the files do not hold, which the adapter adds:
 * - `envoyProxyForGatewayClass` is the EnvoyProxy of the GatewayClass `envoy-gateway-class` (a GatewayClass
 *   pointing at it is added);
 * - Services the routes use without declaring them (`service-1`, ...) exist in the harness (the outputs resolve
 *   them); the adapter adds a Service for every Service destination of the outputs that the input lacks;
 * - the harness does not sort HTTPRoutes by creation time (the provider does), so `sortHttpRoutes: false`, and
 *   no API server fills CRD defaults, so `applyApiServerDefaults: false`.
 *
 * Deviations (not modelled, so not compared): GRPCRoutes (`grpcroute/...` IR routes) and rate-limit IR details
 * (the rate-limit goldens are H3's; here only their HTTPRoute order and statuses are checked).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import type { KubeObject, RouteModel } from '../../lib/dataplane/model';
import { translate } from '../../lib/dataplane/translate';
import { describeWithShared } from '../support/shared';

type Json = Record<string, any>; // the goldens are free-form YAML

/** The objects of a translator-test input, with what the EG harness supplies (see the file comment). */
export function goldenInputObjects(input: Json, output: Json): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const [key, value] of Object.entries(input)) {
    if (key === 'envoyProxyForGatewayClass') {
      objects.push(value as KubeObject);
      objects.push({
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'GatewayClass',
        metadata: { name: 'envoy-gateway-class' },
        spec: {
          controllerName: 'gateway.envoyproxy.io/gatewayclass-controller',
          parametersRef: {
            group: 'gateway.envoyproxy.io',
            kind: 'EnvoyProxy',
            namespace: value.metadata.namespace,
            name: value.metadata.name,
          },
        },
      });
    } else if (Array.isArray(value)) objects.push(...(value as KubeObject[]));
    else if (value && typeof value === 'object' && 'kind' in value) objects.push(value as KubeObject);
  }
  const declared = new Set(
    objects.filter((o) => o.kind === 'Service').map((o) => `${o.metadata?.namespace ?? 'default'}/${o.metadata?.name}`),
  );
  for (const ir of Object.values((output.xdsIR ?? {}) as Json)) {
    for (const listener of ir.http ?? []) {
      for (const route of listener.routes ?? []) {
        for (const setting of route.destination?.settings ?? []) {
          const meta = setting.metadata;
          if (meta?.kind !== 'Service') continue;
          const key = `${meta.namespace}/${meta.name}`;
          if (declared.has(key)) continue;
          declared.add(key);
          const port = Number(meta.sectionName) || setting.endpoints?.[0]?.port || 8080;
          objects.push({
            apiVersion: 'v1',
            kind: 'Service',
            metadata: { namespace: meta.namespace, name: meta.name },
            spec: { ports: [{ port }] },
          });
        }
      }
    }
  }
  return objects;
}

function ourListenerRoutes(model: ReturnType<typeof translate>, listenerName: string): RouteModel[] | undefined {
  for (const gateway of model.gateways)
    for (const listener of gateway.listeners) if (listener.name === listenerName) return listener.routes;
  return undefined;
}

describeWithShared(
  'conformance/envoy-gateway/gatewayapi',
  'Envoy Gateway translator goldens against the translated model',
  (dir) => {
    const names = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.in.yaml'))
      .map((f) => f.slice(0, -'.in.yaml'.length))
      .sort();

    it('has the 9 goldens of the reference data', () => {
      expect(names.length).toBe(9);
    });

    for (const name of names) {
      describe(name, () => {
        const input = parse(fs.readFileSync(path.join(dir, `${name}.in.yaml`), 'utf8')) as Json;
        const output = parse(fs.readFileSync(path.join(dir, `${name}.out.yaml`), 'utf8')) as Json;
        const model = translate(goldenInputObjects(input, output), {
          sortHttpRoutes: false,
          applyApiServerDefaults: false,
        });
        const listeners = Object.values((output.xdsIR ?? {}) as Json).flatMap((ir: Json) => (ir.http ?? []) as Json[]);

        it("orders every listener's HTTPRoute entries as EG does", () => {
          for (const listener of listeners) {
            const expected = ((listener.routes ?? []) as Json[])
              .map((r) => r.name as string)
              .filter((n) => n.startsWith('httproute/'));
            const ours = ourListenerRoutes(model, listener.name) ?? [];
            expect({ listener: listener.name, routes: ours.map((r) => r.name) }).toEqual({
              listener: listener.name,
              routes: expected,
            });
          }
        });

        it('builds the same direct responses (status, body, content type)', () => {
          for (const listener of listeners) {
            for (const route of (listener.routes ?? []) as Json[]) {
              if (!route.name.startsWith('httproute/')) continue;
              const ours = ourListenerRoutes(model, listener.name)?.find((r) => r.name === route.name);
              if (!route.directResponse) {
                expect({ route: route.name, action: ours?.action.type }).toEqual({
                  route: route.name,
                  action: route.redirect ? 'redirect' : 'forward',
                });
                continue;
              }
              const expectedBody = route.directResponse.body
                ? Buffer.from(route.directResponse.body, 'base64').toString('hex')
                : undefined;
              const action = ours?.action;
              expect({
                route: route.name,
                status: action?.type === 'directResponse' ? action.status : action?.type,
                body:
                  action?.type === 'directResponse' && action.body !== undefined
                    ? Buffer.from(action.body).toString('hex')
                    : undefined,
              }).toEqual({ route: route.name, status: route.directResponse.statusCode, body: expectedBody });
              const expectedHeaders = ((route.addResponseHeaders ?? []) as Json[]).map((h) => [
                h.append ? 'add' : 'set',
                h.name.toLowerCase(),
                h.value[0],
              ]);
              const ourHeaders = [
                ...(ours?.responseHeaders?.set ?? []).map(([n, v]) => ['set', n, v]),
                ...(ours?.responseHeaders?.add ?? []).map(([n, v]) => ['add', n, v]),
              ];
              expect({ route: route.name, headers: ourHeaders.sort() }).toEqual({
                route: route.name,
                headers: expectedHeaders.sort(),
              });
            }
          }
        });

        it('enables the same ext_proc filters on each route', () => {
          for (const listener of listeners) {
            for (const route of (listener.routes ?? []) as Json[]) {
              if (!route.name.startsWith('httproute/')) continue;
              const ours = ourListenerRoutes(model, listener.name)?.find((r) => r.name === route.name);
              const expected = ((route.envoyExtensions?.extProcs ?? []) as Json[]).map((e) => e.name);
              expect({ route: route.name, extProcs: ours?.extProcs.map((e) => e.name) }).toEqual({
                route: route.name,
                extProcs: expected,
              });
            }
          }
        });

        it('sets the same HTTPRoute Accepted and ResolvedRefs conditions', () => {
          for (const route of (output.httpRoutes ?? []) as Json[]) {
            const ours = model.routeStatuses.find(
              (s) => s.route.namespace === route.metadata.namespace && s.route.name === route.metadata.name,
            );
            for (const parent of (route.status?.parents ?? []) as Json[]) {
              const ref = parent.parentRef;
              const ourParent = ours?.parents.find(
                (p) =>
                  p.parentRef.namespace === (ref.namespace ?? route.metadata.namespace) &&
                  p.parentRef.name === ref.name &&
                  p.parentRef.sectionName === ref.sectionName,
              );
              for (const condition of (parent.conditions ?? []) as Json[]) {
                if (condition.type !== 'Accepted' && condition.type !== 'ResolvedRefs') continue;
                const ourCondition = ourParent?.conditions.find((c) => c.type === condition.type);
                expect({
                  route: route.metadata.name,
                  type: condition.type,
                  status: ourCondition?.status,
                  reason: ourCondition?.reason,
                }).toEqual({
                  route: route.metadata.name,
                  type: condition.type,
                  status: condition.status,
                  reason: condition.reason,
                });
              }
            }
          }
        });
      });
    }
  },
);
