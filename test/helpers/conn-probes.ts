/**
 * Continuous connection probes, beside the HTTP load of load.ts: TCP clients through the proxy
 * that each loop connect → one line of the node-app's TCP protocol → close, WebSocket clients that
 * loop open → greeting → one echo → close, and API clients that loop `GET /v1/deployments` on the
 * agent's unix socket. Every failure is counted and the first ones kept; a probe that takes longer
 * than `timeoutMs` fails.
 */
import http from 'node:http';
import net from 'node:net';
import { openWebSocket } from './ws.ts';

/** What the probes saw. */
export interface ProbeStats {
  ok: number;
  failed: number;
  failures: string[];
  /** Slowest probe that succeeded, ms. */
  maxLatencyMs: number;
}

/** Running probes. */
export interface Probes {
  stats: ProbeStats;
  stop(): Promise<ProbeStats>;
}

/** Loops `once` on `clients` clients until stopped. */
function loop(clients: number, once: () => Promise<void>, timeoutMs: number): Probes {
  const stats: ProbeStats = { ok: 0, failed: 0, failures: [], maxLatencyMs: 0 };
  let running = true;
  const one = async () => {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([once(), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)))]);
      stats.ok += 1;
      stats.maxLatencyMs = Math.max(stats.maxLatencyMs, Date.now() - started);
    } catch (error) {
      stats.failed += 1;
      if (stats.failures.length < 20) stats.failures.push((error as NodeJS.ErrnoException).code ?? (error as Error).message);
    } finally {
      clearTimeout(timer);
    }
  };
  const loops = Array.from({ length: clients }, async () => {
    while (running) await one();
  });
  return {
    stats,
    async stop() {
      running = false;
      await Promise.all(loops);
      return stats;
    },
  };
}

/** One TCP exchange: connect to `port`, send `line`, resolve with the first line answered, close. */
export function tcpExchange(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let data = '';
    socket.once('connect', () => socket.write(`${line}\n`));
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString();
      const nl = data.indexOf('\n');
      if (nl < 0) return;
      socket.end();
      resolve(data.slice(0, nl).trim());
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`closed before an answer (got ${JSON.stringify(data)})`)));
  });
}

/** TCP clients on `port`, each looping connect → `VERSION` → close; an answer other than a version fails. */
export function startTcpProbes(options: { port: number; clients?: number; timeoutMs?: number }): Probes {
  return loop(
    options.clients ?? 2,
    async () => {
      const answer = await tcpExchange(options.port, 'VERSION');
      if (!/^\d+$/.test(answer)) throw new Error(`unexpected answer ${JSON.stringify(answer)}`);
    },
    options.timeoutMs ?? 10_000,
  );
}

/** WebSocket clients through the proxy on `port` with `Host: host`, each looping open → greeting → echo → close. */
export function startWebSocketProbes(options: { port: number; host: string; clients?: number; timeoutMs?: number }): Probes {
  return loop(
    options.clients ?? 2,
    async () => {
      const ws = await openWebSocket(options.port, options.host);
      try {
        const hello = await ws.next();
        const version = /^hello from (\S+)$/.exec(hello)?.[1];
        if (version === undefined) throw new Error(`unexpected greeting ${JSON.stringify(hello)}`);
        ws.send('ping');
        const echo = await ws.next();
        if (echo !== `${version}:ping`) throw new Error(`unexpected echo ${JSON.stringify(echo)}`);
      } finally {
        ws.close();
      }
      await ws.closed;
    },
    options.timeoutMs ?? 10_000,
  );
}

/** API clients on the agent's unix socket, each looping `GET /v1/deployments` (a new connection each); anything but 200 fails. */
export function startApiProbes(options: { socketPath: string; clients?: number; timeoutMs?: number }): Probes {
  return loop(
    options.clients ?? 1,
    () =>
      new Promise<void>((resolve, reject) => {
        const req = http.get({ socketPath: options.socketPath, path: '/v1/deployments', agent: false }, (res) => {
          res.resume();
          res.on('error', reject);
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
        });
        req.on('error', reject);
      }),
    options.timeoutMs ?? 10_000,
  );
}
