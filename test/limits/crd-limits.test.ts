import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CRD_LIMITS, GATEWAY_DURATION } from '../../lib/limits/crd-limits.generated';
import { FIELDS, GENERATED_FILE, renderCrdLimits } from '../../scripts/generate-crd-limits';
import { describeWithShared } from '../support/shared';
import { expectThrows } from './expect-error';

describeWithShared('crds', 'lib/limits/crd-limits.generated.ts', (crdsDir) => {
  it('is what scripts/generate-crd-limits.ts makes of ../shared/crds (run it when this fails)', () => {
    expect(fs.readFileSync(GENERATED_FILE, 'utf8')).toBe(renderCrdLimits(crdsDir));
  });

  it('holds every field the generator lists, with at least one constraint each', () => {
    expect(Object.keys(CRD_LIMITS)).toEqual(Object.keys(FIELDS));
    for (const limit of Object.values(CRD_LIMITS)) expect(Object.keys(limit).length).toBeGreaterThan(3);
  });

  describe('made from a changed copy of the schemas', () => {
    let copy: string;
    const schemaFile = 'envoy-gateway/gateway.envoyproxy.io/securitypolicy_v1alpha1.json';
    const audiencesOf = (schema: any) =>
      schema.properties.spec.properties.jwt.properties.providers.items.properties.audiences;

    beforeEach(() => {
      copy = fs.mkdtempSync(path.join(os.tmpdir(), 'crd-limits-'));
      fs.cpSync(path.join(crdsDir, 'jsonschema'), path.join(copy, 'jsonschema'), { recursive: true });
    });
    afterEach(() => fs.rmSync(copy, { recursive: true, force: true }));

    const edit = (change: (schema: any) => void) => {
      const file = path.join(copy, 'jsonschema', schemaFile);
      const schema = JSON.parse(fs.readFileSync(file, 'utf8'));
      change(schema);
      fs.writeFileSync(file, JSON.stringify(schema));
    };

    it('follows a changed limit', () => {
      edit((schema) => (audiencesOf(schema).maxItems = 9));
      expect(renderCrdLimits(copy)).toContain(
        "  securityPolicyJwtAudiences: {\n    kind: 'SecurityPolicy',\n" +
          "    apiVersion: 'gateway.envoyproxy.io/v1alpha1',\n" +
          "    field: 'spec.jwt.providers[].audiences',\n    maxItems: 9,\n  },",
      );
    });

    it('throws if a listed field is gone from the schema', () => {
      edit((schema) => delete schema.properties.spec.properties.jwt.properties.providers.items.properties.audiences);
      expectThrows(
        () => renderCrdLimits(copy),
        `securityPolicyJwtAudiences (${schemaFile}): no field "audiences" (in spec.jwt.providers[].audiences)`,
        Error,
      );
    });

    it('throws if a listed field has no constraint left', () => {
      edit((schema) => delete audiencesOf(schema).maxItems);
      expectThrows(
        () => renderCrdLimits(copy),
        'securityPolicyJwtAudiences: SecurityPolicy spec.jwt.providers[].audiences has no constraint in ' +
          `${schemaFile}; drop it from FIELDS`,
        Error,
      );
    });

    /** Sets the pattern of every duration field the generator reads. */
    const setDurationPatterns = (pattern: string) => {
      const fields: [string, string[]][] = [
        [
          'gateway-api-standard/gateway.networking.k8s.io/httproute_v1.json',
          ['spec', 'rules', '[]', 'timeouts', 'request'],
        ],
        [
          'envoy-gateway/gateway.envoyproxy.io/backendtrafficpolicy_v1alpha1.json',
          ['spec', 'retry', 'perRetry', 'timeout'],
        ],
        [
          'envoy-gateway/gateway.envoyproxy.io/envoyextensionpolicy_v1alpha1.json',
          ['spec', 'extProc', '[]', 'messageTimeout'],
        ],
        ['envoy-gateway/gateway.envoyproxy.io/envoyproxy_v1alpha1.json', ['spec', 'shutdown', 'drainTimeout']],
      ];
      for (const [relative, steps] of fields) {
        const file = path.join(copy, 'jsonschema', relative);
        const schema = JSON.parse(fs.readFileSync(file, 'utf8'));
        let node = schema;
        for (const step of steps) node = step === '[]' ? node.items : node.properties[step];
        node.pattern = pattern;
        fs.writeFileSync(file, JSON.stringify(schema));
      }
    };

    it('follows a changed duration format', () => {
      setDurationPatterns('^([0-9]{1,6}(h|m|s|ms)){1,4}$');
      expect(renderCrdLimits(copy)).toContain(
        "  pattern: '^([0-9]{1,6}(h|m|s|ms)){1,4}$',\n  maxDigits: 6,\n" +
          "  units: ['h', 'm', 's', 'ms'],\n  maxComponents: 4,\n",
      );
    });

    it('throws if the duration fields stop sharing one pattern', () => {
      const file = path.join(copy, 'jsonschema', 'envoy-gateway/gateway.envoyproxy.io/envoyproxy_v1alpha1.json');
      const schema = JSON.parse(fs.readFileSync(file, 'utf8'));
      schema.properties.spec.properties.shutdown.properties.drainTimeout.pattern = '^[0-9]+s$';
      fs.writeFileSync(file, JSON.stringify(schema));
      expectThrows(
        () => renderCrdLimits(copy),
        'the duration fields no longer share one pattern: ^([0-9]{1,5}(h|m|s|ms)){1,4}$, ^[0-9]+s$',
        Error,
      );
    });

    it('throws if the duration pattern changes shape', () => {
      setDurationPatterns('^[0-9]+s$');
      expectThrows(
        () => renderCrdLimits(copy),
        'the duration pattern ^[0-9]+s$ no longer has the shape ^([0-9]{1,N}(units)){1,M}$; update ' +
          'scripts/generate-crd-limits.ts',
        Error,
      );
    });
  });
});

describe('the committed limits', () => {
  it('carry the duration format the constructs write', () => {
    expect(GATEWAY_DURATION).toEqual({
      pattern: '^([0-9]{1,5}(h|m|s|ms)){1,4}$',
      maxDigits: 5,
      units: ['h', 'm', 's', 'ms'],
      maxComponents: 4,
    });
  });
});
