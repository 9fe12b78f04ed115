/** Waiting for an instance to be started, healthy or completed, with a useful error when it is not. */
import { setTimeout as sleep } from 'node:timers/promises';
import { DepadError } from '../errors.ts';
import type { ContainerState } from '../engine/types.ts';
import { interrupted, type OpContext } from './context.ts';

/** How long after its start an instance must still be running to count as started (ms). */
export const SETTLE_MS = Number(process.env.DEPAD_SETTLE_MS ?? 500);

/** How many of a failed instance's last log lines an error quotes. */
export const QUOTED_LOG_LINES = 20;

/** Waits `ms`, or less when `signal` aborts first (the caller then sees `signal.aborted`). */
export function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return sleep(ms, undefined, signal === undefined ? {} : { signal }).catch(() => {});
}

/** What to wait for. */
export type WaitCondition = 'healthy' | 'completed';

/** Polls until the container satisfies `condition`; fails fast when it cannot any more. */
export async function waitFor(ctx: OpContext, id: string, service: string, condition: WaitCondition, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 50;
  for (;;) {
    if (ctx.signal?.aborted) throw interrupted(`wait:${service}`);
    const state = await ctx.engine.inspectContainer(id);
    if (!state) throw new DepadError('DEPAD_SERVICE_FAILED', `service ${service}: its container disappeared while depad waited for it`);
    if (condition === 'healthy') {
      if (state.health === 'healthy') return;
      if (state.health === undefined) {
        throw new DepadError('DEPAD_SERVICE_FAILED', `service ${service} has no health check, so nothing can wait for it to be healthy`, {
          hint: `give ${service} a healthcheck, or use condition: service_started`,
        });
      }
      if (state.health === 'unhealthy' || !state.running) throw await failure(ctx, state, service, 'did not become healthy');
    } else if (!state.running && state.status !== 'created') {
      if (state.exitCode === 0) return;
      throw await failure(ctx, state, service, 'did not complete successfully');
    }
    if (Date.now() >= deadline) {
      throw await failure(ctx, state, service, `was not ${condition} after ${Math.round(timeoutMs / 1000)} s`, 'DEPAD_TIMEOUT');
    }
    await pause(delay, ctx.signal);
    // Interrupted (Ctrl-C, or the agent's client gone): stop waiting now, the caller undoes.
    if (ctx.signal?.aborted) throw interrupted(`wait:${service}`);
    delay = Math.min(delay * 2, 100);
  }
}

/** Fails when an instance that should keep running has exited or is restarting. */
export async function assertStillRunning(ctx: OpContext, id: string, service: string): Promise<void> {
  const state = await ctx.engine.inspectContainer(id);
  if (!state) throw new DepadError('DEPAD_SERVICE_FAILED', `service ${service}: its container disappeared after starting`);
  const crashed = (!state.running && state.exitCode !== 0) || state.status === 'restarting' || state.restartCount > 0;
  if (crashed) throw await failure(ctx, state, service, 'stopped right after it started');
}

/** An error for a failed instance, quoting its exit code, health log and last log lines. */
export async function failure(
  ctx: OpContext,
  state: ContainerState,
  service: string,
  what: string,
  code: 'DEPAD_SERVICE_FAILED' | 'DEPAD_TIMEOUT' = 'DEPAD_SERVICE_FAILED',
): Promise<DepadError> {
  const lines: string[] = [];
  try {
    await ctx.engine.logs(state.id, { follow: false, tail: QUOTED_LOG_LINES }, (l) => lines.push(l.text));
  } catch {
    // the logs are a courtesy; the failure is what matters
  }
  // An instance the engine restarts (unless-stopped) may be running again, its exit code reset: its next exit says why.
  let exitCode: number | undefined = state.running ? undefined : state.exitCode;
  if (state.running && state.restartCount > 0) {
    let timer: NodeJS.Timeout | undefined;
    const wait = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), 3000)));
    exitCode = await Promise.race([ctx.engine.waitContainer(state.id).catch(() => undefined), wait]);
    clearTimeout(timer);
  }
  const facts = [
    exitCode === undefined ? `state ${state.status}` : `exit code ${exitCode}`,
    state.restartCount ? `restarted ${state.restartCount} times` : '',
    state.health ? `health ${state.health}` : '',
    state.error ? `engine says: ${state.error}` : '',
  ].filter(Boolean);
  let message = `service ${service} ${what} (${facts.join(', ')})`;
  const health = state.healthLog.filter(Boolean).slice(-3);
  if (health.length) message += `\n  last health checks:\n${health.map((h) => `    ${h}`).join('\n')}`;
  if (lines.length) message += `\n  last ${lines.length === 1 ? 'log line' : `${lines.length} log lines`} of ${state.name}:\n${lines.map((l) => `    ${l}`).join('\n')}`;
  // The logs are quoted here: a failed create or update removes the instance, and its logs with it.
  return new DepadError(code, message, {
    hint: lines.length ? 'fix the service (its last log lines are quoted above) and run the command again' : 'fix the service and run the command again',
    details: { service, exitCode: exitCode ?? state.exitCode, status: state.status, logs: lines },
  });
}
