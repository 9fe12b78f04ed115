/**
 * One health probe of one instance, as `x-depad.health` asks: an HTTP GET on its published port
 * (expecting a status), a TCP connect to its container address (docker-proxy accepts on the
 * published port before the application listens), or a command run in the container (exit 0).
 * Used before routing to a new instance (ready.ts) and by the agent's periodic checks.
 */
import net from 'node:net';
import type { ServicePlan } from '../engine/types.ts';
import type { Engine } from '../engine/engine.ts';

/** Where the instance is. */
export interface ProbeTarget {
  containerId: string;
  /** Its routed host port, for HTTP. */
  hostPort: number | undefined;
  /** Its address on its network, for TCP. */
  containerIp: string | undefined;
}

/** Runs `service`'s probe once: true, or what went wrong (bounded by `timeoutMs`). */
export async function runProbe(engine: Pick<Engine, 'exec'>, service: ServicePlan, target: ProbeTarget, timeoutMs: number): Promise<true | string> {
  const check = service.health;
  if (check === undefined) return 'no probe';
  if (check.kind === 'command') {
    const timer = new Promise<string>((resolve) => setTimeout(() => resolve(`${check.command.join(' ')} took longer than ${timeoutMs} ms`), timeoutMs).unref());
    const run = engine.exec(target.containerId, check.command).then(
      (r) => (r.exitCode === 0 ? (true as const) : `${check.command.join(' ')} exited ${r.exitCode}${r.stderr || r.stdout ? `: ${(r.stderr || r.stdout).trim().slice(0, 200)}` : ''}`),
      (e: Error) => `${check.command.join(' ')} could not run: ${e.message}`,
    );
    return Promise.race([run, timer]);
  }
  const host = service.upstreamHost;
  if (check.kind === 'tcp') {
    const to = target.containerIp && service.route ? { host: target.containerIp, port: service.route.port } : { host, port: target.hostPort ?? 0 };
    return new Promise((resolve) => {
      const socket = net.connect({ ...to, timeout: timeoutMs });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('timeout', () => (socket.destroy(), resolve('connect timed out')));
      socket.once('error', (e) => resolve(e.message));
    });
  }
  if (target.hostPort === undefined) return 'no published port to check';
  try {
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${target.hostPort}${check.path}`;
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { connection: 'close' } });
    await response.arrayBuffer();
    return response.status === check.status ? true : `GET ${check.path} answered ${response.status}, expected ${check.status}`;
  } catch (error) {
    return `GET ${check.path} failed: ${(error as Error).message}`;
  }
}

/** How a probe reads in progress lines and status output. */
export function probeText(service: ServicePlan): string {
  const check = service.health;
  if (check === undefined) return 'its own health check';
  return check.kind === 'http' ? `GET ${check.path}` : check.kind === 'tcp' ? 'tcp connect' : check.command.join(' ');
}
