/** The built processor (dist/, copied alone into a temp dir: no node_modules) as a child process, for tests. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const PROCESSOR_DIR = path.resolve(__dirname, '..', '..');
const DIST = path.join(PROCESSOR_DIR, 'dist', 'main.js');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(full) : fs.statSync(full).mtimeMs);
  }
  return newest;
}

/** Builds when dist/main.js is missing or older than the sources (`npm test` builds before jest). */
export function ensureBuilt(): void {
  if (fs.existsSync(DIST) && fs.statSync(DIST).mtimeMs >= newestSource(path.join(PROCESSOR_DIR, 'src'))) return;
  execFileSync(process.execPath, [path.join(PROCESSOR_DIR, 'scripts', 'build.mjs')], {
    cwd: PROCESSOR_DIR,
    stdio: 'inherit',
  });
}

/** Builds if needed and copies dist/ alone into a new temp dir; returns the dir. */
export function copyDist(prefix: string): string {
  ensureBuilt();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  for (const file of fs.readdirSync(path.dirname(DIST)))
    fs.copyFileSync(path.join(path.dirname(DIST), file), path.join(dir, file));
  return dir;
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Running {
  child: ChildProcess;
  stdout: string[];
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Every processor a test started; whatever a test left running (a failed assertion midway) is killed after it. */
const started = new Set<ChildProcess>();
afterEach(() => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  started.clear();
});

/** Runs `<dir>/main.js` with `args` (and node options such as `--require <preload>` before it). */
export function run(dir: string, args: string[], nodeArgs: string[] = []): Running {
  const child = spawn(process.execPath, [...nodeArgs, path.join(dir, 'main.js'), ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '' },
  });
  started.add(child);
  const stdout: string[] = [];
  let stderr = '';
  let buffer = '';
  child.stdout.on('data', (data: Buffer) => {
    buffer += data.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    stdout.push(...lines);
  });
  child.stderr.on('data', (data: Buffer) => {
    stderr += data.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout, stderr: () => stderr, exited };
}

export async function waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
