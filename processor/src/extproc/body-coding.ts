/**
 * What a response body's content coding means for the processor, the same whatever the body mode: whether it can
 * decode the body (to count and translate it), and the header changes that follow for the client.
 */
import {
  createDecoder,
  decodableEncoding,
  MAX_INFLATED_BYTES,
  MAX_INFLATED_STREAM_BYTES,
  type BodyDecoder,
  type DecodeResult,
} from '../encoding';
import type { HeaderChangeSet } from './headers';

export interface BodyCoding {
  /** Set for gzip, deflate and br. */
  readonly decoder: BodyDecoder | undefined;
  /** The content-encoding (cut) of a body the processor cannot decode: zstd, stacked or unknown codings. */
  readonly undecodable: string | undefined;
}

const IDENTITY: BodyCoding = { decoder: undefined, undecodable: undefined };

/**
 * The coding of a body with `contentEncoding`, and its content-encoding header removed from `changes` where the
 * client gets bytes the processor produced (a translated body; a passthrough stream keeps its bytes and its coding).
 */
export function bodyCoding(
  contentEncoding: string | undefined,
  passthrough: boolean,
  stream: boolean,
  changes: HeaderChangeSet,
): BodyCoding {
  const encoding = decodableEncoding(contentEncoding);
  if (encoding === undefined) {
    // The body can be neither counted nor translated.
    if (!passthrough || !stream) changes.remove('content-encoding');
    return { decoder: undefined, undecodable: contentEncoding!.slice(0, 64) };
  }
  if (encoding === '') return IDENTITY;
  if (!passthrough) changes.remove('content-encoding');
  return { decoder: createDecoder(encoding), undecodable: undefined };
}

/**
 * The most bytes the next decoded chunk may add, `inflated` decoded so far: a stream may inflate to
 * MAX_INFLATED_STREAM_BYTES in all, each chunk to MAX_INFLATED_BYTES; a body read whole to MAX_INFLATED_BYTES.
 */
export function inflateLimit(streaming: boolean, inflated: number): number {
  return streaming ? Math.min(MAX_INFLATED_BYTES, MAX_INFLATED_STREAM_BYTES - inflated) : MAX_INFLATED_BYTES - inflated;
}

/** Why a body could not be read, after "the backend's response " in the client's error. */
export function decodeFailureText(
  reason: Extract<DecodeResult, { ok: false }>['reason'],
  streaming: boolean,
  undecodable: string | undefined,
): string {
  switch (reason) {
    case 'too_large':
      return `inflates beyond ${streaming ? MAX_INFLATED_STREAM_BYTES : MAX_INFLATED_BYTES} bytes`;
    case 'unsupported':
      return `uses a content encoding the gateway cannot read (${undecodable})`;
    default:
      return 'is not valid in its content encoding';
  }
}
