import type { IConstruct } from 'constructs';
import { invalid, type AIGatewayValidationError } from '../errors';

/** A backend of a route under the name the processor config gives it. */
export interface NamedBackend {
  /** The ProviderBackend construct. */
  readonly backend: IConstruct;
  /** The backend's name in the processor config (unique within a processor). */
  readonly name: string;
  /** The route prop that names the backend, e.g. `rules[0].backends[1].backend`. */
  readonly prop: string;
}

/**
 * The error for `entry` when another, different backend of the same route already has its processor config name
 * (two ProviderBackends of one name and namespace, or two for one Service), or undefined. The processor tells
 * backends apart by that name and refuses a config with two of one name: without this check synth fails only when
 * the config is serialized, naming no construct.
 */
export function sameBackendNameError(
  route: IConstruct,
  entry: NamedBackend,
  others: Iterable<NamedBackend>,
): AIGatewayValidationError | undefined {
  for (const other of others) {
    if (other.backend === entry.backend || other.name !== entry.name) continue;
    return invalid(
      route,
      entry.prop,
      entry.name,
      `backends ${entry.backend.node.path} and ${other.backend.node.path} (${other.prop}) have the same name in the ` +
        'processor config, which tells backends apart by name; give one of the ProviderBackends another name',
    );
  }
  return undefined;
}
