/**
 * The agent's periodic health checks (R10). Every current instance of a running deployment whose
 * service has `x-depad.health` is probed every `interval` (HTTP, TCP or a command in the
 * container, see src/deploy/probe.ts), with `timeout`, `retries` and `start_period` as Docker
 * reads them; an instance whose container has its own health check (compose `healthcheck` or the
 * image's HEALTHCHECK) is followed through the engine's health events instead. Each instance has
 * a status (starting, healthy, unhealthy), its last results and, with `restart: true`, restarts
 * after it turns unhealthy, 10 s apart at first and doubling to 5 min. Every change is an event.
 * The instances are found again when the engine reports a start, a death or a removal, and once a
 * minute.
 */
import { readPlanForView } from '../deploy/root-dir.ts';
import type { OpContext } from '../deploy/context.ts';
import { runProbe } from '../deploy/probe.ts';
import { replicaOf } from '../deploy/replica-select.ts';
import type { ContainerEvent } from '../engine/events.ts';
import { LABELS } from '../engine/types.ts';
import type { ContainerState, ServicePlan } from '../engine/types.ts';
import type { Logger } from '../logger.ts';
import { containerName, currentInstances, isCurrentInstance } from '../render/names.ts';
import { routedPort } from '../render/routes.ts';
import { upstreamKey } from '../../proxy/route-table.ts';
import type { AgentEvent } from './reconciler.ts';

/** One probe's result. */
export interface HealthCheck {
  at: string;
  ok: boolean;
  ms: number;
  output: string;
}

/** Where one instance stands, as `depad health` shows it. */
export interface InstanceHealth {
  deployment: string;
  service: string;
  /** Which of the service's replicas it is (1…N). */
  replica?: number;
  /** How many current replicas the service has (set by GET /v1/health). */
  replicas?: number;
  instance: string;
  /** `http`, `tcp`, `command` (depad probes it) or `container` (its own health check). */
  probe: 'http' | 'tcp' | 'command' | 'container';
  status: 'starting' | 'healthy' | 'unhealthy';
  since: string;
  /** Consecutive failures. */
  failures: number;
  restarts: number;
  /** The last results, newest last. */
  checks: HealthCheck[];
}

interface Watched extends InstanceHealth {
  containerId: string;
  plan: ServicePlan;
  hostPort: number | undefined;
  containerIp: string | undefined;
  startedAt: number;
  lastRestart: number;
  timer?: NodeJS.Timeout;
}

const KEEP_CHECKS = 5;
const FIRST_BACKOFF_MS = 10_000;
const MAX_BACKOFF_MS = 300_000;

/** The periodic checks of one agent. */
export class HealthMonitor {
  readonly #ctx: OpContext;
  readonly #serialize: <T>(fn: () => Promise<T>) => Promise<T>;
  readonly #log: Logger;
  readonly #note: (event: Omit<AgentEvent, 'time'>) => void;
  readonly #watched = new Map<string, Watched>();
  #refreshTimer: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #stopped = false;

  readonly #markUpstream: (key: string, healthy: boolean) => void;

  /** `markUpstream` tells the proxy which upstreams (`host:port`) are unhealthy, so routes pass over them while they have another. */
  constructor(ctx: OpContext, serialize: <T>(fn: () => Promise<T>) => Promise<T>, log: Logger, note: (event: Omit<AgentEvent, 'time'>) => void, markUpstream: (key: string, healthy: boolean) => void = () => {}) {
    this.#ctx = ctx;
    this.#serialize = serialize;
    this.#log = log;
    this.#note = note;
    this.#markUpstream = markUpstream;
  }

  /** The proxy's key of an instance's routed upstream, if it has one. */
  #upstreamKey(w: Watched): string | undefined {
    return w.hostPort === undefined ? undefined : upstreamKey({ host: w.plan.upstreamHost, port: w.hostPort });
  }

  /** Finds the instances and starts checking them. */
  async start(): Promise<void> {
    await this.refresh();
    this.#refreshTimer = setInterval(() => void this.refresh(), 60_000);
    this.#refreshTimer.unref();
  }

  /** Stops every check. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#refreshTimer);
    clearTimeout(this.#debounce);
    for (const w of this.#watched.values()) clearTimeout(w.timer);
    this.#watched.clear();
  }

  /** Every watched instance, by deployment and service. */
  status(): InstanceHealth[] {
    return [...this.#watched.values()]
      .map(({ deployment, service, replica, instance, probe, status, since, failures, restarts, checks }) => ({ deployment, service, ...(replica === undefined ? {} : { replica }), instance, probe, status, since, failures, restarts, checks: [...checks] }))
      .sort((a, b) => a.deployment.localeCompare(b.deployment) || a.service.localeCompare(b.service) || (a.replica ?? 1) - (b.replica ?? 1));
  }

  /** The status of one watched instance (by container name), as `status()` lists it; undefined when it is not checked. */
  statusOf(instance: string): InstanceHealth['status'] | undefined {
    return this.#watched.get(instance)?.status;
  }

  /** An engine event (from the reconciler's watch): container health changes, and starts or ends that change the set. */
  onEngineEvent(event: ContainerEvent): void {
    const w = this.#watched.get(event.name);
    if (w?.probe === 'container' && event.action.startsWith('health_status: ')) {
      const status = event.action.slice('health_status: '.length);
      if (status === 'healthy') this.#apply(w, true, 'the container\'s health check passed', 0);
      else if (status === 'unhealthy') this.#unhealthy(w, 'the container\'s health check failed');
    }
    // Started again (docker restart, depad restart -s): a new run of the process, checked from the start.
    // (As after this monitor's own restart: an upstream marked unhealthy stays so until a check passes.)
    if (event.action === 'start' && w !== undefined && w.containerId === event.containerId && w.status !== 'starting') {
      w.status = 'starting';
      w.since = new Date().toISOString();
      w.failures = 0;
      w.startedAt = Date.now();
    }
    if (['start', 'die', 'destroy', 'create'].includes(event.action)) this.kick();
  }

  /** Finds the instances again soon (after an operation, or engine events; bursts make one refresh). */
  kick(): void {
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.refresh(), 300);
    this.#debounce.unref();
  }

  /** Finds the current instances of running deployments again; starts and stops checks to match. */
  async refresh(): Promise<void> {
    if (this.#stopped) return;
    try {
      const containers = new Map((await this.#ctx.engine.listContainers({ [LABELS.deployment]: null })).map((c) => [c.name, c]));
      const seen = new Set<string>();
      for (const record of await this.#ctx.store.listDeployments()) {
        if (record.phase !== 'ready' || record.desired !== 'running') continue;
        const plan = await readPlanForView(record.rootDir, record.revision).catch(() => undefined);
        for (const service of plan?.services ?? []) {
          if ((record.stoppedServices ?? []).includes(service.name)) continue;
          // Each current replica is watched on its own (its own upstream in the route).
          for (const instance of currentInstances(record, service.name)) {
            const name = containerName(record.name, service.name, instance);
            const c = containers.get(name);
            if (c === undefined) continue;
            // Stopped for a moment (a restart, the reconciler's or this monitor's): keep its record and restart count.
            if (!c.running && this.#watched.get(name)?.containerId === c.id) seen.add(name);
            if (!c.running) continue;
            const probe = service.health ? service.health.kind : c.health !== undefined ? 'container' : undefined;
            if (probe === undefined || (probe !== 'container' && service.monitor === undefined)) continue;
            seen.add(name);
            const known = this.#watched.get(name);
            if (known && known.containerId === c.id) continue;
            if (known) clearTimeout(known.timer);
            this.#watch(record.name, service, c, probe, routedPort(record, service, instance));
          }
        }
      }
      for (const [name, w] of this.#watched) {
        if (!seen.has(name)) {
          const key = this.#upstreamKey(w);
          if (key !== undefined) this.#markUpstream(key, true);
          clearTimeout(w.timer);
          this.#watched.delete(name);
        }
      }
    } catch (error) {
      this.#log.warn({ error: (error as Error).message }, 'could not list instances for health checks');
    }
  }

  #watch(deployment: string, plan: ServicePlan, c: ContainerState, probe: Watched['probe'], hostPort: number | undefined): void {
    const started = c.startedAt ? Date.parse(c.startedAt) : Date.now();
    const w: Watched = {
      deployment,
      service: plan.name,
      replica: replicaOf(c.labels),
      instance: c.name,
      probe,
      status: probe === 'container' ? (c.health === 'healthy' ? 'healthy' : c.health === 'unhealthy' ? 'unhealthy' : 'starting') : 'starting',
      since: new Date().toISOString(),
      failures: 0,
      restarts: 0,
      checks: c.healthLog.slice(-KEEP_CHECKS).map((output) => ({ at: new Date().toISOString(), ok: c.health === 'healthy', ms: 0, output })),
      containerId: c.id,
      plan,
      hostPort,
      containerIp: Object.values(c.networks).find(Boolean),
      startedAt: Number.isFinite(started) ? started : Date.now(),
      lastRestart: 0,
    };
    this.#watched.set(c.name, w);
    if (probe !== 'container') this.#schedule(w, Math.min(1000, plan.monitor?.intervalMs ?? 1000));
    else if (w.status === 'unhealthy') this.#unhealthy(w, 'the container\'s health check failed');
  }

  #schedule(w: Watched, delay: number): void {
    if (this.#stopped || this.#watched.get(w.instance) !== w) return;
    w.timer = setTimeout(() => void this.#check(w), delay);
    w.timer.unref();
  }

  async #check(w: Watched): Promise<void> {
    const monitor = w.plan.monitor;
    if (monitor === undefined) return;
    const started = Date.now();
    const result = await runProbe(this.#ctx.engine, w.plan, { containerId: w.containerId, hostPort: w.hostPort, containerIp: w.containerIp }, monitor.timeoutMs);
    if (this.#watched.get(w.instance) !== w) return; // replaced or gone meanwhile
    this.#apply(w, result === true, result === true ? 'ok' : result, Date.now() - started);
    this.#schedule(w, monitor.intervalMs);
  }

  #apply(w: Watched, ok: boolean, output: string, ms: number): void {
    w.checks.push({ at: new Date().toISOString(), ok, ms, output });
    if (w.checks.length > KEEP_CHECKS) w.checks.splice(0, w.checks.length - KEEP_CHECKS);
    if (ok) {
      w.failures = 0;
      if (w.status !== 'healthy') this.#change(w, 'healthy', output);
      return;
    }
    const monitor = w.plan.monitor;
    if (w.status === 'starting' && monitor && Date.now() - w.startedAt < monitor.startPeriodMs) return;
    w.failures += 1;
    if (w.failures >= (monitor?.retries ?? 1)) this.#unhealthy(w, output);
  }

  #unhealthy(w: Watched, output: string): void {
    if (w.status !== 'unhealthy') this.#change(w, 'unhealthy', output);
    if (w.plan.monitor?.restart) this.#restartLater(w);
  }

  #change(w: Watched, status: Watched['status'], detail: string): void {
    w.status = status;
    const key = this.#upstreamKey(w);
    if (key !== undefined) this.#markUpstream(key, status !== 'unhealthy');
    w.since = new Date().toISOString();
    const base = { deployment: w.deployment, service: w.service, instance: w.instance };
    // Container checks are reported by the reconciler from the same engine events.
    if (w.probe !== 'container' && status !== 'starting') this.#note({ kind: status === 'healthy' ? 'instance-healthy' : 'instance-unhealthy', ...base, detail });
    if (status === 'unhealthy') this.#log.warn({ ...base, detail }, 'an instance is unhealthy');
    else this.#log.info({ ...base }, `an instance is ${status}`);
  }

  /** Restarts an unhealthy instance now, or when its backoff ends. */
  #restartLater(w: Watched): void {
    const backoff = w.restarts === 0 ? 0 : Math.min(FIRST_BACKOFF_MS * 2 ** (w.restarts - 1), MAX_BACKOFF_MS);
    const wait = w.lastRestart + backoff - Date.now();
    if (wait > 0) {
      clearTimeout(w.timer);
      w.timer = setTimeout(() => void this.#restart(w), wait);
      w.timer.unref();
      return;
    }
    void this.#restart(w);
  }

  async #restart(w: Watched): Promise<void> {
    if (this.#watched.get(w.instance) !== w || w.status !== 'unhealthy') return;
    await this.#serialize(async () => {
      // Still the current instance of a deployment that should run? (An update or stop may have run first.)
      const id = await this.#ctx.store.idForName(w.deployment);
      const record = id === undefined ? undefined : await this.#ctx.store.getDeployment(id);
      if (record?.desired !== 'running' || (record.stoppedServices ?? []).includes(w.service) || !isCurrentInstance(record, w.service, w.instance)) return;
      w.restarts += 1;
      w.lastRestart = Date.now();
      this.#note({ kind: 'instance-restarted', deployment: w.deployment, service: w.service, instance: w.instance, detail: `unhealthy: restart ${w.restarts}` });
      this.#log.warn({ deployment: w.deployment, instance: w.instance, restarts: w.restarts }, 'restarting an unhealthy instance');
      await this.#ctx.engine.stopContainer(w.containerId, 10);
      await this.#ctx.engine.startContainer(w.containerId);
    }).catch((error: Error) => this.#log.warn({ instance: w.instance, error: error.message }, 'could not restart an unhealthy instance'));
    if (this.#watched.get(w.instance) !== w) return;
    w.status = 'starting';
    w.since = new Date().toISOString();
    w.failures = 0;
    w.startedAt = Date.now();
    if (w.probe !== 'container') {
      clearTimeout(w.timer);
      this.#schedule(w, w.plan.monitor?.intervalMs ?? 10_000);
    }
  }
}
