/**
 * The fuzzer's raw upstreams on loopback. The recording upstream keeps every byte each connection
 * receives during a case and answers each complete request it parses (with the strict reference)
 * with a small response naming it; on a parse error it answers 400 and closes, as a strict server
 * does. The responding upstream answers every request head with the current case's bytes.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseRequests } from './reference.ts';
import type { RequestEnd } from './reference.ts';
import type { ResponseCase } from './responses.ts';

/** Header naming the request a recording upstream answers (its order in the case). */
export const SEQ_HEADER = 'X-Fuzz-Seq';

interface RecordedConnection {
  socket: net.Socket;
  /** Bytes received during the current case. */
  chunks: Buffer[];
  /** Order of its first byte in the case (connections are listed by it). */
  first: number;
  answered: number;
  /** The sequence number each answered message got (by its index on the connection). */
  seqs: number[];
  /** How the reference parse of its bytes ended, last time. */
  end: RequestEnd;
  chain: Promise<void>;
  busy: number;
  closing: boolean;
}

const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Resolves once `version()` stayed the same over `turns` rounds of a 1 ms timer and an I/O poll
 * (so bytes already in flight on loopback have been read), or after `maxMs`.
 */
export async function steady(version: () => number, turns: number, maxMs: number): Promise<void> {
  const deadline = performance.now() + maxMs;
  let last = version();
  for (let same = 0; same < turns && performance.now() < deadline; ) {
    await sleep(1);
    await immediate();
    const v = version();
    if (v === last) same++;
    else [last, same] = [v, 0];
  }
}

/**
 * Writes `bytes` to `socket` cut at `splits`, waiting `pauseMs` (0: one turn) between the writes;
 * true once all are written, false if the socket was destroyed first.
 */
export async function writeSplit(socket: net.Socket, bytes: Buffer, splits: readonly number[], pauseMs: number): Promise<boolean> {
  let from = 0;
  for (const at of [...splits, bytes.length]) {
    if (socket.destroyed) return false;
    if (at > from) socket.write(bytes.subarray(from, at));
    from = at;
    if (at < bytes.length) await (pauseMs > 0 ? sleep(pauseMs) : immediate());
  }
  return true;
}

/** What one upstream connection received during a case, and the sequence numbers of its answers. */
export interface Segment {
  bytes: Buffer;
  seqs: number[];
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

/** The request-side upstream. */
export class RecordingUpstream {
  readonly #server: net.Server;
  readonly #conns = new Set<RecordedConnection>();
  #order = 0;
  #seq = 0;
  /** Bumped by every byte received and every parse finished. */
  #events = 0;
  port = 0;

  constructor() {
    this.#server = net.createServer((socket) => this.#accept(socket));
  }

  /** Starts listening on a free loopback port. */
  async start(): Promise<void> {
    this.port = await listen(this.#server);
  }

  #accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    const conn: RecordedConnection = { socket, chunks: [], first: Infinity, answered: 0, seqs: [], end: 'clean', chain: Promise.resolve(), busy: 0, closing: false };
    this.#conns.add(conn);
    socket.on('data', (d: Buffer) => {
      if (conn.first === Infinity) conn.first = this.#order++;
      conn.chunks.push(d);
      this.#events++;
      conn.busy++;
      conn.chain = conn.chain
        .then(() => this.#answer(conn))
        .finally(() => {
          conn.busy--;
          this.#events++;
        });
    });
    socket.on('end', () => socket.end());
    socket.on('error', () => {});
    // Kept until the case ends: what a closed connection received still belongs to the case.
    socket.on('close', () => (conn.closing = true));
  }

  async #answer(conn: RecordedConnection): Promise<void> {
    if (conn.closing || conn.socket.destroyed) return;
    const parse = await parseRequests(Buffer.concat(conn.chunks), { bareLines: false });
    conn.end = parse.end;
    let out = '';
    for (let i = conn.answered; i < parse.messages.length; i++) {
      const m = parse.messages[i];
      if (m === undefined || !m.complete) break;
      conn.answered++;
      const seq = this.#seq++;
      conn.seqs.push(seq);
      const body = m.method === 'HEAD' ? '' : `seq ${seq}: ${m.method} ${m.url}`;
      const close = !m.keepAlive || m.upgrade; // a declined upgrade: Node's server closes too
      out += `HTTP/1.1 200 OK\r\n${SEQ_HEADER}: ${seq}\r\nContent-Length: ${body.length}\r\n${close ? 'Connection: close\r\n' : ''}\r\n${body}`;
      if (close) {
        conn.closing = true;
        break;
      }
    }
    if (!conn.closing && parse.end === 'error') {
      out += 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';
      conn.closing = true;
    }
    if (out !== '') conn.socket.write(out, 'latin1');
    if (conn.closing) conn.socket.end();
  }

  /** Resolves once nothing happened over `turns` rounds and every parse is done (bounded). */
  quiet(turns: number, maxMs = 2000): Promise<void> {
    return steady(() => this.#events + ([...this.#conns].some((c) => c.busy > 0) ? 0.5 : 0), turns, maxMs);
  }

  /** What each connection received during the case, in the order they first received a byte. */
  segments(): Segment[] {
    return [...this.#conns]
      .filter((c) => c.chunks.length > 0)
      .sort((a, b) => a.first - b.first)
      .map((c) => ({ bytes: Buffer.concat(c.chunks), seqs: [...c.seqs] }));
  }

  /**
   * Ends the case: a connection left anywhere but between messages is closed (all of them after
   * a case that timed out: the proxy may still be busy with it); the others start the next case
   * afresh.
   */
  async endCase(timedOut = false): Promise<void> {
    const deadline = performance.now() + 2000;
    while ([...this.#conns].some((c) => c.busy > 0) && performance.now() < deadline) await immediate();
    const closing: Promise<void>[] = [];
    for (const c of this.#conns) {
      if (c.socket.destroyed) {
        this.#conns.delete(c);
        continue;
      }
      if (c.chunks.length === 0) continue;
      if (c.end !== 'clean' || c.closing || timedOut) {
        this.#conns.delete(c);
        closing.push(new Promise((resolve) => (c.socket.destroyed ? resolve() : c.socket.once('close', () => resolve()))));
        c.socket.destroy();
      } else {
        c.chunks = [];
        c.answered = 0;
        c.seqs = [];
        c.first = Infinity;
      }
    }
    await Promise.all(closing);
    if (closing.length > 0) await sleep(timedOut ? 20 : 2); // let the proxy see the close before the next case
    this.#seq = 0;
    this.#order = 0;
  }

  /** Closes every connection and the listener. */
  close(): Promise<void> {
    for (const c of this.#conns) c.socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

/** The response-side upstream: answers each request head with the current case's bytes. */
export class RespondingUpstream {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #case: ResponseCase | undefined;
  #sent = false;
  port = 0;

  constructor() {
    this.#server = net.createServer((socket) => this.#accept(socket));
  }

  /** Starts listening on a free loopback port. */
  async start(): Promise<void> {
    this.port = await listen(this.#server);
  }

  /** True once the current case's bytes have all been written (once). */
  get sent(): boolean {
    return this.#sent;
  }

  /** Answers with `c` from now on. */
  beginCase(c: ResponseCase): void {
    this.#case = c;
    this.#sent = false;
  }

  #accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    this.#sockets.add(socket);
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        buf = buf.slice(end + 4);
        const c = this.#case;
        if (c !== undefined) void this.#send(socket, c);
      }
    });
    socket.on('end', () => socket.end());
    socket.on('error', () => {});
    socket.on('close', () => this.#sockets.delete(socket));
  }

  async #send(socket: net.Socket, c: ResponseCase): Promise<void> {
    if (!(await writeSplit(socket, c.bytes, c.splits, c.pauseMs))) return;
    if (c.close && !socket.destroyed) socket.end();
    if (this.#case === c) this.#sent = true;
  }

  /** Ends the case: closes every connection unless the response was clean and kept alive. */
  async endCase(keep: boolean): Promise<void> {
    this.#case = undefined;
    if (keep) return;
    const closing = [...this.#sockets].map((s) => new Promise<void>((resolve) => (s.destroyed ? resolve() : (s.once('close', () => resolve()), s.destroy()))));
    await Promise.all(closing);
    if (closing.length > 0) await sleep(2);
  }

  /** Closes every connection and the listener. */
  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
