/**
 * Strict HTTP/1.x message heads for the proxy's forwarding path (RFC 9112). A request head is
 * parsed and rewritten for the upstream in one pass; a response head is parsed for its framing
 * and rewritten only when it carries hop-by-hop fields. Anything ambiguous is refused rather than
 * guessed (request smuggling): a space before a colon, folded lines, bare CR or LF, repeated or
 * conflicting Content-Length, Content-Length with Transfer-Encoding, any coding but `chunked`.
 * Heads are handled as latin1 strings, so every byte passes through unchanged.
 */

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
const MAX_FIELDS = 256;

/** tchar (RFC 9110 §5.6.2): the characters of methods and field names. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;
/** Characters allowed inside a field value (and a reason phrase): HTAB, SP, VCHAR, obs-text. */
const VALUE_CHAR = new Uint8Array(256);
VALUE_CHAR[9] = 1;
for (let c = 0x20; c <= 0xff; c++) if (c !== 0x7f) VALUE_CHAR[c] = 1;
/** Characters of a request target (no spaces, controls or non-ASCII: clients percent-encode). */
const TARGET_CHAR = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) TARGET_CHAR[c] = 1;
/** Characters of a Host value: reg-name, IP literals and a port; no `/`, `@`, `\`, spaces. */
const HOST_CHAR = new Uint8Array(256);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:[]%") HOST_CHAR[c.charCodeAt(0)] = 1;

/** Field names the proxy acts on (lowercase) and their codes. */
const F = { Other: 0, Host: 1, ContentLength: 2, TransferEncoding: 3, Connection: 4, Upgrade: 5, HopByHop: 6, XForwardedFor: 7, XForwarded: 8 } as const;
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
] as const) (KNOWN[name.length] ??= []).push([name, kind]);

/** The code of the field name `text[start, end)` (tchars only, any case). */
function classify(text: string, start: number, end: number): number {
  const candidates = KNOWN[end - start];
  if (candidates === undefined) return F.Other;
  next: for (const [name, kind] of candidates) {
    // `| 0x20` lowercases letters and leaves '-' and digits alone; no other tchar becomes a letter.
    for (let k = 0; k < name.length; k++) if ((text.charCodeAt(start + k) | 0x20) !== name.charCodeAt(k)) continue next;
    return kind;
  }
  return F.Other;
}


/** The fields of one head, as offsets into its text (reused between parses: parsing is synchronous). */
const field = {
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
};

/** A head the proxy refuses: the status to answer and why. */
export interface HeadError {
  error: number;
  reason: string;
}

const TCHARS = "!#$%&'*+\\-.^_`|~0-9A-Za-z";
const VALUE_CHARS = '\\t\\x20-\\x7e\\x80-\\xff';
const FIELDS = `(?:\\r\\n[${TCHARS}]+:[${VALUE_CHARS}]*)*$`;
/** A well-formed request head: the whole of it, checked in one go (native code). */
const REQUEST_HEAD = new RegExp(`^[${TCHARS}]+ [\\x21-\\x7e]+ HTTP/1\\.[01]${FIELDS}`);
/** A well-formed response head. */
const RESPONSE_HEAD = new RegExp(`^HTTP/1\\.[01] \\d{3}(?: [${VALUE_CHARS}]*)?${FIELDS}`);

/** True when `text[start, end)` is `word` in any case (`word` lowercase letters and '-'). */
function equalsLower(text: string, start: number, end: number, word: string): boolean {
  if (end - start !== word.length) return false;
  for (let k = 0; k < word.length; k++) if ((text.charCodeAt(start + k) | 0x20) !== word.charCodeAt(k)) return false;
  return true;
}

/**
 * Splits the fields of a head already checked as a whole (from `pos`: fields separated by CRLF)
 * with indexOf; only the fields the proxy acts on are looked at closer. Names listed in
 * Connection go to `field.names` (the options close, keep-alive and upgrade to flags).
 */
function splitFields(text: string, pos: number): void {
  const len = text.length;
  field.count = 0;
  field.names.length = 0;
  field.close = field.upgrade = false;
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
            else if (token !== '' && token !== 'keep-alive') field.names.push(token);
          }
        }
      }
    }
    pos = end + 2;
  }
}

/** Why the field section from `pos` failed the check (for the error message). */
function explainFieldError(text: string, pos: number): string {
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
function value(text: string, n: number): string {
  return text.slice(field.valueStart[n], field.valueEnd[n]);
}

/** True when field `n` is named in a Connection header (and so is hop-by-hop). */
function connectionListed(text: string, n: number): boolean {
  if (field.names.length === 0) return false;
  return field.names.includes(text.slice(field.lineStart[n], text.indexOf(':', field.lineStart[n])).toLowerCase());
}

/** The decimal number `text[start, end)` (1 to 15 digits), or -1. */
function decimal(text: string, start: number, end: number): number {
  if (end <= start || end - start > 15) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** Parses the Content-Length fields: the length, -1 when there is none, -2 when invalid or conflicting. */
function contentLength(text: string): number {
  let length = -1;
  for (let n = 0; n < field.count; n++) {
    if (field.kind[n] !== F.ContentLength) continue;
    const fast = decimal(text, field.valueStart[n] as number, field.valueEnd[n] as number);
    if (fast >= 0) {
      if (length !== -1 && fast !== length) return -2;
      length = fast;
      continue;
    }
    for (const part of value(text, n).split(',')) {
      const v = part.trim();
      if (!/^\d{1,15}$/.test(v)) return -2;
      const parsed = Number(v);
      if (length !== -1 && parsed !== length) return -2;
      length = parsed;
    }
  }
  return length;
}

/** The Transfer-Encoding codings joined (lowercase), or undefined when there is none. */
function transferCodings(text: string): string | undefined {
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

const NO_BODY: Framing = Object.freeze({ kind: 'none' });
const CHUNKED: Framing = Object.freeze({ kind: 'chunked' });
const UNTIL_CLOSE: Framing = Object.freeze({ kind: 'close' });

/** A parsed request, with its head as it goes upstream. */
export interface RequestHead {
  method: string;
  /** HTTP/1.minor. */
  minor: 0 | 1;
  /** The host the request is for (Host, or the authority of an absolute-form target), as sent. */
  host: string;
  framing: Framing;
  /** The client wants the connection kept after this exchange. */
  keepAlive: boolean;
  /** The Upgrade value when the client asks to switch protocols (WebSocket). */
  upgrade: string | undefined;
  /** The head to write to the upstream, blank line included. */
  upstreamHead: string;
}

/** What the proxy adds to every forwarded request. */
export interface ForwardFor {
  clientIp: string;
  /** The scheme the client used: X-Forwarded-Proto. */
  proto: string;
}

/**
 * Parses a request head (`text`: request line and fields, without the blank line) and builds the
 * head to send upstream: hop-by-hop fields and the client's X-Forwarded-Proto/-Host dropped,
 * X-Forwarded-For appended to, Host kept as sent. HTTP/1.0 requests go upstream as HTTP/1.0 with
 * `Connection: close`; upgrades keep `Connection: Upgrade` and `Upgrade`.
 */
export function parseRequestHead(text: string, fwd: ForwardFor): RequestHead | HeadError {
  const lineEnd = text.indexOf('\r\n');
  const lineLength = lineEnd < 0 ? text.length : lineEnd;
  if (!REQUEST_HEAD.test(text)) {
    const why = explainRequestError(text, lineLength);
    return { error: why.error ?? 400, reason: why.reason };
  }
  const sp1 = text.indexOf(' ');
  const sp2 = text.indexOf(' ', sp1 + 1);
  const minor = text.charCodeAt(lineLength - 1) === 49 ? 1 : 0;
  const method = text.slice(0, sp1);
  let target = text.slice(sp1 + 1, sp2);
  splitFields(text, lineLength + 2);
  if (field.count === MAX_FIELDS) return { error: 431, reason: 'too many header fields' };

  let host: string | undefined;
  let hosts = 0;
  let xff: string | undefined;
  let upgrade: string | undefined;
  for (let n = 0; n < field.count; n++) {
    const kind = field.kind[n];
    if (kind === F.Host) {
      host = value(text, n);
      hosts++;
    } else if (kind === F.XForwardedFor) xff = xff === undefined ? value(text, n) : `${xff}, ${value(text, n)}`;
    else if (kind === F.Upgrade) upgrade = value(text, n);
  }
  if (hosts > 1) return { error: 400, reason: 'more than one Host header' };
  let hostFromTarget = false;
  if (target.charCodeAt(0) !== 47 /* / */ && target !== '*') {
    const absolute = absoluteTarget(target);
    if (absolute === undefined) return { error: 400, reason: 'unsupported request target' };
    ({ host, path: target } = absolute);
    hostFromTarget = true;
  }
  if (host === undefined || host === '') return { error: 400, reason: 'missing Host header' };
  for (let i = 0; i < host.length; i++) if (HOST_CHAR[host.charCodeAt(i)] !== 1) return { error: 400, reason: 'invalid Host header' };

  const length = contentLength(text);
  const codings = transferCodings(text);
  let framing: Framing;
  if (codings !== undefined) {
    if (minor === 0) return { error: 400, reason: 'Transfer-Encoding in an HTTP/1.0 request' };
    if (length !== -1) return { error: 400, reason: 'both Content-Length and Transfer-Encoding' };
    if (codings !== 'chunked') return { error: 501, reason: 'unsupported Transfer-Encoding' };
    framing = CHUNKED;
  } else if (length === -2) return { error: 400, reason: 'invalid Content-Length' };
  else framing = length > 0 ? { kind: 'length', length } : NO_BODY;

  const close = field.close;
  const wantsUpgrade = upgrade !== undefined && field.upgrade;
  let out = `${method} ${target} HTTP/1.${minor}\r\n`;
  for (let n = 0; n < field.count; n++) {
    const kind = field.kind[n];
    if (kind === F.Other || kind === F.ContentLength || kind === F.TransferEncoding) {
      if (!connectionListed(text, n)) out += `${text.slice(field.lineStart[n], field.lineEnd[n])}\r\n`;
    } else if (kind === F.Host && !hostFromTarget) out += `${text.slice(field.lineStart[n], field.lineEnd[n])}\r\n`;
  }
  if (hostFromTarget) out += `Host: ${host}\r\n`;
  if (wantsUpgrade) out += `Connection: Upgrade\r\nUpgrade: ${upgrade}\r\n`;
  else if (minor === 0) out += 'Connection: close\r\n';
  out += `X-Forwarded-For: ${xff === undefined ? fwd.clientIp : `${xff}, ${fwd.clientIp}`}\r\nX-Forwarded-Proto: ${fwd.proto}\r\nX-Forwarded-Host: ${host}\r\n\r\n`;
  return {
    method,
    minor,
    host,
    framing,
    keepAlive: minor === 1 ? !close : false,
    upgrade: wantsUpgrade ? upgrade : undefined,
    upstreamHead: out,
  };
}

/** Why a request head failed the check. */
function explainRequestError(text: string, lineLength: number): { error?: number; reason: string } {
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

function absoluteTarget(url: string): { host: string; path: string } | undefined {
  if (!/^https?:\/\//i.test(url)) return undefined;
  try {
    const parsed = new URL(url);
    if (parsed.host === '' || parsed.username !== '' || parsed.password !== '') return undefined;
    return { host: parsed.host, path: `${parsed.pathname}${parsed.search}` };
  } catch {
    return undefined;
  }
}

/** A parsed upstream response. */
export interface ResponseHead {
  status: number;
  framing: Framing;
  /** The upstream connection may carry another request after this response. */
  reusable: boolean;
  /** The head has hop-by-hop fields (other than `Connection: keep-alive`) to drop before the client sees it. */
  needsRewrite: boolean;
  /** The head's text, for `clientHead`. */
  text: string;
}

/**
 * Parses a response head (`text` without the blank line) to a request with method `method`.
 * Framing follows RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304; chunked when it is the final
 * coding; otherwise Content-Length, or the body runs until the upstream closes.
 */
export function parseResponseHead(text: string, method: string): ResponseHead | HeadError {
  if (!RESPONSE_HEAD.test(text)) {
    const lineEnd = text.indexOf('\r\n');
    const reason = /^HTTP\/1\.[01] \d{3}(?: [^\r\n]*)?$/.test(lineEnd < 0 ? text : text.slice(0, lineEnd)) ? explainFieldError(text, lineEnd + 2) : 'malformed status line';
    return { error: 502, reason };
  }
  const lineEnd = text.indexOf('\r\n');
  const minor = text.charCodeAt(7) === 49 ? 1 : 0;
  const status = (text.charCodeAt(9) - 48) * 100 + (text.charCodeAt(10) - 48) * 10 + (text.charCodeAt(11) - 48);
  if (status < 100) return { error: 502, reason: 'malformed status line' };
  splitFields(text, lineEnd < 0 ? text.length : lineEnd + 2);
  if (field.count === MAX_FIELDS) return { error: 502, reason: 'too many header fields' };
  let needsRewrite = false;
  let length = -1;
  let codings: string | undefined;
  const names = field.names;
  for (let n = 0; n < field.count; n++) {
    switch (field.kind[n]) {
      case F.Other:
        if (names.length > 0 && connectionListed(text, n)) needsRewrite = true;
        break;
      case F.Connection:
        if (!equalsLower(text, field.valueStart[n] as number, field.valueEnd[n] as number, 'keep-alive')) needsRewrite = true;
        break;
      case F.HopByHop:
      case F.Upgrade:
        needsRewrite = true;
        break;
      case F.ContentLength:
        if (length === -1) length = contentLength(text);
        break;
      case F.TransferEncoding:
        codings ??= transferCodings(text);
    }
  }
  let reusable = minor === 1 && !field.close;
  let framing: Framing;
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) framing = NO_BODY;
  else if (codings !== undefined) {
    framing = /(?:^|,)\s*chunked$/.test(codings) ? CHUNKED : UNTIL_CLOSE;
    if (length !== -1) needsRewrite = true; // Content-Length beside Transfer-Encoding is dropped
  } else if (length === -2) return { error: 502, reason: 'invalid Content-Length' };
  else framing = length >= 0 ? { kind: 'length', length } : UNTIL_CLOSE;
  if (framing.kind === 'close') reusable = false;
  return { status, framing, reusable, needsRewrite, text };
}

/**
 * The head to send the client for `head` (the response most recently parsed): hop-by-hop fields
 * dropped (a 101 keeps Connection and Upgrade), Content-Length dropped beside Transfer-Encoding,
 * and `Connection: close` when the proxy closes the client's connection after this response.
 * Must be called before the next parse.
 */
export function clientHead(head: ResponseHead, closeClient: boolean): string {
  const text = head.text;
  const lineEnd = text.indexOf('\r\n');
  let out = `${lineEnd < 0 ? text : text.slice(0, lineEnd)}\r\n`;
  const switching = head.status === 101;
  const chunkedOrClose = head.framing.kind === 'chunked' || (head.framing.kind === 'close' && transferCodings(text) !== undefined);
  for (let n = 0; n < field.count; n++) {
    const kind = field.kind[n];
    const keep = switching
      ? kind !== F.HopByHop
      : kind === F.Other
        ? !connectionListed(text, n)
        : kind === F.TransferEncoding || (kind === F.ContentLength && !chunkedOrClose) || kind === F.XForwardedFor || kind === F.XForwarded || kind === F.Host;
    if (keep) out += `${text.slice(field.lineStart[n], field.lineEnd[n])}\r\n`;
  }
  if (closeClient && !switching) out += 'Connection: close\r\n';
  return `${out}\r\n`;
}
