/**
 * `npx tsx bench/tracing-span.bench.ts` (not part of `npm run bench`): the span path of one request alone, in this
 * process — start, route, response facts, end, batch, serialize, export over OTLP/HTTP to a sink in a child process
 * — as CPU per span, for profiling tracing (`node --import tsx --cpu-prof bench/tracing-span.bench.ts`).
 * BENCH_SPANS=<n> spans (default 200,000); BENCH_TRACEPARENT=1 continues a remote parent instead of starting traces;
 * BENCH_SSE=1 reads a 50-chunk stream instead of one JSON answer.
 */
import { spawn } from 'node:child_process';
import { createTracer } from '../src/tracing';
import type { TokenUsage } from '../src/translate/types';

const JSON_ANSWER = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-123',
    object: 'chat.completion',
    model: 'gpt-4o-2024-08-06',
    choices: [
      { index: 0, message: { role: 'assistant', content: 'Hello! How can I help? '.repeat(8) }, finish_reason: 'stop' },
    ],
    usage: { prompt_tokens: 352, completion_tokens: 72, total_tokens: 424 },
  }),
);
const SSE_CHUNK = Buffer.from(
  `data: ${JSON.stringify({
    id: 'chatcmpl-123',
    object: 'chat.completion.chunk',
    model: 'gpt-4o',
    choices: [{ index: 0, delta: { content: 'token ' }, finish_reason: null }],
  })}\n\n`,
);
const USAGE: TokenUsage = { input: 352, output: 72, total: 424, cachedInput: 0, reasoning: 0 };
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

async function main(): Promise<void> {
  const sink = spawn(
    process.execPath,
    [
      '-e',
      "const s = require('node:http').createServer((q, r) => { q.resume(); q.on('end', () => " +
        "r.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()); });" +
        "s.listen(0, '127.0.0.1', () => console.log(s.address().port));",
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<string>((resolve) =>
    sink.stdout.once('data', (data: Buffer) => resolve(data.toString().trim())),
  );
  const tracer = createTracer({
    endpoint: `http://127.0.0.1:${port}/v1/traces`,
    serviceName: 'bench',
    samplingRatio: 1,
    contentMaxBytes: 0,
  });
  const count = Number(process.env.BENCH_SPANS ?? 200_000);
  const traceparent = process.env.BENCH_TRACEPARENT ? TRACEPARENT : undefined;
  const chunks = process.env.BENCH_SSE ? Array.from({ length: 50 }, () => SSE_CHUNK) : [JSON_ANSWER];
  const one = (): void => {
    const span = tracer.start(traceparent, undefined);
    span.routed({
      api: 'OpenAI',
      operation: 'chat',
      requestModel: 'gpt-4o',
      upstreamModel: 'gpt-4o',
      modelRule: 'gpt-4o',
      route: 'default/chat',
      backend: 'openai',
      backendSchema: 'OpenAI',
      consumer: 'acme',
      stream: chunks.length > 1,
    });
    span.responseStatus(200);
    for (const chunk of chunks) span.responseBytes(chunk);
    span.end({ usage: USAGE });
  };
  // Batches of 500 with a turn of the event loop between them, as a busy server runs; exports happen in between.
  const run = async (spans: number): Promise<number> => {
    const before = process.cpuUsage();
    for (let done = 0; done < spans;) {
      for (let i = 0; i < 500 && done < spans; i++, done++) one();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const used = process.cpuUsage(before);
    return (used.user + used.system) / spans;
  };
  await run(10_000);
  const perSpan = await run(count);
  await tracer.shutdown(10_000);
  console.log(`${perSpan.toFixed(2)} µs of CPU per span (${count} spans, ${chunks.length} response chunk(s) each)`);
  sink.kill();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
