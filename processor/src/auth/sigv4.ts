/**
 * AWS Signature Version 4 over the final upstream request. Only `host`, `x-amz-date` and (for temporary
 * credentials) `x-amz-security-token` are signed: Envoy may add or rewrite other headers after the
 * processor answers.
 *
 * The signing key comes from @smithy/signature-v4 (`getSigningKey`, with a node:crypto SHA-256) and is
 * cached per day, region, service and credentials; the canonical request and the signature are computed
 * directly with node:crypto. The full smithy `SignatureV4.sign` produced the same signatures at four times
 * the CPU and garbage per request (see docs/benchmarks.md); hashes are one-shot and the HMAC reuses the key's
 * pads, so no Hash object is created per request; the tests check this signer against it, against
 * AWS's published test vectors and against an independent implementation.
 */
import * as crypto from 'node:crypto';
import { getCanonicalQuery, getSigningKey } from '@smithy/signature-v4';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

type SourceData = string | ArrayBuffer | ArrayBufferView;

/** node:crypto takes strings and views as they are; only a bare ArrayBuffer needs wrapping. */
function toBytes(data: SourceData): string | ArrayBufferView {
  return typeof data === 'string' || ArrayBuffer.isView(data) ? data : new Uint8Array(data);
}

/** The smithy `Checksum` shape: SHA-256, or HMAC-SHA256 when constructed with a secret. */
export class NodeSha256 {
  private hash: crypto.Hash | crypto.Hmac;

  constructor(private readonly secret?: SourceData) {
    this.hash = this.create();
  }

  update(data: Uint8Array | string): void {
    this.hash.update(data);
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.hash.digest());
  }

  reset(): void {
    this.hash = this.create();
  }

  private create(): crypto.Hash | crypto.Hmac {
    return this.secret === undefined
      ? crypto.createHash('sha256')
      : crypto.createHmac('sha256', toBytes(this.secret) as crypto.BinaryLike);
  }
}

export interface SignableRequest {
  method: string;
  /** The upstream host name (what Envoy sends as Host after the route rewrites it). */
  hostname: string;
  /** Path including any query string. */
  path: string;
  body: Uint8Array | string;
}

export interface SignedHeaders {
  authorization: string;
  'x-amz-date': string;
  'x-amz-security-token'?: string;
}

/** Raised for signing problems; its message never includes key material. */
export class AwsSigningError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AwsSigningError';
  }
}

function splitQuery(query: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(query)) {
    const existing = out[k];
    if (existing === undefined) out[k] = v;
    else if (Array.isArray(existing)) existing.push(v);
    else out[k] = [existing, v];
  }
  return out;
}

/** RFC 3986 escaping of one path segment (what AWS expects in the canonical URI). */
function escapeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The canonical URI: normalized segments ("." and ".." resolved, empty ones dropped), each escaped once more. */
export function canonicalUri(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(escapeSegment(segment));
  }
  const trailing = segments.length > 0 && path.endsWith('/') ? '/' : '';
  return `${path.startsWith('/') ? '/' : ''}${segments.join('/')}${trailing}`;
}

/** `20150830T123600Z` */
function amzDateOf(now: Date): string {
  const iso = now.toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

const KEY_CACHE_SIZE = 64;

/** A derived signing key with its HMAC pads (key XOR ipad / opad, one SHA-256 block each). */
interface SigningKey {
  innerPad: Buffer;
  outerPad: Buffer;
}

const signingKeys = new Map<string, SigningKey>();

export function padsOf(key: Uint8Array): SigningKey {
  const innerPad = Buffer.alloc(64, 0x36);
  const outerPad = Buffer.alloc(64, 0x5c);
  for (let i = 0; i < key.length; i++) {
    innerPad[i] ^= key[i];
    outerPad[i] ^= key[i];
  }
  return { innerPad, outerPad };
}

/**
 * One-shot hashing (`crypto.hash`, Node 20.12+) creates no Hash object per call: three of those per request
 * were most of the signing cost in garbage collection. Older Node 20 releases fall back to createHash.
 */
const oneShotHash = (
  crypto as { hash?: (algorithm: string, data: string | ArrayBufferView, encoding: string) => string | Buffer }
).hash;

function sha256Hex(data: string | Uint8Array): string {
  return oneShotHash
    ? (oneShotHash('sha256', data, 'hex') as string)
    : crypto.createHash('sha256').update(data).digest('hex');
}

function sha256Raw(data: Uint8Array): Buffer {
  return oneShotHash
    ? (oneShotHash('sha256', data, 'buffer') as Buffer)
    : crypto.createHash('sha256').update(data).digest();
}

/** HMAC-SHA256 (RFC 2104) from the precomputed pads: H(outer || H(inner || message)). */
export function hmacHex(key: SigningKey, message: string): string {
  const inner = Buffer.allocUnsafe(64 + Buffer.byteLength(message));
  key.innerPad.copy(inner, 0);
  inner.write(message, 64);
  const outer = Buffer.allocUnsafe(96);
  key.outerPad.copy(outer, 0);
  sha256Raw(inner).copy(outer, 64);
  return sha256Hex(outer);
}

function keyId(credentials: AwsCredentials, day: string, region: string, service: string): string {
  return `${day}\u0000${region}\u0000${service}\u0000${credentials.accessKeyId}\u0000${credentials.secretAccessKey}`;
}

async function signingKey(
  credentials: AwsCredentials,
  day: string,
  region: string,
  service: string,
): Promise<SigningKey> {
  const id = keyId(credentials, day, region, service);
  const cached = signingKeys.get(id);
  if (cached !== undefined) return cached;
  const key = padsOf(await getSigningKey(NodeSha256, credentials, day, region, service));
  if (signingKeys.size >= KEY_CACHE_SIZE) signingKeys.delete(signingKeys.keys().next().value as string);
  signingKeys.set(id, key);
  return key;
}

/**
 * Returns the headers to add to the upstream request. `now` is injectable for tests; the signature is
 * valid for 15 minutes around it.
 */
export async function signAwsRequest(
  request: SignableRequest,
  credentials: AwsCredentials,
  region: string,
  service: string,
  now: Date = new Date(),
): Promise<SignedHeaders> {
  checkCredentials(credentials);
  const amzDate = amzDateOf(now);
  const key = await signingKey(credentials, amzDate.slice(0, 8), region, service);
  return sign(request, credentials, region, service, amzDate, key);
}

/** As signAwsRequest, without waiting: undefined when the day's signing key is not derived yet. */
export function signAwsRequestSync(
  request: SignableRequest,
  credentials: AwsCredentials,
  region: string,
  service: string,
  now: Date = new Date(),
): SignedHeaders | undefined {
  checkCredentials(credentials);
  const amzDate = amzDateOf(now);
  const key = signingKeys.get(keyId(credentials, amzDate.slice(0, 8), region, service));
  return key === undefined ? undefined : sign(request, credentials, region, service, amzDate, key);
}

function checkCredentials(credentials: AwsCredentials): void {
  if (!credentials.accessKeyId || !credentials.secretAccessKey) {
    throw new AwsSigningError('AWS credentials are incomplete (access key id or secret access key missing)');
  }
}

function sign(
  request: SignableRequest,
  credentials: AwsCredentials,
  region: string,
  service: string,
  amzDate: string,
  key: SigningKey,
): SignedHeaders {
  const q = request.path.indexOf('?');
  const path = q === -1 ? request.path : request.path.slice(0, q);
  const query =
    q === -1
      ? ''
      : getCanonicalQuery({ query: splitQuery(request.path.slice(q + 1)) } as Parameters<typeof getCanonicalQuery>[0]);
  const day = amzDate.slice(0, 8);
  const token = credentials.sessionToken;
  const signedHeaders = token ? 'host;x-amz-date;x-amz-security-token' : 'host;x-amz-date';
  const canonicalRequest =
    `${request.method}\n${canonicalUri(path)}\n${query}\n` +
    `host:${request.hostname.trim()}\nx-amz-date:${amzDate}\n` +
    `${token ? `x-amz-security-token:${token.trim()}\n` : ''}\n` +
    `${signedHeaders}\n${sha256Hex(request.body)}`;
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256Hex(canonicalRequest)}`;
  const signature = hmacHex(key, stringToSign);
  const out: SignedHeaders = {
    authorization:
      `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, ` +
      `SignedHeaders=${signedHeaders}, Signature=${signature}`,
    'x-amz-date': amzDate,
  };
  if (token) out['x-amz-security-token'] = token;
  return out;
}
