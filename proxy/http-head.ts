/**
 * Strict HTTP/1.x message heads for the proxy's forwarding path (RFC 9112). A request head is
 * parsed and rewritten for the upstream in one pass; a response head is parsed for its framing
 * and rewritten only when it carries hop-by-hop fields. Anything ambiguous is refused rather than
 * guessed (request smuggling): a space before a colon, folded lines, bare CR or LF, repeated or
 * conflicting Content-Length, Content-Length with Transfer-Encoding, any coding but `chunked`.
 * Heads are handled as latin1 strings, so every byte passes through unchanged.
 */

import {
  CHUNKED,
  F,
  FIELDS,
  HOST_CHAR,
  MAX_FIELDS,
  NO_BODY,
  TARGET_CHAR,
  TCHAR,
  TCHARS,
  UNTIL_CLOSE,
  VALUE_CHARS,
  connectionListed,
  contentLength,
  equalsLower,
  explainFieldError,
  field,
  splitFields,
  transferCodings,
  value,
} from './http-fields.ts';
import type { Framing, HeadError } from './http-fields.ts';

/** Head limits, the end of a head in a buffer, and the shapes parsers return. */
export { MAX_REQUEST_HEAD, MAX_RESPONSE_HEAD, headText } from './http-fields.ts';
export type { Framing, HeadError } from './http-fields.ts';

/** A well-formed request head: the whole of it, checked in one go (native code). */
const REQUEST_HEAD = new RegExp(`^[${TCHARS}]+ [\\x21-\\x7e]+ HTTP/1\\.[01]${FIELDS}`);
/** A well-formed response head. */
const RESPONSE_HEAD = new RegExp(`^HTTP/1\\.[01] \\d{3}(?: [${VALUE_CHARS}]*)?${FIELDS}`);

/** A parsed request, with its head as it goes upstream. */
export interface RequestHead {
  method: string;
  /** The request target in origin form (`/path?query`; an absolute-form target reduced to it), or `*`. */
  target: string;
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
    target,
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
