/** Starts the processor in-process on an ephemeral port with a config written to a temp dir. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ProcessorApp, type AppOptions } from '../../src/app';
import {
  CONFIG_VERSION,
  type BackendConfig,
  type ProcessorConfig,
  type RouteConfig,
} from '@ai-gateway-constructs/processor-config';
import type { Egress } from '../../src/fallback';
import { silentLogger, type Logger } from '../../src/log';
import { EnvoyClient } from './envoy-client';

export interface TestProcessor {
  app: ProcessorApp;
  client: EnvoyClient;
  address: string;
  dir: string;
  configFile: string;
  secretsDir: string;
  writeConfig(config: ProcessorConfig): void;
  writeSecret(secretName: string, key: string, value: string): void;
  close(): Promise<void>;
}

export interface TestProcessorOptions {
  secrets?: Record<string, Record<string, string>>;
  pollIntervalMs?: number;
  compile?: AppOptions['compile'];
  /** Default: silent. */
  logger?: Logger;
  /** Default: off. */
  tracing?: AppOptions['tracing'];
  /** Sends the processor's own requests (fallback attempts) instead of HTTP: a fake backend in memory. */
  egress?: Egress;
  /** The HTTP egress's options (development upstream overrides); ignored with `egress`. */
  egressOptions?: AppOptions['egress'];
}

export async function startTestProcessor(
  config: ProcessorConfig,
  options: TestProcessorOptions = {},
): Promise<TestProcessor> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-processor-'));
  const configDir = path.join(dir, 'config');
  const secretsDir = path.join(dir, 'secrets');
  fs.mkdirSync(configDir);
  fs.mkdirSync(secretsDir);
  const configFile = path.join(configDir, 'config.json');
  const writeConfig = (next: ProcessorConfig): void => fs.writeFileSync(configFile, JSON.stringify(next));
  const writeSecret = (secretName: string, key: string, value: string): void => {
    fs.mkdirSync(path.join(secretsDir, secretName), { recursive: true });
    fs.writeFileSync(path.join(secretsDir, secretName, key), value);
  };
  writeConfig(config);
  for (const [secretName, keys] of Object.entries(options.secrets ?? {})) {
    for (const [key, value] of Object.entries(keys)) writeSecret(secretName, key, value);
  }
  const app = new ProcessorApp({
    config: configFile,
    secretsDir,
    listen: '127.0.0.1:0',
    admin: undefined,
    pollIntervalMs: options.pollIntervalMs ?? 60_000,
    logger: options.logger ?? silentLogger,
    compile: options.compile,
    tracing: options.tracing,
    egress: options.egressOptions,
  });
  // The processor reads its egress at each attempt: a fake one stands in for the network.
  if (options.egress) Object.assign(app.processor, { egress: options.egress });
  await app.start();
  const address = `127.0.0.1:${app.listenPort}`;
  const client = new EnvoyClient(address);
  return {
    app,
    client,
    address,
    dir,
    configFile,
    secretsDir,
    writeConfig,
    writeSecret,
    async close() {
      client.close();
      await app.drain(1000);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function openAIBackend(name: string, overrides: Partial<BackendConfig> = {}): BackendConfig {
  return {
    name,
    schema: { name: 'OpenAI', pathPrefix: '/v1' },
    endpoint: { hostname: `${name}.example.com`, port: 443, tls: true },
    ...overrides,
  };
}

export function route(
  models: string[],
  backends: RouteConfig['rules'][number]['backends'],
  overrides: Partial<RouteConfig> = {},
): RouteConfig {
  return {
    name: 'default/chat',
    endpoints: [{ api: 'OpenAI', pathPrefix: '/v1' }],
    hostnames: [],
    rules: [{ models: models.map((value) => ({ type: 'Exact' as const, value })), backends }],
    requiredHeaders: [],
    ...overrides,
  };
}

export function testConfig(overrides: Partial<ProcessorConfig> = {}): ProcessorConfig {
  return {
    version: CONFIG_VERSION,
    maxRequestBodyBytes: 1024 * 1024,
    backends: [openAIBackend('openai')],
    routes: [route(['gpt-4o'], [{ backend: 'openai', weight: 1, priority: 0 }])],
    costs: [],
    circuitBreaker: { failureThreshold: 3, openDurationMs: 60_000 },
    ...overrides,
  };
}
