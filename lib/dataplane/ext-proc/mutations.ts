/**
 * Header and body mutations as Envoy's ext_proc filter applies them (`mutation_utils.cc`) under the default
 * `HeaderMutationRules` (Envoy Gateway configures no `mutation_rules`, so a disallowed change is ignored, never an
 * error), plus the header list the filter sends to the processor.
 */
import type { HeaderMap } from '../filter';
import type { DecodedBodyMutation, DecodedHeaderMutation, WireHeaderValue } from './protocol';

/** Envoy's defaults for the HTTP connection manager (`max_headers_count`, `max_request_headers_kb`). */
export const MAX_HEADERS_COUNT = 100;
export const MAX_HEADERS_KB = 60;

/** A mutation Envoy refuses as a whole: the stream gets a 500 local reply with this message as details. */
export class MutationError extends Error {}

type Operation = 'set' | 'append' | 'remove';

/**
 * Header values travel as `raw_value` bytes; our header maps hold them as latin1 strings (as Node's HTTP parser
 * and writer do), so the bytes round-trip unchanged.
 */
export function headersToWire(headers: HeaderMap): WireHeaderValue[] {
  const entries = headers.list();
  // Envoy's header map keeps pseudo headers in front of the others.
  const ordered = [
    ...entries.filter(([name]) => name.startsWith(':')),
    ...entries.filter(([name]) => !name.startsWith(':')),
  ];
  return ordered.map(([key, value]) => ({ key, rawValue: Buffer.from(value, 'latin1') }));
}

/**
 * Applies removals, then sets, in order. Only the deprecated `append` BoolValue decides between adding a value and
 * replacing all values (default: replace); Envoy's ext_proc ignores `append_action` (envoyproxy/envoy#36982) and
 * reads only `raw_value` (a `value` alone sets an empty header). `skipContentLength`: in the body modes where
 * the filter removes `content-length` itself, a `content-length` the processor sets is skipped.
 */
export function applyHeaderMutation(
  mutation: DecodedHeaderMutation,
  headers: HeaderMap,
  options: { replacingMessage?: boolean; skipContentLength?: boolean } = {},
): void {
  const removals = mutation.removeHeaders ?? [];
  const sets = mutation.setHeaders ?? [];
  if (removals.length > MAX_HEADERS_COUNT || sets.length > MAX_HEADERS_COUNT) {
    throw new MutationError(
      `Header mutation remove header count ${removals.length} or set header count ${sets.length} ` +
        `exceed the HCM header countlimit ${MAX_HEADERS_COUNT}`,
    );
  }
  for (const raw of removals) {
    if (!headerNameIsValid(raw)) throw new MutationError('Invalid character in remove_headers mutation.');
    const name = raw.toLowerCase();
    if (mayMutate('remove', name, '')) headers.remove(name);
  }
  for (const option of sets) {
    const header = option.header;
    if (!header) continue;
    const key = header.key ?? '';
    if (options.skipContentLength && key.toLowerCase() === 'content-length') continue;
    const rawValue = header.rawValue ?? new Uint8Array();
    if ((header.value ?? '') !== '' && rawValue.length > 0) {
      throw new MutationError('Only one of value or raw_value in the HeaderValue message should be set.');
    }
    const value = Buffer.from(rawValue.buffer, rawValue.byteOffset, rawValue.byteLength).toString('latin1');
    if (!headerNameIsValid(key) || !headerValueIsValid(value))
      throw new MutationError('Invalid character in set_headers mutation.');
    const name = key.toLowerCase();
    const append = option.append?.value === true;
    const operation: Operation = append && headers.has(name) ? 'append' : 'set';
    // CONTINUE_AND_REPLACE may change the method, for compatibility with older processors.
    const allowed = (options.replacingMessage === true && name === ':method') || mayMutate(operation, name, value);
    if (!allowed) continue;
    if (append) headers.add(name, value);
    else headers.set(name, value);
  }
  let size = 0;
  for (const [name, value] of headers.list()) size += name.length + value.length;
  const count = headers.list().length;
  if (size > MAX_HEADERS_KB * 1024 || count > MAX_HEADERS_COUNT) {
    throw new MutationError(
      `Header mutation causes end result header count ${count} or header size ${size} bytes, ` +
        `exceeding the count limit ${MAX_HEADERS_COUNT} or the size limit ${MAX_HEADERS_KB} ` +
        `kilobytes`,
    );
  }
}

/** The default mutation rules: what a processor may not touch is silently left alone. */
function mayMutate(operation: Operation, name: string, value: string): boolean {
  if (operation === 'remove' && (name.startsWith(':') || name === 'host')) return false;
  if (name === 'host' || name === ':authority' || name === ':method' || name === ':scheme') return false;
  if (name.startsWith(':') && operation === 'append') return false;
  if (name.startsWith('x-envoy')) return false;
  if (operation === 'remove') return true;
  if (!name.startsWith(':') && !headerValueIsValid(value)) return false;
  if (name === ':status') {
    const status = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!(status >= 200)) return false;
  }
  return true;
}

const TOKEN_CHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const LOWER_TOKEN_CHAR = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** HTTP/1 token rules for regular names (any case); HTTP/2 rules (lower case) after the `:` of a pseudo header. */
export function headerNameIsValid(name: string): boolean {
  if (name.startsWith(':')) return LOWER_TOKEN_CHAR.test(name.slice(1));
  return TOKEN_CHAR.test(name);
}

/** No control characters other than horizontal tab (nghttp2's value check, which Envoy uses). */
export function headerValueIsValid(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if ((code < 0x20 && code !== 0x09) || code === 0x7f || code > 0xff) return false;
  }
  return true;
}

/** The body after a mutation; `undefined` mutation (or neither variant) keeps it. */
export function applyBodyMutation(mutation: DecodedBodyMutation | undefined, body: Buffer): Buffer {
  if (!mutation) return body;
  if (mutation.mutation === 'body' || (mutation.mutation === undefined && mutation.body !== undefined)) {
    const bytes = mutation.body ?? new Uint8Array();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  if (mutation.mutation === 'clearBody' && mutation.clearBody === true) return Buffer.alloc(0);
  return body;
}

/** The byte count Envoy compares with `content-length` before a buffered body mutation (`body()` of the oneof). */
export function mutatedBodyLength(mutation: DecodedBodyMutation): number {
  return mutation.mutation === 'body' ? (mutation.body?.byteLength ?? 0) : 0;
}

/** Envoy's `StringUtil::replaceAllEmptySpace`, used for response code details. */
export function detailsOf(text: string): string {
  return text.replace(/[ \t\n\v\f\r]/g, '_');
}
