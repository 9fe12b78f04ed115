/**
 * Health-check benchmark: `depad agent` checking N instances (default 500: 100 deployments × 5
 * busybox web services, each with x-depad.health { http: /cgi-bin/health, interval: 5s,
 * retries: 3 }). Measures the agent's CPU (utime + stime from /proc over 60 s, all healthy) and the
 * detection delay: 10 instances are broken at once (their health CGI moved away) and the time
 * until GET /v1/health reports each unhealthy is taken, against interval × retries = 15 s.
 * Everything it made is destroyed at the end.
 * Run: scripts/node bench/health.ts [deployments] [services-per-deployment]   (on a temporary DEPAD_HOME)
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { startBenchAgent } from './bench-agent.ts';
import { cpuMs } from './measure.ts';

const DEPLOYMENTS = Number(process.argv[2] ?? 100);
const SERVICES = Number(process.argv[3] ?? 5);
const BROKEN = 10;
const cpuSeconds = (pid: number) => cpuMs([pid]) / 1000;

const { home, depad, agent, cleanup } = await startBenchAgent('health', 18943, 18980);
const config = path.join(home, 'bench.yml');
const service = (i: number) => [
  `  s${i}:`,
  '    image: depad-example/app:1',
  '    ports: ["8080"]',
  '    x-depad: { expose: http, health: { http: /cgi-bin/health, interval: 5s, timeout: 2s, retries: 3 } }',
];
await fs.writeFile(config, ['services:', ...Array.from({ length: SERVICES }, (_, i) => service(i)).flat(), ''].join('\n'));
const socketPath = path.join(home, 'agent.sock');
const health = () =>
  new Promise<{ deployment: string; instance: string; status: string }[]>((resolve, reject) => {
    http.get({ socketPath, path: '/v1/health', agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve(JSON.parse(text)));
    }).on('error', reject);
  });
const names = Array.from({ length: DEPLOYMENTS }, (_, i) => `hb-${String(i).padStart(3, '0')}`);
const total = DEPLOYMENTS * SERVICES;
try {
  const started = Date.now();
  for (const name of names) depad(['create', '-n', name, '-f', config, '--no-wait']);
  console.log(`created ${DEPLOYMENTS} deployments × ${SERVICES} services through the agent in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  for (;;) {
    const list = await health();
    if (list.length === total && list.every((h) => h.status === 'healthy')) break;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  console.log(`all ${total} instances healthy after ${((Date.now() - started) / 1000).toFixed(0)} s`);
  await new Promise((resolve) => setTimeout(resolve, 10_000));
  const pid = agent.pid as number;
  const cpu0 = cpuSeconds(pid);
  const t0 = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 60_000));
  const cpu = (cpuSeconds(pid) - cpu0) / ((Date.now() - t0) / 1000);
  console.log(`agent CPU checking ${total} instances every 5 s: ${(cpu * 100).toFixed(1)}% of one core over 60 s (${((cpu * 5) / total * 1e6).toFixed(0)} µs per check)`);

  const broken = names.slice(0, BROKEN).map((n) => `depad-${n}-s0-1`);
  const breakAt = Date.now();
  for (const container of broken) execFileSync('docker', ['exec', container, 'mv', '/app/www/cgi-bin/health', '/app/www/cgi-bin/health.off']);
  const brokeAll = Date.now();
  const delays = new Map<string, number>();
  while (delays.size < broken.length && Date.now() - breakAt < 120_000) {
    for (const h of await health()) if (broken.includes(h.instance) && h.status === 'unhealthy' && !delays.has(h.instance)) delays.set(h.instance, Date.now() - breakAt);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const d = [...delays.values()].sort((a, b) => a - b);
  console.log(`detection: ${d.length}/${broken.length} reported unhealthy; delay min ${(d[0]! / 1000).toFixed(1)} s, median ${(d[Math.floor(d.length / 2)]! / 1000).toFixed(1)} s, max ${(d.at(-1)! / 1000).toFixed(1)} s (interval 5 s × retries 3 = 15 s; breaking took ${((brokeAll - breakAt) / 1000).toFixed(1)} s)`);
} finally {
  await cleanup(names);
}
