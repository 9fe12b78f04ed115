/**
 * Finds where a chunked message body ends (RFC 9112 §7.1) while its bytes are forwarded as they
 * are: chunk sizes, extensions, data and the trailer section are checked strictly (hex sizes, CRLF
 * only, no control characters), so a body cannot be read differently here and upstream.
 */

const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX['0123456789abcdef'.charCodeAt(i)] = i;
  HEX['0123456789ABCDEF'.charCodeAt(i)] = i;
}

/** Longest chunk-size line or trailer line accepted. */
const MAX_LINE = 16 * 1024;

const SIZE = 0; // reading hex digits
const SIZE_REST = 1; // after the digits: optional whitespace and extensions, up to CR
const SIZE_LF = 2; // CR seen after the size line
const DATA = 3;
const DATA_CR = 4;
const DATA_LF = 5;
const TRAILER_START = 6; // at the start of a trailer line (or the final CRLF)
const TRAILER = 7; // inside a trailer line
const TRAILER_LF = 8;
const END_LF = 9; // CR of the final empty line seen
const DONE = 10;

/** The end of a chunked body across any number of buffers. */
export class ChunkedScanner {
  #state = SIZE;
  #digits = 0;
  #size = 0;
  #remaining = 0;
  #lineLength = 0;
  /** A `;` was seen on the size line (extensions may follow). */
  #ext = false;

  /** True once the final CRLF was seen. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /**
   * Scans `buf` from `start`: returns the offset just past the end of the body when it ends in
   * `buf`, -1 when more is needed, or -2 when the framing is invalid.
   */
  scan(buf: Uint8Array, start = 0): number {
    const len = buf.length;
    let i = start;
    while (i < len) {
      switch (this.#state) {
        case DATA: {
          const take = Math.min(this.#remaining, len - i);
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#state = DATA_CR;
          continue;
        }
        case SIZE: {
          const c = buf[i] as number;
          const h = HEX[c] as number;
          if (h >= 0) {
            if (++this.#digits > 13) return -2; // beyond 2^52: refused
            this.#size = this.#size * 16 + h;
            i++;
            continue;
          }
          if (this.#digits === 0) return -2;
          this.#state = SIZE_REST;
          continue;
        }
        case SIZE_REST: {
          const c = buf[i++] as number;
          if (c === 13) this.#state = SIZE_LF;
          else if ((c < 32 && c !== 9) || c === 127) return -2;
          else if (++this.#lineLength > MAX_LINE) return -2;
          else if (c === 59 /* ; */) this.#ext = true;
          else if (!this.#ext && c !== 32 && c !== 9) return -2; // only whitespace before extensions
          continue;
        }
        case SIZE_LF:
          if (buf[i++] !== 10) return -2;
          this.#lineLength = 0;
          this.#ext = false;
          this.#digits = 0;
          if (this.#size === 0) this.#state = TRAILER_START;
          else {
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
        case TRAILER_START: {
          const c = buf[i++] as number;
          if (c === 13) this.#state = END_LF;
          else if (c < 33 || c === 127) return -2; // no folding, no controls
          else this.#state = TRAILER;
          continue;
        }
        case TRAILER: {
          const c = buf[i++] as number;
          if (c === 13) this.#state = TRAILER_LF;
          else if ((c < 32 && c !== 9) || c === 127) return -2;
          else if (++this.#lineLength > MAX_LINE) return -2;
          continue;
        }
        case TRAILER_LF:
          if (buf[i++] !== 10) return -2;
          this.#lineLength = 0;
          this.#state = TRAILER_START;
          continue;
        case END_LF:
          if (buf[i++] !== 10) return -2;
          this.#state = DONE;
          return i;
        default:
          return -2; // DONE: nothing may follow inside this message
      }
    }
    return -1;
  }
}
