/**
 * The built processor's lifecycle as a process: early-cancelled streams do not hold the shutdown, the shutdown
 * delay keeps serving while readiness is 503, and unexpected errors are logged without secrets (a rejection
 * keeps the process serving; an uncaught exception drains, then exits 1).
 */
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as path from 'node:path';
import { EnvoyClient, type UpstreamResponse } from '../support/envoy-client';
import { testConfig } from '../support/processor-harness';
import { http2EarlyCancels, rawEarlyCancels } from '../grpc/early-cancel';
import { copyDist, freePort, run, waitFor, type Running } from './built';

describe('the built processor lifecycle', () => {
  let dir: string;
  let configFile: string;

  beforeAll(() => {
    dir = copyDist('aigw-lifecycle-');
    configFile = path.join(dir, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify(testConfig()));
    // Test-only signals to raise an unhandled rejection and an uncaught exception inside the processor; each error
    // carries a credential-like property that must never reach the logs.
    fs.writeFileSync(
      path.join(dir, 'faults.js'),
      `process.on('SIGUSR2', () => {
         const error = new Error('rejected on purpose');
         error.config = { headers: { authorization: 'Bearer LEAKED-IN-ERROR' } };
         Promise.reject(error);
       });
       process.on('SIGHUP', () => {
         const error = new TypeError('thrown on purpose');
         error.response = { headers: { 'x-api-key': 'LEAKED-IN-ERROR' } };
         setImmediate(() => { throw error; });
       });\n`,
    );
  }, 60_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function start(extra: string[], nodeArgs: string[] = []): Promise<Running & { listen: string; admin: string }> {
    const listen = `127.0.0.1:${await freePort()}`;
    const admin = `127.0.0.1:${await freePort()}`;
    const running = run(
      dir,
      ['--config', configFile, '--secrets-dir', dir, '--listen', listen, '--admin', admin, ...extra],
      nodeArgs,
    );
    await waitFor(() => running.stdout.length > 0, `the ready line (stderr: ${running.stderr()})`);
    return { ...running, listen, admin };
  }

  async function metric(admin: string, name: string): Promise<number | undefined> {
    const text = await (await fetch(`http://${admin}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.slice(name.length + 1));
  }

  const ok = (): UpstreamResponse => ({
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: '{"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}',
  });

  it(
    '10,000 early-cancelled streams leave no session open, and SIGTERM then exits well under ' + 'the drain timeout',
    async () => {
      const p = await start(['--drain-timeout-ms', '20000']);
      // Streams reset right after their first message: RST_STREAM NO_ERROR (as Envoy resets) from node:http2 in the
      // same tick as the message, and raw frames where HEADERS, DATA and RST_STREAM arrive in one read.
      const cancels = await http2EarlyCancels(p.listen, 7900);
      const port = Number(p.listen.split(':')[1]);
      for (let i = 0; i < 3; i++)
        await rawEarlyCancels(port, 700, { code: http2.constants.NGHTTP2_NO_ERROR, settleMs: 50 });
      let active = await metric(p.admin, 'ai_gateway_active_streams');
      for (let i = 0; i < 100 && active !== 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        active = await metric(p.admin, 'ai_gateway_active_streams');
      }
      const client = new EnvoyClient(p.listen);
      expect((await client.exchange({ path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' }, ok)).status).toBe(
        200,
      );
      client.close();

      // The early-cancelling connections stay open, as Envoy's would.
      const started = Date.now();
      p.child.kill('SIGTERM');
      const code = await p.exited;
      const exitMs = Date.now() - started;
      cancels.close();
      expect({ active, code, completed: p.stderr().includes('"completed":true') }).toEqual({
        active: 0,
        code: 0,
        completed: true,
      });
      expect(exitMs).toBeLessThan(3000);
    },
    60_000,
  );

  it('keeps serving during the shutdown delay with readiness 503, then drains and exits 0', async () => {
    const p = await start(['--shutdown-delay-ms', '1500', '--drain-timeout-ms', '5000']);
    expect((await fetch(`http://${p.admin}/readyz`)).status).toBe(200);
    const started = Date.now();
    p.child.kill('SIGTERM');
    await waitFor(() => p.stderr().includes('still serving'), 'the shutdown to start');
    expect((await fetch(`http://${p.admin}/readyz`)).status).toBe(503);
    // A new stream on a new connection during the delay is served.
    const late = new EnvoyClient(p.listen);
    const result = await late.exchange({ path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' }, ok);
    late.close();
    expect(result.status).toBe(200);
    expect(result.metadata['io.envoy.ai_gateway']).toMatchObject({ llm_total_token: 2 });
    expect(p.stderr()).not.toContain('"draining"');
    await waitFor(() => p.stderr().includes('"draining"'), 'the drain after the delay', 3000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    expect(await p.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(3500);
  }, 30_000);

  it('logs an unhandled rejection without secrets, counts it and keeps serving', async () => {
    const p = await start([], ['--require', path.join(dir, 'faults.js')]);
    p.child.kill('SIGUSR2');
    await waitFor(() => p.stderr().includes('unhandled promise rejection'), 'the rejection to be logged');
    expect(await metric(p.admin, 'ai_gateway_unhandled_rejections_total')).toBe(1);
    const client = new EnvoyClient(p.listen);
    expect((await client.exchange({ path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' }, ok)).status).toBe(200);
    client.close();
    expect((await fetch(`http://${p.admin}/readyz`)).status).toBe(200);
    expect(p.stderr()).toContain('rejected on purpose');
    expect(p.stderr()).not.toContain('LEAKED-IN-ERROR');
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  }, 30_000);

  it('on an uncaught exception stops being ready, lets the in-flight stream finish, then exits 1', async () => {
    const p = await start(['--drain-timeout-ms', '5000'], ['--require', path.join(dir, 'faults.js')]);
    const client = new EnvoyClient(p.listen);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let upstreamReached!: () => void;
    const reached = new Promise<void>((resolve) => (upstreamReached = resolve));
    const inFlight = client.exchange({ path: '/v1/chat/completions', body: '{"model":"gpt-4o"}' }, async () => {
      upstreamReached();
      await released;
      return ok();
    });
    await reached;
    p.child.kill('SIGHUP');
    await waitFor(() => p.stderr().includes('uncaught exception'), 'the exception to be logged');
    expect((await fetch(`http://${p.admin}/readyz`)).status).toBe(503);
    release();
    expect((await inFlight).status).toBe(200);
    client.close();
    expect(await p.exited).toBe(1);
    const logs = p.stderr();
    expect(logs).toContain('thrown on purpose');
    expect(logs).toContain('TypeError');
    expect(logs).toContain('"completed":true');
    expect(logs).not.toContain('LEAKED-IN-ERROR');
  }, 30_000);
});
