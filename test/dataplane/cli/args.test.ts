import {
  accessLogLine,
  checkAgainstManifests,
  listenerLines,
  parseCommandLine,
  UsageError,
  USAGE,
  type DevOptions,
} from '../../../lib/dataplane/dev-options';
import type { DataPlaneModel, KubeObject, ListenerModel } from '../../../lib/dataplane/model';

function dev(...args: string[]): DevOptions {
  const command = parseCommandLine(['dev', ...args]);
  if (command.command !== 'dev') throw new Error('expected the dev command');
  return command.options;
}

const usageError = (args: string[]) => {
  try {
    parseCommandLine(args);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error(`${args.join(' ')} was accepted`);
};

describe('ai-gateway command line', () => {
  it('defaults: paths only, loopback, in-memory counters, no overrides', () => {
    expect(dev('dist/')).toEqual({
      paths: ['dist/'],
      secretsDir: undefined,
      backendOverrides: {},
      echo: false,
      redisUrl: undefined,
      ports: {},
      host: '127.0.0.1',
      processorLog: undefined,
      processorEntry: undefined,
      jwksOverrides: {},
      caFiles: [],
    });
  });

  it('reads every option, as "--flag value" and "--flag=value", between and after the paths', () => {
    expect(
      dev(
        'dist/platform.k8s.yaml',
        '--secrets',
        './secrets',
        'dist/team-chat.k8s.yaml',
        '--backend',
        'ai-platform/openai=http://127.0.0.1:8080',
        '--backend=ai-platform/anthropic=https://localhost:8443/',
        '--echo',
        '--redis=redis://127.0.0.1:6379/0',
        '--port',
        'ai-platform/ai-gateway:80=8080',
        '--port=ai-platform/ai-gateway:443=8443',
        '--host',
        '0.0.0.0',
        '--processor-log',
        'p.log',
        '--processor',
        'main.js',
        '--jwks',
        'https://issuer.example.com/jwks.json=./keys.json',
        '--jwks=https://other.example.com/keys=http://127.0.0.1:9000/jwks?v=1',
        '--ca-file',
        'a.pem',
        '--ca-file=b.pem',
        '--',
        '--odd-file-name.yaml',
      ),
    ).toEqual({
      paths: ['dist/platform.k8s.yaml', 'dist/team-chat.k8s.yaml', '--odd-file-name.yaml'],
      secretsDir: './secrets',
      backendOverrides: {
        'ai-platform/openai': 'http://127.0.0.1:8080',
        'ai-platform/anthropic': 'https://localhost:8443',
      },
      echo: true,
      redisUrl: 'redis://127.0.0.1:6379/0',
      ports: { 'ai-platform/ai-gateway:80': 8080, 'ai-platform/ai-gateway:443': 8443 },
      host: '0.0.0.0',
      processorLog: 'p.log',
      processorEntry: 'main.js',
      jwksOverrides: {
        'https://issuer.example.com/jwks.json': './keys.json',
        'https://other.example.com/keys': 'http://127.0.0.1:9000/jwks?v=1',
      },
      caFiles: ['a.pem', 'b.pem'],
    });
  });

  it('answers help for no arguments, help, -h and --help anywhere', () => {
    for (const args of [[], ['help'], ['-h'], ['--help'], ['dev', 'dist/', '--help'], ['dev', '-h']]) {
      expect(parseCommandLine(args)).toEqual({ command: 'help' });
    }
  });

  it('explains every flag in the help', () => {
    for (const flag of [
      '--secrets',
      '--backend',
      '--echo',
      '--redis',
      '--port',
      '--host',
      '--processor-log',
      '--processor ',
      '--jwks',
      '--ca-file',
      '--help',
    ]) {
      expect(USAGE).toContain(flag);
    }
    expect(USAGE).toContain('AI_GATEWAY_SECRET_<SECRET>_<KEY>');
  });

  it.each([
    [['deploy', 'dist/'], 'unknown command "deploy"'],
    [['dev'], 'name the manifests to run'],
    [['dev', 'dist/', '--bogus'], 'unknown option "--bogus"'],
    [['dev', 'dist/', '--secrets'], '--secrets needs a value'],
    [['dev', 'dist/', '--secrets='], '--secrets needs a value'],
    [['dev', 'dist/', '--secrets', 'a', '--secrets', 'b'], '--secrets is given twice'],
    [['dev', 'dist/', '--echo=yes'], '--echo takes no value'],
    [['dev', 'dist/', '--backend', 'openai'], '--backend needs <namespace>/<name>=<url>'],
    [['dev', 'dist/', '--backend', 'openai=http://x'], '--backend needs <namespace>/<name> before "="'],
    [['dev', 'dist/', '--backend', 'a/b/c=http://x'], '--backend needs <namespace>/<name> before "="'],
    [['dev', 'dist/', '--backend', 'a/B=http://x'], '--backend needs <namespace>/<name> before "="'],
    [['dev', 'dist/', '--backend', 'a/b=localhost:8080'], 'the URL must be http:// or https://'],
    [['dev', 'dist/', '--backend', 'a/b=not a url'], 'is not a URL'],
    [['dev', 'dist/', '--backend', 'a/b=http://x/v1'], 'cannot carry a path'],
    [['dev', 'dist/', '--backend', 'a/b=http://x', '--backend', 'a/b=http://y'], '--backend a/b is given twice'],
    [
      ['dev', 'dist/', '--port', 'ai-platform/ai-gateway=8080'],
      '--port needs <namespace>/<gateway>:<listenerPort>=<localPort>',
    ],
    [['dev', 'dist/', '--port', 'ai-gateway:80=8080'], '--port needs <namespace>/<name> before "="'],
    [['dev', 'dist/', '--port', 'a/g:http=8080'], 'the listener port must be a port from 1 to 65535'],
    [['dev', 'dist/', '--port', 'a/g:80=70000'], 'the local port must be a port from 1 to 65535'],
    [['dev', 'dist/', '--port', 'a/g:80=0'], 'the local port must be a port from 1 to 65535'],
    [['dev', 'dist/', '--port', 'a/g:80=1', '--port', 'a/g:80=2'], '--port a/g:80 is given twice'],
    [['dev', 'dist/', '--port', 'a/g:80=1', '--port', 'a/g:81=1'], 'local port 1 is given to two listeners'],
    [['dev', 'dist/', '--redis', 'localhost:6379'], '--redis must be a redis:// or rediss:// URL'],
    [['dev', 'dist/', '--jwks', 'https://issuer/jwks.json'], '--jwks needs <jwksUri>=<url|file>'],
    [['dev', 'dist/', '--jwks', 'issuer=./k.json'], 'is not the http(s) JWKS URI of a SecurityPolicy'],
    [['dev', 'dist/', '--jwks', 'https://i/j='], 'name a local URL or file after "="'],
    [['dev', 'dist/', '--jwks', 'https://i/j=a', '--jwks', 'https://i/j=b'], '--jwks https://i/j is given twice'],
  ])('rejects %j: %s', (args, message) => {
    expect(usageError(args)).toContain(message);
  });

  describe('against the manifests', () => {
    const listener = (
      port: number,
      sectionName: string,
      hostname?: string,
      protocol: 'HTTP' | 'HTTPS' = 'HTTP',
    ): ListenerModel => ({
      name: `ai-platform/ai-gateway/${sectionName}`,
      sectionName,
      port,
      protocol,
      hostname,
      routes: [],
      earlyRemoveHeaders: [],
      attachedRoutes: 0,
    });
    const model: DataPlaneModel = {
      gateways: [
        {
          namespace: 'ai-platform',
          name: 'ai-gateway',
          listeners: [
            listener(80, 'http'),
            listener(8080, 'api', '*.example.com'),
            listener(443, 'https', 'api.example.com', 'HTTPS'),
          ],
        },
      ],
      routeStatuses: [],
      processors: [],
    };
    const objects: KubeObject[] = [
      { kind: 'Backend', metadata: { namespace: 'ai-platform', name: 'openai' } },
      { kind: 'Service', metadata: { name: 'plain' } },
      { kind: 'ConfigMap', metadata: { namespace: 'ai-platform', name: 'cm' } },
    ];

    it('accepts overrides of Backends and Services and ports of listeners that exist', () => {
      expect(() =>
        checkAgainstManifests(
          dev(
            'dist/',
            '--backend',
            'ai-platform/openai=http://x',
            '--backend',
            'default/plain=http://y',
            '--port',
            'ai-platform/ai-gateway:8080=9000',
          ),
          objects,
          model,
        ),
      ).not.toThrow();
    });

    it('refuses manifests without a Gateway', () => {
      expect(() => checkAgainstManifests(dev('dist/'), objects, { ...model, gateways: [] })).toThrow(
        'the manifests in dist/ contain no Gateway',
      );
    });

    it('refuses an override of something the manifests do not contain', () => {
      expect(() => checkAgainstManifests(dev('dist/', '--backend', 'ai-platform/cm=http://x'), objects, model)).toThrow(
        '--backend ai-platform/cm: the manifests contain no Backend or Service ai-platform/cm',
      );
    });

    it('refuses a port mapping of a listener that does not exist, listing those that do', () => {
      expect(() =>
        checkAgainstManifests(dev('dist/', '--port', 'ai-platform/ai-gateway:9999=9000'), objects, model),
      ).toThrow(
        '--port ai-platform/ai-gateway:9999: no Gateway listener has that port; the listeners are ' +
          'ai-platform/ai-gateway:443, ai-platform/ai-gateway:80, ai-platform/ai-gateway:8080',
      );
    });

    it('prints one line per listener with its URL and the Host to send', () => {
      expect(listenerLines(model, (ns, name, port) => `http://127.0.0.1:${port + 1000}/${ns}/${name}`)).toEqual([
        '  Gateway ai-platform/ai-gateway listener http (HTTP 80): http://127.0.0.1:1080/ai-platform/ai-gateway',
        '  Gateway ai-platform/ai-gateway listener api (HTTP 8080): http://127.0.0.1:9080/ai-platform/ai-gateway (send Host: anything.example.com)',
        '  Gateway ai-platform/ai-gateway listener https (HTTPS 443): http://127.0.0.1:1443/ai-platform/ai-gateway (send Host: api.example.com; plain HTTP locally)',
      ]);
    });
  });

  describe('access log lines', () => {
    const entry = {
      startTime: new Date('2026-12-06T10:00:00.000Z'),
      durationMs: 12.4,
      method: 'POST',
      path: '/v1/chat/completions?key=client-secret',
      authority: 'gw',
      status: 200,
      responseFlags: [],
      responseCodeDetails: 'via_upstream',
      route: { name: 'httproute/team/chat/rule/0/match/2/*' } as ListenerModel['routes'][number],
      dynamicMetadata: new Map([['io.envoy.ai_gateway', { llm_input_token: 12, llm_output_token: 8 }]]),
    };

    it('name the request, the outcome, the route and the tokens, never the query', () => {
      expect(accessLogLine(entry)).toBe(
        '[2026-12-06T10:00:00.000Z] "POST /v1/chat/completions" 200 - via_upstream 12ms ' +
          'route=httproute/team/chat/rule/0/match/2/* tokens=12/8',
      );
    });

    it('show a reset stream, the flags and a missing route', () => {
      expect(
        accessLogLine({
          ...entry,
          status: undefined,
          responseFlags: ['NR', 'UF'],
          responseCodeDetails: undefined,
          route: undefined,
          dynamicMetadata: new Map(),
        }),
      ).toBe('[2026-12-06T10:00:00.000Z] "POST /v1/chat/completions" - NR,UF - 12ms route=-');
    });
  });
});
