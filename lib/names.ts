import { createHash } from 'node:crypto';
import type { IConstruct } from 'constructs';
import { Chart } from 'cdk8s';
import { invalid } from './errors';

/** Longest DNS-1123 label (names of Services, namespaces, and everything we derive other names from). */
export const MAX_LABEL_LENGTH = 63;
/** Longest DNS-1123 subdomain. */
export const MAX_SUBDOMAIN_LENGTH = 253;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

export function isDnsLabel(value: string): boolean {
  return value.length <= MAX_LABEL_LENGTH && DNS1123_LABEL.test(value);
}

/** Checks a user-supplied object name; throws naming the construct, the prop and the value. */
export function checkLabelName(
  scope: IConstruct,
  prop: string,
  value: string,
  opts: { startWithLetter?: boolean } = {},
): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(scope, prop, value, 'must be a non-empty string');
  if (value.length > MAX_LABEL_LENGTH) {
    throw invalid(
      scope,
      prop,
      value,
      `is ${value.length} characters long; Kubernetes allows at most ${MAX_LABEL_LENGTH} here`,
    );
  }
  const pattern = opts.startWithLetter ? DNS1035_LABEL : DNS1123_LABEL;
  if (!pattern.test(value)) {
    const what = opts.startWithLetter
      ? 'a DNS-1035 label (lower-case letters, digits and "-", starting with a letter)'
      : 'a DNS-1123 label (lower-case letters, digits and "-")';
    throw invalid(scope, prop, value, `must be ${what}`);
  }
  return value;
}

const HOSTNAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Checks a DNS host name (optionally a `*.` wildcard) within the 253-character limit; throws naming the prop. */
export function checkHostname(
  scope: IConstruct,
  prop: string,
  value: string,
  opts: { wildcard?: boolean } = {},
): string {
  const name = opts.wildcard && typeof value === 'string' && value.startsWith('*.') ? value.slice(2) : value;
  if (typeof value !== 'string' || !HOSTNAME.test(name) || value.length > MAX_SUBDOMAIN_LENGTH) {
    throw invalid(
      scope,
      prop,
      value,
      `must be a lower-case DNS name${opts.wildcard ? ', optionally starting with "*."' : ''} of ` +
        `at most ${MAX_SUBDOMAIN_LENGTH} characters`,
    );
  }
  return value;
}

/**
 * Joins parts into a deterministic DNS-1123 name of at most `maxLength` characters. Longer results are cut and
 * get an 8-character hash of the full name, so different inputs stay different.
 */
export function derivedName(parts: readonly string[], maxLength: number = MAX_LABEL_LENGTH): string {
  const full = parts
    .filter((p) => p.length > 0)
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (full.length <= maxLength) return full;
  const hash = shortHash(full);
  const head = full.slice(0, maxLength - hash.length - 1).replace(/-+$/, '');
  return `${head}-${hash}`;
}

export function shortHash(text: string, length = 8): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** The namespace a construct's objects go to: the prop, else the chart's namespace, else "default". */
export function resolveNamespace(scope: IConstruct, prop: string | undefined): string {
  const namespace = prop ?? Chart.of(scope).namespace ?? 'default';
  return checkLabelName(scope, 'namespace', namespace);
}

/** A default object name from the construct path (deterministic, unique within the app). */
export function defaultName(scope: IConstruct): string {
  const path = scope.node.scopes
    .slice(1)
    .map((s) => s.node.id)
    .filter((id) => id.length > 0);
  const readable = derivedName(path, MAX_LABEL_LENGTH - 9);
  return derivedName([readable, shortHash(scope.node.path)]);
}

/**
 * Whether `prefix` is a path an HTTPRoute PathPrefix match accepts as written and matches segment by segment:
 * starts with "/", no trailing "/" (except "/" itself), no "//", "." or ".." segments, no encoded "/".
 */
export function isCleanPathPrefix(prefix: string): boolean {
  return (
    typeof prefix === 'string' &&
    /^\/(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})*$/.test(prefix) &&
    !prefix.includes('//') &&
    !/\/\.\.?(\/|$)/.test(prefix) &&
    !/%2f/i.test(prefix) &&
    (prefix === '/' || !prefix.endsWith('/'))
  );
}
