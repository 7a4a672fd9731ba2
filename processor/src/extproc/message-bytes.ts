/** Body bytes of ext_proc messages as Buffers, without copying. */
import type { ProcessingRequest } from '../grpc/messages';

export const EMPTY = Buffer.alloc(0);

export function toBuffer(bytes: Uint8Array | undefined): Buffer {
  if (!bytes || bytes.length === 0) return EMPTY;
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The body bytes a message carries (0 for headers and trailers). */
export function bodyBytes(request: ProcessingRequest): number {
  return (request.requestBody?.body?.length ?? 0) + (request.responseBody?.body?.length ?? 0);
}
