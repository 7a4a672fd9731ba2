/**
 * AWS Signature Version 4 over the final upstream request, with @smithy/signature-v4 and a node:crypto
 * SHA-256/HMAC. Only `host`, `x-amz-date` and (for temporary credentials) `x-amz-security-token` are
 * signed: Envoy may add or rewrite other headers after the processor answers.
 */
import * as crypto from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

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
    return this.secret === undefined ? crypto.createHash('sha256') : crypto.createHmac('sha256', toBytes(this.secret) as crypto.BinaryLike);
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

function splitPath(path: string): { path: string; query: Record<string, string | string[]> } {
  const q = path.indexOf('?');
  if (q === -1) return { path, query: {} };
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(path.slice(q + 1))) {
    const existing = query[k];
    if (existing === undefined) query[k] = v;
    else if (Array.isArray(existing)) existing.push(v);
    else query[k] = [existing, v];
  }
  return { path: path.slice(0, q), query };
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
  if (!credentials.accessKeyId || !credentials.secretAccessKey) {
    throw new AwsSigningError('AWS credentials are incomplete (access key id or secret access key missing)');
  }
  const { path, query } = splitPath(request.path);
  const signer = new SignatureV4({
    service,
    region,
    sha256: NodeSha256,
    applyChecksum: false,
    uriEscapePath: true,
    credentials,
  });
  const signed = await signer.sign(
    {
      method: request.method,
      protocol: 'https:',
      hostname: request.hostname,
      path,
      query,
      headers: { host: request.hostname },
      body: request.body,
    },
    { signingDate: now },
  );
  const headers = signed.headers as Record<string, string>;
  const out: SignedHeaders = { authorization: headers.authorization, 'x-amz-date': headers['x-amz-date'] };
  if (credentials.sessionToken) out['x-amz-security-token'] = credentials.sessionToken;
  return out;
}
