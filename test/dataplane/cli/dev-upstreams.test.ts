/**
 * `--dev-upstreams` for the processors a local run starts: which backend names map to which overridden backendRefs,
 * when the flag is left out, and that `startProcessors` passes it (to a stand-in processor that prints its args).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { devUpstreamsValue } from '../../../lib/dataplane/dev-upstreams';
import type { Destination, DataPlaneModel, ProcessorDeployment, RouteModel } from '../../../lib/dataplane/model';
import { argValue, startProcessors } from '../../../lib/dataplane/processes';
import { settings } from '../ext-proc/support';

const PROCESSOR = settings({
  service: { kind: 'Service', namespace: 'ai-platform', name: 'ai-gateway-processor', port: 9002 },
});
const OTHER_PROCESSOR = settings({
  service: { kind: 'Service', namespace: 'other', name: 'ai-gateway-processor', port: 9002 },
});

function destination(kind: 'Backend' | 'Service', namespace: string, name: string): Destination {
  return { name: `${namespace}/${name}`, weight: 1, backend: { kind, namespace, name, endpoints: [] } };
}

function route(backendHeader: string | undefined, destinations: Destination[], extProcs = [PROCESSOR]): RouteModel {
  return {
    name: `httproute/team/chat/rule/0/match/0/*`,
    hostname: '*',
    route: { namespace: 'team', name: 'chat' },
    ruleIndex: 0,
    matchIndex: 0,
    path: { type: 'PathPrefix', value: '/' },
    headers: backendHeader === undefined ? [] : [{ name: 'x-ai-gateway-backend', type: 'Exact', value: backendHeader }],
    queryParams: [],
    action: { type: 'forward', destinations },
    extProcs,
    rateLimitRules: [],
  };
}

function model(routes: RouteModel[]): DataPlaneModel {
  return {
    gateways: [
      {
        namespace: 'gw',
        name: 'gateway',
        listeners: [
          {
            name: 'gw/gateway/http',
            sectionName: 'http',
            port: 80,
            protocol: 'HTTP',
            routes,
            earlyRemoveHeaders: [],
            attachedRoutes: 1,
          },
        ],
      },
    ],
    routeStatuses: [],
    processors: [],
  };
}

function config(withFallback: boolean): string {
  const rule = {
    models: [{ type: 'Exact', value: 'gpt-4o' }],
    backends: [
      { name: 'openai', weight: 1, priority: 0 },
      { name: 'anthropic', weight: 1, priority: 1 },
    ],
    ...(withFallback
      ? { fallback: { statuses: [503], connectionFailures: true, timeouts: true, maxAttempts: 2, attemptTimeoutMs: 1 } }
      : {}),
  };
  return JSON.stringify({
    backends: [{ name: 'openai' }, { name: 'anthropic' }, { name: 'bedrock' }],
    routes: [{ name: 'team/chat', rules: [rule] }],
  });
}

function deployment(configJson = config(true)): ProcessorDeployment {
  return {
    namespace: 'ai-platform',
    deploymentName: 'ai-gateway-processor',
    serviceName: 'ai-gateway-processor',
    servicePort: 9002,
    args: ['--config', '/etc/ai-gateway/config/config.json'],
    configMapName: 'ai-gateway-processor-config',
    configJson,
    secretMounts: [],
  };
}

const ROUTES = [
  route('openai', [destination('Backend', 'ai-backends', 'openai')]),
  route('anthropic', [destination('Service', 'ai-backends', 'anthropic')]),
  // Not overridden: left out.
  route('bedrock', [destination('Backend', 'ai-backends', 'bedrock')]),
  // The endpoint rule (no backend header) of the same route.
  route(undefined, [destination('Backend', 'ai-backends', 'openai')]),
];
const OVERRIDES = {
  'ai-backends/openai': 'http://127.0.0.1:8081',
  'ai-backends/anthropic': 'https://localhost:8443/',
};

describe('devUpstreamsValue', () => {
  it("maps each backend name to the override of its rule's backendRef, sorted, as scheme://host:port", () => {
    expect(devUpstreamsValue(model(ROUTES), deployment(), OVERRIDES)).toBe(
      'anthropic=https://localhost:8443,openai=http://127.0.0.1:8081',
    );
  });

  it('fills in the default port of a URL without one', () => {
    expect(devUpstreamsValue(model(ROUTES), deployment(), { 'ai-backends/openai': 'https://api.local.test' })).toBe(
      'openai=https://api.local.test:443',
    );
  });

  it('gives nothing when no rule of the processor config has a fallback', () => {
    expect(devUpstreamsValue(model(ROUTES), deployment(config(false)), OVERRIDES)).toBeUndefined();
  });

  it('gives nothing without overrides, or for routes another processor serves', () => {
    expect(devUpstreamsValue(model(ROUTES), deployment(), {})).toBeUndefined();
    const elsewhere = ROUTES.map((r) => ({ ...r, extProcs: [OTHER_PROCESSOR] }));
    expect(devUpstreamsValue(model(elsewhere), deployment(), OVERRIDES)).toBeUndefined();
  });

  it('ignores header values that name no backend of the processor config', () => {
    const routes = [route('unknown', [destination('Backend', 'ai-backends', 'openai')])];
    expect(devUpstreamsValue(model(routes), deployment(), OVERRIDES)).toBeUndefined();
  });
});

describe('startProcessors --dev-upstreams', () => {
  let dir: string;
  let script: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aigw-dev-upstreams-test-'));
    script = path.join(dir, 'print-args.js');
    // Prints its args, then the processor's ready line, and serves /readyz.
    fs.writeFileSync(
      script,
      `const http = require('node:http');
       const args = process.argv.slice(2);
       console.log('args ' + JSON.stringify(args));
       const ca = process.env.NODE_EXTRA_CA_CERTS;
       if (ca) console.log('ca ' + JSON.stringify(require('node:fs').readFileSync(ca, 'utf8')));
       const s = http.createServer((q, r) => r.end('ok')).listen(0, '127.0.0.1', () => {
         console.log('ai-gateway-processor ready: ext_proc on 127.0.0.1:0 (port 1), ' +
           'admin on 127.0.0.1:0 (port ' + s.address().port + ')');
       });`,
    );
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  let lines: string[] = [];
  async function argsGiven(
    devUpstreams?: (d: ProcessorDeployment) => string | undefined,
    devUpstreamCaCertificates?: string[],
    env: Record<string, string> = {},
  ): Promise<string[]> {
    lines = [];
    const running = await startProcessors([deployment()], {
      env,
      processorEntry: script,
      log: (line) => lines.push(line),
      ...(devUpstreams ? { devUpstreams } : {}),
      ...(devUpstreamCaCertificates ? { devUpstreamCaCertificates } : {}),
    });
    await running.close();
    const line = lines.find((l) => l.startsWith('[ai-platform/ai-gateway-processor] args '));
    if (!line) throw new Error(`no args line in ${JSON.stringify(lines)}`);
    return JSON.parse(line.slice(line.indexOf('args ') + 5)) as string[];
  }

  const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

  const caSeen = () => {
    const line = lines.find((l) => l.startsWith('[ai-platform/ai-gateway-processor] ca '));
    return line === undefined ? undefined : (JSON.parse(line.slice(line.indexOf('ca ') + 3)) as string);
  };

  it('points NODE_EXTRA_CA_CERTS of a processor with an https:// dev upstream at the extra CAs', async () => {
    const existing = path.join(dir, 'existing-ca.pem');
    fs.writeFileSync(existing, 'EXISTING\n');
    await argsGiven((d) => devUpstreamsValue(model(ROUTES), d, OVERRIDES), [PEM, PEM], {
      NODE_EXTRA_CA_CERTS: existing,
    });
    // The file the variable named before keeps counting.
    expect(caSeen()).toBe(`EXISTING\n\n${PEM}\n${PEM}`);
  }, 30_000);

  it('leaves NODE_EXTRA_CA_CERTS alone without an https:// dev upstream or without extra CAs', async () => {
    await argsGiven(
      (d) => devUpstreamsValue(model(ROUTES), d, { 'ai-backends/openai': 'http://127.0.0.1:8081' }),
      [PEM],
    );
    expect(caSeen()).toBeUndefined();
    await argsGiven((d) => devUpstreamsValue(model(ROUTES), d, OVERRIDES), []);
    expect(caSeen()).toBeUndefined();
  }, 30_000);

  it('passes the value for the processor when there is one', async () => {
    const args = await argsGiven((d) => devUpstreamsValue(model(ROUTES), d, OVERRIDES));
    expect(argValue(args, '--dev-upstreams')).toBe('anthropic=https://localhost:8443,openai=http://127.0.0.1:8081');
  }, 30_000);

  it('passes no flag when there is no value', async () => {
    const args = await argsGiven(() => undefined);
    expect(args).not.toContain('--dev-upstreams');
    expect(await argsGiven()).not.toContain('--dev-upstreams');
  }, 30_000);
});
