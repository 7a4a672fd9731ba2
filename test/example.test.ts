import { App, Testing } from 'cdk8s';
import { parseProcessorConfig } from '@ai-gateway-constructs/processor-config';
import { buildExample } from '../examples/cdk8s/main';
import { libraryVersion } from '../lib/processor-image';
import { celRulesApplied, manifestProblems, type Manifest } from './support/manifests';
import { describeWithShared } from './support/shared';
import { findAll, findOne, policyRoutes } from './support/synth';

function synthExample(): { platform: Manifest[]; team: Manifest[] } {
  const app = Testing.app();
  const { platform, team } = buildExample(app);
  return { platform: Testing.synth(platform) as Manifest[], team: Testing.synth(team) as Manifest[] };
}

describe('the cdk8s example', () => {
  const { platform, team } = synthExample();

  it('puts the platform gateway and the team routes in different namespaces', () => {
    const namespaced = (manifests: Manifest[]) =>
      manifests.filter((m) => !['Namespace', 'GatewayClass'].includes(m.kind));
    // The processor's EnvoyExtensionPolicy and 404 filter for the team's routes are the gateway's: they live in the
    // team namespace (policies target, and routes refer to, objects of their own namespace) and serve every AIRoute
    // there.
    expect(
      namespaced(platform)
        .filter((m) => m.metadata.namespace !== 'ai-platform')
        .map((m) => `${m.kind} ${m.metadata.namespace}/${m.metadata.name}`),
    ).toEqual([
      'EnvoyExtensionPolicy team-chat/ai-gateway-processor-ai-platform',
      'HTTPRouteFilter team-chat/ai-gateway-processor-ai-platform-not-found',
    ]);
    expect(new Set(namespaced(team).map((m) => m.metadata.namespace))).toEqual(new Set(['team-chat']));
    expect(findOne(platform, 'Namespace').metadata).toEqual({ name: 'ai-platform' });
    // The processor Service, referenced from team-chat's EnvoyExtensionPolicy, and the three backends, referenced
    // from team-chat's HTTPRoute: one grant for all three.
    expect(
      findAll(platform, 'ReferenceGrant').map(
        (g) => `${(g as any).spec.from[0].kind}/${(g as any).spec.from[0].namespace}`,
      ),
    ).toEqual(['EnvoyExtensionPolicy/team-chat', 'HTTPRoute/team-chat']);
    expect(findOne(platform, 'ReferenceGrant', 'ai-backends-from-team-chat').spec.to.map((t: any) => t.name)).toEqual([
      'anthropic',
      'bedrock-us-east-1',
      'openai',
    ]);
  });

  it('uses OpenAI, Anthropic and Bedrock with a weighted split for one model', () => {
    const config = parseProcessorConfig(
      JSON.parse(findOne(platform, 'ConfigMap', 'ai-gateway-processor-config').data['config.json']),
    );
    expect(config.backends.map((b) => b.schema.name).sort()).toEqual(['AWSBedrock', 'Anthropic', 'OpenAI']);
    const split = config.routes[0].rules.find((r) => r.models[0].value === 'claude-sonnet-4')!;
    expect(split.backends.map((b) => b.weight)).toEqual([70, 30]);
  });

  it('has a per-tenant budget of 100k total tokens per hour and a per-model budget, both in the gateway policy', () => {
    const gatewayRules = findOne(platform, 'BackendTrafficPolicy').spec.rateLimit.global.rules;
    expect(gatewayRules).toEqual([
      expect.objectContaining({
        clientSelectors: [
          {
            headers: [
              { name: 'x-ai-gateway-route', type: 'RegularExpression', value: '.+' },
              { name: 'x-tenant-id', type: 'Distinct' },
            ],
          },
        ],
        limit: { requests: 100000, unit: 'Hour' },
        cost: expect.objectContaining({
          response: { from: 'Metadata', metadata: { namespace: 'io.envoy.ai_gateway', key: 'llm_total_token' } },
        }),
        shared: true,
      }),
      expect.objectContaining({
        clientSelectors: [
          {
            headers: [
              { name: 'x-ai-gateway-route', type: 'Exact', value: 'team-chat/chat' },
              { name: 'x-tenant-id', type: 'Distinct' },
              { name: 'x-ai-eg-model', type: 'Distinct' },
            ],
          },
        ],
        limit: { requests: 500000, unit: 'Day' },
        shared: true,
      }),
    ]);
    const routePolicy = findOne(team, 'BackendTrafficPolicy').spec;
    // The route's retries merge into the gateway policy, which keeps its rules (and buckets) unchanged.
    expect(routePolicy.mergeType).toBe('StrategicMerge');
    expect(routePolicy.rateLimit).toBeUndefined();
  });

  it('sends Bedrock requests of both rules to the Bedrock rule after the processor rewrote the path', () => {
    const rules = findOne(team, 'HTTPRoute', 'chat').spec.rules;
    const bedrock = rules.find((r: any) => r.backendRefs?.[0].name === 'bedrock-us-east-1');
    expect(bedrock.matches.map((m: any) => m.path.value)).toEqual(['/v1', '/anthropic/v1', '/model', '/']);
    expect(policyRoutes([...platform, ...team], findOne(platform, 'EnvoyExtensionPolicy'))).toEqual(['team-chat/chat']);
    expect(findAll(team, 'EnvoyExtensionPolicy')).toEqual([]);
  });

  it('matches the snapshot', () => {
    // The default image tag follows the package version; keep the snapshot stable across releases.
    const text = JSON.stringify({ platform, team })
      .split(`ai-gateway-processor:${libraryVersion()}`)
      .join('ai-gateway-processor:<library version>');
    expect(JSON.parse(text)).toMatchSnapshot();
  });
});

describeWithShared('crds/jsonschema', 'the cdk8s example manifests', (jsonschemaDir) => {
  const { platform, team } = synthExample();
  const all = [...platform, ...team];

  it('validate against the CRD schemas, their CEL rules and the Kubernetes types', () => {
    expect(manifestProblems(all, jsonschemaDir)).toEqual([]);
  });

  it('exercise the CEL rules of every emitted kind', () => {
    const kinds = new Set([...celRulesApplied(all, jsonschemaDir)].map((rule) => rule.split(':')[0]));
    expect([...kinds].sort()).toEqual([
      'Backend',
      'BackendTrafficPolicy',
      'ClientTrafficPolicy',
      'EnvoyExtensionPolicy',
      'Gateway',
      'HTTPRoute',
      'HTTPRouteFilter',
    ]);
  });
});

describe('the README quickstart', () => {
  it('is examples/cdk8s/quickstart.ts with the package import', () => {
    const fs = require('node:fs') as typeof import('node:fs');
    const path = require('node:path') as typeof import('node:path');
    const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
    const source = fs
      .readFileSync(path.join(__dirname, '..', 'examples', 'cdk8s', 'quickstart.ts'), 'utf8')
      .replace("} from '../../lib';", "} from 'ai-gateway-constructs';")
      .replace(
        'if (require.main === module) {\n  app.synth();\n  Yaml.save(path.join(app.outdir, ' +
          "'envoy-gateway-values.yaml'), [redis.helmValues]);\n}\n\nexport { app, redis };\n",
        "app.synth();\nYaml.save(path.join(app.outdir, 'envoy-gateway-values.yaml'), [redis.helmValues]);\n",
      );
    expect(readme).toContain(`\`\`\`ts\n${source}\`\`\``);
  });
});

describeWithShared('crds/jsonschema', 'the README quickstart manifests', (jsonschemaDir) => {
  it('validate', () => {
    const { app } = require('../examples/cdk8s/quickstart') as { app: App };
    const all = app.charts.flatMap((chart) => Testing.synth(chart) as Manifest[]);
    expect(findAll(all, 'HTTPRoute')).toHaveLength(1);
    expect(manifestProblems(all, jsonschemaDir)).toEqual([]);
  });
});

describe('the README "Keys and budgets" example', () => {
  const fs = require('node:fs') as typeof import('node:fs');
  const path = require('node:path') as typeof import('node:path');
  const source = fs.readFileSync(path.join(__dirname, '..', 'examples', 'cdk8s', 'keys-and-budgets.ts'), 'utf8');

  it('is the marked part of examples/cdk8s/keys-and-budgets.ts', () => {
    const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
    const [, marked = ''] = source.split('// keys-and-budgets:start\n');
    const [excerpt] = marked.split('// keys-and-budgets:end\n');
    expect(excerpt.length).toBeGreaterThan(0);
    expect(excerpt.split('\n').length).toBeLessThanOrEqual(21);
    expect(readme).toContain(`\`\`\`ts\n${excerpt}\`\`\``);
  });

  it('counts each consumer in the unit of its own budget, and the per-key budget in a rule of its own', () => {
    const { app } = require('../examples/cdk8s/keys-and-budgets') as { app: App };
    const all = app.charts.flatMap((chart) => Testing.synth(chart) as Manifest[]);
    const config = parseProcessorConfig(
      JSON.parse(findOne(all, 'ConfigMap', 'ai-gateway-processor-config').data['config.json']),
    );
    const own = (id: string) =>
      config.consumers!.entries.find((c) => c.id === id)!.limits.filter((l) => l.unit !== 'SECOND');
    // $500 in micro-dollars, $2,000 in tens of micro-dollars (each at most 1e9 units): two rules.
    expect(own('search')).toMatchObject([{ metadataKey: 'consumer_usd_1e6_month', requestsPerUnit: 500_000_000 }]);
    expect(own('research')).toMatchObject([{ metadataKey: 'consumer_usd_1e7_month', requestsPerUnit: 200_000_000 }]);
    const rules = (findOne(all, 'BackendTrafficPolicy', 'ai-gateway-budgets') as any).spec.rateLimit.global.rules;
    expect(rules).toHaveLength(3);
  });
});

describeWithShared('crds/jsonschema', 'the README "Keys and budgets" manifests', (jsonschemaDir) => {
  it('validate', () => {
    const { app } = require('../examples/cdk8s/keys-and-budgets') as { app: App };
    const all = app.charts.flatMap((chart) => Testing.synth(chart) as Manifest[]);
    expect(findAll(all, 'SecurityPolicy')).toHaveLength(1);
    expect(manifestProblems(all, jsonschemaDir)).toEqual([]);
  });
});

describe('running the example (what `npm run synth` runs)', () => {
  it('writes both charts and the Envoy Gateway Helm values', () => {
    const fs = require('node:fs') as typeof import('node:fs');
    const os = require('node:os') as typeof import('node:os');
    const path = require('node:path') as typeof import('node:path');
    const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
    const { parse } = require('yaml') as typeof import('yaml');
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'ai-gateway-synth-'));
    try {
      execFileSync(process.execPath, ['--import', 'tsx', path.join(__dirname, '..', 'examples', 'cdk8s', 'main.ts')], {
        env: { ...process.env, CDK8S_OUTDIR: outdir },
        stdio: 'pipe',
      });
      expect(fs.readdirSync(outdir).sort()).toEqual([
        'envoy-gateway-values.yaml',
        'platform.k8s.yaml',
        'team-chat.k8s.yaml',
      ]);
      const values = parse(fs.readFileSync(path.join(outdir, 'envoy-gateway-values.yaml'), 'utf8'));
      expect(values.config.envoyGateway).toEqual({
        extensionApis: { enableBackend: true },
        rateLimit: { backend: { type: 'Redis', redis: { url: 'redis.ai-platform.svc.cluster.local:6379' } } },
        // The rate-limit service authenticates to Redis with the password Redis itself requires.
        provider: {
          type: 'Kubernetes',
          kubernetes: {
            rateLimitDeployment: {
              container: {
                env: [{ name: 'REDIS_AUTH', valueFrom: { secretKeyRef: { name: 'redis-auth', key: 'password' } } }],
              },
            },
          },
        },
      });
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  }, 60_000);
});
