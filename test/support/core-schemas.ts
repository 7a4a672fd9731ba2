import * as fs from 'node:fs';
import * as ts from 'typescript';

/**
 * Checks core Kubernetes objects against Kubernetes' own API types, as generated from the Kubernetes 1.28 OpenAPI
 * spec into cdk8s-plus-28's `imports/k8s.d.ts` (the L1 `Kube*Props` interfaces). Checked: every field is known at
 * every level (unknown fields are errors), required fields are present, and values have the declared JSON type
 * (string, number, boolean, array, map, int-or-string, quantity). Not checked: formats and enum values, which the
 * OpenAPI spec does not encode either.
 */
export class CoreSchemaValidator {
  private readonly interfaces = new Map<string, ts.InterfaceDeclaration>();
  private readonly enums = new Set<string>();
  /** Per interface: JSON field name -> TypeScript member name, read from the generated `toJson_*` functions. */
  private readonly jsonNames = new Map<string, Map<string, string>>();

  static readonly KINDS: Record<string, { apiVersion: string; props: string }> = {
    Deployment: { apiVersion: 'apps/v1', props: 'KubeDeploymentProps' },
    Service: { apiVersion: 'v1', props: 'KubeServiceProps' },
    ServiceAccount: { apiVersion: 'v1', props: 'KubeServiceAccountProps' },
    ConfigMap: { apiVersion: 'v1', props: 'KubeConfigMapProps' },
    Secret: { apiVersion: 'v1', props: 'KubeSecretProps' },
    PodDisruptionBudget: { apiVersion: 'policy/v1', props: 'KubePodDisruptionBudgetProps' },
    NetworkPolicy: { apiVersion: 'networking.k8s.io/v1', props: 'KubeNetworkPolicyProps' },
    Namespace: { apiVersion: 'v1', props: 'KubeNamespaceProps' },
  };

  constructor(typesFile: string = require.resolve('cdk8s-plus-28/lib/imports/k8s.d.ts')) {
    const source = ts.createSourceFile(typesFile, fs.readFileSync(typesFile, 'utf8'), ts.ScriptTarget.ES2022, false);
    for (const statement of source.statements) {
      if (ts.isInterfaceDeclaration(statement)) this.interfaces.set(statement.name.text, statement);
      if (ts.isEnumDeclaration(statement)) this.enums.add(statement.name.text);
    }
    const code = fs.readFileSync(typesFile.replace(/\.d\.ts$/, '.js'), 'utf8');
    for (const fn of code.matchAll(/function toJson_(\w+)\(obj\) \{([\s\S]*?)\n\}/g)) {
      const names = new Map<string, string>();
      for (const field of fn[2].matchAll(/^\s*'([^']+)': .*?obj\.(\w+)/gm)) names.set(field[1], field[2]);
      this.jsonNames.set(fn[1], names);
    }
  }

  handles(apiVersion: string, kind: string): boolean {
    return CoreSchemaValidator.KINDS[kind]?.apiVersion === apiVersion;
  }

  validate(object: Record<string, unknown>): string[] {
    const kind = String(object.kind);
    const entry = CoreSchemaValidator.KINDS[kind];
    if (!entry) return [`no core schema for kind ${kind}`];
    const problems: string[] = [];
    if (object.apiVersion !== entry.apiVersion) problems.push(`/apiVersion must be ${entry.apiVersion}`);
    const { apiVersion: _apiVersion, kind: _kind, ...rest } = object;
    this.checkInterface(entry.props, rest, '', problems);
    return problems;
  }

  private checkInterface(name: string, value: unknown, path: string, problems: string[]): void {
    const declaration = this.interfaces.get(name);
    if (!declaration) {
      problems.push(`${path}: unknown type ${name}`);
      return;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      problems.push(`${path || '/'}: must be an object (${name})`);
      return;
    }
    const record = value as Record<string, unknown>;
    const members = new Map<string, ts.PropertySignature>();
    for (const member of declaration.members) {
      if (
        ts.isPropertySignature(member) &&
        member.name &&
        (ts.isIdentifier(member.name) || ts.isStringLiteral(member.name))
      ) {
        members.set(member.name.text, member);
      }
    }
    const jsonNames = this.jsonNames.get(name);
    if (!jsonNames) {
      problems.push(`${path}: no JSON field names known for ${name}`);
      return;
    }
    for (const [jsonKey, tsKey] of jsonNames) {
      const member = members.get(tsKey);
      if (member && !member.questionToken && record[jsonKey] === undefined)
        problems.push(`${path}/${jsonKey}: required by ${name}`);
    }
    for (const [jsonKey, child] of Object.entries(record)) {
      const key = jsonNames.get(jsonKey);
      const member = key === undefined ? undefined : members.get(key);
      if (!member) {
        problems.push(`${path}/${jsonKey}: unknown field of ${name}`);
        continue;
      }
      if (member.type) this.checkType(member.type, child, `${path}/${jsonKey}`, problems);
    }
  }

  private checkType(type: ts.TypeNode, value: unknown, path: string, problems: string[]): void {
    switch (type.kind) {
      case ts.SyntaxKind.StringKeyword:
        if (typeof value !== 'string') problems.push(`${path}: must be a string`);
        return;
      case ts.SyntaxKind.NumberKeyword:
        if (typeof value !== 'number') problems.push(`${path}: must be a number`);
        return;
      case ts.SyntaxKind.BooleanKeyword:
        if (typeof value !== 'boolean') problems.push(`${path}: must be a boolean`);
        return;
      case ts.SyntaxKind.AnyKeyword:
        return;
    }
    if (ts.isArrayTypeNode(type)) {
      if (!Array.isArray(value)) {
        problems.push(`${path}: must be an array`);
        return;
      }
      value.forEach((item, i) => this.checkType(type.elementType, item, `${path}/${i}`, problems));
      return;
    }
    if (ts.isTypeLiteralNode(type)) {
      const index = type.members.find(ts.isIndexSignatureDeclaration);
      if (!index || value === null || typeof value !== 'object' || Array.isArray(value)) {
        problems.push(`${path}: must be a map`);
        return;
      }
      for (const [key, item] of Object.entries(value)) this.checkType(index.type, item, `${path}/${key}`, problems);
      return;
    }
    if (ts.isTypeReferenceNode(type) && ts.isIdentifier(type.typeName)) {
      const name = type.typeName.text;
      if (name === 'IntOrString') {
        if (typeof value !== 'string' && !(typeof value === 'number' && Number.isInteger(value)))
          problems.push(`${path}: must be an integer or a string`);
        return;
      }
      if (name === 'Quantity') {
        if (typeof value !== 'string' && typeof value !== 'number') problems.push(`${path}: must be a quantity`);
        return;
      }
      if (this.enums.has(name)) {
        if (typeof value !== 'string') problems.push(`${path}: must be a string`);
        return;
      }
      this.checkInterface(name, value, path, problems);
      return;
    }
    problems.push(`${path}: unsupported declared type ${ts.SyntaxKind[type.kind]}`);
  }
}
