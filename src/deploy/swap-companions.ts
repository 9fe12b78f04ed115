/**
 * The companions of a swap: services that join the swapped service's namespaces
 * (`network_mode: service:…`, namespace-groups.ts). Their new containers must join the new
 * instance, so they start right after it (before it is checked: it may serve what they listen
 * on), are checked after it, and their old ones stop just before the old instance does.
 */
import type { ContainerPlan, ContainerState, ServicePlan } from '../engine/types.ts';
import type { OpContext } from './context.ts';
import { waitReady } from './ready.ts';
import type { Swap, Transition } from './swap.ts';

/** One companion to replace: its new plan, its run-time facts, its old container (if any). */
export interface CompanionPlan {
  plan: ContainerPlan;
  meta: ServicePlan;
  old: ContainerState | undefined;
  newInstance: number;
}

/** The hooks swapService calls for its companions. */
export interface Companions {
  /** The companions' swaps so far, in the order to undo them (after their owner's). */
  readonly swaps: Swap[];
  stopOld(): Promise<void>;
  startOld(): Promise<void>;
  startNew(): Promise<void>;
  waitNew(timeoutMs: number): Promise<void>;
  /** Their owner's new instance took over: the companions' new instances are current. */
  switched(): void;
  removeNew(): Promise<void>;
}

/** The companions hooks for `list` (in dependency order). */
export function companions(ctx: OpContext, t: Transition, list: readonly CompanionPlan[]): Companions {
  const swaps: Swap[] = [];
  const running = list.filter((c) => c.old?.running === true);
  return {
    swaps,
    async stopOld() {
      for (const c of [...running].reverse()) {
        ctx.progress({ step: 'stop', service: c.plan.service, message: `stopping the old ${c.plan.service} (${c.old!.name}): it shares the namespaces of the one being replaced` });
        await ctx.engine.stopContainer(c.old!.id, c.plan.body.StopTimeout);
      }
    },
    async startOld() {
      for (const c of running) await ctx.engine.startContainer(c.old!.id);
    },
    async startNew() {
      for (const c of list) {
        ctx.progress({ step: 'start', service: c.plan.service, message: `starting the new ${c.plan.service} (${c.plan.name}) in the new instance's namespaces` });
        const newId = await ctx.engine.createContainer(c.plan);
        swaps.unshift({ service: c.plan.service, oldInstance: t.instances[c.plan.service], old: c.old, newId, newInstance: c.newInstance });
        await ctx.engine.startContainer(newId);
      }
    },
    async waitNew(timeoutMs) {
      for (const c of list) {
        const swap = swaps.find((s) => s.service === c.plan.service)!;
        await waitReady(ctx, swap.newId, c.meta, undefined, timeoutMs);
      }
    },
    switched() {
      for (const c of list) t.instances[c.plan.service] = c.newInstance;
    },
    async removeNew() {
      for (const swap of swaps.splice(0)) await ctx.engine.removeContainer(swap.newId);
    },
  };
}
