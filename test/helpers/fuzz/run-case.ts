/**
 * Runs fuzz cases through the real proxy, in process: a lane is one proxy (from the proxy
 * directory under test: `FUZZ_PROXY_DIR`, default this repository's `proxy/`) on loopback with
 * two routes, `fuzz.test` to a recording upstream and `responses.fuzz.test` to a responding one.
 * Cases run one after another on a lane, so everything an upstream receives during a case
 * belongs to it. The client is a raw socket writing the case at its split points.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseRequests, parseResponse } from './reference.ts';
import type { RequestCase } from './requests.ts';
import type { ResponseCase } from './responses.ts';
import { RecordingUpstream, RespondingUpstream, steady, writeSplit } from './upstreams.ts';
import { clientFinals, requestVerdict, responseVerdict } from './verdict.ts';
import type { Expectation, Verdict } from './verdict.ts';

type ProxyModule = typeof import('../../../proxy/index.ts');

/** A request or response case. */
export type FuzzCase = RequestCase | ResponseCase;

/** The proxy directory under test: the option, else `FUZZ_PROXY_DIR`, else this repository's. */
export function proxyDir(option?: string): string {
  return path.resolve(option ?? process.env.FUZZ_PROXY_DIR ?? fileURLToPath(new URL('../../../proxy', import.meta.url)));
}

/** How long depad has, after the client's last byte (or its FIN), to answer or close. */
export const DEFAULT_BOUND_MS = 1000;
/** How long a client that is mid-message waits before it ends its side. */
const FIN_AFTER_MS = 40;
/** Rounds of upstream silence taken as "everything forwarded has arrived". */
const QUIET_TURNS = 3;

const noop = (): void => {};
const silent = { debug: noop, info: noop, warn: noop, error: noop };

/** One proxy with its upstreams. */
export interface Lane {
  readonly port: number;
  readonly recorder: RecordingUpstream;
  readonly responder: RespondingUpstream;
  /** Milliseconds depad has to answer or close. */
  boundMs: number;
  close(): Promise<void>;
}

/** Starts a lane; `close()` stops everything it started (also after a failure part-way). */
export async function startLane(options: { proxyDir?: string; boundMs?: number } = {}): Promise<Lane> {
  const dir = proxyDir(options.proxyDir);
  const mod = (await import(pathToFileURL(path.join(dir, 'index.ts')).href)) as ProxyModule;
  const recorder = new RecordingUpstream();
  const responder = new RespondingUpstream();
  const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-fuzz-'));
  let handle: Awaited<ReturnType<ProxyModule['startProxy']>> | undefined;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      await handle?.close().catch(noop);
      await Promise.all([recorder.close(), responder.close()]);
      await fs.rm(stateDir, { recursive: true, force: true });
    })());
  try {
    await Promise.all([recorder.start(), responder.start()]);
    handle = await mod.startProxy({ stateDir, httpPort: 0, httpHost: '127.0.0.1', tcpHost: '127.0.0.1', logger: silent, closeTimeoutMs: 500 });
    const route = (service: string, hosts: string[], port: number) => ({
      id: `fuzz/${service}`,
      deployment: 'fuzz',
      service,
      kind: 'http' as const,
      hosts,
      upstreams: [{ host: '127.0.0.1', port, instance: `fuzz-${service}` }],
    });
    await new mod.ProxyClient(mod.proxyPaths(stateDir)).setDeploymentRoutes('fuzz', [route('requests', ['fuzz.test'], recorder.port), route('responses', ['responses.fuzz.test'], responder.port)]);
  } catch (error) {
    await close();
    throw error;
  }
  return { port: handle.httpPort, recorder, responder, boundMs: options.boundMs ?? DEFAULT_BOUND_MS, close };
}

/**
 * Time during which this process could run: wall time, with each stall of the event loop (CPU
 * starvation by other processes, a burst of work here) counted as at most STALL_MS. Bounds are
 * measured with it, so that a busy machine does not turn into late answers.
 */
const STALL_MS = 25;
let loopMs = 0;
let loopLast = performance.now();
let loopTimer: NodeJS.Timeout | undefined;
let loopUsers = 0;

function loopTick(): number {
  const now = performance.now();
  loopMs += Math.min(now - loopLast, STALL_MS);
  loopLast = now;
  return loopMs;
}

/** Resolves true once `done()` holds (checked by `poke` and every few ms), false after `ms` of loop time. */
function waitFor(done: () => boolean, ms: number, onPoke: (poke: () => void) => void): Promise<boolean> {
  if (done()) return Promise.resolve(true);
  if (loopUsers++ === 0) {
    loopLast = performance.now();
    loopTimer = setInterval(loopTick, 5);
  }
  const start = loopTick();
  return new Promise((resolve) => {
    const check = setInterval(() => {
      if (done()) finish(true);
      else if (loopTick() - start >= ms) finish(false);
    }, 5);
    const finish = (ok: boolean): void => {
      clearInterval(check);
      if (--loopUsers === 0) clearInterval(loopTimer);
      onPoke(noop);
      resolve(ok);
    };
    onPoke(() => {
      if (done()) finish(true);
    });
  });
}

/**
 * A loopback source address of its own for each client connection (127.1.0.1 upwards), so that
 * the X-Forwarded-For the proxy adds tells which connection a forwarded request came from.
 */
let clients = 0;
function clientAddress(): string {
  const n = clients++ % (62 * 256 * 254);
  return `127.${1 + Math.floor(n / (256 * 254))}.${Math.floor(n / 254) % 256}.${1 + (n % 254)}`;
}

/** A raw client connection: what it received, and a wait for a condition on it. */
class Client {
  readonly socket: net.Socket;
  #chunks: Buffer[] = [];
  #received: Buffer | undefined;
  closed = false;
  /** The proxy ended its side cleanly (FIN): a close-delimited body is complete only then, not on a reset. */
  ended = false;
  #wake: (() => void) | undefined;

  readonly address = clientAddress();

  constructor(port: number) {
    this.socket = net.connect({ port, host: '127.0.0.1', localAddress: this.address, noDelay: true });
    this.socket.on('data', (d: Buffer) => {
      this.#chunks.push(d);
      this.#received = undefined;
      this.#wake?.();
    });
    this.socket.on('error', noop);
    this.socket.on('end', () => (this.ended = true));
    this.socket.on('close', () => {
      this.closed = true;
      this.#wake?.();
    });
  }

  get received(): Buffer {
    this.#received ??= Buffer.concat(this.#chunks);
    return this.#received;
  }

  connected(): Promise<void> {
    return new Promise((resolve) => (this.socket.readyState === 'open' ? resolve() : this.socket.once('connect', () => resolve()).once('close', () => resolve())));
  }

  /** Writes `bytes` at `splits`, waiting `pauseMs` (or one turn) between writes. */
  async write(bytes: Buffer, splits: number[], pauseMs: number): Promise<void> {
    await writeSplit(this.socket, bytes, splits, pauseMs);
  }

  /** Resolves true once `done()` holds, false after `ms` (of loop time, see waitFor). */
  until(done: () => boolean, ms: number): Promise<boolean> {
    return waitFor(done, ms, (poke) => (this.#wake = poke));
  }

  /** Resolves once nothing came over `turns` rounds (see `steady`), at most `maxMs`. */
  steady(turns: number, maxMs = 200): Promise<void> {
    return steady(() => this.#chunks.length + (this.closed ? 0.5 : 0), turns, maxMs);
  }

  /** Resolves once nothing came for `quietMs` (or the connection closed), at most `ms`. */
  async quiet(quietMs: number, ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    while (!this.closed && performance.now() < deadline) {
      const before = this.#chunks.length;
      await sleep(quietMs);
      if (this.#chunks.length === before) return;
    }
  }
}

/** Runs a request case on `lane`. */
export async function runRequestCase(lane: Lane, c: RequestCase): Promise<Verdict> {
  const ref = await parseRequests(c.bytes);
  const methods = ref.messages.map((m) => m.method);
  const client = new Client(lane.port);
  let settled = false;
  try {
    await client.connected();
    await client.write(c.bytes, c.splits, c.pauseMs);
    let expectation: Expectation;
    if (ref.end === 'incomplete') {
      expectation = 'fin';
      if ((c.finMs ?? FIN_AFTER_MS) > 0) await client.until(() => client.closed, c.finMs ?? FIN_AFTER_MS);
      if (!client.closed) client.socket.end();
      settled = await client.until(() => client.closed, lane.boundMs);
    } else if (ref.end === 'error') {
      expectation = 'error';
      const need = ref.messages.filter((m) => m.complete).length;
      // A 4xx or a close; an answer that takes what the reference refused is reported apart.
      settled = await client.until(() => client.closed || clientFinals(client.received, methods, false).finals.filter((r) => r.complete).length > need, lane.boundMs);
    } else {
      expectation = 'answers';
      settled = await client.until(() => client.closed || clientFinals(client.received, methods, false).finals.filter((r) => r.complete).length >= ref.messages.length, lane.boundMs);
    }
    // Bytes still in flight to the upstream (a smuggled request), or to the client (an extra answer).
    await Promise.all([lane.recorder.quiet(QUIET_TURNS), client.closed ? undefined : client.steady(2)]);
    const forwarded = await Promise.all(lane.recorder.segments().map(async (s) => ({ bytes: s.bytes, seqs: s.seqs, parse: await parseRequests(s.bytes) })));
    return requestVerdict({ ref, bytes: c.bytes, forwarded, received: client.received, closed: client.closed, ended: client.ended, settled, expectation, clientAddress: client.address });
  } finally {
    client.socket.destroy();
    await lane.recorder.endCase(!settled);
  }
}

/** Runs a response case on `lane`. */
export async function runResponseCase(lane: Lane, c: ResponseCase): Promise<Verdict> {
  const ref = await parseResponse(c.bytes, c.method, c.close);
  lane.responder.beginCase(c);
  const client = new Client(lane.port);
  let keep = false;
  try {
    await client.connected();
    await client.write(Buffer.from(`${c.method} /fuzz HTTP/${c.version}\r\nHost: responses.fuzz.test\r\n\r\n`, 'latin1'), [], 0);
    // The bound runs from the upstream's last byte (its writes may be split over many turns).
    await client.until(() => lane.responder.sent || client.closed, lane.boundMs);
    const complete = (): boolean => client.closed || clientFinals(client.received, [c.method], false).finals.some((r) => r.complete);
    let settled: boolean;
    if (ref.end === 'incomplete') {
      await client.until(() => client.closed || client.received.length > 0, 60);
      await client.quiet(30, lane.boundMs);
      settled = true;
    } else {
      settled = await client.until(complete, lane.boundMs);
      if (settled && !client.closed) await client.steady(4); // a second response would come now
    }
    keep = ref.end === 'complete' && !ref.extra && !c.close;
    return responseVerdict({ ref, method: c.method, version: c.version, received: client.received, closed: client.closed, ended: client.ended, settled, upstreamClosed: c.close });
  } finally {
    client.socket.destroy();
    await lane.responder.endCase(keep);
  }
}

/** Runs a case of either side. */
export function runCase(lane: Lane, c: FuzzCase): Promise<Verdict> {
  return c.side === 'request' ? runRequestCase(lane, c) : runResponseCase(lane, c);
}
