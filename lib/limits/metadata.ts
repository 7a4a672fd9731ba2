/**
 * Object metadata rules the API server enforces for every kind (k8s.io/apimachinery `validation.IsQualifiedName`,
 * `IsValidLabelValue`, `IsDNS1123Subdomain`, and `ValidateAnnotations` in apimachinery/pkg/api/validation). These
 * are Kubernetes' own rules, not part of any CRD schema, so they are written here.
 */
import type { IConstruct } from 'constructs';
import { invalid } from '../errors';

/** Longest name part of a qualified name (label and annotation keys), and longest label value. */
export const MAX_QUALIFIED_NAME_LENGTH = 63;
/** Longest DNS-1123 subdomain (the prefix of a qualified name). */
export const MAX_DNS_SUBDOMAIN_LENGTH = 253;
/** The most bytes all annotations of one object may hold, keys and values together (256 KiB). */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;

const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/**
 * Why `key` is not a qualified name (`[prefix/]name`: a DNS subdomain prefix of at most 253 characters, a name of
 * at most 63 letters, digits, `-`, `_` and `.` that starts and ends with a letter or digit), or undefined.
 */
export function qualifiedNameProblem(key: string): string | undefined {
  if (typeof key !== 'string' || key.length === 0) return 'must not be empty';
  const parts = key.split('/');
  if (parts.length > 2) return 'may contain at most one "/" (between an optional DNS subdomain prefix and the name)';
  const name = parts[parts.length - 1];
  if (parts.length === 2) {
    const prefix = parts[0];
    if (prefix.length === 0) return 'has an empty prefix before "/"';
    if (prefix.length > MAX_DNS_SUBDOMAIN_LENGTH)
      return `has a prefix of ${prefix.length} characters; at most ${MAX_DNS_SUBDOMAIN_LENGTH} are allowed`;
    if (!DNS1123_SUBDOMAIN.test(prefix)) {
      return (
        `has the prefix "${prefix}", which is not a lower-case DNS subdomain (letters, digits, "-" and ".", ` +
        'starting and ending with a letter or digit)'
      );
    }
  }
  if (name.length === 0) return 'has an empty name after the prefix';
  if (name.length > MAX_QUALIFIED_NAME_LENGTH)
    return `has a name part of ${name.length} characters; at most ${MAX_QUALIFIED_NAME_LENGTH} are allowed`;
  if (!QUALIFIED_NAME.test(name)) {
    return (
      `has the name part "${name}", which must consist of letters, digits, "-", "_" and ".", and start and end ` +
      'with a letter or digit'
    );
  }
  return undefined;
}

/**
 * Why `value` is not a label value (at most 63 letters, digits, `-`, `_`, `.`; starts and ends alphanumeric), or
 * undefined.
 */
export function labelValueProblem(value: string): string | undefined {
  if (typeof value !== 'string') return 'must be a string';
  if (value.length > MAX_QUALIFIED_NAME_LENGTH)
    return `is ${value.length} characters long; a label value may have at most ${MAX_QUALIFIED_NAME_LENGTH}`;
  if (!LABEL_VALUE.test(value))
    return 'must be empty or consist of letters, digits, "-", "_" and ".", and start and end with a letter or digit';
  return undefined;
}

/**
 * Throws naming the construct, `prop` and the offending key when `annotations` would be rejected: every key a
 * qualified name (checked lower-cased, as the API server does), every value a string, all of them together at most
 * 256 KiB.
 */
export function checkAnnotations(
  scope: IConstruct,
  prop: string,
  annotations: Record<string, string> | undefined,
): void {
  if (annotations === undefined) return;
  let bytes = 0;
  for (const [key, value] of Object.entries(annotations)) {
    const problem = qualifiedNameProblem(key.toLowerCase());
    if (problem !== undefined) throw invalid(scope, prop, key, `is not a valid annotation key: it ${problem}`);
    if (typeof value !== 'string')
      throw invalid(scope, `${prop}.${key}`, value, 'must be a string (annotation values are strings)');
    bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  }
  if (bytes > MAX_ANNOTATIONS_BYTES) {
    throw invalid(
      scope,
      prop,
      `${bytes} bytes`,
      `annotations may hold at most ${MAX_ANNOTATIONS_BYTES} bytes (256 KiB) of keys and values together`,
    );
  }
}

/** Throws naming the construct, `prop` and the offending key or value when `labels` would be rejected. */
export function checkLabels(scope: IConstruct, prop: string, labels: Record<string, string> | undefined): void {
  for (const [key, value] of Object.entries(labels ?? {})) {
    const keyProblem = qualifiedNameProblem(key);
    if (keyProblem !== undefined) throw invalid(scope, prop, key, `is not a valid label key: it ${keyProblem}`);
    const valueProblem = labelValueProblem(value);
    if (valueProblem !== undefined)
      throw invalid(scope, `${prop}.${key}`, value, `is not a valid label value: it ${valueProblem}`);
  }
}
