/**
 * The README's local command as a user runs it: the example's manifests written to a folder (what `npm run synth`
 * writes to dist/), `ai-gateway dev <dir>` started as a process with `--secrets`, `--backend` overrides to the
 * fakes and `--redis`, the listener URL read from its output, requests from the official SDKs (OpenAI on
 * OpenAI, nova-pro on Bedrock, the Anthropic endpoint), then SIGTERM and a clean exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { anthropicClient, HELLO, openAIClient } from './support/clients';
import { answerText } from './support/fake-providers';
import { startFakes, type StartedFakes } from './support/fakes';
import { redisUrlForTests } from '../support/redis';
import { clusterMode, ensureProcessorBundle, REPO_ROOT } from './support/harness';
import { exampleScenario, FAKE_CREDENTIALS } from './support/scenarios';

jest.setTimeout(90_000);

const describeLocal = clusterMode() ? describe.skip : describe;
const LISTENER_LINE = /Gateway ai-platform\/ai-gateway listener \S+ \(HTTP 80\): (http:\/\/\S+)/;

describeLocal('ai-gateway dev (the CLI) runs examples/cdk8s/main.ts', () => {
  const scenario = exampleScenario();
  let workDir: string;
  let fakes: StartedFakes;
  let cli: ChildProcess;
  let output = '';
  let gatewayUrl: string;

  beforeAll(async () => {
    ensureProcessorBundle();
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ai-gateway-cli-e2e-'));
    const manifests = path.join(workDir, 'dist');
    fs.mkdirSync(manifests);
    fs.writeFileSync(path.join(manifests, 'example.k8s.yaml'), scenario.objects.map((o) => stringify(o)).join('---\n'));
    const secrets = path.join(workDir, 'secrets');
    for (const [ref, value] of Object.entries(scenario.secrets)) {
      const [namespace, secret, key] = ref.split('/');
      fs.mkdirSync(path.join(secrets, namespace, secret), { recursive: true });
      fs.writeFileSync(path.join(secrets, namespace, secret, key), value);
    }
    fakes = await startFakes();
    const redisUrl = redisUrlForTests();
    const args = [
      path.join(REPO_ROOT, 'node_modules/.bin/tsx'),
      path.join(REPO_ROOT, 'lib/cli.ts'),
      'dev',
      manifests,
      '--secrets',
      secrets,
      ...Object.entries(scenario.backends).flatMap(([ref, fake]) => ['--backend', `${ref}=${fakes.fakes[fake].url}`]),
      ...(redisUrl ? ['--redis', redisUrl] : []),
    ];
    cli = spawn(process.execPath, args, {
      cwd: workDir,
      env: {
        ...process.env,
        AWS_ACCESS_KEY_ID: FAKE_CREDENTIALS.aws.accessKeyId,
        AWS_SECRET_ACCESS_KEY: FAKE_CREDENTIALS.aws.secretAccessKey,
        AWS_EC2_METADATA_DISABLED: 'true',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    gatewayUrl = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`ai-gateway dev printed no listener URL in 60 s:\n${output}`)),
        60_000,
      );
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const match = LISTENER_LINE.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      };
      cli.stdout!.on('data', onData);
      cli.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      cli.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`ai-gateway dev exited with ${code}:\n${output}`));
      });
    });
  });

  afterAll(async () => {
    if (cli && cli.exitCode === null) {
      cli.kill('SIGTERM');
      await new Promise((resolve) => cli.once('exit', resolve));
    }
    await fakes?.close();
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('serves OpenAI, Bedrock and the Anthropic endpoint from the printed URL', async () => {
    const openai = openAIClient(`${gatewayUrl}/v1`, { 'x-tenant-id': 'acme' });
    expect(
      (await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: HELLO })).choices[0].message.content,
    ).toBe(answerText('openai', 'gpt-4o-mini'));
    expect(
      (await openai.chat.completions.create({ model: 'nova-pro', messages: HELLO })).choices[0].message.content,
    ).toBe(answerText('bedrock', 'us.amazon.nova-pro-v1:0'));
    const message = await anthropicClient(`${gatewayUrl}/anthropic`, { 'x-tenant-id': 'acme' }).messages.create({
      model: 'claude-sonnet-4',
      max_tokens: 32,
      messages: HELLO,
    });
    expect(message.content[0]).toMatchObject({ type: 'text' });
    const bedrock = fakes.fakes.bedrock.requests;
    expect(bedrock.length).toBeGreaterThan(0);
    expect(bedrock.filter((r) => r.rejected !== undefined)).toEqual([]);
  });

  it('stops cleanly on SIGTERM', async () => {
    cli.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => cli.once('exit', (c) => resolve(c)));
    expect({ code, output: code === 0 ? '' : output }).toEqual({ code: 0, output: '' });
  });
});
