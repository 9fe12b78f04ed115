/**
 * The agent's reconciler: at start it publishes every deployment's routes from what actually runs
 * (the proxy may have kept stale ones through a crash); then it watches the engine's container
 * events. When a deployment's current instance dies, is killed for memory, or changes health while
 * the deployment should run, it reports it (log, and the agent's event list) and republishes the
 * routes, so clients get 503 (or the instance again) instead of connection errors. Every action
 * runs in the agent's operation queue, after any operation under way, and re-reads the record:
 * instances an update or stop retires are not reported. A burst of events for one deployment
 * republishes its routes once, and only when it has routed services.
 */
import { publishLive } from '../deploy/routing.ts';
import type { OpContext } from '../deploy/context.ts';
import { readPlan } from '../deploy/root-dir.ts';
import type { ContainerEvent } from '../engine/events.ts';
import { currentInstanceName } from '../render/names.ts';
import type { Logger } from '../logger.ts';
import type { DeploymentRecord } from '../store/records.ts';

/** Something the agent noticed, as `GET /v1/events` lists it. */
export interface AgentEvent {
  time: string;
  kind: 'routes-restored' | 'instance-died' | 'instance-oom' | 'instance-started' | 'instance-unhealthy' | 'instance-healthy' | 'instance-restarted' | 'watch-failed';
  deployment?: string;
  service?: string;
  instance?: string;
  exitCode?: number;
  detail?: string;
}

/** Most events kept. */
const MAX_EVENTS = 500;

/** The reconciler of one agent. */
export class Reconciler {
  readonly #ctx: OpContext;
  readonly #serialize: <T>(fn: () => Promise<T>) => Promise<T>;
  readonly #log: Logger;
  readonly #events: AgentEvent[] = [];
  readonly #stop = new AbortController();
  #watching: Promise<void> | undefined;
  /** Deployments (by ID) whose routes are to be republished; one queued job serves every event that comes meanwhile. */
  readonly #dirty = new Set<string>();
  readonly #listeners: ((event: ContainerEvent) => void)[] = [];

  constructor(ctx: OpContext, serialize: <T>(fn: () => Promise<T>) => Promise<T>, log: Logger) {
    this.#ctx = ctx;
    this.#serialize = serialize;
    this.#log = log;
  }

  /** The events noticed so far, oldest first. */
  events(): readonly AgentEvent[] {
    return this.#events;
  }

  /** Adds an event to the list (the health monitor's too). */
  note(event: Omit<AgentEvent, 'time'>): void {
    this.#events.push({ time: new Date().toISOString(), ...event });
    if (this.#events.length > MAX_EVENTS) this.#events.splice(0, this.#events.length - MAX_EVENTS);
  }

  /** Restores every deployment's routes, then watches engine events until `stop()`. */
  async start(): Promise<void> {
    await this.#serialize(async () => {
      let restored = 0;
      for (const record of await this.#ctx.store.listDeployments()) {
        if (record.phase !== 'ready') continue;
        try {
          await publishLive(this.#ctx, record, await readPlan(record.rootDir, record.revision));
          restored++;
        } catch (error) {
          this.#log.warn({ deployment: record.name, error: (error as Error).message }, 'could not restore routes');
        }
      }
      this.note({ kind: 'routes-restored', detail: `${restored} deployment(s)` });
    });
    this.#watching = this.#watch();
  }

  async #watch(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      try {
        await this.#ctx.engine.containerEvents((event) => this.#onEvent(event), this.#stop.signal);
      } catch (error) {
        this.note({ kind: 'watch-failed', detail: (error as Error).message });
        this.#log.warn({ error: (error as Error).message }, 'cannot watch engine events; retrying in 5 s');
      }
      if (!this.#stop.signal.aborted) await new Promise((resolve) => setTimeout(resolve, 5000).unref());
    }
  }

  /** Also tells `listener` of every engine event (the health monitor). */
  onEngineEvent(listener: (event: ContainerEvent) => void): void {
    this.#listeners.push(listener);
  }

  /** Notes the event at once; republishes the deployment's routes in the queue, once per burst of events. */
  #onEvent(event: ContainerEvent): void {
    for (const listener of this.#listeners) listener(event);
    if (this.#dirty.has(event.deploymentId)) {
      void this.#serialize(() => this.#report(event)).catch(() => {});
      return;
    }
    this.#dirty.add(event.deploymentId);
    void this.#serialize(async () => {
      this.#dirty.delete(event.deploymentId);
      const record = await this.#report(event);
      if (record === undefined) return;
      const plan = await readPlan(record.rootDir, record.revision);
      if (!plan.services.some((s) => s.route)) return; // nothing routed: nothing to republish
      await publishLive(this.#ctx, record, plan);
    }).catch((error: Error) => this.#log.warn({ error: error.message }, 'could not republish routes'));
  }

  /** Records what the event means for a current instance; returns its deployment when it matters. */
  async #report(event: ContainerEvent): Promise<DeploymentRecord | undefined> {
    const record = await this.#ctx.store.getDeployment(event.deploymentId);
    if (record === undefined || record.phase !== 'ready') return undefined;
    const current = event.service !== '' && currentInstanceName(record, event.service) === event.name;
    if (!current) return undefined; // an instance an update or destroy retired
    const base = { deployment: record.name, service: event.service, instance: event.name };
    if (event.action === 'die' && record.desired === 'running') {
      this.note({ kind: 'instance-died', ...base, ...(event.exitCode === undefined ? {} : { exitCode: event.exitCode }) });
      this.#log.warn({ ...base, exitCode: event.exitCode }, 'an instance died');
    } else if (event.action === 'oom') {
      this.note({ kind: 'instance-oom', ...base });
      this.#log.warn(base, 'an instance ran out of memory');
    } else if (event.action === 'start') this.note({ kind: 'instance-started', ...base });
    else if (event.action === 'health_status: unhealthy') this.note({ kind: 'instance-unhealthy', ...base });
    else if (event.action === 'health_status: healthy') this.note({ kind: 'instance-healthy', ...base });
    else return undefined;
    return record;
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#watching;
  }
}
