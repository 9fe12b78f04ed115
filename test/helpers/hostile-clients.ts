/**
 * Helpers for the hostile-client tests of the proxy: raw clients that trickle their bytes, a
 * prompt normal request beside them, and the real `depad proxy` process on its own home with its
 * resident memory. The raw clients are raw-http.ts's; what bench/proxy-hostile.ts uses too (a
 * reader of pipelined responses, the probe) is in hostile-common.ts. Everything started here is
 * closed in t.teardown, pass or fail.
 */
import type { ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { probe } from './hostile-common.ts';
import { startProxyProcess } from './proxy-process.ts';
import type { RawClient } from './raw-http.ts';
import { ProxyClient, proxyPaths } from '../../proxy/index.ts';
import type { Route } from '../../proxy/index.ts';
import { proxyStateDir } from '../../src/home.ts';

/** The slowest a normal request may be answered while a hostile client is at work (ms). */
export const PROMPT_MS = 250;

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

/** Asserts that a normal request on another connection is answered with 200 within PROMPT_MS. */
export async function assertPrompt(t: ExecutionContext, port: number, host: string, during: string): Promise<void> {
  const { status, ms } = await probe(port, host);
  t.is(status, 200, `a normal request ${during}`);
  t.true(ms < PROMPT_MS, `a normal request ${during} took ${ms.toFixed(0)} ms (bound ${PROMPT_MS} ms)`);
}

/** The real `depad proxy` process (bin/depad) on a temporary home. */
export interface ProxyChild {
  port: number;
  /** Its resident memory now (bytes, VmRSS). */
  rss(): number;
  /** Sets the routes of deployment `name` over the control channel. */
  setRoutes(name: string, routes: Route[]): Promise<void>;
}

/** Starts `depad proxy` on a temporary home and a port of the test's slot; stopped and its home removed in teardown. */
export async function proxyChild(t: ExecutionContext): Promise<ProxyChild> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-hostile-'));
  t.teardown(() => fs.rm(home, { recursive: true, force: true })); // after the stop (teardowns run last first)
  const px = await startProxyProcess(t, { home });
  const pid = px.pid();
  const client = new ProxyClient(proxyPaths(proxyStateDir(home)));
  return {
    port: px.port,
    rss: () => rssOf(pid),
    async setRoutes(name, routes) {
      await client.setDeploymentRoutes(name, routes);
    },
  };
}

/** Resident memory of process `pid` (bytes), from /proc/<pid>/status. */
function rssOf(pid: number): number {
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

/** Megabytes, for messages. */
export const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
