import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadManifests, parseManifests } from '../../../lib/dataplane/manifests';

describe('manifest loading', () => {
  it('reads multi-document YAML, skips empty documents and flattens Lists', () => {
    const objects = parseManifests(`
apiVersion: v1
kind: Namespace
metadata: {name: a}
---
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Service, metadata: {name: s, namespace: a}}
- {apiVersion: v1, kind: ConfigMapList, items: [{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}]}
`);
    expect(objects.map((o) => `${o.kind}/${o.metadata?.name}`)).toEqual(['Namespace/a', 'Service/s', 'ConfigMap/c']);
  });

  it('names the file and document of an object without a kind', () => {
    expect(() => parseManifests('apiVersion: v1\nmetadata: {name: x}\n', 'x.yaml')).toThrow(
      'x.yaml: document 1: the object has no kind',
    );
    expect(() => parseManifests('- a\n- b\n', 'y.yaml')).toThrow('y.yaml: document 1 is not a Kubernetes object');
  });

  it('loads a folder in name order, skipping files that hold no Kubernetes objects (Helm values)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'manifests-'));
    fs.writeFileSync(path.join(dir, 'b.k8s.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: b}\n');
    fs.writeFileSync(path.join(dir, 'a.k8s.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: a}\n');
    fs.writeFileSync(path.join(dir, 'values.yaml'), 'config:\n  envoyGateway: {}\n');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not yaml: [');
    expect(loadManifests(dir).map((o) => o.metadata?.name)).toEqual(['a', 'b']);
    expect(() => loadManifests(path.join(dir, 'values.yaml'))).toThrow('the object has no kind');
    expect(() => loadManifests(path.join(dir, 'missing'))).toThrow('does not exist');
  });
});
