/**
 * Helpers for the hostile-client tests of the proxy: raw client sockets (that trickle, or never
 * read until told), the real `depad proxy` process on its own home with its resident memory, a
 * probe that times a normal request, and a reader of pipelined responses. Everything started
 * here is closed in t.teardown, pass or fail.
 */
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEPAD, testPorts } from './harness.ts';
import { until } from './proxy-fixtures.ts';
import { ProxyClient, proxyPaths } from '../../proxy/index.ts';
import type { Route } from '../../proxy/index.ts';
import { proxyStateDir } from '../../src/home.ts';

/** The slowest a normal request may be answered while a hostile client is at work (ms). */
export const PROMPT_MS = 250;

/** A raw client connection: write bytes, read what comes back (or not, until `read()`). */
export interface RawClient {
  socket: net.Socket;
  /** Everything received so far (latin1); empty for a client given a `sink`. */
  text(): string;
  /** Bytes received so far. */
  size(): number;
  /** Resolves once the received text matches `pattern` (fails after `timeoutMs`, default 5 s). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves once the connection closed. */
  closed: Promise<void>;
  /** When it closed (Date.now()), if it did. */
  closedAt(): number | undefined;
  /** Starts reading a client opened with `paused`; `sink` takes the bytes instead of `text()`. */
  read(sink?: (chunk: Buffer) => void): void;
}

/** Connects to `port` on loopback and writes `data`; with `paused`, nothing is read until `read()`. */
export async function rawClient(t: ExecutionContext, port: number, data?: string, options: { paused?: boolean } = {}): Promise<RawClient> {
  const socket = net.connect(port, '127.0.0.1');
  t.teardown(() => void socket.destroy());
  if (options.paused) socket.pause();
  let received = '';
  let size = 0;
  let closedAt: number | undefined;
  let reading = false;
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => ((closedAt = Date.now()), resolve())));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const read = (sink?: (chunk: Buffer) => void) => {
    if (reading) return;
    reading = true;
    socket.on('data', (d: Buffer) => {
      size += d.length;
      if (sink) sink(d);
      else received += d.toString('latin1');
    });
    socket.resume();
  };
  if (!options.paused) read();
  if (data !== undefined) socket.write(data, 'latin1');
  return {
    socket,
    text: () => received,
    size: () => size,
    closed,
    closedAt: () => closedAt,
    read,
    async waitFor(pattern, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(received)) {
        if (Date.now() > deadline) throw new Error(`no response matching ${pattern} in ${timeoutMs} ms; got ${JSON.stringify(received.slice(0, 200))}`);
        await sleep(5);
      }
      return received;
    },
  };
}

/** Writes `pieces` to the client one per `everyMs` (the first at once), until they run out or it closes. */
export function trickle(t: ExecutionContext, client: RawClient, pieces: readonly string[], everyMs: number): void {
  let i = 0;
  const tick = () => {
    const piece = pieces[i++];
    if (piece === undefined || client.socket.destroyed || client.closedAt() !== undefined) return void clearInterval(timer);
    client.socket.write(piece, 'latin1');
  };
  const timer = setInterval(tick, everyMs);
  t.teardown(() => clearInterval(timer));
  tick();
}

/** Resolves once every client closed, or after `ms`, whichever comes first. */
export async function closedWithin(clients: readonly RawClient[], ms: number): Promise<void> {
  await Promise.race([Promise.all(clients.map((c) => c.closed)), sleep(ms)]);
}

/** Times one GET with `host` on a new connection. */
export function probe(port: number, host: string): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/probe', headers: { host }, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('the probe got no answer in 5 s')));
    req.on('error', reject);
    req.end();
  });
}

/** Asserts that a normal request on another connection is answered with 200 within PROMPT_MS. */
export async function assertPrompt(t: ExecutionContext, port: number, host: string, during: string): Promise<void> {
  const { status, ms } = await probe(port, host);
  t.is(status, 200, `a normal request ${during}`);
  t.true(ms < PROMPT_MS, `a normal request ${during} took ${ms.toFixed(0)} ms (bound ${PROMPT_MS} ms)`);
}

/** Reads a stream of Content-Length responses: their statuses, `X-N` values and body bytes. */
export class ResponseReader {
  readonly statuses: number[] = [];
  readonly tags: string[] = [];
  #head = '';
  #bodyLeft = 0;

  /** Takes the next bytes received. */
  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#bodyLeft > 0) {
        const take = Math.min(this.#bodyLeft, chunk.length - at);
        this.#bodyLeft -= take;
        at += take;
        continue;
      }
      const seen = this.#head.length;
      this.#head += chunk.toString('latin1', at, Math.min(chunk.length, at + 16 * 1024));
      const end = this.#head.indexOf('\r\n\r\n');
      if (end < 0) {
        at = chunk.length;
        continue;
      }
      const head = this.#head.slice(0, end);
      at += end + 4 - seen;
      this.#head = '';
      this.statuses.push(Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0));
      this.tags.push(/\r\nx-n: *([^\r]*)/i.exec(head)?.[1] ?? '');
      this.#bodyLeft = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    }
  }
}

/** The real `depad proxy` process (bin/depad) on a temporary home. */
export interface ProxyChild {
  port: number;
  pid: number;
  /** Its resident memory now (bytes, VmRSS). */
  rss(): number;
  /** Sets the routes of deployment `name` over the control channel. */
  setRoutes(name: string, routes: Route[]): Promise<void>;
}

/** Starts `depad --home <temp> proxy` on a port of the test's slot; killed and its home removed in teardown. */
export async function proxyChild(t: ExecutionContext): Promise<ProxyChild> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-hostile-'));
  const port = (await testPorts(t))();
  const child = spawn(DEPAD, ['--home', home, 'proxy', '--http-port', String(port), '--http-host', '127.0.0.1', '--tcp-host', '127.0.0.1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    await fs.rm(home, { recursive: true, force: true });
  });
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  try {
    await until(() => /HTTP on/.test(log) || child.exitCode !== null, 'depad proxy to listen');
  } catch (error) {
    throw new Error(`depad proxy did not start: ${String(error)}\n${log}`);
  }
  if (child.exitCode !== null) throw new Error(`depad proxy exited ${child.exitCode}:\n${log}`);
  const pid = child.pid as number;
  const client = new ProxyClient(proxyPaths(proxyStateDir(home)));
  return {
    port,
    pid,
    rss: () => rssOf(pid),
    async setRoutes(name, routes) {
      await client.setDeploymentRoutes(name, routes);
    },
  };
}

/** Resident memory of process `pid` (bytes), from /proc/<pid>/status. */
export function rssOf(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(kb) * 1024;
}

/** Samples `rss()` every 20 ms until `stop()`, which returns the highest value seen (bytes). */
export function rssPeak(t: ExecutionContext, rss: () => number): { stop(): number } {
  let peak = rss();
  const timer = setInterval(() => (peak = Math.max(peak, rss())), 20);
  t.teardown(() => clearInterval(timer));
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rss());
    },
  };
}

/** Resolves once `count()` has not changed for `quietMs` (or after `maxMs`); returns its value. */
export async function settled(count: () => number, quietMs = 500, maxMs = 4000): Promise<number> {
  const deadline = Date.now() + maxMs;
  let last = count();
  let since = Date.now();
  while (Date.now() < deadline && Date.now() - since < quietMs) {
    await sleep(50);
    const now = count();
    if (now !== last) [last, since] = [now, Date.now()];
  }
  return last;
}

/** Megabytes, for messages. */
export const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
