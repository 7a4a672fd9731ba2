import { App, Chart, Testing } from 'cdk8s';
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
