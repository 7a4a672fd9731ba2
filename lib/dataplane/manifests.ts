/** Loading Kubernetes manifests (YAML files or folders of them) into plain objects for `translate()`. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from './model';

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
/** A manifest file larger than this is refused (the data plane reads manifests whole). */
const MAX_MANIFEST_BYTES = 32 * 1024 * 1024;

/**
 * Parses one YAML text with any number of `---` documents. Empty documents are skipped; `kind: List` (and
 * `<Kind>List`) objects are flattened into their items. A document that is not a mapping is an error naming it.
 */
export function parseManifests(
  text: string,
  source = '<text>',
  options: { skipNonKubernetes?: boolean } = {},
): KubeObject[] {
  const out: KubeObject[] = [];
  parseAllDocuments(text).forEach((doc, index) => {
    if (doc.errors.length > 0) throw new Error(`${source}: document ${index + 1}: ${doc.errors[0].message}`);
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return;
    const isMapping = typeof value === 'object' && !Array.isArray(value);
    if (options.skipNonKubernetes && (!isMapping || (!('kind' in value) && !('apiVersion' in value)))) return;
    if (!isMapping)
      throw new Error(
        `${source}: document ${index + 1} is not a Kubernetes object (a mapping with apiVersion and kind)`,
      );
    flattenInto(value as KubeObject, out, `${source}: document ${index + 1}`);
  });
  return out;
}

function flattenInto(object: KubeObject, out: KubeObject[], where: string): void {
  const kind = object.kind;
  if (typeof kind === 'string' && kind.endsWith('List') && Array.isArray(object.items)) {
    for (const item of object.items as unknown[]) {
      if (item === null || typeof item !== 'object' || Array.isArray(item))
        throw new Error(`${where}: a ${kind} item is not an object`);
      flattenInto(item as KubeObject, out, where);
    }
    return;
  }
  if (typeof kind !== 'string' || kind === '') throw new Error(`${where}: the object has no kind`);
  out.push(object);
}

/**
 * Loads manifests from files and folders. A folder contributes its `.yaml`, `.yml` and `.json` files (not
 * recursively), in name order, so the object order is stable across runs; documents in a folder's files that are
 * not Kubernetes objects at all (no apiVersion and no kind, e.g. the Helm values cdk8s writes beside the
 * manifests) are skipped. A file named explicitly must hold only Kubernetes objects.
 */
export function loadManifests(paths: string | readonly string[]): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const entry of typeof paths === 'string' ? [paths] : paths) {
    const stat = fs.statSync(entry, { throwIfNoEntry: false });
    if (!stat) throw new Error(`manifest path ${entry} does not exist`);
    const files = stat.isDirectory()
      ? fs
          .readdirSync(entry)
          .filter((name) => MANIFEST_EXTENSIONS.has(path.extname(name).toLowerCase()))
          .sort()
          .map((name) => path.join(entry, name))
      : [entry];
    if (stat.isDirectory() && files.length === 0)
      throw new Error(`folder ${entry} holds no .yaml, .yml or .json manifests`);
    for (const file of files) {
      const size = fs.statSync(file).size;
      if (size > MAX_MANIFEST_BYTES)
        throw new Error(`manifest ${file} is ${size} bytes, more than the ${MAX_MANIFEST_BYTES} this loader reads`);
      objects.push(...parseManifests(fs.readFileSync(file, 'utf8'), file, { skipNonKubernetes: stat.isDirectory() }));
    }
  }
  return objects;
}
