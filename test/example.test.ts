import { App, Testing } from 'cdk8s';
import { buildExample } from '../examples/cdk8s/main';
import { describeWithShared } from './support/shared';
import { celRulesApplied, manifestProblems, type Manifest } from './support/manifests';

function synthExample(): { platform: Manifest[]; team: Manifest[] } {
  const app = Testing.app();
  const { platform, team } = buildExample(app as App);
  return { platform: Testing.synth(platform) as Manifest[], team: Testing.synth(team) as Manifest[] };
}

describeWithShared('crds/jsonschema', 'the cdk8s example', (jsonschemaDir) => {
  const { platform, team } = synthExample();
  const all = [...platform, ...team];

  it('validates against the CRD schemas, their CEL rules and the Kubernetes types', () => {
    expect(manifestProblems(all, jsonschemaDir)).toEqual([]);
  });

  it('lists the CEL rules it checked', () => {
    const rules = [...celRulesApplied(all, jsonschemaDir)].sort();
    process.stdout.write(`CEL rules evaluated on the example:\n  ${rules.join('\n  ')}\n`);
    expect(rules.length).toBeGreaterThan(10);
  });
});
