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
  TCHARS,
  UNTIL_CLOSE,
  VALUE_CHARS,
  connectionListed,
  contentLength,
  equalsLower,
  explainFieldError,
  explainRequestError,
  field,
  METHODS,
  plainContentLength,
  splitFields,
  transferCodings,
  value,
} from './http-fields.ts';
import type { Framing, HeadError } from './http-fields.ts';

/** Checking a head that has not ended yet (partial-head.ts). */
export { checkPartialRequestHead, partialHead } from './partial-head.ts';
export type { PartialHead } from './partial-head.ts';
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
  /** The X-Depad-Via value: another depad proxy forwarded it (or a client pretends so); never forwarded again (peer-routes.ts). */
  via: string | undefined;
  /** The X-Forwarded-Proto a trusted peer proxy sent (its client's scheme), else undefined. */
  forwardedProto: string | undefined;
}

/** What the proxy adds to every forwarded request. */
export interface ForwardFor {
  clientIp: string;
  /** The scheme the client used: X-Forwarded-Proto. */
  proto: string;
  /** True for an X-Depad-Via value with the cluster's key: a peer proxy's X-Forwarded-* are kept as it sent them. */
  peer?: (via: string) => boolean;
}

/**
 * Parses a request head (`text`: request line and fields, without the blank line) and builds the
 * head to send upstream: hop-by-hop fields and the client's X-Forwarded-Proto/-Host dropped,
 * X-Forwarded-For appended to, Host kept as sent (from a trusted peer proxy, its X-Forwarded-* are
 * kept instead); X-Depad-Via is never passed on. HTTP/1.0 requests go upstream as HTTP/1.0 with
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
  if (method === 'TRACE' || method === 'CONNECT') return { error: 405, reason: `${method} is not allowed` };
  if (!METHODS.has(method)) return { error: 501, reason: 'unknown method' };
  splitFields(text, lineLength + 2);
  if (field.count === MAX_FIELDS) return { error: 431, reason: 'too many header fields' };
  if (field.listsFraming) return { error: 400, reason: 'Connection lists Content-Length, Transfer-Encoding or Host' };

  let host: string | undefined;
  let hosts = 0;
  let xff: string | undefined;
  let upgrade: string | undefined;
  let via: string | undefined;
  let xfp: string | undefined;
  for (let n = 0; n < field.count; n++) {
    const kind = field.kind[n];
    if (kind === F.Host) {
      host = value(text, n);
      hosts++;
    } else if (kind === F.XForwardedFor) xff = xff === undefined ? value(text, n) : `${xff}, ${value(text, n)}`;
    else if (kind === F.Upgrade) upgrade = value(text, n);
    else if (kind === F.DepadVia) via = via === undefined ? value(text, n) : `${via}, ${value(text, n)}`;
    else if (kind === F.XForwarded && (field.lineStart[n] as number) + 17 === text.indexOf(':', field.lineStart[n])) xfp = value(text, n);
  }
  // Forwarded by a peer proxy of the cluster (its key checked): its X-Forwarded-* go on unchanged.
  const peer = via !== undefined && xff !== undefined && fwd.peer !== undefined && fwd.peer(via);
  if (hosts > 1) return { error: 400, reason: 'more than one Host header' };
  let hostFromTarget = false;
  if (target.charCodeAt(0) !== 47 /* / */ && target !== '*') {
    const absolute = absoluteTarget(target);
    if (absolute === undefined) return { error: 400, reason: 'unsupported request target' };
    ({ host, path: target } = absolute);
    hostFromTarget = true;
  }
  if (host === undefined || host === '' || (minor === 1 && hosts === 0)) return { error: 400, reason: 'missing Host header' };
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
  const wantsUpgrade = upgrade !== undefined && field.upgrade && minor === 1;
  let out = `${method} ${target} HTTP/1.${minor}\r\n`;
  for (let n = 0; n < field.count; n++) {
    const kind = field.kind[n];
    if (kind === F.Other) {
      if (!connectionListed(text, n)) out += `${text.slice(field.lineStart[n], field.lineEnd[n])}\r\n`;
    } else if (kind === F.Host && !hostFromTarget) out += `${text.slice(field.lineStart[n], field.lineEnd[n])}\r\n`;
    else if (peer && (kind === F.XForwardedFor || kind === F.XForwarded)) out += `${text.slice(field.lineStart[n], field.lineEnd[n])}\r\n`;
  }
  if (hostFromTarget) out += `Host: ${host}\r\n`;
  // The body's framing, written by the proxy: never the client's bytes.
  if (framing.kind === 'chunked') out += 'Transfer-Encoding: chunked\r\n';
  else if (length >= 0) out += `Content-Length: ${length}\r\n`;
  if (wantsUpgrade) out += `Connection: Upgrade\r\nUpgrade: ${upgrade}\r\n`;
  else if (minor === 0) out += 'Connection: close\r\n';
  if (peer) out += '\r\n';
  else out += `X-Forwarded-For: ${xff === undefined ? fwd.clientIp : `${xff}, ${fwd.clientIp}`}\r\nX-Forwarded-Proto: ${fwd.proto}\r\nX-Forwarded-Host: ${host}\r\n\r\n`;
  return {
    method,
    target,
    minor,
    host,
    framing,
    keepAlive: minor === 1 ? !close : false,
    upgrade: wantsUpgrade ? upgrade : undefined,
    upstreamHead: out,
    via,
    forwardedProto: peer ? (xfp ?? fwd.proto) : undefined,
  };
}

/**
 * The authority and the rest of an absolute-form target (`http://host[:port]/path?query`), the
 * rest passed on exactly as sent (no dot-segment removal, no re-encoding: as for origin-form).
 */
function absoluteTarget(url: string): { host: string; path: string } | undefined {
  const scheme = /^https?:\/\//i.exec(url);
  if (scheme === null) return undefined;
  const from = scheme[0].length;
  let end = from;
  while (end < url.length && url.charCodeAt(end) !== 47 /* / */ && url.charCodeAt(end) !== 63 /* ? */ && url.charCodeAt(end) !== 35 /* # */) end++;
  const host = url.slice(from, end);
  if (host === '' || host.includes('@')) return undefined;
  const rest = url.slice(end);
  return { host, path: rest.charCodeAt(0) === 47 ? rest : `/${rest}` };
}

/** A parsed upstream response. */
export interface ResponseHead {
  status: number;
  framing: Framing;
  /** The Content-Length the upstream sent (-1: none); meaningful as metadata for HEAD and 304. */
  contentLength: number;
  /** The upstream connection may carry another request after this response. */
  reusable: boolean;
  /**
   * The head must be rewritten before the client sees it: it has hop-by-hop fields (other than
   * `Connection: keep-alive`), or framing the proxy writes itself (Transfer-Encoding, a
   * Content-Length that is not one plain number, a confusable name).
   */
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
  let lengths = 0;
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
      case F.Confusable:
        needsRewrite = true;
        break;
      case F.ContentLength:
        lengths++;
        break;
      case F.TransferEncoding:
        needsRewrite = true;
        codings ??= transferCodings(text);
    }
  }
  const length = lengths === 0 ? -1 : contentLength(text);
  if (length === -2) return { error: 502, reason: 'invalid Content-Length' };
  if (lengths > 0 && !needsRewrite && !plainContentLength(text)) needsRewrite = true;
  let reusable = minor === 1 && !field.close;
  let framing: Framing;
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) framing = NO_BODY;
  else if (codings !== undefined) {
    // Only `chunked`: another coding would reach the client close-delimited, in a form few read.
    if (codings !== 'chunked') return { error: 502, reason: 'unsupported Transfer-Encoding' };
    if (lengths > 0) return { error: 502, reason: 'both Content-Length and Transfer-Encoding' };
    framing = CHUNKED;
  } else framing = length >= 0 ? { kind: 'length', length } : UNTIL_CLOSE;
  if (framing.kind === 'close') reusable = false;
  return { status, framing, contentLength: length, reusable, needsRewrite, text };
}

/**
 * The head to send the client for `head` (the response most recently parsed), with framing the
 * proxy writes itself: hop-by-hop and confusable fields dropped (a 101 keeps Connection and
 * Upgrade), the upstream's Content-Length and Transfer-Encoding replaced by one plain
 * `Content-Length` or `Transfer-Encoding: chunked` (the body is re-chunked), no chunked coding for
 * an HTTP/1.0 client (`http10`: the body is de-chunked and ends with the connection), and
 * `Connection: close` when the proxy closes the client's connection after this response.
 * Must be called before the next parse.
 */
export function clientHead(head: ResponseHead, closeClient: boolean, http10 = false): string {
  const text = head.text;
  const lineEnd = text.indexOf('\r\n');
  let out = `${lineEnd < 0 ? text : text.slice(0, lineEnd)}\r\n`;
  const switching = head.status === 101;
  const kind = head.framing.kind;
  for (let n = 0; n < field.count; n++) {
    const k = field.kind[n];
    const keep = switching
      ? k !== F.HopByHop && k !== F.Confusable
      : k === F.Other
        ? !connectionListed(text, n)
        : k === F.XForwardedFor || k === F.XForwarded || k === F.Host;
    if (keep) out += `${text.slice(field.lineStart[n], field.lineEnd[n])}\r\n`;
  }
  if (kind === 'length') out += `Content-Length: ${(head.framing as { length: number }).length}\r\n`;
  else if (kind === 'chunked') {
    if (!http10) out += 'Transfer-Encoding: chunked\r\n';
  } else if (kind === 'none' && head.contentLength >= 0 && head.status !== 204 && head.status >= 200) out += `Content-Length: ${head.contentLength}\r\n`;
  if ((closeClient || (http10 && kind === 'chunked')) && !switching) out += 'Connection: close\r\n';
  return `${out}\r\n`;
}
