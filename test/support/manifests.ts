import { CoreSchemaValidator } from './core-schemas';
import { CrdSchemaValidator } from './crd-schemas';
import { evaluateCelRules } from './cel-rules';
import { podSecurityProblems } from './pod-security';

export type Manifest = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
};

let core: CoreSchemaValidator | undefined;
const crdValidators = new Map<string, CrdSchemaValidator>();

/**
 * Every problem of the given manifests: CRD kinds against the real CRD JSON schemas (unknown fields rejected) and
 * every CEL rule of their schema that applies; core kinds against Kubernetes' API types, and Deployments' pod
 * templates against Pod Security "restricted". Any other kind is a problem too, so nothing goes unchecked.
 */
export function manifestProblems(objects: readonly Manifest[], jsonschemaDir: string): string[] {
  core ??= new CoreSchemaValidator();
  let crds = crdValidators.get(jsonschemaDir);
  if (!crds) crdValidators.set(jsonschemaDir, (crds = new CrdSchemaValidator(jsonschemaDir)));
  const problems: string[] = [];
  for (const object of objects) {
    const id = `${object.kind} ${object.metadata?.namespace ?? ''}/${object.metadata?.name}`;
    if (crds.handles(object.apiVersion)) {
      for (const problem of crds.validate(object)) problems.push(`${id}: schema: ${problem}`);
      for (const result of evaluateCelRules(crds.schemaFor(object.apiVersion, object.kind), object)) {
        if (result.outcome === false)
          problems.push(`${id}: CEL rule at ${result.path} violated: ${result.message} (${result.rule})`);
        else if (result.outcome !== true)
          problems.push(`${id}: CEL rule at ${result.path} not evaluable: ${result.outcome} (${result.rule})`);
      }
    } else if (core.handles(object.apiVersion, object.kind)) {
      for (const problem of core.validate(object)) problems.push(`${id}: core schema: ${problem}`);
      if (object.kind === 'Deployment') {
        const podSpec = (object as { spec?: { template?: { spec?: unknown } } }).spec?.template?.spec;
        for (const problem of podSecurityProblems(podSpec ?? {}))
          problems.push(`${id}: pod security "restricted": ${problem}`);
      }
    } else {
      problems.push(`${id}: no schema known for ${object.apiVersion} ${object.kind}`);
    }
  }
  return problems;
}

/** The CEL rules evaluated for these manifests, as `Kind: message` (to document which rules are checked). */
export function celRulesApplied(objects: readonly Manifest[], jsonschemaDir: string): Set<string> {
  let crds = crdValidators.get(jsonschemaDir);
  if (!crds) crdValidators.set(jsonschemaDir, (crds = new CrdSchemaValidator(jsonschemaDir)));
  const applied = new Set<string>();
  for (const object of objects) {
    if (!crds.handles(object.apiVersion)) continue;
    for (const result of evaluateCelRules(crds.schemaFor(object.apiVersion, object.kind), object)) {
      applied.add(`${object.kind}: ${result.message || result.rule}`);
    }
  }
  return applied;
}
