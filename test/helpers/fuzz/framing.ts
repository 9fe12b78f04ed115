/**
 * Canonical framing, as the fuzzer requires it of what depad writes: a forwarded request frames
 * its body with exactly one `Content-Length: <digits>`, or exactly one `Transfer-Encoding:
 * chunked` and a re-encoded chunked body (hex sizes without leading zeros or extensions, CRLF
 * only, trailers `Name: value`), or nothing; no framing look-alike (`Content_Length`) anywhere.
 * Also a reader of what a client receives (a sequence of responses), with the same checks.
 */

/** A framing fault in bytes depad wrote. */
export interface FramingProblem {
  kind: 'framing-header' | 'framing-lookalike' | 'chunked-not-canonical' | 'client-unparseable';
  detail: string;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const TRAILER = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+: (?:[\x21-\x7e\x80-\xff](?:[\x20-\x7e\x80-\xff\t]*[\x21-\x7e\x80-\xff])?)?$/;
const FRAMING = new Set(['content-length', 'transfer-encoding']);

/** The framing fields of a head, checked: the fields split, and what is wrong with them. */
interface HeadFields {
  fields: [string, string][];
  lengths: string[];
  codings: string[];
  problems: FramingProblem[];
}

function headFields(lines: string[], strict: boolean): HeadFields {
  const out: HeadFields = { fields: [], lengths: [], codings: [], problems: [] };
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) {
      out.problems.push({ kind: 'client-unparseable', detail: `header line ${JSON.stringify(line)}` });
      continue;
    }
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1);
    out.fields.push([name, value]);
    const lower = name.toLowerCase();
    const folded = lower.replace(/[_\s]/g, '-').replace(/-+$/, '');
    if (!FRAMING.has(lower) && FRAMING.has(folded)) out.problems.push({ kind: 'framing-lookalike', detail: `${JSON.stringify(name)} field` });
    if (lower === 'content-length') out.lengths.push(value);
    if (lower === 'transfer-encoding') out.codings.push(value);
  }
  if (out.lengths.length > 1) out.problems.push({ kind: 'framing-header', detail: `${out.lengths.length} Content-Length fields` });
  if (out.codings.length > 1) out.problems.push({ kind: 'framing-header', detail: `${out.codings.length} Transfer-Encoding fields` });
  if (out.lengths.length > 0 && out.codings.length > 0) out.problems.push({ kind: 'framing-header', detail: 'Content-Length beside Transfer-Encoding' });
  // What depad writes upstream is exactly `Content-Length: <digits>`; a value passed on to a client may keep its OWS.
  for (const v of out.lengths) if (!(strict ? /^ ?[0-9]{1,15}$/ : /^[ \t]*[0-9]{1,15}[ \t]*$/).test(v)) out.problems.push({ kind: 'framing-header', detail: `Content-Length:${JSON.stringify(v)}` });
  for (const v of out.codings) if (v !== ' chunked' && v !== 'chunked') out.problems.push({ kind: 'framing-header', detail: `Transfer-Encoding:${JSON.stringify(v)}` });
  return out;
}

/** A chunked body read from `start`: its data (so far) and where it ended (-1 while incomplete). */
interface Chunked {
  data: Buffer;
  end: number;
}

function readChunked(buf: Buffer, start: number, problems: FramingProblem[]): Chunked {
  const parts: Buffer[] = [];
  let pos = start;
  const line = (): string | undefined => {
    const lf = buf.indexOf(10, pos);
    if (lf < 0) return undefined;
    const cr = lf > pos && buf[lf - 1] === 13;
    if (!cr) problems.push({ kind: 'chunked-not-canonical', detail: 'bare LF in a chunked body' });
    const text = buf.toString('latin1', pos, cr ? lf - 1 : lf);
    pos = lf + 1;
    return text;
  };
  for (;;) {
    const sizeLine = line();
    if (sizeLine === undefined) return { data: Buffer.concat(parts), end: -1 };
    if (!/^(?:0|[1-9a-fA-F][0-9a-fA-F]*)$/.test(sizeLine)) problems.push({ kind: 'chunked-not-canonical', detail: `chunk size line ${JSON.stringify(sizeLine)}` });
    const hex = /^[0-9a-fA-F]+/.exec(sizeLine)?.[0];
    if (hex === undefined || hex.length > 12) {
      problems.push({ kind: 'chunked-not-canonical', detail: `unreadable chunk size ${JSON.stringify(sizeLine)}` });
      return { data: Buffer.concat(parts), end: buf.length };
    }
    const size = parseInt(hex, 16);
    if (size === 0) break;
    if (pos + size + 2 > buf.length) return { data: Buffer.concat([...parts, buf.subarray(pos, pos + size)]), end: -1 };
    parts.push(buf.subarray(pos, pos + size));
    pos += size;
    if (buf[pos] !== 13 || buf[pos + 1] !== 10) {
      problems.push({ kind: 'chunked-not-canonical', detail: 'chunk data not followed by CRLF' });
      return { data: Buffer.concat(parts), end: buf.length };
    }
    pos += 2;
  }
  for (;;) {
    const trailer = line();
    if (trailer === undefined) return { data: Buffer.concat(parts), end: -1 };
    if (trailer === '') break;
    if (!TRAILER.test(trailer)) problems.push({ kind: 'chunked-not-canonical', detail: `trailer line ${JSON.stringify(trailer)}` });
    const name = trailer.slice(0, Math.max(0, trailer.indexOf(':'))).toLowerCase();
    if (FRAMING.has(name.replace(/_/g, '-')) || name === 'host') problems.push({ kind: 'framing-header', detail: `${JSON.stringify(name)} in a trailer` });
  }
  return { data: Buffer.concat(parts), end: pos };
}

/** A message read canonically. */
export interface CanonicalMessage {
  startLine: string;
  fields: [string, string][];
  body: Buffer;
  complete: boolean;
  /** Offset of the message's first byte. */
  offset: number;
}

function heads(buf: Buffer, pos: number): { lines: string[]; bodyStart: number } | undefined {
  const end = buf.indexOf('\r\n\r\n', pos, 'latin1');
  if (end < 0) return undefined;
  return { lines: buf.toString('latin1', pos, end).split('\r\n'), bodyStart: end + 4 };
}

/**
 * Reads the requests depad wrote on one upstream connection and returns them with every framing
 * fault. Stops at the first head it cannot frame.
 */
export function checkForwardedRequests(buf: Buffer): { messages: CanonicalMessage[]; problems: FramingProblem[] } {
  const messages: CanonicalMessage[] = [];
  const problems: FramingProblem[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const head = heads(buf, pos);
    if (head === undefined) break;
    const [startLine = '', ...lines] = head.lines;
    const f = headFields(lines, true);
    problems.push(...f.problems.filter((p) => p.kind !== 'client-unparseable'));
    const msg: CanonicalMessage = { startLine, fields: f.fields, body: Buffer.alloc(0), complete: false, offset: pos };
    messages.push(msg);
    if (f.codings.length > 0) {
      const chunked = readChunked(buf, head.bodyStart, problems);
      msg.body = chunked.data;
      if (chunked.end < 0) break;
      msg.complete = true;
      pos = chunked.end;
    } else if (f.lengths.length > 0) {
      const n = Number(/\d+/.exec(f.lengths[0] as string)?.[0] ?? '0');
      if (head.bodyStart + n > buf.length) break;
      msg.body = buf.subarray(head.bodyStart, head.bodyStart + n);
      msg.complete = true;
      pos = head.bodyStart + n;
    } else {
      msg.complete = true;
      pos = head.bodyStart;
    }
    if (f.problems.some((p) => p.kind === 'framing-header')) break;
  }
  return { messages, problems };
}

/** A response as the client read it. */
export interface ClientResponse extends CanonicalMessage {
  status: number;
  /** HTTP minor version of the status line. */
  minor: number;
  interim: boolean;
  chunked: boolean;
}

/**
 * Reads the responses a client received (`eof`: the connection has closed), framing each as a
 * client must (RFC 9112 §6.3): no body for HEAD (the method of the n-th final response from
 * `methodOf`; when it is not known, a Content-Length body is skipped if a status line follows the
 * head and would not follow the body), 1xx, 204 and 304; chunked when it is the final coding;
 * Content-Length; else until the connection closes. Non-canonical framing is reported, and read
 * leniently where it can be.
 */
export function readResponses(buf: Buffer, methodOf: (n: number) => string | undefined, eof: boolean): { responses: ClientResponse[]; problems: FramingProblem[] } {
  const responses: ClientResponse[] = [];
  const problems: FramingProblem[] = [];
  let pos = 0;
  let finals = 0;
  while (pos < buf.length) {
    const head = heads(buf, pos);
    if (head === undefined) {
      if (eof) problems.push({ kind: 'client-unparseable', detail: `unterminated head ${JSON.stringify(buf.toString('latin1', pos, pos + 40))}` });
      break;
    }
    const [startLine = '', ...lines] = head.lines;
    const m = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n]*)?$/.exec(startLine);
    if (m === null) {
      problems.push({ kind: 'client-unparseable', detail: `status line ${JSON.stringify(startLine)}` });
      break;
    }
    const status = Number(m[2]);
    const f = headFields(lines, false);
    problems.push(...f.problems);
    for (const [name] of f.fields) if (!TOKEN.test(name)) problems.push({ kind: 'client-unparseable', detail: `field name ${JSON.stringify(name)}` });
    const interim = status >= 100 && status < 200 && status !== 101;
    const lastCoding = (f.codings.join(',').split(',').pop() ?? '').trim().toLowerCase();
    const chunked = f.codings.length > 0 && lastCoding === 'chunked';
    const res: ClientResponse = { startLine, fields: f.fields, body: Buffer.alloc(0), complete: false, offset: pos, status, minor: Number(m[1]), interim, chunked };
    responses.push(res);
    const method = methodOf(finals);
    let noBody = interim || status === 204 || status === 304 || (method === 'HEAD' && status >= 200);
    if (!noBody && method === undefined && f.lengths.length > 0) {
      const n = Number(/\d+/.exec(f.lengths[0] as string)?.[0] ?? '0');
      const statusAt = (at: number): boolean => buf.toString('latin1', at, at + 7) === 'HTTP/1.';
      noBody = n > 0 && statusAt(head.bodyStart) && head.bodyStart + n < buf.length && !statusAt(head.bodyStart + n);
    }
    if (!interim) finals++;
    if (noBody) {
      res.complete = true;
      pos = head.bodyStart;
      // An error page to a request the proxy could not read (so not known as HEAD) may carry a body: the connection ends there anyway.
      if (status >= 400 && /\bclose\b/i.test(fieldValue(res, 'connection') ?? '') && pos < buf.length && buf.toString('latin1', pos, pos + 5) !== 'HTTP/') break;
    } else if (f.codings.length > 0) {
      if (!chunked) {
        res.body = buf.subarray(head.bodyStart);
        res.complete = eof;
        break;
      }
      const body = readChunked(buf, head.bodyStart, problems);
      res.body = body.data;
      if (body.end < 0) break;
      res.complete = true;
      pos = body.end;
    } else if (f.lengths.length > 0) {
      const n = Number(/\d+/.exec(f.lengths[0] as string)?.[0] ?? '0');
      res.body = buf.subarray(head.bodyStart, Math.min(buf.length, head.bodyStart + n));
      if (head.bodyStart + n > buf.length) break;
      res.complete = true;
      pos = head.bodyStart + n;
    } else {
      res.body = buf.subarray(head.bodyStart);
      res.complete = eof;
      break;
    }
  }
  return { responses, problems };
}

/** The value of field `name` (any case) in a read message, trimmed, or undefined. */
export function fieldValue(msg: CanonicalMessage, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [n, v] of msg.fields) if (n.toLowerCase() === lower) return v.trim();
  return undefined;
}
