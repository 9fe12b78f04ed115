/**
 * Is a new instance ready for traffic? Its container health check when it has one, then the
 * check from the host that the service's `x-depad.health` asks for, else: still running after
 * the settle time.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { DepadError } from '../errors.ts';
import type { ServicePlan } from '../engine/types.ts';
import type { OpContext } from './context.ts';
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
  if (service.health && hostPort !== undefined) {
    ctx.progress({ step: 'wait', service: service.name, message: `checking ${label} on port ${hostPort} (${service.health.kind === 'http' ? `GET ${service.health.path}` : 'tcp connect'})` });
    let last = 'no answer yet';
    // A TCP check goes to the container's own address: docker-proxy accepts on the published
    // port before the application listens, so a connect there proves nothing.
    const direct = Object.values(state?.networks ?? {}).find(Boolean);
    for (let delay = 50; ; delay = Math.min(delay * 2, 250)) {
      const result = await probe(service, hostPort, direct);
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

/** One check from the host: true, or what went wrong. TCP goes to `containerIp` on the container port when known. */
async function probe(service: ServicePlan, port: number, containerIp: string | undefined): Promise<true | string> {
  const host = service.upstreamHost;
  const check = service.health!;
  if (check.kind === 'tcp') {
    const target = containerIp && service.route ? { host: containerIp, port: service.route.port } : { host, port };
    return new Promise((resolve) => {
      const socket = net.connect({ ...target, timeout: 2000 });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('timeout', () => (socket.destroy(), resolve('connect timed out')));
      socket.once('error', (e) => resolve(e.message));
    });
  }
  try {
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}${check.path}`;
    const response = await fetch(url, { signal: AbortSignal.timeout(2000), headers: { connection: 'close' } });
    await response.arrayBuffer();
    return response.status === check.status ? true : `GET ${check.path} answered ${response.status}, expected ${check.status}`;
  } catch (error) {
    return `GET ${check.path} failed: ${(error as Error).message}`;
  }
}
