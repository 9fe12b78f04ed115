/**
 * Chunked message bodies (RFC 9112 §7.1), read strictly and re-emitted canonically. The decoder
 * finds the data of each chunk across any number of buffers and checks every size line and
 * trailer line against the grammar (hex sizes, extensions as tokens or quoted strings, no
 * whitespace, CRLF only, no control characters), so a body cannot be read differently here and
 * by the next hop. What the proxy forwards is never the peer's framing: `encodeChunks` writes the
 * data again as plain `<hex>\r\n<data>\r\n` chunks and a bare `0\r\n\r\n` (extensions and
 * trailers dropped), and `joinChunks` gives the data alone (for HTTP/1.0 clients).
 */

const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX['0123456789abcdef'.charCodeAt(i)] = i;
  HEX['0123456789ABCDEF'.charCodeAt(i)] = i;
}

/** Longest chunk-size line or trailer line accepted. */
const MAX_LINE = 4096;
/** Largest trailer section accepted (it is read, checked and dropped). */
const MAX_TRAILERS = 16 * 1024;
/** Most hex digits in a chunk size (13: below 2^52, exact in a double). */
const MAX_DIGITS = 13;

const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const QUOTED = '"(?:[\\t !#-\\[\\]-~\\x80-\\xff]|\\\\[\\t -~\\x80-\\xff])*"';
/** What may follow the hex digits of a size line: extensions, with no whitespace (as llhttp). */
const EXTENSIONS = new RegExp(`^(?:;${TOKEN}(?:=(?:${TOKEN}|${QUOTED}))?)*$`);
/** One trailer field line. */
const TRAILER_LINE = new RegExp(`^${TOKEN}:[\\t\\x20-\\x7e\\x80-\\xff]*$`);
/** A start of EXTENSIONS that may still become valid (a size line being read). */
const EXTENSIONS_START = new RegExp(`^(?:;${TOKEN}(?:=(?:${TOKEN}|${QUOTED}))?)*(?:;(?:${TOKEN})?|;${TOKEN}=(?:${TOKEN}|"(?:[\\t !#-\\[\\]-~\\x80-\\xff]|\\\\[\\t -~\\x80-\\xff])*\\\\?)?)?$`);
/** A start of a trailer line that may still become valid. */
const TRAILER_START = new RegExp(`^(?:(?:${TOKEN})?|${TOKEN}:[\\t\\x20-\\x7e\\x80-\\xff]*)$`);
/** Trailer fields that would change how the message or the connection is read (Node's parser acts on them): refused. */
const FRAMING_TRAILER = /^(?:content-length|transfer-encoding|connection):/i;

const SIZE = 0; // reading hex digits
const SIZE_REST = 1; // after the digits: extensions, up to CR
const SIZE_LF = 2; // CR seen after the size line
const DATA = 3;
const DATA_CR = 4;
const DATA_LF = 5;
const TRAILER = 6; // inside a trailer line (or at the start of the final empty line)
const TRAILER_LF = 7;
const DONE = 8;

/** Reads one chunked body across buffers, reporting where its data is. */
export class ChunkedDecoder {
  #state = SIZE;
  #digits = 0;
  #size = 0;
  #remaining = 0;
  /** The current size-line rest or trailer line (latin1), while it spans buffers. */
  #line = '';
  #trailerBytes = 0;
  /**
   * The data found by the last `decode`: pairs of offsets (start, end) into its buffer. Reused:
   * read it before the next call.
   */
  readonly spans: number[] = [];

  /** True once the final CRLF was seen. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /**
   * Decodes `buf` from `start`: returns the offset just past the end of the body when it ends in
   * `buf`, -1 when more is needed, or -2 when the framing is invalid. `spans` holds the data seen.
   */
  decode(buf: Uint8Array, start = 0): number {
    const spans = this.spans;
    spans.length = 0;
    const len = buf.length;
    let i = start;
    while (i < len) {
      switch (this.#state) {
        case DATA: {
          const take = Math.min(this.#remaining, len - i);
          spans.push(i, i + take);
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#state = DATA_CR;
          continue;
        }
        case SIZE: {
          const h = HEX[buf[i] as number] as number;
          if (h >= 0) {
            if (++this.#digits > MAX_DIGITS) return -2;
            this.#size = this.#size * 16 + h;
            i++;
            continue;
          }
          if (this.#digits === 0) return -2;
          this.#state = SIZE_REST;
          this.#line = '';
          continue;
        }
        case SIZE_REST:
        case TRAILER: {
          const cr = buf.indexOf(13, i);
          const end = cr < 0 ? len : cr;
          if (this.#line.length + (end - i) > MAX_LINE) return -2;
          this.#line += latin1(buf, i, end);
          i = end;
          if (cr < 0) {
            // The line goes on in the next buffer: refused now if it can no longer become valid.
            if (!(this.#state === SIZE_REST ? EXTENSIONS_START : TRAILER_START).test(this.#line)) return -2;
            continue;
          }
          i++;
          if (this.#state === SIZE_REST) {
            if (this.#line !== '' && !EXTENSIONS.test(this.#line)) return -2;
            this.#state = SIZE_LF;
          } else {
            if (this.#line !== '' && (!TRAILER_LINE.test(this.#line) || FRAMING_TRAILER.test(this.#line))) return -2;
            this.#trailerBytes += this.#line.length + 2;
            if (this.#trailerBytes > MAX_TRAILERS) return -2;
            this.#state = TRAILER_LF;
          }
          continue;
        }
        case SIZE_LF:
          if (buf[i++] !== 10) return -2;
          this.#digits = 0;
          if (this.#size === 0) {
            this.#state = TRAILER;
            this.#line = '';
          } else {
            this.#remaining = this.#size;
            this.#size = 0;
            this.#state = DATA;
          }
          continue;
        case DATA_CR:
          if (buf[i++] !== 13) return -2;
          this.#state = DATA_LF;
          continue;
        case DATA_LF:
          if (buf[i++] !== 10) return -2;
          this.#state = SIZE;
          continue;
        case TRAILER_LF:
          if (buf[i++] !== 10) return -2;
          if (this.#line === '') {
            this.#state = DONE;
            return i;
          }
          this.#line = '';
          this.#state = TRAILER;
          continue;
        default:
          return -2; // DONE: nothing may follow inside this message
      }
    }
    return -1;
  }
}

function latin1(buf: Uint8Array, start: number, end: number): string {
  return start === end ? '' : Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1');
}

const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');

/**
 * The data of `spans` (offsets into `buf`) as canonical chunks, one per span, followed by the
 * last chunk when `last`. A new buffer (the input may be a shared read buffer).
 */
export function encodeChunks(buf: Uint8Array, spans: readonly number[], last: boolean): Buffer {
  const parts: Uint8Array[] = [];
  for (let k = 0; k < spans.length; k += 2) {
    const s = spans[k] as number;
    const e = spans[k + 1] as number;
    if (e === s) continue;
    parts.push(Buffer.from(`${(e - s).toString(16)}\r\n`, 'latin1'), buf.subarray(s, e), CRLF);
  }
  if (last) parts.push(LAST_CHUNK);
  return Buffer.concat(parts);
}

/** The data of `spans` (offsets into `buf`) joined, in a new buffer: a de-chunked body. */
export function joinChunks(buf: Uint8Array, spans: readonly number[]): Buffer {
  const parts: Uint8Array[] = [];
  for (let k = 0; k < spans.length; k += 2) parts.push(buf.subarray(spans[k] as number, spans[k + 1] as number));
  return Buffer.concat(parts);
}
