/**
 * A processor in a child process, for the fuzz suites whose failure would poison the test process itself: streams
 * the server never closes (they keep jest from exiting) and memory measurements (a clean heap and RSS). Started by
 * support/child-processor.ts with `node --import tsx --expose-gc`; commands and answers travel over the IPC channel.
 */
import * as fs from 'node:fs';
import type { ProcessorConfig } from '@ai-gateway-constructs/processor-config';
import { startTestProcessor, type TestProcessor } from '../processor-harness';
import { driveExchange } from '../session-driver';

export type ChildCommand =
  | { id: number; cmd: 'start'; config: ProcessorConfig; secrets: Record<string, Record<string, string>> }
  | { id: number; cmd: 'active' }
  /** Heap used after two full GCs, in bytes. */
  | { id: number; cmd: 'heap' }
  | {
      id: number;
      cmd: 'exchange';
      /** The request (a string body) and the upstream's answer; `bodyFile` holds the response body bytes. */
      path: string;
      body: string;
      status: number;
      headers: Record<string, string>;
      bodyFile: string;
      /** Split the response body into chunks of this size (each one message when streamed). */
      chunkSize: number;
      deadlineMs: number;
    };

export interface ExchangeReport {
  answered: boolean;
  error?: string;
  immediateStatus?: number;
  streamed: boolean;
  clientBytes: number;
  metadata?: Record<string, unknown>;
  /** Peak RSS during the exchange minus RSS before it, in bytes (VmHWM after a reset when Linux allows it). */
  rssGrowth: number;
  /** Heap used after the exchange and a GC minus before. */
  heapGrowth: number;
  idleRss: number;
  peakRss: number;
  ms: number;
}

let processor: TestProcessor | undefined;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

function statusKb(field: string): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Resets the kernel's peak-RSS mark (Linux); false when not possible. */
function resetPeak(): boolean {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

async function exchange(command: Extract<ChildCommand, { cmd: 'exchange' }>): Promise<ExchangeReport> {
  const bytes = fs.readFileSync(command.bodyFile);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += command.chunkSize) chunks.push(bytes.subarray(i, i + command.chunkSize));
  gc();
  gc();
  const idleHeap = process.memoryUsage().heapUsed;
  const idleRss = process.memoryUsage.rss();
  const kernelPeak = resetPeak();
  // Sampling as well, in case the kernel's mark cannot be reset.
  let sampled = idleRss;
  const sampler = setInterval(() => {
    sampled = Math.max(sampled, process.memoryUsage.rss());
  }, 2);
  const started = performance.now();
  const report: ExchangeReport = {
    answered: false,
    streamed: false,
    clientBytes: 0,
    rssGrowth: 0,
    heapGrowth: 0,
    idleRss,
    peakRss: 0,
    ms: 0,
  };
  try {
    const outcome = await driveExchange(processor!.app.processor, {
      path: command.path,
      body: command.body,
      deadlineMs: command.deadlineMs,
      upstream: () => ({ status: command.status, headers: command.headers, chunks }),
    });
    report.answered = true;
    report.immediateStatus = outcome.immediate?.status;
    report.streamed = outcome.streamed;
    report.clientBytes = outcome.clientBody.length;
    report.metadata = outcome.metadata['io.envoy.ai_gateway'];
  } catch (error) {
    report.error = (error as Error).message;
  } finally {
    clearInterval(sampler);
  }
  report.ms = performance.now() - started;
  const peak = Math.max(sampled, process.memoryUsage.rss(), (kernelPeak ? statusKb('VmHWM') : undefined) ?? 0);
  report.peakRss = peak;
  report.rssGrowth = peak - idleRss;
  gc();
  gc();
  report.heapGrowth = process.memoryUsage().heapUsed - idleHeap;
  return report;
}

process.on('message', (message: ChildCommand) => {
  void (async () => {
    try {
      let result: unknown;
      if (message.cmd === 'start') {
        processor = await startTestProcessor(message.config, { secrets: message.secrets });
        result = { address: processor.address };
      } else if (message.cmd === 'active') {
        result = processor!.app.processor.activeStreams;
      } else if (message.cmd === 'heap') {
        gc();
        gc();
        result = process.memoryUsage().heapUsed;
      } else {
        result = await exchange(message);
      }
      process.send!({ id: message.id, result });
    } catch (error) {
      process.send!({ id: message.id, error: (error as Error).stack ?? String(error) });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
