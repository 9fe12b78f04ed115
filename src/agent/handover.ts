/**
 * An agent restart that drops nothing, the old process's side (`depad agent restart`,
 * `POST /v1/agent/restart`). The old agent starts the new one (the same node binary, arguments
 * and environment; the code now on disk) with an IPC channel and hands it every listening socket:
 * the proxy's HTTP and HTTPS listeners, each TCP route's, the proxy's control channel, the API's
 * HTTPS port and its unix socket. Both processes then accept from the same kernel sockets, so no
 * connection is refused. Steps (takeover.ts is the other side):
 *
 *   1. spawn; the new process loads its code and says `hello` (bad code fails here: nothing changed);
 *   2. once no operation runs, new ones are held (they wait); the sockets are sent;
 *   3. the new proxy serves on them (`serving`): from here the new process is the agent;
 *   4. the old one stops accepting, sends its last routes (the new control channel then listens),
 *      refuses the held operations (they did nothing; the new agent takes the next ones), stops
 *      its reconciler, health checks and ACME, and drains: responses say `Connection: close`,
 *      idle keep-alive connections close after a grace;
 *   5. once no HTTP exchange is left, the store closes (`released`); the new agent takes the
 *      state, recovers, starts, writes the pid file (`ready`);
 *   6. the restart answers; WebSockets and TCP connections stay on the old process until they end
 *      or the drain deadline; then it exits.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import type { Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ListenHandle, ProxyHandle, RouteSnapshot } from '../../proxy/index.ts';
import type { PeerTable } from '../../proxy/peer-routes.ts';
import { listenerHandle } from '../../proxy/listeners.ts';
import { DepadError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { OperationGate } from './operation-gate.ts';

/** Set in the new process's environment: it takes over instead of binding. */
export const HANDOVER_ENV = 'DEPAD_AGENT_HANDOVER';
/** Default time WebSockets and TCP connections may stay on the old process. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
/** How long the new process may take to load its code. */
const HELLO_TIMEOUT_MS = 60_000;
/** How long its proxy may take to serve on the sockets, and the rest of the agent to be ready. */
const SERVING_TIMEOUT_MS = 30_000;
const READY_TIMEOUT_MS = 60_000;
/** How long API requests under way may take before the old agent releases the state anyway. */
const API_DRAIN_MS = 2000;
/** The endpoint that asks for a restart. */
const RESTART_PATH = '/v1/agent/restart';

/** Which listener a handed-over socket is. */
export type ListenerRole = 'http' | 'https' | 'control' | 'tcp' | 'api' | 'local';

/**
 * Messages from the old process to the new one. An upgrade is an older agent handing over to newer
 * code: change these only in ways the next version still understands from the one before.
 */
export type ToNew =
  | { t: 'listener'; role: ListenerRole; port?: number }
  | { t: 'listeners'; count: number }
  | { t: 'routes'; snapshot: RouteSnapshot; unhealthy: string[]; peers?: PeerTable }
  | { t: 'released' };

/** Messages from the new process to the old one. */
export type ToOld = { t: 'hello'; pid: number } | { t: 'serving' } | { t: 'ready'; pid: number } | { t: 'failed'; error: { code: string; message: string; hint?: string } };

/** An HTTP(S) server of the API. */
export type ApiServer = Server & { closeAllConnections(): void; closeIdleConnections(): void };

/** What a handover needs of the running agent (agent.ts). */
export interface HandoverSource {
  log: Logger;
  proxy: ProxyHandle;
  /** The API's HTTPS server and its unix-socket server. */
  api: ApiServer;
  local: ApiServer;
  gate: OperationGate;
  /** Holds new operations (they wait at the gate) once none runs. */
  holdOperations(): Promise<void>;
  /** Stops watching the engine and the instances (reconciler, health checks) and ACME: the new agent does. */
  stopWatching(): Promise<void>;
  /** Flushes the audit log and closes the store (the state lock). */
  releaseState(): Promise<void>;
}

/** Options of a restart. */
export interface RestartOptions {
  /** How long WebSockets and TCP connections may stay on the old process (default 30 s). */
  drainTimeoutMs?: number;
}

/** What a restart answers. */
export interface RestartResult {
  oldPid: number;
  newPid: number;
  /** From the request until the new agent was ready. */
  ms: number;
  drainTimeoutMs: number;
}

/**
 * The restarts of one agent, one at a time. `retired` resolves once this process handed over and
 * drained: with true when the new agent started, false when it failed after taking the listeners
 * (this process then exits non-zero, so that a supervisor starts the agent again).
 */
export class Handover {
  readonly #source: HandoverSource;
  #running: Promise<RestartResult> | undefined;
  #handedOver = false;
  readonly retired: Promise<boolean>;
  #retire!: (started: boolean) => void;
  /** API requests being answered (restart requests aside): the store stays open for them. */
  #requests = 0;

  constructor(source: HandoverSource) {
    this.#source = source;
    this.retired = new Promise((resolve) => (this.#retire = resolve));
    for (const server of [source.api, source.local]) {
      server.on('request', (req: { url?: string }, res: { once(event: 'close', fn: () => void): void }) => {
        if (req.url === RESTART_PATH) return;
        this.#requests++;
        res.once('close', () => this.#requests--);
      });
    }
  }

  /** True once the new process serves: this one only drains. */
  get handedOver(): boolean {
    return this.#handedOver;
  }

  /** Resolves once no restart is under way (however it ended). */
  async settled(): Promise<void> {
    await this.#running?.catch(() => {});
  }

  /** Restarts the agent into a new process; joins a restart already under way. */
  restart(options: RestartOptions = {}): Promise<RestartResult> {
    if (this.#handedOver) return Promise.reject(new DepadError('DEPAD_AGENT_UNAVAILABLE', 'this agent has already handed over to a new process', { hint: 'run the command again: the new agent answers it' }));
    this.#running ??= this.#run(options).finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #run(options: RestartOptions): Promise<RestartResult> {
    const { log, proxy, gate } = this.#source;
    const started = performance.now();
    const drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    const output = outputMark();
    const next = new NextProcess(spawnNext(), log);
    log.info({ pid: next.pid }, 'agent restart: started the new process');
    try {
      await next.expect('hello', HELLO_TIMEOUT_MS);
      await this.#source.holdOperations();
      await next.sendListeners(this.#handles());
      await next.expect('serving', SERVING_TIMEOUT_MS);
    } catch (error) {
      gate.open();
      next.kill();
      throw restartFailed(error, next, output);
    }
    // The new process serves: from here it is the agent.
    this.#handedOver = true;
    gate.refuse(new DepadError('DEPAD_AGENT_UNAVAILABLE', 'the agent restarted before this operation began: nothing was done', { hint: 'run the command again: the new agent takes it' }));
    const retired = await proxy.retire({ drainTimeoutMs });
    next.send({ t: 'routes', snapshot: retired.snapshot, unhealthy: retired.unhealthy, ...(retired.peers ? { peers: retired.peers } : {}) });
    const apiClosed = [this.#source.api, this.#source.local].map(stopAccepting);
    log.info({ pid: next.pid }, 'agent restart: the new process serves; draining');
    await this.#source.stopWatching();
    await retired.http;
    // API requests the old agent took finish first (a stream such as logs -f is cut after 2 s).
    for (const deadline = Date.now() + API_DRAIN_MS; this.#requests > 0 && Date.now() < deadline; ) await sleep(25);
    await this.#source.releaseState();
    next.send({ t: 'released' });
    let ready: Extract<ToOld, { t: 'ready' }>;
    try {
      ready = await next.expect('ready', READY_TIMEOUT_MS);
    } catch (error) {
      log.error({ pid: next.pid, err: (error as Error).message }, 'agent restart: the new process took the listeners but did not start');
      void this.#finish(retired.done, apiClosed, next, false);
      throw restartFailed(error, next, output, true);
    }
    const ms = Math.round(performance.now() - started);
    log.info({ oldPid: process.pid, newPid: ready.pid, ms }, 'agent restart: the new agent is ready');
    void this.#finish(retired.done, apiClosed, next, true);
    return { oldPid: process.pid, newPid: ready.pid, ms, drainTimeoutMs };
  }

  /** Every listening socket, in the order the new process takes them. */
  #handles(): [Extract<ToNew, { t: 'listener' }>, ListenHandle][] {
    const { proxy, api, local } = this.#source;
    const l = proxy.listeners();
    const own = (server: Server, what: string): ListenHandle => {
      const handle = listenerHandle(server);
      if (handle === undefined) throw new DepadError('DEPAD_INTERNAL', `the agent's ${what} does not listen`);
      return handle;
    };
    return [
      [{ t: 'listener', role: 'http' }, l.http],
      ...(l.https ? [[{ t: 'listener', role: 'https' }, l.https] as [Extract<ToNew, { t: 'listener' }>, ListenHandle]] : []),
      ...[...l.tcp].map(([port, handle]) => [{ t: 'listener', role: 'tcp', port }, handle] as [Extract<ToNew, { t: 'listener' }>, ListenHandle]),
      [{ t: 'listener', role: 'control' }, l.control],
      [{ t: 'listener', role: 'api' }, own(api, 'HTTPS API')],
      [{ t: 'listener', role: 'local' }, own(local, 'local socket')],
    ];
  }

  /** After the answer: the long-lived connections drain, the API connections end, the process may exit. */
  async #finish(done: Promise<number>, apiClosed: Promise<void>[], next: NextProcess, started: boolean): Promise<void> {
    const destroyed = await done.catch(() => 0);
    await Promise.race([Promise.all(apiClosed), sleep(2000)]);
    this.#source.api.closeAllConnections();
    this.#source.local.closeAllConnections();
    next.disconnect();
    this.#source.log.info({ destroyed }, 'agent restart: drained; this process ends');
    this.#retire(started);
  }
}

/**
 * Stops an API server accepting (the new process holds the socket) without ending the connections
 * it has: http.Server.close() would also end the idle ones at once, among them any whose request
 * is still unread. Answers from now on say `Connection: close`; idle connections end after 1 s.
 * Resolves once every connection is closed.
 */
function stopAccepting(server: ApiServer): Promise<void> {
  server.prependListener('request', (_req: unknown, res: { shouldKeepAlive: boolean }) => (res.shouldKeepAlive = false));
  const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
  setTimeout(() => server.closeIdleConnections(), 1000).unref();
  return closed;
}

/** Spawns the next agent: this process's node, node options, script and arguments; detached; same output. */
function spawnNext(): ChildProcess {
  return spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [HANDOVER_ENV]: '1' },
  });
}

/** The new process, seen from the old: its messages in order, its exit. */
class NextProcess {
  readonly #child: ChildProcess;
  readonly #log: Logger;
  readonly #inbox: ToOld[] = [];
  #wake: (() => void) | undefined;
  exit: { code: number | null; signal: string | null } | undefined;
  spawnError: Error | undefined;
  /** What it reported when it failed. */
  reported: Extract<ToOld, { t: 'failed' }>['error'] | undefined;

  constructor(child: ChildProcess, log: Logger) {
    this.#child = child;
    this.#log = log;
    child.on('message', (message: ToOld) => {
      if (message.t === 'failed') this.reported = message.error;
      this.#inbox.push(message);
      this.#wake?.();
    });
    child.once('exit', (code, signal) => {
      this.exit = { code, signal };
      this.#wake?.();
    });
    child.once('error', (error) => {
      this.spawnError = error;
      this.#wake?.();
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Waits for message `t`; rejects when the process failed, exited or took longer than `timeoutMs`. */
  async expect<T extends ToOld['t']>(t: T, timeoutMs: number): Promise<Extract<ToOld, { t: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.#inbox.findIndex((m) => m.t === t || m.t === 'failed');
      if (i >= 0) {
        const [message] = this.#inbox.splice(i, 1);
        if (message?.t === 'failed') throw new Error(message.error.message);
        return message as Extract<ToOld, { t: T }>;
      }
      if (this.spawnError) throw this.spawnError;
      if (this.exit) throw new Error(`it exited (${this.exit.signal ?? `code ${this.exit.code}`}) before it was ${t === 'hello' ? 'loaded' : t}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`it was not ${t === 'hello' ? 'loaded' : t} within ${Math.round(timeoutMs / 1000)} s`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => (clearTimeout(timer), resolve());
      });
      this.#wake = undefined;
    }
  }

  /** Sends every listening socket, then their count. */
  async sendListeners(handles: [Extract<ToNew, { t: 'listener' }>, ListenHandle][]): Promise<void> {
    for (const [message, handle] of handles) await this.#send(message, handle);
    await this.#send({ t: 'listeners', count: handles.length });
  }

  /** Sends a message (a lost one shows as a missing answer). */
  send(message: ToNew): void {
    this.#send(message).catch((error: unknown) => this.#log.warn({ err: (error as Error).message, message: message.t }, 'agent restart: message to the new process not sent'));
  }

  #send(message: ToNew, handle?: ListenHandle): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.#child.connected) return reject(new Error('its IPC channel is closed'));
      this.#child.send(message, handle as never, (error) => (error ? reject(error) : resolve()));
    });
  }

  kill(): void {
    if (this.exit === undefined) this.#child.kill('SIGKILL');
    this.disconnect();
  }

  disconnect(): void {
    if (this.#child.connected) this.#child.disconnect();
    this.#child.unref();
  }
}

/** Where this process's stderr is a file (the --daemon log): its name and size now, to quote what the new process adds. */
function outputMark(): { file: string; size: number } | undefined {
  try {
    const file = fs.readlinkSync('/proc/self/fd/2');
    const stat = fs.statSync(file);
    return stat.isFile() ? { file, size: stat.size } : undefined;
  } catch {
    return undefined;
  }
}

/** The last lines the new process wrote to the shared log file, when there is one. */
function outputSince(mark: { file: string; size: number } | undefined): string | undefined {
  if (mark === undefined) return undefined;
  try {
    const text = fs.readFileSync(mark.file).subarray(mark.size).toString('utf8');
    const lines = text.trim().split('\n').filter((line) => line !== '' && !line.startsWith('{"listening"'));
    return lines.length === 0 ? undefined : lines.slice(-8).join('\n');
  } catch {
    return undefined;
  }
}

/** DEPAD_AGENT_RESTART_FAILED with what the new process said (the error it reported, else its last output). */
function restartFailed(error: unknown, next: NextProcess, mark: { file: string; size: number } | undefined, late = false): DepadError {
  const reported = next.reported;
  const output = reported ? undefined : outputSince(mark);
  const why = reported ? `${reported.message}${reported.hint ? ` (hint: ${reported.hint})` : ''}` : `${(error as Error).message ?? String(error)}${output ? `; its output:\n${output}` : ''}`;
  const who = `the new agent (pid ${next.pid ?? '?'})`;
  const message = late ? `${who} took over the listeners but did not start: ${why}` : `${who} did not start, this one (pid ${process.pid}) keeps serving: ${why}`;
  return new DepadError('DEPAD_AGENT_RESTART_FAILED', message, {
    cause: error,
    hint: late ? 'see the agent log, then start the agent again (depad agent --daemon, or systemctl restart depad-agent)' : 'fix what the new process reports (the code on disk, its options), then run depad agent restart again',
    details: { oldPid: process.pid, ...(next.pid === undefined ? {} : { newPid: next.pid }), ...(reported ? { newError: reported } : {}) },
  });
}
