/**
 * Programs that must fail after their components were constructed (the app builds its model once its program
 * function has returned, so the error surfaces the way Pulumi reports failed registrations: as an unhandled
 * rejection that fails the run).
 * Run with `tsx failing.ts <scenario>`; the test checks the exit code and the message.
 */
import * as pulumi from '@pulumi/pulumi';
import { ApiObject } from 'cdk8s';
import { ModelMatch } from '../../../lib';
import { AIGateway, AIGatewayApp, AIRoute, Cdk8sChart, ManagedCredentials, ProviderBackend } from '../../../lib/pulumi';

const scenarios: Record<string, (app: pulumi.ComponentResource) => void | Promise<void>> = {
  /** A resolved Output is rejected by the construct model. */
  'invalid-output': (app) => {
    new Cdk8sChart(
      'strict',
      {
        props: { namespace: pulumi.output('Not-Valid') },
        build: (chart, props) => {
          if (!/^[a-z0-9-]+$/.test(props.namespace)) throw new Error(`Cdk8sChart got namespace "${props.namespace}"`);
          new ApiObject(chart, 'c', {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { name: 'c', namespace: props.namespace },
          });
        },
      },
      { parent: app },
    );
  },
  /** The constructs' own validation, reached through the Pulumi components. */
  'secret-outside-processor-namespace': (app) => {
    const gateway = new AIGateway('gw', { namespace: 'ai' }, { parent: app });
    const openai = ProviderBackend.openAI(
      'openai',
      {
        namespace: 'ai',
        credentials: ManagedCredentials.apiKey({
          value: pulumi.secret('sk-1'),
          secretName: 'openai-key',
          namespace: 'elsewhere',
        }),
      },
      { parent: app },
    );
    new AIRoute('chat', {
      gateway,
      namespace: 'ai',
      rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
    });
  },
  /** A construct validation (`node.addValidation`) fails, reported as cdk8s reports it. */
  'construct-validation': (app) => {
    new Cdk8sChart(
      'validated',
      {
        props: {},
        build: (chart) => {
          chart.node.addValidation({ validate: () => ['needs at least one route'] });
        },
      },
      { parent: app },
    );
  },
  /** The construct model rejects the props. */
  'invalid-props': (app) => {
    new Cdk8sChart(
      'broken',
      {
        props: {},
        build: () => {
          throw new Error('broken: invalid prop "x"');
        },
      },
      { parent: app },
    );
  },
  /** The program function itself fails after an await: nothing is built, the run fails with its error. */
  'program-throws': async (app) => {
    new AIGateway('gw', { namespace: 'ai' }, { parent: app });
    await Promise.resolve();
    throw new Error('lookup failed');
  },
};

async function main(): Promise<void> {
  await pulumi.runtime.setMocks({
    newResource: (args) => ({ id: `${args.name}_id`, state: args.inputs }),
    call: (args) => args.inputs,
  });
  const scenario = scenarios[process.argv[2] ?? ''];
  if (scenario === undefined) throw new Error(`unknown scenario ${process.argv[2]}`);
  new AIGatewayApp('app', scenario);
}

void main();
