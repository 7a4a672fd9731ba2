import { ApiObject, App, Chart, Duration, JsonPatch, Lazy, type IResolver, type ResolutionContext } from 'cdk8s';
import { customResource, plainPropsMember } from '../lib/crds';
import { NOT_PLAIN, plainLevel, renderPlainJson, renderPlainMetadata } from '../lib/plain-json';

/** The JSON of a custom resource with `spec`, and cdk8s's own rendering of the same object (or their errors). */
function renderBoth(spec: unknown, options: { resolvers?: IResolver[]; patch?: JsonPatch } = {}) {
  const render = (emit: (chart: Chart) => ApiObject): unknown => {
    const app = new App({ resolvers: options.resolvers });
    const chart = new Chart(app, 'Chart', { namespace: 'team', labels: { team: 'a' } });
    const object = emit(chart);
    if (options.patch) object.addJsonPatch(options.patch);
    try {
      return object.toJson();
    } catch (error) {
      return `threw: ${(error as Error).message}`;
    }
  };
  const ours = render((chart) =>
    customResource(chart, 'Object', 'example.io/v1', 'Thing', { name: 'thing', labels: { app: 'x' } }, spec),
  );
  const cdk8s = render(
    (chart) =>
      new ApiObject(chart, 'Object', {
        apiVersion: 'example.io/v1',
        kind: 'Thing',
        metadata: { name: 'thing', namespace: undefined, labels: { app: 'x' } },
        spec: typeof spec === 'function' ? Lazy.any({ produce: spec as () => unknown }) : spec,
      }),
  );
  return { ours, cdk8s };
}

/** Key order matters to the YAML: compare the JSON text. */
function expectSameRendering(spec: unknown, options?: Parameters<typeof renderBoth>[1]): void {
  const { ours, cdk8s } = renderBoth(spec, options);
  expect(JSON.stringify(ours)).toBe(JSON.stringify(cdk8s));
}

class Quantity {
  constructor(readonly value: string) {}
}

const PLAIN_SPEC = {
  zeta: [{ b: 1, a: null, c: undefined }, null, undefined, 'text', 0, false, ''],
  alpha: { nested: { z: true, y: [], x: {} }, empty: '' },
  Upper: 1.5,
  '10': 'numeric key',
  '2': 'another',
};

describe('custom resources render as cdk8s renders them', () => {
  test('plain JSON: keys sorted, null and undefined members dropped, null array elements kept as undefined', () => {
    expect(renderPlainJson(PLAIN_SPEC, true)).not.toBe(NOT_PLAIN);
    expectSameRendering(PLAIN_SPEC);
  });

  test('a Lazy spec, and Lazy values inside what it produces', () => {
    expectSameRendering(() => ({
      b: Lazy.any({ produce: () => ({ d: Lazy.any({ produce: () => 'deep' }), c: null }) }),
      a: [Lazy.any({ produce: () => 1 }), Lazy.any({ produce: () => null })],
    }));
  });

  test('without sorting when CDK8S_DISABLE_SORT is set', () => {
    process.env.CDK8S_DISABLE_SORT = '1';
    try {
      expectSameRendering(PLAIN_SPEC);
    } finally {
      delete process.env.CDK8S_DISABLE_SORT;
    }
  });

  test('values only cdk8s resolves: objects with resolve(), number-or-string unions', () => {
    const token = { resolve: () => ({ z: 1, a: 2 }) };
    expect(renderPlainJson({ token }, true)).toBe(NOT_PLAIN);
    expectSameRendering({ token, quantity: new Quantity('1Gi'), list: [token] });
  });

  test('a value cdk8s cannot render fails with the same message', () => {
    const { ours } = renderBoth({ timeout: Duration.seconds(5) });
    expect(ours).toMatch(/^threw: Failed serializing construct at path 'Chart\/Object' with name 'thing': .*Duration/);
    expectSameRendering({ timeout: Duration.seconds(5) });
  });

  test('a Lazy spec that throws fails with cdk8s message around the error', () => {
    const spec = () => {
      throw new Error('the spec is invalid');
    };
    const { ours } = renderBoth(spec);
    expect(ours).toBe(
      "threw: Failed serializing construct at path 'Chart/Object' with name 'thing': Error: the spec is invalid",
    );
    expectSameRendering(spec);
  });

  test('an app with resolvers of its own', () => {
    // cdk8s resolves a replaced value again: replace lower-case strings only.
    const upper: IResolver = {
      resolve(context: ResolutionContext) {
        const value: unknown = context.value;
        if (typeof value === 'string' && value !== value.toUpperCase()) context.replaceValue(value.toUpperCase());
      },
    };
    const { ours } = renderBoth(PLAIN_SPEC, { resolvers: [upper] });
    expect(JSON.stringify(ours)).toContain('"TEXT"');
    expectSameRendering(PLAIN_SPEC, { resolvers: [upper] });
  });

  test('JSON patches', () => {
    const patch = JsonPatch.add('/spec/added', { value: 1 });
    const { ours } = renderBoth(PLAIN_SPEC, { patch });
    expect((ours as { spec: Record<string, unknown> }).spec.added).toEqual({ value: 1 });
    expectSameRendering(PLAIN_SPEC, { patch });
  });

  test('metadata changed after construction', () => {
    const app = new App();
    const chart = new Chart(app, 'Chart', { namespace: 'team' });
    const object = customResource(chart, 'Object', 'example.io/v1', 'Thing', { name: 'thing' }, { a: 1 });
    object.metadata.addAnnotation('example.io/note', 'kept');
    expect(object.toJson()).toEqual({
      apiVersion: 'example.io/v1',
      kind: 'Thing',
      metadata: { name: 'thing', namespace: 'team', annotations: { 'example.io/note': 'kept' } },
      spec: { a: 1 },
    });
  });
});

describe('members read from plain props', () => {
  /** Reads `path` level by level with `plainLevel`, as the drain time reads a route. */
  function readPlain(value: unknown, path: readonly (string | number)[]): unknown {
    let current = plainLevel(value);
    for (const key of path) {
      if (current === NOT_PLAIN || current === undefined || typeof current !== 'object') return current;
      current = plainLevel((current as Record<string | number, unknown>)[key]);
    }
    return current;
  }

  function readRendered(value: unknown, path: readonly (string | number)[]): unknown {
    let current = renderPlainJson(value, true);
    for (const key of path) {
      if (current === undefined || typeof current !== 'object') return current;
      current = (current as Record<string | number, unknown>)[key];
    }
    return current;
  }

  test('read the same values as the rendered object, Lazy values produced', () => {
    const spec = {
      rules: Lazy.any({
        produce: () => [
          { timeouts: { request: Lazy.any({ produce: () => '60s' }) }, backendRefs: [{ name: 'a' }, null] },
          null,
          { timeouts: null },
        ],
      }),
    };
    for (const path of [
      ['rules', 0, 'timeouts', 'request'],
      ['rules', 1],
      ['rules', 2, 'timeouts'],
      ['rules', 3],
      ['missing'],
    ])
      expect(readPlain(spec, path)).toEqual(readRendered(spec, path));
    expect((readPlain(spec, ['rules', 0, 'backendRefs']) as unknown[]).length).toBe(2);
  });

  test('values cdk8s renders differently are NOT_PLAIN', () => {
    expect(plainLevel({ resolve: () => 1 })).toBe(NOT_PLAIN);
    expect(plainLevel(new Quantity('1Gi'))).toBe(NOT_PLAIN);
    expect(plainLevel(Object.assign(['a'], { value: 'x' }))).toBe(NOT_PLAIN);
    expect(plainLevel(JSON.parse('{"__proto__": 1}'))).toBe(NOT_PLAIN);
    expect(plainLevel(Lazy.any({ produce: () => () => 1 }))).toBe(NOT_PLAIN);
  });

  test('only unpatched objects the constructs emit, in apps with only the built-in resolvers', () => {
    const emit = (resolvers?: IResolver[]) => {
      const chart = new Chart(new App({ resolvers }), 'Chart');
      return {
        ours: customResource(chart, 'Object', 'example.io/v1', 'Thing', { name: 'thing' }, { a: 1 }),
        cdk8s: new ApiObject(chart, 'Other', { apiVersion: 'example.io/v1', kind: 'Thing', spec: { a: 1 } }),
      };
    };
    const { ours, cdk8s } = emit();
    expect(plainPropsMember(ours, 'spec')).toEqual({ a: 1 });
    expect(plainPropsMember(cdk8s, 'spec')).toBe(NOT_PLAIN);
    ours.addJsonPatch(JsonPatch.replace('/spec/a', 2));
    expect(plainPropsMember(ours, 'spec')).toBe(NOT_PLAIN);
    const resolver: IResolver = { resolve: () => undefined };
    expect(plainPropsMember(emit([resolver]).ours, 'spec')).toBe(NOT_PLAIN);
  });
});

describe('metadata renders as cdk8s renders it', () => {
  /** Applies `change` to the metadata of one of our objects and of a cdk8s ApiObject alike; their JSON text. */
  function renderMetadataBoth(change: (object: ApiObject) => void): { ours: string; cdk8s: string } {
    const render = (emit: (chart: Chart) => ApiObject) => {
      const chart = new Chart(new App(), 'Chart', { namespace: 'team', labels: { team: 'a' } });
      const object = emit(chart);
      change(object);
      return JSON.stringify(object.toJson());
    };
    return {
      ours: render((chart) =>
        customResource(chart, 'Object', 'example.io/v1', 'Thing', { name: 'thing', labels: { app: 'x' } }, { a: 1 }),
      ),
      cdk8s: render(
        (chart) =>
          new ApiObject(chart, 'Object', {
            apiVersion: 'example.io/v1',
            kind: 'Thing',
            metadata: { name: 'thing', namespace: undefined, labels: { app: 'x' } },
            spec: { a: 1 },
          }),
      ),
    };
  }

  test.each<[string, (object: ApiObject) => void]>([
    ['unchanged', () => undefined],
    [
      'labels, annotations, finalizers and owners added',
      (object) => {
        object.metadata.addLabel('b-label', 'b');
        object.metadata.addAnnotation('z.example.io/note', 'kept');
        object.metadata.addAnnotation('a.example.io/note', '');
        object.metadata.addFinalizers('example.io/cleanup');
        object.metadata.addOwnerReference({ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: 'u-1' });
      },
    ],
    [
      'attributes of its own: empty ones dropped, nested empties too, Lazy values produced',
      (object) => {
        object.metadata.add('generateName', 'thing-');
        object.metadata.add('emptyList', []);
        object.metadata.add('emptyMap', {});
        object.metadata.add('nested', { keep: { deep: [1, null, {}] }, drop: { inner: {} }, none: null });
        object.metadata.add('produced', Lazy.any({ produce: () => ({ z: 'z', a: [] }) }));
      },
    ],
    ['a label value cdk8s resolves itself', (object) => object.metadata.add('token', { resolve: () => 'resolved' })],
  ])('%s', (_name, change) => {
    const { ours, cdk8s } = renderMetadataBoth(change);
    expect(ours).toBe(cdk8s);
  });

  test('keys sorted when CDK8S_DISABLE_SORT is set, as cdk8s sorts metadata regardless', () => {
    process.env.CDK8S_DISABLE_SORT = '1';
    try {
      const { ours, cdk8s } = renderMetadataBoth((object) => object.metadata.addAnnotation('b', 'b'));
      expect(ours).toBe(cdk8s);
    } finally {
      delete process.env.CDK8S_DISABLE_SORT;
    }
  });

  test('metadata of another shape is left to cdk8s', () => {
    const chart = new Chart(new App(), 'Chart');
    const object = customResource(chart, 'Object', 'example.io/v1', 'Thing', { name: 'thing' }, { a: 1 });
    expect(renderPlainMetadata(object.metadata)).toEqual({ name: 'thing' });
    Object.defineProperty(object.metadata, 'labels', { value: undefined });
    expect(renderPlainMetadata(object.metadata)).toBe(NOT_PLAIN);
  });

  test('metadata rendered by a method of its own is left to that method', () => {
    const chart = new Chart(new App(), 'Chart');
    const object = customResource(chart, 'Object', 'example.io/v1', 'Thing', { name: 'thing' }, { a: 1 });
    object.metadata.toJson = () => ({ name: 'renamed' });
    expect(renderPlainMetadata(object.metadata)).toBe(NOT_PLAIN);
    expect(object.toJson()).toMatchObject({ metadata: { name: 'renamed' } });
  });
});

test('metadata with label values cdk8s resolves, and a "__proto__" label', () => {
  for (const change of [
    (object: ApiObject) => object.metadata.addLabel('lazy', Lazy.any({ produce: () => 'produced' })),
    (object: ApiObject) =>
      Object.defineProperty((object.metadata as unknown as { labels: object }).labels, '__proto__', {
        value: 'p',
        enumerable: true,
      }),
  ]) {
    const render = (emit: (chart: Chart) => ApiObject) => {
      const object = emit(new Chart(new App(), 'Chart', { namespace: 'team' }));
      change(object);
      try {
        return JSON.stringify(object.toJson());
      } catch (error) {
        return `threw: ${(error as Error).message}`;
      }
    };
    const ours = render((chart) => customResource(chart, 'Object', 'example.io/v1', 'Thing', { name: 'thing' }, {}));
    const cdk8s = render(
      (chart) =>
        new ApiObject(chart, 'Object', {
          apiVersion: 'example.io/v1',
          kind: 'Thing',
          metadata: { name: 'thing' },
          spec: {},
        }),
    );
    expect(ours).toBe(cdk8s);
  }
});
