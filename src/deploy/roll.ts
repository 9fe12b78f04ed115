/**
 * Replacing a service's replicas batch by batch, as its `deploy.update_config` says
 * (service-rollout.ts): `parallelism` replicas at a time, `delay` between batches.
 *   start-first: start the batch's new replicas (fresh ports) → wait until ready → watch them for
 *     `monitor` → add them to the route and take as many old ones out → drain those → stop them
 *   stop-first: take the batch's old replicas out of the route → drain → stop → start new ones →
 *     wait until ready → watch → add them to the route
 * Capacity never drops below N − parallelism ready replicas serving. Scaling is the same walk with
 * unequal sides: more new replicas than old ones start in the last batches, fewer leave.
 * A failed new replica: while failures stay within `max_failure_ratio` of the replicas, or with
 * `failure_action: continue`, its slot keeps its old replica (held) and the roll goes on; past it,
 * `rollback` throws (`revertRoll` then puts every old replica back and removes the new ones) and
 * `pause` stops the roll there, the slots not reached keeping their old replicas too. Held slots
 * need one old replica per new one: a roll that also scales throws at the first failure.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ContainerPlan, ContainerState, ServicePlan } from '../engine/types.ts';
import type { RolloutPolicy } from '../config/service-rollout.ts';
import { currentInstances } from '../render/names.ts';
import { routedPort } from '../render/routes.ts';
import { checkpoint, type OpContext } from './context.ts';
import { waitReady } from './ready.ts';
import { publishRoutes } from './routing.ts';
import { routingOf, type Transition } from './swap.ts';
import { assertStillRunning } from './wait.ts';
import { counted } from '../plural.ts';

/** A roll so far: enough to undo it. */
export interface Roll {
  service: string;
  /** The old replicas, in replica order; `state` undefined when its container is gone. */
  olds: { instance: number; state: ContainerState | undefined }[];
  /** New replicas made so far (and not removed again). */
  news: { instance: number; id: string }[];
  /** Old replicas that keep their slot (instance numbers): the commit must not remove them. */
  held: number[];
  /** The routing state before: the service's instance number and replicas. */
  before: { instance: number | undefined; replicas: number[] | undefined };
}

/** One slot (replica 1…N) that kept its old replica: a tolerated failure, or not reached when paused. */
export interface HeldReplica {
  replica: number;
  /** The old replica's instance number, which stays. */
  instance: number;
  /** The new instance number it stands in for. */
  instead: number;
  /** Why: the new replica's failure, or the pause. */
  reason: string;
}

/** What a roll left behind when not every slot got its new replica. */
export interface RollOutcome {
  held: HeldReplica[];
  /** Set when `failure_action: pause` stopped the roll: why. */
  paused?: string;
}

/** Starts a roll's record (before anything is made, so a failure at any point can be undone). */
export function beginRoll(t: Transition, service: string, olds: Roll['olds']): Roll {
  return { service, olds, news: [], held: [], before: { instance: t.instances[service], ...{ replicas: t.replicas[service] ? [...t.replicas[service]!] : undefined } } };
}

/** The serving replicas of `service` in the transition are `list` (in replica order). */
function serve(t: Transition, service: string, list: number[]): void {
  t.replicas[service] = list;
  if (list.length > 0) t.instances[service] = Math.max(...list);
}

/**
 * Rolls `service` from `roll.olds` to new replicas made from `plans` (in replica order, each with
 * its instance number), as `policy` says. Old replicas are only stopped: the update removes them
 * once every service has succeeded (all but the held ones the outcome lists).
 */
export async function rollService(
  ctx: OpContext,
  t: Transition,
  roll: Roll,
  plans: readonly { plan: ContainerPlan; instance: number }[],
  meta: ServicePlan,
  policy: Required<RolloutPolicy>,
  timeoutMs: number,
  /** The replicas when it is done, in replica order (default: the new ones; a scale keeps some old ones). */
  final: readonly number[] = plans.map((p) => p.instance),
): Promise<RollOutcome> {
  const service = roll.service;
  const size = policy.parallelism === 0 ? Math.max(plans.length, roll.olds.length) : policy.parallelism;
  const pendingNew = [...plans];
  const pendingOld = roll.olds.filter((o) => o.state?.running === true);
  // Slots pair one old replica with its new one: only then can a failed slot keep its old replica.
  const paired = plans.length === roll.olds.length && pendingOld.length === roll.olds.length && final.length === plans.length;
  const allowed = paired ? (policy.failureAction === 'continue' ? Infinity : Math.floor(policy.maxFailureRatio * plans.length + 1e-9)) : 0;
  const outcome: RollOutcome = { held: [] };
  // What serves now: the current replicas, less old ones known not to run.
  let serving = currentInstances(t, service).filter((n) => !roll.olds.some((o) => o.instance === n && o.state?.running !== true));
  const stopFirst = policy.order === 'stop-first';
  const total = Math.ceil(Math.max(plans.length, pendingOld.length) / size);
  const stay = final.length - plans.length;
  const route = () => publishRoutes(ctx, routingOf(t), t.services);
  const idle = plans.length === 0 && pendingOld.length === 0 && final.length === 0;
  ctx.progress({
    step: 'roll',
    service,
    message: idle
      ? `${service}: its config changed; it runs no container (replicas: 0), so a scale starts the new one`
      : stay > 0
        ? `${service}: ${stay === 1 ? '1 replica stays' : `${stay} replicas stay`}; adding ${plans.length}, removing ${pendingOld.length}, ${size} at a time`
        : pendingOld.length === 0
          ? `${service}: starting ${counted(plans.length, 'replica')}, ${size} at a time`
          : plans.length === 0
            ? `${service}: removing its ${pendingOld.length === 1 ? 'replica' : counted(pendingOld.length, 'replica')}`
            : `replacing ${service}'s ${pendingOld.length === 1 ? 'replica' : counted(pendingOld.length, 'replica')} by ${plans.length}, ${size} at a time (${policy.order})`,
  });
  for (let batch = 1; pendingNew.length > 0 || pendingOld.length > 0; batch++) {
    const news = pendingNew.splice(0, size);
    const olds = pendingOld.splice(0, size);
    const label = `${service} batch ${batch}/${total}`;
    const takeOut = async (leaving: typeof olds) => {
      if (leaving.length === 0) return;
      serving = serving.filter((n) => !leaving.some((o) => o.instance === n));
      serve(t, service, serving);
      await route();
      await Promise.all(leaving.map(async (o) => {
        const port = routedPort(t, meta, o.instance);
        if (port !== undefined) await ctx.routes.drain({ host: meta.upstreamHost, port }, meta.drainTimeoutMs);
      }));
      for (const o of leaving) {
        ctx.progress({ step: 'stop', service, message: `${label}: stopping the old ${o.state!.name}` });
        await ctx.engine.stopContainer(o.state!.id, plans[0]?.plan.body.StopTimeout);
      }
    };
    if (stopFirst) await takeOut(olds);
    const made: { instance: number; id: string }[] = [];
    for (const { plan, instance } of news) {
      ctx.progress({ step: 'start', service, message: `${label}: starting ${plan.name}` });
      const id = await ctx.engine.createContainer(plan);
      roll.news.push({ instance, id });
      made.push({ instance, id });
      await ctx.engine.startContainer(id);
    }
    checkpoint(ctx, `roll:${service}:${batch}`);
    const failed = new Map<number, Error>(); // instance → why
    const check = async (each: (m: (typeof made)[number]) => Promise<void>) => {
      const results = await Promise.allSettled(made.filter((m) => !failed.has(m.instance)).map(async (m) => [m, await each(m)] as const));
      const list = made.filter((m) => !failed.has(m.instance));
      results.forEach((r, i) => { if (r.status === 'rejected') failed.set(list[i]!.instance, r.reason instanceof Error ? r.reason : new Error(String(r.reason))); });
    };
    await check((m) => waitReady(ctx, m.id, meta, routedPort(t, meta, m.instance), timeoutMs));
    if (policy.monitorMs > 0 && made.length > failed.size) {
      ctx.progress({ step: 'wait', service, message: `${label}: watching the new replicas for ${Math.round(policy.monitorMs / 1000)} s (update_config.monitor)` });
      await sleep(policy.monitorMs, undefined, ctx.signal ? { signal: ctx.signal } : {}).catch(() => undefined);
      await check((m) => assertStillRunning(ctx, m.id, service));
    }
    const failures = outcome.held.length + failed.size;
    if (failed.size > 0 && (failures > allowed && policy.failureAction === 'rollback' || !paired)) throw failed.values().next().value!;
    // Failed slots keep their old replica (stop-first: started again); the others get their new one.
    const slot = (m: { instance: number }) => plans.findIndex((p) => p.instance === m.instance);
    const heldOlds: typeof olds = [];
    for (const m of made.filter((x) => failed.has(x.instance))) {
      const i = slot(m);
      const old = roll.olds[i]!;
      const reason = failed.get(m.instance)!.message;
      ctx.progress({ step: 'warning', service, message: `${label}: replica ${i + 1} keeps its old container ${old.state!.name}: ${reason}` });
      await ctx.engine.removeContainer(m.id);
      roll.news = roll.news.filter((n) => n.id !== m.id);
      roll.held.push(old.instance);
      outcome.held.push({ replica: i + 1, instance: old.instance, instead: m.instance, reason });
      heldOlds.push(old);
    }
    if (stopFirst && heldOlds.length > 0) {
      for (const o of heldOlds) await ctx.engine.startContainer(o.state!.id);
      await Promise.all(heldOlds.map((o) => waitReady(ctx, o.state!.id, meta, routedPort(t, meta, o.instance), timeoutMs)));
    }
    const joined = made.filter((m) => !failed.has(m.instance));
    serving = [...serving, ...(stopFirst ? heldOlds.map((o) => o.instance) : []), ...joined.map((m) => m.instance)];
    serve(t, service, serving);
    await route();
    if (joined.length > 0) ctx.progress({ step: 'switch', service, message: meta.route ? `${label}: route ${service} → ${serving.length} replicas` : `${label}: ${serving.length} replicas of ${service} run` });
    if (!stopFirst) await takeOut(olds.filter((o) => !heldOlds.includes(o)));
    if (failed.size > 0 && failures > allowed && policy.failureAction === 'pause') {
      // Paused: the slots not reached keep their old replicas, which still serve.
      const why = `${service}: ${failures} of ${plans.length} new replicas failed (max_failure_ratio ${policy.maxFailureRatio}); failure_action: pause stopped the roll after batch ${batch}/${total}`;
      for (const p of pendingNew) {
        const old = roll.olds[slot(p)]!;
        roll.held.push(old.instance);
        outcome.held.push({ replica: slot(p) + 1, instance: old.instance, instead: p.instance, reason: 'not reached: the update paused' });
      }
      outcome.paused = why;
      ctx.progress({ step: 'warning', service, message: why });
      break;
    }
    if (policy.delayMs > 0 && (pendingNew.length > 0 || pendingOld.length > 0)) await sleep(policy.delayMs);
  }
  // The replicas in replica order (the route already holds exactly them): a held slot, its old one.
  serve(t, service, final.map((n) => outcome.held.find((h) => h.instead === n)?.instance ?? n));
  return outcome;
}

/** Undoes a roll: the old replicas back (started, ready, routed), the new ones removed. */
export async function revertRoll(ctx: OpContext, t: Transition, roll: Roll, meta: ServicePlan, timeoutMs: number): Promise<void> {
  ctx.progress({ step: 'undo', service: roll.service, message: `putting the old ${roll.service} replicas back` });
  const back = roll.olds.filter((o) => o.state !== undefined && o.state.running);
  for (const o of back) await ctx.engine.startContainer(o.state!.id);
  await Promise.all(back.map((o) => waitReady(ctx, o.state!.id, meta, routedPort(t, meta, o.instance), timeoutMs)));
  if (roll.before.replicas) t.replicas[roll.service] = roll.before.replicas;
  else delete t.replicas[roll.service];
  if (roll.before.instance !== undefined) t.instances[roll.service] = roll.before.instance;
  else delete t.instances[roll.service];
  await publishRoutes(ctx, routingOf(t), t.services);
  for (const n of roll.news) await ctx.engine.removeContainer(n.id);
}
