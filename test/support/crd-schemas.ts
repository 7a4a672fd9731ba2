import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv-draft-04';

/** Which schema set validates each API group (Envoy Gateway's CRDs; Gateway API's standard channel). */
const SET_BY_GROUP: Record<string, string> = {
  'gateway.networking.k8s.io': 'gateway-api-standard',
  'gateway.envoyproxy.io': 'envoy-gateway',
  'monitoring.coreos.com': 'prometheus-operator',
};

/**
 * Compiles the schemas' patterns. Prometheus Operator writes Go (RE2) patterns, some case-insensitive from the start
 * (`^(?i)...`), which JavaScript spells as the `i` flag.
 */
const goRegExp = Object.assign(
  (pattern: string, flags: string): RegExp => {
    const insensitive = /^(\^?)\(\?i\)/;
    if (!insensitive.test(pattern)) return new RegExp(pattern, flags);
    return new RegExp(pattern.replace(insensitive, '$1'), `${flags}i`);
  },
  { code: 'new RegExp' },
);

interface IndexEntry {
  file: string;
  group: string;
  kind: string;
  version: string;
}

export interface SchemaProblem {
  object: string;
  message: string;
}

/**
 * Validates custom resources against the JSON Schemas made from the real CRDs (`../shared/crds/jsonschema`), where
 * every object with properties has `additionalProperties: false`: unknown fields are errors.
 */
export class CrdSchemaValidator {
  private readonly ajv = new Ajv({
    strict: false,
    allErrors: true,
    validateFormats: false,
    code: { regExp: goRegExp },
  });
  private readonly index: IndexEntry[];
  private readonly compiled = new Map<string, ValidateFunction>();
  private readonly raw = new Map<string, Record<string, unknown>>();

  constructor(private readonly jsonschemaDir: string) {
    this.index = JSON.parse(fs.readFileSync(path.join(jsonschemaDir, 'index.json'), 'utf8')) as IndexEntry[];
  }

  /** Whether the apiVersion belongs to a group validated by CRD schemas. */
  handles(apiVersion: string): boolean {
    const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
    return group in SET_BY_GROUP;
  }

  /** The raw JSON schema for an apiVersion/kind (for CEL rule discovery). */
  schemaFor(apiVersion: string, kind: string): Record<string, unknown> {
    const key = `${apiVersion} ${kind}`;
    let schema = this.raw.get(key);
    if (!schema) {
      const [group, version] = apiVersion.split('/');
      const set = SET_BY_GROUP[group];
      const entry = this.index.find(
        (e) => e.group === group && e.version === version && e.kind === kind && e.file.startsWith(`${set}/`),
      );
      if (!entry) throw new Error(`no CRD schema for ${apiVersion} ${kind} in ${set}`);
      schema = JSON.parse(fs.readFileSync(path.join(this.jsonschemaDir, entry.file), 'utf8')) as Record<
        string,
        unknown
      >;
      this.raw.set(key, schema);
    }
    return schema;
  }

  validate(object: Record<string, unknown>): string[] {
    const apiVersion = String(object.apiVersion);
    const kind = String(object.kind);
    const key = `${apiVersion} ${kind}`;
    let validate = this.compiled.get(key);
    if (!validate) {
      const schema = { ...this.schemaFor(apiVersion, kind) };
      delete schema.$schema;
      validate = this.ajv.compile(schema);
      this.compiled.set(key, validate);
    }
    if (validate(object)) return [];
    return (validate.errors ?? []).map(
      (e) => `${e.instancePath || '/'} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`,
    );
  }
}
