/**
 * What the agent knows of the engine: every container carrying depad's labels, kept current from
 * the engine's events (each event re-reads that one container; a burst for one container reads it
 * once), and read again in full whenever the event stream (re)connects, so nothing that happened
 * while the agent was not listening is missed. While the engine is unreachable the state is
 * `down`: the containers are then *unknown* (the last known list is kept, but views say unknown).
 * Views (`ls`, `inspect`, `ps`) read from here instead of asking the engine per container.
 */
import type { Engine } from '../engine/engine.ts';
import type { ContainerEvent } from '../engine/events.ts';
import { LABELS, type ContainerState } from '../engine/types.ts';

/** Whether the engine answers, since when, and why not. */
export interface EngineStatus {
  state: 'up' | 'down';
  since: string;
  /** While down: the last error. */
  error?: string;
  /** The engine's address (DOCKER_HOST or the default socket). */
  address: string;
}

/** The read side other modules use (status.ts): containers of one deployment, or undefined when unknown. */
export interface ObservedView {
  /** The deployment's containers as last seen; `live` is false while the engine is down (they are then unknown). */
  containers(deploymentId: string): { live: boolean; containers: ContainerState[] };
  /** The agent's restart facts of an instance (crash loops), by container name. */
  restarts?(container: string): InstanceRestarts | undefined;
  /** The health checks' status of an instance (what `depad health` shows), by container name; undefined when none checks it. */
  health?(container: string): string | undefined;
}

/** What the agent did about an instance that keeps dying. */
export interface InstanceRestarts {
  /** Deaths counted towards the give-up limit. */
  deaths: number;
  /** Restarts the agent made (the engine's own are in the container's restart count). */
  restarts: number;
  /** `backoff`: waiting to restart it; `given-up`: the limit was reached, it stays stopped. */
  state: 'running' | 'backoff' | 'given-up';
  /** When `backoff` ends. */
  nextRestart?: string;
}

/** The agent's copy of the engine's depad containers. */
export class ObservedState implements ObservedView {
  readonly #engine: Engine;
  readonly #byId = new Map<string, ContainerState>();
  #status: EngineStatus;
  #live = false;
  /** Containers being read again, and whether another event came meanwhile. */
  readonly #reading = new Map<string, boolean>();
  /** Set by the reconciler: its restart facts. */
  restarts?: (container: string) => InstanceRestarts | undefined;
  /** Set by the agent: the health monitor's status of an instance. */
  health?: (container: string) => string | undefined;

  constructor(engine: Engine) {
    this.#engine = engine;
    this.#status = { state: 'down', since: new Date().toISOString(), error: 'not read yet', address: engine.address };
  }

  /** The engine's status as the agent sees it. */
  engineStatus(): EngineStatus {
    return { ...this.#status };
  }

  /** True when the copy is current (the stream is connected and the full read is done). */
  get live(): boolean {
    return this.#live;
  }

  /** Reads every depad container again (after the stream connects); the engine is then up. */
  async resync(): Promise<void> {
    const all = await this.#engine.listContainers({ [LABELS.deploymentId]: null });
    this.#byId.clear();
    for (const c of all) this.#byId.set(c.id, c);
    this.#live = true;
    if (this.#status.state !== 'up') this.#status = { state: 'up', since: new Date().toISOString(), address: this.#engine.address };
  }

  /** The engine went away: the copy is unknown until the next resync. */
  lost(error: string): void {
    this.#live = false;
    if (this.#status.state === 'up' || this.#status.error === 'not read yet') this.#status = { state: 'down', since: new Date().toISOString(), error, address: this.#engine.address };
    else this.#status.error = error;
  }

  /** An engine event: re-reads that container (once per burst). Resolves when the copy has it. */
  async apply(event: ContainerEvent): Promise<void> {
    if (!event.containerId) return;
    if (event.action === 'destroy') {
      this.#byId.delete(event.containerId);
      return;
    }
    if (this.#reading.has(event.containerId)) {
      this.#reading.set(event.containerId, true);
      return;
    }
    this.#reading.set(event.containerId, false);
    try {
      for (;;) {
        const state = await this.#engine.inspectContainer(event.containerId);
        if (state === undefined) this.#byId.delete(event.containerId);
        else this.#byId.set(state.id, state);
        if (this.#reading.get(event.containerId) !== true) break;
        this.#reading.set(event.containerId, false);
      }
    } catch {
      // the engine went away meanwhile: the next resync reads it
    } finally {
      this.#reading.delete(event.containerId);
    }
  }

  /** The deployment's containers, by name, and whether they are current. */
  containers(deploymentId: string): { live: boolean; containers: ContainerState[] } {
    const containers = [...this.#byId.values()].filter((c) => c.labels[LABELS.deploymentId] === deploymentId).sort((a, b) => a.name.localeCompare(b.name));
    return { live: this.#live, containers };
  }

  /** Every known container, live or not (the reconciler's last knowledge). */
  all(): ContainerState[] {
    return [...this.#byId.values()];
  }

  /** One container by name, if known. */
  byName(name: string): ContainerState | undefined {
    for (const c of this.#byId.values()) if (c.name === name) return c;
    return undefined;
  }
}
