/**
 * Watching the engine: the event stream of depad's containers, kept open for as long as the agent
 * runs. When the stream connects, the whole state is read again (ObservedState.resync), so events
 * missed while it was down are not lost: instances found dead that were running are reported.
 * When it breaks (the engine stopped, restarted or does not answer a ping every few seconds), the
 * agent says so (log and event), the state becomes unknown, and it reconnects with a backoff that
 * doubles from `retryFirstMs` to `retryMaxMs`.
 */
import type { Engine } from '../engine/engine.ts';
import type { ContainerEvent } from '../engine/events.ts';
import type { Logger } from '../logger.ts';
import type { ObservedState } from './observed.ts';
import type { AgentEvent } from './reconciler.ts';

/** Timing of the watch. */
export interface WatchOptions {
  /** First wait before reconnecting (default 250 ms); doubles per failure. */
  retryFirstMs: number;
  /** Longest wait between attempts (default 5 s). */
  retryMaxMs: number;
  /** How often a connected engine is pinged (default 5 s); no answer in 3 s breaks the stream. */
  pingMs: number;
}

const DEFAULTS: WatchOptions = { retryFirstMs: 250, retryMaxMs: 5000, pingMs: 5000 };

/** What the watch tells the reconciler. */
export interface WatchHandlers {
  /** The state was read in full after (re)connecting; `died` are instances found stopped that were running before. */
  connected(info: { first: boolean; died: string[] }): void;
  /** An event, after the state has it. */
  event(event: ContainerEvent): void;
  note(event: Omit<AgentEvent, 'time'>): void;
}

/** The agent's watch of one engine. */
export class EngineWatch {
  readonly #engine: Engine;
  readonly #observed: ObservedState;
  readonly #log: Logger;
  readonly #handlers: WatchHandlers;
  readonly #options: WatchOptions;
  readonly #stop = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(engine: Engine, observed: ObservedState, log: Logger, handlers: WatchHandlers, options: Partial<WatchOptions> = {}) {
    this.#engine = engine;
    this.#observed = observed;
    this.#log = log;
    this.#handlers = handlers;
    this.#options = { ...DEFAULTS, ...options };
  }

  /** Starts watching (returns at once). */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let failures = 0;
    let first = true;
    let wasUp = false;
    while (!this.#stop.signal.aborted) {
      const connection = new AbortController();
      const signal = AbortSignal.any([this.#stop.signal, connection.signal]);
      let pinger: NodeJS.Timeout | undefined;
      let reason = 'the event stream ended';
      try {
        await this.#engine.containerEvents(
          (event) => void this.#observed.apply(event).then(() => this.#handlers.event(event)),
          signal,
          () => {
            pinger = setInterval(() => {
              this.#engine.ping(3000).catch((error: Error) => {
                reason = `the engine did not answer a ping (${error.message})`;
                connection.abort();
              });
            }, this.#options.pingMs);
            pinger.unref();
            void this.#resync(first, wasUp).then(
              () => {
                failures = 0;
                first = false;
                wasUp = true;
              },
              (error: Error) => {
                reason = `could not read the engine's state (${error.message})`;
                connection.abort();
              },
            );
          },
        );
      } catch (error) {
        reason = (error as Error).message;
      } finally {
        clearInterval(pinger);
      }
      if (this.#stop.signal.aborted) break;
      this.#observed.lost(reason);
      if (wasUp || first) {
        this.#handlers.note({ kind: 'engine-lost', detail: reason });
        this.#log.warn({ engine: this.#engine.address, reason }, 'lost the engine: its instances are unknown until it answers again; retrying');
        wasUp = false;
        first = false;
      }
      const wait = Math.min(this.#options.retryFirstMs * 2 ** failures, this.#options.retryMaxMs);
      failures += 1;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#stop.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
    }
  }

  /** Reads the whole state; reports instances that stopped while the agent was not listening. */
  async #resync(first: boolean, wasUp: boolean): Promise<void> {
    const before = new Set(this.#observed.all().filter((c) => c.running).map((c) => c.name));
    await this.#observed.resync();
    const died = this.#observed.all().filter((c) => !c.running && before.has(c.name)).map((c) => c.name);
    if (!first && !wasUp) {
      this.#handlers.note({ kind: 'engine-back', detail: `read ${this.#observed.all().length} container(s) again` });
      this.#log.info({ engine: this.#engine.address }, 'the engine answers again: read its state; reconciling');
    }
    this.#handlers.connected({ first, died });
  }
}
