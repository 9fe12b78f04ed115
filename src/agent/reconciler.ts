/**
 * The agent's reconciler: it brings what runs (the engine, read through depad's labels and kept in
 * ObservedState) to what the store says should run. It reconciles every deployment when the
 * engine's event stream connects (the agent's start, and the engine's return after a restart or a
 * reboot), and a deployment when one of its instances dies, disappears or is started behind its
 * back. Instances that should run are started in dependency order with their `depends_on` and
 * health waits, then the deployment's routes are republished; a stopped deployment stays stopped;
 * a crash loop backs off and is given up on (crash-loop.ts). The rules are in desired.ts.
 *
 * Every change of the store's view runs in the agent's operation queue, after any operation under
 * way, and re-reads the record (an instance an update or stop retired is left alone); the waits
 * for health run outside it, so a slow or crashing deployment never holds up another's operation.
 * What it notices and does is logged and listed as events (`GET /v1/events`).
 */
import { publishLive } from '../deploy/routing.ts';
import type { OpContext } from '../deploy/context.ts';
import { ensureNetworks, ensureVolumes } from '../deploy/materialize.ts';
import { waitReady } from '../deploy/ready.ts';
import { joinedContainers } from '../deploy/namespace-groups.ts';
import { readPlan, type StoredPlan } from '../deploy/root-dir.ts';
import { SETTLE_MS, assertStillRunning, waitFor } from '../deploy/wait.ts';
import type { ContainerEvent } from '../engine/events.ts';
import { LABELS } from '../engine/types.ts';
import { isCurrentInstance } from '../render/names.ts';
import { routedPort } from '../render/routes.ts';
import type { Logger } from '../logger.ts';
import type { DeploymentRecord } from '../store/records.ts';
import { CrashLoops, type CrashLoopOptions } from './crash-loop.ts';
import { decide, shouldRun, type StartStep } from './desired.ts';
import { EngineWatch, type WatchOptions } from './engine-watch.ts';
import { ObservedState } from './observed.ts';

/** Something the agent noticed or did, as `GET /v1/events` lists it. */
export interface AgentEvent {
  time: string;
  kind:
    | 'routes-restored'
    | 'instance-died'
    | 'instance-oom'
    | 'instance-started'
    | 'instance-unhealthy'
    | 'instance-healthy'
    | 'instance-restarted'
    | 'instance-stopped'
    | 'instance-gave-up'
    | 'reconcile-failed'
    | 'engine-lost'
    | 'engine-back';
  deployment?: string;
  service?: string;
  instance?: string;
  exitCode?: number;
  detail?: string;
}

/** Options of the reconciler. */
export interface ReconcilerOptions {
  crashLoop?: Partial<CrashLoopOptions>;
  watch?: Partial<WatchOptions>;
  /** How long a restarted instance may take to be healthy (default 120 s). */
  startTimeoutMs?: number;
}

/** Most events kept. */
const MAX_EVENTS = 500;
/** A death is acted on this long after it (a death in an engine shutdown is then seen as the engine's loss). */
const DEATH_GRACE_MS = 1000;

type Serialize = <T>(fn: () => Promise<T>) => Promise<T>;

/** The reconciler of one agent. */
export class Reconciler {
  readonly #ctx: OpContext;
  readonly #serialize: Serialize;
  readonly #log: Logger;
  readonly #events: AgentEvent[] = [];
  readonly #followers = new Set<(event: AgentEvent) => void>();
  readonly #listeners: ((event: ContainerEvent) => void)[] = [];
  readonly #loops: CrashLoops;
  readonly #watch: EngineWatch;
  readonly #startTimeoutMs: number;
  /** What the engine runs, kept current (views read it). */
  readonly observed: ObservedState;
  /** Deployments (by ID) whose routes are to be republished; one queued job serves a burst of events. */
  readonly #dirty = new Set<string>();
  /** Instances the agent stops to start again at once (a joiner whose owner restarted): their deaths are not crashes. */
  readonly #ownStops = new Set<string>();
  /** Per deployment: a reconcile waiting for its time, one running, and whether another was asked meanwhile. */
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #running = new Map<string, Promise<void>>();
  readonly #again = new Set<string>();
  /** Deployments to reconcile as after a restart of the engine or the agent (desired.ts: `restoring`). */
  readonly #restoring = new Set<string>();
  #stopped = false;

  constructor(ctx: OpContext, serialize: Serialize, log: Logger, options: ReconcilerOptions = {}) {
    this.#ctx = ctx;
    this.#serialize = serialize;
    this.#log = log;
    this.#loops = new CrashLoops(options.crashLoop);
    this.#startTimeoutMs = options.startTimeoutMs ?? 120_000;
    this.observed = new ObservedState(ctx.engine);
    this.observed.restarts = (name) => this.#loops.facts(name, Date.now());
    this.#watch = new EngineWatch(ctx.engine, this.observed, log, { connected: (info) => this.#connected(info), event: (e) => this.#onEvent(e), note: (e) => this.note(e) }, options.watch);
  }

  /** The events noticed so far, oldest first. */
  events(): readonly AgentEvent[] {
    return this.#events;
  }

  /** Adds an event to the list (the health monitor's too) and tells the followers. */
  note(event: Omit<AgentEvent, 'time'>): void {
    const noted = { time: new Date().toISOString(), ...event };
    this.#events.push(noted);
    if (this.#events.length > MAX_EVENTS) this.#events.splice(0, this.#events.length - MAX_EVENTS);
    for (const follower of [...this.#followers]) follower(noted);
  }

  /** Tells `listener` of every event noted from now on, until the returned function is called (GET /v1/events?follow=true). */
  followEvents(listener: (event: AgentEvent) => void): () => void {
    this.#followers.add(listener);
    return () => void this.#followers.delete(listener);
  }

  /** Also tells `listener` of every engine event (the health monitor). */
  onEngineEvent(listener: (event: ContainerEvent) => void): void {
    this.#listeners.push(listener);
  }

  /** Restores every deployment's routes from what runs, then watches the engine until `stop()`. */
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
    this.#watch.start();
  }

  /** Stops watching and reconciling (a reconcile under way finishes its current step). */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    await this.#watch.stop();
  }

  /** The state was read in full: reconcile everything (instances that died unseen are reported first). */
  #connected({ first, died }: { first: boolean; died: string[] }): void {
    for (const name of died) {
      const c = this.observed.byName(name);
      if (c) this.#onEvent({ action: 'die', containerId: c.id, name, deploymentId: c.labels[LABELS.deploymentId] ?? '', service: c.labels[LABELS.service] ?? '', exitCode: c.exitCode, time: Date.now(), unseen: true });
    }
    void this.#serialize(async () => {
      for (const record of await this.#ctx.store.listDeployments()) {
        if (record.phase !== 'ready') continue;
        this.#restoring.add(record.id);
        this.#schedule(record.id, first ? 0 : DEATH_GRACE_MS);
      }
    }).catch((error: Error) => this.#log.warn({ error: error.message }, 'could not list deployments to reconcile'));
  }

  /** Reports the event in the queue; when it matters, republishes the deployment's routes (once per burst of events). */
  #onEvent(event: ContainerEvent & { unseen?: boolean }): void {
    for (const listener of this.#listeners) listener(event);
    if (event.action === 'destroy' || event.action === 'create') this.#loops.forget(event.name);
    // Once stopped (the agent closing its state), an event still queued is of no interest: no warning.
    void this.#serialize(async () => {
      const record = await this.#report(event);
      if (record !== undefined) this.#republish(record.id);
    }).catch((error: Error) => void (this.#stopped || this.#log.warn({ error: error.message }, 'could not report an engine event')));
  }

  /** Publishes the deployment's routes from what runs, in the queue after what is in it now; requests meanwhile make one. */
  #republish(id: string): void {
    if (this.#dirty.has(id)) return;
    this.#dirty.add(id);
    void this.#serialize(async () => {
      this.#dirty.delete(id);
      const record = await this.#ctx.store.getDeployment(id);
      if (record === undefined || record.phase !== 'ready') return;
      const plan = await readPlan(record.rootDir, record.revision);
      if (!plan.services.some((s) => s.route)) return; // nothing routed: nothing to republish
      await publishLive(this.#ctx, record, plan);
    }).catch((error: Error) => this.#log.warn({ error: error.message }, 'could not republish routes'));
  }

  /** Records what the event means for a current instance; returns its deployment when it matters. */
  async #report(event: ContainerEvent & { unseen?: boolean }): Promise<DeploymentRecord | undefined> {
    const record = await this.#ctx.store.getDeployment(event.deploymentId);
    if (record === undefined || record.phase !== 'ready') return undefined;
    const current = event.service !== '' && isCurrentInstance(record, event.service, event.name);
    if (!current) return undefined; // an instance an update or destroy retired
    const base = { deployment: record.name, service: event.service, instance: event.name };
    // A death before the record's last change was part of that operation (depad restart), not a crash.
    const byOperation = event.time > 0 && Date.parse(record.updatedAt) >= event.time;
    if (event.action === 'die' && this.#ownStops.delete(event.name)) return undefined; // the agent stopped it to start it again
    if (event.action === 'die' && record.desired === 'running' && !byOperation) {
      this.note({ kind: 'instance-died', ...base, ...(event.exitCode === undefined ? {} : { exitCode: event.exitCode }), ...(event.unseen ? { detail: 'while the agent was not watching the engine' } : {}) });
      this.#log.warn({ ...base, exitCode: event.exitCode }, 'an instance died');
      if (!(record.stoppedServices ?? []).includes(event.service)) setTimeout(() => this.#death(record.id, event), event.unseen ? 0 : DEATH_GRACE_MS).unref();
    } else if (event.action === 'oom') {
      this.note({ kind: 'instance-oom', ...base });
      this.#log.warn(base, 'an instance ran out of memory');
    } else if (event.action === 'start') {
      // After a give-up the engine restarts nothing: this start is a depad command's (or a user's), so count afresh.
      if (this.#loops.gaveUpBefore(event.name, event.time)) this.#loops.forget(event.name);
      this.note({ kind: 'instance-started', ...base });
      // Instances that join its namespaces (network_mode: service:…) must join the new ones: desired.ts restarts them.
      if (await this.#hasJoiners(record, event.name)) this.#schedule(record.id, DEATH_GRACE_MS);
    }
    else if (event.action === 'health_status: unhealthy') this.note({ kind: 'instance-unhealthy', ...base });
    else if (event.action === 'health_status: healthy') this.note({ kind: 'instance-healthy', ...base });
    else if (event.action === 'destroy' && record.desired === 'running') this.#schedule(record.id, DEATH_GRACE_MS);
    else return undefined;
    return record;
  }

  /** True when another instance of the deployment's plan joins the namespaces of the container `name`. */
  async #hasJoiners(record: DeploymentRecord, name: string): Promise<boolean> {
    const plan = await readPlan(record.rootDir, record.revision).catch(() => undefined);
    return plan?.containers.some((c) => joinedContainers(c).includes(name)) === true;
  }

  /** A death, once its grace has passed with the engine still up: counted, and the deployment reconciled. */
  #death(deploymentId: string, event: ContainerEvent): void {
    if (this.#stopped || !this.observed.live) return; // the engine went away: its return reconciles
    const state = this.observed.byName(event.name);
    const startedAt = state?.startedAt ? Date.parse(state.startedAt) : undefined;
    if (this.#loops.died(event.name, event.time || Date.now(), startedAt)) {
      void this.#giveUp(deploymentId, event);
      return;
    }
    this.#schedule(deploymentId, this.#loops.waitBeforeStart(event.name, Date.now()) ?? 0);
  }

  /** Stops a crash-looping instance for good (restart policy `no`), with an event. */
  async #giveUp(deploymentId: string, event: ContainerEvent): Promise<void> {
    await this.#serialize(async () => {
      const record = await this.#ctx.store.getDeployment(deploymentId);
      if (record === undefined || !isCurrentInstance(record, event.service, event.name)) return;
      const { limit } = this.#loops.options;
      await this.#ctx.engine.setRestartPolicy(event.containerId, { name: 'no' });
      await this.#ctx.engine.stopContainer(event.containerId, 1);
      this.#loops.gaveUpApplied(event.name, Date.now());
      const base = { deployment: record.name, service: event.service, instance: event.name };
      this.note({ kind: 'instance-gave-up', ...base, detail: `it died ${limit} times in a row; it stays stopped until depad start ${record.name} or an update` });
      this.#log.error({ ...base, deaths: limit }, 'an instance keeps dying: gave up restarting it');
      await publishLive(this.#ctx, record, await readPlan(record.rootDir, record.revision));
    }).catch((error: Error) => this.#log.warn({ instance: event.name, error: error.message }, 'could not stop a crash-looping instance'));
  }

  /** Reconciles a deployment in `delayMs` (an earlier request wins; one runs at a time per deployment). */
  #schedule(id: string, delayMs: number): void {
    if (this.#stopped) return;
    const at = Date.now() + delayMs;
    const pending = this.#timers.get(id);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(id);
      if (this.#running.has(id)) return void this.#again.add(id);
      const run = this.#reconcile(id)
        .catch((error: Error) => {
          this.note({ kind: 'reconcile-failed', detail: error.message });
          this.#log.warn({ deploymentId: id, error: error.message }, 'could not reconcile a deployment; trying again on its next event or the engine\'s return');
        })
        .finally(() => {
          this.#running.delete(id);
          if (this.#again.delete(id)) this.#schedule(id, 0);
        });
      this.#running.set(id, run);
    }, delayMs);
    timer.unref();
    this.#timers.set(id, { at, timer });
  }

  /** One deployment: decide in the queue, stop what should not run, start what should (in order, waiting), republish. */
  async #reconcile(id: string): Promise<void> {
    if (this.#stopped || !this.observed.live) return;
    const decided = await this.#serialize(async () => {
      const record = await this.#ctx.store.getDeployment(id);
      if (record === undefined || record.phase !== 'ready') return undefined;
      const plan = await readPlan(record.rootDir, record.revision);
      const containers = await this.#ctx.engine.listContainers({ [LABELS.deploymentId]: id });
      const restoring = this.#restoring.delete(id);
      const decision = decide(record, plan, containers, (name) => this.#loops.waitBeforeStart(name, Date.now()), restoring);
      for (const s of decision.stop) {
        if (s.restart) this.#ownStops.add(s.state.name);
        this.note({ kind: 'instance-stopped', deployment: record.name, service: s.service, instance: s.state.name, detail: s.reason });
        this.#log.info({ deployment: record.name, instance: s.state.name, reason: s.reason }, 'stopping an instance that should not run');
        await this.#ctx.engine.stopContainer(s.state.id, s.timeoutSec);
      }
      // After a (re)connect the routes are published from what runs: the engine may have restarted
      // instances before the agent was listening, or the agent published them while it went down.
      if (decision.stop.length || (restoring && decision.start.length === 0)) await publishLive(this.#ctx, record, plan);
      return { record, plan, decision };
    });
    if (decided === undefined) return;
    const { record, plan, decision } = decided;
    if (decision.retryInMs !== undefined) this.#schedule(id, decision.retryInMs);
    if (decision.start.length === 0) return;
    const started = new Map<string, string>();
    for (const step of decision.start) {
      for (const [dep, { condition }] of Object.entries(step.container.dependsOn)) {
        const depId = started.get(dep);
        if (depId === undefined || condition === 'service_started') continue;
        await waitFor(this.#ctx, depId, dep, condition === 'service_healthy' ? 'healthy' : 'completed', this.#startTimeoutMs);
      }
      const containerId = await this.#serialize(() => this.#startOne(id, record, plan, step));
      if (containerId === undefined) return; // the record changed meanwhile: its operation decided
      started.set(step.service, containerId);
    }
    await this.#waitHealthy(record, plan, started);
    await this.#serialize(async () => {
      const now = await this.#ctx.store.getDeployment(id);
      if (now && now.phase === 'ready' && now.revision === record.revision) await publishLive(this.#ctx, now, plan);
    });
  }

  /** Starts (or creates and starts) one instance, if the record still says it should run. */
  async #startOne(id: string, before: DeploymentRecord, plan: StoredPlan, step: StartStep): Promise<string | undefined> {
    const record = await this.#ctx.store.getDeployment(id);
    const meta = plan.services.find((s) => s.name === step.service);
    if (!record || record.revision !== before.revision || !isCurrentInstance(record, step.service, step.container.name) || !shouldRun(record, meta)) return undefined;
    let containerId = step.state?.id;
    if (containerId === undefined) {
      await ensureNetworks(this.#ctx, record, plan);
      await ensureVolumes(this.#ctx, record, plan);
      containerId = await this.#ctx.engine.createContainer(step.container);
    }
    const name = step.container.name;
    this.#loops.restarted(name);
    const facts = this.#loops.facts(name, Date.now());
    this.note({ kind: 'instance-restarted', deployment: record.name, service: step.service, instance: name, detail: `${step.reason}; the deployment should run${facts ? ` (restart ${facts.restarts})` : ''}` });
    this.#log.info({ deployment: record.name, instance: name, reason: step.reason }, 'starting an instance that should run');
    await this.#ctx.engine.startContainer(containerId);
    return containerId;
  }

  /** Waits until the started instances settle and pass their health checks (a failure dies and is counted). */
  async #waitHealthy(record: DeploymentRecord, plan: StoredPlan, started: Map<string, string>): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    await Promise.all(
      [...started].map(async ([service, containerId]) => {
        try {
          await assertStillRunning(this.#ctx, containerId, service);
          const state = await this.#ctx.engine.inspectContainer(containerId);
          if (state?.health !== undefined) await waitFor(this.#ctx, containerId, service, 'healthy', this.#startTimeoutMs);
          const meta = plan.services.find((s) => s.name === service);
          if (meta?.health && meta.route) await waitReady(this.#ctx, containerId, meta, routedPort(record, meta), this.#startTimeoutMs);
        } catch (error) {
          this.#log.warn({ deployment: record.name, service, error: (error as Error).message.split('\n')[0] }, 'a restarted instance is not healthy');
        }
      }),
    );
  }
}
