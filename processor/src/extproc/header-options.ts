import { encodeHeaderOption } from '../grpc/encode';
import { OVERWRITE_IF_EXISTS_OR_ADD, type EncodedHeaderOption, type HeaderValueOption } from '../grpc/messages';

export function headerOption(name: string, value: string): HeaderValueOption {
  return { header: { key: name, rawValue: Buffer.from(value, 'utf8') }, appendAction: OVERWRITE_IF_EXISTS_OR_ADD };
}

const MAX_ENTRIES = 4096;
/** Bound on the keys' characters plus the encoded options' bytes. */
const MAX_BYTES = 512 * 1024;

/**
 * Encoded header options for values that repeat across requests (backend names, models, static
 * credentials), by name then value, bounded by entries and by bytes (client-chosen models can be unbounded in
 * number under prefix or regex matches). One per config snapshot, so rotated credentials do not linger after a
 * reload.
 */
export class HeaderOptionCache {
  private readonly byName = new Map<string, Map<string, EncodedHeaderOption>>();
  private entries = 0;
  private size = 0;

  /** Characters of the cached names and values plus bytes of the encoded options. */
  get bytes(): number {
    return this.size;
  }

  get(name: string, value: string): EncodedHeaderOption {
    let values = this.byName.get(name);
    const cached = values?.get(value);
    if (cached) return cached;
    const option = encodeHeaderOption(headerOption(name, value));
    const size = name.length + value.length + option.length;
    if (size > MAX_BYTES) return option; // never cached
    if (this.entries >= MAX_ENTRIES || this.size + size > MAX_BYTES) {
      this.byName.clear();
      this.entries = 0;
      this.size = 0;
      values = undefined;
    }
    if (!values) {
      values = new Map();
      this.byName.set(name, values);
    }
    values.set(value, option);
    this.entries += 1;
    this.size += size;
    return option;
  }
}
