/**
 * The multipart/form-data reader (extproc/form-body.ts): the `model` and `stream` fields of forms as real encoders
 * write them (Node's FormData, the one the openai SDK uses), file parts that contain what looks like fields and
 * boundaries, the refusals (malformed framing, ambiguous headers, duplicates, bounds), and a fuzz against Node's own
 * multipart parser: whatever the reader accepts, that parser reads the same `model`.
 */
import {
  FORM_FIELDS,
  formBoundary,
  isFormContentType,
  MAX_FORM_PARTS,
  MAX_PART_HEADER_BYTES,
  replaceSpan,
  scanFormBody,
  type FormScanResult,
} from '../../src/extproc/form-body';
import { fuzzIt, scaled, type Rng } from '../support/fuzz';

/** A form encoded as Node's fetch encodes it: the bytes and the Content-Type with its boundary. */
async function encode(form: FormData): Promise<{ raw: Buffer; contentType: string }> {
  const response = new Response(form);
  return { raw: Buffer.from(await response.arrayBuffer()), contentType: response.headers.get('content-type')! };
}

function scan(raw: Buffer, contentType: string): FormScanResult {
  const boundary = formBoundary(contentType);
  if ('message' in boundary) throw new Error(boundary.message);
  return scanFormBody(raw, boundary.boundary);
}

function valuesOf(raw: Buffer, result: FormScanResult): Record<string, string> {
  if (!result.ok) throw new Error(`not accepted: ${result.message}`);
  const out: Record<string, string> = {};
  for (const field of FORM_FIELDS) {
    const span = result.fields[field];
    if (span) out[field] = raw.toString('utf8', span.start, span.end);
  }
  return out;
}

/** A hand-written form with CRLF line ends. */
function form(boundary: string, ...parts: string[]): Buffer {
  return Buffer.from(parts.map((part) => `--${boundary}\r\n${part}\r\n`).join('') + `--${boundary}--\r\n`);
}

const field = (name: string, value: string): string => `Content-Disposition: form-data; name="${name}"\r\n\r\n${value}`;

describe('the Content-Type', () => {
  it.each([
    ['multipart/form-data; boundary=abc', true],
    ['Multipart/Form-Data;boundary="a b"', true],
    [' multipart/form-data ', true],
    ['application/json', false],
    ['multipart/mixed; boundary=x', false],
    [undefined, false],
  ])('%j is a form: %s', (contentType, expected) => {
    expect(isFormContentType(contentType)).toBe(expected);
  });

  it.each([
    ['multipart/form-data; boundary=abc', 'abc'],
    ['multipart/form-data; boundary="a b:c"', 'a b:c'],
    ['multipart/form-data; charset=utf-8; BOUNDARY=----x', '----x'],
  ])('reads the boundary of %j', (contentType, boundary) => {
    expect(formBoundary(contentType)).toEqual({ boundary });
  });

  it.each([
    ['multipart/form-data', 'has no boundary'],
    ['multipart/form-data; boundary=', 'has a malformed parameter value'],
    ['multipart/form-data; boundary=""', 'must be 1 to 70'],
    [`multipart/form-data; boundary=${'a'.repeat(71)}`, 'must be 1 to 70'],
    ['multipart/form-data; boundary="a "', 'must be 1 to 70'],
    ['multipart/form-data; boundary="a\u00e9"', 'must be 1 to 70'],
    ['multipart/form-data; boundary=a; boundary=b', 'names the parameter "boundary" twice'],
    ['multipart/form-data; boundary="abc', 'unterminated quoted parameter'],
    ['multipart/form-data; boundary', 'a parameter without a value'],
  ])('refuses %j', (contentType, reason) => {
    const result = formBoundary(contentType);
    expect('message' in result && result.message).toContain(reason);
  });
});

describe('forms as encoders write them', () => {
  it('reads model and stream of a transcription form, skipping the file', async () => {
    const data = new FormData();
    data.append('file', new Blob([Buffer.from('RIFF....WAVEfmt ')]), 'speech.wav');
    data.append('model', 'gpt-4o-transcribe');
    data.append('stream', 'true');
    data.append('response_format', 'json');
    const { raw, contentType } = await encode(data);
    expect(valuesOf(raw, scan(raw, contentType))).toEqual({ model: 'gpt-4o-transcribe', stream: 'true' });
  });

  it('is not fooled by a file holding fields, the boundary without its line break, binary bytes', async () => {
    const data = new FormData();
    const { contentType: probe } = await encode(new FormData());
    const boundary = (formBoundary(probe) as { boundary: string }).boundary.slice(0, 10);
    const inner = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nevil\r\n`),
      Buffer.from([0, 0xff, 0x0d, 0x0a, 0x2d, 0x2d]),
    ]);
    data.append('image[]', new Blob([inner]), 'a.png');
    data.append('model', 'gpt-image-1');
    data.append('image[]', new Blob([inner]), 'b.png');
    const { raw, contentType } = await encode(data);
    const result = scan(raw, contentType);
    expect(valuesOf(raw, result)).toEqual({ model: 'gpt-image-1' });
    expect(result.ok && result.parts).toBe(3);
  });

  it('reads a UTF-8 model name and an empty form', async () => {
    const data = new FormData();
    data.append('model', 'modèle-é');
    let { raw, contentType } = await encode(data);
    expect(valuesOf(raw, scan(raw, contentType))).toEqual({ model: 'modèle-é' });
    ({ raw, contentType } = await encode(new FormData()));
    expect(scan(raw, contentType)).toMatchObject({ ok: true, fields: {}, parts: 0 });
  });

  it('replaces the model value exactly, keeping the framing', async () => {
    const data = new FormData();
    data.append('file', new Blob([Buffer.from('abc')]), 'a.mp3');
    data.append('model', 'whisper');
    const { raw, contentType } = await encode(data);
    const result = scan(raw, contentType);
    if (!result.ok) throw new Error(result.message);
    const replaced = replaceSpan(raw, result.fields.model!, 'whisper-1-2024');
    const reread = await new Response(replaced, { headers: { 'content-type': contentType } }).formData();
    expect(reread.get('model')).toBe('whisper-1-2024');
    expect(Buffer.from(await (reread.get('file') as Blob).arrayBuffer()).toString()).toBe('abc');
    expect(replaced.length).toBe(raw.length - 'whisper'.length + 'whisper-1-2024'.length);
  });
});

describe('hand-written forms', () => {
  it('accepts transport padding, parameters in any case and order, and padding and a CRLF after the close', () => {
    const raw = Buffer.concat([
      Buffer.from('--b \t\r\ncontent-disposition: form-data; filename=x; NAME="file"\r\n\r\nnot read\r\n'),
      Buffer.from('--b\r\nContent-Disposition: form-data;name=model\r\nContent-Type: text/plain\r\n\r\ngpt\r\n'),
      Buffer.from('--b\r\nContent-Disposition: form-data; name="stream"\r\n\r\nfalse\r\n--b-- \t\r\n'),
    ]);
    expect(valuesOf(raw, scanFormBody(raw, 'b'))).toEqual({ model: 'gpt', stream: 'false' });
  });

  it('refuses bytes after the close delimiter: a parser reading on would find other parts', () => {
    const smuggled = Buffer.from(
      `--b\r\n${field('model', 'gpt')}\r\n--b--garbage\r\n--b\r\n${field('model', 'other-model')}\r\n--b--`,
    );
    expect(scanFormBody(smuggled, 'b')).toMatchObject({
      ok: false,
      message: expect.stringMatching(/follow the closing/),
    });
    const epilogue = Buffer.from(`--b\r\n${field('model', 'gpt')}\r\n--b--\r\nepilogue`);
    expect(scanFormBody(epilogue, 'b')).toMatchObject({ ok: false });
  });

  it('reads an unquoted name, a quoted-pair in a file name and an empty value', () => {
    const raw = form(
      'b',
      'Content-Disposition: form-data; name=model\r\n\r\nx',
      'Content-Disposition: form-data; name="f"; filename="a\\"b.wav"\r\n\r\n...',
      field('stream', ''),
    );
    expect(valuesOf(raw, scanFormBody(raw, 'b'))).toEqual({ model: 'x', stream: '' });
  });

  it.each([
    ['no boundary at all', Buffer.from('model=gpt'), 'does not contain the multipart boundary'],
    ['the boundary after a bare LF', Buffer.from(`--b\r\n${field('x', 'v\n--b')}\r\n--b--`), 'not on a line'],
    ['the boundary inside a value', Buffer.from(`--b\r\n${field('x', 'v--b')}\r\n--b--`), 'not on a line'],
    ['the boundary right after the headers', Buffer.from(`--b\r\n${field('x', '--b--')}`), 'not on a line'],
    ['a preamble', Buffer.concat([Buffer.from('x'), form('b', field('model', 'g'))]), 'no preamble'],
    ['no closing boundary', Buffer.from(`--b\r\n${field('model', 'gpt')}`), 'ends without the closing boundary'],
    ['a body cut after a delimiter', Buffer.from(`--b\r\n${field('model', 'gpt')}\r\n--b`), 'ends without'],
    ['bytes after a boundary', Buffer.from(`--bx\r\n${field('model', 'g')}\r\n--b--`), 'has extra bytes'],
    ['headers without their end', Buffer.from('--b\r\nContent-Disposition: form-data; name="model"'), 'no end'],
    [
      'a delimiter inside the headers',
      Buffer.from('--b:\r\nX: 1\r\n--b:\r\nContent-Disposition: form-data; name="model"\r\n\r\ng\r\n--b:--'),
      'no end of its headers',
    ],
    ['a part without headers', form('b', '\r\nvalue'), 'no Content-Disposition'],
    ['a folded header', form('b', 'Content-Disposition: form-data;\r\n name="model"\r\n\r\ng'), 'folded'],
    ['a stray CR in a header', form('b', 'Content-Disposition: form-data; name="model"\r\r\n\r\ng'), 'control'],
    ['a header line without a colon', form('b', `Garbage\r\n${field('model', 'g')}`), 'header line is malformed'],
    [
      'two Content-Dispositions',
      form('b', `Content-Disposition: form-data; name="x"\r\n${field('model', 'g')}`),
      'two Content-Disposition',
    ],
    ['"FORM-DATA"', form('b', 'Content-Disposition: FORM-DATA; name="model"\r\n\r\ng'), 'not "form-data"'],
    ['another disposition', form('b', 'Content-Disposition: attachment; name="model"\r\n\r\ng'), 'not "form-data"'],
    ['no name', form('b', 'Content-Disposition: form-data; filename="a"\r\n\r\ng'), 'has no "name"'],
    ['an escape in a name', form('b', 'Content-Disposition: form-data; name="mod\\el"\r\n\r\ng'), 'backslash'],
    ['% in a name', form('b', 'Content-Disposition: form-data; name="mod%65l"\r\n\r\ng'), '"%"'],
    ['an unknown parameter', form('b', 'Content-Disposition: form-data; name="x"; size=3\r\n\r\ng'), '"size"'],
    ['name*', form('b', "Content-Disposition: form-data; name*=UTF-8''model\r\n\r\ng"), '"name*"'],
    [
      'a duplicate parameter',
      form('b', 'Content-Disposition: form-data; name="stream"; name="model"\r\n\r\ng'),
      'names the parameter "name" twice',
    ],
    [
      'a transfer encoding',
      form('b', `Content-Transfer-Encoding: base64\r\n${field('model', 'Z3B0')}`),
      'Content-Transfer-Encoding',
    ],
    ['model twice', form('b', field('model', 'a'), field('model', 'b')), 'names "model" more than once'],
    ['stream twice', form('b', field('stream', 'true'), field('stream', 'false')), 'names "stream" more than once'],
    [
      'model as a file',
      form('b', 'Content-Disposition: form-data; name="model"; filename="m.txt"\r\n\r\ngpt'),
      '"model" field must be a value',
    ],
    [
      'an unterminated quoted name',
      form('b', 'Content-Disposition: form-data; name="model\r\n\r\ng'),
      'unterminated quoted parameter',
    ],
  ])('refuses %s', (_, raw, reason) => {
    const result = scanFormBody(raw, raw.includes('--b:') ? 'b:' : 'b');
    expect(result.ok).toBe(false);
    expect(!result.ok && result.message).toMatch(/^malformed multipart\/form-data body: /);
    expect(!result.ok && result.message).toContain(reason);
  });

  it(`refuses more than ${MAX_FORM_PARTS} parts, and accepts exactly that many`, () => {
    const parts = Array.from({ length: MAX_FORM_PARTS }, (_, i) => field(`f${i}`, 'v'));
    expect(scanFormBody(form('b', ...parts), 'b')).toMatchObject({ ok: true, parts: MAX_FORM_PARTS });
    const result = scanFormBody(form('b', ...parts, field('model', 'g')), 'b');
    expect(!result.ok && result.message).toContain(`more than ${MAX_FORM_PARTS} parts`);
  });

  it(`refuses a header block over ${MAX_PART_HEADER_BYTES} bytes, without searching the rest of the body`, () => {
    const long = `Content-Disposition: form-data; name="model"; filename="${'a'.repeat(MAX_PART_HEADER_BYTES)}"`;
    const raw = Buffer.concat([form('b', `${long}\r\n\r\nx`), Buffer.alloc(8 * 1024 * 1024, 0x61)]);
    const started = process.hrtime.bigint();
    const result = scanFormBody(raw, 'b');
    expect(!result.ok && result.message).toContain(`headers exceed ${MAX_PART_HEADER_BYTES} bytes`);
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(200);
  });
});

// ---------- fuzz against Node's multipart parser ----------

const NAMES = ['model', 'stream', 'file', 'prompt', 'image[]', 'language', 'Model', 'model ', 'mod"el', 'stréam'];
const PIECES = ['\r\n', '--', '\r\n--', 'model', 'Content-Disposition: form-data; name="model"', '"', '\\', 'é', '\0'];

function preview(raw: Buffer): string {
  return JSON.stringify(raw.toString('latin1').slice(0, 600));
}

function randomText(rng: Rng): string {
  let out = '';
  for (let i = rng.int(6); i > 0; i--) out += rng.bool(0.4) ? rng.pick(PIECES) : rng.text(rng.int(6));
  return out;
}

function randomForm(rng: Rng): FormData {
  const data = new FormData();
  for (let i = rng.int(6); i > 0; i--) {
    const name = rng.pick(NAMES);
    if (rng.bool(0.3))
      data.append(name, new Blob([Buffer.concat([Buffer.from(randomText(rng)), rng.bytes(rng.int(40))])]), 'f.bin');
    else data.append(name, rng.bool(0.5) ? rng.pick(['gpt-4o', 'whisper-1', 'true', 'false', '']) : randomText(rng));
  }
  return data;
}

function mutate(rng: Rng, raw: Buffer): Buffer {
  const out = Buffer.from(raw);
  switch (rng.int(5)) {
    case 0:
      return out.subarray(0, rng.int(out.length + 1));
    case 1:
      for (let i = rng.range(1, 3); i > 0 && out.length > 0; i--) out[rng.int(out.length)] = rng.int(256);
      return out;
    case 2: {
      const at = rng.int(out.length + 1);
      return Buffer.concat([out.subarray(0, at), Buffer.from(rng.pick(PIECES)), out.subarray(at)]);
    }
    case 3: {
      const at = rng.int(out.length + 1);
      return Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + rng.range(1, 8)))]);
    }
    default:
      return out;
  }
}

/** Node's own reading of a form: its `model` values, or undefined when it refuses the body. */
async function referenceModels(raw: Buffer, contentType: string): Promise<unknown[] | undefined> {
  try {
    // Node wants a space after the `;` of the Content-Disposition (the RFC allows none): added, only there.
    raw = Buffer.from(raw.toString('latin1').replace(/(form-data|"|\w);(name|filename)=/gi, '$1; $2='), 'latin1');
    const data = await new Response(raw, { headers: { 'content-type': contentType } }).formData();
    return data.getAll('model').map((value) => (typeof value === 'string' ? value : 'file'));
  } catch {
    return undefined;
  }
}

fuzzIt(
  'reads the same model as Node’s parser from every form it accepts, generated and mutated',
  async (rng) => {
    let compared = 0;
    let refusedByNode = 0;
    for (let i = scaled(600); i > 0; i--) {
      const { raw: encoded, contentType } = await encode(randomForm(rng));
      const raw = mutate(rng, encoded);
      const result = scan(raw, contentType);
      if (raw === encoded || raw.equals(encoded)) {
        // An encoder's form is always accepted, unless it names model or stream twice or sends one as a file, or a
        // field name has a quote (encoded %22).
        const models = await referenceModels(raw, contentType);
        if (result.ok === false && !/more than once|must be a value|"%"/.test(result.message))
          throw new Error(`refused an encoded form: ${result.message}`);
        if (result.ok && models !== undefined) expect(models.length).toBeLessThanOrEqual(1);
      }
      if (!result.ok) continue;
      // Node refuses some bodies the reader accepts: epilogues (bytes after the close delimiter, which the reader
      // ignores: compared without them), and content holding the boundary text without its two dashes (RFC 2046
      // content; a refusal, never another reading). Where both read the body, they read the same model.
      let models = await referenceModels(raw, contentType);
      models ??= await referenceModels(Buffer.concat([raw.subarray(0, result.end), Buffer.from('\r\n')]), contentType);
      if (models === undefined) {
        const boundary = (formBoundary(contentType) as { boundary: string }).boundary;
        if (!raw.toString('latin1').split(`--${boundary}`).join('').includes(boundary))
          throw new Error(`accepted a form Node refuses: ${preview(raw)}`);
        refusedByNode++;
        continue;
      }
      compared++;
      const span = result.fields.model;
      const ours = span ? [raw.toString('utf8', span.start, span.end)] : [];
      if (JSON.stringify(models) !== JSON.stringify(ours))
        throw new Error(`read ${JSON.stringify(ours)}, Node ${JSON.stringify(models)}: ${preview(raw)}`);
    }
    expect(compared).toBeGreaterThan(scaled(100));
    expect(refusedByNode).toBeLessThan(compared / 10);
  },
  60_000,
);
