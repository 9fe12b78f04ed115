/**
 * Opening listeners. TCP: resolves with the port actually bound. Unix sockets for local control
 * (the proxy's control channel, the agent's API): a socket file left by a process that died is
 * replaced, one that answers means another process runs, and the socket is made mode 0660 (owner
 * and group: access is by file permission). A unix socket is bound under a temporary name and
 * linked into place, so closing the listener never removes the file (libuv unlinks the name it
 * bound): a listener handed to another process (agent restart) goes on answering at its path.
 * Listening sockets can be handed to another process (`listenerHandle`, `listenOnHandle`).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { DepadError } from '../src/errors.ts';

/**
 * The kernel socket of a listening server (Node's TCP or Pipe handle), as child_process IPC sends
 * it to another process (`child.send(message, handle)`), which listens on it with `listenOnHandle`.
 */
export type ListenHandle = object & { readonly fd?: number };

/**
 * Listens on `host:port` (0 picks a port); resolves with the port bound. A port another process
 * holds is DEPAD_PORT_IN_USE, a privileged port without the right is DEPAD_USAGE, both naming it.
 */
export function listenTcp(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const fail = (error: NodeJS.ErrnoException) => {
      const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
      if (error.code === 'EADDRINUSE') reject(new DepadError('DEPAD_PORT_IN_USE', `${where} is already in use by another process`, { cause: error, hint: `stop it (ss -ltnp 'sport = :${port}' shows which), or choose another port` }));
      else if (error.code === 'EACCES') reject(new DepadError('DEPAD_USAGE', `no permission to listen on ${where}`, { cause: error, hint: 'ports below 1024 need root (or CAP_NET_BIND_SERVICE); or choose a port from 1024 up' }));
      else if (error.code === 'EADDRNOTAVAIL') reject(new DepadError('DEPAD_USAGE', `${host} is not an address of this host`, { cause: error, hint: 'choose one of its addresses, or 0.0.0.0 for all' }));
      else reject(error);
    };
    server.once('error', fail);
    server.listen({ port, host }, () => {
      server.off('error', fail);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** True when something accepts connections on the unix socket `socketPath`. */
export function socketAnswers(socketPath: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Removes a stale socket file; DEPAD_STATE_LOCKED when `what` (another process) answers on it. */
export async function claimSocket(socketPath: string, what: string): Promise<void> {
  const exists = await fs.lstat(socketPath).then(
    () => true,
    () => false,
  );
  if (!exists) return;
  if (await socketAnswers(socketPath)) {
    throw new DepadError('DEPAD_STATE_LOCKED', `another ${what} is running (it answers on ${socketPath})`, {
      hint: 'stop it first, or give this one another state directory',
    });
  }
  await fs.rm(socketPath, { force: true });
}

/**
 * Listens on `socketPath` (already claimed) and makes it mode 0660, with no moment of wider access.
 * Bound under a temporary name in the same directory, then linked to `socketPath` (which fails if
 * another process put a socket there meanwhile: DEPAD_STATE_LOCKED). The file stays when the
 * listener closes: the owner removes it (`removeUnixSocket`) unless it handed the listener over.
 */
export async function listenOnUnixSocket(server: Server, socketPath: string): Promise<void> {
  const temporary = `${socketPath}.${process.pid}-${randomBytes(4).toString('hex')}`;
  let oldMask: number | undefined;
  try {
    oldMask = process.umask(0o117);
  } catch {
    // worker threads cannot change the umask; chmod below still applies
  }
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(temporary, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    if (oldMask !== undefined) process.umask(oldMask);
  }
  try {
    await fs.chmod(temporary, 0o660);
    await fs.link(temporary, socketPath);
  } catch (error) {
    server.close();
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new DepadError('DEPAD_STATE_LOCKED', `another process made ${socketPath} while this one started`, { cause: error, hint: 'stop it first, or give this one another state directory' });
    }
    throw error;
  } finally {
    await fs.rm(temporary, { force: true });
  }
}

/** Removes the socket file of a listener this process owns and did not hand over (before closing it). */
export async function removeUnixSocket(socketPath: string): Promise<void> {
  await fs.rm(socketPath, { force: true });
}

/** The kernel socket `server` listens on, to hand to another process; undefined when it does not listen. */
export function listenerHandle(server: Server): ListenHandle | undefined {
  return (server as unknown as { _handle?: ListenHandle | null })._handle ?? undefined;
}

/** Listens on a socket handed over by another process (see `listenerHandle`); resolves with its TCP port (0 for a unix socket). */
export function listenOnHandle(server: Server, handle: ListenHandle): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(handle, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : 0);
    });
  });
}
