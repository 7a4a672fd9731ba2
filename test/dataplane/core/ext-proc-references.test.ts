import { Testing } from 'cdk8s';
import type { KubeObject } from '../../../lib/dataplane/model';
import { translate } from '../../../lib/dataplane/translate';
import { buildExample } from '../../../examples/cdk8s/main';
import { synthAll } from '../../support/synth';

/** The example's team routes use the platform's processor Service across namespaces, allowed by a ReferenceGrant. */
function exampleObjects(): KubeObject[] {
  const app = Testing.app();
  buildExample(app);
  return synthAll(app);
}

function teamRoutes(objects: readonly KubeObject[]) {
  return translate(objects)
    .gateways[0].listeners.flatMap((listener) => listener.routes)
    .filter((route) => route.route.namespace === 'team-chat');
}

describe('translate: an EnvoyExtensionPolicy whose processor cannot be used', () => {
  const objects = exampleObjects();

  it('enables the processor on every entry of the route when the ReferenceGrant allows the Service', () => {
    const routes = teamRoutes(objects);
    expect(routes.length).toBeGreaterThan(0);
    for (const route of routes)
      expect(route.extProcs.map((e) => `${e.service.namespace}/${e.service.name}`)).toEqual([
        'ai-platform/ai-gateway-processor',
      ]);
    expect(routes.some((route) => route.action.type === 'forward')).toBe(true);
  });

  it(
    'answers 500 on every entry of the route without the ReferenceGrant, as Envoy Gateway fails ' +
      'a fail-closed extension',
    () => {
      const withoutGrant = objects.filter(
        (o) => !(o.kind === 'ReferenceGrant' && JSON.stringify(o).includes('EnvoyExtensionPolicy')),
      );
      expect(withoutGrant.length).toBe(objects.length - 1);
      for (const route of teamRoutes(withoutGrant)) {
        expect(route.extProcs).toEqual([]);
        expect(route.action).toEqual({ type: 'directResponse', status: 500 });
      }
    },
  );

  it('answers 500 when the processor Service has no such port', () => {
    const otherPort = objects.map((o) =>
      o.kind === 'Service' && o.metadata?.name === 'ai-gateway-processor'
        ? { ...o, spec: { ...(o.spec as object), ports: [{ name: 'admin', port: 9090 }] } }
        : o,
    );
    for (const route of teamRoutes(otherPort)) expect(route.action).toEqual({ type: 'directResponse', status: 500 });
  });

  it('leaves out an extension that fails open instead of failing the route', () => {
    const failOpen = objects.map((o) => {
      if (o.kind !== 'EnvoyExtensionPolicy') return o;
      const spec = o.spec as { extProc: Record<string, unknown>[] };
      return { ...o, spec: { ...spec, extProc: spec.extProc.map((e) => ({ ...e, failOpen: true })) } };
    });
    const withoutGrant = failOpen.filter(
      (o) => !(o.kind === 'ReferenceGrant' && JSON.stringify(o).includes('EnvoyExtensionPolicy')),
    );
    const routes = teamRoutes(withoutGrant);
    expect(routes.every((route) => route.extProcs.length === 0)).toBe(true);
    expect(routes.some((route) => route.action.type === 'forward')).toBe(true);
  });

  it('answers 500 when the processor Service does not exist', () => {
    const withoutService = objects.filter(
      (o) => !((o.kind === 'Service' || o.kind === 'Deployment') && o.metadata?.name === 'ai-gateway-processor'),
    );
    for (const route of teamRoutes(withoutService))
      expect(route.action).toEqual({ type: 'directResponse', status: 500 });
  });
});
