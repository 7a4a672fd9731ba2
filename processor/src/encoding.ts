import * as zlib from 'node:zlib';

/**
 * The most bytes one response may inflate to while the processor reads it (a buffered body in total, a streamed
 * body per chunk). Envoy buffers at most the gateway's buffer limit of compressed bytes; a provider's answer
 * compresses maybe 10:1, so anything far beyond that is a compression bomb, not an answer.
 */
export const MAX_INFLATED_BYTES = 32 * 1024 * 1024;
/**
 * The most bytes a streamed response may inflate to in total. Streamed chunks are forwarded as they come, but at
 * gzip's ratio of about 1000:1 every 16 KiB chunk could inflate to 16 MiB while staying under the per-chunk bound.
 */
export const MAX_INFLATED_STREAM_BYTES = 256 * 1024 * 1024;

export type DecodeResult =
  | { ok: true; bytes: Buffer }
  /**
   * `corrupt`: not valid in the declared encoding; `too_large`: inflates beyond the limit; `unsupported`: an
   * encoding the processor does not decode.
   */
  | { ok: false; reason: 'corrupt' | 'too_large' | 'unsupported' };

/** Incremental Content-Encoding decoder for response bodies (gzip, deflate, br). */
export interface BodyDecoder {
  /**
   * The bytes this chunk decodes to. Always settles, also for input after the end of the compressed data
   * (ignored) and after a failure (which sticks). `maxOutput` bounds what this call may produce.
   */
  push(chunk: Buffer, end: boolean, maxOutput: number): Promise<DecodeResult>;
}

export function isSupportedEncoding(encoding: string | undefined): boolean {
  return encoding === 'gzip' || encoding === 'x-gzip' || encoding === 'deflate' || encoding === 'br';
}

/**
 * The decodable encoding of a `content-encoding` value: '' for none (or only `identity`), the encoding when it is
 * one the processor decodes, undefined for anything else (zstd, stacked encodings, unknown tokens).
 */
export function decodableEncoding(header: string | undefined): string | undefined {
  if (header === undefined) return '';
  const codings = header
    .toLowerCase()
    .split(',')
    .map((coding) => coding.trim())
    .filter((coding) => coding !== '' && coding !== 'identity');
  if (codings.length === 0) return '';
  return codings.length === 1 && isSupportedEncoding(codings[0]) ? codings[0] : undefined;
}

/**
 * The client's `accept-encoding` reduced to the codings the processor can decode (q-values kept), so a provider
 * never answers in one it cannot read for usage; undefined when nothing has to change.
 */
export function decodableAcceptEncoding(header: string): string | undefined {
  const items = header
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  const kept = items.filter((item) => {
    const coding = item.split(';')[0].trim().toLowerCase();
    return coding === 'identity' || coding === '*' ? coding === 'identity' : isSupportedEncoding(coding);
  });
  return kept.length === items.length ? undefined : kept.join(', ');
}

export function createDecoder(encoding: string): BodyDecoder {
  const stream: zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress =
    encoding === 'br'
      ? zlib.createBrotliDecompress()
      : encoding === 'deflate'
        ? zlib.createInflate()
        : zlib.createGunzip();
  return new StreamDecoder(stream);
}

type Zlib = zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress;

class StreamDecoder implements BodyDecoder {
  private failure: 'corrupt' | 'too_large' | undefined;
  /** The compressed data ended (its trailer was read): later bytes are not part of the body's content. */
  private ended = false;
  private output: Buffer[] = [];
  private outputBytes = 0;
  private limit = Infinity;
  /** Settles the push in progress. */
  private settle: (() => void) | undefined;

  constructor(private readonly stream: Zlib) {
    stream.on('data', (data: Buffer) => {
      this.outputBytes += data.length;
      if (this.outputBytes > this.limit) {
        this.fail('too_large');
        return;
      }
      this.output.push(data);
    });
    stream.on('error', () => this.fail('corrupt'));
    stream.on('end', () => {
      this.ended = true;
      this.settle?.();
    });
  }

  push(chunk: Buffer, end: boolean, maxOutput: number): Promise<DecodeResult> {
    if (this.failure) return Promise.resolve({ ok: false, reason: this.failure });
    if (this.ended || this.stream.destroyed) return Promise.resolve({ ok: true, bytes: Buffer.alloc(0) });
    this.limit = maxOutput;
    this.outputBytes = 0;
    return new Promise((resolve) => {
      this.settle = () => {
        this.settle = undefined;
        const out = this.output;
        this.output = [];
        resolve(
          this.failure
            ? { ok: false, reason: this.failure }
            : { ok: true, bytes: out.length === 1 ? out[0] : Buffer.concat(out) },
        );
      };
      if (end) {
        this.stream.end(chunk);
        // 'end' settles once all output is read; a stream that ended early (trailing bytes) already did.
      } else {
        this.stream.write(chunk);
        this.stream.flush(() => this.settle?.());
      }
    });
  }

  private fail(reason: 'corrupt' | 'too_large'): void {
    if (this.failure) return;
    this.failure = reason;
    this.output = [];
    this.stream.destroy();
    this.settle?.();
  }
}
