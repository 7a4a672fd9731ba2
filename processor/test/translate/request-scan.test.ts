import { MAX_DEPTH, scanRequestObject } from '../../src/translate/request-scan';

/** What JSON.parse makes of the body, in the scanner's terms; undefined when JSON.parse rejects it or it is no object. */
function reference(body: Buffer): { model: string | undefined; stream: boolean } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const object = value as Record<string, unknown>;
  return { model: typeof object.model === 'string' ? object.model : undefined, stream: object.stream === true };
}

function scan(text: string | Buffer) {
  return scanRequestObject(typeof text === 'string' ? Buffer.from(text, 'utf8') : text);
}

describe('scanRequestObject', () => {
  it.each([
    ['{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}', 'gpt-4o', false],
    ['{"model":"gpt-4o","stream":true}', 'gpt-4o', true],
    [' \t\r\n{ "stream" : true , "model" : "m" } \n', 'm', true],
    ['{"stream":true,"stream":false,"model":"a","model":"b"}', 'b', false],
    ['{"model":"a","model":7}', undefined, false],
    ['{"model":null}', undefined, false],
    ['{"model":""}', '', false],
    ['{}', undefined, false],
    ['{"stream":"true","model":"x"}', 'x', false],
    ['{"stream":1}', undefined, false],
    ['{"a":{"model":"nested","stream":true},"b":[{"model":"deep"}],"model":"top"}', 'top', false],
    ['{"a":{"model":"nested"}}', undefined, false],
    ['{"messages":[{"content":"\\"model\\":\\"fake\\""}],"model":"real"}', 'real', false],
    ['{"content":"say \\"model\\": \\"x\\"","model":"y"}', 'y', false],
    ['{"n":[0,-0,1.5,-2e10,3E+2,4e-3,1e400,[],{},[[]],true,false,null]}', undefined, false],
    ['{"s":"\\u00e9\\ud800\\n\\t\\b\\f\\r\\/\\\\ é 😀 \u2028"}', undefined, false],
  ])('reads %s like JSON.parse', (text, model, stream) => {
    expect(scan(text)).toEqual({ model, stream });
    expect(reference(Buffer.from(text))).toEqual({ model, stream });
  });

  it.each([
    [''],
    ['   '],
    ['{'],
    ['{"model":"x"'],
    ['{"model":"x",}'],
    ['{"model":"x"}}'],
    ['{"model":"x"} {}'],
    ['{"model" "x"}'],
    ['{model:"x"}'],
    ["{'model':'x'}"],
    ['{"a":[1,]}'],
    ['{"a":[,1]}'],
    ['{"a":01}'],
    ['{"a":1.}'],
    ['{"a":.5}'],
    ['{"a":+1}'],
    ['{"a":1e}'],
    ['{"a":-}'],
    ['{"a":0x10}'],
    ['{"a":NaN}'],
    ['{"a":Infinity}'],
    ['{"a":tru}'],
    ['{"a":nul}'],
    ['{"a":True}'],
    ['{"a":"\\x41"}'],
    ['{"a":"\\u12"}'],
    ['{"a":"\\u12G4"}'],
    ['{"a":"\\'],
    ['{"a":"unterminated}'],
    ['{"a":"tab\there"}'],
    ['{"a":"line\nbreak"}'],
    ['{"a":"nul\u0000"}'],
    ['{"a":1}\u0000'],
    ['\ufeff{"model":"x"}'],
    ['{"a":[}'],
    ['{"a":{]}'],
    ['{"a" : [1 2]}'],
    ['{"a":1 "b":2}'],
    ['{"a"}'],
    ['{,}'],
    ['{"a":1}/* comment */'],
    ['{"a":\u00a01}'],
  ])('rejects malformed %j (JSON.parse rejects it too)', (text) => {
    expect(scan(text)).toBeUndefined();
    expect(reference(Buffer.from(text))).toBeUndefined();
  });

  it.each([['[]'], ['[{"model":"x"}]'], ['"model"'], ['1'], ['null'], ['true']])('leaves the non-object %s to JSON.parse', (text) => {
    expect(scan(text)).toBeUndefined();
  });

  it.each([
    ['an escaped key that spells model', '{"mod\\u0065l":"x"}'],
    ['an escaped key that spells stream', '{"model":"m","\\u0073tream":true}'],
    ['a model with escapes', '{"model":"gpt\\u002d4o"}'],
    ['a model with an escaped quote', '{"model":"a\\"b"}'],
    ['a non-ASCII model', '{"model":"modèle"}'],
  ])('leaves %s to JSON.parse (valid JSON, decided there)', (_name, text) => {
    expect(scan(text)).toBeUndefined();
    expect(reference(Buffer.from(text))).toBeDefined();
  });

  it('accepts escaped keys and non-ASCII below the top level', () => {
    expect(scan('{"a":{"mod\\u0065l":"é"},"model":"m"}')).toEqual({ model: 'm', stream: false });
  });

  it('accepts invalid UTF-8 inside strings, as JSON.parse of the decoded body does', () => {
    const body = Buffer.concat([Buffer.from('{"model":"m","c":"'), Buffer.from([0xff, 0xc0, 0xa2, 0xe2, 0x82]), Buffer.from('"}')]);
    expect(scan(body)).toEqual({ model: 'm', stream: false });
    expect(reference(body)).toEqual({ model: 'm', stream: false });
  });

  it('rejects bytes of 0x80 and above outside strings', () => {
    const body = Buffer.concat([Buffer.from('{"model":"m"'), Buffer.from([0xc2, 0xa0]), Buffer.from('}')]);
    expect(scan(body)).toBeUndefined();
    expect(reference(body)).toBeUndefined();
  });

  it('reads a body that is a view into a larger buffer', () => {
    const whole = Buffer.from('xxxx{"model":"gpt-4o","stream":true}yyyy');
    expect(scan(whole.subarray(4, whole.length - 4))).toEqual({ model: 'gpt-4o', stream: true });
  });

  it(`leaves nesting deeper than ${MAX_DEPTH} to JSON.parse and handles up to it`, () => {
    const nested = (depth: number) => `{"model":"m","a":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;
    expect(scan(nested(MAX_DEPTH))).toEqual({ model: 'm', stream: false });
    expect(scan(nested(MAX_DEPTH + 1))).toBeUndefined();
    expect(scan(`{"a":${'['.repeat(100_000)}`)).toBeUndefined();
  });

  it('never accepts what JSON.parse rejects, and agrees with it on what it accepts (mutated bodies)', () => {
    const seeds = [
      '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi \\u00e9 \\" x"}],"n":-1.5e+3}',
      '{"a":{"model":"x"},"model":"y","stream":false,"b":[1,[2,{"c":null}]],"d":"é"}',
    ];
    const alphabet = Buffer.from('{}[],:"\\u019-+.eE \n\ttrfalsn/x');
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let accepted = 0;
    for (let round = 0; round < 20_000; round++) {
      const body = Buffer.from(seeds[round % seeds.length]!);
      for (let k = 1 + random(3); k > 0; k--) {
        const at = random(body.length);
        body[at] = random(4) === 0 ? random(256) : alphabet[random(alphabet.length)]!;
      }
      const got = scanRequestObject(body);
      if (got === undefined) continue;
      accepted++;
      expect(got).toEqual(reference(body));
    }
    expect(accepted).toBeGreaterThan(100);
  });
});
