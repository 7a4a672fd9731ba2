import { App, Chart, Testing } from 'cdk8s';
import type { Manifest } from './manifests';

/** A fresh app with one chart per namespace name given. */
export function appWithCharts(...namespaces: string[]): { app: App; charts: Chart[] } {
  const app = Testing.app();
  const charts = namespaces.map((namespace) => new Chart(app, namespace, { namespace }));
  return { app, charts };
}

/** Every manifest of every chart of the app, in chart order. */
export function synthAll(app: App): Manifest[] {
  return app.charts.flatMap((chart) => Testing.synth(chart) as Manifest[]);
}

export function findAll(manifests: readonly Manifest[], kind: string): Manifest[] {
  return manifests.filter((m) => m.kind === kind);
}

/** The one manifest of `kind` (and `name`); throws if there is not exactly one. */
export function findOne(manifests: readonly Manifest[], kind: string, name?: string): Manifest & { spec?: any; data?: any } {
  const found = manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}: ${found.map((m) => m.metadata.name).join(', ')}`);
  return found[0] as Manifest & { spec?: any; data?: any };
}
