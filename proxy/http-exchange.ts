/**
 * One forwarded HTTP request: its head and body go to an upstream connection, the response comes
 * back to the client, each side with backpressure. Body bytes are forwarded as they are, but never
 * their framing: a Content-Length body is counted, a chunked one decoded and re-chunked canonically
 * (de-chunked for an HTTP/1.0 client), so both connections can be reused and no hop can read a
 * message differently. A request body that stalls longer than its timeout gets 408 and frees its
 * upstream connection; response headers are timed from the end of the request body.
 * A request without a body that fails on a reused (possibly stale) keep-alive connection before
 * any answer is retried once on a new connection. A `101 Switching Protocols` answer to an upgrade
 * request turns both connections into a tunnel (WebSocket).
 */
import { addField } from './affinity.ts';
import { ChunkedDecoder, encodeChunks, joinChunks } from './chunked.ts';
import { coarseNow } from './coarse-clock.ts';
import { MAX_RESPONSE_HEAD, clientHead, headText, parseResponseHead } from './http-head.ts';
import type { Framing, RequestHead } from './http-head.ts';
import { Tracked } from './upstreams.ts';
import type { UpstreamEntry } from './upstreams.ts';
import type { SocketUser, UpstreamSocket } from './upstream-socket.ts';
import { MESSAGES } from './exchange-client.ts';
import type { ExchangeClient, ExchangeTimeouts } from './exchange-client.ts';

/** What an exchange needs from its client connection, its timeouts, and the proxy's error texts. */
export { MESSAGES } from './exchange-client.ts';
export type { ExchangeClient, ExchangeTimeouts } from './exchange-client.ts';

/** Methods whose requests may be sent again when a stale keep-alive connection failed (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

const HEAD = 0; // waiting for (more of) the response head
const BODY = 1;
const DONE = 2;

/** One request in flight: tracked on its upstream until complete. */
export class Exchange extends Tracked implements SocketUser {
  readonly kind = 'request' as const;
  /** A Set-Cookie field line (CRLF included) added to the final response (cookie affinity). */
  setCookie: string | undefined = undefined;
  readonly #client: ExchangeClient;
  readonly #entry: UpstreamEntry;
  readonly #head: RequestHead;
  readonly #timeouts: ExchangeTimeouts;
  /** The client speaks HTTP/1.0: no interim responses, no chunked coding. */
  readonly #http10: boolean;
  #up: UpstreamSocket | null = null;
  #retried = false;
  #finished = false;
  /** When response headers are due (ms since epoch); Infinity until the request body is complete, and once they came. */
  #headersDue: number;
  /** When the next piece of request body is due; Infinity when none is awaited from the client. */
  #bodyDue: number;

  // Request body.
  #reqLeft = 0;
  #reqDecoder: ChunkedDecoder | null = null;
  #reqDone: boolean;
  /** The response ended before the request body: the rest of the body is read and dropped. */
  #discarding = false;

  // Response.
  #res = HEAD;
  #resBuf: Buffer | null = null;
  #resKind: Framing['kind'] = 'none';
  #resLeft = 0;
  #resDecoder: ChunkedDecoder | null = null;
  #reusable = false;
  #keepClient = false;
  /** Any byte came from the upstream. */
  #answered = false;
  /** Any byte went to the client. */
  #sent = false;
  /** Upstream reading is paused until the client drains, which it must do by this time; Infinity while not paused. */
  #clientDue = Infinity;

  constructor(client: ExchangeClient, entry: UpstreamEntry, head: RequestHead, timeouts: ExchangeTimeouts) {
    super();
    this.#client = client;
    this.#entry = entry;
    this.#head = head;
    this.#timeouts = timeouts;
    this.#http10 = head.minor === 0;
    const framing = head.framing;
    this.#reqDone = framing.kind === 'none';
    const now = coarseNow();
    this.#headersDue = this.#reqDone ? now + timeouts.headersMs : Infinity;
    this.#bodyDue = this.#reqDone ? Infinity : now + timeouts.bodyMs;
    if (framing.kind === 'length') this.#reqLeft = framing.length;
    else if (framing.kind === 'chunked') this.#reqDecoder = new ChunkedDecoder();
  }

  /** True once the whole request body went upstream (or was dropped). */
  get requestComplete(): boolean {
    return this.#reqDone;
  }

  /** Sends the request head on an idle or new connection. */
  start(): void {
    this.#entry.add(this);
    this.#attach(this.#entry.acquire());
  }

  #attach(up: UpstreamSocket): void {
    up.user = this;
    this.#up = up;
    up.socket.write(this.#head.upstreamHead, 'latin1');
  }

  /**
   * Request body bytes from the client: forwards the part that belongs to this request (a chunked
   * body re-chunked) and returns its length (what follows is the next request).
   */
  requestData(chunk: Buffer): number {
    if (this.#reqDone) return 0;
    let used: number;
    let out: Buffer;
    const decoder = this.#reqDecoder;
    if (decoder === null) {
      used = Math.min(chunk.length, this.#reqLeft);
      this.#reqLeft -= used;
      this.#reqDone = this.#reqLeft === 0;
      out = used === chunk.length ? chunk : chunk.subarray(0, used);
    } else {
      const end = decoder.decode(chunk);
      if (end === -2) {
        this.#fail(400, `${MESSAGES.badRequest}: invalid chunked body`, undefined);
        return chunk.length;
      }
      used = end === -1 ? chunk.length : end;
      this.#reqDone = end !== -1;
      out = encodeChunks(chunk, decoder.spans, this.#reqDone);
    }
    const now = coarseNow();
    if (this.#reqDone) {
      this.#bodyDue = Infinity;
      if (this.#res === HEAD) this.#headersDue = now + this.#timeouts.headersMs;
    } else this.#bodyDue = now + this.#timeouts.bodyMs;
    const up = this.#up;
    if (!this.#discarding && up !== null && out.length > 0 && !up.socket.write(out) && !this.#reqDone) {
      // The upstream reads the body slower than it comes: the client waits, and is not timed meanwhile.
      this.#client.pauseReading();
      this.#bodyDue = Infinity;
    }
    if (this.#reqDone && this.#res === DONE) this.#finish(true);
    return used;
  }

  // SocketUser: events of the upstream connection.

  onUpstreamDrain(): void {
    if (this.#reqDone || this.#bodyDue !== Infinity) return;
    this.#bodyDue = coarseNow() + this.#timeouts.bodyMs;
    this.#client.resumeReading();
  }

  onUpstreamData(data: Buffer): boolean {
    this.#answered = true;
    if (this.#res === BODY) return this.#relayBody(data, 0, false);
    if (this.#res === DONE) {
      this.#reusable = false; // bytes after the response: the connection is not reused
      return true;
    }
    return this.#onHeadBytes(data);
  }

  onUpstreamEnd(): void {
    if (this.#res === BODY && this.#resKind === 'close') {
      this.#up?.destroy();
      this.#up = null;
      this.#responseDone();
    } else this.onUpstreamError(new Error('the upstream closed the connection before a complete response'));
  }

  onUpstreamError(error: Error): void {
    const up = this.#up;
    this.#up = null;
    up?.destroy();
    if (this.#finished || this.#res === DONE) return;
    if (up !== null && !this.#answered && !this.#retried && up.served > 0 && this.#head.framing.kind === 'none' && IDEMPOTENT.has(this.#head.method)) {
      // Most likely a keep-alive connection the upstream closed while it was idle: try a new one.
      this.#retried = true;
      this.#attach(this.#entry.connect());
      return;
    }
    this.#fail(502, MESSAGES.badGateway, error);
  }

  // The client connection's events.

  /** The client can take more: read the upstream again. */
  onClientDrain(): void {
    if (this.#clientDue === Infinity) return;
    this.#clientDue = Infinity;
    this.#up?.resume();
  }

  /** The client's connection closed: drop the upstream connection (it is mid-exchange). */
  clientClosed(): void {
    if (this.#finished) return;
    this.#up?.destroy();
    this.#up = null;
    this.#finish(false);
  }

  // Tracked: drain timeouts and the headers timeout.

  /** Drain timeout: end both sides now. */
  destroy(): void {
    this.#up?.destroy();
    this.#up = null;
    if (!this.#finished) this.#client.abort();
    this.#finish(false);
  }

  override expire(now: number): void {
    if (this.#finished) return;
    if (now >= this.#bodyDue) {
      // The client stopped sending its body: 408, and the upstream connection is given up at once.
      this.#bodyDue = Infinity;
      this.#fail(408, MESSAGES.bodyTimeout, undefined);
    } else if (now >= this.#clientDue) {
      // The client has not taken the response for too long: both connections are given up.
      this.destroy();
    } else if (now >= this.#headersDue) {
      this.#headersDue = Infinity;
      this.#fail(504, MESSAGES.gatewayTimeout, new Error('the upstream sent no response headers in time'));
    }
  }

  // Response handling.

  #onHeadBytes(data: Buffer): boolean {
    let buf = data;
    let owned = false;
    if (this.#resBuf !== null) {
      buf = Buffer.concat([this.#resBuf, data]);
      owned = true;
      this.#resBuf = null;
    }
    for (;;) {
      const text = headText(buf);
      if (text === undefined || text.length > MAX_RESPONSE_HEAD) {
        if (buf.length > MAX_RESPONSE_HEAD) return this.#fail(502, MESSAGES.badGateway, new Error('response head too large')), true;
        this.#resBuf = owned ? buf : Buffer.from(buf);
        return true;
      }
      const end = text.length;
      const parsed = parseResponseHead(text, this.#head.method);
      if ('error' in parsed) return this.#fail(502, MESSAGES.badGateway, new Error(parsed.reason)), true;
      const bodyStart = end + 4;
      if (parsed.status === 101) {
        if (this.#head.upgrade === undefined) return this.#fail(502, MESSAGES.badGateway, new Error('101 without an upgrade request')), true;
        return this.#switchProtocols(buf, owned);
      }
      if (parsed.status < 200) {
        // Interim (100 Continue, 103 Early Hints): passed on (never to an HTTP/1.0 client, which
        // does not know them); the final response follows.
        if (!this.#http10) {
          if (parsed.needsRewrite) {
            this.#client.write(clientHead(parsed, false));
            this.#sent = true;
          } else this.#send(buf.subarray(0, bodyStart), owned);
        }
        if (bodyStart === buf.length) return true;
        buf = buf.subarray(bodyStart);
        continue;
      }
      this.#headersDue = Infinity;
      this.#res = BODY;
      this.#resKind = parsed.framing.kind;
      if (parsed.framing.kind === 'length') this.#resLeft = parsed.framing.length;
      else if (parsed.framing.kind === 'chunked') this.#resDecoder = new ChunkedDecoder();
      this.#reusable = parsed.reusable;
      // An answer before the whole request body (an early 413, or a refused Expect: 100-continue):
      // the client may never send the rest, so the connection closes after this response.
      this.#keepClient = this.#head.keepAlive && this.#reqDone && parsed.framing.kind !== 'close' && !this.#client.closing();
      const cookie = this.setCookie;
      if (parsed.needsRewrite || !this.#keepClient || cookie !== undefined) {
        const head = clientHead(parsed, !this.#keepClient, this.#http10);
        this.#client.write(cookie === undefined ? head : addField(head, cookie));
        this.#sent = true;
        return this.#relayBody(buf, bodyStart, owned);
      }
      return this.#relayBody(buf, 0, owned, bodyStart);
    }
  }

  /**
   * Forwards the response bytes of `buf` from `start` (head bytes before `bodyStart`, when given,
   * go along unchanged) up to the end of the body. Returns false to pause the upstream.
   */
  #relayBody(buf: Buffer, start: number, owned: boolean, bodyStart = start): boolean {
    let end: number;
    switch (this.#resKind) {
      case 'none':
        end = bodyStart;
        this.#res = DONE;
        break;
      case 'length': {
        const take = Math.min(this.#resLeft, buf.length - bodyStart);
        this.#resLeft -= take;
        end = bodyStart + take;
        if (this.#resLeft === 0) this.#res = DONE;
        break;
      }
      case 'chunked':
        return this.#relayChunks(buf, bodyStart);
      default:
        end = buf.length;
    }
    if (end < buf.length) this.#reusable = false; // more than the response: not reused
    const flushed = end > start ? this.#send(buf.subarray(start, end), owned) : true;
    if (this.#res === DONE) {
      this.#responseDone();
      return true;
    }
    if (!flushed) this.#waitForClient();
    return flushed;
  }

  /**
   * Forwards the chunked response body in `buf` from `start`, re-chunked canonically (extensions
   * and trailers dropped), or de-chunked for an HTTP/1.0 client. Returns false to pause the upstream.
   */
  #relayChunks(buf: Buffer, start: number): boolean {
    const decoder = this.#resDecoder as ChunkedDecoder;
    const e = decoder.decode(buf, start);
    if (e === -2) return this.#fail(502, MESSAGES.badGateway, new Error('invalid chunked response body')), true;
    const done = e !== -1;
    if (done && e < buf.length) this.#reusable = false; // more than the response: not reused
    const out = this.#http10 ? joinChunks(buf, decoder.spans) : encodeChunks(buf, decoder.spans, done);
    const flushed = out.length > 0 ? this.#send(out, true) : true;
    if (done) {
      this.#responseDone();
      return true;
    }
    if (!flushed) this.#waitForClient();
    return flushed;
  }

  #waitForClient(): void {
    this.#clientDue = coarseNow() + this.#timeouts.sendMs;
  }

  /** Writes response bytes to the client (copied unless the buffer is the exchange's own). */
  #send(bytes: Buffer, owned: boolean): boolean {
    this.#sent = true;
    return this.#client.write(owned ? bytes : Buffer.from(bytes));
  }

  #switchProtocols(buf: Buffer, owned: boolean): boolean {
    const up = this.#up as UpstreamSocket;
    this.#send(buf, owned); // the 101 head and whatever the upstream already sent after it
    this.#up = null;
    this.#res = DONE;
    this.#entry.release(this);
    this.#finished = true;
    up.user = null;
    this.#client.startTunnel(this.#entry, up);
    return true;
  }

  #responseDone(): void {
    this.#res = DONE;
    const up = this.#up;
    this.#up = null;
    if (up !== null) {
      if (this.#reusable && this.#reqDone) this.#entry.reuse(up);
      else up.destroy();
    }
    if (this.#reqDone) this.#finish(true);
    else {
      // The upstream answered before the whole request body: drop the rest of it (closing at
      // once could reset the connection before the client reads the answer), then close.
      this.#discarding = true;
      this.#client.linger();
    }
  }

  /** Ends the exchange with an error: a proxy error page if nothing was sent yet, else a cut connection. */
  #fail(status: number, text: string, error: Error | undefined): void {
    if (this.#finished) return;
    if (error !== undefined) this.#entry.failed(error, 'request');
    this.#up?.destroy();
    this.#up = null;
    this.#res = DONE;
    if (this.#sent) this.#client.abort();
    else this.#client.replyError(status, text);
    this.#finish(false);
  }

  #finish(ok: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#entry.release(this);
    if (ok) this.#client.exchangeDone(this.#keepClient);
  }
}
