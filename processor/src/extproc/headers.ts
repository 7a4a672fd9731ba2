import { OVERWRITE_IF_EXISTS_OR_ADD, type HeaderMap, type HeaderMutation, type HeaderValueOption } from '../grpc/messages';
import { isIgnoredByEnvoy } from '../config/runtime';

/** Envoy sends header values as `raw_value` bytes (falling back to `value`); names are lower-case. */
export function readHeaders(map: HeaderMap | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const list = map?.headers;
  if (!list) return out;
  for (const header of list) {
    const raw = header.rawValue;
    const value = raw && raw.length > 0 ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1') : (header.value ?? '');
    const key = header.key.toLowerCase();
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

  /** The Envoy mutation; headers Envoy would ignore (host, :authority, x-envoy-*) are left out. */
  toMutation(): HeaderMutation | undefined {
    if (this.isEmpty) return undefined;
    const setHeaders: HeaderValueOption[] = [];
    for (const [name, value] of this.sets) {
      if (isIgnoredByEnvoy(name)) continue;
      setHeaders.push({ header: { key: name, rawValue: Buffer.from(value, 'utf8') }, appendAction: OVERWRITE_IF_EXISTS_OR_ADD });
    }
    const removeHeaders: string[] = [];
    for (const name of this.removes) if (!isIgnoredByEnvoy(name)) removeHeaders.push(name);
    return { setHeaders, removeHeaders };
  }
}
