import * as crypto from 'node:crypto';
import type { AwsCredentials } from '../../src/auth/sigv4';

/** An independent SigV4 implementation written from the AWS specification, for cross-checking. */
export function referenceSignature(
  method: string,
  host: string,
  pathAndQuery: string,
  body: string,
  credentials: AwsCredentials,
  region: string,
  service: string,
  date: Date,
): { authorization: string; amzDate: string } {
  const amzDate = date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const rfc3986 = (s: string) =>
    encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const [rawPath, rawQuery = ''] = pathAndQuery.split('?');
  const canonicalUri = rawPath
    .split('/')
    .map((segment) => rfc3986(segment))
    .join('/');
  const canonicalQuery = rawQuery
    ? rawQuery
        .split('&')
        .map((pair) => {
          const [k, v = ''] = pair.split('=');
          return [rfc3986(decodeURIComponent(k)), rfc3986(decodeURIComponent(v))];
        })
        .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
        .map(([k, v]) => `${k}=${v}`)
        .join('&')
    : '';
  const headers: [string, string][] = [
    ['host', host],
    ['x-amz-date', amzDate],
  ];
  if (credentials.sessionToken) headers.push(['x-amz-security-token', credentials.sessionToken]);
  headers.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const signedHeaders = headers.map(([k]) => k).join(';');
  const canonicalRequest = [
    method,
    canonicalUri,
    canonicalQuery,
    headers.map(([k, v]) => `${k}:${v.trim()}\n`).join(''),
    signedHeaders,
    crypto.createHash('sha256').update(body).digest('hex'),
  ].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    amzDate,
    scope,
    crypto.createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  const hmac = (key: crypto.BinaryLike, data: string) => crypto.createHmac('sha256', key).update(data).digest();
  let key: Buffer = hmac(`AWS4${credentials.secretAccessKey}`, day);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  const signature = crypto.createHmac('sha256', key).update(stringToSign).digest('hex');
  return {
    authorization:
      `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, ` +
      `SignedHeaders=${signedHeaders}, Signature=${signature}`,
    amzDate,
  };
}
