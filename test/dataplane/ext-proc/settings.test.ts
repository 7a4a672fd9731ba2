/** EnvoyExtensionPolicy extProc entries -> ExtProcSettings, as Envoy Gateway v1.9 translates them. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Chart, Duration, Testing } from 'cdk8s';
import { parse } from 'yaml';
import { AIGateway, AIRoute, AllowedRoutes, Credentials, ModelMatch, ProviderBackend } from '../../../lib';
import {
  DEFAULT_MESSAGE_TIMEOUT_MS,
  envoyProcessingMode,
  extProcFilterName,
  extProcFilterOrder,
  extProcSettingsFromPolicy,
  type ExtProcBodyMode,
  type ExtProcSettings,
} from '../../../lib/dataplane/ext-proc';
import type { KubeObject } from '../../../lib/dataplane/model';
import { durationField } from '../../../lib/dataplane/objects';
import { describeWithShared } from '../../support/shared';
import { findAll, synthAll } from '../../support/synth';

function policy(extProc: unknown[], metadata: Record<string, string> = { namespace: 'team', name: 'p' }): KubeObject {
  return { apiVersion: 'gateway.envoyproxy.io/v1alpha1', kind: 'EnvoyExtensionPolicy', metadata, spec: { extProc } };
}

describe('extProcSettingsFromPolicy', () => {
  it('reads the policy our constructs synthesize', () => {
    const app = Testing.app();
    const platform = new Chart(app, 'platform', { namespace: 'platform' });
    const team = new Chart(app, 'team', { namespace: 'team' });
    const gateway = new AIGateway(platform, 'Gateway', {
      name: 'gw',
      allowedRoutes: AllowedRoutes.fromNamespaces('platform', 'team'),
      processor: { messageTimeout: Duration.seconds(15) },
    });
    const openai = ProviderBackend.openAI(platform, 'OpenAI', {
      name: 'openai',
      credentials: Credentials.apiKey({ secretName: 'openai', key: 'k' }),
    });
    new AIRoute(team, 'Chat', {
      name: 'chat',
      gateway,
      rules: [{ models: [ModelMatch.exact('gpt-4o')], backends: [{ backend: openai }] }],
    });
    const [eep] = findAll(synthAll(app), 'EnvoyExtensionPolicy') as unknown as KubeObject[];
    const settings = extProcSettingsFromPolicy(eep, 0);
    expect(settings).toEqual({
      name: 'envoyextensionpolicy/team/gw-processor-platform/extproc/0',
      service: { kind: 'Service', namespace: 'platform', name: gateway.processorServiceName, port: 9002 },
      authority: `${gateway.processorServiceName}.platform:9002`,
      processingMode: {
        request: { body: 'Buffered' },
        response: { body: 'Buffered', attributes: ['response.code_details'] },
      },
      messageTimeoutMs: 15_000,
      failOpen: false,
      allowModeOverride: true,
      shadowMode: false,
      // backendSettings.circuitBreaker: the processor's 2 replicas x 10,000 streams.
      maxParallelRequests: 20_000,
      metadataOptions: { forwardingNamespaces: [], receivingNamespaces: ['io.envoy.ai_gateway'] },
    });
    expect(envoyProcessingMode(settings)).toEqual({
      requestHeaderMode: 'SEND',
      requestBodyMode: 'BUFFERED',
      requestTrailerMode: 'SKIP',
      responseHeaderMode: 'SEND',
      responseBodyMode: 'BUFFERED',
      responseTrailerMode: 'SKIP',
    });
    expect(extProcFilterName(settings)).toBe(
      'envoy.filters.http.ext_proc/envoyextensionpolicy/team/gw-processor-platform/extproc/0',
    );
    expect(extProcFilterOrder(settings)).toBe(100);
  });

  it('applies the defaults EG leaves to Envoy: 200 ms, fail closed, no override, nothing processed', () => {
    const settings = extProcSettingsFromPolicy(policy([{ backendRefs: [{ name: 'proc', port: 9000 }] }]), 0);
    expect(settings.messageTimeoutMs).toBe(DEFAULT_MESSAGE_TIMEOUT_MS);
    expect(DEFAULT_MESSAGE_TIMEOUT_MS).toBe(200);
    expect(settings).toMatchObject({
      failOpen: false,
      allowModeOverride: false,
      shadowMode: false,
      processingMode: {},
    });
    expect(settings.statusOnError).toBeUndefined();
    expect(envoyProcessingMode(settings)).toMatchObject({
      requestHeaderMode: 'SKIP',
      requestBodyMode: 'NONE',
      responseHeaderMode: 'SKIP',
      responseBodyMode: 'NONE',
    });
  });

  it('reads every field EG v1.9 translates', () => {
    const settings = extProcSettingsFromPolicy(
      policy([
        { backendRefs: [{ name: 'a', port: 1 }] },
        {
          backendRef: { kind: 'Backend', group: 'gateway.envoyproxy.io', name: 'proc', namespace: 'infra' },
          messageTimeout: '1m30s',
          failOpen: true,
          shadowMode: true,
          statusOnError: 503,
          processingMode: {
            request: { attributes: ['request.path'] },
            response: { body: 'Streamed' },
            allowModeOverride: true,
          },
          metadata: {
            accessibleNamespaces: ['envoy.filters.http.jwt_authn'],
            writableNamespaces: ['io.envoy.ai_gateway'],
          },
        },
      ]),
      1,
    );
    expect(settings).toEqual({
      name: 'envoyextensionpolicy/team/p/extproc/1',
      service: { kind: 'Backend', namespace: 'infra', name: 'proc' },
      authority: 'proc.infra',
      processingMode: { request: { attributes: ['request.path'] }, response: { body: 'Streamed' } },
      messageTimeoutMs: 90_000,
      failOpen: true,
      allowModeOverride: true,
      shadowMode: true,
      statusOnError: 503,
      metadataOptions: {
        forwardingNamespaces: ['envoy.filters.http.jwt_authn'],
        receivingNamespaces: ['io.envoy.ai_gateway'],
      },
    });
    expect(extProcFilterOrder(settings)).toBe(101);
  });

  it('maps a FullDuplexStreamed response body to FULL_DUPLEX_STREAMED with the response trailers sent (EG)', () => {
    const settings = extProcSettingsFromPolicy(
      policy([
        {
          backendRefs: [{ name: 'a', port: 1 }],
          processingMode: { request: { body: 'Buffered' }, response: { body: 'FullDuplexStreamed' } },
        },
      ]),
      0,
    );
    expect(settings.processingMode.response).toEqual({ body: 'FullDuplexStreamed' });
    expect(envoyProcessingMode(settings)).toEqual({
      requestHeaderMode: 'SEND',
      requestBodyMode: 'BUFFERED',
      requestTrailerMode: 'SKIP',
      responseHeaderMode: 'SEND',
      responseBodyMode: 'FULL_DUPLEX_STREAMED',
      responseTrailerMode: 'SEND',
    });
  });

  it.each([
    ['10s', 10_000],
    ['250ms', 250],
    ['1.5s', 1500],
    ['1h2m3s4ms', 3_723_004],
    ['0', 0],
  ])('parses the duration %s as Go does', (text, ms) => {
    expect(durationField(text, 'x')).toBe(ms);
  });

  it.each([
    [
      'an unknown unit',
      { backendRefs: [{ name: 'a', port: 1 }], messageTimeout: '10 seconds' },
      /messageTimeout: not a duration/,
    ],
    ['no backend', {}, /backendRefs is required/],
    [
      'two backends',
      {
        backendRefs: [
          { name: 'a', port: 1 },
          { name: 'b', port: 1 },
        ],
      },
      /2 backendRefs/,
    ],
    ['a Service without port', { backendRefs: [{ name: 'a' }] }, /needs a port/],
    [
      'an unknown body mode',
      { backendRefs: [{ name: 'a', port: 1 }], processingMode: { request: { body: 'Chunked' } } },
      /body: Chunked is not one of/,
    ],
    ['a 2xx statusOnError', { backendRefs: [{ name: 'a', port: 1 }], statusOnError: 200 }, /not a 4xx or 5xx/],
    [
      'a FullDuplexStreamed body failing open (the CRD CEL rule)',
      {
        backendRefs: [{ name: 'a', port: 1 }],
        failOpen: true,
        processingMode: { request: { body: 'Buffered' }, response: { body: 'FullDuplexStreamed' } },
      },
      /FullDuplexStreamed body mode requires failOpen to be false/,
    ],
  ])('rejects %s with a clear error', (_case, entry, error) => {
    expect(() => extProcSettingsFromPolicy(policy([entry]), 0)).toThrow(error);
  });

  it('names the policy and entry in its errors', () => {
    expect(() => extProcSettingsFromPolicy(policy([{}]), 0)).toThrow(
      'EnvoyExtensionPolicy team/p spec.extProc[0]: backendRefs is required',
    );
    expect(() => extProcSettingsFromPolicy(policy([{ backendRefs: [{ name: 'a', port: 1 }] }]), 3)).toThrow(
      /spec\.extProc\[3\]: no such entry/,
    );
  });
});

/** Every object under `value` that has `key`, depth first. */
function collect(value: unknown, key: string, out: Record<string, unknown>[] = []): Record<string, unknown>[] {
  if (Array.isArray(value)) for (const item of value) collect(item, key, out);
  else if (value && typeof value === 'object') {
    if (key in value) out.push(value as Record<string, unknown>);
    for (const child of Object.values(value)) collect(child, key, out);
  }
  return out;
}

describeWithShared('conformance/envoy-gateway', 'EG v1.9 golden files', (dir) => {
  it('gatewayapi envoyextensionpolicy-override-replace: IR names and authorities of the policies', () => {
    const input = parse(
      fs.readFileSync(path.join(dir, 'gatewayapi/envoyextensionpolicy-override-replace.in.yaml'), 'utf8'),
    );
    const output = parse(
      fs.readFileSync(path.join(dir, 'gatewayapi/envoyextensionpolicy-override-replace.out.yaml'), 'utf8'),
    );
    const expected = new Map<string, string>();
    for (const holder of collect(output, 'extProcs')) {
      for (const ir of holder.extProcs as { name: string; authority: string }[]) expected.set(ir.name, ir.authority);
    }
    expect(expected.size).toBeGreaterThan(0);
    const ours = new Map<string, string>();
    for (const eep of input.envoyExtensionPolicies as KubeObject[]) {
      const list = (eep.spec as { extProc?: unknown[] }).extProc ?? [];
      for (let i = 0; i < list.length; i++) {
        const settings = extProcSettingsFromPolicy(eep, i);
        ours.set(settings.name, settings.authority);
      }
    }
    for (const [name, authority] of expected) expect([name, ours.get(name)]).toEqual([name, authority]);
  });

  it('xds-translator ext-proc: processing modes and filter options as EG writes them into the HCM', () => {
    const input = parse(fs.readFileSync(path.join(dir, 'xds-translator/in/xds-ir/ext-proc.yaml'), 'utf8'));
    const listeners = parse(
      fs.readFileSync(path.join(dir, 'xds-translator/out/xds-ir/ext-proc.listeners.yaml'), 'utf8'),
    );
    const filters = new Map<string, Record<string, any>>();
    for (const holder of collect(listeners, 'typedConfig')) {
      if (typeof holder.name === 'string' && holder.name.startsWith('envoy.filters.http.ext_proc/'))
        filters.set(holder.name, holder.typedConfig as Record<string, any>);
    }
    const irs = collect(input, 'extProcs').flatMap((holder) => holder.extProcs as Record<string, any>[]);
    expect(irs.length).toBe(5);
    for (const ir of irs) {
      const settings = settingsFromIr(ir);
      const config = filters.get(extProcFilterName(settings));
      expect(config).toBeDefined();
      const mode = envoyProcessingMode(settings);
      const expectedMode = { requestBodyMode: 'NONE', responseBodyMode: 'NONE', ...config!.processingMode };
      expect([settings.name, mode]).toEqual([settings.name, expectedMode]);
      expect(settings.messageTimeoutMs).toBe(
        config!.messageTimeout === undefined
          ? DEFAULT_MESSAGE_TIMEOUT_MS
          : durationField(config!.messageTimeout, 'out'),
      );
      expect(settings.failOpen).toBe(config!.failureModeAllow === true);
      expect(settings.allowModeOverride).toBe(config!.allowModeOverride === true);
      expect(settings.shadowMode).toBe(config!.observabilityMode === true);
      expect(settings.authority).toBe(config!.grpcService.envoyGrpc.authority);
      expect(settings.metadataOptions.forwardingNamespaces).toEqual(
        config!.metadataOptions?.forwardingNamespaces?.untyped ?? [],
      );
      expect(settings.metadataOptions.receivingNamespaces).toEqual(
        config!.metadataOptions?.receivingNamespaces?.untyped ?? [],
      );
      expect(settings.processingMode.request?.attributes ?? []).toEqual(config!.requestAttributes ?? []);
      expect(settings.processingMode.response?.attributes ?? []).toEqual(config!.responseAttributes ?? []);
      expect(settings.statusOnError === undefined).toBe(config!.statusOnError === undefined);
    }
  });
});

/**
 * EG's IR extProc (the xds translator's input) in our settings' terms: the IR keeps header processing apart from the
 * body mode.
 */
function settingsFromIr(ir: Record<string, any>): ExtProcSettings {
  const phase = (headers: boolean | undefined, body: ExtProcBodyMode | undefined, attributes: string[] | undefined) =>
    headers || body || attributes
      ? { sendHeaders: headers === true, ...(body ? { body } : {}), ...(attributes ? { attributes } : {}) }
      : undefined;
  const request = phase(ir.requestHeaderProcessing, ir.requestBodyProcessingMode, ir.requestAttributes);
  const response = phase(ir.responseHeaderProcessing, ir.responseBodyProcessingMode, ir.responseAttributes);
  return {
    name: ir.name,
    service: { kind: 'Service', namespace: 'unused', name: 'unused', port: 1 },
    authority: ir.authority,
    processingMode: { ...(request ? { request } : {}), ...(response ? { response } : {}) },
    messageTimeoutMs:
      ir.messageTimeout === undefined ? DEFAULT_MESSAGE_TIMEOUT_MS : durationField(ir.messageTimeout, 'in'),
    failOpen: ir.failOpen === true,
    allowModeOverride: ir.allowModeOverride === true,
    shadowMode: ir.shadowMode === true,
    ...(ir.statusOnError === undefined ? {} : { statusOnError: ir.statusOnError }),
    metadataOptions: {
      forwardingNamespaces: ir.forwardingMetadataNamespaces ?? [],
      receivingNamespaces: ir.receivingMetadataNamespaces ?? [],
    },
  };
}
