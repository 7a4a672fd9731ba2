/**
 * The span exporter on the maintained OTLP/HTTP transport: it posts our encoding to the endpoint URL as
 * `application/x-protobuf`, keeps the transport's behaviour (OTEL_EXPORTER_OTLP_HEADERS, a retry after 503, no retry
 * after 400) and reads a partial-success answer with the maintained deserializer. The export itself runs in a child
 * process (support/child/otlp-export-child.ts): the transport's dynamic `import('http')` does not run under Jest.
 */
import { execFile } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { traceSerializer } from '../../src/tracing/otlp-exporter';

interface Received {
  url: string | undefined;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

async function receiver(answers: number[]) {
  const received: Received[] = [];
  const server = http.createServer((request, response) => {
    const parts: Buffer[] = [];
    request.on('data', (part: Buffer) => parts.push(part));
    request.on('end', () => {
      received.push({ url: request.url, headers: request.headers, body: Buffer.concat(parts) });
      response.writeHead(answers.shift() ?? 200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function exportOnce(url: string, env: NodeJS.ProcessEnv): Promise<{ code: number; body: string }> {
  const child = path.join(__dirname, '..', 'support', 'child', 'otlp-export-child.ts');
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ['--import', 'tsx', child, url],
      { env: { ...process.env, ...env }, timeout: 30_000 },
      (error, stdout) => {
        if (error) reject(new Error(`the export child failed: ${error.message}`));
        else resolve(JSON.parse(stdout) as { code: number; body: string });
      },
    ),
  );
}

describe('OtlpSpanExporter', () => {
  it('posts our encoding with the environment headers, and retries after a 503', async () => {
    const sink = await receiver([503]);
    try {
      const result = await exportOnce(`${sink.url}/v1/traces`, { OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=acme' });
      expect(result.code).toBe(0);
      expect(sink.received).toHaveLength(2);
      for (const request of sink.received) {
        expect(request.url).toBe('/v1/traces');
        expect(request.headers['content-type']).toBe('application/x-protobuf');
        expect(request.headers['x-tenant']).toBe('acme');
        expect(request.body.toString('hex')).toBe(result.body);
      }
    } finally {
      await sink.close();
    }
  });

  it('fails an export the collector refuses for good, without retrying', async () => {
    const sink = await receiver([400]);
    try {
      const result = await exportOnce(`${sink.url}/custom/path`, {});
      expect(result.code).toBe(1);
      expect(sink.received.map((request) => request.url)).toEqual(['/custom/path']);
    } finally {
      await sink.close();
    }
  });

  it('reads a partial success with the maintained deserializer', () => {
    // ExportTraceServiceResponse { partial_success (1) { rejected_spans (1) = 3, error_message (2) = "full" } }
    const answer = Buffer.from([0x0a, 0x08, 0x08, 0x03, 0x12, 0x04, ...Buffer.from('full')]);
    const decoded = traceSerializer.deserializeResponse(answer) as {
      partialSuccess?: { rejectedSpans?: unknown; errorMessage?: string };
    };
    expect(Number(decoded.partialSuccess?.rejectedSpans)).toBe(3);
    expect(decoded.partialSuccess?.errorMessage).toBe('full');
  });
});
