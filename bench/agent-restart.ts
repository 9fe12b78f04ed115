/**
 * bench/agent-restart: 10 agent restarts under load, two ways, in the same run:
 *   depad agent restart   the handover (src/agent/handover.ts): listening sockets passed to the new process
 *   SIGTERM + start       the old way: SIGTERM to the agent's pid, then `depad agent --daemon` again
 * and first the same load for as long with no restart, as the control for the latency.
 * The agent runs as a daemon with the webapp example (an HTTP route with WebSockets, a TCP route).
 * Load during each: `wrk` on keep-alive connections and `wrk` with `Connection: close` (a new
 * connection per request), TCP connections and WebSockets opened continuously, and `GET
 * /v1/deployments` on the agent's unix socket (Node). Prints the failed requests and connections,
 * the worst latency (proxy; API apart: it waits while the state moves) and how long the restarts
 * took (the command, start to end; the old way: SIGTERM until the new daemon listens). wrk retries
 * a refused connection at once, so the old way's failures count connection attempts.
 *   scripts/node bench/agent-restart.ts [restarts=10] [clients=4]   (wrk: apt-get install -y wrk)
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startApiProbes, startTcpProbes, startWebSocketProbes } from '../test/helpers/conn-probes.ts';
import type { ProbeStats } from '../test/helpers/conn-probes.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const depad = path.join(root, 'bin/depad');
const restarts = Number(process.argv[2] ?? 10);
const clients = Number(process.argv[3] ?? 4);
const home = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-bench-restart-'));
// Above the kernel's ephemeral range (32768–60999): no outgoing connection takes these ports.
const API_PORT = 61500;
const HTTP_PORT = 61501;
const env = { ...process.env, DEPAD_HOME: home, DEPAD_PORT_RANGE: '61000-61499' };
const HOST = 'web.bench.localhost';
const agentArgs = ['agent', '--daemon', '--api-port', String(API_PORT), '--api-host', '127.0.0.1', '--http-port', String(HTTP_PORT), '--http-host', '127.0.0.1', '--tcp-host', '127.0.0.1'];

interface WrkResult {
  requests: number;
  failed: number;
  maxMs: number;
  detail: string;
}

/** Starts wrk until stopped (SIGINT makes it print its report). */
function wrk(extra: string[]): { stop: () => Promise<WrkResult> } {
  const child = spawn('wrk', ['-t1', `-c${clients}`, '-d600s', '--timeout', '10s', '-H', `Host: ${HOST}`, ...extra, `http://127.0.0.1:${HTTP_PORT}/info`]);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const done = new Promise((resolve) => child.on('close', resolve));
  return {
    stop: async () => {
      child.kill('SIGINT');
      await done;
      const ms = (value: string, unit: string) => Number(value) * ({ us: 0.001, ms: 1, s: 1000, m: 60_000 }[unit] ?? NaN);
      const latency = /Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)\b/.exec(out);
      const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      const errors = socket ? socket.slice(1, 5).map(Number) : [0, 0, 0, 0];
      return {
        requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN),
        failed: non2xx + errors.reduce((a, b) => a + b, 0),
        maxMs: latency ? ms(latency[1] as string, latency[2] as string) : NaN,
        detail: `non-2xx ${non2xx}, connect ${errors[0]}, read ${errors[1]}, write ${errors[2]}, timeout ${errors[3]}`,
      };
    },
  };
}

async function pid(): Promise<number> {
  return Number((await fs.readFile(path.join(home, 'agent.pid'), 'utf8')).trim());
}

async function gone(p: number): Promise<void> {
  for (;;) {
    try {
      process.kill(p, 0);
    } catch {
      return;
    }
    await sleep(20);
  }
}

/** One phase: load on, `restart()` N times, load off. */
async function phase(label: string, tcpPort: number, restart: () => Promise<void>) {
  const keepAlive = wrk([]);
  const fresh = wrk(['-H', 'Connection: close']);
  const tcp = startTcpProbes({ port: tcpPort, clients: 2 });
  const ws = startWebSocketProbes({ port: HTTP_PORT, host: HOST, clients: 2 });
  const api = startApiProbes({ socketPath: path.join(home, 'agent.sock'), timeoutMs: 30_000 });
  await sleep(1000);
  const durations: number[] = [];
  for (let i = 0; i < restarts; i++) {
    const started = performance.now();
    await restart();
    durations.push(performance.now() - started);
    await sleep(500);
  }
  await sleep(500);
  const [a, b, t, w, p] = [await keepAlive.stop(), await fresh.stop(), await tcp.stop(), await ws.stop(), await api.stop()];
  return { label, keepAlive: a, fresh: b, tcp: t, ws: w, api: p, durations: durations.sort((x, y) => x - y) };
}

const viaHandover = async () => {
  await run(depad, ['agent', 'restart', '--json'], { env });
};
const viaSigterm = async () => {
  const old = await pid();
  process.kill(old, 'SIGTERM');
  await gone(old);
  await run(depad, agentArgs, { env });
};

try {
  await run('wrk', ['--version']).catch((e: { code?: string }) => {
    if (e.code === 'ENOENT') throw new Error('wrk is not installed: apt-get install -y wrk');
  });
  await run(depad, agentArgs, { env });
  await run(depad, ['create', '-n', 'bench', '-f', path.join(root, 'examples/webapp/depad.yml')], { env });
  const view = JSON.parse((await run(depad, ['inspect', 'bench', '--json'], { env })).stdout) as { services: { name: string; route?: { port?: number } }[] };
  const tcpPort = view.services.find((s) => s.name === 'db')?.route?.port as number;
  // The same load with no restart, for the machine's own latency (a shared, noisy host).
  const results = [await phase('no restart (control)', tcpPort, () => sleep(2500)), await phase('depad agent restart', tcpPort, viaHandover), await phase('SIGTERM + start', tcpPort, viaSigterm)];
  const probe = (s: ProbeStats) => `${s.failed}/${s.ok + s.failed}`.padStart(14);
  const secs = (ms: number) => `${(ms / 1000).toFixed(2)}`;
  console.log(`agent restart under load: ${restarts} restarts each; wrk -c${clients} keep-alive + wrk -c${clients} Connection: close; 2 TCP and 2 WebSocket clients; ${os.cpus().length} CPUs, load ${os.loadavg()[0]?.toFixed(1)}`);
  console.log(`${''.padEnd(22)}${'HTTP failed'.padStart(12)}${'requests'.padStart(10)}${'worst'.padStart(10)}${'TCP failed'.padStart(14)}${'WS failed'.padStart(14)}${'API failed'.padStart(14)}${'API worst'.padStart(11)}${'restart s (min/median/max)'.padStart(28)}`);
  for (const r of results) {
    const failed = r.keepAlive.failed + r.fresh.failed;
    const worst = Math.max(r.keepAlive.maxMs, r.fresh.maxMs, r.tcp.maxLatencyMs, r.ws.maxLatencyMs);
    const d = r.durations;
    console.log(`${r.label.padEnd(22)}${String(failed).padStart(12)}${String(r.keepAlive.requests + r.fresh.requests).padStart(10)}${`${worst.toFixed(0)} ms`.padStart(10)}${probe(r.tcp)}${probe(r.ws)}${probe(r.api)}${`${r.api.maxLatencyMs} ms`.padStart(11)}${`${secs(d[0] ?? 0)} / ${secs(d[Math.floor(d.length / 2)] ?? 0)} / ${secs(d.at(-1) ?? 0)}`.padStart(28)}`);
  }
  for (const r of results) {
    console.log(`${r.label}: keep-alive ${r.keepAlive.requests} (${r.keepAlive.detail}, worst ${r.keepAlive.maxMs.toFixed(0)} ms); Connection: close ${r.fresh.requests} (${r.fresh.detail}, worst ${r.fresh.maxMs.toFixed(0)} ms)`);
    if (r.tcp.failures.length + r.ws.failures.length + r.api.failures.length > 0) console.log(`  TCP: ${r.tcp.failures.slice(0, 3).join('; ')}  WS: ${r.ws.failures.slice(0, 3).join('; ')}  API: ${r.api.failures.slice(0, 3).join('; ')}`);
  }
} finally {
  await run(depad, ['destroy', 'bench'], { env }).catch(() => undefined);
  const last = await pid().catch(() => undefined);
  if (last !== undefined) {
    process.kill(last, 'SIGTERM');
    await gone(last);
  }
  await fs.rm(home, { recursive: true, force: true });
}
