/**
 * Is a new instance ready for traffic? Its container health check when it has one, then the
 * check from the host that the service's `x-depad.health` asks for, else: still running after
 * the settle time.
 */
import type { ServicePlan } from '../engine/types.ts';
import { interrupted, type OpContext } from './context.ts';
import { probeText, runProbe } from './probe.ts';
import { SETTLE_MS, assertStillRunning, failure, pause, waitFor } from './wait.ts';

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
      const result = await untilAborted(runProbe(ctx.engine, service, target, 2000), ctx.signal);
      // Interrupted: stop now (never route to an instance that did not pass), the caller undoes.
      if (ctx.signal?.aborted) throw interrupted(`check:${service.name}`);
      if (result === true) return;
      last = result as string;
      const now = await ctx.engine.inspectContainer(id);
      if (!now?.running) throw await failure(ctx, now ?? state!, service.name, 'stopped while depad checked it');
      if (Date.now() >= deadline) throw await failure(ctx, now, service.name, `did not pass its health check within ${Math.round(timeoutMs / 1000)} s: ${last}`, 'DEPAD_TIMEOUT');
      await pause(delay, ctx.signal);
    }
  }
  if (state?.health === undefined && !service.health) {
    await pause(SETTLE_MS, ctx.signal);
    if (ctx.signal?.aborted) throw interrupted(`settle:${service.name}`);
    await assertStillRunning(ctx, id, service.name);
  }
}

/** `work`'s value, or `undefined` as soon as `signal` aborts (the work itself goes on, ignored). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T | undefined> {
  if (signal === undefined) return work;
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
