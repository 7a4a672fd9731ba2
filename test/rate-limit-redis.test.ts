import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { Chart, Testing } from 'cdk8s';
import { RateLimitRedis, REDIS_DEFAULT_IMAGE, type InClusterRedisProps } from '../lib';
import { manifestProblems } from './support/manifests';
import { describeWithShared } from './support/shared';
import { findAll, findOne, synthAll } from './support/synth';

function inCluster(props: InClusterRedisProps = {}) {
  const app = Testing.app();
  const redis = RateLimitRedis.inCluster(new Chart(app, 'infra', { namespace: 'infra' }), 'Redis', props);
  return { app, redis };
}

const redisContainer = (all: ReturnType<typeof synthAll>) =>
  (findOne(all, 'Deployment', 'redis') as any).spec.template.spec.containers[0];

describe('RateLimitRedis', () => {
  it('runs an in-cluster Redis with a Service and a restricted security context', () => {
    const { app, redis } = inCluster();
    const all = synthAll(app);
    const container = redisContainer(all);
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 999,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(findOne(all, 'Service', 'redis').spec.ports).toEqual([{ name: 'redis', port: 6379, targetPort: 6379 }]);
    expect(redis.url).toBe('redis.infra.svc.cluster.local:6379');
  });

  it('runs an image pinned by digest, pulled only when missing', () => {
    const container = redisContainer(synthAll(inCluster().app));
    expect(container.image).toBe(
      'docker.io/library/redis:7.4.11-alpine@sha256:ff02b58f971e7d7d156a1267e283fcbbeee91773b6aa36c49dac28ecfe28eadf',
    );
    expect(container.image).toBe(REDIS_DEFAULT_IMAGE);
    expect(container.image).toMatch(/@sha256:[0-9a-f]{64}$/);
    expect(container.imagePullPolicy).toBe('IfNotPresent');
    expect(
      redisContainer(synthAll(inCluster({ image: 'registry.internal/redis@sha256:' + 'b'.repeat(64) }).app)).image,
    ).toBe(`registry.internal/redis@sha256:${'b'.repeat(64)}`);
  });

  it('requires a password from a Secret, which no emitted object or argument contains', () => {
    const { app, redis } = inCluster();
    const all = synthAll(app);
    const container = redisContainer(all);
    expect(container.env).toEqual([
      { name: 'REDISCLI_AUTH', valueFrom: { secretKeyRef: { name: 'redis-auth', key: 'password' } } },
    ]);
    expect(container.command.join(' ')).toContain('requirepass $REDISCLI_AUTH');
    expect(container.args).toBeUndefined();
    // Ready only on PONG: redis-cli exits 0 on NOAUTH too.
    expect(container.readinessProbe.exec.command).toEqual(['sh', '-c', 'redis-cli ping | grep -qx PONG']);
    expect(findAll(all, 'Secret')).toEqual([]);
    expect(findAll(all, 'ConfigMap')).toEqual([]);
    expect(redis.passwordSecret).toEqual({ secretName: 'redis-auth', key: 'password' });
  });

  it("admits only Envoy Gateway's rate-limit pods to Redis", () => {
    const policy = findOne(synthAll(inCluster().app), 'NetworkPolicy', 'redis');
    expect(policy.metadata.namespace).toBe('infra');
    expect(policy.spec).toEqual({
      podSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis', 'app.kubernetes.io/instance': 'redis' } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'envoy-gateway-system' } },
              podSelector: {
                matchLabels: {
                  'app.kubernetes.io/name': 'envoy-ratelimit',
                  'app.kubernetes.io/component': 'ratelimit',
                  'app.kubernetes.io/managed-by': 'envoy-gateway',
                },
              },
            },
          ],
          ports: [{ protocol: 'TCP', port: 6379 }],
        },
      ],
    });
    const elsewhere = findOne(synthAll(inCluster({ envoyGatewayNamespace: 'eg' }).app), 'NetworkPolicy', 'redis');
    expect(elsewhere.spec.ingress[0].from[0].namespaceSelector).toEqual({
      matchLabels: { 'kubernetes.io/metadata.name': 'eg' },
    });
  });

  it(
    'gives the Envoy Gateway Helm values for Redis rate limiting, the Backend API and the ' +
      "rate-limit service's REDIS_AUTH",
    () => {
      expect(inCluster().redis.helmValues).toEqual({
        config: {
          envoyGateway: {
            extensionApis: { enableBackend: true },
            rateLimit: { backend: { type: 'Redis', redis: { url: 'redis.infra.svc.cluster.local:6379' } } },
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
          },
        },
      });
    },
  );

  it('takes the password Secret and key, for Redis and the rate-limit service alike', () => {
    const { app, redis } = inCluster({ name: 'budgets', passwordSecret: { secretName: 'budget-redis', key: 'pw' } });
    const container = (findOne(synthAll(app), 'Deployment', 'budgets') as any).spec.template.spec.containers[0];
    expect(container.env).toEqual([
      { name: 'REDISCLI_AUTH', valueFrom: { secretKeyRef: { name: 'budget-redis', key: 'pw' } } },
    ]);
    expect(redis.helmValues.config.envoyGateway.provider?.kubernetes.rateLimitDeployment.container.env).toEqual([
      { name: 'REDIS_AUTH', valueFrom: { secretKeyRef: { name: 'budget-redis', key: 'pw' } } },
    ]);
    expect(inCluster({ name: 'budgets' }).redis.passwordSecret).toEqual({
      secretName: 'budgets-auth',
      key: 'password',
    });
  });

  it('points at an external Redis without emitting objects, with or without a password', () => {
    const app = Testing.app();
    const redis = RateLimitRedis.external(new Chart(app, 'infra'), 'Redis', { url: 'cache.example.internal:6380' });
    expect(synthAll(app)).toEqual([]);
    expect(redis.helmValues.config.envoyGateway.rateLimit.backend.redis.url).toBe('cache.example.internal:6380');
    expect(redis.helmValues.config.envoyGateway.provider).toBeUndefined();

    const secured = RateLimitRedis.external(new Chart(Testing.app(), 'infra'), 'Redis', {
      url: 'cache:6380',
      passwordSecret: { secretName: 'cache-auth' },
    });
    expect(secured.helmValues.config.envoyGateway.provider).toEqual({
      type: 'Kubernetes',
      kubernetes: {
        rateLimitDeployment: {
          container: {
            env: [{ name: 'REDIS_AUTH', valueFrom: { secretKeyRef: { name: 'cache-auth', key: 'password' } } }],
          },
        },
      },
    });
  });

  it('throws if the external URL is not host:port', () => {
    const app = Testing.app();
    expect(() => RateLimitRedis.external(new Chart(app, 'infra'), 'Redis', { url: 'redis://cache:6379' })).toThrow(
      /infra\/Redis: invalid url "redis:\/\/cache:6379": must be "host:port"/,
    );
  });

  it('throws if the password Secret name or key is not one Kubernetes accepts', () => {
    expect(() => inCluster({ passwordSecret: { secretName: 'Redis_Auth' } })).toThrow(
      'infra/Redis: invalid passwordSecret.secretName "Redis_Auth": must be a Secret name (a ' +
        'lower-case DNS subdomain of at most 253 characters)',
    );
    expect(() => inCluster({ passwordSecret: { secretName: 'redis-auth', key: 'a/b' } })).toThrow(
      'infra/Redis: invalid passwordSecret.key "a/b": must be a Secret key (letters, digits, "-", "_", ".")',
    );
  });
});

describeWithShared('crds/jsonschema', 'RateLimitRedis manifests', (jsonschemaDir) => {
  it('validate against the Kubernetes types', () => {
    expect(manifestProblems(synthAll(inCluster().app), jsonschemaDir)).toEqual([]);
  });
});

/** A free TCP port on the loopback interface. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function redisCli(port: number, password: string | undefined, ...command: string[]): string {
  const env = { ...process.env };
  delete env.REDISCLI_AUTH;
  if (password !== undefined) env.REDISCLI_AUTH = password;
  return spawnSync('redis-cli', ['-p', String(port), ...command], { env, encoding: 'utf8' }).stdout.trim();
}

const haveRedis =
  spawnSync('redis-server', ['--version']).status === 0 && spawnSync('redis-cli', ['--version']).status === 0;
if (!haveRedis)
  process.stdout.write(
    'SKIPPED: redis-server/redis-cli are not installed, so the in-cluster Redis start command is not run\n',
  );

(haveRedis ? describe : describe.skip)('the in-cluster Redis start command, run with redis-server', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    child = undefined;
  });

  it(
    "requires the Secret's password, keeps it out of the process arguments, and is ready only " + 'when authenticated',
    async () => {
      const container = redisContainer(synthAll(inCluster().app));
      const port = await freePort();
      const password = 'f00dfeed0123456789abcdef';
      // The container's command as is, on a free port instead of 6379.
      const [shell, flag, script] = container.command as string[];
      const onPort = script.replace('redis-server -', `redis-server - --port ${port} --bind 127.0.0.1`);
      expect(onPort).not.toBe(script);
      child = spawn(shell, [flag, onPort], {
        env: { PATH: process.env.PATH, REDISCLI_AUTH: password },
        stdio: 'ignore',
        cwd: fs.mkdtempSync('/tmp/redis-cmd-'),
      });
      const deadline = Date.now() + 10_000;
      while (redisCli(port, password, 'ping') !== 'PONG') {
        if (Date.now() > deadline) throw new Error('redis-server did not answer PONG within 10 s');
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(redisCli(port, undefined, 'set', 'budget', '0')).toMatch(/NOAUTH/);
      expect(redisCli(port, 'wrong', 'set', 'budget', '0')).toMatch(/NOAUTH/); // redis-cli's AUTH failed, so the command is refused
      // The start script exec'd redis-server: its arguments hold no password.
      if (process.platform === 'linux') {
        const args = fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8');
        expect(args).toContain('redis-server');
        expect(args).not.toContain(password);
      }
      // The readiness probe's command, with and without the password.
      const probe = (pw: string | undefined) =>
        spawnSync(
          'sh',
          ['-c', (container.readinessProbe.exec.command[2] as string).replace('redis-cli', `redis-cli -p ${port}`)],
          {
            env: { PATH: process.env.PATH, ...(pw !== undefined ? { REDISCLI_AUTH: pw } : {}) },
          },
        ).status;
      expect(probe(password)).toBe(0);
      expect(probe('wrong')).not.toBe(0);
      expect(probe(undefined)).not.toBe(0);
    },
    20_000,
  );
});
