import { OVERWRITE_IF_EXISTS_OR_ADD, type HeaderValueOption } from '../grpc/messages';

export function headerOption(name: string, value: string): HeaderValueOption {
  return { header: { key: name, rawValue: Buffer.from(value, 'utf8') }, appendAction: OVERWRITE_IF_EXISTS_OR_ADD };
}

/**
 * Encoded header options by (name, value), bounded. One per config snapshot, so rotated credentials do not
 * linger after a reload.
 */
export class HeaderOptionCache {
  private readonly options = new Map<string, HeaderValueOption>();

  get(name: string, value: string): HeaderValueOption {
    const key = `${name}\u0000${value}`;
    let option = this.options.get(key);
    if (!option) {
      if (this.options.size >= 4096) this.options.clear();
      option = headerOption(name, value);
      this.options.set(key, option);
    }
    return option;
  }
}

