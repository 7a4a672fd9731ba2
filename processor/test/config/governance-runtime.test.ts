/** Governance config compiled into a snapshot: the problems the schema cannot see are refused at load. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CLIENT_ID_HEADER,
  parseProcessorConfig,
  ProcessorConfigError,
  type ProcessorConfig,
} from '@ai-gateway-constructs/processor-config';
import { SecretReader } from '../../src/auth/secrets';
import { compileRuntime } from '../../src/config/runtime';
import { testConfig } from '../support/processor-harness';

const secrets = new SecretReader(fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-governance-')));

function problemsOf(config: ProcessorConfig): readonly string[] {
  try {
    compileRuntime(parseProcessorConfig(config), secrets, { nowSeconds: 0 });
  } catch (error) {
    if (error instanceof ProcessorConfigError) return error.problems;
    throw error;
  }
  return [];
}

const consumers = (entry: Record<string, unknown>) =>
  ({
    clientIdHeader: CLIENT_ID_HEADER,
    entries: [{ id: 'alice', clientIds: ['alice-key'], limits: [], ...entry }],
  }) as ProcessorConfig['consumers'];

describe('governance at config load', () => {
  it('compiles consumers, prices and a money cost', () => {
    const runtime = compileRuntime(
      parseProcessorConfig(
        testConfig({
          costs: [{ metadataKey: 'usd_micro', type: 'Price', picoUsdPerUnit: 1_000_000 }],
          prices: [{ model: 'gpt-4o', input: 1, output: 2 }],
          consumers: consumers({
            limits: [
              {
                budget: 'b',
                metadataKey: 'alice_usd',
                header: 'x-ai-gateway-limit-alice-usd',
                requestsPerUnit: 5,
                unit: 'MONTH',
              },
            ],
          }),
        }),
      ),
      secrets,
      { nowSeconds: 0 },
    );
    expect(runtime.governance.counted).toBe(true);
    expect(runtime.governance.consumers?.byClientIdValue('alice-key')?.id).toBe('alice');
    expect(runtime.governance.consumers?.byClientIdValue('alice')).toBeUndefined();
    expect(runtime.governance.prices.get('gpt-4o')?.output).toBe(2);
  });

  it('counts nothing extra without consumers or prices', () => {
    const runtime = compileRuntime(parseProcessorConfig(testConfig()), secrets, { nowSeconds: 0 });
    expect(runtime.governance).toMatchObject({ counted: false, consumers: undefined, budgets: [] });
    expect(runtime.governance.prices.size).toBe(0);
  });

  it('refuses consumer model patterns RE2 cannot run', () => {
    expect(
      problemsOf(testConfig({ consumers: consumers({ models: [{ type: 'RegularExpression', value: '(a' }] }) })),
    ).toEqual([
      expect.stringMatching(/^consumers\.entries\.0\.models\.0\.value: consumer "alice": regular expression/),
    ]);
  });

  it('refuses a limit key the usage metadata would overwrite', () => {
    const config = testConfig({
      costs: [{ metadataKey: 'weighted', type: 'TotalToken' }],
      consumers: consumers({
        limits: [
          { budget: 'a', metadataKey: 'llm_total_token', header: 'x-limit-a', requestsPerUnit: 5, unit: 'DAY' },
          { budget: 'b', metadataKey: 'weighted', header: 'x-limit-b', requestsPerUnit: 5, unit: 'DAY' },
        ],
      }),
    });
    expect(problemsOf(config)).toEqual([
      expect.stringMatching(/^consumers\.entries\.0\.limits\.0\.metadataKey: .*"llm_total_token" is also a token/),
      expect.stringMatching(/^consumers\.entries\.0\.limits\.1\.metadataKey: .*"weighted" is also a token or cost/),
    ]);
  });
});
