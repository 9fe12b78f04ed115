/**
 * bench/replicas: replicas behind `depad proxy`, on this machine's engine.
 *   rolling:    4 replicas of node-app under `hey`; `depad update` to the other image with
 *               update_config.parallelism 1, then 2: failed requests, worst latency, total time.
 *   throughput: 1, 2 and 4 replicas of a CPU-bound route (node-app /cpu?n=N: a fixed amount of hashing per request) under the same
 *               `hey` load, side by side in one run: requests/s and the ratio to 1 replica.
 * Everything it makes is in a scratch home and removed at the end.
 *   scripts/node bench/replicas.ts [rolling|throughput|all] [--concurrency 16] [--seconds 10] [--rounds 5000]
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort, hey, waitForPort, type HeyResult } from './measure.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const depad = path.join(root, 'bin/depad');
const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const mode = args.find((a) => ['rolling', 'throughput', 'all'].includes(a)) ?? 'all';
const concurrency = flag('--concurrency', 16);
const seconds = flag('--seconds', 10);
const rounds = flag('--rounds', 5000);
const home = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-bench-replicas-'));
const env = { ...process.env, DEPAD_HOME: home, DEPAD_PORT_RANGE: '62000-62999' };

const config = (replicas: number, parallelism: number) => `services:
  web:
    image: depad-example/node-app:\${WEB:-1}
    deploy:
      replicas: ${replicas}
      update_config: {parallelism: ${parallelism}}
    x-depad:
      expose: http
      port: 8080
      health: { http: /health, status: 200 }
      drain_timeout: 5s
`;

async function deploy(name: string, replicas: number, parallelism: number): Promise<void> {
  const file = path.join(home, `${name}.yml`);
  await fs.writeFile(file, config(replicas, parallelism));
  await run(depad, ['create', '-n', name, '-f', file], { env });
}

const line = (label: string, r: HeyResult) => `${label.padEnd(34)} ${String(r.requests).padStart(7)} requests, ${String(r.failed).padStart(4)} failed, worst ${Math.round(r.slowestMs)} ms, ${Math.round(r.rps)} req/s${r.failed ? ` (${r.statuses}; ${r.errors})` : ''}`;

async function rolling(port: number): Promise<void> {
  console.log(`rolling update of 4 replicas under hey -c ${concurrency} through the proxy`);
  for (const parallelism of [1, 2]) {
    const name = `roll${parallelism}`;
    await deploy(name, 4, parallelism);
    const load = hey(`http://127.0.0.1:${port}/info`, concurrency, `web.${name}.localhost`);
    await sleep(1000);
    const started = performance.now();
    await run(depad, ['update', name, '-e', 'WEB=2'], { env });
    const took = (performance.now() - started) / 1000;
    await sleep(1000);
    console.log(`${line(`parallelism ${parallelism}: update ${took.toFixed(1)} s`, await load.stop())}`);
    await run(depad, ['destroy', name], { env });
  }
}

async function throughput(port: number): Promise<void> {
  console.log(`CPU-bound route (/cpu?n=${rounds}) under hey -c ${concurrency} for ${seconds} s, ${os.cpus().length} cores`);
  const rates: Record<number, number> = {};
  for (const replicas of [1, 2, 4]) {
    const name = `cpu${replicas}`;
    await deploy(name, replicas, 1);
    const load = hey(`http://127.0.0.1:${port}/cpu?n=${rounds}`, concurrency, `web.${name}.localhost`);
    await sleep(seconds * 1000);
    const r = await load.stop();
    rates[replicas] = r.rps;
    console.log(`${line(`${replicas} replica${replicas > 1 ? 's' : ''}`, r)}, ${(r.rps / rates[1]!).toFixed(2)}× 1 replica`);
    await run(depad, ['destroy', name], { env });
  }
}

const port = await freePort();
const proxy = spawn(depad, ['proxy', '--http-port', String(port), '--http-host', '127.0.0.1', '--tcp-host', '127.0.0.1'], { env, stdio: 'ignore' });
try {
  await waitForPort(port);
  if (mode === 'rolling' || mode === 'all') await rolling(port);
  if (mode === 'throughput' || mode === 'all') await throughput(port);
} finally {
  proxy.kill('SIGTERM');
  for (const name of ['roll1', 'roll2', 'cpu1', 'cpu2', 'cpu4']) await run(depad, ['destroy', name], { env }).catch(() => undefined);
  await fs.rm(home, { recursive: true, force: true });
}
