import * as zlib from 'node:zlib';

/** Incremental Content-Encoding decoder for response bodies (gzip, deflate, br). */
export interface BodyDecoder {
  /** Resolves with the bytes decoded so far from this chunk; after a decoding error, with nothing. */
  push(chunk: Buffer, end: boolean): Promise<Buffer>;
  readonly failed: boolean;
}

export function isSupportedEncoding(encoding: string | undefined): boolean {
  return encoding === 'gzip' || encoding === 'x-gzip' || encoding === 'deflate' || encoding === 'br';
}

export function createDecoder(encoding: string): BodyDecoder {
  const stream: zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress =
    encoding === 'br' ? zlib.createBrotliDecompress() : encoding === 'deflate' ? zlib.createInflate() : zlib.createGunzip();
  return new StreamDecoder(stream);
}

class StreamDecoder implements BodyDecoder {
  failed = false;
  private output: Buffer[] = [];

  constructor(private readonly stream: zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress) {
    stream.on('data', (data: Buffer) => this.output.push(data));
    stream.on('error', () => {
      this.failed = true;
    });
  }

  push(chunk: Buffer, end: boolean): Promise<Buffer> {
    if (this.failed) return Promise.resolve(Buffer.alloc(0));
    return new Promise((resolve) => {
      const done = (): void => {
        const out = this.failed ? Buffer.alloc(0) : Buffer.concat(this.output);
        this.output = [];
        resolve(out);
      };
      this.stream.once('error', done);
      const finish = (): void => {
        this.stream.off('error', done);
        done();
      };
      if (end) {
        this.stream.once('end', finish);
        this.stream.end(chunk);
      } else {
        this.stream.write(chunk);
        this.stream.flush(finish);
      }
    });
  }
}
