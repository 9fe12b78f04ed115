/** What every operation receives: the state, the engine, a logger, a progress sink. */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DepadError } from '../errors.ts';
import type { DrainResult, Route, RouteSnapshot, Upstream } from '../../proxy/types.ts';
import type { Engine } from '../engine/engine.ts';
import type { Logger } from '../logger.ts';
import type { Store } from '../store/store.ts';
import type { ObservedView } from '../agent/observed.ts';

/** One step of a long operation, for the user to watch. */
export interface ProgressEvent {
  /** e.g. `network`, `volume`, `container`, `start`, `wait`, `ready`, `remove`. */
  step: string;
  message: string;
  service?: string;
}

/**
 * Where a deployment's routes go: the built-in proxy's control channel, or its saved snapshot
 * when no proxy runs (then drains return at once: nothing is routed).
 */
export interface RouteSink {
  running(): Promise<boolean>;
  setDeploymentRoutes(name: string, routes: Route[]): Promise<unknown>;
  removeDeployment(name: string): Promise<unknown>;
  drain(upstream: Pick<Upstream, 'host' | 'port'>, timeoutMs: number): Promise<DrainResult>;
  /** Every route (the running proxy's, or the snapshot's); doctor compares them with the deployments. */
  routes?(): Promise<RouteSnapshot>;
  /** In a cluster: the hostnames other hosts serve (hostname → host), from the proxy's peer table. */
  peerRoutes?(): Promise<Record<string, string>>;
}

/** The dependencies of an operation. */
export interface OpContext {
  home: string;
  store: Store;
  engine: Engine;
  routes: RouteSink;
  log: Logger;
  progress: (event: ProgressEvent) => void;
  /** In the agent, for read-only views: what it knows of the engine from events (no round trip per container). */
  observed?: ObservedView;
  /** Aborted when the user interrupts (Ctrl-C): operations stop at the next step and undo. */
  signal?: AbortSignal;
}

/**
 * Marks a step of an operation. Stops the operation if the user interrupted it. For the failure
 * tests only: DEPAD_TEST_CRASH_AT=<step> kills the process here; DEPAD_TEST_PAUSE_AT=<step>
 * creates `<home>/paused-<step>` and waits here until the test deletes it.
 */
export function checkpoint(ctx: OpContext, step: string): void {
  if (process.env.DEPAD_TEST_CRASH_AT === step) process.kill(process.pid, 'SIGKILL');
  if (process.env.DEPAD_TEST_PAUSE_AT === step) {
    const marker = path.join(ctx.home, `paused-${step.replace(/[^a-z0-9-]/gi, '_')}`);
    writeFileSync(marker, String(process.pid));
    const wait = new Int32Array(new SharedArrayBuffer(4));
    while (existsSync(marker)) Atomics.wait(wait, 0, 0, 50);
  }
  if (ctx.signal?.aborted) throw interrupted(step);
}

/** The error of an operation stopped by its user (Ctrl-C, or its agent client's cancel) at `step`. */
export function interrupted(step: string): DepadError {
  return new DepadError('DEPAD_INTERRUPTED', `interrupted at step '${step}'`, {
    hint: 'what the operation had done was undone; run it again',
  });
}

/**
 * The context an interrupted operation undoes itself with: the same one without its signal, so
 * that the undo's own steps and waits run to the end instead of stopping at once.
 */
export function undoContext(ctx: OpContext): OpContext {
  const { signal: _, ...rest } = ctx;
  return rest;
}
