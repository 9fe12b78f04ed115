/**
 * The real host probe: is a TCP port already taken on this machine? Answered by trying to bind
 * it, the same thing the engine will do when it publishes the port, then letting it go at once.
 */
import { createServer } from 'node:net';
import { DepadError } from '../errors.ts';

/** What one bind attempt found. */
type BindOutcome = 'free' | 'taken' | 'no-family';

/** Errors meaning "someone else has it, or we may not have it": the port is not usable. */
const TAKEN_CODES = new Set(['EADDRINUSE', 'EACCES', 'EPERM']);

/** Errors from binding `::` that mean the host has no (usable) IPv6: nothing to check there. */
const NO_IPV6_CODES = new Set(['EAFNOSUPPORT', 'EADDRNOTAVAIL', 'EPROTONOSUPPORT', 'EINVAL']);

/**
 * True when TCP `port` is open (listened on) or otherwise unusable on this host: binding
 * `0.0.0.0:port` fails with EADDRINUSE or EACCES, or, where the host has IPv6, binding
 * `[::]:port` (IPv6 only) does. Both binds run at once and each server is closed before this
 * resolves, so no socket outlives the call. Any other bind error rejects with `DEPAD_INTERNAL`
 * rather than guessing; a port outside 1–65535 also rejects with `DEPAD_INTERNAL`.
 */
export async function isPortOpenOnHost(port: number): Promise<boolean> {
  if (!Number.isSafeInteger(port) || port < 1 || port > 65535) {
    throw new DepadError('DEPAD_INTERNAL', `cannot probe host port ${String(port)}: not a port number`);
  }
  const [v4, v6] = await Promise.all([tryBind(port, '0.0.0.0', false), tryBind(port, '::', true)]);
  return v4 === 'taken' || v6 === 'taken';
}

/** Binds `host:port`, closes again, and reports what happened. */
function tryBind(port: number, host: string, ipv6Only: boolean): Promise<BindOutcome> {
  return new Promise<BindOutcome>((resolve, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      // A failed listen() has already closed and dropped its handle: nothing to release here.
      const code = error.code ?? '';
      if (TAKEN_CODES.has(code)) resolve('taken');
      else if (ipv6Only && NO_IPV6_CODES.has(code)) resolve('no-family');
      else {
        reject(
          new DepadError('DEPAD_INTERNAL', `cannot probe host port ${port} on ${host}: ${code || error.message}`, {
            cause: error,
            details: { port, host, errno: code },
          }),
        );
      }
    });
    server.once('listening', () => {
      server.close(() => resolve('free'));
    });
    server.listen({ port, host, ipv6Only, exclusive: true });
  });
}
