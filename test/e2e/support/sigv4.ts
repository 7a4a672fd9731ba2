/**
 * Verifies an AWS Signature Version 4 `Authorization` header the way AWS does: the fake knows the secret of
 * the access key it was configured with, rebuilds the canonical request from what it received (method, path,
 * query, the signed headers, the body) with @smithy/signature-v4 and compares the signatures.
 */
import * as crypto from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { RecordedRequest } from './recording-server';

export interface AwsKey {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** The smithy checksum shape over node:crypto: SHA-256, or HMAC-SHA256 with a secret. */
export class Sha256 {
  private hash: crypto.Hash | crypto.Hmac;

  constructor(private readonly secret?: string | ArrayBuffer | ArrayBufferView) {
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
    const secret = this.secret;
    if (secret === undefined) return crypto.createHash('sha256');
    const key =
      typeof secret === 'string' || ArrayBuffer.isView(secret) ? (secret as crypto.BinaryLike) : new Uint8Array(secret);
    return crypto.createHmac('sha256', key);
  }
}

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

/** Undefined when the signature is valid for `key`, `region` and `service`; otherwise why not. */
export async function sigV4Problem(
  request: RecordedRequest,
  key: AwsKey,
  region: string,
  service: string,
): Promise<string | undefined> {
  const authorization = request.headers.authorization;
  if (!authorization) return 'no authorization header';
  const parsed = AUTHORIZATION.exec(authorization);
  if (!parsed) return `malformed authorization header: ${authorization.slice(0, 80)}`;
  const [, accessKeyId, day, signedRegion, signedService, signedHeaderList, signature] = parsed;
  if (accessKeyId !== key.accessKeyId) return `unknown access key ${accessKeyId}`;
  if (signedRegion !== region) return `signed for region ${signedRegion}, expected ${region}`;
  if (signedService !== service) return `signed for service ${signedService}, expected ${service}`;
  const amzDate = request.headers['x-amz-date'];
  if (!amzDate || !/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== day) return `bad x-amz-date ${amzDate}`;
  const signingDate = new Date(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T` +
      `${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  if (Math.abs(Date.now() - signingDate.getTime()) > 15 * 60 * 1000)
    return `x-amz-date ${amzDate} is more than 15 minutes off`;
  const signedHeaders = signedHeaderList.split(';');
  if (!signedHeaders.includes('host')) return 'host is not signed';
  if (key.sessionToken !== undefined && request.headers['x-amz-security-token'] !== key.sessionToken)
    return 'missing or wrong x-amz-security-token';

  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = request.headers[name];
    if (value === undefined) return `signed header ${name} was not received`;
    headers[name] = value;
  }
  const [path, query = ''] = request.path.split(/\?(.*)/s);
  const queryRecord: Record<string, string | string[]> = {};
  for (const [name, value] of new URLSearchParams(query)) {
    const existing = queryRecord[name];
    queryRecord[name] =
      existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  const signer = new SignatureV4({
    credentials: key,
    region,
    service,
    sha256: Sha256,
    uriEscapePath: true,
    applyChecksum: false,
  });
  // x-amz-date is re-added by the signer from signingDate; the other signed headers are taken as received.
  const { 'x-amz-date': _date, ...rest } = headers;
  void _date;
  const signed = await signer.sign(
    {
      method: request.method,
      protocol: 'https:',
      hostname: headers.host,
      path,
      query: queryRecord,
      headers: rest,
      body: request.body,
    },
    { signingDate, signableHeaders: new Set(signedHeaders) },
  );
  const expected = AUTHORIZATION.exec(String(signed.headers.authorization));
  if (!expected) return 'could not compute the expected signature';
  if (expected[5] !== signedHeaderList) return `signed headers ${signedHeaderList}, expected ${expected[5]}`;
  if (expected[6] !== signature) return 'signature does not match';
  return undefined;
}
