import { type HeaderMap, type HeaderMutation, type HeaderValue, type HeaderValueOption } from '../grpc/messages';
import { isIgnoredByEnvoy } from '../config/runtime';
import { headerOption, type HeaderOptionCache } from './header-options';

function valueOf(header: HeaderValue): string {
  const raw = header.rawValue;
  if (!raw || raw.length === 0) return header.value ?? '';
  return Buffer.isBuffer(raw) ? raw.toString('latin1') : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1');
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
}

/** Envoy sends header values as `raw_value` bytes (falling back to `value`); names are lower-case (HTTP/2 rules). */
export function readHeaders(map: HeaderMap | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const list = map?.headers;
  if (!list) return out;
  for (const header of list) {
    const raw = header.rawValue;
    const value =
      raw && raw.length > 0
        ? Buffer.isBuffer(raw)
          ? raw.toString('latin1')
          : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1')
        : (header.value ?? '');
    const key = header.key;
    const existing = out[key];
    out[key] = existing === undefined ? value : `${existing},${value}`;
  }
  return out;
}

/** Accumulates header changes; a later set or remove of the same name wins. */
export class HeaderChangeSet {
  private readonly sets = new Map<string, string>();
  private readonly removes = new Set<string>();

  set(name: string, value: string): void {
    this.removes.delete(name);
    this.sets.set(name, value);
  }

  remove(name: string): void {
    this.sets.delete(name);
    this.removes.add(name);
  }

  apply(changes: { setHeaders: Record<string, string>; removeHeaders: readonly string[] }): void {
    for (const name of changes.removeHeaders) this.remove(name.toLowerCase());
    for (const name in changes.setHeaders) this.set(name.toLowerCase(), changes.setHeaders[name]!);
  }

  get isEmpty(): boolean {
    return this.sets.size === 0 && this.removes.size === 0;
  }

  /** The request headers as the upstream will see them. */
  appliedTo(headers: Readonly<Record<string, string>>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name in headers) if (!this.removes.has(name)) out[name] = headers[name]!;
    for (const [name, value] of this.sets) out[name] = value;
    return out;
  }

  /**
   * The Envoy mutation; headers Envoy would ignore (host, :authority, x-envoy-*) are left out. `options`
   * reuses encoded options for values that repeat across requests (backend names, models, credentials).
   */
  toMutation(options?: HeaderOptionCache): HeaderMutation | undefined {
    if (this.isEmpty) return undefined;
    const setHeaders: HeaderValueOption[] = [];
    for (const [name, value] of this.sets) {
      if (isIgnoredByEnvoy(name)) continue;
      setHeaders.push(options ? options.get(name, value) : headerOption(name, value));
    }
    const removeHeaders: string[] = [];
    for (const name of this.removes) if (!isIgnoredByEnvoy(name)) removeHeaders.push(name);
    return { setHeaders, removeHeaders };
  }
}
