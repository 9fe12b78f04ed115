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
  const status = await httpStatus(host, target.hostPort, check.path, timeoutMs);
  if (typeof status === 'string') return `GET ${check.path} failed: ${status}`;
  return status === check.status ? true : `GET ${check.path} answered ${status}, expected ${check.status}`;
}

/**
 * The status code of `GET path` (HTTP/1.0, one connection, the rest of the answer ignored), or
 * what went wrong. A raw socket: the agent runs hundreds of these, and a fetch costs several
 * times the CPU.
 */
function httpStatus(host: string, port: number, path: string, timeoutMs: number): Promise<number | string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let head = '';
    const done = (result: number | string) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer within ${timeoutMs} ms`));
    socket.once('connect', () => socket.write(`GET ${path} HTTP/1.0\r\nHost: ${host.includes(':') ? `[${host}]` : host}:${port}\r\nUser-Agent: depad-health\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const lineEnd = head.indexOf('\r\n');
      if (lineEnd === -1 && head.length < 1024) return;
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      done(match ? Number(match[1]) : 'not an HTTP answer');
    });
    socket.once('end', () => done(head === '' ? 'the connection closed without an answer' : 'not an HTTP answer'));
    socket.once('error', (error) => done(error.message));
  });
}

/** How a probe reads in progress lines and status output. */
export function probeText(service: ServicePlan): string {
  const check = service.health;
  if (check === undefined) return 'its own health check';
  return check.kind === 'http' ? `GET ${check.path}` : check.kind === 'tcp' ? 'tcp connect' : check.command.join(' ');
}
