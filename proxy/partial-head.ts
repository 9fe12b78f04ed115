/**
 * Checking a request head that has not ended yet, line by line as its bytes arrive, so that one
 * which can no longer become valid is answered at once rather than at a timeout: a bad request
 * line (HTTP/0.9 among them), an unknown method, a target that cannot become one, a bad field
 * line, conflicting framing fields, a bare CR or LF. The complete head is parsed by http-head.ts.
 */
import { FIELD_LINE, METHODS, METHOD_STARTS, REQUEST_LINE, TCHARS, VALUE_CHARS, explainFieldError, explainRequestError } from './http-fields.ts';
import type { HeadError } from './http-fields.ts';

/** The start of a request line that may still become valid (the version up to its digits). */
const REQUEST_LINE_START = new RegExp(`^(?:[${TCHARS}]*|[${TCHARS}]+ [\\x21-\\x7e]*|[${TCHARS}]+ [\\x21-\\x7e]+ (?:H(?:T(?:T(?:P(?:/(?:\\d(?:\\.\\d?)?)?)?)?)?)?)?)$`);
/** The start of a field line that may still become valid. */
const FIELD_LINE_START = new RegExp(`^(?:[${TCHARS}]*|[${TCHARS}]+:[${VALUE_CHARS}]*)$`);
/**
 * How much of an unfinished line is checked as it comes: its first 1 KiB (any start of a valid
 * line is valid, so a bad start is found there); the rest is checked once the line ends.
 */
const CHECKED_START = 1024;

/**
 * True when `target` (all of it when `complete`, else its start) is or may become an origin-form
 * (`/…`), absolute-form (`http://…`, `https://…`) or asterisk-form target.
 */
function targetMayBe(target: string, complete: boolean): boolean {
  if (target === '' || target.charCodeAt(0) === 47 /* / */ || target === '*') return true;
  if (complete) return /^https?:\/\//i.test(target);
  const lower = target.toLowerCase();
  return 'http://'.startsWith(lower) || 'https://'.startsWith(lower) || /^https?:\/\//.test(lower);
}

/** Where the check of an unfinished head is, and what its lines said (kept by the caller between reads). */
export interface PartialHead {
  /** Offset of the first line not yet complete (the lines before it are valid). */
  offset: number;
  /** How much of the buffer was looked at so far. */
  scanned: number;
  /** Content-Length fields seen. */
  lengths: number;
  /** A Transfer-Encoding field was seen. */
  codings: boolean;
}

/** A fresh `PartialHead`. */
export function partialHead(): PartialHead {
  return { offset: 0, scanned: 0, lengths: 0, codings: false };
}

/** Makes `seen` fresh again (a head ended). */
export function resetPartialHead(seen: PartialHead): void {
  seen.offset = seen.scanned = seen.lengths = 0;
  seen.codings = false;
}

const LENGTH_FIELD = /^content-length:/i;
const LENGTH_VALUE = /^content-length:[ \t]*\d{1,15}[ \t]*$/i;
const LENGTH_VALUE_START = /^content-length:[ \t]*(?:\d{1,15}[ \t]*)?$/i;
const CODINGS_FIELD = /^transfer-encoding:/i;
const CODINGS_VALUE = /^transfer-encoding:[ \t]*chunked[ \t]*$/i;
const CODINGS_VALUE_START = /^transfer-encoding:[ \t]*(?:c(?:h(?:u(?:n(?:k(?:e(?:d[ \t]*)?)?)?)?)?)?)?$/i;

/** Notes a framing field of `line`; an error once the framing can no longer be valid. */
function noteFraming(line: string, seen: PartialHead, complete: boolean): HeadError | undefined {
  const c = line.charCodeAt(0) | 0x20;
  if (c === 99 /* c */ && LENGTH_FIELD.test(line)) {
    if (seen.lengths > 0) return { error: 400, reason: 'more than one Content-Length' };
    if (!(complete ? LENGTH_VALUE : LENGTH_VALUE_START).test(line)) return { error: 400, reason: 'invalid Content-Length' };
    if (complete) seen.lengths++;
  } else if (c === 116 /* t */ && CODINGS_FIELD.test(line)) {
    // Only one `chunked` is ever accepted (501 otherwise): a second field or another coding is final.
    if (seen.codings || !(complete ? CODINGS_VALUE : CODINGS_VALUE_START).test(line)) return { error: 501, reason: 'unsupported Transfer-Encoding' };
    if (complete) seen.codings = true;
  } else return undefined;
  if ((seen.lengths > 0 || LENGTH_FIELD.test(line)) && (seen.codings || CODINGS_FIELD.test(line))) return { error: 400, reason: 'both Content-Length and Transfer-Encoding' };
  return undefined;
}

/** Why the request line `line` (all of it when `complete`, else its start) can no longer be valid, if it cannot. */
function requestLineError(line: string, complete: boolean): HeadError | undefined {
  if (!(complete ? REQUEST_LINE : REQUEST_LINE_START).test(line)) {
    if (!complete) return { error: 400, reason: 'malformed request line' };
    const why = explainRequestError(line, line.length);
    return { error: why.error ?? 400, reason: why.reason };
  }
  const space = line.indexOf(' ');
  if (space < 0) return METHOD_STARTS.has(line) ? undefined : { error: 501, reason: 'unknown method' };
  if (!METHODS.has(line.slice(0, space))) return { error: 501, reason: 'unknown method' };
  const end = line.indexOf(' ', space + 1);
  return targetMayBe(line.slice(space + 1, end < 0 ? line.length : end), end >= 0) ? undefined : { error: 400, reason: 'unsupported request target' };
}

/** Why the field line `line` (all of it when `complete`, else its start) can no longer be valid, if it cannot. */
function fieldLineError(line: string, complete: boolean, seen: PartialHead): HeadError | undefined {
  if (!(complete ? FIELD_LINE : FIELD_LINE_START).test(line)) return { error: 400, reason: explainFieldError(line, 0) };
  return noteFraming(line, seen, complete);
}

/**
 * Checks a request head that has not ended yet: `text` is the buffered head from offset `base`
 * (latin1), where `base` is what the previous call returned (the lines before it are valid, and
 * `seen` holds what they said). Returns the offset of the first line not yet complete, or the
 * error to answer at once when the head can no longer become valid: a bad request line (HTTP/0.9
 * among them) or field line, an unknown method, conflicting framing fields, a bad character in
 * the line being read, a bare LF or a bare CR.
 */
export function checkPartialRequestHead(text: string, base: number, seen: PartialHead = partialHead()): number | HeadError {
  let pos = 0;
  for (let crlf = text.indexOf('\r\n'); crlf >= 0; crlf = text.indexOf('\r\n', pos)) {
    const line = text.slice(pos, crlf);
    if (line.includes('\n')) return { error: 400, reason: 'bare LF line ending' };
    const error = base + pos === 0 ? requestLineError(line, true) : fieldLineError(line, true, seen);
    if (error !== undefined) return error;
    pos = crlf + 2;
  }
  for (let i = pos; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) return { error: 400, reason: 'bare LF line ending' };
    // Every CRLF was taken above: a CR with anything after it is a bare CR.
    if (c === 13 && i + 1 < text.length) return { error: 400, reason: 'bare CR in the head' };
  }
  if (text.length - pos <= CHECKED_START && text.charCodeAt(text.length - 1) === 13) {
    // The line being read has its CR: nothing but its LF may follow, so it is checked as complete
    // (what it says is noted when the LF comes: `seen` is not changed now).
    const line = text.slice(pos, -1);
    const error = line === '' ? undefined : base + pos === 0 ? requestLineError(line, true) : fieldLineError(line, true, { ...seen });
    if (error !== undefined) return error;
  } else {
    // The start of the line being read.
    const rest = text.slice(pos, Math.min(text.length, pos + CHECKED_START));
    const error = base + pos === 0 ? requestLineError(rest, false) : fieldLineError(rest, false, seen);
    if (error !== undefined) return error;
  }
  return base + pos;
}

/**
 * Checks the unfinished head at the start of `buf` from where the last check stopped (`seen`,
 * updated): the error to answer at once, or undefined while it may still become valid. Once the
 * start of a long line was checked, only a CR or LF can complete it or make it invalid for good,
 * so reads that bring neither are not looked at again.
 */
export function checkUnfinishedHead(buf: Buffer, seen: PartialHead): HeadError | undefined {
  const from = seen.offset;
  const scanned = seen.scanned;
  seen.scanned = buf.length;
  if (scanned - from > CHECKED_START && buf.indexOf(10, scanned) < 0 && buf.indexOf(13, scanned) < 0) return undefined;
  const checked = checkPartialRequestHead(buf.toString('latin1', from), from, seen);
  if (typeof checked !== 'number') return checked;
  seen.offset = checked;
  return undefined;
}
