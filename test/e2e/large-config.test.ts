/**
 * A processor config split over several ConfigMaps (a gzip bundle mounted as one projected volume) through the local
 * data plane: the processor is started with the parts and manifest laid out as kubelet would, and routes requests.
 */
import { MANIFEST_KEY } from '@ai-gateway-constructs/processor-config';
import { translate } from '../../lib/dataplane/translate';
import { describeScenario, HELLO, rawChat } from './support/clients';
import { startScenario, type RunningScenario } from './support/harness';
import { largeConfigScenario } from './support/scenarios';

jest.setTimeout(120_000);

describeScenario('large-config', () => {
  const scenario = largeConfigScenario();
  let run: RunningScenario;

  beforeAll(async () => {
    run = await startScenario(scenario);
  });
  afterAll(() => run?.close());

  it('synthesizes a config split over two ConfigMaps', () => {
    const configMaps = scenario.objects.filter(
      (o) => o.kind === 'ConfigMap' && o.metadata?.name?.startsWith('e2e-gateway-processor-config'),
    );
    expect(configMaps.map((o) => o.metadata?.name)).toEqual([
      'e2e-gateway-processor-config',
      'e2e-gateway-processor-config-2',
    ]);
    const [processor] = translate(scenario.objects).processors;
    expect(processor.configFileName).toBe(MANIFEST_KEY);
    expect(Object.keys(processor.configFiles ?? {})).toHaveLength(3);
  });

  it('routes a request with the config the processor assembled from the parts', async () => {
    await run.fakes.openai.clear();
    const answer = await rawChat(`${run.gatewayUrl}/v1/chat/completions`, { model: 'gpt-4o', messages: HELLO });
    expect(answer.status).toBe(200);
    const received = (await run.fakes.openai.records()).filter((r) => !r.rejected);
    expect(received).toHaveLength(1);
  });
});
