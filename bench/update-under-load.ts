/**
 * bench/update-under-load: `hey` saturates a route while 20 updates run back to back.
 *   depad: the webapp example behind `depad proxy`; `depad update -s web --image …` alternating
 *          node-app:2 and :1 (new instance, health check, switch, drain, retire).
 *   naive: one container on a fixed host port; each update stops it and starts the other image
 *          on the same port (`docker stop`, `docker rm`, `docker run`), hey hitting that port.
 * Same run, same load. Prints failed requests and the worst latency for each.
 *   scripts/node bench/update-under-load.ts [updates=20] [concurrency=20]
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort, hey as heyLoad, type HeyResult } from './measure.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const depad = path.join(root, 'bin/depad');
const updates = Number(process.argv[2] ?? 20);
const concurrency = Number(process.argv[3] ?? 20);
const home = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-bench-load-'));
const env = { ...process.env, DEPAD_HOME: home, DEPAD_PORT_RANGE: '63000-63999' };
const NAIVE = 'depad-bench-naive';

async function viaDepad(): Promise<{ result: HeyResult; seconds: number }> {
  const port = await freePort();
  const proxy = spawn(depad, ['proxy', '--http-port', String(port), '--http-host', '127.0.0.1', '--tcp-host', '127.0.0.1'], { env });
  try {
    await sleep(1500);
    await run(depad, ['create', '-n', 'bench', '-f', path.join(root, 'examples/webapp/depad.yml')], { env });
    const load = heyLoad(`http://127.0.0.1:${port}/info`, concurrency, 'web.bench.localhost');
    await sleep(1000);
    const started = performance.now();
    for (let i = 1; i <= updates; i++) {
      await run(depad, ['update', 'bench', '-s', 'web', '--image', `depad-example/node-app:${i % 2 === 1 ? 2 : 1}`], { env });
    }
    const seconds = (performance.now() - started) / 1000;
    await sleep(500);
    return { result: await load.stop(), seconds };
  } finally {
    await run(depad, ['destroy', 'bench'], { env }).catch(() => undefined);
    proxy.kill('SIGTERM');
  }
}

async function naive(): Promise<{ result: HeyResult; seconds: number }> {
  const port = await freePort();
  const start = (image: string) =>
    run('docker', ['run', '-d', '--name', NAIVE, '--label', 'depad.bench=naive', '-p', `127.0.0.1:${port}:8080`, image]);
  await run('docker', ['rm', '-f', NAIVE]).catch(() => undefined);
  await start('depad-example/node-app:1');
  try {
    await sleep(1000);
    const load = heyLoad(`http://127.0.0.1:${port}/info`, concurrency);
    await sleep(1000);
    const started = performance.now();
    for (let i = 1; i <= updates; i++) {
      await run('docker', ['stop', NAIVE]);
      await run('docker', ['rm', NAIVE]);
      await start(`depad-example/node-app:${i % 2 === 1 ? 2 : 1}`);
    }
    const seconds = (performance.now() - started) / 1000;
    await sleep(500);
    return { result: await load.stop(), seconds };
  } finally {
    await run('docker', ['rm', '-f', NAIVE]).catch(() => undefined);
  }
}

try {
  await run('hey', ['-n', '1', 'http://127.0.0.1:1/']).catch((e: { code?: string }) => {
    if (e.code === 'ENOENT') throw new Error('hey is not installed: apt-get install -y hey');
  });
  const d = await viaDepad();
  const n = await naive();
  const row = (label: string, r: { result: HeyResult; seconds: number }) =>
    `${label.padEnd(22)}${String(r.result.failed).padStart(8)}  ${r.result.slowestMs.toFixed(0).padStart(9)} ms  ${String(r.result.requests).padStart(9)}  ${r.result.rps.toFixed(0).padStart(7)}  ${r.seconds.toFixed(1).padStart(6)} s`;
  console.log(`update under load: ${updates} updates back to back, hey -c ${concurrency}, ${os.cpus().length} CPUs`);
  console.log(`${''.padEnd(22)}${'failed'.padStart(8)}  ${'worst'.padStart(12)}  ${'requests'.padStart(9)}  ${'req/s'.padStart(7)}  ${'updates'.padStart(8)}`);
  console.log(row('depad (proxy)', d));
  console.log(row('naive (stop + start)', n));
  console.log(`depad: ${d.result.statuses}${d.result.errors ? `; errors: ${d.result.errors}` : ''}`);
  console.log(`naive: ${n.result.statuses}${n.result.errors ? `; errors: ${n.result.errors}` : ''}`);
  console.log(`goals: 0 failed (depad ${d.result.failed === 0 ? 'met' : 'MISSED'}), worst < 250 ms (depad ${d.result.slowestMs < 250 ? 'met' : 'MISSED'})`);
} finally {
  await fs.rm(home, { recursive: true, force: true });
}
