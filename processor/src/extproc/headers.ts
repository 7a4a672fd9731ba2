import {
  type EncodedHeaderOption,
  type HeaderMap,
  type HeaderMutation,
  type HeaderValue,
  type HeaderValueOption,
} from '../grpc/messages';
import { RESPONSE_HEADERS_READ, type HeaderChanges, type ResponseHeaders } from '../translate/types';
import { isIgnoredByEnvoy } from '../config/runtime';
import { headerOption, type HeaderOptionCache } from './header-options';

function valueOf(header: HeaderValue): string {
  const raw = header.rawValue;
  if (!raw || raw.length === 0) return header.value ?? '';
  return Buffer.isBuffer(raw)
    ? raw.toString('latin1')
    : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1');
}

/**
 * Request headers read on demand: the request path needs only a handful of them, so values are decoded
 * when asked for; the full record is built only for auth that signs headers.
 */
export class HeaderList {
  private readonly list: HeaderValue[];

  constructor(map: HeaderMap | undefined) {
    this.list = map?.headers ?? [];
  }

  /** Repeated headers are joined with ",". */
  get(name: string): string | undefined {
    let value: string | undefined;
    for (const header of this.list) {
      if (header.key !== name) continue;
      value = value === undefined ? valueOf(header) : `${value},${valueOf(header)}`;
    }
    return value;
  }

  toRecord(): Record<string, string> {
    return readHeaders({ headers: this.list });
  }

  /** The names present that `predicate` accepts (names are lower-case), each once. */
  namesWhere(predicate: (name: string) => boolean): string[] {
    const names: string[] = [];
    for (const header of this.list) if (predicate(header.key) && !names.includes(header.key)) names.push(header.key);
    return names;
  }
}

/**
 * Envoy sends header values as `raw_value` bytes (falling back to `value`); names are lower-case (HTTP/2 rules).
 * With `only`, the other values are not decoded.
 */
export function readHeaders(map: HeaderMap | undefined, only?: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const list = map?.headers;
  if (!list) return out;
  for (const header of list) {
    const key = header.key;
    if (only && !only.includes(key)) continue;
    const value = valueOf(header);
    const existing = out[key];
    out[key] = existing === undefined ? value : `${existing},${value}`;
  }
  return out;
}

/**
 * The last value of each of `names` (not all values joined): where a later writer appends to what was there, e.g.
 * Envoy's rate-limit filter adding its `x-ratelimit-*` headers after those of the upstream's answer
 * (`HeaderMapImpl::copyFrom` adds), the last one is that writer's.
 */
export function readLastValues(map: HeaderMap | undefined, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const header of map?.headers ?? []) if (names.includes(header.key)) out[header.key] = valueOf(header);
  return out;
}

/** Only the response headers something reads (see RESPONSE_HEADERS_READ). */
export function readResponseHeaders(map: HeaderMap | undefined): ResponseHeaders {
  return readHeaders(map, RESPONSE_HEADERS_READ);
}

/**
 * Accumulates header changes; a later set or remove of the same name wins. A request has a handful of
 * changes, so they live in two small arrays (`undefined` value = remove) rather than a Map and a Set.
 */
export class HeaderChangeSet {
  private readonly names: string[] = [];
  private readonly values: Array<string | undefined> = [];
  /** Per entry: the value repeats across requests, so its encoding may come from the option cache. */
  private readonly repeatable: boolean[] = [];

  set(name: string, value: string, repeatable = false): void {
    this.put(name, value, repeatable);
  }

  remove(name: string): void {
    this.put(name, undefined, false);
  }

  apply(changes: HeaderChanges): void {
    for (const name of changes.removeHeaders) this.remove(name.toLowerCase());
    const repeatable = changes.repeatable === true;
    for (const name in changes.setHeaders) this.set(name.toLowerCase(), changes.setHeaders[name], repeatable);
  }

  private put(name: string, value: string | undefined, repeatable: boolean): void {
    const i = this.names.indexOf(name);
    if (i === -1) {
      this.names.push(name);
      this.values.push(value);
      this.repeatable.push(repeatable);
    } else {
      this.values[i] = value;
      this.repeatable[i] = repeatable;
    }
  }

  get isEmpty(): boolean {
    return this.names.length === 0;
  }

  /** The request headers as the upstream will see them. */
  appliedTo(headers: Readonly<Record<string, string>>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name in headers) if (!this.names.includes(name)) out[name] = headers[name]!;
    for (let i = 0; i < this.names.length; i++) {
      const value = this.values[i];
      if (value !== undefined) out[this.names[i]] = value;
    }
    return out;
  }

  /**
   * The Envoy mutation; headers Envoy would ignore (host, :authority, x-envoy-*) are left out. `options`
   * supplies the encoding of values set as repeatable.
   */
  toMutation(options?: HeaderOptionCache): HeaderMutation | undefined {
    if (this.isEmpty) return undefined;
    const setHeaders: Array<HeaderValueOption | EncodedHeaderOption> = [];
    const removeHeaders: string[] = [];
    for (let i = 0; i < this.names.length; i++) {
      const name = this.names[i];
      if (isIgnoredByEnvoy(name)) continue;
      const value = this.values[i];
      if (value === undefined) removeHeaders.push(name);
      else setHeaders.push(options && this.repeatable[i] ? options.get(name, value) : headerOption(name, value));
    }
    return { setHeaders, removeHeaders };
  }
}
