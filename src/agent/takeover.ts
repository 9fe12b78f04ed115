/**
 * An agent restart, the new process's side (handover.ts is the old one's, and has the steps).
 * Started by the old agent with DEPAD_AGENT_HANDOVER=1 and an IPC channel: it says `hello` once
 * its code is loaded, receives every listening socket, starts its proxy on them (`serving`), waits
 * until the old process has released the state, then runs the rest of the agent on the inherited
 * API sockets and says `ready`. A failure on the way is reported to the old process, which keeps
 * serving when it comes before `serving`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DepadError } from '../errors.ts';
import { stateDir } from '../home.ts';
import type { Logger } from '../logger.ts';
import type { InheritedListeners, ListenHandle, RouteHandover } from '../../proxy/index.ts';
import { EMPTY_SNAPSHOT, parseSnapshot } from '../../proxy/routes.ts';
import { HANDOVER_ENV } from './handover.ts';
import type { ListenerRole, ToNew, ToOld } from './handover.ts';

/** What `startAgent` takes over: the sockets, and the two moments it tells the old process about. */
export interface Inheritance {
  proxy: InheritedListeners;
  /** The API's HTTPS socket and its unix socket. */
  api: ListenHandle;
  local: ListenHandle;
  /** Tells the old process the proxy serves; resolves once it has released the state (or is gone). */
  serving(): Promise<void>;
}

/** The new process's end of a handover. */
export interface Takeover {
  /** The code is loaded: the old process may send the sockets. */
  hello(): void;
  /** Resolves with every socket once they all came. */
  inheritance(): Promise<Inheritance>;
  /** The agent runs here now (the pid file is written). */
  ready(): void;
  /** Tells the old process why this one did not start. */
  failed(error: unknown): void;
}

/**
 * The takeover when this process was started by an agent restart (DEPAD_AGENT_HANDOVER=1 and an
 * IPC channel), else undefined. The variable is taken out of the environment either way.
 */
export function startTakeover(log: Logger, home: string): Takeover | undefined {
  const requested = process.env[HANDOVER_ENV] === '1';
  delete process.env[HANDOVER_ENV];
  return requested && process.send !== undefined ? acceptTakeover(log, home) : undefined;
}

/**
 * Closes the descriptors of the state's files this process inherited: LevelDB opens them without
 * close-on-exec, so every restart would pass them on to the next process. Before the store opens
 * here (closing any descriptor of LOCK drops this process's lock on it). Linux (/proc) only.
 */
function closeInheritedStateFiles(home: string, log: Logger): void {
  const dir = `${stateDir(home)}${path.sep}`;
  let closed = 0;
  let fds: string[];
  try {
    fds = fs.readdirSync('/proc/self/fd');
  } catch {
    return;
  }
  for (const fd of fds) {
    try {
      if (!fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)) continue;
      fs.closeSync(Number(fd));
      closed++;
    } catch {
      // gone meanwhile, or not a link
    }
  }
  if (closed > 0) log.debug({ closed }, 'agent restart: closed the state files inherited from the old agent');
}

/** Listens on the IPC channel for the old process's messages. */
function acceptTakeover(log: Logger, home: string): Takeover {
  const send = (message: ToOld) => {
    if (process.connected) process.send?.(message);
  };
  const handles = new Map<string, ListenHandle>();
  let released!: () => void;
  const releasedP = new Promise<void>((resolve) => (released = resolve));
  let routes!: (handover: RouteHandover) => void;
  const routesP = new Promise<RouteHandover>((resolve) => (routes = resolve));
  let all!: (count: number) => void;
  let gone!: (error: Error) => void;
  const allP = new Promise<number>((resolve, reject) => ((all = resolve), (gone = reject)));
  allP.catch(() => {});
  process.on('message', (message: ToNew, handle: unknown) => {
    if (message.t === 'listener' && handle) handles.set(key(message.role, message.port), handle as ListenHandle);
    else if (message.t === 'listeners') all(message.count);
    else if (message.t === 'routes') routes({ snapshot: parseSnapshot({ version: message.snapshot.version, routes: message.snapshot.routes }), unhealthy: message.unhealthy, ...(message.peers ? { peers: message.peers } : {}) });
    else if (message.t === 'released') released();
  });
  // The old process went away (it ended, or crashed): the state is free, its routes are on disk.
  process.once('disconnect', () => {
    gone(new DepadError('DEPAD_AGENT_UNAVAILABLE', 'the old agent went away before it handed over its listeners'));
    routes({ snapshot: EMPTY_SNAPSHOT, unhealthy: [] });
    released();
  });
  return {
    hello: () => send({ t: 'hello', pid: process.pid }),
    async inheritance() {
      const count = await allP;
      if (count !== handles.size) throw new DepadError('DEPAD_INTERNAL', `the old agent sent ${count} listeners, ${handles.size} came`);
      const take = (role: ListenerRole): ListenHandle => {
        const handle = handles.get(key(role));
        if (handle === undefined) throw new DepadError('DEPAD_INTERNAL', `the old agent sent no ${role} listener`);
        return handle;
      };
      const tcp = new Map<number, ListenHandle>();
      for (const [k, handle] of handles) if (k.startsWith('tcp:')) tcp.set(Number(k.slice(4)), handle);
      const https = handles.get(key('https'));
      log.info({ listeners: handles.size, tcp: [...tcp.keys()] }, 'agent restart: took over the listeners');
      return {
        proxy: { http: take('http'), ...(https ? { https } : {}), control: take('control'), tcp, routes: routesP },
        api: take('api'),
        local: take('local'),
        serving: async () => {
          send({ t: 'serving' });
          await releasedP;
          log.info({}, 'agent restart: the old agent released the state');
          closeInheritedStateFiles(home, log);
        },
      };
    },
    ready: () => {
      send({ t: 'ready', pid: process.pid });
      process.channel?.unref();
    },
    failed: (error) => {
      // Nothing it holds (inherited sockets among them) may keep this failed process alive.
      setTimeout(() => process.exit(), 2000).unref();
      const e = error instanceof DepadError ? error : undefined;
      const message = e?.message ?? (error instanceof Error ? `${error.name}: ${error.message}` : String(error));
      // Then the channel closes: it must not keep this failed process alive.
      if (process.connected) process.send?.({ t: 'failed', error: { code: e?.code ?? 'DEPAD_INTERNAL', message, ...(e?.hint ? { hint: e.hint } : {}) } } satisfies ToOld, () => void (process.connected && process.disconnect()));
    },
  };
}

function key(role: ListenerRole, port?: number): string {
  return port === undefined ? role : `${role}:${port}`;
}
