/**
 * Is a new instance ready for traffic? Its container health check when it has one, then the
 * check from the host that the service's `x-depad.health` asks for. A routed service with
 * neither must at least accept a TCP connection on its container port (the proxy never routes
 * to a port nobody listens on yet) and still run after the settle time; any other: still
 * running after the settle time.
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
  const started = Date.now();
  const target = { containerId: id, hostPort, containerIp: Object.values(state?.networks ?? {}).find(Boolean) };
  const probed = readinessProbe(service, state?.health !== undefined, target.containerIp !== undefined);
  if (probed.health && (hostPort !== undefined || probed.health.kind !== 'http')) {
    ctx.progress({ step: 'wait', service: service.name, message: `checking ${label}${hostPort !== undefined ? ` on port ${hostPort}` : ''} (${probeText(probed)})` });
    let last = 'no answer yet';
    for (let delay = 50; ; delay = Math.min(delay * 2, 250)) {
      const result = await untilAborted(runProbe(ctx.engine, probed, target, 2000), ctx.signal);
      // Interrupted: stop now (never route to an instance that did not pass), the caller undoes.
      if (ctx.signal?.aborted) throw interrupted(`check:${service.name}`);
      if (result === true) break;
      last = result as string;
      const now = await ctx.engine.inspectContainer(id);
      if (!now?.running) throw await failure(ctx, now ?? state!, service.name, 'stopped while depad checked it');
      if (Date.now() >= deadline) throw await failure(ctx, now, service.name, probed === service ? `did not pass its health check within ${Math.round(timeoutMs / 1000)} s: ${last}` : `accepted no connection on its port ${service.route!.port} within ${Math.round(timeoutMs / 1000)} s (${last}): check x-depad.port, or give it an x-depad.health check`, 'DEPAD_TIMEOUT');
      await pause(delay, ctx.signal);
    }
  }
  if (state?.health === undefined && !service.health) {
    await pause(Math.max(0, started + SETTLE_MS - Date.now()), ctx.signal);
    if (ctx.signal?.aborted) throw interrupted(`settle:${service.name}`);
    await assertStillRunning(ctx, id, service.name);
  }
}

/**
 * The service as the readiness wait probes it: its own `x-depad.health`; for a routed service
 * with no check at all (none in the image either) and an address on a network, a TCP connect to
 * its container port (the host port would not do: docker-proxy accepts before the app listens).
 */
export function readinessProbe(service: ServicePlan, imageCheck: boolean, hasAddress: boolean): ServicePlan {
  if (service.health || imageCheck || !service.route || !hasAddress) return service;
  return { ...service, health: { kind: 'tcp' } };
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
