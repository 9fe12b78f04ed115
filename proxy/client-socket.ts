/**
 * Client sockets of the plain HTTP listener, read into one shared buffer. `net.Server` has no
 * `onread` option, so every read of an accepted socket allocates a buffer and goes through the
 * stream machinery; here the accepted socket (paused on connect) gives its handle to a new
 * `net.Socket` made with `onread`, as upstream sockets are (upstream-socket.ts). What a read
 * delivers is valid only during the callback: whatever outlives it must be copied (`owned`).
 */
import net from 'node:net';

/** The buffer every adopted client socket reads into (reads are handled one at a time). */
const CLIENT_READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** True when `buf` is a view of the shared read buffer (valid only until the next read). */
export function isShared(buf: Buffer): boolean {
  return buf.buffer === CLIENT_READ_BUFFER.buffer;
}

/** `buf`, copied when it is a view of the shared read buffer. */
export function owned(buf: Buffer): Buffer {
  return buf.buffer === CLIENT_READ_BUFFER.buffer ? Buffer.from(buf) : buf;
}

/**
 * A socket on `accepted`'s connection whose reads call `onRead(chunk)` with a view of the shared
 * buffer (return false to stop reading until `resume()`). `accepted` must have been paused on
 * connect; it is retired without closing the connection. Undefined when its handle cannot be
 * taken (then use `accepted` as it is).
 */
export function adoptSharedReads(accepted: net.Socket, onRead: (chunk: Buffer) => boolean): net.Socket | undefined {
  const holder = accepted as unknown as { _handle: unknown };
  const handle = holder._handle;
  if (handle === null || handle === undefined || accepted.destroyed) return undefined;
  holder._handle = null;
  accepted.destroy();
  return new net.Socket({
    handle,
    allowHalfOpen: true,
    onread: { buffer: CLIENT_READ_BUFFER, callback: (n: number, buf: Uint8Array) => onRead((buf as Buffer).subarray(0, n)) },
  } as unknown as net.SocketConstructorOpts);
}
