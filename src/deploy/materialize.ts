/**
 * Making a deployment's plan real on the engine: networks, volumes, then containers in
 * dependency order, waiting for each `depends_on` condition. Shared by create and start.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DepadError } from '../errors.ts';
import { LABELS, type ContainerPlan, type ContainerState } from '../engine/types.ts';
import type { StoredPlan } from './root-dir.ts';
import type { DeploymentRecord } from '../store/records.ts';
import { checkpoint, type OpContext } from './context.ts';
import { waitReady } from './ready.ts';
import { routedPort } from '../render/routes.ts';
import { planInstance } from '../render/names.ts';
import { SETTLE_MS, assertStillRunning, waitFor } from './wait.ts';

/** The plan as stored with a revision. */
export type Plan = StoredPlan;

/** Creates the networks that do not exist yet; fails on a same-named network depad does not own. */
export async function ensureNetworks(ctx: OpContext, record: DeploymentRecord, plan: Plan): Promise<void> {
  for (const network of plan.networks) {
    const [existing] = await ctx.engine.listNetworks({}, network.name);
    if (existing?.labels[LABELS.deploymentId] === record.id) continue;
    if (existing) {
      throw new DepadError('DEPAD_ENGINE_CONFLICT', `network ${network.name} exists and does not belong to deployment ${record.name}`, {
        hint: `if it is left from a deployment this home no longer knows, depad doctor --fix removes it; else remove it (docker network rm ${network.name}) or choose another name`,
      });
    }
    ctx.progress({ step: 'network', message: `network ${network.name}` });
    await ctx.engine.createNetwork(network);
  }
}

/**
 * Creates missing volumes. A volume that exists with this deployment's name on its labels (kept by
 * `destroy --keep-volumes`) is reused; one that belongs to anything else is a conflict.
 */
export async function ensureVolumes(ctx: OpContext, record: DeploymentRecord, plan: Plan): Promise<void> {
  for (const volume of plan.volumes) {
    const labels = await ctx.engine.volumeLabels(volume.name);
    if (labels === undefined) {
      ctx.progress({ step: 'volume', message: `volume ${volume.name}` });
      await ctx.engine.createVolume(volume);
    } else if (labels[LABELS.deploymentId] === record.id) {
      continue;
    } else if (labels[LABELS.deployment] === record.name) {
      ctx.progress({ step: 'volume', message: `volume ${volume.name} (kept from an earlier ${record.name}, reused)` });
    } else {
      throw new DepadError('DEPAD_ENGINE_CONFLICT', `volume ${volume.name} exists and does not belong to deployment ${record.name}`, {
        hint: `remove it (docker volume rm ${volume.name}) or choose another name`,
      });
    }
  }
}

/** Options for `startServices`. */
export interface StartOptions {
  /** Services to start (default: all), always in dependency order. */
  services?: readonly string[];
  /** Wait for every started service that has a health check to be healthy (default true). */
  waitHealthy?: boolean;
  timeoutMs: number;
}

/**
 * Starts services in dependency order, creating any container that is missing from the plan.
 * Honours `depends_on` conditions, then checks nothing crashed while settling and, unless told
 * not to, that every service with a health check is healthy.
 */
export async function startServices(ctx: OpContext, record: DeploymentRecord, plan: Plan, options: StartOptions): Promise<void> {
  const wanted = new Set(options.services ?? plan.order);
  const existing = new Map((await listInstances(ctx, record)).map((c) => [c.name, c]));
  // By container name: a service's replicas are started (and checked) each.
  const started = new Map<string, { id: string; plan: ContainerPlan; at: number }>();
  const waited = new Set<string>();

  for (const container of plan.containers) {
    if (!wanted.has(container.service)) continue;
    checkpoint(ctx, `start:${container.service}`);
    for (const [dep, { condition }] of Object.entries(container.dependsOn)) {
      const targets = [...started.values()].filter((s) => s.plan.service === dep && !waited.has(s.plan.name));
      if (targets.length === 0 || condition === 'service_started') continue;
      ctx.progress({ step: 'wait', service: dep, message: `waiting for ${dep} to be ${condition === 'service_healthy' ? 'healthy' : 'completed'}` });
      await Promise.all(targets.map((target) => waitFor(ctx, target.id, dep, condition === 'service_healthy' ? 'healthy' : 'completed', options.timeoutMs)));
      for (const target of targets) waited.add(target.plan.name);
    }
    const found = existing.get(container.name);
    let id = found?.id;
    // The agent sets `no` on an instance it gave up on (a crash loop); starting it again restores the plan's.
    const policy = container.body.HostConfig.RestartPolicy;
    if (id && found && found.restartPolicy.name !== policy.Name) await ctx.engine.setRestartPolicy(id, { name: policy.Name, ...(policy.MaximumRetryCount ? { maxRetries: policy.MaximumRetryCount } : {}) });
    if (!id) {
      id = await ctx.engine.createContainer(container);
      checkpoint(ctx, `created:${container.service}`);
    }
    if (found?.running) {
      ctx.progress({ step: 'start', service: container.service, message: `${container.service} (${container.name}) is running: kept serving` });
    } else {
      ctx.progress({ step: 'start', service: container.service, message: `starting ${container.service} (${container.name})` });
      await ctx.engine.startContainer(id);
    }
    started.set(container.name, { id, plan: container, at: Date.now() });
  }

  // Two checks run side by side; the first failure stops the other: nothing crashed while
  // settling (services without a health check rely on this), and every health check passes.
  const stop = new AbortController();
  const sub: OpContext = { ...ctx, signal: ctx.signal ? AbortSignal.any([ctx.signal, stop.signal]) : stop.signal };
  const settled = async () => {
    const last = Math.max(0, ...[...started.values()].map((s) => s.at));
    const settle = last + SETTLE_MS - Date.now();
    if (settle > 0) await sleep(settle);
    await Promise.all([...started.values()].map(({ id, plan: c }) => assertStillRunning(sub, id, c.service)));
  };
  const healthy = async () => {
    if (options.waitHealthy === false) return;
    const pending = [...started.values()].filter((s) => !waited.has(s.plan.name) && s.plan.body.Healthcheck?.Test[0] !== 'NONE');
    const states = await Promise.all(pending.map((s) => ctx.engine.inspectContainer(s.id)));
    const checks = pending.filter((_, i) => states[i]?.health !== undefined);
    if (checks.length) ctx.progress({ step: 'wait', message: `waiting for ${[...new Set(checks.map((s) => s.plan.service))].join(', ')} to be healthy` });
    await Promise.all(checks.map((s) => waitFor(sub, s.id, s.plan.service, 'healthy', options.timeoutMs)));
    // Routed services must pass the check from the host (x-depad.health), each replica on its own
    // port; one with no check at all must accept a connection on its port (ready.ts).
    const probed = [...started.values()].flatMap((s) => {
      const meta = plan.services.find((m) => m.name === s.plan.service);
      return meta?.route ? [{ meta, id: s.id, instance: planInstance(s.plan) }] : [];
    });
    await Promise.all(probed.map(({ meta, id, instance }) => waitReady(sub, id, meta, routedPort(record, meta, instance), options.timeoutMs)));
  };
  try {
    await Promise.all([settled(), healthy()]);
  } finally {
    stop.abort();
  }
  checkpoint(ctx, 'started');
}

/** Stops services in reverse dependency order, each with its own stop timeout. */
export async function stopServices(ctx: OpContext, record: DeploymentRecord, plan: Plan, services?: readonly string[]): Promise<void> {
  const wanted = new Set(services ?? plan.order);
  const existing = new Map((await listInstances(ctx, record)).map((c) => [c.name, c]));
  for (const container of [...plan.containers].reverse()) {
    if (!wanted.has(container.service)) continue;
    const instance = existing.get(container.name);
    if (!instance?.running) continue;
    ctx.progress({ step: 'stop', service: container.service, message: `stopping ${container.service} (${container.name})` });
    await ctx.engine.stopContainer(instance.id, container.body.StopTimeout);
  }
}

/** Every container of the deployment on the engine (found by its ID label). */
export async function listInstances(ctx: OpContext, record: DeploymentRecord): Promise<ContainerState[]> {
  return ctx.engine.listContainers({ [LABELS.deploymentId]: record.id });
}

/**
 * Removes everything on the engine that carries the deployment's ID label, plus the named
 * volumes it used unless `keepVolumes`. Idempotent: safe to run again after a crash.
 */
export async function removeFromEngine(
  ctx: OpContext,
  deploymentId: string,
  options: { keepVolumes: boolean; volumes?: readonly string[] },
): Promise<void> {
  const label = { [LABELS.deploymentId]: deploymentId };
  const containers = await ctx.engine.listContainers(label);
  if (containers.length) ctx.progress({ step: 'remove', message: `removing ${containers.map((c) => c.name).join(', ')}` });
  await Promise.all(containers.map((c) => ctx.engine.removeContainer(c.id)));
  for (const n of await ctx.engine.listNetworks(label)) {
    ctx.progress({ step: 'remove', message: `removing network ${n.name}` });
    await ctx.engine.removeNetwork(n.id);
  }
  if (options.keepVolumes) return;
  const volumes = new Set([...(options.volumes ?? []), ...(await ctx.engine.listVolumes(label)).map((v) => v.name)]);
  for (const name of [...volumes].sort()) {
    const labels = await ctx.engine.volumeLabels(name);
    if (!labels || labels[LABELS.deployment] === undefined) continue; // never touch what depad did not make
    ctx.progress({ step: 'remove', message: `removing volume ${name}` });
    await ctx.engine.removeVolume(name);
  }
}
