/**
 * Reading the fields the gateway routes on (`model`, `stream`) from a multipart/form-data request body (RFC 7578,
 * the framing of RFC 2046 section 5.1), within bounds and without decoding it: the boundary comes from the
 * Content-Type, each delimiter is found with one native search from the previous one, and only the small header
 * block of each part is read. File parts and other fields are skipped, never copied or decoded; the body itself is
 * forwarded as it came (or with the model part's bytes replaced, see `replaceSpan`).
 *
 * The reader is strict where a lenient provider could read another structure than the gateway. Refused rather than
 * guessed at: a preamble; a part without a `form-data` Content-Disposition; a `name*` or unknown parameter; a name
 * with a backslash escape or `%`; a duplicate parameter; a folded header line or a control character in one; a
 * transfer encoding; a `model` or `stream` field named twice or sent as a file; the boundary text anywhere but on a
 * delimiter line of its own (RFC 2046 forbids it in content; a parser that took a bare LF before it would see other
 * parts); and a body whose last delimiter is missing.
 */

/** Most parts a form may have (audio transcriptions have about 15 fields, image edits up to 16 images and a mask). */
export const MAX_FORM_PARTS = 128;
/** Most bytes of one part's header block (Content-Disposition with a long file name, Content-Type). */
export const MAX_PART_HEADER_BYTES = 4096;
/** RFC 2046: a boundary has 1 to 70 characters. */
export const MAX_BOUNDARY_LENGTH = 70;

/** Form fields the gateway reads; each may appear at most once, and never as a file. */
export const FORM_FIELDS = ['model', 'stream'] as const;
export type FormField = (typeof FORM_FIELDS)[number];

/** The bytes of one field's value: `raw.subarray(start, end)`. */
export interface FormSpan {
  start: number;
  end: number;
}

export type FormFields = Partial<Record<FormField, FormSpan>>;

export type FormScanResult =
  /** `end`: where the close delimiter ends (an epilogue after it is ignored). */
  { ok: true; fields: FormFields; parts: number; end: number } | { ok: false; message: string };

/** Whether a Content-Type names a multipart/form-data body (its media type, any parameters). */
export function isFormContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semicolon = contentType.indexOf(';');
  const type = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  return type === 'multipart/form-data';
}

/** RFC 2046 `bchars` (a space only inside, never last). */
const BOUNDARY_CHARS = /^[0-9A-Za-z'()+_,\-./:=? ]*[0-9A-Za-z'()+_,\-./:=?]$/;
/** The Content-Disposition parameters of RFC 7578 (`name*` is refused apart, with its reason). */
const DISPOSITION_PARAMETERS = new Set(['name', 'filename', 'filename*', 'name*']);
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** The boundary of a multipart/form-data Content-Type, or why there is none usable. */
export function formBoundary(contentType: string): { boundary: string } | { message: string } {
  const params = parseParameters(contentType, contentType.indexOf(';'));
  if ('message' in params) return { message: `the Content-Type ${params.message}` };
  const boundary = params.values.get('boundary');
  if (boundary === undefined) return { message: 'the multipart/form-data Content-Type has no boundary' };
  if (boundary.length === 0 || boundary.length > MAX_BOUNDARY_LENGTH || !BOUNDARY_CHARS.test(boundary))
    return { message: `the multipart boundary must be 1 to ${MAX_BOUNDARY_LENGTH} characters RFC 2046 allows` };
  return { boundary };
}

const CR = 0x0d;
const LF = 0x0a;
const DASH = 0x2d;
const SPACE = 0x20;
const TAB = 0x09;
const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * The spans of the top-level `model` and `stream` fields of a multipart/form-data body with this boundary. Errors
 * name what is wrong, never echo the body.
 */
export function scanFormBody(raw: Buffer, boundary: string): FormScanResult {
  const dashBoundary = Buffer.from(`--${boundary}`, 'latin1');
  // RFC 2046 allows a preamble before the first boundary; clients send none, and parsers that search for the first
  // boundary differently could find different parts in one: refused.
  if (!raw.subarray(0, dashBoundary.length).equals(dashBoundary)) {
    return fail(
      raw.indexOf(dashBoundary) === -1
        ? 'the body does not contain the multipart boundary'
        : 'the body must start with the boundary (no preamble)',
    );
  }
  let pos = dashBoundary.length;
  const fields: FormFields = {};
  let parts = 0;
  for (;;) {
    // After a delimiter: `--` closes the body; else padding, CRLF and the next part. RFC 2046 allows an epilogue
    // after the close delimiter, but clients send at most a CRLF, and bytes there are what parsers disagree on (one
    // that reads on would find other parts): padding and one CRLF are all that may follow.
    if (raw[pos] === DASH && raw[pos + 1] === DASH) {
      const end = pos + 2;
      let rest = end;
      while (raw[rest] === SPACE || raw[rest] === TAB) rest++;
      if (raw[rest] === CR && raw[rest + 1] === LF) rest += 2;
      if (rest !== raw.length) return fail('bytes follow the closing boundary');
      return { ok: true, fields, parts, end };
    }
    while (raw[pos] === SPACE || raw[pos] === TAB) pos++;
    if (raw[pos] !== CR || raw[pos + 1] !== LF) {
      return fail(pos >= raw.length ? 'the body ends without the closing boundary' : 'a boundary line has extra bytes');
    }
    pos += 2;
    if (++parts > MAX_FORM_PARTS) return fail(`the form has more than ${MAX_FORM_PARTS} parts`);
    let headerEnd: number;
    let contentStart: number;
    if (raw[pos] === CR && raw[pos + 1] === LF) {
      headerEnd = pos;
      contentStart = pos + 2;
    } else {
      const found = raw.subarray(pos, pos + MAX_PART_HEADER_BYTES + HEADER_END.length).indexOf(HEADER_END);
      if (found === -1) {
        return fail(
          raw.length - pos > MAX_PART_HEADER_BYTES
            ? `a part's headers exceed ${MAX_PART_HEADER_BYTES} bytes`
            : 'a part has no end of its headers',
        );
      }
      headerEnd = pos + found;
      contentStart = headerEnd + HEADER_END.length;
      // The boundary inside the header block: the part has no headers of its own (a bounded search).
      if (raw.subarray(pos, contentStart).indexOf(dashBoundary) !== -1) return fail('a part has no end of its headers');
    }
    const part = readPartHeaders(raw.toString('latin1', pos, headerEnd));
    if ('message' in part) return fail(part.message);
    // Every occurrence of the boundary must be a delimiter, on a line of its own: a parser that also took a bare LF
    // (or none) before it would see other parts. One native search from the previous delimiter, so linear overall.
    const hit = raw.indexOf(dashBoundary, contentStart);
    if (hit === -1) return fail('the body ends without the closing boundary');
    const next = hit - 2;
    if (next < contentStart || raw[next] !== CR || raw[next + 1] !== LF)
      return fail('the boundary appears inside a part, not on a line of its own');
    const field = FORM_FIELDS.find((name) => name === part.name);
    if (field !== undefined) {
      if (part.file) return fail(`the "${field}" field must be a value, not a file`);
      if (fields[field] !== undefined) return fail(`the form names "${field}" more than once`);
      fields[field] = { start: contentStart, end: next };
    }
    pos = hit + dashBoundary.length;
  }
}

function fail(message: string): FormScanResult {
  return { ok: false, message: `malformed multipart/form-data body: ${message}` };
}

/** A part's name and whether it is a file, from its header block (latin1, lines separated by CRLF). */
function readPartHeaders(block: string): { name: string; file: boolean } | { message: string } {
  let disposition: string | undefined;
  for (const line of block === '' ? [] : block.split('\r\n')) {
    if (line.startsWith(' ') || line.startsWith('\t')) return { message: 'a part header is folded over lines' };
    // A bare CR or LF, NUL or another control character: parsers split and trim such lines differently.
    if (CONTROL.test(line)) return { message: 'a part header line contains a control character' };
    const colon = line.indexOf(':');
    if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) return { message: 'a part header line is malformed' };
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-disposition') {
      if (disposition !== undefined) return { message: 'a part has two Content-Disposition headers' };
      disposition = value;
    } else if (name === 'content-transfer-encoding' && !/^(?:7bit|8bit|binary)$/i.test(value)) {
      return { message: 'a part has a Content-Transfer-Encoding (RFC 7578 deprecates them)' };
    }
  }
  if (disposition === undefined) return { message: 'a part has no Content-Disposition' };
  const semicolon = disposition.indexOf(';');
  // Spelled as every encoder writes it (some parsers compare it case-sensitively).
  const type = (semicolon === -1 ? disposition : disposition.slice(0, semicolon)).trim();
  if (type !== 'form-data') return { message: 'a part\'s Content-Disposition is not "form-data"' };
  const params = parseParameters(disposition, semicolon);
  if ('message' in params) return { message: `a part's Content-Disposition ${params.message}` };
  if (params.values.has('name*')) return { message: 'a part names itself with "name*" (RFC 7578 forbids it)' };
  for (const key of params.values.keys())
    if (!DISPOSITION_PARAMETERS.has(key)) return { message: `a part's Content-Disposition has a "${key}" parameter` };
  const name = params.values.get('name');
  if (name === undefined) return { message: 'a part\'s Content-Disposition has no "name"' };
  // Parsers differ on both: some take a backslash literally, browsers' parsers decode %22, %0D and %0A.
  if (params.escaped.has('name') || name.includes('%'))
    return { message: 'a part\'s name contains a backslash escape or "%", which parsers read differently' };
  return { name, file: params.values.has('filename') || params.values.has('filename*') };
}

/**
 * `; key=value` parameters from `from` (the first `;`, or -1 for none) to the end: lower-case keys, token or
 * quoted-string values (a backslash takes the next character literally). Duplicate keys are refused.
 */
function parseParameters(
  text: string,
  from: number,
): { values: Map<string, string>; escaped: Set<string> } | { message: string } {
  const values = new Map<string, string>();
  const escaped = new Set<string>();
  if (from === -1) return { values, escaped };
  let i = from;
  const n = text.length;
  while (i < n) {
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
    if (i >= n) break;
    if (text[i] !== ';') return { message: 'has a malformed parameter list' };
    i++;
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
    if (i >= n) break; // a trailing `;`
    const eq = text.indexOf('=', i);
    if (eq === -1) return { message: 'has a parameter without a value' };
    const key = text.slice(i, eq).trim().toLowerCase();
    if (!TOKEN.test(key)) return { message: 'has a malformed parameter name' };
    i = eq + 1;
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
    let value = '';
    if (text[i] === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const c = text[i];
        if (c === '\\' && i + 1 < n) {
          escaped.add(key);
          value += text[i + 1];
          i += 2;
        } else if (c === '"') {
          closed = true;
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) return { message: 'has an unterminated quoted parameter' };
    } else {
      const start = i;
      while (i < n && text[i] !== ';' && text[i] !== ' ' && text[i] !== '\t') i++;
      value = text.slice(start, i);
      if (!TOKEN.test(value)) return { message: 'has a malformed parameter value' };
    }
    if (values.has(key)) return { message: `names the parameter "${key}" twice` };
    values.set(key, value);
  }
  return { values, escaped };
}

/** `raw` with the bytes of `span` replaced by `value` (a form field's value; the framing around it is kept). */
export function replaceSpan(raw: Buffer, span: FormSpan, value: string): Buffer {
  return Buffer.concat([raw.subarray(0, span.start), Buffer.from(value, 'utf8'), raw.subarray(span.end)]);
}
