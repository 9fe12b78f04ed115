/**
 * Is a new instance ready for traffic? Its container health check when it has one, then the
 * check from the host that the service's `x-depad.health` asks for, else: still running after
 * the settle time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DepadError } from '../errors.ts';
import type { ServicePlan } from '../engine/types.ts';
import type { OpContext } from './context.ts';
import { probeText, runProbe } from './probe.ts';
import { SETTLE_MS, assertStillRunning, failure, waitFor } from './wait.ts';

/** Waits until the instance `id` of `service` may take traffic; `hostPort` is its routed port on the host. */
export async function waitReady(ctx: OpContext, id: string, service: ServicePlan, hostPort: number | undefined, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const state = await ctx.engine.inspectContainer(id);
  const label = state?.name ?? service.name;
  if (state?.health !== undefined) {
    ctx.progress({ step: 'wait', service: service.name, message: `waiting for ${label} to be healthy` });
    await waitFor(ctx, id, service.name, 'healthy', timeoutMs);
  }
  if (service.health && (hostPort !== undefined || service.health.kind === 'command')) {
    ctx.progress({ step: 'wait', service: service.name, message: `checking ${label}${hostPort !== undefined ? ` on port ${hostPort}` : ''} (${probeText(service)})` });
    let last = 'no answer yet';
    const target = { containerId: id, hostPort, containerIp: Object.values(state?.networks ?? {}).find(Boolean) };
    for (let delay = 50; ; delay = Math.min(delay * 2, 250)) {
      const result = await runProbe(ctx.engine, service, target, 2000);
      if (result === true || ctx.signal?.aborted) return; // aborted: the caller reports why
      last = result;
      const now = await ctx.engine.inspectContainer(id);
      if (!now?.running) throw await failure(ctx, now ?? state!, service.name, 'stopped while depad checked it');
      if (Date.now() >= deadline) {
        throw new DepadError('DEPAD_TIMEOUT', `${label} did not pass its health check within ${Math.round(timeoutMs / 1000)} s: ${last}`, {
          hint: 'the old instance keeps serving; fix the service and update again',
        });
      }
      await sleep(delay);
    }
  }
  if (state?.health === undefined && !service.health) {
    await sleep(SETTLE_MS);
    await assertStillRunning(ctx, id, service.name);
  }
}
