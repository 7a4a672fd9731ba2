/**
 * Runs the processor in a child process (support/child/processor-child.ts under tsx) and talks to it over IPC:
 * its gRPC address, its active stream count, and in-process exchanges with memory measurements. The child is
 * killed when the test is done, so whatever it leaks (open streams, memory) cannot keep jest from exiting.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import type { ChildCommand, ExchangeReport } from './child/processor-child';

const CHILD = path.join(__dirname, 'child', 'processor-child.ts');

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export class ChildProcessor {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private stderr = '';
  address = '';

  private constructor(readonly child: ChildProcess) {
    child.on('message', (message: { id: number; result?: unknown; error?: string }) => {
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.error !== undefined) waiter?.reject(new Error(`in the child processor: ${message.error}`));
      else waiter?.resolve(message.result);
    });
    child.stderr?.on('data', (data: Buffer) => {
      this.stderr = (this.stderr + data.toString()).slice(-4000);
    });
    child.on('exit', (code, signal) => {
      for (const waiter of this.pending.values())
        waiter.reject(new Error(`the child processor exited (${code ?? signal}); stderr: ${this.stderr}`));
      this.pending.clear();
    });
  }

  static async start(
    config: ProcessorConfig,
    secrets: Record<string, Record<string, string>> = {},
  ): Promise<ChildProcessor> {
    const child = fork(CHILD, [], {
      execArgv: ['--import', 'tsx', '--expose-gc'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    const processor = new ChildProcessor(child);
    const { address } = (await processor.call({ cmd: 'start', config, secrets }, 30_000)) as { address: string };
    processor.address = address;
    return processor;
  }

  call(command: WithoutId<ChildCommand>, timeoutMs: number): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the child processor did not answer ${command.cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.child.send({ ...command, id });
    });
  }

  async activeStreams(): Promise<number> {
    return (await this.call({ cmd: 'active' }, 5000)) as number;
  }

  async heapUsed(): Promise<number> {
    return (await this.call({ cmd: 'heap' }, 10_000)) as number;
  }

  exchange(command: WithoutId<Extract<ChildCommand, { cmd: 'exchange' }>>, timeoutMs: number): Promise<ExchangeReport> {
    return this.call(command, timeoutMs) as Promise<ExchangeReport>;
  }

  /** Kills the child (SIGKILL: a processor with streams it never closed would not exit on its own). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGKILL');
    await exited;
  }
}
