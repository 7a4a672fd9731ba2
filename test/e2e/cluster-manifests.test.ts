/**
 * The manifests a kind run applies (scripts/e2e/cluster-manifests.ts) are valid objects of the real CRD and core
 * schemas, Deployments pass Pod Security "restricted", every Backend of a scenario points at its fake without TLS
 * settings (the fakes speak plain HTTP) and the processor runs the locally built image.
 */
import { parse } from 'yaml';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { clusterObjects, clusterScenarios } from '../../scripts/e2e/cluster-manifests';
import { manifestProblems, type Manifest } from '../support/manifests';
import { describeWithShared } from '../support/shared';
import { FAKE_PORTS } from './support/fakes';
import { clusterMode, REPO_ROOT } from './support/harness';

const IMAGE = 'ai-gateway-processor:e2e';

/** Checked by the local suite (with ../shared); the kind run applies these manifests instead. */
const describeManifests = clusterMode()
  ? (name: string, body: (dir: string) => void) => describe.skip(`${name} (checked by the local run)`, () => body(''))
  : (name: string, body: (dir: string) => void) => describeWithShared('crds/jsonschema', name, body);

describeManifests('kind run manifests', (jsonschemaDir) => {
  for (const scenario of clusterScenarios()) {
    describe(scenario.name, () => {
      const objects = clusterObjects(scenario, IMAGE);

      it('are valid against the CRD and core schemas and Pod Security "restricted"', () => {
        expect(manifestProblems(objects as Manifest[], jsonschemaDir)).toEqual([]);
      });

      it('point every Backend at its fake, without TLS', () => {
        expect(objects.filter((o) => o.kind === 'BackendTLSPolicy')).toEqual([]);
        const backends = objects.filter((o) => o.kind === 'Backend') as unknown as {
          metadata: { name: string; namespace: string };
          spec: { endpoints: unknown[] };
        }[];
        expect(backends.length).toBeGreaterThan(0);
        // The scenario's providers are TLS backends; the fakes they are pointed at are not.
        const tlsBackends = scenario.objects.filter((o) => o.kind === 'Backend' && (o.spec as { tls?: unknown }).tls);
        expect(tlsBackends.length).toBeGreaterThan(0);
        for (const backend of backends) {
          const fake = scenario.backends[`${backend.metadata.namespace}/${backend.metadata.name}`];
          expect(backend.spec).toEqual({
            endpoints: [{ fqdn: { hostname: 'e2e-fake-providers.e2e.svc.cluster.local', port: FAKE_PORTS[fake] } }],
          });
        }
      });

      it('run the locally built processor image with the fakes credentials environment', () => {
        const deployments = objects.filter(
          (o) => o.kind === 'Deployment' && JSON.stringify(o).includes('ai-gateway-processor'),
        ) as unknown as {
          spec: { template: { spec: { containers: { image: string; env?: { name: string }[] }[] } } };
        }[];
        expect(deployments.length).toBeGreaterThan(0);
        for (const deployment of deployments) {
          for (const container of deployment.spec.template.spec.containers) {
            expect(container.image).toBe(IMAGE);
            expect((container.env ?? []).map((e) => e.name)).toEqual(
              expect.arrayContaining(['AWS_ACCESS_KEY_ID', 'GOOGLE_APPLICATION_CREDENTIALS']),
            );
          }
        }
      });
    });
  }

  it('the script writes the fakes and one file per scenario, and names what the suite needs', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ai-gateway-kind-manifests-'));
    try {
      const printed = execFileSync(
        path.join(REPO_ROOT, 'node_modules/.bin/tsx'),
        ['scripts/e2e/cluster-manifests.ts', out],
        { cwd: REPO_ROOT, encoding: 'utf8' },
      );
      expect(printed).toContain(
        `scenarios=${clusterScenarios()
          .map((s) => s.name)
          .join(',')}`,
      );
      const fakeDocs = fs
        .readFileSync(path.join(out, '00-fakes.yaml'), 'utf8')
        .split(/^---$/m)
        .map((d) => parse(d) as Manifest);
      expect(fakeDocs.map((d) => d.kind)).toEqual(['Namespace', 'Deployment', 'Service']);
      expect(manifestProblems(fakeDocs, jsonschemaDir)).toEqual([]);
      expect(fs.readdirSync(out).sort()).toEqual(['00-fakes.yaml', 'example.yaml', 'providers-default-v1.yaml']);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
