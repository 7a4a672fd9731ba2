import { encodeHeaderOption } from '../grpc/encode';
import { OVERWRITE_IF_EXISTS_OR_ADD, type EncodedHeaderOption, type HeaderValueOption } from '../grpc/messages';

export function headerOption(name: string, value: string): HeaderValueOption {
  return { header: { key: name, rawValue: Buffer.from(value, 'utf8') }, appendAction: OVERWRITE_IF_EXISTS_OR_ADD };
}

const MAX_ENTRIES = 4096;

/**
 * Encoded header options for values that repeat across requests (backend names, models, static
 * credentials), by name then value, bounded. One per config snapshot, so rotated credentials do not linger
 * after a reload.
 */
export class HeaderOptionCache {
  private readonly byName = new Map<string, Map<string, EncodedHeaderOption>>();
  private entries = 0;

  get(name: string, value: string): EncodedHeaderOption {
    let values = this.byName.get(name);
    const cached = values?.get(value);
    if (cached) return cached;
    if (this.entries >= MAX_ENTRIES) {
      // Client-chosen models can be unbounded under prefix or regex matches.
      this.byName.clear();
      this.entries = 0;
      values = undefined;
    }
    if (!values) {
      values = new Map();
      this.byName.set(name, values);
    }
    const option = encodeHeaderOption(headerOption(name, value));
    values.set(value, option);
    this.entries += 1;
    return option;
  }
}
