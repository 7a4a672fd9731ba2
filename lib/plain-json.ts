import {
  ApiObject,
  ApiObjectMetadataDefinition,
  App,
  Chart,
  ImplicitTokenResolver,
  Lazy,
  LazyResolver,
  NumberStringUnionResolver,
  type IResolver,
} from 'cdk8s';

/**
 * What `renderPlainJson` returns for a value it leaves to cdk8s: anything but JSON values, plain objects, arrays and
 * `Lazy` values producing them.
 */
export const NOT_PLAIN: unique symbol = Symbol('not plain JSON');

/**
 * Renders `value` as cdk8s's `ApiObject.toJson` renders a manifest (`resolve`, then `sanitizeValue`): `Lazy` values
 * produced, keys sorted if `sortKeys`, `null` and `undefined` members dropped, `null` array elements made
 * `undefined`. cdk8s offers every value to every resolver of the app, with a context object and a copy of the key
 * path each; with only the built-in resolvers (see `onlyBuiltInResolvers`) a plain value comes out unchanged, so
 * this walks the value once. Returns `NOT_PLAIN`, having produced some `Lazy` values, for anything else (a class
 * instance, an object with a `resolve` method, an array with a `value`): the caller then renders with cdk8s, which
 * produces them again.
 */
export function renderPlainJson(value: unknown, sortKeys: boolean): unknown {
  try {
    return render(value, sortKeys);
  } catch (error) {
    if (error === LEFT_TO_CDK8S) return NOT_PLAIN;
    throw error;
  }
}

/**
 * One level of `value` as `renderPlainJson` renders it, without rendering (or copying) its members: `Lazy` values
 * produced, `undefined` for `null` and `undefined`; the value itself for JSON values, plain objects and arrays, whose
 * members a caller reads the same way; `NOT_PLAIN` for anything cdk8s would render differently. What a caller reads
 * this way is what it would read from the rendered object (cdk8s renders every member on its own), but for the order
 * of an object's keys.
 */
export function plainLevel(value: unknown): unknown {
  let produced = value;
  while (produced instanceof Lazy) produced = produced.produce();
  if (produced === null || produced === undefined) return undefined;
  const type = typeof produced;
  if (type === 'string' || type === 'number' || type === 'boolean') return produced;
  if (type !== 'object') return NOT_PLAIN;
  const object = produced as { readonly resolve?: unknown; readonly value?: unknown; readonly constructor?: unknown };
  if (typeof object.resolve === 'function') return NOT_PLAIN;
  if (Array.isArray(produced)) {
    return typeof object.value === 'string' || typeof object.value === 'number' ? NOT_PLAIN : produced;
  }
  if (object.constructor !== Object || Object.prototype.hasOwnProperty.call(produced, '__proto__')) return NOT_PLAIN;
  return produced;
}

/** The fields cdk8s's `ApiObjectMetadataDefinition.toJson` renders (its own, not part of its API). */
interface MetadataFields {
  readonly name?: unknown;
  readonly namespace?: unknown;
  readonly labels?: unknown;
  readonly annotations?: unknown;
  readonly finalizers?: unknown;
  readonly ownerReferences?: unknown;
  readonly _additionalAttributes?: unknown;
}

/**
 * Renders `metadata` as cdk8s's `ApiObjectMetadataDefinition.toJson` does (resolve, then drop `null` and `undefined`
 * members, empty arrays and empty objects, keys sorted whatever `CDK8S_DISABLE_SORT` says), in one walk instead of
 * cdk8s's resolvers (which cost a third of rendering an object). Returns `NOT_PLAIN` for metadata holding what
 * `renderPlainJson` leaves to cdk8s, and for metadata whose fields are not what this reads (another cdk8s version):
 * the caller then uses `metadata.toJson()`.
 */
export function renderPlainMetadata(metadata: ApiObjectMetadataDefinition): unknown {
  // Someone's own rendering, or a cdk8s release that renders metadata otherwise than the one this mirrors: cdk8s's.
  if (metadata.toJson !== ORIGINAL_METADATA_TO_JSON || !agreesWithCdk8s()) return NOT_PLAIN;
  return renderMetadataFields(metadata);
}

// Compared, never called: whether an object's metadata renders with cdk8s's own method.
// eslint-disable-next-line @typescript-eslint/unbound-method
const ORIGINAL_METADATA_TO_JSON = ApiObjectMetadataDefinition.prototype.toJson;
let agreement: boolean | undefined;

/**
 * Whether this module renders metadata as the installed cdk8s does (a peer dependency: users may install a release
 * this was not tested with), checked once per process on metadata of every kind it renders: fields, labels and
 * annotations out of order, empty members, attributes of its own, and what the API adds later.
 */
function agreesWithCdk8s(): boolean {
  if (agreement !== undefined) return agreement;
  const chart = new Chart(new App(), 'probe');
  const probes = [
    new ApiObject(chart, 'full', {
      apiVersion: 'v1',
      kind: 'Probe',
      metadata: {
        name: 'full',
        namespace: 'ns',
        labels: { b: '2', a: '1' },
        annotations: { z: 'last', y: '' },
        finalizers: ['f'],
        ownerReferences: [{ apiVersion: 'v1', kind: 'Owner', name: 'o', uid: 'u' }],
      },
    }),
    new ApiObject(chart, 'bare', {
      apiVersion: 'v1',
      kind: 'Probe',
      metadata: { name: 'bare', labels: {}, annotations: {}, generateName: 'g-', deletionGracePeriodSeconds: 0 },
    }),
  ];
  probes[1].metadata.addLabel('added', 'later');
  probes[1].metadata.addAnnotation('b', 'x');
  probes[1].metadata.addFinalizers('later');
  agreement = probes.every(
    (probe) => JSON.stringify(renderMetadataFields(probe.metadata)) === JSON.stringify(probe.metadata.toJson()),
  );
  return agreement;
}

function renderMetadataFields(metadata: ApiObjectMetadataDefinition): unknown {
  const fields = metadata as unknown as MetadataFields;
  const { labels, annotations, finalizers, ownerReferences, _additionalAttributes: additional } = fields;
  if (
    !isPlainRecord(additional) ||
    !isPlainRecord(labels) ||
    !isPlainRecord(annotations) ||
    !Array.isArray(finalizers) ||
    !Array.isArray(ownerReferences)
  )
    return NOT_PLAIN;
  const own = { annotations, finalizers, labels, name: fields.name, namespace: fields.namespace, ownerReferences };
  // The attributes given at construction: those that are fields above are rendered from the fields.
  if (Object.keys(additional).some((key) => !METADATA_FIELDS.has(key))) {
    const rendered = renderPlainJson({ ...additional, ...own }, true);
    return rendered === NOT_PLAIN ? NOT_PLAIN : withoutEmpty(rendered);
  }
  // The usual metadata, member by member in sorted key order; labels and annotations are mostly strings.
  const result: Record<string, unknown> = {};
  for (const key of SORTED_METADATA_FIELDS) {
    const value = own[key];
    let member: unknown;
    if (typeof value === 'string') member = value;
    else if (isStringRecord(value)) member = sortedStrings(value);
    else {
      const rendered = renderPlainJson(value, true);
      if (rendered === NOT_PLAIN) return NOT_PLAIN;
      member = withoutEmpty(rendered);
    }
    if (member !== undefined) result[key] = member;
  }
  // Nothing left (a name that renders empty): no metadata at all, as cdk8s renders it.
  return Object.keys(result).length === 0 ? undefined : result;
}

/** The fields cdk8s renders itself, in sorted order. */
const SORTED_METADATA_FIELDS = ['annotations', 'finalizers', 'labels', 'name', 'namespace', 'ownerReferences'] as const;
const METADATA_FIELDS: ReadonlySet<string> = new Set(SORTED_METADATA_FIELDS);

/** A plain object of strings; one with a "__proto__" key (which assigning would not set) is left to `render`. */
function isStringRecord(value: unknown): value is Record<string, string> {
  return (
    isPlainRecord(value) &&
    !Object.hasOwn(value, '__proto__') &&
    Object.values(value).every((member) => typeof member === 'string')
  );
}

/** A copy of `record` with its keys sorted; undefined when it has none. */
function sortedStrings(record: Record<string, string>): Record<string, string> | undefined {
  const keys = Object.keys(record);
  if (keys.length === 0) return undefined;
  keys.sort();
  const sorted: Record<string, string> = {};
  for (const key of keys) sorted[key] = record[key];
  return sorted;
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/** What cdk8s's `sanitizeValue` keeps with `filterEmptyArrays` and `filterEmptyObjects` of a rendered value. */
function withoutEmpty(value: unknown): unknown {
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.length === 0 ? undefined : value.map(withoutEmpty);
  const kept: Record<string, unknown> = {};
  let empty = true;
  for (const key of Object.keys(value)) {
    const member = withoutEmpty((value as Record<string, unknown>)[key]);
    if (member === undefined) continue;
    kept[key] = member;
    empty = false;
  }
  return empty ? undefined : kept;
}

/** Thrown (one instance, no stack to capture) from deep inside a value that `render` leaves to cdk8s. */
const LEFT_TO_CDK8S = new Error('not plain JSON');

/** Whether the resolvers of an app are only cdk8s's own (an App adds them after those of `AppProps.resolvers`). */
export function onlyBuiltInResolvers(resolvers: readonly IResolver[] | undefined): boolean {
  return (
    resolvers !== undefined &&
    resolvers.length === 3 &&
    resolvers[0] instanceof LazyResolver &&
    resolvers[1] instanceof ImplicitTokenResolver &&
    resolvers[2] instanceof NumberStringUnionResolver
  );
}

function render(value: unknown, sortKeys: boolean): unknown {
  if (value === null || value === undefined) return undefined;
  const type = typeof value;
  if (type === 'string' || type === 'number' || type === 'boolean') return value;
  if (type !== 'object') throw LEFT_TO_CDK8S;
  if (value instanceof Lazy) return render(value.produce(), sortKeys);
  const object = value as { readonly resolve?: unknown; readonly value?: unknown; readonly constructor?: unknown };
  if (typeof object.resolve === 'function') throw LEFT_TO_CDK8S;
  if (Array.isArray(value)) {
    if (typeof object.value === 'string' || typeof object.value === 'number') throw LEFT_TO_CDK8S;
    return value.map((element) => render(element, sortKeys));
  }
  if (object.constructor !== Object) throw LEFT_TO_CDK8S;
  // cdk8s produces the members in insertion order, then keeps them in sorted key order.
  const members: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    // cdk8s assigns members one by one, so "__proto__" would set the prototype: leave that to cdk8s.
    if (key === '__proto__') throw LEFT_TO_CDK8S;
    members[key] = render((value as Record<string, unknown>)[key], sortKeys);
  }
  const keys = Object.keys(members);
  if (sortKeys) keys.sort();
  const rendered: Record<string, unknown> = {};
  for (const key of keys) if (members[key] !== undefined) rendered[key] = members[key];
  return rendered;
}
