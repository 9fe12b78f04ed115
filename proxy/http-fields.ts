/**
 * The field section of HTTP/1.x heads, shared by the request and response parsers (http-head.ts)
 * and the check of unfinished heads (partial-head.ts): character tables and line patterns, the
 * fields of the head being parsed (offsets, reused: parsing is synchronous), Content-Length and
 * Transfer-Encoding, the methods forwarded, why a request line is refused, and finding the end of
 * a head in a buffer.
 */

import { METHODS as KNOWN_METHODS } from 'node:http';

/** Largest request head accepted (request line and fields): larger is answered 431. */
export const MAX_REQUEST_HEAD = 16 * 1024;
/** Largest response head accepted from an upstream: larger is answered 502. */
export const MAX_RESPONSE_HEAD = 64 * 1024;
const CRLF2 = Buffer.from('\r\n\r\n');
/** Bytes decoded at once when looking for the end of a head (most heads are shorter). */
const PROBE = 4096;

/**
 * The head at the start of `buf`, up to the blank line (excluded), or undefined while it is
 * incomplete. Decoded as latin1: its length is its length in bytes, so the body starts at
 * `length + 4`.
 */
export function headText(buf: Buffer): string | undefined {
  const probe = buf.toString('latin1', 0, Math.min(buf.length, PROBE));
  const end = probe.indexOf('\r\n\r\n');
  if (end >= 0) return probe.slice(0, end);
  if (buf.length <= PROBE) return undefined;
  const e = buf.indexOf(CRLF2);
  return e < 0 ? undefined : buf.toString('latin1', 0, e);
}

/** Most header fields in one head. */
export const MAX_FIELDS = 256;

/** tchar (RFC 9110 §5.6.2): the characters of methods and field names. */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;
/** Characters allowed inside a field value (and a reason phrase): HTAB, SP, VCHAR, obs-text. */
export const VALUE_CHAR = new Uint8Array(256);
VALUE_CHAR[9] = 1;
for (let c = 0x20; c <= 0xff; c++) if (c !== 0x7f) VALUE_CHAR[c] = 1;
/** Characters of a request target (no spaces, controls or non-ASCII: clients percent-encode). */
export const TARGET_CHAR = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) TARGET_CHAR[c] = 1;
/** Characters of a Host value: reg-name, IP literals and a port; no `/`, `@`, `\`, spaces. */
export const HOST_CHAR = new Uint8Array(256);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:[]%") HOST_CHAR[c.charCodeAt(0)] = 1;

/** Field names the proxy acts on (lowercase) and their codes. */
export const F = { Other: 0, Host: 1, ContentLength: 2, TransferEncoding: 3, Connection: 4, Upgrade: 5, HopByHop: 6, XForwardedFor: 7, XForwarded: 8, Confusable: 9, DepadVia: 10 } as const;
/** Known field names (lowercase) by length, with their codes: matched without allocating. */
const KNOWN: [string, number][][] = [];
for (const [name, kind] of [
  ['host', F.Host],
  ['content-length', F.ContentLength],
  ['transfer-encoding', F.TransferEncoding],
  ['connection', F.Connection],
  ['upgrade', F.Upgrade],
  ['keep-alive', F.HopByHop],
  ['proxy-connection', F.HopByHop],
  ['te', F.HopByHop],
  ['trailer', F.HopByHop],
  ['proxy-authorization', F.HopByHop],
  ['proxy-authenticate', F.HopByHop],
  ['x-forwarded-for', F.XForwardedFor],
  ['x-forwarded-proto', F.XForwarded],
  ['x-forwarded-host', F.XForwarded],
  ['x-depad-via', F.DepadVia],
] as const) (KNOWN[name.length] ??= []).push([name, kind]);

/**
 * The code of the field name `text[start, end)` (tchars only, any case). A name that is one of
 * the known names with `_` for some `-` (`Content_Length`, `X_Forwarded_For`) is `Confusable`:
 * servers that map `-` and `_` alike (CGI, WSGI, Rack) would read it as the real one, so it is
 * never forwarded.
 */
function classify(text: string, start: number, end: number): number {
  const candidates = KNOWN[end - start];
  if (candidates === undefined) return F.Other;
  next: for (const [name, kind] of candidates) {
    let underscore = false;
    // `| 0x20` lowercases letters and leaves '-' and digits alone; no other tchar becomes a letter.
    for (let k = 0; k < name.length; k++) {
      const c = text.charCodeAt(start + k);
      if ((c | 0x20) === name.charCodeAt(k)) continue;
      if (c === 95 /* _ */ && name.charCodeAt(k) === 45 /* - */) underscore = true;
      else continue next;
    }
    return underscore ? F.Confusable : kind;
  }
  return F.Other;
}

/** The fields of one head, as offsets into its text (reused between parses: parsing is synchronous). */
export const field = {
  count: 0,
  kind: new Uint8Array(MAX_FIELDS),
  lineStart: new Int32Array(MAX_FIELDS),
  lineEnd: new Int32Array(MAX_FIELDS),
  valueStart: new Int32Array(MAX_FIELDS),
  valueEnd: new Int32Array(MAX_FIELDS),
  /** Field names listed in Connection (lowercase), besides the options below. */
  names: [] as string[],
  /** Connection lists `close`. */
  close: false,
  /** Connection lists `upgrade`. */
  upgrade: false,
  /** Connection lists a field that frames or routes the message (Content-Length, Transfer-Encoding, Host). */
  listsFraming: false,
};

/** A head the proxy refuses: the status to answer and why. */
export interface HeadError {
  error: number;
  reason: string;
}

export const TCHARS = "!#$%&'*+\\-.^_`|~0-9A-Za-z";
export const VALUE_CHARS = '\\t\\x20-\\x7e\\x80-\\xff';
/** A complete request line. */
export const REQUEST_LINE = new RegExp(`^[${TCHARS}]+ [\\x21-\\x7e]+ HTTP/1\\.[01]$`);
/** A complete field line. */
export const FIELD_LINE = new RegExp(`^[${TCHARS}]+:[${VALUE_CHARS}]*$`);
export const FIELDS = `(?:\\r\\n[${TCHARS}]+:[${VALUE_CHARS}]*)*$`;

/** True when `text[start, end)` is `word` in any case (`word` lowercase letters and '-'). */
export function equalsLower(text: string, start: number, end: number, word: string): boolean {
  if (end - start !== word.length) return false;
  for (let k = 0; k < word.length; k++) if ((text.charCodeAt(start + k) | 0x20) !== word.charCodeAt(k)) return false;
  return true;
}

/**
 * Splits the fields of a head already checked as a whole (from `pos`: fields separated by CRLF)
 * with indexOf; only the fields the proxy acts on are looked at closer. Names listed in
 * Connection go to `field.names` (the options close, keep-alive and upgrade to flags).
 */
export function splitFields(text: string, pos: number): void {
  const len = text.length;
  field.count = 0;
  field.names.length = 0;
  field.close = field.upgrade = field.listsFraming = false;
  while (pos < len) {
    const colon = text.indexOf(':', pos);
    let end = text.indexOf('\r\n', colon);
    if (end < 0) end = len;
    const n = field.count;
    if (n === MAX_FIELDS) return;
    const kind = classify(text, pos, colon);
    field.kind[n] = kind;
    field.lineStart[n] = pos;
    field.lineEnd[n] = end;
    field.count = n + 1;
    if (kind !== F.Other) {
      let vs = colon + 1;
      let ve = end;
      while (vs < ve && (text.charCodeAt(vs) === 32 || text.charCodeAt(vs) === 9)) vs++;
      while (ve > vs && (text.charCodeAt(ve - 1) === 32 || text.charCodeAt(ve - 1) === 9)) ve--;
      field.valueStart[n] = vs;
      field.valueEnd[n] = ve;
      if (kind === F.Connection) {
        if (equalsLower(text, vs, ve, 'close')) field.close = true;
        else if (!equalsLower(text, vs, ve, 'keep-alive')) {
          for (const part of text.slice(vs, ve).split(',')) {
            const token = part.trim().toLowerCase();
            if (token === 'close') field.close = true;
            else if (token === 'upgrade') field.upgrade = true;
            else if (token === 'content-length' || token === 'transfer-encoding' || token === 'host') field.listsFraming = true;
            else if (token !== '' && token !== 'keep-alive') field.names.push(token);
          }
        }
      }
    }
    pos = end + 2;
  }
}

/** Why the field section from `pos` failed the check (for the error message). */
export function explainFieldError(text: string, pos: number): string {
  const len = text.length;
  while (pos < len) {
    let i = pos;
    while (i < len && TCHAR[text.charCodeAt(i)] === 1) i++;
    const c0 = i < len ? text.charCodeAt(i) : 0;
    if (i === pos || c0 !== 58 /* : */) {
      return c0 === 32 || c0 === 9 ? (i === pos ? 'folded header line' : 'whitespace before a colon') : 'invalid header name';
    }
    for (i++; i < len; i++) {
      const c = text.charCodeAt(i);
      if (c === 13) break;
      if (VALUE_CHAR[c] !== 1) return 'invalid character in a header value';
    }
    if (i < len && text.charCodeAt(i + 1) !== 10) return 'bare CR in a header';
    pos = i + 2;
  }
  return 'malformed header section';
}

/** The value of field `n`. */
export function value(text: string, n: number): string {
  return text.slice(field.valueStart[n], field.valueEnd[n]);
}

/** True when field `n` is named in a Connection header (and so is hop-by-hop). */
export function connectionListed(text: string, n: number): boolean {
  if (field.names.length === 0) return false;
  return field.names.includes(text.slice(field.lineStart[n], text.indexOf(':', field.lineStart[n])).toLowerCase());
}

/** The decimal number `text[start, end)` (1 to 15 digits), or -1. */
export function decimal(text: string, start: number, end: number): number {
  if (end <= start || end - start > 15) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/**
 * Parses the Content-Length field: the length, -1 when there is none, -2 when it is not one
 * decimal number or appears more than once (even with the same value, or as a list `5, 5`: what
 * RFC 9110 lets a recipient accept, Node's parser and nginx refuse, so one hop could read it and
 * another not).
 */
export function contentLength(text: string): number {
  let length = -1;
  for (let n = 0; n < field.count; n++) {
    if (field.kind[n] !== F.ContentLength) continue;
    if (length !== -1) return -2;
    length = decimal(text, field.valueStart[n] as number, field.valueEnd[n] as number);
    if (length < 0) return -2;
  }
  return length;
}

/**
 * True when the head has exactly one Content-Length field, written plainly (`: ` then digits
 * without leading zeros, nothing after them): such a head can be passed on as it is.
 */
export function plainContentLength(text: string): boolean {
  let seen = 0;
  for (let n = 0; n < field.count; n++) {
    if (field.kind[n] !== F.ContentLength) continue;
    const start = field.valueStart[n] as number;
    const end = field.valueEnd[n] as number;
    if (++seen > 1 || end !== field.lineEnd[n] || text.charCodeAt(start - 1) !== 32 || text.charCodeAt(start - 2) !== 58) return false; // `: <digits>`
    if (decimal(text, start, end) < 0 || (text.charCodeAt(start) === 48 && end - start > 1)) return false; // no leading zeros
  }
  return seen === 1;
}

/** The Transfer-Encoding codings joined (lowercase), or undefined when there is none. */
export function transferCodings(text: string): string | undefined {
  let codings: string | undefined;
  for (let n = 0; n < field.count; n++) {
    if (field.kind[n] !== F.TransferEncoding) continue;
    const v = value(text, n).toLowerCase();
    codings = codings === undefined ? v : `${codings}, ${v}`;
  }
  return codings;
}

/** How a message body is delimited: none, a length, chunked, or the end of the connection. */
export type Framing = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };

export const NO_BODY: Framing = Object.freeze({ kind: 'none' });
export const CHUNKED: Framing = Object.freeze({ kind: 'chunked' });
export const UNTIL_CLOSE: Framing = Object.freeze({ kind: 'close' });

/** The methods forwarded: those Node's own parser (llhttp) knows, as the instances behind the proxy mostly do. */
export const METHODS: ReadonlySet<string> = new Set(KNOWN_METHODS);
/** Every start of a known method (`G`, `GE`, `GET`, …), to refuse an unknown one before its line ends. */
export const METHOD_STARTS: ReadonlySet<string> = new Set(KNOWN_METHODS.flatMap((m) => Array.from({ length: m.length + 1 }, (_, i) => m.slice(0, i))));

/** Why a request head (or its request line alone: `lineLength` = its length) failed the check: a status when not 400, and a reason. */
export function explainRequestError(text: string, lineLength: number): { error?: number; reason: string } {
  const line = text.slice(0, lineLength);
  const sp1 = line.indexOf(' ');
  const sp2 = sp1 < 0 ? -1 : line.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 < 0) return { reason: 'malformed request line' };
  for (let i = 0; i < sp1; i++) if (TCHAR[line.charCodeAt(i)] !== 1) return { reason: 'invalid method' };
  if (sp2 === sp1 + 1) return { reason: 'empty request target' };
  for (let i = sp1 + 1; i < sp2; i++) if (TARGET_CHAR[line.charCodeAt(i)] !== 1) return { reason: 'invalid character in the request target' };
  const version = line.slice(sp2 + 1);
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') {
    return /^HTTP\/\d\.\d$/.test(version) ? { error: 505, reason: 'unsupported HTTP version' } : { reason: 'malformed request line' };
  }
  return { reason: explainFieldError(text, lineLength + 2) };
}
