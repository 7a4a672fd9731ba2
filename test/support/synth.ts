import { App, Chart, Testing } from 'cdk8s';
import { ObjectIndex } from '../../lib/dataplane/objects';
import { selectedByPolicy } from '../../lib/dataplane/translate/target-selectors';
import { manifestProblems, type Manifest } from './manifests';
import { sharedPath } from './shared';

/** A fresh app with one chart per namespace name given. */
export function appWithCharts(...namespaces: string[]): { app: App; charts: Chart[] } {
  const app = Testing.app();
  const charts = namespaces.map((namespace) => new Chart(app, namespace, { namespace }));
  return { app, charts };
}

let jsonschemaDir: string | undefined | null = null;

/**
 * Every manifest of every chart of the app, in chart order. Each is validated on the way (CRD schemas and their
 * CEL rules, Kubernetes types, Pod Security "restricted"), so every object a test synthesizes is checked.
 */
export function synthAll(app: App): Manifest[] {
  const manifests = app.charts.flatMap((chart) => Testing.synth(chart) as Manifest[]);
  if (jsonschemaDir === null) jsonschemaDir = sharedPath('crds/jsonschema');
  if (jsonschemaDir !== undefined) {
    const problems = manifestProblems(manifests, jsonschemaDir);
    if (problems.length > 0) throw new Error(`synthesized manifests are invalid:\n  ${problems.join('\n  ')}`);
  }
  return manifests;
}

export function findAll(manifests: readonly Manifest[], kind: string): Manifest[] {
  return manifests.filter((m) => m.kind === kind);
}

/** The one manifest of `kind` (and `name`); throws if there is not exactly one. */
export function findOne(
  manifests: readonly Manifest[],
  kind: string,
  name?: string,
): Manifest & { spec?: any; data?: any } {
  const found = manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  if (found.length !== 1)
    throw new Error(
      `expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}: ` +
        `${found.map((m) => m.metadata.name).join(', ')}`,
    );
  return found[0];
}

/**
 * The HTTPRoutes (`namespace/name`) a policy attaches to, as Envoy Gateway resolves its targets: the routes its
 * `targetRefs` name and those its `targetSelectors` select (label selectors, namespaces, ReferenceGrants), in
 * manifest order.
 */
export function policyRoutes(manifests: readonly Manifest[], policy: Manifest & { spec?: any }): string[] {
  const index = new ObjectIndex(manifests);
  const namespace = policy.metadata.namespace ?? 'default';
  const named = new Set<string>(
    (policy.spec?.targetRefs ?? [])
      .filter((ref: any) => ref.kind === 'HTTPRoute')
      .map((ref: any) => `${namespace}/${String(ref.name)}`),
  );
  return findAll(manifests, 'HTTPRoute')
    .map((route) => ({ namespace: route.metadata.namespace ?? 'default', name: route.metadata.name }))
    .filter(
      (route) =>
        named.has(`${route.namespace}/${route.name}`) ||
        selectedByPolicy(index, policy, { kind: 'HTTPRoute', ...route }),
    )
    .map((route) => `${route.namespace}/${route.name}`);
}

/** The one policy of `kind` attached at route level (by name or label) to the HTTPRoute `<namespace>/<name>`. */
export function routePolicy(manifests: readonly Manifest[], kind: string, route: string): any {
  const attached = findAll(manifests, kind).filter((policy) => policyRoutes(manifests, policy).includes(route));
  if (attached.length !== 1) {
    const names = attached.map((p) => String(p.metadata.name)).join(', ');
    throw new Error(`expected one ${kind} of ${route}, found ${attached.length}: ${names}`);
  }
  return attached[0];
}
