/**
 * One client connection to the proxy's HTTP listener: reads request heads (strictly, see
 * http-head.ts; an unfinished one is checked as it comes, partial-head.ts), routes each by Host,
 * holds it while its route is paused, and hands it to an Exchange with the chosen upstream;
 * answers 400/404/405/408/431/501/505 and 503 itself. Requests on a keep-alive connection are
 * served one after another; pipelined ones wait, bounded in number and bytes, and none is started
 * while the client has not taken what was written (limits.ts). Idle connections, slow heads and
 * unread answers time out by a sweep once a second, not a timer per request. The connection is
 * listener-agnostic: a TLS listener passes its sockets with `proto: 'https'`.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../src/logger.ts';
import { coarseNow } from './coarse-clock.ts';
import { Exchange, MESSAGES } from './http-exchange.ts';
import type { ExchangeClient, ExchangeTimeouts } from './http-exchange.ts';
import type { ProxyLimits } from './limits.ts';
import { MAX_REQUEST_HEAD, headText, parseRequestHead } from './http-head.ts';
import { checkUnfinishedHead, partialHead, resetPartialHead } from './partial-head.ts';
import type { ForwardFor, RequestHead } from './http-head.ts';
import { isPaused } from './pause-gate.ts';
import type { PauseGate } from './pause-gate.ts';
import { entryAt, pickForRequest } from './balance.ts';
import type { RequestPick } from './balance.ts';
import type { ActiveRoute, RouteTable } from './route-table.ts';
import { Tunnel } from './tunnel.ts';
import { adoptSharedReads, isShared, owned } from './client-socket.ts';
import { abortSocket } from './upstreams.ts';
import type { UpstreamEntry, Upstreams } from './upstreams.ts';
import type { UpstreamSocket } from './upstream-socket.ts';
import type { CertificateSource, ChallengeResponder } from './types.ts';
import { normalizeHost } from './routes.ts';
import { NOT_FORWARDED_AGAIN } from './peer-routes.ts';
import type { PeerRoutes } from './peer-routes.ts';

/** What the connections of one listener share. */
export interface ForwardContext {
  table: RouteTable;
  upstreams: Upstreams;
  gate: PauseGate;
  log: Logger;
  /** The scheme clients used to reach this listener, sent as X-Forwarded-Proto. */
  proto: 'http' | 'https';
  /** True once the proxy is shutting down: new requests get 503, connections close after their exchange. */
  closing: () => boolean;
  /**
   * Set once the proxy handed its listeners to another process (agent restart): requests are still
   * served, each response says `Connection: close`, and a keep-alive connection left idle closes
   * after this many ms (not at once: its client may be sending a request right now).
   */
  retiring: () => number | undefined;
  /** Timeouts and buffer bounds (checked about once a second). */
  limits: ProxyLimits;
  /** Answers `/.well-known/acme-challenge/<token>` on any host, before routing (HTTP listener). */
  challenges?: ChallengeResponder;
  /** The HTTPS listener, for `https: redirect` routes: its port and its certificates. */
  httpsRedirect?: { port: number; certificates: CertificateSource };
  /** The key of affinity cookies (affinity.ts); routes with `affinity: cookie` get none without it. */
  affinityKey?: Buffer;
  /** Hostnames other hosts of the cluster serve: asked only when no local route matches (peer-routes.ts). */
  peers?: PeerRoutes;
}

/** How long the rest of a request body is read and dropped after its answer, before the connection is closed anyway. */
const LINGER_MS = 30_000;

const CRLF2 = Buffer.from('\r\n\r\n');
/** Where ACME servers fetch HTTP-01 key authorizations (RFC 8555 §8.3). */
const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

const READING_HEAD = 0;
const BODY = 1; // the request body is going upstream
const AWAITING = 2; // the request went upstream; waiting for the response
const HELD = 3; // the route is paused: waiting for it
const TUNNEL = 4;
const CLOSED = 5;
const DRAINING = 6; // the client has not taken what was written: the next request waits for it

/** Every client connection of a listener, swept once a second for timeouts. */
export class ClientConnections {
  readonly #all = new Set<ClientConnection>();
  readonly #sweeper: NodeJS.Timeout;

  constructor() {
    this.#sweeper = setInterval(() => {
      const now = coarseNow();
      for (const conn of this.#all) if (now >= conn.deadline) conn.timedOut();
    }, 1000).unref();
  }

  /**
   * Serves a new client socket. A plain TCP socket accepted paused (`shared`) is read into the
   * shared buffer (client-socket.ts); a TLS socket is read as a stream.
   */
  accept(socket: Socket, ctx: ForwardContext, shared = false): void {
    const conn = new ClientConnection(socket, ctx, shared, () => this.#all.delete(conn));
    this.#all.add(conn);
  }

  /** Closes the connections that wait for a request; the others close after their exchange. */
  closeIdle(): void {
    for (const conn of this.#all) conn.closeIfIdle();
  }

  /** Once the context is retiring: idle keep-alive connections close within `graceMs`. */
  retire(graceMs: number): void {
    for (const conn of this.#all) conn.retire(graceMs);
  }

  /** Connections not upgraded (WebSocket tunnels are left to the upstream drain). */
  get exchanges(): number {
    let n = 0;
    for (const conn of this.#all) if (!conn.tunneled) n++;
    return n;
  }

  /** Destroys every connection and stops the sweep. */
  destroyAll(): void {
    clearInterval(this.#sweeper);
    for (const conn of this.#all) conn.abort();
  }
}

/** One client connection. */
class ClientConnection implements ExchangeClient {
  readonly #socket: Socket;
  readonly #ctx: ForwardContext;
  readonly #limits: ProxyLimits;
  readonly #timeouts: ExchangeTimeouts;
  readonly #forget: () => void;
  #state = READING_HEAD;
  /** Bytes read and not yet used. */
  #buf: Buffer | null = null;
  /** Complete request heads (about) in `#buf` beyond the request being served. */
  #queued = 0;
  /** The first byte of the next request head came (its timeout runs). */
  #headStarted = false;
  /** How far the incomplete head in `#buf` was checked, and what its lines said. */
  readonly #partial = partialHead();
  #exchange: Exchange | null = null;
  #tunnel: Tunnel | null = null;
  /** The request being held or served (for HEAD answers). */
  #method = 'GET';
  /** Inside `#feedBody`: a finished exchange leaves parsing the next request to it. */
  #feeding = false;
  /** Inside `#parse`: its loop takes the next request. */
  #parsing = false;
  #clientEnded = false;
  #forwardFor: ForwardFor | undefined;
  /** This connection's upstream (its last request's) and the pick of the request being forwarded. */
  readonly #pick: RequestPick = { upstream: undefined, index: 0, cookie: undefined };
  /** Cancels the wait for a paused route (while HELD). */
  #cancelWait: (() => void) | undefined;
  /** When the connection times out (ms since epoch). */
  deadline: number;

  constructor(accepted: Socket, ctx: ForwardContext, shared: boolean, forget: () => void) {
    const adopted = shared ? adoptSharedReads(accepted, (chunk) => (this.#onData(chunk), true)) : undefined;
    const socket = adopted ?? accepted;
    this.#socket = socket;
    this.#ctx = ctx;
    this.#limits = ctx.limits;
    this.#timeouts = { headersMs: ctx.limits.headersTimeoutMs, bodyMs: ctx.limits.requestBodyTimeoutMs, sendMs: ctx.limits.sendTimeoutMs };
    this.#forget = forget;
    this.deadline = coarseNow() + ctx.limits.keepAliveTimeoutMs;
    if (adopted === undefined) {
      socket.on('data', (chunk: Buffer) => this.#onData(chunk));
      if (shared) accepted.resume();
    }
    socket.on('end', () => this.#onEnd());
    socket.on('drain', () => this.#onDrain());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#onClose());
  }

  /** Bytes from the client: `chunk` may be a view of the shared read buffer, copied where kept. */
  #onData(chunk: Buffer): void {
    switch (this.#state) {
      case READING_HEAD:
        this.#append(chunk);
        this.#parse();
        // What is left of the read (a head still coming, pipelined requests) outlives it.
        if (this.#buf !== null && isShared(this.#buf)) this.#buf = Buffer.from(this.#buf);
        return;
      case BODY:
        return this.#feedBody(owned(chunk));
      case TUNNEL:
        return (this.#tunnel as Tunnel).fromClient(owned(chunk));
      case CLOSED:
        return;
      default:
        this.#append(owned(chunk));
    }
  }

  #onDrain(): void {
    if (this.#tunnel !== null) this.#tunnel.clientDrained();
    else if (this.#state === DRAINING) this.#next();
    else this.#exchange?.onClientDrain();
  }

  #append(chunk: Buffer): void {
    const old = this.#buf;
    const buf = old === null ? chunk : Buffer.concat([old, chunk]);
    this.#buf = buf;
    // Read ahead of the request being served (pipelining) is bounded in requests and in bytes;
    // reading resumes with the next request. (A head being read is bounded by its own limit.)
    for (let at = buf.indexOf(CRLF2, old === null ? 0 : Math.max(0, old.length - 3)); at >= 0; at = buf.indexOf(CRLF2, at + 4)) this.#queued++;
    if (this.#queued > this.#limits.maxPipelinedRequests || (this.#state !== READING_HEAD && buf.length > this.#limits.maxBufferedRequestBytes)) this.#socket.pause();
  }

  /** Reads request heads from the buffer while the connection is free for one. */
  #parse(): void {
    if (this.#parsing) return;
    this.#parsing = true;
    try {
      while (this.#state === READING_HEAD && this.#buf !== null) {
        let buf = this.#buf;
        let skip = 0;
        while (skip + 1 < buf.length && buf[skip] === 13 && buf[skip + 1] === 10) skip += 2; // empty lines before a request
        if (skip > 0) {
          this.#buf = skip === buf.length ? null : buf.subarray(skip);
          if (this.#buf === null) return;
          buf = this.#buf;
        }
        if (!this.#headStarted) {
          // The head's own deadline, from its first byte (empty lines before it do not count).
          this.#headStarted = true;
          this.deadline = coarseNow() + this.#limits.requestHeadTimeoutMs;
        }
        const text = headText(buf);
        if (text === undefined || text.length > MAX_REQUEST_HEAD) {
          if (text !== undefined || buf.length > MAX_REQUEST_HEAD) return this.#reply(431, 'depad proxy: request head too large', false);
          if (this.#clientEnded) return this.#reply(400, `${MESSAGES.badRequest}: incomplete request`, false);
          // No complete head is waiting (the count can run high: body bytes look like heads), so read on.
          if (this.#queued > 0) {
            this.#queued = 0;
            this.#socket.resume();
          }
          const error = checkUnfinishedHead(buf, this.#partial);
          return error === undefined ? undefined : this.#reply(error.error, `${MESSAGES.badRequest}: ${error.reason}`, false);
        }
        const end = text.length;
        this.#buf = end + 4 < buf.length ? buf.subarray(end + 4) : null;
        if (this.#partial.scanned > 0) resetPartialHead(this.#partial);
        this.#queued = this.#buf === null || this.#queued === 0 ? 0 : this.#queued - 1;
        this.#request(text);
      }
    } finally {
      this.#parsing = false;
    }
  }

  #request(text: string): void {
    const ctx = this.#ctx;
    this.#forwardFor ??= { clientIp: this.#socket.remoteAddress ?? '', proto: ctx.proto, peer: ctx.peers?.trust };
    const head = parseRequestHead(text, this.#forwardFor);
    if ('error' in head) return this.#reply(head.error, `${MESSAGES.badRequest}: ${head.reason}`, false);
    this.#method = head.method;
    const keep = head.keepAlive && head.framing.kind === 'none';
    if (ctx.challenges !== undefined && head.target.startsWith(CHALLENGE_PREFIX)) {
      const answer = ctx.challenges.keyAuthorization(head.target.slice(CHALLENGE_PREFIX.length));
      if (answer !== undefined) return this.#respond(200, 'application/octet-stream', answer, '', keep);
    }
    if (ctx.closing()) return this.#reply(503, MESSAGES.closing, false);
    const active = ctx.table.httpRoute(head.host);
    if (active === undefined) return this.#noLocalRoute(head, keep);
    if (active.route.https === 'redirect' && ctx.httpsRedirect !== undefined && head.target !== '*' && head.forwardedProto !== 'https') {
      const host = normalizeHost(head.host);
      const { port, certificates } = ctx.httpsRedirect;
      if (certificates.context(host) !== undefined) {
        const location = `https://${host}${port === 443 ? '' : `:${port}`}${head.target}`;
        return this.#respond(308, 'text/plain; charset=utf-8', `depad proxy: moved to ${location}\n`, `Location: ${location}\r\n`, keep);
      }
    }
    if (!isPaused(active)) return this.#forward(head, active, text);
    this.#state = HELD;
    this.deadline = Infinity;
    this.#socket.pause();
    const host = head.host;
    const wait = ctx.gate.wait(() => ctx.table.httpRoute(host));
    this.#cancelWait = wait.cancel;
    void wait.outcome.then((outcome) => {
      this.#cancelWait = undefined;
      if (this.#state !== HELD) return;
      this.#socket.resume();
      if (outcome.kind === 'ready') this.#forward(head, outcome.active, text);
      else if (outcome.kind === 'gone') this.#reply(404, MESSAGES.noRoute, keep);
      else this.#reply(503, outcome.kind === 'timeout' ? MESSAGES.pausedTooLong : MESSAGES.closing, false);
    });
  }

  /** No local route: a peer's hostname goes to its proxy, marked; a request a proxy forwarded is not forwarded again. */
  #noLocalRoute(head: RequestHead, keep: boolean): void {
    const peers = this.#ctx.peers;
    if (head.via !== undefined) return this.#reply(421, NOT_FORWARDED_AGAIN, keep);
    const target = peers?.route(head.host);
    if (peers === undefined || target === undefined) return this.#reply(404, MESSAGES.noRoute, keep);
    this.#start({ ...head, upstreamHead: peers.marked(head.upstreamHead) }, this.#ctx.upstreams.entry(target.key), undefined);
  }

  #forward(head: RequestHead, active: ActiveRoute, text: string): void {
    const ctx = this.#ctx;
    const pick = this.#pick;
    // A peer proxy's connection carries many clients' requests: each is balanced on its own.
    if (head.via !== undefined) pick.upstream = undefined;
    if (!pickForRequest(active, ctx, text, head.upgrade !== undefined, pick)) return this.#reply(503, MESSAGES.noUpstream, head.keepAlive && head.framing.kind === 'none');
    this.#start(head, entryAt(active, ctx.upstreams, pick.index), pick.cookie);
  }

  /** Sends the request to `entry` (an instance, or a peer's proxy) and its body after it. */
  #start(head: RequestHead, entry: UpstreamEntry, setCookie: string | undefined): void {
    const exchange = new Exchange(this, entry, head, this.#timeouts);
    exchange.setCookie = setCookie;
    this.#exchange = exchange;
    this.#state = head.framing.kind === 'none' ? AWAITING : BODY;
    this.deadline = Infinity;
    exchange.start();
    if (this.#state === BODY && this.#buf !== null) {
      const pending = owned(this.#buf);
      this.#buf = null;
      this.#queued = 0;
      this.#feedBody(pending);
    }
    // The client ended its side before this request's body was all there: it never will be.
    if (this.#state === BODY && this.#clientEnded) this.abort();
  }

  #feedBody(chunk: Buffer): void {
    const exchange = this.#exchange as Exchange;
    this.#feeding = true;
    const used = exchange.requestData(chunk);
    this.#feeding = false;
    if (used < chunk.length && this.#state !== CLOSED) this.#append(chunk.subarray(used));
    if (this.#state === BODY && exchange.requestComplete) this.#state = AWAITING;
    if (this.#state === READING_HEAD) this.#parse();
  }

  /** Answers with a short plain-text page; keeps the connection for the next request when `keep`. */
  #reply(status: number, text: string, keep: boolean): void {
    this.#respond(status, 'text/plain; charset=utf-8', `${text}\n`, status === 503 ? 'Retry-After: 1\r\n' : '', keep);
  }

  /** Writes the proxy's own response (`fields`: extra header lines, each ending in CRLF). */
  #respond(status: number, type: string, body: string, fields: string, keep: boolean): void {
    if (this.#state === CLOSED) return;
    keep &&= !this.closing();
    this.#socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Cache-Control: no-store\r\n${fields}${keep ? '' : 'Connection: close\r\n'}\r\n${this.#method === 'HEAD' ? '' : body}`,
      'utf8',
    );
    if (keep) this.#next();
    else this.#close();
  }

  /**
   * Ready for the next request on this connection, once the client has taken what was written
   * (a client that does not read gets no further answers, and is not read meanwhile).
   */
  #next(): void {
    if (this.#clientEnded && this.#buf === null) return this.#close();
    const socket = this.#socket;
    const now = coarseNow();
    if (this.#clientFull()) {
      this.#state = DRAINING;
      this.deadline = now + this.#limits.sendTimeoutMs;
      socket.pause();
      return;
    }
    this.#state = READING_HEAD;
    this.#method = 'GET';
    this.#headStarted = false;
    this.deadline = now + Math.min(this.#limits.keepAliveTimeoutMs, this.#ctx.retiring() ?? Infinity);
    socket.resume();
    if (!this.#feeding) this.#parse();
  }

  /** Ends the connection after what was written (a FIN, not a reset). */
  #close(): void {
    this.#state = CLOSED;
    this.#buf = null;
    this.#socket.end();
  }

  #onEnd(): void {
    this.#clientEnded = true;
    if (this.#state === TUNNEL) (this.#tunnel as Tunnel).clientEnded();
    else if (this.#state === READING_HEAD) {
      if (this.#buf === null) this.#close();
      else this.#reply(400, `${MESSAGES.badRequest}: incomplete request`, false);
    } else if (this.#state === BODY) this.abort(); // the body was cut short
  }

  #onClose(): void {
    this.#state = CLOSED;
    this.#cancelWait?.();
    this.#exchange?.clientClosed();
    this.#exchange = null;
    this.#tunnel?.clientClosed();
    this.#forget();
  }

  // ExchangeClient.

  write(data: Buffer | string): boolean {
    if (typeof data === 'string') this.#socket.write(data, 'latin1');
    else this.#socket.write(data);
    return !this.#clientFull();
  }

  /**
   * The client has not taken `maxBufferedResponseBytes` (at least the socket's high-water mark,
   * so that a 'drain' is sure to come): stop reading the upstream, start no next request.
   */
  #clientFull(): boolean {
    const socket = this.#socket;
    return socket.writableLength >= Math.max(this.#limits.maxBufferedResponseBytes, socket.writableHighWaterMark);
  }

  pauseReading(): void {
    this.#socket.pause();
  }

  resumeReading(): void {
    if (this.#state === BODY || this.#state === AWAITING) this.#socket.resume();
  }

  exchangeDone(keepClient: boolean): void {
    this.#exchange = null;
    if (keepClient && !this.#ctx.closing()) this.#next();
    else this.#close();
  }

  replyError(status: number, text: string): void {
    this.#exchange = null;
    this.#reply(status, text, false);
  }

  abort(): void {
    this.#state = CLOSED;
    abortSocket(this.#socket);
  }

  linger(): void {
    this.deadline = coarseNow() + LINGER_MS;
    this.#socket.resume();
  }

  startTunnel(entry: UpstreamEntry, up: UpstreamSocket): void {
    this.#exchange = null;
    this.#state = TUNNEL;
    this.deadline = Infinity;
    this.#tunnel = new Tunnel(entry, this.#socket, up);
    this.#socket.resume();
    const pending = this.#buf;
    this.#buf = null;
    if (pending !== null) this.#tunnel.fromClient(owned(pending));
    if (this.#clientEnded) this.#tunnel.clientEnded();
  }

  /** No further request on this connection: the response says `Connection: close`. */
  closing(): boolean {
    return this.#ctx.closing() || this.#ctx.retiring() !== undefined;
  }

  // The sweep and shutdown.

  /** The deadline passed: a slow request head gets 408, an idle, lingering or unread connection is closed. */
  timedOut(): void {
    this.deadline = Infinity;
    if (this.#state === BODY || this.#state === DRAINING) return this.abort(); // lingering after an early answer, or not reading
    if (this.#state !== READING_HEAD) return;
    if (this.#buf === null) this.#close();
    else this.#reply(408, 'depad proxy: the request head took too long', false);
  }

  /** Closes the connection if it waits for a request. */
  closeIfIdle(): void {
    if (this.#state === READING_HEAD && this.#buf === null) this.#close();
  }

  /** Retiring: a connection waiting for a request (none begun) closes within `graceMs`. */
  retire(graceMs: number): void {
    if (this.#state === READING_HEAD && !this.#headStarted) this.deadline = Math.min(this.deadline, coarseNow() + graceMs);
  }

  /** Upgraded: a WebSocket tunnel. */
  get tunneled(): boolean {
    return this.#state === TUNNEL;
  }
}
