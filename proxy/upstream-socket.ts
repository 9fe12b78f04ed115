/**
 * Keep-alive connections to one upstream for HTTP forwarding. Each is read with `onread` into one
 * shared buffer (no stream machinery and no allocation per read: what must outlive a read is
 * copied). A connection serves one exchange at a time, its `user`; between exchanges it waits on
 * its upstream's idle stack until reused, closed by the upstream, or idle for IDLE_TIMEOUT_MS.
 */
import net from 'node:net';

/** What receives a connection's events while it serves an exchange. */
export interface SocketUser {
  /** Bytes read; `data` is the shared read buffer (copy what must outlive the call). Return false to stop reading until `resume()`. */
  onUpstreamData(data: Buffer): boolean;
  /** The upstream ended its side cleanly (EOF). */
  onUpstreamEnd(): void;
  /** The connection failed, or closed without EOF. */
  onUpstreamError(error: Error): void;
  /** What was written has been flushed (write backpressure released). */
  onUpstreamDrain(): void;
}

/** Where an idle connection goes back to, and leaves when it closes. */
export interface IdleHome {
  dropIdle(conn: UpstreamSocket): void;
}

/** How long an idle upstream connection is kept: below the 5 s keep-alive of Node's HTTP server, so the proxy closes first. */
export const IDLE_TIMEOUT_MS = 4000;

/** One read buffer for every upstream connection: reads are handled synchronously, one at a time. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** One connection to an upstream. */
export class UpstreamSocket {
  readonly socket: net.Socket;
  /** The exchange this connection serves, or null while idle. */
  user: SocketUser | null = null;
  /** Exchanges completed on it: above 0, a failure before any answer may be a stale keep-alive. */
  served = 0;
  /** When it went idle (ms since epoch). */
  idleSince = 0;
  readonly #home: IdleHome;

  constructor(host: string, port: number, home: IdleHome) {
    this.#home = home;
    this.socket = net.connect({
      host,
      port,
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array) => this.#onRead(n, buf as Buffer) },
    });
    this.socket.on('end', () => this.#ended(undefined));
    this.socket.on('error', (error) => this.#ended(error));
    this.socket.on('close', () => this.#ended(new Error('the upstream connection closed')));
    this.socket.on('drain', () => this.user?.onUpstreamDrain());
  }

  #onRead(n: number, buf: Buffer): boolean {
    const user = this.user;
    if (user === null) {
      // An idle connection has nothing to say: whatever came is a protocol error.
      this.destroy();
      return false;
    }
    return user.onUpstreamData(buf.subarray(0, n));
  }

  #ended(error: Error | undefined): void {
    const user = this.user;
    this.user = null;
    if (user === null) {
      this.#home.dropIdle(this);
      this.socket.destroy();
    } else if (error === undefined) user.onUpstreamEnd();
    else user.onUpstreamError(error);
  }

  /** True while it can carry a request. */
  get usable(): boolean {
    return this.socket.writable && !this.socket.readableEnded;
  }

  /** Starts reading again after `onUpstreamData` returned false. */
  resume(): void {
    if (!this.socket.destroyed) this.socket.resume();
  }

  /** Closes it at once; its user is not told. */
  destroy(): void {
    this.user = null;
    this.#home.dropIdle(this);
    this.socket.destroy();
  }
}
