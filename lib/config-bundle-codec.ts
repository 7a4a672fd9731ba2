import { createHash } from 'node:crypto';
import * as zlib from 'node:zlib';
import type { ConfigBundleCodec } from '@ai-gateway-constructs/processor-config';

/**
 * Node's gzip and sha256 for the processor config bundle (the processor decodes the same format with its own).
 * zlib's default level: on 10,000 routes level 9 is 3% smaller but takes 3x as long at synth (244 ms vs 74 ms).
 */
export const NODE_BUNDLE_CODEC: ConfigBundleCodec = {
  gzip: (data) => zlib.gzipSync(data),
  gunzip: (data, maxBytes) => zlib.gunzipSync(data, { maxOutputLength: maxBytes }),
  sha256: (data) => createHash('sha256').update(data).digest('hex'),
};
