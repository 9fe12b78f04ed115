/**
 * A tunnel: after `101 Switching Protocols` (WebSocket), bytes flow both ways between the client
 * and the upstream as they are, with backpressure each way. An end on one side is passed on to the
 * other; an error or close on one side destroys the other. Tracked on its upstream as a
 * `websocket` until both are closed, so a drain waits for it (or ends it).
 */
import type { Socket } from 'node:net';
import { SocketPair } from './upstreams.ts';
import type { UpstreamEntry } from './upstreams.ts';
import type { SocketUser, UpstreamSocket } from './upstream-socket.ts';

/** Both connections of an upgraded request. */
export class Tunnel implements SocketUser {
  readonly #client: Socket;
  readonly #up: UpstreamSocket;
  readonly #entry: UpstreamEntry;
  readonly #pair: SocketPair;
  #clientWaits = false;

  constructor(entry: UpstreamEntry, client: Socket, up: UpstreamSocket) {
    this.#entry = entry;
    this.#client = client;
    this.#up = up;
    this.#pair = new SocketPair('websocket', client, up.socket);
    entry.add(this.#pair);
    up.user = this;
    up.socket.once('close', () => this.#closed());
  }

  /** Bytes from the client. */
  fromClient(chunk: Buffer): void {
    if (!this.#up.socket.write(chunk)) this.#client.pause();
  }

  /** The client ended its side. */
  clientEnded(): void {
    if (!this.#up.socket.destroyed) this.#up.socket.end();
  }

  /** The client's connection closed. */
  clientClosed(): void {
    this.#up.socket.destroySoon();
    this.#closed();
  }

  /** The client can take more. */
  clientDrained(): void {
    if (!this.#clientWaits) return;
    this.#clientWaits = false;
    this.#up.resume();
  }

  onUpstreamData(data: Buffer): boolean {
    const flushed = this.#client.write(Buffer.from(data));
    if (!flushed) this.#clientWaits = true;
    return flushed;
  }

  onUpstreamDrain(): void {
    this.#client.resume();
  }

  onUpstreamEnd(): void {
    this.#client.end();
  }

  onUpstreamError(): void {
    this.#client.destroySoon();
    this.#closed();
  }

  #closed(): void {
    this.#entry.release(this.#pair);
  }
}
